//! The initial embedding (the second stage): the first two principal components, rescaled so that the
//! first has standard deviation `1e-4`, as scikit-learn (`init="pca"`) and openTSNE
//! (`initialization.rescale`) do. Deterministic: the exact `d x d` covariance eigendecomposition, with
//! each component's sign fixed so that its largest loading is positive (scikit-learn's `svd_flip`).

use super::affinity::Points;
use faer::diag::Diag;
use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::evd;
use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatRef, Par};

/// Why no initial embedding exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitError {
    /// All points are identical: there is no direction of variance.
    NoVariance,
    /// The covariance eigendecomposition did not converge.
    Eigen,
}

/// PCA initialization of `x` (`n x d`, `d >= 1`) into `n x 2` (row-major): scores on the two leading
/// principal axes times `target_std / std(scores[:, 0])` (population std). With `d = 1` the second
/// column is 0 apart from `second`, which the caller fills (e.g. seeded noise of the same scale).
/// Cost `O(n d^2 + d^3)`.
pub fn pca(x: Points<'_>, target_std: f64, second: Option<&[f64]>) -> Result<Vec<f64>, InitError> {
    let (n, d) = (x.n, x.d);
    let mut mean = vec![0.0; d];
    for i in 0..n {
        for (m, v) in mean.iter_mut().zip(x.row(i)) {
            *m += v;
        }
    }
    for m in &mut mean {
        *m /= n as f64;
    }
    let mut centred = vec![0.0; n * d];
    for i in 0..n {
        for ((c, v), m) in centred[i * d..(i + 1) * d]
            .iter_mut()
            .zip(x.row(i))
            .zip(&mean)
        {
            *c = v - m;
        }
    }
    let xc = MatRef::from_row_major_slice(&centred, n, d);
    let mut cov = Mat::<f64>::zeros(d, d);
    matmul(
        cov.as_mut(),
        Accum::Replace,
        xc.transpose(),
        xc,
        1.0,
        Par::Seq,
    );

    let mut s = Diag::<f64>::zeros(d);
    let mut u = Mat::<f64>::zeros(d, d);
    let mut mem = MemBuffer::new(evd::self_adjoint_evd_scratch::<f64>(
        d,
        evd::ComputeEigenvectors::Yes,
        Par::Seq,
        Default::default(),
    ));
    evd::self_adjoint_evd(
        cov.as_ref(),
        s.as_mut(),
        Some(u.as_mut()),
        Par::Seq,
        MemStack::new(&mut mem),
        Default::default(),
    )
    .map_err(|_| InitError::Eigen)?;
    let vals: Vec<f64> = s.column_vector().iter().copied().collect();
    let mut order: Vec<usize> = (0..d).collect();
    order.sort_by(|&a, &b| vals[b].total_cmp(&vals[a]).then(a.cmp(&b)));

    let mut y = vec![0.0; 2 * n];
    for (col, &e) in order.iter().take(2).enumerate() {
        let mut v: Vec<f64> = (0..d).map(|r| u[(r, e)]).collect();
        let lead = v
            .iter()
            .copied()
            .fold(0.0f64, |m, a| if a.abs() > m.abs() { a } else { m });
        if lead < 0.0 {
            v.iter_mut().for_each(|a| *a = -*a);
        }
        for i in 0..n {
            y[2 * i + col] = centred[i * d..(i + 1) * d]
                .iter()
                .zip(&v)
                .map(|(a, b)| a * b)
                .sum();
        }
    }
    let m0 = (0..n).map(|i| y[2 * i]).sum::<f64>() / n as f64;
    let sd0 = ((0..n).map(|i| (y[2 * i] - m0).powi(2)).sum::<f64>() / n as f64).sqrt();
    if !sd0.is_finite() || sd0 <= 0.0 {
        return Err(InitError::NoVariance);
    }
    let k = target_std / sd0;
    y.iter_mut().for_each(|v| *v *= k);
    if d == 1
        && let Some(second) = second
    {
        for i in 0..n {
            y[2 * i + 1] = second[i];
        }
    }
    Ok(y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_the_principal_plane_with_the_target_scale() {
        // Points spread 10:3:0.1 along three orthogonal axes rotated in 4-D.
        let n = 400;
        let axes = [
            [0.5, 0.5, 0.5, 0.5],
            [0.5, -0.5, 0.5, -0.5],
            [0.5, 0.5, -0.5, -0.5],
        ];
        let scales = [10.0, 3.0, 0.1];
        let mut data = vec![0.0; n * 4];
        for i in 0..n {
            let t = i as f64;
            let coef = [(t * 0.7).sin(), (t * 1.3).cos(), (t * 2.9).sin()];
            for a in 0..3 {
                for c in 0..4 {
                    data[i * 4 + c] += scales[a] * coef[a] * axes[a][c] + 1.0;
                }
            }
        }
        let y = pca(Points::new(&data, n, 4), 1e-4, None).unwrap();
        let col = |c: usize| -> Vec<f64> { (0..n).map(|i| y[2 * i + c]).collect() };
        let (y0, y1) = (col(0), col(1));
        let sd = |v: &[f64]| {
            let m = v.iter().sum::<f64>() / v.len() as f64;
            (v.iter().map(|a| (a - m).powi(2)).sum::<f64>() / v.len() as f64).sqrt()
        };
        assert!((sd(&y0) - 1e-4).abs() < 1e-16);
        assert!(sd(&y1) < sd(&y0));
        // The first score is the first axis' coefficient, up to scale.
        let c0: Vec<f64> = (0..n).map(|i| (i as f64 * 0.7).sin()).collect();
        let dot: f64 = y0.iter().zip(&c0).map(|(a, b)| a * b).sum();
        let corr = dot
            / (y0.iter().map(|a| a * a).sum::<f64>().sqrt()
                * c0.iter().map(|a| a * a).sum::<f64>().sqrt());
        assert!(corr.abs() > 0.99, "{corr}");
        let same = vec![1.0; 30];
        assert_eq!(
            pca(Points::new(&same, 10, 3), 1e-4, None),
            Err(InitError::NoVariance)
        );
    }
}
