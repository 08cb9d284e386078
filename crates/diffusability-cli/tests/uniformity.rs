//! `diffusability metrics` with the uniformity metrics, run as a user runs it: t-SNE maps of sampled
//! latent pixel vectors, a given `--embedding`, and a bad embedding file.

use diffusability::io::{RawArray, write_npy, write_npz};
use diffusability::metrics::uniformity::density::{kde_at_points, uniformity};
use std::path::Path;
use std::process::{Command, Output};

const KEYS: [&str; 3] = ["uniformity_cv", "uniformity_gini", "uniformity_entropy"];

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_diffusability"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&o.stdout)))
}

/// 40 latents of 4 channels on a 4 x 4 grid (640 pixel vectors) in three clumps, deterministic.
fn latents(dir: &Path) -> String {
    let (n, c, s) = (40, 4, 16);
    let v: Vec<f32> = (0..n * c * s)
        .map(|t| {
            let (i, ch, p) = (t / (c * s), (t / s) % c, t % s);
            let clump = ((i + p) % 3) as f32;
            let wobble = ((t as f32) * 0.618_034).fract() - 0.5;
            clump * (ch as f32 + 1.0) + 0.4 * wobble
        })
        .collect();
    let f = dir.join("latents.npy");
    write_npy(&f, &RawArray::f32(vec![n, c, 4, 4], v)).unwrap();
    f.to_string_lossy().into_owned()
}

#[test]
fn uniformity_from_tsne_maps_and_from_an_embedding() {
    let dir = tempfile::tempdir().unwrap();
    let f = latents(dir.path());
    let args = |threads: &'static str| {
        vec![
            "metrics",
            f.as_str(),
            "--metrics",
            "uniformity_cv,uniformity_gini,uniformity_entropy",
            "--tsne-samples",
            "300",
            "--tsne-iters",
            "300",
            "--uniformity-repeats",
            "3",
            "--seed",
            "4",
            "--threads",
            threads,
            "--json",
            "--quiet",
        ]
    };
    let o = run(&args("1"));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r = json(&o);
    assert_eq!(r["params"]["tsne_samples"], 300);
    assert_eq!(r["params"]["uniformity_repeats"], 3);
    let det = &r["details"]["uniformity"];
    assert_eq!(det["source"], "tsne");
    assert_eq!(det["points"], 300);
    for k in KEYS {
        let v = r["metrics"][k].as_f64().unwrap();
        assert!(v.is_finite() && v > 0.0, "{k} = {v}");
        assert_eq!(det["per_repeat"][k].as_array().unwrap().len(), 3);
        assert!(det["std"][k].as_f64().unwrap() > 0.0, "{k}");
    }
    assert_eq!(r["metrics"].as_object().unwrap().len(), 3);
    // The same report with two threads.
    let o2 = run(&args("2"));
    assert_eq!(o2.status.code(), Some(0), "{}", stderr(&o2));
    assert_eq!(json(&o2)["metrics"], r["metrics"]);
    assert_eq!(json(&o2)["details"], r["details"]);

    // --embedding: the statistics of the given map, no t-SNE, as the library computes them.
    let n = 200;
    let y: Vec<f64> = (0..n)
        .flat_map(|i| {
            let t = i as f64;
            [(t * 0.37).sin() * 3.0 + (t * 0.11).cos(), (t * 1.3).cos()]
        })
        .collect();
    let e = dir.path().join("map.npy");
    write_npy(&e, &RawArray::f64(vec![n, 2], y.clone())).unwrap();
    let o = run(&[
        "metrics",
        &f,
        "--metrics",
        "uniformity_cv,uniformity_gini,uniformity_entropy",
        "--embedding",
        e.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let u = uniformity(&kde_at_points(&y).unwrap());
    let lines = String::from_utf8_lossy(&o.stdout).into_owned();
    for (k, want) in KEYS.iter().zip([u.cv, u.gini, u.entropy]) {
        let line = lines
            .lines()
            .find(|l| l.starts_with(&format!("{k}: ")))
            .unwrap_or_else(|| panic!("no {k} line in:\n{lines}"));
        let got: f64 = line[k.len() + 2..].trim().parse().unwrap();
        assert!(
            (got - want).abs() <= 1e-6 * want.abs(),
            "{k}: printed {got}, library {want}"
        );
    }
}

#[test]
fn embedding_that_is_not_n_by_2_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let f = latents(dir.path());
    let e = dir.path().join("map.npz");
    let bad = RawArray::f64(vec![5, 3], vec![0.5; 15]);
    let other = RawArray::f64(vec![3], vec![1.0; 3]);
    write_npz(&e, &[("embedding", &bad), ("labels", &other)]).unwrap();
    let e = e.to_str().unwrap();
    let o = run(&[
        "metrics",
        &f,
        "--metrics",
        "uniformity_cv",
        "--embedding",
        e,
        "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let want = format!("{e}: key `embedding`: expected an N x 2 embedding, found shape (5, 3)");
    assert!(stderr(&o).contains(&want), "{}", stderr(&o));
    assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));

    let missing = dir.path().join("none.npy");
    let o = run(&[
        "metrics",
        &f,
        "--metrics",
        "uniformity_cv",
        "--embedding",
        missing.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(missing.to_str().unwrap()),
        "{}",
        stderr(&o)
    );
}
