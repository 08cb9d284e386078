//! The class-conditional Kronecker covariance fit `Sigma_k = Sigma_C (x) Sigma_S` by the flip-flop
//! maximum-likelihood iteration (Dutilleul 1999; metrics.md section 1, study eq. 3), in f64.
//!
//! A class's centred samples `R_n = X_n - M_k` (`C x S` each) are held as chunks of up to [`CHUNK`]
//! samples in `[c][n][s]` order, so that one buffer is at once the `(C n) x S` matrix whose rows are
//! the channel rows of every sample and the `C x (n S)` matrix whose columns are the spatial positions
//! of every sample. Each half-sweep is then two GEMM-shaped operations per chunk:
//!
//! - `Sigma_C <- (1/(N S)) sum_n R_n Sigma_S^{-1} R_n^T`: with `Sigma_S = L L^T`, solve `Y = R L^{-T}` on
//!   the `(C n) x S` view (`n C S^2` flops), then `Y' Y'^T` on the `C x (n S)` view (`n C^2 S`);
//! - `Sigma_S <- (1/(N C)) sum_n R_n^T Sigma_C^{-1} R_n`: with `Sigma_C = L L^T`, solve `Z = L^{-1} R` on
//!   the `C x (n S)` view (`n C^2 S`), then `Z^T Z` on the `(C n) x S` view (`n C S^2`, lower half only).
//!
//! Chunk partial sums are added in chunk order, so the fit does not depend on the thread count.
//! A class whose residuals fit in [`CACHE_VALUES`] values keeps them in memory across sweeps; a larger
//! one (e.g. all samples of an unlabelled set) re-reads its samples from the source every sweep, so
//! only chunk-sized buffers are ever allocated.

use crate::data::Normalized;
use crate::linalg;
use faer::{Accum, Mat, MatMut, MatRef};
use rayon::prelude::*;
use std::ops::Range;

/// Samples per chunk of a class.
pub const CHUNK: usize = 256;

/// Largest class (in residual values, `N_k * D`) whose residuals are kept in memory: 64 MB of f64.
pub const CACHE_VALUES: usize = 1 << 23;

/// The centred samples of one class, cached or re-read per sweep.
pub struct Residuals<'a> {
    c: usize,
    s: usize,
    n: usize,
    chunks: Vec<Range<usize>>,
    /// The class mean `M_k` (`D` values, `[c][s]`).
    mean: Vec<f64>,
    source: Source<'a>,
}

enum Source<'a> {
    /// Residual chunks in `[c][n][s]` order.
    Cached(Vec<Vec<f64>>),
    /// Samples re-read (and normalized) from the latents.
    Stream {
        z: Normalized<'a>,
        members: &'a [usize],
    },
}

