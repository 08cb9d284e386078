//! The attractive forces of t-SNE's gradient, `exaggeration * sum_j p_ij q_ij (y_i - y_j)` over the
//! sparse rows of `P`: per iteration one pass over `nnz(P)` entries, each gathering a neighbour's
//! position.
//!
//! Positions, offsets and terms are f32, as scikit-learn computes them (`_barnes_hut_tsne.pyx`,
//! `compute_gradient_positive`, on its f32 embedding): each term is within about 1e-7 of its value
//! from those f32 positions. The sums are f64. Entry `k` of a row goes to lane `k mod 16`, and the
//! lanes are merged in a fixed order, so the sums do not depend on the vector width, the instruction set or
//! how the points are numbered. Results are identical for any thread count: each row is summed by
//! one task.

use super::affinity::Csr;
use crate::simd::{fold16, simd_kernel};
use rayon::prelude::*;

/// Points per task.
const CHUNK: usize = 512;
/// Lanes of the sums.
const LANES: usize = 16;

/// The rows of `P` as the attraction reads them: values in f32 (as scikit-learn keeps them), the
/// points possibly renumbered ([`Attraction::renumber`]).
///
/// Streaming `P` from memory and gathering the neighbours' positions bound the attraction, not its
/// arithmetic: f32 values cut the stream by a third, and numbering the points in the map's spatial
/// order (a tree's order, now and then) makes consecutive rows share most of their neighbours, whose
/// positions then come from the L1 cache. Renumbering moves rows but keeps each row's entries in
/// their order, so every attraction sum is the same as without it (the tree orders the points of a
/// leaf of coincident points by number, which only reorders the additions of equal positions).
/// Renumbering depends on the map alone, so results stay identical for any thread count.
pub(super) struct Attraction {
    indptr: Vec<usize>,
    /// Every index is below `n` (checked in [`Attraction::new`]): the vector path relies on it.
    indices: Vec<u32>,
    values: Vec<f32>,
    /// Per current number: the point's original index.
    pub(super) original: Vec<u32>,
    /// The positions of the last call in f32.
    pos: Vec<[f32; 2]>,
}

impl Attraction {
    /// # Panics
    /// If a column index of `p` is not below `p.n` (`P` is built by this crate, never read from a
    /// file).
    pub(super) fn new(p: &Csr) -> Attraction {
        assert!(
            p.indices.iter().all(|&j| (j as usize) < p.n) && p.indptr.len() == p.n + 1,
            "P's column indices must lie below its size"
        );
        Attraction {
            indptr: p.indptr.clone(),
            indices: p.indices.clone(),
            values: p.values.iter().map(|&v| v as f32).collect(),
            original: (0..p.n as u32).collect(),
            pos: Vec::new(),
        }
    }

    /// Renumbers the points: new number `k` for the point numbered `ord[k]` (a permutation).
    pub(super) fn renumber(&mut self, ord: &[u32]) {
        let n = ord.len();
        let mut new_of = vec![0u32; n];
        for (k, &i) in ord.iter().enumerate() {
            new_of[i as usize] = k as u32;
        }
        let mut indptr = Vec::with_capacity(n + 1);
        let mut indices = Vec::with_capacity(self.indices.len());
        let mut values = Vec::with_capacity(self.values.len());
        indptr.push(0);
        for &i in ord {
            let row = self.indptr[i as usize]..self.indptr[i as usize + 1];
            indices.extend(
                self.indices[row.clone()]
                    .iter()
                    .map(|&j| new_of[j as usize]),
            );
            values.extend_from_slice(&self.values[row]);
            indptr.push(indices.len());
        }
        self.original = ord.iter().map(|&i| self.original[i as usize]).collect();
        (self.indptr, self.indices, self.values) = (indptr, indices, values);
    }

    /// Attractive forces `exaggeration * sum_j p_ij q_ij (y_i - y_j)` into `out` (`n x 2`, like
    /// `y`, row-major).
    pub(super) fn forces(&mut self, y: &[f64], exaggeration: f64, out: &mut [f64]) {
        self.pos.clear();
        self.pos
            .extend(y.chunks_exact(2).map(|p| [p[0] as f32, p[1] as f32]));
        let this = &*self;
        out.par_chunks_mut(2 * CHUNK)
            .enumerate()
            .for_each(|(c, o)| {
                for (r, f) in o.chunks_exact_mut(2).enumerate() {
                    let [fx, fy] = this.row(c * CHUNK + r);
                    f[0] = exaggeration * fx;
                    f[1] = exaggeration * fy;
                }
            });
    }

    /// `sum_j p_ij q_ij (y_i - y_j)` for point `i`.
    fn row(&self, i: usize) -> [f64; 2] {
        let row = self.indptr[i]..self.indptr[i + 1];
        let entries = (&self.indices[row.clone()], &self.values[row]);
        let pos = &self.pos[..];
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F (checked just above); every index is below `n`, the
            // length of `pos` (checked in `new`, kept by `renumber`).
            return unsafe { avx512::row(pos, i, entries) };
        }
        row_terms(pos, i, entries)
    }
}

