//! Local correlation [ref: zai-org/SSVAE `ssvae/modules/autoencoding/regularizers/calc_local_corr.py`,
//! `windowed_localcorr_z` with 2 x 2 spatial windows and `renorm=True`; standardization as its caller in
//! `ssvae/modules/autoencoding/regularizers/__init__.py`].
//!
//! The latents are standardized per channel over the whole set (`(z - mean_c) / (std_c + 1e-6)`,
//! unbiased std); the grid is cut into non-overlapping 2 x 2 windows; each window's 4 token vectors
//! are centred over channels and divided by `norm + 1e-8`; the statistic is the mean of the 6
//! pairwise dot products, over all windows of all images. Under the default `channel` normalization
//! the standardization is the identity up to rounding; it keeps the statistic SSVAE's under any mode.

use crate::data::Normalized;
use crate::data::normalize::Moments;
use crate::par;
use crate::progress::Progress;

/// Images per chunk: fixed, so results never depend on the thread count.
const CHUNK: usize = 32;

/// SSVAE's `+ 1e-6` on the standard deviation.
const STD_EPS: f64 = 1e-6;
/// SSVAE's `+ 1e-8` on the token norm (added, not a floor).
const NORM_EPS: f64 = 1e-8;

/// The result over a set of latents.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LocalCorr {
    pub value: f64,
    pub windows_per_image: usize,
}

/// Local correlation of `z`; `None` when the grid does not split into 2 x 2 windows (odd `H` or `W`,
/// which SSVAE rejects) or there are no latents. Two passes over the data: per-channel moments, then
/// `O(N H W C)` window products.
pub fn local_corr(z: &Normalized<'_>, progress: &dyn Progress) -> Option<LocalCorr> {
    let sh = z.shape();
    let (n, c, h, w, s) = (sh.n, sh.c, sh.h, sh.w, sh.s());
    if h % 2 != 0 || w % 2 != 0 || h == 0 || w == 0 || n == 0 {
        return None;
    }
    let moments = par::map_reduce(
        n,
        CHUNK,
        |range| {
            let mut x = vec![0.0f32; c * s];
            let mut m = vec![Moments::default(); c];
            for i in range {
                z.sample_into(i, &mut x);
                for (mc, ch) in m.iter_mut().zip(x.chunks_exact(s)) {
                    *mc = mc.merge(Moments::of_f32(ch));
                }
            }
            m
        },
        |a, b| a.into_iter().zip(b).map(|(x, y)| x.merge(y)).collect(),
    )?;
    let shift: Vec<f64> = moments.iter().map(|m| m.mean).collect();
    let scale: Vec<f64> = moments.iter().map(|m| 1.0 / (m.std() + STD_EPS)).collect();

    let windows = (h / 2) * (w / 2);
    let total = par::map_reduce(
        n,
        CHUNK,
        |range| {
            let len = range.len();
            let mut x = vec![0.0f32; c * s];
            let mut t = vec![0.0f64; 4 * c];
            let mut acc = 0.0f64;
            for i in range {
                z.sample_into(i, &mut x);
                for a in 0..h / 2 {
                    for b in 0..w / 2 {
                        let idx = [
                            2 * a * w + 2 * b,
                            2 * a * w + 2 * b + 1,
                            (2 * a + 1) * w + 2 * b,
                            (2 * a + 1) * w + 2 * b + 1,
                        ];
                        for (k, &tok) in idx.iter().enumerate() {
                            let v = &mut t[k * c..(k + 1) * c];
                            for ch in 0..c {
                                v[ch] = (x[ch * s + tok] as f64 - shift[ch]) * scale[ch];
                            }
                            let mean = v.iter().sum::<f64>() / c as f64;
                            v.iter_mut().for_each(|e| *e -= mean);
                            let norm = v.iter().map(|e| e * e).sum::<f64>().sqrt() + NORM_EPS;
                            v.iter_mut().for_each(|e| *e /= norm);
                        }
                        for p in 0..4 {
                            for q in p + 1..4 {
                                acc += t[p * c..(p + 1) * c]
                                    .iter()
                                    .zip(&t[q * c..(q + 1) * c])
                                    .map(|(a, b)| a * b)
                                    .sum::<f64>();
                            }
                        }
                    }
                }
            }
            progress.advance(len as u64);
            acc
        },
        |a, b| a + b,
    )?;
    Some(LocalCorr {
        value: total / (6 * windows * n) as f64,
        windows_per_image: windows,
    })
}