impl<'a> Residuals<'a> {
    /// The residuals of the samples `members` of the normalized latents `z` (`members.len() >= 1`).
    /// The mean is accumulated in f64 per chunk (in sample order), chunk sums added in chunk order.
    pub fn from_normalized(z: Normalized<'a>, members: &'a [usize]) -> Residuals<'a> {
        Residuals::from_normalized_with_cache(z, members, CACHE_VALUES)
    }

    /// As [`Residuals::from_normalized`], keeping the residuals in memory only when `N_k * D` is at
    /// most `cache_values`. Both modes give bit-identical fits (same chunks, same order of sums).
    pub fn from_normalized_with_cache(
        z: Normalized<'a>,
        members: &'a [usize],
        cache_values: usize,
    ) -> Residuals<'a> {
        let sh = z.shape();
        let (c, s, d, n) = (sh.c, sh.s(), sh.d(), members.len());
        let chunks = crate::par::chunks(n, CHUNK);
        let cache = n * d <= cache_values;
        let gather = |r: &Range<usize>, buf: &mut Vec<f32>| {
            buf.resize(r.len() * d, 0.0);
            for (k, &i) in members[r.clone()].iter().enumerate() {
                z.sample_into(i, &mut buf[k * d..(k + 1) * d]);
            }
        };
        let sums = |buf: &[f32]| {
            let mut acc = vec![0.0f64; d];
            for x in buf.chunks_exact(d) {
                for (a, &v) in acc.iter_mut().zip(x) {
                    *a += v as f64;
                }
            }
            acc
        };
        let add = |mut a: Vec<f64>, b: Vec<f64>| {
            for (x, y) in a.iter_mut().zip(b) {
                *x += y;
            }
            a
        };
        if cache {
            let raw: Vec<Vec<f32>> = chunks
                .iter()
                .map(|r| {
                    let mut b = Vec::new();
                    gather(r, &mut b);
                    b
                })
                .collect();
            let total = raw.iter().map(|b| sums(b)).reduce(add).unwrap_or_default();
            let mean: Vec<f64> = total.iter().map(|x| x / n as f64).collect();
            let cached = raw
                .iter()
                .map(|b| {
                    let mut out = Vec::new();
                    centre_transpose(b, &mean, c, s, &mut out);
                    out
                })
                .collect();
            Residuals {
                c,
                s,
                n,
                chunks,
                mean,
                source: Source::Cached(cached),
            }
        } else {
            let parts: Vec<Vec<f64>> = chunks
                .par_iter()
                .map_init(Vec::new, |buf, r| {
                    gather(r, buf);
                    sums(buf)
                })
                .collect();
            let total = parts.into_iter().reduce(add).unwrap_or_default();
            let mean = total.iter().map(|x| x / n as f64).collect();
            Residuals {
                c,
                s,
                n,
                chunks,
                mean,
                source: Source::Stream { z, members },
            }
        }
    }

    /// The residuals of `n` samples given as f64 rows (`n x C*S`, each `[c][s]`), always cached; for
    /// tests and small in-memory problems.
    pub fn from_rows(c: usize, s: usize, rows: &[f64]) -> Residuals<'static> {
        let d = c * s;
        assert!(
            d > 0 && rows.len().is_multiple_of(d),
            "rows must be whole samples of C*S values"
        );
        let n = rows.len() / d;
        let chunks = crate::par::chunks(n, CHUNK);
        let mut total = vec![0.0; d];
        for r in &chunks {
            let mut part = vec![0.0; d];
            for x in rows[r.start * d..r.end * d].chunks_exact(d) {
                for (a, v) in part.iter_mut().zip(x) {
                    *a += v;
                }
            }
            for (a, p) in total.iter_mut().zip(part) {
                *a += p;
            }
        }
        let mean: Vec<f64> = total.iter().map(|x| x / n as f64).collect();
        let cached = chunks
            .iter()
            .map(|r| {
                let mut out = Vec::new();
                centre_transpose(&rows[r.start * d..r.end * d], &mean, c, s, &mut out);
                out
            })
            .collect();
        Residuals {
            c,
            s,
            n,
            chunks,
            mean,
            source: Source::Cached(cached),
        }
    }

    pub fn n(&self) -> usize {
        self.n
    }

    /// The class mean (`D` values, `[c][s]`).
    pub fn mean(&self) -> &[f64] {
        &self.mean
    }

    /// Takes the class mean out (for the marginal mixture).
    pub fn into_mean(self) -> Vec<f64> {
        self.mean
    }

    /// Runs `f` on every chunk's residuals (`[c][n][s]`, its sample count, a scratch buffer) and adds
    /// the results in chunk order. Chunks run in parallel when there are several.
    fn reduce<F>(&self, f: F) -> Mat<f64>
    where
        F: Fn(&[f64], usize, &mut Vec<f64>) -> Mat<f64> + Sync,
    {
        struct Scratch {
            raw: Vec<f32>,
            read: Vec<f64>,
            work: Vec<f64>,
        }
        let new = || Scratch {
            raw: Vec::new(),
            read: Vec::new(),
            work: Vec::new(),
        };
        let run = |k: usize, sc: &mut Scratch| -> Mat<f64> {
            let nk = self.chunks[k].len();
            match &self.source {
                Source::Cached(v) => f(&v[k], nk, &mut sc.work),
                Source::Stream { z, members } => {
                    let d = self.c * self.s;
                    sc.raw.resize(nk * d, 0.0);
                    for (j, &i) in members[self.chunks[k].clone()].iter().enumerate() {
                        z.sample_into(i, &mut sc.raw[j * d..(j + 1) * d]);
                    }
                    centre_transpose(&sc.raw, &self.mean, self.c, self.s, &mut sc.read);
                    f(&sc.read, nk, &mut sc.work)
                }
            }
        };
        let parts: Vec<Mat<f64>> = if self.chunks.len() == 1 {
            vec![run(0, &mut new())]
        } else {
            (0..self.chunks.len())
                .into_par_iter()
                .map_init(new, |sc, k| run(k, sc))
                .collect()
        };
        parts
            .into_iter()
            .reduce(|a, b| a + b)
            .expect("a class has at least one chunk")
    }

    /// `sum_n R_n Sigma_S^{-1} R_n^T` (`C x C`), with `Sigma_S = L L^T` given by `l_s`, or
    /// `Sigma_S = I` when `None`.
    pub fn channel_gram(&self, l_s: Option<MatRef<'_, f64>>) -> Mat<f64> {
        let (c, s) = (self.c, self.s);
        self.reduce(|r, nk, work| {
            let mut g = Mat::zeros(c, c);
            match l_s {
                None => linalg::gram(
                    g.as_mut(),
                    Accum::Replace,
                    MatRef::from_row_major_slice(r, c, nk * s),
                    1.0,
                ),
                Some(l) => {
                    work.clear();
                    work.extend_from_slice(r);
                    // Y^T = L^{-1} R^T, where R^T is the column-major S x (C n) view of the chunk.
                    let yt = MatMut::from_row_major_slice_mut(work, c * nk, s).transpose_mut();
                    linalg::solve_lower_in_place(l, yt);
                    linalg::gram(
                        g.as_mut(),
                        Accum::Replace,
                        MatRef::from_row_major_slice(work, c, nk * s),
                        1.0,
                    );
                }
            }
            g
        })
    }

    /// `sum_n R_n^T Sigma_C^{-1} R_n` (`S x S`), with `Sigma_C = L L^T` given by `l_c`.
    pub fn spatial_gram(&self, l_c: MatRef<'_, f64>) -> Mat<f64> {
        let (c, s) = (self.c, self.s);
        self.reduce(|r, nk, work| {
            work.clear();
            work.extend_from_slice(r);
            linalg::solve_lower_in_place(l_c, MatMut::from_row_major_slice_mut(work, c, nk * s));
            let mut g = Mat::zeros(s, s);
            linalg::gram_t(
                g.as_mut(),
                Accum::Replace,
                MatRef::from_row_major_slice(work, c * nk, s),
                1.0,
            );
            g
        })
    }
}

