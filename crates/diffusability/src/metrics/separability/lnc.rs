//! LNC, latent neighbour consistency: how often an image's nearest neighbours share its class.

use crate::data::Labels;
use crate::stats::knn::Neighbors;

/// LNC and its per-class breakdown.
#[derive(Clone, Debug, PartialEq)]
pub struct Lnc {
    /// `lnc = mean_n #{j in kNN(n): y_j = y_n} / k`.
    pub value: f64,
    pub k: usize,
    /// Same-class neighbours of each image, `0..=k`.
    pub counts: Vec<usize>,
    /// Per dense class (indexed like `Labels::classes`): mean consistency of its images.
    pub per_class: Vec<f64>,
    /// Images per dense class.
    pub class_sizes: Vec<usize>,
}

/// LNC from precomputed neighbours (spec section 2): `lnc = mean_n #{j in kNN(n): y_j = y_n} / k`,
/// computed as (total same-class neighbours) / (n k) so the value is exact up to one rounding.
/// `per_class[c]` is the same mean restricted to the images of class `c`. Needs `k >= 1` and `n >= 1`
/// (the caller checks); O(n k).
pub fn lnc(nb: &Neighbors, labels: &Labels) -> Lnc {
    let k = nb.k;
    let y = &labels.class_of;
    let counts: Vec<usize> = (0..nb.n)
        .map(|i| nb.of(i).iter().filter(|&&j| y[j] == y[i]).count())
        .collect();
    let nc = labels.num_classes();
    let mut class_total = vec![0usize; nc];
    let mut class_sizes = vec![0usize; nc];
    for (i, &c) in counts.iter().enumerate() {
        class_total[y[i] as usize] += c;
        class_sizes[y[i] as usize] += 1;
    }
    let total: usize = counts.iter().sum();
    let per_class = class_total
        .iter()
        .zip(&class_sizes)
        .map(|(&t, &s)| t as f64 / (s * k) as f64)
        .collect();
    Lnc {
        value: total as f64 / (nb.n * k) as f64,
        k,
        counts,
        per_class,
        class_sizes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_same_class_neighbours() {
        // 4 points, k = 2; classes a a b b.
        let nb = Neighbors {
            n: 4,
            k: 2,
            index: vec![1, 2, 0, 3, 3, 0, 2, 1],
            score: vec![0.0; 8],
            rescans: 0,
        };
        let l = lnc(&nb, &Labels::new(vec![5, 5, 9, 9]));
        assert_eq!(l.counts, vec![1, 1, 1, 1]);
        assert_eq!(l.value, 0.5);
        assert_eq!(l.per_class, vec![0.5, 0.5]);
    }
}
