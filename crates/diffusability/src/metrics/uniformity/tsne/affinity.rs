//! The t-SNE affinities of the high-dimensional points (the first stage, as in openTSNE's
//! `affinity.py`): squared Euclidean distances in GEMM blocks, exact nearest neighbours, each point's
//! Gaussian precision calibrated to the perplexity, and the symmetric joint probabilities.
//!
//! One pass over the points gives two calibrations per point:
//! - over its `k` nearest neighbours (`k = min(n - 1, floor(3 * perplexity + 1))`, scikit-learn's
//!   choice), the sparse `P` the optimizer uses;
//! - over all other points, the exact `P` of van der Maaten & Hinton (2008) against which the final
//!   KL divergence is measured ([`super::kl`]).
//!
//! Row chunks have a fixed size and are merged in order, so the result is identical for any thread
//! count.

use super::super::vexp::{self, LANES, simd_kernel};
use crate::par;
use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use std::ops::Range;

/// Rows per block of the distance pass (a `ROWS x n` f64 block, 10 MB at n = 10,000). Each block's
/// product packs the `n x d` points afresh: 128 rows rather than 32 cut that copying by 4 (it cost
/// more than the product itself), while each row is still calibrated from the cache.
pub(super) const ROWS: usize = 128;

/// Points in row-major order, `n x d`, f64.
#[derive(Clone, Copy, Debug)]
pub struct Points<'a> {
    pub data: &'a [f64],
    pub n: usize,
    pub d: usize,
}

impl<'a> Points<'a> {
    pub fn new(data: &'a [f64], n: usize, d: usize) -> Points<'a> {
        assert_eq!(data.len(), n * d, "points: expected n * d values");
        Points { data, n, d }
    }

    pub fn row(&self, i: usize) -> &[f64] {
        &self.data[i * self.d..(i + 1) * self.d]
    }

    /// Squared norms of every row.
    pub fn sq_norms(&self) -> Vec<f64> {
        (0..self.n)
            .map(|i| self.row(i).iter().map(|v| v * v).sum())
            .collect()
    }

    /// Squared distances from rows `rows` to columns `cols` into `out` (`rows.len() x cols.len()`,
    /// row-major), as `|a|^2 + |b|^2 - 2 a.b` with the dot products from one GEMM, clamped at 0; the
    /// diagonal (a point and itself) is exactly 0. Cost `2 |rows| |cols| d` flops.
    pub fn sq_dist_block(
        &self,
        norms: &[f64],
        rows: Range<usize>,
        cols: Range<usize>,
        out: &mut Vec<f64>,
    ) {
        let (b, m) = (rows.len(), cols.len());
        out.clear();
        out.resize(b * m, 0.0);
        let a = MatRef::from_row_major_slice(
            &self.data[rows.start * self.d..rows.end * self.d],
            b,
            self.d,
        );
        let c = MatRef::from_row_major_slice(
            &self.data[cols.start * self.d..cols.end * self.d],
            m,
            self.d,
        );
        matmul(
            MatMut::from_row_major_slice_mut(out, b, m),
            Accum::Replace,
            a,
            c.transpose(),
            -2.0,
            Par::Seq,
        );
        let col_norms = &norms[cols.clone()];
        for (r, i) in rows.enumerate() {
            let row = &mut out[r * m..(r + 1) * m];
            let ni = norms[i];
            for (v, &nj) in row.iter_mut().zip(col_norms) {
                let d = *v + ni + nj;
                *v = if d > 0.0 { d } else { 0.0 };
            }
            if cols.contains(&i) {
                row[i - cols.start] = 0.0;
            }
        }
    }
}

/// The Gaussian of one point: `p_{j|i} = exp(-beta (d_ij^2 - shift)) / z` over the points it covers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Calibration {
    /// Precision `beta = 1 / (2 sigma^2)`.
    pub beta: f64,
    /// The smallest squared distance, subtracted before exponentiating so that `z >= 1` never
    /// underflows (the probabilities do not change).
    pub shift: f64,
    /// Normalizer `sum_j exp(-beta (d_ij^2 - shift))`.
    pub z: f64,
    /// False when the perplexity cannot be reached: more than `perplexity` points tie at the smallest
    /// distance (duplicates), so the entropy cannot fall to `ln(perplexity)`; `p` is then uniform
    /// over the ties, the limit of growing `beta`.
    pub reached: bool,
}