/// Writes `x - mean` of `n` samples (`x` is `n x [c][s]` f32 or f64) into `out` in `[c][n][s]` order.
fn centre_transpose<T: Copy + Into<f64>>(
    x: &[T],
    mean: &[f64],
    c: usize,
    s: usize,
    out: &mut Vec<f64>,
) {
    let d = c * s;
    let n = x.len() / d;
    out.clear();
    out.resize(n * d, 0.0);
    for (j, sample) in x.chunks_exact(d).enumerate() {
        for ch in 0..c {
            let src = &sample[ch * s..(ch + 1) * s];
            let m = &mean[ch * s..(ch + 1) * s];
            let dst = &mut out[(ch * n + j) * s..(ch * n + j + 1) * s];
            for ((o, &v), &mu) in dst.iter_mut().zip(src).zip(m) {
                *o = v.into() - mu;
            }
        }
    }
}

/// Settings of the iteration.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FitOptions {
    /// `eps` of the ridge `eps * tr(F) / dim(F) * I`.
    pub ridge: f64,
    pub max_sweeps: usize,
    /// Stop when the relative Frobenius change of both factors is below this.
    pub tol: f64,
}

/// Why a factor was regularized.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RidgeReason {
    /// Too few samples for a full-rank factor: `(N_k - 1) * C < S` for the spatial factor (that is
    /// `N_k < S/C + 1`), `(N_k - 1) * S < C` for the channel factor.
    FewSamples,
    /// The factor was not numerically positive definite (e.g. a constant channel).
    NotPositiveDefinite,
}

/// A ridge added to a factor.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ridge {
    pub reason: RidgeReason,
    /// The value added to the diagonal of the final (trace-normalized) factor.
    pub amount: f64,
}

/// Why a class could not be fitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Degenerate {
    /// Fewer than 2 samples.
    TooFew,
    /// All samples are identical: zero covariance.
    Identical,
    /// The samples hold NaN or infinite values.
    NonFinite,
    /// A factor stayed singular after the ridge (possible only with `ridge = 0`).
    Singular,
}

