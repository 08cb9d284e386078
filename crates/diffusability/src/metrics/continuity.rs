//! Manifold continuity, the latent side of iFID (metrics.md section 7; reference
//! tongdaxu/Making-rFID-Predictive-of-Diffusion-gFID: `evalvae.py`).
//!
//! For every query latent: the top-K reference latents by cosine similarity of the flattened raw
//! latents (exact), one of them drawn with probabilities `softmax(-MSE)`, and the spherical
//! interpolation of the query towards it. The user decodes the interpolations; iFID is the Fréchet
//! distance ([`super::fd`]) between features of the real images and of the decoded interpolations.

use crate::data::Latents;
use crate::error::{Error, Result};
use crate::io::array::shape_str;
use crate::par;
use crate::stats::rng::stream;
use faer::{Accum, Mat, MatRef, Par};
use rand::Rng;
use rayon::prelude::*;
use serde::Serialize;
use std::borrow::Cow;

/// The K most cosine-similar references of every query, most similar first.
#[derive(Clone, Debug, PartialEq)]
pub struct Neighbours {
    pub k: usize,
    /// `nq * k` reference indices, row `i` for query `i`.
    pub index: Vec<usize>,
    /// `nq * k` cosine similarities (f64, exact to rounding), matching `index`.
    pub cos: Vec<f64>,
}

/// Reference rows per GEMM block.
const REF_BLOCK: usize = 1024;
/// Largest number of query rows per GEMM block: 256 rows amortize streaming the references.
const MAX_QUERY_BLOCK: usize = 256;
/// Largest candidate pool of one query before it falls back to an exact scan (only reached when
/// thousands of references tie within the f32 error bound, e.g. many duplicates).
const POOL_CAP: usize = 8192;

/// Euclidean norm of every sample, in f64.
fn norms(z: &Latents) -> Vec<f64> {
    (0..z.shape().n)
        .into_par_iter()
        .map(|i| dot64(z.sample(i), z.sample(i)).sqrt())
        .collect()
}

fn dot64(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum()
}

/// Cosine from a dot product and the two norms; 0 when a vector is zero (its direction is
/// undefined; the reference's `+ 1e-8` in the denominator gives the same).
fn cosine(dot: f64, na: f64, nb: f64) -> f64 {
    let den = na * nb;
    if den > 0.0 { dot / den } else { 0.0 }
}

/// Rows `range` of `z` as one row-major slice (borrowed when they lie in one segment).
fn rows(z: &Latents, range: std::ops::Range<usize>) -> Cow<'_, [f32]> {
    match z.contiguous(range.clone()) {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(range.flat_map(|i| z.sample(i).iter().copied()).collect()),
    }
}

/// The candidates of one query: every reference whose f32 score is within `2 delta` of the running
/// K-th best f32 score. Pruned when it doubles.
struct Pool {
    k: usize,
    delta: f64,
    entries: Vec<(f64, usize)>,
    floor: f64,
    limit: usize,
    overflow: bool,
}

impl Pool {
    fn new(k: usize, delta: f64) -> Pool {
        Pool {
            k,
            delta,
            entries: Vec::new(),
            floor: f64::NEG_INFINITY,
            limit: 4 * k + 64,
            overflow: false,
        }
    }

    #[inline]
    fn offer(&mut self, score: f64, j: usize) {
        // A non-finite f32 score (overflow) is always kept: the f64 recheck decides.
        if self.overflow || (score < self.floor && score.is_finite()) {
            return;
        }
        self.entries.push((score, j));
        if self.entries.len() >= self.limit {
            self.prune();
            if self.entries.len() > POOL_CAP {
                self.overflow = true;
                self.entries = Vec::new();
            } else {
                self.limit = (2 * self.entries.len()).max(4 * self.k + 64);
            }
        }
    }

    /// Drops every entry below (K-th best finite score) - 2 delta. Non-finite scores (an f32 dot
    /// product that overflowed) neither set the threshold nor are dropped.
    fn prune(&mut self) {
        let mut finite: Vec<f64> = self
            .entries
            .iter()
            .map(|e| e.0)
            .filter(|s| s.is_finite())
            .collect();
        if finite.len() < self.k {
            return;
        }
        let kth = *finite
            .select_nth_unstable_by(self.k - 1, |a, b| b.total_cmp(a))
            .1;
        self.floor = self.floor.max(kth - 2.0 * self.delta);
        let floor = self.floor;
        self.entries.retain(|e| !e.0.is_finite() || e.0 >= floor);
    }
}

/// Sorts `(cos, index)` pairs most similar first, ties by smaller index, and keeps `k`.
fn best(mut v: Vec<(f64, usize)>, k: usize) -> Vec<(f64, usize)> {
    v.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    v.truncate(k);
    v
}

