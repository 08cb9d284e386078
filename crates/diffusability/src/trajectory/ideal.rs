//! The exact Bayes-optimal probability-flow ODE of the fitted class-conditional Gaussian model,
//! integrated on the trajectory's own time grid: the straightness, efficiency and length ratio that
//! the latent space allows before any network is trained (beyond the study).
//!
//! For a class with mean `M` and covariance `Sigma = U diag(lam) U^T`, `U = U_C (x) U_S`, the optimal
//! velocity is `v*(x, t) = M + B_t A_t^{-1} (x - t M)` with `A_t = (1-t)^2 I + t^2 Sigma`,
//! `B_t = t Sigma - (1-t) I` (metrics.md section 1). In the eigenbasis (`y = U^T x`, `m = U^T M`,
//! computed as `U_C^T X U_S` for the `C x S` matrix `X`, never a `D x D` matrix) it is diagonal:
//!
//! ```text
//! dy_i/dt = m_i + (t lam_i - (1-t)) / ((1-t)^2 + t^2 lam_i) * (y_i - t m_i)
//! ```
//!
//! whose solution from `y(0) = z` is `y_i(t) = sqrt((1-t)^2 + t^2 lam_i) z_i + t m_i` (differentiate:
//! the velocity above). Its end point `y(1) = sqrt(lam) z + m` is an exact sample of the class.
//!
//! Solvers ([`Solver`]): `Euler` takes the explicit Euler steps `y_{k+1} = y_k + (t_{k+1} - t_k)
//! v*(y_k, t_k)` on the grid, as a sampler with a perfect network would (the velocity is never
//! evaluated at `t = 1`, where a zero eigenvalue would make it 0/0); `Exact` evaluates the closed-form
//! solution at the grid times. A grid that starts at `t_0 > 0` starts from the exact flow of the noise
//! to `t_0`.
//!
//! Noise and classes: sample `i` uses ChaCha stream `i` of `stats::rng::stream(seed,
//! "trajectory-ideal")`: one uniform picks the class with probability `N_k / N` (over fitted
//! classes), then `D` standard normals give `x_0` (`[c][s]` order, the data basis). The paths are
//! measured in the eigenbasis, which leaves every norm and inner product unchanged.

use super::measures::{self, Measures, PathBuilder, PathStats};
use super::model::Model;
use crate::linalg;
use crate::stats::rng;
use rand::Rng;
use rand_distr::StandardNormal;
use rayon::prelude::*;
use std::fmt;
use std::str::FromStr;

/// How the ideal ODE is integrated on the grid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Solver {
    /// Explicit Euler steps with the exact velocity (the default: what a perfect network sampled with
    /// Euler on this grid would do).
    Euler,
    /// The closed-form flow evaluated at the grid times.
    Exact,
}

impl fmt::Display for Solver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Solver::Euler => "euler",
            Solver::Exact => "exact",
        })
    }
}

impl FromStr for Solver {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<Solver> {
        match s {
            "euler" => Ok(Solver::Euler),
            "exact" => Ok(Solver::Exact),
            _ => Err(crate::Error::usage(format!(
                "--ideal-solver: expected euler or exact, found `{s}`"
            ))),
        }
    }
}

/// Settings of the ideal run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdealOptions {
    /// Paths to integrate (at least 1).
    pub samples: usize,
    pub solver: Solver,
    pub seed: u64,
}

/// The ideal ODE's measures.
#[derive(Clone, Debug, PartialEq)]
pub struct IdealRun {
    pub measures: Measures,
    pub samples: usize,
    /// Paths drawn per fitted class (aligned with `Model::classes`).
    pub per_class: Vec<usize>,
    pub solver: Solver,
    pub seed: u64,
    /// End points `x_K` in the data basis (`samples x D`, `[c][s]` each), when requested.
    pub end: Option<Vec<f64>>,
    /// The class of each path (index into `Model::classes`).
    pub class_of: Vec<usize>,
}

/// Per-class quantities precomputed once.
struct Prepared {
    /// `lam_ij = lc_i ls_j`, `D` values `[i][j]`.
    lam: Vec<f64>,
    /// `m = U_C^T M U_S`.
    mean_rot: Vec<f64>,
}

