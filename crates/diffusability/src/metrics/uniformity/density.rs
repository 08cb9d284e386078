//! Density statistics of a 2-D embedding (metrics.md section 5, after hustvl/LightningDiT
//! `tools/latent_vis.py`): a Gaussian KDE evaluated at the embedded points themselves, then how even
//! those densities are (coefficient of variation, Gini coefficient, normalized entropy).

use super::vexp::{self, LANES, simd_kernel};
use crate::par;

/// Points per chunk of the KDE pass.
const ROWS: usize = 64;

/// Why the KDE is undefined.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum KdeError {
    /// Fewer than 3 points: the sample covariance of 2-D points is singular.
    TooFewPoints(usize),
    /// The points lie on a line (or coincide): the 2 x 2 covariance is singular (or its condition
    /// number exceeds 1e12).
    Singular { det: f64 },
}

simd_kernel! {
    /// `sum_i exp(-((ux_i - xj)^2 + (uy_i - yj)^2) / 2)`, in lanes merged in order.
    fn gauss_sum(ux: &[f64], uy: &[f64], xj: f64, yj: f64) -> f64 {
        let mut acc = [0.0; LANES];
        let mut cx = ux.chunks_exact(LANES);
        let mut cy = uy.chunks_exact(LANES);
        for (bx, by) in (&mut cx).zip(&mut cy) {
            for l in 0..LANES {
                let (dx, dy) = (bx[l] - xj, by[l] - yj);
                acc[l] += vexp::exp(-0.5 * (dx * dx + dy * dy));
            }
        }
        for (l, (px, py)) in cx.remainder().iter().zip(cy.remainder()).enumerate() {
            let (dx, dy) = (px - xj, py - yj);
            acc[l] += vexp::exp(-0.5 * (dx * dx + dy * dy));
        }
        vexp::merge(&acc)
    }
}

/// The KDE of `scipy.stats.gaussian_kde(Y.T)` evaluated at `Y.T`, for `y` the `n x 2` embedding
/// (row-major): `density_j = (1/n) sum_i N(y_j; y_i, H)` over ALL `i` (the point itself included),
/// `H = cov(Y, ddof=1) * f^2` with Scott's factor `f = n^(-1/(d+4)) = n^(-1/6)` (so `H = cov * n^(-1/3)`).
/// As scipy does, the points are whitened with the Cholesky factor `L f` of `H`, then
/// `density_j = (1/n) (2 pi)^-1 / prod(diag(L f)) sum_i exp(-|u_i - u_j|^2 / 2)`.
/// Cost `n^2` exponentials, memory `O(n)`; deterministic for any thread count.
pub fn kde_at_points(y: &[f64]) -> Result<Vec<f64>, KdeError> {
    let n = y.len() / 2;
    if n < 3 {
        return Err(KdeError::TooFewPoints(n));
    }
    let nf = n as f64;
    let (mut mx, mut my) = (0.0, 0.0);
    for i in 0..n {
        mx += y[2 * i];
        my += y[2 * i + 1];
    }
    mx /= nf;
    my /= nf;
    let (mut sxx, mut sxy, mut syy) = (0.0, 0.0, 0.0);
    for i in 0..n {
        let (dx, dy) = (y[2 * i] - mx, y[2 * i + 1] - my);
        sxx += dx * dx;
        sxy += dx * dy;
        syy += dy * dy;
    }
    let (sxx, sxy, syy) = (sxx / (nf - 1.0), sxy / (nf - 1.0), syy / (nf - 1.0));
    // Cholesky of the data covariance: [[a, 0], [b, c]].
    let det = sxx * syy - sxy * sxy;
    let a = sxx.sqrt();
    let b = sxy / a;
    let c2 = syy - b * b;
    // Near-singular counts as singular (condition number above 1e12), where scipy's Cholesky would
    // succeed or fail on rounding alone.
    if !(sxx > 0.0
        && c2 > 1e-12 * syy
        && det > 1e-12 * sxx * syy
        && a.is_finite()
        && c2.is_finite())
    {
        return Err(KdeError::Singular { det });
    }
    let f = nf.powf(-1.0 / 6.0);
    let (a, b, c) = (a * f, b * f, c2.sqrt() * f);
    let norm = 1.0 / (2.0 * std::f64::consts::PI) / a / c;
    let (ux, uy): (Vec<f64>, Vec<f64>) = (0..n)
        .map(|i| {
            let u0 = y[2 * i] / a;
            (u0, (y[2 * i + 1] - b * u0) / c)
        })
        .unzip();
    let w = 1.0 / nf;
    let dens = par::map_reduce(
        n,
        ROWS,
        |rows| {
            rows.map(|j| gauss_sum(&ux, &uy, ux[j], uy[j]) * norm * w)
                .collect::<Vec<f64>>()
        },
        |mut a, b| {
            a.extend(b);
            a
        },
    )
    .unwrap_or_default();
    Ok(dens)
}

