//! The Gram product `Y Y^T` (in f64) of a short, wide f32 matrix: tens of rows, thousands of columns,
//! such as the flip-flop's channel Gram (`C = 32` rows, `n S = 12800` columns per class).
//!
//! Written here because a general matrix product handles this shape poorly: its `C x C` output is
//! too small to fill the tiles of the f32 kernels, which then reload it for every block of the long
//! dimension (faer's product ran at 57 GFLOP/s on the `32 x 12800` case, this kernel at 84, on a core
//! whose f32 peak is about 100). It keeps a `4 x 4` tile of the output in 16 AVX-512 registers while
//! it streams eight rows of `Y` once per block of [`BLOCK`] columns. It needs AVX-512F (fused
//! multiply-adds on sixteen lanes); elsewhere [`row_gram_f32`] returns `None` and callers use a
//! general product.

#[cfg(target_arch = "x86_64")]
use crate::simd::fold16_avx512;
use faer::Mat;

/// f32 lanes per register (AVX-512).
const LANES: usize = 16;

/// Rows per side of an output tile.
const TILE: usize = 4;

/// Columns whose products each lane sums in f32 (`BLOCK / 16` terms) before the lanes are added, in
/// f64, into the result: the rounding grows with the block, not with the number of columns.
pub const BLOCK: usize = 2048;

/// `Y Y^T` in f64 for the row-major f32 matrix `y` (`rows x cols`), or `None` when the CPU lacks
/// AVX-512F. Each entry is the f64 sum, over blocks of [`BLOCK`] columns in order, of sixteen f32
/// lane sums (a lane accumulates every sixteenth product of the block, in column order, by fused
/// multiply-adds) added as a tree ([`crate::simd::fold16`]): fixed order, so the same bits for
/// every thread count. Symmetric to the last bit.
pub fn row_gram_f32(y: &[f32], rows: usize, cols: usize) -> Option<Mat<f64>> {
    assert_eq!(
        y.len(),
        rows * cols,
        "row_gram_f32: y must hold rows x cols values"
    );
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the running CPU has AVX-512F (checked just above).
        return Some(unsafe { gram_avx512(y, rows, cols) });
    }
    None
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn gram_avx512(y: &[f32], rows: usize, cols: usize) -> Mat<f64> {
    let mut g = Mat::<f64>::zeros(rows, rows);
    if rows == 0 {
        return g;
    }
    let tiles = rows.div_ceil(TILE);
    let mut k0 = 0;
    while k0 < cols {
        let k1 = (k0 + BLOCK).min(cols);
        for bi in 0..tiles {
            for bj in 0..=bi {
                let sums = tile_sums_avx512(y, rows, cols, bi, bj, k0, k1);
                for r in 0..TILE {
                    for s in 0..TILE {
                        let (i, j) = (bi * TILE + r, bj * TILE + s);
                        if i < rows && j <= i {
                            g[(i, j)] += sums[r * TILE + s];
                        }
                    }
                }
            }
        }
        k0 = k1;
    }
    super::mirror_lower(g.as_mut());
    g
}

