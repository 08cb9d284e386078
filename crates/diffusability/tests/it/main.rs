//! The library's integration tests: oracle comparisons, closed forms, invariants, bad inputs.

mod common;
mod smoothness;
mod spatial;
