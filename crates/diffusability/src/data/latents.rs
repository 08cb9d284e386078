//! Latents as `(N, C, H, W)` f32 samples, either memory-mapped from disk or owned.
//!
//! A data set may be the concatenation of several shards, so storage is a list of segments, each a
//! contiguous run of whole samples. Metrics address samples by global index and never see segments.
//! A segment may also be memory owned by the caller (a numpy array), kept alive through [`HostBuffer`].

use memmap2::Mmap;
use std::sync::Arc;

/// The shape of a latent set: `n` samples of `c` channels on an `h x w` grid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
}

impl Shape {
    /// Tokens per sample, `S = H * W`.
    pub fn s(&self) -> usize {
        self.h * self.w
    }
    /// Values per sample, `D = C * H * W`.
    pub fn d(&self) -> usize {
        self.c * self.h * self.w
    }
}

/// Bytes owned outside this library (e.g. a numpy array's buffer), kept alive as long as the handle
/// lives. The implementor promises that `bytes` stays valid and unchanged while any handle exists:
/// the Python bindings hold a reference to the array, and document that it must not be mutated
/// during a call.
pub trait HostBuffer: Send + Sync + std::fmt::Debug {
    fn bytes(&self) -> &[u8];
}

/// One contiguous run of whole samples.
#[derive(Clone, Debug)]
pub enum Segment {
    /// Native-endian, aligned f32 bytes inside a memory map, starting at byte `offset`, `len` floats.
    Mapped {
        map: Arc<Mmap>,
        offset: usize,
        len: usize,
    },
    /// Values converted (or copied) into memory.
    Owned(Arc<Vec<f32>>),
    /// Native-endian, 4-byte aligned f32 values in a caller's buffer, read in place (`len` floats).
    Host {
        buffer: Arc<dyn HostBuffer>,
        len: usize,
    },
}

impl Segment {
    pub fn as_slice(&self) -> &[f32] {
        match self {
            Segment::Mapped { map, offset, len } => {
                // The reader only builds Mapped segments whose range is in bounds and 4-byte aligned.
                bytemuck::cast_slice(&map[*offset..*offset + *len * 4])
            }
            Segment::Owned(v) => v.as_slice(),
            // Built only by `Stored::into_segment` after checking length and 4-byte alignment.
            Segment::Host { buffer, len } => bytemuck::cast_slice(&buffer.bytes()[..*len * 4]),
        }
    }
}

/// Raw (unnormalized) latents.
#[derive(Clone, Debug)]
pub struct Latents {
    shape: Shape,
    segments: Vec<Segment>,
    /// First global sample index of each segment, plus `n` at the end.
    starts: Vec<usize>,
}

impl Latents {
    /// Builds latents from segments whose lengths are whole multiples of `c*h*w`.
    /// Panics only on a programming error (segment lengths inconsistent with the shape).
    pub fn from_segments(c: usize, h: usize, w: usize, segments: Vec<Segment>) -> Latents {
        let d = c * h * w;
        let mut starts = Vec::with_capacity(segments.len() + 1);
        let mut n = 0;
        for s in &segments {
            let len = s.as_slice().len();
            assert!(
                d > 0 && len % d == 0,
                "segment of {len} values is not whole samples of {d}"
            );
            starts.push(n);
            n += len / d;
        }
        starts.push(n);
        Latents {
            shape: Shape { n, c, h, w },
            segments,
            starts,
        }
    }

    /// Latents held in memory, `data.len() == n*c*h*w`.
    pub fn from_vec(c: usize, h: usize, w: usize, data: Vec<f32>) -> Latents {
        Latents::from_segments(c, h, w, vec![Segment::Owned(Arc::new(data))])
    }

    pub fn shape(&self) -> Shape {
        self.shape
    }

    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The `c*h*w` raw values of sample `i` (channel-major: `[c][y][x]`).
    pub fn sample(&self, i: usize) -> &[f32] {
        let d = self.shape.d();
        // Segments are few (one per shard): a binary search over their starts.
        let seg = self.starts.partition_point(|&s| s <= i) - 1;
        let local = i - self.starts[seg];
        &self.segments[seg].as_slice()[local * d..(local + 1) * d]
    }

    /// The raw values of samples `range` if they lie in one segment (the common, single-file case).
    pub fn contiguous(&self, range: std::ops::Range<usize>) -> Option<&[f32]> {
        let d = self.shape.d();
        let seg = self.starts.partition_point(|&s| s <= range.start) - 1;
        if range.end > self.starts[seg + 1] {
            return None;
        }
        let a = range.start - self.starts[seg];
        let b = range.end - self.starts[seg];
        Some(&self.segments[seg].as_slice()[a * d..b * d])
    }

    /// A new set holding only the samples `idx`, in that order (copied).
    pub fn select(&self, idx: &[usize]) -> Latents {
        let d = self.shape.d();
        let mut out = Vec::with_capacity(idx.len() * d);
        for &i in idx {
            out.extend_from_slice(self.sample(i));
        }
        Latents::from_vec(self.shape.c, self.shape.h, self.shape.w, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_across_segments() {
        let a = Segment::Owned(Arc::new((0..8).map(|x| x as f32).collect()));
        let b = Segment::Owned(Arc::new((8..20).map(|x| x as f32).collect()));
        let l = Latents::from_segments(1, 2, 2, vec![a, b]);
        assert_eq!(l.shape().n, 5);
        assert_eq!(l.sample(1), &[4.0, 5.0, 6.0, 7.0]);
        assert_eq!(l.sample(2), &[8.0, 9.0, 10.0, 11.0]);
        assert_eq!(l.contiguous(0..2).unwrap().len(), 8);
        assert!(l.contiguous(1..3).is_none());
        assert_eq!(l.contiguous(2..5).unwrap()[0], 8.0);
    }
}
