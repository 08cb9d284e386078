//! The class-conditional Kronecker covariance fit `Sigma_k = Sigma_C (x) Sigma_S` by the flip-flop
//! maximum-likelihood iteration (Dutilleul 1999; metrics.md section 1, study eq. 3).
//!
//! A class's centred samples `R_n = X_n - M_k` (`C x S` each) are held as chunks of up to [`CHUNK`]
//! samples in `[c][n][s]` order, so that one buffer is at once the `(C n) x S` matrix whose rows are
//! the channel rows of every sample and the `C x (n S)` matrix whose columns are the spatial positions
//! of every sample. Each half-sweep is then two GEMM-shaped operations per chunk:
//!
//! - `Sigma_C <- (1/(N S)) sum_n R_n Sigma_S^{-1} R_n^T`: with `Sigma_S = L L^T`, `Y = R L^{-T}` on
//!   the `(C n) x S` view by block substitution (`n C S^2` flops), then `Y Y^T` on the `C x (n S)`
//!   view (`n C^2 S`);
//! - `Sigma_S <- (1/(N C)) sum_n R_n^T Sigma_C^{-1} R_n`: with `Sigma_C = L L^T`, `Z = L^{-1} R` on
//!   the `C x (n S)` view (`n C^2 S`), then `Z^T Z` on the `(C n) x S` view (`n C S^2`, lower half only).
//!
//! The substitution factor of the spatial `L^T` (its inverted diagonal blocks and the off-diagonal
//! blocks scaled by them, about `S^3 / 16` flops) and the channel inverse `L^{-1}` (`C^3 / 3`) are
//! formed once per sweep, so the per-sample work runs as matrix products rather than
//! many-right-hand-side solves, without the `S^3 / 3` of a full spatial inverse. [`fit`] runs
//! every sweep in f64; [`fit_with`] with [`Precision::Mixed`] runs the sweeps in f32 with Anderson acceleration,
//! under the same stopping rule, and falls back to f64 sweeps where the f32 rounding floor stops the
//! changes short of the tolerance (the metric's default for `D >= 1024`, where the sweeps dominate
//! the cost).
//!
//! Chunk partial sums are added in chunk order, so the fit does not depend on the thread count.
//! A class whose residuals fit in [`CACHE_VALUES`] values keeps them in memory across sweeps; a larger
//! one (e.g. all samples of an unlabelled set) re-reads its samples from the source every sweep, so
//! only chunk-sized buffers are ever allocated. The factor-sized matrices a sweep no longer needs are
//! kept for the next sweep's, and a worker hands its buffers on to its next class ([`ClassBuffers`]),
//! so that the allocator does not return that memory to the system and fault it back in between
//! sweeps. In the f32 sweeps the spatial factor is carried as its lower triangle (every step reads
//! only that); the fit makes it whole at the end.

use crate::data::Normalized;
use crate::linalg;
use faer::{Accum, Mat, MatMut, MatRef};
use rayon::prelude::*;
use std::ops::Range;
use std::sync::Mutex;

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
    /// Buffers of a single-chunk class, kept across sweeps (a sweep would otherwise allocate and
    /// zero-fill several chunk-sized buffers); classes of several chunks give each parallel worker
    /// its own.
    scratch: Mutex<Scratch>,
}

enum Source<'a> {
    /// Residual chunks in `[c][n][s]` order, and their f32 roundings once
    /// [`Residuals::keep_f32`] has made them (else empty).
    Cached(Vec<Vec<f64>>, Vec<Vec<f32>>),
    /// The f32 roundings of the residual chunks only ([`Residuals::from_normalized_f32`]); the f64
    /// residuals are re-read from the latents when an f64 product needs them.
    Single {
        r32: Vec<Vec<f32>>,
        z: Normalized<'a>,
        members: &'a [usize],
    },
    /// Samples re-read (and normalized) from the latents.
    Stream {
        z: Normalized<'a>,
        members: &'a [usize],
    },
}

/// Buffers of one class's residuals and products that a worker hands on to its next class
/// ([`Residuals::from_normalized_f32_reusing`], [`Residuals::recycle`]). Without them every class
/// allocates and frees several megabytes, and the allocator returns that memory to the system and
/// takes it back, page fault by page fault, class after class (up to a tenth of the fit's time).
#[derive(Default)]
pub struct ClassBuffers {
    raw: Vec<f32>,
    r32: Vec<f32>,
    scratch: Scratch,
}

impl ClassBuffers {
    /// Keeps a matrix of a finished class (e.g. its fitted spatial factor) for the next class's fit.
    pub fn give(&mut self, m: Mat<f64>) {
        give_square(&mut self.scratch.work.spare64, m);
    }
}

