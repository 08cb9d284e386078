//! The per-image cosine Gram matrix of latent tokens and the distance structure of the token grid,
//! shared by the iREPA spatial metrics [ref: End2End-Diffusion/iREPA `metrics/spatial_metrics.py`].
//!
//! A latent sample `(C, H, W)` is `S = H*W` tokens (C-vectors), token index `y*W + x`. Each token is
//! L2-normalized (`u / max(||u||, 1e-8)`), and `G = U U^T` (`S x S`) is one faer GEMM per image. The
//! metrics only ever need sums of `G` over token pairs at given Manhattan distances, so the grid's
//! distance classes are precomputed once per `(H, W, params)` as pair counts and index lists.

use super::kernels;
use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};

/// Token norms below this are treated as this (iREPA's `F.normalize(eps=1e-8)`).
pub const TOKEN_EPS: f64 = 1e-8;

/// The `h x w` token grid and its Manhattan distances `|dy| + |dx|`.
#[derive(Clone, Debug)]
pub struct Grid {
    pub h: usize,
    pub w: usize,
    /// Ordered pairs `(i, j)` at each distance `d = 0..=h+w-2` (`d = 0`: the `S` pairs `(i, i)`).
    pair_counts: Vec<u64>,
}

impl Grid {
    pub fn new(h: usize, w: usize) -> Grid {
        let mut pair_counts = vec![0u64; h + w - 1];
        // Pairs at offset (dy, dx) number (h - |dy|) (w - |dx|).
        for dy in 0..h {
            for dx in 0..w {
                let n = ((h - dy) * (w - dx)) as u64;
                let mult = match (dy, dx) {
                    (0, 0) => 1,
                    (0, _) | (_, 0) => 2,
                    _ => 4,
                };
                pair_counts[dy + dx] += mult * n;
            }
        }
        Grid { h, w, pair_counts }
    }

    /// Tokens per image.
    pub fn s(&self) -> usize {
        self.h * self.w
    }

    /// The largest distance on the grid, `h + w - 2`.
    pub fn max_dist(&self) -> usize {
        self.h + self.w - 2
    }

    /// Manhattan distance between tokens `i` and `j`.
    pub fn dist(&self, i: usize, j: usize) -> usize {
        let (yi, xi) = (i / self.w, i % self.w);
        let (yj, xj) = (j / self.w, j % self.w);
        yi.abs_diff(yj) + xi.abs_diff(xj)
    }

    /// Ordered pairs at each distance `0..=max_dist`.
    pub fn pair_counts(&self) -> &[u64] {
        &self.pair_counts
    }

    /// For every token `i`, the tokens within distance `radius` (itself included) as runs of
    /// consecutive token indices, one per grid row. `O(s min(h, 2 radius + 1))` runs.
    pub fn diamonds(&self, radius: usize) -> Runs {
        let (h, w) = (self.h, self.w);
        let mut runs = Vec::new();
        let mut start = vec![0];
        for i in 0..self.s() {
            let (y, x) = (i / w, i % w);
            for y2 in y.saturating_sub(radius)..=y.saturating_add(radius).min(h - 1) {
                let rx = radius - y.abs_diff(y2);
                let (x0, x1) = (x.saturating_sub(rx), x.saturating_add(rx).min(w - 1));
                runs.push((y2 * w + x0, y2 * w + x1 + 1));
            }
            start.push(runs.len());
        }
        Runs { runs, start }
    }
}

/// Per token, a list of index ranges `a..b` (compressed rows).
#[derive(Clone, Debug)]
pub struct Runs {
    runs: Vec<(usize, usize)>,
    start: Vec<usize>,
}

impl Runs {
    /// The ranges listed for token `i`.
    pub fn of(&self, i: usize) -> &[(usize, usize)] {
        &self.runs[self.start[i]..self.start[i + 1]]
    }
}

/// L2-normalizes, in place, each of the `s` tokens of a channel-major sample `x` (`c*s` values,
/// `x[ch*s + i]`): `u_i = x_i / max(||x_i||, 1e-8)`, norms accumulated in f64. `norms` is scratch of
/// `s` values. Cost `O(c s)`.
pub fn normalize_tokens(x: &mut [f32], c: usize, s: usize, norms: &mut [f64]) {
    kernels::normalize_tokens(x, c, s, TOKEN_EPS, norms);
}

