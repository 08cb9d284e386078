//! Barnes-Hut repulsion (van der Maaten 2014, "Accelerating t-SNE using tree-based algorithms"), with
//! scikit-learn's quadtree and summary criterion (`sklearn/neighbors/_quad_tree.pyx`, `summarize`;
//! `sklearn/manifold/_barnes_hut_tsne.pyx`, `compute_gradient_negative`):
//! - the tree splits each cell at its centre into four, the root being the points' bounding rectangle;
//!   each cell keeps its point count, centre of mass and squared widest side;
//! - a cell stands for its points, all at its centre of mass, when `max_width^2 / d^2 < theta^2`
//!   (`d` the distance from the query point to the centre of mass), or when it is a leaf.
//!
//! Written here rather than taken from a crate: what matters is reproducing scikit-learn's
//! approximation exactly (its criterion, its cells split at their centres, every summary at a centre
//! of mass), because the approximation shapes the map the metric measures; a t-SNE crate's
//! Barnes-Hut would bring its own variant of these choices, tied to its own optimizer.
//!
//! Differences from scikit-learn, none of which changes the criterion: the root is the bare bounding
//! rectangle (scikit-learn pads its upper bounds by a relative 1e-3, or 1e-3 absolute on the small maps
//! of the first iterations), only identical points or points within `2^-32` of the map's extent share
//! a leaf (scikit-learn merges points within 1e-6 in each coordinate and skips them), and the
//! per-point sums are f64 (each term and short partial sums are f32, as all of scikit-learn's
//! arithmetic there is).
//!
//! Speed: the points are visited in groups (the largest cells of at most [`GROUP`] points, and runs of
//! at most [`GROUP`] points of a larger leaf of coincident points, then neighbours in the tree order
//! merged while they fit in one). One walk of the tree per group
//! decides each cell for all the group's points at once where the group's
//! bounding box settles it (summarized for all, or opened for all), and point by point otherwise; a
//! cell summarized for only some points carries their mask, and the others go on to its children.
//! The summarized cells form one list that the group's points sum over in SIMD lanes, each counting
//! the cells whose mask has its bit. Each point gets the same summaries as with its own walk (up to
//! rounding at the threshold), at a fraction of the cost of walking the tree once per point.
//!
//! The tree is built sequentially from a sort of the points by Morton code (by insertion from the
//! previous iteration's order, which is nearly sorted; see [`Tree`]), which leaves every cell's and every group's points
//! contiguous; the groups are processed in parallel, each point's sums in one fixed order, so results
//! are identical for any thread count.

use super::super::vexp::simd_kernel;
use super::optimize::{RepulsionForces, split_columns};
use crate::simd::fold16;
#[cfg(target_arch = "x86_64")]
use crate::simd::fold16_avx512;
use rayon::prelude::*;

/// scikit-learn's default `angle`.
pub const THETA: f64 = 0.5;

/// Most points per group (see the module docs); at most 64, the bits of a summary's mask. 64
/// rather than 32: fewer walks outweigh the longer lists each point sums over (7 % less time per
/// iteration at 10,000 points).
const GROUP: u32 = 64;
/// Deepest level: points closer than `2^-32` of the map's extent (2e-8 on a map 100 wide, 2e-14 on
/// the first iterations' 1e-4-wide map) share a leaf. scikit-learn merges points within 1e-6 of each
/// other in absolute terms, which would merge most of the points of those first maps of 10,000
/// points. 32 levels keep a Morton code in 64 bits.
const MAX_DEPTH: u32 = 32;

/// A cell, in 32 bytes (the walk reads little else): children are contiguous, and the squared widest
/// side depends on the depth alone ([`Tree::reach`]).
#[derive(Clone, Copy, Debug, Default)]
struct Cell {
    /// The centre of mass of its points.
    mx: f64,
    my: f64,
    count: u32,
    /// An inner cell's first child; a leaf's first point in the tree order.
    first: u32,
    depth: u8,
    /// Children (the non-empty quadrants, in quadrant order); 0 for a leaf.
    kids: u8,
}

impl Cell {
    /// The cell of `count` points whose positions sum to `(sx, sy)`.
    fn of(sx: f64, sy: f64, count: usize, first: usize, depth: u32, kids: usize) -> Cell {
        Cell {
            mx: sx / count as f64,
            my: sy / count as f64,
            count: count as u32,
            first: first as u32,
            depth: depth as u8,
            kids: kids as u8,
        }
    }

    fn is_leaf(&self) -> bool {
        self.kids == 0
    }
}

