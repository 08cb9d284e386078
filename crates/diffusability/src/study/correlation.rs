//! Correlation coefficients and their p-values, as `scipy.stats` computes them with default arguments:
//! `pearsonr` (with its Fisher-z interval), `spearmanr` and `kendalltau` (tau-b, `method='auto'`), plus
//! a seeded percentile bootstrap and the leave-one-out range of Pearson's r.
//!
//! Every function takes paired samples `x`, `y` of equal length `n` and returns `None` where scipy returns
//! NaN (a constant input, too few points), so callers turn that into a warning instead of a NaN.
//! p-values are two-sided. Costs are O(n log n) except Kendall's O(n^2) pair count: `n` is the number of
//! tokenizers (tens to hundreds), and counting pairs directly keeps the integer counts exact.

use rand::Rng;
use statrs::distribution::{ContinuousCDF, Normal};
use statrs::function::beta::checked_beta_reg;
// libm's erfc (a port of FreeBSD's, ~1 ulp): statrs' erfc carries Boost's float-typed offsets as f64
// decimals and is off by up to ~1e-10 relative (e.g. at 0.6), more than the 1e-9 budget against scipy.
use libm::erfc;

/// Pearson's r with its two-sided p-value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pearson {
    pub r: f64,
    pub p: f64,
}

/// The regularized incomplete beta `I_x(a, b)` given both `x` and `xc = 1 - x` (each computed
/// accurately by the caller), evaluated on the side where the continued fraction converges and without
/// forming `1 - x`: statrs' `beta_reg` rounds `x` within 1e-15 of 1 to 1, which would cost up to
/// ~3e-8 in a p-value near 1.
fn inc_beta(a: f64, b: f64, x: f64, xc: f64) -> Option<f64> {
    if x <= 0.0 {
        return Some(0.0);
    }
    if xc <= 0.0 {
        return Some(1.0);
    }
    if x < (a + 1.0) / (a + b + 2.0) {
        checked_beta_reg(a, b, x).ok()
    } else {
        checked_beta_reg(b, a, xc).ok().map(|v| 1.0 - v)
    }
}

fn is_constant(x: &[f64]) -> bool {
    x.iter().all(|v| *v == x[0])
}

/// Pearson's r exactly as `scipy.stats.pearsonr` forms it (centred vectors scaled by their max before the
/// norm, dot product of the unit vectors, clipped to [-1, 1]); `None` if `n < 2` or an input is constant.
pub fn pearson_r(x: &[f64], y: &[f64]) -> Option<f64> {
    let n = x.len();
    if n < 2 || y.len() != n || is_constant(x) || is_constant(y) {
        return None;
    }
    let unit = |v: &[f64]| -> Option<Vec<f64>> {
        let mean = v.iter().sum::<f64>() / n as f64;
        let c: Vec<f64> = v.iter().map(|a| a - mean).collect();
        let max = c.iter().fold(0.0f64, |m, a| m.max(a.abs()));
        if max == 0.0 || !max.is_finite() {
            return None;
        }
        let norm = max * c.iter().map(|a| (a / max) * (a / max)).sum::<f64>().sqrt();
        Some(c.iter().map(|a| a / norm).collect())
    };
    let (ux, uy) = (unit(x)?, unit(y)?);
    let r: f64 = ux.iter().zip(&uy).map(|(a, b)| a * b).sum();
    r.is_finite().then(|| r.clamp(-1.0, 1.0))
}

/// `scipy.stats.pearsonr(x, y)`: r and the two-sided p-value of the exact null distribution of r, the
/// beta distribution on (-1, 1) with `a = b = n/2 - 1`: `p = 2 I_{(1-|r|)/2}(n/2-1, n/2-1)`, which equals
/// the t-test `t = r sqrt((n-2)/(1-r^2))` with n - 2 degrees of freedom. For n = 2, r = ±1 and p = 1.
pub fn pearson(x: &[f64], y: &[f64]) -> Option<Pearson> {
    let n = x.len();
    let r = pearson_r(x, y)?;
    if n == 2 {
        return Some(Pearson {
            r: r.round(),
            p: 1.0,
        });
    }
    let ab = n as f64 / 2.0 - 1.0;
    // scipy evaluates the upper tail of the beta at (|r| + 1) / 2; its complement is exact in floating point.
    let u = (r.abs() + 1.0) / 2.0;
    let p = 2.0 * inc_beta(ab, ab, 1.0 - u, u)?;
    Some(Pearson {
        r,
        p: p.clamp(0.0, 1.0),
    })
}

