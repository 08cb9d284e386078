//! `diffusability equivariance` as a user runs it.

use diffusability::io::{RawArray, write_npy};
use std::path::Path;
use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_diffusability"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Latents (n, c, h, w) and their horizontal flip, built by index here.
fn write_pair(dir: &Path, n: usize, c: usize, h: usize, w: usize) -> (String, String) {
    let z: Vec<f32> = (0..n * c * h * w)
        .map(|i| ((i * 7919 % 101) as f32) * 0.1 - 3.0 + (i / (h * w) % c) as f32)
        .collect();
    let mut zt = vec![0.0f32; z.len()];
    for plane in 0..n * c {
        for y in 0..h {
            for x in 0..w {
                zt[(plane * h + y) * w + x] = z[(plane * h + y) * w + (w - 1 - x)];
            }
        }
    }
    let (a, b) = (dir.join("z.npy"), dir.join("zt.npy"));
    write_npy(&a, &RawArray::f32(vec![n, c, h, w], z)).unwrap();
    write_npy(&b, &RawArray::f32(vec![n, c, h, w], zt)).unwrap();
    (s(&a).to_string(), s(&b).to_string())
}

#[test]
fn exact_flip_scores_zero_and_one() {
    let dir = tempfile::tempdir().unwrap();
    let (z, zt) = write_pair(dir.path(), 4, 3, 5, 6);
    let o = run(&[
        "equivariance",
        "--latents",
        &z,
        "--transformed",
        &zt,
        "--transform",
        "flip",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "equiv_rel_err: 0.0");
    let cos: f64 = lines[1]
        .strip_prefix("equiv_cos: ")
        .unwrap()
        .parse()
        .unwrap();
    assert!((cos - 1.0).abs() < 1e-15, "{text}");

    let o = run(&[
        "equivariance",
        "--latents",
        &z,
        "--transformed",
        &zt,
        "--transform",
        "flip",
        "--json",
        "--normalize",
        "none",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["equiv_rel_err"], 0.0);
    assert_eq!(j["transform"], "flip");
    assert_eq!(j["normalize"], "none");
    assert_eq!(j["n"], 4);

    // The same pair is not rot90:2-equivariant.
    let o = run(&[
        "equivariance",
        "--latents",
        &z,
        "--transformed",
        &zt,
        "--transform",
        "rot90:2",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(j["equiv_rel_err"].as_f64().unwrap() > 0.01, "{j}");
}

fn fails_with(args: &[&str], needle: &str) {
    let o = run(args);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
    assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
    assert!(!stderr(&o).contains("panick"), "{}", stderr(&o));
}

#[test]
fn bad_inputs_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let (z, zt) = write_pair(dir.path(), 2, 2, 4, 6);
    let base = [
        "equivariance",
        "--latents",
        &z,
        "--transformed",
        &zt,
        "--transform",
    ];
    let with = |t: &str| {
        let mut v: Vec<String> = base.iter().map(|x| x.to_string()).collect();
        v.push(t.to_string());
        v
    };
    let args = with("rot90:1");
    fails_with(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        &format!(
            "{zt}: has shape (2, 2, 4, 6), expected (2, 2, 6, 4) (rot90:1 of the latents' (2, 2, 4, 6))"
        ),
    );
    let args = with("scale:0.5");
    fails_with(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        "expected (2, 2, 2, 3) (scale:0.5 of the latents' (2, 2, 4, 6))",
    );
    let args = with("shear");
    fails_with(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        "--transform: expected rot90:K (K an integer), flip or scale:S (S > 0), found `shear`",
    );
    let mut args = with("flip");
    args.extend(["--normalize".to_string(), "zscore".to_string()]);
    fails_with(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        "--normalize: expected channel, global, none, scale:F or stats:FILE, found `zscore`",
    );
    fails_with(
        &[
            "equivariance",
            "--latents",
            &z,
            "--transformed",
            "/no/zt.npy",
            "--transform",
            "flip",
        ],
        "/no/zt.npy",
    );
}
