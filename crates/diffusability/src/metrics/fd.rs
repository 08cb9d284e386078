//! Fréchet distance between two Gaussians fitted to feature sets (FID, iFID, FD-DINOv2, ...).
//!
//! Inputs are feature arrays `(N, F)` or statistics files with keys `mu` `(F,)` and `sigma` `(F, F)`
//! (the format pytorch-fid, clean-fid and the ADM evaluator write). Statistics are computed in f64:
//! the mean first, then the unbiased covariance of the centred features in GEMM blocks. The distance
//! uses the symmetric eigen form (metrics.md section 8), which needs no complex square root and does
//! not fail on singular covariances as `scipy.linalg.sqrtm(S1 @ S2)` can.
//!
//! Every result is identical for any thread count: GEMMs are split into fixed column tiles whose
//! summation order does not depend on the thread count, and eigendecompositions run sequentially.

use crate::error::{Error, Result};
use crate::io::{ArrayData, RawArray, read_array, write_npz};
use crate::par::{self, Threads};
use faer::{Accum, Mat, MatMut, MatRef, Par};
use half::{bf16, f16};
use rayon::prelude::*;
use serde::Serialize;
use std::path::Path;

/// A Gaussian fitted to features: mean `mu` (F values) and covariance `sigma` (F x F, row-major,
/// symmetric), with the number of vectors it came from when known.
#[derive(Clone, Debug, PartialEq)]
pub struct Gaussian {
    pub mu: Vec<f64>,
    pub sigma: Vec<f64>,
    /// Feature vectors behind the statistics; `None` for a statistics file.
    pub n: Option<usize>,
}

impl Gaussian {
    /// The feature dimension F.
    pub fn dim(&self) -> usize {
        self.mu.len()
    }

    /// The statistics as the arrays of a statistics file: `mu` `(F,)` and `sigma` `(F, F)`, f64.
    pub fn to_arrays(&self) -> (RawArray, RawArray) {
        let f = self.dim();
        (
            RawArray::f64(vec![f], self.mu.clone()),
            RawArray::f64(vec![f, f], self.sigma.clone()),
        )
    }
}

