//! Ranking the perspectives by how well their best metric predicts generation quality.

use super::known;
use super::{Correlation, Group};
use serde::Serialize;

/// One perspective's place in one group's ranking.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Rank {
    pub group: Group,
    /// 1 = most predictive.
    pub rank: usize,
    pub perspective: String,
    /// The perspective's metric with the largest |Pearson r| in this group.
    pub metric: String,
    pub abs_r: f64,
    pub pearson_r: f64,
    pub aligned_r: f64,
    pub n: usize,
    /// How many of the perspective's metrics had a correlation.
    pub metrics_compared: usize,
}

/// Per group (in the order of `correlations`), each perspective's best metric by |Pearson r|, ranked by
/// that |r| (the study's section 3 ranking). Ties break by the metric's place in interface.md's name table,
/// then by name. Correlations without an r are skipped.
pub fn rank(correlations: &[Correlation]) -> Vec<Rank> {
    let mut groups: Vec<&Group> = Vec::new();
    for c in correlations {
        if !groups.contains(&&c.group) {
            groups.push(&c.group);
        }
    }
    let mut out = Vec::new();
    for g in groups {
        let mut best: Vec<(&Correlation, f64, usize)> = Vec::new();
        for c in correlations.iter().filter(|c| &c.group == g) {
            let Some(r) = c.pearson_r else {
                continue;
            };
            match best
                .iter_mut()
                .find(|(b, _, _)| b.perspective == c.perspective)
            {
                None => best.push((c, r.abs(), 1)),
                Some(entry) => {
                    entry.2 += 1;
                    if r.abs() > entry.1 {
                        entry.0 = c;
                        entry.1 = r.abs();
                    }
                }
            }
        }
        best.sort_by(|a, b| {
            b.1.total_cmp(&a.1)
                .then(known::order(&a.0.metric).cmp(&known::order(&b.0.metric)))
                .then(a.0.metric.cmp(&b.0.metric))
        });
        for (i, (c, abs_r, count)) in best.into_iter().enumerate() {
            out.push(Rank {
                group: g.clone(),
                rank: i + 1,
                perspective: c.perspective.clone(),
                metric: c.metric.clone(),
                abs_r,
                pearson_r: c.pearson_r.unwrap_or(0.0),
                aligned_r: c.aligned_r.unwrap_or(0.0),
                n: c.n,
                metrics_compared: count,
            });
        }
    }
    out
}
