//! Exact k-nearest neighbours of every point of a set among the others (the point itself excluded).
//!
//! Brute force shaped as GEMM: blocks of queries are scored against blocks of references with one f32
//! matrix product each (faer), and a bounded insertion list keeps each query's best `m > k` candidates.
//! The candidates are then rescored in f64 and re-sorted, ties broken by the lower index. The f32 pass
//! carries a rigorous error bound `E` (below), and a query whose candidate list might have dropped a
//! point within `2E` of its k-th score is rescanned in f64 against every point, so the result always
//! equals the direct f64 scan [`knn_scan`]. Exact search is what a metric needs; space-partitioning
//! trees lose to brute force above ~10 dimensions.

use crate::progress::Progress;
use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;
use std::cmp::Ordering;

/// How neighbours are ranked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KnnMetric {
    /// Cosine similarity `a.b / (|a| |b|)`, largest first; a zero vector has similarity 0 to everything.
    Cosine,
    /// Euclidean distance, smallest first (scored as `-|a - b|^2`).
    L2,
}

impl KnnMetric {
    pub fn as_str(&self) -> &'static str {
        match self {
            KnnMetric::Cosine => "cosine",
            KnnMetric::L2 => "l2",
        }
    }
}

/// The `k` nearest neighbours of each of `n` points, best first.
#[derive(Clone, Debug, PartialEq)]
pub struct Neighbors {
    pub n: usize,
    pub k: usize,
    /// `n * k` neighbour indices, row `i` for point `i`.
    pub index: Vec<usize>,
    /// `n * k` f64 scores of those neighbours: cosine similarity, or `-|a - b|^2` for [`KnnMetric::L2`].
    pub score: Vec<f64>,
    /// Queries whose f32 candidate list could not be proven complete and were rescanned in f64.
    pub rescans: usize,
}

impl Neighbors {
    /// The neighbours of point `i`, best first.
    pub fn of(&self, i: usize) -> &[usize] {
        &self.index[i * self.k..(i + 1) * self.k]
    }

    /// The scores of the neighbours of point `i`.
    pub fn scores_of(&self, i: usize) -> &[f64] {
        &self.score[i * self.k..(i + 1) * self.k]
    }
}

/// Queries per block: each block is one independent task, so results do not depend on the threads.
const QUERY_BLOCK: usize = 128;
/// References scored per matrix product; a `QUERY_BLOCK x REF_BLOCK` f32 block stays in L2 cache.
const REF_BLOCK: usize = 2048;
/// Unit roundoff of f32.
const U32: f64 = f32::EPSILON as f64 / 2.0;

fn norm_f64<T: Copy + Into<f64>>(a: &[T]) -> f64 {
    a.iter().map(|&v| v.into() * v.into()).sum::<f64>().sqrt()
}

/// The f64 score of `b` as a neighbour of `a`, given their f64 norms. This one function defines the
/// ranking of both the fast path and the reference scan, so the two agree bit for bit.
#[inline]
fn score_f64<T: Copy + Into<f64>>(metric: KnnMetric, a: &[T], b: &[T], na: f64, nb: f64) -> f64 {
    match metric {
        KnnMetric::Cosine => {
            if na == 0.0 || nb == 0.0 {
                0.0
            } else {
                let dot: f64 = a.iter().zip(b).map(|(&x, &y)| x.into() * y.into()).sum();
                dot / (na * nb)
            }
        }
        KnnMetric::L2 => -a
            .iter()
            .zip(b)
            .map(|(&x, &y)| {
                let t = x.into() - y.into();
                t * t
            })
            .sum::<f64>(),
    }
}

/// One query's neighbours: (f64 score, index), best first.
type Row = Vec<(f64, usize)>;

/// Higher score first, then lower index.
#[inline]
fn better(a: &(f64, usize), b: &(f64, usize)) -> Ordering {
    b.0.total_cmp(&a.0).then(a.1.cmp(&b.1))
}

/// The best `k` of point `i` by a full f64 scan over all other points.
fn scan_one<T: Copy + Into<f64>>(
    x: &[T],
    d: usize,
    norms: &[f64],
    i: usize,
    k: usize,
    metric: KnnMetric,
) -> Row {
    let n = norms.len();
    let a = &x[i * d..(i + 1) * d];
    let mut all: Vec<(f64, usize)> = (0..n)
        .filter(|&j| j != i)
        .map(|j| {
            (
                score_f64(metric, a, &x[j * d..(j + 1) * d], norms[i], norms[j]),
                j,
            )
        })
        .collect();
    if k < all.len() {
        all.select_nth_unstable_by(k, better);
        all.truncate(k);
    }
    all.sort_unstable_by(better);
    all
}

/// The reference: the `k` nearest neighbours of each point by a direct O(n^2 d) scan in f64.
/// Same contract as [`knn`]; used to check it and for small inputs.
pub fn knn_scan<T: Copy + Into<f64> + Sync>(
    x: &[T],
    n: usize,
    d: usize,
    k: usize,
    metric: KnnMetric,
) -> Neighbors {
    let k = k.min(n.saturating_sub(1));
    let norms: Vec<f64> = (0..n).map(|i| norm_f64(&x[i * d..(i + 1) * d])).collect();
    let rows: Vec<Row> = (0..n)
        .into_par_iter()
        .map(|i| scan_one(x, d, &norms, i, k, metric))
        .collect();
    assemble(n, k, rows, 0)
}

