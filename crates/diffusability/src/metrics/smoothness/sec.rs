//! SEC, spectral energy concentration (the study's "Latent Smoothness"; the threshold ratio is our
//! default, 0.5): the share of the latents' DCT energy at high frequencies.
//!
//! For every image and channel, `F(u, v)` = the orthonormal 2-D DCT-II of the `H x W` map;
//! `E(u, v)` = mean over images and channels of `F(u, v)^2`; with `tau = r ((H - 1) + (W - 1))`,
//! `sec = sum_{u + v > tau} E / sum E`. The profile `E_d = sum_{u + v = d} E / sum E`
//! (`d = 0..=H+W-2`) lets any other threshold be read off.

use crate::data::Normalized;
use crate::par;
use crate::progress::Progress;
use crate::stats::dct::Dct2d;

/// Images per chunk: fixed, so results never depend on the thread count.
const CHUNK: usize = 32;

/// `sum over images and channels of F(u, v)^2` (`h*w` values at `u * w + v`, f64) and the number of
/// maps, over fixed chunks of images merged in order. `O(N C H W (log H + log W))`.
pub fn energy(z: &Normalized<'_>, progress: &dyn Progress) -> (Vec<f64>, usize) {
    let sh = z.shape();
    let (c, h, w, s) = (sh.c, sh.h, sh.w, sh.s());
    let dct = Dct2d::new(h, w);
    let e = par::map_reduce(
        sh.n,
        CHUNK,
        |range| {
            let len = range.len();
            let mut acc = vec![0.0f64; s];
            let mut x = vec![0.0f32; c * s];
            let mut map = vec![0.0f64; s];
            let mut scratch = vec![0.0f64; dct.scratch_len()];
            for i in range {
                z.sample_into(i, &mut x);
                for ch in x.chunks_exact(s) {
                    for (m, &v) in map.iter_mut().zip(ch) {
                        *m = v as f64;
                    }
                    dct.add_energy(&mut map, &mut scratch, &mut acc);
                }
            }
            progress.advance(len as u64);
            acc
        },
        |mut a, b| {
            for (x, y) in a.iter_mut().zip(&b) {
                *x += y;
            }
            a
        },
    )
    .unwrap_or_else(|| vec![0.0; s]);
    (e, sh.n * c)
}

/// SEC and its profile from the energy map.
#[derive(Clone, Debug, PartialEq)]
pub struct Sec {
    /// The share of energy at `u + v > tau`.
    pub sec: f64,
    pub tau: f64,
    /// `E_d / sum E` for `d = 0..=h+w-2`.
    pub profile: Vec<f64>,
}

/// SEC of an energy map `e` (`h x w`, `e[u * w + v]`) at threshold ratio `ratio`; `None` when the
/// total energy is 0 (all maps zero), where the share is undefined.
pub fn sec_of_energy(e: &[f64], h: usize, w: usize, ratio: f64) -> Option<Sec> {
    let total: f64 = e.iter().sum();
    if !(total > 0.0 && total.is_finite()) {
        return None;
    }
    let tau = ratio * ((h - 1) + (w - 1)) as f64;
    let mut by_d = vec![0.0f64; h + w - 1];
    for u in 0..h {
        for v in 0..w {
            by_d[u + v] += e[u * w + v];
        }
    }
    let high: f64 = by_d
        .iter()
        .enumerate()
        .filter(|&(d, _)| d as f64 > tau)
        .map(|(_, x)| x)
        .sum();
    Some(Sec {
        sec: high / total,
        tau,
        profile: by_d.iter().map(|x| x / total).collect(),
    })
}
