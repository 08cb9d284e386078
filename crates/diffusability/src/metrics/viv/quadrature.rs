//! Quadrature rules for the time integrals of VIV: Gauss-Hermite for the logit-normal time weighting
//! (`viv_logit_normal`) and Gauss-Legendre on `[0, 1]` for the Monte Carlo marginal (`viv_marginal`).
//!
//! Both rules come from the Golub-Welsch algorithm (Golub & Welsch 1969): the nodes are the eigenvalues
//! of the Jacobi matrix of the orthogonal polynomials' three-term recurrence and the weights are
//! `mu_0` times the squared first components of its normalized eigenvectors. The eigenproblem is
//! solved by faer's symmetric eigensolver ([`crate::linalg::sym_eigen`]); the rules are symmetrized
//! afterwards (nodes `x_i = -x_{n-1-i}`, equal weights), which removes the rounding asymmetry.

use crate::linalg;
use faer::Mat;

/// Nodes and weights of an `n`-point Gauss rule, ascending nodes.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    pub nodes: Vec<f64>,
    pub weights: Vec<f64>,
}

/// Golub-Welsch for a symmetric weight (zero diagonal): `offdiag[k-1] = b_k`, `k = 1..n-1`.
fn golub_welsch(n: usize, offdiag: impl Fn(usize) -> f64, mu0: f64) -> Rule {
    assert!(n >= 1, "a quadrature rule needs at least one node");
    let j = Mat::from_fn(n, n, |r, c| {
        if r == c + 1 || c == r + 1 {
            offdiag(r.max(c))
        } else {
            0.0
        }
    });
    let (x, v) = linalg::sym_eigen(j.as_ref()).expect("the Jacobi matrix is finite and symmetric");
    let mut nodes = x;
    let mut weights: Vec<f64> = (0..n).map(|i| mu0 * v[(0, i)] * v[(0, i)]).collect();
    for i in 0..n / 2 {
        let k = n - 1 - i;
        let xi = 0.5 * (nodes[k] - nodes[i]);
        nodes[i] = -xi;
        nodes[k] = xi;
        let w = 0.5 * (weights[i] + weights[k]);
        weights[i] = w;
        weights[k] = w;
    }
    if n % 2 == 1 {
        nodes[n / 2] = 0.0;
    }
    Rule { nodes, weights }
}

/// The `n`-point Gauss-Hermite rule for `integral f(x) exp(-x^2) dx` over the real line
/// (Jacobi matrix: zero diagonal, `b_k = sqrt(k / 2)`; `mu_0 = sqrt(pi)`). Exact for polynomials of
/// degree `2n - 1`. Cost `O(n^3)` (dense symmetric eigensolver).
pub fn gauss_hermite(n: usize) -> Rule {
    golub_welsch(n, |k| (k as f64 / 2.0).sqrt(), std::f64::consts::PI.sqrt())
}

/// The `n`-point Gauss-Legendre rule on `[0, 1]` for `integral_0^1 f(t) dt` (Jacobi matrix on
/// `[-1, 1]`: zero diagonal, `b_k = k / sqrt(4k^2 - 1)`, `mu_0 = 2`; then mapped to `[0, 1]`).
pub fn gauss_legendre_unit(n: usize) -> Rule {
    let r = golub_welsch(
        n,
        |k| {
            let k = k as f64;
            k / (4.0 * k * k - 1.0).sqrt()
        },
        2.0,
    );
    Rule {
        nodes: r.nodes.iter().map(|x| 0.5 * (x + 1.0)).collect(),
        weights: r.weights.iter().map(|w| 0.5 * w).collect(),
    }
}

/// A point in time with both `t` and `1 - t` computed without cancellation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TimeNode {
    pub t: f64,
    pub one_minus_t: f64,
    pub weight: f64,
}

/// The time distribution `t = sigmoid(u)`, `u ~ N(mean, std^2)` (logit-normal; LightningDiT samples
/// training timesteps this way with mean 0, std 1).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LogitNormal {
    pub mean: f64,
    pub std: f64,
}

