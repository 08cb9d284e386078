//! The synthetic generator: its samples follow the stated model, its truth matches a dense reference,
//! and it is deterministic.

use crate::common::{oracle, rel};
use diffusability::par::Threads;
use diffusability::synth::{SynthConfig, Truth, cov, generate};
use diffusability::{Error, ErrorKind};

/// Pooled within-class second moments of the samples (class means estimated, `m = N - K` degrees of
/// freedom): channel rows `C_hat = sum_n R_n R_n^T / (m S)` and token columns
/// `S_hat = sum_n R_n^T R_n / (m C)`, both row-major.
fn pooled_covariances(
    latents: &[f32],
    labels: &[i64],
    k: usize,
    c: usize,
    s: usize,
) -> (Vec<f64>, Vec<f64>) {
    let d = c * s;
    let n = labels.len();
    let mut mean = vec![0f64; k * d];
    let mut count = vec![0usize; k];
    for (i, &l) in labels.iter().enumerate() {
        count[l as usize] += 1;
        for (m, &x) in mean[l as usize * d..][..d]
            .iter_mut()
            .zip(&latents[i * d..][..d])
        {
            *m += x as f64;
        }
    }
    for (kk, &cnt) in count.iter().enumerate() {
        mean[kk * d..][..d]
            .iter_mut()
            .for_each(|m| *m /= cnt as f64);
    }
    let mut cc = vec![0f64; c * c];
    let mut ss = vec![0f64; s * s];
    let mut r = vec![0f64; d];
    for (i, &l) in labels.iter().enumerate() {
        for ((rv, &x), &m) in r
            .iter_mut()
            .zip(&latents[i * d..][..d])
            .zip(&mean[l as usize * d..][..d])
        {
            *rv = x as f64 - m;
        }
        for a in 0..c {
            for b in 0..c {
                cc[a * c + b] += (0..s).map(|t| r[a * s + t] * r[b * s + t]).sum::<f64>();
            }
        }
        for ch in 0..c {
            let row = &r[ch * s..][..s];
            for p in 0..s {
                for q in 0..s {
                    ss[p * s + q] += row[p] * row[q];
                }
            }
        }
    }
    let m = (n - k) as f64;
    cc.iter_mut().for_each(|v| *v /= m * s as f64);
    ss.iter_mut().for_each(|v| *v /= m * c as f64);
    (cc, ss)
}

/// z-scores of the upper triangle of a pooled second moment `est` of a `dim x dim` factor against its
/// expectation `scale * sigma`, where the other factor `other` (of size `odim`) was summed over.
/// The pooled scatter is Wishart over `m` independent matrix-normal draws, so by Isserlis
/// `Var(est_ij) = (sigma_ii sigma_jj + sigma_ij^2) ||other||_F^2 / (m odim^2)` exactly.
fn z_scores(
    est: &[f64],
    sigma: &[f64],
    dim: usize,
    other: &[f64],
    odim: usize,
    m: f64,
) -> Vec<f64> {
    let other_f2: f64 = other.iter().map(|v| v * v).sum();
    let scale = (0..odim).map(|i| other[i * odim + i]).sum::<f64>() / odim as f64;
    let mut z = Vec::new();
    for i in 0..dim {
        for j in i..dim {
            let sd = ((sigma[i * dim + i] * sigma[j * dim + j] + sigma[i * dim + j].powi(2))
                * other_f2
                / (m * (odim * odim) as f64))
                .sqrt();
            z.push((est[i * dim + j] - scale * sigma[i * dim + j]) / sd);
        }
    }
    z
}

fn mean_sq(z: &[f64]) -> f64 {
    z.iter().map(|v| v * v).sum::<f64>() / z.len() as f64
}

fn max_abs(z: &[f64]) -> f64 {
    z.iter().fold(0.0, |a, v| a.max(v.abs()))
}

