//! The one list of metric families. Everything user-facing about metrics derives from it.

use super::{Family, MetricInfo, ParamSpec};

/// Every family, in report order.
pub fn families() -> &'static [&'static Family] {
    FAMILIES
}

static FAMILIES: &[&Family] = &[
    &super::viv::FAMILY,
    &super::separability::LNC,
    &super::separability::PROBE,
    &super::spatial::SPATIAL,
    &super::spatial::SRSS,
    &super::smoothness::SMOOTHNESS,
    &super::uniformity::FAMILY,
];

/// Every metric key, in report order.
pub fn metrics() -> impl Iterator<Item = (&'static Family, &'static MetricInfo)> {
    families()
        .iter()
        .flat_map(|f| f.metrics.iter().map(move |m| (*f, m)))
}

/// The family and metadata of metric `name`.
pub fn find_metric(name: &str) -> Option<(&'static Family, &'static MetricInfo)> {
    metrics().find(|(_, m)| m.name == name)
}

/// Every parameter of every family, each once (families may share one), in registry order.
pub fn params() -> Vec<&'static ParamSpec> {
    let mut out: Vec<&'static ParamSpec> = Vec::new();
    for f in families() {
        for p in f.params {
            if !out.iter().any(|q| q.name == p.name) {
                out.push(p);
            }
        }
    }
    out
}

/// The declaration of parameter `name`.
pub fn find_param(name: &str) -> Option<&'static ParamSpec> {
    params().into_iter().find(|p| p.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_snake_case() {
        let mut names: Vec<&str> = metrics().map(|(_, m)| m.name).collect();
        names.extend(params().iter().map(|p| p.name));
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(
            sorted.len(),
            names.len(),
            "a metric or parameter name is used twice"
        );
        for n in names {
            assert!(
                n.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{n}"
            );
        }
    }

    #[test]
    fn shared_params_have_one_declaration() {
        for f in families() {
            for p in f.params {
                assert_eq!(
                    find_param(p.name),
                    Some(p),
                    "{} is declared twice differently",
                    p.name
                );
            }
        }
    }
}
