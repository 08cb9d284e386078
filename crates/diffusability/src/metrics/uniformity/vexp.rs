//! `exp` written so that the compiler vectorizes it, for the `O(n^2)` Gaussian sums of the KDE and of
//! the exact t-SNE affinities.
//!
//! Why not `f64::exp`: it calls the C library one value at a time (about 3-5 ns here), and these passes
//! evaluate 10^8-10^9 exponentials per t-SNE repeat. The version below is branch-free, so a loop over a
//! fixed-width block of lanes turns into SIMD code, and its error stays within a couple of ulps of the
//! correctly rounded value (tested against `f64::exp` below). Sums use [`LANES`] independent
//! accumulators merged in a fixed order, so the result does not depend on the vector width the
//! compiler picked.
//!
//! [`simd_kernel!`](crate::simd::simd_kernel) compiles a kernel three times (baseline x86-64, AVX2, AVX-512F) and picks one at
//! run time. The three give bit-identical results: Rust never fuses `a * b + c` into an FMA on its
//! own, every lane does the same IEEE operations whatever the register width, and the lanes are
//! merged in the same order.

/// Lanes per block; sums keep one accumulator per lane and merge them in lane order.
pub const LANES: usize = 8;

const LOG2E: f64 = std::f64::consts::LOG2_E;
/// `ln 2` split so that `n * LN2_HI` is exact for the `|n| <= 1100` used here (fdlibm's split).
const LN2_HI: f64 = 6.931_471_803_691_238e-1;
const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
/// `1.5 * 2^52`: adding it rounds to an integer held in the low mantissa bits.
const SHIFT: f64 = 6_755_399_441_055_744.0;
/// Below this the result would be subnormal; it is returned as 0 (absolute error < 3.3e-308).
const MIN_ARG: f64 = -708.0;
const MAX_ARG: f64 = 709.0;

/// `e^x` for finite `x <= 709`, within about 2 ulps; 0 for `x < -708` (where `e^x < 3.3e-308`).
#[inline(always)]
pub fn exp(x: f64) -> f64 {
    let xc = x.clamp(MIN_ARG, MAX_ARG);
    // x = n ln2 + r with |r| <= ln2 / 2 (Cody-Waite reduction).
    let t = xc * LOG2E + SHIFT;
    let nf = t - SHIFT;
    let r = (xc - nf * LN2_HI) - nf * LN2_LO;
    // Taylor series of e^r to r^13: the truncation error r^14/14! < 5e-18 for |r| <= 0.3466.
    let mut p = 1.0 / 6_227_020_800.0;
    p = p * r + 1.0 / 479_001_600.0;
    p = p * r + 1.0 / 39_916_800.0;
    p = p * r + 1.0 / 3_628_800.0;
    p = p * r + 1.0 / 362_880.0;
    p = p * r + 1.0 / 40_320.0;
    p = p * r + 1.0 / 5_040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    // t holds SHIFT + n exactly, so its bit pattern minus SHIFT's is n; 2^n built from the exponent bits.
    // Wrapping ops: no overflow is possible (|n| <= 1022), and unchecked arithmetic keeps the loop
    // vectorizable in builds with overflow checks.
    let biased = t.to_bits().wrapping_sub(SHIFT.to_bits()).wrapping_add(1023);
    let scale = f64::from_bits(biased << 52);
    let v = p * scale;
    if x < MIN_ARG { 0.0 } else { v }
}

/// `ln x` for normal positive `x` (`x >= f64::MIN_POSITIVE`), within about 2 ulps; the caller masks out
/// other inputs. `x = m 2^e` with `m` in `[sqrt(1/2), sqrt(2))`, then
/// `ln m = 2 atanh(s) = 2 (s + s^3/3 + s^5/5 + ...)`, `s = (m - 1) / (m + 1)`, `|s| <= 0.1716`.
#[inline(always)]
pub fn ln(x: f64) -> f64 {
    let bits = x.to_bits();
    let mant = (bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000;
    let m = f64::from_bits(mant);
    let big = m > std::f64::consts::SQRT_2;
    let m = if big { 0.5 * m } else { m };
    // The biased exponent as f64 without an integer-to-float conversion (which AVX2 and AVX-512F
    // lack for 64-bit lanes): 2^52 + k has k in its low mantissa bits.
    let k = f64::from_bits(0x4330_0000_0000_0000 | (bits >> 52)) - 4_503_599_627_370_496.0;
    let e = k - 1023.0 + if big { 1.0 } else { 0.0 };
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    // Odd series of atanh to s^25: the remainder s^27 / 27 < 2.5e-23 (relative to s < 1e-21).
    let mut p = 1.0 / 25.0;
    p = p * s2 + 1.0 / 23.0;
    p = p * s2 + 1.0 / 21.0;
    p = p * s2 + 1.0 / 19.0;
    p = p * s2 + 1.0 / 17.0;
    p = p * s2 + 1.0 / 15.0;
    p = p * s2 + 1.0 / 13.0;
    p = p * s2 + 1.0 / 11.0;
    p = p * s2 + 1.0 / 9.0;
    p = p * s2 + 1.0 / 7.0;
    p = p * s2 + 1.0 / 5.0;
    p = p * s2 + 1.0 / 3.0;
    let lnm = 2.0 * s + 2.0 * s * s2 * p;
    e * LN2_HI + (lnm + e * LN2_LO)
}

pub(crate) use crate::simd::simd_kernel;

/// Merges per-lane accumulators in lane order.
#[inline(always)]
pub fn merge(acc: &[f64; LANES]) -> f64 {
    let mut s = 0.0;
    for a in acc {
        s += a;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ulps(a: f64, b: f64) -> f64 {
        (a - b).abs() / (b.abs() * f64::EPSILON)
    }

    #[test]
    fn ln_matches_std_within_a_few_ulps() {
        let mut worst = 0.0f64;
        for i in 0..400_000 {
            // Log-uniform over [1e-300, 1e300], and densely around 1.
            let x = 10f64.powf(-300.0 + 600.0 * i as f64 / 400_000.0);
            let y = 0.5 + 1.5 * i as f64 / 400_000.0;
            for v in [x, y] {
                let (a, b) = (ln(v), v.ln());
                let err = if b == 0.0 {
                    a.abs()
                } else {
                    (a - b).abs() / (b.abs() * f64::EPSILON)
                };
                worst = worst.max(err);
            }
        }
        assert!(worst <= 3.0, "worst error {worst} ulps");
        assert_eq!(ln(1.0), 0.0);
        assert_eq!(ln(f64::MIN_POSITIVE), f64::MIN_POSITIVE.ln());
    }

    #[test]
    fn matches_std_exp_within_a_few_ulps() {
        let mut worst = 0.0f64;
        let mut x = -708.0;
        while x <= 709.0 {
            worst = worst.max(ulps(exp(x), x.exp()));
            x += 0.013_7;
        }
        for i in 0..200_000 {
            let x = -40.0 + 40.0 * (i as f64) / 200_000.0;
            worst = worst.max(ulps(exp(x), x.exp()));
        }
        assert!(worst <= 3.0, "worst error {worst} ulps");
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(-709.0), 0.0);
        assert_eq!(exp(f64::NEG_INFINITY), 0.0);
    }
}