/// Element values of a feature array, in their stored dtype (converted to f64 block by block).
#[derive(Clone, Copy, Debug)]
pub enum Values<'a> {
    F16(&'a [f16]),
    BF16(&'a [bf16]),
    F32(&'a [f32]),
    F64(&'a [f64]),
}

/// A row-major `(n, f)` feature array.
#[derive(Clone, Copy, Debug)]
pub struct Features<'a> {
    pub values: Values<'a>,
    pub n: usize,
    pub f: usize,
}

impl<'a> Features<'a> {
    /// A view of a `(N, F)` floating-point array read from `path` (named in errors).
    pub fn of(a: &'a RawArray, path: &str) -> Result<Features<'a>> {
        let [n, f] = a.shape[..] else {
            return Err(Error::input(
                path,
                None,
                format!(
                    "expected features of shape (N, F) or a statistics file with keys `mu` and `sigma`, \
                     found one array of shape {}",
                    a.shape_str()
                ),
            ));
        };
        let values = match &a.data {
            ArrayData::F16(v) => Values::F16(v),
            ArrayData::BF16(v) => Values::BF16(v),
            ArrayData::F32(v) => Values::F32(v),
            ArrayData::F64(v) => Values::F64(v),
            other => {
                return Err(Error::input(
                    path,
                    None,
                    format!(
                        "expected floating-point features (f16, bf16, f32 or f64), found dtype {}",
                        other.dtype()
                    ),
                ));
            }
        };
        if f == 0 {
            return Err(Error::input(
                path,
                None,
                format!(
                    "expected at least one feature per vector, found shape {}",
                    a.shape_str()
                ),
            ));
        }
        if n < 2 {
            return Err(Error::input(
                path,
                None,
                format!(
                    "has {n} feature vector(s), expected at least 2 for an unbiased covariance (shape {})",
                    a.shape_str()
                ),
            ));
        }
        Ok(Features { values, n, f })
    }

    /// A view of f32 features (for callers that hold their own buffer).
    pub fn from_f32(values: &'a [f32], n: usize, f: usize) -> Features<'a> {
        assert_eq!(values.len(), n * f, "features: values do not fill (n, f)");
        Features {
            values: Values::F32(values),
            n,
            f,
        }
    }

    /// A view of f64 features.
    pub fn from_f64(values: &'a [f64], n: usize, f: usize) -> Features<'a> {
        assert_eq!(values.len(), n * f, "features: values do not fill (n, f)");
        Features {
            values: Values::F64(values),
            n,
            f,
        }
    }

    /// Row `i` as f64 into `out` (`f` values).
    fn row_into(&self, i: usize, out: &mut [f64]) {
        let r = i * self.f..(i + 1) * self.f;
        match self.values {
            Values::F16(v) => out.iter_mut().zip(&v[r]).for_each(|(o, x)| *o = x.to_f64()),
            Values::BF16(v) => out.iter_mut().zip(&v[r]).for_each(|(o, x)| *o = x.to_f64()),
            Values::F32(v) => out.iter_mut().zip(&v[r]).for_each(|(o, &x)| *o = x as f64),
            Values::F64(v) => out.copy_from_slice(&v[r]),
        }
    }
}

/// Rows per block of the statistics passes. Fixed, so results never depend on the thread count.
const ROW_BLOCK: usize = 512;
/// Output columns per GEMM task.
const COL_TILE: usize = 64;

/// The Gaussian of a feature set: the mean, then the unbiased (ddof = 1) covariance
/// `sum_i (x_i - mu)(x_i - mu)^T / (N - 1)` of the centred features, accumulated in f64 as
/// `Xc_b^T Xc_b` over blocks of 512 rows (the upper triangle only, in parallel column tiles, then
/// mirrored). As `numpy.cov(x, rowvar=False)`. `path` names the features in errors (a non-finite value).
///
/// Needs `N >= 2` (checked by [`Features::of`]). Cost `N F^2` flops, memory `F^2` f64 plus one block.
/// Runs on the current rayon pool (wrap in [`Threads::install`]).
pub fn gaussian(x: &Features<'_>, path: &str) -> Result<Gaussian> {
    let (n, f) = (x.n, x.f);
    if n < 2 {
        return Err(Error::input(
            path,
            None,
            format!("has {n} feature vector(s), expected at least 2 for an unbiased covariance"),
        ));
    }
    let sums = par::map_reduce(
        n,
        ROW_BLOCK,
        |r| {
            let mut row = vec![0.0; f];
            let mut s = vec![0.0; f];
            for i in r {
                x.row_into(i, &mut row);
                if let Some(j) = row.iter().position(|v| !v.is_finite()) {
                    return Err(Error::input(
                        path,
                        None,
                        format!(
                            "expected finite features, found {} in vector {i} at feature {j}",
                            row[j]
                        ),
                    ));
                }
                s.iter_mut().zip(&row).for_each(|(a, b)| *a += b);
            }
            Ok(s)
        },
        |a, b| {
            let (mut a, b) = (a?, b?);
            a.iter_mut().zip(&b).for_each(|(x, y)| *x += y);
            Ok(a)
        },
    )
    .unwrap_or_else(|| Ok(vec![0.0; f]))?;
    let mu: Vec<f64> = sums.iter().map(|s| s / n as f64).collect();

    let mut c = Mat::<f64>::zeros(f, f);
    let mut buf = vec![0.0; ROW_BLOCK.min(n) * f];
    for block in par::chunks(n, ROW_BLOCK) {
        let b = block.len();
        buf[..b * f]
            .par_chunks_mut(f)
            .enumerate()
            .for_each(|(k, row)| {
                x.row_into(block.start + k, row);
                row.iter_mut().zip(&mu).for_each(|(v, m)| *v -= m);
            });
        let xc = MatRef::from_row_major_slice(&buf[..b * f], b, f);
        upper_product(c.as_mut(), xc.transpose(), xc, Accum::Add);
    }
    mirror_upper(c.as_mut());
    let scale = 1.0 / (n as f64 - 1.0);
    let sigma = row_major(c.as_ref(), scale);
    Ok(Gaussian {
        mu,
        sigma,
        n: Some(n),
    })
}

/// `dst[0..j1, tile] (+)= lhs[0..j1, :] rhs[:, tile]` for every column tile ending at `j1`: the upper
/// triangle (and the diagonal tiles whole) of a product known to be symmetric. Each tile is one
/// sequential GEMM, so the summation order of every entry is fixed whatever the thread count.
fn upper_product(dst: MatMut<'_, f64>, lhs: MatRef<'_, f64>, rhs: MatRef<'_, f64>, accum: Accum) {
    dst.par_col_chunks_mut(COL_TILE)
        .enumerate()
        .for_each(|(t, tile)| {
            let (j0, w) = (t * COL_TILE, tile.ncols());
            faer::linalg::matmul::matmul(
                tile.subrows_mut(0, j0 + w),
                accum,
                lhs.subrows(0, j0 + w),
                rhs.subcols(j0, w),
                1.0,
                Par::Seq,
            );
        });
}

/// `dst = lhs rhs` in column tiles, one sequential GEMM each (thread-count independent).
fn product(dst: MatMut<'_, f64>, lhs: MatRef<'_, f64>, rhs: MatRef<'_, f64>) {
    dst.par_col_chunks_mut(COL_TILE)
        .enumerate()
        .for_each(|(t, tile)| {
            let w = tile.ncols();
            faer::linalg::matmul::matmul(
                tile,
                Accum::Replace,
                lhs,
                rhs.subcols(t * COL_TILE, w),
                1.0,
                Par::Seq,
            );
        });
}

/// Copies the strict upper triangle onto the lower one.
fn mirror_upper(mut a: MatMut<'_, f64>) {
    for j in 0..a.ncols() {
        for i in j + 1..a.nrows() {
            a[(i, j)] = a[(j, i)];
        }
    }
}

fn row_major(a: MatRef<'_, f64>, scale: f64) -> Vec<f64> {
    let mut out = Vec::with_capacity(a.nrows() * a.ncols());
    for i in 0..a.nrows() {
        for j in 0..a.ncols() {
            out.push(a[(i, j)] * scale);
        }
    }
    out
}

/// Eigenvalues (ascending) and, if asked, eigenvectors (columns) of a symmetric matrix, whose lower
/// triangle is read. Sequential: faer's parallel eigensolver gives last-bit differences between
/// thread counts, and reports must not depend on `--threads`.
fn sym_eigen(a: MatRef<'_, f64>, vectors: bool) -> Result<(Vec<f64>, Option<Mat<f64>>)> {
    use faer::diag::Diag;
    use faer::dyn_stack::{MemBuffer, MemStack};
    use faer::linalg::evd;
    let n = a.nrows();
    let mut s = Diag::<f64>::zeros(n);
    let mut u = vectors.then(|| Mat::<f64>::zeros(n, n));
    let which = if vectors {
        evd::ComputeEigenvectors::Yes
    } else {
        evd::ComputeEigenvectors::No
    };
    let mut mem = MemBuffer::new(evd::self_adjoint_evd_scratch::<f64>(
        n,
        which,
        Par::Seq,
        Default::default(),
    ));
    evd::self_adjoint_evd(
        a,
        s.as_mut(),
        u.as_mut().map(|u| u.as_mut()),
        Par::Seq,
        MemStack::new(&mut mem),
        Default::default(),
    )
    .map_err(|e| {
        Error::internal(format!(
            "fd: the symmetric eigensolver did not converge on a {n} x {n} matrix ({e:?})"
        ))
    })?;
    let mut vals: Vec<f64> = s.column_vector().iter().copied().collect();
    // faer returns them ascending; sort anyway, with the eigenvectors, so that callers can rely on it.
    if vals.windows(2).any(|w| w[0] > w[1]) {
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&i, &j| vals[i].total_cmp(&vals[j]));
        vals = order.iter().map(|&i| vals[i]).collect();
        u = u.map(|u| Mat::from_fn(n, n, |i, j| u[(i, order[j])]));
    }
    Ok((vals, u))
}

/// The Fréchet distance and how it was reached.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Fd {
    /// The distance (serialized once, by the report that holds these terms).
    #[serde(skip)]
    pub fd: f64,
    /// `||mu_a - mu_b||^2`.
    pub mean_term: f64,
    pub trace_a: f64,
    pub trace_b: f64,
    /// `sum_i sqrt(l_i)` over the eigenvalues `l_i > 0` of `sqrt(S_a) S_b sqrt(S_a)`.
    pub trace_sqrt: f64,
    /// Smallest eigenvalue of each covariance (slightly negative values are rounding).
    pub min_eig_a: f64,
    pub min_eig_b: f64,
    /// Smallest eigenvalue of `sqrt(S_a) S_b sqrt(S_a)` on the range of `S_a` (None when `S_a = 0`).
    pub min_eig_product: Option<f64>,
    /// Numerical ranks of `S_a` and of the product: eigenvalues above the rounding level.
    pub rank_a: usize,
    pub rank_product: usize,
    /// Eigenvalue mass clipped to 0: `sum |l|` over the eigenvalues of `S_a` (before its square
    /// root) and of the product (before theirs) at or below the rounding level, negatives included.
    pub clipped_a: f64,
    pub clipped_product: f64,
    /// Inputs that are not positive semi-definite beyond rounding (for warnings).
    #[serde(skip)]
    pub not_psd: Vec<String>,
}

/// The rounding level of the eigenvalues of an `n x n` symmetric matrix: `n eps max|l|`
/// (numpy.linalg.matrix_rank's default tolerance). Eigenvalues at or below it are numerically 0:
/// the eigensolver's backward error is of this size, and the square roots of such values (up to
/// `1e-8 sqrt(max|l|)` each, thousands of them when N < F) would otherwise bias the trace term.
fn rounding_level(vals: &[f64], n: usize) -> f64 {
    vals.iter().fold(0.0f64, |m, v| m.max(v.abs())) * n as f64 * f64::EPSILON
}

/// `FD = ||mu_a - mu_b||^2 + tr S_a + tr S_b - 2 sum_i sqrt(l_i)` where `l_i` are the eigenvalues of
/// `sqrt(S_a) S_b sqrt(S_a)`, clipped at 0 (metrics.md section 8; the same value as pytorch-fid's
/// `calculate_frechet_distance` (mseitzer/pytorch-fid: `src/pytorch_fid/fid_score.py`), which takes
/// `tr sqrtm(S_a S_b)`, because `S_a S_b` and `sqrt(S_a) S_b sqrt(S_a)` are similar).
///
/// Route: `S_a = V diag(a) V^T` (eigh), `B = V_+ diag(sqrt a_+)` over the `r` eigenvalues above the
/// rounding level ([`rounding_level`]), then the eigenvalues of the `r x r` matrix `B^T S_b B` (the
/// product restricted to the numerical range of `S_a`; the rest of its spectrum is 0), of which those
/// above their rounding level enter the sum. Clipping at the rounding level rather than at exactly 0
/// changes nothing for well-conditioned covariances and makes singular ones (N <= F, zero variances)
/// agree with exact routes to ~1e-12 instead of ~1e-8. Traces come from the diagonals. All f64.
/// Degenerate cases: `S_a = 0` gives `trace_sqrt = 0`. Cost: one eigh and two eigvalsh of F x F
/// (sequential), `2 F^2 r + F r^2` GEMM flops (parallel). Runs on the current rayon pool.
pub fn frechet_distance(a: &Gaussian, b: &Gaussian) -> Result<Fd> {
    let f = a.dim();
    if b.dim() != f || a.sigma.len() != f * f || b.sigma.len() != f * f {
        return Err(Error::input_msg(format!(
            "fd: the two Gaussians have different dimensions ({} and {})",
            a.dim(),
            b.dim()
        )));
    }
    let mean_term: f64 = a.mu.iter().zip(&b.mu).map(|(x, y)| (x - y) * (x - y)).sum();
    let trace_a: f64 = (0..f).map(|i| a.sigma[i * f + i]).sum();
    let trace_b: f64 = (0..f).map(|i| b.sigma[i * f + i]).sum();
    // Symmetric, so the row-major buffer read column-major is the same matrix.
    let sa = MatRef::from_column_major_slice(&a.sigma, f, f);
    let sb = MatRef::from_column_major_slice(&b.sigma, f, f);

    let (ea, eb) = rayon::join(|| sym_eigen(sa, true), || sym_eigen(sb, false));
    let ((la, va), (lb, _)) = (ea?, eb?);
    let va = va.ok_or_else(|| Error::internal("fd: eigenvectors were not computed"))?;
    let (tol_a, tol_b) = (rounding_level(&la, f), rounding_level(&lb, f));
    let mut not_psd = Vec::new();
    let min_eig_a = la.first().copied().unwrap_or(0.0);
    let min_eig_b = lb.first().copied().unwrap_or(0.0);
    if min_eig_a < -tol_a {
        not_psd.push(format!("sigma of A (smallest eigenvalue {min_eig_a:e})"));
    }
    if min_eig_b < -tol_b {
        not_psd.push(format!("sigma of B (smallest eigenvalue {min_eig_b:e})"));
    }
    let clipped_a = la
        .iter()
        .filter(|&&l| l <= tol_a)
        .fold(0.0, |s, l| s + l.abs());
    let keep: Vec<usize> = (0..f).filter(|&i| la[i] > tol_a).collect();
    let r = keep.len();

    let (trace_sqrt, min_eig_product, rank_product, clipped_product) = if r == 0 {
        (0.0, None, 0, 0.0)
    } else {
        let bmat = Mat::from_fn(f, r, |i, k| va[(i, keep[k])] * la[keep[k]].sqrt());
        let mut t = Mat::<f64>::zeros(r, f);
        product(t.as_mut(), bmat.transpose(), sb);
        let mut m = Mat::<f64>::zeros(r, r);
        upper_product(m.as_mut(), t.as_ref(), bmat.as_ref(), Accum::Replace);
        mirror_upper(m.as_mut());
        let (lm, _) = sym_eigen(m.as_ref(), false)?;
        let tol = rounding_level(&lm, f);
        let sum = lm
            .iter()
            .filter(|&&l| l > tol)
            .fold(0.0, |s, l| s + l.sqrt());
        let rank = lm.iter().filter(|&&l| l > tol).count();
        let clipped = lm
            .iter()
            .filter(|&&l| l <= tol)
            .fold(0.0, |s, l| s + l.abs());
        let lo = lm.first().copied();
        if lo.is_some_and(|l| l < -tol) && not_psd.is_empty() {
            not_psd.push(format!(
                "sqrt(S_a) S_b sqrt(S_a) (smallest eigenvalue {:e})",
                lo.unwrap_or(0.0)
            ));
        }
        (sum, lo, rank, clipped)
    };
    Ok(Fd {
        fd: mean_term + trace_a + trace_b - 2.0 * trace_sqrt,
        mean_term,
        trace_a,
        trace_b,
        trace_sqrt,
        min_eig_a,
        min_eig_b,
        min_eig_product,
        rank_a: r,
        rank_product,
        clipped_a,
        clipped_product,
        not_psd,
    })
}

/// What one input of `fd` was.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InputKind {
    Features,
    Stats,
}

/// One input of `fd`, reduced to its Gaussian.
#[derive(Clone, Debug)]
pub struct Loaded {
    pub path: String,
    pub kind: InputKind,
    pub gaussian: Gaussian,
    pub warnings: Vec<String>,
}

/// Reads a feature array `(N, F)` (`.npy`, or a `.npz`/`.safetensors` holding one array) or a
/// statistics file (`.npz`/`.safetensors` with `mu` `(F,)` and `sigma` `(F, F)`; other keys, such as
/// the ADM evaluator's `mu_s`, are ignored) and returns its Gaussian. Features are reduced with
/// [`gaussian`] on the current rayon pool.
pub fn load(path: &str) -> Result<Loaded> {
    match read_array(path, None) {
        Ok(a) => features(&a, path),
        Err(e) if e.kind == crate::ErrorKind::NotFound || is_npy(path) => Err(e),
        // Several arrays (or none to pick): a statistics file; reading its keys gives the errors.
        Err(_) => load_stats(path),
    }
}

/// The Gaussian of a feature array `(N, F)` already read (`path` names it in messages), with the
/// warning for a singular covariance (`N <= F`). Reduced with [`gaussian`] on the current rayon pool.
pub fn features(a: &RawArray, path: &str) -> Result<Loaded> {
    let x = Features::of(a, path)?;
    let mut warnings = Vec::new();
    if x.n <= x.f {
        warnings.push(format!(
            "{path}: {} feature vectors of dimension {}: the covariance is singular (rank at most {}); \
             the distance is still exact for these statistics, but use N > F vectors (e.g. 10000 or \
             50000 for F = 2048) for a meaningful estimate",
            x.n,
            x.f,
            x.n - 1
        ));
    }
    Ok(Loaded {
        path: path.to_string(),
        kind: InputKind::Features,
        gaussian: gaussian(&x, path)?,
        warnings,
    })
}

fn is_npy(path: &str) -> bool {
    Path::new(path)
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("npy"))
}

/// Numbers of a floating-point array as f64 (`what` names the key in errors).
fn floats(a: &RawArray, path: &str, key: &str) -> Result<Vec<f64>> {
    let v: Vec<f64> = match &a.data {
        ArrayData::F16(v) => v.iter().map(|x| x.to_f64()).collect(),
        ArrayData::BF16(v) => v.iter().map(|x| x.to_f64()).collect(),
        ArrayData::F32(v) => v.iter().map(|&x| x as f64).collect(),
        ArrayData::F64(v) => v.clone(),
        other => {
            return Err(Error::input(
                path,
                Some(key),
                format!(
                    "expected floating-point values (f16, bf16, f32 or f64), found dtype {}",
                    other.dtype()
                ),
            ));
        }
    };
    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
        return Err(Error::input(
            path,
            Some(key),
            format!("expected finite values, found {} at flat index {i}", v[i]),
        ));
    }
    Ok(v)
}

