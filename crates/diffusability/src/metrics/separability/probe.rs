//! Linear probing: multinomial logistic regression on per-image features, scored by test accuracy.
//!
//! After the MAE protocol (facebookresearch/mae: `main_linprobe.py`) with global average pooling
//! (bytedance/1d-tokenizer issue 29), as a convex problem with a unique answer: features standardized
//! with the training mean and population std (ddof 0, as scikit-learn's `StandardScaler`), then
//! `min (1/n) sum_i CE(softmax(W'x_i + b), y_i) + (alpha/2) |W|_F^2` (bias not penalized) by L-BFGS to
//! gradient norm 1e-6. Equivalent to scikit-learn `LogisticRegression(C = 1/(alpha n_train))`.

use super::features::{self, FeatureKind};
use super::lbfgs;
use crate::data::{Labels, Normalized};
use crate::error::Result;
use crate::progress::Progress;
use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use rand::seq::SliceRandom;
use rayon::prelude::*;

/// Fraction of each class held out for testing.
pub const TEST_FRACTION: f64 = 0.2;
/// Stopping tolerance on the Euclidean norm of the objective's gradient.
pub const GRAD_TOL: f64 = 1e-6;

/// Train and test sample indices, each ascending.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Split {
    pub train: Vec<usize>,
    pub test: Vec<usize>,
    /// Classes with a single sample; they are put in the training part only.
    pub singletons: usize,
}

/// The stratified, seeded split: for each class (ascending label), its members in ascending order are
/// shuffled by the stream `rng::stream(seed, "probe-split")` (Fisher-Yates), and the first
/// `n_test = clamp(round(0.2 n_c), 1, n_c - 1)` go to the test part; a class of one sample goes to the
/// training part only. O(N).
pub fn stratified_split(labels: &Labels, seed: u64) -> Split {
    let mut rng = crate::stats::rng::stream(seed, "probe-split");
    let mut train = Vec::with_capacity(labels.len());
    let mut test = Vec::new();
    let mut singletons = 0;
    for mut members in labels.members() {
        let nc = members.len();
        if nc < 2 {
            singletons += nc;
            train.extend(members);
            continue;
        }
        members.shuffle(&mut rng);
        let nt = ((TEST_FRACTION * nc as f64).round() as usize).clamp(1, nc - 1);
        test.extend_from_slice(&members[..nt]);
        train.extend_from_slice(&members[nt..]);
    }
    train.sort_unstable();
    test.sort_unstable();
    Split {
        train,
        test,
        singletons,
    }
}

/// Probe features of every image (n x d, row-major, f64): the per-channel mean over ALL tokens
/// (`pooled`, masks are not used) or the flattened latent (`flatten`).
pub fn probe_features(z: Normalized<'_>, kind: FeatureKind) -> Result<(Vec<f64>, usize)> {
    match kind {
        FeatureKind::Pooled => Ok((features::pooled(z, None)?.0, z.shape().c)),
        FeatureKind::Flatten => Ok((
            features::flatten(z)?.into_iter().map(f64::from).collect(),
            z.shape().d(),
        )),
    }
}

/// Reads the separate training set of `--probe-train` (latents with a `labels` key, any input format).
pub fn load_probe_train(path: &str) -> Result<crate::data::Dataset> {
    crate::io::load(&crate::io::InputSpec {
        path: path.to_string(),
        ..Default::default()
    })
}

/// Rows `idx` of an `n x d` row-major matrix.
pub fn gather_rows(x: &[f64], d: usize, idx: &[usize]) -> Vec<f64> {
    let mut out = Vec::with_capacity(idx.len() * d);
    for &i in idx {
        out.extend_from_slice(&x[i * d..(i + 1) * d]);
    }
    out
}

/// Per-feature standardization fitted on training rows: `(x - mean) / scale`, `scale` the population
/// std (ddof 0), or 1 for a feature constant on the training rows (as scikit-learn's `StandardScaler`).
#[derive(Clone, Debug, PartialEq)]
pub struct Standardizer {
    pub mean: Vec<f64>,
    pub scale: Vec<f64>,
    /// Features constant on the training rows.
    pub constant: usize,
}

