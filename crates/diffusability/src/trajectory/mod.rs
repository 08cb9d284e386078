//! Post-hoc analysis of sampling trajectories (metrics.md section 10; study eqs. 10-11 and Figure 10):
//! how straight and how efficient the ODE paths of a trained diffusion model are, the per-segment
//! length ratio against the straight path, its overlay with the irreducible variance `V(t)` of the
//! class-conditional Gaussian model, and (beyond the study) the same quantities for the exact
//! Bayes-optimal ODE of that model.
//!
//! - [`Trajectory`] holds the states `x_0 (noise) .. x_K (sample)` of `B` samples as read from a file,
//!   in either layout; [`times`] checks (and for the REPA direction converts) the time grid;
//! - [`measures`] computes straightness, efficiency and length ratio from any stream of states;
//! - [`model`] fits the class-conditional Kronecker Gaussian model (the VIV fit) and gives `V(t)`;
//! - [`ideal`] integrates the model's Bayes-optimal ODE in each class's eigenbasis;
//! - [`analyze`] puts them together into an [`Analysis`] (JSON and per-segment CSV).
//!
//! Conventions (metrics.md section 0): SiT flow matching, noise at `t = 0`, data at `t = 1`. REPA-style
//! samplers run `t_repa = 1 - t` from 1 (noise) to 0 (data) with `v_repa = -v`; their states are the
//! same points in the same order, so only the time labels change: `t_k = 1 - t_repa_k`.

pub mod ideal;
pub mod measures;
pub mod model;

use crate::error::{Error, Result};
use crate::io::{ArrayData, RawArray};
use rayon::prelude::*;
use serde_json::{Map, Value, json};
use std::fmt;
use std::str::FromStr;

pub use ideal::{IdealOptions, IdealRun, Solver};
pub use measures::{Measures, PathBuilder, PathStats};
pub use model::{ClassModel, Model};

/// The axis order of a trajectory array.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// `(K+1, B, C, H, W)`: one block of `B` samples per state (the order of a sampler's loop).
    Kbchw,
    /// `(B, K+1, C, H, W)`: one block of `K+1` states per sample.
    Bkchw,
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Layout::Kbchw => "kbchw",
            Layout::Bkchw => "bkchw",
        })
    }
}

impl FromStr for Layout {
    type Err = Error;
    fn from_str(s: &str) -> Result<Layout> {
        match s {
            "kbchw" => Ok(Layout::Kbchw),
            "bkchw" => Ok(Layout::Bkchw),
            _ => Err(Error::usage(format!(
                "--layout: expected kbchw or bkchw, found `{s}`"
            ))),
        }
    }
}

/// The time convention of the sampler that wrote the trajectory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// SiT / LightningDiT: `t` runs from 0 (noise) to 1 (data).
    Sit,
    /// REPA-style: `t_repa = 1 - t` runs from 1 (noise) to 0 (data), `v_repa = -v`.
    Repa,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Sit => "sit",
            Direction::Repa => "repa",
        })
    }
}

impl FromStr for Direction {
    type Err = Error;
    fn from_str(s: &str) -> Result<Direction> {
        match s {
            "sit" => Ok(Direction::Sit),
            "repa" => Ok(Direction::Repa),
            _ => Err(Error::usage(format!(
                "--direction: expected sit or repa, found `{s}`"
            ))),
        }
    }
}

/// State values as stored: f16 and bf16 widen to f32 exactly; f64 stays f64.
#[derive(Clone, Debug, PartialEq)]
enum Values {
    F32(Vec<f32>),
    F64(Vec<f64>),
}

/// The ODE states `x_0 (noise) .. x_K (sample)` of `B` samples, each `C x H x W`.
#[derive(Clone, Debug, PartialEq)]
pub struct Trajectory {
    layout: Layout,
    /// `K + 1`.
    states: usize,
    /// `B`.
    samples: usize,
    /// `(C, H, W)`.
    chw: [usize; 3],
    values: Values,
    dtype: &'static str,
}

