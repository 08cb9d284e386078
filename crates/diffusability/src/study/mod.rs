//! The study analysis (metrics.md section 9): which metric predicts generation quality.
//!
//! Input: a [`Table`] with one row per (tokenizer, backbone, cfg), metric columns named as in
//! interface.md and quality columns (`gfid`, `is`, `fdr6`, ...). [`analyze`] groups the rows (e.g. per
//! diffusion backbone or tokenizer family), optionally keeps each tokenizer's best row over the CFG scales,
//! and computes per group and metric: Pearson r with its p-value and Fisher-z interval, Spearman's rho and
//! Kendall's tau-b with p-values (all equal to `scipy.stats` defaults), a seeded bootstrap interval and the
//! leave-one-out range of r; then every two-metric least-squares fit of the quality and the ranking of the
//! perspectives.
//!
//! **Sign alignment.** Raw coefficients correlate metric values with quality values. The aligned
//! coefficient reads "positive = the metric predicts better generation":
//! `aligned_r = r * s_metric * s_target`, with `s_metric = +1` if the metric is higher-is-better (its
//! registry entry, else interface.md's table) and -1 otherwise, and `s_target = +1` if the quality column is
//! higher-is-better (`is`) and -1 if lower-is-better (`gfid`). For example VIV (lower is better) against
//! gFID (lower is better) with r = +0.87 has aligned r = +0.87.
//!
//! Degenerate inputs never give NaN: a value that cannot be computed (fewer than 3 rows, a constant
//! column) is `None` (JSON `null`) and a warning says why; missing cells leave their row out of that
//! metric's analysis and are counted in a warning.

pub mod correlation;
pub mod export;
pub mod known;
pub mod ranking;
pub mod regression;
pub mod select;
pub mod table;

pub use known::KnownMetric;
pub use ranking::Rank;
pub use table::Table;

use crate::error::{Error, Result};
use crate::report::Tool;
use serde::Serialize;
use serde::ser::SerializeMap;

/// The values of the grouping columns that define one group (empty: all rows form one group).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Group(pub Vec<(String, String)>);

impl Group {
    /// `backbone=SiT-B, family=conv-f16d32`, or `all rows`.
    pub fn label(&self) -> String {
        if self.0.is_empty() {
            return "all rows".into();
        }
        self.0
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The values only (`SiT-B / conv-f16d32`), or `all rows`.
    pub fn short_label(&self) -> String {
        if self.0.is_empty() {
            return "all rows".into();
        }
        self.0
            .iter()
            .map(|(_, v)| v.as_str())
            .collect::<Vec<_>>()
            .join(" / ")
    }

    /// A file-name-safe form of the values: lowercase ASCII letters, digits, `.` and `-`.
    pub fn slug(&self) -> String {
        let mut s = String::new();
        for c in self
            .0
            .iter()
            .map(|(_, v)| v.as_str())
            .collect::<Vec<_>>()
            .join("-")
            .chars()
        {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_alphanumeric() || c == '.' {
                s.push(c);
            } else if !s.ends_with('-') {
                s.push('-');
            }
        }
        let s = s.trim_matches('-').to_string();
        if s.is_empty() { "all".into() } else { s }
    }
}

impl Serialize for Group {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// Quality columns that are higher-is-better unless declared otherwise; every other target is
/// lower-is-better (FID-like).
pub const HIGHER_IS_BETTER_QUALITY: &[&str] = &["is", "precision", "recall"];

/// Quality columns recognised without a warning besides the target.
pub const KNOWN_QUALITY: &[&str] = &[
    "gfid",
    "fid",
    "rfid",
    "sfid",
    "is",
    "fdr6",
    "precision",
    "recall",
];

/// Columns that describe a row rather than measure it.
pub const ID_COLUMNS: &[&str] = &["tokenizer", "family", "cluster", "backbone", "cfg"];

/// The quality column to predict and its direction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub name: String,
    pub higher_is_better: bool,
}

impl std::str::FromStr for Target {
    type Err = Error;
    /// `gfid`, `is`, or `NAME:higher` / `NAME:lower` to declare the direction of any column.
    fn from_str(s: &str) -> Result<Target> {
        let s = s.trim();
        let (name, dir) = match s.rsplit_once(':') {
            Some((n, d)) => (n.trim(), Some(d.trim())),
            None => (s, None),
        };
        if name.is_empty() {
            return Err(Error::usage(format!(
                "--target: expected a quality column name such as `gfid`, `is` or `NAME:higher`, found `{s}`"
            )));
        }
        let higher_is_better = match dir {
            None => HIGHER_IS_BETTER_QUALITY.contains(&name),
            Some("higher") => true,
            Some("lower") => false,
            Some(d) => {
                return Err(Error::usage(format!(
                    "--target {s}: expected `{name}:higher` or `{name}:lower`, found direction `{d}`"
                )));
            }
        };
        Ok(Target {
            name: name.to_string(),
            higher_is_better,
        })
    }
}

/// How to analyse a table.
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    pub target: Target,
    /// Grouping columns. Empty: `backbone` when the table has it, else one group; `["none"]`: one group.
    pub group_by: Vec<String>,
    /// Keep per tokenizer and group the best-quality row over this column (e.g. `cfg`).
    pub best_over: Option<String>,
    /// Metrics to analyse (default: every metric column of the table).
    pub metrics: Option<Vec<String>>,
    pub seed: u64,
    /// Bootstrap resamples (0: no bootstrap interval).
    pub bootstrap: usize,
    /// Level of the Fisher-z and bootstrap intervals.
    pub confidence: f64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            target: Target {
                name: "gfid".into(),
                higher_is_better: false,
            },
            group_by: Vec::new(),
            best_over: None,
            metrics: None,
            seed: 0,
            bootstrap: 2000,
            confidence: 0.95,
        }
    }
}

