//! The iREPA spatial metrics (lds, cds, srss, rmsc): oracle values, a closed form, invariants and
//! degenerate inputs.

use crate::common::{oracle, rel};
use diffusability::data::{Dataset, Latents, Masks, Normalize, Source};
use diffusability::io::{ArrayData, RawArray, write_npy};
use diffusability::metrics::{ParamValue, Params, RunOptions, Selection, run};
use diffusability::par::Threads;
use diffusability::progress::Silent;
use diffusability::report::Report;
use diffusability::stats::rng::stream;
use rand::Rng;
use rand_distr::{Distribution, Normal};

/// Spatially smooth latents: per image a few random plane waves per channel, a wave shared by all
/// channels (so tokens correlate across channels), and white noise.
pub fn smooth_latents(n: usize, c: usize, h: usize, w: usize, seed: u64) -> Vec<f32> {
    let mut rng = stream(seed, "test-smooth-latents");
    let noise = Normal::new(0.0, 0.3).unwrap();
    let mut out = Vec::with_capacity(n * c * h * w);
    for _ in 0..n {
        let shared: (f64, f64, f64) = (
            rng.random_range(0.1..0.6),
            rng.random_range(0.1..0.6),
            rng.random_range(0.0..6.3),
        );
        for ch in 0..c {
            let waves: Vec<(f64, f64, f64, f64)> = (0..3)
                .map(|_| {
                    (
                        rng.random_range(-0.8..0.8),
                        rng.random_range(-0.8..0.8),
                        rng.random_range(0.0..6.3),
                        rng.random_range(0.3..1.5),
                    )
                })
                .collect();
            let offset = ch as f64 * 0.2 - 0.4;
            for y in 0..h {
                for x in 0..w {
                    let (yf, xf) = (y as f64, x as f64);
                    let mut v = offset + (shared.0 * yf + shared.1 * xf + shared.2).cos();
                    for &(a, b, p, amp) in &waves {
                        v += amp * (a * yf + b * xf + p).sin();
                    }
                    out.push((v + noise.sample(&mut rng)) as f32);
                }
            }
        }
    }
    out
}

/// Pixel masks at twice the latent resolution: mostly random rectangles of varied size, so that some
/// images have too little foreground or background; image 3 pools to a token checkerboard (no anchor
/// has a foreground neighbour).
fn pixel_masks(n: usize, h: usize, w: usize, seed: u64) -> Vec<bool> {
    let mut rng = stream(seed, "test-masks");
    let (mh, mw) = (2 * h, 2 * w);
    let mut px = vec![false; n * mh * mw];
    for i in 0..n {
        let m = &mut px[i * mh * mw..(i + 1) * mh * mw];
        if i == 3 {
            for y in 0..h {
                for x in 0..w {
                    if (x + y) % 2 == 0 {
                        m[(2 * y + 1) * mw + 2 * x] = true;
                    }
                }
            }
            continue;
        }
        let hh = rng.random_range(1..=mh);
        let ww = rng.random_range(1..=mw);
        let y0 = rng.random_range(0..=mh - hh);
        let x0 = rng.random_range(0..=mw - ww);
        for y in y0..y0 + hh {
            for x in x0..x0 + ww {
                m[y * mw + x] = true;
            }
        }
    }
    px
}

fn dataset(latents: Vec<f32>, c: usize, h: usize, w: usize, masks: Option<Masks>) -> Dataset {
    Dataset {
        latents: Latents::from_vec(c, h, w, latents),
        labels: None,
        masks,
        source: Source::default(),
    }
}