/// The fitted factors, normalized so that `tr(Sigma_S) = S` (only the product is identified).
#[derive(Clone, Debug)]
pub struct KroneckerFit {
    pub sigma_c: Mat<f64>,
    pub sigma_s: Mat<f64>,
    /// Sweeps run (one sweep = both updates).
    pub sweeps: usize,
    pub converged: bool,
    /// The last relative Frobenius change (max over both factors); infinite after one sweep.
    pub change: f64,
    pub ridge_c: Option<Ridge>,
    pub ridge_s: Option<Ridge>,
}

struct RidgeState {
    reason: Option<RidgeReason>,
    /// Amount added in the current sweep, before normalization.
    added: f64,
}

impl RidgeState {
    fn add(&mut self, f: &mut Mat<f64>, eps: f64) {
        let dim = f.nrows();
        let r = eps * linalg::trace(f.as_ref()) / dim as f64;
        for i in 0..dim {
            f[(i, i)] += r;
        }
        self.added = r;
    }

    /// The Cholesky factor of `f`, adding the ridge first when it is on, and switching it on (for this
    /// and every later sweep) when `f` is not positive definite.
    fn factor(&mut self, f: &mut Mat<f64>, eps: f64) -> Result<Mat<f64>, Degenerate> {
        if self.reason.is_some() {
            self.add(f, eps);
        } else if let Some(l) = linalg::cholesky(f.as_ref()) {
            return Ok(l);
        } else {
            self.reason = Some(RidgeReason::NotPositiveDefinite);
            self.add(f, eps);
        }
        linalg::cholesky(f.as_ref()).ok_or(Degenerate::Singular)
    }
}

