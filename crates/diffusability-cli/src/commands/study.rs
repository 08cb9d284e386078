//! `diffusability study`: which metric predicts generation quality (metrics.md section 9).

use crate::Failure;
use crate::output;
use diffusability::Error;
use diffusability::study::{Options, Study, Table, analyze, parse_metric_list};
use std::path::Path;

#[derive(clap::Args, Debug, Clone)]
pub struct StudyArgs {
    /// CSV table, one row per tokenizer x backbone x cfg: columns `tokenizer`, optional `family`,
    /// `cluster`, `backbone`, `cfg`, metric columns (names as in the report) and quality columns
    /// (`gfid`, `is`, `fdr6`, ...)
    #[arg(value_name = "TABLE.csv")]
    pub table: Option<String>,
    /// Directory of `metrics` JSON reports, one per tokenizer (named by file stem or `input.name`);
    /// needs --results
    #[arg(long, value_name = "DIR")]
    pub metrics_dir: Option<String>,
    /// Results CSV (tokenizer, backbone, cfg, quality columns) joined with --metrics-dir by `tokenizer`
    #[arg(long, value_name = "FILE")]
    pub results: Option<String>,
    /// Quality column to predict; lower is better except `is`, `precision`, `recall`; declare any column's
    /// direction with NAME:higher or NAME:lower
    #[arg(long, default_value = "gfid", value_name = "COL")]
    pub target: String,
    /// Analyse each value of COL separately (repeatable: combinations). Default: `backbone` when the table
    /// has it; `none` for one group
    #[arg(long = "group-by", value_name = "COL")]
    pub group_by: Vec<String>,
    /// Per tokenizer and group, keep only the best-quality row over COL (e.g. `cfg`)
    #[arg(long, value_name = "COL")]
    pub best_over: Option<String>,
    /// Comma-separated metrics to analyse (default: every metric column present)
    #[arg(long, value_name = "LIST")]
    pub metrics: Option<String>,
    /// Seed of the bootstrap
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Bootstrap resamples for the interval of r (0: none)
    #[arg(long, default_value_t = 2000, value_name = "N")]
    pub bootstrap: usize,
    /// Write correlations.csv, pairs.csv, ranking.md, the figures (SVG, PNG) and report.html into DIR
    #[arg(short = 'o', long = "output", value_name = "DIR")]
    pub output: Option<String>,
    /// Print the JSON result instead of the summary
    #[arg(long)]
    pub json: bool,
    /// No warnings or notes on stderr
    #[arg(short, long)]
    pub quiet: bool,
}

/// Where the rows come from.
enum Input<'a> {
    Table(&'a str),
    Reports { dir: &'a str, results: &'a str },
}

/// Everything checked before any file is read.
fn options(a: &StudyArgs) -> Result<(Input<'_>, Options), Error> {
    let input = match (&a.table, &a.metrics_dir, &a.results) {
        (Some(t), None, None) => Input::Table(t),
        (None, Some(dir), Some(results)) => Input::Reports { dir, results },
        (Some(_), _, _) => {
            return Err(Error::usage(
                "study: give either TABLE.csv or --metrics-dir DIR --results FILE, not both",
            ));
        }
        (None, Some(_), None) => {
            return Err(Error::usage("study: --metrics-dir needs --results FILE"));
        }
        (None, None, Some(_)) => {
            return Err(Error::usage("study: --results needs --metrics-dir DIR"));
        }
        (None, None, None) => {
            return Err(Error::usage(
                "study: expected TABLE.csv, or --metrics-dir DIR --results FILE",
            ));
        }
    };
    let metrics = a.metrics.as_deref().map(parse_metric_list).transpose()?;
    for g in &a.group_by {
        if g.trim().is_empty() {
            return Err(Error::usage(
                "--group-by: expected a column name, found an empty string",
            ));
        }
    }
    if a.group_by.len() > 1 && a.group_by.iter().any(|g| g == "none") {
        return Err(Error::usage(
            "--group-by none: cannot be combined with other --group-by columns",
        ));
    }
    let opts = Options {
        target: a.target.parse()?,
        group_by: a.group_by.clone(),
        best_over: a.best_over.clone(),
        metrics,
        seed: a.seed,
        bootstrap: a.bootstrap,
        ..Options::default()
    };
    Ok((input, opts))
}

/// The summary printed without --json: per group, the correlations and the ranking.
fn summary(s: &Study) -> String {
    let mut out = String::new();
    let fmt = |v: Option<f64>| v.map_or("-".into(), |x| format!("{x:.3}"));
    let fp = |v: Option<f64>| {
        v.map_or("-".into(), |x| {
            if x != 0.0 && x < 1e-3 {
                format!("{x:.1e}")
            } else {
                format!("{x:.3}")
            }
        })
    };
    for g in &s.groups {
        out.push_str(&format!(
            "== {} ({} rows), target {}\n",
            g.group.label(),
            g.points.len(),
            s.params.target
        ));
        out.push_str(&format!(
            "{:<20} {:<22} {:>3} {:>7} {:>8} {:>7} {:>8} {:>7} {:>8} {:>9}\n",
            "metric", "perspective", "n", "r", "p", "rho", "p", "tau", "p", "aligned_r"
        ));
        for c in s.correlations.iter().filter(|c| c.group == g.group) {
            out.push_str(&format!(
                "{:<20} {:<22} {:>3} {:>7} {:>8} {:>7} {:>8} {:>7} {:>8} {:>9}\n",
                c.metric,
                c.perspective,
                c.n,
                fmt(c.pearson_r),
                fp(c.pearson_p),
                fmt(c.spearman_rho),
                fp(c.spearman_p),
                fmt(c.kendall_tau),
                fp(c.kendall_p),
                c.aligned_r.map_or("-".into(), |v| format!("{v:+.3}")),
            ));
        }
        out.push_str("ranking:");
        for r in s.ranking.iter().filter(|r| r.group == g.group) {
            out.push_str(&format!(
                " {}. {} ({} {:+.2})",
                r.rank, r.perspective, r.metric, r.aligned_r
            ));
        }
        out.push('\n');
        if let Some(p) = s.best_pair(&g.group) {
            out.push_str(&format!(
                "best pair: {} ~ {} + {}: R2 {:.3}, adjusted {:.3}, leave-one-out {}\n",
                s.params.target,
                p.metrics[0],
                p.metrics[1],
                p.r2,
                p.adj_r2,
                fmt(p.loo_r2)
            ));
        }
        out.push('\n');
    }
    out
}

pub fn run(a: StudyArgs) -> Result<(), Failure> {
    let (input, opts) = options(&a)?;
    let (table, mut warnings) = match input {
        Input::Table(t) => (Table::read_csv(Path::new(t))?, Vec::new()),
        Input::Reports { dir, results } => Table::from_reports(Path::new(dir), Path::new(results))?,
    };
    let mut study = analyze(&table, &opts)?;
    warnings.append(&mut study.warnings);
    study.warnings = warnings;
    if !a.quiet {
        for w in &study.warnings {
            output::stderr_line(&format!("warning: {w}"));
        }
    }
    if let Some(dir) = &a.output {
        let written = diffusability_render::study::write_report(&study, Path::new(dir))?;
        if !a.quiet {
            output::stderr_line(&format!(
                "wrote {} files to {dir} (open {})",
                written.len(),
                Path::new(dir).join("report.html").display()
            ));
        }
    }
    if a.json {
        output::stdout(&format!("{}\n", study.to_json_pretty()))?;
    } else {
        output::stdout(&summary(&study))?;
    }
    Ok(())
}
