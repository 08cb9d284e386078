//! Marginal VIV (`viv_marginal`, metrics.md section 1, the study's text-guided case): the irreducible
//! velocity variance when the target is the whole class mixture `sum_k pi_k N(M_k, Sigma_k)` rather
//! than one class, estimated by Monte Carlo.
//!
//! For the mixture the Bayes-optimal velocity is `v*(x, t) = sum_k r_k(x) m_k(x)` with
//! `r_k ∝ pi_k N(x; t M_k, A_k)`, `A_k = (1-t)^2 I + t^2 Sigma_k`, and
//! `m_k(x) = M_k + B_k A_k^{-1} (x - t M_k)`, `B_k = t Sigma_k - (1-t) I`. Each class is evaluated in its
//! own eigenbasis `U_C (x) U_S`: `y~ = U_C^T (X - t M_k) U_S` (`C^2 S + C S^2` per vector), then
//! `A_k` and `B_k` are diagonal with entries `(1-t)^2 + t^2 lc_i ls_j` and `t lc_i ls_j - (1-t)`, and
//! `B_k A_k^{-1} y = U_C (diag(b/a) y~) U_S^T`. No `D x D` matrix is formed.
//!
//! Estimator: the class-conditional part is known in closed form, so only the excess is sampled.
//! With `k` the class a draw came from, `E||v - m_k(x_t)||^2 = V_k(t)` exactly, hence
//!
//! ```text
//! V_marg(t) = sum_k pi_k V_k(t) + E[ ||v - v*(x_t)||^2 - ||v - m_k(x_t)||^2 ]
//! integral  = sum_k pi_k VIV_k  + integral of the bracket
//! ```
//!
//! (a control variate: the second term is zero for every draw whose class is resolved, so its
//! variance is far below that of `||v - v*||^2` itself; with one class it is identically zero and the
//! estimate equals the closed form). Draw `i` is a triple (class `k ~ pi`, `x1 ~ N(M_k, Sigma_k)`,
//! `x0 ~ N(0, I)`) from its own random stream (ChaCha stream `i` of
//! `stats::rng::stream(seed, "viv-marginal")`), evaluated at every Gauss-Legendre node `t_q` on
//! `[0, 1]`: `E_i = sum_q w_q (||v - v*||^2 - ||v - m_k||^2)` with `v = x1 - x0`. The `E_i` are
//! independent, so the estimate is `sum_k pi_k VIV_k + mean_i E_i` and its standard error is the
//! sample standard deviation of the `E_i` over `sqrt(n)`. The plain estimate `mean_i sum_q w_q
//! ||v - v*||^2` is reported beside it. Reusing a draw at every node shares the class rotations of
//! `x0` and `x1` (the dominant cost) among all nodes. Draws are processed in fixed blocks, so results
//! do not depend on the thread count.
//!
//! Responsibilities are accumulated in log space with a running maximum (an online log-sum-exp), the
//! block's own classes first. A class whose weight is below `1e-12` of the running maximum enters the
//! normalizer but not the vector sum: this changes `v*` by at most `K * 1e-12` of the spread of the
//! `m_k`, and since `E[(v - v*) . g(x_t)] = 0` for any `g`, the bias it causes in `E||v - v*||^2` is
//! only of second order in that (about `1e-24`).

use super::curve::{LANES, Spectrum};
use super::quadrature::gauss_legendre_unit;
use crate::linalg;
use crate::progress::Progress;
use crate::stats::rng;
use faer::{Accum, Mat, MatMut, MatRef};
use rand::Rng;
use rand_distr::StandardNormal;
use rayon::prelude::*;

/// One mixture component: a class's weight, mean and the eigendecompositions of its two factors.
#[derive(Clone, Debug)]
pub struct Component {
    /// Mixture weight `pi_k` (need not be normalized).
    pub weight: f64,
    /// `M_k`, `D` values in `[c][s]` order.
    pub mean: Vec<f64>,
    /// `Sigma_C = uc diag(lc) uc^T`.
    pub lc: Vec<f64>,
    pub uc: Mat<f64>,
    /// `Sigma_S = us diag(ls) us^T`.
    pub ls: Vec<f64>,
    pub us: Mat<f64>,
}

/// Settings of the estimate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Options {
    /// Draws (each evaluated at every node).
    pub samples: usize,
    /// Gauss-Legendre nodes in `t`.
    pub nodes: usize,
    pub seed: u64,
}