simd_kernel! {
    /// `(sum w, sum w s, sum w s^2, sum w s^3)` with `w = exp(-beta s)` over `s`, in lanes merged
    /// in order.
    fn gauss_moments(s: &[f64], beta: f64) -> [f64; 4] {
        let mut a = [[0.0; LANES]; 4];
        let mut chunks = s.chunks_exact(LANES);
        for c in &mut chunks {
            for l in 0..LANES {
                let w = vexp::exp(-beta * c[l]);
                let ws = w * c[l];
                let wss = ws * c[l];
                a[0][l] += w;
                a[1][l] += ws;
                a[2][l] += wss;
                a[3][l] += wss * c[l];
            }
        }
        for (l, &v) in chunks.remainder().iter().enumerate() {
            let w = vexp::exp(-beta * v);
            a[0][l] += w;
            a[1][l] += w * v;
            a[2][l] += w * v * v;
            a[3][l] += w * v * v * v;
        }
        [vexp::merge(&a[0]), vexp::merge(&a[1]), vexp::merge(&a[2]), vexp::merge(&a[3])]
    }
}

/// Entropy tolerance (nats) of the calibration: far below scikit-learn's 1e-5 so that the exact `P`
/// is the same, to rounding, in any implementation.
pub const ENTROPY_TOL: f64 = 1e-12;

/// Solves `H(beta) = ln(perplexity)` for the Gaussian over the shifted squared distances `s`
/// (all `>= 0`, the smallest 0), where `H = ln z + beta sum(w s) / z` is the entropy (nats) of
/// `p_j = w_j / z`, `w_j = exp(-beta s_j)`. `H` falls from `ln(len)` at `beta = 0` to `ln(#ties at 0)`,
/// so the root is unique when it exists. Halley's method on `ln beta` (`dH/d ln beta = -beta^2 Var_p(s)`),
/// kept inside a bracket and bisecting (in `ln beta`) when a step leaves it, started at `beta0` (> 0).
/// Cost: one pass of `len` exponentials per step; 3-4 steps from a nearby start.
pub fn calibrate(s: &[f64], target: f64, beta0: f64) -> Calibration {
    let (mut lo, mut hi) = (0.0f64, f64::INFINITY);
    let mut beta = if beta0 > 0.0 && beta0.is_finite() {
        beta0
    } else {
        1.0
    };
    let mut best = (f64::INFINITY, beta, 1.0);
    for _ in 0..200 {
        let [z, s1, s2, s3] = gauss_moments(s, beta);
        let (m1, m2, m3) = (s1 / z, s2 / z, s3 / z);
        let var = (m2 - m1 * m1).max(0.0);
        let f = z.ln() + beta * m1 - target;
        if f.abs() < best.0 {
            best = (f.abs(), beta, z);
        }
        if f.abs() <= ENTROPY_TOL {
            return Calibration {
                beta,
                shift: 0.0,
                z,
                reached: true,
            };
        }
        if f > 0.0 {
            lo = beta;
        } else {
            hi = beta;
        }
        if var == 0.0 && f > 0.0 {
            // Every weight but the ties at 0 has underflowed: the entropy cannot fall further.
            return Calibration {
                beta,
                shift: 0.0,
                z,
                reached: false,
            };
        }
        // Halley's step in u = ln(beta): g = H - target, g' = -beta^2 Var, g'' = -2 beta^2 Var +
        // beta^3 mu3 (mu3 the third central moment); Newton's when Halley's denominator is not
        // positive. At most a factor e^8 at once.
        let d1 = -beta * beta * var;
        let mu3 = m3 - 3.0 * m1 * m2 + 2.0 * m1 * m1 * m1;
        let d2 = 2.0 * d1 + beta * beta * beta * mu3;
        let den = 2.0 * d1 * d1 - f * d2;
        let du = if den > 0.0 {
            -2.0 * f * d1 / den
        } else {
            -f / d1
        };
        let next = beta * du.clamp(-8.0, 8.0).exp();
        beta = if var > 0.0 && next > lo && next < hi && next.is_finite() {
            next
        } else if hi.is_infinite() {
            lo * 16.0
        } else if lo == 0.0 {
            hi / 16.0
        } else {
            // Bisection in ln(beta).
            (lo * hi).sqrt()
        };
        if hi.is_finite() && (hi - lo) <= 4.0 * f64::EPSILON * hi {
            break;
        }
        if beta > 1e300 {
            break;
        }
    }
    Calibration {
        beta: best.1,
        shift: 0.0,
        z: best.2,
        reached: best.0 <= 1e-9,
    }
}

