//! Element types the readers understand, independent of the container format.

/// The element type of a stored array.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Elem {
    F16,
    BF16,
    F32,
    F64,
    I8,
    I16,
    I32,
    I64,
    U8,
    U16,
    U32,
    U64,
    Bool,
}

impl Elem {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Elem::I8 | Elem::U8 | Elem::Bool => 1,
            Elem::F16 | Elem::BF16 | Elem::I16 | Elem::U16 => 2,
            Elem::F32 | Elem::I32 | Elem::U32 => 4,
            Elem::F64 | Elem::I64 | Elem::U64 => 8,
        }
    }

    /// The name used in messages and reports, as [`ArrayData::dtype`] spells it.
    pub fn name(self) -> &'static str {
        match self {
            Elem::F16 => "f16",
            Elem::BF16 => "bf16",
            Elem::F32 => "f32",
            Elem::F64 => "f64",
            Elem::I8 => "i8",
            Elem::I16 => "i16",
            Elem::I32 => "i32",
            Elem::I64 => "i64",
            Elem::U8 => "u8",
            Elem::U16 => "u16",
            Elem::U32 => "u32",
            Elem::U64 => "u64",
            Elem::Bool => "bool",
        }
    }

    /// The element type named as [`Elem::name`] spells it.
    pub fn from_name(name: &str) -> Option<Elem> {
        [
            Elem::F16,
            Elem::BF16,
            Elem::F32,
            Elem::F64,
            Elem::I8,
            Elem::I16,
            Elem::I32,
            Elem::I64,
            Elem::U8,
            Elem::U16,
            Elem::U32,
            Elem::U64,
            Elem::Bool,
        ]
        .into_iter()
        .find(|e| e.name() == name)
    }

    pub fn is_float(self) -> bool {
        matches!(self, Elem::F16 | Elem::BF16 | Elem::F32 | Elem::F64)
    }

    pub fn is_int(self) -> bool {
        !self.is_float() && self != Elem::Bool
    }
}