impl Trajectory {
    /// The trajectory held by `a` (read from `path`, under `key`), checked: 5 dimensions in `layout`,
    /// floats, at least 2 states, at least one sample, nonempty states, every value finite.
    pub fn from_raw(
        a: RawArray,
        layout: Layout,
        path: &str,
        key: Option<&str>,
    ) -> Result<Trajectory> {
        let axes = match layout {
            Layout::Kbchw => "(K+1, B, C, H, W)",
            Layout::Bkchw => "(B, K+1, C, H, W)",
        };
        let err = |what: String| Error::input(path, key, what);
        if a.shape.len() != 5 {
            return Err(err(format!(
                "expected 5 dimensions {axes} for layout {layout}, found shape {}",
                a.shape_str()
            )));
        }
        let (states, samples) = match layout {
            Layout::Kbchw => (a.shape[0], a.shape[1]),
            Layout::Bkchw => (a.shape[1], a.shape[0]),
        };
        let chw = [a.shape[2], a.shape[3], a.shape[4]];
        if states < 2 {
            return Err(err(format!(
                "expected at least 2 states x_0 (noise) .. x_K (sample) along K+1 of {axes}, found shape {}",
                a.shape_str()
            )));
        }
        if samples == 0 || chw.contains(&0) {
            return Err(err(format!(
                "expected a nonempty {axes} array, found shape {}",
                a.shape_str()
            )));
        }
        let dtype = a.data.dtype();
        let values = match a.data {
            ArrayData::F16(v) => Values::F32(v.iter().map(|x| x.to_f32()).collect()),
            ArrayData::BF16(v) => Values::F32(v.iter().map(|x| x.to_f32()).collect()),
            ArrayData::F32(v) => Values::F32(v),
            ArrayData::F64(v) => Values::F64(v),
            other => {
                return Err(err(format!(
                    "expected floating-point states (f16, bf16, f32 or f64), found dtype {}",
                    other.dtype()
                )));
            }
        };
        let t = Trajectory {
            layout,
            states,
            samples,
            chw,
            values,
            dtype,
        };
        if let Some(i) = t.first_non_finite() {
            let d = t.dim();
            let (outer, inner) = (i / d / t.inner_len(), i / d % t.inner_len());
            let (k, b) = match layout {
                Layout::Kbchw => (outer, inner),
                Layout::Bkchw => (inner, outer),
            };
            return Err(err(format!(
                "expected finite values, found {} in state {k} of sample {b}",
                t.value(i)
            )));
        }
        Ok(t)
    }

    /// A trajectory from f64 values in `layout` order (`dims` = the array's shape); checked as
    /// [`Trajectory::from_raw`]. For tests and in-memory callers.
    pub fn from_f64(layout: Layout, dims: [usize; 5], values: Vec<f64>) -> Result<Trajectory> {
        if dims.iter().product::<usize>() != values.len() {
            return Err(Error::usage(format!(
                "trajectory: {} values do not fill shape {dims:?}",
                values.len()
            )));
        }
        Trajectory::from_raw(
            RawArray::f64(dims.to_vec(), values),
            layout,
            "trajectory",
            None,
        )
    }

    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// `K`, the number of segments.
    pub fn steps(&self) -> usize {
        self.states - 1
    }

    /// `B`.
    pub fn samples(&self) -> usize {
        self.samples
    }

    /// `(C, H, W)` of one state.
    pub fn chw(&self) -> [usize; 3] {
        self.chw
    }

    /// `D = C * H * W`.
    pub fn dim(&self) -> usize {
        self.chw.iter().product()
    }

    /// The stored dtype (f16, bf16, f32 or f64).
    pub fn dtype(&self) -> &'static str {
        self.dtype
    }

    /// Length of the second axis.
    fn inner_len(&self) -> usize {
        match self.layout {
            Layout::Kbchw => self.samples,
            Layout::Bkchw => self.states,
        }
    }

    fn first_non_finite(&self) -> Option<usize> {
        match &self.values {
            Values::F32(v) => v.par_iter().position_first(|x| !x.is_finite()),
            Values::F64(v) => v.par_iter().position_first(|x| !x.is_finite()),
        }
    }

    fn value(&self, i: usize) -> f64 {
        match &self.values {
            Values::F32(v) => v[i] as f64,
            Values::F64(v) => v[i],
        }
    }

    /// State `k` of sample `b` as f64 into `out` (`D` values).
    pub fn state_into(&self, k: usize, b: usize, out: &mut [f64]) {
        let d = self.dim();
        let block = match self.layout {
            Layout::Kbchw => k * self.samples + b,
            Layout::Bkchw => b * self.states + k,
        };
        let r = block * d..(block + 1) * d;
        match &self.values {
            Values::F32(v) => {
                for (o, x) in out.iter_mut().zip(&v[r]) {
                    *o = *x as f64;
                }
            }
            Values::F64(v) => out.copy_from_slice(&v[r]),
        }
    }

    /// Straightness, efficiency and length ratio (metrics.md section 10) on the time grid `times`
    /// (`K+1` values, as returned by [`times`]). Samples run in parallel; per-sample results are
    /// combined in sample order, so the result does not depend on the thread count. Cost `O(K B D)`,
    /// memory `O(D)` per worker.
    pub fn measure(&self, times: &[f64]) -> Measures {
        let d = self.dim();
        let paths: Vec<PathStats> = (0..self.samples)
            .into_par_iter()
            .map_init(
                || vec![0.0; d],
                |buf, b| {
                    let mut p = PathBuilder::new(d, self.steps());
                    for k in 0..self.states {
                        self.state_into(k, b, buf);
                        p.push(buf);
                    }
                    p.finish()
                },
            )
            .collect();
        measures::summarize(&paths, times)
    }
}