/// Exact top-`k` references of every query by cosine similarity of the flattened raw latents
/// (`cos = <q, r> / (|q| |r|)`, 0 for a zero vector), most similar first, ties by smaller index.
///
/// Brute force: f32 scores from faer GEMM over blocks of queries x 1024 references, then an f64
/// recheck of the candidates. A reference is a candidate when its f32 cosine is within `2 delta` of
/// the K-th best f32 cosine, where `delta = gamma_{D+2} = (D+2) u / (1 - (D+2) u)`, `u = 2^-24`,
/// bounds the f32 dot-product error relative to `|q| |r|` (Higham, Accuracy and Stability, eq. 3.5,
/// with Cauchy-Schwarz). Anything outside is strictly below the exact K-th best, so the result is
/// exact and does not depend on blocking or thread count. Shapes: `q` and `r` with the same
/// `D = C H W` (else an internal error; callers check shapes). Cost `nq nr D` flops plus the rechecks.
/// Runs on the current rayon pool (query blocks in parallel, each GEMM sequential).
pub fn top_k_cosine(q: &Latents, r: &Latents, k: usize) -> Result<Neighbours> {
    let (nq, nr, d) = (q.shape().n, r.shape().n, q.shape().d());
    if r.shape().d() != d {
        return Err(Error::internal(format!(
            "top_k_cosine: queries have {d} values each, references {}",
            r.shape().d()
        )));
    }
    if k == 0 || k > nr {
        return Err(Error::internal(format!(
            "top_k_cosine: k = {k} with {nr} references"
        )));
    }
    let (qn, rn) = rayon::join(|| norms(q), || norms(r));
    let u = f64::powi(2.0, -24);
    let nu = (d as f64 + 2.0) * u;
    let delta = if nu < 0.5 {
        nu / (1.0 - nu) + 1e-12
    } else {
        f64::INFINITY
    };
    let threads = rayon::current_num_threads().max(1);
    // The result is exact whatever the blocking, so the block size may follow the thread count.
    let qb = nq.div_ceil(threads).clamp(1, MAX_QUERY_BLOCK);
    let blocks: Vec<Vec<Vec<(f64, usize)>>> = par::chunks(nq, qb)
        .into_par_iter()
        .map(|qr| {
            let bq = qr.len();
            let qbuf = rows(q, qr.clone());
            let qm = MatRef::from_row_major_slice(&qbuf, bq, d);
            let mut scores = Mat::<f32>::zeros(bq, REF_BLOCK.min(nr));
            let mut pools: Vec<Pool> = (0..bq).map(|_| Pool::new(k, delta)).collect();
            for rr in par::chunks(nr, REF_BLOCK) {
                let br = rr.len();
                let rbuf = rows(r, rr.clone());
                let rm = MatRef::from_row_major_slice(&rbuf, br, d);
                faer::linalg::matmul::matmul(
                    scores.as_mut().subcols_mut(0, br),
                    Accum::Replace,
                    qm,
                    rm.transpose(),
                    1.0f32,
                    Par::Seq,
                );
                for (a, pool) in pools.iter_mut().enumerate() {
                    let na = qn[qr.start + a];
                    for b in 0..br {
                        let j = rr.start + b;
                        pool.offer(cosine(scores[(a, b)] as f64, na, rn[j]), j);
                    }
                }
            }
            pools
                .into_iter()
                .enumerate()
                .map(|(a, mut pool)| {
                    let i = qr.start + a;
                    let qi = q.sample(i);
                    let exact = |j: usize| (cosine(dot64(qi, r.sample(j)), qn[i], rn[j]), j);
                    if pool.overflow {
                        best((0..nr).map(exact).collect(), k)
                    } else {
                        pool.prune();
                        best(pool.entries.iter().map(|&(_, j)| exact(j)).collect(), k)
                    }
                })
                .collect()
        })
        .collect();
    let mut index = Vec::with_capacity(nq * k);
    let mut cos = Vec::with_capacity(nq * k);
    for (c, j) in blocks.into_iter().flatten().flatten() {
        index.push(j);
        cos.push(c);
    }
    Ok(Neighbours { k, index, cos })
}