/// The standard normal quantile (`scipy.special.ndtri`): statrs' value refined by one Newton step on
/// the accurate `Phi(x) = erfc(-x / sqrt 2) / 2`, so that its accuracy follows libm's erfc.
fn normal_quantile(p: f64) -> f64 {
    let x = Normal::standard().inverse_cdf(p);
    if !x.is_finite() {
        return x;
    }
    let phi = (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
    let cdf = 0.5 * erfc(-x / std::f64::consts::SQRT_2);
    if phi > 0.0 { x - (cdf - p) / phi } else { x }
}

/// Fisher-z confidence interval of Pearson's r at `level` (e.g. 0.95), as
/// `scipy.stats.pearsonr(x, y).confidence_interval(level)`: `tanh(atanh(r) ± z_{(1+level)/2} / sqrt(n-3))`;
/// `[-1, 1]` for `n <= 3` (scipy's convention: the standard error is infinite).
pub fn fisher_ci(r: f64, n: usize, level: f64) -> [f64; 2] {
    if n <= 3 {
        return [-1.0, 1.0];
    }
    let zr = r.atanh();
    let se = (1.0 / (n as f64 - 3.0)).sqrt();
    let h = normal_quantile(0.5 + level / 2.0);
    [(zr - h * se).tanh(), (zr + h * se).tanh()]
}

/// Ranks 1..n with ties given their average rank (`scipy.stats.rankdata(method='average')`).
pub fn rank_average(x: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..x.len()).collect();
    idx.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let mut ranks = vec![0.0; x.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i + 1;
        while j < idx.len() && x[idx[j]] == x[idx[i]] {
            j += 1;
        }
        // positions i..j (0-based) hold ranks i+1..=j: their mean is (i + 1 + j) / 2
        let avg = (i + 1 + j) as f64 / 2.0;
        for &k in &idx[i..j] {
            ranks[k] = avg;
        }
        i = j;
    }
    ranks
}

/// Spearman's rho with its p-value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spearman {
    pub rho: f64,
    pub p: f64,
}

/// `scipy.stats.spearmanr(x, y)`: Pearson's r of the average ranks; two-sided p from Student's t with
/// `n - 2` degrees of freedom, `t = rho sqrt((n-2) / ((1+rho)(1-rho)))`, i.e. `p = I_{1-rho^2}((n-2)/2, 1/2)`.
/// `None` if `n < 3` or an input is constant.
pub fn spearman(x: &[f64], y: &[f64]) -> Option<Spearman> {
    let n = x.len();
    if n < 3 || is_constant(x) || is_constant(y) {
        return None;
    }
    let rho = pearson_r(&rank_average(x), &rank_average(y))?;
    let dof = (n - 2) as f64;
    // dof / (dof + t^2) = (1+rho)(1-rho) and t^2 / (dof + t^2) = rho^2, both formed without cancellation.
    let p = inc_beta(dof / 2.0, 0.5, (1.0 + rho) * (1.0 - rho), rho * rho)?;
    Some(Spearman {
        rho,
        p: p.clamp(0.0, 1.0),
    })
}

/// How Kendall's p-value was computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KendallMethod {
    /// The exact null distribution of the concordant count (no ties).
    Exact,
    /// The normal approximation with the tie-corrected variance.
    Asymptotic,
}

impl KendallMethod {
    pub fn as_str(&self) -> &'static str {
        match self {
            KendallMethod::Exact => "exact",
            KendallMethod::Asymptotic => "asymptotic",
        }
    }
}

/// Kendall's tau-b with its p-value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Kendall {
    pub tau: f64,
    pub p: f64,
    pub method: KendallMethod,
}