/// Where a time grid came from, for messages: a file (and key) or the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimesSource {
    pub path: String,
    pub key: Option<String>,
}

impl TimesSource {
    fn err(&self, what: impl fmt::Display) -> Error {
        Error::input(&self.path, self.key.as_deref(), what)
    }
}

/// The numbers of a vector-shaped numeric array (at most one dimension above 1), as f64.
pub fn vector_f64(a: &RawArray, source: &TimesSource) -> Result<Vec<f64>> {
    if a.shape.iter().filter(|&&n| n > 1).count() > 1 {
        return Err(source.err(format!(
            "expected a vector of times (K+1,), found shape {}",
            a.shape_str()
        )));
    }
    a.data
        .to_f64()
        .ok_or_else(|| source.err("expected numbers, found dtype bool"))
}

/// The time grid `t_0 < ... < t_K` in the SiT convention (noise at 0, data at 1).
///
/// `given` None: uniform, `t_k = k / K` (the same grid in both directions). Given values must number
/// `K + 1`, be finite and lie in `[0, 1]`; in the SiT direction they must be strictly increasing, in
/// the REPA direction strictly decreasing (`t_repa` from 1 at the noise to 0 at the data), and are
/// converted by `t_k = 1 - t_repa_k`. The states are not reordered: `x_0` is the noise in both.
pub fn times(
    given: Option<&[f64]>,
    steps: usize,
    direction: Direction,
    source: &TimesSource,
) -> Result<Vec<f64>> {
    let Some(g) = given else {
        return Ok((0..=steps).map(|k| k as f64 / steps as f64).collect());
    };
    if g.len() != steps + 1 {
        return Err(source.err(format!(
            "has {} times, expected {} (K+1: one per state of the trajectory, K = {steps} segments)",
            g.len(),
            steps + 1
        )));
    }
    if let Some(i) = g.iter().position(|t| !t.is_finite()) {
        return Err(source.err(format!(
            "expected finite times, found {} at position {i}",
            g[i]
        )));
    }
    if let Some(i) = g.iter().position(|t| !(0.0..=1.0).contains(t)) {
        return Err(source.err(format!(
            "expected times in [0, 1] (flow matching), found {} at position {i}",
            g[i]
        )));
    }
    let (word, ok): (&str, fn(f64, f64) -> bool) = match direction {
        Direction::Sit => (
            "strictly increasing (direction sit: t runs from 0 at the noise to 1 at the data)",
            |a, b| b > a,
        ),
        Direction::Repa => (
            "strictly decreasing (direction repa: t runs from 1 at the noise to 0 at the data)",
            |a, b| b < a,
        ),
    };
    if let Some(i) = g.windows(2).position(|w| !ok(w[0], w[1])) {
        return Err(source.err(format!(
            "expected times {word}, found t[{}] = {} after t[{i}] = {}",
            i + 1,
            g[i + 1],
            g[i]
        )));
    }
    Ok(match direction {
        Direction::Sit => g.to_vec(),
        Direction::Repa => g.iter().map(|t| 1.0 - t).collect(),
    })
}

/// Segment midpoints `(t_k + t_{k+1}) / 2`.
pub fn midpoints(times: &[f64]) -> Vec<f64> {
    times.windows(2).map(|w| 0.5 * (w[0] + w[1])).collect()
}

/// The Pearson correlation `r = sum (a - a_bar)(b - b_bar) / sqrt(sum (a - a_bar)^2 sum (b - b_bar)^2)`.
/// `None` with fewer than 2 pairs or when either side is constant.
pub fn pearson(a: &[f64], b: &[f64]) -> Option<f64> {
    let n = a.len().min(b.len());
    if n < 2 {
        return None;
    }
    let ma = a[..n].iter().sum::<f64>() / n as f64;
    let mb = b[..n].iter().sum::<f64>() / n as f64;
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a[..n].iter().zip(&b[..n]) {
        let (dx, dy) = (x - ma, y - mb);
        sab += dx * dy;
        saa += dx * dx;
        sbb += dy * dy;
    }
    (saa > 0.0 && sbb > 0.0).then(|| (sab / (saa * sbb).sqrt()).clamp(-1.0, 1.0))
}

