//! Command-line arguments, in two stages: clap parses the words, then `resolve` turns them into
//! validated library values before any data is read, so a typo fails in milliseconds, not after loading.
//!
//! The per-metric flags (`--lnc-k`, `--viv-ridge`, ...) are generated from the library's metric registry,
//! so a new metric parameter is a flag without touching this file.

use crate::commands::equivariance::EquivarianceArgs;
use crate::commands::fd::FdArgs;
use crate::commands::interpolate::InterpolateArgs;
use clap::{Arg, ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use diffusability::data::Normalize;
use diffusability::metrics::{Params, Selection, registry};
use diffusability::par::Threads;
use diffusability::{Error, Result};

use crate::commands::trajectory::TrajectoryArgs;

#[derive(Parser, Debug)]
#[command(
    name = "diffusability",
    version,
    about = "How diffusion-friendly is a latent space? Proxy metrics of latent diffusability (arXiv 2606.03578)."
)]
struct Cli {
    #[command(subcommand)]
    command: Sub,
}

#[derive(Subcommand, Debug)]
enum Sub {
    /// The report of one latent set (the built-in Fashion-MNIST example when INPUT is omitted)
    Metrics(MetricsArgs),
    /// Write a seeded synthetic latent set with known ground truth
    Synth(SynthArgs),
    /// Which metric predicts generation quality: correlations, perspective ranking, two-metric fits,
    /// figures
    Study(crate::commands::study::StudyArgs),
    /// Affine equivariance: latents of transformed images against transformed latents
    Equivariance(EquivarianceArgs),
    /// iFID's latents: slerp every query towards a reference drawn among its top-K cosine neighbours
    Interpolate(InterpolateArgs),
    /// Fréchet distance of two feature sets or mu/sigma statistics files; --save-stats writes one
    Fd(FdArgs),
    /// Straightness, efficiency and length ratio of recorded ODE sampling trajectories, with the V(t)
    /// overlay and the ideal ODE of the latents' Gaussian model
    Trajectory(TrajectoryArgs),
    /// List every metric: perspective, direction, needs, default set, parameters
    List {
        /// As the Markdown table of README.md
        #[arg(long)]
        markdown: bool,
    },
}

/// Options shared by commands that read latents and compute metrics.
#[derive(Args, Debug, Clone)]
pub struct MetricsArgs {
    /// Latents: .npy, .npz or .safetensors file, a directory of shards, or a glob of shards.
    /// Omitted: run on the built-in example.
    pub input: Option<String>,
    /// Labels file (.npy, or .npz/.safetensors with key `labels`)
    #[arg(long, value_name = "FILE")]
    pub labels: Option<String>,
    /// Foreground masks file (.npy, or .npz/.safetensors with key `masks`), any dtype, nonzero = foreground
    #[arg(long, value_name = "FILE")]
    pub masks: Option<String>,
    /// Key of the latents inside .npz/.safetensors files
    #[arg(long, default_value = "latents")]
    pub key: String,
    /// Name of the latent set in the report (default: the file stem)
    #[arg(long)]
    pub name: Option<String>,
    /// `default`, `all`, or a comma-separated list of metric names
    #[arg(long, default_value = "default", value_name = "LIST")]
    pub metrics: String,
    /// channel | global | none | scale:F | stats:FILE
    #[arg(long, default_value = "channel", value_name = "MODE")]
    pub normalize: String,
    /// Seed of every random draw
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Worker threads (default: all cores); results do not depend on it
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print the JSON report instead of `name: value` lines
    #[arg(long)]
    pub json: bool,
    /// Also write the JSON report to FILE
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<String>,
    /// No progress bars or warnings on stderr
    #[arg(short, long)]
    pub quiet: bool,
    /// Parameter values given as flags, by registry name (filled from the generated flags).
    #[arg(skip)]
    pub params: Params,
}

