//! Eigenvalues of a symmetric tridiagonal matrix by the root-free QL/QR iteration of Pal, Walker and
//! Kahan (the algorithm of LAPACK's `dsterf`), for [`super::sym_eigvals`].
//!
//! Written here because faer's eigenvalue-only path runs its tridiagonal QR with a Givens rotation
//! per step whose `hypot` costs more than the rest of the step: for the 256 x 256 spatial factor of
//! every VIV class it took about as long as reducing the matrix to tridiagonal form. The root-free
//! iteration works on the squared off-diagonal entries and needs one division per step and no
//! square root; like the QR iteration it is backward stable (eigenvalues within a small multiple of
//! `eps * ||T||`).

/// The eigenvalues of the symmetric tridiagonal matrix with diagonal `d` and off-diagonal `e`
/// (`e.len() + 1 == d.len()`, or both empty), unsorted, written over `d`. Returns `false` when the
/// iteration did not converge within `30 n` steps, or when the entries are too large or too small
/// to square safely (the caller then uses another method).
pub fn eigenvalues_in_place(d: &mut [f64], e: &mut [f64]) -> bool {
    let n = d.len();
    assert!(e.len() + 1 == n || (n == 0 && e.is_empty()));
    if n <= 1 {
        return true;
    }
    if !d.iter().chain(e.iter()).all(|x| x.is_finite()) {
        return false;
    }
    let norm = d.iter().chain(e.iter()).fold(0.0f64, |m, x| m.max(x.abs()));
    // The iteration squares off-diagonal entries: keep them clear of overflow and underflow.
    if norm > 1e150 || (norm > 0.0 && norm < 1e-120) {
        return false;
    }
    let eps = f64::EPSILON / 2.0;
    let eps2 = eps * eps;
    let max_iter = 30 * n;
    let mut iter = 0;
    let mut l1 = 0;
    while l1 < n {
        if l1 > 0 {
            e[l1 - 1] = 0.0;
        }
        // The unreduced block starting at l1: up to the first negligible off-diagonal entry.
        let mut m = l1;
        while m + 1 < n {
            let t = e[m].abs();
            if t == 0.0 {
                break;
            }
            if t <= d[m].abs().sqrt() * d[m + 1].abs().sqrt() * eps {
                e[m] = 0.0;
                break;
            }
            m += 1;
        }
        let (mut l, mut lend) = (l1, m);
        l1 = m + 1;
        if lend == l {
            continue;
        }
        for v in &mut e[l..lend] {
            *v *= *v;
        }
        // QL when the block's top is the smaller end, else QR (converges from the small end).
        if d[lend].abs() < d[l].abs() {
            std::mem::swap(&mut l, &mut lend);
        }
        if lend >= l {
            // QL iteration: eigenvalues found at the top, l moves down.
            loop {
                let mut m = l;
                while m < lend {
                    if e[m].abs() <= eps2 * (d[m] * d[m + 1]).abs() {
                        break;
                    }
                    m += 1;
                }
                if m < lend {
                    e[m] = 0.0;
                }
                let p = d[l];
                if m == l {
                    l += 1;
                    if l > lend {
                        break;
                    }
                    continue;
                }
                if m == l + 1 {
                    let (a, b) = eig2(d[l], e[l].sqrt(), d[l + 1]);
                    d[l] = a;
                    d[l + 1] = b;
                    e[l] = 0.0;
                    l += 2;
                    if l > lend {
                        break;
                    }
                    continue;
                }
                if iter == max_iter {
                    break;
                }
                iter += 1;
                let sigma = shift(p, d[l + 1], e[l]);
                let (mut c, mut s) = (1.0, 0.0);
                let mut gamma = d[m] - sigma;
                let mut p = gamma * gamma;
                for i in (l..m).rev() {
                    let bb = e[i];
                    let r = p + bb;
                    if i + 1 != m {
                        e[i + 1] = s * r;
                    }
                    let oldc = c;
                    c = p / r;
                    s = bb / r;
                    let rp = r / p;
                    let oldgam = gamma;
                    let alpha = d[i];
                    gamma = c * (alpha - sigma) - s * oldgam;
                    d[i + 1] = oldgam + (alpha - gamma);
                    p = next_p(gamma, c, rp, oldc, bb);
                }
                e[l] = s * p;
                d[l] = sigma + gamma;
            }
        } else {
            // QR iteration: eigenvalues found at the bottom, l moves up.
            loop {
                let mut m = l;
                while m > lend {
                    if e[m - 1].abs() <= eps2 * (d[m] * d[m - 1]).abs() {
                        break;
                    }
                    m -= 1;
                }
                if m > lend {
                    e[m - 1] = 0.0;
                }
                let p = d[l];
                if m == l {
                    if l == lend {
                        break;
                    }
                    l -= 1;
                    continue;
                }
                if m + 1 == l {
                    let (a, b) = eig2(d[l], e[l - 1].sqrt(), d[l - 1]);
                    d[l] = a;
                    d[l - 1] = b;
                    e[l - 1] = 0.0;
                    if l < lend + 2 {
                        break;
                    }
                    l -= 2;
                    continue;
                }
                if iter == max_iter {
                    break;
                }
                iter += 1;
                let sigma = shift(p, d[l - 1], e[l - 1]);
                let (mut c, mut s) = (1.0, 0.0);
                let mut gamma = d[m] - sigma;
                let mut p = gamma * gamma;
                for i in m..l {
                    let bb = e[i];
                    let r = p + bb;
                    if i != m {
                        e[i - 1] = s * r;
                    }
                    let oldc = c;
                    c = p / r;
                    s = bb / r;
                    let rp = r / p;
                    let oldgam = gamma;
                    let alpha = d[i + 1];
                    gamma = c * (alpha - sigma) - s * oldgam;
                    d[i] = oldgam + (alpha - gamma);
                    p = next_p(gamma, c, rp, oldc, bb);
                }
                e[l - 1] = s * p;
                d[l] = sigma + gamma;
            }
        }
        if iter == max_iter {
            return false;
        }
    }
    d.iter().all(|v| v.is_finite())
}

