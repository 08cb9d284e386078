//! One module per subcommand.

pub mod equivariance;
pub mod fd;
pub mod interpolate;
pub mod list;
pub mod metrics;
pub mod study;
pub mod synth;
pub mod trajectory;
