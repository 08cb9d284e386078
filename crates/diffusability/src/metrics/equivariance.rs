//! Affine equivariance (metrics.md section 6): how close the latents of transformed images are to the
//! transformed latents of the images.
//!
//! The user's encoder makes `Z` (images) and `Z_tau` (transformed images); we apply the transform `tau`
//! to `Z` here, normalize both with `Z`'s statistics, and report
//! `equiv_rel_err = mean_n ||Z_tau,n - tau(Z_n)||^2 / ||tau(Z_n)||^2` and
//! `equiv_cos = mean_n cos(Z_tau,n, tau(Z_n))` over the flattened tensors. Transforms follow PyTorch
//! index for index: `rot90:K` as `torch.rot90(z, K, dims=(-2, -1))`, `flip` as `torch.flip(z, (-1,))`,
//! `scale:S` as `torch.nn.functional.interpolate(z, scale_factor=S, mode="bilinear",
//! align_corners=False)` (no antialias). The per-channel normalization commutes with all three (each
//! output value is a convex combination of one channel's inputs), so normalizing `Z` before the
//! transform is the same as after.

use crate::data::{Affine, Latents, Normalized};
use crate::error::{Error, Result};
use crate::io::array::shape_str;
use crate::par;
use serde::Serialize;
use std::fmt;
use std::str::FromStr;

/// A transform of the latent grid, applied per channel to the last two axes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Transform {
    /// Counter-clockwise rotation by `K * 90` degrees, `K` in 0..4.
    Rot90(u8),
    /// Horizontal flip (the width axis reversed).
    Flip,
    /// Bilinear resize by factor `S > 0` to `floor(H S) x floor(W S)`.
    Scale(f64),
}

impl fmt::Display for Transform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Transform::Rot90(k) => write!(f, "rot90:{k}"),
            Transform::Flip => f.write_str("flip"),
            Transform::Scale(s) => write!(f, "scale:{s}"),
        }
    }
}

impl FromStr for Transform {
    type Err = Error;
    fn from_str(s: &str) -> Result<Transform> {
        let bad = || {
            Error::usage(format!(
                "--transform: expected rot90:K (K an integer), flip or scale:S (S > 0), found `{s}`"
            ))
        };
        if s == "flip" {
            return Ok(Transform::Flip);
        }
        if let Some(k) = s.strip_prefix("rot90:") {
            let k: i64 = k.parse().map_err(|_| bad())?;
            return Ok(Transform::Rot90(k.rem_euclid(4) as u8));
        }
        if let Some(v) = s.strip_prefix("scale:") {
            let f: f64 = v.parse().map_err(|_| bad())?;
            if !(f.is_finite() && f > 0.0) {
                return Err(Error::usage(format!(
                    "--transform: scale must be a finite number > 0, found `{v}`"
                )));
            }
            return Ok(Transform::Scale(f));
        }
        Err(bad())
    }
}

/// For one output index of a bilinear resize: the two source indices and their weights.
#[derive(Clone, Copy, Debug)]
struct Tap {
    i0: usize,
    i1: usize,
    w0: f64,
    w1: f64,
}

/// PyTorch's `align_corners=False` source index for output `dst` (pytorch/pytorch:
/// `aten/src/ATen/native/UpSample.h`, `area_pixel_compute_scale` and `area_pixel_compute_source_index`):
/// `src = max((dst + 0.5) * ratio - 0.5, 0)` where `ratio = 1 / S` (the scale factor as given, which
/// equals `in / out` whenever `in * S` is whole) and `ratio = 0` when `out = 1`; `i0 = floor(src)`,
/// `i1 = min(i0 + 1, in - 1)`, weights `1 - (src - i0)` and `src - i0`.
fn taps(in_size: usize, out_size: usize, scale: f64) -> Vec<Tap> {
    let ratio = if out_size > 1 { 1.0 / scale } else { 0.0 };
    (0..out_size)
        .map(|d| {
            let src = ((d as f64 + 0.5) * ratio - 0.5).max(0.0);
            let i0 = (src.floor() as usize).min(in_size - 1);
            let i1 = (i0 + 1).min(in_size - 1);
            let w1 = src - i0 as f64;
            Tap {
                i0,
                i1,
                w0: 1.0 - w1,
                w1,
            }
        })
        .collect()
}

impl Transform {
    /// The output grid of an `h x w` input; an error if a resize leaves no row or column.
    pub fn output_hw(&self, h: usize, w: usize) -> Result<(usize, usize)> {
        match *self {
            Transform::Rot90(k) if k % 2 == 1 => Ok((w, h)),
            Transform::Rot90(_) | Transform::Flip => Ok((h, w)),
            Transform::Scale(s) => {
                let (oh, ow) = ((h as f64 * s).floor(), (w as f64 * s).floor());
                if oh < 1.0 || ow < 1.0 {
                    return Err(Error::usage(format!(
                        "--transform {self}: a {h} x {w} latent grid becomes {oh} x {ow}; expected at least 1 x 1"
                    )));
                }
                Ok((oh as usize, ow as usize))
            }
        }
    }

