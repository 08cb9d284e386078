//! CDS, correlation-decay slope [ref: End2End-Diffusion/iREPA `metrics/spatial_metrics.py`,
//! `metric_cds`]: per image, `s_d` = mean cosine over token pairs at Manhattan distance exactly `d`
//! for `d = 1..=dmax` (distances with no pair skipped), and CDS = minus the least-squares slope of `s_d`
//! against `d`; averaged over images.

use super::gram::Grid;

/// The distances CDS fits and their centred abscissae.
#[derive(Clone, Debug)]
pub struct Cds {
    ds: Vec<usize>,
    pairs: Vec<f64>,
    x0: Vec<f64>,
    denom: f64,
}

impl Cds {
    /// CDS on `grid` up to distance `dmax`.
    pub fn new(grid: &Grid, dmax: usize) -> Cds {
        let counts = grid.pair_counts();
        let ds: Vec<usize> = (1..=dmax)
            .filter(|&d| counts.get(d).is_some_and(|&n| n > 0))
            .collect();
        let pairs = ds.iter().map(|&d| counts[d] as f64).collect();
        let mean = ds.iter().sum::<usize>() as f64 / ds.len().max(1) as f64;
        let x0: Vec<f64> = ds.iter().map(|&d| d as f64 - mean).collect();
        // iREPA floors the denominator at 1e-12 (a single distance gives slope 0).
        let denom = x0.iter().map(|v| v * v).sum::<f64>().max(1e-12);
        Cds {
            ds,
            pairs,
            x0,
            denom,
        }
    }

    /// The distances fitted (`1..=dmax` that occur on the grid).
    pub fn distances(&self) -> &[usize] {
        &self.ds
    }

    /// The curve `s_d`, for each fitted distance, from the distance sums of one image or their mean
    /// over images (the mean curve).
    pub fn curve(&self, sums: &[f64], out: &mut [f64]) {
        for ((o, &d), &n) in out.iter_mut().zip(&self.ds).zip(&self.pairs) {
            *o = sums[d] / n;
        }
    }

    /// CDS of one curve (linear in it, so the CDS of the mean curve is the mean CDS): `-sum_k (s_k - mean s) x0_k / max(sum_k x0_k^2, 1e-12)`; 0 with no distance.
    pub fn value(&self, curve: &[f64]) -> f64 {
        if self.ds.is_empty() {
            return 0.0;
        }
        let mean = curve.iter().sum::<f64>() / curve.len() as f64;
        let num: f64 = curve
            .iter()
            .zip(&self.x0)
            .map(|(s, x)| (s - mean) * x)
            .sum();
        -num / self.denom
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slope_of_a_line_is_exact() {
        let grid = Grid::new(16, 16);
        let cds = Cds::new(&grid, 8);
        assert_eq!(cds.distances(), &[1, 2, 3, 4, 5, 6, 7, 8]);
        let curve: Vec<f64> = cds
            .distances()
            .iter()
            .map(|&d| 0.9 - 0.05 * d as f64)
            .collect();
        assert!((cds.value(&curve) - 0.05).abs() < 1e-15);
        // A 1x1 grid has no distance to fit: 0, as iREPA.
        assert_eq!(Cds::new(&Grid::new(1, 1), 8).value(&[]), 0.0);
    }
}
