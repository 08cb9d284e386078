//! The exact KL divergence of a 2-D embedding: the quantity t-SNE minimizes, measured without the
//! approximations the optimizers make (neighbour-restricted `P`, interpolated or tree-summed `Q`), so
//! that embeddings from different implementations can be compared on one scale.

use super::super::vexp::{self, LANES, simd_kernel};
use super::affinity::{Calibration, Points};
use crate::par;

/// Rows per chunk of the pair pass: as many as the distance pass, for the same reason.
const ROWS: usize = super::affinity::ROWS;

simd_kernel! {
    /// For the pairs `(i, j)`, `j` over one row's columns, returns
    /// `(sum p_ij ln(p_ij (1 + |y_i - y_j|^2)), sum 1 / (1 + |y_i - y_j|^2))` in lanes merged in order,
    /// with `p_ij` from two exponentials; pairs with `p_ij` below the smallest normal f64 (< 2.3e-308)
    /// add 0 to the first sum (their true contribution is below 1e-304). `p` and `t` are scratch of
    /// the row's length. `me` = `[beta_i, shift_i, 1/z_i, y_i0, y_i1, 1/(2n)]`. Written as plain loops
    /// over the row, each simple enough for the compiler to vectorize.
    fn pair_terms(
        d2: &[f64],
        me: [f64; 6],
        other: (&[f64], &[f64], &[f64]),
        y: (&[f64], &[f64]),
        p: &mut [f64],
        t: &mut [f64],
    ) -> (f64, f64) {
        let [bi, si, zi, xi, yi, half_n] = me;
        let m = d2.len();
        let (bj, sj, zj) = (&other.0[..m], &other.1[..m], &other.2[..m]);
        let (xs, ys) = (&y.0[..m], &y.1[..m]);
        let (p, t) = (&mut p[..m], &mut t[..m]);
        for j in 0..m {
            let pi = vexp::exp(-bi * (d2[j] - si)) * zi;
            let pj = vexp::exp(-bj[j] * (d2[j] - sj[j])) * zj[j];
            p[j] = (pi + pj) * half_n;
            let (dx, dy) = (xi - xs[j], yi - ys[j]);
            t[j] = 1.0 + dx * dx + dy * dy;
        }
        let mut acc_q = [0.0; LANES];
        let mut tc = t.chunks_exact(LANES);
        for c in &mut tc {
            for l in 0..LANES {
                acc_q[l] += 1.0 / c[l];
            }
        }
        for (l, v) in tc.remainder().iter().enumerate() {
            acc_q[l] += 1.0 / v;
        }
        // t becomes p ln(p t).
        for j in 0..m {
            let l = p[j] * vexp::ln(p[j] * t[j]);
            t[j] = if p[j] >= f64::MIN_POSITIVE { l } else { 0.0 };
        }
        let mut acc_p = [0.0; LANES];
        let mut pc = t.chunks_exact(LANES);
        for c in &mut pc {
            for l in 0..LANES {
                acc_p[l] += c[l];
            }
        }
        for (l, v) in pc.remainder().iter().enumerate() {
            acc_p[l] += v;
        }
        (vexp::merge(&acc_p), vexp::merge(&acc_q))
    }
}

