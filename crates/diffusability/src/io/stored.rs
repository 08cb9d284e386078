//! An array as it lies in a file (element type, byte order, memory order, shape, bytes), and its
//! conversion into native, C-ordered values.
//!
//! Conversion is written once for every container: the `.npy` reader hands over a memory map, the
//! `.npz` reader a buffer it decompressed, the `.safetensors` reader a range of its memory map.

use super::array::{ArrayData, RawArray};
use super::dtype::Elem;
use crate::data::{HostBuffer, Segment};
use crate::error::Error;
use half::{bf16, f16};
use memmap2::Mmap;
use rayon::prelude::*;
use std::sync::Arc;

/// Values converted per parallel task. Conversion is element-wise, so the split never changes a result.
const CONVERT_CHUNK: usize = 1 << 16;

/// The bytes of one array.
pub enum Bytes {
    /// A range of a memory-mapped file.
    Mapped {
        map: Arc<Mmap>,
        offset: usize,
        len: usize,
    },
    /// A buffer read into memory. It is held as 4-byte words so that f32 data can become latents
    /// without a copy; `len` is the byte length.
    Owned { words: Vec<u32>, len: usize },
    /// A caller's buffer (a numpy array), read in place.
    Host(Arc<dyn HostBuffer>),
}

impl Bytes {
    pub fn as_slice(&self) -> &[u8] {
        match self {
            Bytes::Mapped { map, offset, len } => &map[*offset..*offset + *len],
            Bytes::Owned { words, len } => &bytemuck::cast_slice(words)[..*len],
            Bytes::Host(b) => b.bytes(),
        }
    }
}

/// The layout of a stored array, as its header declares it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    pub elem: Elem,
    /// The bytes are in the opposite byte order of this machine.
    pub swap: bool,
    /// Column-major (Fortran) order: the first index varies fastest.
    pub fortran: bool,
    pub shape: Vec<usize>,
}

impl Layout {
    /// Number of elements, or None if the product overflows.
    pub fn count(&self) -> Option<usize> {
        self.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d))
    }

    /// Bytes of data, or None if the size overflows.
    pub fn nbytes(&self) -> Option<usize> {
        self.count()?.checked_mul(self.elem.size())
    }
}

/// One array of one file, ready to be converted.
pub struct Stored {
    /// The file, as named in messages.
    pub file: String,
    /// The key inside the file (None for `.npy`).
    pub key: Option<String>,
    pub layout: Layout,
    pub bytes: Bytes,
}

/// A fixed-width unsigned word: the raw bits of one element.
trait Word: bytemuck::Pod + Send + Sync {
    fn swap(self) -> Self;
}

macro_rules! word {
    ($($t:ty),*) => {$(
        impl Word for $t {
            #[inline]
            fn swap(self) -> Self {
                self.swap_bytes()
            }
        }
    )*};
}
word!(u8, u16, u32, u64);

impl Stored {
    pub fn shape(&self) -> &[usize] {
        &self.layout.shape
    }

    /// Number of elements (the readers have checked that it fits the data).
    pub fn len(&self) -> usize {
        self.layout.count().unwrap_or(0)
    }

    /// An input error about this array.
    pub fn err(&self, what: impl std::fmt::Display) -> Error {
        Error::input(&self.file, self.key.as_deref(), what)
    }

    /// Decodes elements `range` (C-order indices) as words `W`, mapping each with `f`.
    fn decode<W: Word, U: Send + Copy + Default>(
        &self,
        range: std::ops::Range<usize>,
        f: impl Fn(W) -> U + Sync,
    ) -> Vec<U> {
        let src = self.bytes.as_slice();
        let swap = self.layout.swap;
        let size = std::mem::size_of::<W>();
        let read = |i: usize| {
            let w: W = bytemuck::pod_read_unaligned(&src[i * size..(i + 1) * size]);
            if swap { w.swap() } else { w }
        };
        let mut out = vec![U::default(); range.len()];
        let start = range.start;
        if self.layout.fortran && self.layout.shape.len() > 1 {
            let map = FortranMap::new(&self.layout.shape);
            out.par_chunks_mut(CONVERT_CHUNK)
                .enumerate()
                .for_each(|(ci, chunk)| {
                    let mut idx = map.start(start + ci * CONVERT_CHUNK);
                    for o in chunk.iter_mut() {
                        *o = f(read(idx.offset));
                        idx.advance(&map);
                    }
                });
        } else {
            out.par_chunks_mut(CONVERT_CHUNK)
                .enumerate()
                .for_each(|(ci, chunk)| {
                    let first = start + ci * CONVERT_CHUNK;
                    let bytes = &src[first * size..(first + chunk.len()) * size];
                    for (o, b) in chunk.iter_mut().zip(bytes.chunks_exact(size)) {
                        let w: W = bytemuck::pod_read_unaligned(b);
                        *o = f(if swap { w.swap() } else { w });
                    }
                });
        }
        out
    }

    /// All values, converted to native C order.
    pub fn to_raw(&self) -> RawArray {
        let r = 0..self.len();
        let data = match self.layout.elem {
            Elem::F16 => ArrayData::F16(self.decode(r, f16::from_bits)),
            Elem::BF16 => ArrayData::BF16(self.decode(r, bf16::from_bits)),
            Elem::F32 => ArrayData::F32(self.decode(r, f32::from_bits)),
            Elem::F64 => ArrayData::F64(self.decode(r, f64::from_bits)),
            Elem::I8 => ArrayData::I8(self.decode(r, |w: u8| w as i8)),
            Elem::I16 => ArrayData::I16(self.decode(r, |w: u16| w as i16)),
            Elem::I32 => ArrayData::I32(self.decode(r, |w: u32| w as i32)),
            Elem::I64 => ArrayData::I64(self.decode(r, |w: u64| w as i64)),
            Elem::U8 => ArrayData::U8(self.decode(r, |w: u8| w)),
            Elem::U16 => ArrayData::U16(self.decode(r, |w: u16| w)),
            Elem::U32 => ArrayData::U32(self.decode(r, |w: u32| w)),
            Elem::U64 => ArrayData::U64(self.decode(r, |w: u64| w)),
            Elem::Bool => ArrayData::Bool(self.decode(r, |w: u8| w != 0)),
        };
        RawArray::new(self.layout.shape.clone(), data)
    }

