//! RMSC, RMS spatial contrast [ref: End2End-Diffusion/iREPA `metrics/spatial_metrics.py`,
//! `metric_rmsc`]: per image, `sqrt(mean_i ||u_i - mean_j u_j||^2)` of the unit tokens; averaged over
//! images. Opt-in: the study excludes it (it measures the diversity of tokens, not their layout).

/// RMSC of one image from its unit tokens `u` (channel-major, `c*s` values), in f64. `O(c s)`.
/// Computed from the centred tokens directly rather than from `G`, which would cancel when the tokens
/// are nearly equal.
pub fn rmsc_image(u: &[f32], c: usize, s: usize) -> f64 {
    let mut ms = 0.0;
    for ch in u.chunks_exact(s).take(c) {
        let mean = ch.iter().map(|&v| v as f64).sum::<f64>() / s as f64;
        ms += ch.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>();
    }
    (ms / s as f64).sqrt()
}
