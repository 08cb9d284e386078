//! The closed-form truth of the synthetic model: what the VIV family (metrics.md section 1) must recover
//! from its samples.

use std::f64::consts::FRAC_PI_2;

/// Closed-form quantities of a Gaussian whose covariance is `Sigma_C ⊗ Sigma_S`.
///
/// The eigenvalues of a Kronecker product are all products `lc_i * ls_j` of the factors' eigenvalues,
/// so every quantity below costs `O(C + S)` (or `O(C S)` for `V(t)`), never a `D x D` matrix.
/// All of them refer to the raw latents (`--normalize none`): per-channel normalization rescales the
/// marginal variance, which includes the class means, and so changes the within-class spectrum.
#[derive(Clone, Debug, PartialEq)]
pub struct Truth {
    /// Eigenvalues of `Sigma_C`, descending (mean 1 by construction).
    pub eig_c: Vec<f64>,
    /// Eigenvalues of `Sigma_S`, descending (mean `within_scale^2`).
    pub eig_s: Vec<f64>,
    /// `D = C * S`.
    pub d: usize,
    /// `VIV = (pi/2) * sum_ij sqrt(lc_i ls_j) = (pi/2) * (sum_i sqrt(lc_i)) * (sum_j sqrt(ls_j))`
    /// (study eq. 5).
    pub viv: f64,
    /// `VIV / D`.
    pub viv_per_dim: f64,
    /// `T / D` with `T = sum_ij lc_i ls_j = tr(Sigma_C) tr(Sigma_S)`.
    pub total_variance: f64,
    /// `rho = sum s / sqrt(D * sum s^2)` with `s = sqrt(lc_i ls_j)`; 1 when isotropic (study eq. 6).
    pub anisotropy: f64,
}

impl Truth {
    /// The truth of a Gaussian with covariance `Sigma_C ⊗ Sigma_S`, from the factors' eigenvalues
    /// (negative rounding residue is clipped to 0, as the estimator does).
    pub fn from_eigenvalues(eig_c: Vec<f64>, eig_s: Vec<f64>) -> Truth {
        let d = eig_c.len() * eig_s.len();
        let root_sum = |v: &[f64]| v.iter().map(|x| x.max(0.0).sqrt()).sum::<f64>();
        let sum = |v: &[f64]| v.iter().map(|x| x.max(0.0)).sum::<f64>();
        let sqrt_sum = root_sum(&eig_c) * root_sum(&eig_s);
        let total = sum(&eig_c) * sum(&eig_s);
        let viv = FRAC_PI_2 * sqrt_sum;
        Truth {
            d,
            viv,
            viv_per_dim: viv / d as f64,
            total_variance: total / d as f64,
            anisotropy: sqrt_sum / (d as f64 * total).sqrt(),
            eig_c,
            eig_s,
        }
    }

    /// The irreducible velocity variance at time `t` in [0, 1] (study eq. 4):
    /// `V(t) = sum_ij lam_ij / ((1-t)^2 + t^2 lam_ij)`, `lam_ij = lc_i ls_j`. `V(0) = T`,
    /// `V(1) = rank`; the same for every class, since the within-class covariance is shared.
    /// Cost `O(C S)`.
    pub fn v(&self, t: f64) -> f64 {
        let a = (1.0 - t) * (1.0 - t);
        let b = t * t;
        let mut total = 0.0;
        for &lc in &self.eig_c {
            for &ls in &self.eig_s {
                let lam = (lc * ls).max(0.0);
                if lam > 0.0 {
                    total += lam / (a + b * lam);
                }
            }
        }
        total
    }
}
