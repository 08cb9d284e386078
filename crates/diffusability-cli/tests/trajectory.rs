//! `diffusability trajectory` as a user runs it: JSON keys, layouts, time grids and directions, the
//! numpy oracle, the overlay and ideal outputs, `-o DIR`, and bad inputs (exit 2).

use diffusability::io::{RawArray, write_npy, write_npz};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_diffusability"))
        .arg("trajectory")
        .args(args)
        .output()
        .expect("the binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn ok_json(o: &Output) -> Value {
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(o));
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&o.stdout)))
}

fn nums(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-300)
}

/// A seeded splitmix64 stream of uniforms in [-0.5, 0.5) (enough randomness for test paths).
struct Mix(u64);
impl Mix {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64 - 0.5
    }
}

/// Curved paths `(K+1, B, D)`: `(1-t) x0 + t x1 + sin(3t) a`.
fn paths(k1: usize, b: usize, d: usize, seed: u64) -> Vec<f32> {
    let mut r = Mix(seed);
    let x0: Vec<f64> = (0..b * d).map(|_| 2.0 * r.next()).collect();
    let x1: Vec<f64> = (0..b * d).map(|_| 3.0 + r.next()).collect();
    let a: Vec<f64> = (0..b * d).map(|_| r.next()).collect();
    let mut v = Vec::new();
    for k in 0..k1 {
        let t = k as f64 / (k1 - 1) as f64;
        for i in 0..b * d {
            v.push(
                ((1.0 - t) * x0[i] + t * x1[i] + (3.0 * t).sin() * a[i] + 0.05 * r.next()) as f32,
            );
        }
    }
    v
}

fn to_bk(v: &[f32], k1: usize, b: usize, d: usize) -> Vec<f32> {
    let mut out = vec![0.0; v.len()];
    for k in 0..k1 {
        for j in 0..b {
            out[(j * k1 + k) * d..(j * k1 + k + 1) * d]
                .copy_from_slice(&v[(k * b + j) * d..(k * b + j + 1) * d]);
        }
    }
    out
}

const K1: usize = 9;
const B: usize = 6;
const CHW: [usize; 3] = [2, 2, 3];

struct Files {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl Files {
    fn new() -> Files {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let d: usize = CHW.iter().product();
        let kb = paths(K1, B, d, 1);
        let [c, h, w] = CHW;
        write_npy(
            &root.join("kb.npy"),
            &RawArray::f32(vec![K1, B, c, h, w], kb.clone()),
        )
        .unwrap();
        write_npy(
            &root.join("bk.npy"),
            &RawArray::f32(vec![B, K1, c, h, w], to_bk(&kb, K1, B, d)),
        )
        .unwrap();
        // Latents of the same shape: 3 classes of 30.
        let mut r = Mix(7);
        let n = 90;
        let lat: Vec<f32> = (0..n * d)
            .map(|i| (r.next() * (1.0 + (i % d) as f64 * 0.2) + (i / d / 30) as f64) as f32)
            .collect();
        let lab: Vec<i64> = (0..n as i64).map(|i| i / 30).collect();
        write_npz(
            &root.join("lat.npz"),
            &[
                ("latents", &RawArray::f32(vec![n, c, h, w], lat)),
                ("labels", &RawArray::i64(vec![n], lab)),
            ],
        )
        .unwrap();
        Files { _dir: dir, root }
    }