/// The `V(t)` overlay: the model's curve at the segment midpoints and its correlation with the
/// length ratio.
#[derive(Clone, Debug, PartialEq)]
pub struct Overlay {
    /// Mean over fitted classes of `V_k(t_mid)` (study eq. 4).
    pub viv_curve: Vec<f64>,
    /// Pearson r between `viv_curve` and the length ratio; `None` when undefined.
    pub r: Option<f64>,
    pub classes: usize,
    pub classes_skipped: usize,
}

/// Everything `diffusability trajectory` reports.
#[derive(Clone, Debug, PartialEq)]
pub struct Analysis {
    /// `t_0 .. t_K` (SiT convention).
    pub times: Vec<f64>,
    pub t_mid: Vec<f64>,
    pub measures: Measures,
    pub overlay: Option<Overlay>,
    pub ideal: Option<IdealRun>,
    pub warnings: Vec<String>,
}

/// Measures `traj` on `times`; with a fitted `model`, adds the `V(t)` overlay, and with `ideal`
/// options also the Bayes-optimal ODE of the model on the same grid.
pub fn analyze(
    traj: &Trajectory,
    times: &[f64],
    model: Option<&Model>,
    ideal: Option<&IdealOptions>,
) -> Result<Analysis> {
    let measures = traj.measure(times);
    let t_mid = midpoints(times);
    let mut warnings: Vec<String> = measures.warnings.clone();
    let mut overlay = None;
    let mut ideal_run = None;
    if let Some(m) = model {
        if m.chw != traj.chw {
            return Err(Error::usage(format!(
                "trajectory: the latents are C x H x W = {:?}, the trajectory states {:?}: they must come \
                 from the same tokenizer",
                m.chw, traj.chw
            )));
        }
        warnings.extend(m.warnings.iter().cloned());
        let viv_curve: Vec<f64> = t_mid.iter().map(|&t| m.v(t)).collect();
        let r = measures
            .length_ratio
            .as_ref()
            .and_then(|lr| pearson(&viv_curve, lr));
        if r.is_none() {
            warnings.push(if t_mid.len() < 2 {
                "trajectory: viv_length_ratio_r needs at least 2 segments; not computed".to_string()
            } else {
                "trajectory: viv_length_ratio_r is undefined (the length ratio or V(t) is constant, or \
                 absent); not computed"
                    .to_string()
            });
        }
        overlay = Some(Overlay {
            viv_curve,
            r,
            classes: m.classes.len(),
            classes_skipped: m.skipped,
        });
        if let Some(opts) = ideal {
            let run = ideal::run(m, times, opts, false);
            warnings.extend(
                run.measures
                    .warnings
                    .iter()
                    .map(|w| w.replacen("trajectory:", "ideal:", 1)),
            );
            ideal_run = Some(run);
        }
    } else if ideal.is_some() {
        return Err(Error::usage(
            "trajectory: the ideal ODE needs the fitted model of the latents (--latents)",
        ));
    }
    Ok(Analysis {
        times: times.to_vec(),
        t_mid,
        measures,
        overlay,
        ideal: ideal_run,
        warnings,
    })
}

impl Analysis {
    /// The JSON keys of the issue: `straightness`, `efficiency`, `length_ratio` (K), `times` (K+1),
    /// plus `t_mid`, `mean_step_norm`, and with a model `viv_curve` and `viv_length_ratio_r`, and
    /// `ideal` with the Bayes-optimal ODE's quantities. A quantity that cannot be computed is absent
    /// (a warning says why).
    pub fn to_json(&self) -> Map<String, Value> {
        let mut o = Map::new();
        let m = &self.measures;
        if let Some(s) = m.straightness {
            o.insert("straightness".into(), s.into());
        }
        if let Some(e) = m.efficiency {
            o.insert("efficiency".into(), e.into());
        }
        if let Some(lr) = &m.length_ratio {
            o.insert("length_ratio".into(), json!(lr));
        }
        o.insert("times".into(), json!(self.times));
        o.insert("t_mid".into(), json!(self.t_mid));
        o.insert("mean_step_norm".into(), json!(m.mean_step_norm));
        if let Some(ov) = &self.overlay {
            o.insert("viv_curve".into(), json!(ov.viv_curve));
            if let Some(r) = ov.r {
                o.insert("viv_length_ratio_r".into(), r.into());
            }
            o.insert(
                "viv_classes".into(),
                json!({"fitted": ov.classes, "skipped": ov.classes_skipped}),
            );
        }
        if let Some(run) = &self.ideal {
            let im = &run.measures;
            let mut i = Map::new();
            if let Some(s) = im.straightness {
                i.insert("straightness".into(), s.into());
            }
            if let Some(e) = im.efficiency {
                i.insert("efficiency".into(), e.into());
            }
            if let Some(lr) = &im.length_ratio {
                i.insert("length_ratio".into(), json!(lr));
            }
            i.insert("mean_step_norm".into(), json!(im.mean_step_norm));
            i.insert("samples".into(), run.samples.into());
            i.insert("samples_per_class".into(), json!(run.per_class));
            i.insert("solver".into(), run.solver.to_string().into());
            i.insert("seed".into(), run.seed.into());
            o.insert("ideal".into(), Value::Object(i));
        }
        o.insert(
            "samples_used".into(),
            json!({"straightness": m.samples_straightness, "efficiency": m.samples_chord}),
        );
        o.insert("warnings".into(), json!(self.warnings));
        o
    }

