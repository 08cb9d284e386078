//! Latent uniformity: the KDE statistics against scipy, the exact KL against an independent numpy
//! evaluation, the t-SNE against openTSNE and scikit-learn on the same points, the family's report,
//! thread independence and bad inputs.

use crate::common::{oracle, rel};
use diffusability::data::{Dataset, Latents, Source};
use diffusability::io::{RawArray, write_npy};
use diffusability::metrics::uniformity::density::{kde_at_points, uniformity};
use diffusability::metrics::uniformity::tsne::{self, Points, Settings, affinity, kl};
use diffusability::metrics::{ParamValue, Params, RunOptions, Selection, run};
use diffusability::par::Threads;
use diffusability::progress::{Progress, Silent};
use diffusability::{Error, ErrorKind};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

const KEYS: [&str; 3] = ["uniformity_cv", "uniformity_gini", "uniformity_entropy"];

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().expect("temporary directory")
}

fn path(dir: &Path, name: &str) -> String {
    dir.join(name).to_string_lossy().into_owned()
}

/// `n` points in `d` dimensions from `k` anisotropic Gaussian clusters of unequal size, seeded: the
/// clumpy, locally low-rank geometry of latent pixel vectors.
fn mixture(n: usize, d: usize, k: usize, seed: u64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut g = move || -> f64 { rng.sample(StandardNormal) };
    let centres: Vec<f64> = (0..k * d).map(|_| 1.5 * g()).collect();
    let axes: Vec<f64> = (0..k * d * 3).map(|_| 0.6 * g()).collect();
    let mut x = Vec::with_capacity(n * d);
    for i in 0..n {
        // Cluster sizes fall off geometrically.
        let c = (0..k)
            .find(|&c| (i * 7919) % 1000 < 1000 - 1000 / (c + 2))
            .unwrap_or(k - 1);
        let z = [g(), g(), g()];
        for j in 0..d {
            let a = &axes[(c * d + j) * 3..][..3];
            x.push(centres[c * d + j] + a[0] * z[0] + a[1] * z[1] + a[2] * z[2] + 0.25 * g());
        }
    }
    x
}

fn json_f64s(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect()
}

/// Counts progress steps.
#[derive(Default)]
struct Count {
    total: AtomicU64,
    steps: AtomicU64,
}

impl Progress for Count {
    fn begin(&self, _label: &str, total: u64) {
        self.total.fetch_add(total, Ordering::Relaxed);
    }
    fn advance(&self, n: u64) {
        self.steps.fetch_add(n, Ordering::Relaxed);
    }
}

/// A data set whose latent pixel vectors are the given points: one image per point, a 1 x 1 grid.
fn dataset_of(points: &[f64], d: usize) -> Dataset {
    Dataset {
        latents: Latents::from_vec(d, 1, 1, points.iter().map(|&v| v as f32).collect()),
        labels: None,
        masks: None,
        source: Source {
            name: "test".into(),
            ..Default::default()
        },
    }
}