    fn p(&self, name: &str) -> String {
        self.root.join(name).to_str().unwrap().to_string()
    }
}

fn nonuniform() -> Vec<f64> {
    (0..K1)
        .map(|k| (k as f64 / (K1 - 1) as f64).powf(1.5))
        .collect()
}

#[test]
fn json_keys_and_both_layouts() {
    let f = Files::new();
    let a = ok_json(&run(&[&f.p("kb.npy"), "--json"]));
    let b = ok_json(&run(&[&f.p("bk.npy"), "--layout", "bkchw", "--json"]));
    for key in ["straightness", "efficiency", "length_ratio", "times"] {
        assert!(a.get(key).is_some(), "{key} missing: {a}");
    }
    assert_eq!(nums(&a["length_ratio"]).len(), K1 - 1);
    assert_eq!(nums(&a["times"]).len(), K1);
    assert_eq!(a["input"]["steps"], K1 - 1);
    assert_eq!(a["input"]["samples"], B);
    for key in [
        "straightness",
        "efficiency",
        "length_ratio",
        "times",
        "mean_step_norm",
    ] {
        assert_eq!(a[key], b[key], "{key}");
    }
    let s = a["straightness"].as_f64().unwrap();
    assert!(s > 0.0 && s < 1.0);
    // Plain output: name: value lines.
    let o = run(&[&f.p("kb.npy")]);
    assert_eq!(o.status.code(), Some(0));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.starts_with(&format!("straightness: {s}\n")), "{text}");
}

#[test]
fn time_grids_from_list_files_and_repa() {
    let f = Files::new();
    let t = nonuniform();
    let list: Vec<String> = t.iter().map(|x| x.to_string()).collect();
    write_npy(&f.root.join("t.npy"), &RawArray::f64(vec![K1], t.clone())).unwrap();
    std::fs::write(f.root.join("t.txt"), list.join("\n")).unwrap();
    let from_list = ok_json(&run(&[
        &f.p("kb.npy"),
        "--times",
        &list.join(","),
        "--json",
    ]));
    let from_npy = ok_json(&run(&[&f.p("kb.npy"), "--times", &f.p("t.npy"), "--json"]));
    let from_txt = ok_json(&run(&[&f.p("kb.npy"), "--times", &f.p("t.txt"), "--json"]));
    assert_eq!(nums(&from_list["times"]), t);
    for key in ["straightness", "efficiency", "length_ratio"] {
        assert_eq!(from_list[key], from_npy[key], "{key}");
        assert_eq!(from_list[key], from_txt[key], "{key}");
    }
    // Uniform default differs from the non-uniform grid in the length ratio only.
    let uniform = ok_json(&run(&[&f.p("kb.npy"), "--json"]));
    assert_eq!(uniform["straightness"], from_list["straightness"]);
    assert_ne!(uniform["length_ratio"], from_list["length_ratio"]);
    // REPA: the same states with t_repa = 1 - t (decreasing) give the same numbers.
    let repa: Vec<String> = t.iter().map(|x| (1.0 - x).to_string()).collect();
    let r = ok_json(&run(&[
        &f.p("kb.npy"),
        "--direction",
        "repa",
        "--times",
        &repa.join(","),
        "--json",
    ]));
    assert_eq!(r["straightness"], from_list["straightness"]);
    assert_eq!(r["efficiency"], from_list["efficiency"]);
    for (a, b) in nums(&r["length_ratio"])
        .iter()
        .zip(nums(&from_list["length_ratio"]))
    {
        assert!(rel(*a, b) < 1e-13, "{a} vs {b}");
    }
    for (a, b) in nums(&r["times"]).iter().zip(&t) {
        assert!((a - b).abs() < 1e-15);
    }
}

