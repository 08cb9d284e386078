//! Semantic separability: `lnc` and `linear_probe_acc` against numpy/scikit-learn
//! (tests/oracles/separability.py), the fast kNN against the direct f64 scan, and invariants.

use crate::common::oracle;
use diffusability::data::{Affine, Dataset, Labels, Latents, Masks, Normalize, Normalized, Source};
use diffusability::io::{ArrayData, RawArray, write_npy};
use diffusability::metrics::separability::{features, probe};
use diffusability::metrics::{Context, ParamValue, Params, RunOptions, Selection, run};
use diffusability::par::Threads;
use diffusability::progress::Silent;
use diffusability::report::Report;
use diffusability::stats::knn::{KnnMetric, knn, knn_scan};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use serde_json::{Value, json};
use std::path::Path;

/// `n` latents `(c, h, w)` in `classes` classes: a per-class random offset per channel (scaled by
/// `sep`) plus unit Gaussian noise per value. Labels are `0..classes` cycled, shifted to show that raw
/// label values are kept.
fn clustered(
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    classes: usize,
    sep: f32,
    seed: u64,
) -> (Latents, Labels) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let normal = Normal::new(0.0f32, 1.0).unwrap();
    let centres: Vec<f32> = (0..classes * c)
        .map(|_| normal.sample(&mut rng) * sep)
        .collect();
    let mut data = Vec::with_capacity(n * c * h * w);
    let mut raw = Vec::with_capacity(n);
    for i in 0..n {
        let k = (i * 7 + i / 3) % classes;
        raw.push(100 + 3 * k as i64);
        for ch in 0..c {
            for _ in 0..h * w {
                data.push(centres[k * c + ch] + normal.sample(&mut rng) + 0.5);
            }
        }
    }
    (Latents::from_vec(c, h, w, data), Labels::new(raw))
}

/// Random pixel masks (`n x mh x mw`): each image a random rectangle, every 9th image empty.
fn pixel_masks(n: usize, mh: usize, mw: usize, seed: u64) -> Vec<bool> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut px = vec![false; n * mh * mw];
    for i in 0..n {
        if i % 9 == 4 {
            continue;
        }
        let (y0, x0) = (rng.random_range(0..mh), rng.random_range(0..mw));
        let (y1, x1) = (rng.random_range(y0..mh), rng.random_range(x0..mw));
        for y in y0..=y1 {
            for x in x0..=x1 {
                px[i * mh * mw + y * mw + x] = true;
            }
        }
    }
    px
}

fn dataset(latents: Latents, labels: Option<Labels>, masks: Option<Masks>) -> Dataset {
    Dataset {
        latents,
        labels,
        masks,
        source: Source::default(),
    }
}

fn params(kv: &[(&'static str, ParamValue)]) -> Params {
    let mut p = Params::default();
    for (k, v) in kv {
        p.0.insert(*k, v.clone());
    }
    p
}

fn report(
    data: &Dataset,
    metric: &str,
    overrides: Params,
    normalize: Normalize,
    threads: usize,
) -> Report {
    let opts = RunOptions {
        selection: Selection::List(vec![metric.to_string()]),
        overrides,
        normalize,
        stats: None,
        seed: 7,
        threads: Threads(threads),
    };
    run(data, &opts, &Silent).unwrap()
}

fn metric(r: &Report, key: &str) -> f64 {
    r.metrics[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} missing: {:?}", r.warnings))
}

fn f32_array(shape: &[usize], v: Vec<f32>) -> RawArray {
    RawArray {
        shape: shape.to_vec(),
        data: ArrayData::F32(v),
    }
}

fn i64_array(v: Vec<i64>) -> RawArray {
    RawArray {
        shape: vec![v.len()],
        data: ArrayData::I64(v),
    }
}

/// The normalized latents as the metrics see them, for the oracle.
fn write_normalized(dir: &Path, data: &Dataset, normalize: &Normalize) {
    let (a, _) = Affine::fit(normalize, &data.latents, None).unwrap();
    let z = Normalized {
        latents: &data.latents,
        affine: &a,
    };
    let s = z.shape();
    write_npy(
        &dir.join("latents.npy"),
        &f32_array(&[s.n, s.c, s.h, s.w], z.to_vec()),
    )
    .unwrap();
    let labels = data.labels.as_ref().unwrap();
    write_npy(&dir.join("labels.npy"), &i64_array(labels.raw.clone())).unwrap();
}

fn oracle_in(dir: &Path, mode: &str, p: Value) -> Value {
    std::fs::write(dir.join("params.json"), p.to_string()).unwrap();
    oracle("separability.py", &[mode, dir.to_str().unwrap()])
}

fn as_usize_rows(v: &Value) -> Vec<Vec<usize>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap() as usize)
                .collect()
        })
        .collect()
}