/// Scratch buffers of one worker of [`Residuals::reduce64`] / [`Residuals::reduce32`].
#[derive(Default)]
struct Scratch {
    raw: Vec<f32>,
    read64: Vec<f64>,
    read32: Vec<f32>,
    work: Work,
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
        Residuals::build(
            z,
            members,
            cache_values,
            false,
            &mut ClassBuffers::default(),
        )
    }

    /// As [`Residuals::from_normalized`] for the f32 sweeps of [`Precision::Mixed`]: a class that
    /// fits in [`CACHE_VALUES`] keeps only the f32 roundings of its residuals (the values
    /// [`Residuals::keep_f32`] would make, half the memory of the f64 ones and no conversion pass),
    /// and re-reads its samples for the rare f64 products. The fits are bit-identical to those of
    /// [`Residuals::from_normalized`] with [`Residuals::keep_f32`].
    pub fn from_normalized_f32(z: Normalized<'a>, members: &'a [usize]) -> Residuals<'a> {
        Residuals::build(z, members, CACHE_VALUES, true, &mut ClassBuffers::default())
    }

    /// As [`Residuals::from_normalized_f32`], in buffers taken from `bufs` (a class of one chunk;
    /// larger ones allocate their own), which [`Residuals::recycle`] gives back.
    pub fn from_normalized_f32_reusing(
        z: Normalized<'a>,
        members: &'a [usize],
        bufs: &mut ClassBuffers,
    ) -> Residuals<'a> {
        Residuals::build(z, members, CACHE_VALUES, true, bufs)
    }

    /// Gives the buffers of a class made by [`Residuals::from_normalized_f32_reusing`] back to
    /// `bufs` for the next class. The residuals are then empty; the mean stays.
    pub fn recycle(&mut self, bufs: &mut ClassBuffers) {
        if let Source::Single { r32, .. } = &mut self.source
            && r32.len() == 1
        {
            bufs.r32 = r32.pop().expect("one chunk");
        }
        bufs.scratch = std::mem::take(self.scratch.get_mut().unwrap_or_else(|e| e.into_inner()));
    }

    fn build(
        z: Normalized<'a>,
        members: &'a [usize],
        cache_values: usize,
        single: bool,
        bufs: &mut ClassBuffers,
    ) -> Residuals<'a> {
        let sh = z.shape();
        let (c, s, d, n) = (sh.c, sh.s(), sh.d(), members.len());
        let chunks = crate::par::chunks(n, CHUNK);
        let cache = n * d <= cache_values;
        // Every value is overwritten: a reused buffer is not cleared first.
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
        let scratch = std::mem::take(&mut bufs.scratch);
        let residuals = |mean: Vec<f64>, source: Source<'a>| Residuals {
            c,
            s,
            n,
            chunks: chunks.clone(),
            mean,
            source,
            scratch: Mutex::new(scratch),
        };
        if cache && single && chunks.len() == 1 {
            // Gathered and summed sample by sample while each is in cache (the same sums, in the
            // same order, as `sums` of the gathered chunk).
            let raw = &mut bufs.raw;
            raw.resize(n * d, 0.0);
            let mut acc = vec![0.0f64; d];
            for (x, &i) in raw.chunks_exact_mut(d).zip(members) {
                z.sample_into(i, x);
                for (a, &v) in acc.iter_mut().zip(x.iter()) {
                    *a += v as f64;
                }
            }
            let mean: Vec<f64> = acc.iter().map(|x| x / n as f64).collect();
            let mut r32 = std::mem::take(&mut bufs.r32);
            centre_transpose(raw, &mean, c, s, &mut r32, |v| v as f32);
            let r32 = vec![r32];
            residuals(mean, Source::Single { r32, z, members })
        } else if cache {
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
            if single {
                let r32 = raw
                    .iter()
                    .map(|b| {
                        let mut out = Vec::new();
                        centre_transpose(b, &mean, c, s, &mut out, |v| v as f32);
                        out
                    })
                    .collect();
                residuals(mean, Source::Single { r32, z, members })
            } else {
                let cached = raw
                    .iter()
                    .map(|b| {
                        let mut out = Vec::new();
                        centre_transpose(b, &mean, c, s, &mut out, |v| v);
                        out
                    })
                    .collect();
                residuals(mean, Source::Cached(cached, Vec::new()))
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
            residuals(mean, Source::Stream { z, members })
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
                centre_transpose(&rows[r.start * d..r.end * d], &mean, c, s, &mut out, |v| v);
                out
            })
            .collect();
        Residuals {
            c,
            s,
            n,
            chunks,
            mean,
            source: Source::Cached(cached, Vec::new()),
            scratch: Mutex::new(Scratch::default()),
        }
    }

    pub fn n(&self) -> usize {
        self.n
    }

    fn work(&self) -> std::sync::MutexGuard<'_, Scratch> {
        self.scratch.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An `n x n` matrix with unspecified contents: one given back by [`Residuals::give`] where there
    /// is one of that size.
    fn take(&self, n: usize) -> Mat<f64> {
        take_square(&mut self.work().work.spare64, n)
    }

    /// Keeps a matrix that is no longer needed for a later [`Residuals::take`].
    fn give(&self, m: Mat<f64>) {
        give_square(&mut self.work().work.spare64, m);
    }

    /// The class mean (`D` values, `[c][s]`).
    pub fn mean(&self) -> &[f64] {
        &self.mean
    }

    /// Takes the class mean out (for the marginal mixture).
    pub fn into_mean(self) -> Vec<f64> {
        self.mean
    }

    /// Keeps an f32 rounding of cached residuals next to the f64 ones, so that the f32 sweeps of
    /// [`fit_with`] do not convert them every sweep (half the memory of the f64 copy again). A no-op
    /// for streamed residuals, which are converted chunk by chunk as they are read.
    pub fn keep_f32(&mut self) {
        if let Source::Cached(v, v32) = &mut self.source
            && v32.is_empty()
        {
            *v32 = v
                .iter()
                .map(|c| c.iter().map(|&x| x as f32).collect())
                .collect();
        }
    }

    /// Reads chunk `k`'s samples from the latents into `sc.raw`.
    fn read(&self, z: &Normalized<'_>, members: &[usize], k: usize, raw: &mut Vec<f32>) {
        let d = self.c * self.s;
        let nk = self.chunks[k].len();
        if raw.len() != nk * d {
            raw.resize(nk * d, 0.0);
        }
        for (j, &i) in members[self.chunks[k].clone()].iter().enumerate() {
            z.sample_into(i, &mut raw[j * d..(j + 1) * d]);
        }
    }

    /// Runs `run(k, scratch)` for every chunk `k` and adds the results in chunk order: a single
    /// chunk with the class's kept scratch, several in parallel with a scratch per worker.
    fn over_chunks<F>(&self, run: F) -> Mat<f64>
    where
        F: Fn(usize, &mut Scratch) -> Mat<f64> + Sync,
    {
        if self.chunks.len() == 1 {
            // The lock is never contended: a class's products run one after another.
            return run(0, &mut self.work());
        }
        (0..self.chunks.len())
            .into_par_iter()
            .map_init(Scratch::default, |sc, k| run(k, sc))
            .collect::<Vec<Mat<f64>>>()
            .into_iter()
            .reduce(|a, b| a + b)
            .expect("a class has at least one chunk")
    }

    /// Runs `f` on every chunk's f64 residuals (`[c][n][s]`; its sample count; scratch buffers)
    /// and adds the results in chunk order.
    fn reduce64<F>(&self, f: F) -> Mat<f64>
    where
        F: Fn(&[f64], usize, &mut Work) -> Mat<f64> + Sync,
    {
        self.over_chunks(|k, sc| {
            let nk = self.chunks[k].len();
            let Scratch {
                raw, read64, work, ..
            } = sc;
            match &self.source {
                Source::Cached(v, _) => f(&v[k], nk, work),
                Source::Single { z, members, .. } | Source::Stream { z, members } => {
                    self.read(z, members, k, raw);
                    centre_transpose(raw, &self.mean, self.c, self.s, read64, |v| v);
                    f(read64, nk, work)
                }
            }
        })
    }

    /// As [`Residuals::reduce64`] with the residuals rounded to f32 (the kept roundings where
    /// there are some).
    fn reduce32<F>(&self, f: F) -> Mat<f64>
    where
        F: Fn(&[f32], usize, &mut Work) -> Mat<f64> + Sync,
    {
        self.over_chunks(|k, sc| {
            let nk = self.chunks[k].len();
            let Scratch {
                raw, read32, work, ..
            } = sc;
            match &self.source {
                Source::Cached(v, v32) => match v32.get(k) {
                    Some(x) => f(x, nk, work),
                    None => {
                        read32.clear();
                        read32.extend(v[k].iter().map(|&x| x as f32));
                        f(read32, nk, work)
                    }
                },
                Source::Single { r32, .. } => f(&r32[k], nk, work),
                Source::Stream { z, members } => {
                    self.read(z, members, k, raw);
                    centre_transpose(raw, &self.mean, self.c, self.s, read32, |v| v as f32);
                    f(read32, nk, work)
                }
            }
        })
    }

    /// `sum_n R_n Sigma_S^{-1} R_n^T` (`C x C`), with `Sigma_S = L L^T` given by the substitution
    /// factor `solve_s` of `L^T` ([`linalg::upper_solve_factor`]), or `Sigma_S = I` when `None`:
    /// `Y = R L^{-T}` on the `(C n) x S` view (block substitution), then `Y Y^T` on the `C x (n S)`
    /// view.
    pub fn channel_gram(&self, solve_s: Option<MatRef<'_, f64>>) -> Mat<f64> {
        let (c, s) = (self.c, self.s);
        self.reduce64(|r, nk, work| {
            let mut g = Mat::zeros(c, c);
            let y = match solve_s {
                None => r,
                Some(m) => {
                    work.f64.resize(r.len(), 0.0);
                    linalg::solve_upper_right(&mut work.f64, r, m, &mut work.block64);
                    &work.f64
                }
            };
            linalg::gram(
                g.as_mut(),
                Accum::Replace,
                MatRef::from_row_major_slice(y, c, nk * s),
                1.0,
            );
            g
        })
    }

    /// `sum_n R_n^T Sigma_C^{-1} R_n` (`S x S`), with `Sigma_C = L L^T` given by `li_c = L^{-1}`:
    /// `Z = L^{-1} R` on the `C x (n S)` view, then `Z^T Z` on the `(C n) x S` view.
    pub fn spatial_gram(&self, li_c: MatRef<'_, f64>) -> Mat<f64> {
        let (c, s) = (self.c, self.s);
        self.reduce64(|r, nk, work| {
            let z = &mut work.f64;
            z.resize(r.len(), 0.0);
            linalg::mul_lower_left(
                MatMut::from_row_major_slice_mut(z, c, nk * s),
                li_c,
                MatRef::from_row_major_slice(r, c, nk * s),
            );
            let mut g = Mat::zeros(s, s);
            linalg::gram_t(
                g.as_mut(),
                Accum::Replace,
                MatRef::from_row_major_slice(z, c * nk, s),
                1.0,
            );
            g
        })
    }

    /// [`Residuals::channel_gram`] with the residuals rounded to f32 and the products in f32 (about
    /// twice the throughput); the Gram products are summed in f64 over blocks of [`GRAM_BLOCK`]
    /// terms ([`linalg::row_gram_f32`] on AVX-512, a general product elsewhere), so the result
    /// carries a relative error of about `1e-7`, not the `1e-16` of the f64 form. For the early
    /// sweeps of [`fit_with`] only.
    pub fn channel_gram_f32(&self, solve_s: Option<MatRef<'_, f32>>) -> Mat<f64> {
        let (c, s) = (self.c, self.s);
        self.reduce32(|x, nk, work| {
            let Work {
                f32: y,
                part,
                block32,
                ..
            } = work;
            let y = match solve_s {
                None => x,
                Some(m) => {
                    // Every value is written by the products: no need to clear a reused buffer.
                    y.resize(x.len(), 0.0);
                    linalg::solve_upper_right(y, x, m, block32);
                    &*y
                }
            };
            linalg::row_gram_f32(y, c, nk * s).unwrap_or_else(|| {
                gram_f32(
                    MatRef::from_row_major_slice(y, c, nk * s),
                    part,
                    Mat::zeros(c, c),
                    1.0,
                    false,
                )
            })
        })
    }

    /// [`Residuals::spatial_gram`] in f32, as [`Residuals::channel_gram_f32`], times `scale`
    /// (applied as the f32 Gram is converted: no pass of its own).
    pub fn spatial_gram_f32(&self, li_c: MatRef<'_, f32>, scale: f64) -> Mat<f64> {
        let (c, s) = (self.c, self.s);
        self.reduce32(|x, nk, work| {
            let Work {
                f32: z,
                part,
                spare64,
                ..
            } = work;
            z.resize(x.len(), 0.0);
            linalg::mul_lower_left(
                MatMut::from_row_major_slice_mut(z, c, nk * s),
                li_c,
                MatRef::from_row_major_slice(x, c, nk * s),
            );
            let g = take_square(spare64, s);
            gram_f32(
                MatRef::from_row_major_slice(z, c * nk, s).transpose(),
                part,
                g,
                scale,
                true,
            )
        })
    }
}