/// The oracle's interpreter: `DIFFUSABILITY_PYTHON`, else the workspace `.venv`.
fn python() -> PathBuf {
    if let Ok(p) = std::env::var("DIFFUSABILITY_PYTHON") {
        return PathBuf::from(p);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let venv = root.join(".venv/bin/python");
    assert!(
        venv.exists(),
        "oracle tests need Python with numpy and scipy: run scripts/test or set DIFFUSABILITY_PYTHON"
    );
    venv
}

#[test]
fn cli_matches_numpy_oracle() {
    // Same stored values on both sides, f64 arithmetic: agreement to rounding; asserted at 1e-9.
    let f = Files::new();
    let t = nonuniform();
    write_npy(&f.root.join("t.npy"), &RawArray::f64(vec![K1], t)).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/oracles/trajectory.py");
    let ours = ok_json(&run(&[
        &f.p("bk.npy"),
        "--layout",
        "bkchw",
        "--times",
        &f.p("t.npy"),
        "--latents",
        &f.p("lat.npz"),
        "--viv-tol",
        "1e-12",
        "--viv-max-sweeps",
        "500",
        "--json",
        "--quiet",
    ]));
    let o = Command::new(python())
        .arg(&script)
        .args([
            &f.p("bk.npy"),
            "bkchw",
            &f.p("t.npy"),
            "sit",
            // The oracle reads .npy latents and labels.
            &{
                let lat = diffusability::io::read_array(&f.p("lat.npz"), Some("latents")).unwrap();
                write_npy(&f.root.join("lat.npy"), &lat).unwrap();
                f.p("lat.npy")
            },
            &{
                let lab = diffusability::io::read_array(&f.p("lat.npz"), Some("labels")).unwrap();
                write_npy(&f.root.join("lab.npy"), &lab).unwrap();
                f.p("lab.npy")
            },
            "1e-6",
            "1e-12",
            "500",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let want: Value = serde_json::from_slice(&o.stdout).unwrap();
    for key in ["straightness", "efficiency", "viv_length_ratio_r"] {
        let (a, b) = (ours[key].as_f64().unwrap(), want[key].as_f64().unwrap());
        assert!(rel(a, b) < 1e-8, "{key}: {a} vs {b}");
    }
    for key in ["length_ratio", "times", "viv_curve", "mean_step_norm"] {
        let (a, b) = (nums(&ours[key]), nums(&want[key]));
        assert_eq!(a.len(), b.len(), "{key}");
        for (x, y) in a.iter().zip(&b) {
            assert!(rel(*x, *y) < 1e-8, "{key}: {x} vs {y}");
        }
    }
}

#[test]
fn overlay_ideal_and_output_dir() {
    let f = Files::new();
    let out = f.root.join("out");
    let args = |threads: &'static str| {
        run(&[
            &f.p("kb.npy"),
            "--latents",
            &f.p("lat.npz"),
            "--ideal",
            "--ideal-samples",
            "50",
            "--threads",
            threads,
            "--json",
            "-o",
            out.to_str().unwrap(),
        ])
    };
    let a = ok_json(&args("1"));
    let b = ok_json(&args("2"));
    assert_eq!(a, b, "results depend on the thread count");
    assert_eq!(nums(&a["viv_curve"]).len(), K1 - 1);
    let r = a["viv_length_ratio_r"].as_f64().unwrap();
    assert!((-1.0..=1.0).contains(&r));
    let ideal = &a["ideal"];
    assert_eq!(ideal["samples"], 50);
    assert_eq!(ideal["solver"], "euler");
    assert_eq!(nums(&ideal["samples_per_class"]).iter().sum::<f64>(), 50.0);
    assert_eq!(nums(&ideal["length_ratio"]).len(), K1 - 1);
    let e = ideal["efficiency"].as_f64().unwrap();
    assert!(e > 0.0 && e <= 1.0 + 1e-12);
    assert!(ideal["straightness"].as_f64().is_some());
    let file: Value =
        serde_json::from_slice(&std::fs::read(out.join("trajectory.json")).unwrap()).unwrap();
    assert_eq!(file, a);
    let csv = std::fs::read_to_string(out.join("segments.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "k,t_start,t_end,t_mid,length_ratio,mean_step_norm,viv,ideal_length_ratio"
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), K1 - 1);
    let lr = nums(&a["length_ratio"]);
    for (k, row) in rows.iter().enumerate() {
        let cells: Vec<f64> = row.split(',').map(|c| c.parse().unwrap()).collect();
        assert_eq!(cells[0], k as f64);
        assert_eq!(cells[4], lr[k]);
    }
    let svg = std::fs::read_to_string(out.join("length_ratio.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert_eq!(
        svg.matches("<polyline").count(),
        3,
        "length ratio, ideal, V(t)"
    );
    // The exact solver and another seed give other ideal numbers, the same measured ones.
    let c = ok_json(&run(&[
        &f.p("kb.npy"),
        "--latents",
        &f.p("lat.npz"),
        "--ideal",
        "--ideal-solver",
        "exact",
        "--seed",
        "3",
        "--json",
    ]));
    assert_eq!(c["ideal"]["solver"], "exact");
    assert_eq!(c["ideal"]["samples"], B);
    assert_eq!(c["straightness"], a["straightness"]);
    assert_ne!(c["ideal"]["length_ratio"], a["ideal"]["length_ratio"]);
}

fn fails(args: &[&str], needle: &str) {
    let o = run(args);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
    assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
    assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
}

#[test]
fn bad_inputs_exit_2() {
    let f = Files::new();
    write_npy(
        &f.root.join("rank4.npy"),
        &RawArray::f32(vec![3, 2, 2, 2], vec![0.0; 24]),
    )
    .unwrap();
    write_npy(
        &f.root.join("one.npy"),
        &RawArray::f32(vec![1, 2, 1, 1, 1], vec![0.0; 2]),
    )
    .unwrap();
    write_npy(
        &f.root.join("small.npy"),
        &RawArray::f32(vec![K1, B, 1, 2, 2], vec![0.5; K1 * B * 4]),
    )
    .unwrap();
    let kb = f.p("kb.npy");
    fails(
        &[&f.p("rank4.npy")],
        "expected 5 dimensions (K+1, B, C, H, W)",
    );
    fails(&[&f.p("one.npy")], "expected at least 2 states");
    fails(&[&kb, "--times", "0,0.5,0.4,1"], "has 4 times, expected 9");
    let bad: Vec<String> = (0..K1)
        .map(|k| {
            if k == 4 {
                "0.3".into()
            } else {
                (k as f64 / 8.0).to_string()
            }
        })
        .collect();
    fails(
        &[&kb, "--times", &bad.join(",")],
        "expected times strictly increasing",
    );
    let inc: Vec<String> = (0..K1).map(|k| (k as f64 / 8.0).to_string()).collect();
    fails(
        &[&kb, "--direction", "repa", "--times", &inc.join(",")],
        "strictly decreasing",
    );
    fails(
        &[&kb, "--times", "0,a,1"],
        "comma-separated list of numbers",
    );
    fails(&[&kb, "--times", &f.p("missing.npy")], "not found");
    fails(&[&kb, "--layout", "kcbhw"], "kcbhw");
    fails(&[&kb, "--ideal"], "--ideal needs --latents");
    fails(
        &[&kb, "--labels", &f.p("lat.npz")],
        "--labels needs --latents",
    );
    fails(
        &[&f.p("small.npy"), "--latents", &f.p("lat.npz")],
        "same tokenizer",
    );
    fails(&[&kb, "-o", &kb], "not a directory");
    fails(
        &[&kb, "--latents", &f.p("lat.npz"), "--viv-ridge=-1"],
        "--viv-ridge",
    );
}

#[test]
fn one_segment_warns_and_omits_straightness() {
    let f = Files::new();
    write_npy(
        &f.root.join("k1.npy"),
        &RawArray::f32(
            vec![2, 2, 1, 1, 2],
            vec![0.0, 0.0, 1.0, 1.0, 3.0, 4.0, 2.0, 1.0],
        ),
    )
    .unwrap();
    let o = run(&[&f.p("k1.npy"), "--json"]);
    let j = ok_json(&o);
    assert!(j.get("straightness").is_none());
    assert!(
        stderr(&o).contains("straightness needs at least 2 segments"),
        "{}",
        stderr(&o)
    );
    assert!(rel(j["efficiency"].as_f64().unwrap(), 1.0) < 1e-15);
    assert_eq!(nums(&j["length_ratio"]), vec![1.0]);
}
