//! `diffusability interpolate` as a user runs it.

use diffusability::io::{ArrayData, RawArray, read_array, write_npy};
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

fn s(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

fn latents(path: &Path, n: usize, seed: u64) {
    let mut st = seed;
    let v: Vec<f32> = (0..n * 2 * 3 * 3)
        .map(|_| {
            st = st
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((st >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        })
        .collect();
    write_npy(path, &RawArray::f32(vec![n, 2, 3, 3], v)).unwrap();
}

#[test]
fn writes_latents_and_neighbours_reproducibly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (q, r) = (d.join("q.npy"), d.join("r.npy"));
    latents(&q, 7, 1);
    latents(&r, 40, 2);
    let out = d.join("out.npy");
    let args = |seed: &str, out: &Path| {
        vec![
            "interpolate".to_string(),
            "--query".into(),
            s(&q),
            "--reference".into(),
            s(&r),
            "--seed".into(),
            seed.into(),
            "-o".into(),
            s(out),
        ]
    };
    let a: Vec<String> = args("3", &out);
    let o = run(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("7 interpolated latents of shape (2, 3, 3), alpha 0.5, top 10, seed 3"),
        "{text}"
    );
    let lat = read_array(out.to_str().unwrap(), None).unwrap();
    assert_eq!(lat.shape, vec![7, 2, 3, 3]);
    assert!(matches!(lat.data, ArrayData::F32(_)));
    let nb_path = d.join("out.neighbours.npy");
    let nb = read_array(nb_path.to_str().unwrap(), None).unwrap();
    assert_eq!(nb.shape, vec![7]);
    let ArrayData::I64(idx) = &nb.data else {
        panic!("neighbours are i64")
    };
    assert!(idx.iter().all(|&j| (0..40).contains(&j)));

    // Same seed, other thread count: the same bytes.
    let out2 = d.join("again.npy");
    let mut b = args("3", &out2);
    b.extend(["--threads".into(), "1".into(), "--json".into()]);
    let o = run(&b.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["neighbours_file"], s(&d.join("again.neighbours.npy")));
    assert_eq!(j["shape"], serde_json::json!([7, 2, 3, 3]));
    assert_eq!(j["top"], 10);
    assert!(j["mean_entropy"].as_f64().unwrap() > 0.0);
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&out2).unwrap());
    assert_eq!(
        std::fs::read(&nb_path).unwrap(),
        std::fs::read(d.join("again.neighbours.npy")).unwrap()
    );

    // --top 1: the nearest neighbour whatever the seed.
    let t1 = |seed: &str, name: &str| {
        let mut a = args(seed, &d.join(name));
        a.extend(["--top".into(), "1".into()]);
        let o = run(&a.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        std::fs::read(d.join(name)).unwrap()
    };
    assert_eq!(t1("0", "t0.npy"), t1("99", "t99.npy"));
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
    let d = dir.path();
    let (q, r) = (s(&d.join("q.npy")), s(&d.join("r.npy")));
    latents(&d.join("q.npy"), 4, 1);
    latents(&d.join("r.npy"), 6, 2);
    write_npy(
        &d.join("r4.npy"),
        &RawArray::f32(vec![3, 2, 9], vec![0.5; 54]),
    )
    .unwrap();
    let out = s(&d.join("o.npy"));
    let base = ["interpolate", "--query", &q, "--reference", &r, "-o", &out];
    let plus = |extra: &[&str]| -> Vec<String> {
        base.iter().chain(extra).map(|x| x.to_string()).collect()
    };
    let check = |extra: &[&str], needle: &str| {
        let a = plus(extra);
        fails_with(&a.iter().map(String::as_str).collect::<Vec<_>>(), needle);
    };
    check(&["--top", "0"], "--top: expected at least 1, found 0");
    check(
        &["--alpha", "2"],
        "--alpha: expected a number in [0, 1], found 2",
    );
    check(
        &["--top", "7"],
        &format!("{r}: has 6 reference latents, fewer than --top 7"),
    );
    fails_with(
        &[
            "interpolate",
            "--query",
            &q,
            "--reference",
            &r,
            "-o",
            &s(&d.join("o.bin")),
        ],
        "expected a file name ending in .npy",
    );
    fails_with(
        &[
            "interpolate",
            "--query",
            &q,
            "--reference",
            &r,
            "-o",
            "/no/dir/o.npy",
        ],
        "directory /no/dir does not exist",
    );
    let r4 = s(&d.join("r4.npy"));
    fails_with(
        &["interpolate", "--query", &q, "--reference", &r4, "-o", &out],
        "r4.npy: expected 4 dimensions (N, C, H, W), found shape (3, 2, 9)",
    );
    write_npy(
        &d.join("r5.npy"),
        &RawArray::f32(vec![3, 2, 3, 2], vec![0.5; 36]),
    )
    .unwrap();
    let r5 = s(&d.join("r5.npy"));
    fails_with(
        &["interpolate", "--query", &q, "--reference", &r5, "-o", &out],
        &format!("{r5}: has latents of shape (2, 3, 2) each, expected (2, 3, 3) as the queries"),
    );
}