/// A quadtree over the points of one iteration, its buffers reused between iterations.
///
/// Built from a sort rather than by inserting points one by one: each point's Morton code (its
/// position on the root rectangle quantized to `2^32` steps per axis, the bits interleaved from the
/// top level down, `x` before `y` as in the quadrant index `2 * (x >= cx) + (y >= cy)`) lists the
/// quadrants of its path, so sorting by code puts every cell's points in one contiguous range, in
/// depth-first order with children in quadrant order. Each cell then splits its range where the
/// code's digit of its level changes; no point is routed cell by cell.
///
/// Quantization versus comparing with the centres in f64: `floor((x - x0) / (x1 - x0) * 2^32)` is
/// monotone in `x`, so each cell holds exactly the points of an interval per axis whose ends differ
/// from the exact centre lines by a rounding error of the extent (a few `2^-53` of it), as the
/// centres the former insertion computed by halving also did. Only a point within that distance of a
/// centre line can land on the other side, and what the criterion reads stays exact for the points a
/// cell holds: its width (from its depth) and its centre of mass (from its own points).
#[derive(Default)]
struct Tree {
    cells: Vec<Cell>,
    /// Per depth: the squared widest side over `theta^2`, the summary threshold on `d^2`.
    reach: Vec<f64>,
    /// Morton code (high 64 bits) and point index (low 32), sorted (a leaf's points by index).
    keys: Vec<u128>,
    /// The Morton codes alone, in the sorted order.
    codes: Vec<u64>,
    /// The points in tree order, and their positions in that order.
    order: Vec<u32>,
    sx: Vec<f64>,
    sy: Vec<f64>,
    /// Per position in the tree order: the point's leaf.
    leaf: Vec<u32>,
    /// The groups as ranges of the tree order: the largest cells of at most [`GROUP`] points, and a
    /// larger leaf (coincident points) cut into runs of at most [`GROUP`], in depth-first order,
    /// neighbours merged while they fit in [`GROUP`]; the ranges follow each other and cover it.
    groups: Vec<(u32, u32)>,
}

/// Spreads the low 32 bits of `v` to the even bits of the result.
fn spread(v: u64) -> u64 {
    let mut v = v & 0xffff_ffff;
    v = (v | (v << 16)) & 0x0000_ffff_0000_ffff;
    v = (v | (v << 8)) & 0x00ff_00ff_00ff_00ff;
    v = (v | (v << 4)) & 0x0f0f_0f0f_0f0f_0f0f;
    v = (v | (v << 2)) & 0x3333_3333_3333_3333;
    (v | (v << 1)) & 0x5555_5555_5555_5555
}

/// `x`'s step on `[lo, lo + width]` in `2^32` steps; the top end in the last step; 0 when the width
/// is 0.
fn quantize(x: f64, lo: f64, width: f64) -> u64 {
    const STEPS: f64 = (1u64 << MAX_DEPTH) as f64;
    // NaN (a zero width) converts to 0.
    (((x - lo) / width * STEPS) as u64).min((1u64 << MAX_DEPTH) - 1)
}

/// The Morton code of the 32-bit steps `qx`, `qy`: level `l`'s quadrant `2 * xbit + ybit` in bits
/// `2 (31 - l)` and up.
fn morton(qx: u64, qy: u64) -> u64 {
    (spread(qx) << 1) | spread(qy)
}

/// Sorts `v`, given nearly sorted: by insertion (linear in the length plus the moves) while the
/// moves stay below a few per element, else by `sort_unstable`. Between iterations points move
/// little relative to each other, so the previous order is nearly the new one.
fn sort_nearly_sorted(v: &mut [u128]) {
    let budget = 4 * v.len();
    let mut moved = 0;
    for i in 1..v.len() {
        let x = v[i];
        let mut j = i;
        while j > 0 && v[j - 1] > x {
            v[j] = v[j - 1];
            j -= 1;
        }
        v[j] = x;
        moved += i - j;
        if moved > budget {
            v.sort_unstable();
            return;
        }
    }
}

