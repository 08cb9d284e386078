//! Thin adapters over faer for the dense f64 linear algebra the metrics share: symmetric
//! eigendecomposition, Cholesky factors, triangular solves and products, Gram products and Kronecker
//! helpers.
//!
//! Every routine here runs with `Par::Seq`: callers parallelize over independent problems (classes,
//! chunks, Monte Carlo blocks) with rayon, and faer's own parallelism must never nest inside that.
//! Matrices are f64 (the Gram, triangular solve and product routines also take f32, for
//! mixed-precision iterations); inputs that are not finite are reported as `None` rather than a panic.

mod row_gram;
mod tridiag_eigvals;

pub use row_gram::row_gram_f32;

use faer::diag::Diag;
use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::triangular_solve::solve_lower_triangular_in_place;
use faer::reborrow::{Reborrow, ReborrowMut};
use faer::traits::RealField;
use faer::{Accum, Mat, MatMut, MatRef, Par};

/// Eigenvalues of the symmetric matrix `a` (only its lower triangle is read), ascending.
/// `None` when `a` holds non-finite values or the iteration fails. Cost `O(n^3)`.
pub fn sym_eigvals(a: MatRef<'_, f64>) -> Option<Vec<f64>> {
    use faer::linalg::evd::tridiag::{tridiag_in_place, tridiag_in_place_scratch};
    let n = a.nrows();
    assert_eq!(n, a.ncols(), "sym_eigvals: the matrix must be square");
    if !all_finite(a) {
        return None;
    }
    if n <= 1 {
        return Some((0..n).map(|i| a[(i, i)]).collect());
    }
    // faer's Householder reduction to tridiagonal form, then our root-free iteration on it (see
    // `tridiag_eigvals`); faer's own eigenvalue path where that one declines.
    let mut t = Mat::<f64>::zeros(n, n);
    t.copy_from_triangular_lower(a);
    let bs = faer::linalg::qr::no_pivoting::factor::recommended_block_size::<f64>(n, n);
    let mut h = Mat::<f64>::zeros(bs, n - 1);
    let mut buf = MemBuffer::new(tridiag_in_place_scratch::<f64>(
        n,
        Par::Seq,
        Default::default(),
    ));
    tridiag_in_place(
        t.as_mut(),
        h.as_mut(),
        Par::Seq,
        MemStack::new(&mut buf),
        Default::default(),
    );
    let mut d: Vec<f64> = (0..n).map(|i| t[(i, i)]).collect();
    let mut e: Vec<f64> = (0..n - 1).map(|i| t[(i + 1, i)]).collect();
    if tridiag_eigvals::eigenvalues_in_place(&mut d, &mut e) {
        d.sort_by(f64::total_cmp);
        return Some(d);
    }
    eig_imp(a, false).map(|(s, _)| s)
}

/// Eigenvalues (ascending) and orthonormal eigenvectors (columns) of the symmetric matrix `a`
/// (lower triangle read): `a = U diag(s) U^T`. `None` on non-finite input. Cost `O(n^3)`.
pub fn sym_eigen(a: MatRef<'_, f64>) -> Option<(Vec<f64>, Mat<f64>)> {
    eig_imp(a, true).map(|(s, u)| (s, u.expect("vectors were requested")))
}

fn eig_imp(a: MatRef<'_, f64>, vectors: bool) -> Option<(Vec<f64>, Option<Mat<f64>>)> {
    use faer::linalg::evd::{ComputeEigenvectors, self_adjoint_evd, self_adjoint_evd_scratch};
    let n = a.nrows();
    assert_eq!(n, a.ncols(), "sym_eig: the matrix must be square");
    if !all_finite(a) {
        return None;
    }
    let mut s = Diag::<f64>::zeros(n);
    let mut u = vectors.then(|| Mat::<f64>::zeros(n, n));
    let compute = if vectors {
        ComputeEigenvectors::Yes
    } else {
        ComputeEigenvectors::No
    };
    let mut buf = MemBuffer::new(self_adjoint_evd_scratch::<f64>(
        n,
        compute,
        Par::Seq,
        Default::default(),
    ));
    self_adjoint_evd(
        a,
        s.as_mut(),
        u.as_mut().map(|u| u.as_mut()),
        Par::Seq,
        MemStack::new(&mut buf),
        Default::default(),
    )
    .ok()?;
    let vals: Vec<f64> = (0..n).map(|i| s[i]).collect();
    vals.iter().all(|v| v.is_finite()).then_some((vals, u))
}

