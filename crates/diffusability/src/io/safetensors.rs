//! The `.safetensors` format (huggingface/safetensors), memory-mapped. Tensors are views into the map;
//! f32 data that happens to be 4-byte aligned (the writers pad the header to 8 bytes) is used in
//! place, anything else is converted.

use super::dtype::Elem;
use super::stored::{Bytes, Layout, Stored};
use crate::error::{Error, Result};
use ::safetensors::tensor::{Dtype, SafeTensors};
use memmap2::Mmap;
use std::collections::BTreeMap;
use std::sync::Arc;

/// One tensor's entry in the header.
struct Entry {
    dtype: Dtype,
    shape: Vec<usize>,
    /// Byte range in the map.
    offset: usize,
    len: usize,
}

pub struct SafetensorsFile {
    path: String,
    map: Arc<Mmap>,
    tensors: BTreeMap<String, Entry>,
}

fn elem(d: Dtype) -> Option<Elem> {
    Some(match d {
        Dtype::F16 => Elem::F16,
        Dtype::BF16 => Elem::BF16,
        Dtype::F32 => Elem::F32,
        Dtype::F64 => Elem::F64,
        Dtype::I8 => Elem::I8,
        Dtype::I16 => Elem::I16,
        Dtype::I32 => Elem::I32,
        Dtype::I64 => Elem::I64,
        Dtype::U8 => Elem::U8,
        Dtype::U16 => Elem::U16,
        Dtype::U32 => Elem::U32,
        Dtype::U64 => Elem::U64,
        Dtype::BOOL => Elem::Bool,
        _ => return None,
    })
}

impl SafetensorsFile {
    pub fn open(path: &str) -> Result<SafetensorsFile> {
        let map = super::container::map_file(path)?;
        let st = SafeTensors::deserialize(&map).map_err(|e| {
            Error::input(path, None, format!("not a readable .safetensors file: {e}"))
        })?;
        let base = map.as_ptr() as usize;
        let tensors = st
            .iter()
            .map(|(name, v)| {
                let entry = Entry {
                    dtype: v.dtype(),
                    shape: v.shape().to_vec(),
                    offset: (v.data().as_ptr() as usize).wrapping_sub(base),
                    len: v.data().len(),
                };
                (name.to_string(), entry)
            })
            .collect();
        drop(st);
        Ok(SafetensorsFile {
            path: path.to_string(),
            map: Arc::new(map),
            tensors,
        })
    }

    pub fn keys(&self) -> Vec<String> {
        self.tensors.keys().cloned().collect()
    }

    fn entry(&self, key: &str) -> Result<&Entry> {
        // Callers ask only for keys they found in `keys()`.
        self.tensors
            .get(key)
            .ok_or_else(|| Error::internal(format!("{}: no tensor `{key}`", self.path)))
    }

    pub fn layout(&self, key: &str) -> Result<Layout> {
        let e = self.entry(key)?;
        let elem = elem(e.dtype).ok_or_else(|| {
            Error::input(
                &self.path,
                Some(key),
                format!(
                    "unsupported dtype {:?}; expected F16, BF16, F32, F64, an integer type or BOOL",
                    e.dtype
                ),
            )
        })?;
        Ok(Layout {
            elem,
            // safetensors is little-endian by definition.
            swap: cfg!(target_endian = "big"),
            fortran: false,
            shape: e.shape.clone(),
        })
    }

    /// The tensor `key` as a view into the map.
    pub fn read(&self, key: &str) -> Result<Stored> {
        let layout = self.layout(key)?;
        let e = self.entry(key)?;
        let (offset, len) = if e.len == 0 {
            (0, 0)
        } else {
            (e.offset, e.len)
        };
        Ok(Stored {
            file: self.path.clone(),
            key: Some(key.to_string()),
            layout,
            bytes: Bytes::Mapped {
                map: self.map.clone(),
                offset,
                len,
            },
        })
    }
}
