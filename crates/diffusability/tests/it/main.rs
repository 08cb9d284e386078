//! The library's integration tests: oracle comparisons, closed forms, invariants, bad inputs.

mod common;
mod continuity;
mod equivariance;
mod example;
mod fd;
mod io;
mod synth;
