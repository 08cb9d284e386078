//! Writing arrays as `.npy`, `.npz` (uncompressed, as `numpy.savez`) and `.safetensors`, for `synth`,
//! `interpolate`, statistics files and tests.

use super::array::{ArrayData, RawArray};
use crate::error::{Error, Result};
use std::io::Write;
use std::path::Path;

/// The numpy `descr` of an array's dtype (little-endian).
fn descr(d: &ArrayData) -> &'static str {
    match d {
        ArrayData::F16(_) => "<f2",
        // numpy has no bfloat16; ml_dtypes' bfloat16 saves as a 2-byte void, so we write the same
        // descr: numpy users read it with `.view(ml_dtypes.bfloat16)`, and our reader reads it back.
        ArrayData::BF16(_) => "<V2",
        ArrayData::F32(_) => "<f4",
        ArrayData::F64(_) => "<f8",
        ArrayData::I8(_) => "|i1",
        ArrayData::I16(_) => "<i2",
        ArrayData::I32(_) => "<i4",
        ArrayData::I64(_) => "<i8",
        ArrayData::U8(_) => "|u1",
        ArrayData::U16(_) => "<u2",
        ArrayData::U32(_) => "<u4",
        ArrayData::U64(_) => "<u8",
        ArrayData::Bool(_) => "|b1",
    }
}

/// Little-endian element bytes of an array.
pub fn le_bytes(d: &ArrayData) -> Vec<u8> {
    fn cat<T: Copy, const K: usize>(v: &[T], f: impl Fn(T) -> [u8; K]) -> Vec<u8> {
        let mut out = Vec::with_capacity(v.len() * K);
        for &x in v {
            out.extend_from_slice(&f(x));
        }
        out
    }
    match d {
        ArrayData::F16(v) => cat(v, |x| x.to_le_bytes()),
        ArrayData::BF16(v) => cat(v, |x| x.to_le_bytes()),
        ArrayData::F32(v) => cat(v, |x| x.to_le_bytes()),
        ArrayData::F64(v) => cat(v, |x| x.to_le_bytes()),
        ArrayData::I8(v) => cat(v, |x| x.to_le_bytes()),
        ArrayData::I16(v) => cat(v, |x| x.to_le_bytes()),
        ArrayData::I32(v) => cat(v, |x| x.to_le_bytes()),
        ArrayData::I64(v) => cat(v, |x| x.to_le_bytes()),
        ArrayData::U8(v) => v.clone(),
        ArrayData::U16(v) => cat(v, |x| x.to_le_bytes()),
        ArrayData::U32(v) => cat(v, |x| x.to_le_bytes()),
        ArrayData::U64(v) => cat(v, |x| x.to_le_bytes()),
        ArrayData::Bool(v) => v.iter().map(|&b| b as u8).collect(),
    }
}

/// The bytes of a version 1.0 `.npy` file (C order, little-endian).
pub fn npy_bytes(a: &RawArray) -> Vec<u8> {
    let shape = super::array::shape_str(&a.shape);
    let mut header = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {shape}, }}",
        descr(&a.data)
    );
    // Pad so that the data starts on a 64-byte boundary, as numpy does; the header ends in '\n'.
    let total = 10 + header.len() + 1;
    header.push_str(&" ".repeat(total.next_multiple_of(64) - total));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + a.data.len() * 8);
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(&le_bytes(&a.data));
    out
}

fn create(path: &Path) -> Result<std::fs::File> {
    std::fs::File::create(path)
        .map_err(|e| Error::internal(format!("{}: cannot create file: {e}", path.display())))
}

fn write_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::internal(format!("{}: cannot write: {e}", path.display()))
}

/// Writes one array as `.npy`.
pub fn write_npy(path: &Path, a: &RawArray) -> Result<()> {
    let mut f = create(path)?;
    f.write_all(&npy_bytes(a)).map_err(|e| write_err(path, e))
}

/// Writes named arrays as an uncompressed `.npz` (what `numpy.savez` writes).
pub fn write_npz(path: &Path, arrays: &[(&str, &RawArray)]) -> Result<()> {
    let f = create(path)?;
    let mut zip = zip::ZipWriter::new(f);
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .large_file(true);
    for (name, a) in arrays {
        zip.start_file(format!("{name}.npy"), opts)
            .map_err(|e| write_err(path, e))?;
        zip.write_all(&npy_bytes(a))
            .map_err(|e| write_err(path, e))?;
    }
    zip.finish().map_err(|e| write_err(path, e))?;
    Ok(())
}

/// Writes named arrays as `.safetensors`.
pub fn write_safetensors(path: &Path, arrays: &[(&str, &RawArray)]) -> Result<()> {
    use safetensors::tensor::{Dtype, TensorView};
    let bytes: Vec<Vec<u8>> = arrays.iter().map(|(_, a)| le_bytes(&a.data)).collect();
    let mut views = Vec::new();
    for ((name, a), b) in arrays.iter().zip(&bytes) {
        let dtype = match a.data {
            ArrayData::F16(_) => Dtype::F16,
            ArrayData::BF16(_) => Dtype::BF16,
            ArrayData::F32(_) => Dtype::F32,
            ArrayData::F64(_) => Dtype::F64,
            ArrayData::I8(_) => Dtype::I8,
            ArrayData::I16(_) => Dtype::I16,
            ArrayData::I32(_) => Dtype::I32,
            ArrayData::I64(_) => Dtype::I64,
            ArrayData::U8(_) => Dtype::U8,
            ArrayData::U16(_) => Dtype::U16,
            ArrayData::U32(_) => Dtype::U32,
            ArrayData::U64(_) => Dtype::U64,
            ArrayData::Bool(_) => Dtype::BOOL,
        };
        let view = TensorView::new(dtype, a.shape.clone(), b).map_err(|e| write_err(path, e))?;
        views.push((name.to_string(), view));
    }
    safetensors::tensor::serialize_to_file(views, None, path).map_err(|e| write_err(path, e))
}
