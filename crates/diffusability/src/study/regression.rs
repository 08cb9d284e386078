//! Ordinary least squares of the quality on a few metrics (the study's two-metric bubble charts):
//! coefficients, R^2, adjusted R^2 and leave-one-out R^2.

use faer::Mat;
use faer::prelude::SolveLstsq;

/// A fitted linear model `y = intercept + sum_j coef[j] x_j`.
#[derive(Clone, Debug, PartialEq)]
pub struct Ols {
    pub n: usize,
    pub intercept: f64,
    pub coef: Vec<f64>,
    /// `1 - SS_res / SS_tot`.
    pub r2: f64,
    /// `1 - (1 - R^2)(n - 1)/(n - p - 1)`.
    pub adj_r2: f64,
    /// `1 - PRESS / SS_tot`, PRESS the squared errors of predicting each row from the fit to the other
    /// `n - 1` (scikit-learn's `r2_score(y, cross_val_predict(LinearRegression(), X, y, cv=LeaveOneOut()))`);
    /// `None` when some leave-one-out fit is rank deficient.
    pub loo_r2: Option<f64>,
}

/// Why a model could not be fitted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OlsIssue {
    /// Fewer than `p + 2` rows: no residual degree of freedom for the adjusted R^2.
    TooFewRows { n: usize, need: usize },
    /// The quality is the same in every row: R^2 is undefined.
    ConstantTarget,
    /// A predictor is constant or a linear combination of the others.
    Collinear,
}

/// Relative size below which a pivot of the centred design's R factor counts as zero.
const RANK_TOL: f64 = 1e-10;

/// Least squares on rows `rows` of `(xs, y)`: the predictors and the target are centred first (the
/// intercept is then `mean(y) - sum_j b_j mean(x_j)`), which keeps the QR well conditioned when a metric
/// varies little around a large mean. `None` if the centred design is rank deficient. O(n p^2).
fn fit(xs: &[&[f64]], y: &[f64], rows: &[usize]) -> Option<(f64, Vec<f64>)> {
    let (m, p) = (rows.len(), xs.len());
    let mean = |v: &[f64]| rows.iter().map(|&i| v[i]).sum::<f64>() / m as f64;
    let xm: Vec<f64> = xs.iter().map(|x| mean(x)).collect();
    let ym = mean(y);
    let a = Mat::<f64>::from_fn(m, p, |i, j| xs[j][rows[i]] - xm[j]);
    let b = Mat::<f64>::from_fn(m, 1, |i, _| y[rows[i]] - ym);
    let qr = a.qr();
    let r = qr.thin_R();
    for j in 0..p {
        let norm = (0..m).map(|i| a[(i, j)] * a[(i, j)]).sum::<f64>().sqrt();
        if norm == 0.0 || r[(j, j)].abs() <= RANK_TOL * norm {
            return None;
        }
    }
    let sol = qr.solve_lstsq(&b);
    let coef: Vec<f64> = (0..p).map(|j| sol[(j, 0)]).collect();
    if coef.iter().any(|c| !c.is_finite()) {
        return None;
    }
    let intercept = ym - coef.iter().zip(&xm).map(|(c, m)| c * m).sum::<f64>();
    Some((intercept, coef))
}

fn predict(intercept: f64, coef: &[f64], xs: &[&[f64]], i: usize) -> f64 {
    intercept + coef.iter().zip(xs).map(|(c, x)| c * x[i]).sum::<f64>()
}

/// Fits `y ~ 1 + xs` by least squares. `xs` holds `p` predictor columns of length `n = y.len()`.
/// Needs `n >= p + 2`, a non-constant `y` and a full-rank design. O(n^2 p^2) with the n refits of the
/// leave-one-out R^2 (n is the number of tokenizers).
pub fn ols(xs: &[&[f64]], y: &[f64]) -> Result<Ols, OlsIssue> {
    let (n, p) = (y.len(), xs.len());
    if n < p + 2 {
        return Err(OlsIssue::TooFewRows { n, need: p + 2 });
    }
    let ym = y.iter().sum::<f64>() / n as f64;
    let ss_tot: f64 = y.iter().map(|v| (v - ym) * (v - ym)).sum();
    if ss_tot == 0.0 {
        return Err(OlsIssue::ConstantTarget);
    }
    let all: Vec<usize> = (0..n).collect();
    let (intercept, coef) = fit(xs, y, &all).ok_or(OlsIssue::Collinear)?;
    let ss_res: f64 = (0..n)
        .map(|i| (y[i] - predict(intercept, &coef, xs, i)).powi(2))
        .sum();
    let r2 = 1.0 - ss_res / ss_tot;
    let adj_r2 = 1.0 - (1.0 - r2) * (n - 1) as f64 / (n - p - 1) as f64;
    let mut press = 0.0;
    let mut loo_ok = true;
    for i in 0..n {
        let rest: Vec<usize> = (0..n).filter(|&k| k != i).collect();
        match fit(xs, y, &rest) {
            Some((b0, b)) => press += (y[i] - predict(b0, &b, xs, i)).powi(2),
            None => {
                loo_ok = false;
                break;
            }
        }
    }
    let loo_r2 = (loo_ok && press.is_finite()).then(|| 1.0 - press / ss_tot);
    Ok(Ols {
        n,
        intercept,
        coef,
        r2,
        adj_r2,
        loo_r2,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_plane_is_recovered() {
        let a = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0];
        let b = [1.0, 0.0, 3.0, 1.0, 4.0, 2.0];
        let y: Vec<f64> = (0..6).map(|i| 2.0 + 0.5 * a[i] - 3.0 * b[i]).collect();
        let f = ols(&[&a, &b], &y).unwrap();
        assert!((f.intercept - 2.0).abs() < 1e-12);
        assert!((f.coef[0] - 0.5).abs() < 1e-12 && (f.coef[1] + 3.0).abs() < 1e-12);
        assert!((f.r2 - 1.0).abs() < 1e-12);
        assert!((f.loo_r2.unwrap() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn degenerate_designs_are_reported() {
        let a = [0.0, 1.0, 2.0, 3.0, 4.0];
        let twice: Vec<f64> = a.iter().map(|v| 2.0 * v + 1.0).collect();
        let y = [1.0, 3.0, 2.0, 5.0, 4.0];
        assert_eq!(ols(&[&a, &twice], &y), Err(OlsIssue::Collinear));
        assert_eq!(
            ols(&[&a, &[7.0; 5]], &y),
            Err(OlsIssue::Collinear),
            "constant predictor"
        );
        assert_eq!(ols(&[&a, &y], &[2.0; 5]), Err(OlsIssue::ConstantTarget));
        assert_eq!(
            ols(&[&a[..3], &y[..3]], &a[..3]),
            Err(OlsIssue::TooFewRows { n: 3, need: 4 })
        );
    }
}
