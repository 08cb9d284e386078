//! Normalization: every metric sees the latents as a diffusion model would.
//!
//! Default `channel`: `z' = (z - mean_c) / std_c`, mean and unbiased std per channel over `(N, H, W)`,
//! following LightningDiT (`datasets/img_latent_dataset.py`). The statistics are accumulated in f64 over
//! fixed chunks of samples and merged in chunk order (Chan et al.), so they are identical for any thread
//! count and any sharding of the same samples. The transform is kept as a per-channel affine map and
//! applied on the fly, so a memory-mapped input is never copied whole.

use super::latents::Latents;
use crate::error::{Error, Result};
use crate::par;
use crate::simd::simd_kernel;
use std::fmt;
use std::str::FromStr;

/// How latents are normalized before any metric sees them.
#[derive(Clone, Debug, PartialEq)]
pub enum Normalize {
    /// Per-channel mean and unbiased std over `(N, H, W)`.
    Channel,
    /// One mean and unbiased std over everything.
    Global,
    /// Raw latents.
    None,
    /// Multiply by a constant (e.g. 0.18215 for SD-VAE latents).
    Scale(f64),
    /// Per-channel `mean` and `std` read from a file (keys `mean`, `std`, C values each).
    Stats(String),
}

impl fmt::Display for Normalize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Normalize::Channel => f.write_str("channel"),
            Normalize::Global => f.write_str("global"),
            Normalize::None => f.write_str("none"),
            Normalize::Scale(s) => write!(f, "scale:{s}"),
            Normalize::Stats(p) => write!(f, "stats:{p}"),
        }
    }
}

impl FromStr for Normalize {
    type Err = Error;
    fn from_str(s: &str) -> Result<Normalize> {
        let bad = || {
            Error::usage(format!(
                "--normalize: expected channel, global, none, scale:F or stats:FILE, found `{s}`"
            ))
        };
        match s {
            "channel" => Ok(Normalize::Channel),
            "global" => Ok(Normalize::Global),
            "none" => Ok(Normalize::None),
            _ => {
                if let Some(v) = s.strip_prefix("scale:") {
                    let f: f64 = v.parse().map_err(|_| bad())?;
                    if !f.is_finite() || f == 0.0 {
                        return Err(Error::usage(format!(
                            "--normalize: scale must be a finite nonzero number, found `{v}`"
                        )));
                    }
                    Ok(Normalize::Scale(f))
                } else if let Some(p) = s.strip_prefix("stats:") {
                    if p.is_empty() {
                        return Err(bad());
                    }
                    Ok(Normalize::Stats(p.to_string()))
                } else {
                    Err(bad())
                }
            }
        }
    }
}

/// Mergeable f64 moments of one stream: count, mean and sum of squared deviations.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Moments {
    pub count: f64,
    pub mean: f64,
    pub m2: f64,
}

impl Moments {
    /// Exact two-pass moments of a small slice.
    pub fn of(xs: impl Iterator<Item = f64> + Clone) -> Moments {
        let (mut n, mut s) = (0.0, 0.0);
        for x in xs.clone() {
            n += 1.0;
            s += x;
        }
        if n == 0.0 {
            return Moments::default();
        }
        let mean = s / n;
        let m2 = xs.map(|x| (x - mean) * (x - mean)).sum();
        Moments { count: n, mean, m2 }
    }

    /// [`Moments::of`] for f32 values, with eight running sums in each pass so that the loops
    /// vectorize instead of waiting on one accumulator (the statistics pass reads every latent
    /// value); the lanes are added in a fixed order, so the result is deterministic.
    pub fn of_f32(xs: &[f32]) -> Moments {
        moments_f32(xs)
    }

    /// Chan et al.'s pairwise merge.
    pub fn merge(self, o: Moments) -> Moments {
        if self.count == 0.0 {
            return o;
        }
        if o.count == 0.0 {
            return self;
        }
        let n = self.count + o.count;
        let delta = o.mean - self.mean;
        Moments {
            count: n,
            mean: self.mean + delta * o.count / n,
            m2: self.m2 + o.m2 + delta * delta * self.count * o.count / n,
        }
    }

    /// Unbiased (ddof = 1) standard deviation; 0 for fewer than two values.
    pub fn std(&self) -> f64 {
        if self.count < 2.0 {
            0.0
        } else {
            (self.m2 / (self.count - 1.0)).sqrt()
        }
    }
}

simd_kernel! {
    /// [`Moments::of_f32`], dispatched to the widest vector instructions available.
    fn moments_f32(xs: &[f32]) -> Moments {
        const LANES: usize = 8;
        if xs.is_empty() {
            return Moments::default();
        }
        let chunks = xs.chunks_exact(LANES);
        let tail = chunks.remainder();
        let mut acc = [0.0f64; LANES];
        for ch in chunks.clone() {
            for k in 0..LANES {
                acc[k] += ch[k] as f64;
            }
        }
        let n = xs.len() as f64;
        let mean = (acc.iter().sum::<f64>() + tail.iter().map(|&x| x as f64).sum::<f64>()) / n;
        let mut acc = [0.0f64; LANES];
        for ch in chunks {
            for k in 0..LANES {
                let d = ch[k] as f64 - mean;
                acc[k] += d * d;
            }
        }
        let m2 = acc.iter().sum::<f64>()
            + tail
                .iter()
                .map(|&x| (x as f64 - mean) * (x as f64 - mean))
                .sum::<f64>();
        Moments { count: n, mean, m2 }
    }
}

