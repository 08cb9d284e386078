//! Semantic separability (spec section 2): do images of one class sit together in latent space?
//! `lnc` (latent neighbour consistency, exact kNN) and `linear_probe_acc` (multinomial logistic
//! regression). Both need labels.

pub mod features;
pub mod lbfgs;
pub mod lnc;
pub mod probe;

use super::params::DefaultValue;
use super::{
    Context, Family, MetricInfo, Needs, Output, ParamKind, ParamSpec, Params, Perspective,
};
use crate::data::{Dataset, Labels, Normalized};
use crate::error::{Error, Result};
use crate::stats::knn::{self, KnnMetric};
use features::FeatureKind;
use serde_json::json;

/// `lnc`: foreground-pooled features, exact kNN, share of same-class neighbours.
pub static LNC: Family = Family {
    name: "lnc",
    needs: Needs {
        labels: true,
        masks: false,
    },
    metrics: &[MetricInfo {
        name: "lnc",
        perspective: Perspective::SemanticSeparability,
        higher_is_better: true,
        opt_in: false,
        help: "latent neighbour consistency: share of each image's k nearest neighbours (cosine, foreground-pooled) with its class",
    }],
    params: &[
        ParamSpec {
            name: "lnc_k",
            kind: ParamKind::Int {
                min: 1,
                max: 1_000_000,
            },
            default: DefaultValue::Int(10),
            help: "neighbours per image for lnc (clamped to N - 1)",
        },
        ParamSpec {
            name: "lnc_metric",
            kind: ParamKind::Choice(&["cosine", "l2"]),
            default: DefaultValue::Str("cosine"),
            help: "neighbour ranking for lnc",
        },
        ParamSpec {
            name: "lnc_features",
            kind: ParamKind::Choice(&["pooled", "flatten"]),
            default: DefaultValue::Str("pooled"),
            help: "lnc features: channel means over foreground tokens, or the whole C*H*W latent",
        },
    ],
    compute: compute_lnc,
};

/// `linear_probe_acc`: multinomial logistic regression on standardized features.
pub static PROBE: Family = Family {
    name: "linear_probe",
    needs: Needs {
        labels: true,
        masks: false,
    },
    metrics: &[MetricInfo {
        name: "linear_probe_acc",
        perspective: Perspective::SemanticSeparability,
        higher_is_better: true,
        opt_in: false,
        help: "top-1 test accuracy of an L2-regularized multinomial logistic regression on pooled latents (MAE linear probing)",
    }],
    params: &[
        ParamSpec {
            name: "probe_alpha",
            kind: ParamKind::Float {
                min: 0.0,
                max: 1e6,
                open_min: true,
            },
            default: DefaultValue::Float(1e-4),
            help: "L2 penalty alpha of the probe: (1/n) sum CE + (alpha/2) |W|^2",
        },
        ParamSpec {
            name: "probe_features",
            kind: ParamKind::Choice(&["pooled", "flatten"]),
            default: DefaultValue::Str("pooled"),
            help: "probe features: channel means over all tokens, or the whole C*H*W latent",
        },
        ParamSpec {
            name: "probe_train",
            kind: ParamKind::Path,
            default: DefaultValue::NoPath,
            help: "a separate labelled training set for the probe; the input is then the test set",
        },
        ParamSpec {
            name: "probe_max_iter",
            kind: ParamKind::Int {
                min: 1,
                max: 1_000_000,
            },
            default: DefaultValue::Int(500),
            help: "L-BFGS iterations of the probe at most",
        },
    ],
    compute: compute_probe,
};

fn labels_of<'a>(ctx: &'a Context<'_>, metric: &str) -> Result<&'a Labels> {
    let labels = ctx
        .data
        .labels
        .as_ref()
        .ok_or_else(|| Error::internal(format!("{metric} was run without labels")))?;
    let n = ctx.z.shape().n;
    if labels.len() != n {
        return Err(Error::input_msg(format!(
            "labels: {} entries, expected {n} (one per latent)",
            labels.len()
        )));
    }
    Ok(labels)
}

fn compute_lnc(ctx: &Context<'_>, params: &Params) -> Result<Output> {
    let labels = labels_of(ctx, "lnc")?;
    let k_req = params.usize("lnc_k")?;
    let metric = match params.str("lnc_metric")? {
        "cosine" => KnnMetric::Cosine,
        "l2" => KnnMetric::L2,
        other => return Err(Error::internal(format!("lnc_metric `{other}`"))),
    };
    let kind = FeatureKind::parse(params.str("lnc_features")?)?;
    let sh = ctx.z.shape();
    let n = sh.n;
    let mut out = Output::default();
    if n < 2 {
        out.warnings.push(format!(
            "lnc: not computed, it needs at least 2 latents, found {n}"
        ));
        return Ok(out);
    }
    let k = k_req.clamp(1, n - 1);
    if k != k_req {
        out.warnings.push(format!(
            "lnc: lnc_k = {k_req} is not below the number of latents ({n}); used k = {k}"
        ));
    }
    let masks = ctx.data.masks.as_ref();
    let nb = match kind {
        FeatureKind::Pooled => {
            let (f, empty) = features::pooled(ctx.z, masks)?;
            if empty > 0 {
                out.warnings.push(format!(
                    "lnc: {empty} of {n} images have no foreground token; their features are means over all tokens"
                ));
            }
            knn::knn(&f, n, sh.c, k, metric, ctx.progress)
        }
        FeatureKind::Flatten => {
            let f = features::flatten(ctx.z)?;
            knn::knn(&f, n, sh.d(), k, metric, ctx.progress)
        }
    };
    let r = lnc::lnc(&nb, labels);
    let single = r.class_sizes.iter().filter(|&&s| s == 1).count();
    if single > 0 {
        out.warnings.push(format!(
            "lnc: {single} of {} classes have a single latent, which has no same-class neighbour",
            labels.num_classes()
        ));
    }
    out.metrics.push(("lnc", r.value));
    out.details.insert(
        "lnc".into(),
        json!({
            "k": k,
            "metric": metric.as_str(),
            "features": kind.as_str(),
            "foreground": kind == FeatureKind::Pooled && masks.is_some(),
            "per_class": {
                "class": labels.classes,
                "n": r.class_sizes,
                "consistency": r.per_class,
            },
        }),
    );
    Ok(out)
}

