//! VIV: closed form against dense matrices, the derivation by simulation, convergence to the truth,
//! the numpy oracle, the logit-normal quadrature, the marginal Monte Carlo, degenerate classes.

use crate::common::{oracle, rel};
use diffusability::data::{Dataset, Labels, Latents, Normalize, Source};
use diffusability::io::{ArrayData, RawArray, write_npy};
use diffusability::linalg;
use diffusability::metrics::viv::curve::{Spectrum, v_of_eigenvalues, viv_of_eigenvalues};
use diffusability::metrics::viv::marginal;
use diffusability::metrics::viv::quadrature::{LogitNormal, gauss_legendre_unit, sigmoid};
use diffusability::metrics::{ParamValue, Params, RunOptions, Selection, registry, run};
use diffusability::par::Threads;
use diffusability::progress::{Progress, Silent};
use diffusability::report::Report;
use faer::Mat;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};

const DEFAULT_KEYS: [&str; 5] = [
    "viv",
    "viv_per_dim",
    "viv_total_variance",
    "viv_anisotropy",
    "viv_logit_normal",
];

// ---------------------------------------------------------------------------------------------
// A small seeded matrix-normal generator (own, so the tests do not depend on the library's synth).

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    StandardNormal.sample(rng)
}

/// A random orthogonal matrix: the eigenvectors of a symmetric Gaussian matrix.
fn orthogonal(rng: &mut ChaCha8Rng, n: usize) -> Mat<f64> {
    let g = Mat::from_fn(n, n, |_, _| normal(rng));
    let sym = Mat::from_fn(n, n, |i, j| g[(i, j)] + g[(j, i)]);
    linalg::sym_eigen(sym.as_ref()).unwrap().1
}

/// `Q diag(eigs) Q^T` with a random orthogonal `Q`.
fn spd_with(rng: &mut ChaCha8Rng, eigs: &[f64]) -> Mat<f64> {
    let n = eigs.len();
    let q = orthogonal(rng, n);
    Mat::from_fn(n, n, |i, j| {
        (0..n).map(|k| q[(i, k)] * eigs[k] * q[(j, k)]).sum()
    })
}

/// Eigenvalues log-spaced in `[lo, hi]`.
fn logspace(n: usize, lo: f64, hi: f64) -> Vec<f64> {
    (0..n)
        .map(|i| {
            let f = if n == 1 {
                0.5
            } else {
                i as f64 / (n - 1) as f64
            };
            (lo.ln() + f * (hi.ln() - lo.ln())).exp()
        })
        .collect()
}

/// Exponential kernel `exp(-|p - q| / ell)` on an `h x w` grid.
fn grid_kernel(h: usize, w: usize, ell: f64) -> Mat<f64> {
    let s = h * w;
    Mat::from_fn(s, s, |a, b| {
        let (ya, xa, yb, xb) = (
            (a / w) as f64,
            (a % w) as f64,
            (b / w) as f64,
            (b % w) as f64,
        );
        (-((ya - yb).powi(2) + (xa - xb).powi(2)).sqrt() / ell).exp()
    })
}

/// A Gaussian class `N(mean, sc (x) ss)` of `C x S` samples.
struct Class {
    mean: Vec<f64>,
    lc: Mat<f64>,
    ls: Mat<f64>,
}

impl Class {
    fn new(mean: Vec<f64>, sc: &Mat<f64>, ss: &Mat<f64>) -> Class {
        Class {
            mean,
            lc: linalg::cholesky(sc.as_ref()).unwrap(),
            ls: linalg::cholesky(ss.as_ref()).unwrap(),
        }
    }

    /// `n` samples `M + L_C Xi L_S^T`, appended to `out` as f32.
    fn sample(&self, rng: &mut ChaCha8Rng, n: usize, out: &mut Vec<f32>) {
        let (c, s) = (self.lc.nrows(), self.ls.nrows());
        for _ in 0..n {
            let xi: Vec<f64> = (0..c * s).map(|_| normal(rng)).collect();
            let mut y = vec![0.0; c * s];
            linalg::kron_apply(
                self.lc.as_ref(),
                self.ls.as_ref(),
                &xi,
                &mut Vec::new(),
                &mut y,
            );
            out.extend(y.iter().zip(&self.mean).map(|(a, m)| (a + m) as f32));
        }
    }
}

fn random_class(
    rng: &mut ChaCha8Rng,
    c: usize,
    h: usize,
    w: usize,
    mean_scale: f64,
) -> (Class, Mat<f64>, Mat<f64>) {
    let sc = spd_with(rng, &logspace(c, 0.2, 3.0));
    let ell = 0.8 + 1.5 * rng.random::<f64>();
    let ss = grid_kernel(h, w, ell);
    let mean = (0..c * h * w).map(|_| mean_scale * normal(rng)).collect();
    (Class::new(mean, &sc, &ss), sc, ss)
}

use rand::Rng;

fn dataset(c: usize, h: usize, w: usize, data: Vec<f32>, labels: Option<Vec<i64>>) -> Dataset {
    Dataset {
        latents: Latents::from_vec(c, h, w, data),
        labels: labels.map(Labels::new),
        masks: None,
        source: Source::default(),
    }
}