fn load_stats(path: &str) -> Result<Loaded> {
    let mu_a = read_array(path, Some("mu"))?;
    let sigma_a = read_array(path, Some("sigma"))?;
    if mu_a.shape.iter().filter(|&&d| d > 1).count() > 1 || mu_a.shape.is_empty() {
        return Err(Error::input(
            path,
            Some("mu"),
            format!(
                "expected a vector of shape (F,), found {}",
                mu_a.shape_str()
            ),
        ));
    }
    let mu = floats(&mu_a, path, "mu")?;
    let f = mu.len();
    if sigma_a.shape != [f, f] {
        return Err(Error::input(
            path,
            Some("sigma"),
            format!(
                "expected shape ({f}, {f}) to match `mu` of {f} values, found {}",
                sigma_a.shape_str()
            ),
        ));
    }
    if f == 0 {
        return Err(Error::input(
            path,
            Some("mu"),
            "expected at least one feature, found 0",
        ));
    }
    let mut sigma = floats(&sigma_a, path, "sigma")?;
    let mut warnings = Vec::new();
    // Files written by numpy are exactly symmetric; anything else is made symmetric, and said so
    // when the difference is beyond rounding.
    let (mut asym, mut scale) = (0.0f64, 0.0f64);
    for i in 0..f {
        for j in 0..f {
            asym = asym.max((sigma[i * f + j] - sigma[j * f + i]).abs());
            scale = scale.max(sigma[i * f + j].abs());
        }
    }
    if asym > 0.0 {
        for i in 0..f {
            for j in i + 1..f {
                let m = 0.5 * (sigma[i * f + j] + sigma[j * f + i]);
                sigma[i * f + j] = m;
                sigma[j * f + i] = m;
            }
        }
        if asym > 1e-10 * scale {
            warnings.push(format!(
                "{path}: key `sigma` is not symmetric (largest difference {asym:e} against entries up to \
                 {scale:e}); using (sigma + sigma^T) / 2"
            ));
        }
    }
    Ok(Loaded {
        path: path.to_string(),
        kind: InputKind::Stats,
        gaussian: Gaussian { mu, sigma, n: None },
        warnings,
    })
}