/// The estimate and its Monte Carlo standard error.
#[derive(Clone, Debug, PartialEq)]
pub struct Estimate {
    /// `sum_k pi_k VIV_k + mean_i E_i` (see the module doc).
    pub value: f64,
    pub std_error: f64,
    /// The exact class-conditional part `sum_k pi_k VIV_k`.
    pub conditional: f64,
    /// The plain estimate `mean_i sum_q w_q ||v - v*||^2` and its standard error.
    pub plain_value: f64,
    pub plain_std_error: f64,
    /// The nodes `t_q` and the estimates of `V_marg(t_q)` there.
    pub t: Vec<f64>,
    pub v: Vec<f64>,
}

/// Draws per block: the unit of parallel work and of batched rotations.
const BLOCK: usize = 16;

/// Relative responsibility below which a class's `m_k` is left out of `v*` (see the module doc).
const NEGLIGIBLE: f64 = 1e-12;

struct Prepared {
    log_weight: f64,
    /// `U_C^T M_k U_S`.
    mean_rot: Vec<f64>,
    /// `sum_ij ln((1-t_q)^2 + t_q^2 lc_i ls_j)` per node.
    logdet: Vec<f64>,
}

/// `out_b = l X_b r` for `m` row-major `C x S` matrices `X_b` stacked in `x` (GEMM-shaped: one
/// `(m C) x S x S` product, then `m` products `C x C x S`).
fn sandwich(
    l: MatRef<'_, f64>,
    r: MatRef<'_, f64>,
    x: &[f64],
    m: usize,
    tmp: &mut Vec<f64>,
    out: &mut Vec<f64>,
) {
    let (c, s) = (l.nrows(), r.nrows());
    let d = c * s;
    tmp.resize(m * d, 0.0);
    out.resize(m * d, 0.0);
    linalg::matmul(
        MatMut::from_row_major_slice_mut(&mut tmp[..m * d], m * c, s),
        Accum::Replace,
        MatRef::from_row_major_slice(&x[..m * d], m * c, s),
        r,
        1.0,
    );
    for b in 0..m {
        linalg::matmul(
            MatMut::from_row_major_slice_mut(&mut out[b * d..(b + 1) * d], c, s),
            Accum::Replace,
            l,
            MatRef::from_row_major_slice(&tmp[b * d..(b + 1) * d], c, s),
            1.0,
        );
    }
}

fn lambdas(comp: &Component) -> Vec<f64> {
    comp.lc
        .iter()
        .flat_map(|a| comp.ls.iter().map(move |b| (a * b).max(0.0)))
        .collect()
}

/// Estimates `integral_0^1 V_marg(t) dt` for the mixture `comps` (latent shape `C x S`).
/// `comps` must be non-empty with positive total weight. Cost about `2 n K (C^2 S + C S^2)` flops for
/// the rotations of `n` draws into `K` classes, plus one back-rotation per non-negligible
/// (draw, node, class).
pub fn estimate(
    comps: &[Component],
    c: usize,
    s: usize,
    opts: &Options,
    progress: &dyn Progress,
) -> Estimate {
    let d = c * s;
    let rule = gauss_legendre_unit(opts.nodes.max(1));
    let nodes: Vec<(f64, f64, f64)> = rule
        .nodes
        .iter()
        .zip(&rule.weights)
        .map(|(&t, &w)| (t, 1.0 - t, w))
        .collect();
    let total: f64 = comps.iter().map(|k| k.weight).sum();
    let prepared: Vec<Prepared> = comps
        .par_iter()
        .map(|k| {
            let lam = lambdas(k);
            let mut mean_rot = vec![0.0; d];
            linalg::kron_apply(
                k.uc.transpose(),
                k.us.transpose(),
                &k.mean,
                &mut Vec::new(),
                &mut mean_rot,
            );
            let logdet = nodes
                .iter()
                .map(|&(t, omt, _)| lam.iter().map(|l| (omt * omt + t * t * l).ln()).sum())
                .collect();
            Prepared {
                log_weight: (k.weight / total).ln(),
                mean_rot,
                logdet,
            }
        })
        .collect();
    let mut cum = Vec::with_capacity(comps.len());
    let mut acc = 0.0;
    for k in comps {
        acc += k.weight / total;
        cum.push(acc);
    }
    let spectra: Vec<Spectrum> = comps.iter().map(|k| Spectrum::new(&k.lc, &k.ls)).collect();
    let conditional: f64 = comps
        .iter()
        .zip(&spectra)
        .map(|(k, sp)| k.weight / total * sp.viv())
        .sum();
    let conditional_curve: Vec<f64> = nodes
        .iter()
        .map(|&(t, omt, _)| {
            comps
                .iter()
                .zip(&spectra)
                .map(|(k, sp)| k.weight / total * sp.v(t, omt))
                .sum()
        })
        .collect();
    let blocks = crate::par::chunks(opts.samples, BLOCK);
    progress.begin("viv_marginal", blocks.len() as u64);
    let per_draw: Vec<Draw> = blocks
        .par_iter()
        .flat_map_iter(|r| {
            let out = run_block(r.clone(), comps, &prepared, &cum, &nodes, opts.seed, c, s);
            progress.advance(1);
            out
        })
        .collect();
    progress.end();
    let (excess_mean, excess_se) = mean_se(per_draw.iter().map(|p| p.excess));
    let (plain_value, plain_std_error) = mean_se(per_draw.iter().map(|p| p.plain));
    let n = per_draw.len() as f64;
    let v = (0..nodes.len())
        .map(|q| conditional_curve[q] + per_draw.iter().map(|p| p.excess_at[q]).sum::<f64>() / n)
        .collect();
    Estimate {
        value: conditional + excess_mean,
        std_error: excess_se,
        conditional,
        plain_value,
        plain_std_error,
        t: nodes.iter().map(|x| x.0).collect(),
        v,
    }
}