simd_kernel! {
    /// `sum_j p_ij q_ij (y_i - y_j)` for point `i` over its row (`indices`, `values`), in f32 terms
    /// and f64 lanes (see the module docs); the reference for [`avx512::row`], which gives the same
    /// bits.
    fn row_terms(pos: &[[f32; 2]], i: usize, entries: (&[u32], &[f32])) -> [f64; 2] {
        let (idx, val) = entries;
        let [xi, yi] = pos[i];
        let mut acc = [[0.0f64; LANES]; 2];
        let (mut tx, mut ty) = ([0.0f32; LANES], [0.0f32; LANES]);
        for (ci, cv) in idx.chunks(LANES).zip(val.chunks(LANES)) {
            // A short last block is padded with zero terms (offset 0, value 0), which add +0.
            for l in 0..LANES {
                let (dx, dy, v) = match (ci.get(l), cv.get(l)) {
                    (Some(&j), Some(&v)) => (xi - pos[j as usize][0], yi - pos[j as usize][1], v),
                    _ => (0.0, 0.0, 0.0),
                };
                let w = v / (1.0 + dx * dx + dy * dy);
                tx[l] = w * dx;
                ty[l] = w * dy;
            }
            for l in 0..LANES {
                acc[0][l] += f64::from(tx[l]);
                acc[1][l] += f64::from(ty[l]);
            }
        }
        [fold16(&acc[0]), fold16(&acc[1])]
    }
}

/// The row sums with AVX-512 gathers: written with intrinsics because the compiler does not
/// vectorize the gathers of [`row_terms`], and the neighbours' positions, loaded one by one,
/// bound the pass. Each gather fetches a position's two f32 as one 64-bit element (half the
/// elements of gathering the coordinates apart). The same operations in the same order as
/// [`row_terms`], lane by lane, so the same bits.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::LANES;
    use crate::simd::fold16_avx512;
    use std::arch::x86_64::*;

    /// # Safety
    /// The CPU must have AVX-512F, and every index in `entries.0` must be below `pos.len()`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn row(pos: &[[f32; 2]], i: usize, entries: (&[u32], &[f32])) -> [f64; 2] {
        let (idx, val) = entries;
        let (xi, yi) = (_mm512_set1_ps(pos[i][0]), _mm512_set1_ps(pos[i][1]));
        let one = _mm512_set1_ps(1.0);
        let none = _mm512_setzero_si512();
        // Even and odd f32 of two gathered vectors of pairs: the x and y coordinates.
        let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        let odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
        let mut acc = [_mm512_setzero_pd(); 4];
        for (ci, cv) in idx.chunks(LANES).zip(val.chunks(LANES)) {
            // The short last block under a mask: its other lanes gather nothing and hold zeros.
            let mask: __mmask16 = if ci.len() == LANES {
                0xffff
            } else {
                (1u16 << ci.len()) - 1
            };
            // SAFETY: the masked loads read `ci.len()` and `cv.len()` (equal) elements of the
            // slices; the gathers read `pos[j]` (8 bytes) for those lanes' indices, each below
            // its length (the caller's contract).
            let (dx, dy, v) = unsafe {
                let j = _mm512_maskz_loadu_epi32(mask, ci.as_ptr().cast());
                let v = _mm512_maskz_loadu_ps(mask, cv.as_ptr());
                let base = pos.as_ptr().cast::<i64>();
                let (jlo, jhi) = (_mm512_castsi512_si256(j), _mm512_extracti64x4_epi64::<1>(j));
                let lo = _mm512_mask_i32gather_epi64::<8>(none, mask as u8, jlo, base);
                let hi = _mm512_mask_i32gather_epi64::<8>(none, (mask >> 8) as u8, jhi, base);
                let (lo, hi) = (_mm512_castsi512_ps(lo), _mm512_castsi512_ps(hi));
                let xj = _mm512_permutex2var_ps(lo, even, hi);
                let yj = _mm512_permutex2var_ps(lo, odd, hi);
                // Padding lanes: offsets 0 like the reference's, not xi - 0.
                (
                    _mm512_maskz_sub_ps(mask, xi, xj),
                    _mm512_maskz_sub_ps(mask, yi, yj),
                    v,
                )
            };
            let d2 = _mm512_add_ps(
                _mm512_add_ps(one, _mm512_mul_ps(dx, dx)),
                _mm512_mul_ps(dy, dy),
            );
            let w = _mm512_div_ps(v, d2);
            for (k, t) in [_mm512_mul_ps(w, dx), _mm512_mul_ps(w, dy)]
                .into_iter()
                .enumerate()
            {
                let lo = _mm512_cvtps_pd(_mm512_castps512_ps256(t));
                let hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(
                    _mm512_castps_pd(t),
                )));
                acc[2 * k] = _mm512_add_pd(acc[2 * k], lo);
                acc[2 * k + 1] = _mm512_add_pd(acc[2 * k + 1], hi);
            }
        }
        [fold16_avx512(acc[0], acc[1]), fold16_avx512(acc[2], acc[3])]
    }
}

