//! Benchmark of the spatial and smoothness metrics on `.npy` latents `(N, C, H, W)` f32 and token or
//! pixel masks `(N, h, w)` u8/bool, as `bench/spatial.py` writes them; with labels `(N,)` i64 also the
//! whole default set of spec sections 2-4 (`lnc`, `linear_probe_acc`, `lds`, `cds`, `srss`, `sec`) in
//! one run, as `diffusability metrics` computes it.
//!
//! usage: cargo bench -p diffusability --bench spatial -- LATENTS.npy MASKS.npy [THREADS [LABELS.npy]]
//! Prints one JSON object: wall and CPU times (s) of each selection, per-family timings and the values.

use diffusability::data::{Dataset, Labels, Latents, Masks, Segment, Source};
use diffusability::metrics::{RunOptions, Selection, run};
use diffusability::par::Threads;
use diffusability::progress::Silent;
use memmap2::Mmap;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Instant;

/// The shape, dtype descriptor and data offset of a version 1/2 `.npy` file. A minimal reader for
/// the files the bench script writes (C order, little-endian); the library's own reader is not used
/// so that this bench depends only on the metrics.
fn npy_header(bytes: &[u8]) -> (Vec<usize>, String, usize) {
    assert_eq!(&bytes[..6], b"\x93NUMPY", "not a .npy file");
    let (len, start) = if bytes[6] == 1 {
        (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10)
    } else {
        (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        )
    };
    let header = std::str::from_utf8(&bytes[start..start + len]).expect("ascii header");
    assert!(header.contains("'fortran_order': False"), "C order only");
    let field = |key: &str| {
        let at = header.find(key).expect("header key") + key.len();
        header[at..].trim_start_matches([':', ' ']).to_string()
    };
    let descr = field("'descr'");
    let descr = descr[1..descr[1..].find('\'').unwrap() + 1].to_string();
    let shape_txt = field("'shape'");
    let shape: Vec<usize> = shape_txt[1..shape_txt.find(')').unwrap()]
        .split(',')
        .filter(|t| !t.trim().is_empty())
        .map(|t| t.trim().parse().unwrap())
        .collect();
    (shape, descr, start + len)
}

/// CPU seconds of this process, all threads (utime + stime of `/proc/self/stat`, in the 100 Hz
/// ticks Linux reports there); `None` elsewhere. On a shared machine it is steadier than wall time.
fn cpu_s() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesized command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

fn map(path: &str) -> Arc<Mmap> {
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    // SAFETY: the bench's input files are not modified while it runs.
    Arc::new(unsafe { Mmap::map(&f) }.unwrap())
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    if args.len() < 2 {
        eprintln!("usage: spatial LATENTS.npy MASKS.npy [THREADS]");
        return;
    }
    let threads = args
        .get(2)
        .map(|t| Threads(t.parse().unwrap()))
        .unwrap_or_else(Threads::available);

    let t = Instant::now();
    let zmap = map(&args[0]);
    let (shape, descr, offset) = npy_header(&zmap);
    assert_eq!(descr, "<f4", "latents must be little-endian f32");
    let (n, c, h, w) = (shape[0], shape[1], shape[2], shape[3]);
    let latents = Latents::from_segments(
        c,
        h,
        w,
        vec![Segment::Mapped {
            map: zmap,
            offset,
            len: n * c * h * w,
        }],
    );
    let mmap = map(&args[1]);
    let (mshape, mdescr, moff) = npy_header(&mmap);
    assert!(
        mdescr == "|u1" || mdescr == "|b1",
        "masks must be u8 or bool"
    );
    assert_eq!(mshape[0], n);
    let (mh, mw) = (mshape[1], mshape[2]);
    let px: Vec<bool> = mmap[moff..moff + n * mh * mw]
        .iter()
        .map(|&b| b != 0)
        .collect();
    let masks = Masks::pool(&px, n, mh, mw, h, w);
    let labels = args.get(3).map(|path| {
        let lmap = map(path);
        let (lshape, ldescr, loff) = npy_header(&lmap);
        assert_eq!(ldescr, "<i8", "labels must be little-endian i64");
        assert_eq!(lshape[0], n);
        Labels::new(
            lmap[loff..loff + 8 * n]
                .chunks_exact(8)
                .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
                .collect(),
        )
    });
    let section = labels.is_some();
    let data = Dataset {
        latents,
        labels,
        masks: Some(masks),
        source: Source::default(),
    };
    let load_s = t.elapsed().as_secs_f64();

    let mut out = serde_json::Map::new();
    out.insert("n".into(), json!([n, c, h, w]));
    out.insert("threads".into(), json!(threads.0));
    out.insert("load_s".into(), json!(load_s));
    let mut selections = vec![
        ("lds_cds_srss", vec!["lds", "cds", "srss"]),
        ("sec", vec!["sec"]),
        ("all4", vec!["lds", "cds", "srss", "sec"]),
    ];
    if section {
        selections.push((
            "section",
            vec!["lnc", "linear_probe_acc", "lds", "cds", "srss", "sec"],
        ));
    }
    for (name, keys) in selections {
        let opts = RunOptions {
            selection: Selection::List(keys.iter().map(|s| s.to_string()).collect()),
            threads,
            ..Default::default()
        };
        let (t, cpu0) = (Instant::now(), cpu_s());
        let r = run(&data, &opts, &Silent).unwrap();
        let wall = t.elapsed().as_secs_f64();
        let cpu = cpu_s().zip(cpu0).map(|(b, a)| b - a);
        out.insert(
            name.into(),
            json!({
                "wall_s": wall,
                "cpu_s": cpu,
                "timings_s": Value::Object(r.timings_s),
                "metrics": Value::Object(r.metrics),
                "probe": r.details.get("linear_probe_acc").cloned(),
                "warnings": r.warnings,
            }),
        );
        eprintln!("{name}: {wall:.2} s");
    }
    println!("{}", Value::Object(out));
}