/// Parses a `--metrics` list: comma-separated names that interface.md's table or the registry knows.
pub fn parse_metric_list(list: &str) -> Result<Vec<String>> {
    let names: Vec<String> = list
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    if names.is_empty() {
        return Err(Error::usage(
            "--metrics: expected a comma-separated list of metric names, found an empty list",
        ));
    }
    for n in &names {
        if known::lookup(n).is_none() {
            return Err(Error::usage(format!(
                "--metrics: unknown metric `{n}`; expected one of: {}",
                known::names().join(", ")
            )));
        }
    }
    Ok(names)
}

/// The resolved settings, as reported.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Params {
    pub target: String,
    pub target_higher_is_better: bool,
    pub group_by: Vec<String>,
    pub best_over: Option<String>,
    /// The metrics analysed, in display order.
    pub metrics: Vec<String>,
    /// The column that colours points in the figures (`cluster`, else `family`).
    pub colour_by: Option<String>,
    pub seed: u64,
    pub bootstrap: usize,
    pub confidence: f64,
    pub sign_convention: &'static str,
}

const SIGN_CONVENTION: &str = "aligned_r = r * s_metric * s_target; s = +1 for higher-is-better, -1 for lower-is-better; positive = predicts better generation";

/// One metric against the quality in one group. Absent values are JSON `null` (see warnings).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Correlation {
    pub group: Group,
    pub metric: String,
    pub perspective: String,
    pub target: String,
    /// Rows with both the metric and the quality.
    pub n: usize,
    pub pearson_r: Option<f64>,
    pub pearson_p: Option<f64>,
    /// Fisher-z interval at `params.confidence`.
    pub pearson_ci: Option<[f64; 2]>,
    pub spearman_rho: Option<f64>,
    pub spearman_p: Option<f64>,
    pub kendall_tau: Option<f64>,
    pub kendall_p: Option<f64>,
    /// `exact` or `asymptotic` (scipy's `method='auto'` rule).
    pub kendall_method: Option<&'static str>,
    /// Percentile bootstrap interval of r.
    pub bootstrap_ci: Option<[f64; 2]>,
    /// Smallest and largest r when leaving out one row.
    pub loo_range: Option<[f64; 2]>,
    pub aligned_r: Option<f64>,
    pub higher_is_better: bool,
    /// Rows of the group left out because this metric has no value there.
    pub missing: usize,
}

/// A two-metric least-squares fit of the quality in one group.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Pair {
    pub group: Group,
    pub metrics: [String; 2],
    pub n: usize,
    pub r2: f64,
    pub adj_r2: f64,
    pub loo_r2: Option<f64>,
    /// `intercept` and one coefficient per metric, by name.
    pub coef: serde_json::Map<String, serde_json::Value>,
}

/// One analysed row, for the figures.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    pub tokenizer: String,
    /// The value of the colouring column (cluster or family).
    pub colour: Option<String>,
    /// The value of the `best_over` column of the kept row (e.g. its CFG scale).
    pub best_over: Option<String>,
    pub target: f64,
    /// One value per metric of `params.metrics`.
    pub values: Vec<Option<f64>>,
}

