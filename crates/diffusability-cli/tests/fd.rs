//! `diffusability fd` as a user runs it: exit codes, stdout, stderr messages.

use diffusability::io::{RawArray, write_npy, write_npz};
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

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn features(path: &Path, n: usize, f: usize, seed: u32) {
    let v: Vec<f32> = (0..n * f)
        .map(|i| (((i as u32).wrapping_mul(2654435761) ^ seed) as f32 / u32::MAX as f32) - 0.5)
        .collect();
    write_npy(path, &RawArray::f32(vec![n, f], v)).unwrap();
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn fails_with(args: &[&str], needle: &str) {
    let o = run(args);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
    assert!(stderr(&o).starts_with("error: "), "{}", stderr(&o));
    assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
    assert!(!stderr(&o).contains("panick"), "{}", stderr(&o));
}

#[test]
fn distance_of_features_and_of_saved_statistics() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.npy"), dir.path().join("b.npy"));
    features(&a, 200, 6, 1);
    features(&b, 150, 6, 7);
    let o = run(&["fd", s(&a), s(&b)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let line = stdout(&o);
    let v: f64 = line
        .strip_prefix("fd: ")
        .and_then(|x| x.trim().parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    assert!(v > 0.0 && v.is_finite());

    let o = run(&["fd", s(&a), s(&b), "--json", "--threads", "1"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["fd"].as_f64().unwrap().to_bits(), v.to_bits());
    assert_eq!(j["a"]["kind"], "features");
    assert_eq!(j["a"]["n"], 200);
    assert_eq!(j["b"]["f"], 6);
    for k in [
        "mean_term",
        "trace_a",
        "trace_sqrt",
        "min_eig_a",
        "min_eig_b",
        "clipped_product",
    ] {
        assert!(j[k].is_number(), "{k}: {j}");
    }

    let st = dir.path().join("b_stats.npz");
    let o = run(&["fd", "--save-stats", s(&b), s(&st)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("mu (6,) and sigma (6, 6), f64, of 150 feature vectors"));
    let o = run(&["fd", s(&a), s(&st), "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let m: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(m["b"]["kind"], "stats");
    assert!(m["b"]["n"].is_null());
    assert!((m["fd"].as_f64().unwrap() - v).abs() <= 1e-12 * v);
}

#[test]
fn few_vectors_warn_unless_quiet() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.npy"), dir.path().join("b.npy"));
    features(&a, 5, 8, 1);
    features(&b, 50, 8, 2);
    let o = run(&["fd", s(&a), s(&b)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("warning: ")
            && stderr(&o).contains("5 feature vectors of dimension 8: the covariance is singular"),
        "{}",
        stderr(&o)
    );
    let o = run(&["fd", s(&a), s(&b), "-q"]);
    assert!(stderr(&o).is_empty(), "{}", stderr(&o));
}

#[test]
fn bad_inputs_exit_2_naming_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let a = d.join("a.npy");
    features(&a, 20, 4, 1);
    features(&d.join("f3.npy"), 20, 3, 1);
    write_npy(
        &d.join("r3.npy"),
        &RawArray::f32(vec![2, 2, 2], vec![0.5; 8]),
    )
    .unwrap();
    let mu = RawArray::f64(vec![4], vec![0.0; 4]);
    write_npz(&d.join("nosigma.npz"), &[("mu", &mu), ("n", &mu)]).unwrap();
    fails_with(
        &["fd", s(&a), s(&d.join("f3.npy"))],
        &format!(
            "{}: has features of dimension 3, expected 4 (as in {})",
            s(&d.join("f3.npy")),
            s(&a)
        ),
    );
    fails_with(
        &["fd", s(&d.join("r3.npy")), s(&a)],
        "r3.npy: expected features of shape (N, F) or a statistics file with keys `mu` and `sigma`, found one array of shape (2, 2, 2)",
    );
    fails_with(
        &["fd", s(&a), s(&d.join("nosigma.npz"))],
        "nosigma.npz: key `sigma`: not found; the file has keys `mu`, `n`",
    );
    fails_with(&["fd", s(&a), "/no/such/b.npy"], "/no/such/b.npy");
    fails_with(
        &["fd", "--save-stats", s(&a), s(&d.join("out.npy"))],
        "--save-stats ",
    );
    fails_with(
        &[
            "fd",
            "--save-stats",
            s(&d.join("nosigma.npz")),
            s(&d.join("o.npz")),
        ],
        "nosigma.npz: key `sigma`: not found",
    );
    fails_with(
        &["fd", s(&a), s(&a), "--threads", "0"],
        "--threads: expected at least 1, found 0",
    );
    fails_with(&["fd", s(&a)], "B");
}
