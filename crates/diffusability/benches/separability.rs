//! Times `lnc` and `linear_probe_acc` on a latent set given as `.npy` files; bench/separability.py runs
//! it beside faiss and scikit-learn on the same data.
//!
//! `cargo bench -p diffusability --bench separability -- LATENTS.npy LABELS.npy OUT_DIR THREADS`
//!
//! Writes `OUT_DIR/rust.json` (times in seconds, values) and `OUT_DIR/train.npy`, `OUT_DIR/test.npy`
//! (the probe's split, so the reference fits the same rows).

use diffusability::data::{Affine, Labels, Latents, Normalize, Normalized};
use diffusability::io::{ArrayData, RawArray, write_npy};
use diffusability::metrics::separability::{features, lnc, probe};
use diffusability::par::Threads;
use diffusability::progress::Silent;
use diffusability::stats::knn::{KnnMetric, knn};
use std::path::Path;
use std::time::Instant;

/// A minimal reader for C-order little-endian `.npy` files of `<f4` or integer labels; enough for the
/// files bench/separability.py writes.
fn read_npy(path: &str) -> (Vec<usize>, String, Vec<u8>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert_eq!(&bytes[..6], b"\x93NUMPY", "{path}: not an .npy file");
    let (hlen, start) = if bytes[6] == 1 {
        (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10)
    } else {
        (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        )
    };
    let header = std::str::from_utf8(&bytes[start..start + hlen]).unwrap();
    assert!(
        header.contains("'fortran_order': False"),
        "{path}: Fortran order"
    );
    let descr = header.split("'descr': '").nth(1).unwrap();
    let descr = descr[..descr.find('\'').unwrap()].to_string();
    let shape = header.split("'shape': (").nth(1).unwrap();
    let shape: Vec<usize> = shape[..shape.find(')').unwrap()]
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse().unwrap())
        .collect();
    (shape, descr, bytes[start + hlen..].to_vec())
}

/// CPU seconds of this process, all threads (utime + stime of `/proc/self/stat`, in the 100 Hz ticks
/// Linux reports there); NaN elsewhere. On a shared machine it is steadier than wall time.
fn cpu_s() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return f64::NAN;
    };
    let rest = &stat[stat.rfind(')').map_or(0, |i| i + 2)..];
    let f: Vec<&str> = rest.split(' ').collect();
    let tick = |i: usize| {
        f.get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    (tick(11) + tick(12)) / 100.0
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    assert!(
        args.len() == 4,
        "usage: separability LATENTS.npy LABELS.npy OUT_DIR THREADS"
    );
    let threads = Threads(args[3].parse().expect("THREADS"));
    let out = Path::new(&args[2]);

    let t = Instant::now();
    let (shape, descr, raw) = read_npy(&args[0]);
    assert_eq!(descr, "<f4");
    let vals: Vec<f32> = raw
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    drop(raw);
    let latents = Latents::from_vec(shape[1], shape[2], shape[3], vals);
    let (lshape, ldescr, lraw) = read_npy(&args[1]);
    let labels: Vec<i64> = match ldescr.as_str() {
        "<i8" => lraw
            .chunks_exact(8)
            .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
            .collect(),
        "<i4" => lraw
            .chunks_exact(4)
            .map(|b| i32::from_le_bytes(b.try_into().unwrap()) as i64)
            .collect(),
        other => panic!("labels dtype {other}"),
    };
    assert_eq!(lshape[0], shape[0]);
    let labels = Labels::new(labels);
    let load_s = t.elapsed().as_secs_f64();
    let n = shape[0];
    let k = 10;

    let result = threads
        .install(|| {
            let t = Instant::now();
            let (affine, _) = Affine::fit(&Normalize::Channel, &latents, None).unwrap();
            let normalize_s = t.elapsed().as_secs_f64();
            let z = Normalized {
                latents: &latents,
                affine: &affine,
            };
            let t = Instant::now();
            let (f, _) = features::pooled(z, None).unwrap();
            let pool_s = t.elapsed().as_secs_f64();
            let (t, c) = (Instant::now(), cpu_s());
            let nb = knn(&f, n, shape[1], k, KnnMetric::Cosine, &Silent);
            let (knn_s, knn_cpu_s) = (t.elapsed().as_secs_f64(), cpu_s() - c);
            let l = lnc::lnc(&nb, &labels);

            // The probe's own pooling (all tokens) equals the pooled features above without masks; the
            // timed part is standardization and the fit, as on the scikit-learn side.
            let split = probe::stratified_split(&labels, 0);
            let d = shape[1];
            let ys = |idx: &[usize]| idx.iter().map(|&i| labels.raw[i]).collect::<Vec<_>>();
            let (xtr, xte) = (
                probe::gather_rows(&f, d, &split.train),
                probe::gather_rows(&f, d, &split.test),
            );
            let (ytr, yte) = (ys(&split.train), ys(&split.test));
            let (t, c) = (Instant::now(), cpu_s());
            let r = probe::linear_probe(&xtr, &ytr, &xte, &yte, d, 1e-4, 500, &Silent).unwrap();
            let (probe_s, probe_cpu_s) = (t.elapsed().as_secs_f64(), cpu_s() - c);
            let idx = |v: &[usize]| RawArray {
                shape: vec![v.len()],
                data: ArrayData::I64(v.iter().map(|&i| i as i64).collect()),
            };
            write_npy(&out.join("train.npy"), &idx(&split.train)).unwrap();
            write_npy(&out.join("test.npy"), &idx(&split.test)).unwrap();
            serde_json::json!({
                "n": n, "threads": threads.0, "k": k,
                "load_s": load_s, "normalize_s": normalize_s, "pool_s": pool_s,
                "knn_s": knn_s, "knn_cpu_s": knn_cpu_s, "knn_rescans": nb.rescans, "lnc": l.value,
                "probe_s": probe_s, "probe_cpu_s": probe_cpu_s, "probe_acc": r.acc, "probe_train_acc": r.train_acc,
                "probe_iterations": r.fit.iterations, "probe_evaluations": r.fit.evaluations,
                "probe_grad_norm": r.fit.grad_norm, "probe_converged": r.fit.converged(),
                "probe_loss": r.fit.loss,
            })
        })
        .unwrap();
    std::fs::write(out.join("rust.json"), result.to_string()).unwrap();
    println!("{result}");
}