/// Mean and standard error (sample standard deviation over `sqrt(n)`).
fn mean_se(xs: impl Iterator<Item = f64> + Clone) -> (f64, f64) {
    let n = xs.clone().count() as f64;
    let mean = xs.clone().sum::<f64>() / n;
    let var = xs.map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, (var / n).sqrt())
}

/// One draw's results: the excess over the conditional part and the plain squared error, integrated
/// over the nodes, and the excess at each node.
struct Draw {
    excess: f64,
    plain: f64,
    excess_at: Vec<f64>,
}

/// `sum_e (a r0_e + b r1_e)^2 w_e`, with eight running sums so that it vectorizes.
fn quad_form(r0: &[f64], r1: &[f64], w: &[f64], a: f64, b: f64) -> f64 {
    let mut acc = [0.0f64; LANES];
    let (c0, c1, cw) = (
        r0.chunks_exact(LANES),
        r1.chunks_exact(LANES),
        w.chunks_exact(LANES),
    );
    let mut tail = 0.0;
    for ((x, y), z) in c0
        .remainder()
        .iter()
        .zip(c1.remainder())
        .zip(cw.remainder())
    {
        let v = a * x + b * y;
        tail += v * v * z;
    }
    for ((x, y), z) in c0.zip(c1).zip(cw) {
        for k in 0..LANES {
            let v = a * x[k] + b * y[k];
            acc[k] += v * v * z[k];
        }
    }
    acc.iter().sum::<f64>() + tail
}

/// Draw `i`: its class, `x0` and `x1` (`D` values each).
fn draw(i: usize, comps: &[Component], cum: &[f64], seed: u64) -> (usize, Vec<f64>, Vec<f64>) {
    let mut r = rng::stream(seed, "viv-marginal");
    r.set_stream(i as u64);
    let u: f64 = r.random();
    let k = cum.partition_point(|&c| c <= u).min(comps.len() - 1);
    let comp = &comps[k];
    let lam = lambdas(comp);
    let xi: Vec<f64> = lam
        .iter()
        .map(|l| r.sample::<f64, _>(StandardNormal) * l.sqrt())
        .collect();
    let mut x1 = vec![0.0; xi.len()];
    linalg::kron_apply(
        comp.uc.as_ref(),
        comp.us.as_ref(),
        &xi,
        &mut Vec::new(),
        &mut x1,
    );
    for (a, m) in x1.iter_mut().zip(&comp.mean) {
        *a += m;
    }
    let x0 = (0..xi.len())
        .map(|_| r.sample::<f64, _>(StandardNormal))
        .collect();
    (k, x0, x1)
}