/// Spherical interpolation of two flattened latents into `out`:
/// `slerp(a, b, t) = sin((1 - t) theta) / sin theta * a + sin(t theta) / sin theta * b` with
/// `theta = acos(clamp(cos(a, b), -1, 1))` (cos 0 for a zero vector), and the linear
/// `(1 - t) a + t b` when `sin theta < 1e-6` (as `evalvae.py`'s `slerp`, without its 1e-7 guards,
/// which only matter for zero vectors, handled by the cos convention). Computed in f64, stored f32.
/// Returns true when the linear fallback was used.
pub fn slerp(a: &[f32], b: &[f32], t: f64, out: &mut [f32]) -> bool {
    let c = cosine(dot64(a, b), dot64(a, a).sqrt(), dot64(b, b).sqrt()).clamp(-1.0, 1.0);
    let theta = c.acos();
    let s = theta.sin();
    let (wa, wb, linear) = if s < 1e-6 {
        (1.0 - t, t, true)
    } else {
        (((1.0 - t) * theta).sin() / s, (t * theta).sin() / s, false)
    };
    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
        *o = (wa * x as f64 + wb * y as f64) as f32;
    }
    linear
}

/// Parameters of `diffusability interpolate`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct InterpolateParams {
    /// Candidates per query, K (default 10).
    pub top: usize,
    /// Interpolation weight towards the neighbour (default 0.5).
    pub alpha: f64,
    pub seed: u64,
}

impl Default for InterpolateParams {
    fn default() -> Self {
        InterpolateParams {
            top: 10,
            alpha: 0.5,
            seed: 0,
        }
    }
}

impl InterpolateParams {
    /// Checks what does not need the data.
    pub fn validate(&self) -> Result<()> {
        if self.top == 0 {
            return Err(Error::usage("--top: expected at least 1, found 0"));
        }
        if !(self.alpha.is_finite() && (0.0..=1.0).contains(&self.alpha)) {
            return Err(Error::usage(format!(
                "--alpha: expected a number in [0, 1], found {}",
                self.alpha
            )));
        }
        Ok(())
    }
}

/// The interpolated latents and how each was made.
#[derive(Clone, Debug, PartialEq)]
pub struct Interpolation {
    /// `nq * D` values, the shape of the queries.
    pub latents: Vec<f32>,
    /// The reference index drawn for each query.
    pub neighbour: Vec<usize>,
    /// Its rank among the query's candidates (0 = most cosine-similar).
    pub rank: Vec<usize>,
    /// The candidates of every query.
    pub candidates: Neighbours,
    /// `nq * K` draw probabilities `softmax(-MSE)`, matching `candidates`.
    pub probabilities: Vec<f64>,
    /// Mean over queries of the entropy (nats) of the draw distribution.
    pub mean_entropy: f64,
    /// Queries whose slerp fell back to linear interpolation (`sin theta < 1e-6`).
    pub linear_fallbacks: usize,
}

