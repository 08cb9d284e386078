//! VIV, velocity irreducible variance: the study's own metric (arXiv 2606.03578, eqs. 3-6;
//! metrics.md section 1).
//!
//! Each class is modelled as a Gaussian whose covariance is a Kronecker product
//! `Sigma_C (x) Sigma_S` fitted by flip-flop ([`flipflop`]); the irreducible variance of the flow
//! matching velocity then has a closed form in the two factors' eigenvalues ([`curve`]): its time
//! integral (VIV), its two factors (total variance and anisotropy), its logit-normal time average
//! ([`quadrature`]) and the curve `V(t)`. [`marginal`] estimates the same quantity for the class
//! mixture by Monte Carlo. Without labels all samples form one class.
//!
//! Keys (means over fitted classes, unweighted): `viv`, `viv_per_dim` (`viv / D`),
//! `viv_total_variance` (`T / D`), `viv_anisotropy`, `viv_logit_normal`, and the opt-in
//! `viv_marginal`. Details under `viv`: `conditioning` (`class` or `unconditional`, with a `note`
//! without labels), `classes`, `classes_skipped` and `skipped` (label, size, reason), `flip_flop`
//! (ridge, tol, max_sweeps, precision: `mixed` or `f64` (see `viv_precision`), start: `identity` or
//! `pooled`, start_classes: the labels whose mean spatial factor started the other classes' fits, see
//! [`START_POOL`]), `time_weighting` (logit-normal mean, std, Gauss-Hermite nodes), `curve` (`V(t)`
//! averaged over classes at `t = 0, 0.01, ..., 1`) and `per_class` (label, n, viv, total_variance,
//! anisotropy, logit_normal, sweeps, sweeps_f32 (of those, the sweeps run in f32), converged, ridge_c,
//! ridge_s: the ridge added to each final factor, 0 when none). Under `viv_marginal`: value,
//! std_error, samples_per_node, nodes, classes, conditional (the exact class-conditional part), plain
//! (the estimate without control variate) and curve (`V_marg` at the nodes).
//!
//! Classes are fitted in parallel (rayon, faer sequential inside each) and merged in class order, so
//! every number is the same for any thread count.

pub mod curve;
pub mod flipflop;
pub mod marginal;
pub mod quadrature;

use super::params::DefaultValue;
use super::{
    Context, Family, MetricInfo, Needs, Output, ParamKind, ParamSpec, Params, Perspective,
};
use crate::error::Result;
use crate::linalg;
use curve::Spectrum;
use faer::Mat;
use flipflop::{ClassBuffers, Degenerate, FitOptions, Precision, Residuals, RidgeReason, Start};
use quadrature::{LogitNormal, TimeNode};
use rayon::prelude::*;
use serde_json::{Value, json};

const fn metric(name: &'static str, opt_in: bool, help: &'static str) -> MetricInfo {
    MetricInfo {
        name,
        perspective: Perspective::VelocityAmbiguity,
        higher_is_better: false,
        opt_in,
        help,
    }
}

static METRICS: [MetricInfo; 6] = [
    metric(
        "viv",
        false,
        "velocity irreducible variance: mean over classes of (pi/2) sum_i sqrt(lam_i), lam the eigenvalues \
         of the class covariance fitted as a Kronecker product (study eqs. 3-5)",
    ),
    metric(
        "viv_per_dim",
        false,
        "viv / D with D = C*H*W, comparable across latent shapes (study eq. 5)",
    ),
    metric(
        "viv_total_variance",
        false,
        "mean over classes of the total within-class variance T = sum_i lam_i, per dimension (T / D; the \
         compactness factor of study eq. 6)",
    ),
    metric(
        "viv_anisotropy",
        false,
        "mean over classes of rho = sum_i s_i / sqrt(D sum_i s_i^2), s_i = sqrt(lam_i), in (0, 1], 1 = \
         isotropic (the spectral factor of study eq. 6)",
    ),
    metric(
        "viv_logit_normal",
        false,
        "mean over classes of E[V(t)] for t ~ logit-normal(viv_logit_mean, viv_logit_std), the timestep \
         weighting of LightningDiT training (V(t) of study eq. 4)",
    ),
    metric(
        "viv_marginal",
        true,
        "VIV of the class mixture without label conditioning (the text-guided case of the study): \
         integral of E||v - v*(x_t)||^2 by Monte Carlo at Gauss-Legendre nodes in t; standard error in \
         details (study eq. 4 for a Gaussian mixture)",
    ),
];