fn report(
    ds: &Dataset,
    keys: &[&str],
    normalize: Normalize,
    threads: usize,
    seed: u64,
    overrides: &[(&'static str, ParamValue)],
) -> Report {
    let opts = RunOptions {
        selection: Selection::List(keys.iter().map(|s| s.to_string()).collect()),
        overrides: Params(overrides.iter().cloned().collect()),
        normalize,
        stats: None,
        seed,
        threads: Threads(threads),
    };
    run(ds, &opts, &Silent).unwrap()
}

fn metric(r: &Report, key: &str) -> f64 {
    r.metrics
        .get(key)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("{key} missing: {:?} {:?}", r.metrics, r.warnings))
}

// ---------------------------------------------------------------------------------------------
// Closed form.

/// `tr(Cov(v) - B A^{-1} B)` for `x1 ~ N(mu, K)`, `x0 ~ N(0, I)`: `Cov(v) = K + I`,
/// `B = t K - (1-t) I`, `A = (1-t)^2 I + t^2 K` (dense, `O(D^3)`).
fn dense_v(k: &Mat<f64>, t: f64) -> f64 {
    let d = k.nrows();
    let eye = Mat::<f64>::identity(d, d);
    let a = &eye * ((1.0 - t) * (1.0 - t)) + k * (t * t);
    let b = k * t - &eye * (1.0 - t);
    let l = linalg::cholesky(a.as_ref()).unwrap();
    let mut x = b.clone();
    linalg::solve_lower_in_place(l.as_ref(), x.as_mut());
    // B A^{-1} B = (L^{-1} B)^T (L^{-1} B)
    let bab = x.transpose() * &x;
    linalg::trace(k.as_ref()) + d as f64 - linalg::trace(bab.as_ref())
}

#[test]
fn closed_form_equals_dense_kronecker_spectrum() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    for (c, s, zero) in [(3usize, 5usize, false), (4, 6, true), (2, 9, false)] {
        let mut ec = logspace(c, 0.05, 4.0);
        if zero {
            ec[0] = 0.0; // a singular channel factor: V(1) is then the rank
        }
        let sc = spd_with(&mut rng, &ec);
        let ss = spd_with(&mut rng, &logspace(s, 0.1, 7.0));
        // A zero eigenvalue comes out of an eigensolver as +-1e-16, which sqrt turns into 1e-8: for the
        // singular case, set what is zero to working precision to zero on both sides.
        let zeroed = |mut v: Vec<f64>| {
            let top = v.iter().fold(0.0f64, |a, b| a.max(*b));
            v.iter_mut()
                .filter(|x| x.abs() < 1e-13 * top)
                .for_each(|x| *x = 0.0);
            v
        };
        let lc = zeroed(linalg::sym_eigvals(sc.as_ref()).unwrap());
        let ls = linalg::sym_eigvals(ss.as_ref()).unwrap();
        let sp = Spectrum::new(&lc, &ls);
        let k = linalg::kron(sc.as_ref(), ss.as_ref());
        let lam = zeroed(linalg::sym_eigvals(k.as_ref()).unwrap());
        let dense_viv = viv_of_eigenvalues(&lam);
        assert!(
            rel(sp.viv(), dense_viv) < 1e-10,
            "{} vs {dense_viv}",
            sp.viv()
        );
        let d = (c * s) as f64;
        let t_dense = linalg::trace(k.as_ref());
        assert!(rel(sp.total_variance(), t_dense) < 1e-10);
        let sq: f64 = lam.iter().map(|x| x.max(0.0).sqrt()).sum();
        assert!(rel(sp.anisotropy().unwrap(), sq / (d * t_dense).sqrt()) < 1e-10);
        for t in [0.0, 0.02, 0.25, 0.5, 0.77, 0.99] {
            let trace_formula = dense_v(&k, t);
            assert!(
                rel(sp.v(t, 1.0 - t), trace_formula) < 1e-10,
                "t={t}: {} vs {trace_formula}",
                sp.v(t, 1.0 - t)
            );
            assert!(rel(v_of_eigenvalues(&lam, t), trace_formula) < 1e-10);
        }
        // V(1) = rank (A = K is singular when a factor is, so no dense formula there).
        let rank = if zero { (c - 1) * s } else { c * s };
        assert_eq!(sp.v(1.0, 0.0), rank as f64);
        // VIV = integral of V: check (pi/2) sum sqrt(lam) against a fine Gauss-Legendre rule in
        // u = logit(t) on [-40, 40] (the integrand lam e^u / (1 + lam e^{2u}) is smooth there and
        // its tails beyond decay like e^{-40}).
        let rule = gauss_legendre_unit(800);
        let integral: f64 = rule
            .nodes
            .iter()
            .zip(&rule.weights)
            .map(|(x, w)| {
                let u = 80.0 * (x - 0.5);
                let (t, omt) = (sigmoid(u), sigmoid(-u));
                80.0 * w * sp.v(t, omt) * t * omt
            })
            .sum();
        assert!(rel(integral, sp.viv()) < 1e-9, "{integral} vs {}", sp.viv());
    }
}