/// The lower Cholesky factor `L` of the symmetric matrix `a` (`a = L L^T`, lower triangle read), or
/// `None` when `a` is not numerically positive definite: a pivot `L_ii^2` is not positive and finite,
/// or falls below `1e-13` times the largest diagonal entry of `a` (then `a` is singular to working
/// precision and its inverse would be dominated by rounding). Cost `n^3 / 3`.
pub fn cholesky(a: MatRef<'_, f64>) -> Option<Mat<f64>> {
    let mut l = Mat::<f64>::zeros(a.nrows(), a.ncols());
    cholesky_into(a, &mut l).then_some(l)
}

/// [`cholesky`] written into `l` (`n x n`, its contents overwritten; a reused matrix saves the
/// allocation); `false` where [`cholesky`] gives `None` (`l` is then unspecified).
pub fn cholesky_into(a: MatRef<'_, f64>, l: &mut Mat<f64>) -> bool {
    cholesky_imp(a, l).is_some()
}

fn cholesky_imp(a: MatRef<'_, f64>, l: &mut Mat<f64>) -> Option<()> {
    use faer::linalg::cholesky::llt::factor::{cholesky_in_place, cholesky_in_place_scratch};
    let n = a.nrows();
    assert_eq!(n, a.ncols(), "cholesky: the matrix must be square");
    assert_eq!(
        (l.nrows(), l.ncols()),
        (n, n),
        "cholesky: the factor must be n x n"
    );
    l.as_mut().copy_from_triangular_lower(a);
    let max_diag = (0..n).map(|i| a[(i, i)]).fold(0.0f64, f64::max);
    if !(max_diag > 0.0 && max_diag.is_finite()) {
        return None;
    }
    let mut buf = MemBuffer::new(cholesky_in_place_scratch::<f64>(
        n,
        Par::Seq,
        Default::default(),
    ));
    cholesky_in_place(
        l.as_mut(),
        Default::default(),
        Par::Seq,
        MemStack::new(&mut buf),
        Default::default(),
    )
    .ok()?;
    let floor = 1e-13 * max_diag;
    for i in 0..n {
        let p = l[(i, i)] * l[(i, i)];
        if !(p.is_finite() && p > floor) {
            return None;
        }
    }
    // The strict upper triangle, column by column (contiguous in the column-major storage).
    for j in 1..n {
        l.col_as_slice_mut(j)[..j].fill(0.0);
    }
    Some(())
}

/// `dst = beta * dst + alpha * a^T a` (a symmetric rank-k update, `a` is `k x n`, `dst` is `n x n`).
/// Only the lower triangle is computed (`k n^2` flops instead of `2 k n^2`), then mirrored.
/// Generic over f32 / f64 (the f32 form serves mixed-precision iterations).
pub fn gram_t<T: RealField + Copy>(dst: MatMut<'_, T>, accum: Accum, a: MatRef<'_, T>, alpha: T) {
    syrk(dst, accum, a.transpose(), alpha)
}

/// `dst = beta * dst + alpha * a a^T` (`a` is `n x k`); see [`gram_t`].
pub fn gram<T: RealField + Copy>(dst: MatMut<'_, T>, accum: Accum, a: MatRef<'_, T>, alpha: T) {
    syrk(dst, accum, a, alpha)
}

/// The lower triangle of `a a^T` (`a` is `n x k`) written over that of `dst`; the strict upper
/// triangle is unspecified (partly overwritten by the diagonal blocks).
pub fn gram_lower<T: RealField + Copy>(dst: MatMut<'_, T>, a: MatRef<'_, T>) {
    syrk_lower(dst, Accum::Replace, a, T::one_impl());
}

fn syrk<T: RealField + Copy>(mut dst: MatMut<'_, T>, accum: Accum, a: MatRef<'_, T>, alpha: T) {
    syrk_lower(dst.rb_mut(), accum, a, alpha);
    mirror_lower(dst);
}

/// The lower triangle of `dst (+)= alpha a a^T`, recursively: the off-diagonal block of the halves as
/// one full matrix product, the two diagonal blocks the same way down to [`SYRK_BLOCK`] rows, which
/// run as full products (their strict upper parts are computed too, and left to the mirror). At 16
/// rows the diagonal blocks waste 6 % rather than the 12 % of 32-column block columns (the earlier
/// form): for the 32 x 32 Gram of a 32 x 12800 f32 matrix that is 18 % less time, for the 256 x 256
/// Gram of a 1600 x 256 one about the same (the flip-flop's two Gram products; faer's own triangular
/// product was slower than either form).
fn syrk_lower<T: RealField + Copy>(dst: MatMut<'_, T>, accum: Accum, a: MatRef<'_, T>, alpha: T) {
    let n = a.nrows();
    if n <= SYRK_BLOCK {
        faer::linalg::matmul::matmul(dst, accum, a, a.transpose(), alpha, Par::Seq);
        return;
    }
    // Halves on a multiple of 16 rows, the width of the f32 SIMD registers.
    let h = (n / 2).div_ceil(16) * 16;
    let (a1, a2) = a.split_at_row(h);
    let (top, bottom) = dst.split_at_row_mut(h);
    let (d11, _) = top.split_at_col_mut(h);
    let (d21, d22) = bottom.split_at_col_mut(h);
    syrk_lower(d11, accum, a1, alpha);
    faer::linalg::matmul::matmul(d21, accum, a2, a1.transpose(), alpha, Par::Seq);
    syrk_lower(d22, accum, a2, alpha);
}