impl Tree {
    fn build(&mut self, xs: &[f64], ys: &[f64]) {
        let n = xs.len();
        let (mut x0, mut x1, mut y0, mut y1) = (
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::INFINITY,
            f64::NEG_INFINITY,
        );
        for (&x, &y) in xs.iter().zip(ys) {
            x0 = x0.min(x);
            x1 = x1.max(x);
            y0 = y0.min(y);
            y1 = y1.max(y);
        }
        // Half widths by halving, exact: the same widths as the cells of scikit-learn's tree.
        let (mut hx, mut hy) = (0.5 * (x1 - x0), 0.5 * (y1 - y0));
        self.reach.clear();
        for _ in 0..=MAX_DEPTH {
            let w = 2.0 * hx.max(hy);
            self.reach.push(w * w / (THETA * THETA));
            hx *= 0.5;
            hy *= 0.5;
        }
        let (wx, wy) = (x1 - x0, y1 - y0);
        let key = |i: u32| {
            let i_ = i as usize;
            let code = morton(quantize(xs[i_], x0, wx), quantize(ys[i_], y0, wy));
            (u128::from(code) << 32) | u128::from(i)
        };
        // From the previous iteration's order, where there is one: points move little between
        // iterations, so it is nearly sorted.
        self.keys.clear();
        if self.order.len() == n {
            self.keys.extend(self.order.iter().map(|&i| key(i)));
        } else {
            self.keys.extend((0..n as u32).map(key));
        }
        if self.order.len() == n {
            sort_nearly_sorted(&mut self.keys);
        } else {
            self.keys.sort_unstable();
        }
        self.order.clear();
        self.order.extend(self.keys.iter().map(|&k| k as u32));
        self.codes.clear();
        self.codes
            .extend(self.keys.iter().map(|&k| (k >> 32) as u64));
        self.sx.clear();
        self.sy.clear();
        self.sx.extend(self.order.iter().map(|&i| xs[i as usize]));
        self.sy.extend(self.order.iter().map(|&i| ys[i as usize]));
        self.leaf.clear();
        self.leaf.resize(n, 0);
        self.groups.clear();
        self.cells.clear();
        if n == 0 {
            return;
        }
        self.cells.push(Cell::default());
        self.split(0, 0, n, 0, false);
        // Neighbouring groups merged while they fit in one.
        let mut merged: Vec<(u32, u32)> = Vec::with_capacity(self.groups.len());
        for &(lo, hi) in &self.groups {
            match merged.last_mut() {
                Some(last) if hi - last.0 <= GROUP => last.1 = hi,
                _ => merged.push((lo, hi)),
            }
        }
        self.groups = merged;
    }

    /// Makes cell `c` the cell of the points `lo..hi` (tree order) at `depth`, and its subtree; returns
    /// the sums of their positions.
    fn split(&mut self, c: usize, lo: usize, hi: usize, depth: u32, grouped: bool) -> (f64, f64) {
        let count = hi - lo;
        let group = !grouped && count <= GROUP as usize;
        if group {
            self.groups.push((lo as u32, hi as u32));
        }
        let same_code = self.codes[lo] == self.codes[hi - 1];
        // Above the depth limit a leaf may hold points that are not coincident.
        let leaf = count == 1
            || depth >= MAX_DEPTH
            || (same_code
                && self.sx[lo..hi].iter().all(|&v| v == self.sx[lo])
                && self.sy[lo..hi].iter().all(|&v| v == self.sy[lo]));
        if leaf {
            if !grouped && !group {
                // More coincident points than a group holds: in runs (the mask has one bit per point).
                let mut a = lo;
                while a < hi {
                    self.groups
                        .push((a as u32, hi.min(a + GROUP as usize) as u32));
                    a += GROUP as usize;
                }
            }
            let sum = |v: &[f64]| v.iter().sum::<f64>();
            let (sx, sy) = (sum(&self.sx[lo..hi]), sum(&self.sy[lo..hi]));
            self.leaf[lo..hi].iter_mut().for_each(|l| *l = c as u32);
            self.cells[c] = Cell::of(sx, sy, count, lo, depth, 0);
            return (sx, sy);
        }
        // The range shares the code's digits above this level, so this level's digit (the quadrant)
        // grows along it.
        let shift = 2 * (MAX_DEPTH - 1 - depth);
        let mut bounds = [lo, lo, lo, lo, hi];
        for (q, b) in bounds.iter_mut().enumerate().take(4).skip(1) {
            let digit = |c: &u64| ((c >> shift) & 3) < q as u64;
            let codes = &self.codes[lo..hi];
            // Small ranges (most cells) by counting, without the branches of a search.
            *b = lo
                + if count <= 32 {
                    codes.iter().filter(|c| digit(c)).count()
                } else {
                    codes.partition_point(digit)
                };
        }
        let kids = (0..4).filter(|&q| bounds[q] < bounds[q + 1]).count();
        let first = self.cells.len();
        self.cells.resize(first + kids, Cell::default());
        let (mut sx, mut sy) = (0.0, 0.0);
        let mut k = first;
        for q in 0..4 {
            if bounds[q] < bounds[q + 1] {
                let (a, b) = self.split(k, bounds[q], bounds[q + 1], depth + 1, grouped || group);
                sx += a;
                sy += b;
                k += 1;
            }
        }
        self.cells[c] = Cell::of(sx, sy, count, first, depth, kids);
        (sx, sy)
    }

    /// The other points of the leaf of the point at position `k` of the tree order (coincident ones,
    /// or merged at the depth limit), as one summary at their centre of mass:
    /// `(sum q^2 dx, sum q^2 dy, sum q)`, or zeros when alone.
    fn own_leaf(&self, k: usize) -> [f64; 3] {
        let cell = &self.cells[self.leaf[k] as usize];
        let size = cell.count as f64 - 1.0;
        if size == 0.0 {
            return [0.0; 3];
        }
        let (x, y) = (self.sx[k], self.sy[k]);
        let dx = x - (cell.mx * cell.count as f64 - x) / size;
        let dy = y - (cell.my * cell.count as f64 - y) / size;
        let q = 1.0 / (1.0 + dx * dx + dy * dy);
        [size * q * q * dx, size * q * q * dy, size * q]
    }