/// Samples per chunk of the statistics pass. Fixed, so results never depend on the thread count.
const STATS_CHUNK: usize = 64;

/// Per-channel moments over `(N, H, W)`.
pub fn channel_moments(z: &Latents) -> Vec<Moments> {
    let sh = z.shape();
    let (c, s) = (sh.c, sh.s());
    par::map_reduce(
        sh.n,
        STATS_CHUNK,
        |r| {
            // Sample by sample (each read once, in memory order), every channel merging its
            // samples in order.
            let mut m = vec![Moments::default(); c];
            for i in r {
                let x = z.sample(i);
                for (ch, mo) in m.iter_mut().enumerate() {
                    *mo = mo.merge(Moments::of_f32(&x[ch * s..(ch + 1) * s]));
                }
            }
            m
        },
        |a, b| a.into_iter().zip(b).map(|(x, y)| x.merge(y)).collect(),
    )
    .unwrap_or_else(|| vec![Moments::default(); c])
}

/// The per-channel affine map `z' = (z - shift) * scale` applied to raw latents, with the statistics
/// it came from (for the report).
#[derive(Clone, Debug, PartialEq)]
pub struct Affine {
    pub mode: Normalize,
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
    /// f32 copies used on the hot path.
    shift: Vec<f32>,
    scale: Vec<f32>,
}

impl Affine {
    /// `z' = (z - mean_c) / std_c`. A zero or non-finite std leaves that channel centred but unscaled.
    pub fn from_mean_std(mode: Normalize, mean: Vec<f64>, std: Vec<f64>) -> Affine {
        let shift = mean.iter().map(|&m| m as f32).collect();
        let scale = std
            .iter()
            .map(|&s| {
                if s > 0.0 && s.is_finite() {
                    (1.0 / s) as f32
                } else {
                    1.0
                }
            })
            .collect();
        Affine {
            mode,
            mean,
            std,
            shift,
            scale,
        }
    }

    pub fn identity(c: usize) -> Affine {
        Affine::from_mean_std(Normalize::None, vec![0.0; c], vec![1.0; c])
    }

    /// Fits the map of `mode` on `z`; `stats` holds the (mean, std) read from a stats file for
    /// `Normalize::Stats`. Returns warnings for channels that could not be scaled.
    pub fn fit(
        mode: &Normalize,
        z: &Latents,
        stats: Option<(Vec<f64>, Vec<f64>)>,
    ) -> Result<(Affine, Vec<String>)> {
        let c = z.shape().c;
        let mut warnings = Vec::new();
        let affine = match mode {
            Normalize::None => Affine::from_mean_std(mode.clone(), vec![0.0; c], vec![1.0; c]),
            Normalize::Scale(f) => {
                Affine::from_mean_std(mode.clone(), vec![0.0; c], vec![1.0 / f; c])
            }
            Normalize::Channel => {
                let m = channel_moments(z);
                for (ch, mo) in m.iter().enumerate() {
                    if mo.std() == 0.0 {
                        warnings.push(format!(
                            "normalize: channel {ch} is constant (std 0); it is centred but not scaled"
                        ));
                    }
                }
                Affine::from_mean_std(
                    mode.clone(),
                    m.iter().map(|x| x.mean).collect(),
                    m.iter().map(|x| x.std()).collect(),
                )
            }
            Normalize::Global => {
                let all = channel_moments(z)
                    .into_iter()
                    .fold(Moments::default(), Moments::merge);
                if all.std() == 0.0 {
                    warnings.push(
                        "normalize: the latents are constant (std 0); they are centred but not scaled"
                            .to_string(),
                    );
                }
                Affine::from_mean_std(mode.clone(), vec![all.mean; c], vec![all.std(); c])
            }
            Normalize::Stats(path) => {
                let (mean, std) = stats.ok_or_else(|| {
                    Error::internal("normalize: stats mode needs the statistics read from its file")
                })?;
                if mean.len() != c || std.len() != c {
                    return Err(Error::input(
                        path,
                        Some("mean"),
                        format!(
                            "has {} mean and {} std values, expected {c} each (one per latent channel)",
                            mean.len(),
                            std.len()
                        ),
                    ));
                }
                if let Some(bad) = std.iter().position(|s| !(s.is_finite() && *s > 0.0)) {
                    return Err(Error::input(
                        path,
                        Some("std"),
                        format!(
                            "expected positive finite values, found {} at channel {bad}",
                            std[bad]
                        ),
                    ));
                }
                if let Some(bad) = mean.iter().position(|m| !m.is_finite()) {
                    return Err(Error::input(
                        path,
                        Some("mean"),
                        format!(
                            "expected finite values, found {} at channel {bad}",
                            mean[bad]
                        ),
                    ));
                }
                Affine::from_mean_std(mode.clone(), mean, std)
            }
        };
        Ok((affine, warnings))
    }

