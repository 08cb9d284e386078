//! Progress reporting as a value passed in by the entry point; the library never prints.

/// Receives progress of long computations. The CLI draws bars on stderr; the default does nothing.
pub trait Progress: Sync {
    /// A new stage of `total` steps begins.
    fn begin(&self, _label: &str, _total: u64) {}
    /// `n` more steps of the current stage are done.
    fn advance(&self, _n: u64) {}
    /// The current stage is finished.
    fn end(&self) {}
}

/// Reports nothing.
pub struct Silent;

impl Progress for Silent {}