    /// One walk for the group of points `lo..hi` of the tree order: every cell summarized for at
    /// least one of its points, with the mask of those points, into `l`. A cell is decided for all
    /// active points at once when the group's bounding box settles it, else point by point; the
    /// points that open it go on to its children. A leaf is summarized for the active points other
    /// than its own.
    fn walk(&self, (lo, hi): (u32, u32), l: &mut Lists) {
        let px = &self.sx[lo as usize..hi as usize];
        let py = &self.sy[lo as usize..hi as usize];
        let (x0, x1) = px
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                (a.min(v), b.max(v))
            });
        let (y0, y1) = py
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                (a.min(v), b.max(v))
            });
        let bits = |w: u32| if w >= 64 { u64::MAX } else { (1u64 << w) - 1 };
        // The origin of the f32 positions.
        let (ox, oy) = (px[0], py[0]);
        l.px.clear();
        l.py.clear();
        l.px.extend(px.iter().map(|&v| (v - ox) as f32));
        l.py.extend(py.iter().map(|&v| (v - oy) as f32));
        // Padded with the first point, the origin (masked out).
        l.gx.resize(GROUP as usize, 0.0);
        l.gy.resize(GROUP as usize, 0.0);
        for a in 0..GROUP as usize {
            l.gx[a] = l.px.get(a).copied().unwrap_or(0.0);
            l.gy[a] = l.py.get(a).copied().unwrap_or(0.0);
        }
        l.x.clear();
        l.y.clear();
        l.size.clear();
        l.mask.clear();
        l.walk.clear();
        l.walk.push((0, bits(hi - lo)));
        while let Some((c, mask)) = l.walk.pop() {
            let cell = self.cells[c as usize];
            let mut take = |m: u64| {
                l.x.push((cell.mx - ox) as f32);
                l.y.push((cell.my - oy) as f32);
                l.size.push(cell.count as f32);
                l.mask.push(m);
            };
            if cell.is_leaf() {
                // The group's points in this leaf: where the two ranges of the tree order meet.
                let (a, b) = (cell.first.max(lo), (cell.first + cell.count).min(hi));
                let m = if a < b {
                    mask & !(bits(b - a) << (a - lo))
                } else {
                    mask
                };
                if m != 0 {
                    take(m);
                }
                continue;
            }
            let gap = |v: f64, a: f64, b: f64| (a - v).max(v - b).max(0.0);
            let far = |v: f64, a: f64, b: f64| (v - a).abs().max((b - v).abs());
            let (gx, gy) = (gap(cell.mx, x0, x1), gap(cell.my, y0, y1));
            let (fx, fy) = (far(cell.mx, x0, x1), far(cell.my, y0, y1));
            let reach = self.reach[cell.depth as usize];
            let accept = if reach < gx * gx + gy * gy {
                mask
            } else if reach >= fx * fx + fy * fy {
                0
            } else {
                let (cx, cy) = ((cell.mx - ox) as f32, (cell.my - oy) as f32);
                beyond(&l.gx, &l.gy, cx, cy, reach as f32) & mask
            };
            if accept != 0 {
                take(accept);
            }
            let open = mask & !accept;
            if open != 0 {
                for k in (cell.first..cell.first + u32::from(cell.kids)).rev() {
                    l.walk.push((k, open));
                }
            }
        }
    }
}

/// A group's scratch: the cells summarized for its points with their point masks, and the sums.
/// Positions are in f32 relative to the group's first point (see [`cell_sums`]).
#[derive(Default)]
struct Lists {
    x: Vec<f32>,
    y: Vec<f32>,
    size: Vec<f32>,
    mask: Vec<u64>,
    walk: Vec<(u32, u64)>,
    /// The group's points as `px`, `py`, padded to [`GROUP`].
    gx: Vec<f32>,
    gy: Vec<f32>,
    px: Vec<f32>,
    py: Vec<f32>,
    sums: Vec<f64>,
}

simd_kernel! {
    /// The mask of the points `a` with `reach < |p_a - m|^2`, the summary criterion of a cell with
    /// centre of mass `m`: all points at once, without a branch per point. In f32, relative to the
    /// group's first point, as scikit-learn decides it in f32 (`_quad_tree.pyx`, `summarize`): only
    /// a point within a rounding of the threshold can be decided otherwise than in f64, and either
    /// decision is a valid one.
    fn beyond(
        px: &[f32],
        py: &[f32],
        mx: f32,
        my: f32,
        reach: f32,
    ) -> u64 {
        let (px, py) = (&px[..GROUP as usize], &py[..GROUP as usize]);
        let mut m = 0u64;
        for a in 0..GROUP as usize {
            let (dx, dy) = (px[a] - mx, py[a] - my);
            m |= u64::from(reach < dx * dx + dy * dy) << a;
        }
        m
    }
}

