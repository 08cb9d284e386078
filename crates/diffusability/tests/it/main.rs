//! The library's integration tests: oracle comparisons, closed forms, invariants, bad inputs.

mod common;
mod continuity;
mod equivariance;
mod example;
mod fd;
mod io;
mod separability;
mod smoothness;
mod spatial;
mod study;
mod synth;
mod trajectory;
mod uniformity;
mod viv;
