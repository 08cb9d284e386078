//! The `.npz` format: a zip archive of `.npy` entries named `KEY.npy`, stored (`numpy.savez`) or
//! deflated (`numpy.savez_compressed`). Entries are decompressed into memory when read.

use super::npy;
use super::stored::{Layout, Stored};
use crate::error::{Error, Result};
use std::fs::File;

pub struct Npz {
    path: String,
    archive: zip::ZipArchive<File>,
    /// Keys (entry names without `.npy`), sorted.
    keys: Vec<String>,
}

impl Npz {
    pub fn open(path: &str) -> Result<Npz> {
        let f = super::container::open_file(path)?;
        let archive = zip::ZipArchive::new(f).map_err(|e| {
            Error::input(
                path,
                None,
                format!("not a readable .npz (zip) archive: {e}"),
            )
        })?;
        let mut keys: Vec<String> = archive
            .file_names()
            .map(|n| n.strip_suffix(".npy").unwrap_or(n).to_string())
            .collect();
        keys.sort();
        Ok(Npz {
            path: path.to_string(),
            archive,
            keys,
        })
    }

    pub fn keys(&self) -> &[String] {
        &self.keys
    }

    fn entry_name(&self, key: &str) -> String {
        if self.archive.index_for_name(&format!("{key}.npy")).is_some() {
            format!("{key}.npy")
        } else {
            key.to_string()
        }
    }

    /// The layout of entry `key`, reading only its header.
    pub fn layout(&mut self, key: &str) -> Result<Layout> {
        let name = self.entry_name(key);
        let path = self.path.clone();
        let err = move |w: String| Error::input(&path, Some(key), w);
        let mut entry = self
            .archive
            .by_name(&name)
            .map_err(|e| err(format!("cannot read: {e}")))?;
        let total = usize::try_from(entry.size()).unwrap_or(usize::MAX);
        Ok(npy::read_header(&mut entry, total, &err)?.layout)
    }

    /// Reads entry `key` into memory.
    pub fn read(&mut self, key: &str) -> Result<Stored> {
        let name = self.entry_name(key);
        let mut entry = self
            .archive
            .by_name(&name)
            .map_err(|e| Error::input(&self.path, Some(key), format!("cannot read: {e}")))?;
        let total = usize::try_from(entry.size()).unwrap_or(usize::MAX);
        npy::read(&mut entry, total, &self.path, key)
    }
}
