//! `diffusability trajectory`: straightness, efficiency and per-segment length ratio of recorded ODE
//! sampling trajectories, with the `V(t)` overlay and the ideal ODE of the latents' Gaussian model.

use crate::Failure;
use crate::output;
use crate::progress::Bars;
use diffusability::data::{Affine, Normalize, Normalized};
use diffusability::io::{self, InputSpec};
use diffusability::metrics::registry;
use diffusability::metrics::viv::flipflop::FitOptions;
use diffusability::par::Threads;
use diffusability::progress::Progress;
use diffusability::trajectory::{
    self, Analysis, Direction, IdealOptions, Layout, Model, Solver, TimesSource, Trajectory,
};
use diffusability::{Error, Result};
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug, Clone)]
pub struct TrajectoryArgs {
    /// ODE states x_0 (noise) .. x_K (sample) of B samples: one array (K+1, B, C, H, W) or
    /// (B, K+1, C, H, W) (see --layout) in a .npy, .npz or .safetensors file, any float dtype
    pub traj: String,
    /// Key of the trajectory inside a .npz/.safetensors file (default: its only array)
    #[arg(long, value_name = "KEY")]
    pub key: Option<String>,
    /// The K+1 times of the states: a file (.npy, .npz or .safetensors with one array; .txt or .csv
    /// with numbers separated by spaces, commas or newlines) or a comma-separated list such as
    /// `0,0.1,0.3,1`. Default: uniform, t_k = k/K
    #[arg(long, value_name = "FILE|LIST", allow_hyphen_values = true)]
    pub times: Option<String>,
    /// Axis order of TRAJ: kbchw = (K+1, B, C, H, W), bkchw = (B, K+1, C, H, W)
    #[arg(long, default_value = "kbchw", value_parser = ["kbchw", "bkchw"])]
    pub layout: String,
    /// Time convention of the sampler: sit (t from 0 at the noise to 1 at the data) or repa
    /// (t_repa = 1 - t from 1 at the noise to 0 at the data; the states keep their order, the times
    /// are converted by t = 1 - t_repa and reported as t)
    #[arg(long, default_value = "sit", value_parser = ["sit", "repa"])]
    pub direction: String,
    /// Latents of the same tokenizer (.npy/.npz/.safetensors file, directory or glob of shards): adds
    /// V(t) of their class-conditional Gaussian model at the segment midpoints and its Pearson r with
    /// the length ratio
    #[arg(long, value_name = "FILE")]
    pub latents: Option<String>,
    /// Labels of --latents (default: a `labels` key in the latents file; none: one Gaussian)
    #[arg(long, value_name = "FILE")]
    pub labels: Option<String>,
    /// Key of the latents inside --latents .npz/.safetensors files
    #[arg(long, default_value = "latents", value_name = "KEY")]
    pub latents_key: String,
    /// Normalization of --latents: channel | global | none | scale:F | stats:FILE (use the space the
    /// diffusion model, and so the trajectory, lives in)
    #[arg(long, default_value = "channel", value_name = "MODE")]
    pub normalize: String,
    /// Ridge of the Kronecker fit of --latents (as `metrics`) [default: 1e-6]
    #[arg(long, value_name = "VALUE")]
    pub viv_ridge: Option<String>,
    /// Flip-flop tolerance of the fit [default: 1e-6]
    #[arg(long, value_name = "VALUE")]
    pub viv_tol: Option<String>,
    /// Most flip-flop sweeps of the fit [default: 100]
    #[arg(long, value_name = "VALUE")]
    pub viv_max_sweeps: Option<String>,
    /// Also integrate the exact Bayes-optimal ODE of the fitted Gaussian model (needs --latents) on the
    /// same time grid from seeded noise, and report its straightness, efficiency and length ratio
    #[arg(long)]
    pub ideal: bool,
    /// Paths of the ideal ODE (default: B, the trajectory's sample count)
    #[arg(long, value_name = "N")]
    pub ideal_samples: Option<usize>,
    /// euler: Euler steps with the exact velocity on the grid (a perfect network under an Euler
    /// sampler); exact: the closed-form flow at the grid times
    #[arg(long, default_value = "euler", value_parser = ["euler", "exact"])]
    pub ideal_solver: String,
    /// Seed of the ideal ODE's noise and classes
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Worker threads (default: all cores); results do not depend on it
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print JSON instead of `name: value` lines
    #[arg(long)]
    pub json: bool,
    /// Write trajectory.json, segments.csv and length_ratio.svg (Figure 10 of the study) into DIR
    #[arg(short = 'o', long = "output", value_name = "DIR")]
    pub output: Option<String>,
    /// No warnings on stderr
    #[arg(short, long)]
    pub quiet: bool,
}