/// Scratch buffers of the products of one chunk.
struct Work {
    f64: Vec<f64>,
    f32: Vec<f32>,
    part: Mat<f32>,
    /// A block column of the substitution ([`linalg::solve_upper_right`]).
    block64: Vec<f64>,
    block32: Vec<f32>,
    /// Square matrices no longer needed, for reuse ([`take_square`]).
    spare64: Vec<Mat<f64>>,
    /// The f32 rounding of the spatial substitution factor.
    solve32: Mat<f32>,
    /// Packed triangles of the Anderson history, for reuse.
    packed: Vec<Vec<f64>>,
}

impl Default for Work {
    fn default() -> Work {
        Work {
            f64: Vec::new(),
            f32: Vec::new(),
            part: Mat::zeros(0, 0),
            block64: Vec::new(),
            block32: Vec::new(),
            spare64: Vec::new(),
            solve32: Mat::zeros(0, 0),
            packed: Vec::new(),
        }
    }
}

/// Most matrices kept by [`give_square`]: a sweep frees about six.
const SPARE_MATS: usize = 12;

/// An `n x n` matrix from `spare` (contents unspecified), or a new one. Reusing the factor-sized
/// matrices of a fit keeps the allocator from handing their memory back to the system between
/// sweeps and taking it again, page fault by page fault.
fn take_square(spare: &mut Vec<Mat<f64>>, n: usize) -> Mat<f64> {
    match spare.iter().rposition(|m| m.nrows() == n && m.ncols() == n) {
        Some(i) => spare.swap_remove(i),
        None => Mat::zeros(n, n),
    }
}

fn give_square(spare: &mut Vec<Mat<f64>>, m: Mat<f64>) {
    if spare.len() < SPARE_MATS && m.nrows() == m.ncols() && m.nrows() > 0 {
        spare.push(m);
    }
}

/// Terms per f32 partial product in [`gram_f32`].
pub const GRAM_BLOCK: usize = 2048;