/// Neighbour lists and LNC equal the oracle's exactly: integer counts, the same indices, and the value
/// `total / (n k)` to the last bit (the oracle's `mean(counts / k)` within 1e-15, one rounding apart).
/// `pixels`: the pixel masks `data.masks` were pooled from (the oracle pools them itself). `ties`: the
/// data has exact ties, which scikit-learn breaks its own way, so its second opinion is not asserted.
fn check_lnc_against_oracle(
    data: &Dataset,
    pixels: Option<&[bool]>,
    normalize: Normalize,
    k: usize,
    metric_name: &str,
    feat: &str,
    ties: bool,
) {
    let dir = tempfile::tempdir().unwrap();
    write_normalized(dir.path(), data, &normalize);
    if let Some(m) = &data.masks {
        let px = pixels.expect("pixel masks").to_vec();
        assert_eq!(px.len(), m.len() * m.source_h * m.source_w);
        let a = RawArray {
            shape: vec![m.len(), m.source_h, m.source_w],
            data: ArrayData::Bool(px),
        };
        write_npy(&dir.path().join("masks.npy"), &a).unwrap();
    }
    let o = oracle_in(
        dir.path(),
        "lnc",
        json!({"k": k, "metric": metric_name, "features": feat}),
    );
    if !ties {
        assert_eq!(
            o["sklearn_agrees"],
            json!(true),
            "scikit-learn's brute-force kNN disagrees with the scan"
        );
    }
    let p = params(&[
        ("lnc_k", ParamValue::Int(k as i64)),
        ("lnc_metric", ParamValue::Str(metric_name.into())),
        ("lnc_features", ParamValue::Str(feat.into())),
    ]);
    let r = report(data, "lnc", p, normalize.clone(), 2);
    let n = data.latents.shape().n;
    let total = o["total"].as_u64().unwrap() as usize;
    assert_eq!(
        metric(&r, "lnc").to_bits(),
        (total as f64 / (n * k) as f64).to_bits()
    );
    assert!((metric(&r, "lnc") - o["lnc"].as_f64().unwrap()).abs() <= 1e-15);
    let det = &r.details["lnc"];
    assert_eq!(det["k"], json!(k));
    let ours: Vec<f64> = serde_json::from_value(det["per_class"]["consistency"].clone()).unwrap();
    let theirs: Vec<f64> = serde_json::from_value(o["per_class"].clone()).unwrap();
    assert_eq!(ours.len(), theirs.len());
    for (a, b) in ours.iter().zip(&theirs) {
        assert!((a - b).abs() <= 1e-15, "{a} vs {b}");
    }
    assert_eq!(det["per_class"]["class"], o["classes"]);

    // The neighbour lists themselves, from the library's feature and kNN functions.
    let (a, _) = Affine::fit(&normalize, &data.latents, None).unwrap();
    let z = Normalized {
        latents: &data.latents,
        affine: &a,
    };
    let m = if metric_name == "cosine" {
        KnnMetric::Cosine
    } else {
        KnnMetric::L2
    };
    let nb = if feat == "pooled" {
        let (f, _) = features::pooled(z, data.masks.as_ref()).unwrap();
        knn(&f, n, z.shape().c, k, m, &Silent)
    } else {
        let f = features::flatten(z).unwrap();
        knn(&f, n, z.shape().d(), k, m, &Silent)
    };
    let theirs = as_usize_rows(&o["neighbors"]);
    for (i, row) in theirs.iter().enumerate() {
        assert_eq!(nb.of(i), &row[..], "neighbours of {i}");
    }
}

#[test]
fn lnc_matches_oracle_cosine_pooled_with_masks() {
    let (n, c, h, w) = (300, 8, 4, 4);
    let (lat, labels) = clustered(n, c, h, w, 12, 0.6, 1);
    let px = pixel_masks(n, 8, 8, 2);
    let masks = Masks::pool(&px, n, 8, 8, h, w);
    let data = dataset(lat, Some(labels), Some(masks));
    check_lnc_against_oracle(
        &data,
        Some(&px),
        Normalize::Channel,
        10,
        "cosine",
        "pooled",
        false,
    );
}