/// The 16 entries of output tile `(bi, bj)` over columns `k0..k1`, each folded from its sixteen
/// f32 lane sums (one register) in f64: a step of sixteen columns is eight loads and sixteen fused
/// multiply-adds. Rows past the end (a last, partial tile) repeat the last row; their sums are
/// discarded.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn tile_sums_avx512(
    y: &[f32],
    rows: usize,
    cols: usize,
    bi: usize,
    bj: usize,
    k0: usize,
    k1: usize,
) -> [f64; 16] {
    use std::arch::x86_64::*;
    let row = |t: usize, r: usize| {
        let i = (t * TILE + r).min(rows - 1);
        &y[i * cols + k0..i * cols + k1]
    };
    let a: [&[f32]; TILE] = std::array::from_fn(|r| row(bi, r));
    let b: [&[f32]; TILE] = std::array::from_fn(|s| row(bj, s));
    let n = k1 - k0;
    let full = n - n % LANES;
    let mut acc = [_mm512_setzero_ps(); TILE * TILE];
    let mut step = |av: [__m512; TILE], bv: [__m512; TILE]| {
        for r in 0..TILE {
            for s in 0..TILE {
                acc[r * TILE + s] = _mm512_fmadd_ps(av[r], bv[s], acc[r * TILE + s]);
            }
        }
    };
    let mut c = 0;
    while c < full {
        // SAFETY: c + 16 <= full <= n, the length of every row slice.
        let av = std::array::from_fn(|r| unsafe { _mm512_loadu_ps(a[r].as_ptr().add(c)) });
        let bv = std::array::from_fn(|s| unsafe { _mm512_loadu_ps(b[s].as_ptr().add(c)) });
        step(av, bv);
        c += LANES;
    }
    if full < n {
        // The last columns, zero-padded to a whole register by a masked load.
        let mask: __mmask16 = (1u32 << (n - full)) as u16 - 1;
        // SAFETY: the mask covers only the n - full values left in each row slice.
        let av = std::array::from_fn(|r| unsafe {
            _mm512_maskz_loadu_ps(mask, a[r].as_ptr().add(full))
        });
        let bv = std::array::from_fn(|s| unsafe {
            _mm512_maskz_loadu_ps(mask, b[s].as_ptr().add(full))
        });
        step(av, bv);
    }
    std::array::from_fn(|p| {
        let lo = _mm512_cvtps_pd(_mm512_castps512_ps256(acc[p]));
        let hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(
            _mm512_castps_pd(acc[p]),
        )));
        fold16_avx512(lo, hi)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against an f64 Gram of the same f32 values, for shapes with partial tiles, partial registers
    /// and several column blocks: each lane sums at most `BLOCK / 16 = 128` f32 products, so the
    /// error is below `128 * 2^-24` of the sum of the products' magnitudes (bound checked at 1e-5).
    #[test]
    fn matches_an_f64_gram() {
        for (rows, cols) in [
            (32usize, 12800usize),
            (7, 4099),
            (1, 5),
            (4, 16),
            (13, 2048),
        ] {
            let y: Vec<f32> = (0..rows * cols)
                .map(|i| ((i as f64 * 0.7311).sin() * 3.0 + 0.5) as f32)
                .collect();
            let Some(g) = row_gram_f32(&y, rows, cols) else {
                eprintln!("skipped: this CPU has no AVX-512F");
                return;
            };
            for i in 0..rows {
                for j in 0..rows {
                    let (a, b) = (&y[i * cols..(i + 1) * cols], &y[j * cols..(j + 1) * cols]);
                    let exact: f64 = a.iter().zip(b).map(|(&p, &q)| p as f64 * q as f64).sum();
                    let mag: f64 = a
                        .iter()
                        .zip(b)
                        .map(|(&p, &q)| (p as f64 * q as f64).abs())
                        .sum();
                    assert!(
                        (g[(i, j)] - exact).abs() <= 1e-5 * mag,
                        "{rows}x{cols} ({i},{j})"
                    );
                    assert_eq!(g[(i, j)].to_bits(), g[(j, i)].to_bits());
                }
            }
        }
    }

    /// The lane order stated in [`row_gram_f32`], replayed in scalar code (`mul_add` is the fused
    /// multiply-add): same bits.
    #[test]
    fn follows_the_stated_order() {
        let (rows, cols) = (6usize, 2 * BLOCK + 37);
        let y: Vec<f32> = (0..rows * cols)
            .map(|i| ((i as f64 * 1.37).cos() * 10f64.powi((i % 5) as i32 - 2)) as f32)
            .collect();
        let Some(g) = row_gram_f32(&y, rows, cols) else {
            eprintln!("skipped: this CPU has no AVX-512F");
            return;
        };
        for i in 0..rows {
            for j in 0..=i {
                let mut total = 0.0f64;
                for k0 in (0..cols).step_by(BLOCK) {
                    let k1 = (k0 + BLOCK).min(cols);
                    let mut lanes = [0.0f32; LANES];
                    for k in k0..k1 {
                        let l = &mut lanes[(k - k0) % LANES];
                        *l = y[i * cols + k].mul_add(y[j * cols + k], *l);
                    }
                    total += crate::simd::fold16(&std::array::from_fn(|l| lanes[l] as f64));
                }
                assert_eq!(g[(i, j)].to_bits(), total.to_bits(), "({i},{j})");
            }
        }
    }
}