    /// Elements `range` as f32 (f64 rounds to nearest); None for a non-float array.
    pub fn f32_range(&self, r: std::ops::Range<usize>) -> Option<Vec<f32>> {
        Some(match self.layout.elem {
            Elem::F16 => self.decode(r, |w: u16| f16::from_bits(w).to_f32()),
            Elem::BF16 => self.decode(r, |w: u16| bf16::from_bits(w).to_f32()),
            Elem::F32 => self.decode(r, f32::from_bits),
            Elem::F64 => self.decode(r, |w: u64| f64::from_bits(w) as f32),
            _ => return None,
        })
    }

    /// Elements `range` classified for a mask: 0 (zero), 1 (nonzero), 2 (NaN).
    pub fn mask_range(&self, r: std::ops::Range<usize>) -> Vec<u8> {
        fn float(x: f64) -> u8 {
            if x.is_nan() { 2 } else { (x != 0.0) as u8 }
        }
        match self.layout.elem {
            Elem::F16 => self.decode(r, |w: u16| float(f16::from_bits(w).to_f64())),
            Elem::BF16 => self.decode(r, |w: u16| float(bf16::from_bits(w).to_f64())),
            Elem::F32 => self.decode(r, |w: u32| float(f32::from_bits(w) as f64)),
            Elem::F64 => self.decode(r, |w: u64| float(f64::from_bits(w))),
            // Integers and bool: nonzero bits are a nonzero value in any byte order.
            Elem::I8 | Elem::U8 | Elem::Bool => self.decode(r, |w: u8| (w != 0) as u8),
            Elem::I16 | Elem::U16 => self.decode(r, |w: u16| (w != 0) as u8),
            Elem::I32 | Elem::U32 => self.decode(r, |w: u32| (w != 0) as u8),
            Elem::I64 | Elem::U64 => self.decode(r, |w: u64| (w != 0) as u8),
        }
    }

    /// Whether the values can be used as f32 latents in place: f32, native byte order, C order,
    /// 4-byte aligned.
    fn is_native_f32(&self) -> bool {
        let l = &self.layout;
        let c_order = !l.fortran || l.shape.iter().filter(|&&d| d > 1).count() <= 1;
        l.elem == Elem::F32
            && !l.swap
            && c_order
            && (self.bytes.as_slice().as_ptr() as usize).is_multiple_of(4)
    }

    /// The values as one latent segment: a view into the memory map when they are native f32
    /// (no copy), the owned buffer when it already holds them, else converted into memory.
    /// None for a non-float array.
    pub fn into_segment(self) -> Option<Segment> {
        if self.is_native_f32() {
            let n = self.len();
            match self.bytes {
                Bytes::Mapped { map, offset, .. } => {
                    return Some(Segment::Mapped {
                        map,
                        offset,
                        len: n,
                    });
                }
                Bytes::Owned { words, .. } => {
                    let mut v: Vec<f32> = bytemuck::allocation::cast_vec(words);
                    v.truncate(n);
                    return Some(Segment::Owned(Arc::new(v)));
                }
                Bytes::Host(buffer) => return Some(Segment::Host { buffer, len: n }),
            }
        }
        self.f32_range(0..self.len())
            .map(|v| Segment::Owned(Arc::new(v)))
    }
}

/// Maps C-order element indices of a Fortran-order array to offsets in its data. A Fortran array of
/// shape `(d0, .., dk)` stores element `(i0, .., ik)` at `i0 + d0 * (i1 + d1 * (..))`.
struct FortranMap {
    shape: Vec<usize>,
    /// Offset step of each axis in the stored data.
    strides: Vec<usize>,
}

/// A position while walking a Fortran array in C order.
struct FortranIdx {
    index: Vec<usize>,
    offset: usize,
}

impl FortranMap {
    fn new(shape: &[usize]) -> FortranMap {
        let mut strides = Vec::with_capacity(shape.len());
        let mut s = 1;
        for &d in shape {
            strides.push(s);
            s *= d;
        }
        FortranMap {
            shape: shape.to_vec(),
            strides,
        }
    }

    /// The position of C-order element `flat`.
    fn start(&self, mut flat: usize) -> FortranIdx {
        let mut index = vec![0; self.shape.len()];
        for ax in (0..self.shape.len()).rev() {
            let d = self.shape[ax].max(1);
            index[ax] = flat % d;
            flat /= d;
        }
        let offset = index.iter().zip(&self.strides).map(|(i, s)| i * s).sum();
        FortranIdx { index, offset }
    }
}

impl FortranIdx {
    /// Steps to the next element in C order (the last axis fastest).
    #[inline]
    fn advance(&mut self, m: &FortranMap) {
        for ax in (0..m.shape.len()).rev() {
            self.index[ax] += 1;
            self.offset += m.strides[ax];
            if self.index[ax] < m.shape[ax] {
                return;
            }
            self.offset -= m.strides[ax] * self.index[ax];
            self.index[ax] = 0;
        }
    }
}