#[test]
fn velocity_residual_matches_v_of_t_by_simulation() {
    // x1 ~ N(mu, Sigma_C (x) Sigma_S), x0 ~ N(0, I), x_t = (1-t) x0 + t x1, v = x1 - x0, and the
    // analytic Bayes-optimal velocity v* = mu + B A^{-1} (x_t - t mu): E||v - v*||^2 must be V(t).
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let (c, s) = (2usize, 4usize);
    let d = c * s;
    let sc = spd_with(&mut rng, &[0.3, 2.0]);
    let ss = spd_with(&mut rng, &logspace(s, 0.2, 5.0));
    let k = linalg::kron(sc.as_ref(), ss.as_ref());
    let lk = linalg::cholesky(k.as_ref()).unwrap();
    let mu: Vec<f64> = (0..d).map(|_| normal(&mut rng)).collect();
    let sp = Spectrum::new(
        &linalg::sym_eigvals(sc.as_ref()).unwrap(),
        &linalg::sym_eigvals(ss.as_ref()).unwrap(),
    );
    let n = 40_000;
    for t in [0.1, 0.3, 0.5, 0.7, 0.9] {
        let eye = Mat::<f64>::identity(d, d);
        let a = &eye * ((1.0 - t) * (1.0 - t)) + &k * (t * t);
        let b = &k * t - &eye * (1.0 - t);
        // G = B A^{-1}, with A^{-1} = L^{-T} L^{-1} from the Cholesky factor of A.
        let la = linalg::cholesky(a.as_ref()).unwrap();
        let ainv = {
            let mut inv = Mat::<f64>::identity(d, d);
            linalg::solve_lower_in_place(la.as_ref(), inv.as_mut());
            inv.transpose() * &inv
        };
        let g = &b * &ainv;
        let (mut sum, mut sum2) = (0.0, 0.0);
        for _ in 0..n {
            let xi: Vec<f64> = (0..d).map(|_| normal(&mut rng)).collect();
            let x1: Vec<f64> = (0..d)
                .map(|i| mu[i] + (0..=i).map(|j| lk[(i, j)] * xi[j]).sum::<f64>())
                .collect();
            let x0: Vec<f64> = (0..d).map(|_| normal(&mut rng)).collect();
            let xt: Vec<f64> = (0..d).map(|i| (1.0 - t) * x0[i] + t * x1[i]).collect();
            let mut e2 = 0.0;
            for i in 0..d {
                let vstar = mu[i] + (0..d).map(|j| g[(i, j)] * (xt[j] - t * mu[j])).sum::<f64>();
                let e = (x1[i] - x0[i]) - vstar;
                e2 += e * e;
            }
            sum += e2;
            sum2 += e2 * e2;
        }
        let mean = sum / n as f64;
        let se = ((sum2 / n as f64 - mean * mean) / (n as f64 - 1.0)).sqrt();
        let v = sp.v(t, 1.0 - t);
        assert!(
            (mean - v).abs() < 3.0 * se,
            "t={t}: simulated {mean} +- {se}, closed form {v}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Convergence on data with known covariances.

#[test]
fn estimate_converges_to_true_viv() {
    // One class with Sigma_C eigenvalues in [0.2, 3] and an exponential spatial kernel on a 4 x 4
    // grid; raw latents (no normalization) so the truth is exactly (pi/2)(sum sqrt lc)(sum sqrt ls).
    let (c, h, w) = (4usize, 4usize, 4usize);
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    let sc = spd_with(&mut rng, &logspace(c, 0.2, 3.0));
    let ss = grid_kernel(h, w, 1.5);
    let mean: Vec<f64> = (0..c * h * w).map(|_| normal(&mut rng)).collect();
    let class = Class::new(mean, &sc, &ss);
    let truth = Spectrum::new(
        &linalg::sym_eigvals(sc.as_ref()).unwrap(),
        &linalg::sym_eigvals(ss.as_ref()).unwrap(),
    );
    let mut errs = Vec::new();
    for n in [50usize, 500, 20_000] {
        let mut data = Vec::new();
        class.sample(&mut rng, n, &mut data);
        let ds = dataset(c, h, w, data, None);
        let r = report(&ds, &DEFAULT_KEYS, Normalize::None, 2, 0, &[]);
        let d = (c * h * w) as f64;
        let e = rel(metric(&r, "viv"), truth.viv());
        errs.push(e);
        if n == 20_000 {
            assert!(
                e < 0.01,
                "viv {} vs true {}",
                metric(&r, "viv"),
                truth.viv()
            );
            assert!(rel(metric(&r, "viv_total_variance") * d, truth.total_variance()) < 0.01);
            assert!(rel(metric(&r, "viv_anisotropy"), truth.anisotropy().unwrap()) < 0.01);
            let ln = LogitNormal {
                mean: 0.0,
                std: 1.0,
            };
            assert!(
                rel(
                    metric(&r, "viv_logit_normal"),
                    truth.expectation(&ln.nodes())
                ) < 0.01
            );
        }
    }
    assert!(
        errs[2] < errs[0],
        "errors {errs:?} do not shrink with the sample size"
    );
}

// ---------------------------------------------------------------------------------------------
// The numpy oracle.

/// Four classes on a 4 x 4 x 4 latent: label 10 (40 samples), 3 (25, channel 1 constant within
/// the class), 7 (3 samples: fewer than S/C + 1 = 5), 99 (1 sample: skipped); shuffled order.
fn oracle_data(seed: u64) -> (Vec<f32>, Vec<i64>) {
    let (c, h, w) = (4usize, 4usize, 4usize);
    let s = h * w;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut samples: Vec<(i64, Vec<f32>)> = Vec::new();
    for (label, n) in [(10i64, 40usize), (3, 25), (7, 3), (99, 1)] {
        let (class, _, _) = random_class(&mut rng, c, h, w, 0.7);
        let mut data = Vec::new();
        class.sample(&mut rng, n, &mut data);
        for x in data.chunks_exact(c * s) {
            let mut x = x.to_vec();
            if label == 3 {
                x[s..2 * s].iter_mut().for_each(|v| *v = 0.7);
            }
            samples.push((label, x));
        }
    }
    // A fixed shuffle.
    for i in (1..samples.len()).rev() {
        let j = rng.random_range(0..=i);
        samples.swap(i, j);
    }
    let labels = samples.iter().map(|x| x.0).collect();
    let data = samples.into_iter().flat_map(|x| x.1).collect();
    (data, labels)
}

fn write_oracle_inputs(
    dir: &std::path::Path,
    c: usize,
    h: usize,
    w: usize,
    data: &[f32],
    labels: Option<&[i64]>,
) {
    let n = data.len() / (c * h * w);
    write_npy(
        &dir.join("z.npy"),
        &RawArray {
            shape: vec![n, c, h, w],
            data: ArrayData::F32(data.to_vec()),
        },
    )
    .unwrap();
    if let Some(l) = labels {
        write_npy(
            &dir.join("y.npy"),
            &RawArray {
                shape: vec![n],
                data: ArrayData::I64(l.to_vec()),
            },
        )
        .unwrap();
    }
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * b.abs().max(1e-12)
}

#[test]
fn flip_flop_matches_numpy_oracle() {
    // Tolerance 1e-6 relative: both sides run the same iteration with the same stopping rule on the
    // same f32 normalized values, so they differ only by f64 rounding (about 1e-12) unless the
    // stopping decision differed, which would show as a different sweep count (checked exactly).
    let (c, h, w) = (4usize, 4usize, 4usize);
    let (data, labels) = oracle_data(31);
    let dir = tempfile::tempdir().unwrap();
    write_oracle_inputs(dir.path(), c, h, w, &data, Some(&labels));
    let z = dir.path().join("z.npy");
    let y = dir.path().join("y.npy");
    for labelled in [true, false] {
        let ds = dataset(c, h, w, data.clone(), labelled.then(|| labels.clone()));
        let r = report(&ds, &DEFAULT_KEYS, Normalize::Channel, 2, 0, &[]);
        let o = oracle(
            "viv.py",
            &[
                z.to_str().unwrap(),
                if labelled {
                    y.to_str().unwrap()
                } else {
                    "none"
                },
                "1e-6",
                "1e-6",
                "100",
                "0",
                "1",
            ],
        );
        for key in DEFAULT_KEYS {
            let want = o["metrics"][key].as_f64().unwrap();
            assert!(
                close(metric(&r, key), want, 1e-6),
                "{key}: {} vs numpy {want}",
                metric(&r, key)
            );
        }
        let ours = r.details["viv"]["per_class"].as_array().unwrap();
        let theirs = o["per_class"].as_array().unwrap();
        assert_eq!(ours.len(), theirs.len());
        for (a, b) in ours.iter().zip(theirs) {
            assert_eq!(a["label"], b["label"]);
            assert_eq!(a["n"], b["n"]);
            assert_eq!(a["sweeps"], b["sweeps"], "class {}", a["label"]);
            for key in ["viv", "total_variance", "anisotropy", "logit_normal"] {
                let (x, y) = (a[key].as_f64().unwrap(), b[key].as_f64().unwrap());
                assert!(
                    close(x, y, 1e-6),
                    "class {} {key}: {x} vs numpy {y}",
                    a["label"]
                );
            }
            for key in ["ridge_c", "ridge_s"] {
                let (x, y) = (a[key].as_f64().unwrap(), b[key].as_f64().unwrap());
                assert!(
                    (x == 0.0 && y == 0.0) || close(x, y, 1e-6),
                    "class {} {key}: {x} vs {y}",
                    a["label"]
                );
            }
        }
        let curve = r.details["viv"]["curve"]["v"].as_array().unwrap();
        let want = o["curve"].as_array().unwrap();
        assert_eq!(curve.len(), 101);
        for (a, b) in curve.iter().zip(want) {
            assert!(close(a.as_f64().unwrap(), b.as_f64().unwrap(), 1e-6));
        }
        if labelled {
            assert_eq!(r.details["viv"]["classes_skipped"], 1);
            assert_eq!(o["skipped"], serde_json::json!([99]));
            let find = |l: i64| ours.iter().find(|p| p["label"] == l).unwrap();
            assert!(find(7)["ridge_s"].as_f64().unwrap() > 0.0);
            assert!(find(3)["ridge_c"].as_f64().unwrap() > 0.0);
            assert_eq!(find(10)["ridge_c"].as_f64().unwrap(), 0.0);
        }
    }
}

#[test]
fn results_do_not_depend_on_thread_count() {
    let (c, h, w) = (4usize, 4usize, 4usize);
    let (data, labels) = oracle_data(32);
    let ds = dataset(c, h, w, data, Some(labels));
    let a = report(&ds, &DEFAULT_KEYS, Normalize::Channel, 1, 0, &[]);
    let b = report(&ds, &DEFAULT_KEYS, Normalize::Channel, 3, 0, &[]);
    assert_eq!(a.metrics, b.metrics);
    assert_eq!(a.details, b.details);
    assert_eq!(a.warnings, b.warnings);
}

#[test]
fn unconditional_is_one_class_of_all_samples() {
    let (c, h, w) = (4usize, 4usize, 4usize);
    let (data, labels) = oracle_data(33);
    let none = report(
        &dataset(c, h, w, data.clone(), None),
        &DEFAULT_KEYS,
        Normalize::Channel,
        2,
        0,
        &[],
    );
    let one = report(
        &dataset(c, h, w, data, Some(vec![4; labels.len()])),
        &DEFAULT_KEYS,
        Normalize::Channel,
        2,
        0,
        &[],
    );
    assert_eq!(none.metrics, one.metrics);
    assert_eq!(none.details["viv"]["conditioning"], "unconditional");
    assert!(
        none.details["viv"]["note"]
            .as_str()
            .unwrap()
            .contains("no labels")
    );
    assert_eq!(one.details["viv"]["conditioning"], "class");
    assert!(none.warnings.is_empty(), "{:?}", none.warnings);
    assert_eq!(none.details["viv"]["per_class"][0]["label"], Value::Null);
}

// ---------------------------------------------------------------------------------------------
// Logit-normal time weighting.

/// Adaptive Gauss-Kronrod (7/15 points, QUADPACK's qk15) on `[a, b]`, bisecting every interval whose
/// Kronrod-Gauss difference exceeds `tol * |total|`. The constants are QUADPACK's, digits as published.
#[allow(clippy::excessive_precision)]
fn adaptive_gk15(f: &dyn Fn(f64) -> f64, a: f64, b: f64, tol: f64) -> f64 {
    const XGK: [f64; 8] = [
        0.991455371120812639206854697526329,
        0.949107912342758524526189684047851,
        0.864864423359769072789712788640926,
        0.741531185599394439863864773280788,
        0.586087235467691130294144845693013,
        0.405845151377397166906606412076961,
        0.207784955007898467600689403773245,
        0.0,
    ];
    const WGK: [f64; 8] = [
        0.022935322010529224963732008058970,
        0.063092092629978553290700663189204,
        0.104790010322250183839876322541518,
        0.140653259715525918745189590510238,
        0.169004726639267902826583426598550,
        0.190350578064785409913256402421014,
        0.204432940075298892414161999234649,
        0.209482141084727828012999174891714,
    ];
    const WG: [f64; 4] = [
        0.129484966168869693270611432679082,
        0.279705391489276667901467771423780,
        0.381830050505118944950369775488975,
        0.417959183673469387755102040816327,
    ];
    let qk = |a: f64, b: f64| -> (f64, f64) {
        let (c, h) = (0.5 * (a + b), 0.5 * (b - a));
        let fc = f(c);
        let (mut k, mut g) = (WGK[7] * fc, WG[3] * fc);
        for i in 0..7 {
            let s = f(c - h * XGK[i]) + f(c + h * XGK[i]);
            k += WGK[i] * s;
            if i % 2 == 1 {
                g += WG[i / 2] * s;
            }
        }
        (k * h, (k - g).abs() * h)
    };
    let (whole, _) = qk(a, b);
    let mut stack = vec![(a, b)];
    let mut total = 0.0;
    while let Some((x, y)) = stack.pop() {
        let (k, err) = qk(x, y);
        if err <= tol * whole.abs() || y - x < 1e-12 {
            total += k;
        } else {
            let m = 0.5 * (x + y);
            stack.push((x, m));
            stack.push((m, y));
        }
    }
    total
}

#[test]
fn logit_normal_gauss_hermite_equals_adaptive_quadrature() {
    // Tolerance 1e-9 relative (the issue's); the node rule aims at 1e-12.
    let mut rng = ChaCha8Rng::seed_from_u64(41);
    let lc: Vec<f64> = (0..8).map(|_| (normal(&mut rng) * 2.0).exp()).collect();
    let ls: Vec<f64> = (0..32).map(|_| (normal(&mut rng) * 1.5).exp()).collect();
    let sp = Spectrum::new(&lc, &ls);
    for (m, s) in [(0.0, 1.0), (0.7, 0.5), (-1.5, 2.0), (0.3, 3.0), (2.0, 0.1)] {
        let ln = LogitNormal { mean: m, std: s };
        let gh = sp.expectation(&ln.nodes());
        let f = |u: f64| {
            let z = (u - m) / s;
            sp.v(sigmoid(u), sigmoid(-u)) * (-0.5 * z * z).exp()
                / (s * (2.0 * std::f64::consts::PI).sqrt())
        };
        let adaptive = adaptive_gk15(&f, m - 14.0 * s, m + 14.0 * s, 1e-14);
        assert!(
            rel(gh, adaptive) < 1e-9,
            "m={m} s={s}: GH {gh} vs adaptive {adaptive}"
        );
        assert!(ln.node_count() >= 64);
    }
}

// ---------------------------------------------------------------------------------------------
// Marginal VIV.

fn component(
    rng: &mut ChaCha8Rng,
    c: usize,
    s: usize,
    mean_scale: f64,
    weight: f64,
) -> marginal::Component {
    let sc = spd_with(rng, &logspace(c, 0.3, 2.5));
    let ss = spd_with(rng, &logspace(s, 0.2, 3.0));
    let (lc, uc) = linalg::sym_eigen(sc.as_ref()).unwrap();
    let (ls, us) = linalg::sym_eigen(ss.as_ref()).unwrap();
    marginal::Component {
        weight,
        mean: (0..c * s).map(|_| mean_scale * normal(rng)).collect(),
        lc,
        uc,
        ls,
        us,
    }
}

#[test]
fn marginal_equals_closed_form_for_one_class() {
    let mut rng = ChaCha8Rng::seed_from_u64(51);
    let (c, s) = (2usize, 6usize);
    let comp = component(&mut rng, c, s, 1.0, 1.0);
    let sp = Spectrum::new(&comp.lc, &comp.ls);
    let opts = marginal::Options {
        samples: 4000,
        nodes: 16,
        seed: 3,
    };
    let est = marginal::estimate(std::slice::from_ref(&comp), c, s, &opts, &Silent);
    // With one class the control-variate part is identically zero: the estimate is the closed form.
    assert!(
        rel(est.value, sp.viv()) < 1e-12,
        "{} vs {}",
        est.value,
        sp.viv()
    );
    assert_eq!(est.std_error, 0.0);
    for (t, v) in est.t.iter().zip(&est.v) {
        assert!(rel(*v, sp.v(*t, 1.0 - t)) < 1e-12);
    }
    // The plain Monte Carlo average of ||v - v*(x_t)||^2 over draws and the 16 Gauss-Legendre nodes
    // estimates the 16-node rule of the exact V(t) without bias.
    let rule = gauss_legendre_unit(16);
    let quad: f64 = rule
        .nodes
        .iter()
        .zip(&rule.weights)
        .map(|(t, w)| w * sp.v(*t, 1.0 - t))
        .sum();
    assert!(
        rel(quad, sp.viv()) < 1e-4,
        "quadrature {quad} vs closed form {}",
        sp.viv()
    );
    assert!(est.plain_std_error > 0.0 && est.plain_std_error < 0.02 * sp.viv());
    assert!(
        (est.plain_value - quad).abs() < 4.0 * est.plain_std_error,
        "plain Monte Carlo {} +- {} vs quadrature of the closed form {quad}",
        est.plain_value,
        est.plain_std_error
    );
}

fn marginal_data(seed: u64, classes: usize, n: usize, mean_scale: f64) -> (Vec<f32>, Vec<i64>) {
    let (c, h, w) = (2usize, 2usize, 3usize);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut data = Vec::new();
    let mut labels = Vec::new();
    for k in 0..classes {
        let (class, _, _) = random_class(&mut rng, c, h, w, mean_scale);
        class.sample(&mut rng, n, &mut data);
        labels.extend(std::iter::repeat_n(k as i64 * 3, n));
    }
    (data, labels)
}

fn marginal_details(r: &Report) -> (f64, f64) {
    let m = &r.details["viv_marginal"];
    (
        m["value"].as_f64().unwrap(),
        m["std_error"].as_f64().unwrap(),
    )
}

/// The plain Monte Carlo estimate must agree with the control-variate one: within 4 of its standard
/// errors plus 1 % for the 16-node quadrature error that only the plain one carries.
fn plain_agrees(r: &Report) {
    let m = &r.details["viv_marginal"];
    let (v, p, pse) = (
        m["value"].as_f64().unwrap(),
        m["plain"]["value"].as_f64().unwrap(),
        m["plain"]["std_error"].as_f64().unwrap(),
    );
    assert!(
        (v - p).abs() < 4.0 * pse + 0.01 * v,
        "control variate {v} vs plain {p} +- {pse}"
    );
}

#[test]
fn marginal_without_labels_matches_the_closed_form() {
    let (data, _) = marginal_data(61, 1, 3000, 1.0);
    let ds = dataset(2, 2, 3, data, None);
    let over = [("viv_marginal_samples", ParamValue::Int(2000))];
    let r = report(&ds, &["viv", "viv_marginal"], Normalize::None, 2, 0, &over);
    let (value, se) = marginal_details(&r);
    assert_eq!(value, metric(&r, "viv_marginal"));
    let viv = metric(&r, "viv");
    // One class: the marginal is the class-conditional value (equal up to eigensolver rounding).
    assert!(
        rel(value, viv) < 1e-12 && se == 0.0,
        "marginal {value} +- {se} vs viv {viv}"
    );
    plain_agrees(&r);
    assert_eq!(r.details["viv_marginal"]["samples_per_node"], 2000);
    assert_eq!(r.details["viv_marginal"]["nodes"], 16);
}

#[test]
fn marginal_is_not_below_the_class_conditional_value() {
    // Equal class sizes, so the unweighted class mean `viv` is the mixture-weighted one. Overlapping
    // classes make the label informative, so the marginal is clearly larger.
    let (data, labels) = marginal_data(62, 4, 400, 0.5);
    let ds = dataset(2, 2, 3, data, Some(labels));
    let r = report(&ds, &["viv", "viv_marginal"], Normalize::None, 2, 0, &[]);
    let (value, se) = marginal_details(&r);
    let viv = metric(&r, "viv");
    assert!(
        value >= viv - 3.0 * se,
        "marginal {value} +- {se} below conditional {viv}"
    );
    assert!(
        value > viv + 3.0 * se,
        "overlapping classes: marginal {value} +- {se} vs conditional {viv}"
    );
    assert!(se > 0.0);
    plain_agrees(&r);
    // Far apart classes: near t = 0 the class is still unknown, so the marginal stays above too.
    let (data, labels) = marginal_data(62, 4, 400, 30.0);
    let ds = dataset(2, 2, 3, data, Some(labels));
    let r = report(&ds, &["viv", "viv_marginal"], Normalize::None, 2, 0, &[]);
    let (value, se) = marginal_details(&r);
    let viv = metric(&r, "viv");
    assert!(
        value >= viv - 3.0 * se,
        "separated: {value} +- {se} below conditional {viv}"
    );
    plain_agrees(&r);
}

#[test]
fn marginal_is_deterministic_for_a_seed() {
    let (data, labels) = marginal_data(63, 3, 100, 1.0);
    let ds = dataset(2, 2, 3, data, Some(labels));
    let over = [("viv_marginal_samples", ParamValue::Int(100))];
    let a = report(&ds, &["viv_marginal"], Normalize::Channel, 1, 7, &over);
    let b = report(&ds, &["viv_marginal"], Normalize::Channel, 3, 7, &over);
    let c = report(&ds, &["viv_marginal"], Normalize::Channel, 2, 8, &over);
    assert_eq!(a.metrics, b.metrics);
    assert_eq!(a.details["viv_marginal"], b.details["viv_marginal"]);
    assert_ne!(metric(&a, "viv_marginal"), metric(&c, "viv_marginal"));
}

// ---------------------------------------------------------------------------------------------
// Degenerate classes.

fn all_numbers_finite(v: &Value) -> bool {
    match v {
        Value::Number(n) => n.as_f64().is_some_and(f64::is_finite),
        Value::Array(a) => a.iter().all(all_numbers_finite),
        Value::Object(o) => o.values().all(all_numbers_finite),
        _ => true,
    }
}

#[test]
fn degenerate_classes_are_skipped_or_regularized_with_named_warnings() {
    let (c, h, w) = (4usize, 4usize, 4usize);
    let s = h * w;
    let mut rng = ChaCha8Rng::seed_from_u64(71);
    let mut data = Vec::new();
    let mut labels = Vec::new();
    let mut add = |label: i64, n: usize, data: &mut Vec<f32>, rng: &mut ChaCha8Rng| {
        let (class, _, _) = random_class(rng, c, h, w, 1.0);
        class.sample(rng, n, data);
        labels.extend(std::iter::repeat_n(label, n));
    };
    add(5, 1, &mut data, &mut rng); // one sample: skipped
    add(6, 3, &mut data, &mut rng); // fewer than S/C + 1 = 5: spatial ridge
    let start = data.len();
    add(8, 30, &mut data, &mut rng); // channel 2 constant within the class: channel ridge
    for x in data[start..].chunks_exact_mut(c * s) {
        x[2 * s..3 * s].iter_mut().for_each(|v| *v = -1.25);
    }
    let start = data.len();
    add(9, 10, &mut data, &mut rng); // ten identical samples: skipped
    let first: Vec<f32> = data[start..start + c * s].to_vec();
    for x in data[start..].chunks_exact_mut(c * s) {
        x.copy_from_slice(&first);
    }
    let start = data.len();
    add(12, 20, &mut data, &mut rng); // a NaN in one sample: skipped
    data[start + 5] = f32::NAN;
    add(11, 30, &mut data, &mut rng); // regular
    let ds = dataset(c, h, w, data, Some(labels));
    let r = report(&ds, &DEFAULT_KEYS, Normalize::None, 2, 0, &[]);
    let warn = |needles: &[&str]| {
        assert!(
            r.warnings
                .iter()
                .any(|w| needles.iter().all(|n| w.contains(n))),
            "no warning with {needles:?} in {:#?}",
            r.warnings
        )
    };
    warn(&["1 class with fewer than 2 samples skipped", "labels 5"]);
    warn(&["fewer than S/C+1 = 5", "spatial factor", "6 (3 samples)"]);
    warn(&["channel factor not positive definite", "ridge", "labels 8"]);
    warn(&["all identical", "9 (10 samples)"]);
    warn(&["NaN or infinite", "labels 12"]);
    for key in DEFAULT_KEYS {
        assert!(metric(&r, key).is_finite());
    }
    assert!(all_numbers_finite(&r.details["viv"]));
    let v = &r.details["viv"];
    assert_eq!(v["classes"], 3);
    assert_eq!(v["classes_skipped"], 3);
    let find = |l: i64| {
        v["per_class"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["label"] == l)
            .unwrap()
    };
    assert!(find(6)["ridge_s"].as_f64().unwrap() > 0.0);
    assert_eq!(find(6)["ridge_c"].as_f64().unwrap(), 0.0);
    assert!(find(8)["ridge_c"].as_f64().unwrap() > 0.0);
    assert_eq!(find(11)["ridge_c"].as_f64().unwrap(), 0.0);
    assert_eq!(find(11)["ridge_s"].as_f64().unwrap(), 0.0);
    let skipped: Vec<(i64, String)> = v["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["label"].as_i64().unwrap(),
                x["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        skipped,
        vec![
            (5, "fewer than 2 samples".to_string()),
            (9, "all samples identical".to_string()),
            (12, "non-finite values".to_string())
        ]
    );
}

#[test]
fn no_fittable_class_gives_no_metrics_and_a_warning() {
    let ds = dataset(
        2,
        1,
        2,
        vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0],
        Some(vec![0, 1]),
    );
    let opts = RunOptions {
        selection: viv_defaults(),
        normalize: Normalize::None,
        threads: Threads(1),
        ..Default::default()
    };
    let r = run(&ds, &opts, &Silent).unwrap();
    assert!(r.metrics.is_empty(), "{:?}", r.metrics);
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("no class could be fitted")),
        "{:?}",
        r.warnings
    );
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("2 classes with fewer than 2 samples"))
    );
    // Without labels the one class is named as the whole set.
    let ds = dataset(2, 1, 2, vec![1.0, 2.0, 3.0, 4.0], None);
    let r = run(&ds, &opts, &Silent).unwrap();
    assert!(
        r.warnings
            .iter()
            .any(|w| w == "viv: 1 class with fewer than 2 samples skipped (all samples)"),
        "{:?}",
        r.warnings
    );
}