/// Lanes of the f32 cell sums.
const LANES32: usize = 16;
/// Blocks of [`LANES32`] cells whose terms are summed in f32 before the f64 lanes take them.
const RUN: usize = 8;

/// For each point `a` at `(px[a], py[a])`: `(sum s q^2 dx, sum s q^2 dy, sum s q)` over the cells
/// `(cx, cy, s)` whose mask has bit `a`, `q = 1 / (1 + dx^2 + dy^2)`, `d = p - c`, into
/// `out[3a..3a + 3]`. The cells come in whole blocks of [`LANES32`] (the caller pads with empty
/// ones).
///
/// Each term in f32, as scikit-learn computes them all: the positions are relative to a point of
/// the group, so `d` loses no more than a rounding of its own length (a cell's relative position is
/// about `d` itself, a point's at most the group's extent), and terms are within about 1e-7 of their
/// f64 values. Lane `l` takes the cells `l mod 16`; it sums the terms of [`RUN`] blocks in f32
/// (seven more roundings of a partial sum of eight terms) and adds that to an f64 lane; the lanes
/// are merged as [`fold16`] does, so the sums are the same on every instruction set. Sizes are exact in f32
/// up to `2^24` points.
fn cell_sums(px: &[f32], py: &[f32], cells: (&[f32], &[f32], &[f32], &[u64]), out: &mut [f64]) {
    assert!(cells.0.len().is_multiple_of(LANES32) && px.len() <= 64);
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F (checked just above); the cell lists have whole blocks
        // (asserted above; `cell_sums_avx512` checks their lengths agree).
        return unsafe { cell_sums_avx512(px, py, cells, out) };
    }
    cell_sums_reference(px, py, cells, out)
}

simd_kernel! {
    /// [`cell_sums`] in plain loops: the reference of [`cell_sums_avx512`], lane by lane the same
    /// operations in the same order.
    fn cell_sums_reference(
        px: &[f32],
        py: &[f32],
        cells: (&[f32], &[f32], &[f32], &[u64]),
        out: &mut [f64],
    ) -> () {
        let (cx, cy, cs, cm) = cells;
        let m = cx.len();
        let (cy, cs, cm) = (&cy[..m], &cs[..m], &cm[..m]);
        for (a, (&xa, &ya)) in px.iter().zip(py).enumerate() {
            let bit = 1u64 << a;
            let mut acc = [[0.0f64; LANES32]; 3];
            for run in (0..m).step_by(RUN * LANES32) {
                let mut part = [[0.0f32; LANES32]; 3];
                for block in (run..m.min(run + RUN * LANES32)).step_by(LANES32) {
                    // Lane `l` indexes the cells and three accumulators.
                    #[allow(clippy::needless_range_loop)]
                    for l in 0..LANES32 {
                        let j = block + l;
                        let w = if cm[j] & bit != 0 { cs[j] } else { 0.0 };
                        let (dx, dy) = (xa - cx[j], ya - cy[j]);
                        let q = 1.0 / (1.0 + dx * dx + dy * dy);
                        let sq = w * q;
                        let sqq = sq * q;
                        part[0][l] += sqq * dx;
                        part[1][l] += sqq * dy;
                        part[2][l] += sq;
                    }
                }
                for (acc, part) in acc.iter_mut().zip(&part) {
                    for l in 0..LANES32 {
                        acc[l] += f64::from(part[l]);
                    }
                }
            }
            for (k, acc) in acc.iter().enumerate() {
                out[3 * a + k] = fold16(acc);
            }
        }
    }
}