/// The affinities of a point set.
#[derive(Clone, Debug)]
pub struct Affinities {
    pub n: usize,
    /// Neighbours per point.
    pub k: usize,
    /// `n x k` neighbour indices, each row by increasing distance (ties by index).
    pub knn: Vec<u32>,
    /// `n x k` conditional probabilities `p_{j|i}` over the neighbours.
    pub knn_p: Vec<f64>,
    /// Each point's Gaussian over all other points (the exact `P`).
    pub exact: Vec<Calibration>,
}

impl Affinities {
    /// Points whose perplexity could not be reached over their neighbours or over all points.
    pub fn unreached(&self) -> usize {
        self.exact.iter().filter(|c| !c.reached).count()
    }
}

/// `beta0 * s` beyond which a point is left out of [`calibrate_near`]'s sums at first: its weight
/// is below `e^-50 = 2e-22` of the nearest point's.
const FAR: f64 = 50.0;

/// [`calibrate`] over all of `s` (shifted squared distances, the smallest 0), summing only the
/// points with `beta0 * s <= FAR`, for `beta0` at most the solution (the calibration over a
/// point's nearest neighbours is: the others add mass far out, which raises the solution).
///
/// The weights left out, `exp(-beta s)` each, then add less than `len * e^-50 < 2e-16` of `z`
/// (`z >= 1`, the nearest point's weight) for `len` up to `10^6`, below `z`'s rounding, and their
/// share of the entropy less still. The result is checked: where the left-out weights could
/// reach `1e-16 z` at the solution found (a smaller `beta` than `beta0`, or more points), or where
/// the perplexity was not reached, the calibration runs again over all of `s`. Most of a point's distances lie beyond the cut, so
/// this saves most of the exponentials of the exact calibration.
pub fn calibrate_near(s: &[f64], target: f64, beta0: f64, near: &mut Vec<f64>) -> Calibration {
    if !(beta0 > 0.0 && beta0.is_finite()) {
        return calibrate(s, target, beta0);
    }
    let cut = FAR / beta0;
    // Without a branch per point (near and far points alternate at random).
    near.clear();
    near.resize(s.len(), 0.0);
    let mut len = 0;
    for &v in s {
        near[len] = v;
        len += usize::from(v <= cut);
    }
    near.truncate(len);
    let far_min = far_minimum(s, cut);
    let far = s.len() - len;
    let c = calibrate(near, target, beta0);
    if far == 0 || (c.reached && (far as f64) * (-c.beta * far_min).exp() <= 1e-16 * c.z) {
        return c;
    }
    calibrate(s, target, beta0)
}

simd_kernel! {
    /// The smallest value of `s` above `cut`, or infinity.
    fn far_minimum(s: &[f64], cut: f64) -> f64 {
        let mut m = [f64::INFINITY; LANES];
        let mut chunks = s.chunks_exact(LANES);
        for c in &mut chunks {
            for l in 0..LANES {
                m[l] = m[l].min(if c[l] > cut { c[l] } else { f64::INFINITY });
            }
        }
        for &v in chunks.remainder() {
            m[0] = m[0].min(if v > cut { v } else { f64::INFINITY });
        }
        m.iter().copied().fold(f64::INFINITY, f64::min)
    }
}

/// The `k`-th smallest of `v` by `total_cmp` (`1 <= k <= v.len()`). Selected among the values up to
/// a bound `tau` (the `(k / 8 + 16)`-th smallest of every 8th value, so about `k + 128` values fall
/// below it) when at least `k` do, which leaves the answer unchanged (all of the `k` smallest are
/// then among them); else among all. `scratch` is reused. A selection over a whole row of 10,000
/// distances cost more than the row's calibration.
fn kth_smallest(v: &[f64], k: usize, scratch: &mut Vec<f64>) -> f64 {
    scratch.clear();
    scratch.extend(v.iter().step_by(8));
    let r = (k / 8 + 16).min(scratch.len());
    let tau = *scratch.select_nth_unstable_by(r - 1, f64::total_cmp).1;
    scratch.clear();
    scratch.extend(v.iter().copied().filter(|x| x.total_cmp(&tau).is_le()));
    if scratch.len() < k {
        scratch.clear();
        scratch.extend_from_slice(v);
    }
    *scratch.select_nth_unstable_by(k - 1, f64::total_cmp).1
}

/// Per-chunk results, concatenated in chunk order.
struct Part {
    knn: Vec<u32>,
    knn_p: Vec<f64>,
    exact: Vec<Calibration>,
    knn_reached: Vec<bool>,
}