#[test]
fn ridge_zero_leaves_a_singular_class_out() {
    let (c, h, w) = (4usize, 4usize, 4usize);
    let (data, labels) = oracle_data(34);
    let ds = dataset(c, h, w, data, Some(labels));
    let r = report(
        &ds,
        &DEFAULT_KEYS,
        Normalize::Channel,
        2,
        0,
        &[("viv_ridge", ParamValue::Float(0.0))],
    );
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("singular") && w.contains("viv_ridge = 0") && w.contains('3')),
        "{:?}",
        r.warnings
    );
    assert!(metric(&r, "viv").is_finite());
}

// ---------------------------------------------------------------------------------------------
// Metadata and progress.

#[test]
fn family_metadata() {
    let keys: Vec<(&str, bool)> = registry::metrics()
        .filter(|(f, _)| f.name == "viv")
        .map(|(_, m)| (m.name, m.opt_in))
        .collect();
    assert_eq!(
        keys,
        vec![
            ("viv", false),
            ("viv_per_dim", false),
            ("viv_total_variance", false),
            ("viv_anisotropy", false),
            ("viv_logit_normal", false),
            ("viv_marginal", true),
        ]
    );
    let (fam, m) = registry::find_metric("viv").unwrap();
    assert!(!fam.needs.labels && !fam.needs.masks);
    assert!(!m.higher_is_better);
    assert!(m.help.contains("eqs."));
    let names: Vec<&str> = fam.params.iter().map(|p| p.name).collect();
    assert_eq!(
        names,
        [
            "viv_ridge",
            "viv_logit_mean",
            "viv_logit_std",
            "viv_max_sweeps",
            "viv_tol",
            "viv_precision",
            "viv_marginal_samples",
            "viv_marginal_nodes"
        ]
    );
    let std = registry::find_param("viv_logit_std").unwrap();
    assert!(std.parse("0").is_err());
    assert!(std.parse("1.5").is_ok());
}

