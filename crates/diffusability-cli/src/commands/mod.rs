//! One module per subcommand.

pub mod list;
pub mod metrics;
pub mod study;
pub mod synth;