fn big_config() -> SynthConfig {
    SynthConfig {
        classes: 5,
        per_class: 2000,
        channels: 4,
        height: 6,
        width: 6,
        corr_len: 1.5,
        anisotropy: 1.0,
        class_sep: 1.0,
        mask_factor: 0,
        seed: 3,
        ..SynthConfig::default()
    }
}

/// N = 10,000 samples (5 classes x 2000, C = 4, 6 x 6 tokens): the pooled within-class covariances
/// match `Sigma_C * tr(Sigma_S)/S` and `Sigma_S * tr(Sigma_C)/C` entry by entry. Tolerances from the
/// exact sampling variance (see `z_scores`): every |z| < 5.5 (false alarm under 1e-4 over the 676
/// entries). For the 666 token entries the mean z^2, whose expectation is exactly 1, must lie in
/// [0.6, 1.7]: the entries are strongly correlated, so it spreads more than chi^2_666 / 666; over
/// seeds 0..11 it ranged 0.89..1.34. The check has power: a kernel with corr_len 1.4 instead of 1.5
/// gives 23..31 over seeds 0..5 (asserted > 5), white noise about 3500.
#[test]
fn pooled_covariances_match_the_factors() {
    let cfg = big_config();
    let syn = generate(&cfg).unwrap();
    let (c, s, k) = (cfg.channels, cfg.height * cfg.width, cfg.classes);
    let m = (cfg.n() - k) as f64;
    let (cc, ss) = pooled_covariances(&syn.latents, &syn.labels, k, c, s);

    let zc = z_scores(&cc, &syn.sigma_c, c, &syn.sigma_s, s, m);
    let zs = z_scores(&ss, &syn.sigma_s, s, &syn.sigma_c, c, m);
    println!(
        "channel: max|z| {:.2} mean z^2 {:.3}; token: max|z| {:.2} mean z^2 {:.3}",
        max_abs(&zc),
        mean_sq(&zc),
        max_abs(&zs),
        mean_sq(&zs)
    );
    assert!(
        max_abs(&zc) < 5.5,
        "channel covariance off: max |z| {}",
        max_abs(&zc)
    );
    assert!(
        max_abs(&zs) < 5.5,
        "token covariance off: max |z| {}",
        max_abs(&zs)
    );
    let ms = mean_sq(&zs);
    assert!((0.6..1.7).contains(&ms), "token covariance: mean z^2 {ms}");

    // The statistic has power: a slightly shorter correlation length is rejected.
    let near = cov::spatial_covariance(cfg.height, cfg.width, 1.4, cfg.within_scale);
    let near: Vec<f64> = (0..s * s).map(|i| near[(i / s, i % s)]).collect();
    let zn = z_scores(&ss, &near, s, &syn.sigma_c, c, m);
    assert!(
        mean_sq(&zn) > 5.0,
        "corr_len 1.4 not rejected: {}",
        mean_sq(&zn)
    );
}

/// Class means: the sample mean of each class estimates `M_k` with standard deviation
/// `sqrt(Sigma_C[i,i] Sigma_S[t,t] / per_class)`: every |z| < 5.5 over the 720 entries, mean z^2
/// (expectation 1) in [0.5, 1.6]: the entries of one class are spatially correlated, so it spreads
/// more than chi^2_720 / 720; over seeds 0..15 it ranged 0.72..1.12. The means' 720 entries are
/// i.i.d. with variance `class_sep^2`: their mean square is within 0.27 (5 sd of sqrt(2/720)) of it,
/// relatively.
#[test]
fn class_means_converge() {
    let cfg = big_config();
    let syn = generate(&cfg).unwrap();
    let (c, s) = (cfg.channels, cfg.height * cfg.width);
    let d = c * s;
    let mut z = Vec::new();
    for kk in 0..cfg.classes {
        for j in 0..d {
            let (ch, t) = (j / s, j % s);
            let mean: f64 = (0..cfg.per_class)
                .map(|i| syn.latents[(kk * cfg.per_class + i) * d + j] as f64)
                .sum::<f64>()
                / cfg.per_class as f64;
            let sd =
                (syn.sigma_c[ch * c + ch] * syn.sigma_s[t * s + t] / cfg.per_class as f64).sqrt();
            z.push((mean - syn.means[kk * d + j]) / sd);
        }
    }
    println!(
        "class means: max|z| {:.2} mean z^2 {:.3}",
        max_abs(&z),
        mean_sq(&z)
    );
    assert!(max_abs(&z) < 5.5);
    assert!((0.5..1.6).contains(&mean_sq(&z)));
    let var = syn.means.iter().map(|v| v * v).sum::<f64>() / syn.means.len() as f64;
    assert!(
        (var / cfg.class_sep.powi(2) - 1.0).abs() < 0.27,
        "means variance {var}"
    );
}

