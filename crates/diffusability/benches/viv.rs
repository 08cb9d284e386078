//! Benchmark of the VIV family on a memory-mapped `.npy` file (run by `bench/viv.py`).
//!
//! ```text
//! cargo bench -p diffusability --bench viv -- LATENTS.npy LABELS.npy [--threads N] [--marginal] [--reference]
//! ```
//!
//! Prints one JSON object: wall and CPU seconds of the five default keys (and, with `--marginal`, of a
//! run that adds `viv_marginal`), the values, the mean flip-flop sweeps, and the peak resident memory
//! (`VmHWM`, which includes the pages of the memory-mapped input that were touched). With
//! `--reference`, also a run with `viv_precision = f64` (every class from `Sigma_S = I`, all sweeps in
//! f64: the iteration of metrics.md section 1 as written) and the largest relative difference of the
//! default keys and of the per-class VIVs between the two.
//!
//! The `.npy` reader here is deliberately minimal (little-endian f32 latents and i64/i32 labels in C
//! order, version 1 or 2 headers): the library's own reader lives elsewhere and this benchmark must not
//! depend on it.

use diffusability::data::{Dataset, Labels, Latents, Segment, Source};
use diffusability::metrics::params::ParamValue;
use diffusability::metrics::{RunOptions, Selection, run};
use diffusability::par::Threads;
use diffusability::progress::Silent;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Instant;

/// The header of an `.npy` file: dtype descriptor, shape, and the byte offset of the data.
fn npy_header(bytes: &[u8], path: &str) -> (String, Vec<usize>, usize) {
    assert!(
        bytes.len() >= 10 && &bytes[..6] == b"\x93NUMPY",
        "{path}: not an .npy file"
    );
    let (len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => panic!("{path}: unsupported .npy version {v}"),
    };
    let header = std::str::from_utf8(&bytes[start..start + len]).expect("ASCII header");
    let field = |key: &str| -> &str {
        let at = header
            .find(key)
            .unwrap_or_else(|| panic!("{path}: no {key} in header"));
        &header[at + key.len()..]
    };
    assert!(
        field("'fortran_order':").trim_start().starts_with("False"),
        "{path}: Fortran order is not supported"
    );
    let descr = field("'descr':").trim_start()[1..]
        .split('\'')
        .next()
        .unwrap()
        .to_string();
    let shape_text = field("'shape':").trim_start();
    let shape = shape_text[1..shape_text.find(')').unwrap()]
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse().unwrap())
        .collect();
    (descr, shape, start + len)
}

fn load_latents(path: &str) -> Latents {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    // SAFETY: the file is not modified while the benchmark runs.
    let map = unsafe { memmap2::Mmap::map(&file) }.unwrap_or_else(|e| panic!("{path}: {e}"));
    let (descr, shape, offset) = npy_header(&map, path);
    assert_eq!(
        descr, "<f4",
        "{path}: expected little-endian float32 latents"
    );
    assert_eq!(shape.len(), 4, "{path}: expected (N, C, H, W)");
    assert_eq!(offset % 4, 0);
    let len: usize = shape.iter().product();
    assert!(map.len() >= offset + 4 * len, "{path}: file is truncated");
    Latents::from_segments(
        shape[1],
        shape[2],
        shape[3],
        vec![Segment::Mapped {
            map: Arc::new(map),
            offset,
            len,
        }],
    )
}

fn load_labels(path: &str) -> Vec<i64> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let (descr, shape, offset) = npy_header(&bytes, path);
    let n: usize = shape.iter().product();
    let data = &bytes[offset..];
    match descr.as_str() {
        "<i8" => data[..8 * n]
            .chunks_exact(8)
            .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
            .collect(),
        "<i4" => data[..4 * n]
            .chunks_exact(4)
            .map(|b| i32::from_le_bytes(b.try_into().unwrap()) as i64)
            .collect(),
        d => panic!("{path}: expected int64 or int32 labels, found {d}"),
    }
}

/// User + system CPU seconds of this process (from /proc/self/stat, in clock ticks of 1/100 s).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(11) + tick(12)) / 100.0
}

