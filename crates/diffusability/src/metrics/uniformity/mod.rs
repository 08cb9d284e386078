//! Latent uniformity (metrics.md section 5; ref. hustvl/LightningDiT `tools/latent_vis.py`): how evenly
//! latent pixel vectors fill a 2-D t-SNE map. Each repeat samples `tsne_samples` normalized pixel
//! vectors, embeds them with t-SNE ([`tsne`]), evaluates a Gaussian KDE at the embedded points and
//! summarizes the densities ([`density`]); the metrics are the means over `uniformity_repeats`
//! repeats. With `embedding` the statistics of that given `N x 2` embedding are reported instead.

pub mod density;
pub mod sample;
pub mod tsne;
pub mod vexp;

use super::params::DefaultValue;
use super::{
    Context, Family, MetricInfo, Needs, Output, ParamKind, ParamSpec, Params, Perspective,
};
use crate::error::{Error, ErrorKind, Result};
use crate::io::{RawArray, read_array};
use crate::stats::rng::stream;
use density::{KdeError, Uniformity};
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;
use serde_json::{Value, json};
use tsne::{Points, Settings, TsneError};

const P: Perspective = Perspective::LatentUniformity;

/// The uniformity family: `uniformity_cv`, `uniformity_gini`, `uniformity_entropy`.
pub static FAMILY: Family = Family {
    name: "uniformity",
    needs: Needs {
        labels: false,
        masks: false,
    },
    metrics: &[
        MetricInfo {
            name: "uniformity_cv",
            perspective: P,
            higher_is_better: false,
            opt_in: false,
            help: "coefficient of variation of the t-SNE map's KDE densities at its points (LightningDiT latent_vis.py)",
        },
        MetricInfo {
            name: "uniformity_gini",
            perspective: P,
            higher_is_better: false,
            opt_in: false,
            help: "Gini coefficient of the t-SNE map's KDE densities at its points (LightningDiT latent_vis.py)",
        },
        MetricInfo {
            name: "uniformity_entropy",
            perspective: P,
            higher_is_better: true,
            opt_in: false,
            help: "normalized entropy of the t-SNE map's KDE densities at its points (LightningDiT latent_vis.py)",
        },
    ],
    params: &[
        ParamSpec {
            name: "tsne_samples",
            kind: ParamKind::Int {
                min: 3,
                max: 1_000_000,
            },
            default: DefaultValue::Int(10_000),
            help: "latent pixel vectors sampled per uniformity repeat (all of them if there are fewer)",
        },
        ParamSpec {
            name: "tsne_perplexity",
            kind: ParamKind::Float {
                min: 1.0,
                max: 10_000.0,
                open_min: true,
            },
            default: DefaultValue::Float(30.0),
            help: "t-SNE perplexity",
        },
        ParamSpec {
            name: "tsne_iters",
            kind: ParamKind::Int {
                min: 1,
                max: 100_000,
            },
            default: DefaultValue::Int(1000),
            help: "t-SNE iterations (the first 250 with early exaggeration 12)",
        },
        ParamSpec {
            name: "uniformity_repeats",
            kind: ParamKind::Int { min: 1, max: 1000 },
            default: DefaultValue::Int(10),
            help: "uniformity repeats, each with its own sample of latent pixel vectors",
        },
        ParamSpec {
            name: "embedding",
            kind: ParamKind::Path,
            default: DefaultValue::NoPath,
            help: "an N x 2 embedding file whose uniformity is reported instead of computing t-SNE maps",
        },
    ],
    compute,
};

/// Statistics of the repeats, in order.
#[derive(Default)]
struct Repeats {
    cv: Vec<f64>,
    gini: Vec<f64>,
    entropy: Vec<f64>,
    kl: Vec<f64>,
    unreached: Vec<usize>,
}

impl Repeats {
    fn push(&mut self, u: Uniformity) {
        self.cv.push(u.cv);
        self.gini.push(u.gini);
        self.entropy.push(u.entropy);
    }
}

/// Mean and population standard deviation (ddof = 0, numpy's default).
fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / n;
    (m, var.sqrt())
}

fn compute(ctx: &Context<'_>, params: &Params) -> Result<Output> {
    match params.path("embedding")? {
        Some(path) => from_embedding(ctx, path),
        None => from_tsne(ctx, params),
    }
}

