//! Latent smoothness (sec, local_corr) and the orthonormal DCT: oracle values, closed forms,
//! invariants and degenerate inputs.

use crate::common::{oracle, rel};
use crate::spatial::smooth_latents;
use diffusability::data::{Dataset, Latents, Normalize, Source};
use diffusability::io::{RawArray, write_npy};
use diffusability::metrics::{ParamValue, Params, RunOptions, Selection, run};
use diffusability::par::Threads;
use diffusability::progress::Silent;
use diffusability::report::Report;
use diffusability::stats::dct::Dct2d;
use diffusability::stats::rng::stream;
use rand_distr::{Distribution, Normal, StandardNormal};

fn dataset(latents: Vec<f32>, c: usize, h: usize, w: usize) -> Dataset {
    Dataset {
        latents: Latents::from_vec(c, h, w, latents),
        labels: None,
        masks: None,
        source: Source::default(),
    }
}

fn report(data: &Dataset, metrics: &[&str], ratio: Option<f64>, threads: usize) -> Report {
    let mut overrides = Params::default();
    if let Some(r) = ratio {
        overrides.0.insert("sec_ratio", ParamValue::Float(r));
    }
    let opts = RunOptions {
        selection: Selection::List(metrics.iter().map(|s| s.to_string()).collect()),
        overrides,
        normalize: Normalize::Channel,
        stats: None,
        seed: 0,
        threads: Threads(threads),
    };
    run(data, &opts, &Silent).unwrap()
}

fn metric(r: &Report, k: &str) -> f64 {
    r.metrics
        .get(k)
        .and_then(|v| v.as_f64())
        .unwrap_or_else(|| panic!("{k} missing; warnings: {:?}", r.warnings))
}

fn write(dir: &std::path::Path, name: &str, shape: Vec<usize>, v: Vec<f32>) -> String {
    let p = dir.join(name);
    write_npy(&p, &RawArray::f32(shape, v)).unwrap();
    p.to_str().unwrap().to_string()
}

/// Our DCT against scipy.fft.dctn(norm="ortho") on the same f64 maps. Both are O(log n)-deep float64
/// transforms of values of size ~1, so they agree to ~1e-15; the bound asked of the DCT is 1e-7.
#[test]
fn dct_matches_scipy() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = stream(0, "test-dct");
    for (h, w) in [(16, 16), (5, 7), (12, 1)] {
        let x: Vec<f64> = (0..h * w)
            .map(|_| StandardNormal.sample(&mut rng))
            .collect();
        let p = dir.path().join(format!("map{h}x{w}.npy"));
        write_npy(&p, &RawArray::f64(vec![h, w], x.clone())).unwrap();
        let o = oracle("smoothness.py", &["dct", p.to_str().unwrap()]);
        let dct = Dct2d::new(h, w);
        let mut f = x;
        let mut scratch = vec![0.0; dct.scratch_len()];
        dct.forward(&mut f, &mut scratch);
        for (a, b) in f.iter().zip(o["coef"].as_array().unwrap()) {
            let b = b.as_f64().unwrap();
            assert!((a - b).abs() < 1e-12, "{h}x{w}: {a} vs {b}");
        }
    }
}

/// SEC and its profile against the oracle on smooth, non-square latents, at two ratios. Our DCT runs
/// in f64 on the f32 normalized latents; the oracle normalizes in f64. The f32 rounding of the latents
/// (2^-24 relative, independent across values) moves energy shares by ~1e-9, well inside 1e-7.
#[test]
fn sec_matches_the_oracle() {
    let (n, c, h, w) = (40, 5, 12, 10);
    let z = smooth_latents(n, c, h, w, 11);
    let dir = tempfile::tempdir().unwrap();
    let zp = write(dir.path(), "z.npy", vec![n, c, h, w], z.clone());
    let data = dataset(z, c, h, w);
    for ratio in [0.5, 0.2] {
        let r = report(&data, &["sec"], Some(ratio), 2);
        let o = oracle(
            "smoothness.py",
            &["sec", &zp, "--ratio", &ratio.to_string()],
        );
        let (a, b) = (metric(&r, "sec"), o["sec"].as_f64().unwrap());
        assert!(rel(a, b) < 1e-7, "ratio {ratio}: {a} vs {b}");
        let d = &r.details["sec"];
        assert_eq!(d["tau"], o["tau"]);
        assert_eq!(d["maps"], n * c);
        let (p, q) = (
            d["profile"].as_array().unwrap(),
            o["profile"].as_array().unwrap(),
        );
        assert_eq!(p.len(), h + w - 1);
        for (a, b) in p.iter().zip(q) {
            let (a, b) = (a.as_f64().unwrap(), b.as_f64().unwrap());
            assert!((a - b).abs() < 1e-7 * b.abs().max(1e-3), "{a} vs {b}");
        }
    }
}

