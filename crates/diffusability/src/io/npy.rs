//! The `.npy` format (numpy's `numpy/lib/format.py`, versions 1.0, 2.0 and 3.0).
//!
//! We parse the header ourselves rather than use ndarray-npy's typed reader: the element type must be
//! dispatched at run time over f16, bf16, f32, f64, every integer width and bool, in either byte order
//! and in C or Fortran order, and an f32 little-endian C-order file must become a view into its memory
//! map. ndarray-npy's API asks for the element type at compile time and gives no access to the layout.

use super::dtype::Elem;
use super::stored::{Bytes, Layout, Stored};
use crate::error::{Error, Result};
use std::io::Read;
use std::sync::Arc;

const MAGIC: &[u8] = b"\x93NUMPY";

/// A parsed header: the layout and where the data starts.
#[derive(Debug)]
pub struct Header {
    pub layout: Layout,
    /// Byte offset of the data from the start of the `.npy` bytes.
    pub data_offset: usize,
}

/// The fixed-size preamble: magic, version and header length. Returns (header start, header length).
fn preamble(bytes: &[u8], err: &dyn Fn(String) -> Error) -> Result<(usize, usize)> {
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        return Err(err(
            "not a .npy file: it does not start with the magic string \\x93NUMPY".into(),
        ));
    }
    if bytes.len() < 8 {
        return Err(err(format!(
            "truncated .npy header: expected at least 10 bytes, found {}",
            bytes.len()
        )));
    }
    let (major, minor) = (bytes[6], bytes[7]);
    let start = match major {
        1 => 10,
        2 | 3 => 12,
        _ => {
            return Err(err(format!(
                "unsupported .npy format version {major}.{minor}, expected 1.0, 2.0 or 3.0"
            )));
        }
    };
    if bytes.len() < start {
        return Err(err(format!(
            "truncated .npy header: expected at least {start} bytes, found {}",
            bytes.len()
        )));
    }
    let len = if major == 1 {
        u16::from_le_bytes([bytes[8], bytes[9]]) as usize
    } else {
        u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize
    };
    Ok((start, len))
}

/// Parses a whole `.npy` header from the start of `bytes` (which must hold at least the header).
pub fn parse_header(bytes: &[u8], err: &dyn Fn(String) -> Error) -> Result<Header> {
    let (start, len) = preamble(bytes, err)?;
    let end = start + len;
    if bytes.len() < end {
        return Err(err(format!(
            "truncated .npy header: expected {end} bytes, found {}",
            bytes.len()
        )));
    }
    let text = String::from_utf8_lossy(&bytes[start..end]);
    let layout = parse_dict(text.trim_end()).map_err(|why| {
        err(format!(
            "cannot parse the .npy header {}: {why}",
            text.trim_end()
        ))
    })?;
    let layout = layout.map_err(err)?;
    Ok(Header {
        layout,
        data_offset: end,
    })
}

/// Maps a numpy `descr` to an element type and whether its bytes need swapping on this machine.
/// Ok(None) means a well-formed but unsupported dtype.
fn parse_descr(descr: &str) -> Option<(Elem, bool)> {
    // ml_dtypes' bfloat16 is saved with its name in some writers and as a 2-byte void ('<V2') by
    // numpy.save; numpy itself has no 2-byte void type of its own, so 'V2' is read as bfloat16.
    if descr == "bfloat16" || descr == "<bfloat16" {
        return Some((Elem::BF16, cfg!(target_endian = "big")));
    }
    let (order, rest) = match descr.as_bytes().first() {
        Some(b'<' | b'>' | b'|' | b'=') => (descr.as_bytes()[0], &descr[1..]),
        _ => (b'=', descr),
    };
    let big = match order {
        b'>' => true,
        b'<' => false,
        _ => cfg!(target_endian = "big"),
    };
    let elem = match rest {
        "f2" | "e" => Elem::F16,
        "f4" | "f" => Elem::F32,
        "f8" | "d" => Elem::F64,
        "V2" => Elem::BF16,
        "i1" | "b" => Elem::I8,
        "i2" | "h" => Elem::I16,
        "i4" | "i" => Elem::I32,
        "i8" | "q" => Elem::I64,
        "u1" | "B" => Elem::U8,
        "u2" | "H" => Elem::U16,
        "u4" | "I" => Elem::U32,
        "u8" | "Q" => Elem::U64,
        "b1" | "?" => Elem::Bool,
        _ => return None,
    };
    Some((elem, big != cfg!(target_endian = "big")))
}