    /// `tau(x)` of one sample `x` (`c*h*w` values, channel-major) into `out` (`c*h'*w'` values, with
    /// `(h', w')` from [`Transform::output_hw`]), in f64. Rotations and flips move values exactly;
    /// the resize is bilinear (see `taps`). Cost `O(c h' w')`.
    pub fn apply(&self, x: &[f32], c: usize, h: usize, w: usize, out: &mut [f64]) -> Result<()> {
        let (oh, ow) = self.output_hw(h, w)?;
        assert_eq!(x.len(), c * h * w, "transform: input length");
        assert_eq!(out.len(), c * oh * ow, "transform: output length");
        let at = |ch: usize, y: usize, xx: usize| x[(ch * h + y) * w + xx] as f64;
        match *self {
            Transform::Scale(s) => {
                let (ty, tx) = (taps(h, oh, s), taps(w, ow, s));
                for ch in 0..c {
                    for (oy, a) in ty.iter().enumerate() {
                        for (ox, b) in tx.iter().enumerate() {
                            let top = b.w0 * at(ch, a.i0, b.i0) + b.w1 * at(ch, a.i0, b.i1);
                            let bottom = b.w0 * at(ch, a.i1, b.i0) + b.w1 * at(ch, a.i1, b.i1);
                            out[(ch * oh + oy) * ow + ox] = a.w0 * top + a.w1 * bottom;
                        }
                    }
                }
            }
            _ => {
                for ch in 0..c {
                    for oy in 0..oh {
                        for ox in 0..ow {
                            // torch.rot90(k=1) is flip(-1) then transpose: out[a][b] = x[b][w-1-a].
                            let (y, xx) = match *self {
                                Transform::Rot90(0) => (oy, ox),
                                Transform::Rot90(1) => (ox, w - 1 - oy),
                                Transform::Rot90(2) => (h - 1 - oy, w - 1 - ox),
                                Transform::Rot90(_) => (h - 1 - ox, oy),
                                _ => (oy, w - 1 - ox),
                            };
                            out[(ch * oh + oy) * ow + ox] = at(ch, y, xx);
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// The two equivariance metrics.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Equivariance {
    pub equiv_rel_err: f64,
    pub equiv_cos: f64,
    /// Samples averaged over.
    pub n: usize,
    /// Samples left out because `tau(Z_n)` or `Z_tau,n` is zero after normalization (both metrics
    /// are undefined there).
    pub skipped: usize,
}

impl Equivariance {
    /// The report's warning for left-out samples, if any.
    pub fn skipped_warning(&self) -> Option<String> {
        (self.skipped > 0).then(|| {
            format!(
                "equivariance: {} of {} samples left out: zero norm after normalization",
                self.skipped,
                self.n + self.skipped
            )
        })
    }

    /// The fields of the JSON object that `diffusability equivariance --json` and the Python
    /// `equivariance()` return; the callers add their inputs and the warnings.
    pub fn to_json(
        &self,
        t: &Transform,
        normalize: &crate::data::Normalize,
    ) -> serde_json::Map<String, serde_json::Value> {
        let mut m = serde_json::Map::new();
        m.insert("equiv_rel_err".into(), self.equiv_rel_err.into());
        m.insert("equiv_cos".into(), self.equiv_cos.into());
        m.insert("transform".into(), t.to_string().into());
        m.insert("normalize".into(), normalize.to_string().into());
        m.insert("n".into(), self.n.into());
        m.insert("skipped".into(), self.skipped.into());
        m
    }
}

/// Samples per chunk of the parallel pass (fixed: results do not depend on the thread count).
const CHUNK: usize = 32;

/// `equiv_rel_err` and `equiv_cos` (metrics.md section 6) of latents `z` `(N, C, H, W)` and `zt`, the
/// latents of the transformed images, which must be `(N, C, H', W')` with `(H', W')` the transform's
/// output grid (else an input error naming `zt_path`). Both are normalized with `affine`, which
/// should be fitted on `z` ([`Affine::fit`]). Per-sample terms are accumulated in f64 and averaged.
/// Cost `O(N C H' W')`; runs on the current rayon pool.
pub fn equivariance(
    z: &Latents,
    zt: &Latents,
    zt_path: &str,
    t: &Transform,
    affine: &Affine,
) -> Result<Equivariance> {
    let sh = z.shape();
    let (oh, ow) = t.output_hw(sh.h, sh.w)?;
    let st = zt.shape();
    let want = [sh.n, sh.c, oh, ow];
    if [st.n, st.c, st.h, st.w] != want {
        return Err(Error::input(
            zt_path,
            None,
            format!(
                "has shape {}, expected {} ({t} of the latents' {})",
                shape_str(&[st.n, st.c, st.h, st.w]),
                shape_str(&want),
                shape_str(&[sh.n, sh.c, sh.h, sh.w])
            ),
        ));
    }
    let zn = Normalized { latents: z, affine };
    let ztn = Normalized {
        latents: zt,
        affine,
    };
    let d_out = sh.c * oh * ow;
    let (rel, cos, used) = par::map_reduce(
        sh.n,
        CHUNK,
        |r| {
            let mut a32 = vec![0.0f32; sh.d()];
            let mut b32 = vec![0.0f32; d_out];
            let mut ta = vec![0.0f64; d_out];
            let (mut rel, mut cos, mut used) = (0.0, 0.0, 0usize);
            for i in r {
                zn.sample_into(i, &mut a32);
                ztn.sample_into(i, &mut b32);
                t.apply(&a32, sh.c, sh.h, sh.w, &mut ta)?;
                let (mut dd, mut tt, mut bb, mut tb) = (0.0, 0.0, 0.0, 0.0);
                for (&x, &y) in ta.iter().zip(&b32) {
                    let y = y as f64;
                    dd += (y - x) * (y - x);
                    tt += x * x;
                    bb += y * y;
                    tb += x * y;
                }
                if tt > 0.0 && bb > 0.0 {
                    rel += dd / tt;
                    cos += tb / (tt.sqrt() * bb.sqrt());
                    used += 1;
                }
            }
            Ok((rel, cos, used))
        },
        |a: Result<(f64, f64, usize)>, b| {
            let (a, b) = (a?, b?);
            Ok((a.0 + b.0, a.1 + b.1, a.2 + b.2))
        },
    )
    .unwrap_or(Ok((0.0, 0.0, 0)))?;
    if used == 0 {
        return Err(Error::input(
            zt_path,
            None,
            format!(
                "no sample pair has nonzero norm after normalization ({} samples), so neither metric is defined",
                sh.n
            ),
        ));
    }
    Ok(Equivariance {
        equiv_rel_err: rel / used as f64,
        equiv_cos: cos / used as f64,
        n: used,
        skipped: sh.n - used,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(h: usize, w: usize) -> Vec<f32> {
        (0..h * w).map(|i| i as f32).collect()
    }

    fn run(t: Transform, h: usize, w: usize) -> Vec<f64> {
        let (oh, ow) = t.output_hw(h, w).unwrap();
        let mut out = vec![0.0; oh * ow];
        t.apply(&grid(h, w), 1, h, w, &mut out).unwrap();
        out
    }

    #[test]
    fn rot90_is_counter_clockwise_as_torch() {
        // x = [[0, 1, 2], [3, 4, 5]]; torch.rot90(x, 1) = [[2, 5], [1, 4], [0, 3]].
        assert_eq!(
            run(Transform::Rot90(1), 2, 3),
            vec![2.0, 5.0, 1.0, 4.0, 0.0, 3.0]
        );
        assert_eq!(
            run(Transform::Rot90(2), 2, 3),
            vec![5.0, 4.0, 3.0, 2.0, 1.0, 0.0]
        );
        // torch.rot90(x, 3) = [[3, 0], [4, 1], [5, 2]].
        assert_eq!(
            run(Transform::Rot90(3), 2, 3),
            vec![3.0, 0.0, 4.0, 1.0, 5.0, 2.0]
        );
        assert_eq!(
            run(Transform::Flip, 2, 3),
            vec![2.0, 1.0, 0.0, 5.0, 4.0, 3.0]
        );
    }

    #[test]
    fn parses_transforms() {
        assert_eq!(
            "rot90:-1".parse::<Transform>().unwrap(),
            Transform::Rot90(3)
        );
        assert_eq!("rot90:4".parse::<Transform>().unwrap(), Transform::Rot90(0));
        assert_eq!("flip".parse::<Transform>().unwrap(), Transform::Flip);
        assert_eq!(
            "scale:0.5".parse::<Transform>().unwrap(),
            Transform::Scale(0.5)
        );
        for bad in [
            "rot90",
            "rot90:x",
            "scale:0",
            "scale:-2",
            "scale:inf",
            "mirror",
        ] {
            assert!(bad.parse::<Transform>().is_err(), "{bad}");
        }
    }

    #[test]
    fn scale_one_is_identity_and_halving_averages_blocks() {
        let id: Vec<f64> = grid(3, 4).iter().map(|&v| v as f64).collect();
        assert_eq!(run(Transform::Scale(1.0), 3, 4), id);
        // Halving: src = 2 d + 0.5, so every output is the mean of a 2 x 2 block.
        assert_eq!(run(Transform::Scale(0.5), 4, 4), vec![2.5, 4.5, 10.5, 12.5]);
        // An output axis of length 1 takes the first row (ATen's scale is 0 there).
        assert_eq!(run(Transform::Scale(0.5), 2, 4), vec![0.5, 2.5]);
        assert!(Transform::Scale(0.1).output_hw(4, 4).is_err());
    }
}
