//! Foreground masks, reduced to the latent token grid.
//!
//! A mask of `h x w` pixels is pooled onto the `H x W` latent grid: a token is foreground if ANY pixel
//! of its `h/H x w/W` block is nonzero (max-pool), as iREPA does
//! (End2End-Diffusion/iREPA: `metrics/spatial_metrics_comparison.py`).

/// Per-token foreground flags, `n * h * w` in sample-major, row-major order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Masks {
    pub h: usize,
    pub w: usize,
    /// Resolution of the masks as given, before pooling.
    pub source_h: usize,
    pub source_w: usize,
    pub fg: Vec<bool>,
}

impl Masks {
    /// Pools pixel masks (`n x mh x mw`, nonzero = foreground) onto the `h x w` grid. The caller has
    /// checked that `mh`, `mw` are whole multiples of `h`, `w`.
    pub fn pool(pixels: &[bool], n: usize, mh: usize, mw: usize, h: usize, w: usize) -> Masks {
        let (fy, fx) = (mh / h, mw / w);
        let mut fg = vec![false; n * h * w];
        for i in 0..n {
            let img = &pixels[i * mh * mw..(i + 1) * mh * mw];
            for y in 0..mh {
                for x in 0..mw {
                    if img[y * mw + x] {
                        fg[i * h * w + (y / fy) * w + x / fx] = true;
                    }
                }
            }
        }
        Masks {
            h,
            w,
            source_h: mh,
            source_w: mw,
            fg,
        }
    }

    /// The `h*w` flags of sample `i`.
    pub fn sample(&self, i: usize) -> &[bool] {
        &self.fg[i * self.h * self.w..(i + 1) * self.h * self.w]
    }

    pub fn len(&self) -> usize {
        self.fg.len() / (self.h * self.w).max(1)
    }

    pub fn is_empty(&self) -> bool {
        self.fg.is_empty()
    }

    /// The masks of samples `idx`, in that order.
    pub fn select(&self, idx: &[usize]) -> Masks {
        let mut fg = Vec::with_capacity(idx.len() * self.h * self.w);
        for &i in idx {
            fg.extend_from_slice(self.sample(i));
        }
        Masks { fg, ..*self }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_pool_marks_any_foreground_pixel() {
        // One 4x4 mask pooled to 2x2: only the top-right block has a foreground pixel.
        let mut px = vec![false; 16];
        px[3] = true;
        let m = Masks::pool(&px, 1, 4, 4, 2, 2);
        assert_eq!(m.fg, vec![false, true, false, false]);
    }
}