/// The factors are what the documentation says, computed here independently of the generator.
#[test]
fn factors_follow_their_definition() {
    let cfg = SynthConfig {
        per_class: 2,
        channels: 5,
        height: 5,
        width: 7,
        corr_len: 1.7,
        within_scale: 1.3,
        anisotropy: 1.5,
        ..SynthConfig::default()
    };
    let syn = generate(&cfg).unwrap();
    let (c, h, w) = (cfg.channels, cfg.height, cfg.width);
    let s = h * w;
    let t = syn.truth();

    // Channel spectrum: lc_i ∝ (i+1)^-a, mean 1, in descending order; Sigma_C symmetric with trace C.
    let raw: Vec<f64> = (0..c).map(|i| ((i + 1) as f64).powf(-1.5)).collect();
    let mean = raw.iter().sum::<f64>() / c as f64;
    for (i, (&a, &b)) in t.eig_c.iter().zip(&raw).enumerate() {
        assert!(rel(a, b / mean) < 1e-14, "lc_{i}: {a} vs {}", b / mean);
    }
    let trace: f64 = (0..c).map(|i| syn.sigma_c[i * c + i]).sum();
    assert!(rel(trace, c as f64) < 1e-13);
    for i in 0..c {
        for j in 0..c {
            assert_eq!(syn.sigma_c[i * c + j], syn.sigma_c[j * c + i]);
        }
    }

    // Sigma_S: within^2 (exp(-d^2 / (2 l^2)) + jitter [p = q]) / (1 + jitter), trace / S = within^2.
    let jit = cov::SPATIAL_JITTER;
    for p in 0..s {
        for q in 0..s {
            let d2 = ((p / w) as f64 - (q / w) as f64).powi(2)
                + ((p % w) as f64 - (q % w) as f64).powi(2);
            let k = (-d2 / (2.0 * 1.7 * 1.7)).exp() + if p == q { jit } else { 0.0 };
            let want = 1.3 * 1.3 * k / (1.0 + jit);
            assert!(
                (syn.sigma_s[p * s + q] - want).abs() < 1e-15,
                "sigma_s[{p},{q}]"
            );
        }
    }
    let tr_s: f64 = (0..s).map(|i| syn.sigma_s[i * s + i]).sum();
    assert!(rel(tr_s / s as f64, 1.69) < 1e-14);
    // Eigenvalues of Sigma_S sum to its trace and are positive thanks to the jitter.
    assert!(rel(t.eig_s.iter().sum::<f64>(), tr_s) < 1e-12);
    assert!(t.eig_s.iter().all(|&v| v > 0.0));
    assert!(t.eig_s.windows(2).all(|p| p[0] >= p[1]));
    // T / D = within^2 since tr(Sigma_C) = C.
    assert!(rel(t.total_variance, 1.69) < 1e-12);

    // corr_len = 0: exactly within^2 I, every eigenvalue within^2.
    let white = generate(&SynthConfig {
        corr_len: 0.0,
        ..cfg.clone()
    })
    .unwrap();
    for p in 0..s {
        for q in 0..s {
            assert_eq!(
                white.sigma_s[p * s + q],
                if p == q { 1.3 * 1.3 } else { 0.0 }
            );
        }
    }
    assert!(white.truth().eig_s.iter().all(|&v| v == 1.3 * 1.3));
    // anisotropy = 0: isotropic channels, so with white noise rho = 1 and VIV = (pi/2) D within.
    let iso = generate(&SynthConfig {
        corr_len: 0.0,
        anisotropy: 0.0,
        ..cfg
    })
    .unwrap();
    let ti = iso.truth();
    assert!(rel(ti.anisotropy, 1.0) < 1e-14);
    assert!(rel(ti.viv, std::f64::consts::FRAC_PI_2 * (c * s) as f64 * 1.3) < 1e-13);
}