/// A Python literal as found in `.npy` headers.
#[derive(Debug)]
enum Lit {
    Str(String),
    Bool(bool),
    Int(u64),
    Seq(Vec<Lit>),
    Dict(Vec<(Lit, Lit)>),
}

/// A recursive-descent parser for the Python literal subset numpy writes.
struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.s.get(self.i).copied()
    }

    fn expect(&mut self, c: u8) -> std::result::Result<(), String> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(format!("expected `{}` at byte {}", c as char, self.i))
        }
    }

    fn lit(&mut self) -> std::result::Result<Lit, String> {
        match self.peek() {
            Some(q @ (b'\'' | b'"')) => {
                self.i += 1;
                let from = self.i;
                while self.i < self.s.len() && self.s[self.i] != q {
                    self.i += 1;
                }
                if self.i >= self.s.len() {
                    return Err("unterminated string".into());
                }
                let v = String::from_utf8_lossy(&self.s[from..self.i]).into_owned();
                self.i += 1;
                Ok(Lit::Str(v))
            }
            Some(open @ (b'(' | b'[')) => {
                let close = if open == b'(' { b')' } else { b']' };
                self.i += 1;
                let mut items = Vec::new();
                loop {
                    if self.peek() == Some(close) {
                        self.i += 1;
                        return Ok(Lit::Seq(items));
                    }
                    items.push(self.lit()?);
                    if self.peek() == Some(b',') {
                        self.i += 1;
                    } else {
                        self.expect(close)?;
                        return Ok(Lit::Seq(items));
                    }
                }
            }
            Some(b'{') => {
                self.i += 1;
                let mut items = Vec::new();
                loop {
                    if self.peek() == Some(b'}') {
                        self.i += 1;
                        return Ok(Lit::Dict(items));
                    }
                    let k = self.lit()?;
                    self.expect(b':')?;
                    let v = self.lit()?;
                    items.push((k, v));
                    if self.peek() == Some(b',') {
                        self.i += 1;
                    } else {
                        self.expect(b'}')?;
                        return Ok(Lit::Dict(items));
                    }
                }
            }
            Some(c) if c.is_ascii_alphanumeric() => {
                let from = self.i;
                while self.i < self.s.len() && self.s[self.i].is_ascii_alphanumeric() {
                    self.i += 1;
                }
                let word = std::str::from_utf8(&self.s[from..self.i]).unwrap_or("");
                match word {
                    "True" => Ok(Lit::Bool(true)),
                    "False" => Ok(Lit::Bool(false)),
                    // Python 2 wrote long integers with an `L` suffix.
                    w => w
                        .trim_end_matches('L')
                        .parse()
                        .map(Lit::Int)
                        .map_err(|_| format!("unexpected `{w}`")),
                }
            }
            Some(c) => Err(format!("unexpected `{}` at byte {}", c as char, self.i)),
            None => Err("unexpected end".into()),
        }
    }
}