fn assemble(n: usize, k: usize, rows: Vec<Row>, rescans: usize) -> Neighbors {
    let mut index = Vec::with_capacity(n * k);
    let mut score = Vec::with_capacity(n * k);
    for row in rows {
        for (s, j) in row {
            score.push(s);
            index.push(j);
        }
    }
    Neighbors {
        n,
        k,
        index,
        score,
        rescans,
    }
}

/// A query's best `m` approximate candidates, sorted by score (descending); among equal scores the
/// earlier-inserted (lower index) stays first.
struct TopM<'a> {
    s: &'a mut [f32],
    j: &'a mut [u32],
    len: usize,
}

impl TopM<'_> {
    #[inline]
    fn threshold(&self) -> f32 {
        if self.len < self.s.len() {
            f32::NEG_INFINITY
        } else {
            self.s[self.len - 1]
        }
    }

    /// Inserts a candidate whose score exceeds [`TopM::threshold`].
    #[inline]
    fn push(&mut self, s: f32, j: u32) {
        let m = self.s.len();
        let mut p = if self.len < m {
            self.len += 1;
            self.len - 1
        } else {
            m - 1
        };
        while p > 0 && self.s[p - 1] < s {
            self.s[p] = self.s[p - 1];
            self.j[p] = self.j[p - 1];
            p -= 1;
        }
        self.s[p] = s;
        self.j[p] = j;
    }
}

/// The `k` nearest neighbours of each of the `n` points `x` (`n x d`, row-major), the point itself
/// excluded, best first, ties broken by the lower index.
///
/// Exactly equal to [`knn_scan`]. `k` is clamped to `n - 1` (the effective value is `Neighbors::k`).
/// Inputs must be finite.
///
/// Method. Every point is rounded to f32 (divided by its f64 norm first for cosine); one GEMM per
/// (query block, reference block) gives approximate scores `s~` with `|s~ - s| <= E`, where for
/// cosine `E = 2 (d + 4) u` and for l2 (scored as `2 a.b - |b|^2`, the query's own `|a|^2` dropped)
/// `E = 2 (d + 4) u (2 |a| M + M^2)`, `M = max |b|`, `u = 2^-24` (rounding of the inputs, `gamma_d`
/// for the dot product in any summation order, rounding of the combination, with a factor 2 to spare).
/// The list keeps the best `m = min(n - 1, 2k + 8)` by `s~`. A true top-k point has `s~ >= t~ - 2E`,
/// where `t~` is the k-th best `s~`; so if the m-th kept `s~` is below `t~ - 2E`, the list holds every
/// candidate, and rescoring it in f64 gives the exact answer. Otherwise (many near-ties, e.g. duplicated
/// points) the query is rescanned in f64 against all points.
///
/// Cost: `2 n^2 d` flops in f32 GEMM plus an `O(n^2)` scan of the scores, `O(n m d)` for the f64
/// rescoring; memory `O(n d)` f32 plus one score block per thread. Runs on the current rayon pool;
/// every query block is an independent task, so the result is identical for any thread count.
pub fn knn<T: Copy + Into<f64> + Sync>(
    x: &[T],
    n: usize,
    d: usize,
    k: usize,
    metric: KnnMetric,
    progress: &dyn Progress,
) -> Neighbors {
    let k = k.min(n.saturating_sub(1));
    if k == 0 {
        return assemble(n, 0, vec![Vec::new(); n], 0);
    }
    let norms: Vec<f64> = (0..n).map(|i| norm_f64(&x[i * d..(i + 1) * d])).collect();
    // Working f32 copy: unit vectors for cosine (zero stays zero), the values themselves for l2.
    let mut w = vec![0f32; n * d];
    w.par_chunks_mut(d.max(1)).enumerate().for_each(|(i, row)| {
        let src = &x[i * d..(i + 1) * d];
        let scale = match metric {
            KnnMetric::Cosine if norms[i] > 0.0 => 1.0 / norms[i],
            KnnMetric::Cosine => 0.0,
            KnnMetric::L2 => 1.0,
        };
        for (o, &v) in row.iter_mut().zip(src) {
            *o = (v.into() * scale) as f32;
        }
    });
    // For l2 the scan adds -|b|^2 to 2 a.b.
    let sq: Vec<f32> = match metric {
        KnnMetric::Cosine => Vec::new(),
        KnnMetric::L2 => norms.iter().map(|&v| (v * v) as f32).collect(),
    };
    let max_norm = norms.iter().copied().fold(0.0, f64::max);
    let bound = |i: usize| -> f64 {
        let g = 2.0 * (d as f64 + 4.0) * U32;
        match metric {
            KnnMetric::Cosine => g,
            KnnMetric::L2 => g * (2.0 * norms[i] * max_norm + max_norm * max_norm),
        }
    };
    let m = (2 * k + 8).min(n - 1);

    progress.begin("lnc neighbours", n as u64);
    let blocks: Vec<(Vec<Row>, usize)> = crate::par::chunks(n, QUERY_BLOCK)
        .into_par_iter()
        .map(|qr| {
            let nq = qr.len();
            let mut cand_s = vec![0f32; nq * m];
            let mut cand_j = vec![0u32; nq * m];
            let mut lens = vec![0usize; nq];
            let mut block = vec![0f32; REF_BLOCK.min(n) * nq];
            let queries = MatRef::from_column_major_slice(&w[qr.start * d..qr.end * d], d, nq);
            let alpha = match metric {
                KnnMetric::Cosine => 1.0,
                KnnMetric::L2 => 2.0,
            };
            for rr in crate::par::chunks(n, REF_BLOCK) {
                let nr = rr.len();
                let refs = MatRef::from_row_major_slice(&w[rr.start * d..rr.end * d], nr, d);
                // Column q of the block holds query q's scores against this reference block.
                let buf = &mut block[..nr * nq];
                let dst = MatMut::from_column_major_slice_mut(buf, nr, nq);
                matmul(dst, Accum::Replace, refs, queries, alpha, Par::Seq);
                for q in 0..nq {
                    let col = &mut buf[q * nr..(q + 1) * nr];
                    if metric == KnnMetric::L2 {
                        for (s, &b) in col.iter_mut().zip(&sq[rr.clone()]) {
                            *s -= b;
                        }
                    }
                    let mut top = TopM {
                        s: &mut cand_s[q * m..(q + 1) * m],
                        j: &mut cand_j[q * m..(q + 1) * m],
                        len: lens[q],
                    };
                    scan(col, rr.start, qr.start + q, &mut top);
                    lens[q] = top.len;
                }
            }
            // Recheck in f64.
            let mut rescans = 0;
            let rows = (0..nq)
                .map(|q| {
                    let i = qr.start + q;
                    let s = &cand_s[q * m..(q + 1) * m];
                    let j = &cand_j[q * m..q * m + lens[q]];
                    // A short list means some scores were not finite: rescan with the total order.
                    let complete = lens[q] == m
                        && (m == n - 1 || (s[m - 1] as f64) < s[k - 1] as f64 - 2.0 * bound(i));
                    if !complete {
                        rescans += 1;
                        return scan_one(x, d, &norms, i, k, metric);
                    }
                    let a = &x[i * d..(i + 1) * d];
                    let mut exact: Vec<(f64, usize)> = j
                        .iter()
                        .map(|&jj| {
                            let jj = jj as usize;
                            let b = &x[jj * d..(jj + 1) * d];
                            (score_f64(metric, a, b, norms[i], norms[jj]), jj)
                        })
                        .collect();
                    exact.sort_unstable_by(better);
                    exact.truncate(k);
                    exact
                })
                .collect();
            progress.advance(nq as u64);
            (rows, rescans)
        })
        .collect();
    progress.end();
    let rescans = blocks.iter().map(|b| b.1).sum();
    let rows = blocks.into_iter().flat_map(|b| b.0).collect();
    assemble(n, k, rows, rescans)
}

