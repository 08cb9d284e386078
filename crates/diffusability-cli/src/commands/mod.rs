//! One module per subcommand.

pub mod metrics;
pub mod synth;
pub mod list;
