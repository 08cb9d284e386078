//! Reading and writing arrays: `.npy` (memory-mapped), `.npz`, `.safetensors`, shard sets.
//! Every check of user input lives here.

pub mod array;
pub mod write;

pub use array::{ArrayData, RawArray};
pub use write::{write_npy, write_npz, write_safetensors};