/// The per-draw integral estimates and per-node squared errors of the draws `range`.
#[allow(clippy::too_many_arguments)]
fn run_block(
    range: std::ops::Range<usize>,
    comps: &[Component],
    prep: &[Prepared],
    cum: &[f64],
    nodes: &[(f64, f64, f64)],
    seed: u64,
    c: usize,
    s: usize,
) -> Vec<Draw> {
    let d = c * s;
    let m = range.len();
    let nq = nodes.len();
    let draws: Vec<(usize, Vec<f64>, Vec<f64>)> =
        range.map(|i| draw(i, comps, cum, seed)).collect();
    let mut xs = vec![0.0; 2 * m * d];
    for (b, (_, x0, x1)) in draws.iter().enumerate() {
        xs[b * d..(b + 1) * d].copy_from_slice(x0);
        xs[(m + b) * d..(m + b + 1) * d].copy_from_slice(x1);
    }
    // The block's own classes first: they usually dominate, so later classes are mostly negligible.
    let mut order: Vec<usize> = draws.iter().map(|x| x.0).collect();
    order.sort_unstable();
    order.dedup();
    let own = order.clone();
    order.extend((0..comps.len()).filter(|k| own.binary_search(k).is_err()));

    let mut acc = vec![0.0; nq * m * d];
    let mut mx = vec![f64::NEG_INFINITY; nq * m];
    let mut sm = vec![0.0; nq * m];
    // ||v - m_k(x_t)||^2 for each draw's own class k.
    let mut own_err = vec![0.0; nq * m];
    let (mut rot, mut tmp, mut back) = (Vec::new(), Vec::new(), Vec::new());
    let mut batch: Vec<f64> = Vec::new();
    // (index q*m + b, weight, add to v*, draw b's own class)
    let mut entries: Vec<(usize, f64, bool, bool)> = Vec::new();
    let mut inv_alpha = vec![0.0; d];
    for &j in &order {
        let (comp, pj) = (&comps[j], &prep[j]);
        let lam = lambdas(comp);
        sandwich(
            comp.uc.transpose(),
            comp.us.as_ref(),
            &xs,
            2 * m,
            &mut tmp,
            &mut rot,
        );
        for b in 0..m {
            for (y, mu) in rot[(m + b) * d..(m + b + 1) * d]
                .iter_mut()
                .zip(&pj.mean_rot)
            {
                *y -= mu;
            }
        }
        entries.clear();
        batch.clear();
        for (q, &(t, omt, _)) in nodes.iter().enumerate() {
            for (ia, l) in inv_alpha.iter_mut().zip(&lam) {
                *ia = 1.0 / (omt * omt + t * t * l);
            }
            for b in 0..m {
                let r0 = &rot[b * d..(b + 1) * d];
                let r1 = &rot[(m + b) * d..(m + b + 1) * d];
                let quad = quad_form(r0, r1, &inv_alpha, omt, t);
                let logp = pj.log_weight - 0.5 * quad - 0.5 * pj.logdet[q];
                let idx = q * m + b;
                if logp > mx[idx] {
                    if mx[idx] > f64::NEG_INFINITY {
                        let scale = (mx[idx] - logp).exp();
                        sm[idx] *= scale;
                        for a in &mut acc[idx * d..(idx + 1) * d] {
                            *a *= scale;
                        }
                    }
                    mx[idx] = logp;
                }
                let w = (logp - mx[idx]).exp();
                sm[idx] += w;
                let add = w > NEGLIGIBLE;
                let own = draws[b].0 == j;
                if add || own {
                    entries.push((idx, w, add, own));
                    batch.extend(
                        r0.iter()
                            .zip(r1)
                            .zip(&inv_alpha)
                            .zip(&lam)
                            .map(|(((a, b), ia), l)| (t * l - omt) * ia * (omt * a + t * b)),
                    );
                }
            }
        }
        if entries.is_empty() {
            continue;
        }
        sandwich(
            comp.uc.as_ref(),
            comp.us.transpose(),
            &batch,
            entries.len(),
            &mut tmp,
            &mut back,
        );
        for (e, &(idx, w, add, own)) in entries.iter().enumerate() {
            let back_e = &back[e * d..(e + 1) * d];
            if own {
                let (_, x0, x1) = &draws[idx % m];
                own_err[idx] = x1
                    .iter()
                    .zip(x0)
                    .zip(&comp.mean)
                    .zip(back_e)
                    .map(|(((z1, z0), mu), bk)| {
                        let r = (z1 - z0) - (mu + bk);
                        r * r
                    })
                    .sum();
            }
            if add {
                let dst = &mut acc[idx * d..(idx + 1) * d];
                for ((a, mu), bk) in dst.iter_mut().zip(&comp.mean).zip(back_e) {
                    *a += w * (mu + bk);
                }
            }
        }
    }
    draws
        .iter()
        .enumerate()
        .map(|(b, (_, x0, x1))| {
            let errs: Vec<f64> = (0..nq)
                .map(|q| {
                    let idx = q * m + b;
                    let inv = 1.0 / sm[idx];
                    acc[idx * d..(idx + 1) * d]
                        .iter()
                        .zip(x0)
                        .zip(x1)
                        .map(|((a, z0), z1)| {
                            let e = (z1 - z0) - a * inv;
                            e * e
                        })
                        .sum()
                })
                .collect();
            let excess_at: Vec<f64> = errs
                .iter()
                .enumerate()
                .map(|(q, e)| e - own_err[q * m + b])
                .collect();
            Draw {
                excess: excess_at.iter().zip(nodes).map(|(e, n)| e * n.2).sum(),
                plain: errs.iter().zip(nodes).map(|(e, n)| e * n.2).sum(),
                excess_at,
            }
        })
        .collect()
}