#[derive(Args, Debug, Clone)]
pub struct SynthArgs {
    /// Number of classes
    #[arg(long, default_value_t = 10)]
    pub classes: usize,
    /// Samples per class
    #[arg(long, default_value_t = 100)]
    pub per_class: usize,
    /// Latent channels C
    #[arg(long, default_value_t = 8)]
    pub channels: usize,
    /// Latent grid height H
    #[arg(long, default_value_t = 16)]
    pub height: usize,
    /// Latent grid width W
    #[arg(long, default_value_t = 16)]
    pub width: usize,
    /// Spatial correlation length in tokens (0 = white)
    #[arg(long, default_value_t = 2.0)]
    pub corr_len: f64,
    /// Scale (std) of the within-class covariance
    #[arg(long, default_value_t = 1.0)]
    pub within_scale: f64,
    /// Channel spectrum decay exponent (0 = isotropic)
    #[arg(long, default_value_t = 1.0)]
    pub anisotropy: f64,
    /// Std of the class means
    #[arg(long, default_value_t = 1.0)]
    pub class_sep: f64,
    /// Mask resolution as a multiple of the latent grid (0 = no masks)
    #[arg(long, default_value_t = 2)]
    pub mask_factor: usize,
    /// Seed
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output .npz file
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: String,
}

pub enum Command {
    Metrics(MetricsArgs),
    Synth(SynthArgs),
    Study(crate::commands::study::StudyArgs),
    Equivariance(EquivarianceArgs),
    Interpolate(InterpolateArgs),
    Fd(FdArgs),
    Trajectory(TrajectoryArgs),
    List { markdown: bool },
}

/// The clap command with the registry's parameter flags added to `metrics`.
pub fn command() -> clap::Command {
    Cli::command().mut_subcommand("metrics", |mut c| {
        for p in registry::params() {
            let flag = p.name.replace('_', "-");
            let default = p.default_value().to_json();
            let help = format!(
                "{} [default: {}]",
                p.help,
                if default.is_null() {
                    "none".into()
                } else {
                    default.to_string()
                }
            );
            c = c.arg(
                Arg::new(p.name)
                    .long(flag)
                    .value_name("VALUE")
                    .help(help)
                    .help_heading("Metric parameters"),
            );
        }
        c
    })
}

/// Parses the process arguments. clap prints help/version and usage errors itself (exit 0 / 2).
pub fn parse() -> Result<Command> {
    let matches = command().get_matches();
    from_matches(&matches)
}

fn from_matches(matches: &ArgMatches) -> Result<Command> {
    let cli = Cli::from_arg_matches(matches).map_err(|e| Error::usage(e.to_string()))?;
    match cli.command {
        Sub::Metrics(mut a) => {
            if let Some(("metrics", sub)) = matches.subcommand() {
                for p in registry::params() {
                    if let Some(text) = sub.get_one::<String>(p.name) {
                        a.params.0.insert(p.name, p.parse(text)?);
                    }
                }
            }
            Ok(Command::Metrics(a))
        }
        Sub::Synth(a) => Ok(Command::Synth(a)),
        Sub::Study(a) => Ok(Command::Study(a)),
        Sub::Equivariance(a) => Ok(Command::Equivariance(a)),
        Sub::Interpolate(a) => Ok(Command::Interpolate(a)),
        Sub::Fd(a) => Ok(Command::Fd(a)),
        Sub::Trajectory(a) => Ok(Command::Trajectory(a)),
        Sub::List { markdown } => Ok(Command::List { markdown }),
    }
}

/// The validated options of `metrics`.
pub struct Resolved {
    pub selection: Selection,
    pub normalize: Normalize,
    pub threads: Threads,
}

/// Validates everything that does not need the data.
pub fn resolve(a: &MetricsArgs) -> Result<Resolved> {
    let selection: Selection = a.metrics.parse()?;
    let normalize: Normalize = a.normalize.parse()?;
    let threads = match a.threads {
        Some(0) => return Err(Error::usage("--threads: expected at least 1, found 0")),
        Some(n) => Threads(n),
        None => Threads::available(),
    };
    Ok(Resolved {
        selection,
        normalize,
        threads,
    })
}
