//! Reading and writing arrays: `.npy` (memory-mapped), `.npz`, `.safetensors`, shard sets.
//! Every check of user input lives here.
//!
//! Entry points: [`load`] reads a data set as described by an [`InputSpec`]; [`from_host`] builds one
//! from arrays in memory; [`read_array`] and [`read_stats`] read single arrays and statistics files
//! for the other commands.

pub mod array;
mod checks;
mod container;
mod dtype;
mod load;
mod memory;
mod npy;
mod npz;
mod read;
mod safetensors;
mod shards;
mod stored;
pub mod write;

pub use array::{ArrayData, RawArray};
pub use load::{InputSpec, load};
pub use memory::{HostArray, from_host};
pub use read::{read_array, read_stats};
pub use write::{write_npy, write_npz, write_safetensors};
