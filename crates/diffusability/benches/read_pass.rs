//! Load a latents `.npy` with `io::load` and make one statistics pass over it (per-channel mean and
//! unbiased std, as `--normalize channel` does), printing times and peak memory as JSON on stdout.
//! `bench/read_pass.py` runs this beside the numpy equivalent.
//!
//! Usage: cargo bench -p diffusability --bench read_pass -- PATH.npy

use diffusability::data::{digest, normalize::channel_moments};
use diffusability::io::{InputSpec, load};
use std::time::Instant;

/// Peak resident set size of this process in bytes (`VmHWM`), which counts the pages of a memory map
/// that were touched as well as heap memory.
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn main() {
    // cargo passes `--bench` to harness-less benches; the path is the first other argument.
    let Some(path) = std::env::args().skip(1).find(|a| !a.starts_with("--")) else {
        eprintln!("usage: cargo bench -p diffusability --bench read_pass -- PATH.npy");
        std::process::exit(2);
    };
    let file_bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);

    let t0 = Instant::now();
    let ds = match load(&InputSpec {
        path: path.clone(),
        ..Default::default()
    }) {
        Ok(ds) => ds,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(e.exit_code());
        }
    };
    let load_s = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let moments = channel_moments(&ds.latents);
    let pass_s = t1.elapsed().as_secs_f64();
    let total_s = t0.elapsed().as_secs_f64();
    let peak = peak_rss();

    // The content digest (part of `load`) timed on its own: a sequential SHA-256 over every value.
    let t2 = Instant::now();
    let sha = digest(&ds.latents, ds.labels.as_ref(), ds.masks.as_ref());
    let digest_s = t2.elapsed().as_secs_f64();
    assert_eq!(sha, ds.source.sha256);

    let sh = ds.latents.shape();
    let mapped = ds
        .latents
        .segments()
        .iter()
        .all(|s| matches!(s, diffusability::data::Segment::Mapped { .. }));
    let out = serde_json::json!({
        "path": path,
        "file_bytes": file_bytes,
        "shape": [sh.n, sh.c, sh.h, sh.w],
        "mapped": mapped,
        "threads": rayon::current_num_threads(),
        "load_s": load_s,
        "pass_s": pass_s,
        "total_s": total_s,
        "digest_s": digest_s,
        "peak_rss_bytes": peak,
        "sha256": sha,
        "mean": moments.iter().map(|m| m.mean).collect::<Vec<_>>(),
        "std": moments.iter().map(|m| m.std()).collect::<Vec<_>>(),
    });
    println!("{out}");
}
