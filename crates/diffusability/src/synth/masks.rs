//! Foreground masks for synthetic latents: one seeded ellipse per image.

use rand::Rng;
use std::f64::consts::PI;

/// Bounds of the ellipse's target area, as a fraction of the image.
pub const AREA_RANGE: (f64, f64) = (0.3, 0.6);

/// Largest semi-axis, as a fraction of the image side, so the ellipse stays inside the image.
const MAX_SEMI_AXIS: f64 = 0.48;

/// Writes one `mh x mw` mask (row-major, 1 = foreground) into `out`: an axis-aligned ellipse in
/// normalized image coordinates (`[0, 1]` on both axes, pixel centres at `(i + 0.5) / n`).
///
/// Draws, in order: the target area fraction `f ~ U(0.3, 0.6)`, an aspect parameter `u ~ U(-0.3, 0.3)`
/// giving semi-axes `ax = sqrt(f/pi) e^u`, `ay = sqrt(f/pi) e^-u` (each capped at 0.48 of the side, which
/// shrinks the most elongated large ellipses below `f`), and a centre uniform over the positions where
/// the ellipse lies inside the image. The foreground fraction is thus about 0.3 to 0.6 (up to the pixel
/// discretization on small grids).
pub fn ellipse(rng: &mut impl Rng, mh: usize, mw: usize, out: &mut [u8]) {
    let f = rng.random_range(AREA_RANGE.0..AREA_RANGE.1);
    let u = rng.random_range(-0.3..0.3f64);
    let r = (f / PI).sqrt();
    let ax = (r * u.exp()).min(MAX_SEMI_AXIS);
    let ay = (r * (-u).exp()).min(MAX_SEMI_AXIS);
    let cx = rng.random_range(ax..1.0 - ax);
    let cy = rng.random_range(ay..1.0 - ay);
    for y in 0..mh {
        let ny = ((y as f64 + 0.5) / mh as f64 - cy) / ay;
        for x in 0..mw {
            let nx = ((x as f64 + 0.5) / mw as f64 - cx) / ax;
            out[y * mw + x] = u8::from(nx * nx + ny * ny <= 1.0);
        }
    }
}