/// Everything validated before any data is read.
struct Plan {
    layout: Layout,
    direction: Direction,
    normalize: Normalize,
    fit: FitOptions,
    ideal: Option<(Option<usize>, Solver)>,
    threads: Threads,
    times: Option<(Vec<f64>, TimesSource)>,
    output: Option<PathBuf>,
}

fn param(name: &str, given: &Option<String>) -> Result<Option<diffusability::metrics::ParamValue>> {
    let spec = registry::find_param(name)
        .ok_or_else(|| Error::internal(format!("parameter {name} is not registered")))?;
    given.as_deref().map(|t| spec.parse(t)).transpose()
}

fn plan(a: &TrajectoryArgs) -> Result<Plan> {
    use diffusability::metrics::ParamValue;
    let layout: Layout = a.layout.parse()?;
    let direction: Direction = a.direction.parse()?;
    let normalize: Normalize = a.normalize.parse()?;
    let mut fit = trajectory::model::default_fit_options();
    if let Some(ParamValue::Float(v)) = param("viv_ridge", &a.viv_ridge)? {
        fit.ridge = v;
    }
    if let Some(ParamValue::Float(v)) = param("viv_tol", &a.viv_tol)? {
        fit.tol = v;
    }
    if let Some(ParamValue::Int(v)) = param("viv_max_sweeps", &a.viv_max_sweeps)? {
        fit.max_sweeps = v as usize;
    }
    let solver: Solver = a.ideal_solver.parse()?;
    if a.latents.is_none() {
        for (given, flag) in [
            (a.labels.is_some(), "--labels"),
            (a.ideal, "--ideal"),
            (a.viv_ridge.is_some(), "--viv-ridge"),
            (a.viv_tol.is_some(), "--viv-tol"),
            (a.viv_max_sweeps.is_some(), "--viv-max-sweeps"),
        ] {
            if given {
                return Err(Error::usage(format!(
                    "{flag} needs --latents (the latents whose Gaussian model it uses)"
                )));
            }
        }
    }
    if !a.ideal && a.ideal_samples.is_some() {
        return Err(Error::usage("--ideal-samples needs --ideal"));
    }
    if a.ideal_samples == Some(0) {
        return Err(Error::usage(
            "--ideal-samples: expected at least 1, found 0",
        ));
    }
    let threads = match a.threads {
        Some(0) => return Err(Error::usage("--threads: expected at least 1, found 0")),
        Some(n) => Threads(n),
        None => Threads::available(),
    };
    let times = a.times.as_deref().map(read_times).transpose()?;
    let output = a.output.as_deref().map(check_output_dir).transpose()?;
    Ok(Plan {
        layout,
        direction,
        normalize,
        fit,
        ideal: a.ideal.then_some((a.ideal_samples, solver)),
        threads,
        times,
        output,
    })
}