/// The output block shared by both sources: metrics are the means; details hold every repeat.
fn output(r: &Repeats, mut details: serde_json::Map<String, Value>) -> Output {
    let (cv, cv_sd) = mean_std(&r.cv);
    let (gini, gini_sd) = mean_std(&r.gini);
    let (ent, ent_sd) = mean_std(&r.entropy);
    details.insert(
        "per_repeat".into(),
        json!({"uniformity_cv": r.cv, "uniformity_gini": r.gini, "uniformity_entropy": r.entropy}),
    );
    details.insert(
        "mean".into(),
        json!({"uniformity_cv": cv, "uniformity_gini": gini, "uniformity_entropy": ent}),
    );
    details.insert(
        "std".into(),
        json!({"uniformity_cv": cv_sd, "uniformity_gini": gini_sd, "uniformity_entropy": ent_sd}),
    );
    details.insert("std_ddof".into(), 0.into());
    let mut out = Output {
        metrics: vec![
            ("uniformity_cv", cv),
            ("uniformity_gini", gini),
            ("uniformity_entropy", ent),
        ],
        ..Default::default()
    };
    out.details
        .insert("uniformity".into(), Value::Object(details));
    out
}

fn from_tsne(ctx: &Context<'_>, params: &Params) -> Result<Output> {
    let want = params.usize("tsne_samples")?;
    let repeats = params.usize("uniformity_repeats")?.max(1);
    let settings = Settings::new(
        params.float("tsne_perplexity")?,
        params.usize("tsne_iters")?,
    );
    let sh = ctx.z.shape();
    let total = sh.n * sh.s();
    let mut warnings = Vec::new();
    let n = want.min(total);
    if want > total {
        warnings.push(format!(
            "uniformity: --tsne-samples {want} exceeds the {total} latent pixel vectors (N*H*W = {}*{}*{}); using all of them",
            sh.n, sh.h, sh.w
        ));
    }
    if n < settings.min_points() {
        warnings.push(format!(
            "uniformity_cv, uniformity_gini, uniformity_entropy: not computed, t-SNE with perplexity {} needs at least {} latent pixel vectors, the input has {total}",
            settings.perplexity,
            settings.min_points()
        ));
        return Ok(Output {
            warnings,
            ..Default::default()
        });
    }
    // With every vector in every repeat the repeats coincide (t-SNE here is deterministic).
    let distinct = if n == total { 1 } else { repeats };
    ctx.progress
        .begin("uniformity", (distinct * settings.iters) as u64);
    // The repeats run side by side (each one's own passes are parallel too): the tree builds and
    // the other sequential steps of one repeat then overlap with the work of another. Each repeat
    // depends only on its own seed stream, so the results are the same for any thread count.
    let done: Vec<std::result::Result<Repeat, Failure>> = (0..distinct)
        .into_par_iter()
        .map(|r| one_repeat(ctx, &settings, r, n, total))
        .collect();
    let mut reps = Repeats::default();
    for (r, d) in done.into_iter().enumerate() {
        let d = match d {
            Ok(d) => d,
            Err(Failure::NoVariance) => {
                ctx.progress.end();
                warnings.push(format!(
                    "uniformity_cv, uniformity_gini, uniformity_entropy: not computed, the {n} sampled latent pixel vectors of repeat {r} are all identical"
                ));
                return Ok(Output {
                    warnings,
                    ..Default::default()
                });
            }
            Err(Failure::Kde(e)) => {
                ctx.progress.end();
                warnings.push(format!(
                    "uniformity_cv, uniformity_gini, uniformity_entropy: not computed, the KDE of the t-SNE map of repeat {r} is undefined ({})",
                    describe(e)
                ));
                return Ok(Output {
                    warnings,
                    ..Default::default()
                });
            }
            Err(Failure::Tsne(e)) => {
                return Err(Error::internal(format!("uniformity: t-SNE failed: {e:?}")));
            }
        };
        reps.push(d.stats);
        reps.kl.push(d.kl);
        reps.unreached.push(d.unreached);
    }
    ctx.progress.end();
    for _ in distinct..repeats {
        let (u, kl, un) = (
            Uniformity {
                cv: reps.cv[0],
                gini: reps.gini[0],
                entropy: reps.entropy[0],
            },
            reps.kl[0],
            reps.unreached[0],
        );
        reps.push(u);
        reps.kl.push(kl);
        reps.unreached.push(un);
    }
    let unreached: usize = reps.unreached.iter().sum();
    if unreached > 0 {
        warnings.push(format!(
            "uniformity: {unreached} sampled vectors (over {repeats} repeats) have more exact duplicates than the perplexity {}; their t-SNE affinities are uniform over the duplicates",
            settings.perplexity
        ));
    }
    let mut details = serde_json::Map::new();
    details.insert("source".into(), "tsne".into());
    details.insert("repeats".into(), repeats.into());
    details.insert("repeats_computed".into(), distinct.into());
    details.insert("points".into(), n.into());
    details.insert("tsne".into(), settings.to_json(n));
    details.insert("kl_exact".into(), json!(reps.kl));
    details.insert("perplexity_unreached".into(), json!(reps.unreached));
    let mut out = output(&reps, details);
    out.warnings = warnings;
    Ok(out)
}