/// How uneven a set of densities is.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Uniformity {
    /// `std(d, ddof=0) / mean(d)`.
    pub cv: f64,
    /// `sum_{i=1..n} (2i - n - 1) d_(i) / (n sum d)`, `d` sorted ascending.
    pub gini: f64,
    /// `-sum p log2(p + 1e-10) / log2 n`, `p = d / sum d`.
    pub entropy: f64,
}

/// The three statistics of metrics.md section 5 from the densities (`n >= 2`, positive).
pub fn uniformity(d: &[f64]) -> Uniformity {
    let n = d.len() as f64;
    let sum: f64 = d.iter().sum();
    let mean = sum / n;
    let var = d.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
    let mut sorted = d.to_vec();
    sorted.sort_by(f64::total_cmp);
    let g: f64 = sorted
        .iter()
        .enumerate()
        .map(|(i, v)| (2.0 * (i + 1) as f64 - n - 1.0) * v)
        .sum();
    let h: f64 = d
        .iter()
        .map(|v| {
            let p = v / sum;
            p * (p + 1e-10).log2()
        })
        .sum();
    Uniformity {
        cv: var.sqrt() / mean,
        gini: g / (n * sum),
        entropy: -h / n.log2(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The KDE written out with `f64::exp` and the inverse bandwidth matrix, without whitening.
    #[test]
    fn kde_equals_the_direct_formula() {
        let n = 200;
        let y: Vec<f64> = (0..n)
            .flat_map(|i| {
                let t = i as f64;
                [
                    (t * 0.37).sin() * 3.0 + 0.1 * t.cos(),
                    (t * 0.37).sin() + (t * 1.7).cos(),
                ]
            })
            .collect();
        let dens = kde_at_points(&y).unwrap();
        let nf = n as f64;
        let m = |c: usize| (0..n).map(|i| y[2 * i + c]).sum::<f64>() / nf;
        let (mx, my) = (m(0), m(1));
        let cov = |a: usize, ma: f64, b: usize, mb: f64| {
            (0..n)
                .map(|i| (y[2 * i + a] - ma) * (y[2 * i + b] - mb))
                .sum::<f64>()
                / (nf - 1.0)
        };
        let f2 = nf.powf(-1.0 / 3.0);
        let (h00, h01, h11) = (
            cov(0, mx, 0, mx) * f2,
            cov(0, mx, 1, my) * f2,
            cov(1, my, 1, my) * f2,
        );
        let det = h00 * h11 - h01 * h01;
        let (i00, i01, i11) = (h11 / det, -h01 / det, h00 / det);
        for j in [0, 57, 199] {
            let mut s = 0.0;
            for i in 0..n {
                let (dx, dy) = (y[2 * j] - y[2 * i], y[2 * j + 1] - y[2 * i + 1]);
                s += (-0.5 * (dx * dx * i00 + 2.0 * dx * dy * i01 + dy * dy * i11)).exp();
            }
            let want = s / nf / (2.0 * std::f64::consts::PI * det.sqrt());
            assert!(
                (dens[j] - want).abs() < 1e-12 * want,
                "{} vs {want}",
                dens[j]
            );
        }
    }

    #[test]
    fn statistics_of_even_and_uneven_densities() {
        let even = uniformity(&[2.0; 100]);
        assert!(even.cv.abs() < 1e-15 && even.gini.abs() < 1e-15);
        // p = 1/n each: entropy = -log2(1/n + 1e-10) / log2(n), just under 1.
        let want = -(0.01f64 + 1e-10).log2() / 100f64.log2();
        assert!((even.entropy - want).abs() < 1e-14);
        let mut one = vec![0.0; 10];
        one[3] = 1.0;
        let u = uniformity(&one);
        assert!((u.gini - 0.9).abs() < 1e-15); // (n - 1) / n
        assert!((u.cv - 3.0).abs() < 1e-12); // sqrt(n - 1)
        assert!(u.entropy.abs() < 1e-9);
    }

    #[test]
    fn degenerate_embeddings_are_reported() {
        assert_eq!(
            kde_at_points(&[0.0, 1.0, 2.0, 3.0]),
            Err(KdeError::TooFewPoints(2))
        );
        let line: Vec<f64> = (0..10).flat_map(|i| [i as f64, 2.0 * i as f64]).collect();
        assert!(matches!(
            kde_at_points(&line),
            Err(KdeError::Singular { .. })
        ));
    }
}