/// [`cell_sums`] with AVX-512 intrinsics: the compiler does not fuse the reference's loops (its
/// vectorized form stored and reloaded every term, and converted each to f64), and this pass is a
/// fifth of an iteration.
///
/// # Safety
/// The CPU must have AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn cell_sums_avx512(
    px: &[f32],
    py: &[f32],
    cells: (&[f32], &[f32], &[f32], &[u64]),
    out: &mut [f64],
) {
    use std::arch::x86_64::*;
    let (cx, cy, cs, cm) = cells;
    let m = cx.len();
    assert!(
        m.is_multiple_of(LANES32)
            && cy.len() == m
            && cs.len() == m
            && cm.len() == m
            && py.len() == px.len()
            && out.len() >= 3 * px.len()
    );
    let one = _mm512_set1_ps(1.0);
    let widen = |v: __m512| {
        (
            _mm512_cvtps_pd(_mm512_castps512_ps256(v)),
            _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(
                _mm512_castps_pd(v),
            ))),
        )
    };
    for (a, (&xa, &ya)) in px.iter().zip(py).enumerate() {
        let (xa, ya) = (_mm512_set1_ps(xa), _mm512_set1_ps(ya));
        let bit = _mm512_set1_epi64(1i64 << a);
        let mut acc = [_mm512_setzero_pd(); 6];
        for run in (0..m).step_by(RUN * LANES32) {
            let mut part = [_mm512_setzero_ps(); 3];
            for j in (run..m.min(run + RUN * LANES32)).step_by(LANES32) {
                // SAFETY: `j + 16 <= m`, the length of every cell slice (asserted above).
                let (x, y, s, lo, hi) = unsafe {
                    (
                        _mm512_loadu_ps(cx.as_ptr().add(j)),
                        _mm512_loadu_ps(cy.as_ptr().add(j)),
                        _mm512_loadu_ps(cs.as_ptr().add(j)),
                        _mm512_loadu_si512(cm.as_ptr().add(j).cast()),
                        _mm512_loadu_si512(cm.as_ptr().add(j + 8).cast()),
                    )
                };
                let keep = u16::from(_mm512_test_epi64_mask(lo, bit))
                    | (u16::from(_mm512_test_epi64_mask(hi, bit)) << 8);
                let (dx, dy) = (_mm512_sub_ps(xa, x), _mm512_sub_ps(ya, y));
                let d2 = _mm512_add_ps(
                    _mm512_add_ps(one, _mm512_mul_ps(dx, dx)),
                    _mm512_mul_ps(dy, dy),
                );
                let q = _mm512_div_ps(one, d2);
                // The size where the mask has bit `a`, else +0: as the reference's `w * q`.
                let sq = _mm512_maskz_mul_ps(keep, s, q);
                let sqq = _mm512_mul_ps(sq, q);
                part[0] = _mm512_add_ps(part[0], _mm512_mul_ps(sqq, dx));
                part[1] = _mm512_add_ps(part[1], _mm512_mul_ps(sqq, dy));
                part[2] = _mm512_add_ps(part[2], sq);
            }
            for (k, &p) in part.iter().enumerate() {
                let (lo, hi) = widen(p);
                acc[2 * k] = _mm512_add_pd(acc[2 * k], lo);
                acc[2 * k + 1] = _mm512_add_pd(acc[2 * k + 1], hi);
            }
        }
        for k in 0..3 {
            out[3 * a + k] = fold16_avx512(acc[2 * k], acc[2 * k + 1]);
        }
    }
}

/// The Barnes-Hut repulsion with scikit-learn's criterion at `theta = 0.5`: about `O(n log n)` per
/// iteration. Its forces and `Z` are biased in scikit-learn's way (a cell's points all placed at its
/// centre of mass); maps optimized with it match scikit-learn's in distribution.
#[derive(Default)]
pub struct BarnesHutRepulsion {
    tree: Tree,
    xs: Vec<f64>,
    ys: Vec<f64>,
    /// Forces in the tree's point order.
    sorted: Vec<f64>,
}

impl RepulsionForces for BarnesHutRepulsion {
    fn forces(&mut self, y: &[f64], out: &mut [f64]) -> f64 {
        split_columns(y, &mut self.xs, &mut self.ys);
        self.tree.build(&self.xs, &self.ys);
        let n = self.xs.len();
        self.sorted.clear();
        self.sorted.resize(2 * n, 0.0);
        let tree = &self.tree;
        // Each group's slice of the sorted forces.
        let mut parts = Vec::with_capacity(tree.groups.len());
        let mut rest = &mut self.sorted[..];
        for &g in &tree.groups {
            let (head, tail) = rest.split_at_mut(2 * (g.1 - g.0) as usize);
            parts.push((g, head));
            rest = tail;
        }
        let z: Vec<f64> = parts
            .into_par_iter()
            .map_init(Lists::default, |l, (g, f)| {
                let (lo, hi) = (g.0 as usize, g.1 as usize);
                tree.walk(g, l);
                while l.x.len() % LANES32 != 0 {
                    l.x.push(0.0);
                    l.y.push(0.0);
                    l.size.push(0.0);
                    l.mask.push(0);
                }
                l.sums.clear();
                l.sums.resize(3 * (hi - lo), 0.0);
                cell_sums(&l.px, &l.py, (&l.x, &l.y, &l.size, &l.mask), &mut l.sums);
                let mut z = 0.0;
                for a in 0..hi - lo {
                    let [ex, ey, ez] = tree.own_leaf(lo + a);
                    f[2 * a] = l.sums[3 * a] + ex;
                    f[2 * a + 1] = l.sums[3 * a + 1] + ey;
                    z += l.sums[3 * a + 2] + ez;
                }
                z
            })
            .collect();
        for (k, &i) in self.tree.order.iter().enumerate() {
            out[2 * i as usize] = self.sorted[2 * k];
            out[2 * i as usize + 1] = self.sorted[2 * k + 1];
        }
        z.iter().sum()
    }