/// The cosine Gram matrix `G = U U^T` (`s x s`, written to `g`, symmetric so either layout reads the
/// same) of the unit tokens `u` (channel-major, `c*s` values: `U` is `u` seen column-major). One f32
/// GEMM, `O(s^2 c)`, sequential (callers parallelize over images).
pub fn gram(u: &[f32], c: usize, s: usize, g: &mut [f32]) {
    let ut = MatRef::from_column_major_slice(&u[..c * s], s, c);
    let dst = MatMut::from_column_major_slice_mut(&mut g[..s * s], s, s);
    matmul(dst, Accum::Replace, ut, ut.transpose(), 1.0f32, Par::Seq);
}

/// The rows `anchors` of the Gram matrix: `R = U_a U^T` (`anchors.len() x s`, row-major in `r`),
/// `U_a` gathered into `rows` (scratch of `anchors.len() * c`). One f32 GEMM, `O(|a| s c)`.
pub fn gram_rows(
    u: &[f32],
    c: usize,
    s: usize,
    anchors: &[usize],
    rows: &mut [f32],
    r: &mut [f32],
) {
    let m = anchors.len();
    for ch in 0..c {
        let src = &u[ch * s..(ch + 1) * s];
        for (dst, &i) in rows[ch * m..(ch + 1) * m].iter_mut().zip(anchors) {
            *dst = src[i];
        }
    }
    let ua = MatRef::from_column_major_slice(&rows[..m * c], m, c);
    let ut = MatRef::from_column_major_slice(&u[..c * s], s, c);
    let dst = MatMut::from_row_major_slice_mut(&mut r[..m * s], m, s);
    matmul(dst, Accum::Replace, ua, ut.transpose(), 1.0f32, Par::Seq);
}

/// The sum over images of their Gram matrices, `sum_b G_b`, folded by grid-row offset: in f64,
/// `blocks[dy][x][x'] = sum_b sum_y G_b((y, x), (y - dy, x'))` for `dy = 0..h`. That is all LDS and
/// CDS read: a pair's distance is `dy + |x - x'|`, and the pairs with `y' > y` mirror those with
/// `y' < y`. Both metrics are linear in `G`, so the mean over images of their per-image values is
/// their value on `sum_b G_b / N`, and the distance classes are read once per chunk of images.
///
/// Each image costs GEMMs over bands of grid rows (`U_band U^T` restricted to the columns up to the
/// band's end: about half the full Gram's `s^2 c` work) and one f64 add per entry with `y' <= y`.
/// Memory `O(s w)`, so large grids stay affordable.
pub struct GramSum {
    h: usize,
    w: usize,
    s: usize,
    c: usize,
    /// Grid rows per GEMM band.
    band: usize,
    blocks: Vec<f64>,
    buf: Vec<f32>,
}

impl GramSum {
    /// An empty sum for `c`-channel images on `grid`.
    pub fn new(grid: &Grid, c: usize) -> GramSum {
        let (h, w, s) = (grid.h, grid.w, grid.s());
        // Bands of ~32 tokens: small enough to skip most of the upper triangle, large enough for
        // efficient GEMM tiles.
        let band = 32usize.div_ceil(w).clamp(1, h.max(1));
        GramSum {
            h,
            w,
            s,
            c,
            band,
            blocks: vec![0.0; h * w * w],
            buf: vec![0.0; s * band * w],
        }
    }

    /// Adds the Gram matrix of one image's unit tokens `u` (channel-major, `c*s` values).
    pub fn add(&mut self, u: &[f32]) {
        let (w, s, c) = (self.w, self.s, self.c);
        let ut = MatRef::from_column_major_slice(&u[..c * s], s, c);
        for y0 in (0..self.h).step_by(self.band) {
            let y1 = (y0 + self.band).min(self.h);
            let (r0, r1) = (y0 * w, y1 * w);
            let m = r1 - r0;
            // Column t' of the result is G(0..r1, r0 + t') = row r0 + t' of G up to column r1.
            let dst = MatMut::from_column_major_slice_mut(&mut self.buf[..r1 * m], r1, m);
            matmul(
                dst,
                Accum::Replace,
                ut.subrows(0, r1),
                ut.subrows(r0, m).transpose(),
                1.0f32,
                Par::Seq,
            );
            for tt in 0..m {
                let t = r0 + tt;
                let row = &self.buf[tt * r1..(tt + 1) * r1];
                kernels::add_row_blocks(&mut self.blocks, row, t / w, t % w, w);
            }
        }
    }

