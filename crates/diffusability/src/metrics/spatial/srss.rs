//! SRSS, semantic-region self-similarity [ref: End2End-Diffusion/iREPA `metrics/spatial_metrics.py`,
//! `metric_srss`; image filter: `metrics/spatial_metrics_comparison.py`, `load_and_filter_masks`].
//!
//! Per foreground anchor `i`: `pos_i` = mean cosine to the foreground tokens at distance `1..=dpos`,
//! `neg_i` = mean cosine to the background tokens at distance `>= dneg`; anchors with both are valid,
//! and the image's value is the mean of `pos_i - neg_i` over them. Images enter only with at least a
//! quarter of their tokens foreground and a quarter background (64 and 64 on 16 x 16); an image with no
//! valid anchor has no value (iREPA's NaN, left out by its `nanmean`).

use super::gram::{Grid, Runs, gram_rows};
use super::kernels;

/// What one image gives.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SrssImage {
    Value(f64),
    /// Fewer foreground tokens than the minimum (the count is given).
    FewForeground(usize),
    /// Fewer background tokens than the minimum.
    FewBackground(usize),
    /// No foreground anchor has both a foreground token within `dpos` and a background token at
    /// `>= dneg`.
    NoValidAnchor,
}

/// SRSS on one grid: the precomputed distance windows of every token.
#[derive(Clone, Debug)]
pub struct Srss {
    s: usize,
    /// Tokens within `dpos` (the positive window plus the anchor itself).
    pos: Runs,
    /// Tokens closer than `dneg`: the complement of the negative window.
    near: Runs,
    min_tokens: usize,
}

/// Anchors per GEMM block: bounds the rows of `G` held at once to `ANCHOR_BLOCK x s`.
const ANCHOR_BLOCK: usize = 256;

/// Per-thread buffers of [`Srss::image`].
#[derive(Default)]
pub struct SrssScratch {
    anchors: Vec<usize>,
    rows: Vec<f32>,
    r: Vec<f32>,
    fg: Vec<f32>,
    bg: Vec<f32>,
    bg_before: Vec<u32>,
    bg_sum: Vec<f64>,
    to_bg: Vec<f64>,
}

impl Srss {
    /// SRSS with positive window `1..=dpos` and negative window `>= dneg` (both `>= 1`).
    pub fn new(grid: &Grid, dpos: usize, dneg: usize) -> Srss {
        let s = grid.s();
        Srss {
            s,
            pos: grid.diamonds(dpos),
            near: grid.diamonds(dneg - 1),
            min_tokens: s.div_ceil(4),
        }
    }

    /// Foreground and background tokens an image needs: a quarter of the grid, rounded up.
    pub fn min_tokens(&self) -> usize {
        self.min_tokens
    }