static PARAMS: [ParamSpec; 8] = [
    ParamSpec {
        name: "viv_ridge",
        kind: ParamKind::Float {
            min: 0.0,
            max: 1.0,
            open_min: false,
        },
        default: DefaultValue::Float(1e-6),
        help: "VIV: ridge eps * tr(F)/dim(F) added to a Kronecker factor F with too few samples or not \
               positive definite",
    },
    ParamSpec {
        name: "viv_logit_mean",
        kind: ParamKind::Float {
            min: -10.0,
            max: 10.0,
            open_min: false,
        },
        default: DefaultValue::Float(0.0),
        help: "VIV: mean of logit(t) for viv_logit_normal",
    },
    ParamSpec {
        name: "viv_logit_std",
        kind: ParamKind::Float {
            min: 0.0,
            max: 3.0,
            open_min: true,
        },
        default: DefaultValue::Float(1.0),
        help: "VIV: standard deviation of logit(t) for viv_logit_normal",
    },
    ParamSpec {
        name: "viv_max_sweeps",
        kind: ParamKind::Int {
            min: 1,
            max: 100_000,
        },
        default: DefaultValue::Int(100),
        help: "VIV: most flip-flop sweeps per class",
    },
    ParamSpec {
        name: "viv_tol",
        kind: ParamKind::Float {
            min: 0.0,
            max: 1.0,
            open_min: true,
        },
        default: DefaultValue::Float(1e-6),
        help: "VIV: flip-flop stops when the relative Frobenius change of both factors is below this",
    },
    ParamSpec {
        name: "viv_precision",
        kind: ParamKind::Choice(&["auto", "f64"]),
        default: DefaultValue::Str("auto"),
        help: "VIV: flip-flop arithmetic. auto: for D >= 1024, f32 sweeps with Anderson acceleration \
               from a pooled spatial start (f64 sweeps take over at the f32 rounding floor); f64: every \
               class from Sigma_S = I in f64, the reference iteration",
    },
    ParamSpec {
        name: "viv_marginal_samples",
        kind: ParamKind::Int {
            min: 2,
            max: 10_000_000,
        },
        default: DefaultValue::Int(256),
        help: "VIV: Monte Carlo draws for viv_marginal, each evaluated at every time node",
    },
    ParamSpec {
        name: "viv_marginal_nodes",
        kind: ParamKind::Int { min: 1, max: 1000 },
        default: DefaultValue::Int(16),
        help: "VIV: Gauss-Legendre nodes in t for viv_marginal",
    },
];

/// The VIV family: `viv`, `viv_per_dim`, `viv_total_variance`, `viv_anisotropy`, `viv_logit_normal`,
/// and the opt-in `viv_marginal`.
pub static FAMILY: Family = Family {
    name: "viv",
    needs: Needs {
        labels: false,
        masks: false,
    },
    metrics: &METRICS,
    params: &PARAMS,
    compute,
};

/// Points of the `V(t)` curve in the details: `t = 0, 0.01, ..., 1`.
pub const CURVE_POINTS: usize = 101;

/// Smallest latent dimension `D` from which the flip-flop runs its sweeps in f32 while they converge
/// ([`Precision::Mixed`], unless `viv_precision` is `f64`). Below it a sweep costs well under a
/// millisecond and the all-f64 reference iteration is kept, sweep for sweep as metrics.md section 1
/// writes it.
pub const MIXED_PRECISION_MIN_DIM: usize = 1024;

/// Classes fitted first (from `Sigma_S = I`, evenly spaced in label order) whose mean spatial factor
/// starts the flip-flop of every other class when it runs in [`Precision::Mixed`]; with fewer classes
/// than this + 1, every class starts from the identity.
pub const START_POOL: usize = 4;

/// One class's fit and closed-form quantities.
struct ClassFit {
    label: Option<i64>,
    n: usize,
    viv: f64,
    total_variance: f64,
    anisotropy: f64,
    logit_normal: f64,
    curve: Vec<f64>,
    sweeps: usize,
    sweeps_f32: usize,
    converged: bool,
    change: f64,
    ridge_c: Option<flipflop::Ridge>,
    ridge_s: Option<flipflop::Ridge>,
    component: Option<marginal::Component>,
}

