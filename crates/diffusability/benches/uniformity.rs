//! Latent uniformity timings, printed as JSON on stdout; `bench/uniformity.py` runs this beside openTSNE
//! and scikit-learn on the same points.
//!
//! Usage:
//!   cargo bench -p diffusability --bench uniformity -- points POINTS.npy OUT_DIR [--threads T]
//!         [--iters I] [--repulsion default|exact|bh|fft [--nodes K] [--width W]] [--init INIT.npy]
//!     one t-SNE of the given `n x d` points, stage by stage (affinities, PCA initialization or the
//!     given `n x 2` one, optimization, exact KL, KDE statistics); writes OUT_DIR/ours_embedding.npy.
//!     `--repulsion fft` takes the grid's nodes per box and widest box (to compare approximations).
//!   cargo bench -p diffusability --bench uniformity -- metric LATENTS.npy OUT_DIR [--threads T]
//!         [--repeats R] [--samples N]
//!     the whole uniformity family as `diffusability metrics` runs it (channel normalization, R repeats
//!     of N sampled pixel vectors); writes the pixel vectors of repeat 0 to OUT_DIR/points.npy.

use diffusability::data::{Affine, Normalize, Normalized};
use diffusability::io::{ArrayData, InputSpec, RawArray, load, read_array, write_npy};
use diffusability::metrics::uniformity::tsne::{Points, Settings, affinity, init, kl, optimize};
use diffusability::metrics::uniformity::{density, sample};
use diffusability::metrics::{ParamValue, Params, RunOptions, Selection, run};
use diffusability::par::Threads;
use diffusability::progress::Silent;
use diffusability::stats::rng::stream;
use std::path::Path;
use std::time::Instant;

/// CPU seconds used by this process so far (user + system, from `/proc/self/stat`); on a shared
/// machine this is steadier than wall time.
fn cpu_s() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 (utime, stime) are the 12th and 13th after the command name; clock ticks of 1/100 s.
    (tick(11) + tick(12)) / 100.0
}

fn fail(msg: impl std::fmt::Display) -> ! {
    eprintln!("{msg}");
    std::process::exit(2)
}

fn flag(args: &[String], name: &str) -> Option<usize> {
    let at = args.iter().position(|a| a == name)?;
    Some(
        args.get(at + 1)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| fail(format!("{name}: expected a number"))),
    )
}

/// How the repulsion is computed in `points` mode: a method, or an FFT grid of `nodes` nodes per box
/// and boxes at most `width` wide.
#[derive(Clone, Copy, Debug)]
enum Rep {
    Method(optimize::Repulsion),
    Fft { nodes: usize, width: f64 },
}

fn read_f64(path: &str) -> (Vec<usize>, Vec<f64>) {
    let a = read_array(path, None).unwrap_or_else(|e| fail(e));
    let v = match a.data {
        ArrayData::F32(v) => v.iter().map(|&v| v as f64).collect(),
        ArrayData::F64(v) => v,
        _ => fail("expected f32 or f64 values"),
    };
    (a.shape, v)
}

fn points_mode(path: &str, out: &Path, threads: usize, iters: usize, rep: Rep, init: Option<&str>) {
    let given = init.map(|f| read_f64(f).1);
    let (shape, x) = read_f64(path);
    let (n, d) = match shape[..] {
        [n, d] => (n, d),
        _ => fail("expected an n x d array"),
    };
    let s = Settings::new(30.0, iters);
    let result = Threads(threads)
        .install(|| {
            let x = Points::new(&x, n, d);
            let c0 = cpu_s();
            let t0 = Instant::now();
            let a = affinity::affinities(x, s.perplexity, s.neighbours(n));
            let p = affinity::joint(&a);
            let t1 = Instant::now();
            let c1 = cpu_s();
            let y0 = match &given {
                Some(y0) => y0.clone(),
                None => init::pca(x, s.init_std, None).unwrap_or_else(|e| fail(format!("{e:?}"))),
            };
            let t2 = Instant::now();
            let schedule = optimize::Schedule {
                iters: s.iters,
                early_iters: s.early_iters,
                early_exaggeration: s.early_exaggeration,
                learning_rate: s.learning_rate(n),
            };
            let y = match rep {
                Rep::Method(m) => optimize::optimize(&p, &y0, &schedule, m, &Silent),
                Rep::Fft { nodes, width } => optimize::optimize_with(
                    &p,
                    &y0,
                    &schedule,
                    &mut optimize::FftRepulsion::new(nodes, width),
                    &Silent,
                ),
            };
            let t3 = Instant::now();
            let c3 = cpu_s();
            let kl = kl::exact_kl(x, &a.exact, &y);
            let t4 = Instant::now();
            let c4 = cpu_s();
            let dens = density::kde_at_points(&y).unwrap_or_else(|e| fail(format!("{e:?}")));
            let u = density::uniformity(&dens);
            let t5 = Instant::now();
            let c5 = cpu_s();
            let secs = |a: Instant, b: Instant| (b - a).as_secs_f64();
            (
                y,
                serde_json::json!({
                    "n": n, "d": d, "threads": rayon::current_num_threads(),
                    "affinity_s": secs(t0, t1), "init_s": secs(t1, t2), "optimize_s": secs(t2, t3),
                    "kl_s": secs(t3, t4), "kde_s": secs(t4, t5), "total_s": secs(t0, t5),
                    "tsne_s": secs(t0, t3),
                    "cpu_s": {"affinity": c1 - c0, "optimize": c3 - c1, "kl": c4 - c3, "kde": c5 - c4, "total": c5 - c0},
                    "kl": kl, "nnz": p.values.len(),
                    "uniformity_cv": u.cv, "uniformity_gini": u.gini, "uniformity_entropy": u.entropy,
                }),
            )
        })
        .unwrap_or_else(|e| fail(e));
    write_npy(
        &out.join("ours_embedding.npy"),
        &RawArray::f64(vec![n, 2], result.0),
    )
    .unwrap_or_else(|e| fail(e));
    println!("{}", result.1);
}

