//! The closed form of VIV for a Gaussian class with a Kronecker covariance `Sigma_C (x) Sigma_S`
//! (metrics.md section 1, study eqs. 4-6), computed from the two factors' eigenvalues only.
//!
//! The product's eigenvalues are `lam_ij = lc_i * ls_j`, so every quantity here costs `O(C + S)`
//! (VIV, total variance, anisotropy) or `O(C S)` per time point (the curve `V(t)`); the `D x D`
//! matrix is never formed.

use std::f64::consts::FRAC_PI_2;

use super::quadrature::TimeNode;
use crate::simd::simd_kernel;

/// Independent partial sums in hot reductions.
pub(crate) const LANES: usize = 8;

/// The eigenvalues of the two Kronecker factors, negatives clipped to zero.
#[derive(Clone, Debug, PartialEq)]
pub struct Spectrum {
    /// Channel factor eigenvalues (`C`).
    pub lc: Vec<f64>,
    /// Spatial factor eigenvalues (`S`).
    pub ls: Vec<f64>,
    /// `1 / ls_j` for the positive `ls_j`: the inner loop of `V(t)` then needs one division per term.
    inv_ls: Vec<f64>,
    /// The smallest and largest of `inv_ls` (for [`v_sum`]'s pairing; 0 when there are none).
    inv_range: (f64, f64),
}

impl Spectrum {
    /// Clips negative eigenvalues (rounding noise of a PSD factor) to zero.
    pub fn new(lc: &[f64], ls: &[f64]) -> Spectrum {
        let clip = |v: &[f64]| v.iter().map(|x| x.max(0.0)).collect::<Vec<f64>>();
        let ls = clip(ls);
        let inv_ls: Vec<f64> = ls.iter().filter(|x| **x > 0.0).map(|x| 1.0 / x).collect();
        let inv_range = match inv_ls.iter().copied().reduce(f64::min) {
            Some(lo) => (lo, inv_ls.iter().copied().fold(lo, f64::max)),
            None => (0.0, 0.0),
        };
        Spectrum {
            lc: clip(lc),
            ls,
            inv_ls,
            inv_range,
        }
    }

    /// `D = C * S`.
    pub fn dim(&self) -> usize {
        self.lc.len() * self.ls.len()
    }

    /// `VIV = integral_0^1 V(t) dt = (pi/2) sum_ij sqrt(lc_i ls_j) = (pi/2) (sum_i sqrt lc_i)(sum_j sqrt ls_j)`
    /// (study eq. 5).
    pub fn viv(&self) -> f64 {
        FRAC_PI_2 * sum_sqrt(&self.lc) * sum_sqrt(&self.ls)
    }

    /// Total variance `T = sum_ij lam_ij = tr(Sigma_C) tr(Sigma_S)`.
    pub fn total_variance(&self) -> f64 {
        self.lc.iter().sum::<f64>() * self.ls.iter().sum::<f64>()
    }

    /// Anisotropy `rho = sum_ij s_ij / sqrt(D sum_ij s_ij^2)` with `s_ij = sqrt(lam_ij)`, in `(0, 1]`
    /// (1 = isotropic), so that `VIV = (pi/2) sqrt(D T) rho` (study eq. 6). `None` when `T = 0`.
    pub fn anisotropy(&self) -> Option<f64> {
        let t = self.total_variance();
        (t > 0.0).then(|| sum_sqrt(&self.lc) * sum_sqrt(&self.ls) / (self.dim() as f64 * t).sqrt())
    }

    /// `V(t) = sum_ij lam_ij / ((1-t)^2 + t^2 lam_ij)` (study eq. 4), the irreducible velocity variance
    /// of flow matching at time `t`; `one_minus_t` is passed separately so that `t` near 1 keeps its
    /// precision. Zero eigenvalues contribute 0 (at `t = 1` each positive one contributes 1, so
    /// `V(1)` is the rank). Cost `C * S`.
    pub fn v(&self, t: f64, one_minus_t: f64) -> f64 {
        let a = one_minus_t * one_minus_t;
        v_sum(&self.lc, &self.inv_ls, self.inv_range, a, t * t)
    }

    /// `E[V(t)]` under a quadrature rule in time (`sum_i w_i V(t_i)`).
    pub fn expectation(&self, nodes: &[TimeNode]) -> f64 {
        nodes
            .iter()
            .map(|n| n.weight * self.v(n.t, n.one_minus_t))
            .sum()
    }
}

/// Bound on the terms' denominators within which [`v_sum`] adds four terms with one division:
/// `1/u + 1/v + 1/w + 1/x = ((u + v) w x + (w + x) u v) / (u v w x)` needs every product of up to
/// four denominators clear of overflow and underflow.
const GROUP_SAFE: f64 = 1e75;