    /// Adds to `out[d]` the sum of the accumulated `G` over the ordered pairs at distance `d`
    /// (`d = 0..=h+w-2`): offsets `dy > 0` count twice (their mirror pairs), `dy = 0` once.
    pub fn add_distance_sums(&self, out: &mut [f64]) {
        let w = self.w;
        for (dy, block) in self.blocks.chunks_exact(w * w).enumerate() {
            let weight = if dy > 0 { 2.0 } else { 1.0 };
            for (x, row) in block.chunks_exact(w).enumerate() {
                for (x2, &v) in row.iter().enumerate() {
                    out[dy + x.abs_diff(x2)] += weight * v;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(c: usize, s: usize, seed: u64) -> Vec<f32> {
        let mut x = seed;
        (0..c * s)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((x >> 33) as f64 / (1u64 << 31) as f64 - 0.5) as f32
            })
            .collect()
    }

    #[test]
    fn pair_counts_match_brute_force() {
        for (h, w) in [(1, 1), (3, 5), (16, 16), (4, 1)] {
            let g = Grid::new(h, w);
            let mut want = vec![0u64; h + w - 1];
            for i in 0..h * w {
                for j in 0..h * w {
                    want[g.dist(i, j)] += 1;
                }
            }
            assert_eq!(g.pair_counts(), &want[..], "{h}x{w}");
            for radius in [0, 2, 100] {
                let runs = g.diamonds(radius);
                for i in 0..h * w {
                    let listed: Vec<usize> = runs.of(i).iter().flat_map(|&(a, b)| a..b).collect();
                    let brute: Vec<usize> =
                        (0..h * w).filter(|&j| g.dist(i, j) <= radius).collect();
                    assert_eq!(listed, brute, "{h}x{w} radius {radius} token {i}");
                }
            }
        }
    }

    #[test]
    fn distance_sums_and_rows_match_brute_force() {
        let (c, h, w) = (5, 4, 6);
        let s = h * w;
        let grid = Grid::new(h, w);
        let mut u = tokens(c, s, 3);
        let mut norms = vec![0.0; s];
        normalize_tokens(&mut u, c, s, &mut norms);
        let dot = |i: usize, j: usize| -> f64 {
            (0..c)
                .map(|ch| u[ch * s + i] as f64 * u[ch * s + j] as f64)
                .sum()
        };
        for i in 0..s {
            assert!((dot(i, i) - 1.0).abs() < 1e-6);
        }
        let mut g = vec![0.0; s * s];
        gram(&u, c, s, &mut g);
        let mut want = vec![0.0; h + w - 1];
        for i in 0..s {
            for j in 0..s {
                assert!((g[i * s + j] as f64 - dot(i, j)).abs() < 1e-6);
                want[grid.dist(i, j)] += dot(i, j);
            }
        }
        // Two images: the sum is twice the single image's.
        let mut sum = GramSum::new(&grid, c);
        sum.add(&u);
        sum.add(&u);
        let mut sums = vec![0.0; h + w - 1];
        sum.add_distance_sums(&mut sums);
        for (a, b) in sums.iter().zip(&want) {
            assert!((a - 2.0 * b).abs() < 1e-5, "{a} vs {b}");
        }
        let anchors = [0, 7, 23];
        let mut rows = vec![0.0; anchors.len() * c];
        let mut r = vec![0.0; anchors.len() * s];
        gram_rows(&u, c, s, &anchors, &mut rows, &mut r);
        for (a, &i) in anchors.iter().enumerate() {
            for j in 0..s {
                assert!((r[a * s + j] as f64 - dot(i, j)).abs() < 1e-6);
            }
        }
    }

    #[test]
    fn zero_tokens_stay_zero() {
        let mut x = vec![0.0f32; 6];
        x[1] = 3.0;
        x[4] = 4.0;
        let mut n = vec![0.0; 3];
        normalize_tokens(&mut x, 2, 3, &mut n);
        assert_eq!(x, vec![0.0, 0.6, 0.0, 0.0, 0.8, 0.0]);
    }
}