    /// The per-segment table: `k, t_start, t_end, t_mid, length_ratio, mean_step_norm`, then `viv`
    /// (with a model) and `ideal_length_ratio` (with the ideal ODE). Missing values are empty cells.
    pub fn segments_csv(&self) -> String {
        let mut s = String::from("k,t_start,t_end,t_mid,length_ratio,mean_step_norm");
        if self.overlay.is_some() {
            s.push_str(",viv");
        }
        if self.ideal.is_some() {
            s.push_str(",ideal_length_ratio");
        }
        s.push('\n');
        let cell = |v: Option<f64>| v.map_or(String::new(), |x| x.to_string());
        for k in 0..self.t_mid.len() {
            let lr = self.measures.length_ratio.as_ref().map(|v| v[k]);
            s.push_str(&format!(
                "{k},{},{},{},{},{}",
                self.times[k],
                self.times[k + 1],
                self.t_mid[k],
                cell(lr),
                self.measures.mean_step_norm[k]
            ));
            if let Some(ov) = &self.overlay {
                s.push_str(&format!(",{}", ov.viv_curve[k]));
            }
            if let Some(run) = &self.ideal {
                s.push_str(&format!(
                    ",{}",
                    cell(run.measures.length_ratio.as_ref().map(|v| v[k]))
                ));
            }
            s.push('\n');
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_default_convert_and_reject() {
        let src = TimesSource {
            path: "--times".into(),
            key: None,
        };
        assert_eq!(
            times(None, 4, Direction::Sit, &src).unwrap(),
            vec![0.0, 0.25, 0.5, 0.75, 1.0]
        );
        assert_eq!(
            times(None, 4, Direction::Repa, &src).unwrap(),
            vec![0.0, 0.25, 0.5, 0.75, 1.0]
        );
        assert_eq!(
            times(Some(&[1.0, 0.75, 0.0]), 2, Direction::Repa, &src).unwrap(),
            vec![0.0, 0.25, 1.0]
        );
        let e = times(Some(&[0.0, 0.5, 0.5, 1.0]), 3, Direction::Sit, &src).unwrap_err();
        assert!(e.message.contains("strictly increasing"), "{}", e.message);
        assert_eq!(e.exit_code(), 2);
        let e = times(Some(&[0.0, 0.5, 1.0]), 2, Direction::Repa, &src).unwrap_err();
        assert!(e.message.contains("strictly decreasing"), "{}", e.message);
        let e = times(Some(&[0.0, 1.0]), 2, Direction::Sit, &src).unwrap_err();
        assert!(
            e.message.contains("has 2 times, expected 3"),
            "{}",
            e.message
        );
        let e = times(Some(&[0.0, f64::NAN, 1.0]), 2, Direction::Sit, &src).unwrap_err();
        assert!(e.message.contains("finite"), "{}", e.message);
        let e = times(Some(&[0.0, 0.5, 1.5]), 2, Direction::Sit, &src).unwrap_err();
        assert!(e.message.contains("[0, 1]"), "{}", e.message);
    }

    #[test]
    fn pearson_basics() {
        assert!((pearson(&[1.0, 2.0, 3.0], &[2.0, 4.0, 6.5]).unwrap() - 0.9986).abs() < 1e-3);
        assert_eq!(pearson(&[1.0, 2.0, 3.0], &[-1.0, -2.0, -3.0]), Some(-1.0));
        assert_eq!(pearson(&[1.0, 1.0], &[1.0, 2.0]), None);
        assert_eq!(pearson(&[1.0], &[1.0]), None);
    }
}