fn options(overrides: &[(&'static str, ParamValue)], threads: usize) -> RunOptions {
    let mut p = Params::default();
    for (k, v) in overrides {
        p.0.insert(k, v.clone());
    }
    RunOptions {
        selection: Selection::List(KEYS.iter().map(|k| k.to_string()).collect()),
        overrides: p,
        normalize: diffusability::data::Normalize::None,
        threads: Threads(threads),
        ..RunOptions::default()
    }
}

/// The KDE at the points and its three statistics equal `scipy.stats.gaussian_kde(Y.T)(Y.T)` followed
/// by numpy, through the library function and through `--embedding`. Both sides are f64 with the same
/// formula; they differ only in summation order (scipy adds one kernel at a time), so agreement is
/// expected to ~1e-13: the tolerance is the 1e-9.
#[test]
fn kde_statistics_equal_scipy() {
    let dir = tmp();
    let n = 1500;
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let y: Vec<f64> = (0..n)
        .flat_map(|i| {
            let c = (i % 3) as f64;
            let a: f64 = rng.sample(StandardNormal);
            let b: f64 = rng.sample(StandardNormal);
            [3.0 * c + a * (1.0 + c), -2.0 * c + 0.5 * a + 0.3 * b]
        })
        .collect();
    let file = path(dir.path(), "emb.npy");
    write_npy(Path::new(&file), &RawArray::f64(vec![n, 2], y.clone())).unwrap();
    let want = oracle("uniformity.py", &["kde", &file]);

    let dens = kde_at_points(&y).unwrap();
    let worst = dens
        .iter()
        .zip(json_f64s(&want["density"]))
        .map(|(a, b)| rel(*a, b))
        .fold(0.0, f64::max);
    assert!(worst < 1e-10, "densities differ by {worst:e}");
    let u = uniformity(&dens);
    for (k, v) in KEYS.iter().zip([u.cv, u.gini, u.entropy]) {
        let w = want[k].as_f64().unwrap();
        assert!(rel(v, w) < 1e-9, "{k}: {v} vs scipy {w}");
    }

    // The family with --embedding: one repeat, std 0, statistics as above, no t-SNE.
    let ds = dataset_of(&mixture(50, 4, 2, 1), 4);
    let opts = options(&[("embedding", ParamValue::Path(Some(file.clone())))], 2);
    let count = Count::default();
    let report = run(&ds, &opts, &count).unwrap();
    for k in KEYS {
        let got = report.metrics[k].as_f64().unwrap();
        assert!(rel(got, want[k].as_f64().unwrap()) < 1e-9, "{k}");
        assert_eq!(report.details["uniformity"]["std"][k], 0.0);
    }
    assert_eq!(report.details["uniformity"]["source"], "embedding");
    assert_eq!(report.details["uniformity"]["repeats"], 1);
    assert!(count.steps.load(Ordering::Relaxed) <= 1);
}

/// Our exact KL of an embedding equals the oracle's (bisection-calibrated `P`, numpy sums): both
/// calibrate the entropy to ~1e-12 nats and sum in f64, so 1e-8 relative leaves room for the
/// different summation orders only.
#[test]
fn exact_kl_equals_the_oracle() {
    let dir = tmp();
    let (n, d) = (800, 6);
    let x = mixture(n, d, 4, 3);
    let s = Settings::new(30.0, 200);
    let e = tsne::embed(Points::new(&x, n, d), &s, None, &Silent).unwrap();
    let (px, py) = (path(dir.path(), "x.npy"), path(dir.path(), "y.npy"));
    write_npy(Path::new(&px), &RawArray::f64(vec![n, d], x.clone())).unwrap();
    write_npy(Path::new(&py), &RawArray::f64(vec![n, 2], e.y.clone())).unwrap();
    let want = oracle("uniformity.py", &["kl", &px, &py]);
    let w = want["kl"].as_f64().unwrap();
    assert!(rel(e.kl, w) < 1e-8, "KL {} vs oracle {w}", e.kl);
    // And directly from the affinity stage.
    let a = affinity::affinities(Points::new(&x, n, d), 30.0, s.neighbours(n));
    assert_eq!(kl::exact_kl(Points::new(&x, n, d), &a.exact, &e.y), e.kl);
}

/// Mean and sample standard deviation (ddof = 1) of one statistic over the oracle's entries.
fn spread(entries: &serde_json::Value, key: &str) -> (f64, f64, Vec<f64>) {
    let v: Vec<f64> = entries
        .as_array()
        .expect("array")
        .iter()
        .map(|e| e[key].as_f64().expect("number"))
        .collect();
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let sd = (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    (m, sd, v)
}

/// Our t-SNE (the metric's settings: Barnes-Hut) of 800 32-dimensional points (six clumps) and the
/// oracle's evaluation of it beside openTSNE (FFT gradients; for `seeds = 0`) or scikit-learn
/// (Barnes-Hut; PCA init once, random init for each of `seeds > 0` seeds), every KL computed by the
/// oracle with one function.
fn tsne_against_references(seeds: &str) -> (serde_json::Value, f64) {
    let dir = tmp();
    let (n, d) = (800, 32);
    let x = mixture(n, d, 6, 21);
    let s = Settings::new(30.0, 1000);
    assert_eq!(s.repulsion_method(), tsne::optimize::Repulsion::BarnesHut);
    let ours = tsne::embed(Points::new(&x, n, d), &s, None, &Silent).unwrap();
    let (px, py) = (path(dir.path(), "x.npy"), path(dir.path(), "ours.npy"));
    write_npy(Path::new(&px), &RawArray::f64(vec![n, d], x.clone())).unwrap();
    write_npy(Path::new(&py), &RawArray::f64(vec![n, 2], ours.y.clone())).unwrap();
    let mut args = vec!["tsne", &px, &py, "--seeds", seeds, "--jobs", "2"];
    if seeds != "0" {
        args.push("--skip-opentsne");
    }
    let want = oracle("uniformity.py", &args);
    (want, ours.kl)
}

/// The exact KL of our t-SNE is within 3 % of openTSNE's on the same points, and our own exact KL
/// equals the oracle's (see exact_kl_equals_the_oracle). openTSNE interpolates the repulsion on an FFT
/// grid, which ends a little higher than Barnes-Hut: on these points ours 0.522, openTSNE 0.535
/// (2.3 % apart); on 10,000 points 1.175 against 1.253.
#[test]
fn tsne_kl_is_within_3_percent_of_opentsne() {
    let (want, ours_kl) = tsne_against_references("0");
    let kl = want["ours"][0]["kl"].as_f64().unwrap();
    let ot = want["opentsne"]["kl"].as_f64().unwrap();
    assert!(rel(ours_kl, kl) < 1e-8, "{ours_kl} vs oracle {kl}");
    assert!((kl - ot).abs() <= 0.03 * ot, "KL ours {kl}, openTSNE {ot}");
}

/// The exact KL and each of the three statistics of our map lie in the 95 % prediction interval of
/// scikit-learn's seed-to-seed spread on the same points: `mean +- t(0.975, s - 1) sd sqrt(1 + 1/s)`
/// over `s = 5` seeds. (The bare min-max range of 5 seeds would hold a sixth draw from the same
/// distribution only 2 times in 3.)
///
/// Which spread: metrics.md section 5 fixes PCA initialization, which makes both our map and
/// scikit-learn's a deterministic function of the points (scikit-learn's randomized SVD gives the same
/// two components for every seed), so "seed-to-seed" can only mean scikit-learn's other source of
/// randomness, its random initialization: the runs then differ only in where the optimizer starts,
/// which is the variation a different, equally valid implementation of the same optimization shows.
/// Spread over point samples would mix in the sampling variance of the metric itself, which is far
/// larger and would let a biased optimizer pass.
///
/// This test fails for a map whose repulsion is approximated differently: on these points FFT
/// interpolation (ours and openTSNE's) gives `uniformity_cv` 0.285 and exact sums 0.348, against
/// scikit-learn's 0.304-0.314 (ours, Barnes-Hut with its criterion: 0.315).
#[test]
fn tsne_statistics_are_within_sklearn_seed_spread() {
    let (want, _) = tsne_against_references("5");
    let o = &want["ours"][0];
    let report = format!("ours {o}, scikit-learn (PCA init) {}", want["sklearn_pca"]);
    // t(0.975, 4) = 2.776.
    let half = 2.776 * (1.0f64 + 1.0 / 5.0).sqrt();
    for k in ["kl", KEYS[0], KEYS[1], KEYS[2]] {
        let (m, sd, v) = spread(&want["sklearn"], k);
        let got = o[k].as_f64().unwrap();
        assert!(
            (got - m).abs() <= half * sd,
            "{k}: ours {got}, scikit-learn seeds {v:?} (mean {m}, sd {sd}, interval +-{}); {report}",
            half * sd
        );
    }
}

/// Results do not depend on the thread count: same bits with 1 and 3 threads, with exact, Barnes-Hut
/// (one tree walk per group of points, groups fixed by the tree) and FFT-interpolated repulsion
/// (manifolds-rs's n-body FFT splits its work by grid rows and columns and sums each output in one
/// fixed order, whatever the pool).
#[test]
fn tsne_is_thread_independent() {
    let (n, d) = (600, 5);
    let x = mixture(n, d, 3, 11);
    for repulsion in [
        tsne::optimize::Repulsion::Exact,
        tsne::optimize::Repulsion::BarnesHut,
        tsne::optimize::Repulsion::Fft,
    ] {
        let s = Settings {
            repulsion: Some(repulsion),
            ..Settings::new(20.0, 300)
        };
        let go = |t: usize| {
            Threads(t)
                .install(|| tsne::embed(Points::new(&x, n, d), &s, None, &Silent).unwrap())
                .unwrap()
        };
        let (a, b) = (go(1), go(3));
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&a.y), bits(&b.y), "{repulsion:?}");
        assert_eq!(a.kl.to_bits(), b.kl.to_bits(), "{repulsion:?}");
    }
}

/// The family on latents: sampled repeats with their own seeds, means and population stds of the
/// per-repeat values, a KL per repeat, one progress step per iteration, and the same report for any
/// thread count.
#[test]
fn family_reports_repeats() {
    let (n, d) = (3000, 4);
    let ds = dataset_of(&mixture(n, d, 3, 5), d);
    let over = [
        ("tsne_samples", ParamValue::Int(400)),
        ("tsne_iters", ParamValue::Int(300)),
        ("uniformity_repeats", ParamValue::Int(3)),
    ];
    let count = Count::default();
    let r1 = run(&ds, &options(&over, 1), &count).unwrap();
    assert_eq!(count.total.load(Ordering::Relaxed), 900);
    assert_eq!(count.steps.load(Ordering::Relaxed), 900);
    let det = &r1.details["uniformity"];
    assert_eq!(det["source"], "tsne");
    assert_eq!(det["points"], 400);
    assert_eq!(json_f64s(&det["kl_exact"]).len(), 3);
    for k in KEYS {
        let v = json_f64s(&det["per_repeat"][k]);
        assert_eq!(v.len(), 3);
        assert!(
            v[0] != v[1] && v[1] != v[2],
            "{k}: repeats must use different samples"
        );
        let m = v.iter().sum::<f64>() / 3.0;
        let sd = (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / 3.0).sqrt();
        assert!(rel(r1.metrics[k].as_f64().unwrap(), m) < 1e-15);
        assert!(rel(det["std"][k].as_f64().unwrap(), sd) < 1e-12);
    }
    let r2 = run(&ds, &options(&over, 3), &Silent).unwrap();
    assert_eq!(r1.metrics, r2.metrics);
    assert_eq!(r1.details, r2.details);
    assert!(r1.warnings.is_empty(), "{:?}", r1.warnings);
}

/// Fewer vectors than asked: all of them, once, with a warning; fewer than the perplexity needs: no
/// metrics, a warning.
#[test]
fn small_inputs_warn() {
    let ds = dataset_of(&mixture(200, 3, 2, 2), 3);
    let over = [
        ("tsne_samples", ParamValue::Int(1000)),
        ("tsne_iters", ParamValue::Int(100)),
        ("uniformity_repeats", ParamValue::Int(4)),
    ];
    let r = run(&ds, &options(&over, 2), &Silent).unwrap();
    assert_eq!(
        r.warnings,
        vec![
            "uniformity: --tsne-samples 1000 exceeds the 200 latent pixel vectors (N*H*W = 200*1*1); using all of them"
                .to_string()
        ]
    );
    let det = &r.details["uniformity"];
    assert_eq!(det["repeats_computed"], 1);
    assert_eq!(json_f64s(&det["per_repeat"]["uniformity_cv"]).len(), 4);
    assert_eq!(det["std"]["uniformity_cv"], 0.0);

    let tiny = dataset_of(&mixture(20, 3, 2, 2), 3);
    let r = run(&tiny, &options(&over, 2), &Silent).unwrap();
    assert!(r.metrics.is_empty());
    assert!(
        r.warnings.iter().any(|w| w
            == "uniformity_cv, uniformity_gini, uniformity_entropy: not computed, t-SNE with perplexity 30 needs at least 32 latent pixel vectors, the input has 20"),
        "{:?}",
        r.warnings
    );
}

fn expect_input_error(file: &str, arr: RawArray, message: &str) {
    write_npy(Path::new(file), &arr).unwrap();
    let ds = dataset_of(&mixture(40, 3, 2, 2), 3);
    let opts = options(
        &[("embedding", ParamValue::Path(Some(file.to_string())))],
        1,
    );
    let e: Error = run(&ds, &opts, &Silent).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Input);
    assert_eq!(e.message, format!("{file}: {message}"));
}