/// Tie statistics of one variable, as scipy's `count_rank_tie`: `sum t(t-1)/2`, `sum t(t-1)(t-2)`,
/// `sum t(t-1)(2t+5)` over groups of `t` equal values.
fn tie_counts(x: &[f64]) -> (u128, u128, u128) {
    let mut v = x.to_vec();
    v.sort_by(f64::total_cmp);
    let (mut pairs, mut t3, mut t5) = (0u128, 0u128, 0u128);
    let mut i = 0;
    while i < v.len() {
        let mut j = i + 1;
        while j < v.len() && v[j] == v[i] {
            j += 1;
        }
        let t = (j - i) as u128;
        if t > 1 {
            pairs += t * (t - 1) / 2;
            t3 += t * (t - 1) * (t - 2);
            t5 += t * (t - 1) * (2 * t + 5);
        }
        i = j;
    }
    (pairs, t3, t5)
}

/// `scipy.stats.kendalltau(x, y)` (tau-b, `method='auto'`):
/// `tau_b = (C - D) / sqrt((n0 - n1)(n0 - n2))` with `n0 = n(n-1)/2` and `n1`, `n2` the tied pairs in x
/// and y. p-value: the exact distribution ([`kendall_p_exact`]) when neither variable has ties and
/// `n <= 33` or `min(D, n0 - D) <= 1` (scipy's rule); otherwise the normal approximation of `C - D` with
/// variance `(v0 - vt - vu)/18 + (2 n1 n2)/(n(n-1)) + t3 u3 / (9 n(n-1)(n-2))` (Kendall 1970, as scipy).
/// `None` if `n < 3` or an input is constant.
pub fn kendall_tau_b(x: &[f64], y: &[f64]) -> Option<Kendall> {
    let n = x.len();
    if n < 3 || y.len() != n || is_constant(x) || is_constant(y) {
        return None;
    }
    let (mut con_minus_dis, mut dis) = (0i128, 0u128);
    for i in 0..n {
        for j in i + 1..n {
            if x[i] == x[j] || y[i] == y[j] {
                continue;
            }
            if (x[i] < x[j]) == (y[i] < y[j]) {
                con_minus_dis += 1;
            } else {
                con_minus_dis -= 1;
                dis += 1;
            }
        }
    }
    let (xtie, x0, x1) = tie_counts(x);
    let (ytie, y0, y1) = tie_counts(y);
    let tot = (n * (n - 1) / 2) as u128;
    let tau = (con_minus_dis as f64 / ((tot - xtie) as f64).sqrt() / ((tot - ytie) as f64).sqrt())
        .clamp(-1.0, 1.0);
    let exact = xtie == 0 && ytie == 0 && (n <= 33 || dis.min(tot - dis) <= 1);
    let (p, method) = if exact {
        (kendall_p_exact(n, (tot - dis) as u64), KendallMethod::Exact)
    } else {
        let nf = n as f64;
        let m = nf * (nf - 1.0);
        let var = (m * (2.0 * nf + 5.0) - x1 as f64 - y1 as f64) / 18.0
            + (2.0 * xtie as f64 * ytie as f64) / m
            + (x0 as f64 * y0 as f64) / (9.0 * m * (nf - 2.0));
        if var <= 0.0 || !var.is_finite() {
            return None;
        }
        let z = con_minus_dis as f64 / var.sqrt();
        // 2 * Phi(-|z|)
        (
            erfc(z.abs() / std::f64::consts::SQRT_2),
            KendallMethod::Asymptotic,
        )
    };
    Some(Kendall {
        tau,
        p: p.clamp(0.0, 1.0),
        method,
    })
}