/// Rows at which [`syrk_lower`] stops halving.
const SYRK_BLOCK: usize = 16;

/// Column width of the blocks of [`upper_solve_factor`] and [`solve_upper_right`]. At the
/// flip-flop's sizes (`1600 x 256` by `256 x 256` in f32) blocked triangular products of width 16
/// and 32 took the same time within the noise of repeated measurements (16 does 6 % fewer flops,
/// on narrower kernels), 48, 64 and 128 longer, and a recursive split longer too.
const TRI_BLOCK: usize = 16;

/// Copies the strict lower triangle of a square matrix onto its upper triangle.
///
/// In square tiles, so that the transposed writes stay within a few cache lines per column (an
/// element-by-element transpose of a 256 x 256 matrix, one cache miss per write, cost as much as
/// a tenth of the flip-flop's Gram products).
pub fn mirror_lower<T: Copy>(mut a: MatMut<'_, T>) {
    const TILE: usize = 16;
    let n = a.nrows();
    for jb in (0..n).step_by(TILE) {
        for ib in (jb..n).step_by(TILE) {
            for j in jb..(jb + TILE).min(n) {
                for i in ib.max(j + 1)..(ib + TILE).min(n) {
                    a[(j, i)] = a[(i, j)];
                }
            }
        }
    }
}

/// Solves `L X = B` in place (`L` lower triangular `n x n`, `B` is `n x k`, any strides); f32 or f64.
pub fn solve_lower_in_place<T: RealField>(l: MatRef<'_, T>, rhs: MatMut<'_, T>) {
    solve_lower_triangular_in_place(l, rhs, Par::Seq);
}

/// The inverse of a lower triangular matrix (lower triangular too, its strict upper triangle zero);
/// `n^3 / 3` flops. Used to turn the many-right-hand-side solves of an iteration into triangular
/// products, which run at matrix-product speed.
pub fn inverse_lower(l: MatRef<'_, f64>) -> Mat<f64> {
    let mut x = Mat::<f64>::zeros(l.nrows(), l.nrows());
    faer::linalg::triangular_inverse::invert_lower_triangular(x.as_mut(), l, Par::Seq);
    x
}

/// `dst = l b` with `l` lower triangular, whose strict upper triangle must be zero (as
/// [`inverse_lower`] leaves it); f32 or f64. Cost about `n^2 k / 2` flops for an `n x n` `l` and
/// `n x k` `b`.
///
/// Runs as row blocks of full products, `dst[i..i+w, :] = l[i..i+w, ..i+w] b[..i+w, :]`, the
/// diagonal blocks with their zeros (8 rows): a quarter less time than faer's
/// triangular product for the flip-flop's `32 x 32` factor times `32 x 12800` residuals in f32.
pub fn mul_lower_left<T: RealField>(mut dst: MatMut<'_, T>, l: MatRef<'_, T>, b: MatRef<'_, T>) {
    let n = l.nrows();
    debug_assert!((0..n).all(|j| (0..j).all(|i| l[(i, j)] == T::zero_impl())));
    let mut i = 0;
    while i < n {
        let w = LOWER_BLOCK.min(n - i);
        faer::linalg::matmul::matmul(
            dst.rb_mut().subrows_mut(i, w),
            Accum::Replace,
            l.submatrix(i, 0, w, i + w),
            b.subrows(0, i + w),
            T::one_impl(),
            Par::Seq,
        );
        i += w;
    }
}

/// Row height of the blocks of [`mul_lower_left`] (8 was faster than 16, 32 or faer's triangular
/// product for the flip-flop's `32 x 32` channel factor).
const LOWER_BLOCK: usize = 8;