/// Maps constant within each image and channel have all their energy in F(0, 0): SEC is 0.
#[test]
fn sec_of_constant_maps_is_zero() {
    let (n, c, h, w) = (6, 3, 16, 16);
    let mut z = Vec::with_capacity(n * c * h * w);
    for i in 0..n * c {
        z.extend(std::iter::repeat_n((i as f32 * 0.7).sin() * 3.0, h * w));
    }
    let r = report(&dataset(z, c, h, w), &["sec"], None, 1);
    assert!(metric(&r, "sec") < 1e-20, "{}", metric(&r, "sec"));
    assert!((r.details["sec"]["profile"][0].as_f64().unwrap() - 1.0).abs() < 1e-12);

    // All-zero latents have no energy: not reported, with a warning, never NaN.
    let r = report(
        &dataset(vec![0.0; n * c * h * w], c, h, w),
        &["sec"],
        None,
        1,
    );
    assert!(!r.metrics.contains_key("sec"));
    assert!(
        r.warnings
            .iter()
            .any(|w| w.starts_with("sec: not reported"))
    );
}

/// White noise: the orthonormal DCT keeps it white, so every E(u, v) estimates the same variance and
/// SEC estimates the share of coefficients above the threshold, 120/256 on 16x16 at r = 0.5
/// (u + v > 15). Each E(u, v) is a mean of M = N*C squared N(0, 1) coefficients (relative variance
/// 2/M); by the delta method sd(SEC) = p(1-p) sqrt(2/M (1/120 + 1/136)) = 1.1e-3 for M = 1600. The
/// test allows 5 sd.
#[test]
fn sec_of_white_noise_is_the_share_of_coefficients() {
    let (n, c, h, w) = (200, 8, 16, 16);
    let mut rng = stream(1, "test-white-noise");
    let z: Vec<f32> = (0..n * c * h * w)
        .map(|_| Normal::new(0.0, 1.0).unwrap().sample(&mut rng))
        .collect();
    let r = report(&dataset(z, c, h, w), &["sec"], None, 2);
    let p = 120.0 / 256.0;
    let m = (n * c) as f64;
    let sd = p * (1.0 - p) * (2.0 / m * (1.0 / 120.0 + 1.0 / 136.0)).sqrt();
    let sec = metric(&r, "sec");
    assert!((sec - p).abs() < 5.0 * sd, "{sec} vs {p} (sd {sd})");
}

/// The SSVAE statistic: f64 arithmetic on f32 normalized latents against the oracle's f64; the f32
/// rounding of the latents (2^-24) bounds the difference far below 1e-6 relative.
#[test]
fn local_corr_matches_the_oracle() {
    let (n, c, h, w) = (40, 6, 8, 12);
    let z = smooth_latents(n, c, h, w, 12);
    let dir = tempfile::tempdir().unwrap();
    let zp = write(dir.path(), "z.npy", vec![n, c, h, w], z.clone());
    let r = report(&dataset(z, c, h, w), &["local_corr"], None, 2);
    let o = oracle("smoothness.py", &["local_corr", &zp]);
    let (a, b) = (metric(&r, "local_corr"), o["local_corr"].as_f64().unwrap());
    assert!(rel(a, b) < 1e-6, "{a} vs {b}");
    assert_eq!(r.details["local_corr"]["windows_per_image"], 24);

    // An odd grid does not split into 2x2 windows (SSVAE asserts): not reported, with a warning.
    let (h, w) = (7, 8);
    let r = report(
        &dataset(smooth_latents(4, c, h, w, 13), c, h, w),
        &["local_corr"],
        None,
        1,
    );
    assert!(!r.metrics.contains_key("local_corr"));
    assert!(r.warnings.contains(
        &"local_corr: not reported, a 7x8 latent grid does not split into 2x2 windows".to_string()
    ));
}

#[test]
fn invariant_to_sample_order_and_threads() {
    let (n, c, h, w) = (70, 4, 8, 6);
    let z = smooth_latents(n, c, h, w, 14);
    let keys = ["sec", "local_corr"];
    let data = dataset(z.clone(), c, h, w);
    let one = report(&data, &keys, None, 1);
    let two = report(&data, &keys, None, 2);
    assert_eq!(
        serde_json::to_string(&one.metrics).unwrap(),
        serde_json::to_string(&two.metrics).unwrap()
    );
    assert_eq!(
        serde_json::to_string(&one.details).unwrap(),
        serde_json::to_string(&two.details).unwrap()
    );
    let d = c * h * w;
    let mut zp = Vec::with_capacity(n * d);
    for i in (0..n).rev() {
        zp.extend_from_slice(&z[i * d..(i + 1) * d]);
    }
    let p = report(&dataset(zp, c, h, w), &keys, None, 2);
    for k in keys {
        let (a, b) = (metric(&p, k), metric(&one, k));
        assert!(rel(a, b) < 1e-12, "{k}: {a} vs {b}");
    }
}