    /// SRSS of one image from its unit tokens `u` (channel-major, `c*s`) and foreground flags `fg`.
    ///
    /// The Gram rows of the foreground anchors come from GEMMs (`O(n_fg s c)`). Each window is read
    /// from an anchor's row as a few runs of consecutive tokens weighted by 0/1 foreground or
    /// background flags: `pos_i` sums the foreground within `dpos` minus the anchor itself, and
    /// `neg_i` is `u_i . (sum of background u_j)` minus the background closer than `dneg`. So an
    /// anchor costs `O(c + dpos^2 + dneg^2)` besides its GEMM row. Sums in f64.
    pub fn image(&self, u: &[f32], c: usize, fg: &[bool], sc: &mut SrssScratch) -> SrssImage {
        let s = self.s;
        let fg = &fg[..s];
        sc.anchors.clear();
        sc.anchors.extend((0..s).filter(|&i| fg[i]));
        let n_fg = sc.anchors.len();
        let n_bg = s - n_fg;
        if n_fg < self.min_tokens {
            return SrssImage::FewForeground(n_fg);
        }
        if n_bg < self.min_tokens {
            return SrssImage::FewBackground(n_bg);
        }
        sc.fg.clear();
        sc.fg.extend(fg.iter().map(|&f| if f { 1.0 } else { 0.0 }));
        sc.bg.clear();
        sc.bg.extend(fg.iter().map(|&f| if f { 0.0 } else { 1.0 }));
        sc.bg_before.clear();
        sc.bg_before.push(0);
        let mut n = 0u32;
        for &f in fg {
            n += (!f) as u32;
            sc.bg_before.push(n);
        }
        let bg_in = |a: usize, b: usize| (sc.bg_before[b] - sc.bg_before[a]) as usize;
        // Every token's cosine sum over the background: u_i . (sum of background u_j).
        sc.bg_sum.clear();
        sc.bg_sum
            .extend(u.chunks_exact(s).take(c).map(|ch| kernels::dot(ch, &sc.bg)));
        sc.to_bg.clear();
        sc.to_bg.resize(s, 0.0);
        for (ch, &b) in u.chunks_exact(s).take(c).zip(&sc.bg_sum) {
            kernels::axpy_into(&mut sc.to_bg, ch, b);
        }

        let (mut total, mut valid) = (0.0f64, 0usize);
        for block in sc.anchors.chunks(ANCHOR_BLOCK) {
            let m = block.len();
            sc.rows.resize(m * c, 0.0);
            sc.r.resize(m * s, 0.0);
            gram_rows(u, c, s, block, &mut sc.rows, &mut sc.r);
            for (a, &i) in block.iter().enumerate() {
                let row = &sc.r[a * s..(a + 1) * s];
                let (mut pos, mut n_pos) = (-(row[i] as f64), 0usize);
                for &(a0, a1) in self.pos.of(i) {
                    pos += kernels::dot(&row[a0..a1], &sc.fg[a0..a1]);
                    n_pos += (a1 - a0) - bg_in(a0, a1);
                }
                n_pos -= 1;
                let (mut near, mut n_near) = (0.0f64, 0usize);
                for &(a0, a1) in self.near.of(i) {
                    near += kernels::dot(&row[a0..a1], &sc.bg[a0..a1]);
                    n_near += bg_in(a0, a1);
                }
                let n_neg = n_bg - n_near;
                if n_pos > 0 && n_neg > 0 {
                    let neg = sc.to_bg[i] - near;
                    total += pos / n_pos as f64 - neg / n_neg as f64;
                    valid += 1;
                }
            }
        }
        if valid == 0 {
            SrssImage::NoValidAnchor
        } else {
            SrssImage::Value(total / valid as f64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::gram::normalize_tokens;
    use super::*;

    /// The definition over the full Gram matrix, as iREPA writes it.
    fn brute(u: &[f32], c: usize, grid: &Grid, fg: &[bool], dpos: usize, dneg: usize) -> f64 {
        let s = grid.s();
        let dot = |i: usize, j: usize| -> f64 {
            (0..c)
                .map(|ch| u[ch * s + i] as f64 * u[ch * s + j] as f64)
                .sum()
        };
        let (mut tot, mut n) = (0.0, 0);
        for i in (0..s).filter(|&i| fg[i]) {
            let (mut p, mut np, mut q, mut nq) = (0.0, 0, 0.0, 0);
            for (j, &fj) in fg.iter().enumerate() {
                let d = grid.dist(i, j);
                if fj && d >= 1 && d <= dpos {
                    p += dot(i, j);
                    np += 1;
                }
                if !fj && d >= dneg {
                    q += dot(i, j);
                    nq += 1;
                }
            }
            if np > 0 && nq > 0 {
                tot += p / np as f64 - q / nq as f64;
                n += 1;
            }
        }
        tot / n as f64
    }

    #[test]
    fn matches_brute_force_and_filters() {
        let (c, h, w) = (3, 8, 8);
        let s = h * w;
        let grid = Grid::new(h, w);
        let mut u: Vec<f32> = (0..c * s)
            .map(|k| ((k * 7919 % 113) as f32 - 56.0) / 30.0)
            .collect();
        let mut norms = vec![0.0; s];
        normalize_tokens(&mut u, c, s, &mut norms);
        let fg: Vec<bool> = (0..s).map(|i| (i % w) < 3 || i % 11 == 0).collect();
        let mut sc = SrssScratch::default();
        for (dpos, dneg) in [(1, 6), (2, 3), (1, 1)] {
            let srss = Srss::new(&grid, dpos, dneg);
            let SrssImage::Value(v) = srss.image(&u, c, &fg, &mut sc) else {
                panic!("no value")
            };
            let want = brute(&u, c, &grid, &fg, dpos, dneg);
            assert!((v - want).abs() < 1e-6, "{v} vs {want}");
        }
        // More anchors than one GEMM block holds.
        let (hb, wb) = (24, 24);
        let big = Grid::new(hb, wb);
        let sb = hb * wb;
        let mut ub: Vec<f32> = (0..c * sb)
            .map(|k| ((k * 7919 % 113) as f32 - 56.0) / 30.0)
            .collect();
        let mut nb = vec![0.0; sb];
        normalize_tokens(&mut ub, c, sb, &mut nb);
        let fgb: Vec<bool> = (0..sb).map(|i| (i % wb) < 14).collect();
        assert!(fgb.iter().filter(|&&f| f).count() > ANCHOR_BLOCK);
        let SrssImage::Value(v) = Srss::new(&big, 2, 5).image(&ub, c, &fgb, &mut sc) else {
            panic!("no value")
        };
        let want = brute(&ub, c, &big, &fgb, 2, 5);
        assert!((v - want).abs() < 1e-6, "{v} vs {want}");

        let srss = Srss::new(&grid, 1, 6);
        assert_eq!(srss.min_tokens(), 16);
        let few: Vec<bool> = (0..s).map(|i| i < 15).collect();
        assert_eq!(
            srss.image(&u, c, &few, &mut sc),
            SrssImage::FewForeground(15)
        );
        let many: Vec<bool> = (0..s).map(|i| i >= 15).collect();
        assert_eq!(
            srss.image(&u, c, &many, &mut sc),
            SrssImage::FewBackground(15)
        );
        // Foreground in isolated tokens: no anchor has a foreground neighbour.
        let sparse: Vec<bool> = (0..s).map(|i| (i / w + i % w) % 2 == 0).collect();
        assert_eq!(
            srss.image(&u, c, &sparse, &mut sc),
            SrssImage::NoValidAnchor
        );
    }
}
