//! Parallelism as a value, and deterministic chunked map-reduce.
//!
//! Results must not depend on the thread count, so work is cut into chunks whose boundaries depend only
//! on the problem size, each chunk is reduced on its own, and the partial results are merged
//! sequentially in chunk order.

use crate::error::{Error, Result};
use rayon::prelude::*;
use std::ops::Range;

/// Number of worker threads for one computation; passed in from the entry point, never global.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Threads(pub usize);

impl Threads {
    /// The machine's available parallelism (at least 1).
    pub fn available() -> Threads {
        Threads(std::thread::available_parallelism().map_or(1, |n| n.get()))
    }

    /// Runs `f` inside a rayon pool of this many threads.
    pub fn install<T: Send>(self, f: impl FnOnce() -> T + Send) -> Result<T> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(self.0.max(1))
            .build()
            .map_err(|e| Error::internal(format!("cannot start {} worker threads: {e}", self.0)))?;
        Ok(pool.install(f))
    }
}

/// The fixed chunk ranges covering `0..n`, `chunk` items each (the last may be shorter).
pub fn chunks(n: usize, chunk: usize) -> Vec<Range<usize>> {
    let chunk = chunk.max(1);
    (0..n.div_ceil(chunk))
        .map(|i| i * chunk..((i + 1) * chunk).min(n))
        .collect()
}

/// Maps every chunk of `0..n` in parallel, then folds the partials in chunk order with `merge`.
/// Deterministic for any thread count because chunking depends only on `n` and `chunk`.
pub fn map_reduce<T, M, R>(n: usize, chunk: usize, map: M, merge: R) -> Option<T>
where
    T: Send,
    M: Fn(Range<usize>) -> T + Sync + Send,
    R: Fn(T, T) -> T,
{
    let parts: Vec<T> = chunks(n, chunk).into_par_iter().map(&map).collect();
    parts.into_iter().reduce(merge)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_range_exactly() {
        let c = chunks(10, 4);
        assert_eq!(c, vec![0..4, 4..8, 8..10]);
        assert!(chunks(0, 4).is_empty());
    }

    #[test]
    fn map_reduce_is_thread_independent() {
        let xs: Vec<f64> = (0..10_000)
            .map(|i| ((i as f64) * 0.37).sin() * 1e-3)
            .collect();
        let run = |t: usize| {
            Threads(t)
                .install(|| map_reduce(xs.len(), 97, |r| xs[r].iter().sum::<f64>(), |a, b| a + b))
                .unwrap()
                .unwrap()
        };
        assert_eq!(run(1).to_bits(), run(3).to_bits());
    }
}