/// The factor `M` with which [`solve_upper_right`] computes `a U^{-1}` for the upper triangular
/// `U = scale * l^T` (`l` lower triangular with a positive diagonal, e.g. a Cholesky factor): in
/// block columns of width [`TRI_BLOCK`], `M[J,J] = U[J,J]^{-1}` and `M[..J,J] = -U[..J,J] U[J,J]^{-1}`
/// (zero below the diagonal blocks). Forming it costs about `n^3 / 16` flops at `n = 256`, a fifth of
/// the full triangular inverse it replaces.
pub fn upper_solve_factor(l: MatRef<'_, f64>, scale: f64) -> Mat<f64> {
    let n = l.nrows();
    let mut m = Mat::<f64>::zeros(n, n);
    upper_solve_factor_into(l, scale, &mut m);
    m
}

/// [`upper_solve_factor`] written into `m` (`n x n`, e.g. a reused matrix): every entry that
/// [`solve_upper_right`] reads is written (the block columns down to their diagonal blocks, zeros
/// below the diagonal within those blocks); the entries below the diagonal blocks are left as
/// they were.
pub fn upper_solve_factor_into(l: MatRef<'_, f64>, scale: f64, m: &mut Mat<f64>) {
    let n = l.nrows();
    assert_eq!(
        (m.nrows(), m.ncols()),
        (n, n),
        "upper_solve_factor: m must be n x n"
    );
    let mut inv = [[0.0f64; TRI_BLOCK]; TRI_BLOCK];
    let mut j = 0;
    while j < n {
        let w = TRI_BLOCK.min(n - j);
        // inv = l[J,J]^{-1} (lower) by forward substitution: a block is too small for faer's
        // recursive inverse to pay off.
        for c in 0..w {
            for r in c..w {
                let mut acc = if r == c { 1.0 } else { 0.0 };
                for (t, row) in inv.iter().enumerate().take(r).skip(c) {
                    acc -= l[(j + r, j + t)] * row[c];
                }
                inv[r][c] = acc / l[(j + r, j + r)];
            }
        }
        // M[J,J] = U[J,J]^{-1} = inv^T / scale (upper).
        for (a, row) in inv.iter().enumerate().take(w) {
            let col = &mut m.col_as_slice_mut(j + a)[j..j + w];
            let (upper, lower) = col.split_at_mut(a + 1);
            for (v, &x) in upper.iter_mut().zip(row) {
                *v = x / scale;
            }
            lower.fill(0.0);
        }
        if j > 0 {
            // M[..J,J] = -U[..J,J] U[J,J]^{-1} = -(l[J,..J]^T inv^T): the scale cancels.
            let inv_t = MatRef::from_row_major_slice(inv.as_flattened(), TRI_BLOCK, TRI_BLOCK)
                .submatrix(0, 0, w, w)
                .transpose();
            matmul(
                m.as_mut().submatrix_mut(0, j, j, w),
                Accum::Replace,
                l.submatrix(j, 0, w, j).transpose(),
                inv_t,
                -1.0,
            );
        }
        j += w;
    }
}

/// The f32 rounding of a factor made by [`upper_solve_factor`], written over `out` (resized to its
/// shape where it differs): only the entries that [`solve_upper_right`] reads, each block column
/// down to its diagonal block (about half the matrix); the others are left as they were.
pub fn upper_solve_factor_f32(m: &Mat<f64>, out: &mut Mat<f32>) {
    let n = m.nrows();
    if (out.nrows(), out.ncols()) != (n, m.ncols()) {
        *out = Mat::zeros(n, m.ncols());
    }
    for j in 0..m.ncols() {
        let rows = ((j / TRI_BLOCK + 1) * TRI_BLOCK).min(n);
        for (o, &v) in out.col_as_slice_mut(j)[..rows]
            .iter_mut()
            .zip(&m.col_as_slice(j)[..rows])
        {
            *o = v as f32;
        }
    }
}