fn compute_probe(ctx: &Context<'_>, params: &Params) -> Result<Output> {
    let labels = labels_of(ctx, "linear_probe_acc")?;
    let train = match params.path("probe_train")? {
        Some(path) => Some((path.to_string(), probe::load_probe_train(path)?)),
        None => None,
    };
    probe_with(
        ctx,
        labels,
        train.as_ref().map(|(p, d)| (p.as_str(), d)),
        params,
    )
}

/// The probe of the input (its labels `labels`), trained on the seeded split of the input, or on
/// `train` (`(path, data set)`) with the whole input as the test set.
pub fn probe_with(
    ctx: &Context<'_>,
    labels: &Labels,
    train: Option<(&str, &Dataset)>,
    params: &Params,
) -> Result<Output> {
    let alpha = params.float("probe_alpha")?;
    let kind = FeatureKind::parse(params.str("probe_features")?)?;
    let max_iter = params.usize("probe_max_iter")?;
    let mut out = Output::default();
    let (x, d) = probe::probe_features(ctx.z, kind)?;
    let (xtr, ytr, xte, yte, split) = match train {
        None => {
            let s = probe::stratified_split(labels, ctx.seed);
            if s.singletons > 0 {
                out.warnings.push(format!(
                    "linear_probe_acc: {} classes have a single latent; it is used for training only",
                    s.singletons
                ));
            }
            let pick = |idx: &[usize]| idx.iter().map(|&i| labels.raw[i]).collect::<Vec<_>>();
            (
                probe::gather_rows(&x, d, &s.train),
                pick(&s.train),
                probe::gather_rows(&x, d, &s.test),
                pick(&s.test),
                "stratified 80/20",
            )
        }
        Some((path, ds)) => {
            let (a, b) = (ds.latents.shape(), ctx.z.shape());
            if (a.c, a.h, a.w) != (b.c, b.h, b.w) {
                return Err(Error::input(
                    path,
                    None,
                    format!(
                        "has latents of shape (C, H, W) = ({}, {}, {}), expected ({}, {}, {}) as in the input (--probe-train)",
                        a.c, a.h, a.w, b.c, b.h, b.w
                    ),
                ));
            }
            let tl = ds.labels.as_ref().ok_or_else(|| {
                Error::input(
                    path,
                    None,
                    "has no labels; --probe-train needs a labelled training set (a `labels` key)",
                )
            })?;
            // One normalization for the whole report: the training set is seen through the input's.
            let tz = Normalized {
                latents: &ds.latents,
                affine: ctx.z.affine,
            };
            let (xt, _) = probe::probe_features(tz, kind)?;
            (xt, tl.raw.clone(), x, labels.raw.clone(), "probe_train")
        }
    };
    let r = match probe::linear_probe(&xtr, &ytr, &xte, &yte, d, alpha, max_iter, ctx.progress) {
        Ok(r) => r,
        Err(probe::ProbeSkip::NoTest) => {
            out.warnings.push(
                "linear_probe_acc: not computed, no class has 2 or more latents, so the test part is empty"
                    .into(),
            );
            return Ok(out);
        }
        Err(probe::ProbeSkip::OneClass) => {
            out.warnings.push(
                "linear_probe_acc: not computed, the training part has a single class".into(),
            );
            return Ok(out);
        }
    };
    if !r.fit.converged() {
        let why = match r.fit.stop {
            lbfgs::Stop::MaxIter => format!(
                "stopped at probe_max_iter = {max_iter} iterations; raise --probe-max-iter to converge"
            ),
            _ => "stopped where the objective no longer decreases at floating-point precision"
                .to_string(),
        };
        out.warnings.push(format!(
            "linear_probe_acc: L-BFGS did not reach gradient norm {:e} (final {:.3e}): {why}",
            probe::GRAD_TOL,
            r.fit.grad_norm
        ));
    }
    if r.unseen_test > 0 {
        out.warnings.push(format!(
            "linear_probe_acc: {} of {} test latents have a class absent from the training set; they count as errors",
            r.unseen_test, r.n_test
        ));
    }
    out.metrics.push(("linear_probe_acc", r.acc));
    out.details.insert(
        "linear_probe_acc".into(),
        json!({
            "n_train": r.n_train,
            "n_test": r.n_test,
            "classes": r.classes.len(),
            "iterations": r.fit.iterations,
            "evaluations": r.fit.evaluations,
            "converged": r.fit.converged(),
            "final_grad_norm": r.fit.grad_norm,
            "final_loss": r.fit.loss,
            "train_acc": r.train_acc,
            "features": kind.as_str(),
            "split": split,
            "constant_features": r.standardizer.constant,
        }),
    );
    Ok(out)
}
