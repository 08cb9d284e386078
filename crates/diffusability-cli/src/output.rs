//! Writing to stdout and stderr without panicking: a closed pipe (`| head`) ends the program cleanly.

use std::io::Write;

/// Why output stopped.
pub enum OutputError {
    /// The reader went away: exit quietly with success.
    BrokenPipe,
    /// Any other write failure.
    Other(String),
}

/// Writes `text` to stdout and flushes.
pub fn stdout(text: &str) -> Result<(), OutputError> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|_| out.flush())
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::BrokenPipe => OutputError::BrokenPipe,
            _ => OutputError::Other(format!("cannot write to stdout: {e}")),
        })
}

/// Writes one line to stderr; failures are ignored (there is nowhere left to report them).
pub fn stderr_line(text: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{text}");
}