/// `dst = a U^{-1}` for a row-major `a` of `k x n` (`a.len() = k n`, `dst` likewise) and the factor
/// `m` of `U` made by [`upper_solve_factor`] (or its f32 rounding), by block substitution from the
/// left: with `dst` holding `a`, each block column becomes `dst[:,J] <- dst[:,..J+w] M[..J+w,J]` (the
/// finished columns before it and its own `a` columns), one full product per block column into
/// `tmp` (reused), copied back. The same flops as the product with the triangular inverse
/// (`k n^2`), without forming that inverse (`n^3 / 3`). Rows run in chunks of [`SOLVE_ROWS`], so
/// that a chunk's copy of `a` is still in cache for its products.
pub fn solve_upper_right<T: RealField + Copy>(
    dst: &mut [T],
    a: &[T],
    m: MatRef<'_, T>,
    tmp: &mut Vec<T>,
) {
    let n = m.ncols();
    assert!(n > 0 && a.len().is_multiple_of(n) && dst.len() == a.len());
    for (dst, a) in dst.chunks_mut(SOLVE_ROWS * n).zip(a.chunks(SOLVE_ROWS * n)) {
        let k = a.len() / n;
        dst.copy_from_slice(a);
        let mut j = 0;
        while j < n {
            let w = TRI_BLOCK.min(n - j);
            tmp.resize(k * w, T::zero_impl());
            faer::linalg::matmul::matmul(
                MatMut::from_row_major_slice_mut(&mut tmp[..k * w], k, w),
                Accum::Replace,
                MatRef::from_row_major_slice(dst, k, n).subcols(0, j + w),
                m.submatrix(0, j, j + w, w),
                T::one_impl(),
                Par::Seq,
            );
            if w == TRI_BLOCK {
                // Fixed-size moves: a call to memcpy per 16-value row cost more than the move.
                for (row, t) in dst.chunks_exact_mut(n).zip(tmp.chunks_exact(w)) {
                    let to: &mut [T; TRI_BLOCK] =
                        (&mut row[j..j + w]).try_into().expect("w values");
                    *to = *<&[T; TRI_BLOCK]>::try_from(t).expect("w values");
                }
            } else {
                for (row, t) in dst.chunks_exact_mut(n).zip(tmp.chunks_exact(w)) {
                    row[j..j + w].copy_from_slice(t);
                }
            }
            j += w;
        }
    }
}

/// Rows per chunk of [`solve_upper_right`]: 256 rows of 256 f32 values are 256 KB, a quarter of
/// a Zen 4 core's L2 cache.
const SOLVE_ROWS: usize = 256;

/// `dst = alpha * a b` (+ `dst` when `accum` is `Add`), sequential.
pub fn matmul(
    dst: MatMut<'_, f64>,
    accum: Accum,
    a: MatRef<'_, f64>,
    b: MatRef<'_, f64>,
    alpha: f64,
) {
    faer::linalg::matmul::matmul(dst, accum, a, b, alpha, Par::Seq);
}

/// The dense Kronecker product `a (x) b` (`(ra rb) x (ca cb)`), with the row-major `vec` convention
/// used throughout (`(a (x) b)[(i rb + k, j cb + l)] = a[i,j] b[k,l]`). For small problems and tests:
/// metrics never form it.
pub fn kron(a: MatRef<'_, f64>, b: MatRef<'_, f64>) -> Mat<f64> {
    let (ra, ca, rb, cb) = (a.nrows(), a.ncols(), b.nrows(), b.ncols());
    Mat::from_fn(ra * rb, ca * cb, |i, j| {
        a[(i / rb, j / cb)] * b[(i % rb, j % cb)]
    })
}

/// `y = a x b^T` for a `p x q` matrix `x` stored row-major in `x` (`a` is `r x p`, `b` is `s x q`),
/// written row-major into `out` (`r x s`): the product `(a (x) b) vec(x)` without forming the
/// Kronecker matrix. `tmp` is scratch (`p x s`). Cost `2 (p q s + r p s)`.
pub fn kron_apply(
    a: MatRef<'_, f64>,
    b: MatRef<'_, f64>,
    x: &[f64],
    tmp: &mut Vec<f64>,
    out: &mut [f64],
) {
    let (p, q) = (a.ncols(), b.ncols());
    let (r, s) = (a.nrows(), b.nrows());
    assert_eq!(x.len(), p * q);
    assert_eq!(out.len(), r * s);
    tmp.clear();
    tmp.resize(p * s, 0.0);
    let xm = MatRef::from_row_major_slice(x, p, q);
    let mut t = MatMut::from_row_major_slice_mut(tmp, p, s);
    matmul(t.rb_mut(), Accum::Replace, xm, b.transpose(), 1.0);
    let o = MatMut::from_row_major_slice_mut(out, r, s);
    matmul(o, Accum::Replace, a, t.rb(), 1.0);
}

/// Sum of the diagonal.
pub fn trace(a: MatRef<'_, f64>) -> f64 {
    (0..a.nrows().min(a.ncols())).map(|i| a[(i, i)]).sum()
}

/// Frobenius norm.
pub fn frobenius(a: MatRef<'_, f64>) -> f64 {
    let mut s = 0.0;
    for j in 0..a.ncols() {
        let col = a.col(j);
        s += match col.try_as_col_major() {
            Some(c) => sum_sq_diff(c.as_slice(), None),
            None => sum_sq(col.iter().copied()),
        };
    }
    s.sqrt()
}