impl Standardizer {
    /// Fits on `n x d` row-major rows (n >= 1). Two passes, sequential, O(n d).
    pub fn fit(x: &[f64], d: usize) -> Standardizer {
        let n = x.len() / d.max(1);
        let mut mean = vec![0.0; d];
        for row in x.chunks_exact(d) {
            mean.iter_mut().zip(row).for_each(|(m, v)| *m += v);
        }
        mean.iter_mut().for_each(|m| *m /= n as f64);
        let mut ss = vec![0.0; d];
        let mut varies = vec![false; d];
        for row in x.chunks_exact(d) {
            for j in 0..d {
                let t = row[j] - mean[j];
                ss[j] += t * t;
                varies[j] |= row[j] != x[j];
            }
        }
        let scale: Vec<f64> = ss
            .iter()
            .zip(&varies)
            .map(|(s, &v)| if v { (s / n as f64).sqrt() } else { 1.0 })
            .collect();
        Standardizer {
            mean,
            scale,
            constant: varies.iter().filter(|v| !**v).count(),
        }
    }

    /// The standardized rows with a trailing 1 (the bias input): `n x (d + 1)`, row-major.
    pub fn augmented(&self, x: &[f64]) -> Vec<f64> {
        let d = self.mean.len();
        let mut out = Vec::with_capacity(x.len() / d.max(1) * (d + 1));
        for row in x.chunks_exact(d) {
            for ((v, m), s) in row.iter().zip(&self.mean).zip(&self.scale) {
                out.push((v - m) / s);
            }
            out.push(1.0);
        }
        out
    }
}

/// A fitted multinomial logistic regression.
#[derive(Clone, Debug)]
pub struct ProbeFit {
    /// Input features `d` (without the bias input).
    pub d: usize,
    /// Classes `K`.
    pub classes: usize,
    /// `(d + 1) x K` column-major: class `k`'s weights are `theta[k (d+1) .. k (d+1) + d]`, its bias
    /// `theta[k (d+1) + d]`.
    pub theta: Vec<f64>,
    pub loss: f64,
    pub grad_norm: f64,
    pub iterations: usize,
    pub evaluations: usize,
    pub stop: lbfgs::Stop,
}

impl ProbeFit {
    /// Weight of feature `j` for class `k` (standardized features).
    pub fn coef(&self, k: usize, j: usize) -> f64 {
        self.theta[k * (self.d + 1) + j]
    }

    pub fn intercept(&self, k: usize) -> f64 {
        self.theta[k * (self.d + 1) + self.d]
    }

    pub fn converged(&self) -> bool {
        self.stop == lbfgs::Stop::Converged
    }