/// Integrates `opts.samples` paths of the ideal ODE of `model` on `times` (`K+1` strictly increasing
/// values in `[0, 1]`) and measures them like a trajectory. With `keep_end`, also returns the end
/// points rotated back to the data basis. Paths run in parallel and are combined in index order, so
/// the result does not depend on the thread count. Cost per path: two `C x S` rotations
/// (`2 (C^2 S + C S^2)` flops each) and `O(K D)` for the steps and measures.
pub fn run(model: &Model, times: &[f64], opts: &IdealOptions, keep_end: bool) -> IdealRun {
    let (c, s) = (model.c, model.s);
    let d = c * s;
    let prepared: Vec<Prepared> = model
        .classes
        .iter()
        .map(|k| {
            let lam = k
                .spectrum
                .lc
                .iter()
                .flat_map(|a| k.spectrum.ls.iter().map(move |b| a * b))
                .collect();
            let mut mean_rot = vec![0.0; d];
            linalg::kron_apply(
                k.uc.transpose(),
                k.us.transpose(),
                &k.mean,
                &mut Vec::new(),
                &mut mean_rot,
            );
            Prepared { lam, mean_rot }
        })
        .collect();
    let total: f64 = model.classes.iter().map(|k| k.n as f64).sum();
    let mut cum = Vec::with_capacity(model.classes.len());
    let mut acc = 0.0;
    for k in &model.classes {
        acc += k.n as f64 / total;
        cum.push(acc);
    }
    let steps = times.len() - 1;
    let results: Vec<(usize, PathStats, Option<Vec<f64>>)> = (0..opts.samples)
        .into_par_iter()
        .map(|i| {
            let mut r = rng::stream(opts.seed, "trajectory-ideal");
            r.set_stream(i as u64);
            let u: f64 = r.random();
            let k = cum
                .partition_point(|&c| c <= u)
                .min(model.classes.len() - 1);
            let x0: Vec<f64> = (0..d).map(|_| r.sample::<f64, _>(StandardNormal)).collect();
            let (cls, prep) = (&model.classes[k], &prepared[k]);
            let mut tmp = Vec::new();
            let mut z = vec![0.0; d];
            linalg::kron_apply(
                cls.uc.transpose(),
                cls.us.transpose(),
                &x0,
                &mut tmp,
                &mut z,
            );
            let mut path = PathBuilder::new(d, steps);
            let y = integrate(&z, prep, times, opts.solver, &mut path);
            let end = keep_end.then(|| {
                let mut x = vec![0.0; d];
                linalg::kron_apply(cls.uc.as_ref(), cls.us.as_ref(), &y, &mut tmp, &mut x);
                x
            });
            (k, path.finish(), end)
        })
        .collect();
    let mut per_class = vec![0; model.classes.len()];
    for (k, _, _) in &results {
        per_class[*k] += 1;
    }
    let class_of = results.iter().map(|r| r.0).collect();
    let paths: Vec<PathStats> = results.iter().map(|r| r.1.clone()).collect();
    let end = keep_end.then(|| {
        results
            .iter()
            .flat_map(|r| r.2.as_deref().unwrap_or_default().iter().copied())
            .collect()
    });
    IdealRun {
        measures: measures::summarize(&paths, times),
        samples: opts.samples,
        per_class,
        solver: opts.solver,
        seed: opts.seed,
        end,
        class_of,
    }
}

/// Runs one path from the eigenbasis noise `z`, pushing every state into `path`; returns `y_K`.
fn integrate(
    z: &[f64],
    prep: &Prepared,
    times: &[f64],
    solver: Solver,
    path: &mut PathBuilder,
) -> Vec<f64> {
    let exact_at = |t: f64, y: &mut [f64]| {
        let (omt2, t2) = ((1.0 - t) * (1.0 - t), t * t);
        for ((yi, (zi, li)), mi) in y
            .iter_mut()
            .zip(z.iter().zip(&prep.lam))
            .zip(&prep.mean_rot)
        {
            *yi = (omt2 + t2 * li).sqrt() * zi + t * mi;
        }
    };
    let mut y = vec![0.0; z.len()];
    exact_at(times[0], &mut y);
    path.push(&y);
    for k in 0..times.len() - 1 {
        let (t, h) = (times[k], times[k + 1] - times[k]);
        match solver {
            Solver::Exact => exact_at(times[k + 1], &mut y),
            Solver::Euler => {
                let omt = 1.0 - t;
                for ((yi, li), mi) in y.iter_mut().zip(&prep.lam).zip(&prep.mean_rot) {
                    let a = omt * omt + t * t * li;
                    let b = t * li - omt;
                    *yi += h * (mi + b / a * (*yi - t * mi));
                }
            }
        }
        path.push(&y);
    }
    y
}
