//! Metrics: their metadata, parameters, and the machinery that resolves a selection and runs it.
//!
//! Metrics come in families that share one computation (the VIV fit yields `viv`, `viv_per_dim`, ...).
//! [`registry`] holds the one list of families; the CLI flags, `--metrics` resolution, the report's
//! `params` and the Python keyword arguments are all derived from it.

pub mod continuity;
pub mod equivariance;
pub mod fd;
pub mod params;
pub mod registry;
pub mod run;
pub mod separability;
pub mod smoothness;
pub mod spatial;
pub mod uniformity;
pub mod viv;

pub use params::{ParamKind, ParamSpec, ParamValue, Params};
pub use run::{RunOptions, Selection, run};

use crate::data::{Dataset, Normalized};
use crate::error::Result;
use crate::par::Threads;
use crate::progress::Progress;
use serde::Serialize;

/// The seven perspectives of the study.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Perspective {
    VelocityAmbiguity,
    SemanticSeparability,
    SpatialStructure,
    LatentSmoothness,
    LatentUniformity,
    AffineEquivariance,
    ManifoldContinuity,
}

impl Perspective {
    pub fn as_str(&self) -> &'static str {
        match self {
            Perspective::VelocityAmbiguity => "velocity ambiguity",
            Perspective::SemanticSeparability => "semantic separability",
            Perspective::SpatialStructure => "spatial structure",
            Perspective::LatentSmoothness => "latent smoothness",
            Perspective::LatentUniformity => "latent uniformity",
            Perspective::AffineEquivariance => "affine equivariance",
            Perspective::ManifoldContinuity => "manifold continuity",
        }
    }
}

/// What a family needs beyond latents.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Needs {
    pub labels: bool,
    pub masks: bool,
}

/// One key of the report's `metrics`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MetricInfo {
    pub name: &'static str,
    pub perspective: Perspective,
    pub higher_is_better: bool,
    /// Computed only when asked for by name or by `all`.
    pub opt_in: bool,
    /// One line: what it measures, with its reference.
    pub help: &'static str,
}

/// Metrics computed together, with the parameters they share.
pub struct Family {
    pub name: &'static str,
    pub needs: Needs,
    pub metrics: &'static [MetricInfo],
    pub params: &'static [ParamSpec],
    pub compute: fn(&Context<'_>, &Params) -> Result<Output>,
}

/// What a family computation sees.
pub struct Context<'a> {
    pub data: &'a Dataset,
    /// The latents after the report's normalization.
    pub z: Normalized<'a>,
    pub seed: u64,
    pub threads: Threads,
    pub progress: &'a dyn Progress,
    /// The keys of this family that were asked for; a family may skip work for the others.
    pub wanted: &'a [&'static str],
}

impl Context<'_> {
    pub fn wants(&self, key: &str) -> bool {
        self.wanted.contains(&key)
    }
}

/// What a family computation returns.
#[derive(Debug, Default)]
pub struct Output {
    /// Finite values only; a key that could not be computed is left out and a warning says why.
    pub metrics: Vec<(&'static str, f64)>,
    /// Extra structured results, keyed by metric or family name.
    pub details: serde_json::Map<String, serde_json::Value>,
    pub warnings: Vec<String>,
}