enum Outcome {
    Fitted(Box<ClassFit>),
    Skipped {
        label: Option<i64>,
        n: usize,
        why: Degenerate,
    },
}

/// How [`fit_class`] fits a class.
struct FitSetup<'a> {
    opts: &'a FitOptions,
    precision: Precision,
    time: &'a [TimeNode],
    want_component: bool,
    /// The spatial factor the flip-flop starts from (None: the identity).
    start: Option<&'a Start>,
    /// Return the fitted spatial factor too (for the start of the other classes).
    keep_spatial: bool,
}

fn fit_class(
    ctx: &Context<'_>,
    label: Option<i64>,
    members: &[usize],
    setup: &FitSetup<'_>,
    bufs: &mut ClassBuffers,
) -> (Outcome, Option<Mat<f64>>) {
    let FitSetup {
        opts,
        precision,
        time,
        want_component,
        start,
        keep_spatial,
    } = *setup;
    let n = members.len();
    let skip = |why| (Outcome::Skipped { label, n, why }, None);
    if n < 2 {
        return skip(Degenerate::TooFew);
    }
    let mut res = if precision == Precision::Mixed {
        Residuals::from_normalized_f32_reusing(ctx.z, members, bufs)
    } else {
        Residuals::from_normalized(ctx.z, members)
    };
    let fit = flipflop::fit_with(&res, opts, precision, start);
    res.recycle(bufs);
    let fit = match fit {
        Ok(f) => f,
        Err(why) => return skip(why),
    };
    // The spectrum always comes from the eigenvalue-only solver, so the default keys do not depend on
    // whether viv_marginal (which also needs eigenvectors) was asked for.
    let Some((lc, ls)) =
        linalg::sym_eigvals(fit.sigma_c.as_ref()).zip(linalg::sym_eigvals(fit.sigma_s.as_ref()))
    else {
        return skip(Degenerate::NonFinite);
    };
    let spectrum = Spectrum::new(&lc, &ls);
    let component = if want_component {
        let Some(((lc, uc), (ls, us))) =
            linalg::sym_eigen(fit.sigma_c.as_ref()).zip(linalg::sym_eigen(fit.sigma_s.as_ref()))
        else {
            return skip(Degenerate::NonFinite);
        };
        let clip = |v: Vec<f64>| v.into_iter().map(|x| x.max(0.0)).collect();
        Some(marginal::Component {
            weight: n as f64,
            mean: res.into_mean(),
            lc: clip(lc),
            uc,
            ls: clip(ls),
            us,
        })
    } else {
        None
    };
    let Some(anisotropy) = spectrum.anisotropy() else {
        return skip(Degenerate::Identical);
    };
    let curve = (0..CURVE_POINTS)
        .map(|i| {
            let m = (CURVE_POINTS - 1) as f64;
            spectrum.v(i as f64 / m, (CURVE_POINTS - 1 - i) as f64 / m)
        })
        .collect();
    let spatial = if keep_spatial && fit.converged {
        Some(fit.sigma_s)
    } else {
        bufs.give(fit.sigma_s);
        None
    };
    let fitted = Outcome::Fitted(Box::new(ClassFit {
        label,
        n,
        viv: spectrum.viv(),
        total_variance: spectrum.total_variance(),
        anisotropy,
        logit_normal: spectrum.expectation(time),
        curve,
        sweeps: fit.sweeps,
        sweeps_f32: fit.sweeps_f32,
        converged: fit.converged,
        change: fit.change,
        ridge_c: fit.ridge_c,
        ridge_s: fit.ridge_s,
        component,
    }));
    (fitted, spatial)
}

fn label_name(label: Option<i64>) -> String {
    label.map_or_else(|| "all samples".to_string(), |l| l.to_string())
}

/// "labels 3, 7 and 12 more" (at most 10 named), or "all samples" for the unlabelled set.
fn name_list(items: &[String]) -> String {
    const SHOWN: usize = 10;
    if items.first().is_some_and(|x| x.starts_with("all samples")) {
        return items.join(", ");
    }
    let mut s = items
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > SHOWN {
        s.push_str(&format!(" and {} more", items.len() - SHOWN));
    }
    format!("labels {s}")
}

