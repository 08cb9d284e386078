//! The metric columns the study recognises: every name of interface.md's "Metric names" table, with its
//! perspective and direction.
//!
//! The metric registry is the authority for the metrics this build computes; this table also covers
//! names a table may carry that the registry does not (yet) compute, e.g. columns produced by the study's
//! own pipeline. [`lookup`] asks the registry first, and a unit test checks that the two agree.

use crate::metrics::{Perspective, registry};

/// A metric column: its name, perspective and direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KnownMetric {
    pub name: &'static str,
    pub perspective: Perspective,
    pub higher_is_better: bool,
}

const fn m(name: &'static str, perspective: Perspective, higher_is_better: bool) -> KnownMetric {
    KnownMetric {
        name,
        perspective,
        higher_is_better,
    }
}

use Perspective::*;

/// interface.md "Metric names", in its order (which is also the order of tables and figure panels).
pub const KNOWN_METRICS: &[KnownMetric] = &[
    m("viv", VelocityAmbiguity, false),
    m("viv_per_dim", VelocityAmbiguity, false),
    m("viv_logit_normal", VelocityAmbiguity, false),
    m("viv_marginal", VelocityAmbiguity, false),
    m("viv_total_variance", VelocityAmbiguity, false),
    m("viv_anisotropy", VelocityAmbiguity, false),
    m("lnc", SemanticSeparability, true),
    m("linear_probe_acc", SemanticSeparability, true),
    m("lds", SpatialStructure, true),
    m("cds", SpatialStructure, true),
    m("srss", SpatialStructure, true),
    m("rmsc", SpatialStructure, false),
    m("sec", LatentSmoothness, false),
    m("local_corr", LatentSmoothness, true),
    m("uniformity_cv", LatentUniformity, false),
    m("uniformity_gini", LatentUniformity, false),
    m("uniformity_entropy", LatentUniformity, true),
    m("equiv_rel_err", AffineEquivariance, false),
    m("equiv_cos", AffineEquivariance, true),
    m("ifid", ManifoldContinuity, false),
];

/// The perspective and direction of metric `name`: the registry's when it has the metric, else this
/// module's table; `None` for a column that is not a metric.
pub fn lookup(name: &str) -> Option<KnownMetric> {
    if let Some((_, info)) = registry::find_metric(name) {
        return Some(KnownMetric {
            name: info.name,
            perspective: info.perspective,
            higher_is_better: info.higher_is_better,
        });
    }
    KNOWN_METRICS.iter().find(|k| k.name == name).copied()
}

/// Position of `name` in the display order (registry-only names after the table's).
pub fn order(name: &str) -> usize {
    KNOWN_METRICS
        .iter()
        .position(|k| k.name == name)
        .unwrap_or(KNOWN_METRICS.len())
}

/// Every name [`lookup`] knows, in display order.
pub fn names() -> Vec<&'static str> {
    let mut out: Vec<&'static str> = KNOWN_METRICS.iter().map(|k| k.name).collect();
    for (_, info) in registry::metrics() {
        if !out.contains(&info.name) {
            out.push(info.name);
        }
    }
    out
}

/// The perspectives in the order of interface.md's table (ties in rankings break by it).
pub fn perspective_order(p: Perspective) -> usize {
    KNOWN_METRICS
        .iter()
        .position(|k| k.perspective == p)
        .unwrap_or(KNOWN_METRICS.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_agrees_with_the_registry() {
        for (_, info) in registry::metrics() {
            let k = KNOWN_METRICS
                .iter()
                .find(|k| k.name == info.name)
                .unwrap_or_else(|| {
                    panic!(
                        "metric `{}` is in the registry but not in the study's KNOWN_METRICS \
                         (interface.md's name table): add it",
                        info.name
                    )
                });
            assert_eq!(k.perspective, info.perspective, "{}", info.name);
            assert_eq!(k.higher_is_better, info.higher_is_better, "{}", info.name);
        }
    }

    #[test]
    fn names_are_unique_and_every_perspective_is_covered() {
        let mut names: Vec<&str> = KNOWN_METRICS.iter().map(|k| k.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), KNOWN_METRICS.len());
        for p in [
            VelocityAmbiguity,
            SemanticSeparability,
            SpatialStructure,
            LatentSmoothness,
            LatentUniformity,
            AffineEquivariance,
            ManifoldContinuity,
        ] {
            assert!(KNOWN_METRICS.iter().any(|k| k.perspective == p), "{p:?}");
        }
    }

    #[test]
    fn directions_follow_the_interface_table() {
        let get = |n: &str| lookup(n).unwrap();
        assert!(!get("viv").higher_is_better);
        assert!(get("lnc").higher_is_better);
        assert!(get("srss").higher_is_better);
        assert!(!get("rmsc").higher_is_better);
        assert!(!get("sec").higher_is_better);
        assert!(get("uniformity_entropy").higher_is_better);
        assert!(!get("equiv_rel_err").higher_is_better);
        assert!(get("equiv_cos").higher_is_better);
        assert!(!get("ifid").higher_is_better);
        assert!(lookup("gfid").is_none());
    }
}