fn metric_mode(path: &str, out: &Path, threads: usize, repeats: usize, samples: usize) {
    let ds = load(&InputSpec {
        path: path.to_string(),
        ..Default::default()
    })
    .unwrap_or_else(|e| fail(e));
    let mut overrides = Params::default();
    overrides
        .0
        .insert("uniformity_repeats", ParamValue::Int(repeats as i64));
    overrides
        .0
        .insert("tsne_samples", ParamValue::Int(samples as i64));
    let opts = RunOptions {
        selection: Selection::List(vec![
            "uniformity_cv".into(),
            "uniformity_gini".into(),
            "uniformity_entropy".into(),
        ]),
        overrides,
        threads: Threads(threads),
        ..RunOptions::default()
    };
    let t0 = Instant::now();
    let report = run(&ds, &opts, &Silent).unwrap_or_else(|e| fail(e));
    let total = t0.elapsed().as_secs_f64();

    // The pixel vectors of repeat 0, drawn as the metric draws them.
    let (affine, _) =
        Affine::fit(&Normalize::Channel, &ds.latents, None).unwrap_or_else(|e| fail(e));
    let z = Normalized {
        latents: &ds.latents,
        affine: &affine,
    };
    let sh = ds.latents.shape();
    let picks = sample::pick(sh.n * sh.s(), samples, &mut stream(0, "uniformity-0"));
    let x = sample::gather(&z, &picks);
    write_npy(
        &out.join("points.npy"),
        &RawArray::f64(vec![picks.len(), sh.c], x),
    )
    .unwrap_or_else(|e| fail(e));
    println!(
        "{}",
        serde_json::json!({
            "threads": threads, "repeats": repeats, "samples": samples,
            "total_s": total, "timings_s": report.timings_s,
            "metrics": report.metrics, "details": report.details, "warnings": report.warnings,
        })
    );
}

fn main() {
    // cargo passes `--bench` to harness-less benches.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let threads = flag(&args, "--threads").unwrap_or(2);
    match (args.first().map(String::as_str), args.get(1), args.get(2)) {
        (Some("points"), Some(p), Some(o)) => {
            let text = |name: &str| {
                let at = args.iter().position(|a| a == name)?;
                args.get(at + 1).map(String::as_str)
            };
            let rep = match text("--repulsion").unwrap_or("default") {
                "default" => Rep::Method(Settings::new(30.0, 1).repulsion_method()),
                "exact" => Rep::Method(optimize::Repulsion::Exact),
                "bh" => Rep::Method(optimize::Repulsion::BarnesHut),
                "fft" => Rep::Fft {
                    nodes: flag(&args, "--nodes").unwrap_or(optimize::NODES),
                    width: text("--width")
                        .map(|w| {
                            w.parse()
                                .unwrap_or_else(|_| fail("--width: expected a number"))
                        })
                        .unwrap_or(optimize::MAX_WIDTH),
                },
                other => fail(format!(
                    "--repulsion: expected default, exact, bh or fft, found {other}"
                )),
            };
            let iters = flag(&args, "--iters").unwrap_or(1000);
            points_mode(p, Path::new(o), threads, iters, rep, text("--init"))
        }
        (Some("metric"), Some(p), Some(o)) => metric_mode(
            p,
            Path::new(o),
            threads,
            flag(&args, "--repeats").unwrap_or(10),
            flag(&args, "--samples").unwrap_or(10_000),
        ),
        _ => fail(
            "usage: cargo bench -p diffusability --bench uniformity -- points POINTS.npy OUT_DIR [--threads T] [--iters I] [--repulsion default|exact|bh|fft [--nodes K] [--width W]] [--init INIT.npy]\n\
             \x20      cargo bench -p diffusability --bench uniformity -- metric LATENTS.npy OUT_DIR [--threads T] [--repeats R] [--samples N]",
        ),
    }
}
