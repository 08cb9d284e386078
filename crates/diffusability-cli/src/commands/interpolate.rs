//! `diffusability interpolate`: iFID's latents. Each query is slerped towards a reference drawn among
//! its top-K cosine neighbours; the user decodes the result and computes `fd` on image features.

use crate::Failure;
use crate::commands::fd::{check_output, num, pretty, threads};
use crate::output;
use diffusability::io::{self, InputSpec, RawArray};
use diffusability::metrics::continuity::{InterpolateParams, interpolate};
use std::path::Path;

#[derive(clap::Args, Debug, Clone)]
pub struct InterpolateArgs {
    /// Query latents (N, C, H, W), e.g. of the validation images
    #[arg(long, value_name = "FILE")]
    pub query: String,
    /// Reference latents (M, C, H, W) to draw neighbours from, e.g. of training images
    #[arg(long, value_name = "FILE")]
    pub reference: String,
    /// Neighbour candidates per query (top-K by cosine similarity)
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    /// Interpolation weight towards the neighbour, in [0, 1]
    #[arg(long, default_value_t = 0.5)]
    pub alpha: f64,
    /// Seed of the neighbour draws
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Key of the latents inside .npz/.safetensors files (default: `latents`, or the only array)
    #[arg(long)]
    pub key: Option<String>,
    /// Output .npy (f32, the shape of the queries); the chosen reference index of every query goes
    /// to OUT.neighbours.npy (i64)
    #[arg(short = 'o', long = "output", value_name = "OUT.npy")]
    pub output: String,
    /// Print a JSON object instead of text
    #[arg(long)]
    pub json: bool,
    /// Worker threads (default: all cores); results do not depend on it
    #[arg(long)]
    pub threads: Option<usize>,
    /// No warnings on stderr
    #[arg(short, long)]
    pub quiet: bool,
}

pub fn run(a: InterpolateArgs) -> Result<(), Failure> {
    let p = InterpolateParams {
        top: a.top,
        alpha: a.alpha,
        seed: a.seed,
    };
    p.validate()?;
    let threads = threads(a.threads)?;
    check_output("-o", &a.output, "npy")?;
    let neighbours_path = format!("{}.neighbours.npy", &a.output[..a.output.len() - 4]);
    let spec = |path: &str| InputSpec {
        path: path.to_string(),
        key: a.key.clone(),
        ..Default::default()
    };
    let (q, r) = threads.install(|| {
        let q = io::load(&spec(&a.query))?;
        let r = io::load(&spec(&a.reference))?;
        let r = interpolate(&q.latents, &r.latents, &a.reference, &p)?;
        Ok::<_, diffusability::Error>((q, r))
    })??;
    let sh = q.latents.shape();
    let shape = vec![sh.n, sh.c, sh.h, sh.w];
    io::write_npy(
        Path::new(&a.output),
        &RawArray::f32(shape.clone(), r.latents),
    )?;
    io::write_npy(
        Path::new(&neighbours_path),
        &RawArray::i64(vec![sh.n], r.neighbour.iter().map(|&j| j as i64).collect()),
    )?;
    let mut warnings = Vec::new();
    if r.linear_fallbacks > 0 {
        warnings.push(format!(
            "interpolate: {} of {} queries are parallel to their neighbour (sin theta < 1e-6); \
             they were interpolated linearly",
            r.linear_fallbacks, sh.n
        ));
    }
    if !a.quiet {
        for w in &warnings {
            output::stderr_line(&format!("warning: {w}"));
        }
    }
    if a.json {
        let j = serde_json::json!({
            "output": a.output,
            "neighbours_file": neighbours_path,
            "shape": shape,
            "top": p.top,
            "alpha": p.alpha,
            "seed": p.seed,
            "mean_entropy": r.mean_entropy,
            "linear_fallbacks": r.linear_fallbacks,
            "warnings": warnings,
        });
        output::stdout(&format!("{}\n", pretty(&j)?))?;
    } else {
        output::stdout(&format!(
            "wrote {}: {} interpolated latents of shape ({}, {}, {}), alpha {}, top {}, seed {}\n\
             wrote {}: the chosen reference index of every query\n\
             mean_entropy: {}\n",
            a.output,
            sh.n,
            sh.c,
            sh.h,
            sh.w,
            p.alpha,
            p.top,
            p.seed,
            neighbours_path,
            num(r.mean_entropy)
        ))?;
    }
    Ok(())
}