/// Two-sided exact p-value of Kendall's statistic with `c` concordant pairs among `n` untied points:
/// the counts of permutations by number of inversions (Kendall, "Rank Correlation Methods", 1970),
/// built by the recurrence scipy uses (`scipy/stats/_mstats_basic.py: _kendall_p_exact`), doubled
/// from the nearer tail. O(n c) time, O(c) memory.
pub fn kendall_p_exact(n: usize, c: u64) -> f64 {
    let tot = (n as u64) * (n as u64).saturating_sub(1) / 2;
    let c = c.min(tot - c) as usize;
    let factorial = |k: usize| (1..=k).fold(1.0f64, |f, i| f * i as f64);
    let prob = if n <= 2 {
        1.0
    } else if c == 0 {
        if n < 171 { 2.0 / factorial(n) } else { 0.0 }
    } else if c == 1 {
        if n < 172 { 2.0 / factorial(n - 1) } else { 0.0 }
    } else if 4 * c as u64 == (n as u64) * (n as u64 - 1) {
        1.0
    } else {
        let mut new = vec![0.0f64; c + 1];
        new[0] = 1.0;
        new[1] = 1.0;
        let scaled = n >= 171;
        for j in 3..=n {
            let mut acc = 0.0;
            for v in new.iter_mut() {
                acc += *v;
                *v = if scaled { acc / j as f64 } else { acc };
            }
            if j <= c {
                // new[j..] -= new[..c+1-j], right-hand side taken before the update (numpy buffers overlaps)
                let old = new.clone();
                for k in j..=c {
                    new[k] -= old[k - j];
                }
            }
        }
        let sum: f64 = new.iter().sum();
        if scaled {
            sum
        } else {
            2.0 * sum / factorial(n)
        }
    };
    prob.clamp(0.0, 1.0)
}

/// A percentile bootstrap interval of Pearson's r.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BootstrapCi {
    pub lo: f64,
    pub hi: f64,
    /// Resamples with a defined r (a resample whose x or y is constant has none and is skipped).
    pub used: usize,
}