/// Exact `k`-nearest neighbours and both calibrations of every point, for `perplexity` with
/// `1 < perplexity < k <= n - 1`. Cost: `2 n^2 d` flops for the distances, `O(n^2)` for the selections
/// and `n^2` exponentials per step of the calibrations (fewer over all points: [`calibrate_near`]); memory `O(n k)` plus one `ROWS x n` block per thread.
pub fn affinities(x: Points<'_>, perplexity: f64, k: usize) -> Affinities {
    let n = x.n;
    assert!(k >= 1 && k < n, "affinities: need 1 <= k < n");
    let target = perplexity.ln();
    let norms = x.sq_norms();
    let part = par::map_reduce(
        n,
        ROWS,
        |rows| {
            let mut block = Vec::new();
            x.sq_dist_block(&norms, rows.clone(), 0..n, &mut block);
            let mut part = Part {
                knn: Vec::with_capacity(rows.len() * k),
                knn_p: Vec::with_capacity(rows.len() * k),
                exact: Vec::with_capacity(rows.len()),
                knn_reached: Vec::with_capacity(rows.len()),
            };
            let mut others = Vec::with_capacity(n - 1);
            let mut order: Vec<u32> = Vec::with_capacity(n - 1);
            let mut vals: Vec<f64> = Vec::with_capacity(n - 1);
            let mut s_knn = Vec::with_capacity(k);
            let mut near = Vec::with_capacity(n - 1);
            for (r, i) in rows.enumerate() {
                let row = &block[r * n..(r + 1) * n];
                others.clear();
                others.extend_from_slice(&row[..i]);
                others.extend_from_slice(&row[i + 1..]);
                // Nearest k by (distance, index): the k-th smallest distance by selection on the
                // values alone, then the indices below it and the first ties at it, in index order.
                let thr = kth_smallest(&others, k, &mut vals);
                order.clear();
                order.extend((0..(n - 1) as u32).filter(|&a| others[a as usize] < thr));
                for a in 0..(n - 1) as u32 {
                    if order.len() == k {
                        break;
                    }
                    if others[a as usize] == thr {
                        order.push(a);
                    }
                }
                order.sort_unstable_by(|a, b| {
                    others[*a as usize]
                        .total_cmp(&others[*b as usize])
                        .then(a.cmp(b))
                });
                let shift = others[order[0] as usize];
                s_knn.clear();
                s_knn.extend(order.iter().map(|&a| others[a as usize] - shift));
                let mean = s_knn.iter().sum::<f64>() / k as f64;
                let c = calibrate(&s_knn, target, if mean > 0.0 { 1.0 / mean } else { 1.0 });
                for (&a, &s) in order.iter().zip(&s_knn) {
                    let j = if (a as usize) < i { a } else { a + 1 };
                    part.knn.push(j);
                    part.knn_p.push(vexp::exp(-c.beta * s) / c.z);
                }
                part.knn_reached.push(c.reached);
                // All other points: more mass far out, so the precision grows from the kNN one.
                for v in others.iter_mut() {
                    *v -= shift;
                }
                let mut e = calibrate_near(&others, target, c.beta, &mut near);
                e.shift = shift;
                part.exact.push(e);
            }
            part
        },
        |mut a, b| {
            a.knn.extend(b.knn);
            a.knn_p.extend(b.knn_p);
            a.exact.extend(b.exact);
            a.knn_reached.extend(b.knn_reached);
            a
        },
    )
    .expect("n >= 2 gives at least one chunk");
    let mut exact = part.exact;
    for (e, r) in exact.iter_mut().zip(&part.knn_reached) {
        e.reached &= *r;
    }
    Affinities {
        n,
        k,
        knn: part.knn,
        knn_p: part.knn_p,
        exact,
    }
}

/// A sparse symmetric matrix in compressed rows, columns increasing within a row.
#[derive(Clone, Debug, PartialEq)]
pub struct Csr {
    pub n: usize,
    pub indptr: Vec<usize>,
    pub indices: Vec<u32>,
    pub values: Vec<f64>,
}