#[test]
fn lnc_matches_oracle_l2_flatten_with_exact_ties() {
    // Small integers, no normalization: many pairs at exactly equal distance and similarity, so the
    // lower-index tie rule decides the lists on both sides.
    let (n, c, h, w) = (240, 2, 2, 2);
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let data_v: Vec<f32> = (0..n * c * h * w)
        .map(|_| rng.random_range(-2i32..=2) as f32)
        .collect();
    let raw: Vec<i64> = (0..n).map(|_| rng.random_range(0..5)).collect();
    let data = dataset(
        Latents::from_vec(c, h, w, data_v),
        Some(Labels::new(raw)),
        None,
    );
    check_lnc_against_oracle(&data, None, Normalize::None, 7, "l2", "flatten", true);
    check_lnc_against_oracle(&data, None, Normalize::None, 5, "cosine", "flatten", true);
}

#[test]
fn lnc_matches_oracle_l2_pooled_no_masks() {
    let (lat, labels) = clustered(400, 6, 2, 2, 20, 0.8, 4);
    let data = dataset(lat, Some(labels), None);
    check_lnc_against_oracle(&data, None, Normalize::Channel, 10, "l2", "pooled", false);
}

#[test]
fn fast_knn_equals_direct_scan() {
    // Random data spanning several query and reference blocks, then data made mostly of duplicates
    // (every point within rounding of many others, so the f64 rescan path is taken).
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let normal = Normal::new(0.0f64, 1.0).unwrap();
    let (n, d) = (2600, 5);
    let random: Vec<f64> = (0..n * d).map(|_| normal.sample(&mut rng)).collect();
    let base: Vec<f64> = (0..40 * d)
        .map(|_| rng.random_range(-3i32..=3) as f64)
        .collect();
    let dups: Vec<f64> = (0..n)
        .flat_map(|_| {
            let b = rng.random_range(0..40);
            base[b * d..(b + 1) * d].to_vec()
        })
        .collect();
    for (name, x) in [("random", &random), ("duplicates", &dups)] {
        for metric in [KnnMetric::Cosine, KnnMetric::L2] {
            for k in [1, 10] {
                let fast = Threads(2)
                    .install(|| knn(x, n, d, k, metric, &Silent))
                    .unwrap();
                let slow = Threads(2).install(|| knn_scan(x, n, d, k, metric)).unwrap();
                assert_eq!(fast.index, slow.index, "{name} {metric:?} k={k}");
                let bits = |v: &[f64]| v.iter().map(|s| s.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&fast.score), bits(&slow.score));
                if name == "duplicates" {
                    assert!(fast.rescans > 0, "the duplicate set should need rescans");
                }
            }
        }
    }
    // f32 input, zero vectors (cosine similarity 0 to everything).
    let mut x32: Vec<f32> = random.iter().take(300 * d).map(|&v| v as f32).collect();
    x32[5 * d..6 * d].iter_mut().for_each(|v| *v = 0.0);
    let fast = knn(&x32, 300, d, 8, KnnMetric::Cosine, &Silent);
    let slow = knn_scan(&x32, 300, d, 8, KnnMetric::Cosine);
    assert_eq!((&fast.index, &fast.score), (&slow.index, &slow.score));
    assert_eq!(slow.scores_of(5), &[0.0; 8]);
    assert_eq!(slow.of(5), &[0, 1, 2, 3, 4, 6, 7, 8]);
}

#[test]
fn lnc_is_thread_and_order_invariant() {
    let (n, c, h, w) = (500, 8, 4, 4);
    let (lat, labels) = clustered(n, c, h, w, 25, 0.7, 8);
    let px = pixel_masks(n, 4, 4, 9);
    let masks = Masks::pool(&px, n, 4, 4, h, w);
    let data = dataset(lat.clone(), Some(labels.clone()), Some(masks.clone()));
    let r1 = report(&data, "lnc", Params::default(), Normalize::Channel, 1);
    let r2 = report(&data, "lnc", Params::default(), Normalize::Channel, 2);
    assert_eq!(r1.metrics, r2.metrics);
    assert_eq!(r1.details, r2.details);
    // Reversed and interleaved order: the same neighbour sets, so the same value and per-class means.
    let perm: Vec<usize> = (0..n).rev().map(|i| (i * 37) % n).collect();
    let mut seen = perm.clone();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), n, "perm is a permutation");
    let pdata = dataset(
        lat.select(&perm),
        Some(labels.select(&perm)),
        Some(masks.select(&perm)),
    );
    let rp = report(&pdata, "lnc", Params::default(), Normalize::Channel, 2);
    assert_eq!(metric(&rp, "lnc"), metric(&r1, "lnc"));
    assert_eq!(
        rp.details["lnc"]["per_class"],
        r1.details["lnc"]["per_class"]
    );
    assert!(metric(&r1, "lnc") > 0.3, "clusters should be visible");
}