    fn locality_order(&self) -> Option<&[u32]> {
        Some(&self.tree.order)
    }
}

#[cfg(test)]
mod tests {
    use super::super::optimize::{ExactRepulsion, relative_error};
    use super::*;

    impl Tree {
        /// The leaf of point `i`.
        fn leaf_of(&self, i: usize) -> &Cell {
            let k = self.order.iter().position(|&v| v as usize == i).unwrap();
            &self.cells[self.leaf[k] as usize]
        }
    }

    /// Every point inserted once, counts and centres of mass consistent, and the forces near the exact
    /// sums (Barnes-Hut at theta 0.5 is within a few per cent), with exact duplicates handled.
    #[test]
    fn tree_is_consistent_and_forces_are_close() {
        let n = 2000;
        let mut y: Vec<f64> = (0..n)
            .flat_map(|i| {
                let t = i as f64;
                let c = (i % 4) as f64;
                [
                    10.0 * c
                        + 3.0 * (1.0 - (t * 0.618_034).fract()).ln().abs().sqrt() * (t * 2.4).cos(),
                    -5.0 * c + 2.0 * (t * 0.414_214).fract() * (t * 1.7).sin(),
                ]
            })
            .collect();
        // A few exact duplicates.
        for k in 0..5 {
            y[2 * (100 + k)] = y[0];
            y[2 * (100 + k) + 1] = y[1];
        }
        let mut t = Tree::default();
        let (xs, ys): (Vec<f64>, Vec<f64>) = (0..n).map(|i| (y[2 * i], y[2 * i + 1])).unzip();
        t.build(&xs, &ys);
        assert_eq!(t.cells[0].count as usize, n);
        for c in &t.cells {
            if !c.is_leaf() {
                let kids = &t.cells[c.first as usize..][..usize::from(c.kids)];
                let s: u32 = kids.iter().map(|k| k.count).sum();
                assert_eq!(s, c.count);
                // Children in tree order, each at the next level.
                assert!(kids.iter().all(|k| k.depth == c.depth + 1));
            }
        }
        let mut seen = t.order.clone();
        seen.sort_unstable();
        assert!(seen.iter().enumerate().all(|(i, &v)| v as usize == i));
        assert_eq!(t.leaf_of(0).count, 6);
        let (mut a, mut b) = (vec![0.0; 2 * n], vec![0.0; 2 * n]);
        let za = BarnesHutRepulsion::default().forces(&y, &mut a);
        let zb = ExactRepulsion::default().forces(&y, &mut b);
        assert!((za - zb).abs() < 0.02 * zb, "Z {za} vs {zb}");
        let err = relative_error(&a, &b);
        assert!(err < 0.05, "relative force error {err}");
    }

