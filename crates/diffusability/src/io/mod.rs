//! Reading and writing arrays: `.npy` (memory-mapped), `.npz`, `.safetensors`, shard sets.
//! Every check of user input lives here.

pub mod array;

pub use array::{ArrayData, RawArray};
