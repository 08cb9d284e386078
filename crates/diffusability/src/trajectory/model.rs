//! The class-conditional Gaussian model of a latent set, as VIV fits it (metrics.md section 1): per
//! class `k` with `N_k >= 2` samples the mean `M_k` and the Kronecker covariance
//! `Sigma_C (x) Sigma_S` by flip-flop, kept as the eigendecompositions of both factors. It gives the
//! `V(t)` overlay (mean over classes of `V_k(t)`, study eq. 4) and the targets of the ideal ODE.
//!
//! The fit is the VIV family's ([`crate::metrics::viv::flipflop`]), with the same defaults, so `V(t)`
//! here equals the `details.viv.curve` of a `metrics` report on the same latents.

use crate::data::{Labels, Normalized};
use crate::linalg;
use crate::metrics::registry;
use crate::metrics::viv::curve::Spectrum;
use crate::metrics::viv::flipflop::{self, Degenerate, FitOptions, Residuals};
use faer::Mat;
use rayon::prelude::*;

/// One fitted class: `Sigma_C = uc diag(lc) uc^T`, `Sigma_S = us diag(ls) us^T` (eigenvalues in
/// `spectrum`, negatives clipped to 0).
#[derive(Clone, Debug)]
pub struct ClassModel {
    /// The raw label (`None` without labels: one class of all samples).
    pub label: Option<i64>,
    /// `N_k`.
    pub n: usize,
    /// `M_k`, `D` values `[c][s]`.
    pub mean: Vec<f64>,
    pub spectrum: Spectrum,
    pub uc: Mat<f64>,
    pub us: Mat<f64>,
    pub sweeps: usize,
    pub converged: bool,
    /// Whether a ridge was added to either factor.
    pub ridged: bool,
}

/// The fitted classes of a latent set.
#[derive(Clone, Debug)]
pub struct Model {
    /// `(C, H, W)` of the latents.
    pub chw: [usize; 3],
    pub c: usize,
    /// `S = H * W`.
    pub s: usize,
    pub classes: Vec<ClassModel>,
    /// Classes that could not be fitted (fewer than 2 samples, identical samples, ...).
    pub skipped: usize,
    pub warnings: Vec<String>,
}

/// The flip-flop settings of the VIV family's defaults (`viv_ridge`, `viv_max_sweeps`, `viv_tol`).
pub fn default_fit_options() -> FitOptions {
    let float = |name| match registry::find_param(name).map(|p| p.default) {
        Some(crate::metrics::params::DefaultValue::Float(v)) => v,
        _ => unreachable!("the VIV family declares {name} as a float"),
    };
    let sweeps = match registry::find_param("viv_max_sweeps").map(|p| p.default) {
        Some(crate::metrics::params::DefaultValue::Int(v)) => v as usize,
        _ => unreachable!("the VIV family declares viv_max_sweeps as an integer"),
    };
    FitOptions {
        ridge: float("viv_ridge"),
        max_sweeps: sweeps,
        tol: float("viv_tol"),
    }
}

impl Model {
    /// Fits every class of `labels` (all samples as one class when `None`) on the normalized latents
    /// `z`. Classes run in parallel; the result does not depend on the thread count. `None` when no
    /// class could be fitted (each needs 2 distinct finite samples). Cost per class: the flip-flop
    /// sweeps plus two symmetric eigendecompositions (`C^3 + S^3`).
    pub fn fit(z: Normalized<'_>, labels: Option<&Labels>, opts: &FitOptions) -> Option<Model> {
        let sh = z.shape();
        let groups: Vec<(Option<i64>, Vec<usize>)> = match labels {
            Some(l) => l
                .classes
                .iter()
                .map(|&v| Some(v))
                .zip(l.members())
                .collect(),
            None => vec![(None, (0..sh.n).collect())],
        };
        let results: Vec<Result<ClassModel, (Option<i64>, Degenerate)>> = groups
            .par_iter()
            .map(|(label, members)| fit_class(z, *label, members, opts))
            .collect();
        let mut classes = Vec::new();
        let mut skipped = Vec::new();
        for r in results {
            match r {
                Ok(c) => classes.push(c),
                Err(e) => skipped.push(e),
            }
        }
        let mut warnings = Vec::new();
        if !skipped.is_empty() {
            let names: Vec<String> = skipped
                .iter()
                .take(10)
                .map(|(l, why)| {
                    let what = match why {
                        Degenerate::TooFew => "fewer than 2 samples",
                        Degenerate::Identical => "identical samples",
                        Degenerate::NonFinite => "non-finite values",
                        Degenerate::Singular => "singular factor",
                    };
                    format!(
                        "{} ({what})",
                        l.map_or("all".to_string(), |v| v.to_string())
                    )
                })
                .collect();
            warnings.push(format!(
                "viv overlay: {} classes could not be fitted and are left out of V(t): {}{}",
                skipped.len(),
                names.join(", "),
                if skipped.len() > 10 { ", ..." } else { "" }
            ));
        }
        let ridged = classes.iter().filter(|c| c.ridged).count();
        if ridged > 0 {
            warnings.push(format!(
                "viv overlay: a ridge viv_ridge = {} was added to a covariance factor of {ridged} classes \
                 (too few samples, or a factor not positive definite)",
                opts.ridge
            ));
        }
        let unconverged = classes.iter().filter(|c| !c.converged).count();
        if unconverged > 0 {
            warnings.push(format!(
                "viv overlay: flip-flop did not converge within {} sweeps for {unconverged} classes; their \
                 last factors are used",
                opts.max_sweeps
            ));
        }
        (!classes.is_empty()).then_some(Model {
            chw: [sh.c, sh.h, sh.w],
            c: sh.c,
            s: sh.s(),
            classes,
            skipped: skipped.len(),
            warnings,
        })
    }

    /// `D = C * S`.
    pub fn dim(&self) -> usize {
        self.c * self.s
    }

    /// `V(t) = mean_k sum_ij lam_ij / ((1-t)^2 + t^2 lam_ij)` over the fitted classes (unweighted, as
    /// the VIV curve). Cost `K C S`.
    pub fn v(&self, t: f64) -> f64 {
        self.classes
            .iter()
            .map(|c| c.spectrum.v(t, 1.0 - t))
            .sum::<f64>()
            / self.classes.len() as f64
    }
}

fn fit_class(
    z: Normalized<'_>,
    label: Option<i64>,
    members: &[usize],
    opts: &FitOptions,
) -> Result<ClassModel, (Option<i64>, Degenerate)> {
    let fail = |why| (label, why);
    if members.len() < 2 {
        return Err(fail(Degenerate::TooFew));
    }
    let res = Residuals::from_normalized(z, members);
    let fit = flipflop::fit(&res, opts).map_err(fail)?;
    let ((lc, uc), (ls, us)) = linalg::sym_eigen(fit.sigma_c.as_ref())
        .zip(linalg::sym_eigen(fit.sigma_s.as_ref()))
        .ok_or(fail(Degenerate::NonFinite))?;
    let spectrum = Spectrum::new(&lc, &ls);
    if spectrum.anisotropy().is_none() {
        return Err(fail(Degenerate::Identical));
    }
    Ok(ClassModel {
        label,
        n: members.len(),
        mean: res.into_mean(),
        spectrum,
        uc,
        us,
        sweeps: fit.sweeps,
        converged: fit.converged,
        ridged: fit.ridge_c.is_some() || fit.ridge_s.is_some(),
    })
}
