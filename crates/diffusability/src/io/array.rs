//! A typed n-dimensional array as read from or written to a file, before it becomes latents,
//! labels or masks.

use half::{bf16, f16};

/// The element values of an array, in row-major (C) order, native endianness.
#[derive(Clone, Debug, PartialEq)]
pub enum ArrayData {
    F16(Vec<f16>),
    BF16(Vec<bf16>),
    F32(Vec<f32>),
    F64(Vec<f64>),
    I8(Vec<i8>),
    I16(Vec<i16>),
    I32(Vec<i32>),
    I64(Vec<i64>),
    U8(Vec<u8>),
    U16(Vec<u16>),
    U32(Vec<u32>),
    U64(Vec<u64>),
    Bool(Vec<bool>),
}

/// An array with its shape; `shape.iter().product() == data.len()`.
#[derive(Clone, Debug, PartialEq)]
pub struct RawArray {
    pub shape: Vec<usize>,
    pub data: ArrayData,
}

impl ArrayData {
    pub fn len(&self) -> usize {
        match self {
            ArrayData::F16(v) => v.len(),
            ArrayData::BF16(v) => v.len(),
            ArrayData::F32(v) => v.len(),
            ArrayData::F64(v) => v.len(),
            ArrayData::I8(v) => v.len(),
            ArrayData::I16(v) => v.len(),
            ArrayData::I32(v) => v.len(),
            ArrayData::I64(v) => v.len(),
            ArrayData::U8(v) => v.len(),
            ArrayData::U16(v) => v.len(),
            ArrayData::U32(v) => v.len(),
            ArrayData::U64(v) => v.len(),
            ArrayData::Bool(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The dtype name used in messages and reports: f16, bf16, f32, f64, i8 .. u64, bool.
    pub fn dtype(&self) -> &'static str {
        match self {
            ArrayData::F16(_) => "f16",
            ArrayData::BF16(_) => "bf16",
            ArrayData::F32(_) => "f32",
            ArrayData::F64(_) => "f64",
            ArrayData::I8(_) => "i8",
            ArrayData::I16(_) => "i16",
            ArrayData::I32(_) => "i32",
            ArrayData::I64(_) => "i64",
            ArrayData::U8(_) => "u8",
            ArrayData::U16(_) => "u16",
            ArrayData::U32(_) => "u32",
            ArrayData::U64(_) => "u64",
            ArrayData::Bool(_) => "bool",
        }
    }

    /// The values as f64 (exact for every dtype but i64/u64 beyond 2^53); `None` for bool.
    pub fn to_f64(&self) -> Option<Vec<f64>> {
        Some(match self {
            ArrayData::F16(v) => v.iter().map(|x| x.to_f64()).collect(),
            ArrayData::BF16(v) => v.iter().map(|x| x.to_f64()).collect(),
            ArrayData::F32(v) => v.iter().map(|&x| x as f64).collect(),
            ArrayData::F64(v) => v.clone(),
            ArrayData::I8(v) => v.iter().map(|&x| x as f64).collect(),
            ArrayData::I16(v) => v.iter().map(|&x| x as f64).collect(),
            ArrayData::I32(v) => v.iter().map(|&x| x as f64).collect(),
            ArrayData::I64(v) => v.iter().map(|&x| x as f64).collect(),
            ArrayData::U8(v) => v.iter().map(|&x| x as f64).collect(),
            ArrayData::U16(v) => v.iter().map(|&x| x as f64).collect(),
            ArrayData::U32(v) => v.iter().map(|&x| x as f64).collect(),
            ArrayData::U64(v) => v.iter().map(|&x| x as f64).collect(),
            ArrayData::Bool(_) => return None,
        })
    }

    pub fn is_float(&self) -> bool {
        matches!(
            self,
            ArrayData::F16(_) | ArrayData::BF16(_) | ArrayData::F32(_) | ArrayData::F64(_)
        )
    }
}

impl RawArray {
    pub fn new(shape: Vec<usize>, data: ArrayData) -> RawArray {
        debug_assert_eq!(shape.iter().product::<usize>(), data.len());
        RawArray { shape, data }
    }

    pub fn f32(shape: Vec<usize>, v: Vec<f32>) -> RawArray {
        RawArray::new(shape, ArrayData::F32(v))
    }

    pub fn f64(shape: Vec<usize>, v: Vec<f64>) -> RawArray {
        RawArray::new(shape, ArrayData::F64(v))
    }

    pub fn i64(shape: Vec<usize>, v: Vec<i64>) -> RawArray {
        RawArray::new(shape, ArrayData::I64(v))
    }

    /// The shape as numpy prints it, e.g. `(50000, 32, 16, 16)`.
    pub fn shape_str(&self) -> String {
        shape_str(&self.shape)
    }
}

/// A shape as numpy prints it: `(3,)`, `(2, 4)`.
pub fn shape_str(shape: &[usize]) -> String {
    match shape {
        [one] => format!("({one},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}
