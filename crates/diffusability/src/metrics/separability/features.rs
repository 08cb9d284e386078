//! Per-image feature vectors for the separability metrics: channel means over (foreground) tokens, or
//! the whole flattened latent.

use crate::data::{Masks, Normalized};
use crate::error::{Error, Result};
use rayon::prelude::*;

/// Which vector represents an image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FeatureKind {
    /// Per-channel mean over tokens: `C` values.
    Pooled,
    /// The whole normalized latent: `C*H*W` values.
    Flatten,
}

impl FeatureKind {
    pub fn parse(s: &str) -> Result<FeatureKind> {
        match s {
            "pooled" => Ok(FeatureKind::Pooled),
            "flatten" => Ok(FeatureKind::Flatten),
            other => Err(Error::internal(format!(
                "unknown feature kind `{other}` (expected pooled or flatten)"
            ))),
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            FeatureKind::Pooled => "pooled",
            FeatureKind::Flatten => "flatten",
        }
    }
}

/// Samples per parallel task; fixed, so the work split never depends on the thread count.
const SAMPLES_PER_TASK: usize = 64;

fn non_finite(i: usize) -> Error {
    Error::input_msg(format!(
        "latent {i} has a non-finite value (NaN or infinity) after normalization; the separability metrics need finite latents"
    ))
}

/// Pooled features `f_n[c] = mean_{s in F_n} z'_n[c, s]` (n x C, row-major, f64), where `F_n` is the set
/// of foreground tokens of image `n` (spec section 2, LNC), or all tokens when `masks` is `None` or the
/// image has no foreground token. Returns the features and the number of images with masks but no
/// foreground. Accumulates in f64; O(N D).
pub fn pooled(z: Normalized<'_>, masks: Option<&Masks>) -> Result<(Vec<f64>, usize)> {
    let sh = z.shape();
    let (n, c, s) = (sh.n, sh.c, sh.s());
    if let Some(m) = masks
        && (m.len() != n || m.h != sh.h || m.w != sh.w)
    {
        return Err(Error::input_msg(format!(
            "masks: {} masks on a {}x{} token grid, expected {n} on {}x{} (one per latent)",
            m.len(),
            m.h,
            m.w,
            sh.h,
            sh.w
        )));
    }
    let mut out = vec![0f64; n * c];
    let empty: usize = out
        .par_chunks_mut((c * SAMPLES_PER_TASK).max(1))
        .enumerate()
        .map(|(t, rows)| -> Result<usize> {
            let mut buf = vec![0f32; c * s];
            let mut empty = 0;
            for (r, row) in rows.chunks_mut(c.max(1)).enumerate() {
                let i = t * SAMPLES_PER_TASK + r;
                z.sample_into(i, &mut buf);
                let fg = masks.map(|m| m.sample(i));
                let count = fg.map_or(s, |f| f.iter().filter(|&&b| b).count());
                let use_mask = fg.filter(|_| count > 0);
                if fg.is_some() && count == 0 {
                    empty += 1;
                }
                let denom = if use_mask.is_some() { count } else { s } as f64;
                for (ch, o) in row.iter_mut().enumerate() {
                    let vals = &buf[ch * s..(ch + 1) * s];
                    let sum: f64 = match use_mask {
                        Some(f) => vals
                            .iter()
                            .zip(f)
                            .filter(|(_, b)| **b)
                            .map(|(&v, _)| v as f64)
                            .sum(),
                        None => vals.iter().map(|&v| v as f64).sum(),
                    };
                    *o = sum / denom;
                }
                if row.iter().any(|v| !v.is_finite()) {
                    return Err(non_finite(i));
                }
            }
            Ok(empty)
        })
        .collect::<Result<Vec<usize>>>()?
        .into_iter()
        .sum();
    Ok((out, empty))
}

/// The normalized latents as `n x (C*H*W)` rows (f32, row-major). O(N D) memory.
pub fn flatten(z: Normalized<'_>) -> Result<Vec<f32>> {
    let sh = z.shape();
    let d = sh.d();
    let mut out = vec![0f32; sh.n * d];
    out.par_chunks_mut((d * SAMPLES_PER_TASK).max(1))
        .enumerate()
        .try_for_each(|(t, rows)| -> Result<()> {
            for (r, row) in rows.chunks_mut(d.max(1)).enumerate() {
                let i = t * SAMPLES_PER_TASK + r;
                z.sample_into(i, row);
                if row.iter().any(|v| !v.is_finite()) {
                    return Err(non_finite(i));
                }
            }
            Ok(())
        })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Affine, Latents, Normalize};

    #[test]
    fn pooled_uses_foreground_tokens_or_all() {
        // 2 images, 1 channel, 1x2 grid; image 0 has token 1 in the foreground, image 1 none.
        let lat = Latents::from_vec(1, 1, 2, vec![1.0, 3.0, 5.0, 7.0]);
        let (a, _) = Affine::fit(&Normalize::None, &lat, None).unwrap();
        let z = Normalized {
            latents: &lat,
            affine: &a,
        };
        let m = Masks::pool(&[false, true, false, false], 2, 1, 2, 1, 2);
        let (f, empty) = pooled(z, Some(&m)).unwrap();
        assert_eq!(f, vec![3.0, 6.0]);
        assert_eq!(empty, 1);
        let (f, _) = pooled(z, None).unwrap();
        assert_eq!(f, vec![2.0, 6.0]);
        assert_eq!(flatten(z).unwrap(), vec![1.0, 3.0, 5.0, 7.0]);
    }
}
