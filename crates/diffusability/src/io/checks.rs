//! Validation of latents, labels and masks: shapes, dtypes, counts and values. Each check returns the
//! one error a user sees, naming the file and key with what was expected and what was found.

use super::array::{ArrayData, RawArray, shape_str};
use super::stored::{Layout, Stored};
use crate::data::{Masks, Segment};
use crate::error::{Error, Result};
use crate::par;

/// The `(N, C, H, W)` of a latents array, after checking rank, dtype and emptiness.
pub fn latents_shape(l: &Layout, err: &dyn Fn(String) -> Error) -> Result<[usize; 4]> {
    let [n, c, h, w] = l.shape[..] else {
        return Err(err(format!(
            "expected 4 dimensions (N, C, H, W), found shape {}",
            shape_str(&l.shape)
        )));
    };
    if !l.elem.is_float() {
        return Err(err(format!(
            "expected floating-point latents (f16, bf16, f32 or f64), found dtype {}",
            l.elem.name()
        )));
    }
    if n == 0 || c == 0 || h == 0 || w == 0 {
        return Err(err(format!(
            "expected at least one sample and nonzero C, H, W, found shape {}",
            shape_str(&l.shape)
        )));
    }
    Ok([n, c, h, w])
}

/// Checks a labels array's dtype and shape against `n` latents.
pub fn labels_layout(l: &Layout, n: usize, err: &dyn Fn(String) -> Error) -> Result<()> {
    if !l.elem.is_int() {
        return Err(err(format!(
            "expected integer class labels, found dtype {}",
            l.elem.name()
        )));
    }
    let m = match l.shape[..] {
        [m] | [m, 1] => m,
        _ => {
            return Err(err(format!(
                "expected shape (N,) or (N, 1), found {}",
                shape_str(&l.shape)
            )));
        }
    };
    if m != n {
        return Err(err(format!(
            "has {m} entries, expected {n} (one per latent)"
        )));
    }
    Ok(())
}

/// Labels as i64, refusing u64 values beyond `i64::MAX`.
pub fn labels_values(a: &RawArray, err: &dyn Fn(String) -> Error) -> Result<Vec<i64>> {
    Ok(match &a.data {
        ArrayData::I8(v) => v.iter().map(|&x| x as i64).collect(),
        ArrayData::I16(v) => v.iter().map(|&x| x as i64).collect(),
        ArrayData::I32(v) => v.iter().map(|&x| x as i64).collect(),
        ArrayData::I64(v) => v.clone(),
        ArrayData::U8(v) => v.iter().map(|&x| x as i64).collect(),
        ArrayData::U16(v) => v.iter().map(|&x| x as i64).collect(),
        ArrayData::U32(v) => v.iter().map(|&x| x as i64).collect(),
        ArrayData::U64(v) => {
            if let Some(i) = v.iter().position(|&x| i64::try_from(x).is_err()) {
                return Err(err(format!(
                    "label {} at index {i} is larger than the largest supported label {}",
                    v[i],
                    i64::MAX
                )));
            }
            v.iter().map(|&x| x as i64).collect()
        }
        other => {
            return Err(err(format!(
                "expected integer class labels, found dtype {}",
                other.dtype()
            )));
        }
    })
}

/// The `(n, h, w)` of a masks array after checking its shape against `n` latents on an `gh x gw` grid.
pub fn masks_layout(
    l: &Layout,
    n: usize,
    gh: usize,
    gw: usize,
    err: &dyn Fn(String) -> Error,
) -> Result<(usize, usize)> {
    let (m, mh, mw) = match l.shape[..] {
        [m, mh, mw] | [m, 1, mh, mw] => (m, mh, mw),
        _ => {
            return Err(err(format!(
                "expected shape (N, h, w) or (N, 1, h, w), found {}",
                shape_str(&l.shape)
            )));
        }
    };
    if m != n {
        return Err(err(format!("has {m} masks, expected {n} (one per latent)")));
    }
    if mh == 0 || mw == 0 || mh % gh != 0 || mw % gw != 0 {
        return Err(err(format!(
            "mask size {mh}x{mw} is not a positive whole multiple of the latent grid {gh}x{gw}"
        )));
    }
    Ok((mh, mw))
}

/// Masks pooled onto the `gh x gw` grid; nonzero is foreground, NaN is refused.
pub fn masks_values(
    s: &Stored,
    n: usize,
    mh: usize,
    mw: usize,
    gh: usize,
    gw: usize,
) -> Result<Masks> {
    // Pool a few samples at a time so that pixel masks never sit in memory whole.
    const CHUNK: usize = 256;
    let px = mh * mw;
    let mut fg = Vec::with_capacity(n * gh * gw);
    let (mut nan, mut first) = (0usize, None);
    for r in par::chunks(n, CHUNK) {
        let vals = s.mask_range(r.start * px..r.end * px);
        let bad = vals.iter().filter(|&&v| v == 2).count();
        if bad > 0 {
            nan += bad;
            first = first.or_else(|| vals.iter().position(|&v| v == 2).map(|i| r.start + i / px));
        }
        let pixels: Vec<bool> = vals.iter().map(|&v| v != 0).collect();
        fg.extend(Masks::pool(&pixels, r.len(), mh, mw, gh, gw).fg);
    }
    if let Some(i) = first {
        return Err(s.err(format!(
            "expected finite mask values (nonzero = foreground), found {nan} NaN; the first is in sample {i}"
        )));
    }
    Ok(Masks {
        h: gh,
        w: gw,
        source_h: mh,
        source_w: mw,
        fg,
    })
}

/// Non-finite values found in latents.
#[derive(Clone, Copy, Default)]
struct Bad {
    nan: usize,
    inf: usize,
    first: Option<usize>,
}

/// Samples per task of the finiteness scan; fixed so the result never depends on the thread count.
const SCAN_CHUNK: usize = 64;

/// Checks that every value of a segment of `d`-value samples is finite. `from_f64` says the values
/// were rounded from f64, where values beyond the f32 range became infinite.
pub fn finite(
    seg: &Segment,
    d: usize,
    from_f64: bool,
    err: &dyn Fn(String) -> Error,
) -> Result<()> {
    let v = seg.as_slice();
    let n = v.len() / d;
    let bad = par::map_reduce(
        n,
        SCAN_CHUNK,
        |r| {
            let mut b = Bad::default();
            for i in r {
                let x = &v[i * d..(i + 1) * d];
                // A branch-free count first: the common case is all finite.
                if x.iter().filter(|y| !y.is_finite()).count() > 0 {
                    b.nan += x.iter().filter(|y| y.is_nan()).count();
                    b.inf += x.iter().filter(|y| y.is_infinite()).count();
                    b.first = b.first.or(Some(i));
                }
            }
            b
        },
        |a, b| Bad {
            nan: a.nan + b.nan,
            inf: a.inf + b.inf,
            first: a.first.or(b.first),
        },
    )
    .unwrap_or_default();
    let Some(i) = bad.first else {
        return Ok(());
    };
    let mut found = Vec::new();
    if bad.nan > 0 {
        found.push(format!("{} NaN", bad.nan));
    }
    if bad.inf > 0 {
        found.push(format!("{} infinite", bad.inf));
    }
    let note = if from_f64 && bad.inf > 0 {
        " (f64 values beyond the f32 range count as infinite)"
    } else {
        ""
    };
    Err(err(format!(
        "expected finite values, found {}{note}; the first is in sample {i}",
        found.join(" and ")
    )))
}
