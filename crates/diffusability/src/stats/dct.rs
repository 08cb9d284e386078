//! The orthonormal 2-D DCT-II of small maps (one latent channel of one image), on rustdct's 1-D plans.
//!
//! rustdct computes the unnormalized `X_k = sum_n x_n cos(pi k (2n + 1) / (2N))`; the orthonormal factors
//! (`sqrt(1/N)` for `k = 0`, `sqrt(2/N)` otherwise) are applied here, so the result equals
//! `scipy.fft.dctn(x, type=2, norm="ortho")` and Parseval holds: `sum F^2 = sum x^2`.

use rustdct::{DctPlanner, TransformType2And3};
use std::sync::Arc;

/// A planned orthonormal 2-D DCT-II of `h x w` row-major maps:
/// `F(u, v) = a_u(h) a_v(w) sum_{y,x} X(y, x) cos(pi u (2y + 1) / (2h)) cos(pi v (2x + 1) / (2w))`,
/// `a_0(n) = sqrt(1/n)`, `a_k(n) = sqrt(2/n)`. Cost per map: `h` transforms of length `w` and `w` of
/// length `h` (`O(hw log(hw))`). Plans are shared; each thread brings its own scratch.
#[derive(Clone)]
pub struct Dct2d {
    h: usize,
    w: usize,
    rows: Arc<dyn TransformType2And3<f64>>,
    cols: Arc<dyn TransformType2And3<f64>>,
    /// `scale[u * w + v] = a_u(h) a_v(w)`.
    scale: Vec<f64>,
}

impl Dct2d {
    /// Plans the transform of `h x w` maps (`h, w >= 1`).
    pub fn new(h: usize, w: usize) -> Dct2d {
        let mut planner = DctPlanner::new();
        let rows = planner.plan_dct2(w);
        let cols = planner.plan_dct2(h);
        let a = |k: usize, n: usize| {
            if k == 0 {
                (1.0 / n as f64).sqrt()
            } else {
                (2.0 / n as f64).sqrt()
            }
        };
        let mut scale = vec![0.0; h * w];
        for u in 0..h {
            for v in 0..w {
                scale[u * w + v] = a(u, h) * a(v, w);
            }
        }
        Dct2d {
            h,
            w,
            rows,
            cols,
            scale,
        }
    }

    pub fn height(&self) -> usize {
        self.h
    }

    pub fn width(&self) -> usize {
        self.w
    }

    /// Length of the scratch buffer [`Dct2d::forward`] and [`Dct2d::add_energy`] need.
    pub fn scratch_len(&self) -> usize {
        self.h * self.w + self.rows.get_scratch_len().max(self.cols.get_scratch_len())
    }

    /// Row transforms in place, then the column transforms of the transposed result into `t`
    /// (`w x h`, so `t[v * h + u]` is the unscaled `F(u, v)`).
    fn unscaled_transposed<'s>(&self, map: &mut [f64], scratch: &'s mut [f64]) -> &'s [f64] {
        let (h, w) = (self.h, self.w);
        let (t, rest) = scratch.split_at_mut(h * w);
        for row in map.chunks_exact_mut(w) {
            self.rows.process_dct2_with_scratch(row, rest);
        }
        for y in 0..h {
            for x in 0..w {
                t[x * h + y] = map[y * w + x];
            }
        }
        for col in t.chunks_exact_mut(h) {
            self.cols.process_dct2_with_scratch(col, rest);
        }
        t
    }

    /// Replaces the `h*w` row-major map by its coefficients `F(u, v)` at `u * w + v`.
    /// `scratch` holds at least [`Dct2d::scratch_len`] values.
    pub fn forward(&self, map: &mut [f64], scratch: &mut [f64]) {
        assert_eq!(map.len(), self.h * self.w, "map size");
        let (h, w) = (self.h, self.w);
        let t = self.unscaled_transposed(map, scratch);
        for u in 0..h {
            for v in 0..w {
                map[u * w + v] = t[v * h + u] * self.scale[u * w + v];
            }
        }
    }

    /// Adds `F(u, v)^2` of the map to `energy[u * w + v]`; `map` is overwritten.
    pub fn add_energy(&self, map: &mut [f64], scratch: &mut [f64], energy: &mut [f64]) {
        assert_eq!(map.len(), self.h * self.w, "map size");
        let (h, w) = (self.h, self.w);
        let t = self.unscaled_transposed(map, scratch);
        for u in 0..h {
            for v in 0..w {
                let f = t[v * h + u] * self.scale[u * w + v];
                energy[u * w + v] += f * f;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition, summed directly.
    fn naive(x: &[f64], h: usize, w: usize) -> Vec<f64> {
        let pi = std::f64::consts::PI;
        let a = |k: usize, n: usize| {
            if k == 0 {
                (1.0 / n as f64).sqrt()
            } else {
                (2.0 / n as f64).sqrt()
            }
        };
        let mut out = vec![0.0; h * w];
        for u in 0..h {
            for v in 0..w {
                let mut s = 0.0;
                for y in 0..h {
                    for xx in 0..w {
                        s += x[y * w + xx]
                            * (pi * u as f64 * (2 * y + 1) as f64 / (2 * h) as f64).cos()
                            * (pi * v as f64 * (2 * xx + 1) as f64 / (2 * w) as f64).cos();
                    }
                }
                out[u * w + v] = a(u, h) * a(v, w) * s;
            }
        }
        out
    }

    #[test]
    fn matches_the_definition_and_keeps_energy() {
        for (h, w) in [(16, 16), (5, 7), (1, 4), (8, 3)] {
            let x: Vec<f64> = (0..h * w)
                .map(|i| ((i * 37 % 11) as f64 - 5.0) * 0.3 + (i as f64 * 0.1).sin())
                .collect();
            let dct = Dct2d::new(h, w);
            let mut f = x.clone();
            let mut scratch = vec![0.0; dct.scratch_len()];
            dct.forward(&mut f, &mut scratch);
            let want = naive(&x, h, w);
            for (a, b) in f.iter().zip(&want) {
                assert!((a - b).abs() < 1e-12, "{h}x{w}: {a} vs {b}");
            }
            let ex: f64 = x.iter().map(|v| v * v).sum();
            let ef: f64 = f.iter().map(|v| v * v).sum();
            assert!((ex - ef).abs() < 1e-12 * ex);
            let mut e = vec![0.0; h * w];
            let mut m = x.clone();
            dct.add_energy(&mut m, &mut scratch, &mut e);
            for (a, b) in e.iter().zip(&want) {
                assert!((a - b * b).abs() < 1e-12);
            }
        }
    }
}
