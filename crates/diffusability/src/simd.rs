//! Run-time dispatch of hot loops to the widest vector instructions the CPU has.
//!
//! The crate is compiled for baseline x86-64 (so that one binary or wheel runs everywhere), where
//! the compiler may only use SSE2. [`simd_kernel!`] compiles a loop three times (baseline, AVX2,
//! AVX-512F) and picks one when it is called. Kernels written with a fixed number of independent
//! accumulators merged in a fixed order give the same bits on all three: Rust never fuses
//! `a * b + c` into an FMA on its own, and every lane does the same IEEE operations whatever the
//! register width.

/// Defines `fn name(args) -> ret { body }` compiled for baseline x86-64, AVX2 and AVX-512F, dispatched
/// on the running CPU (the body may only use its arguments). Elsewhere it is the plain function.
macro_rules! simd_kernel {
    ($(#[$m:meta])* $vis:vis fn $name:ident($($arg:ident : $ty:ty),* $(,)?) -> $ret:ty $body:block) => {
        $(#[$m])*
        $vis fn $name($($arg: $ty),*) -> $ret {
            #[inline(always)]
            fn body($($arg: $ty),*) -> $ret $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                fn wide($($arg: $ty),*) -> $ret {
                    body($($arg),*)
                }
                #[target_feature(enable = "avx2")]
                fn mid($($arg: $ty),*) -> $ret {
                    body($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the running CPU has AVX-512F (checked just above).
                    return unsafe { wide($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the running CPU has AVX2 (checked just above).
                    return unsafe { mid($($arg),*) };
                }
            }
            body($($arg),*)
        }
    };
}
pub(crate) use simd_kernel;

/// Sixteen f64 lanes summed as a tree: lane `l` with `l + 8`, then `l + 4`, `l + 2`, `l + 1`. The
/// order of [`fold16_avx512`], which gives the same bits in four vector additions (a sequential
/// sum of the lanes is a chain of sixteen dependent additions).
pub(crate) fn fold16(a: &[f64; 16]) -> f64 {
    let s: [f64; 8] = std::array::from_fn(|l| a[l] + a[l + 8]);
    let t: [f64; 4] = std::array::from_fn(|l| s[l] + s[l + 4]);
    let u = [t[0] + t[2], t[1] + t[3]];
    u[0] + u[1]
}

/// [`fold16`] of the lanes `lo` (0-7) and `hi` (8-15).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
pub(crate) fn fold16_avx512(lo: std::arch::x86_64::__m512d, hi: std::arch::x86_64::__m512d) -> f64 {
    use std::arch::x86_64::*;
    let s = _mm512_add_pd(lo, hi);
    let t = _mm256_add_pd(_mm512_castpd512_pd256(s), _mm512_extractf64x4_pd::<1>(s));
    let u = _mm_add_pd(_mm256_castpd256_pd128(t), _mm256_extractf128_pd::<1>(t));
    _mm_cvtsd_f64(_mm_add_sd(u, _mm_unpackhi_pd(u, u)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vector fold gives the tree's bits, on lanes whose sum depends on the order.
    #[test]
    fn fold16_paths_agree() {
        let a: [f64; 16] =
            std::array::from_fn(|l| (l as f64 * 1.7).sin() * 10f64.powi(l as i32 % 9 - 4));
        let tree = fold16(&a);
        let seq: f64 = a.iter().sum();
        assert!((tree - seq).abs() <= 1e-15 * a.iter().map(|v| v.abs()).sum::<f64>());
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F (checked just above); the loads read 8 f64 each.
            let v = unsafe {
                use std::arch::x86_64::_mm512_loadu_pd;
                fold16_avx512(
                    _mm512_loadu_pd(a.as_ptr()),
                    _mm512_loadu_pd(a.as_ptr().add(8)),
                )
            };
            assert_eq!(v.to_bits(), tree.to_bits());
        }
    }
}