simd_kernel! {
    /// `sum_{c > 0} sum_j 1 / ((a / c) inv_ls_j + b)`: [`Spectrum::v`]'s double sum, `lam / (a + b lam)`
    /// with `lam = c * l` written as `1 / ((a / c) (1 / l) + b)`. Terms are added in groups of four
    /// over one common denominator (see [`GROUP_SAFE`]), one division per four terms (the divisions
    /// bound the loop), where every denominator of the channel lies in
    /// `[1 / GROUP_SAFE, GROUP_SAFE]` (`inv_range` bounds them); one division per term otherwise. Eight running sums, so the loop vectorizes instead of waiting
    /// on one accumulator (fixed order: deterministic, and the same bits for every instruction set
    /// `simd_kernel!` picks).
    fn v_sum(lc: &[f64], inv_ls: &[f64], inv_range: (f64, f64), a: f64, b: f64) -> f64 {
        let mut total = 0.0;
        for &c in lc.iter().filter(|x| **x > 0.0) {
            let ac = a / c;
            let (lo, hi) = (ac * inv_range.0 + b, ac * inv_range.1 + b);
            let grouped = lo >= 1.0 / GROUP_SAFE && hi <= GROUP_SAFE;
            let mut acc = [0.0f64; LANES];
            let mut tail = 0.0;
            let rest = if grouped {
                let chunks = inv_ls.chunks_exact(4 * LANES);
                for ch in chunks.clone() {
                    for k in 0..LANES {
                        let u = ac * ch[k] + b;
                        let v = ac * ch[k + LANES] + b;
                        let w = ac * ch[k + 2 * LANES] + b;
                        let x = ac * ch[k + 3 * LANES] + b;
                        let (uv, wx) = (u * v, w * x);
                        acc[k] += ((u + v) * wx + (w + x) * uv) / (uv * wx);
                    }
                }
                chunks.remainder()
            } else {
                inv_ls
            };
            let chunks = rest.chunks_exact(LANES);
            for il in chunks.remainder() {
                tail += 1.0 / (ac * il + b);
            }
            for ch in chunks {
                for k in 0..LANES {
                    acc[k] += 1.0 / (ac * ch[k] + b);
                }
            }
            total += acc.iter().sum::<f64>() + tail;
        }
        total
    }
}

/// `V(t)` for an arbitrary list of covariance eigenvalues (negatives clipped), the unstructured form
/// of [`Spectrum::v`]; for checks against dense matrices.
pub fn v_of_eigenvalues(lam: &[f64], t: f64) -> f64 {
    let (a, b) = ((1.0 - t) * (1.0 - t), t * t);
    lam.iter()
        .filter(|l| **l > 0.0)
        .map(|l| l / (a + b * l))
        .sum()
}

/// `(pi/2) sum_i sqrt(lam_i)` for an arbitrary list of eigenvalues (negatives clipped).
pub fn viv_of_eigenvalues(lam: &[f64]) -> f64 {
    FRAC_PI_2 * sum_sqrt(lam)
}

fn sum_sqrt(v: &[f64]) -> f64 {
    v.iter().map(|x| x.max(0.0).sqrt()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structured_equals_unstructured() {
        let sp = Spectrum::new(&[2.0, 0.5, -1e-17], &[1.5, 0.25, 3.0, 0.0]);
        let lam: Vec<f64> = sp
            .lc
            .iter()
            .flat_map(|c| sp.ls.iter().map(move |l| c * l))
            .collect();
        assert!((sp.viv() - viv_of_eigenvalues(&lam)).abs() < 1e-13);
        for t in [0.0, 0.1, 0.5, 0.93, 1.0] {
            assert!((sp.v(t, 1.0 - t) - v_of_eigenvalues(&lam, t)).abs() < 1e-12);
        }
        // V(0) = trace, V(1) = rank.
        assert!((sp.v(0.0, 1.0) - sp.total_variance()).abs() < 1e-12);
        assert_eq!(sp.v(1.0, 0.0), 6.0);
        let rho = sp.anisotropy().unwrap();
        let d = sp.dim() as f64;
        assert!((sp.viv() - FRAC_PI_2 * (d * sp.total_variance()).sqrt() * rho).abs() < 1e-12);
        assert!(rho > 0.0 && rho <= 1.0);
    }

    #[test]
    fn grouped_terms_equal_single_ones() {
        // 37 channel and 77 spatial eigenvalues over eight decades (groups, a lane group and a
        // remainder), and a spectrum whose denominators leave the grouping's safe range.
        let lc: Vec<f64> = (0..37)
            .map(|i| 10f64.powf(-3.0 + 0.11 * i as f64))
            .collect();
        let ls: Vec<f64> = (0..77)
            .map(|j| 10f64.powf(-4.0 + 0.06 * j as f64))
            .collect();
        let extreme: Vec<f64> = vec![1e-100, 1.0, 1e100, 3.0];
        for (lc, ls) in [(&lc, &ls), (&lc, &extreme)] {
            let sp = Spectrum::new(lc, ls);
            let lam: Vec<f64> = lc
                .iter()
                .flat_map(|c| ls.iter().map(move |l| c * l))
                .collect();
            for t in [0.0, 0.01, 0.3, 0.5, 0.77, 0.999, 1.0] {
                let (got, want) = (sp.v(t, 1.0 - t), v_of_eigenvalues(&lam, t));
                assert!((got - want).abs() <= 1e-14 * want, "t={t}: {got} vs {want}");
            }
        }
    }

    #[test]
    fn isotropic_anisotropy_is_one() {
        let sp = Spectrum::new(&[2.0; 3], &[0.5; 4]);
        assert!((sp.anisotropy().unwrap() - 1.0).abs() < 1e-15);
        assert_eq!(Spectrum::new(&[0.0], &[1.0]).anisotropy(), None);
    }
}