/// `scale a a^T` in f64 for an f32 matrix `a` (`m x k`), written over `g` (`m x m`): f32 products
/// over blocks of [`GRAM_BLOCK`] columns, each added into the f64 result, so rounding grows with the
/// block length, not with `k`. The scale multiplies the finished sum (as a pass of its own would).
/// With `lower` only the lower triangle of `g` is written (the upper one keeps what it held).
fn gram_f32(
    a: MatRef<'_, f32>,
    part: &mut Mat<f32>,
    mut g: Mat<f64>,
    scale: f64,
    lower: bool,
) -> Mat<f64> {
    let (m, k) = (a.nrows(), a.ncols());
    assert_eq!((g.nrows(), g.ncols()), (m, m));
    part.resize_with(m, m, |_, _| 0.0);
    let mut j = 0;
    loop {
        let w = GRAM_BLOCK.min(k - j);
        if lower {
            linalg::gram_lower(part.as_mut(), a.subcols(j, w));
        } else {
            linalg::gram(part.as_mut(), Accum::Replace, a.subcols(j, w), 1.0f32);
        }
        let last = j + w >= k;
        for col in 0..m {
            let from = if lower { col } else { 0 };
            let (dst, src) = (
                &mut g.col_as_slice_mut(col)[from..],
                &part.col_as_slice(col)[from..],
            );
            match (j == 0, last) {
                (true, true) => dst
                    .iter_mut()
                    .zip(src)
                    .for_each(|(x, &y)| *x = y as f64 * scale),
                (true, false) => dst.iter_mut().zip(src).for_each(|(x, &y)| *x = y as f64),
                (false, true) => dst
                    .iter_mut()
                    .zip(src)
                    .for_each(|(x, &y)| *x = (*x + y as f64) * scale),
                (false, false) => dst.iter_mut().zip(src).for_each(|(x, &y)| *x += y as f64),
            }
        }
        j += w;
        if last {
            return g;
        }
    }
}