/// The rows of one group, for the figures.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupData {
    pub group: Group,
    pub points: Vec<Point>,
}

/// The result of [`analyze`]; serializes to the JSON of `diffusability study --json`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Study {
    pub correlations: Vec<Correlation>,
    /// Fitted pairs, per group by decreasing R^2.
    pub pairs: Vec<Pair>,
    pub ranking: Vec<Rank>,
    pub params: Params,
    pub warnings: Vec<String>,
    pub tool: Tool,
    #[serde(skip)]
    pub groups: Vec<GroupData>,
}

impl Study {
    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self).expect("a study always serializes")
    }

    /// The correlation of `metric` in `group`.
    pub fn correlation(&self, group: &Group, metric: &str) -> Option<&Correlation> {
        self.correlations
            .iter()
            .find(|c| &c.group == group && c.metric == metric)
    }

    /// The fitted pair with the highest R^2 in `group`.
    pub fn best_pair(&self, group: &Group) -> Option<&Pair> {
        self.pairs.iter().find(|p| &p.group == group)
    }
}

fn push_unique(v: &mut Vec<String>, s: String) {
    if !v.contains(&s) {
        v.push(s);
    }
}

/// Runs the study analysis on `table` (see the module documentation).
pub fn analyze(table: &Table, opts: &Options) -> Result<Study> {
    if !(opts.confidence > 0.0 && opts.confidence < 1.0) {
        return Err(Error::usage(format!(
            "confidence level: expected a value in (0, 1), found {}",
            opts.confidence
        )));
    }
    let mut warnings: Vec<String> = Vec::new();
    let tok_col = table.require("tokenizer", "the tokenizer of each row")?;
    let target_col = table.require(&opts.target.name, "the --target quality column")?;
    if known::lookup(&opts.target.name).is_some() {
        return Err(Error::usage(format!(
            "--target {}: is a latent metric, expected a generation-quality column such as gfid or is",
            opts.target.name
        )));
    }
    let group_by: Vec<String> = if opts.group_by.is_empty() {
        if table.column("backbone").is_some() {
            vec!["backbone".into()]
        } else {
            Vec::new()
        }
    } else if opts.group_by.len() == 1 && opts.group_by[0] == "none" {
        Vec::new()
    } else {
        opts.group_by.clone()
    };
    let mut group_cols = Vec::new();
    for g in &group_by {
        let c = table.require(g, "a --group-by column")?;
        if group_cols.contains(&c) {
            return Err(Error::usage(format!("--group-by {g}: given twice")));
        }
        group_cols.push(c);
    }
    let best_col = match &opts.best_over {
        Some(b) => Some(table.require(b, "the --best-over column")?),
        None => None,
    };
    let colour_by = ["cluster", "family"]
        .into_iter()
        .find(|c| table.column(c).is_some())
        .map(str::to_string);

    // Metric columns: the ones asked for, else every known metric the table has.
    let candidates: Vec<String> = match &opts.metrics {
        Some(list) => {
            for m in list {
                if known::lookup(m).is_none() {
                    return Err(Error::usage(format!(
                        "--metrics: unknown metric `{m}`; expected one of: {}",
                        known::names().join(", ")
                    )));
                }
                table.require(m, "named in --metrics")?;
            }
            list.clone()
        }
        None => {
            let mut found: Vec<String> = table
                .columns
                .iter()
                .filter(|c| known::lookup(c).is_some())
                .cloned()
                .collect();
            found.sort_by_key(|n| known::order(n));
            found
        }
    };
    for c in &table.columns {
        let used = ID_COLUMNS.contains(&c.as_str())
            || KNOWN_QUALITY.contains(&c.as_str())
            || *c == opts.target.name
            || group_by.contains(c)
            || opts.best_over.as_ref() == Some(c)
            || known::lookup(c).is_some();
        if !used {
            warnings.push(format!(
                "{}: column `{c}` is neither a metric of interface.md nor a quality column: ignored",
                table.source
            ));
        }
    }
    let mut metrics: Vec<(String, KnownMetric, Vec<Option<f64>>)> = Vec::new();
    for m in candidates {
        let info = known::lookup(&m).expect("candidates are known metrics");
        let col = table.require(&m, "a metric column")?;
        let values = (0..table.len())
            .map(|i| table.number(i, col))
            .collect::<Result<Vec<_>>>()?;
        if values.iter().all(Option::is_none) {
            warnings.push(format!(
                "{}: metric `{m}` has no value in any row: left out",
                table.source
            ));
            continue;
        }
        metrics.push((m, info, values));
    }
    if metrics.is_empty() {
        return Err(Error::input_msg(format!(
            "{}: no metric column with values, expected at least one of: {}",
            table.source,
            known::names().join(", ")
        )));
    }

    let selected = select::select(
        table,
        tok_col,
        target_col,
        opts.target.higher_is_better,
        &group_cols,
        best_col,
    )?;
    warnings.extend(selected.warnings);

    let s_target = if opts.target.higher_is_better {
        1.0
    } else {
        -1.0
    };
    let mut correlations = Vec::new();
    let mut pairs = Vec::new();
    let mut groups = Vec::new();
    for (group, rows) in &selected.groups {
        let label = group.label();
        let target_constant = rows.iter().all(|r| r.target == rows[0].target);
        if target_constant && rows.len() > 1 {
            warnings.push(format!(
                "{label}: `{}` is the same ({}) in all {} rows: no correlation or regression",
                opts.target.name,
                rows[0].target,
                rows.len()
            ));
        }
        // Per metric: the (x, y) pairs with both values.
        let mut usable: Vec<Option<(Vec<f64>, Vec<f64>)>> = Vec::new();
        for (name, info, values) in &metrics {
            let (mut x, mut y) = (Vec::new(), Vec::new());
            for r in rows {
                if let Some(v) = values[r.index] {
                    x.push(v);
                    y.push(r.target);
                }
            }
            let missing = rows.len() - x.len();
            if missing > 0 {
                warnings.push(format!(
                    "{label}: metric `{name}` has no value in {missing} of {} rows; they are left out of its analysis",
                    rows.len()
                ));
            }
            let mut c = Correlation {
                group: group.clone(),
                metric: name.clone(),
                perspective: info.perspective.as_str().to_string(),
                target: opts.target.name.clone(),
                n: x.len(),
                pearson_r: None,
                pearson_p: None,
                pearson_ci: None,
                spearman_rho: None,
                spearman_p: None,
                kendall_tau: None,
                kendall_p: None,
                kendall_method: None,
                bootstrap_ci: None,
                loo_range: None,
                aligned_r: None,
                higher_is_better: info.higher_is_better,
                missing,
            };
            let constant_x = x.iter().all(|v| *v == x[0]);
            if x.len() < 3 {
                warnings.push(format!(
                    "{label}: metric `{name}` has {} row(s) with values, at least 3 are needed: no correlation",
                    x.len()
                ));
                usable.push(None);
            } else if constant_x {
                warnings.push(format!(
                    "{label}: metric `{name}` is the same ({}) in all {} rows: no correlation",
                    x[0],
                    x.len()
                ));
                usable.push(None);
            } else if y.iter().all(|v| *v == y[0]) {
                usable.push(None);
            } else {
                fill_correlation(&mut c, &x, &y, opts, &label, &mut warnings);
                let s_metric = if info.higher_is_better { 1.0 } else { -1.0 };
                c.aligned_r = c.pearson_r.map(|r| r * s_metric * s_target);
                usable.push(Some((x, y)));
            }
            correlations.push(c);
        }
        pairs.extend(fit_pairs(
            group,
            rows,
            &metrics,
            &usable,
            &opts.target.name,
            &mut warnings,
        ));
        groups.push(GroupData {
            group: group.clone(),
            points: rows
                .iter()
                .map(|r| Point {
                    tokenizer: r.tokenizer.clone(),
                    colour: colour_by
                        .as_ref()
                        .and_then(|c| table.column(c))
                        .map(|c| table.text(r.index, c).to_string()),
                    best_over: best_col.map(|c| table.text(r.index, c).to_string()),
                    target: r.target,
                    values: metrics.iter().map(|(_, _, v)| v[r.index]).collect(),
                })
                .collect(),
        });
    }
    let ranking = ranking::rank(&correlations);
    let mut unique = Vec::new();
    for w in warnings {
        push_unique(&mut unique, w);
    }
    Ok(Study {
        correlations,
        pairs,
        ranking,
        params: Params {
            target: opts.target.name.clone(),
            target_higher_is_better: opts.target.higher_is_better,
            group_by,
            best_over: opts.best_over.clone(),
            metrics: metrics.iter().map(|(n, _, _)| n.clone()).collect(),
            colour_by,
            seed: opts.seed,
            bootstrap: opts.bootstrap,
            confidence: opts.confidence,
            sign_convention: SIGN_CONVENTION,
        },
        warnings: unique,
        tool: Tool {
            name: "diffusability".into(),
            version: crate::VERSION.into(),
        },
        groups,
    })
}