/// Parses the header dictionary. The outer error means a malformed header; the inner one a
/// well-formed header describing something we cannot read (an unsupported dtype).
fn parse_dict(text: &str) -> std::result::Result<std::result::Result<Layout, String>, String> {
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
    };
    let Lit::Dict(items) = p.lit()? else {
        return Err("expected a dictionary".into());
    };
    if p.peek().is_some() {
        return Err(format!(
            "unexpected text after the dictionary at byte {}",
            p.i
        ));
    }
    let (mut descr, mut fortran, mut shape) = (None, None, None);
    for (k, v) in items {
        let Lit::Str(k) = k else {
            return Err("expected string keys".into());
        };
        match (k.as_str(), v) {
            ("descr", v) => descr = Some(v),
            ("fortran_order", Lit::Bool(b)) => fortran = Some(b),
            ("shape", Lit::Seq(dims)) => {
                let mut s = Vec::with_capacity(dims.len());
                for d in dims {
                    match d {
                        Lit::Int(x) => s.push(
                            usize::try_from(x)
                                .map_err(|_| format!("dimension {x} is too large"))?,
                        ),
                        _ => return Err("expected integer dimensions in 'shape'".into()),
                    }
                }
                shape = Some(s);
            }
            ("fortran_order", _) => return Err("expected True or False for 'fortran_order'".into()),
            ("shape", _) => return Err("expected a tuple for 'shape'".into()),
            _ => {}
        }
    }
    let descr = descr.ok_or("missing key 'descr'")?;
    let fortran = fortran.ok_or("missing key 'fortran_order'")?;
    let shape = shape.ok_or("missing key 'shape'")?;
    let descr = match descr {
        Lit::Str(s) => s,
        _ => {
            return Ok(Err(
                "unsupported dtype: a structured (record) array; expected f16, bf16, f32, f64, an integer type or bool"
                    .into(),
            ));
        }
    };
    Ok(match parse_descr(&descr) {
        Some((elem, swap)) => Ok(Layout {
            elem,
            swap,
            fortran,
            shape,
        }),
        None => Err(format!(
            "unsupported dtype `{descr}`; expected f16, bf16, f32, f64, an integer type or bool"
        )),
    })
}

fn truncated(l: &Layout, need: usize, found: usize) -> String {
    format!(
        "truncated: shape {} of {} needs {need} bytes of data, found {found}",
        super::array::shape_str(&l.shape),
        l.elem.name(),
    )
}

/// Checks that `found` data bytes hold what the header declares.
fn check_size(h: &Header, found: usize, err: &dyn Fn(String) -> Error) -> Result<usize> {
    let need = h.layout.nbytes().ok_or_else(|| {
        err(format!(
            "the header declares shape {}, which is too large",
            super::array::shape_str(&h.layout.shape)
        ))
    })?;
    if found < need {
        return Err(err(truncated(&h.layout, need, found)));
    }
    Ok(need)
}

/// Opens a `.npy` file as a memory map (no data is read yet).
pub fn open(path: &str) -> Result<Stored> {
    let map = super::container::map_file(path)?;
    let err = |w: String| Error::input(path, None, w);
    let h = parse_header(&map, &err)?;
    let need = check_size(&h, map.len() - h.data_offset, &err)?;
    Ok(Stored {
        file: path.to_string(),
        key: None,
        layout: h.layout,
        bytes: Bytes::Mapped {
            map: Arc::new(map),
            offset: h.data_offset,
            len: need,
        },
    })
}

/// Reads the header of a `.npy` stream of `total` bytes, leaving the reader at the data.
pub fn read_header(
    r: &mut impl Read,
    total: usize,
    err: &dyn Fn(String) -> Error,
) -> Result<Header> {
    let io = |e: std::io::Error| err(format!("cannot read: {e}"));
    // The preamble is at most 12 bytes; read what the stream has, up to that.
    let mut head = Vec::with_capacity(12);
    r.by_ref().take(12).read_to_end(&mut head).map_err(io)?;
    let (start, len) = preamble(&head, err)?;
    let end = start + len;
    if total < end {
        return Err(err(format!(
            "truncated .npy header: expected {end} bytes, found {total}"
        )));
    }
    // A version-1 preamble is 10 bytes, so `head` may already hold the first bytes of the header.
    let have = head.len();
    let mut bytes = head;
    if end > have {
        bytes.resize(end, 0);
        r.read_exact(&mut bytes[have..]).map_err(io)?;
    }
    let h = parse_header(&bytes, err)?;
    check_size(&h, total - h.data_offset, err)?;
    Ok(h)
}

/// Bytes read per step from a stream. Memory grows only as data arrives, so an archive that declares
/// more than it holds cannot make us allocate what it declares.
const READ_STEP: usize = 1 << 26;