/// Bad `--embedding` files: wrong shape, non-finite values, too few points, points on a line.
#[test]
fn bad_embeddings_are_input_errors() {
    let dir = tmp();
    let f = path(dir.path(), "e.npy");
    expect_input_error(
        &f,
        RawArray::f64(vec![4, 3], vec![0.0; 12]),
        "expected an N x 2 embedding, found shape (4, 3)",
    );
    expect_input_error(
        &f,
        RawArray::f32(vec![3, 2], vec![0.0, 1.0, f32::NAN, 2.0, 1.0, 1.0]),
        "expected finite values, found NaN at row 1, column 0",
    );
    expect_input_error(
        &f,
        RawArray::f64(vec![2, 2], vec![0.0, 1.0, 2.0, 3.0]),
        "cannot estimate the density of this embedding: 2 points, at least 3 are needed",
    );
    let line: Vec<f64> = (0..10)
        .flat_map(|i| [i as f64, 2.0 * i as f64 + 1.0])
        .collect();
    write_npy(Path::new(&f), &RawArray::f64(vec![10, 2], line)).unwrap();
    let ds = dataset_of(&mixture(40, 3, 2, 2), 3);
    let e = run(
        &ds,
        &options(&[("embedding", ParamValue::Path(Some(f.clone())))], 1),
        &Silent,
    )
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Input);
    assert!(
        e.message.starts_with(&format!(
            "{f}: cannot estimate the density of this embedding: the points lie on a line: their 2 x 2 covariance is singular"
        )),
        "{}",
        e.message
    );
    let missing = path(dir.path(), "missing.npy");
    let e = run(
        &ds,
        &options(&[("embedding", ParamValue::Path(Some(missing.clone())))], 1),
        &Silent,
    )
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
}
