//! One input file of any supported format, seen as a set of named arrays.

use super::npz::Npz;
use super::safetensors::SafetensorsFile;
use super::stored::{Layout, Stored};
use crate::error::{Error, Result};
use memmap2::Mmap;
use std::fs::File;
use std::path::Path;

/// The supported formats, by file extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Npy,
    Npz,
    Safetensors,
}

impl Format {
    pub fn of(path: &str) -> Option<Format> {
        let ext = Path::new(path).extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "npy" => Some(Format::Npy),
            "npz" => Some(Format::Npz),
            "safetensors" => Some(Format::Safetensors),
            _ => None,
        }
    }
}

/// Opens a file for reading: NotFound if it does not exist.
pub fn open_file(path: &str) -> Result<File> {
    File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::not_found(path, "file"),
        _ => Error::input(path, None, format!("cannot read: {e}")),
    })
}

/// Memory-maps a whole file.
pub fn map_file(path: &str) -> Result<Mmap> {
    let f = open_file(path)?;
    if f.metadata().map(|m| m.is_dir()).unwrap_or(false) {
        return Err(Error::input(
            path,
            None,
            "expected a file, found a directory",
        ));
    }
    // SAFETY: the map is read-only. If another process truncates or rewrites the file while we read
    // it the values we see may change (or the process may get SIGBUS), as with numpy's mmap_mode='r';
    // this is the documented cost of not copying large inputs.
    unsafe { Mmap::map(&f) }.map_err(|e| Error::input(path, None, format!("cannot read: {e}")))
}

/// An open input file.
pub enum Container {
    /// A `.npy` file: one unnamed array.
    Npy(Option<Stored>),
    Npz(Npz),
    Safetensors(SafetensorsFile),
}

impl Container {
    pub fn open(path: &str) -> Result<Container> {
        match Format::of(path) {
            Some(Format::Npy) => Ok(Container::Npy(Some(super::npy::open(path)?))),
            Some(Format::Npz) => Ok(Container::Npz(Npz::open(path)?)),
            Some(Format::Safetensors) => Ok(Container::Safetensors(SafetensorsFile::open(path)?)),
            None => {
                // Fail on a missing file before complaining about its name.
                open_file(path)?;
                let ext = Path::new(path)
                    .extension()
                    .map(|e| format!("`.{}`", e.to_string_lossy()))
                    .unwrap_or_else(|| "(none)".into());
                Err(Error::input(
                    path,
                    None,
                    format!("unsupported file type {ext}; expected .npy, .npz or .safetensors"),
                ))
            }
        }
    }

    /// The keys of the arrays in the file, sorted; empty for `.npy`.
    pub fn keys(&self) -> Vec<String> {
        match self {
            Container::Npy(_) => Vec::new(),
            Container::Npz(z) => z.keys().to_vec(),
            Container::Safetensors(s) => s.keys(),
        }
    }

    pub fn is_npy(&self) -> bool {
        matches!(self, Container::Npy(_))
    }

    pub fn has(&self, key: &str) -> bool {
        self.keys().iter().any(|k| k == key)
    }

    /// The layout of array `key` (None for a `.npy` file's array), without reading its data.
    pub fn layout(&mut self, key: Option<&str>) -> Result<Layout> {
        match (self, key) {
            (Container::Npy(Some(s)), _) => Ok(s.layout.clone()),
            (Container::Npz(z), Some(k)) => z.layout(k),
            (Container::Safetensors(s), Some(k)) => s.layout(k),
            _ => Err(Error::internal("layout of an array that was already taken")),
        }
    }

    /// Reads array `key` (None for a `.npy` file's array, which can be taken once).
    pub fn read(&mut self, key: Option<&str>) -> Result<Stored> {
        match (self, key) {
            (Container::Npy(s), _) => s
                .take()
                .ok_or_else(|| Error::internal("a .npy array was read twice")),
            (Container::Npz(z), Some(k)) => z.read(k),
            (Container::Safetensors(s), Some(k)) => s.read(k),
            _ => Err(Error::internal("read of an unnamed array in a keyed file")),
        }
    }
}

/// The keys of a file, for messages: `` `a`, `b` `` or `no arrays`.
pub fn list_keys(keys: &[String]) -> String {
    if keys.is_empty() {
        "no arrays".to_string()
    } else {
        format!(
            "keys {}",
            keys.iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}