/// `--times`: a file when it names one (or has a file extension), else a comma-separated list.
fn read_times(arg: &str) -> Result<(Vec<f64>, TimesSource)> {
    let p = Path::new(arg);
    let ext = p
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    let is_text = matches!(ext.as_deref(), Some("txt" | "csv"));
    let is_array = matches!(ext.as_deref(), Some("npy" | "npz" | "safetensors"));
    if is_text || is_array || p.is_file() {
        let source = TimesSource {
            path: arg.to_string(),
            key: None,
        };
        if is_text || (!is_array && !looks_like_array(p)) {
            let text = std::fs::read_to_string(p).map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => Error::not_found(arg, "times file"),
                _ => Error::input(arg, None, format!("cannot read: {e}")),
            })?;
            let v = text
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|w| !w.is_empty())
                .map(|w| {
                    w.parse::<f64>().map_err(|_| {
                        Error::input(arg, None, format!("expected numbers, found `{w}`"))
                    })
                })
                .collect::<Result<Vec<f64>>>()?;
            return Ok((v, source));
        }
        let raw = io::read_array(arg, None)?;
        let v = trajectory::vector_f64(&raw, &source)?;
        return Ok((v, source));
    }
    let v = arg
        .split(',')
        .map(|w| w.trim().parse::<f64>())
        .collect::<std::result::Result<Vec<f64>, _>>()
        .map_err(|_| {
            Error::usage(format!(
                "--times: expected a file (.npy, .npz, .safetensors, .txt, .csv) or a comma-separated \
                 list of numbers, found `{arg}`"
            ))
        })?;
    Ok((
        v,
        TimesSource {
            path: "--times".into(),
            key: None,
        },
    ))
}

/// Whether an existing file without a known extension starts like a .npy/.npz/.safetensors file
/// (numpy magic, zip magic, or a little-endian safetensors header length followed by `{`).
fn looks_like_array(p: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 9];
    let Ok(mut f) = std::fs::File::open(p) else {
        return false;
    };
    let n = f.read(&mut head).unwrap_or(0);
    (n >= 6 && &head[..6] == b"\x93NUMPY")
        || (n >= 4 && &head[..4] == b"PK\x03\x04")
        || (n == 9 && head[8] == b'{')
}

/// `-o DIR`: created when missing; an existing non-directory is a usage error.
fn check_output_dir(dir: &str) -> Result<PathBuf> {
    let p = PathBuf::from(dir);
    if p.exists() && !p.is_dir() {
        return Err(Error::usage(format!(
            "-o {dir}: exists and is not a directory; expected a directory for trajectory.json, \
             segments.csv and length_ratio.svg"
        )));
    }
    Ok(p)
}