#[test]
fn lnc_degenerate_inputs_warn() {
    let (lat, _) = clustered(6, 2, 2, 2, 2, 1.0, 1);
    let labels = Labels::new(vec![0, 0, 1, 1, 1, 2]);
    let data = dataset(lat.clone(), Some(labels), None);
    let r = report(
        &data,
        "lnc",
        params(&[("lnc_k", ParamValue::Int(10))]),
        Normalize::Channel,
        1,
    );
    assert_eq!(r.details["lnc"]["k"], json!(5));
    assert!(
        r.warnings
            .iter()
            .any(|w| w == "lnc: lnc_k = 10 is not below the number of latents (6); used k = 5"),
        "{:?}",
        r.warnings
    );
    assert!(r.warnings.iter().any(
        |w| w == "lnc: 1 of 3 classes have a single latent, which has no same-class neighbour"
    ));
    // With k = n - 1 every image sees all others: lnc = sum_c n_c (n_c - 1) / (n (n - 1)).
    assert_eq!(metric(&r, "lnc"), (2.0 + 6.0) / 30.0);
    // A single latent: no value, a warning.
    let one = dataset(lat.select(&[0]), Some(Labels::new(vec![4])), None);
    let r = report(&one, "lnc", Params::default(), Normalize::None, 1);
    assert!(!r.metrics.contains_key("lnc"));
    assert!(
        r.warnings
            .contains(&"lnc: not computed, it needs at least 2 latents, found 1".to_string())
    );
    // Masks that cover nothing fall back to all tokens, with a warning.
    let masks = Masks::pool(&[false; 6 * 4], 6, 2, 2, 2, 2);
    let data = dataset(lat, Some(Labels::new(vec![0, 0, 1, 1, 2, 2])), Some(masks));
    let r = report(
        &data,
        "lnc",
        params(&[("lnc_k", ParamValue::Int(2))]),
        Normalize::Channel,
        1,
    );
    assert!(r.warnings.iter().any(|w| w == "lnc: 6 of 6 images have no foreground token; their features are means over all tokens"));
}

