//! Data sets from arrays already in memory (numpy arrays handed over by the Python bindings), checked
//! exactly as files are: the same checks, the same messages, with the array's name where a file's
//! path would stand. Native-endian f32 latents in C order are read in place, without a copy.

use super::array::RawArray;
use super::checks;
use super::dtype::Elem;
use super::stored::{Bytes, Layout, Stored};
use crate::data::{Dataset, HostBuffer, Labels, Latents, Source, digest};
use crate::error::{Error, Result};
use std::sync::Arc;

/// An array in a caller's memory: C order, native byte order.
#[derive(Clone, Debug)]
pub struct HostArray {
    /// How the array is named in messages, where a file's path would stand (e.g. `latents`).
    pub name: String,
    /// The element type as [`RawArray`] dtypes are spelled: f16, bf16, f32, f64, i8 .. u64, bool.
    pub dtype: String,
    pub shape: Vec<usize>,
    /// The values; at least `shape.product() * element size` bytes.
    pub buffer: Arc<dyn HostBuffer>,
}

impl HostArray {
    /// The array as the readers see a stored one; checks the dtype name and the buffer size.
    fn stored(&self) -> Result<Stored> {
        let elem = Elem::from_name(&self.dtype).ok_or_else(|| {
            Error::input(
                &self.name,
                None,
                format!(
                    "unsupported dtype `{}`; expected f16, bf16, f32, f64, an integer type or bool",
                    self.dtype
                ),
            )
        })?;
        let layout = Layout {
            elem,
            swap: false,
            fortran: false,
            shape: self.shape.clone(),
        };
        let need = layout.nbytes();
        if need.is_none_or(|b| b > self.buffer.bytes().len()) {
            return Err(Error::internal(format!(
                "{}: buffer of {} bytes is smaller than its shape {:?} of {} needs",
                self.name,
                self.buffer.bytes().len(),
                self.shape,
                self.dtype
            )));
        }
        Ok(Stored {
            file: self.name.clone(),
            key: None,
            layout,
            bytes: Bytes::Host(self.buffer.clone()),
        })
    }

    /// The values, converted into an owned array of their dtype.
    pub fn to_raw(&self) -> Result<RawArray> {
        Ok(self.stored()?.to_raw())
    }
}

/// Builds a data set from latents `(N, C, H, W)` of a float dtype, optional integer labels `(N,)`
/// and optional masks `(N, h, w)` of any dtype, applying every check that [`super::load`] applies to
/// files (shape, dtype, counts, mask grid, finite values). Native f32 latents are read in place;
/// other float dtypes are converted to f32 in memory. `name` is the report's `input.name`.
pub fn from_host(
    latents: &HostArray,
    labels: Option<&HostArray>,
    masks: Option<&HostArray>,
    name: &str,
) -> Result<Dataset> {
    let z = latents.stored()?;
    let [n, c, h, w] = checks::latents_shape(&z.layout, &|m| z.err(m))?;
    let labels = labels.map(HostArray::stored).transpose()?;
    if let Some(l) = &labels {
        checks::labels_layout(&l.layout, n, &|m| l.err(m))?;
    }
    let masks = masks.map(HostArray::stored).transpose()?;
    let mut grid = None;
    if let Some(m) = &masks {
        grid = Some(checks::masks_layout(&m.layout, n, h, w, &|e| m.err(e))?);
    }
    let labels = match &labels {
        Some(l) => Some(Labels::new(checks::labels_values(&l.to_raw(), &|m| {
            l.err(m)
        })?)),
        None => None,
    };
    let masks = match (&masks, grid) {
        (Some(m), Some((mh, mw))) => Some(checks::masks_values(m, n, mh, mw, h, w)?),
        _ => None,
    };
    let elem = z.layout.elem;
    let zname = z.file.clone();
    let err = |m: String| Error::input(&zname, None, m);
    let seg = z
        .into_segment()
        .ok_or_else(|| Error::internal("latents are not floating point after the dtype check"))?;
    checks::finite(&seg, c * h * w, elem == Elem::F64, &err)?;
    let latents = Latents::from_segments(c, h, w, vec![seg]);
    let sha256 = digest(&latents, labels.as_ref(), masks.as_ref());
    Ok(Dataset {
        latents,
        labels,
        masks,
        source: Source {
            name: name.to_string(),
            paths: Vec::new(),
            dtype: elem.name().to_string(),
            key: "latents".to_string(),
            sha256,
            example: false,
        },
    })
}
