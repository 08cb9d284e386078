//! L-BFGS with a strong-Wolfe line search, for smooth unconstrained minimization (the linear probe).
//!
//! Written here rather than taken from argmin: our objective yields its value and gradient from one pass
//! (the softmax over `n x K` logits dominates), while argmin's `CostFunction` and `Gradient` traits
//! evaluate them separately and its L-BFGS asks again for the gradient after each line search, which
//! would double or triple the work per iteration; and the vectors hold up to millions of values
//! (flattened features x classes), which we update in place. The method is Nocedal & Wright, *Numerical
//! Optimization* (2nd ed.): Algorithm 7.4 (two-loop recursion, `m = 10` pairs as scipy's L-BFGS-B,
//! `H0 = (s'y / y'y) I`) with Algorithms 3.5 and 3.6 (strong Wolfe conditions, `c1 = 1e-4`,
//! `c2 = 0.9`, cubic interpolation in the zoom phase; in the bracketing phase, the next trial step
//! is the secant estimate of the slope's zero, kept within 2 to 10 times the last, rather than the
//! last doubled: the first step from zero is far too short for the linear probe, and doubling cost it
//! several evaluations).

use std::collections::VecDeque;

/// Settings of [`minimize`].
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Correction pairs kept.
    pub memory: usize,
    /// Iterations (accepted line-search steps) at most.
    pub max_iter: usize,
    /// Stop when the Euclidean norm of the gradient is at most this.
    pub gtol: f64,
    /// Function evaluations per line search at most.
    pub max_ls: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            memory: 10,
            max_iter: 500,
            gtol: 1e-6,
            max_ls: 50,
        }
    }
}

/// Why the iteration stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// The gradient norm reached `gtol`.
    Converged,
    /// `max_iter` iterations were done.
    MaxIter,
    /// Even a steepest-descent step could not decrease the objective (rounding level reached).
    LineSearch,
}

