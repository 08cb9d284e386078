//! Statistics building blocks shared by metrics.

pub mod dct;
pub mod knn;
pub mod rng;