/// `KL(P || Q) = sum_{i != j} p_ij ln(p_ij / q_ij)` (van der Maaten & Hinton 2008, eq. 2 with the
/// symmetric `P` of section 3.1), where
/// - `p_ij = (p_{j|i} + p_{i|j}) / (2n)` from the per-point Gaussians over ALL other points
///   (`exact`, from [`super::affinity::affinities`]);
/// - `q_ij = (1 + |y_i - y_j|^2)^-1 / sum_{k != l} (1 + |y_k - y_l|^2)^-1`.
///
/// Computed over pairs `i < j` as `2 sum p_ij ln(p_ij (1 + |y_i - y_j|^2)) + ln Z_q` with
/// `Z_q = 2 sum (1 + |y_i - y_j|^2)^-1`; pairs whose `p_ij` underflows contribute 0 (`p ln p -> 0`).
/// `x` are the high-dimensional points (`n x d`), `y` the embedding (`n x 2`, row-major).
/// Cost: `n^2 d` flops, `n^2` exponentials and `n^2 / 2` logarithms (both vectorized); memory one `ROWS x n` block per thread.
/// Deterministic for any thread count.
pub fn exact_kl(x: Points<'_>, exact: &[Calibration], y: &[f64]) -> f64 {
    let n = x.n;
    assert_eq!(exact.len(), n);
    assert_eq!(y.len(), 2 * n);
    if n < 2 {
        return 0.0;
    }
    let norms = x.sq_norms();
    let beta: Vec<f64> = exact.iter().map(|c| c.beta).collect();
    let shift: Vec<f64> = exact.iter().map(|c| c.shift).collect();
    let inv_z: Vec<f64> = exact.iter().map(|c| 1.0 / c.z).collect();
    let (yx, yy): (Vec<f64>, Vec<f64>) = (0..n).map(|i| (y[2 * i], y[2 * i + 1])).unzip();
    let half_n = 1.0 / (2.0 * n as f64);
    let (a, b) = par::map_reduce(
        n,
        ROWS,
        |rows| {
            let mut block = Vec::new();
            // Columns from the chunk's first row on; each row then uses j > i.
            let c0 = rows.start;
            x.sq_dist_block(&norms, rows.clone(), c0..n, &mut block);
            let m = n - c0;
            let (mut a, mut b) = (0.0, 0.0);
            let (mut p, mut t) = (vec![0.0; m], vec![0.0; m]);
            for (r, i) in rows.enumerate() {
                let j0 = i + 1;
                let d2 = &block[r * m + (j0 - c0)..(r + 1) * m];
                let (u, v) = pair_terms(
                    d2,
                    [beta[i], shift[i], inv_z[i], yx[i], yy[i], half_n],
                    (&beta[j0..], &shift[j0..], &inv_z[j0..]),
                    (&yx[j0..], &yy[j0..]),
                    &mut p,
                    &mut t,
                );
                a += u;
                b += v;
            }
            (a, b)
        },
        |u, v| (u.0 + v.0, u.1 + v.1),
    )
    .expect("n >= 2");
    2.0 * a + (2.0 * b).ln()
}

#[cfg(test)]
mod tests {
    use super::super::affinity::affinities;
    use super::*;

    /// The definition, summed over all ordered pairs with `f64::exp`, against the pair pass.
    #[test]
    fn equals_the_definition() {
        let (n, d) = (120, 4);
        let data: Vec<f64> = (0..n * d).map(|i| (i as f64 * 0.618).sin() * 3.0).collect();
        let x = Points::new(&data, n, d);
        let a = affinities(x, 10.0, 31);
        let y: Vec<f64> = (0..2 * n).map(|i| ((i * 31) % 23) as f64 / 3.0).collect();
        let d2 = |i: usize, j: usize| -> f64 {
            x.row(i)
                .iter()
                .zip(x.row(j))
                .map(|(a, b)| (a - b) * (a - b))
                .sum()
        };
        let cond = |i: usize, j: usize| -> f64 {
            let c = &a.exact[i];
            (-c.beta * (d2(i, j) - c.shift)).exp() / c.z
        };
        let mut zq = 0.0;
        for i in 0..n {
            for j in 0..n {
                if i != j {
                    let (dx, dy) = (y[2 * i] - y[2 * j], y[2 * i + 1] - y[2 * j + 1]);
                    zq += 1.0 / (1.0 + dx * dx + dy * dy);
                }
            }
        }
        let mut kl = 0.0;
        let mut total = 0.0;
        for i in 0..n {
            for j in 0..n {
                if i != j {
                    let p = (cond(i, j) + cond(j, i)) / (2.0 * n as f64);
                    let (dx, dy) = (y[2 * i] - y[2 * j], y[2 * i + 1] - y[2 * j + 1]);
                    let q = 1.0 / (1.0 + dx * dx + dy * dy) / zq;
                    kl += p * (p / q).ln();
                    total += p;
                }
            }
        }
        assert!((total - 1.0).abs() < 1e-12);
        let got = exact_kl(x, &a.exact, &y);
        assert!((got - kl).abs() < 1e-11 * kl.abs(), "{got} vs {kl}");
    }
}
