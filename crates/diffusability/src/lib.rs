//! # diffusability
//!
//! Proxy metrics of latent diffusability (arXiv 2606.03578): how easy a tokenizer's latent space is for a
//! diffusion model to learn, computed from validation-set latents.
//!
//! The library computes every number; the command line and the Python package only convert inputs and
//! outputs. Entry points: [`io::load`] reads a data set, [`metrics::run`] computes a report.

pub mod data;
pub mod error;
pub mod example;
pub mod io;
pub mod linalg;
pub mod metrics;
pub mod par;
pub mod progress;
pub mod report;
mod simd;
pub mod stats;
pub mod study;
pub mod synth;
pub mod trajectory;

pub use error::{Error, ErrorKind, Result};

/// The library version, as reported in `tool.version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