/// One side of the `fd` report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Side {
    pub path: String,
    pub kind: InputKind,
    /// Feature vectors (None for a statistics file).
    pub n: Option<usize>,
    /// Feature dimension.
    pub f: usize,
}

/// The result of `diffusability fd A B`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FdReport {
    pub fd: f64,
    pub a: Side,
    pub b: Side,
    #[serde(flatten)]
    pub terms: Fd,
    pub warnings: Vec<String>,
}

/// The Fréchet distance between two inputs, each a feature array or a statistics file (any mix):
/// reads both, checks that their feature dimensions agree, and computes [`frechet_distance`] with
/// diagnostics. Deterministic for any thread count.
pub fn fd_files(a_path: &str, b_path: &str, threads: Threads) -> Result<FdReport> {
    threads.install(|| compare(&load(a_path)?, &load(b_path)?))?
}

/// The report of two inputs already reduced to their Gaussians: checks that their feature
/// dimensions agree, and computes [`frechet_distance`] with diagnostics.
pub fn compare(a: &Loaded, b: &Loaded) -> Result<FdReport> {
    let (a_path, b_path) = (&a.path, &b.path);
    let (fa, fb) = (a.gaussian.dim(), b.gaussian.dim());
    if fa != fb {
        return Err(Error::input(
            b_path,
            None,
            format!("has features of dimension {fb}, expected {fa} (as in {a_path})"),
        ));
    }
    let terms = frechet_distance(&a.gaussian, &b.gaussian)?;
    let mut warnings: Vec<String> = a.warnings.iter().chain(&b.warnings).cloned().collect();
    for what in &terms.not_psd {
        warnings.push(format!(
            "fd: {what} is not positive semi-definite beyond rounding; its negative eigenvalues \
             were clipped to 0 (A = {a_path}, B = {b_path})"
        ));
    }
    let side = |l: &Loaded| Side {
        path: l.path.clone(),
        kind: l.kind,
        n: l.gaussian.n,
        f: l.gaussian.dim(),
    };
    Ok(FdReport {
        fd: terms.fd,
        a: side(a),
        b: side(b),
        terms,
        warnings,
    })
}

