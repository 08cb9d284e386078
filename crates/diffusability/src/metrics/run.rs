//! Resolving a metric selection against what the input offers, and computing the report.

use super::{Context, Family, Params, registry};
use crate::data::{Affine, Dataset, Normalize, Normalized};
use crate::error::{Error, Result};
use crate::par::Threads;
use crate::progress::Progress;
use crate::report::{InputBlock, Report};
use std::time::Instant;

/// Which metrics to compute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selection {
    /// Every metric that is not opt-in and whose needs (labels, masks) the input meets.
    Default,
    /// Every metric whose needs the input meets, opt-in ones included.
    All,
    /// Exactly these; one whose needs are not met is an input error.
    List(Vec<String>),
}

impl std::str::FromStr for Selection {
    type Err = Error;
    fn from_str(s: &str) -> Result<Selection> {
        match s.trim() {
            "default" => Ok(Selection::Default),
            "all" => Ok(Selection::All),
            list => {
                let names: Vec<String> = list
                    .split(',')
                    .map(|x| x.trim().to_string())
                    .filter(|x| !x.is_empty())
                    .collect();
                if names.is_empty() {
                    return Err(Error::usage(
                        "--metrics: expected `default`, `all` or a comma-separated list of metric names, found an empty list",
                    ));
                }
                for n in &names {
                    if registry::find_metric(n).is_none() {
                        let known: Vec<&str> = registry::metrics().map(|(_, m)| m.name).collect();
                        return Err(Error::usage(format!(
                            "--metrics: unknown metric `{n}`; expected one of: {}",
                            known.join(", ")
                        )));
                    }
                }
                Ok(Selection::List(names))
            }
        }
    }
}

/// Everything that decides a report besides the data.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub selection: Selection,
    /// Values given by the user; every other parameter takes its default.
    pub overrides: Params,
    pub normalize: Normalize,
    /// Per-channel (mean, std) read from the file of `Normalize::Stats`.
    pub stats: Option<(Vec<f64>, Vec<f64>)>,
    pub seed: u64,
    pub threads: Threads,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            selection: Selection::Default,
            overrides: Params::default(),
            normalize: Normalize::Channel,
            stats: None,
            seed: 0,
            threads: Threads::available(),
        }
    }
}

/// The families to run, each with the keys wanted from it, plus warnings for skipped metrics.
pub type Plan = Vec<(&'static Family, Vec<&'static str>)>;

/// Resolves `selection` against the input: `has_labels`, `has_masks`.
pub fn plan(
    selection: &Selection,
    has_labels: bool,
    has_masks: bool,
) -> Result<(Plan, Vec<String>)> {
    let mut plan: Plan = Vec::new();
    let mut warnings = Vec::new();
    let missing = |f: &Family| -> Option<&'static str> {
        if f.needs.labels && !has_labels {
            Some("labels")
        } else if f.needs.masks && !has_masks {
            Some("masks")
        } else {
            None
        }
    };
    for (fam, m) in registry::metrics() {
        let asked = match selection {
            Selection::Default => !m.opt_in,
            Selection::All => true,
            Selection::List(names) => names.iter().any(|n| n == m.name),
        };
        if !asked {
            continue;
        }
        if let Some(what) = missing(fam) {
            if let Selection::List(_) = selection {
                return Err(Error::input_msg(format!(
                    "metric `{}` needs {what}, but the input has none (give them with --{what} FILE or a `{what}` key)",
                    m.name
                )));
            }
            warnings.push(format!("{}: skipped, the input has no {what}", m.name));
            continue;
        }
        match plan.iter_mut().find(|(f, _)| std::ptr::eq(*f, fam)) {
            Some((_, keys)) => keys.push(m.name),
            None => plan.push((fam, vec![m.name])),
        }
    }
    Ok((plan, warnings))
}

/// Every parameter of the planned families at its resolved value (override or default), validated.
pub fn resolve_params(plan: &Plan, overrides: &Params) -> Result<Params> {
    for (name, v) in &overrides.0 {
        let spec = registry::find_param(name)
            .ok_or_else(|| Error::usage(format!("unknown parameter `{name}`")))?;
        spec.check(v)?;
    }
    let mut out = Params::default();
    for (fam, _) in plan {
        for p in fam.params {
            let v = overrides
                .get(p.name)
                .cloned()
                .unwrap_or_else(|| p.default_value());
            out.0.insert(p.name, v);
        }
    }
    Ok(out)
}

/// Computes the report of `data`.
pub fn run(data: &Dataset, opts: &RunOptions, progress: &dyn Progress) -> Result<Report> {
    let (plan, mut warnings) = plan(&opts.selection, data.labels.is_some(), data.masks.is_some())?;
    let params = resolve_params(&plan, &opts.overrides)?;
    let mut report = Report::new(InputBlock::of(data));

    report
        .params
        .insert("normalize".into(), opts.normalize.to_string().into());
    report.params.insert("seed".into(), opts.seed.into());
    report
        .params
        .insert("threads".into(), opts.threads.0.into());
    for (name, v) in &params.0 {
        report.params.insert((*name).into(), v.to_json());
    }

    let t = Instant::now();
    let (affine, w) = opts
        .threads
        .install(|| Affine::fit(&opts.normalize, &data.latents, opts.stats.clone()))??;
    warnings.extend(w);
    report
        .timings_s
        .insert("normalize".into(), t.elapsed().as_secs_f64().into());

    let z = Normalized {
        latents: &data.latents,
        affine: &affine,
    };
    for (fam, keys) in &plan {
        let t = Instant::now();
        let ctx = Context {
            data,
            z,
            seed: opts.seed,
            threads: opts.threads,
            progress,
            wanted: keys,
        };
        let out = opts.threads.install(|| (fam.compute)(&ctx, &params))??;
        for (k, v) in out.metrics {
            if !keys.contains(&k) {
                continue;
            }
            if v.is_finite() {
                report.metrics.insert(k.into(), v.into());
            } else {
                warnings.push(format!("{k}: not reported, the value is {v}"));
            }
        }
        report.details.extend(out.details);
        warnings.extend(out.warnings);
        report
            .timings_s
            .insert(fam.name.into(), t.elapsed().as_secs_f64().into());
    }
    report.warnings = warnings;
    Ok(report)
}
