//! `diffusability fd`: the Fréchet distance of two feature sets or statistics files, and
//! `fd --save-stats` to write the statistics of a feature set.

use crate::Failure;
use crate::output;
use diffusability::Error;
use diffusability::metrics::fd;
use diffusability::par::Threads;
use std::path::Path;

#[derive(clap::Args, Debug, Clone)]
pub struct FdArgs {
    /// Features (N, F): .npy, or .npz/.safetensors holding one array; or statistics: .npz/.safetensors
    /// with keys `mu` (F,) and `sigma` (F, F) (pytorch-fid, clean-fid, ADM evaluator). With
    /// --save-stats: the features to summarize
    #[arg(value_name = "A")]
    pub a: String,
    /// The second input, as A; with --save-stats: the .npz file to write
    #[arg(value_name = "B")]
    pub b: String,
    /// Write the statistics (`mu`, `sigma`, f64) of the features A to the .npz file B
    #[arg(long)]
    pub save_stats: bool,
    /// Print a JSON object {"fd": ..., diagnostics} instead of `fd: value`
    #[arg(long)]
    pub json: bool,
    /// Worker threads (default: all cores); results do not depend on it
    #[arg(long)]
    pub threads: Option<usize>,
    /// No warnings on stderr
    #[arg(short, long)]
    pub quiet: bool,
}

/// `--threads`, validated (shared by the commands of this family).
pub fn threads(n: Option<usize>) -> Result<Threads, Error> {
    match n {
        Some(0) => Err(Error::usage("--threads: expected at least 1, found 0")),
        Some(n) => Ok(Threads(n)),
        None => Ok(Threads::available()),
    }
}

/// Fails before any work when `out` cannot be created: its directory must exist and it must not be
/// a directory; `ext` is the required extension.
pub fn check_output(flag: &str, out: &str, ext: &str) -> Result<(), Error> {
    let p = Path::new(out);
    if !p.extension().is_some_and(|e| e.eq_ignore_ascii_case(ext)) {
        return Err(Error::usage(format!(
            "{flag} {out}: expected a file name ending in .{ext}"
        )));
    }
    if let Some(d) = p.parent().filter(|d| !d.as_os_str().is_empty())
        && !d.is_dir()
    {
        return Err(Error::usage(format!(
            "{flag} {out}: directory {} does not exist",
            d.display()
        )));
    }
    if p.is_dir() {
        return Err(Error::usage(format!(
            "{flag} {out}: is a directory, expected a file path"
        )));
    }
    Ok(())
}

fn warn(quiet: bool, warnings: &[String]) {
    if !quiet {
        for w in warnings {
            output::stderr_line(&format!("warning: {w}"));
        }
    }
}

pub fn run(a: FdArgs) -> Result<(), Failure> {
    let threads = threads(a.threads)?;
    if a.save_stats {
        check_output("--save-stats", &a.b, "npz")?;
        let loaded = fd::save_stats(&a.a, Path::new(&a.b), threads)?;
        warn(a.quiet, &loaded.warnings);
        let (n, f) = (loaded.gaussian.n.unwrap_or(0), loaded.gaussian.dim());
        if a.json {
            let j = serde_json::json!({
                "output": a.b, "features": a.a, "n": n, "f": f, "warnings": loaded.warnings,
            });
            output::stdout(&format!("{}\n", pretty(&j)?))?;
        } else {
            output::stdout(&format!(
                "wrote {}: mu ({f},) and sigma ({f}, {f}), f64, of {n} feature vectors\n",
                a.b
            ))?;
        }
        return Ok(());
    }
    let r = fd::fd_files(&a.a, &a.b, threads)?;
    warn(a.quiet, &r.warnings);
    if a.json {
        let j = serde_json::to_value(&r)
            .map_err(|e| Error::internal(format!("cannot serialize the result: {e}")))?;
        output::stdout(&format!("{}\n", pretty(&j)?))?;
    } else {
        output::stdout(&format!("fd: {}\n", num(r.fd)))?;
    }
    Ok(())
}

/// A number as in JSON output and `metrics` lines (shortest round-trip form, exponent when small).
pub fn num(x: f64) -> String {
    serde_json::Value::from(x).to_string()
}

pub fn pretty(j: &serde_json::Value) -> Result<String, Error> {
    serde_json::to_string_pretty(j)
        .map_err(|e| Error::internal(format!("cannot serialize the result: {e}")))
}