/// Reads a whole `.npy` stream of `total` bytes into memory.
pub fn read(r: &mut impl Read, total: usize, file: &str, key: &str) -> Result<Stored> {
    let err = |w: String| Error::input(file, Some(key), w);
    let io = |e: std::io::Error| err(format!("cannot read: {e}"));
    let h = read_header(r, total, &err)?;
    let need = h.layout.nbytes().unwrap_or(0);
    // 4-byte words, so that f32 data can become latents without another copy.
    let mut words: Vec<u32> = Vec::new();
    let mut got = 0;
    while got < need {
        let step = (need - got).min(READ_STEP);
        let want = (got + step).div_ceil(4);
        words.try_reserve_exact(want - words.len()).map_err(|_| {
            Error::internal(format!(
                "{}: out of memory reading {need} bytes",
                crate::error::location(file, Some(key))
            ))
        })?;
        words.resize(want, 0);
        let buf = &mut bytemuck::cast_slice_mut::<u32, u8>(&mut words)[got..got + step];
        let mut filled = 0;
        while filled < step {
            match r.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(k) => filled += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io(e)),
            }
        }
        got += filled;
        if filled < step {
            return Err(err(truncated(&h.layout, need, got)));
        }
    }
    // Read to the end so that the archive checks the entry's CRC.
    std::io::copy(r, &mut std::io::sink()).map_err(io)?;
    Ok(Stored {
        file: file.to_string(),
        key: Some(key.to_string()),
        layout: h.layout,
        bytes: Bytes::Owned { words, len: need },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(header: &str) -> std::result::Result<Layout, String> {
        match parse_dict(header) {
            Ok(Ok(l)) => Ok(l),
            Ok(Err(e)) | Err(e) => Err(e),
        }
    }

    #[test]
    fn headers_as_numpy_writes_them() {
        let l = parse("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }").unwrap();
        assert_eq!(
            (l.elem, l.swap, l.fortran, l.shape),
            (Elem::F32, false, false, vec![2, 3])
        );
        // Keys in any order, double quotes, a 1-tuple, Python 2 longs, big-endian and native order.
        let l = parse(r#"{"shape": (5L,), "fortran_order": True, "descr": ">i8"}"#).unwrap();
        assert_eq!(
            (l.elem, l.swap, l.fortran, l.shape),
            (Elem::I64, true, true, vec![5])
        );
        let l = parse("{'descr': '=f2', 'fortran_order': False, 'shape': ()}").unwrap();
        assert_eq!((l.elem, l.swap, l.shape), (Elem::F16, false, vec![]));
        assert_eq!(
            parse("{'descr': '|b1', 'fortran_order': False, 'shape': (1,)}")
                .unwrap()
                .elem,
            Elem::Bool
        );
        assert_eq!(
            parse("{'descr': '<V2', 'fortran_order': False, 'shape': (1,)}")
                .unwrap()
                .elem,
            Elem::BF16
        );
        assert_eq!(
            parse("{'descr': '|u1', 'fortran_order': False, 'shape': (1,)}")
                .unwrap()
                .elem,
            Elem::U8
        );
    }

    #[test]
    fn malformed_headers_are_refused() {
        for bad in [
            "",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } trailing",
            "{'descr': '<f4', 'fortran_order': 0, 'shape': (2,)}",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2, -1)}",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2,}",
            "{'descr': '<f4, 'fortran_order': False, 'shape': (2,)}",
            "{'descr': '<f4', 'shape': (2,)}",
            "{'descr': '<U8', 'fortran_order': False, 'shape': (2,)}",
            "{'descr': '<f16', 'fortran_order': False, 'shape': (2,)}",
        ] {
            assert!(parse(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn version_2_header() {
        let text = "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }\n";
        let mut b = b"\x93NUMPY\x02\x00".to_vec();
        b.extend_from_slice(&(text.len() as u32).to_le_bytes());
        b.extend_from_slice(text.as_bytes());
        let h = parse_header(&b, &|w| Error::input_msg(w)).unwrap();
        assert_eq!(h.data_offset, 12 + text.len());
        assert_eq!(h.layout.shape, vec![3]);
    }
}
