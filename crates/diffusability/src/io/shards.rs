//! Turning the input path (a file, a directory of shards or a glob) into the list of files to read,
//! in the order their samples are concatenated.

use super::container::Format;
use crate::error::{Error, ErrorKind, Result};
use std::path::Path;

/// The files of one input and its display name.
#[derive(Debug)]
pub struct Files {
    pub files: Vec<String>,
    /// File stem of a single file, the directory's name for a directory, and for a glob the last
    /// directory of the pattern without wildcards (or the pattern's stem if it has none).
    pub name: String,
}

fn is_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

fn stem(p: &Path) -> String {
    p.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| p.display().to_string())
}

/// Expands `path`: an existing file is read alone; a directory is every `.npy`, `.npz` and
/// `.safetensors` file directly inside it, sorted by file name; otherwise a pattern with `*`, `?` or
/// `[` is a glob whose matches are sorted by path.
pub fn expand(path: &str) -> Result<Files> {
    let p = Path::new(path);
    if p.is_dir() {
        let rd = std::fs::read_dir(p)
            .map_err(|e| Error::input(path, None, format!("cannot read directory: {e}")))?;
        let mut names = Vec::new();
        for entry in rd {
            let entry = entry
                .map_err(|e| Error::input(path, None, format!("cannot read directory: {e}")))?;
            let full = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if full.is_file() && Format::of(&name).is_some() {
                names.push(name);
            }
        }
        if names.is_empty() {
            return Err(Error::input(
                path,
                None,
                "expected .npy, .npz or .safetensors files in this directory, found none",
            ));
        }
        names.sort();
        let name = p
            .canonicalize()
            .ok()
            .and_then(|c| c.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| path.to_string());
        return Ok(Files {
            files: names
                .iter()
                .map(|n| p.join(n).display().to_string())
                .collect(),
            name,
        });
    }
    if p.exists() {
        return Ok(Files {
            files: vec![path.to_string()],
            name: stem(p),
        });
    }
    if !is_glob(path) {
        return Err(Error::not_found(path, "file or directory"));
    }
    let matches = glob::glob(path)
        .map_err(|e| Error::input(path, None, format!("invalid glob pattern: {e}")))?;
    let mut files = Vec::new();
    for m in matches {
        let m = m.map_err(|e| Error::input(path, None, format!("cannot read: {e}")))?;
        if m.is_file() {
            files.push(m.display().to_string());
        }
    }
    if files.is_empty() {
        return Err(Error {
            kind: ErrorKind::NotFound,
            message: format!("{path}: no file matches this pattern"),
        });
    }
    files.sort();
    let dir = p
        .parent()
        .into_iter()
        .flat_map(|d| d.components())
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .take_while(|c| !is_glob(c))
        .filter(|c| c != "." && c != "/" && c != "..")
        .last();
    Ok(Files {
        files,
        name: dir.unwrap_or_else(|| stem(p)),
    })
}