pub fn run(a: TrajectoryArgs) -> std::result::Result<(), Failure> {
    let p = plan(&a)?;
    let stats = match &p.normalize {
        Normalize::Stats(f) if a.latents.is_some() => Some(io::read_stats(f)?),
        _ => None,
    };
    let traj = {
        let raw = io::read_array(&a.traj, a.key.as_deref())?;
        Trajectory::from_raw(raw, p.layout, &a.traj, a.key.as_deref())?
    };
    let times = trajectory::times(
        p.times.as_ref().map(|(v, _)| &v[..]),
        traj.steps(),
        p.direction,
        p.times.as_ref().map_or(
            &TimesSource {
                path: "--times".into(),
                key: None,
            },
            |(_, s)| s,
        ),
    )?;
    let bars = Bars::new(a.quiet);
    let mut warnings: Vec<String> = Vec::new();
    let mut model_info = None;
    let analysis = p.threads.install(|| -> Result<Analysis> {
        let model = match &a.latents {
            None => None,
            Some(path) => {
                let data = io::load(&InputSpec {
                    path: path.clone(),
                    key: Some(a.latents_key.clone()),
                    labels: a.labels.clone(),
                    masks: None,
                    name: None,
                })?;
                let (affine, w) = Affine::fit(&p.normalize, &data.latents, stats.clone())?;
                warnings.extend(w);
                let z = Normalized {
                    latents: &data.latents,
                    affine: &affine,
                };
                bars.begin("viv fit", 1);
                let m = Model::fit(z, data.labels.as_ref(), &p.fit);
                bars.advance(1);
                bars.end();
                let m = m.ok_or_else(|| {
                    Error::input(
                        path,
                        None,
                        "no class of the latents could be fitted (each needs at least 2 distinct \
                         finite samples); V(t) needs at least one",
                    )
                })?;
                model_info = Some(json!({
                    "path": path,
                    "n": data.latents.shape().n,
                    "labels": data.labels.is_some(),
                    "normalize": p.normalize.to_string(),
                    "viv_ridge": p.fit.ridge,
                    "viv_tol": p.fit.tol,
                    "viv_max_sweeps": p.fit.max_sweeps,
                }));
                Some(m)
            }
        };
        let ideal = p.ideal.map(|(n, solver)| IdealOptions {
            samples: n.unwrap_or(traj.samples()),
            solver,
            seed: a.seed,
        });
        trajectory::analyze(&traj, &times, model.as_ref(), ideal.as_ref())
    })??;
    warnings.extend(analysis.warnings.iter().cloned());

    let mut report = Map::new();
    report.insert(
        "tool".into(),
        json!({"name": "diffusability", "version": diffusability::VERSION}),
    );
    let [c, h, w] = traj.chw();
    report.insert(
        "input".into(),
        json!({
            "trajectory": a.traj,
            "key": a.key,
            "layout": p.layout.to_string(),
            "direction": p.direction.to_string(),
            "steps": traj.steps(),
            "samples": traj.samples(),
            "channels": c,
            "height": h,
            "width": w,
            "dtype": traj.dtype(),
            "times": p.times.as_ref().map_or("uniform".to_string(), |(_, s)| s.path.clone()),
            "latents": model_info,
        }),
    );
    let mut body = analysis.to_json();
    body.insert("warnings".into(), json!(warnings));
    report.extend(body);
    let json_text = serde_json::to_string_pretty(&Value::Object(report))
        .map_err(|e| Error::internal(format!("cannot format the report: {e}")))?;

    if let Some(dir) = &p.output {
        write_outputs(dir, &json_text, &analysis)?;
    }
    if !a.quiet {
        for w in &warnings {
            output::stderr_line(&format!("warning: {w}"));
        }
    }
    if a.json {
        output::stdout(&format!("{json_text}\n"))?;
    } else {
        output::stdout(&lines(&analysis))?;
    }
    Ok(())
}

fn lines(a: &Analysis) -> String {
    let mut s = String::new();
    let m = &a.measures;
    let mut put = |k: &str, v: Option<f64>| {
        if let Some(v) = v {
            s.push_str(&format!("{k}: {v}\n"));
        }
    };
    put("straightness", m.straightness);
    put("efficiency", m.efficiency);
    if let Some(lr) = &m.length_ratio {
        put("length_ratio_min", lr.iter().copied().reduce(f64::min));
        put("length_ratio_max", lr.iter().copied().reduce(f64::max));
    }
    if let Some(ov) = &a.overlay {
        put("viv_length_ratio_r", ov.r);
    }
    if let Some(run) = &a.ideal {
        put("ideal_straightness", run.measures.straightness);
        put("ideal_efficiency", run.measures.efficiency);
    }
    s
}

fn write_outputs(dir: &Path, json_text: &str, a: &Analysis) -> Result<()> {
    let fail = |what: &str, e: std::io::Error| {
        Error::internal(format!("{}: cannot write {what}: {e}", dir.display()))
    };
    std::fs::create_dir_all(dir).map_err(|e| fail("the output directory", e))?;
    std::fs::write(dir.join("trajectory.json"), format!("{json_text}\n"))
        .map_err(|e| fail("trajectory.json", e))?;
    std::fs::write(dir.join("segments.csv"), a.segments_csv())
        .map_err(|e| fail("segments.csv", e))?;
    std::fs::write(dir.join("length_ratio.svg"), plot::figure(a))
        .map_err(|e| fail("length_ratio.svg", e))?;
    Ok(())
}

