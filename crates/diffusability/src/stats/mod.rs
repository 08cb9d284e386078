//! Statistics building blocks shared by metrics.

pub mod rng;
