//! `diffusability synth`: a seeded synthetic latent set with known ground truth.

use crate::Failure;
use crate::args::SynthArgs;
use crate::output;
use diffusability::synth::{SynthConfig, generate};

pub fn run(a: SynthArgs) -> Result<(), Failure> {
    let cfg = SynthConfig {
        classes: a.classes,
        per_class: a.per_class,
        channels: a.channels,
        height: a.height,
        width: a.width,
        corr_len: a.corr_len,
        within_scale: a.within_scale,
        anisotropy: a.anisotropy,
        class_sep: a.class_sep,
        mask_factor: a.mask_factor,
        seed: a.seed,
    };
    let s = generate(&cfg)?;
    s.write(std::path::Path::new(&a.output))?;
    let t = s.truth();
    output::stdout(&format!(
        "wrote {}: {} latents of shape ({}, {}, {}), {} classes{}\n\
         true_viv: {}\ntrue_viv_per_dim: {}\ntrue_total_variance: {}\ntrue_anisotropy: {}\n\
         (ground truth of the raw latents: compare with --normalize none)\n",
        a.output,
        cfg.n(),
        cfg.channels,
        cfg.height,
        cfg.width,
        cfg.classes,
        cfg.mask_shape()
            .map_or(String::new(), |(h, w)| format!(", masks {h}x{w}")),
        t.viv,
        t.viv_per_dim,
        t.total_variance,
        t.anisotropy
    ))?;
    Ok(())
}
