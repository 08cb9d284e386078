//! `diffusability metrics`: the report of one latent set.

use crate::Failure;
use crate::args::{self, MetricsArgs};
use crate::output;
use crate::progress::Bars;
use diffusability::data::Normalize;
use diffusability::io::{self, InputSpec};
use diffusability::metrics::{self, RunOptions};
use diffusability::{Error, example};
use std::time::Instant;

pub fn run(a: MetricsArgs) -> Result<(), Failure> {
    let r = args::resolve(&a)?;
    if let Some(out) = &a.output {
        check_writable(out)?;
    }
    // Small files first, so a bad one fails before a large input is read.
    let stats = match &r.normalize {
        Normalize::Stats(p) => Some(io::read_stats(p)?),
        _ => None,
    };

    let t = Instant::now();
    let data = r.threads.install(|| match &a.input {
        None => {
            if a.labels.is_some() || a.masks.is_some() {
                return Err(Error::usage(
                    "--labels and --masks need an INPUT; without one the built-in example (which has both) is used",
                ));
            }
            example::load_example()
        }
        Some(path) => io::load(&InputSpec {
            path: path.clone(),
            key: Some(a.key.clone()),
            labels: a.labels.clone(),
            masks: a.masks.clone(),
            name: a.name.clone(),
        }),
    })??;
    let load_s = t.elapsed().as_secs_f64();
    if data.source.example && !a.quiet {
        output::stderr_line(
            "note: no INPUT given; running on the built-in example (2000 Fashion-MNIST test images, pixel-unshuffle tokenizer)",
        );
    }

    let bars = Bars::new(a.quiet);
    let opts = RunOptions {
        selection: r.selection,
        overrides: a.params.clone(),
        normalize: r.normalize,
        stats,
        seed: a.seed,
        threads: r.threads,
    };
    let mut report = metrics::run(&data, &opts, &bars)?;
    let mut timings = serde_json::Map::new();
    timings.insert("load".into(), load_s.into());
    timings.extend(std::mem::take(&mut report.timings_s));
    report.timings_s = timings;

    if !a.quiet {
        for w in &report.warnings {
            output::stderr_line(&format!("warning: {w}"));
        }
    }
    let json = report.to_json_pretty();
    if let Some(out) = &a.output {
        std::fs::write(out, format!("{json}\n"))
            .map_err(|e| Error::internal(format!("{out}: cannot write the report: {e}")))?;
    }
    if a.json {
        output::stdout(&format!("{json}\n"))?;
    } else {
        output::stdout(&report.to_lines())?;
    }
    Ok(())
}

/// Fails early when the report could not be written, before any work is done.
fn check_writable(out: &str) -> Result<(), Error> {
    let p = std::path::Path::new(out);
    let dir = p.parent().filter(|d| !d.as_os_str().is_empty());
    if let Some(d) = dir
        && !d.is_dir()
    {
        return Err(Error::usage(format!(
            "-o {out}: directory {} does not exist",
            d.display()
        )));
    }
    if p.is_dir() {
        return Err(Error::usage(format!(
            "-o {out}: is a directory, expected a file path"
        )));
    }
    Ok(())
}