/// A small SVG writer for the study's Figure 10: the length ratio per segment against `t` (left
/// axis, with the straight path's ratio 1 dashed), `V(t)` on its own right axis, and the ideal ODE's
/// length ratio. Own code rather than a plotting crate: two or three polylines, two axes and a legend.
mod plot {
    use diffusability::trajectory::Analysis;
    use std::fmt::Write;

    const W: f64 = 720.0;
    const H: f64 = 440.0;
    const LEFT: f64 = 70.0;
    const RIGHT: f64 = 80.0;
    const TOP: f64 = 64.0;
    const BOTTOM: f64 = 60.0;

    /// About five round tick values covering `[lo, hi]`, and the padded range they span.
    fn ticks(lo: f64, hi: f64) -> (Vec<f64>, f64, f64) {
        let (lo, hi) = if hi > lo {
            (lo, hi)
        } else {
            (lo - 0.5 * lo.abs().max(1.0), hi + 0.5 * hi.abs().max(1.0))
        };
        let raw = (hi - lo) / 5.0;
        let mag = 10f64.powf(raw.log10().floor());
        let step = [1.0, 2.0, 2.5, 5.0, 10.0]
            .iter()
            .map(|m| m * mag)
            .find(|s| *s >= raw)
            .unwrap_or(10.0 * mag);
        let a = (lo / step).floor() * step;
        let b = (hi / step).ceil() * step;
        let n = ((b - a) / step).round() as usize;
        ((0..=n).map(|i| a + i as f64 * step).collect(), a, b)
    }

