//! The library's integration tests: oracle comparisons, closed forms, invariants, bad inputs.

mod common;
mod example;
mod io;
mod synth;
mod uniformity;