/// `fd --save-stats`: the Gaussian of a feature array written as a statistics file (`mu`, `sigma`,
/// f64, uncompressed `.npz` as `numpy.savez`). Returns the statistics and any warnings.
pub fn save_stats(features: &str, out: &Path, threads: Threads) -> Result<Loaded> {
    let loaded = threads.install(|| load(features))??;
    if loaded.kind != InputKind::Features {
        return Err(Error::input(
            features,
            None,
            "expected a feature array (N, F) to compute statistics from, found a statistics file (`mu`, `sigma`)",
        ));
    }
    let (mu, sigma) = loaded.gaussian.to_arrays();
    write_npz(out, &[("mu", &mu), ("sigma", &sigma)])?;
    Ok(loaded)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run<T: Send>(f: impl FnOnce() -> T + Send) -> T {
        Threads(2).install(f).unwrap()
    }

    #[test]
    fn covariance_matches_two_pass_definition() {
        let (n, f) = (1100, 5);
        let x: Vec<f64> = (0..n * f)
            .map(|i| ((i as f64) * 0.618).sin() * (1.0 + (i % f) as f64) + 3.0)
            .collect();
        let g = run(|| gaussian(&Features::from_f64(&x, n, f), "x")).unwrap();
        for j in 0..f {
            let m: f64 = (0..n).map(|i| x[i * f + j]).sum::<f64>() / n as f64;
            assert!((g.mu[j] - m).abs() < 1e-12);
            for k in 0..f {
                let mk: f64 = (0..n).map(|i| x[i * f + k]).sum::<f64>() / n as f64;
                let c: f64 = (0..n)
                    .map(|i| (x[i * f + j] - m) * (x[i * f + k] - mk))
                    .sum::<f64>()
                    / (n as f64 - 1.0);
                assert!((g.sigma[j * f + k] - c).abs() < 1e-12 * c.abs().max(1.0));
                assert_eq!(g.sigma[j * f + k], g.sigma[k * f + j]);
            }
        }
    }

    #[test]
    fn diagonal_closed_form() {
        // Commuting diagonal covariances: FD = sum (sqrt a - sqrt b)^2 + ||mu_a - mu_b||^2, including
        // zero variances (singular covariances).
        let a = [4.0, 0.0, 1.0, 9.0, 0.0];
        let b = [1.0, 2.0, 0.0, 9.0, 0.0];
        let diag = |v: &[f64]| {
            let f = v.len();
            let mut s = vec![0.0; f * f];
            for i in 0..f {
                s[i * f + i] = v[i];
            }
            s
        };
        let ga = Gaussian {
            mu: vec![1.0, 0.0, 0.0, 0.0, 2.0],
            sigma: diag(&a),
            n: None,
        };
        let gb = Gaussian {
            mu: vec![0.0; 5],
            sigma: diag(&b),
            n: None,
        };
        let want: f64 = a
            .iter()
            .zip(&b)
            .map(|(x, y): (&f64, &f64)| (x.sqrt() - y.sqrt()).powi(2))
            .sum::<f64>()
            + 5.0;
        let got = run(|| frechet_distance(&ga, &gb)).unwrap();
        assert!((got.fd - want).abs() < 1e-12, "{} vs {want}", got.fd);
        let back = run(|| frechet_distance(&gb, &ga)).unwrap();
        assert!((back.fd - want).abs() < 1e-12);
    }

    #[test]
    fn zero_covariance_is_mean_term_plus_trace() {
        let ga = Gaussian {
            mu: vec![0.0, 0.0],
            sigma: vec![0.0; 4],
            n: None,
        };
        let gb = Gaussian {
            mu: vec![3.0, 4.0],
            sigma: vec![2.0, 1.0, 1.0, 2.0],
            n: None,
        };
        let got = run(|| frechet_distance(&ga, &gb)).unwrap();
        assert_eq!(got.min_eig_product, None);
        assert!((got.fd - 29.0).abs() < 1e-12);
    }
}