/// The coefficients, p-values and intervals of one metric (n >= 3, neither column constant).
fn fill_correlation(
    c: &mut Correlation,
    x: &[f64],
    y: &[f64],
    opts: &Options,
    label: &str,
    warnings: &mut Vec<String>,
) {
    let n = x.len();
    if let Some(p) = correlation::pearson(x, y) {
        c.pearson_r = Some(p.r);
        c.pearson_p = Some(p.p);
        c.pearson_ci = Some(correlation::fisher_ci(p.r, n, opts.confidence));
    }
    if let Some(s) = correlation::spearman(x, y) {
        c.spearman_rho = Some(s.rho);
        c.spearman_p = Some(s.p);
    }
    if let Some(k) = correlation::kendall_tau_b(x, y) {
        c.kendall_tau = Some(k.tau);
        c.kendall_p = Some(k.p);
        c.kendall_method = Some(k.method.as_str());
    }
    if opts.bootstrap > 0 {
        let mut rng =
            crate::stats::rng::stream(opts.seed, &format!("study-bootstrap/{label}/{}", c.metric));
        match correlation::bootstrap_pearson_ci(x, y, opts.bootstrap, opts.confidence, &mut rng) {
            Some(b) => {
                c.bootstrap_ci = Some([b.lo, b.hi]);
                if b.used < opts.bootstrap {
                    warnings.push(format!(
                        "{label}: metric `{}`: {} of {} bootstrap resamples had a constant column and were skipped",
                        c.metric,
                        opts.bootstrap - b.used,
                        opts.bootstrap
                    ));
                }
            }
            None => warnings.push(format!(
                "{label}: metric `{}`: every bootstrap resample had a constant column: no bootstrap interval",
                c.metric
            )),
        }
    }
    c.loo_range = correlation::loo_pearson_range(x, y);
    if c.loo_range.is_none() {
        warnings.push(format!(
            "{label}: metric `{}` has only {n} rows: no leave-one-out range (needs 4)",
            c.metric
        ));
    }
}