/// `Truth::v` integrates to VIV (study eqs. 4-5), starts at T and ends at the rank D.
/// Tolerance 1e-9: composite Simpson with 20,000 panels on a smooth integrand (corr_len 1 on a 4 x 4 grid
/// keeps the smallest eigenvalue near 0.05, so no boundary layer at t = 1).
#[test]
fn truth_curve_integrates_to_viv() {
    let cfg = SynthConfig {
        per_class: 2,
        channels: 3,
        height: 4,
        width: 4,
        corr_len: 1.0,
        ..SynthConfig::default()
    };
    let t = generate(&cfg).unwrap().truth().clone();
    let d = t.d as f64;
    assert!(rel(t.v(0.0), t.total_variance * d) < 1e-13);
    assert!(rel(t.v(1.0), d) < 1e-13);
    let panels = 20_000;
    let hh = 1.0 / panels as f64;
    let mut sum = t.v(0.0) + t.v(1.0);
    for i in 1..panels {
        sum += t.v(i as f64 * hh) * if i % 2 == 1 { 4.0 } else { 2.0 };
    }
    let integral = sum * hh / 3.0;
    assert!(rel(integral, t.viv) < 1e-9, "{integral} vs {}", t.viv);
    let again = Truth::from_eigenvalues(t.eig_c.clone(), t.eig_s.clone());
    assert_eq!(again, t);
}

/// The stored truth equals a dense eigendecomposition of `sigma_c ⊗ sigma_s` (48 x 48) made by numpy
/// from the written file, to 1e-10 relative (both sides are f64 eigensolvers on a matrix whose smallest
/// eigenvalues, about 1e-6 thanks to the jitter, keep `sqrt` well conditioned: rounding is near 1e-13).
/// The oracle also rebuilds `sigma_s` from the config stored in the file.
#[test]
fn truth_matches_dense_kronecker_oracle() {
    let cfg = SynthConfig {
        classes: 3,
        per_class: 4,
        channels: 3,
        height: 4,
        width: 4,
        corr_len: 2.0,
        within_scale: 0.7,
        anisotropy: 2.0,
        seed: 11,
        ..SynthConfig::default()
    };
    let syn = generate(&cfg).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("synth.npz");
    syn.write(&path).unwrap();
    let o = oracle("synth_check.py", &[path.to_str().unwrap()]);
    println!("{o}");
    let t = syn.truth();
    let f = |k: &str| o[k].as_f64().unwrap();
    assert!(rel(f("viv"), t.viv) < 1e-10);
    assert!(rel(f("viv_per_dim"), t.viv_per_dim) < 1e-10);
    assert!(rel(f("total_variance"), t.total_variance) < 1e-10);
    assert!(rel(f("anisotropy"), t.anisotropy) < 1e-10);
    assert!(f("kron_min_eig") > 0.0);
    // Written values are the in-memory ones, bit for bit.
    assert_eq!(o["stored"]["true_viv"].as_f64().unwrap(), t.viv);
    assert_eq!(
        o["stored"]["true_anisotropy"].as_f64().unwrap(),
        t.anisotropy
    );
    for s in o["scalars_shape"].as_array().unwrap() {
        assert!(s.as_array().unwrap().is_empty(), "scalars are 0-d arrays");
    }
    assert!(f("sigma_s_max_abs_err") < 1e-15);
    assert!(f("sigma_c_eig_max_abs_err") < 1e-13);
    assert_eq!(f("sigma_c_asymmetry"), 0.0);
    assert_eq!(o["latents_shape"], serde_json::json!([12, 3, 4, 4]));
    assert_eq!(o["latents_dtype"], "float32");
    assert_eq!(o["labels_counts"], serde_json::json!([4, 4, 4]));
    assert_eq!(o["means_shape"], serde_json::json!([3, 3, 4, 4]));
    let m = &o["masks"];
    assert_eq!(m["shape"], serde_json::json!([12, 8, 8]));
    assert_eq!(m["dtype"], "uint8");
    assert_eq!(m["values"], serde_json::json!([0, 1]));
    assert_eq!(m["factor"], serde_json::json!([2.0, 2.0]));
}