fn classes_word(k: usize) -> &'static str {
    if k == 1 { "class" } else { "classes" }
}

fn compute(ctx: &Context<'_>, params: &Params) -> Result<Output> {
    let opts = FitOptions {
        ridge: params.float("viv_ridge")?,
        max_sweeps: params.usize("viv_max_sweeps")?,
        tol: params.float("viv_tol")?,
    };
    let time = LogitNormal {
        mean: params.float("viv_logit_mean")?,
        std: params.float("viv_logit_std")?,
    };
    let nodes = time.nodes();
    let want_marginal = ctx.wants("viv_marginal");
    let sh = ctx.z.shape();
    let (c, s, d) = (sh.c, sh.s(), sh.d());

    type Classes = Vec<(Option<i64>, Vec<usize>)>;
    let (classes, conditional): (Classes, bool) = match &ctx.data.labels {
        Some(l) => (
            l.classes
                .iter()
                .map(|&v| Some(v))
                .zip(l.members())
                .collect(),
            true,
        ),
        None => (vec![(None, (0..sh.n).collect())], false),
    };

    let precision = if d >= MIXED_PRECISION_MIN_DIM && params.str("viv_precision")? == "auto" {
        Precision::Mixed
    } else {
        Precision::F64
    };
    ctx.progress.begin("viv", classes.len() as u64);
    // Mixed precision: a few evenly spaced classes are fitted first from Sigma_S = I, and the mean
    // of their spatial factors starts every other class's fit (fewer sweeps when the classes share
    // spatial structure; the same fixed point either way). The pool depends only on the classes,
    // so the results do not depend on the thread count.
    let k_all = classes.len();
    let pool: Vec<usize> = if precision == Precision::Mixed && k_all > START_POOL {
        (0..START_POOL).map(|j| j * k_all / START_POOL).collect()
    } else {
        Vec::new()
    };
    let fit_one = |k: usize, start: Option<&Start>, keep: bool, bufs: &mut ClassBuffers| {
        let (label, members) = &classes[k];
        let o = fit_class(
            ctx,
            *label,
            members,
            &FitSetup {
                opts: &opts,
                precision,
                time: &nodes,
                want_component: want_marginal,
                start,
                keep_spatial: keep,
            },
            bufs,
        );
        ctx.progress.advance(1);
        o
    };
    let pooled: Vec<(Outcome, Option<Mat<f64>>)> = pool
        .par_iter()
        .map_init(ClassBuffers::default, |b, &k| fit_one(k, None, true, b))
        .collect();
    let spatial: Vec<&Mat<f64>> = pooled.iter().filter_map(|(_, m)| m.as_ref()).collect();
    let start = (!spatial.is_empty())
        .then(|| {
            let mut m = Mat::<f64>::zeros(s, s);
            for x in &spatial {
                m += *x;
            }
            m * (1.0 / spatial.len() as f64)
        })
        .and_then(Start::new);
    let start_labels: Vec<Option<i64>> = pool
        .iter()
        .zip(&pooled)
        .filter(|(_, (_, m))| m.is_some())
        .map(|(&k, _)| classes[k].0)
        .collect();
    let rest: Vec<(Outcome, Option<Mat<f64>>)> = (0..k_all)
        .into_par_iter()
        .filter(|k| !pool.contains(k))
        .map_init(ClassBuffers::default, |b, k| {
            fit_one(k, start.as_ref(), false, b)
        })
        .collect();
    let mut pooled = pooled.into_iter();
    let mut rest = rest.into_iter();
    let outcomes: Vec<Outcome> = (0..k_all)
        .filter_map(|k| {
            if pool.contains(&k) {
                pooled.next()
            } else {
                rest.next()
            }
        })
        .map(|(o, _)| o)
        .collect();
    ctx.progress.end();

    let mut out = Output::default();
    let mut fitted: Vec<Box<ClassFit>> = Vec::new();
    let (mut too_few, mut identical, mut non_finite, mut singular) =
        (vec![], vec![], vec![], vec![]);
    let mut skipped_json = Vec::new();
    for o in outcomes {
        match o {
            Outcome::Fitted(f) => fitted.push(f),
            Outcome::Skipped { label, n, why } => {
                let name = label_name(label);
                let reason = match why {
                    Degenerate::TooFew => {
                        too_few.push(name);
                        "fewer than 2 samples"
                    }
                    Degenerate::Identical => {
                        identical.push(format!("{name} ({n} samples)"));
                        "all samples identical"
                    }
                    Degenerate::NonFinite => {
                        non_finite.push(name);
                        "non-finite values"
                    }
                    Degenerate::Singular => {
                        singular.push(name);
                        "singular factor"
                    }
                };
                skipped_json.push(json!({"label": label, "n": n, "reason": reason}));
            }
        }
    }
    let w = &mut out.warnings;
    if !too_few.is_empty() {
        w.push(format!(
            "viv: {} {} with fewer than 2 samples skipped ({})",
            too_few.len(),
            classes_word(too_few.len()),
            name_list(&too_few)
        ));
    }
    if !identical.is_empty() {
        w.push(format!(
            "viv: {} {} whose samples are all identical (zero covariance) skipped: {}",
            identical.len(),
            classes_word(identical.len()),
            name_list(&identical)
        ));
    }
    if !non_finite.is_empty() {
        w.push(format!(
            "viv: {} {} with NaN or infinite latent values skipped ({})",
            non_finite.len(),
            classes_word(non_finite.len()),
            name_list(&non_finite)
        ));
    }
    if !singular.is_empty() {
        w.push(format!(
            "viv: {} {} skipped: a covariance factor is singular and viv_ridge = {} adds nothing ({})",
            singular.len(),
            classes_word(singular.len()),
            opts.ridge,
            name_list(&singular)
        ));
    }
    let ridge_list =
        |factor: fn(&ClassFit) -> Option<flipflop::Ridge>, reason: RidgeReason| -> Vec<String> {
            fitted
                .iter()
                .filter(|f| factor(f).is_some_and(|r| r.reason == reason))
                .map(|f| match reason {
                    RidgeReason::FewSamples => format!("{} ({} samples)", label_name(f.label), f.n),
                    RidgeReason::NotPositiveDefinite => label_name(f.label),
                })
                .collect()
        };
    let few_s = ridge_list(|f| f.ridge_s, RidgeReason::FewSamples);
    if !few_s.is_empty() {
        w.push(format!(
            "viv: {} {} with fewer than S/C+1 = {:.4} samples: ridge viv_ridge * tr/S added to the spatial \
             factor ({})",
            few_s.len(),
            classes_word(few_s.len()),
            s as f64 / c as f64 + 1.0,
            name_list(&few_s)
        ));
    }
    let few_c = ridge_list(|f| f.ridge_c, RidgeReason::FewSamples);
    if !few_c.is_empty() {
        w.push(format!(
            "viv: {} {} with fewer than C/S+1 = {:.4} samples: ridge viv_ridge * tr/C added to the channel \
             factor ({})",
            few_c.len(),
            classes_word(few_c.len()),
            c as f64 / s as f64 + 1.0,
            name_list(&few_c)
        ));
    }
    let npd_c = ridge_list(|f| f.ridge_c, RidgeReason::NotPositiveDefinite);
    if !npd_c.is_empty() {
        w.push(format!(
            "viv: channel factor not positive definite (a constant or duplicated channel) in {} {}: ridge \
             viv_ridge * tr/C added ({})",
            npd_c.len(),
            classes_word(npd_c.len()),
            name_list(&npd_c)
        ));
    }
    let npd_s = ridge_list(|f| f.ridge_s, RidgeReason::NotPositiveDefinite);
    if !npd_s.is_empty() {
        w.push(format!(
            "viv: spatial factor not positive definite (a constant or duplicated position) in {} {}: ridge \
             viv_ridge * tr/S added ({})",
            npd_s.len(),
            classes_word(npd_s.len()),
            name_list(&npd_s)
        ));
    }
    let not_conv: Vec<String> = fitted
        .iter()
        .filter(|f| !f.converged)
        .map(|f| format!("{} (change {:.1e})", label_name(f.label), f.change))
        .collect();
    if !not_conv.is_empty() {
        w.push(format!(
            "viv: flip-flop did not reach viv_tol = {:e} within viv_max_sweeps = {} for {} {}; their last \
             factors are used ({})",
            opts.tol,
            opts.max_sweeps,
            not_conv.len(),
            classes_word(not_conv.len()),
            name_list(&not_conv)
        ));
    }

    let k = fitted.len();
    let mut details = serde_json::Map::new();
    details.insert(
        "conditioning".into(),
        (if conditional {
            "class"
        } else {
            "unconditional"
        })
        .into(),
    );
    if !conditional {
        details.insert(
            "note".into(),
            "no labels: one Gaussian fitted over all samples (unconditional VIV)".into(),
        );
    }
    details.insert("classes".into(), k.into());
    details.insert("classes_skipped".into(), skipped_json.len().into());
    details.insert("skipped".into(), Value::Array(skipped_json));
    details.insert(
        "flip_flop".into(),
        json!({
            "ridge": opts.ridge,
            "tol": opts.tol,
            "max_sweeps": opts.max_sweeps,
            "precision": match precision {
                Precision::Mixed => "mixed",
                Precision::F64 => "f64",
            },
            "start": if start.is_some() { "pooled" } else { "identity" },
            "start_classes": start_labels,
        }),
    );
    details.insert(
        "time_weighting".into(),
        json!({"distribution": "logit-normal", "mean": time.mean, "std": time.std, "nodes": time.node_count()}),
    );
    if k == 0 {
        out.warnings.push(
            "viv: no class could be fitted (each needs at least 2 distinct samples); VIV not computed".into(),
        );
        out.details.insert("viv".into(), Value::Object(details));
        return Ok(out);
    }
    let mean_of = |f: fn(&ClassFit) -> f64| fitted.iter().map(|x| f(x)).sum::<f64>() / k as f64;
    let viv = mean_of(|f| f.viv);
    out.metrics.push(("viv", viv));
    out.metrics.push(("viv_per_dim", viv / d as f64));
    out.metrics.push((
        "viv_total_variance",
        mean_of(|f| f.total_variance) / d as f64,
    ));
    out.metrics
        .push(("viv_anisotropy", mean_of(|f| f.anisotropy)));
    out.metrics
        .push(("viv_logit_normal", mean_of(|f| f.logit_normal)));

    let curve_v: Vec<f64> = (0..CURVE_POINTS)
        .map(|i| fitted.iter().map(|f| f.curve[i]).sum::<f64>() / k as f64)
        .collect();
    let curve_t: Vec<f64> = (0..CURVE_POINTS)
        .map(|i| i as f64 / (CURVE_POINTS - 1) as f64)
        .collect();
    details.insert("curve".into(), json!({"t": curve_t, "v": curve_v}));
    let per_class: Vec<Value> = fitted
        .iter()
        .map(|f| {
            json!({
                "label": f.label,
                "n": f.n,
                "viv": f.viv,
                "total_variance": f.total_variance,
                "anisotropy": f.anisotropy,
                "logit_normal": f.logit_normal,
                "sweeps": f.sweeps,
                "sweeps_f32": f.sweeps_f32,
                "converged": f.converged,
                "ridge_c": f.ridge_c.map_or(0.0, |r| r.amount),
                "ridge_s": f.ridge_s.map_or(0.0, |r| r.amount),
            })
        })
        .collect();
    details.insert("per_class".into(), Value::Array(per_class));
    out.details.insert("viv".into(), Value::Object(details));

    if want_marginal {
        let samples = params.usize("viv_marginal_samples")?;
        let nodes_q = params.usize("viv_marginal_nodes")?;
        let comps: Vec<marginal::Component> =
            fitted.into_iter().filter_map(|f| f.component).collect();
        let est = marginal::estimate(
            &comps,
            c,
            s,
            &marginal::Options {
                samples,
                nodes: nodes_q,
                seed: ctx.seed,
            },
            ctx.progress,
        );
        out.metrics.push(("viv_marginal", est.value));
        out.details.insert(
            "viv_marginal".into(),
            json!({
                "value": est.value,
                "std_error": est.std_error,
                "samples_per_node": samples,
                "nodes": nodes_q,
                "classes": comps.len(),
                "conditional": est.conditional,
                "plain": {"value": est.plain_value, "std_error": est.plain_std_error},
                "curve": {"t": est.t, "v": est.v},
            }),
        );
    }
    Ok(out)
}