/// Feeds one query's scores against references `first..first + scores.len()` into its list, skipping
/// the query itself. Scores are tested 16 at a time against the list's threshold, so the common case
/// (nothing better than what is kept) is a vectorized comparison.
#[inline]
fn scan(scores: &[f32], first: usize, self_index: usize, top: &mut TopM<'_>) {
    let mut base = first;
    for chunk in scores.chunks(16) {
        let thr = top.threshold();
        let any = chunk.iter().fold(false, |acc, &s| acc | (s > thr));
        if any {
            for (o, &s) in chunk.iter().enumerate() {
                let j = base + o;
                if s > top.threshold() && j != self_index {
                    top.push(s, j as u32);
                }
            }
        }
        base += chunk.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::Silent;

    #[test]
    fn top_list_keeps_best_with_lower_index_first() {
        let mut s = [0f32; 3];
        let mut j = [0u32; 3];
        let mut t = TopM {
            s: &mut s,
            j: &mut j,
            len: 0,
        };
        for (v, i) in [(1.0, 0), (3.0, 1), (1.0, 2), (2.0, 3), (3.0, 4), (0.5, 5)] {
            if v > t.threshold() {
                t.push(v, i);
            }
        }
        assert_eq!(t.len, 3);
        assert_eq!(j, [1, 4, 3]);
    }

    #[test]
    fn tiny_sets() {
        let x = [1.0f32, 0.0, 0.0, 1.0];
        let nb = knn(&x, 2, 2, 5, KnnMetric::Cosine, &Silent);
        assert_eq!(nb.k, 1);
        assert_eq!(nb.index, vec![1, 0]);
        let one = knn(&x[..2], 1, 2, 3, KnnMetric::L2, &Silent);
        assert_eq!(one.k, 0);
        assert!(one.index.is_empty());
    }
}