    /// The most probable class of each augmented row (`n x (d+1)`); ties go to the lower class.
    pub fn predict(&self, xa: &[f64]) -> Vec<u32> {
        let (d1, kc) = (self.d + 1, self.classes);
        let n = xa.len() / d1;
        let th = MatRef::from_column_major_slice(&self.theta, d1, kc);
        crate::par::chunks(n, ROWS)
            .into_par_iter()
            .flat_map_iter(|r| {
                let nr = r.len();
                let mut z = vec![0.0; nr * kc];
                let xc = MatRef::from_row_major_slice(&xa[r.start * d1..r.end * d1], nr, d1);
                matmul(
                    MatMut::from_row_major_slice_mut(&mut z, nr, kc),
                    Accum::Replace,
                    xc,
                    th,
                    1.0,
                    Par::Seq,
                );
                z.chunks_exact(kc)
                    .map(|row| {
                        let mut best = 0;
                        for (c, &v) in row.iter().enumerate() {
                            if v > row[best] {
                                best = c;
                            }
                        }
                        best as u32
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

/// `exp(x)` for `x <= 0` (softmax terms after subtracting the row maximum), within 2 ulp of the
/// correctly rounded value, written so that it compiles to SIMD code: the softmax takes `n K`
/// exponentials per evaluation, and the C library's scalar `exp` was over half of the probe's time.
/// Method (Cody & Waite; Muller, *Elementary Functions*, ch. 11): `x = k ln2 + r` with `k` rounded to
/// nearest by adding and subtracting `1.5 * 2^52` and `ln2` split in two parts so `r` (`|r| <= ln2/2`)
/// is exact to about 2^-60; `e^r` by its Taylor series to degree 13 (truncation `< 2^-58`) in Horner
/// form (with fused multiply-adds when `FMA`, which the caller must guarantee the CPU has); `2^k`
/// built from its exponent bits. Below `-708` (where `2^k` would be subnormal) the result is 0: such
/// a term is below `1e-307` of the row's largest, which is 1.
#[inline(always)]
fn exp_nonpositive<const FMA: bool>(x: f64) -> f64 {
    const LOG2E: f64 = std::f64::consts::LOG2_E;
    // fdlibm's split of ln 2: the high part has 21 trailing zero bits, so k * LN2_HI is exact.
    const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
    const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);
    const SHIFT: f64 = 6_755_399_441_055_744.0; // 1.5 * 2^52
    const C: [f64; 14] = [
        1.0,
        1.0,
        1.0 / 2.0,
        1.0 / 6.0,
        1.0 / 24.0,
        1.0 / 120.0,
        1.0 / 720.0,
        1.0 / 5040.0,
        1.0 / 40320.0,
        1.0 / 362880.0,
        1.0 / 3628800.0,
        1.0 / 39916800.0,
        1.0 / 479001600.0,
        1.0 / 6227020800.0,
    ];
    let xc = if x < -708.0 { -708.0 } else { x };
    let t = xc * LOG2E + SHIFT;
    let k = t - SHIFT;
    let r = (xc - k * LN2_HI) - k * LN2_LO;
    let mut p = C[13];
    for c in C[..13].iter().rev() {
        p = if FMA { p.mul_add(r, *c) } else { p * r + c };
    }
    // The low mantissa bits of t hold k (two's complement); k + 1023 is the biased exponent of 2^k.
    let scale = f64::from_bits(t.to_bits().wrapping_add(1023) << 52);
    if x < -708.0 { 0.0 } else { p * scale }
}

/// Independent accumulators of the row reductions: wide enough for the vector units and their
/// latency; the order of the final sum is fixed, so results do not depend on anything but the data.
const LANES: usize = 8;

/// The largest value of `row` (at least one value).
#[inline(always)]
fn row_max(row: &[f64]) -> f64 {
    let mut acc = [f64::NEG_INFINITY; LANES];
    let mut it = row.chunks_exact(LANES);
    for c in &mut it {
        for j in 0..LANES {
            acc[j] = if c[j] > acc[j] { c[j] } else { acc[j] };
        }
    }
    let mut m = f64::NEG_INFINITY;
    for &v in acc.iter().chain(it.remainder()) {
        m = if v > m { v } else { m };
    }
    m
}

/// `v[i] = exp(v[i] - shift)` for `v[i] <= shift`, by [`exp_nonpositive`]; returns their sum.
/// Two passes: the exponentials vectorize as a plain element loop, the sum by its lanes.
#[inline(always)]
fn exp_sum<const FMA: bool>(v: &mut [f64], shift: f64) -> f64 {
    v.iter_mut()
        .for_each(|x| *x = exp_nonpositive::<FMA>(*x - shift));
    let mut acc = [0.0; LANES];
    let mut it = v.chunks_exact(LANES);
    for c in &mut it {
        for j in 0..LANES {
            acc[j] += c[j];
        }
    }
    acc.iter().sum::<f64>() + it.remainder().iter().sum::<f64>()
}

/// Turns logits `z` (rows of `kc`, row `i` of class `y[i]`) into residuals `(softmax(z_i) - e_{y_i})
/// * inv_n` in place and returns `sum_i CE_i = sum_i (ln sum_k exp(z_ik - m_i) - (z_{i y_i} - m_i))`,
/// `m_i` the row maximum. O(rows kc).
#[inline(always)]
fn softmax_residuals<const FMA: bool>(z: &mut [f64], kc: usize, y: &[u32], inv_n: f64) -> f64 {
    let mut loss = 0.0;
    for (row, &yi) in z.chunks_exact_mut(kc).zip(y) {
        let mx = row_max(row);
        let zy = row[yi as usize] - mx;
        let s = exp_sum::<FMA>(row, mx);
        loss += s.ln() - zy;
        let w = inv_n / s;
        row.iter_mut().for_each(|v| *v *= w);
        row[yi as usize] -= inv_n;
    }
    loss
}

/// [`softmax_residuals`], compiled for AVX2 and FMA where the CPU has them (checked at run time). The
/// two compilations round the exponentials differently (each within 2 ulp), so the last bits of the
/// probe's loss may differ between CPUs with and without FMA; on one machine they are identical for
/// any thread count.
fn softmax_rows(z: &mut [f64], kc: usize, y: &[u32], inv_n: f64) -> f64 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU supports AVX2 and FMA, checked just above.
        return unsafe { softmax_rows_avx2(z, kc, y, inv_n) };
    }
    softmax_residuals::<false>(z, kc, y, inv_n)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn softmax_rows_avx2(z: &mut [f64], kc: usize, y: &[u32], inv_n: f64) -> f64 {
    softmax_residuals::<true>(z, kc, y, inv_n)
}

/// Rows per task of the logits pass of [`ProbeFit::predict`] and of the grouped evaluation.
const ROWS: usize = 256;
/// Gradient tiles of the grouped evaluation: features x classes per task.
const TILE_FEATURES: usize = 256;
const TILE_CLASSES: usize = 64;

/// Rows per group of the grouped evaluation: logits and residuals are held for one group at a time,
/// so memory is `GROUP_ROWS x K` f64 whatever `n` (a 1.28M-image training set with 1000 classes
/// would need 10 GB).
const GROUP_ROWS: usize = 16384;

/// Rows per task of the fused evaluation.
const TASK_ROWS: usize = 1024;
/// Rows per block of the fused evaluation: a block's logits (`BLOCK_ROWS x K` f64, 512 KB for 1000
/// classes) stay in cache from their product through the softmax to the gradient update.
const BLOCK_ROWS: usize = 64;
/// Memory for the fused evaluation's per-task partial gradients (`(d+1) x K` f64 each).
const PARTIAL_BYTES: usize = 64 << 20;
/// The fused evaluation is used when at least this many partial gradients fit in [`PARTIAL_BYTES`]
/// (for 1000 classes: up to 2000 features), else the grouped one.
const MIN_TASKS: usize = 4;

/// The objective `(1/n) sum_i CE_i + (alpha/2) |W|_F^2` on augmented rows, with its gradient
/// `G = Xa' (P - Y) / n + alpha [W; 0]`, both GEMM-shaped, in one of two ways chosen by the sizes
/// alone (so values are identical for any thread count):
/// - fused (few features x classes, e.g. pooled features): rows in fixed tasks of [`TASK_ROWS`],
///   each task in blocks of [`BLOCK_ROWS`] whose logits, softmax and gradient update `Xb' Rb` are
///   done while the block is in cache, into the task's own partial gradient; the partials are added
///   in task order. The `n x K` logits never go through memory.
/// - grouped (many features x classes, e.g. flattened features, where one partial gradient per task
///   would not fit): rows in fixed groups; within a group, the logits by row chunks and the gradient
///   by feature x class tiles (each tile one product over the group's rows); group contributions
///   added in order.
struct Objective<'a> {
    xa: &'a [f64],
    y: &'a [u32],
    n: usize,
    d1: usize,
    kc: usize,
    alpha: f64,
    /// Tasks per round of the fused evaluation; `None` for the grouped evaluation.
    fused: Option<usize>,
    /// Grouped evaluation: one group's logits, then residuals `(P - Y) / n`: `GROUP_ROWS x K`.
    z: Vec<f64>,
}

impl<'a> Objective<'a> {
    fn new(xa: &'a [f64], y: &'a [u32], classes: usize, alpha: f64) -> Objective<'a> {
        let n = y.len();
        let d1 = xa.len().checked_div(n).unwrap_or(1);
        let tasks = PARTIAL_BYTES / (d1 * classes * 8).max(1);
        Objective::with_mode(xa, y, classes, alpha, tasks >= MIN_TASKS)
    }

    fn with_mode(
        xa: &'a [f64],
        y: &'a [u32],
        classes: usize,
        alpha: f64,
        fused: bool,
    ) -> Objective<'a> {
        let n = y.len();
        let d1 = xa.len().checked_div(n).unwrap_or(1);
        let tasks = (PARTIAL_BYTES / (d1 * classes * 8).max(1)).clamp(1, 64);
        Objective {
            xa,
            y,
            n,
            d1,
            kc: classes,
            alpha,
            fused: fused.then_some(tasks),
            z: if fused {
                Vec::new()
            } else {
                vec![0.0; n.min(GROUP_ROWS) * classes]
            },
        }
    }

    fn eval(&mut self, theta: &[f64], grad: &mut [f64]) -> f64 {
        grad.fill(0.0);
        let loss = match self.fused {
            Some(tasks) => self.data_term_fused(theta, grad, tasks),
            None => self.data_term_grouped(theta, grad),
        };
        let (kc, d1) = (self.kc, self.d1);
        let mut pen = 0.0;
        for k in 0..kc {
            let w = &theta[k * d1..k * d1 + d1 - 1];
            let g = &mut grad[k * d1..k * d1 + d1 - 1];
            for (gj, wj) in g.iter_mut().zip(w) {
                *gj += self.alpha * wj;
                pen += wj * wj;
            }
        }
        loss / self.n as f64 + 0.5 * self.alpha * pen
    }

    /// The fused evaluation: returns `sum_i CE_i` and adds `Xa' (P - Y) / n` into `grad`.
    fn data_term_fused(&self, theta: &[f64], grad: &mut [f64], tasks_per_round: usize) -> f64 {
        let (n, d1, kc) = (self.n, self.d1, self.kc);
        let (xa, y) = (self.xa, self.y);
        let th = MatRef::from_column_major_slice(theta, d1, kc);
        let inv_n = 1.0 / n as f64;
        let tasks = crate::par::chunks(n, TASK_ROWS);
        let mut loss = 0.0;
        for round in tasks.chunks(tasks_per_round) {
            let parts: Vec<(f64, Vec<f64>)> = round
                .par_iter()
                .map(|r| {
                    let mut part = vec![0.0; d1 * kc];
                    let mut z = vec![0.0; r.len().min(BLOCK_ROWS) * kc];
                    let mut loss = 0.0;
                    for b in crate::par::chunks(r.len(), BLOCK_ROWS) {
                        let (r0, nr) = (r.start + b.start, b.len());
                        let xb = MatRef::from_row_major_slice(&xa[r0 * d1..(r0 + nr) * d1], nr, d1);
                        let zb = &mut z[..nr * kc];
                        matmul(
                            MatMut::from_row_major_slice_mut(zb, nr, kc),
                            Accum::Replace,
                            xb,
                            th,
                            1.0,
                            Par::Seq,
                        );
                        loss += softmax_rows(zb, kc, &y[r0..r0 + nr], inv_n);
                        matmul(
                            MatMut::from_column_major_slice_mut(&mut part, d1, kc),
                            Accum::Add,
                            xb.transpose(),
                            MatRef::from_row_major_slice(zb, nr, kc),
                            1.0,
                            Par::Seq,
                        );
                    }
                    (loss, part)
                })
                .collect();
            for (l, part) in &parts {
                loss += l;
                grad.iter_mut().zip(part).for_each(|(g, p)| *g += p);
            }
        }
        loss
    }

    /// The grouped evaluation: returns `sum_i CE_i` and adds `Xa' (P - Y) / n` into `grad`.
    fn data_term_grouped(&mut self, theta: &[f64], grad: &mut [f64]) -> f64 {
        let (n, d1, kc) = (self.n, self.d1, self.kc);
        let (xa, y) = (self.xa, self.y);
        let th = MatRef::from_column_major_slice(theta, d1, kc);
        let inv_n = 1.0 / n as f64;
        let fb = crate::par::chunks(d1, TILE_FEATURES);
        let cb = crate::par::chunks(kc, TILE_CLASSES);
        let tiles: Vec<(usize, usize)> = (0..cb.len())
            .flat_map(|c| (0..fb.len()).map(move |f| (f, c)))
            .collect();
        let mut loss = 0.0;
        for g in crate::par::chunks(n, GROUP_ROWS) {
            let z = &mut self.z[..g.len() * kc];
            let losses: Vec<f64> = z
                .par_chunks_mut(ROWS * kc)
                .enumerate()
                .map(|(t, zc)| {
                    let r0 = g.start + t * ROWS;
                    let nr = zc.len() / kc;
                    let xc = MatRef::from_row_major_slice(&xa[r0 * d1..(r0 + nr) * d1], nr, d1);
                    matmul(
                        MatMut::from_row_major_slice_mut(zc, nr, kc),
                        Accum::Replace,
                        xc,
                        th,
                        1.0,
                        Par::Seq,
                    );
                    let mut loss = 0.0;
                    loss += softmax_rows(zc, kc, &y[r0..r0 + nr], inv_n);
                    loss
                })
                .collect();
            loss += losses.iter().sum::<f64>();

            let r = MatRef::from_row_major_slice(&*z, g.len(), kc);
            let xt = MatRef::from_row_major_slice(&xa[g.start * d1..g.end * d1], g.len(), d1)
                .transpose();
            let parts: Vec<Vec<f64>> = tiles
                .par_iter()
                .map(|&(f, c)| {
                    let (fr, cr) = (fb[f].clone(), cb[c].clone());
                    let mut tile = vec![0.0; fr.len() * cr.len()];
                    matmul(
                        MatMut::from_column_major_slice_mut(&mut tile, fr.len(), cr.len()),
                        Accum::Replace,
                        xt.subrows(fr.start, fr.len()),
                        r.subcols(cr.start, cr.len()),
                        1.0,
                        Par::Seq,
                    );
                    tile
                })
                .collect();
            for (&(f, c), tile) in tiles.iter().zip(&parts) {
                let (fr, cr) = (&fb[f], &cb[c]);
                for (kk, col) in tile.chunks_exact(fr.len()).enumerate() {
                    let k = cr.start + kk;
                    let dst = &mut grad[k * d1 + fr.start..k * d1 + fr.end];
                    dst.iter_mut().zip(col).for_each(|(a, b)| *a += b);
                }
            }
        }
        loss
    }
}

/// Fits the probe on augmented standardized rows `xa` (`n x (d+1)`, last column 1) with dense labels
/// `y < classes`, from zero, by [`lbfgs::minimize`] to gradient norm [`GRAD_TOL`] or `max_iter`
/// iterations. Per evaluation: `4 n (d+1) K` flops in GEMMs and `n K` exponentials; memory at most
/// 64 MB of partial gradients (fused) or `16384 K` f64 (grouped), besides `xa`.
pub fn fit(
    xa: &[f64],
    y: &[u32],
    classes: usize,
    alpha: f64,
    max_iter: usize,
    progress: &dyn Progress,
) -> ProbeFit {
    let mut obj = Objective::new(xa, y, classes, alpha);
    let d1 = obj.d1;
    let opts = lbfgs::Options {
        max_iter,
        gtol: GRAD_TOL,
        ..lbfgs::Options::default()
    };
    progress.begin("linear probe (L-BFGS iterations)", max_iter as u64);
    let m = lbfgs::minimize(
        |t, g| obj.eval(t, g),
        vec![0.0; d1 * classes],
        &opts,
        |_, _, _| progress.advance(1),
    );
    progress.end();
    ProbeFit {
        d: d1 - 1,
        classes,
        theta: m.x,
        loss: m.f,
        grad_norm: m.grad_norm,
        iterations: m.iterations,
        evaluations: m.evaluations,
        stop: m.stop,
    }
}

/// A probe's outcome on given training and test features.
#[derive(Clone, Debug)]
pub struct ProbeResult {
    /// Top-1 accuracy on the test rows.
    pub acc: f64,
    pub train_acc: f64,
    pub n_train: usize,
    pub n_test: usize,
    /// Test rows whose class never occurs in training (always counted wrong).
    pub unseen_test: usize,
    /// Raw labels of the fitted classes, ascending (index = dense class of `fit`).
    pub classes: Vec<i64>,
    pub standardizer: Standardizer,
    pub fit: ProbeFit,
}

/// Why a probe could not be fitted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeSkip {
    NoTest,
    OneClass,
}