/// Fits `Sigma_C (x) Sigma_S` to a class's residuals by flip-flop (metrics.md section 1):
///
/// ```text
/// Sigma_S = I
/// repeat (sweep = 1, 2, ...):
///     Sigma_C = (1/(N S)) sum_n R_n Sigma_S^{-1} R_n^T   (+ ridge if needed)
///     Sigma_S = (1/(N C)) sum_n R_n^T Sigma_C^{-1} R_n   (+ ridge if needed)
///     a = tr(Sigma_S)/S;  Sigma_S /= a;  Sigma_C *= a
/// until, from sweep 2 on, ||F - F_prev||_F / ||F||_F < tol for both factors, or max_sweeps.
/// ```
///
/// The ridge `eps tr(F)/dim(F) I` is added to a factor in every sweep when the class has too few
/// samples for it to be full rank (`N_k < S/C + 1` for `Sigma_S`), and from the first sweep in which
/// its Cholesky factorization fails on (a constant channel makes `Sigma_C` singular). Cost per sweep
/// about `2 N C S^2 + 2 N C^2 S + (C^3 + S^3)/3` flops.
pub fn fit(res: &Residuals<'_>, opts: &FitOptions) -> Result<KroneckerFit, Degenerate> {
    let (c, s, n) = (res.c, res.s, res.n);
    if n < 2 {
        return Err(Degenerate::TooFew);
    }
    let mut rc = RidgeState {
        reason: ((n - 1) * s < c).then_some(RidgeReason::FewSamples),
        added: 0.0,
    };
    let mut rs = RidgeState {
        reason: ((n - 1) * c < s).then_some(RidgeReason::FewSamples),
        added: 0.0,
    };
    let mut l_s: Option<Mat<f64>> = None;
    let mut prev: Option<(Mat<f64>, Mat<f64>)> = None;
    let (mut change, mut converged, mut sweeps, mut scale) = (f64::INFINITY, false, 0, 1.0);
    for sweep in 1..=opts.max_sweeps.max(1) {
        sweeps = sweep;
        let mut sc = res.channel_gram(l_s.as_ref().map(|l| l.as_ref())) * (1.0 / (n * s) as f64);
        let tr = linalg::trace(sc.as_ref());
        if !tr.is_finite() {
            return Err(Degenerate::NonFinite);
        }
        if sweep == 1 && tr == 0.0 {
            return Err(Degenerate::Identical);
        }
        let l_c = rc.factor(&mut sc, opts.ridge)?;
        let mut ss = res.spatial_gram(l_c.as_ref()) * (1.0 / (n * c) as f64);
        if !linalg::trace(ss.as_ref()).is_finite() {
            return Err(Degenerate::NonFinite);
        }
        let l = rs.factor(&mut ss, opts.ridge)?;
        let a = linalg::trace(ss.as_ref()) / s as f64;
        ss *= 1.0 / a;
        sc *= a;
        scale = a;
        if let Some((pc, ps)) = &prev {
            let dc =
                linalg::frobenius_diff(sc.as_ref(), pc.as_ref()) / linalg::frobenius(sc.as_ref());
            let ds =
                linalg::frobenius_diff(ss.as_ref(), ps.as_ref()) / linalg::frobenius(ss.as_ref());
            change = dc.max(ds);
            converged = change < opts.tol;
        }
        prev = Some((sc, ss));
        l_s = Some(l * (1.0 / a.sqrt()));
        if converged {
            break;
        }
    }
    let (sigma_c, sigma_s) = prev.expect("at least one sweep ran");
    Ok(KroneckerFit {
        sigma_c,
        sigma_s,
        sweeps,
        converged,
        change,
        ridge_c: rc.reason.map(|reason| Ridge {
            reason,
            amount: rc.added * scale,
        }),
        ridge_s: rs.reason.map(|reason| Ridge {
            reason,
            amount: rs.added / scale,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Affine, Latents};

    #[test]
    fn streamed_and_cached_residuals_fit_identically() {
        // 700 samples = 3 chunks, so the chunked (parallel) sums and the streaming path both run.
        let (c, h, w, n) = (2usize, 2usize, 2usize, 700usize);
        let d = c * h * w;
        let data: Vec<f32> = (0..n * d)
            .map(|i| {
                let (k, j) = (i / d, i % d);
                ((k * 37 + j * 11) as f32 * 0.173).sin()
                    + 0.3 * ((k * 5 + j) as f32 * 0.71).cos() * (j as f32)
            })
            .collect();
        let lat = Latents::from_vec(c, h, w, data.clone());
        let aff = Affine::identity(c);
        let z = Normalized {
            latents: &lat,
            affine: &aff,
        };
        let members: Vec<usize> = (0..n).rev().collect();
        let opts = FitOptions {
            ridge: 1e-6,
            max_sweeps: 100,
            tol: 1e-10,
        };
        let cached = fit(
            &Residuals::from_normalized_with_cache(z, &members, usize::MAX),
            &opts,
        )
        .unwrap();
        let streamed = fit(
            &Residuals::from_normalized_with_cache(z, &members, 0),
            &opts,
        )
        .unwrap();
        let rows: Vec<f64> = members
            .iter()
            .flat_map(|&i| data[i * d..(i + 1) * d].iter().map(|&x| x as f64))
            .collect();
        let direct = fit(&Residuals::from_rows(c, h * w, &rows), &opts).unwrap();
        for other in [&streamed, &direct] {
            assert_eq!(cached.sweeps, other.sweeps);
            assert_eq!(cached.sigma_c, other.sigma_c);
            assert_eq!(cached.sigma_s, other.sigma_s);
        }
        assert!(cached.converged && cached.ridge_c.is_none() && cached.ridge_s.is_none());
        // The fixed point: each factor equals its update given the other.
        let r = Residuals::from_rows(c, h * w, &rows);
        let lc = linalg::cholesky(cached.sigma_c.as_ref()).unwrap();
        let ss = r.spatial_gram(lc.as_ref()) * (1.0 / (n * c) as f64);
        let err = linalg::frobenius_diff(ss.as_ref(), cached.sigma_s.as_ref())
            / linalg::frobenius(ss.as_ref());
        assert!(err < 1e-8, "{err}");
        assert!((linalg::trace(cached.sigma_s.as_ref()) - (h * w) as f64).abs() < 1e-12);
    }

    #[test]
    fn degenerate_inputs() {
        let opts = FitOptions {
            ridge: 1e-6,
            max_sweeps: 10,
            tol: 1e-6,
        };
        let one = Residuals::from_rows(2, 2, &[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(fit(&one, &opts).unwrap_err(), Degenerate::TooFew);
        let same = Residuals::from_rows(2, 2, &[1.0, 2.0, 3.0, 4.0, 1.0, 2.0, 3.0, 4.0]);
        assert_eq!(fit(&same, &opts).unwrap_err(), Degenerate::Identical);
        let nan = Residuals::from_rows(1, 2, &[1.0, f64::NAN, 3.0, 4.0]);
        assert_eq!(fit(&nan, &opts).unwrap_err(), Degenerate::NonFinite);
    }
}