fn report(
    data: &Dataset,
    metrics: &[&str],
    params: &[(&'static str, i64)],
    threads: usize,
) -> Report {
    report_with(data, metrics, params, threads, Normalize::Channel)
}

fn report_with(
    data: &Dataset,
    metrics: &[&str],
    params: &[(&'static str, i64)],
    threads: usize,
    normalize: Normalize,
) -> Report {
    let mut overrides = Params::default();
    for &(k, v) in params {
        overrides.0.insert(k, ParamValue::Int(v));
    }
    let opts = RunOptions {
        selection: Selection::List(metrics.iter().map(|s| s.to_string()).collect()),
        overrides,
        normalize,
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

/// Gram-based values agree with the float64 oracle to 1e-5 relative: our tokens are f32 (normalized
/// latents, unit tokens and the f32 GEMM each round at 2^-24 relative), so each cosine is off by at
/// most ~C * 6e-8 < 1e-6 here, and the metrics, averages of many cosines of size 0.05-1, by far less;
/// 1e-5 leaves a margin of 10 or more.
const GRAM_TOL: f64 = 1e-5;

#[test]
fn values_match_the_oracle() {
    let (n, c, h, w) = (70, 6, 10, 12);
    let z = smooth_latents(n, c, h, w, 1);
    let px = pixel_masks(n, h, w, 2);
    let masks = Masks::pool(&px, n, 2 * h, 2 * w, h, w);
    let data = dataset(z.clone(), c, h, w, Some(masks));

    let dir = tempfile::tempdir().unwrap();
    let zp = dir.path().join("z.npy");
    let mp = dir.path().join("m.npy");
    write_npy(&zp, &RawArray::f32(vec![n, c, h, w], z)).unwrap();
    let bytes: Vec<u8> = px.iter().map(|&b| b as u8).collect();
    write_npy(
        &mp,
        &RawArray::new(vec![n, 2 * h, 2 * w], ArrayData::U8(bytes)),
    )
    .unwrap();

    for params in [
        vec![],
        vec![
            ("lds_far", 3),
            ("cds_dmax", 5),
            ("srss_dpos", 2),
            ("srss_dneg", 4),
        ],
    ] {
        let r = report(&data, &["lds", "cds", "srss", "rmsc"], &params, 2);
        let get = |k: &str| params.iter().find(|p| p.0 == k).map(|p| p.1);
        let args = [
            zp.to_str().unwrap().to_string(),
            "--masks".into(),
            mp.to_str().unwrap().to_string(),
            "--lds-far".into(),
            get("lds_far").unwrap_or(6).to_string(),
            "--cds-dmax".into(),
            get("cds_dmax").unwrap_or(8).to_string(),
            "--srss-dpos".into(),
            get("srss_dpos").unwrap_or(1).to_string(),
            "--srss-dneg".into(),
            get("srss_dneg").unwrap_or(6).to_string(),
        ];
        let args: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
        let o = oracle("spatial.py", &args);
        let want = |k: &str| o[k].as_f64().unwrap();
        for k in ["lds", "cds", "rmsc"] {
            let (a, b) = (metric(&r, k), want(k));
            assert!(rel(a, b) < GRAM_TOL, "{k} {params:?}: {a} vs oracle {b}");
        }
        let lds = &r.details["lds"];
        assert!(rel(lds["local"].as_f64().unwrap(), want("lds_local")) < GRAM_TOL);
        assert!(rel(lds["far"].as_f64().unwrap(), want("lds_far")) < GRAM_TOL);
        let cds = &r.details["cds"];
        assert_eq!(cds["d"], o["cds_d"]);
        for (a, b) in cds["s_d"]
            .as_array()
            .unwrap()
            .iter()
            .zip(o["cds_s_d"].as_array().unwrap())
        {
            assert!(rel(a.as_f64().unwrap(), b.as_f64().unwrap()) < GRAM_TOL);
        }

        let os = &o["srss"];
        let (a, b) = (metric(&r, "srss"), os["srss"].as_f64().unwrap());
        assert!(rel(a, b) < GRAM_TOL, "srss {params:?}: {a} vs oracle {b}");
        let d = &r.details["srss"];
        assert_eq!(d["images_used"], os["images_used"]);
        assert_eq!(d["min_tokens"], os["min_tokens"]);
        for k in ["few_foreground", "few_background", "no_valid_anchor"] {
            assert_eq!(d["left_out"][k], os[k], "{k}");
        }
        // The data exercises every reason an image is left out (the checkerboard image has no valid
        // anchor only while positives are direct neighbours), and the warning counts them.
        let reasons: &[&str] = if params.is_empty() {
            &["few_foreground", "few_background", "no_valid_anchor"]
        } else {
            &["few_foreground", "few_background"]
        };
        for &k in reasons {
            assert!(d["left_out"][k].as_u64().unwrap() > 0, "{k}: {d}");
        }
        assert!(
            r.warnings
                .iter()
                .any(|w| w.starts_with("srss: ") && w.contains("images left out")),
            "{:?}",
            r.warnings
        );
    }
}

/// Foreground tokens all equal and background tokens orthogonal to them give `pos_i = 1` and
/// `neg_i = 0` for every anchor, so SRSS is exactly 1 -- but only if that still holds after the
/// report's channel normalization, which centres every channel over the whole set. With foreground
/// `e1` and background `e2` in every image, centring turns them into opposite vectors and the
/// definition gives 2. So image B negates image A (foreground `-e1`, background `-b`), every channel
/// mean is exactly 0, normalization only rescales channels, the foreground stays `+-e1` and the
/// background stays in channels 1..C: cosines are exactly 1 and 0 in floating point too.
#[test]
fn srss_is_one_for_identical_foreground_and_orthogonal_background() {
    let (c, h, w) = (3, 8, 8);
    let s = h * w;
    let fg: Vec<bool> = (0..s).map(|i| i % w < 4).collect();
    let mut rng = stream(7, "srss-closed-form");
    let mut img = vec![0.0f32; c * s];
    for i in 0..s {
        if fg[i] {
            img[i] = 1.0;
        } else {
            img[s + i] = rng.random_range(0.5..2.0);
            img[2 * s + i] = rng.random_range(-2.0..2.0);
        }
    }
    let neg: Vec<f32> = img.iter().map(|v| -v).collect();
    let mut z = img.clone();
    z.extend_from_slice(&neg);
    let flags: Vec<bool> = fg.iter().chain(fg.iter()).copied().collect();
    let masks = Masks::pool(&flags, 2, h, w, h, w);
    let data = dataset(z, c, h, w, Some(masks.clone()));
    let r = report(&data, &["srss"], &[], 1);
    assert_eq!(metric(&r, "srss"), 1.0);
    assert_eq!(r.details["srss"]["images_used"], 2);

    // The trap: foreground e1 and background e2 in both images. Raw, SRSS is 1; after centring
    // the background is the foreground's opposite and SRSS is 1 - (-1) = 2.
    let mut same = vec![0.0f32; 2 * c * s];
    for k in 0..2 {
        for i in 0..s {
            let ch = if fg[i] { 0 } else { 1 };
            same[k * c * s + ch * s + i] = 1.0;
        }
    }
    let naive = dataset(same, c, h, w, Some(masks));
    let raw = report_with(&naive, &["srss"], &[], 1, Normalize::None);
    assert_eq!(metric(&raw, "srss"), 1.0);
    let centred = report(&naive, &["srss"], &[], 1);
    assert!((metric(&centred, "srss") - 2.0).abs() < 1e-6);
}

#[test]
fn invariant_to_sample_order_and_threads() {
    let (n, c, h, w) = (70, 4, 8, 8);
    let z = smooth_latents(n, c, h, w, 3);
    let px = pixel_masks(n, h, w, 4);
    let masks = Masks::pool(&px, n, 2 * h, 2 * w, h, w);
    let data = dataset(z.clone(), c, h, w, Some(masks.clone()));
    let keys = ["lds", "cds", "srss", "rmsc"];

    let one = report(&data, &keys, &[], 1);
    let two = report(&data, &keys, &[], 2);
    assert_eq!(
        serde_json::to_string(&one.metrics).unwrap(),
        serde_json::to_string(&two.metrics).unwrap()
    );
    assert_eq!(
        serde_json::to_string(&one.details).unwrap(),
        serde_json::to_string(&two.details).unwrap()
    );

    // A fixed permutation of the samples (and their masks): only the f64 summation order changes.
    let d = c * h * w;
    let perm: Vec<usize> = (0..n).map(|i| (i * 31 + 7) % n).collect();
    let mut zp = Vec::with_capacity(n * d);
    for &i in &perm {
        zp.extend_from_slice(&z[i * d..(i + 1) * d]);
    }
    let permuted = dataset(zp, c, h, w, Some(masks.select(&perm)));
    let p = report(&permuted, &keys, &[], 2);
    for k in keys {
        let (a, b) = (metric(&p, k), metric(&one, k));
        assert!(rel(a, b) < 1e-12, "{k}: {a} vs {b}");
    }
    assert_eq!(p.details["srss"], one.details["srss"]);
}

#[test]
fn masks_decide_whether_srss_runs() {
    let (n, c, h, w) = (4, 2, 8, 8);
    let data = dataset(smooth_latents(n, c, h, w, 5), c, h, w, None);
    let opts = RunOptions {
        threads: Threads(1),
        ..Default::default()
    };
    let r = run(&data, &opts, &Silent).unwrap();
    assert!(r.metrics.contains_key("lds") && r.metrics.contains_key("cds"));
    assert!(!r.metrics.contains_key("srss") && !r.metrics.contains_key("rmsc"));
    assert!(
        r.warnings
            .contains(&"srss: skipped, the input has no masks".to_string()),
        "{:?}",
        r.warnings
    );
    let explicit = RunOptions {
        selection: Selection::List(vec!["srss".into()]),
        threads: Threads(1),
        ..Default::default()
    };
    let e = run(&data, &explicit, &Silent).unwrap_err();
    assert_eq!(e.kind, diffusability::ErrorKind::Input);
    assert!(
        e.message.starts_with("metric `srss` needs masks"),
        "{}",
        e.message
    );
}

#[test]
fn degenerate_inputs_give_warnings_not_nan() {
    // A 1x1 grid: no neighbours for lds, no distance for cds (0, as iREPA), no image for srss.
    let (n, c) = (5, 3);
    let z: Vec<f32> = (0..n * c).map(|i| (i as f32 * 0.37).sin()).collect();
    let masks = Masks::pool(&vec![true; n], n, 1, 1, 1, 1);
    let data = dataset(z, c, 1, 1, Some(masks));
    let r = report(&data, &["lds", "cds", "srss"], &[], 1);
    assert!(!r.metrics.contains_key("lds") && !r.metrics.contains_key("srss"));
    assert_eq!(metric(&r, "cds"), 0.0);
    for prefix in [
        "lds: not reported, a 1x1 latent grid has no neighbouring tokens",
        "cds: a 1x1 latent grid has no token pair at distance 1..=8",
        "srss: not reported, none of the 5 images qualifies (0 with fewer than 1 foreground tokens, 5 with fewer than 1 background tokens",
    ] {
        assert!(
            r.warnings.iter().any(|w| w.starts_with(prefix)),
            "{prefix}: {:?}",
            r.warnings
        );
    }

    // A far distance beyond the grid: the distant term is 0 (iREPA), and a warning says so.
    let (n, c, h, w) = (3, 2, 4, 4);
    let data = dataset(smooth_latents(n, c, h, w, 6), c, h, w, None);
    let r = report(&data, &["lds"], &[("lds_far", 7)], 1);
    let local = r.details["lds"]["local"].as_f64().unwrap();
    assert_eq!(r.details["lds"]["far"], 0.0);
    assert!(rel(metric(&r, "lds"), local) < 1e-12);
    assert!(r.warnings.iter().any(|w| {
        w.starts_with("lds: no token pair is at distance >= 7 on a 4x4 grid (largest 6)")
    }));
}