#[cfg(test)]
mod tests {
    use super::super::optimize::permute_rows;
    use super::*;

    /// `n` points spread over a few units, deterministic, and a sparse `P` whose rows hold 1 to 45
    /// other points (whole and partial blocks of lanes), in increasing index.
    fn problem(n: usize) -> (Vec<f64>, Csr) {
        let y: Vec<f64> = (0..n)
            .flat_map(|i| {
                let t = i as f64;
                [
                    6.0 * (t * 0.618_034).fract() - 3.0,
                    4.0 * (t * 0.414_214).fract() - 1.0 + 0.01 * t.sin(),
                ]
            })
            .collect();
        let mut p = Csr {
            n,
            indptr: vec![0],
            indices: Vec::new(),
            values: Vec::new(),
        };
        for i in 0..n {
            let len = 1 + (i * 7) % 45;
            let mut row: Vec<u32> = (1..=len).map(|k| ((i * 37 + k * 101) % n) as u32).collect();
            row.sort_unstable();
            row.dedup();
            row.retain(|&j| j as usize != i);
            for &j in &row {
                p.indices.push(j);
                p.values
                    .push(1.0 / (1.0 + ((i + j as usize) % 13) as f64) / n as f64);
            }
            p.indptr.push(p.indices.len());
        }
        (y, p)
    }

    /// Against a direct f64 sum: each term is computed in f32 (about 1e-7 relative) from f32
    /// positions, whose rounding moves an offset by up to 6e-8 of the positions' size (a few units
    /// here, offsets down to about 0.01); the bound is 1e-5 of the sum of the terms' magnitudes.
    #[test]
    fn forces_match_a_direct_sum() {
        let n = 300;
        let (y, p) = problem(n);
        let mut att = Attraction::new(&p);
        let mut f = vec![0.0; 2 * n];
        att.forces(&y, 12.0, &mut f);
        for i in 0..n {
            let (mut fx, mut fy, mut ax, mut ay) = (0.0, 0.0, 0.0, 0.0);
            for t in p.indptr[i]..p.indptr[i + 1] {
                let j = p.indices[t] as usize;
                let (dx, dy) = (y[2 * i] - y[2 * j], y[2 * i + 1] - y[2 * j + 1]);
                let w = p.values[t] / (1.0 + dx * dx + dy * dy);
                fx += w * dx;
                fy += w * dy;
                ax += (w * dx).abs();
                ay += (w * dy).abs();
            }
            assert!(
                (f[2 * i] - 12.0 * fx).abs() <= 1e-5 * 12.0 * ax,
                "point {i}"
            );
            assert!(
                (f[2 * i + 1] - 12.0 * fy).abs() <= 1e-5 * 12.0 * ay,
                "point {i}"
            );
        }
    }

    /// The AVX-512 path gives the reference's bits, row by row (where the CPU has AVX-512; the
    /// reference alone is checked against a direct sum above).
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn vector_path_matches_the_reference() {
        if !std::arch::is_x86_feature_detected!("avx512f") {
            eprintln!("no AVX-512 here: nothing to compare");
            return;
        }
        let (y, p) = problem(300);
        let mut att = Attraction::new(&p);
        att.forces(&y, 1.0, &mut vec![0.0; 600]);
        for i in 0..p.n {
            let row = att.indptr[i]..att.indptr[i + 1];
            let entries = (&att.indices[row.clone()], &att.values[row]);
            let want = row_terms(&att.pos, i, entries);
            // SAFETY: the CPU has AVX-512F (checked above); the indices are below `n` (`new`).
            let got = unsafe { avx512::row(&att.pos, i, entries) };
            assert_eq!(got, want, "point {i}");
        }
    }

    /// Renumbering moves whole rows and keeps each row's entries in order: the attraction on every
    /// point is the same, bit for bit, as before.
    #[test]
    fn renumbering_keeps_the_attraction() {
        let n = 300;
        let (y, p) = problem(n);
        let mut att = Attraction::new(&p);
        let mut before = vec![0.0; 2 * n];
        att.forces(&y, 12.0, &mut before);
        // A permutation, applied twice (renumbering composes).
        let ord: Vec<u32> = (0..n as u32).map(|k| (k * 7 + 3) % n as u32).collect();
        let mut yp = y.clone();
        for _ in 0..2 {
            att.renumber(&ord);
            permute_rows(&mut yp, &ord);
        }
        let mut after = vec![0.0; 2 * n];
        att.forces(&yp, 12.0, &mut after);
        for (k, &i) in att.original.iter().enumerate() {
            let i = i as usize;
            assert_eq!(yp[2 * k], y[2 * i]);
            assert_eq!(after[2 * k], before[2 * i]);
            assert_eq!(after[2 * k + 1], before[2 * i + 1]);
        }
    }
}