/// `VmHWM` (peak resident set) in MB.
fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn timed_run(ds: &Dataset, keys: &[&str], threads: usize, f64_reference: bool) -> Value {
    let mut opts = RunOptions {
        selection: Selection::List(keys.iter().map(|s| s.to_string()).collect()),
        threads: Threads(threads),
        ..Default::default()
    };
    if f64_reference {
        opts.overrides
            .0
            .insert("viv_precision", ParamValue::Str("f64".into()));
    }
    let (t, cpu) = (Instant::now(), cpu_seconds());
    let report = run(ds, &opts, &Silent).expect("the run succeeds");
    let wall = t.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu;
    let per_class = report.details["viv"]["per_class"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let sweeps: Vec<f64> = per_class
        .iter()
        .filter_map(|p| p["sweeps"].as_f64())
        .collect();
    let sweeps_f32: Vec<f64> = per_class
        .iter()
        .filter_map(|p| p["sweeps_f32"].as_f64())
        .collect();
    let per_class_viv: Vec<f64> = per_class.iter().filter_map(|p| p["viv"].as_f64()).collect();
    json!({
        "wall_s": wall,
        "cpu_s": cpu,
        "timings_s": report.timings_s,
        "metrics": report.metrics,
        "mean_sweeps": sweeps.iter().sum::<f64>() / sweeps.len().max(1) as f64,
        "max_sweeps": sweeps.iter().fold(0.0f64, |a, b| a.max(*b)),
        "mean_sweeps_f32": sweeps_f32.iter().sum::<f64>() / sweeps_f32.len().max(1) as f64,
        "warnings": report.warnings,
        "marginal": report.details.get("viv_marginal").cloned().unwrap_or(Value::Null),
        "peak_rss_mb": peak_rss_mb(),
        "per_class_viv": per_class_viv,
    })
}

/// The largest relative difference between two runs' default keys and between their per-class VIVs.
fn agreement(a: &Value, b: &Value) -> Value {
    let rel = |x: f64, y: f64| (x - y).abs() / y.abs().max(f64::MIN_POSITIVE);
    let keys = a["metrics"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k, rel(v.as_f64()?, b["metrics"][k].as_f64()?))))
                .fold(0.0f64, |w, (_, r)| w.max(r))
        })
        .unwrap_or(f64::NAN);
    let (pa, pb) = (
        a["per_class_viv"].as_array().cloned().unwrap_or_default(),
        b["per_class_viv"].as_array().cloned().unwrap_or_default(),
    );
    let per_class = if pa.len() == pb.len() {
        pa.iter()
            .zip(&pb)
            .filter_map(|(x, y)| Some(rel(x.as_f64()?, y.as_f64()?)))
            .fold(0.0f64, f64::max)
    } else {
        f64::NAN
    };
    json!({"keys_max_rel": keys, "per_class_viv_max_rel": per_class})
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let mut files = Vec::new();
    let mut threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut marginal = false;
    let mut reference = false;
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--threads" => {
                i += 1;
                threads = args[i].parse().expect("--threads N");
            }
            "--marginal" => marginal = true,
            "--reference" => reference = true,
            a => files.push(a.to_string()),
        }
        i += 1;
    }
    assert_eq!(
        files.len(),
        2,
        "usage: viv LATENTS.npy LABELS.npy [--threads N] [--marginal] [--reference]"
    );
    let t = Instant::now();
    let latents = load_latents(&files[0]);
    let labels = load_labels(&files[1]);
    let sh = latents.shape();
    assert_eq!(labels.len(), sh.n, "one label per latent");
    let ds = Dataset {
        latents,
        labels: Some(Labels::new(labels)),
        masks: None,
        source: Source::default(),
    };
    let load_s = t.elapsed().as_secs_f64();
    let keys = [
        "viv",
        "viv_per_dim",
        "viv_total_variance",
        "viv_anisotropy",
        "viv_logit_normal",
    ];
    let default = timed_run(&ds, &keys, threads, false);
    let mut out = json!({
        "shape": [sh.n, sh.c, sh.h, sh.w],
        "input_mb": (sh.n * sh.d() * 4) as f64 / (1024.0 * 1024.0),
        "threads": threads,
        "load_s": load_s,
        "default": default,
    });
    if marginal {
        let mut all = keys.to_vec();
        all.push("viv_marginal");
        out["with_marginal"] = timed_run(&ds, &all, threads, false);
    }
    if reference {
        let f64_run = timed_run(&ds, &keys, threads, true);
        out["agreement_with_f64"] = agreement(&out["default"], &f64_run);
        out["f64_reference"] = f64_run;
    }
    // The per-class values served the agreement only.
    for run in ["default", "with_marginal", "f64_reference"] {
        if let Some(o) = out.get_mut(run).and_then(Value::as_object_mut) {
            o.remove("per_class_viv");
        }
    }
    println!("{}", serde_json::to_string_pretty(&out).unwrap());
}