/// The next `p` of a root-free step, `gamma^2 / c` (`oldc * bb` when `c = 0`), as `gamma^2 (r / p)`
/// with `c = p / r`: the division `r / p` runs alongside `p / r` instead of after `gamma`, which
/// takes one division off the chain of dependent operations that bounds the step's time (about a
/// quarter of it). Where that product is not finite (a `p` so small that `r / p` overflows) the
/// division by `c` is used as written.
#[inline(always)]
fn next_p(gamma: f64, c: f64, rp: f64, oldc: f64, bb: f64) -> f64 {
    if c == 0.0 {
        return oldc * bb;
    }
    let v = gamma * gamma * rp;
    if v.is_finite() { v } else { gamma * gamma / c }
}

/// Wilkinson's shift from the leading 2 x 2 block `[[p, sqrt(e2)], [sqrt(e2), q]]`.
fn shift(p: f64, q: f64, e2: f64) -> f64 {
    let rte = e2.sqrt();
    let sigma = (q - p) / (2.0 * rte);
    let r = sigma.hypot(1.0);
    p - rte / (sigma + r.copysign(sigma))
}

/// The eigenvalues of `[[a, b], [b, c]]`, larger in absolute value first (LAPACK's `dlae2`).
fn eig2(a: f64, b: f64, c: f64) -> (f64, f64) {
    let sm = a + c;
    let adf = (a - c).abs();
    let ab = (b + b).abs();
    let (acmx, acmn) = if a.abs() > c.abs() { (a, c) } else { (c, a) };
    let rt = if adf > ab {
        adf * (1.0 + (ab / adf).powi(2)).sqrt()
    } else if adf < ab {
        ab * (1.0 + (adf / ab).powi(2)).sqrt()
    } else {
        ab * std::f64::consts::SQRT_2
    };
    if sm < 0.0 {
        let rt1 = 0.5 * (sm - rt);
        (rt1, (acmx / rt1) * acmn - (b / rt1) * b)
    } else if sm > 0.0 {
        let rt1 = 0.5 * (sm + rt);
        (rt1, (acmx / rt1) * acmn - (b / rt1) * b)
    } else {
        (0.5 * rt, -0.5 * rt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_p_is_gamma_squared_over_c() {
        // p = 0.3, bb = 0.5: c = p / r, and gamma^2 (r / p) is gamma^2 / c to a few ulps.
        let (p, bb, gamma) = (0.3f64, 0.5f64, 0.7f64);
        let r = p + bb;
        let (c, rp) = (p / r, r / p);
        let want = gamma * gamma / c;
        assert!((next_p(gamma, c, rp, 0.9, bb) - want).abs() <= 4.0 * f64::EPSILON * want);
        // A p so small that r / p overflows, with a gamma^2 / c that is finite: the division by c
        // as written.
        let (tiny, small_gamma) = (1e-320, 1e-160);
        let (c, rp) = (tiny / (tiny + bb), (tiny + bb) / tiny);
        assert!(rp.is_infinite() && c > 0.0);
        let want = small_gamma * small_gamma / c;
        assert!(want.is_finite() && want > 0.0);
        assert_eq!(next_p(small_gamma, c, rp, 0.9, bb), want);
        // c = 0: oldc * bb.
        assert_eq!(next_p(gamma, 0.0, f64::INFINITY, 0.9, bb), 0.9 * bb);
    }

    /// Eigenvalues of the tridiagonal matrix by a dense reference (faer's self-adjoint EVD).
    fn reference(d: &[f64], e: &[f64]) -> Vec<f64> {
        let n = d.len();
        let t = faer::Mat::from_fn(n, n, |i, j| {
            if i == j {
                d[i]
            } else if i == j + 1 {
                e[j]
            } else if j == i + 1 {
                e[i]
            } else {
                0.0
            }
        });
        let mut v: Vec<f64> = t
            .self_adjoint_eigenvalues(faer::Side::Lower)
            .expect("reference EVD");
        v.sort_by(f64::total_cmp);
        v
    }

    fn check(d: &[f64], e: &[f64]) {
        let want = reference(d, e);
        let (mut dd, mut ee) = (d.to_vec(), e.to_vec());
        assert!(eigenvalues_in_place(&mut dd, &mut ee));
        dd.sort_by(f64::total_cmp);
        let norm = want.iter().fold(0.0f64, |m, x| m.max(x.abs())).max(1e-300);
        for (a, b) in dd.iter().zip(&want) {
            assert!(
                (a - b).abs() <= 1e-13 * norm,
                "{a} vs {b} (n = {})",
                d.len()
            );
        }
    }

    #[test]
    fn matches_a_dense_evd() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut u = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        };
        for n in [2usize, 3, 5, 17, 64, 257] {
            // Random; graded (entries over 12 orders of magnitude, either direction); with zero
            // off-diagonal entries (split blocks); constant diagonal with tiny couplings (clusters);
            // and the 1-2-1 matrix (known spectrum 2 - 2 cos(k pi / (n + 1))).
            let d: Vec<f64> = (0..n).map(|_| u()).collect();
            let e: Vec<f64> = (0..n - 1).map(|_| u()).collect();
            check(&d, &e);
            let g = |i: usize| 10f64.powf(-12.0 * i as f64 / n as f64);
            let dg: Vec<f64> = (0..n).map(|i| g(i) * (1.5 + u())).collect();
            let eg: Vec<f64> = (0..n - 1).map(|i| g(i) * u()).collect();
            check(&dg, &eg);
            let dr: Vec<f64> = dg.iter().rev().copied().collect();
            let er: Vec<f64> = eg.iter().rev().copied().collect();
            check(&dr, &er);
            let ez: Vec<f64> = e
                .iter()
                .enumerate()
                .map(|(i, &v)| if i % 5 == 2 { 0.0 } else { v })
                .collect();
            check(&d, &ez);
            let dc = vec![1.0; n];
            let ec: Vec<f64> = (0..n - 1).map(|_| 1e-9 * u()).collect();
            check(&dc, &ec);
            let (mut d2, mut e2) = (vec![2.0; n], vec![-1.0; n - 1]);
            assert!(eigenvalues_in_place(&mut d2, &mut e2));
            d2.sort_by(f64::total_cmp);
            for (k, v) in d2.iter().enumerate() {
                let want =
                    2.0 - 2.0 * ((k + 1) as f64 * std::f64::consts::PI / (n + 1) as f64).cos();
                assert!((v - want).abs() < 1e-13 * 4.0, "{v} vs {want}");
            }
        }
        // A zero matrix, and one that is not finite.
        let (mut z, mut ze) = (vec![0.0; 4], vec![0.0; 3]);
        assert!(eigenvalues_in_place(&mut z, &mut ze));
        assert_eq!(z, vec![0.0; 4]);
        assert!(!eigenvalues_in_place(&mut [1.0, f64::NAN], &mut [0.5]));
    }
}
