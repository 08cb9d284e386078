//! In-memory data model: latents, labels, masks, normalization, and the data set that bundles them.

pub mod labels;
pub mod latents;
pub mod masks;
pub mod normalize;

pub use labels::Labels;
pub use latents::{HostBuffer, Latents, Segment, Shape};
pub use masks::Masks;
pub use normalize::{Affine, Normalize, Normalized};

use serde::Serialize;

/// Where a data set came from: the `input` block of the report.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Source {
    /// A display name (the file stem of a single input, or set by the user).
    pub name: String,
    pub paths: Vec<String>,
    /// Dtype of the latents as stored: f16, bf16, f32 or f64.
    pub dtype: String,
    /// The latents key that was read.
    pub key: String,
    /// SHA-256 over the latent values as f32 little-endian, then labels (i64 LE), then mask flags,
    /// so the same data in any container or sharding has the same digest.
    pub sha256: String,
    /// True for the built-in example.
    pub example: bool,
}

/// Everything one report is computed from.
#[derive(Clone, Debug)]
pub struct Dataset {
    pub latents: Latents,
    pub labels: Option<Labels>,
    pub masks: Option<Masks>,
    pub source: Source,
}

/// The content digest of a data set (`input.sha256`): SHA-256 over the latent values as f32
/// little-endian in sample order, then a 0x01 byte and labels as i64 little-endian (if any), then a
/// 0x02 byte and the pooled token-level mask flags as bytes (if any). It depends on the values only,
/// so the same data in `.npy`, `.npz`, `.safetensors` or any sharding has the same digest.
pub fn digest(latents: &Latents, labels: Option<&Labels>, masks: Option<&Masks>) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for seg in latents.segments() {
        if cfg!(target_endian = "little") {
            // In-memory f32 is already little-endian: hash the bytes in place, no copy.
            h.update(bytemuck::cast_slice::<f32, u8>(seg.as_slice()));
        } else {
            let mut buf = Vec::new();
            for chunk in seg.as_slice().chunks(1 << 16) {
                buf.clear();
                for x in chunk {
                    buf.extend_from_slice(&x.to_le_bytes());
                }
                h.update(&buf);
            }
        }
    }
    if let Some(l) = labels {
        h.update([1u8]);
        for v in &l.raw {
            h.update(v.to_le_bytes());
        }
    }
    if let Some(m) = masks {
        h.update([2u8]);
        let bytes: Vec<u8> = m.fg.iter().map(|&b| b as u8).collect();
        h.update(&bytes);
    }
    format!("{:x}", h.finalize())
}