    /// The cell sums: the AVX-512 kernel (where the CPU has it) gives the reference's bits, and the
    /// dispatched path is within f32 rounding of an f64 evaluation, for groups of 1 to 64 points
    /// and lists of 1 to 13 blocks (whole runs and a partial one), masks of every density.
    #[test]
    fn cell_sums_match_the_reference_and_f64() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for (g, blocks) in [(1, 1), (7, 3), (33, 4), (64, 5), (64, 13), (20, 9)] {
            let m = blocks * LANES32;
            let unit = |v: u64| (v >> 11) as f32 / (1u64 << 53) as f32;
            let px: Vec<f32> = (0..g).map(|_| unit(next()) - 0.5).collect();
            let py: Vec<f32> = (0..g).map(|_| unit(next()) - 0.5).collect();
            let cx: Vec<f32> = (0..m).map(|_| 20.0 * unit(next()) - 10.0).collect();
            let cy: Vec<f32> = (0..m).map(|_| 20.0 * unit(next()) - 10.0).collect();
            let cs: Vec<f32> = (0..m)
                .map(|k| (1 + next() % 50) as f32 * (k % 7 != 6) as u8 as f32)
                .collect();
            let cm: Vec<u64> = (0..m)
                .map(|k| match k % 4 {
                    0 => u64::MAX,
                    1 => next(),
                    2 => next() & next(),
                    _ => 0,
                })
                .collect();
            let (mut a, mut b) = (vec![0.0; 3 * g], vec![0.0; 3 * g]);
            cell_sums(&px, &py, (&cx, &cy, &cs, &cm), &mut a);
            cell_sums_reference(&px, &py, (&cx, &cy, &cs, &cm), &mut b);
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx512f") {
                let mut v = vec![0.0; 3 * g];
                // SAFETY: the CPU has AVX-512F (checked just above).
                unsafe { cell_sums_avx512(&px, &py, (&cx, &cy, &cs, &cm), &mut v) };
                assert_eq!(v, b, "AVX-512: {g} points, {blocks} blocks");
            } else {
                eprintln!("no AVX-512 here: only the reference kernel is checked");
            }
            for i in 0..g {
                let (mut want, mut mag) = ([0.0f64; 3], [0.0f64; 3]);
                for j in 0..m {
                    if cm[j] >> i & 1 == 0 {
                        continue;
                    }
                    let (dx, dy) = (f64::from(px[i] - cx[j]), f64::from(py[i] - cy[j]));
                    let q = 1.0 / (1.0 + dx * dx + dy * dy);
                    let s = f64::from(cs[j]);
                    for (k, t) in [s * q * q * dx, s * q * q * dy, s * q]
                        .into_iter()
                        .enumerate()
                    {
                        want[k] += t;
                        mag[k] += t.abs();
                    }
                }
                for k in 0..3 {
                    // About 1e-7 per term and per addition of the f32 partial sums of eight.
                    assert!(
                        (a[3 * i + k] - want[k]).abs() <= 1e-6 * mag[k],
                        "{g} points, point {i}, sum {k}"
                    );
                }
            }
        }
    }

    /// Coincident points whose mean rounds away from their position (three copies of 0.1 sum to
    /// 0.30000000000000004), beside points one ulp away, at every scale down to the depth limit:
    /// each point is found again in the leaf that holds it, and the forces stay finite.
    #[test]
    fn near_coincident_points_keep_their_leaves() {
        // The root's centre is the rounded mean of the three copies of 0.1 (0.1 + 1 ulp) and lies
        // between them and the fourth point.
        let tiny = [
            (0.1, 0.0),
            (0.1, 0.0),
            (0.1, 0.0),
            (0.1f64.next_up().next_up(), 0.0),
        ];
        let (xs, ys): (Vec<f64>, Vec<f64>) = tiny.iter().copied().unzip();
        let mut t = Tree::default();
        t.build(&xs, &ys);
        assert_eq!(t.leaf_of(0).first, t.leaf_of(2).first);
        assert_ne!(t.leaf_of(0).first, t.leaf_of(3).first);
        let mut pts = vec![(-3.0, -2.0), (4.0, 5.0), (0.7, -1.1)];
        for &base in &[0.1f64, 1.0 / 3.0, 0.7] {
            for _ in 0..3 {
                pts.push((base, base));
            }
            pts.push((base.next_up(), base));
            pts.push((base, base.next_down()));
            pts.push((base.next_up().next_up(), base.next_up()));
        }
        let (xs, ys): (Vec<f64>, Vec<f64>) = pts.iter().copied().unzip();
        let mut t = Tree::default();
        t.build(&xs, &ys);
        assert_eq!(t.cells[0].count as usize, pts.len());
        for (i, &(x, y)) in pts.iter().enumerate() {
            let leaf = t.leaf_of(i);
            assert!(leaf.is_leaf());
            let (a, b) = (leaf.first as usize, (leaf.first + leaf.count) as usize);
            assert!(t.order[a..b].contains(&(i as u32)), "point {i}");
            let coincident = (a..b).all(|k| t.sx[k] == x && t.sy[k] == y);
            assert!(
                u32::from(leaf.depth) >= MAX_DEPTH || coincident,
                "point {i}"
            );
        }
        let y: Vec<f64> = pts.iter().flat_map(|&(x, y)| [x, y]).collect();
        let mut f = vec![0.0; y.len()];
        let z = BarnesHutRepulsion::default().forces(&y, &mut f);
        assert!(z.is_finite() && f.iter().all(|v| v.is_finite()));
    }

    /// More coincident points than a group holds (constant tokens map to one position): they still
    /// get their forces, and every other point gets its own.
    #[test]
    fn large_coincident_leaves_get_their_forces() {
        for copies in [40usize, 100] {
            let spread = 300;
            let mut y: Vec<f64> = (0..spread)
                .flat_map(|i| {
                    let t = i as f64;
                    [
                        5.0 * (t * 0.618_034).fract() - 2.5,
                        4.0 * (t * 0.414_214).fract() - 2.0,
                    ]
                })
                .collect();
            for _ in 0..copies {
                y.extend([0.3, -0.7]);
            }
            let n = spread + copies;
            let (mut a, mut b) = (vec![0.0; 2 * n], vec![0.0; 2 * n]);
            let za = BarnesHutRepulsion::default().forces(&y, &mut a);
            let zb = ExactRepulsion::default().forces(&y, &mut b);
            assert!(
                (za - zb).abs() < 0.02 * zb,
                "{copies} copies: Z {za} vs {zb}"
            );
            let err = relative_error(&a, &b);
            assert!(err < 0.05, "{copies} copies: relative force error {err}");
        }
    }
}
