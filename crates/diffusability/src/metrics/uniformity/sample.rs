//! Sampling latent pixel vectors: `n` of the `N * H * W` (image, position) pairs, uniformly without
//! replacement, each giving the `C` normalized channel values at that position.

use crate::data::Normalized;
use crate::par;
use rand::Rng;

/// Pairs per chunk of the gather pass.
const CHUNK: usize = 256;

/// `n` distinct indices of `0..total` drawn uniformly without replacement (`rand::seq::index::sample`),
/// sorted ascending so that the images are read in order. `n > total` gives all of them.
pub fn pick(total: usize, n: usize, rng: &mut impl Rng) -> Vec<usize> {
    if n >= total {
        return (0..total).collect();
    }
    let mut idx = rand::seq::index::sample(rng, total, n).into_vec();
    idx.sort_unstable();
    idx
}

/// The normalized `C`-vectors of the pairs `picks` (flat index `image * H * W + position`, sorted), as
/// an `n x C` row-major f64 matrix. Reads each image that holds a pick once per chunk.
pub fn gather(z: &Normalized<'_>, picks: &[usize]) -> Vec<f64> {
    let sh = z.shape();
    let (c, s) = (sh.c, sh.s());
    par::map_reduce(
        picks.len(),
        CHUNK,
        |r| {
            let mut out = Vec::with_capacity(r.len() * c);
            let mut buf = vec![0.0f32; sh.d()];
            let mut loaded = usize::MAX;
            for &t in &picks[r] {
                let (img, pos) = (t / s, t % s);
                if img != loaded {
                    z.sample_into(img, &mut buf);
                    loaded = img;
                }
                out.extend((0..c).map(|ch| buf[ch * s + pos] as f64));
            }
            out
        },
        |mut a, b| {
            a.extend(b);
            a
        },
    )
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Affine, Latents};
    use crate::stats::rng::stream;

    #[test]
    fn picks_are_distinct_sorted_and_seeded() {
        let a = pick(1000, 100, &mut stream(0, "uniformity-0"));
        let b = pick(1000, 100, &mut stream(0, "uniformity-0"));
        let c = pick(1000, 100, &mut stream(0, "uniformity-1"));
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(a.windows(2).all(|w| w[0] < w[1]) && *a.last().unwrap() < 1000);
        assert_eq!(
            pick(10, 20, &mut stream(0, "x")),
            (0..10).collect::<Vec<_>>()
        );
    }

    #[test]
    fn gathers_channel_vectors_at_positions() {
        // 3 images, 2 channels, 2 x 2 grid: value = 100 img + 10 ch + pos.
        let data: Vec<f32> = (0..3)
            .flat_map(|i| {
                (0..2).flat_map(move |ch| (0..4).map(move |p| (100 * i + 10 * ch + p) as f32))
            })
            .collect();
        let lat = Latents::from_vec(2, 2, 2, data);
        let aff = Affine::identity(2);
        let z = Normalized {
            latents: &lat,
            affine: &aff,
        };
        let x = gather(&z, &[1, 4, 11]);
        assert_eq!(x, vec![1.0, 11.0, 100.0, 110.0, 203.0, 213.0]);
    }
}
