//! Small f32-in, f64-accumulating loops on the spatial metrics' hot paths, compiled twice: for the
//! baseline target and for AVX2, picked at run time. The default x86-64 target only has SSE2 (two f64
//! lanes); these loops are memory-light and conversion-bound, so the wider vectors about halve their
//! time. Both builds run the same operations in the same order (no reassociation, no fused
//! multiply-add), so their results are bit-identical and do not depend on the machine.

/// Defines a function whose body is compiled for the baseline target and, on x86-64, again with
/// AVX2 enabled; the AVX2 build runs when the CPU has it (detection is cached by std).
macro_rules! with_avx2 {
    ($(#[$m:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$m])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn body($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2")]
                fn avx2($($arg: $ty),*) $(-> $ret)? {
                    body($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU supports AVX2, checked just above.
                    return unsafe { avx2($($arg),*) };
                }
            }
            body($($arg),*)
        }
    };
}

with_avx2! {
    /// Adds row `(y, x)` of a Gram matrix (`row[j]` for tokens `j = y' w + x'` with `y' <= y`) into
    /// the offset blocks: `blocks[(y - y') w w + x w + x'] += row[y' w + x']`.
    pub fn add_row_blocks(blocks: &mut [f64], row: &[f32], y: usize, x: usize, w: usize) {
        // Common widths get a fixed-length inner loop, which compiles to straight vector code.
        match w {
            16 => add_row_blocks_w::<16>(blocks, row, y, x),
            32 => add_row_blocks_w::<32>(blocks, row, y, x),
            8 => add_row_blocks_w::<8>(blocks, row, y, x),
            _ => {
                for y2 in 0..=y {
                    let dst = &mut blocks[((y - y2) * w + x) * w..][..w];
                    for (a, &v) in dst.iter_mut().zip(&row[y2 * w..(y2 + 1) * w]) {
                        *a += v as f64;
                    }
                }
            }
        }
    }
}

#[inline(always)]
fn add_row_blocks_w<const W: usize>(blocks: &mut [f64], row: &[f32], y: usize, x: usize) {
    for y2 in 0..=y {
        let dst: &mut [f64; W] = (&mut blocks[((y - y2) * W + x) * W..][..W])
            .try_into()
            .expect("W values");
        let src: &[f32; W] = row[y2 * W..(y2 + 1) * W].try_into().expect("W values");
        for k in 0..W {
            dst[k] += src[k] as f64;
        }
    }
}

with_avx2! {
    /// `acc[k] += x[k] * b` (f32 `x` into f64) over the shorter of the two.
    pub fn axpy_into(acc: &mut [f64], x: &[f32], b: f64) {
        for (a, &v) in acc.iter_mut().zip(x) {
            *a += v as f64 * b;
        }
    }
}

with_avx2! {
    /// `sum_k a_k b_k` of f32 vectors in f64, over eight fixed lanes then the tail (a fixed order).
    pub fn dot(a: &[f32], b: &[f32]) -> f64 {
        let mut lanes = [0.0f64; 8];
        let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
        let (ra, rb) = (ca.remainder(), cb.remainder());
        for (x, y) in ca.zip(cb) {
            for k in 0..8 {
                lanes[k] += x[k] as f64 * y[k] as f64;
            }
        }
        let mut tail = 0.0;
        for (x, y) in ra.iter().zip(rb) {
            tail += *x as f64 * *y as f64;
        }
        lanes.iter().sum::<f64>() + tail
    }
}

with_avx2! {
    /// L2-normalizes, in place, each of the `s` tokens of a channel-major sample `x` (`c*s` values,
    /// `x[ch*s + i]`): `u_i = x_i / max(||x_i||, eps)`, norms accumulated in f64. `norms` is scratch
    /// of `s` values. `O(c s)`.
    pub fn normalize_tokens(x: &mut [f32], c: usize, s: usize, eps: f64, norms: &mut [f64]) {
        let norms = &mut norms[..s];
        norms.fill(0.0);
        for ch in x.chunks_exact(s).take(c) {
            for (n, &v) in norms.iter_mut().zip(ch) {
                *n += v as f64 * v as f64;
            }
        }
        for n in norms.iter_mut() {
            *n = 1.0 / n.sqrt().max(eps);
        }
        for ch in x.chunks_exact_mut(s).take(c) {
            for (v, &k) in ch.iter_mut().zip(norms.iter()) {
                *v = (*v as f64 * k) as f32;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels_compute_their_formulas() {
        let a: Vec<f32> = (0..19).map(|i| i as f32 * 0.5 - 3.0).collect();
        let b: Vec<f32> = (0..19).map(|i| (i % 3) as f32).collect();
        let want: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
        assert!((dot(&a, &b) - want).abs() < 1e-12);
        let mut acc = vec![1.0f64; 19];
        axpy_into(&mut acc, &b, 2.0);
        for k in 0..19 {
            assert_eq!(acc[k], 1.0 + 2.0 * b[k] as f64);
        }
        // A 2x2 grid: row (1, 0) of G covers tokens 0..4; offsets dy = 1 and dy = 0.
        let mut blocks = vec![0.0f64; 2 * 2 * 2];
        add_row_blocks(&mut blocks, &[1.0, 2.0, 3.0, 4.0], 1, 0, 2);
        assert_eq!(blocks, vec![3.0, 4.0, 0.0, 0.0, 1.0, 2.0, 0.0, 0.0]);
    }
}