/// Linear-interpolated percentile of sorted values (numpy's default `method='linear'`), `q` in [0, 1].
fn percentile_sorted(v: &[f64], q: f64) -> f64 {
    let pos = q * (v.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
}

/// Percentile bootstrap of Pearson's r: `resamples` draws of n rows with replacement from `rng`, the
/// `(1-level)/2` and `(1+level)/2` percentiles (linear interpolation) of the resampled r. Resamples with
/// a constant column are skipped and counted out of `used`. `None` if `n < 3` or no resample is usable.
/// O(resamples n).
pub fn bootstrap_pearson_ci<R: Rng>(
    x: &[f64],
    y: &[f64],
    resamples: usize,
    level: f64,
    rng: &mut R,
) -> Option<BootstrapCi> {
    let n = x.len();
    if n < 3 || y.len() != n {
        return None;
    }
    let (mut bx, mut by) = (vec![0.0; n], vec![0.0; n]);
    let mut rs = Vec::with_capacity(resamples);
    for _ in 0..resamples {
        for k in 0..n {
            let i = rng.random_range(0..n);
            bx[k] = x[i];
            by[k] = y[i];
        }
        if let Some(r) = pearson_r(&bx, &by) {
            rs.push(r);
        }
    }
    if rs.is_empty() {
        return None;
    }
    rs.sort_by(f64::total_cmp);
    let a = (1.0 - level) / 2.0;
    Some(BootstrapCi {
        lo: percentile_sorted(&rs, a),
        hi: percentile_sorted(&rs, 1.0 - a),
        used: rs.len(),
    })
}

/// The smallest and largest Pearson's r over the `n` leave-one-out subsets; subsets with a constant
/// column are skipped. `None` if `n < 4` (subsets of two points always give r = ±1) or no subset has an r.
/// O(n^2).
pub fn loo_pearson_range(x: &[f64], y: &[f64]) -> Option<[f64; 2]> {
    let n = x.len();
    if n < 4 || y.len() != n {
        return None;
    }
    let mut range: Option<[f64; 2]> = None;
    for i in 0..n {
        let sx: Vec<f64> = (0..n).filter(|&k| k != i).map(|k| x[k]).collect();
        let sy: Vec<f64> = (0..n).filter(|&k| k != i).map(|k| y[k]).collect();
        if let Some(r) = pearson_r(&sx, &sy) {
            range = Some(match range {
                None => [r, r],
                Some([lo, hi]) => [lo.min(r), hi.max(r)],
            });
        }
    }
    range
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn average_ranks_of_ties() {
        assert_eq!(
            rank_average(&[3.0, 1.0, 3.0, 2.0, 3.0]),
            vec![4.0, 1.0, 4.0, 2.0, 4.0]
        );
        assert_eq!(rank_average(&[2.0, 2.0]), vec![1.5, 1.5]);
    }

    #[test]
    fn constant_inputs_have_no_correlation() {
        let x = [1.0, 1.0, 1.0, 1.0];
        let y = [1.0, 2.0, 3.0, 4.0];
        assert!(pearson(&x, &y).is_none());
        assert!(spearman(&y, &x).is_none());
        assert!(kendall_tau_b(&x, &y).is_none());
        assert!(loo_pearson_range(&x, &y).is_none());
    }

    #[test]
    fn perfect_monotone_relations() {
        let x = [1.0, 2.0, 3.0, 4.0, 5.0];
        let y = [2.0, 4.0, 6.0, 8.0, 10.0];
        let p = pearson(&x, &y).unwrap();
        assert!((p.r - 1.0).abs() < 1e-15 && p.p < 1e-12, "{p:?}");
        let s = spearman(&x, &y).unwrap();
        assert!((s.rho - 1.0).abs() < 1e-15 && s.p < 1e-6, "{s:?}");
        let k = kendall_tau_b(&x, &y).unwrap();
        assert!((k.tau - 1.0).abs() < 1e-15);
        assert_eq!(k.method, KendallMethod::Exact);
        // 2 / 5! : only the identity permutation has no inversion
        assert!((k.p - 2.0 / 120.0).abs() < 1e-15);
    }

    #[test]
    fn exact_kendall_distribution_sums_to_one() {
        // With n = 6 (15 pairs) the two-sided p of the median statistic is 1, and p is symmetric in c.
        for c in 0..=15u64 {
            assert!((kendall_p_exact(6, c) - kendall_p_exact(6, 15 - c)).abs() < 1e-15);
        }
        // n = 4: inversion counts 0..6 occur 1,3,5,6,5,3,1 times among 24 permutations.
        let counts = [1.0, 3.0, 5.0, 6.0, 5.0, 3.0, 1.0];
        for c in 0..=2usize {
            let tail: f64 = counts[..=c].iter().sum::<f64>() / 24.0;
            assert!(
                (kendall_p_exact(4, c as u64) - 2.0 * tail).abs() < 1e-15,
                "c = {c}"
            );
        }
    }

    #[test]
    fn fisher_interval_is_the_whole_range_for_three_points() {
        assert_eq!(fisher_ci(0.5, 3, 0.95), [-1.0, 1.0]);
        let [lo, hi] = fisher_ci(0.5, 30, 0.95);
        assert!(lo < 0.5 && 0.5 < hi);
        // scipy.special.ndtri(0.975)
        assert!((normal_quantile(0.975) - 1.959963984540054).abs() < 1e-15);
    }

    #[test]
    fn incomplete_beta_near_one_keeps_its_tail() {
        // I_x(a, 1/2) for x = 1 - 1e-16: 1 - I_{1e-16}(1/2, a) ~ 1 - 1e-8 * const, not 1.
        let v = inc_beta(5.0, 0.5, 1.0 - 1e-16, 1e-16).unwrap();
        assert!(v < 1.0 - 1e-9, "{v}");
    }

    #[test]
    fn bootstrap_is_deterministic_for_a_seed() {
        let x: Vec<f64> = (0..20).map(|i| i as f64).collect();
        let y: Vec<f64> = x.iter().map(|v| v + (v * 1.7).sin() * 3.0).collect();
        let a = bootstrap_pearson_ci(&x, &y, 500, 0.95, &mut crate::stats::rng::stream(1, "t"));
        let b = bootstrap_pearson_ci(&x, &y, 500, 0.95, &mut crate::stats::rng::stream(1, "t"));
        let c = bootstrap_pearson_ci(&x, &y, 500, 0.95, &mut crate::stats::rng::stream(2, "t"));
        assert_eq!(a, b);
        assert_ne!(a, c);
        let a = a.unwrap();
        let r = pearson_r(&x, &y).unwrap();
        assert!(a.lo < r && r < a.hi);
        assert_eq!(a.used, 500);
    }
}