/// Frobenius norm of `a - b`.
pub fn frobenius_diff(a: MatRef<'_, f64>, b: MatRef<'_, f64>) -> f64 {
    assert_eq!((a.nrows(), a.ncols()), (b.nrows(), b.ncols()));
    let mut s = 0.0;
    for j in 0..a.ncols() {
        let (ca, cb) = (a.col(j), b.col(j));
        s += match (ca.try_as_col_major(), cb.try_as_col_major()) {
            (Some(x), Some(y)) => sum_sq_diff(x.as_slice(), Some(y.as_slice())),
            _ => sum_sq(ca.iter().zip(cb.iter()).map(|(p, q)| p - q)),
        };
    }
    s.sqrt()
}

/// `||new - old||_F / ||new||_F` in one pass over both matrices (column-major storage): the
/// flip-flop's relative change of a factor.
pub fn relative_change(new: &Mat<f64>, old: &Mat<f64>) -> f64 {
    assert_eq!((new.nrows(), new.ncols()), (old.nrows(), old.ncols()));
    let mut sums = SquareSums::default();
    for j in 0..new.ncols() {
        sums.add(new.col_as_slice(j), old.col_as_slice(j));
    }
    let (diff, norm) = sums.totals();
    (diff / norm).sqrt()
}

/// [`relative_change`] of two symmetric matrices from their lower triangles only (half the reads):
/// each squared sum is the diagonal's plus twice the strict lower triangle's.
pub fn relative_change_sym(new: &Mat<f64>, old: &Mat<f64>) -> f64 {
    let n = new.nrows();
    assert_eq!((n, n), (new.ncols(), old.nrows()));
    assert_eq!(n, old.ncols());
    let (mut diag, mut lower) = (SquareSums::default(), SquareSums::default());
    for j in 0..n {
        let (a, b) = (&new.col_as_slice(j)[j..], &old.col_as_slice(j)[j..]);
        diag.add(&a[..1], &b[..1]);
        lower.add(&a[1..], &b[1..]);
    }
    let ((dd, nd), (dl, nl)) = (diag.totals(), lower.totals());
    ((dd + 2.0 * dl) / (nd + 2.0 * nl)).sqrt()
}

/// Running sums of `(x - y)^2` and `x^2` over pairs of slices, in eight lanes (vectorizes; fixed
/// order, so deterministic) plus a sequential sum of the slices' remainders.
#[derive(Default)]
struct SquareSums {
    diff: [f64; 8],
    norm: [f64; 8],
    diff_tail: f64,
    norm_tail: f64,
}

impl SquareSums {
    fn add(&mut self, a: &[f64], b: &[f64]) {
        let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
        for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
            self.diff_tail += (x - y) * (x - y);
            self.norm_tail += x * x;
        }
        for (x, y) in ca.zip(cb) {
            for k in 0..8 {
                self.diff[k] += (x[k] - y[k]) * (x[k] - y[k]);
                self.norm[k] += x[k] * x[k];
            }
        }
    }

    /// `(sum (x - y)^2, sum x^2)`.
    fn totals(&self) -> (f64, f64) {
        (
            self.diff.iter().sum::<f64>() + self.diff_tail,
            self.norm.iter().sum::<f64>() + self.norm_tail,
        )
    }
}

/// Copies `m` into `out` (same shape), one vectorized pass per column (faer's `clone` writes
/// element by element).
pub fn copy_into(m: &Mat<f64>, out: &mut Mat<f64>) {
    assert_eq!((m.nrows(), m.ncols()), (out.nrows(), out.ncols()));
    for j in 0..m.ncols() {
        out.col_as_slice_mut(j).copy_from_slice(m.col_as_slice(j));
    }
}

/// Inner product with eight running sums (vectorizes; fixed order, so deterministic).
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0f64; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f64 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    acc.iter().sum::<f64>() + tail
}

/// `sum (x - y)^2` (or `sum x^2`) over contiguous values with eight running sums, so that the loop
/// vectorizes (fixed order: deterministic).
fn sum_sq_diff(x: &[f64], y: Option<&[f64]>) -> f64 {
    let mut acc = [0.0f64; 8];
    let mut tail = 0.0;
    match y {
        Some(y) => {
            let (cx, cy) = (x.chunks_exact(8), y.chunks_exact(8));
            for (p, q) in cx.remainder().iter().zip(cy.remainder()) {
                tail += (p - q) * (p - q);
            }
            for (p, q) in cx.zip(cy) {
                for k in 0..8 {
                    acc[k] += (p[k] - q[k]) * (p[k] - q[k]);
                }
            }
        }
        None => {
            let cx = x.chunks_exact(8);
            for p in cx.remainder() {
                tail += p * p;
            }
            for p in cx {
                for k in 0..8 {
                    acc[k] += p[k] * p[k];
                }
            }
        }
    }
    acc.iter().sum::<f64>() + tail
}