    fn label(v: f64) -> String {
        let s = format!("{v:.4}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        if s == "-0" { "0".into() } else { s.into() }
    }

    fn polyline(out: &mut String, pts: &[(f64, f64)], color: &str, dash: &str) {
        let p: Vec<String> = pts.iter().map(|(x, y)| format!("{x:.2},{y:.2}")).collect();
        let _ = writeln!(
            out,
            r#"<polyline fill="none" stroke="{color}" stroke-width="2"{dash} points="{}"/>"#,
            p.join(" ")
        );
        for (x, y) in pts {
            let _ = writeln!(
                out,
                r#"<circle cx="{x:.2}" cy="{y:.2}" r="2.5" fill="{color}"/>"#
            );
        }
    }

    pub fn figure(a: &Analysis) -> String {
        let (x0, x1, y0, y1) = (LEFT, W - RIGHT, H - BOTTOM, TOP);
        let tx = |t: f64| x0 + t.clamp(0.0, 1.0) * (x1 - x0);
        let mut out = String::new();
        let _ = writeln!(
            out,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
        );
        let _ = writeln!(out, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
        let lr = a.measures.length_ratio.clone().unwrap_or_default();
        let ideal = a
            .ideal
            .as_ref()
            .and_then(|r| r.measures.length_ratio.clone());
        let mut all: Vec<f64> = lr.clone();
        all.extend(ideal.iter().flatten());
        all.push(1.0);
        let lo = all.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = all.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let (yt, ya, yb) = ticks(lo, hi);
        let ty = |v: f64| y0 + (v - ya) / (yb - ya) * (y1 - y0);
        // Axes and grid.
        let _ = writeln!(
            out,
            r##"<rect x="{x0}" y="{y1}" width="{}" height="{}" fill="none" stroke="#444"/>"##,
            x1 - x0,
            y0 - y1
        );
        for i in 0..=5 {
            let t = i as f64 / 5.0;
            let x = tx(t);
            let _ = writeln!(
                out,
                r##"<line x1="{x:.2}" y1="{y0}" x2="{x:.2}" y2="{}" stroke="#444"/><text x="{x:.2}" y="{}" text-anchor="middle">{}</text>"##,
                y0 + 5.0,
                y0 + 20.0,
                label(t)
            );
        }
        for v in &yt {
            let y = ty(*v);
            let _ = writeln!(
                out,
                r##"<line x1="{x0}" y1="{y:.2}" x2="{x1}" y2="{y:.2}" stroke="#eee"/><line x1="{}" y1="{y:.2}" x2="{x0}" y2="{y:.2}" stroke="#444"/><text x="{}" y="{:.2}" text-anchor="end">{}</text>"##,
                x0 - 5.0,
                x0 - 8.0,
                y + 4.0,
                label(*v)
            );
        }
        let _ = writeln!(
            out,
            r#"<text x="{}" y="{}" text-anchor="middle">t (0 = noise, 1 = data)</text>"#,
            0.5 * (x0 + x1),
            H - 15.0
        );
        let _ = writeln!(
            out,
            r#"<text transform="translate(18,{}) rotate(-90)" text-anchor="middle">length ratio</text>"#,
            0.5 * (y0 + y1)
        );
        // The straight path's ratio.
        let _ = writeln!(
            out,
            r##"<line x1="{x0}" y1="{y:.2}" x2="{x1}" y2="{y:.2}" stroke="#888" stroke-dasharray="6,4"/>"##,
            y = ty(1.0)
        );
        let mut legend: Vec<(&str, &str, String)> = vec![(
            "#888",
            r#" stroke-dasharray="6,4""#,
            "straight path (1)".into(),
        )];
        if !lr.is_empty() {
            let pts: Vec<(f64, f64)> = a
                .t_mid
                .iter()
                .zip(&lr)
                .map(|(t, v)| (tx(*t), ty(*v)))
                .collect();
            polyline(&mut out, &pts, "#1f77b4", "");
            legend.push(("#1f77b4", "", "length ratio".into()));
        }
        if let Some(il) = &ideal {
            let pts: Vec<(f64, f64)> = a
                .t_mid
                .iter()
                .zip(il)
                .map(|(t, v)| (tx(*t), ty(*v)))
                .collect();
            polyline(&mut out, &pts, "#2ca02c", r#" stroke-dasharray="2,3""#);
            legend.push((
                "#2ca02c",
                r#" stroke-dasharray="2,3""#,
                "ideal ODE length ratio".into(),
            ));
        }
        if let Some(ov) = &a.overlay {
            let lo = ov.viv_curve.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = ov
                .viv_curve
                .iter()
                .copied()
                .fold(f64::NEG_INFINITY, f64::max);
            let (vt, va, vb) = ticks(lo, hi);
            let tv = |v: f64| y0 + (v - va) / (vb - va) * (y1 - y0);
            for v in &vt {
                let y = tv(*v);
                let _ = writeln!(
                    out,
                    r##"<line x1="{x1}" y1="{y:.2}" x2="{}" y2="{y:.2}" stroke="#d62728"/><text x="{}" y="{:.2}" fill="#d62728">{}</text>"##,
                    x1 + 5.0,
                    x1 + 8.0,
                    y + 4.0,
                    label(*v)
                );
            }
            let _ = writeln!(
                out,
                r##"<text transform="translate({},{}) rotate(90)" text-anchor="middle" fill="#d62728">V(t), irreducible variance</text>"##,
                W - 15.0,
                0.5 * (y0 + y1)
            );
            let pts: Vec<(f64, f64)> = a
                .t_mid
                .iter()
                .zip(&ov.viv_curve)
                .map(|(t, v)| (tx(*t), tv(*v)))
                .collect();
            polyline(&mut out, &pts, "#d62728", "");
            let name = match ov.r {
                Some(r) => format!("V(t) (right axis; r = {r:.3})"),
                None => "V(t) (right axis)".to_string(),
            };
            legend.push(("#d62728", "", name));
        }
        for (i, (color, dash, name)) in legend.iter().enumerate() {
            // Two entries per row above the plot.
            let y = 16.0 + 20.0 * (i / 2) as f64;
            let x = x0 + 260.0 * (i % 2) as f64;
            let _ = writeln!(
                out,
                r#"<line x1="{x}" y1="{y}" x2="{}" y2="{y}" stroke="{color}" stroke-width="2"{dash}/><text x="{}" y="{}">{name}</text>"#,
                x + 22.0,
                x + 27.0,
                y + 4.0
            );
        }
        out.push_str("</svg>\n");
        out
    }
}