/// Masks: `mask_factor x` the latent grid, 0/1, one ellipse covering about 30-60 % of each image
/// (discretized on 32 x 32 pixels: each image lies in [0.25, 0.65]); the data set view pools them.
#[test]
fn masks_are_ellipses_at_the_stated_resolution() {
    let cfg = SynthConfig::default();
    let syn = generate(&cfg).unwrap();
    assert_eq!(cfg.mask_shape(), Some((32, 32)));
    let m = syn.masks.as_ref().unwrap();
    assert_eq!(m.len(), cfg.n() * 32 * 32);
    assert!(m.iter().all(|&v| v <= 1));
    let fracs: Vec<f64> = m
        .chunks(32 * 32)
        .map(|x| x.iter().map(|&v| v as f64).sum::<f64>() / 1024.0)
        .collect();
    let (lo, hi) = fracs
        .iter()
        .fold((1f64, 0f64), |(a, b), &f| (a.min(f), b.max(f)));
    let mean = fracs.iter().sum::<f64>() / fracs.len() as f64;
    println!("mask foreground fraction: min {lo:.3} mean {mean:.3} max {hi:.3}");
    assert!(lo >= 0.25 && hi <= 0.65, "{lo} {hi}");
    assert!((0.4..0.5).contains(&mean), "{mean}");

    let ds = syn.dataset();
    let masks = ds.masks.as_ref().unwrap();
    assert_eq!(
        (masks.source_h, masks.source_w, masks.h, masks.w),
        (32, 32, 16, 16)
    );
    assert_eq!(ds.latents.shape().n, 1000);
    assert_eq!(ds.labels.as_ref().unwrap().num_classes(), 10);
    assert!(!ds.source.example);

    let none = generate(&SynthConfig {
        mask_factor: 0,
        ..cfg
    })
    .unwrap();
    assert!(none.masks.is_none());
    assert!(none.dataset().masks.is_none());
    assert!(!none.to_arrays().iter().any(|(k, _)| *k == "masks"));
}

/// The same seed gives the same file, byte for byte; another seed changes every random part.
#[test]
fn seeded_and_reproducible() {
    let cfg = SynthConfig {
        per_class: 20,
        ..SynthConfig::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.npz"), dir.path().join("b.npz"));
    generate(&cfg).unwrap().write(&a).unwrap();
    generate(&cfg).unwrap().write(&b).unwrap();
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());

    let x = generate(&cfg).unwrap();
    let y = generate(&SynthConfig { seed: 1, ..cfg }).unwrap();
    assert_ne!(x.latents, y.latents);
    assert_ne!(x.means, y.means);
    assert_ne!(x.sigma_c, y.sigma_c);
    assert_ne!(x.masks, y.masks);
    // The spatial factor is not random.
    assert_eq!(x.sigma_s, y.sigma_s);
    assert_eq!(x.dataset().source.sha256, x.dataset().source.sha256);
    assert_ne!(x.dataset().source.sha256, y.dataset().source.sha256);
}

/// One thread or two: identical bits.
#[test]
fn thread_count_does_not_change_results() {
    let cfg = SynthConfig {
        per_class: 30,
        ..SynthConfig::default()
    };
    let one = Threads(1).install(|| generate(&cfg)).unwrap().unwrap();
    let two = Threads(2).install(|| generate(&cfg)).unwrap().unwrap();
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&one.latents), bits(&two.latents));
    assert_eq!(one.masks, two.masks);
    assert_eq!(one.means, two.means);
}