/// The result of [`minimize`].
#[derive(Clone, Debug)]
pub struct Minimum {
    pub x: Vec<f64>,
    pub f: f64,
    /// Euclidean norm of the gradient at `x`.
    pub grad_norm: f64,
    pub iterations: usize,
    pub evaluations: usize,
    pub stop: Stop,
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

const C1: f64 = 1e-4;
const C2: f64 = 0.9;

/// A point on the search line: step, value, directional derivative.
#[derive(Clone, Copy)]
struct Pt {
    a: f64,
    f: f64,
    dg: f64,
}

/// The minimizer of the cubic through `lo` and `hi` (values and slopes), kept at least a tenth of the
/// interval away from its ends; bisection where the cubic is not usable.
fn cubic_step(lo: Pt, hi: Pt) -> f64 {
    let (l, h) = (lo.a.min(hi.a), lo.a.max(hi.a));
    let w = h - l;
    let mid = 0.5 * (l + h);
    let d1 = lo.dg + hi.dg - 3.0 * (lo.f - hi.f) / (lo.a - hi.a);
    let disc = d1 * d1 - lo.dg * hi.dg;
    if !disc.is_finite() || disc < 0.0 {
        return mid;
    }
    let d2 = (hi.a - lo.a).signum() * disc.sqrt();
    let a = hi.a - (hi.a - lo.a) * (hi.dg + d2 - d1) / (hi.dg - lo.dg + 2.0 * d2);
    if a.is_finite() && a >= l + 0.1 * w && a <= h - 0.1 * w {
        a
    } else {
        mid
    }
}

/// Minimizes `f` from `x0`. `fg(x, g)` returns `f(x)` and writes its gradient into `g`; `on_iter`
/// sees the iteration count, value and gradient norm after each accepted step.
///
/// Stops at `|grad|_2 <= gtol`, after `max_iter` iterations, or when no step along steepest descent
/// satisfies the sufficient-decrease condition (the objective is flat at rounding level). If the line
/// search fails on a quasi-Newton direction, the memory is cleared and steepest descent is tried once.
/// Deterministic: sequential vector operations, fixed order. Cost per iteration: usually one
/// evaluation, plus `O(m n)` for the two-loop recursion; memory `2 m n` values.
pub fn minimize<F, C>(mut fg: F, x0: Vec<f64>, opts: &Options, mut on_iter: C) -> Minimum
where
    F: FnMut(&[f64], &mut [f64]) -> f64,
    C: FnMut(usize, f64, f64),
{
    let n = x0.len();
    let mut x = x0;
    let mut g = vec![0.0; n];
    let mut f = fg(&x, &mut g);
    let mut evaluations = 1;
    let mut hist: VecDeque<(Vec<f64>, Vec<f64>, f64)> = VecDeque::new();
    let mut d = vec![0.0; n];
    let mut xt = vec![0.0; n];
    let mut gt = vec![0.0; n];
    let mut alpha = vec![0.0; opts.memory];
    let mut iterations = 0;
    let stop = loop {
        let gnorm = dot(&g, &g).sqrt();
        if gnorm <= opts.gtol {
            break Stop::Converged;
        }
        if iterations >= opts.max_iter {
            break Stop::MaxIter;
        }
        // d = -H g by the two-loop recursion.
        d.copy_from_slice(&g);
        for (i, (s, y, rho)) in hist.iter().enumerate().rev() {
            alpha[i] = rho * dot(s, &d);
            d.iter_mut().zip(y).for_each(|(q, yv)| *q -= alpha[i] * yv);
        }
        if let Some((s, y, _)) = hist.back() {
            let gamma = dot(s, y) / dot(y, y);
            d.iter_mut().for_each(|q| *q *= gamma);
        }
        for (i, (s, y, rho)) in hist.iter().enumerate() {
            let b = rho * dot(y, &d);
            d.iter_mut()
                .zip(s)
                .for_each(|(r, sv)| *r += (alpha[i] - b) * sv);
        }
        d.iter_mut().for_each(|v| *v = -*v);
        let mut dg0 = dot(&d, &g);
        if dg0.is_nan() || dg0 >= 0.0 {
            // Not a descent direction (rounding): restart from steepest descent.
            hist.clear();
            d.iter_mut().zip(&g).for_each(|(di, gi)| *di = -gi);
            dg0 = -gnorm * gnorm;
        }
        let a0 = if hist.is_empty() {
            (1.0 / gnorm).min(1.0)
        } else {
            1.0
        };
        let mut eval = |a: f64, xt: &mut [f64], gt: &mut [f64]| -> Pt {
            xt.iter_mut()
                .zip(&x)
                .zip(&d)
                .for_each(|((t, xi), di)| *t = xi + a * di);
            let fa = fg(xt, gt);
            evaluations += 1;
            Pt {
                a,
                f: fa,
                dg: dot(gt, &d),
            }
        };
        match line_search(&mut eval, &mut xt, &mut gt, f, dg0, a0, opts.max_ls) {
            Some(fnew) => {
                let s: Vec<f64> = xt.iter().zip(&x).map(|(a, b)| a - b).collect();
                let y: Vec<f64> = gt.iter().zip(&g).map(|(a, b)| a - b).collect();
                let sy = dot(&s, &y);
                // Keep the pair only if it keeps H positive definite.
                if sy > f64::EPSILON * dot(&y, &y) {
                    if hist.len() == opts.memory {
                        hist.pop_front();
                    }
                    hist.push_back((s, y, 1.0 / sy));
                }
                std::mem::swap(&mut x, &mut xt);
                std::mem::swap(&mut g, &mut gt);
                f = fnew;
                iterations += 1;
                on_iter(iterations, f, dot(&g, &g).sqrt());
            }
            None if !hist.is_empty() => hist.clear(),
            None => break Stop::LineSearch,
        }
    };
    let grad_norm = dot(&g, &g).sqrt();
    Minimum {
        x,
        f,
        grad_norm,
        iterations,
        evaluations,
        stop,
    }
}

/// Nocedal & Wright Algorithms 3.5 (bracketing) and 3.6 (zoom). On success the accepted point is in
/// `xt`, its gradient in `gt`, and its value is returned. If the evaluations run out after a point with
/// sufficient decrease was found, that point is returned (re-evaluated into `xt`, `gt`); else `None`.
fn line_search(
    eval: &mut impl FnMut(f64, &mut [f64], &mut [f64]) -> Pt,
    xt: &mut [f64],
    gt: &mut [f64],
    f0: f64,
    dg0: f64,
    a_init: f64,
    max_ls: usize,
) -> Option<f64> {
    let armijo = |p: Pt| p.f.is_finite() && p.f <= f0 + C1 * p.a * dg0;
    let curvature = |p: Pt| p.dg.abs() <= -C2 * dg0;
    let mut prev = Pt {
        a: 0.0,
        f: f0,
        dg: dg0,
    };
    let mut a = a_init;
    let mut used = 0;
    let (mut lo, mut hi) = loop {
        if used == max_ls {
            return None;
        }
        let p = eval(a, xt, gt);
        used += 1;
        if !armijo(p) || (prev.a > 0.0 && p.f >= prev.f) {
            break (prev, p);
        }
        if curvature(p) {
            return Some(p.f);
        }
        if p.dg >= 0.0 {
            break (p, prev);
        }
        // Still descending: extrapolate to where the slope would vanish (secant on the slopes),
        // kept within 2 to 10 times the current step.
        let secant = p.a - p.dg * (p.a - prev.a) / (p.dg - prev.dg);
        let next = if secant.is_finite() {
            secant.clamp(2.0 * p.a, 10.0 * p.a)
        } else {
            2.0 * p.a
        };
        prev = p;
        a = next;
    };
    while used < max_ls {
        let a = if lo.f.is_finite() && hi.f.is_finite() && hi.dg.is_finite() {
            cubic_step(lo, hi)
        } else {
            0.5 * (lo.a + hi.a)
        };
        if (hi.a - lo.a).abs() <= f64::EPSILON * lo.a.abs().max(hi.a.abs()) {
            break;
        }
        let p = eval(a, xt, gt);
        used += 1;
        if !armijo(p) || p.f >= lo.f {
            hi = p;
        } else {
            if curvature(p) {
                return Some(p.f);
            }
            if p.dg * (hi.a - lo.a) >= 0.0 {
                hi = lo;
            }
            lo = p;
        }
    }
    if lo.a > 0.0 && lo.f < f0 {
        Some(eval(lo.a, xt, gt).f)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rosenbrock() {
        let fg = |x: &[f64], g: &mut [f64]| {
            let (a, b) = (x[0], x[1]);
            g[0] = -2.0 * (1.0 - a) - 400.0 * a * (b - a * a);
            g[1] = 200.0 * (b - a * a);
            (1.0 - a).powi(2) + 100.0 * (b - a * a).powi(2)
        };
        let opts = Options {
            gtol: 1e-10,
            ..Options::default()
        };
        let m = minimize(fg, vec![-1.2, 1.0], &opts, |_, _, _| {});
        assert_eq!(m.stop, Stop::Converged);
        assert!(
            (m.x[0] - 1.0).abs() < 1e-8 && (m.x[1] - 1.0).abs() < 1e-8,
            "{:?}",
            m.x
        );
        assert!(m.iterations < 100);
    }

    #[test]
    fn ill_conditioned_quadratic() {
        // f = 1/2 sum_i c_i x_i^2 with condition number 1e3; minimum at 0.
        let c: Vec<f64> = (0..50).map(|i| 10f64.powf(3.0 * i as f64 / 49.0)).collect();
        let fg = |x: &[f64], g: &mut [f64]| {
            let mut f = 0.0;
            for i in 0..x.len() {
                g[i] = c[i] * x[i];
                f += 0.5 * c[i] * x[i] * x[i];
            }
            f
        };
        let m = minimize(fg, vec![1.0; 50], &Options::default(), |_, _, _| {});
        // scipy's L-BFGS-B (maxcor 10) needs 286 iterations to reach gradient norm 2.5e-7 here.
        assert_eq!(m.stop, Stop::Converged);
        assert!(m.iterations < 350, "{}", m.iterations);
        assert!(m.grad_norm <= 1e-6);
        assert!(m.x.iter().zip(&c).all(|(x, c)| (x * c).abs() <= 1e-6));
    }
}