/// Every two-metric fit in one group, by decreasing R^2.
fn fit_pairs(
    group: &Group,
    rows: &[select::Row],
    metrics: &[(String, KnownMetric, Vec<Option<f64>>)],
    usable: &[Option<(Vec<f64>, Vec<f64>)>],
    target: &str,
    warnings: &mut Vec<String>,
) -> Vec<Pair> {
    let label = group.label();
    let mut out = Vec::new();
    let mut too_few = 0usize;
    for a in 0..metrics.len() {
        for b in a + 1..metrics.len() {
            if usable[a].is_none() || usable[b].is_none() {
                continue;
            }
            let (mut xa, mut xb, mut y) = (Vec::new(), Vec::new(), Vec::new());
            for r in rows {
                if let (Some(va), Some(vb)) = (metrics[a].2[r.index], metrics[b].2[r.index]) {
                    xa.push(va);
                    xb.push(vb);
                    y.push(r.target);
                }
            }
            let (na, nb) = (&metrics[a].0, &metrics[b].0);
            match regression::ols(&[&xa, &xb], &y) {
                Ok(f) => {
                    let mut coef = serde_json::Map::new();
                    coef.insert("intercept".into(), f.intercept.into());
                    coef.insert(na.clone(), f.coef[0].into());
                    coef.insert(nb.clone(), f.coef[1].into());
                    if f.loo_r2.is_none() {
                        warnings.push(format!(
                            "{label}: {target} ~ {na} + {nb}: a leave-one-out fit is rank deficient: no leave-one-out R^2"
                        ));
                    }
                    out.push(Pair {
                        group: group.clone(),
                        metrics: [na.clone(), nb.clone()],
                        n: f.n,
                        r2: f.r2,
                        adj_r2: f.adj_r2,
                        loo_r2: f.loo_r2,
                        coef,
                    });
                }
                Err(regression::OlsIssue::TooFewRows { .. }) => too_few += 1,
                Err(regression::OlsIssue::Collinear) => warnings.push(format!(
                    "{label}: {target} ~ {na} + {nb}: the two metrics are collinear over their {} rows: no regression",
                    y.len()
                )),
                Err(regression::OlsIssue::ConstantTarget) => {}
            }
        }
    }
    if too_few > 0 {
        warnings.push(format!(
            "{label}: {too_few} metric pair(s) have fewer than 4 rows with both values: no regression"
        ));
    }
    out.sort_by(|p, q| q.r2.total_cmp(&p.r2));
    out
}