fn usage_message(cfg: SynthConfig) -> String {
    match generate(&cfg) {
        Err(Error {
            kind: ErrorKind::Usage,
            message,
        }) => message,
        Err(e) => panic!("wrong error kind: {e:?}"),
        Ok(_) => panic!("accepted an invalid config"),
    }
}

#[test]
fn invalid_parameters_are_named_with_range_and_value() {
    let d = SynthConfig::default;
    let cases: Vec<(SynthConfig, &str)> = vec![
        (
            SynthConfig { classes: 0, ..d() },
            "synth: `classes` must be an integer >= 1, found 0",
        ),
        (
            SynthConfig {
                per_class: 0,
                ..d()
            },
            "synth: `per_class` must be an integer >= 1, found 0",
        ),
        (
            SynthConfig { channels: 0, ..d() },
            "synth: `channels` must be an integer in [1, 4096], found 0",
        ),
        (
            SynthConfig { height: 0, ..d() },
            "synth: `height` must be an integer in [1, 4096], found 0",
        ),
        (
            SynthConfig { width: 5000, ..d() },
            "synth: `width` must be an integer in [1, 4096], found 5000",
        ),
        (
            SynthConfig {
                height: 64,
                width: 128,
                ..d()
            },
            "synth: `height * width` must be at most 4096 tokens (the spatial covariance is a dense S x S \
             matrix), found 64 x 128 = 8192",
        ),
        (
            SynthConfig {
                corr_len: -1.0,
                ..d()
            },
            "synth: `corr_len` must be a number in [0, 1e6], found -1",
        ),
        (
            SynthConfig {
                corr_len: f64::NAN,
                ..d()
            },
            "synth: `corr_len` must be a number in [0, 1e6], found NaN",
        ),
        (
            SynthConfig {
                within_scale: 0.0,
                ..d()
            },
            "synth: `within_scale` must be a number in [1e-30, 1e30], found 0",
        ),
        (
            SynthConfig {
                anisotropy: f64::INFINITY,
                ..d()
            },
            "synth: `anisotropy` must be a number in [0, 100], found inf",
        ),
        (
            SynthConfig {
                class_sep: -0.5,
                ..d()
            },
            "synth: `class_sep` must be a number in [0, 1e30], found -0.5",
        ),
        (
            SynthConfig {
                mask_factor: 17,
                ..d()
            },
            "synth: `mask_factor` must be an integer in [0, 16], found 17",
        ),
        (
            SynthConfig {
                classes: 1 << 40,
                per_class: 1 << 20,
                ..d()
            },
            "synth: 1099511627776 classes x 1048576 per class of 8 x 16 x 16 latents is too large to hold \
             in memory",
        ),
    ];
    for (cfg, want) in cases {
        assert_eq!(usage_message(cfg), want);
    }
}

/// Edge parameters that are valid still give finite data.
#[test]
fn edge_parameters_give_finite_data() {
    for cfg in [
        SynthConfig {
            corr_len: 1e-300,
            per_class: 3,
            ..SynthConfig::default()
        },
        SynthConfig {
            corr_len: 1e6,
            per_class: 3,
            ..SynthConfig::default()
        },
        SynthConfig {
            anisotropy: 100.0,
            channels: 32,
            per_class: 3,
            ..SynthConfig::default()
        },
        SynthConfig {
            classes: 1,
            per_class: 1,
            channels: 1,
            height: 1,
            width: 1,
            ..SynthConfig::default()
        },
    ] {
        let syn = generate(&cfg).unwrap();
        assert!(syn.latents.iter().all(|v| v.is_finite()), "{cfg:?}");
        assert!(
            syn.true_viv().is_finite() && syn.true_viv() > 0.0,
            "{cfg:?}"
        );
    }
}
