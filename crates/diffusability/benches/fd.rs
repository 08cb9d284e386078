//! Fréchet distance of two feature files, timed in two stages: reading + statistics (mean and
//! covariance), then the distance from the statistics. Prints one JSON object on stdout.
//! `bench/fd.py` runs this beside the scipy `sqrtm` route on the same files and thread count.
//!
//! Usage: cargo bench -p diffusability --bench fd -- A.npy B.npy [--threads N]

use diffusability::metrics::fd::{frechet_distance, load};
use diffusability::par::Threads;
use std::time::Instant;

fn main() {
    // cargo passes `--bench` to harness-less benches; skip it and read the rest.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let mut threads = Threads::available();
    let mut paths = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--threads" {
            threads = Threads(it.next().and_then(|v| v.parse().ok()).unwrap_or(1));
        } else {
            paths.push(a.clone());
        }
    }
    let [a, b] = &paths[..] else {
        eprintln!("usage: cargo bench -p diffusability --bench fd -- A.npy B.npy [--threads N]");
        std::process::exit(2);
    };
    let out = threads.install(|| {
        let t0 = Instant::now();
        let ga = load(a)?;
        let gb = load(b)?;
        let stats_s = t0.elapsed().as_secs_f64();
        let t1 = Instant::now();
        let r = frechet_distance(&ga.gaussian, &gb.gaussian)?;
        let fd_s = t1.elapsed().as_secs_f64();
        Ok::<_, diffusability::Error>(serde_json::json!({
            "fd": r.fd,
            "stats_s": stats_s,
            "fd_s": fd_s,
            "total_s": stats_s + fd_s,
            "threads": threads.0,
            "f": ga.gaussian.dim(),
        }))
    });
    match out {
        Ok(Ok(j)) => println!("{j}"),
        Ok(Err(e)) | Err(e) => {
            eprintln!("{e}");
            std::process::exit(e.exit_code());
        }
    }
}