/// Runs the probe as the library does (report, then the same split and fit through the public API)
/// and compares with scikit-learn on the same split.
///
/// Tolerances: accuracy within one test sample (a test point within rounding of a decision boundary
/// may go either way); coefficients within 1e-3 of the largest |coefficient| in max norm. Both solvers
/// stop near gradient norm 1e-6 (ours: Euclidean norm <= 1e-6; scikit-learn here: max-norm <= 1e-10),
/// and the objective's curvature is at least alpha = 1e-4 along W, so |dW| <= |grad| / alpha ~ 1e-2 at
/// worst; in practice it is far smaller (printed).
fn check_probe_against_oracle(data: &Dataset, feat: &str) {
    let p = params(&[("probe_features", ParamValue::Str(feat.into()))]);
    let r = report(data, "linear_probe_acc", p, Normalize::Channel, 2);
    let acc = metric(&r, "linear_probe_acc");
    let det = &r.details["linear_probe_acc"];

    let labels = data.labels.as_ref().unwrap();
    let split = probe::stratified_split(labels, 7);
    let (a, _) = Affine::fit(&Normalize::Channel, &data.latents, None).unwrap();
    let z = Normalized {
        latents: &data.latents,
        affine: &a,
    };
    let kind = features::FeatureKind::parse(feat).unwrap();
    let (x, d) = probe::probe_features(z, kind).unwrap();
    let ys = |idx: &[usize]| idx.iter().map(|&i| labels.raw[i]).collect::<Vec<_>>();
    let res = Threads(2)
        .install(|| {
            probe::linear_probe(
                &probe::gather_rows(&x, d, &split.train),
                &ys(&split.train),
                &probe::gather_rows(&x, d, &split.test),
                &ys(&split.test),
                d,
                1e-4,
                500,
                &Silent,
            )
        })
        .unwrap()
        .unwrap();
    assert_eq!(res.acc, acc);
    assert_eq!(det["n_train"], json!(split.train.len()));
    assert_eq!(det["n_test"], json!(split.test.len()));
    assert_eq!(det["converged"], json!(true), "{det}");
    assert!(det["final_grad_norm"].as_f64().unwrap() <= 1e-6);

    let dir = tempfile::tempdir().unwrap();
    write_normalized(dir.path(), data, &Normalize::Channel);
    let idx = |v: &[usize]| i64_array(v.iter().map(|&i| i as i64).collect());
    write_npy(&dir.path().join("train.npy"), &idx(&split.train)).unwrap();
    write_npy(&dir.path().join("test.npy"), &idx(&split.test)).unwrap();
    let o = oracle_in(
        dir.path(),
        "probe",
        json!({"alpha": 1e-4, "features": feat}),
    );

    let n_test = split.test.len() as f64;
    let sk_acc = o["acc"].as_f64().unwrap();
    assert!(
        (acc - sk_acc).abs() <= 1.0 / n_test + 1e-12,
        "ours {acc}, scikit-learn {sk_acc}"
    );
    let sk_train = o["train_acc"].as_f64().unwrap();
    let train_acc = det["train_acc"].as_f64().unwrap();
    assert!((train_acc - sk_train).abs() <= 1.0 / split.train.len() as f64 + 1e-12);
    let classes: Vec<i64> = serde_json::from_value(o["classes"].clone()).unwrap();
    assert_eq!(classes, res.classes);
    let coef: Vec<Vec<f64>> = serde_json::from_value(o["coef"].clone()).unwrap();
    let intercept: Vec<f64> = serde_json::from_value(o["intercept"].clone()).unwrap();
    let (mut worst, mut scale) = (0f64, 0f64);
    for (k, row) in coef.iter().enumerate() {
        for (j, &c) in row.iter().enumerate() {
            worst = worst.max((res.fit.coef(k, j) - c).abs());
            scale = scale.max(c.abs());
        }
    }
    let worst_b = intercept
        .iter()
        .enumerate()
        .map(|(k, &b)| (res.fit.intercept(k) - b).abs())
        .fold(0.0, f64::max);
    eprintln!(
        "probe {feat}: acc {acc} vs {sk_acc}; max |dW| {worst:.2e} (max |W| {scale:.2e}), max |db| {worst_b:.2e}; iterations {} vs scikit-learn {}",
        res.fit.iterations, o["n_iter"]
    );
    assert!(
        worst <= 1e-3 * scale,
        "coefficients differ by {worst} (scale {scale})"
    );
    assert!(
        worst_b <= 1e-3 * scale.max(1.0),
        "intercepts differ by {worst_b}"
    );
}

#[test]
fn probe_matches_sklearn_pooled() {
    let (lat, labels) = clustered(600, 16, 2, 2, 10, 0.35, 11);
    check_probe_against_oracle(&dataset(lat, Some(labels), None), "pooled");
}

#[test]
fn probe_matches_sklearn_flatten() {
    let (lat, labels) = clustered(360, 4, 2, 3, 6, 0.25, 12);
    check_probe_against_oracle(&dataset(lat, Some(labels), None), "flatten");
}

#[test]
fn probe_is_thread_invariant() {
    let (lat, labels) = clustered(700, 8, 2, 2, 30, 0.5, 13);
    let data = dataset(lat, Some(labels), None);
    let r1 = report(
        &data,
        "linear_probe_acc",
        Params::default(),
        Normalize::Channel,
        1,
    );
    let r2 = report(
        &data,
        "linear_probe_acc",
        Params::default(),
        Normalize::Channel,
        2,
    );
    assert_eq!(r1.metrics, r2.metrics);
    assert_eq!(r1.details, r2.details);
}