impl LogitNormal {
    /// The number of Gauss-Hermite nodes used for this distribution: `max(64, ceil(80 std^2))`.
    ///
    /// Why it grows with `std^2`: `V(t(u))` is analytic in `u` with poles at `Im u = +-pi/2`
    /// (where `1 + lam e^{2u} = 0`), so after the substitution `u = mean + sqrt(2) std x` the
    /// integrand is analytic in a strip of half-width `d = pi / (2 sqrt(2) std)` and the `n`-point
    /// Gauss-Hermite error decays like `exp(-2 d sqrt(2n))`. `n = 80 std^2` keeps that below `1e-12`
    /// (about `1e-13` at `std = 1`, checked against adaptive quadrature in the tests).
    pub fn node_count(&self) -> usize {
        let n = (80.0 * self.std * self.std).ceil();
        (n as usize).max(64)
    }

    /// Nodes and weights in `t` such that `E[f(t)] ~= sum_i w_i f(t_i)`, from the Gauss-Hermite rule
    /// in `u`: `u_i = mean + sqrt(2) std x_i`, `w_i = w^GH_i / sqrt(pi)`. Nodes whose weight
    /// underflows to zero are dropped.
    pub fn nodes(&self) -> Vec<TimeNode> {
        let rule = gauss_hermite(self.node_count());
        let norm = std::f64::consts::PI.sqrt();
        rule.nodes
            .iter()
            .zip(&rule.weights)
            .filter(|(_, w)| **w > 0.0)
            .map(|(x, w)| {
                let u = self.mean + std::f64::consts::SQRT_2 * self.std * x;
                TimeNode {
                    t: sigmoid(u),
                    one_minus_t: sigmoid(-u),
                    weight: w / norm,
                }
            })
            .collect()
    }
}

/// `1 / (1 + exp(-u))`, accurate in both tails.
pub fn sigmoid(u: f64) -> f64 {
    if u >= 0.0 {
        1.0 / (1.0 + (-u).exp())
    } else {
        let e = u.exp();
        e / (1.0 + e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hermite_integrates_moments() {
        let r = gauss_hermite(20);
        let pi = std::f64::consts::PI;
        let m = |k: i32| -> f64 {
            r.nodes
                .iter()
                .zip(&r.weights)
                .map(|(x, w)| w * x.powi(k))
                .sum()
        };
        assert!((m(0) - pi.sqrt()).abs() < 1e-14);
        assert!(m(1).abs() < 1e-14);
        assert!((m(2) - pi.sqrt() / 2.0).abs() < 1e-13);
        assert!((m(10) - pi.sqrt() * 945.0 / 32.0).abs() < 1e-10);
    }

    #[test]
    fn legendre_integrates_polynomials_and_smooth_functions() {
        let r = gauss_legendre_unit(16);
        let i = |f: &dyn Fn(f64) -> f64| -> f64 {
            r.nodes.iter().zip(&r.weights).map(|(t, w)| w * f(*t)).sum()
        };
        assert!((i(&|_| 1.0) - 1.0).abs() < 1e-14);
        assert!((i(&|t| t.powi(31)) - 1.0 / 32.0).abs() < 1e-14);
        assert!((i(&|t| t.exp()) - (1f64.exp() - 1.0)).abs() < 1e-14);
        assert!(r.nodes.iter().all(|t| *t > 0.0 && *t < 1.0));
    }

    #[test]
    fn logit_normal_nodes_are_a_probability_rule() {
        let ln = LogitNormal {
            mean: 0.3,
            std: 1.2,
        };
        let nodes = ln.nodes();
        assert!(nodes.len() >= 64);
        let total: f64 = nodes.iter().map(|n| n.weight).sum();
        assert!((total - 1.0).abs() < 1e-13);
        let mean_u: f64 = nodes
            .iter()
            .map(|n| n.weight * (n.t / n.one_minus_t).ln())
            .sum();
        assert!((mean_u - 0.3).abs() < 1e-10);
        for n in &nodes {
            assert!((n.t + n.one_minus_t - 1.0).abs() < 1e-15);
        }
    }
}
