//! The built-in example: 2000 Fashion-MNIST test images (200 per class, in test-set file order; see
//! `examples/fashion-mnist/README.md` for provenance and licence), compiled into the library and turned
//! into latents by a deterministic, weight-free tokenizer:
//!
//! 1. pixels `p` in 0..=255 become `p / 255` (f32);
//! 2. each 28 x 28 image is zero-padded to 32 x 32 (2 pixels on every side);
//! 3. pixel unshuffle by `r = 2`, as `torch.nn.functional.pixel_unshuffle`:
//!    `out[c*r*r + i*r + j, y, x] = in[c, y*r + i, x*r + j]`, giving latents of shape `(2000, 4, 16, 16)`.
//!
//! Masks are the nonzero pixels of the padded 32 x 32 images (twice the latent grid), pooled to tokens
//! as any other mask. Labels are the Fashion-MNIST classes 0..9.

use crate::data::{self, Dataset, Labels, Latents, Masks, Source};
use crate::error::{Error, Result};

const IMAGES: &[u8] = include_bytes!("../../../examples/fashion-mnist/images.u8");
const LABELS: &[u8] = include_bytes!("../../../examples/fashion-mnist/labels.u8");

/// Images in the example.
pub const N: usize = 2000;
/// Side of a Fashion-MNIST image.
const SIDE: usize = 28;
/// Zero padding on each side, so that the image divides into 2 x 2 blocks of a 16 x 16 grid.
const PAD: usize = 2;
/// Side of the padded image (the mask resolution).
pub const PADDED: usize = SIDE + 2 * PAD;
/// The pixel-unshuffle factor.
const R: usize = 2;
/// Latent channels `R * R` and grid side `PADDED / R`.
pub const CHANNELS: usize = R * R;
pub const GRID: usize = PADDED / R;

/// The example data set: latents `(2000, 4, 16, 16)` f32, labels 0..9 (200 each), masks 32 x 32.
/// Its source is named `fashion-mnist-example`, path `built-in:fashion-mnist`, `example = true`.
/// Cost: about 8 MB and a few milliseconds.
pub fn load_example() -> Result<Dataset> {
    // The files are compiled in, so a mismatch is a packaging bug, not a user error.
    if IMAGES.len() != N * SIDE * SIDE || LABELS.len() != N {
        return Err(Error::internal(format!(
            "built-in example: {} image bytes and {} labels, expected {} and {N}",
            IMAGES.len(),
            LABELS.len(),
            N * SIDE * SIDE
        )));
    }
    if let Some(bad) = LABELS.iter().find(|&&l| l > 9) {
        return Err(Error::internal(format!(
            "built-in example: label {bad}, expected 0..9"
        )));
    }

    let d = CHANNELS * GRID * GRID;
    let mut latents = vec![0f32; N * d];
    let mut pixels = vec![false; N * PADDED * PADDED];
    for (n, img) in IMAGES.chunks_exact(SIDE * SIDE).enumerate() {
        let out = &mut latents[n * d..(n + 1) * d];
        let mask = &mut pixels[n * PADDED * PADDED..(n + 1) * PADDED * PADDED];
        for (row, line) in img.chunks_exact(SIDE).enumerate() {
            for (col, &p) in line.iter().enumerate() {
                let (py, px) = (row + PAD, col + PAD);
                let (y, i, x, j) = (py / R, py % R, px / R, px % R);
                out[((i * R + j) * GRID + y) * GRID + x] = p as f32 / 255.0;
                mask[py * PADDED + px] = p != 0;
            }
        }
    }

    let latents = Latents::from_vec(CHANNELS, GRID, GRID, latents);
    let labels = Labels::new(LABELS.iter().map(|&l| i64::from(l)).collect());
    let masks = Masks::pool(&pixels, N, PADDED, PADDED, GRID, GRID);
    let source = Source {
        name: "fashion-mnist-example".into(),
        paths: vec!["built-in:fashion-mnist".into()],
        dtype: "f32".into(),
        key: "latents".into(),
        sha256: data::digest(&latents, Some(&labels), Some(&masks)),
        example: true,
    };
    Ok(Dataset {
        latents,
        labels: Some(labels),
        masks: Some(masks),
        source,
    })
}

/// The raw example images (`2000 x 28 x 28` bytes, row-major) and labels (`2000` bytes), as committed.
pub fn raw() -> (&'static [u8], &'static [u8]) {
    (IMAGES, LABELS)
}
