//! LDS, local-vs-distant similarity [ref: End2End-Diffusion/iREPA `metrics/spatial_metrics.py`,
//! `metric_lds`]: per image, the mean cosine over 4-neighbour token pairs minus the mean cosine over the
//! token pairs at Manhattan distance `>= far` (`far_dist`, default 6); averaged over images.

use super::gram::Grid;

/// The distance classes LDS reads from an image's distance sums.
#[derive(Clone, Debug)]
pub struct Lds {
    far: usize,
    near_pairs: u64,
    far_pairs: u64,
}

impl Lds {
    /// LDS on `grid` with far distance `far >= 1`.
    pub fn new(grid: &Grid, far: usize) -> Lds {
        let counts = grid.pair_counts();
        Lds {
            far,
            near_pairs: counts.get(1).copied().unwrap_or(0),
            far_pairs: counts.iter().skip(far.max(1)).sum(),
        }
    }

    /// Ordered pairs per image at distance `>= far`; 0 when `far` exceeds the grid, and then the far
    /// term is 0 (iREPA clamps the denominator at 1).
    pub fn far_pairs(&self) -> u64 {
        self.far_pairs
    }

    /// Whether the grid has neighbouring tokens at all (not `1 x 1`).
    pub fn has_neighbours(&self) -> bool {
        self.near_pairs > 0
    }

    /// `(local, far)` from distance sums `sums[d] = sum_{d(i,j)=d} G_ij` (ordered pairs) of one image,
    /// or their mean over images (which gives the mean of the per-image values: both are linear): `local = sums[1] / #pairs(1)` (the mean over unordered neighbour pairs: `G` is
    /// symmetric), `far = sum_{d >= far} sums[d] / max(#pairs(d >= far), 1)`. `local` is NaN on a
    /// `1 x 1` grid, as iREPA's mean of nothing. LDS is `local - far`. `O(h + w)`.
    pub fn parts(&self, sums: &[f64]) -> (f64, f64) {
        let local = if self.near_pairs > 0 {
            sums[1] / self.near_pairs as f64
        } else {
            f64::NAN
        };
        let far_sum: f64 = sums.iter().skip(self.far.max(1)).sum();
        (local, far_sum / self.far_pairs.max(1) as f64)
    }
}