    /// Writes the normalized values of one sample (`c*s` values, channel-major) into `out`.
    #[inline]
    pub fn apply(&self, raw: &[f32], s: usize, out: &mut [f32]) {
        for (ch, (src, dst)) in raw.chunks_exact(s).zip(out.chunks_exact_mut(s)).enumerate() {
            let (m, k) = (self.shift[ch], self.scale[ch]);
            for (d, &x) in dst.iter_mut().zip(src) {
                *d = (x - m) * k;
            }
        }
    }
}

/// Latents seen through a normalization, read sample by sample or in blocks.
#[derive(Clone, Copy)]
pub struct Normalized<'a> {
    pub latents: &'a Latents,
    pub affine: &'a Affine,
}

impl<'a> Normalized<'a> {
    pub fn shape(&self) -> super::latents::Shape {
        self.latents.shape()
    }

    /// Normalized values of sample `i` into `out` (`D` values).
    pub fn sample_into(&self, i: usize, out: &mut [f32]) {
        self.affine
            .apply(self.latents.sample(i), self.shape().s(), out);
    }

    /// Normalized values of samples `idx` (in that order), `idx.len() * D` values.
    pub fn gather(&self, idx: impl IntoIterator<Item = usize>) -> Vec<f32> {
        let d = self.shape().d();
        let mut out = Vec::new();
        for i in idx {
            let at = out.len();
            out.resize(at + d, 0.0);
            self.sample_into(i, &mut out[at..]);
        }
        out
    }

    /// All normalized values (`N * D`); for small inputs and tests only.
    pub fn to_vec(&self) -> Vec<f32> {
        self.gather(0..self.shape().n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_modes() {
        assert_eq!("channel".parse::<Normalize>().unwrap(), Normalize::Channel);
        assert_eq!(
            "scale:0.18215".parse::<Normalize>().unwrap(),
            Normalize::Scale(0.18215)
        );
        assert_eq!(
            "stats:s.npz".parse::<Normalize>().unwrap(),
            Normalize::Stats("s.npz".into())
        );
        let e = "scale:x".parse::<Normalize>().unwrap_err();
        assert!(e.message.contains("found `scale:x`"), "{}", e.message);
        assert!("scale:0".parse::<Normalize>().is_err());
    }

    #[test]
    fn moments_merge_equals_whole() {
        let xs: Vec<f64> = (0..1000)
            .map(|i| (i as f64 * 0.7).cos() * 3.0 + 5.0)
            .collect();
        let whole = Moments::of(xs.iter().copied());
        let parts = xs
            .chunks(37)
            .map(|c| Moments::of(c.iter().copied()))
            .fold(Moments::default(), Moments::merge);
        assert!((whole.mean - parts.mean).abs() < 1e-12);
        assert!((whole.std() - parts.std()).abs() < 1e-12);
        let mean = xs.iter().sum::<f64>() / 1000.0;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 999.0;
        assert!((whole.std() - var.sqrt()).abs() < 1e-12);
        // The f32 form (lanes and a tail: 1000 = 8 * 125, and 37 values per part) agrees with the
        // f64 one on the same values up to summation order.
        let x32: Vec<f32> = xs.iter().map(|&x| x as f32).collect();
        let back: Vec<f64> = x32.iter().map(|&x| x as f64).collect();
        for (a, b) in [
            (Moments::of_f32(&x32), Moments::of(back.iter().copied())),
            (
                Moments::of_f32(&x32[..37]),
                Moments::of(back[..37].iter().copied()),
            ),
        ] {
            assert_eq!(a.count, b.count);
            assert!((a.mean - b.mean).abs() < 1e-14 * b.mean.abs());
            assert!((a.m2 - b.m2).abs() < 1e-12 * b.m2);
        }
        assert_eq!(Moments::of_f32(&[]), Moments::default());
    }

    #[test]
    fn channel_mode_standardizes_each_channel() {
        // 3 samples, 2 channels, 1x2 grid; channel 1 is constant.
        let data = vec![1.0, 2.0, 5.0, 5.0, 3.0, 4.0, 5.0, 5.0, 5.0, 6.0, 5.0, 5.0];
        let z = Latents::from_vec(2, 1, 2, data);
        let (a, w) = Affine::fit(&Normalize::Channel, &z, None).unwrap();
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("channel 1"));
        assert!((a.mean[0] - 3.5).abs() < 1e-12);
        assert!((a.std[0] - 3.5f64.sqrt()).abs() < 1e-12);
        let v = Normalized {
            latents: &z,
            affine: &a,
        }
        .to_vec();
        let ch0: Vec<f64> = [0, 1, 4, 5, 8, 9].iter().map(|&i| v[i] as f64).collect();
        let m = Moments::of(ch0.iter().copied());
        assert!(m.mean.abs() < 1e-6 && (m.std() - 1.0).abs() < 1e-6);
        assert_eq!(v[2], 0.0);
    }
}
