//! One error type for the whole library. Every message names the file and key involved and says what
//! was expected and what was found, so that a user can fix the input without reading code.

use std::fmt;
use std::path::Path;

/// What went wrong, which decides the exit code at the entry point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The input data is unusable (wrong shape, NaN, count mismatch, unreadable file, ...): exit code 2.
    Input,
    /// A file or directory that does not exist: exit code 2 (`FileNotFoundError` in Python).
    NotFound,
    /// A parameter or option is invalid: exit code 2.
    Usage,
    /// A bug or an environment failure (cannot write, out of memory, ...): exit code 1.
    Internal,
}

/// An error with a complete, user-facing message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
}

pub type Result<T> = std::result::Result<T, Error>;

/// How a file (and optionally a key inside it) is named in messages: `val.npz: key `labels``.
pub fn location(path: &str, key: Option<&str>) -> String {
    match key {
        Some(k) => format!("{path}: key `{k}`"),
        None => path.to_string(),
    }
}

impl Error {
    /// Bad input data in `path` (under `key`, if the file holds several arrays); `what` says what was
    /// expected and what was found, e.g. "has 49999 entries, expected 50000 (one per latent)".
    pub fn input(path: impl AsRef<Path>, key: Option<&str>, what: impl fmt::Display) -> Error {
        let p = path.as_ref().display().to_string();
        Error {
            kind: ErrorKind::Input,
            message: format!("{}: {what}", location(&p, key)),
        }
    }

    /// Bad input not tied to one file (e.g. an empty selection across shards).
    pub fn input_msg(message: impl Into<String>) -> Error {
        Error {
            kind: ErrorKind::Input,
            message: message.into(),
        }
    }

    pub fn not_found(path: impl AsRef<Path>, what: &str) -> Error {
        Error {
            kind: ErrorKind::NotFound,
            message: format!("{}: {what} not found", path.as_ref().display()),
        }
    }

    pub fn usage(message: impl Into<String>) -> Error {
        Error {
            kind: ErrorKind::Usage,
            message: message.into(),
        }
    }

    pub fn internal(message: impl Into<String>) -> Error {
        Error {
            kind: ErrorKind::Internal,
            message: message.into(),
        }
    }

    /// The process exit code for this error: 2 for anything the user can fix, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self.kind {
            ErrorKind::Input | ErrorKind::NotFound | ErrorKind::Usage => 2,
            ErrorKind::Internal => 1,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}
