//! The two covariance factors of the synthetic model and their square roots: a channel covariance
//! `Sigma_C = Q diag(lc) Q^T` with a power-law spectrum in a random basis, and a spatial covariance
//! `Sigma_S` from a squared-exponential kernel on the token grid.
//!
//! Every factorization runs sequentially (`Par::Seq`), so the factors are bit-identical whatever rayon
//! pool the caller runs in.

use crate::error::{Error, Result};
use faer::diag::Diag;
use faer::dyn_stack::{MemBuffer, MemStack};
use faer::{Mat, Par};
use rand::Rng;
use rand_distr::StandardNormal;

/// Diagonal jitter added to the squared-exponential kernel (whose diagonal is 1) before normalization.
///
/// The kernel on a grid is numerically singular for correlation lengths above about 1.5 tokens (its
/// eigenvalues fall to 1e-15 and below, some computed negative); `1e-6` keeps `Sigma_S` positive
/// definite with a margin far above the rounding error of the kernel's eigenvalues (about
/// `S * 2e-16 * ||K||`, below `4e-9` for the largest allowed grid of 4096 tokens).
pub const SPATIAL_JITTER: f64 = 1e-6;

/// Channel eigenvalues `lc_i ∝ (i+1)^(-anisotropy)`, `i = 0..c`, scaled to mean 1 (so `tr Sigma_C = C`),
/// in descending order. `anisotropy = 0` gives all ones.
pub fn channel_spectrum(c: usize, anisotropy: f64) -> Vec<f64> {
    let raw: Vec<f64> = (0..c).map(|i| ((i + 1) as f64).powf(-anisotropy)).collect();
    let mean = raw.iter().sum::<f64>() / c as f64;
    raw.into_iter().map(|v| v / mean).collect()
}

/// A Haar-distributed random orthogonal `c x c` matrix: Gram-Schmidt of a standard normal matrix, which
/// is its QR factorization with a positive diagonal in `R` (Mezzadri 2007, "How to generate random
/// matrices from the classical compact groups"). Written out rather than taken from faer's QR because
/// that one picks faer's global parallelism and returns `R` with arbitrary signs; orthogonalizing twice
/// ("twice is enough", Giraud et al. 2005) keeps `Q^T Q = I` to rounding.
pub fn random_orthogonal(c: usize, rng: &mut impl Rng) -> Result<Mat<f64>> {
    let mut q = Mat::<f64>::zeros(c, c);
    for j in 0..c {
        for i in 0..c {
            q[(i, j)] = rng.sample(StandardNormal);
        }
    }
    for j in 0..c {
        for _ in 0..2 {
            for p in 0..j {
                let dot: f64 = (0..c).map(|i| q[(i, p)] * q[(i, j)]).sum();
                for i in 0..c {
                    q[(i, j)] -= dot * q[(i, p)];
                }
            }
        }
        let norm = (0..c).map(|i| q[(i, j)] * q[(i, j)]).sum::<f64>().sqrt();
        // A Gaussian matrix is singular with probability zero; this guards the impossible case.
        if norm.is_nan() || norm <= 1e-12 {
            return Err(Error::internal(
                "synth: the random channel basis is degenerate; try another seed",
            ));
        }
        for i in 0..c {
            q[(i, j)] /= norm;
        }
    }
    Ok(q)
}

/// `Sigma_C = Q diag(lc) Q^T` (exactly symmetric) and its square root `A_C = Q diag(sqrt(lc))`
/// (`A_C A_C^T = Sigma_C`). The square root comes from the construction rather than a Cholesky
/// factorization, so it is exact and exists for any anisotropy, even when tiny eigenvalues make
/// `Sigma_C` numerically singular; any factor with `A A^T = Sigma_C` gives the same distribution.
pub fn channel_factors(q: &Mat<f64>, lc: &[f64]) -> (Mat<f64>, Mat<f64>) {
    let c = lc.len();
    let mut sigma = Mat::<f64>::zeros(c, c);
    for i in 0..c {
        for j in 0..=i {
            let v: f64 = (0..c).map(|p| q[(i, p)] * lc[p] * q[(j, p)]).sum();
            sigma[(i, j)] = v;
            sigma[(j, i)] = v;
        }
    }
    let root = Mat::from_fn(c, c, |i, p| q[(i, p)] * lc[p].sqrt());
    (sigma, root)
}

/// The spatial covariance on the `h x w` token grid (token index `y*w + x`):
/// `Sigma_S[p, q] = within^2 * (exp(-d(p,q)^2 / (2 corr_len^2)) + jitter * [p = q]) / (1 + jitter)` with
/// `d` the Euclidean distance in tokens and `jitter` = [`SPATIAL_JITTER`], so `tr(Sigma_S) / S = within^2`.
/// `corr_len = 0` gives exactly `within^2 * I` (white noise, no jitter). Cost `O(S^2)`.
pub fn spatial_covariance(h: usize, w: usize, corr_len: f64, within_scale: f64) -> Mat<f64> {
    let s = h * w;
    let var = within_scale * within_scale;
    if corr_len == 0.0 {
        return Mat::from_fn(s, s, |p, q| if p == q { var } else { 0.0 });
    }
    let inv = 1.0 / (2.0 * corr_len * corr_len);
    let scale = var / (1.0 + SPATIAL_JITTER);
    Mat::from_fn(s, s, |p, q| {
        if p == q {
            // Set apart so that a tiny corr_len (inv = inf) gives 1, not 0 * inf.
            return scale * (1.0 + SPATIAL_JITTER);
        }
        let dy = (p / w).abs_diff(q / w) as f64;
        let dx = (p % w).abs_diff(q % w) as f64;
        scale * (-(dy * dy + dx * dx) * inv).exp()
    })
}

/// The lower Cholesky factor `L` (`L L^T = a`) of a symmetric positive definite matrix, computed
/// sequentially; `None` if `a` is not numerically positive definite. Cost `n^3 / 3`.
pub fn cholesky_lower(a: &Mat<f64>) -> Option<Mat<f64>> {
    use faer::linalg::cholesky::llt::factor;
    let n = a.nrows();
    let mut l = a.clone();
    let mut mem = MemBuffer::new(factor::cholesky_in_place_scratch::<f64>(
        n,
        Par::Seq,
        Default::default(),
    ));
    factor::cholesky_in_place(
        l.as_mut(),
        Default::default(),
        Par::Seq,
        MemStack::new(&mut mem),
        Default::default(),
    )
    .ok()?;
    for j in 0..n {
        for i in 0..j {
            l[(i, j)] = 0.0;
        }
    }
    Some(l)
}

/// The eigenvalues of a symmetric matrix (its lower triangle is read), in descending order, computed
/// sequentially. Cost about `4 n^3 / 3`.
pub fn sym_eigenvalues(a: &Mat<f64>) -> Result<Vec<f64>> {
    use faer::linalg::evd;
    let n = a.nrows();
    let mut s = Diag::<f64>::zeros(n);
    let mut mem = MemBuffer::new(evd::self_adjoint_evd_scratch::<f64>(
        n,
        evd::ComputeEigenvectors::No,
        Par::Seq,
        Default::default(),
    ));
    evd::self_adjoint_evd(
        a.as_ref(),
        s.as_mut(),
        None,
        Par::Seq,
        MemStack::new(&mut mem),
        Default::default(),
    )
    .map_err(|e| Error::internal(format!("synth: eigendecomposition failed: {e:?}")))?;
    let mut out: Vec<f64> = s.column_vector().iter().copied().collect();
    out.sort_by(|a, b| b.total_cmp(a));
    Ok(out)
}