/// Writes `cast(x - mean)` of `n` samples (`x` is `n x [c][s]` f32 or f64, the difference taken in
/// f64) into `out` in `[c][n][s]` order. Every value of `out` is written, so a reused buffer of the
/// right length is not cleared first.
fn centre_transpose<T: Copy + Into<f64>, O: Copy + Default>(
    x: &[T],
    mean: &[f64],
    c: usize,
    s: usize,
    out: &mut Vec<O>,
    cast: impl Fn(f64) -> O,
) {
    let d = c * s;
    let n = x.len() / d;
    out.resize(n * d, O::default());
    for (j, sample) in x.chunks_exact(d).enumerate() {
        for ch in 0..c {
            let src = &sample[ch * s..(ch + 1) * s];
            let m = &mean[ch * s..(ch + 1) * s];
            let dst = &mut out[(ch * n + j) * s..(ch * n + j + 1) * s];
            for ((o, &v), &mu) in dst.iter_mut().zip(src).zip(m) {
                *o = cast(v.into() - mu);
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
    /// Sweeps run (one sweep = both updates), f32 and f64 ones together.
    pub sweeps: usize,
    /// Of those, the sweeps run in f32 ([`Precision::Mixed`]); 0 for [`fit`].
    pub sweeps_f32: usize,
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
    /// The factor is written into a matrix taken from `res`'s spares.
    fn factor(
        &mut self,
        f: &mut Mat<f64>,
        eps: f64,
        res: &Residuals<'_>,
    ) -> Result<Mat<f64>, Degenerate> {
        let mut l = res.take(f.nrows());
        if self.reason.is_some() {
            self.add(f, eps);
        } else if linalg::cholesky_into(f.as_ref(), &mut l) {
            return Ok(l);
        } else {
            self.reason = Some(RidgeReason::NotPositiveDefinite);
            self.add(f, eps);
        }
        if linalg::cholesky_into(f.as_ref(), &mut l) {
            Ok(l)
        } else {
            res.give(l);
            Err(Degenerate::Singular)
        }
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
    fit_with(res, opts, Precision::F64, None)
}

/// The arithmetic of the flip-flop sweeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precision {
    /// Every sweep in f64: the reference iteration of metrics.md section 1.
    F64,
    /// Sweeps in f32 (triangular and Gram products on f32 residuals, summed in f64 into f64 factors)
    /// while their changes shrink, then f64 sweeps; either kind can meet the stopping rule.
    Mixed,
}

/// A spatial factor for [`fit_with`] to start from, with the substitution factor of its Cholesky
/// factor: made once for all the classes that share it.
#[derive(Clone, Debug)]
pub struct Start {
    sigma_s: Mat<f64>,
    solve: Mat<f64>,
}

impl Start {
    /// `None` when `sigma_s` is not square or not positive definite (then fits start from the
    /// identity).
    pub fn new(sigma_s: Mat<f64>) -> Option<Start> {
        if sigma_s.nrows() != sigma_s.ncols() {
            return None;
        }
        let l = linalg::cholesky(sigma_s.as_ref())?;
        let solve = linalg::upper_solve_factor(l.as_ref(), 1.0);
        Some(Start { sigma_s, solve })
    }
}

/// Past iterates combined by the Anderson acceleration of [`fit_with`]'s f32 phase (besides the
/// newest): depth 2 took fewer sweeps than 1 or 3 on the benchmark classes (metrics.md section 1
/// at 32 x 16 x 16, 50 samples per class).
pub const ANDERSON_DEPTH: usize = 2;

/// [`fit`] with a choice of arithmetic and of the spatial factor the first sweep starts from
/// (`start`; `None` is the reference start `Sigma_S = I`, and so is a start that is not positive
/// definite).
///
/// With [`Precision::Mixed`] the sweeps first run in f32 (Gram products and triangular products on
/// f32 residuals, summed into f64 factors), each sweep starting from the Anderson-accelerated
/// spatial factor (type II, Walker & Ni 2011, over the last [`ANDERSON_DEPTH`] + 1 iterates: the
/// combination of the sweeps' outputs `F(x_i)` whose residuals `F(x_i) - x_i` combine to the least
/// Frobenius norm; a plain sweep's output instead when the combination is not positive definite, and
/// the history restarts when a residual grows). The spec's stopping rule applies to every sweep, f32
/// or f64. The f32 sweeps carry a relative rounding error near `1e-7` (the residuals are rounded to
/// f32 and each product sums in f32 over at most [`GRAM_BLOCK`] terms), so at the default `tol` of
/// `1e-6` the f32 changes reach it and the factors agree with [`fit`]'s to about `tol` (both are
/// within about `tol` of the same unique MLE; the benchmark classes agree to 4e-9 in VIV). Where the
/// f32 changes stop shrinking (above 0.9 times the previous one: the rounding floor, reached first
/// with a small `tol` or an ill-conditioned factor) or one sweep of `max_sweeps` is left, plain f64
/// sweeps take over, the first one's change measured against the factors the last f32 sweep
/// produced. Once the spatial factor's change is below `tol`, the next sweep starts from that factor
/// itself (not from a combination) and ends after its first half when the channel factor's change is
/// below `tol` too: the fit is then `(Sigma_C(Sigma_S), Sigma_S)`, the state of the plain flip-flop
/// after that half-sweep, with the last change of each factor below `tol` (this saves half a sweep
/// for most classes). `sweeps` counts both kinds, such a last half-sweep as one, and `sweeps_f32`
/// the f32 ones; an f32 sweep that overflows is redone in f64.
pub fn fit_with(
    res: &Residuals<'_>,
    opts: &FitOptions,
    precision: Precision,
    start: Option<&Start>,
) -> Result<KroneckerFit, Degenerate> {
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
    let max_sweeps = opts.max_sweeps.max(1);
    let mut single = precision == Precision::Mixed && max_sweeps > 1;
    let (mut sweeps_f32, mut last_f32_change) = (0, f64::INFINITY);
    // The spatial factor the next sweep starts from, and the substitution factor of its Cholesky
    // factor (None: I).
    let copy = |m: &Mat<f64>| {
        let mut out = res.take(m.nrows());
        linalg::copy_into(m, &mut out);
        out
    };
    let (mut cur_ss, mut solve_s) = match start.filter(|st| st.sigma_s.nrows() == s) {
        Some(st) => (copy(&st.sigma_s), Some(copy(&st.solve))),
        None => (Mat::<f64>::identity(s, s), None),
    };
    let mut accel = Anderson::new(ANDERSON_DEPTH);
    let mut last: Option<(Mat<f64>, Mat<f64>)> = None;
    let (mut change, mut converged, mut sweeps) = (f64::INFINITY, false, 0);
    // The factors' last scalings (see the ridge amounts below), and the spatial factor's last change.
    let (mut scale_c, mut scale_s, mut last_ds) = (1.0, 1.0, f64::INFINITY);
    let half_stop = precision == Precision::Mixed;
    while sweeps < max_sweeps {
        let before = rc.reason;
        let Some((sc, li_c)) = channel_half(
            res,
            solve_s.as_ref(),
            single,
            sweeps == 0,
            opts.ridge,
            &mut rc,
        )?
        else {
            single = false;
            accel.clear();
            continue;
        };
        // The spatial factor's last change is already below tol and this sweep started from that
        // factor itself: when the channel factor's change is too, both factors' last changes meet
        // the rule, and the pair (Sigma_C(Sigma_S), Sigma_S) is the flip-flop's state after this
        // half-sweep. The second half is then not needed.
        if half_stop
            && last_ds < opts.tol
            && let Some((pc, _)) = &last
        {
            let dc = linalg::relative_change(&sc, pc);
            if dc < opts.tol {
                sweeps += 1;
                sweeps_f32 += usize::from(single);
                change = dc.max(last_ds);
                converged = true;
                scale_c = 1.0;
                // The loop ends here: the start factor itself is the fit's spatial factor (made whole:
                // a combination holds its lower triangle only).
                let mut ss = std::mem::replace(&mut cur_ss, Mat::new());
                linalg::mirror_lower(ss.as_mut());
                if let Some((_, ps)) = last.replace((sc, ss)) {
                    res.give(ps);
                }
                break;
            }
        }
        let Some((sc, ss, l, a)) = spatial_half(
            res,
            sc,
            &li_c,
            single,
            !(single && accel.primed()),
            opts.ridge,
            &mut rs,
        )?
        else {
            rc.reason = before;
            single = false;
            accel.clear();
            continue;
        };
        sweeps += 1;
        (scale_c, scale_s) = (a, a);
        if let Some((pc, _)) = &last {
            let dc = linalg::relative_change(&sc, pc);
            let ds = linalg::relative_change_sym(&ss, &cur_ss);
            change = dc.max(ds);
            last_ds = ds;
        }
        converged = change < opts.tol;
        if single {
            sweeps_f32 += 1;
            if change > 0.9 * last_f32_change || sweeps + 1 >= max_sweeps {
                single = false;
            }
            last_f32_change = change;
        }
        // `last` keeps this sweep's output; the next start is set below (a combination, or a copy
        // of the output only where there is none).
        let from = std::mem::replace(&mut cur_ss, Mat::new());
        if let Some((_, ps)) = last.replace((sc, ss)) {
            res.give(ps);
        }
        let ss = &last.as_ref().expect("just set").1;
        if converged {
            res.give(from);
            if let Some(l) = l {
                res.give(l);
            }
            break;
        }
        // Once the spatial factor's change is below tol, the next sweep starts from it as it is, so
        // that it can end after its first half (above).
        let next = if single && !(half_stop && last_ds < opts.tol) {
            accel.next(&from, ss, res)
        } else {
            None
        };
        let solve_factor = |l: Mat<f64>, scale: f64| {
            let mut m = res.take(s);
            linalg::upper_solve_factor_into(l.as_ref(), scale, &mut m);
            res.give(l);
            Some(m)
        };
        let new_solve = match (next, l) {
            (Some((x, lx)), l) => {
                if let Some(l) = l {
                    res.give(l);
                }
                cur_ss = x;
                solve_factor(lx, 1.0)
            }
            // Sigma_S / a = (L / sqrt(a)) (L / sqrt(a))^T.
            (None, Some(l)) => {
                cur_ss = copy(ss);
                solve_factor(l, 1.0 / a.sqrt())
            }
            (None, None) => {
                cur_ss = copy(ss);
                let mut l = res.take(s);
                if linalg::cholesky_into(cur_ss.as_ref(), &mut l) {
                    solve_factor(l, 1.0)
                } else {
                    // An unfactored f32 output that is not positive definite, and no usable
                    // combination: the f64 sweeps take over from the start of this sweep, whose
                    // factor `solve_s` still is.
                    res.give(l);
                    single = false;
                    accel.clear();
                    res.give(std::mem::replace(&mut cur_ss, from));
                    continue;
                }
            }
        };
        res.give(from);
        if let Some(old) = std::mem::replace(&mut solve_s, new_solve) {
            res.give(old);
        }
    }
    if let Some(m) = solve_s {
        res.give(m);
    }
    res.give(cur_ss);
    accel.release(res);
    let (sigma_c, mut sigma_s) = last.expect("at least one sweep ran");
    // The sweeps keep the spatial factor's lower triangle (see `spatial_half`).
    linalg::mirror_lower(sigma_s.as_mut());
    Ok(KroneckerFit {
        sigma_c,
        sigma_s,
        sweeps,
        sweeps_f32,
        converged,
        change,
        ridge_c: rc.reason.map(|reason| Ridge {
            reason,
            amount: rc.added * scale_c,
        }),
        ridge_s: rs.reason.map(|reason| Ridge {
            reason,
            amount: rs.added / scale_s,
        }),
    })
}

/// `(Sigma_C, Sigma_S, chol(Sigma_S) before normalization, a)` of one sweep.
type SweepOut = (Mat<f64>, Mat<f64>, Option<Mat<f64>>, f64);

/// `(Sigma_C, inverse of its Cholesky factor)` of a sweep's first half.
type ChannelHalf = (Mat<f64>, Mat<f64>);

/// The first half of a sweep from the spatial factor whose Cholesky factor's transpose has the
/// substitution factor `solve_s` (None: I): `Sigma_C` (with its ridge when one is on or needed)
/// and the inverse of its Cholesky factor. `Ok(None)` when an f32 product overflowed (the ridge
/// state is then as before).
fn channel_half(
    res: &Residuals<'_>,
    solve_s: Option<&Mat<f64>>,
    single: bool,
    first: bool,
    eps: f64,
    rc: &mut RidgeState,
) -> Result<Option<ChannelHalf>, Degenerate> {
    let (s, n) = (res.s, res.n);
    let mut sc = if single {
        // The f32 rounding of the factor goes into a kept matrix, taken out of the class's scratch
        // for the product (which locks it) and put back after.
        let m32 = solve_s.map(|m| {
            let mut out = std::mem::replace(&mut res.work().work.solve32, Mat::new());
            linalg::upper_solve_factor_f32(m, &mut out);
            out
        });
        let g = res.channel_gram_f32(m32.as_ref().map(|m| m.as_ref()));
        if let Some(m) = m32 {
            res.work().work.solve32 = m;
        }
        g
    } else {
        res.channel_gram(solve_s.map(|m| m.as_ref()))
    };
    sc *= 1.0 / (n * s) as f64;
    let tr = linalg::trace(sc.as_ref());
    if !tr.is_finite() {
        return if single {
            Ok(None)
        } else {
            Err(Degenerate::NonFinite)
        };
    }
    if first && tr == 0.0 {
        return Err(Degenerate::Identical);
    }
    let l = rc.factor(&mut sc, eps, res)?;
    let li_c = linalg::inverse_lower(l.as_ref());
    res.give(l);
    Ok(Some((sc, li_c)))
}

/// The second half of a sweep, given the first's `Sigma_C` and the inverse `li_c` of its Cholesky
/// factor: `(Sigma_C a, Sigma_S / a, chol(Sigma_S), a)` with `a = tr(Sigma_S) / S`. `Ok(None)` when
/// an f32 product overflowed. With `factor_s` false the spatial factor is not factored (the
/// Cholesky factor is `None`), nor checked for positive definiteness: for f32 sweeps whose output
/// only feeds the acceleration, which checks its own combination; a ridge already switched on is
/// still added.
fn spatial_half(
    res: &Residuals<'_>,
    mut sc: Mat<f64>,
    li_c: &Mat<f64>,
    single: bool,
    factor_s: bool,
    eps: f64,
    rs: &mut RidgeState,
) -> Result<Option<SweepOut>, Degenerate> {
    let (c, s, n) = (res.c, res.s, res.n);
    let scale = 1.0 / (n * c) as f64;
    let mut ss = if single {
        res.spatial_gram_f32(to_f32(li_c).as_ref(), scale)
    } else {
        let mut g = res.spatial_gram(li_c.as_ref());
        g *= scale;
        g
    };
    if !linalg::trace(ss.as_ref()).is_finite() {
        return if single {
            Ok(None)
        } else {
            Err(Degenerate::NonFinite)
        };
    }
    let l = if factor_s {
        Some(rs.factor(&mut ss, eps, res)?)
    } else {
        if rs.reason.is_some() {
            rs.add(&mut ss, eps);
        }
        None
    };
    let a = linalg::trace(ss.as_ref()) / s as f64;
    // The lower triangle only: nothing reads the spatial factor's upper one before the fit's end,
    // which makes the result whole.
    let inv_a = 1.0 / a;
    for j in 0..s {
        ss.col_as_slice_mut(j)[j..]
            .iter_mut()
            .for_each(|x| *x *= inv_a);
    }
    sc *= a;
    Ok(Some((sc, ss, l, a)))
}

/// Anderson acceleration (type II, Walker & Ni 2011) of the spatial factor's fixed-point map
/// `x -> F(x)` (one f32 sweep): the next start is `sum_i w_i F(x_i)` over the last `depth + 1`
/// iterates, with weights summing to one that minimise `|| sum_i w_i (F(x_i) - x_i) ||_F`.
///
/// The iterates are symmetric, so only their lower triangles are kept (packed column by column):
/// half the memory traffic of full matrices, and a Frobenius inner product is twice the packed one
/// less the diagonal's.
struct Anderson {
    depth: usize,
    /// Past map values `g_i = F(x_i)` and residuals `f_i = g_i - x_i` (packed lower triangles),
    /// oldest first, and the residuals' inner products `dots[i][j] = <f_i, f_j>`.
    g: Vec<Vec<f64>>,
    f: Vec<Vec<f64>>,
    dots: Vec<Vec<f64>>,
    /// Positions of the diagonal in a packed triangle.
    diag: Vec<usize>,
}

impl Anderson {
    fn new(depth: usize) -> Anderson {
        Anderson {
            depth,
            g: Vec::new(),
            f: Vec::new(),
            dots: Vec::new(),
            diag: Vec::new(),
        }
    }

    /// Whether the next [`Anderson::next`] will try a combination (a past iterate is recorded).
    fn primed(&self) -> bool {
        !self.f.is_empty()
    }

    fn clear(&mut self) {
        self.g.clear();
        self.f.clear();
        self.dots.clear();
    }

    /// The Frobenius inner product of two symmetric matrices from their packed lower triangles.
    fn inner(&self, a: &[f64], b: &[f64]) -> f64 {
        let d: f64 = self.diag.iter().map(|&k| a[k] * b[k]).sum();
        2.0 * linalg::dot(a, b) - d
    }

    /// Records `g = F(x)` and returns the next start with its Cholesky factor, or None (start from
    /// `g`) when there is no history yet, the weights are ill-determined, the combination is not
    /// positive definite, or the residual grew (the history is then restarted from this step).
    /// Only the lower triangles of `x` and `g` are read, and only the combination's lower triangle
    /// is written.
    fn next(
        &mut self,
        x: &Mat<f64>,
        g: &Mat<f64>,
        res: &Residuals<'_>,
    ) -> Option<(Mat<f64>, Mat<f64>)> {
        let n = g.nrows();
        if self.diag.len() != n {
            self.clear();
            self.diag = (0..n)
                .scan(0, |k, j| Some(std::mem::replace(k, *k + n - j)))
                .collect();
        }
        let len = n * (n + 1) / 2;
        let mut gv = self.packed(res, len);
        let mut f = self.packed(res, len);
        for j in 0..n {
            let (gj, xj) = (&g.col_as_slice(j)[j..], &x.col_as_slice(j)[j..]);
            gv.extend_from_slice(gj);
            f.extend(gj.iter().zip(xj).map(|(a, b)| a - b));
        }
        let ff = self.inner(&f, &f);
        if self.dots.last().is_some_and(|d| ff > d[d.len() - 1]) {
            self.release(res);
        }
        if self.f.len() == self.depth + 1 {
            let mut w = res.work();
            w.work.packed.push(self.g.remove(0));
            w.work.packed.push(self.f.remove(0));
            self.dots.remove(0);
            for d in &mut self.dots {
                d.remove(0);
            }
        }
        let mut row: Vec<f64> = self.f.iter().map(|p| self.inner(p, &f)).collect();
        row.push(ff);
        for (d, &v) in self.dots.iter_mut().zip(&row) {
            d.push(v);
        }
        self.dots.push(row);
        self.g.push(gv);
        self.f.push(f);
        let m = self.f.len() - 1;
        if m == 0 {
            return None;
        }
        // With e_j = f_j - f_m (j < m), minimise ||f_m + sum_j c_j e_j||: (E^T E) c = -E^T f_m;
        // the weights are w_j = c_j (j < m), w_m = 1 - sum c_j.
        let d = &self.dots;
        let mut a = Mat::<f64>::zeros(m, m);
        let mut rhs = Mat::<f64>::zeros(m, 1);
        for i in 0..m {
            for j in 0..m {
                a[(i, j)] = d[i][j] - d[i][m] - d[m][j] + d[m][m];
            }
            rhs[(i, 0)] = -(d[i][m] - d[m][m]);
        }
        let l = linalg::cholesky(a.as_ref())?;
        let mut c = rhs;
        linalg::solve_lower_in_place(l.as_ref(), c.as_mut());
        faer::linalg::triangular_solve::solve_upper_triangular_in_place(
            l.transpose(),
            c.as_mut(),
            faer::Par::Seq,
        );
        let w_last = 1.0 - (0..m).map(|j| c[(j, 0)]).sum::<f64>();
        // The lower triangle is written below; the upper one keeps what the reused matrix held.
        let mut out = res.take(n);
        let mut k = 0;
        for j in 0..n {
            let col = &mut out.col_as_slice_mut(j)[j..];
            let span = k..k + n - j;
            for (o, &v) in col.iter_mut().zip(&self.g[m][span.clone()]) {
                *o = w_last * v;
            }
            for (t, gt) in self.g[..m].iter().enumerate() {
                let ct = c[(t, 0)];
                for (o, &v) in col.iter_mut().zip(&gt[span.clone()]) {
                    *o += ct * v;
                }
            }
            k += n - j;
        }
        // Only lower triangles are read until a combination becomes a fit's result, which
        // `fit_with` makes whole then.
        let mut lx = res.take(n);
        if linalg::cholesky_into(out.as_ref(), &mut lx) {
            Some((out, lx))
        } else {
            res.give(out);
            res.give(lx);
            None
        }
    }

    /// An empty vector with room for `len` values, reusing one of `res`'s kept ones.
    fn packed(&self, res: &Residuals<'_>, len: usize) -> Vec<f64> {
        let mut v = res.work().work.packed.pop().unwrap_or_default();
        v.clear();
        v.reserve(len);
        v
    }

    /// Clears the history, keeping its vectors in `res`'s scratch for reuse.
    fn release(&mut self, res: &Residuals<'_>) {
        let mut w = res.work();
        w.work
            .packed
            .extend(self.g.drain(..).chain(self.f.drain(..)));
        w.work.packed.truncate(2 * (self.depth + 2));
        drop(w);
        self.clear();
    }
}

/// `m` rounded to f32, column by column (vectorizes, unlike an element-wise `Mat::from_fn`).
fn to_f32(m: &Mat<f64>) -> Mat<f32> {
    let mut out = Mat::<f32>::zeros(m.nrows(), m.ncols());
    for j in 0..m.ncols() {
        for (o, &v) in out.col_as_slice_mut(j).iter_mut().zip(m.col_as_slice(j)) {
            *o = v as f32;
        }
    }
    out
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
        let ss =
            r.spatial_gram(linalg::inverse_lower(lc.as_ref()).as_ref()) * (1.0 / (n * c) as f64);
        let err = linalg::frobenius_diff(ss.as_ref(), cached.sigma_s.as_ref())
            / linalg::frobenius(ss.as_ref());
        assert!(err < 1e-8, "{err}");
        assert!((linalg::trace(cached.sigma_s.as_ref()) - (h * w) as f64).abs() < 1e-12);
    }

    #[test]
    fn mixed_precision_reaches_the_f64_fixed_point() {
        // D = 8 x 128 = 1024 with 40 samples of a Kronecker-structured class (a channel mixing of
        // an exponential spatial kernel's draws): the f32 sweeps with extrapolation must hand over
        // to f64 sweeps that stop by the same rule, at factors equal to the all-f64 fit's within
        // the tolerance (both are within about tol of the same unique MLE).
        let (c, s, n) = (8usize, 128usize, 40usize);
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut normal = move || {
            // Box-Muller on a xorshift stream: deterministic, no extra dependency.
            let mut u = || {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
            };
            let (a, b) = (u(), u());
            (-2.0 * a.ln()).sqrt() * (std::f64::consts::TAU * b).cos()
        };
        let ks = Mat::from_fn(s, s, |i, j| (-(i as f64 - j as f64).abs() / 6.0).exp());
        let ls = linalg::cholesky(ks.as_ref()).unwrap();
        let mix = Mat::from_fn(c, c, |i, j| {
            if i >= j {
                1.0 / (1.0 + (i - j) as f64)
            } else {
                0.0
            }
        });
        let mut rows = Vec::with_capacity(n * c * s);
        for _ in 0..n {
            let e = Mat::from_fn(c, s, |_, _| normal());
            let x = &mix * &e * ls.transpose();
            for i in 0..c {
                for j in 0..s {
                    rows.push(x[(i, j)] + 0.3 * normal());
                }
            }
        }
        let res = Residuals::from_rows(c, s, &rows);
        let opts = FitOptions {
            ridge: 1e-6,
            max_sweeps: 100,
            tol: 1e-6,
        };
        let plain = fit(&res, &opts).unwrap();
        let mixed = fit_with(&res, &opts, Precision::Mixed, None).unwrap();
        assert!(plain.converged && mixed.converged);
        assert_eq!(plain.sweeps_f32, 0);
        // The f32 changes reach tol well above their rounding floor: no f64 sweep is needed.
        assert!(mixed.sweeps_f32 >= 2 && mixed.sweeps == mixed.sweeps_f32);
        assert!(mixed.change < opts.tol);
        for (a, b) in [
            (&plain.sigma_c, &mixed.sigma_c),
            (&plain.sigma_s, &mixed.sigma_s),
        ] {
            let d = linalg::frobenius_diff(a.as_ref(), b.as_ref()) / linalg::frobenius(a.as_ref());
            assert!(d < 2e-6, "{d}");
        }
        let viv = |f: &KroneckerFit| {
            let root = |m: &Mat<f64>| -> f64 {
                linalg::sym_eigvals(m.as_ref())
                    .unwrap()
                    .iter()
                    .map(|x| x.max(0.0).sqrt())
                    .sum()
            };
            root(&f.sigma_c) * root(&f.sigma_s)
        };
        // Both stop within about tol of the MLE (here: the f64 iteration run to 1e-13), and their VIVs
        // lie within 2e-7 of its VIV (3e-8 and 7e-8 when this test was written: the f32 path stops
        // half a sweep early, see `fit_with`).
        let exact = viv(&fit(&res, &FitOptions { tol: 1e-13, ..opts }).unwrap());
        for v in [viv(&plain), viv(&mixed)] {
            assert!((v - exact).abs() < 2e-7 * exact, "{v} vs {exact}");
        }
        // A tolerance below the f32 rounding floor: the f32 changes stop shrinking, f64 sweeps take
        // over and meet it, at the all-f64 fit's factors.
        let fine = FitOptions { tol: 1e-11, ..opts };
        let plain = fit(&res, &fine).unwrap();
        let mixed = fit_with(&res, &fine, Precision::Mixed, None).unwrap();
        assert!(plain.converged && mixed.converged && mixed.change < fine.tol);
        assert!(mixed.sweeps_f32 >= 2 && mixed.sweeps > mixed.sweeps_f32 + 1);
        for (a, b) in [
            (&plain.sigma_c, &mixed.sigma_c),
            (&plain.sigma_s, &mixed.sigma_s),
        ] {
            let d = linalg::frobenius_diff(a.as_ref(), b.as_ref()) / linalg::frobenius(a.as_ref());
            assert!(d < 1e-10, "{d}");
        }
    }

    #[test]
    fn reused_buffers_fit_bit_identically() {
        // Two classes fitted one after another in the same buffers (the kept residual buffers,
        // product scratch and spare factor-sized matrices, whose stale contents must never leak
        // into a result) against each fitted in fresh ones, with and without a shared start.
        let (c, h, w, n) = (4usize, 8usize, 8usize, 40usize);
        let d = c * h * w;
        // Uniform draws, smoothed along the spatial axis, plus a channel mix.
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let raw: Vec<f32> = (0..2 * n * d).map(|_| rng.random::<f32>() - 0.5).collect();
        let data: Vec<f32> = (0..2 * n * d)
            .map(|i| {
                let (k, j) = (i / d, i % d);
                let (ch, p) = (j / (h * w), j % (h * w));
                let at = |ch: usize, p: usize| raw[k * d + ch * h * w + p];
                at(ch, p) + 0.5 * at(ch, (p + 1) % (h * w)) + 0.3 * at((ch + 1) % c, p)
            })
            .collect();
        let lat = Latents::from_vec(c, h, w, data);
        let aff = Affine::identity(c);
        let z = Normalized {
            latents: &lat,
            affine: &aff,
        };
        let classes: [Vec<usize>; 2] = [(0..n).collect(), (n..2 * n).rev().collect()];
        let opts = FitOptions {
            ridge: 1e-6,
            max_sweeps: 100,
            tol: 1e-6,
        };
        let fresh = |m: &[usize], start: Option<&Start>| {
            fit_with(
                &Residuals::from_normalized_f32(z, m),
                &opts,
                Precision::Mixed,
                start,
            )
            .unwrap()
        };
        let start = Start::new(fresh(&classes[0], None).sigma_s).unwrap();
        for st in [None, Some(&start)] {
            let mut bufs = ClassBuffers::default();
            for m in [&classes[0], &classes[1], &classes[0], &classes[1]] {
                let mut res = Residuals::from_normalized_f32_reusing(z, m, &mut bufs);
                let got = fit_with(&res, &opts, Precision::Mixed, st).unwrap();
                res.recycle(&mut bufs);
                let want = fresh(m, st);
                assert!(got.converged && got.sweeps_f32 >= 2);
                assert_eq!((got.sweeps, got.change), (want.sweeps, want.change));
                assert_eq!(got.sigma_c, want.sigma_c);
                assert_eq!(got.sigma_s, want.sigma_s);
                bufs.give(got.sigma_s);
            }
            assert!(!bufs.scratch.work.spare64.is_empty());
        }
    }

    #[test]
    fn packed_inner_products_are_frobenius_ones() {
        let n = 19;
        let sym = |k: f64| {
            let mut m = Mat::from_fn(n, n, |i, j| ((i * n + j) as f64 * k).sin());
            m = &m + m.transpose();
            m
        };
        let (a, b, x) = (sym(0.31), sym(0.77), sym(0.05));
        let mut acc = Anderson::new(2);
        let res = Residuals::from_rows(1, n, &vec![0.0; 2 * n]);
        // Records g = a from x: f = a - x, and <f, f> must be the Frobenius norm squared.
        assert!(acc.next(&x, &a, &res).is_none());
        let f = &a - &x;
        let want = linalg::frobenius(f.as_ref()).powi(2);
        assert!((acc.dots[0][0] - want).abs() < 1e-12 * want);
        let packed = |m: &Mat<f64>| -> Vec<f64> {
            (0..n)
                .flat_map(|j| m.col_as_slice(j)[j..].to_vec())
                .collect()
        };
        let want: f64 = (0..n)
            .flat_map(|j| (0..n).map(move |i| (i, j)))
            .map(|(i, j)| a[(i, j)] * b[(i, j)])
            .sum();
        let got = acc.inner(&packed(&a), &packed(&b));
        assert!((got - want).abs() < 1e-12 * want.abs().max(1.0));
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
