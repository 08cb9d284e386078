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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::{InputSpec, load, write_npy};

    /// A caller's buffer: 8-byte words, so that any element type is aligned.
    #[derive(Debug)]
    struct Words(Vec<u64>);

    impl HostBuffer for Words {
        fn bytes(&self) -> &[u8] {
            bytemuck::cast_slice(&self.0)
        }
    }

    fn host<T: bytemuck::Pod>(name: &str, dtype: &str, shape: &[usize], v: &[T]) -> HostArray {
        let bytes: &[u8] = bytemuck::cast_slice(v);
        let mut words = vec![0u64; bytes.len().div_ceil(8)];
        bytemuck::cast_slice_mut::<u64, u8>(&mut words)[..bytes.len()].copy_from_slice(bytes);
        HostArray {
            name: name.into(),
            dtype: dtype.into(),
            shape: shape.to_vec(),
            buffer: Arc::new(Words(words)),
        }
    }

    fn values(n: usize) -> Vec<f32> {
        (0..n).map(|i| ((i as f32) * 0.37).sin()).collect()
    }

    #[test]
    fn f32_is_read_in_place_and_matches_a_file() {
        let (n, c, h, w) = (6, 2, 3, 3);
        let v = values(n * c * h * w);
        let z = host("latents", "f32", &[n, c, h, w], &v);
        let labels = host("labels", "i32", &[n], &[0i32, 1, 0, 1, 2, 2]);
        let d = from_host(&z, Some(&labels), None, "mem").unwrap();
        assert_eq!(
            d.latents.sample(0).as_ptr() as usize,
            z.buffer.bytes().as_ptr() as usize
        );
        assert_eq!(d.latents.sample(5), &v[5 * 18..]);

        let dir = tempfile::tempdir().unwrap();
        let zp = dir.path().join("z.npy");
        let lp = dir.path().join("l.npy");
        write_npy(&zp, &RawArray::f32(vec![n, c, h, w], v.clone())).unwrap();
        write_npy(&lp, &RawArray::i64(vec![n], vec![0, 1, 0, 1, 2, 2])).unwrap();
        let f = load(&InputSpec {
            path: zp.display().to_string(),
            labels: Some(lp.display().to_string()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(d.source.sha256, f.source.sha256);
        assert_eq!(d.labels.unwrap().raw, f.labels.unwrap().raw);
    }

    #[test]
    fn other_dtypes_are_converted() {
        let v: Vec<f64> = values(2 * 4).iter().map(|&x| x as f64).collect();
        let d = from_host(&host("latents", "f64", &[2, 1, 2, 2], &v), None, None, "m").unwrap();
        assert_eq!(d.source.dtype, "f64");
        assert_eq!(d.latents.sample(1)[3], v[7] as f32);
    }

    #[test]
    fn errors_name_the_array() {
        let v = values(8);
        let e = from_host(&host("latents", "f32", &[2, 4], &v), None, None, "m").unwrap_err();
        assert_eq!(
            e.message,
            "latents: expected 4 dimensions (N, C, H, W), found shape (2, 4)"
        );
        let e = from_host(
            &host("latents", "i32", &[2, 1, 2, 2], &[0i32; 8]),
            None,
            None,
            "m",
        )
        .unwrap_err();
        assert_eq!(
            e.message,
            "latents: expected floating-point latents (f16, bf16, f32 or f64), found dtype i32"
        );
        let z = host("latents", "f32", &[2, 1, 2, 2], &v);
        let l = host("labels", "i64", &[3], &[0i64, 1, 2]);
        let e = from_host(&z, Some(&l), None, "m").unwrap_err();
        assert_eq!(
            e.message,
            "labels: has 3 entries, expected 2 (one per latent)"
        );
        let m = host("masks", "u8", &[2, 3, 3], &[1u8; 18]);
        let e = from_host(&z, None, Some(&m), "m").unwrap_err();
        assert_eq!(
            e.message,
            "masks: mask size 3x3 is not a positive whole multiple of the latent grid 2x2"
        );
        let mut bad = v.clone();
        bad[6] = f32::INFINITY;
        let e = from_host(
            &host("latents", "f32", &[2, 1, 2, 2], &bad),
            None,
            None,
            "m",
        )
        .unwrap_err();
        assert_eq!(
            e.message,
            "latents: expected finite values, found 1 infinite; the first is in sample 1"
        );
        let e = from_host(&host("latents", "c64", &[2, 1, 2, 2], &v), None, None, "m").unwrap_err();
        assert!(e.message.starts_with("latents: unsupported dtype `c64`"));
    }
}