/// The iFID recipe (metrics.md section 7): for every query `z_q`, the exact top-K references by
/// cosine ([`top_k_cosine`]); the draw probabilities `p_k = softmax(-MSE(z_q, z_k))` over them
/// (MSE = mean of squared differences over the D elements, in f64); one candidate drawn with a
/// uniform from the query's own stream (`stream(seed, "interpolate")` with ChaCha stream number =
/// query index, so draws do not depend on thread count or on the other queries); then
/// `slerp(z_q, z_nn, alpha)` ([`slerp`]). With `top = 1` the draw is the nearest neighbour.
///
/// `r_path` names the references in shape errors; `q` and `r` must share `(C, H, W)`. Cost: the
/// top-K search, `nq K D` for the draws, `nq D` for the slerps. Runs on the current rayon pool.
pub fn interpolate(
    q: &Latents,
    r: &Latents,
    r_path: &str,
    p: &InterpolateParams,
) -> Result<Interpolation> {
    p.validate()?;
    let (sq, sr) = (q.shape(), r.shape());
    if (sq.c, sq.h, sq.w) != (sr.c, sr.h, sr.w) {
        return Err(Error::input(
            r_path,
            None,
            format!(
                "has latents of shape {} each, expected {} as the queries",
                shape_str(&[sr.c, sr.h, sr.w]),
                shape_str(&[sq.c, sq.h, sq.w])
            ),
        ));
    }
    if p.top > sr.n {
        return Err(Error::input(
            r_path,
            None,
            format!("has {} reference latents, fewer than --top {}", sr.n, p.top),
        ));
    }
    let (nq, d, k) = (sq.n, sq.d(), p.top);
    let nb = top_k_cosine(q, r, k)?;
    let base = stream(p.seed, "interpolate");
    let mut latents = vec![0.0f32; nq * d];
    let mut probabilities = vec![0.0f64; nq * k];
    let per: Vec<(usize, usize, f64, bool)> = latents
        .par_chunks_mut(d.max(1))
        .zip(probabilities.par_chunks_mut(k))
        .enumerate()
        .map(|(i, (out, prob))| {
            let zq = q.sample(i);
            let cand = &nb.index[i * k..(i + 1) * k];
            let mse: Vec<f64> = cand
                .iter()
                .map(|&j| {
                    let zr = r.sample(j);
                    zq.iter()
                        .zip(zr)
                        .map(|(&a, &b)| (a as f64 - b as f64).powi(2))
                        .sum::<f64>()
                        / d as f64
                })
                .collect();
            let lo = mse.iter().copied().fold(f64::INFINITY, f64::min);
            let w: Vec<f64> = mse.iter().map(|m| (lo - m).exp()).collect();
            let total: f64 = w.iter().sum();
            let mut entropy = 0.0;
            for (pk, wk) in prob.iter_mut().zip(&w) {
                *pk = wk / total;
                if *pk > 0.0 {
                    entropy -= *pk * pk.ln();
                }
            }
            let mut rng = base.clone();
            rng.set_stream(i as u64);
            let u: f64 = rng.random::<f64>() * total;
            let mut acc = 0.0;
            let mut pick = w.iter().rposition(|&x| x > 0.0).unwrap_or(0);
            for (a, wk) in w.iter().enumerate() {
                acc += wk;
                if u < acc {
                    pick = a;
                    break;
                }
            }
            let linear = slerp(zq, r.sample(cand[pick]), p.alpha, out);
            (cand[pick], pick, entropy, linear)
        })
        .collect();
    let mean_entropy = if nq == 0 {
        0.0
    } else {
        per.iter().map(|x| x.2).sum::<f64>() / nq as f64
    };
    Ok(Interpolation {
        latents,
        neighbour: per.iter().map(|x| x.0).collect(),
        rank: per.iter().map(|x| x.1).collect(),
        linear_fallbacks: per.iter().filter(|x| x.3).count(),
        candidates: nb,
        probabilities,
        mean_entropy,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brute(q: &Latents, r: &Latents, k: usize) -> Vec<usize> {
        let mut out = Vec::new();
        for i in 0..q.shape().n {
            let a = q.sample(i);
            let na = dot64(a, a).sqrt();
            let v: Vec<(f64, usize)> = (0..r.shape().n)
                .map(|j| {
                    let b = r.sample(j);
                    (cosine(dot64(a, b), na, dot64(b, b).sqrt()), j)
                })
                .collect();
            out.extend(best(v, k).into_iter().map(|x| x.1));
        }
        out
    }

    fn lcg(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) - 0.5
            })
            .collect()
    }

    #[test]
    fn top_k_equals_brute_force_with_duplicates_zeros_and_overflow() {
        let (c, h, w) = (2, 3, 3);
        let d = c * h * w;
        let nr = POOL_CAP + 500;
        let mut rv = lcg(nr * d, 1);
        // Many exact duplicates of one row (a tie block larger than the pool cap) and a zero row.
        let dup: Vec<f32> = rv[..d].to_vec();
        for i in 100..POOL_CAP + 300 {
            rv[i * d..(i + 1) * d].copy_from_slice(&dup);
        }
        rv[(nr - 1) * d..].iter_mut().for_each(|x| *x = 0.0);
        // Rows whose f32 dot products with query 2 overflow to infinity.
        rv[20 * d..60 * d].iter_mut().for_each(|x| *x *= 1e20);
        let r = Latents::from_vec(c, h, w, rv);
        let mut qv = lcg(37 * d, 2);
        qv[..d].copy_from_slice(&dup);
        qv[d..2 * d].iter_mut().for_each(|x| *x = 0.0);
        qv[2 * d..3 * d].iter_mut().for_each(|x| *x *= 1e20);
        let q = Latents::from_vec(c, h, w, qv);
        for k in [1, 7] {
            let got = crate::par::Threads(2)
                .install(|| top_k_cosine(&q, &r, k))
                .unwrap()
                .unwrap();
            assert_eq!(got.index, brute(&q, &r, k), "k = {k}");
        }
    }

    #[test]
    fn slerp_endpoints_and_fallback() {
        let a = [1.0f32, 0.0];
        let b = [0.0f32, 2.0];
        let mut o = [0.0f32; 2];
        assert!(!slerp(&a, &b, 0.0, &mut o));
        assert_eq!(o, a);
        slerp(&a, &b, 1.0, &mut o);
        assert!((o[0] - 0.0).abs() < 1e-7 && (o[1] - 2.0).abs() < 1e-7);
        slerp(&a, &b, 0.5, &mut o);
        let s = std::f64::consts::FRAC_1_SQRT_2 as f32;
        assert!((o[0] - s).abs() < 1e-6 && (o[1] - 2.0 * s).abs() < 1e-6);
        // Parallel vectors: linear.
        assert!(slerp(&a, &[3.0, 0.0], 0.5, &mut o));
        assert_eq!(o, [2.0, 0.0]);
    }
}