/// Standardizes with the training rows, fits, and scores: training rows `train_x` (`n_train x d`,
/// row-major) with raw labels `train_y`, test rows likewise. Test classes absent from training are
/// counted wrong (see `unseen_test`).
#[allow(clippy::too_many_arguments)]
pub fn linear_probe(
    train_x: &[f64],
    train_y: &[i64],
    test_x: &[f64],
    test_y: &[i64],
    d: usize,
    alpha: f64,
    max_iter: usize,
    progress: &dyn Progress,
) -> std::result::Result<ProbeResult, ProbeSkip> {
    if test_y.is_empty() {
        return Err(ProbeSkip::NoTest);
    }
    let labels = Labels::new(train_y.to_vec());
    if labels.num_classes() < 2 {
        return Err(ProbeSkip::OneClass);
    }
    let st = Standardizer::fit(train_x, d);
    let xtr = st.augmented(train_x);
    let xte = st.augmented(test_x);
    let fit = fit(
        &xtr,
        &labels.class_of,
        labels.num_classes(),
        alpha,
        max_iter,
        progress,
    );
    let hits = |pred: &[u32], truth: &[i64]| -> usize {
        pred.iter()
            .zip(truth)
            .filter(|(p, t)| labels.classes[**p as usize] == **t)
            .count()
    };
    let acc = hits(&fit.predict(&xte), test_y) as f64 / test_y.len() as f64;
    let train_acc = hits(&fit.predict(&xtr), train_y) as f64 / train_y.len() as f64;
    let unseen_test = test_y
        .iter()
        .filter(|t| labels.classes.binary_search(t).is_err())
        .count();
    Ok(ProbeResult {
        acc,
        train_acc,
        n_train: train_y.len(),
        n_test: test_y.len(),
        unseen_test,
        classes: labels.classes.clone(),
        standardizer: st,
        fit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::Silent;

    #[test]
    fn split_is_stratified_and_seeded() {
        let raw: Vec<i64> = (0..53).map(|i| (i % 5) as i64).chain([9]).collect();
        let l = Labels::new(raw);
        let s = stratified_split(&l, 3);
        assert_eq!(s.train.len() + s.test.len(), 54);
        assert_eq!(s.singletons, 1);
        assert!(s.train.contains(&53));
        // Class 0 has 11 members: round(2.2) = 2 go to the test part.
        assert_eq!(s.test.iter().filter(|&&i| i % 5 == 0).count(), 2);
        assert_eq!(s, stratified_split(&l, 3));
        assert_ne!(s, stratified_split(&l, 4));
    }

    /// Rows, labels and parameters of a small problem for the objective's tests.
    fn problem(n: usize, d: usize, kc: usize) -> (Vec<f64>, Vec<u32>, Vec<f64>) {
        let x: Vec<f64> = (0..n * d)
            .map(|i| ((i * 7 % 11) as f64 - 5.0) / 3.0)
            .collect();
        let y: Vec<u32> = (0..n).map(|i| (i % kc) as u32).collect();
        let xa = Standardizer::fit(&x, d).augmented(&x);
        let theta: Vec<f64> = (0..(d + 1) * kc).map(|i| (i as f64 * 0.37).sin()).collect();
        (xa, y, theta)
    }

    #[test]
    fn gradient_matches_finite_differences() {
        // Grouped: two row groups, the second partial, several row chunks. Fused: several tasks, the
        // last with a partial block.
        for (n, fused) in [(GROUP_ROWS + 300, false), (3 * TASK_ROWS + 100, true)] {
            let (d, kc) = (3, 4);
            let (xa, y, theta) = problem(n, d, kc);
            let mut obj = Objective::with_mode(&xa, &y, kc, 0.1, fused);
            let mut g = vec![0.0; theta.len()];
            obj.eval(&theta, &mut g);
            let mut scratch = vec![0.0; theta.len()];
            for i in 0..theta.len() {
                let h = 1e-6;
                let mut tp = theta.clone();
                tp[i] += h;
                let fp = obj.eval(&tp, &mut scratch);
                tp[i] -= 2.0 * h;
                let fm = obj.eval(&tp, &mut scratch);
                assert!(((fp - fm) / (2.0 * h) - g[i]).abs() < 1e-7, "{fused} {i}");
            }
        }
    }

    #[test]
    fn fused_and_grouped_evaluations_agree() {
        // Only the order of the sums differs.
        let (n, d, kc) = (GROUP_ROWS + 2 * TASK_ROWS + 77, 5, 130);
        assert!(
            Objective::new(&vec![0.0; n * (d + 1)], &vec![0; n], kc, 1.0)
                .fused
                .is_some()
        );
        let (xa, y, theta) = problem(n, d, kc);
        let mut g1 = vec![0.0; theta.len()];
        let mut g2 = vec![0.0; theta.len()];
        let f1 = Objective::with_mode(&xa, &y, kc, 1e-3, true).eval(&theta, &mut g1);
        let f2 = Objective::with_mode(&xa, &y, kc, 1e-3, false).eval(&theta, &mut g2);
        assert!((f1 - f2).abs() <= 1e-13 * f1.abs(), "{f1} {f2}");
        for (a, b) in g1.iter().zip(&g2) {
            assert!((a - b).abs() <= 1e-13, "{a} {b}");
        }
        // Identical for any thread count.
        let at = |t: usize| {
            crate::par::Threads(t)
                .install(|| {
                    let mut g = vec![0.0; theta.len()];
                    let f = Objective::with_mode(&xa, &y, kc, 1e-3, true).eval(&theta, &mut g);
                    (
                        f.to_bits(),
                        g.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    )
                })
                .unwrap()
        };
        assert_eq!(at(1), at(3));
    }

    #[test]
    fn fast_exp_is_within_two_ulp() {
        let mut worst = [0f64; 2];
        for i in 0..=2_000_000 {
            let x = -708.0 * (i as f64 / 2e6).powi(3) + (i as f64 * 1e-12).min(0.0);
            let b = x.exp();
            worst[0] = worst[0].max((exp_nonpositive::<false>(x) - b).abs() / b);
            worst[1] = worst[1].max((exp_nonpositive::<true>(x) - b).abs() / b);
        }
        assert!(worst[0] <= 2.0 * f64::EPSILON, "{worst:?}");
        assert!(worst[1] <= 2.0 * f64::EPSILON, "{worst:?}");
        for fma in [false, true] {
            let e = |x: f64| {
                if fma {
                    exp_nonpositive::<true>(x)
                } else {
                    exp_nonpositive::<false>(x)
                }
            };
            assert_eq!(e(0.0), 1.0);
            assert_eq!(e(-1000.0), 0.0);
            assert_eq!(e(f64::NEG_INFINITY), 0.0);
        }
    }

    #[test]
    fn softmax_residuals_match_the_definition() {
        // Rows of 19 classes (two full lanes and a remainder), one with a huge spread.
        let kc = 19;
        let z0: Vec<f64> = (0..3 * kc)
            .map(|i| ((i as f64) * 0.91).sin() * if i < 2 * kc { 4.0 } else { 900.0 })
            .collect();
        let y = [3u32, 18, 0];
        let mut z = z0.clone();
        let loss = softmax_rows(&mut z, kc, &y, 0.5);
        let mut want_loss = 0.0;
        for (i, row) in z0.chunks_exact(kc).enumerate() {
            let m = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let s: f64 = row.iter().map(|v| (v - m).exp()).sum();
            want_loss += s.ln() - (row[y[i] as usize] - m);
            for (k, v) in row.iter().enumerate() {
                let want = 0.5 * ((v - m).exp() / s - (k == y[i] as usize) as u8 as f64);
                assert!((z[i * kc + k] - want).abs() <= 1e-15, "{i} {k}");
            }
        }
        assert!((loss - want_loss).abs() <= 1e-13 * want_loss.abs());
    }

    #[test]
    fn separable_classes_are_learned() {
        let x: Vec<f64> = (0..40)
            .map(|i| if i < 20 { -1.0 } else { 1.0 } + (i as f64 * 0.1).sin() * 0.2)
            .collect();
        let y: Vec<i64> = (0..40).map(|i| (i >= 20) as i64).collect();
        let r = linear_probe(&x, &y, &x, &y, 1, 1e-4, 500, &Silent).unwrap();
        assert_eq!(r.acc, 1.0);
        assert!(r.fit.converged(), "{:?}", r.fit.stop);
        assert!(r.fit.grad_norm <= GRAD_TOL);
    }
}
