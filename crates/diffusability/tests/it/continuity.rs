//! iFID's latent side: exact cosine top-K, softmax(-MSE) draw probabilities, slerp, as numpy computes
//! them; draw frequencies follow the probabilities; results depend on the seed only.

use crate::common::oracle;
use diffusability::data::Latents;
use diffusability::io::{ArrayData, InputSpec, load, read_array};
use diffusability::metrics::continuity::{
    InterpolateParams, Interpolation, interpolate, top_k_cosine,
};
use diffusability::par::Threads;
use std::path::Path;

fn latents(path: &Path) -> Latents {
    load(&InputSpec {
        path: path.display().to_string(),
        ..Default::default()
    })
    .unwrap()
    .latents
}

struct Case {
    _dir: tempfile::TempDir,
    q: Latents,
    r: Latents,
    want: serde_json::Value,
    path: std::path::PathBuf,
}

fn case() -> Case {
    let dir = tempfile::tempdir().unwrap();
    let want = oracle("continuity.py", &["cases", dir.path().to_str().unwrap()]);
    Case {
        q: latents(&dir.path().join("q.npy")),
        r: latents(&dir.path().join("r.npy")),
        path: dir.path().to_path_buf(),
        want,
        _dir: dir,
    }
}

fn run(c: &Case, top: usize, alpha: f64, seed: u64, threads: usize) -> Interpolation {
    let p = InterpolateParams { top, alpha, seed };
    Threads(threads)
        .install(|| interpolate(&c.q, &c.r, "r.npy", &p))
        .unwrap()
        .unwrap()
}

fn usizes(v: &serde_json::Value) -> Vec<usize> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect()
}

#[test]
fn top_k_and_probabilities_match_numpy() {
    let c = case();
    let k = c.want["k"].as_u64().unwrap() as usize;
    let nb = Threads(2)
        .install(|| top_k_cosine(&c.q, &c.r, k))
        .unwrap()
        .unwrap();
    let it = run(&c, k, 0.5, 0, 2);
    for i in 0..c.q.shape().n {
        assert_eq!(
            nb.index[i * k..(i + 1) * k],
            usizes(&c.want["candidates"][i])[..],
            "query {i}"
        );
        for a in 0..k {
            // Both f64 sums of the same f32 products, in different orders.
            let wc = c.want["cos"][i][a].as_f64().unwrap();
            assert!((nb.cos[i * k + a] - wc).abs() < 1e-13, "query {i}");
            let wp = c.want["probabilities"][i][a].as_f64().unwrap();
            assert!(
                (it.probabilities[i * k + a] - wp).abs() < 1e-12,
                "query {i}"
            );
        }
    }
    assert_eq!(it.candidates, nb);
}

#[test]
fn top_one_equals_numpy_slerp() {
    let c = case();
    let sh = c.q.shape();
    for alpha in ["0.5", "0.3"] {
        let it = run(&c, 1, alpha.parse().unwrap(), 0, 2);
        let w = &c.want["top1"][alpha];
        assert_eq!(it.neighbour, usizes(&w["neighbours"]), "alpha {alpha}");
        assert!(it.rank.iter().all(|&r| r == 0));
        let linear = w["linear"].as_array().unwrap();
        assert_eq!(
            it.linear_fallbacks,
            linear.iter().filter(|x| x.as_bool().unwrap()).count()
        );
        assert_eq!(
            it.linear_fallbacks, 1,
            "query 3 is parallel to reference 17"
        );
        let want = read_array(
            c.path.join(format!("top1_{alpha}.npy")).to_str().unwrap(),
            None,
        )
        .unwrap();
        assert_eq!(want.shape, vec![sh.n, sh.c, sh.h, sh.w]);
        let ArrayData::F64(want) = want.data else {
            panic!("expected f64")
        };
        // The same f64 formula; ours is stored as f32 (half an ulp, 2^-24 relative) and its
        // weights come from a differently ordered dot product (1e-15).
        for (k, (a, b)) in it.latents.iter().zip(&want).enumerate() {
            let tol = 2f64.powi(-24) * b.abs() + 1e-12;
            assert!(
                (*a as f64 - b).abs() <= tol,
                "alpha {alpha} value {k}: {a} vs {b}"
            );
        }
    }
}

/// Wilson-Hilferty approximation of the chi-square quantile with `dof` degrees of freedom at the
/// standard normal quantile `z` (accurate to well under 1% for dof > 30).
fn chi2_quantile(dof: f64, z: f64) -> f64 {
    let a = 2.0 / (9.0 * dof);
    dof * (1.0 - a + z * a.sqrt()).powi(3)
}

#[test]
fn draw_frequencies_follow_the_softmax_probabilities() {
    let c = case();
    let k = 5;
    let seeds = 1500;
    let nq = c.q.shape().n;
    let first = run(&c, k, 0.5, 0, 2);
    let mut counts = vec![0usize; nq * k];
    for seed in 0..seeds {
        let it = run(&c, k, 0.5, seed, 2);
        for (i, &r) in it.rank.iter().enumerate() {
            counts[i * k + r] += 1;
        }
    }
    // Pearson's statistic over every (query, candidate) cell: each query's counts are multinomial
    // with its own probabilities, so the sum is chi-square with nq (k - 1) degrees of freedom. Every
    // expected count is above 5 here (probabilities between 0.1 and 0.4 by construction).
    let mut stat = 0.0;
    for (cnt, p) in counts.iter().zip(&first.probabilities) {
        let e = *p * seeds as f64;
        assert!(e > 5.0, "expected count {e}");
        stat += (*cnt as f64 - e).powi(2) / e;
    }
    let dof = (nq * (k - 1)) as f64;
    // Fails by chance with probability 1e-6 (z = 4.753).
    let limit = chi2_quantile(dof, 4.753);
    assert!(stat < limit, "chi-square {stat} >= {limit} with {dof} dof");
    // And not suspiciously perfect either (probability 1e-6 in the lower tail).
    assert!(stat > chi2_quantile(dof, -4.753), "chi-square {stat}");
}

#[test]
fn results_depend_on_the_seed_only() {
    let c = case();
    let a = run(&c, 5, 0.5, 42, 1);
    let b = run(&c, 5, 0.5, 42, 3);
    assert_eq!(a, b);
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&a.latents), bits(&b.latents));
    let other = run(&c, 5, 0.5, 43, 2);
    assert_ne!(
        a.neighbour, other.neighbour,
        "another seed draws other neighbours"
    );
}

#[test]
fn bad_parameters_and_shapes() {
    let c = case();
    let p = |top, alpha| InterpolateParams {
        top,
        alpha,
        seed: 0,
    };
    let e = interpolate(&c.q, &c.r, "r.npy", &p(201, 0.5)).unwrap_err();
    assert_eq!(
        e.message,
        "r.npy: has 200 reference latents, fewer than --top 201"
    );
    let e = interpolate(&c.q, &c.r, "r.npy", &p(0, 0.5)).unwrap_err();
    assert_eq!(e.message, "--top: expected at least 1, found 0");
    let e = interpolate(&c.q, &c.r, "r.npy", &p(1, 1.5)).unwrap_err();
    assert_eq!(e.message, "--alpha: expected a number in [0, 1], found 1.5");
    let other = Latents::from_vec(2, 2, 8, vec![0.5; 64]);
    let e = interpolate(&c.q, &other, "r.npy", &p(1, 0.5)).unwrap_err();
    assert_eq!(
        e.message,
        "r.npy: has latents of shape (2, 2, 8) each, expected (2, 4, 4) as the queries"
    );
}