/// One repeat's results.
struct Repeat {
    stats: Uniformity,
    kl: f64,
    unreached: usize,
}

/// Why a repeat has no statistics.
enum Failure {
    NoVariance,
    Kde(KdeError),
    Tsne(TsneError),
}

/// Repeat `r`: its sample of `n` of the `total` pixel vectors, their t-SNE map and its statistics.
fn one_repeat(
    ctx: &Context<'_>,
    settings: &Settings,
    r: usize,
    n: usize,
    total: usize,
) -> std::result::Result<Repeat, Failure> {
    let sh = ctx.z.shape();
    let mut rng = stream(ctx.seed, &format!("uniformity-{r}"));
    let picks = sample::pick(total, n, &mut rng);
    let x = sample::gather(&ctx.z, &picks);
    // PCA gives one axis for one channel: the second starts as seeded noise of the same scale.
    let second: Option<Vec<f64>> = (sh.c == 1).then(|| {
        (0..n)
            .map(|_| {
                let g: f64 = StandardNormal.sample(&mut rng);
                settings.init_std * g
            })
            .collect()
    });
    let emb = tsne::embed(
        Points::new(&x, n, sh.c),
        settings,
        second.as_deref(),
        ctx.progress,
    )
    .map_err(|e| match e {
        TsneError::NoVariance => Failure::NoVariance,
        e => Failure::Tsne(e),
    })?;
    let dens = density::kde_at_points(&emb.y).map_err(Failure::Kde)?;
    Ok(Repeat {
        stats: density::uniformity(&dens),
        kl: emb.kl,
        unreached: emb.unreached,
    })
}

fn describe(e: KdeError) -> String {
    match e {
        KdeError::TooFewPoints(n) => format!("{n} points, at least 3 are needed"),
        KdeError::Singular { det } => format!(
            "the points lie on a line: their 2 x 2 covariance is singular (determinant {det:e})"
        ),
    }
}

/// The key an embedding is read from in `.npz` and `.safetensors` files that hold several arrays.
pub const EMBEDDING_KEY: &str = "embedding";

/// Reads an `N x 2` embedding as f64, row-major: a `.npy` file, or the array `embedding` of an `.npz`
/// or `.safetensors` file (or its only array), with the key read (`None` for one unnamed or only
/// array). Errors name the file and the key.
pub fn read_embedding(path: &str) -> Result<(Vec<f64>, Option<&'static str>)> {
    let npy = std::path::Path::new(path)
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("npy"));
    let (a, key): (RawArray, Option<&'static str>) = if npy {
        (read_array(path, None)?, None)
    } else {
        match read_array(path, Some(EMBEDDING_KEY)) {
            Ok(a) => (a, Some(EMBEDDING_KEY)),
            // No such key: the file's only array, or an error listing its keys.
            Err(e) if e.kind == ErrorKind::Input => (read_array(path, None)?, None),
            Err(e) => return Err(e),
        }
    };
    if a.shape.len() != 2 || a.shape[1] != 2 {
        return Err(Error::input(
            path,
            key,
            format!("expected an N x 2 embedding, found shape {}", a.shape_str()),
        ));
    }
    let Some(v) = a.data.to_f64() else {
        return Err(Error::input(
            path,
            key,
            "expected numbers, found dtype bool",
        ));
    };
    if let Some(bad) = v.iter().position(|x| !x.is_finite()) {
        return Err(Error::input(
            path,
            key,
            format!(
                "expected finite values, found {} at row {}, column {}",
                v[bad],
                bad / 2,
                bad % 2
            ),
        ));
    }
    Ok((v, key))
}

fn from_embedding(ctx: &Context<'_>, path: &str) -> Result<Output> {
    let (y, key) = read_embedding(path)?;
    ctx.progress.begin("uniformity", 1);
    let dens = density::kde_at_points(&y).map_err(|e| {
        Error::input(
            path,
            key,
            format!(
                "cannot estimate the density of this embedding: {}",
                describe(e)
            ),
        )
    })?;
    ctx.progress.advance(1);
    ctx.progress.end();
    let mut reps = Repeats::default();
    reps.push(density::uniformity(&dens));
    let mut details = serde_json::Map::new();
    details.insert("source".into(), "embedding".into());
    details.insert("embedding".into(), path.into());
    details.insert("points".into(), (y.len() / 2).into());
    details.insert("repeats".into(), 1.into());
    details.insert(
        "note".into(),
        "statistics of the given embedding; no t-SNE was run, so tsne_* and uniformity_repeats are unused and the standard deviations are 0".into(),
    );
    Ok(output(&reps, details))
}
