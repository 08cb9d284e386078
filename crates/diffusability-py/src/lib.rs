//! Python bindings of diffusability: conversion of numpy arrays and keyword arguments into library
//! values, the GIL released while the library works, and library errors mapped to Python exceptions.
//! Every number is computed by the `diffusability` crate; the Python package `diffusability` (in
//! `python/`) wraps these functions with signatures, docstrings and torch/DLPack input handling.
//!
//! Arrays arrive here as numpy arrays in C order and native byte order, with their dtype named as the
//! library spells it (`f32`, `bf16`, `i64`, ...): the Python layer prepares them. f32 latents are read
//! in place: the library holds a reference to the array for as long as it reads it, and the caller
//! must not write to the array while a call runs (the GIL is released then).

use diffusability::data::{Affine, HostBuffer, Normalize, Normalized};
use diffusability::io::{self, HostArray};
use diffusability::metrics::equivariance::{Transform, equivariance};
use diffusability::metrics::viv::flipflop::FitOptions;
use diffusability::metrics::{self, ParamKind, ParamValue, Params, RunOptions, fd, registry};
use diffusability::par::Threads;
use diffusability::progress::Silent;
use diffusability::study::{self, Table};
use diffusability::trajectory::{
    self, IdealOptions, Layout, Model, Solver, TimesSource, Trajectory,
};
use diffusability::{Error, ErrorKind};
use numpy::npyffi::objects::_PyArray_GET_ITEM_DATA;
use numpy::{PyArrayDescrMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::create_exception;
use pyo3::exceptions::{PyFileNotFoundError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

create_exception!(
    diffusability,
    DiffusabilityError,
    PyValueError,
    "Bad input or parameters; the message is the command line's, naming the array or file, what was \
     expected and what was found."
);

/// A library error as the Python exception a user expects.
fn to_py(e: Error) -> PyErr {
    match e.kind {
        ErrorKind::Input | ErrorKind::Usage => DiffusabilityError::new_err(e.message),
        ErrorKind::NotFound => PyFileNotFoundError::new_err(e.message),
        ErrorKind::Internal => PyRuntimeError::new_err(format!("internal error: {}", e.message)),
    }
}

/// Runs library work with the GIL released, turning a panic (a bug) into an internal error so that
/// Python sees an exception, never an abort.
fn work<T: Send>(py: Python<'_>, f: impl FnOnce() -> Result<T, Error> + Send) -> PyResult<T> {
    py.detach(|| {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|p| {
            let what = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(Error::internal(format!("(please report it) {what}")))
        })
    })
    .map_err(to_py)
}

/// A numpy array's buffer, kept alive by a reference to the array.
#[derive(Debug)]
struct NumpyBuffer {
    _owner: Py<PyAny>,
    ptr: *const u8,
    len: usize,
}

// SAFETY: the buffer belongs to a numpy array that `_owner` keeps alive; numpy never moves or frees
// the data of an array that is referenced (resize refuses). The library only reads it, and the
// documented contract is that the caller does not write to the array during a call.
unsafe impl Send for NumpyBuffer {}
unsafe impl Sync for NumpyBuffer {}

impl HostBuffer for NumpyBuffer {
    fn bytes(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: see the Send/Sync note; `len` is the array's size in bytes.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

/// A C-contiguous, native-order numpy array (`dtype` in the library's spelling), as a library array
/// named `name` in messages; its buffer is borrowed, not copied.
fn host(obj: &Bound<'_, PyAny>, dtype: &str, name: &str) -> PyResult<HostArray> {
    let arr = obj.cast::<PyUntypedArray>().map_err(|_| {
        DiffusabilityError::new_err(format!(
            "{name}: expected a numpy array, found {}",
            obj.get_type()
        ))
    })?;
    if !arr.is_c_contiguous() {
        return Err(PyRuntimeError::new_err(format!(
            "internal error: {name} reached the bindings without C order"
        )));
    }
    let shape = arr.shape().to_vec();
    let itemsize = arr.dtype().itemsize();
    let len = shape.iter().product::<usize>() * itemsize;
    // SAFETY: `as_array_ptr` is the array object itself (the GIL is held); `data` is its first
    // element.
    let ptr = unsafe { (*_PyArray_GET_ITEM_DATA(arr.as_array_ptr())).data as *const u8 };
    Ok(HostArray {
        name: name.to_string(),
        dtype: dtype.to_string(),
        shape,
        buffer: Arc::new(NumpyBuffer {
            _owner: obj.clone().unbind(),
            ptr,
            len,
        }),
    })
}

/// An optional array: `(array, dtype)` or None.
fn host_opt(a: Option<(Bound<'_, PyAny>, String)>, name: &str) -> PyResult<Option<HostArray>> {
    a.map(|(o, d)| host(&o, &d, name)).transpose()
}

fn threads(n: Option<usize>) -> Result<Threads, Error> {
    match n {
        Some(0) => Err(Error::usage("--threads: expected at least 1, found 0")),
        Some(n) => Ok(Threads(n)),
        None => Ok(Threads::available()),
    }
}

fn pretty(v: &Value) -> Result<String, Error> {
    serde_json::to_string_pretty(v)
        .map_err(|e| Error::internal(format!("cannot serialize the result: {e}")))
}

/// Every metric family of the registry, as JSON: names, perspectives, needs, parameters.
#[pyfunction]
fn registry_json() -> String {
    let fams: Vec<Value> = registry::families()
        .iter()
        .map(|f| {
            let metrics: Vec<Value> = f
                .metrics
                .iter()
                .map(|m| {
                    json!({
                        "name": m.name,
                        "perspective": m.perspective.as_str(),
                        "higher_is_better": m.higher_is_better,
                        "opt_in": m.opt_in,
                        "help": m.help,
                    })
                })
                .collect();
            let params: Vec<Value> = f
                .params
                .iter()
                .map(|p| {
                    let kind = match p.kind {
                        ParamKind::Int { min, max } => {
                            json!({"type": "int", "min": min, "max": max})
                        }
                        ParamKind::Float { min, max, open_min } => {
                            json!({"type": "float", "min": min, "max": max, "open_min": open_min})
                        }
                        ParamKind::Choice(words) => json!({"type": "choice", "choices": words}),
                        ParamKind::Path => json!({"type": "path"}),
                    };
                    json!({
                        "name": p.name,
                        "kind": kind,
                        "default": p.default_value().to_json(),
                        "help": p.help,
                    })
                })
                .collect();
            json!({
                "name": f.name,
                "needs": {"labels": f.needs.labels, "masks": f.needs.masks},
                "metrics": metrics,
                "params": params,
            })
        })
        .collect();
    Value::Array(fams).to_string()
}

/// Parameter values given as text (the flag's argument), parsed and validated as the CLI does.
fn params(given: BTreeMap<String, String>) -> Result<Params, Error> {
    let mut out = Params::default();
    for (name, text) in given {
        let spec = registry::find_param(&name)
            .ok_or_else(|| Error::usage(format!("unknown parameter `{name}`")))?;
        out.0.insert(spec.name, spec.parse(&text)?);
    }
    Ok(out)
}

/// The JSON report of `diffusability metrics` for arrays in memory.
#[pyfunction]
#[pyo3(signature = (latents, labels, masks, selection, params_text, normalize, seed, n_threads, name))]
#[allow(clippy::too_many_arguments)]
fn metrics_json(
    py: Python<'_>,
    latents: (Bound<'_, PyAny>, String),
    labels: Option<(Bound<'_, PyAny>, String)>,
    masks: Option<(Bound<'_, PyAny>, String)>,
    selection: String,
    params_text: BTreeMap<String, String>,
    normalize: String,
    seed: u64,
    n_threads: Option<usize>,
    name: String,
) -> PyResult<String> {
    // Everything that does not need the data is validated first, as the CLI does.
    let prepare = || -> Result<_, Error> {
        let selection: metrics::Selection = selection.parse()?;
        let normalize: Normalize = normalize.parse()?;
        let threads = threads(n_threads)?;
        let overrides = params(params_text)?;
        Ok((selection, normalize, threads, overrides))
    };
    let (selection, normalize, threads, overrides) = prepare().map_err(to_py)?;
    let z = host(&latents.0, &latents.1, "latents")?;
    let l = host_opt(labels, "labels")?;
    let m = host_opt(masks, "masks")?;
    work(py, move || {
        let stats = match &normalize {
            Normalize::Stats(p) => Some(io::read_stats(p)?),
            _ => None,
        };
        let t = Instant::now();
        let data = threads.install(|| io::from_host(&z, l.as_ref(), m.as_ref(), &name))??;
        let load_s = t.elapsed().as_secs_f64();
        let opts = RunOptions {
            selection,
            overrides,
            normalize,
            stats,
            seed,
            threads,
        };
        let mut report = metrics::run(&data, &opts, &Silent)?;
        let mut timings = Map::new();
        timings.insert("load".into(), load_s.into());
        timings.extend(std::mem::take(&mut report.timings_s));
        report.timings_s = timings;
        Ok(report.to_json_pretty())
    })
}

/// The address of the first latent value as the library reads it (a check that f32 arrays are not
/// copied).
#[pyfunction]
fn latents_address(py: Python<'_>, latents: (Bound<'_, PyAny>, String)) -> PyResult<usize> {
    let z = host(&latents.0, &latents.1, "latents")?;
    work(py, move || {
        let data = io::from_host(&z, None, None, "latents")?;
        Ok(data.latents.sample(0).as_ptr() as usize)
    })
}

/// `diffusability equivariance --json` for arrays in memory.
#[pyfunction]
fn equivariance_json(
    py: Python<'_>,
    latents: (Bound<'_, PyAny>, String),
    transformed: (Bound<'_, PyAny>, String),
    transform: String,
    normalize: String,
    n_threads: Option<usize>,
) -> PyResult<String> {
    let prepare = || -> Result<_, Error> {
        let t: Transform = transform.parse()?;
        let mode: Normalize = normalize.parse()?;
        Ok((t, mode, threads(n_threads)?))
    };
    let (t, mode, threads) = prepare().map_err(to_py)?;
    let z = host(&latents.0, &latents.1, "latents")?;
    let zt = host(&transformed.0, &transformed.1, "transformed")?;
    work(py, move || {
        let stats = match &mode {
            Normalize::Stats(p) => Some(io::read_stats(p)?),
            _ => None,
        };
        let (r, mut warnings) = threads.install(|| {
            let z = io::from_host(&z, None, None, "latents")?;
            let sh = z.latents.shape();
            t.output_hw(sh.h, sh.w)?;
            let zt = io::from_host(&zt, None, None, "transformed")?;
            let (affine, warnings) = Affine::fit(&mode, &z.latents, stats)?;
            let r = equivariance(&z.latents, &zt.latents, "transformed", &t, &affine)?;
            Ok::<_, Error>((r, warnings))
        })??;
        warnings.extend(r.skipped_warning());
        let mut j = r.to_json(&t, &mode);
        j.insert("warnings".into(), warnings.into());
        pretty(&serde_json::Value::Object(j))
    })
}

/// One input of `fd`: a path (features or statistics file) or an array of features.
enum FdInput {
    Path(String),
    Array(HostArray),
}

fn fd_input(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<FdInput> {
    if let Ok(path) = obj.extract::<String>() {
        return Ok(FdInput::Path(path));
    }
    let (arr, dtype): (Bound<'_, PyAny>, String) = obj.extract()?;
    Ok(FdInput::Array(host(&arr, &dtype, name)?))
}

fn fd_load(x: &FdInput) -> Result<fd::Loaded, Error> {
    match x {
        FdInput::Path(p) => fd::load(p),
        FdInput::Array(a) => fd::features(&a.to_raw()?, &a.name),
    }
}

/// `diffusability fd A B --json` for arrays in memory or files.
#[pyfunction]
fn fd_json(
    py: Python<'_>,
    a: Bound<'_, PyAny>,
    b: Bound<'_, PyAny>,
    n_threads: Option<usize>,
) -> PyResult<String> {
    let threads = threads(n_threads).map_err(to_py)?;
    let a = fd_input(&a, "a")?;
    let b = fd_input(&b, "b")?;
    work(py, move || {
        let r = threads.install(|| fd::compare(&fd_load(&a)?, &fd_load(&b)?))??;
        let j = serde_json::to_value(&r)
            .map_err(|e| Error::internal(format!("cannot serialize the result: {e}")))?;
        pretty(&j)
    })
}

fn param_value(name: &str, text: Option<String>) -> Result<Option<ParamValue>, Error> {
    let spec = registry::find_param(name)
        .ok_or_else(|| Error::internal(format!("parameter {name} is not registered")))?;
    text.map(|t| spec.parse(&t)).transpose()
}

/// `diffusability trajectory --json` for arrays in memory.
#[pyfunction]
#[pyo3(signature = (traj, times, layout, direction, latents, labels, normalize, viv_ridge, viv_tol,
    viv_max_sweeps, ideal, ideal_samples, ideal_solver, seed, n_threads))]
#[allow(clippy::too_many_arguments)]
fn trajectory_json(
    py: Python<'_>,
    traj: (Bound<'_, PyAny>, String),
    times: Option<Vec<f64>>,
    layout: String,
    direction: String,
    latents: Option<(Bound<'_, PyAny>, String)>,
    labels: Option<(Bound<'_, PyAny>, String)>,
    normalize: String,
    viv_ridge: Option<String>,
    viv_tol: Option<String>,
    viv_max_sweeps: Option<String>,
    ideal: bool,
    ideal_samples: Option<usize>,
    ideal_solver: String,
    seed: u64,
    n_threads: Option<usize>,
) -> PyResult<String> {
    let has_latents = latents.is_some();
    let prepare = || -> Result<_, Error> {
        let layout: Layout = layout.parse()?;
        let direction: trajectory::Direction = direction.parse()?;
        let normalize: Normalize = normalize.parse()?;
        let mut fit: FitOptions = trajectory::model::default_fit_options();
        let given = [
            viv_ridge.is_some(),
            viv_tol.is_some(),
            viv_max_sweeps.is_some(),
        ];
        if let Some(ParamValue::Float(v)) = param_value("viv_ridge", viv_ridge)? {
            fit.ridge = v;
        }
        if let Some(ParamValue::Float(v)) = param_value("viv_tol", viv_tol)? {
            fit.tol = v;
        }
        if let Some(ParamValue::Int(v)) = param_value("viv_max_sweeps", viv_max_sweeps)? {
            fit.max_sweeps = v as usize;
        }
        let solver: Solver = ideal_solver.parse()?;
        if !has_latents {
            for (g, what) in [
                (labels.is_some(), "labels"),
                (ideal, "ideal"),
                (given[0], "viv_ridge"),
                (given[1], "viv_tol"),
                (given[2], "viv_max_sweeps"),
            ] {
                if g {
                    return Err(Error::usage(format!(
                        "{what} needs latents (the latents whose Gaussian model it uses)"
                    )));
                }
            }
        }
        if !ideal && ideal_samples.is_some() {
            return Err(Error::usage("ideal_samples needs ideal=True"));
        }
        if ideal_samples == Some(0) {
            return Err(Error::usage("ideal_samples: expected at least 1, found 0"));
        }
        Ok((
            layout,
            direction,
            normalize,
            fit,
            solver,
            threads(n_threads)?,
        ))
    };
    let (layout, direction, normalize, fit, solver, threads) = prepare().map_err(to_py)?;
    let tr = host(&traj.0, &traj.1, "traj")?;
    let z = host_opt(latents, "latents")?;
    let l = host_opt(labels, "labels")?;
    work(py, move || {
        let stats = match &normalize {
            Normalize::Stats(f) if z.is_some() => Some(io::read_stats(f)?),
            _ => None,
        };
        let traj = Trajectory::from_raw(tr.to_raw()?, layout, "traj", None)?;
        let source = TimesSource {
            path: "times".into(),
            key: None,
        };
        let t = trajectory::times(times.as_deref(), traj.steps(), direction, &source)?;
        let mut warnings: Vec<String> = Vec::new();
        let mut model_info = Value::Null;
        let analysis = threads.install(|| -> Result<_, Error> {
            let model = match &z {
                None => None,
                Some(z) => {
                    let data = io::from_host(z, l.as_ref(), None, "latents")?;
                    let (affine, w) = Affine::fit(&normalize, &data.latents, stats.clone())?;
                    warnings.extend(w);
                    let zn = Normalized {
                        latents: &data.latents,
                        affine: &affine,
                    };
                    let m = Model::fit(zn, data.labels.as_ref(), &fit).ok_or_else(|| {
                        Error::input(
                            "latents",
                            None,
                            "no class of the latents could be fitted (each needs at least 2 distinct \
                             finite samples); V(t) needs at least one",
                        )
                    })?;
                    model_info = json!({
                        "n": data.latents.shape().n,
                        "labels": data.labels.is_some(),
                        "normalize": normalize.to_string(),
                        "viv_ridge": fit.ridge,
                        "viv_tol": fit.tol,
                        "viv_max_sweeps": fit.max_sweeps,
                    });
                    Some(m)
                }
            };
            let ideal = ideal.then(|| IdealOptions {
                samples: ideal_samples.unwrap_or(traj.samples()),
                solver,
                seed,
            });
            trajectory::analyze(&traj, &t, model.as_ref(), ideal.as_ref())
        })??;
        warnings.extend(analysis.warnings.iter().cloned());
        let [c, h, w] = traj.chw();
        let mut report = Map::new();
        report.insert(
            "tool".into(),
            json!({"name": "diffusability", "version": diffusability::VERSION}),
        );
        report.insert(
            "input".into(),
            json!({
                "layout": layout.to_string(),
                "direction": direction.to_string(),
                "steps": traj.steps(),
                "samples": traj.samples(),
                "channels": c,
                "height": h,
                "width": w,
                "dtype": traj.dtype(),
                "times": if times.is_some() { "given" } else { "uniform" },
                "latents": model_info,
            }),
        );
        let mut body = analysis.to_json();
        body.insert("warnings".into(), json!(warnings));
        report.extend(body);
        pretty(&Value::Object(report))
    })
}

/// `diffusability study --json`: from a CSV table, or from a directory of reports and a results file.
#[pyfunction]
#[pyo3(signature = (table, metrics_dir, results, target, group_by, best_over, metrics, seed, bootstrap))]
#[allow(clippy::too_many_arguments)]
fn study_json(
    py: Python<'_>,
    table: Option<String>,
    metrics_dir: Option<String>,
    results: Option<String>,
    target: String,
    group_by: Vec<String>,
    best_over: Option<String>,
    metrics: Option<String>,
    seed: u64,
    bootstrap: usize,
) -> PyResult<String> {
    work(py, move || {
        let metrics = metrics
            .as_deref()
            .map(study::parse_metric_list)
            .transpose()?;
        let opts = study::Options {
            target: target.parse()?,
            group_by,
            best_over,
            metrics,
            seed,
            bootstrap,
            ..study::Options::default()
        };
        let (t, mut warnings) = match (table, metrics_dir, results) {
            (Some(t), None, None) => (Table::read_csv(std::path::Path::new(&t))?, Vec::new()),
            (None, Some(d), Some(r)) => {
                Table::from_reports(std::path::Path::new(&d), std::path::Path::new(&r))?
            }
            _ => {
                return Err(Error::usage(
                    "study: expected a table, or metrics_dir and results",
                ));
            }
        };
        let mut s = study::analyze(&t, &opts)?;
        warnings.append(&mut s.warnings);
        s.warnings = warnings;
        Ok(s.to_json_pretty())
    })
}

#[pymodule]
fn _diffusability(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", diffusability::VERSION)?;
    m.add(
        "DiffusabilityError",
        m.py().get_type::<DiffusabilityError>(),
    )?;
    m.add_function(wrap_pyfunction!(registry_json, m)?)?;
    m.add_function(wrap_pyfunction!(metrics_json, m)?)?;
    m.add_function(wrap_pyfunction!(latents_address, m)?)?;
    m.add_function(wrap_pyfunction!(equivariance_json, m)?)?;
    m.add_function(wrap_pyfunction!(fd_json, m)?)?;
    m.add_function(wrap_pyfunction!(trajectory_json, m)?)?;
    m.add_function(wrap_pyfunction!(study_json, m)?)?;
    Ok(())
}