#[test]
fn probe_degenerate_inputs_warn() {
    let (lat, _) = clustered(6, 2, 2, 2, 2, 1.0, 1);
    // Every class a singleton: no test part.
    let data = dataset(lat.clone(), Some(Labels::new(vec![0, 1, 2, 3, 4, 5])), None);
    let r = report(
        &data,
        "linear_probe_acc",
        Params::default(),
        Normalize::Channel,
        1,
    );
    assert!(!r.metrics.contains_key("linear_probe_acc"));
    assert!(
        r.warnings.contains(
            &"linear_probe_acc: 6 classes have a single latent; it is used for training only"
                .to_string()
        )
    );
    assert!(r.warnings.contains(&"linear_probe_acc: not computed, no class has 2 or more latents, so the test part is empty".to_string()));
    // One class: nothing to separate.
    let data = dataset(lat.clone(), Some(Labels::new(vec![3; 6])), None);
    let r = report(
        &data,
        "linear_probe_acc",
        Params::default(),
        Normalize::Channel,
        1,
    );
    assert!(r.warnings.contains(
        &"linear_probe_acc: not computed, the training part has a single class".to_string()
    ));
    // An iteration cap that is too small is reported, and the value is still given.
    let (lat, labels) = clustered(200, 4, 2, 2, 5, 0.3, 2);
    let data = dataset(lat, Some(labels), None);
    let r = report(
        &data,
        "linear_probe_acc",
        params(&[("probe_max_iter", ParamValue::Int(3))]),
        Normalize::Channel,
        1,
    );
    assert!(r.metrics.contains_key("linear_probe_acc"));
    assert_eq!(r.details["linear_probe_acc"]["iterations"], json!(3));
    assert_eq!(r.details["linear_probe_acc"]["converged"], json!(false));
    assert!(
        r.warnings.iter().any(|w| w
            .starts_with("linear_probe_acc: L-BFGS did not reach gradient norm 1e-6 (final ")
            && w.ends_with(
                "stopped at probe_max_iter = 3 iterations; raise --probe-max-iter to converge"
            )),
        "{:?}",
        r.warnings
    );
}

#[test]
fn probe_with_a_separate_training_set() {
    let (lat, labels) = clustered(400, 8, 2, 2, 8, 0.5, 21);
    let train_idx: Vec<usize> = (0..300).collect();
    let test_idx: Vec<usize> = (300..400).collect();
    let train = dataset(
        lat.select(&train_idx),
        Some(labels.select(&train_idx)),
        None,
    );
    let test = dataset(lat.select(&test_idx), Some(labels.select(&test_idx)), None);
    let (a, _) = Affine::fit(&Normalize::Channel, &test.latents, None).unwrap();
    let ctx = Context {
        data: &test,
        z: Normalized {
            latents: &test.latents,
            affine: &a,
        },
        seed: 0,
        threads: Threads(2),
        progress: &Silent,
        wanted: &["linear_probe_acc"],
    };
    let p = params(&[
        ("probe_alpha", ParamValue::Float(1e-4)),
        ("probe_features", ParamValue::Str("pooled".into())),
        ("probe_max_iter", ParamValue::Int(500)),
        ("probe_train", ParamValue::Path(Some("train.npz".into()))),
    ]);
    let out = Threads(2)
        .install(|| {
            diffusability::metrics::separability::probe_with(
                &ctx,
                test.labels.as_ref().unwrap(),
                Some(("train.npz", &train)),
                &p,
            )
        })
        .unwrap()
        .unwrap();
    let det = &out.details["linear_probe_acc"];
    assert_eq!(det["n_train"], json!(300));
    assert_eq!(det["n_test"], json!(100));
    assert_eq!(det["split"], json!("probe_train"));
    // The same as fitting the library's probe on those two feature sets directly.
    let feats = |ds: &Dataset| {
        probe::probe_features(
            Normalized {
                latents: &ds.latents,
                affine: &a,
            },
            features::FeatureKind::Pooled,
        )
        .unwrap()
        .0
    };
    let direct = Threads(2)
        .install(|| {
            probe::linear_probe(
                &feats(&train),
                &train.labels.as_ref().unwrap().raw,
                &feats(&test),
                &test.labels.as_ref().unwrap().raw,
                8,
                1e-4,
                500,
                &Silent,
            )
        })
        .unwrap()
        .unwrap();
    assert_eq!(out.metrics, vec![("linear_probe_acc", direct.acc)]);
    assert!(direct.acc > 0.5, "{}", direct.acc);

    // A training set of another latent shape is an input error naming the file.
    let other = dataset(
        Latents::from_vec(4, 2, 2, vec![0.0; 10 * 16]),
        Some(Labels::new(vec![0; 10])),
        None,
    );
    let e = diffusability::metrics::separability::probe_with(
        &ctx,
        test.labels.as_ref().unwrap(),
        Some(("other.npz", &other)),
        &p,
    )
    .unwrap_err();
    assert_eq!(
        e.message,
        "other.npz: has latents of shape (C, H, W) = (4, 2, 2), expected (8, 2, 2) as in the input (--probe-train)"
    );
    let unlabelled = dataset(lat.select(&train_idx), None, None);
    let e = diffusability::metrics::separability::probe_with(
        &ctx,
        test.labels.as_ref().unwrap(),
        Some(("t.npy", &unlabelled)),
        &p,
    )
    .unwrap_err();
    assert_eq!(
        e.message,
        "t.npy: has no labels; --probe-train needs a labelled training set (a `labels` key)"
    );
}
