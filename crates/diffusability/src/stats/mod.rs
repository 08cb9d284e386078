//! Statistics building blocks shared by metrics.

pub mod knn;
pub mod rng;
