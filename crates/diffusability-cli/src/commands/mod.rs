//! One module per subcommand.

pub mod list;
pub mod metrics;
pub mod synth;
pub mod trajectory;
