//! The study's text outputs: `correlations.csv`, `pairs.csv` and `ranking.md`.
//!
//! CSV files have one column per grouping column, then the values; an absent value is an empty cell.
//! Numbers are written in Rust's shortest round-trip form.

use super::{Group, Study};
use crate::error::{Error, Result};

fn num(v: Option<f64>) -> String {
    v.map_or(String::new(), |x| x.to_string())
}

fn group_values(g: &Group) -> Vec<String> {
    g.0.iter().map(|(_, v)| v.clone()).collect()
}

fn write_csv(header: Vec<String>, rows: Vec<Vec<String>>) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let err = |e: csv::Error| Error::internal(format!("cannot format CSV: {e}"));
    w.write_record(&header).map_err(err)?;
    for r in rows {
        w.write_record(&r).map_err(err)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| Error::internal(format!("cannot format CSV: {e}")))?;
    String::from_utf8(bytes).map_err(|e| Error::internal(format!("CSV is not UTF-8: {e}")))
}

/// `correlations.csv`: one row per group and metric.
pub fn correlations_csv(s: &Study) -> Result<String> {
    let mut header = s.params.group_by.clone();
    header.extend(
        [
            "metric",
            "perspective",
            "higher_is_better",
            "target",
            "n",
            "missing",
            "pearson_r",
            "pearson_p",
            "pearson_ci_lo",
            "pearson_ci_hi",
            "spearman_rho",
            "spearman_p",
            "kendall_tau",
            "kendall_p",
            "kendall_method",
            "bootstrap_ci_lo",
            "bootstrap_ci_hi",
            "loo_min",
            "loo_max",
            "aligned_r",
        ]
        .map(String::from),
    );
    let rows = s
        .correlations
        .iter()
        .map(|c| {
            let mut r = group_values(&c.group);
            r.extend([
                c.metric.clone(),
                c.perspective.clone(),
                c.higher_is_better.to_string(),
                c.target.clone(),
                c.n.to_string(),
                c.missing.to_string(),
                num(c.pearson_r),
                num(c.pearson_p),
                num(c.pearson_ci.map(|v| v[0])),
                num(c.pearson_ci.map(|v| v[1])),
                num(c.spearman_rho),
                num(c.spearman_p),
                num(c.kendall_tau),
                num(c.kendall_p),
                c.kendall_method.unwrap_or("").to_string(),
                num(c.bootstrap_ci.map(|v| v[0])),
                num(c.bootstrap_ci.map(|v| v[1])),
                num(c.loo_range.map(|v| v[0])),
                num(c.loo_range.map(|v| v[1])),
                num(c.aligned_r),
            ]);
            r
        })
        .collect();
    write_csv(header, rows)
}

/// `pairs.csv`: one row per fitted metric pair.
pub fn pairs_csv(s: &Study) -> Result<String> {
    let mut header = s.params.group_by.clone();
    header.extend(
        [
            "metric_a",
            "metric_b",
            "n",
            "r2",
            "adj_r2",
            "loo_r2",
            "intercept",
            "coef_a",
            "coef_b",
        ]
        .map(String::from),
    );
    let rows = s
        .pairs
        .iter()
        .map(|p| {
            let coef = |k: &str| num(p.coef.get(k).and_then(|v| v.as_f64()));
            let mut r = group_values(&p.group);
            r.extend([
                p.metrics[0].clone(),
                p.metrics[1].clone(),
                p.n.to_string(),
                p.r2.to_string(),
                p.adj_r2.to_string(),
                num(p.loo_r2),
                coef("intercept"),
                coef(&p.metrics[0]),
                coef(&p.metrics[1]),
            ]);
            r
        })
        .collect();
    write_csv(header, rows)
}

/// `ranking.md`: per group, the perspectives ranked by their best metric's |r|, and the best pair.
pub fn ranking_md(s: &Study) -> String {
    let mut out = format!(
        "# Perspective ranking: which latent property predicts `{}`\n\n\
         Perspectives ranked by the |Pearson r| of their best metric. Aligned r: positive = the metric \
         predicts better generation ({}).\n",
        s.params.target, s.params.sign_convention
    );
    for g in &s.groups {
        out.push_str(&format!("\n## {}\n\n", g.group.label()));
        let ranks: Vec<_> = s.ranking.iter().filter(|r| r.group == g.group).collect();
        if ranks.is_empty() {
            out.push_str("No metric has a correlation in this group (see the warnings).\n");
            continue;
        }
        out.push_str("| rank | perspective | best metric | r | aligned r | n |\n| ---: | --- | --- | ---: | ---: | ---: |\n");
        for r in ranks {
            out.push_str(&format!(
                "| {} | {} | `{}` | {:.3} | {:+.3} | {} |\n",
                r.rank, r.perspective, r.metric, r.pearson_r, r.aligned_r, r.n
            ));
        }
        if let Some(p) = s.best_pair(&g.group) {
            out.push_str(&format!(
                "\nBest two-metric fit: `{}` ~ `{}` + `{}`: R² = {:.3}, adjusted R² = {:.3}, leave-one-out R² = {} (n = {}).\n",
                s.params.target,
                p.metrics[0],
                p.metrics[1],
                p.r2,
                p.adj_r2,
                p.loo_r2.map_or("n/a".into(), |v| format!("{v:.3}")),
                p.n
            ));
        }
    }
    out
}
