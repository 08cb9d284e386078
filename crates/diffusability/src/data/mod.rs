//! In-memory data model: latents, labels, masks, normalization, and the data set that bundles them.

pub mod labels;
pub mod latents;
pub mod masks;
pub mod normalize;

pub use labels::Labels;
pub use latents::{Latents, Segment, Shape};
pub use masks::Masks;
pub use normalize::{Affine, Normalize, Normalized};

use serde::Serialize;

/// Where a data set came from: the `input` block of the report.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Source {
    /// A display name (the file stem of a single input, or set by the user).
    pub name: String,
    pub paths: Vec<String>,
    /// Dtype of the latents as stored: f16, bf16, f32 or f64.
    pub dtype: String,
    /// The latents key that was read.
    pub key: String,
    /// SHA-256 over the latent values as f32 little-endian, then labels (i64 LE), then mask flags,
    /// so the same data in any container or sharding has the same digest.
    pub sha256: String,
    /// True for the built-in example.
    pub example: bool,
}

/// Everything one report is computed from.
#[derive(Clone, Debug)]
pub struct Dataset {
    pub latents: Latents,
    pub labels: Option<Labels>,
    pub masks: Option<Masks>,
    pub source: Source,
}