/// Sum of squares with four running sums (so the loop is not bound by one accumulator's latency).
fn sum_sq(v: impl Iterator<Item = f64>) -> f64 {
    let mut acc = [0.0f64; 4];
    for (k, x) in v.enumerate() {
        acc[k % 4] += x * x;
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3])
}

fn all_finite(a: MatRef<'_, f64>) -> bool {
    (0..a.ncols()).all(|j| (0..a.nrows()).all(|i| a[(i, j)].is_finite()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spd(n: usize, seed: u64) -> Mat<f64> {
        // splitmix64 entries: full rank (a product of sines, or an affine hash, would not be).
        let g = Mat::from_fn(n, n + 3, |i, j| {
            let mut z = (seed << 32 | (i * 1000 + j) as u64).wrapping_add(0x9e37_79b9_7f4a_7c15);
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            (z >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        });
        let mut a = Mat::zeros(n, n);
        gram(a.as_mut(), Accum::Replace, g.as_ref(), 1.0);
        a
    }

    #[test]
    fn eigen_reconstructs() {
        let a = spd(7, 1);
        let (s, u) = sym_eigen(a.as_ref()).unwrap();
        let r = &u * Mat::from_fn(7, 7, |i, j| if i == j { s[i] } else { 0.0 }) * u.transpose();
        assert!(frobenius_diff(r.as_ref(), a.as_ref()) < 1e-12 * frobenius(a.as_ref()));
        let v = sym_eigvals(a.as_ref()).unwrap();
        for (x, y) in v.iter().zip(&s) {
            assert!((x - y).abs() < 1e-12 * s[6]);
        }
        assert!(s.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn cholesky_and_solve() {
        let a = spd(6, 2);
        let l = cholesky(a.as_ref()).unwrap();
        let r = &l * l.transpose();
        assert!(frobenius_diff(r.as_ref(), a.as_ref()) < 1e-12 * frobenius(a.as_ref()));
        let b = Mat::from_fn(6, 3, |i, j| (i + 2 * j) as f64);
        let mut x = b.clone();
        solve_lower_in_place(l.as_ref(), x.as_mut());
        let back = &l * &x;
        assert!(frobenius_diff(back.as_ref(), b.as_ref()) < 1e-10);
        // singular: a zero row and column
        let mut s = spd(4, 3);
        for k in 0..4 {
            s[(2, k)] = 0.0;
            s[(k, 2)] = 0.0;
        }
        assert!(cholesky(s.as_ref()).is_none());
        let nan = Mat::from_fn(2, 2, |i, j| if i == j { f64::NAN } else { 0.0 });
        assert!(cholesky(nan.as_ref()).is_none());
        assert!(sym_eigvals(nan.as_ref()).is_none());
    }

    #[test]
    fn gram_matches_product() {
        let a = Mat::from_fn(9, 4, |i, j| ((i * 4 + j) as f64 * 0.3).cos());
        let mut g = Mat::zeros(4, 4);
        gram_t(g.as_mut(), Accum::Replace, a.as_ref(), 2.0);
        let full = a.transpose() * &a * 2.0;
        assert!(frobenius_diff(g.as_ref(), full.as_ref()) < 1e-12);
    }

    #[test]
    fn eigenvalues_agree_with_the_full_decomposition() {
        // A symmetric matrix with a wide, partly repeated spectrum (and a zero eigenvalue).
        let n = 70;
        let q =
            sym_eigen(Mat::from_fn(n, n, |i, j| ((i * j + i + j) as f64 * 0.01).sin()).as_ref())
                .unwrap()
                .1;
        let mut lam: Vec<f64> = (0..n)
            .map(|i| {
                if i % 7 == 3 {
                    2.5
                } else {
                    10f64.powf(-(i as f64) / 10.0)
                }
            })
            .collect();
        lam[5] = 0.0;
        let a = &q * Mat::from_fn(n, n, |i, j| if i == j { lam[i] } else { 0.0 }) * q.transpose();
        let got = sym_eigvals(a.as_ref()).unwrap();
        let (want, _) = sym_eigen(a.as_ref()).unwrap();
        let mut sorted = lam.clone();
        sorted.sort_by(f64::total_cmp);
        for ((g, w), l) in got.iter().zip(&want).zip(&sorted) {
            assert!((g - w).abs() < 1e-13 * 2.5, "{g} vs {w}");
            assert!((g - l).abs() < 1e-12, "{g} vs {l}");
        }
    }

    #[test]
    fn blocked_gram_matches_the_dense_one() {
        // Sizes that are not multiples of the block width.
        let a = Mat::from_fn(7, 70, |i, j| ((i * 70 + j) as f64 * 0.37).sin());
        let b = a.transpose().to_owned();
        let mut g = Mat::from_fn(70, 70, |_, _| 1.0);
        gram(g.as_mut(), Accum::Add, b.as_ref(), 0.5);
        let want = Mat::from_fn(70, 70, |_, _| 1.0) + &b * b.transpose() * 0.5;
        assert!(frobenius_diff(g.as_ref(), want.as_ref()) < 1e-12 * frobenius(want.as_ref()));
        assert!((0..70).all(|i| (0..70).all(|j| g[(i, j)] == g[(j, i)])));
    }

    #[test]
    fn block_substitution_matches_the_inverse() {
        // 70 columns: five blocks, the last one partial; scale != 1.
        let a = spd(70, 4);
        let l = cholesky(a.as_ref()).unwrap();
        let scale = 0.37;
        let m = upper_solve_factor(l.as_ref(), scale);
        let xv: Vec<f64> = (0..9 * 70).map(|i| (i as f64 * 0.29).sin()).collect();
        let mut yv = vec![0.0; 9 * 70];
        solve_upper_right(&mut yv, &xv, m.as_ref(), &mut Vec::new());
        let x = MatRef::from_row_major_slice(&xv, 9, 70).to_owned();
        let y = MatRef::from_row_major_slice(&yv, 9, 70).to_owned();
        // y U = x with U = scale l^T, checked directly and against the dense inverse.
        let back = &y * l.transpose() * scale;
        assert!(frobenius_diff(back.as_ref(), x.as_ref()) < 1e-12 * frobenius(x.as_ref()));
        let want = &x * (inverse_lower(l.as_ref()) * (1.0 / scale)).transpose();
        assert!(frobenius_diff(y.as_ref(), want.as_ref()) < 1e-12 * frobenius(want.as_ref()));
        assert!((0..70).all(|j| (j + 1..70).all(|i| m[(i, j)] == 0.0)));
        // Written over a reused matrix full of NaN, the factor solves the same, bit for bit.
        let mut reused = Mat::from_fn(70, 70, |_, _| f64::NAN);
        upper_solve_factor_into(l.as_ref(), scale, &mut reused);
        let mut again = vec![0.0; 9 * 70];
        solve_upper_right(&mut again, &xv, reused.as_ref(), &mut Vec::new());
        assert_eq!(again, yv);
        // Its f32 rounding, written over NaN, solves as the rounding of the whole factor does.
        let full32 = Mat::from_fn(70, 70, |i, j| m[(i, j)] as f32);
        let mut part32 = Mat::from_fn(70, 70, |_, _| f32::NAN);
        upper_solve_factor_f32(&m, &mut part32);
        let x32: Vec<f32> = xv.iter().map(|&v| v as f32).collect();
        let (mut y1, mut y2) = (vec![0.0f32; 9 * 70], vec![0.0f32; 9 * 70]);
        solve_upper_right(&mut y1, &x32, full32.as_ref(), &mut Vec::new());
        solve_upper_right(&mut y2, &x32, part32.as_ref(), &mut Vec::new());
        assert_eq!(y1, y2);
    }

    #[test]
    fn one_pass_helpers_match_their_definitions() {
        let a = spd(37, 5);
        let b = spd(37, 6);
        let want = frobenius_diff(a.as_ref(), b.as_ref()) / frobenius(a.as_ref());
        assert!((relative_change(&a, &b) - want).abs() < 1e-14 * want);
        // The symmetric form reads the lower triangles only: an upper triangle of NaN is not seen.
        let nan_upper =
            |m: &Mat<f64>| Mat::from_fn(37, 37, |i, j| if i >= j { m[(i, j)] } else { f64::NAN });
        assert!((relative_change_sym(&nan_upper(&a), &nan_upper(&b)) - want).abs() < 1e-14 * want);
        let mut copy = Mat::from_fn(37, 37, |_, _| f64::NAN);
        copy_into(&a, &mut copy);
        assert_eq!(copy, a);
    }

    #[test]
    fn kron_apply_matches_dense() {
        let a = Mat::from_fn(3, 2, |i, j| (i as f64 + 1.0) * (j as f64 - 0.5));
        let b = Mat::from_fn(4, 5, |i, j| ((i * 5 + j) as f64).sin());
        let x: Vec<f64> = (0..10).map(|i| (i as f64).cos()).collect();
        let k = kron(a.as_ref(), b.as_ref());
        let mut out = vec![0.0; 12];
        kron_apply(a.as_ref(), b.as_ref(), &x, &mut Vec::new(), &mut out);
        for (i, o) in out.iter().enumerate() {
            let d: f64 = (0..10).map(|j| k[(i, j)] * x[j]).sum();
            assert!((o - d).abs() < 1e-12);
        }
    }
}
