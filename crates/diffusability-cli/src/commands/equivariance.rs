//! `diffusability equivariance`: how close the latents of transformed images are to the transformed
//! latents (equiv_rel_err, equiv_cos).

use crate::Failure;
use crate::commands::fd::{num, pretty, threads};
use crate::output;
use diffusability::data::{Affine, Normalize};
use diffusability::io::{self, InputSpec};
use diffusability::metrics::equivariance::{Transform, equivariance};

#[derive(clap::Args, Debug, Clone)]
pub struct EquivarianceArgs {
    /// Latents Z (N, C, H, W) of the images: .npy, .npz, .safetensors, a directory or glob of shards
    #[arg(long, value_name = "FILE")]
    pub latents: String,
    /// Latents of the transformed images, in the same order, shaped as the transform of Z
    #[arg(long, value_name = "FILE")]
    pub transformed: String,
    /// rot90:K (counter-clockwise, as torch.rot90) | flip (horizontal) | scale:S (bilinear,
    /// align_corners=False)
    #[arg(long, value_name = "T")]
    pub transform: String,
    /// channel | global | none | scale:F | stats:FILE, fitted on --latents and applied to both
    #[arg(long, default_value = "channel", value_name = "MODE")]
    pub normalize: String,
    /// Key of the latents inside .npz/.safetensors files (default: `latents`, or the only array)
    #[arg(long)]
    pub key: Option<String>,
    /// Print a JSON object instead of `name: value` lines
    #[arg(long)]
    pub json: bool,
    /// Worker threads (default: all cores); results do not depend on it
    #[arg(long)]
    pub threads: Option<usize>,
    /// No warnings on stderr
    #[arg(short, long)]
    pub quiet: bool,
}

pub fn run(a: EquivarianceArgs) -> Result<(), Failure> {
    let t: Transform = a.transform.parse()?;
    let mode: Normalize = a.normalize.parse()?;
    let threads = threads(a.threads)?;
    let stats = match &mode {
        Normalize::Stats(p) => Some(io::read_stats(p)?),
        _ => None,
    };
    let spec = |path: &str| InputSpec {
        path: path.to_string(),
        key: a.key.clone(),
        ..Default::default()
    };
    let (r, warnings) = threads.install(|| {
        let z = io::load(&spec(&a.latents))?;
        let sh = z.latents.shape();
        // The expected grid is known before the second file is read.
        t.output_hw(sh.h, sh.w)?;
        let zt = io::load(&spec(&a.transformed))?;
        let (affine, warnings) = Affine::fit(&mode, &z.latents, stats)?;
        let r = equivariance(&z.latents, &zt.latents, &a.transformed, &t, &affine)?;
        Ok::<_, diffusability::Error>((r, warnings))
    })??;
    let mut warnings = warnings;
    warnings.extend(r.skipped_warning());
    if !a.quiet {
        for w in &warnings {
            output::stderr_line(&format!("warning: {w}"));
        }
    }
    if a.json {
        let mut j = r.to_json(&t, &mode);
        j.insert("latents".into(), a.latents.clone().into());
        j.insert("transformed".into(), a.transformed.clone().into());
        j.insert("warnings".into(), warnings.into());
        let j = serde_json::Value::Object(j);
        output::stdout(&format!("{}\n", pretty(&j)?))?;
    } else {
        output::stdout(&format!(
            "equiv_rel_err: {}\nequiv_cos: {}\n",
            num(r.equiv_rel_err),
            num(r.equiv_cos)
        ))?;
    }
    Ok(())
}
