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