/// The joint probabilities `p_ij = (p_{j|i} + p_{i|j}) / (2n)` over the union of the neighbour
/// lists; they sum to 1. Each row merges its own list with the points that list it, by index, so the
/// result does not depend on the order of work. Cost `O(n k log k)`.
pub fn joint(a: &Affinities) -> Csr {
    let (n, k) = (a.n, a.k);
    // Reverse lists: for each j, the (i, p_{j|i}) with j among i's neighbours, i increasing.
    let mut rev_ptr = vec![0usize; n + 1];
    for &j in &a.knn {
        rev_ptr[j as usize + 1] += 1;
    }
    for j in 0..n {
        rev_ptr[j + 1] += rev_ptr[j];
    }
    let mut rev_src = vec![0u32; a.knn.len()];
    let mut rev_p = vec![0f64; a.knn.len()];
    let mut cur = rev_ptr.clone();
    for i in 0..n {
        for t in i * k..(i + 1) * k {
            let j = a.knn[t] as usize;
            rev_src[cur[j]] = i as u32;
            rev_p[cur[j]] = a.knn_p[t];
            cur[j] += 1;
        }
    }
    let norm = 1.0 / (2.0 * n as f64);
    let mut indptr = Vec::with_capacity(n + 1);
    indptr.push(0);
    let mut indices = Vec::with_capacity(2 * n * k);
    let mut values = Vec::with_capacity(2 * n * k);
    let mut fwd: Vec<(u32, f64)> = Vec::with_capacity(k);
    for i in 0..n {
        fwd.clear();
        fwd.extend((i * k..(i + 1) * k).map(|t| (a.knn[t], a.knn_p[t])));
        fwd.sort_unstable_by_key(|e| e.0);
        let rev = rev_ptr[i]..rev_ptr[i + 1];
        let (mut f, mut r) = (0, rev.start);
        while f < fwd.len() || r < rev.end {
            let fj = fwd.get(f).map_or(u32::MAX, |e| e.0);
            let rj = if r < rev.end { rev_src[r] } else { u32::MAX };
            let (j, v) = if fj == rj {
                let v = fwd[f].1 + rev_p[r];
                f += 1;
                r += 1;
                (fj, v)
            } else if fj < rj {
                f += 1;
                (fj, fwd[f - 1].1)
            } else {
                r += 1;
                (rj, rev_p[r - 1])
            };
            indices.push(j);
            values.push(v * norm);
        }
        indptr.push(indices.len());
    }
    Csr {
        n,
        indptr,
        indices,
        values,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entropy(p: &[f64]) -> f64 {
        -p.iter()
            .filter(|&&v| v > 0.0)
            .map(|v| v * v.ln())
            .sum::<f64>()
    }

    #[test]
    fn calibration_reaches_the_perplexity() {
        let s: Vec<f64> = (0..500)
            .map(|i| (i as f64 * 0.37).sin().abs() * 20.0)
            .collect();
        let min = s.iter().cloned().fold(f64::INFINITY, f64::min);
        let s: Vec<f64> = s.iter().map(|v| v - min).collect();
        for perp in [2.0, 30.0, 200.0] {
            for beta0 in [1e-6, 1.0, 1e6] {
                let c = calibrate(&s, f64::ln(perp), beta0);
                assert!(c.reached, "{perp} {beta0} {c:?}");
                let p: Vec<f64> = s.iter().map(|v| (-c.beta * v).exp() / c.z).collect();
                assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
                assert!((entropy(&p) - perp.ln()).abs() < 1e-10, "{perp} {beta0}");
            }
        }
    }

    /// The bounded selection equals a full sort's `k`-th value, with ties, sorted and reversed rows
    /// (the bound then holds fewer than `k` values or all of them), and `k` up to the length.
    #[test]
    fn kth_smallest_equals_sorting() {
        let mut scratch = Vec::new();
        let rows: Vec<Vec<f64>> = vec![
            (0..1000)
                .map(|i| ((i * 7919) % 1000) as f64 * 0.5)
                .collect(),
            (0..1000).map(|i| ((i * 31) % 17) as f64).collect(),
            (0..300).map(|i| i as f64).collect(),
            (0..300).map(|i| (300 - i) as f64).collect(),
            (0..50).map(|i| (i as f64 * 1.3).sin()).collect(),
        ];
        for v in &rows {
            let mut sorted = v.clone();
            sorted.sort_by(f64::total_cmp);
            for k in [1, 2, 10, 91, v.len() / 2, v.len()] {
                if k <= v.len() {
                    assert_eq!(kth_smallest(v, k, &mut scratch), sorted[k - 1], "k {k}");
                }
            }
        }
    }

    /// Leaving out the far points changes nothing beyond rounding: the same `beta` and `z` as over
    /// all points, from a start below the solution (the cut applies) and above it (the check sends
    /// it back to all points), and on a row of ties (not reached).
    #[test]
    fn calibration_over_near_points_equals_the_full_one() {
        // 3000 distances: a near cloud and a far shell that holds most points.
        let s: Vec<f64> = (0..3000)
            .map(|i| {
                let u = (i as f64 * 0.618_034).fract();
                if i % 10 == 0 {
                    4.0 * u
                } else {
                    60.0 + 40.0 * u
                }
            })
            .collect();
        let min = s.iter().cloned().fold(f64::INFINITY, f64::min);
        let s: Vec<f64> = s.iter().map(|v| v - min).collect();
        let target = f64::ln(30.0);
        let full = calibrate(&s, target, 1.0);
        assert!(full.reached);
        let mut near = Vec::new();
        for beta0 in [
            0.5 * full.beta,
            0.99 * full.beta,
            3.0 * full.beta,
            100.0 * full.beta,
        ] {
            let c = calibrate_near(&s, target, beta0, &mut near);
            assert!(c.reached, "{beta0}");
            assert!(
                (c.beta - full.beta).abs() <= 1e-10 * full.beta,
                "{beta0}: {c:?} vs {full:?}"
            );
            assert!(
                (c.z - full.z).abs() <= 1e-13 * full.z,
                "{beta0}: {c:?} vs {full:?}"
            );
        }
        // With the start below the solution, most points are left out.
        calibrate_near(&s, target, 0.99 * full.beta, &mut near);
        assert!(near.len() < s.len() / 2, "{} of {}", near.len(), s.len());
        let ties = calibrate_near(&[0.0; 20], f64::ln(5.0), 1.0, &mut near);
        assert!(!ties.reached && ties.z == 20.0);
    }

    #[test]
    fn ties_beyond_the_perplexity_give_uniform_ties() {
        let mut s = vec![0.0; 50];
        s.extend((0..50).map(|i| 1.0 + i as f64));
        let c = calibrate(&s, f64::ln(10.0), 1.0);
        assert!(!c.reached);
        let p: Vec<f64> = s.iter().map(|v| (-c.beta * v).exp() / c.z).collect();
        assert!((p[0] - 0.02).abs() < 1e-12 && p[60] < 1e-12);
        let all_equal = calibrate(&[0.0; 20], f64::ln(5.0), 1.0);
        assert!(!all_equal.reached && all_equal.z == 20.0);
    }

    #[test]
    fn distances_and_neighbours_match_brute_force() {
        let (n, d) = (150, 5);
        let data: Vec<f64> = (0..n * d).map(|i| (i as f64 * 0.618).sin() * 3.0).collect();
        let x = Points::new(&data, n, d);
        let norms = x.sq_norms();
        let mut block = Vec::new();
        x.sq_dist_block(&norms, 10..20, 0..n, &mut block);
        for (r, i) in (10..20).enumerate() {
            for j in 0..n {
                let exact: f64 = x
                    .row(i)
                    .iter()
                    .zip(x.row(j))
                    .map(|(a, b)| (a - b) * (a - b))
                    .sum();
                assert!((block[r * n + j] - exact).abs() < 1e-9 * (1.0 + exact));
            }
        }
        let k = 12;
        let a = affinities(x, 4.0, k);
        for i in [0, 77, 149] {
            let mut all: Vec<(f64, u32)> = (0..n)
                .filter(|&j| j != i)
                .map(|j| {
                    let dd: f64 = x
                        .row(i)
                        .iter()
                        .zip(x.row(j))
                        .map(|(a, b)| (a - b) * (a - b))
                        .sum();
                    (dd, j as u32)
                })
                .collect();
            all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            let want: Vec<u32> = all[..k].iter().map(|e| e.1).collect();
            assert_eq!(&a.knn[i * k..(i + 1) * k], &want[..]);
            let p = &a.knn_p[i * k..(i + 1) * k];
            assert!((entropy(p) - 4f64.ln()).abs() < 1e-10);
        }
        let p = joint(&a);
        assert!((p.values.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        // Symmetric: p_ij == p_ji.
        for i in 0..n {
            for t in p.indptr[i]..p.indptr[i + 1] {
                let j = p.indices[t] as usize;
                let back = (p.indptr[j]..p.indptr[j + 1])
                    .find(|&u| p.indices[u] as usize == i)
                    .expect("symmetric pattern");
                assert_eq!(p.values[t], p.values[back]);
            }
        }
    }
}