#[derive(Default)]
struct Counting {
    begun: AtomicU64,
    advanced: AtomicU64,
    ended: AtomicU64,
}

impl Progress for Counting {
    fn begin(&self, label: &str, total: u64) {
        if label == "viv" {
            self.begun.fetch_add(total, Ordering::SeqCst);
        }
    }
    fn advance(&self, n: u64) {
        self.advanced.fetch_add(n, Ordering::SeqCst);
    }
    fn end(&self) {
        self.ended.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn progress_counts_classes() {
    let (data, labels) = oracle_data(35);
    let ds = dataset(4, 4, 4, data, Some(labels));
    let p = Counting::default();
    let opts = RunOptions {
        selection: viv_defaults(),
        threads: Threads(2),
        ..Default::default()
    };
    run(&ds, &opts, &p).unwrap();
    assert_eq!(p.begun.load(Ordering::SeqCst), 4);
    assert_eq!(p.advanced.load(Ordering::SeqCst), 4);
    assert_eq!(p.ended.load(Ordering::SeqCst), 1);
}

/// The default VIV keys, so these tests see only the VIV family whatever else the registry holds.
fn viv_defaults() -> Selection {
    Selection::List(
        [
            "viv",
            "viv_per_dim",
            "viv_total_variance",
            "viv_anisotropy",
            "viv_logit_normal",
        ]
        .map(String::from)
        .to_vec(),
    )
}

#[test]
fn mixed_precision_with_a_pooled_start_matches_the_f64_reference() {
    // D = 4 x 16 x 16 = 1024: the flip-flop runs its early sweeps in f32 with acceleration, and
    // with 6 classes > START_POOL the classes 0, 1, 3 and 4 start from the identity while 2 and 5
    // start from their mean spatial factor. Every class must land on the fixed point of the
    // reference iteration (all sweeps f64, from Sigma_S = I): both stop within tol = 1e-6 relative
    // change of the same unique MLE, so their VIVs agree to about 1e-7; and the numbers must not
    // depend on the thread count (the pool is fixed by the class order).
    use diffusability::metrics::viv::START_POOL;
    use diffusability::metrics::viv::flipflop::{FitOptions, Residuals, fit};
    let (c, h, w, per) = (4usize, 16usize, 16usize, 80usize);
    let mut rng = ChaCha8Rng::seed_from_u64(77);
    let mut data = Vec::new();
    let mut labels = Vec::new();
    for k in 0..6i64 {
        let (class, _, _) = random_class(&mut rng, c, h, w, 1.0);
        class.sample(&mut rng, per, &mut data);
        labels.extend(std::iter::repeat_n(10 * k, per));
    }
    let ds = dataset(c, h, w, data.clone(), Some(labels));
    let a = report(&ds, &DEFAULT_KEYS, Normalize::None, 1, 0, &[]);
    let b = report(&ds, &DEFAULT_KEYS, Normalize::None, 3, 0, &[]);
    assert_eq!(a.metrics, b.metrics);
    assert_eq!(a.details, b.details);
    let ff = &a.details["viv"]["flip_flop"];
    assert_eq!(ff["start"], "pooled");
    assert_eq!(START_POOL, 4);
    assert_eq!(ff["start_classes"], serde_json::json!([0, 10, 30, 40]));
    let d = c * h * w;
    let opts = FitOptions {
        ridge: 1e-6,
        max_sweeps: 100,
        tol: 1e-6,
    };
    assert_eq!(ff["precision"], "mixed");
    // viv_precision = f64 runs the reference iteration itself: every class from the identity, no
    // f32 sweep, the same sweeps and values as `fit`.
    let reference = report(
        &ds,
        &DEFAULT_KEYS,
        Normalize::None,
        2,
        0,
        &[("viv_precision", ParamValue::Str("f64".into()))],
    );
    let rf = &reference.details["viv"]["flip_flop"];
    assert_eq!(
        (&rf["precision"], &rf["start"]),
        (&"f64".into(), &"identity".into())
    );
    let per_class = a.details["viv"]["per_class"].as_array().unwrap();
    let per_class_ref = reference.details["viv"]["per_class"].as_array().unwrap();
    for (k, p) in per_class.iter().enumerate() {
        assert_eq!(p["converged"], true);
        assert!(p["sweeps_f32"].as_u64().unwrap() >= 1);
        let q = &per_class_ref[k];
        assert_eq!(q["sweeps_f32"], 0);
        let rows: Vec<f64> = data[k * per * d..(k + 1) * per * d]
            .iter()
            .map(|&x| x as f64)
            .collect();
        let f = fit(&Residuals::from_rows(c, h * w, &rows), &opts).unwrap();
        assert!(f.converged);
        let want = Spectrum::new(
            &linalg::sym_eigvals(f.sigma_c.as_ref()).unwrap(),
            &linalg::sym_eigvals(f.sigma_s.as_ref()).unwrap(),
        )
        .viv();
        let got = p["viv"].as_f64().unwrap();
        assert!(
            rel(got, want) < 1e-6,
            "class {k}: {got} vs f64 reference {want}"
        );
        assert_eq!(q["sweeps"].as_u64().unwrap() as usize, f.sweeps);
        assert!(rel(q["viv"].as_f64().unwrap(), want) < 1e-12);
    }
}
