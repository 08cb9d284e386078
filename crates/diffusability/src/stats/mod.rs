//! Statistics building blocks shared by metrics.

pub mod dct;
pub mod rng;
