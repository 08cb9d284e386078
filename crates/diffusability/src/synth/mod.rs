//! Seeded synthetic latents with a known ground truth (`diffusability synth`), to test metrics against
//! closed forms.
//!
//! The model is a class-conditional matrix normal: sample `n` of class `k` is the `C x S` matrix
//!
//! ```text
//! X_n = M_k + A_C G_n L_S^T,   G_n i.i.d. N(0, 1),   A_C A_C^T = Sigma_C,   L_S L_S^T = Sigma_S
//! ```
//!
//! so `vec(X_n)` (row-major, channel outer) is `N(vec M_k, Sigma_C ⊗ Sigma_S)`. The class means have
//! i.i.d. `N(0, class_sep^2)` entries; `Sigma_C = Q diag(lc) Q^T` with a Haar-random orthogonal `Q` and
//! `lc_i ∝ (i+1)^(-anisotropy)` of mean 1; `Sigma_S` is `within_scale^2` times a squared-exponential
//! kernel on the token grid (see [`cov::spatial_covariance`]). The within-class covariance is shared by
//! all classes, so every class has the same closed-form VIV ([`Truth`]).
//!
//! Samples are class-sorted: sample `n` belongs to class `n / per_class`. Each purpose draws from its
//! own stream ([`crate::stats::rng::stream`]): `synth-channel-basis` (Q), `synth-class-means`, and
//! `synth-noise` / `synth-masks` with the ChaCha stream number set to the sample index, so a sample's
//! values do not depend on how the work is split across threads.

pub mod cov;
pub mod masks;
pub mod truth;

pub use truth::Truth;

use crate::data::{self, Dataset, Labels, Latents, Masks, Source};
use crate::error::{Error, Result};
use crate::io::{RawArray, write_npz};
use crate::stats::rng::stream;
use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatRef, Par};
use rand::Rng;
use rand_distr::StandardNormal;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Largest token grid `H * W`: `Sigma_S` is a dense `S x S` matrix, factored in `O(S^3)`.
pub const MAX_TOKENS: usize = 4096;
/// Largest channel count: `Sigma_C` is a dense `C x C` matrix.
pub const MAX_CHANNELS: usize = 4096;
/// Largest mask upsampling factor.
pub const MAX_MASK_FACTOR: usize = 16;

/// Parameters of the synthetic model. Every field has a default; `seed` selects the draw.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SynthConfig {
    /// Number of classes `K` (default 10). Labels are `0..K`.
    pub classes: usize,
    /// Samples per class (default 100); `N = classes * per_class`.
    pub per_class: usize,
    /// Channels `C` (default 8, at most 4096).
    pub channels: usize,
    /// Grid height `H` (default 16; `H * W` at most 4096).
    pub height: usize,
    /// Grid width `W` (default 16).
    pub width: usize,
    /// Spatial correlation length in tokens of the squared-exponential kernel (default 2.0; 0 = white
    /// noise, `Sigma_S = within_scale^2 I`). Range [0, 1e6].
    pub corr_len: f64,
    /// Standard-deviation scale of the within-class covariance: `tr(Sigma_S) / S = within_scale^2`
    /// (default 1.0). Range [1e-30, 1e30].
    pub within_scale: f64,
    /// Decay exponent of the channel spectrum, `lc_i ∝ (i+1)^(-anisotropy)` (default 1.0; 0 =
    /// isotropic channels). Range [0, 100].
    pub anisotropy: f64,
    /// Standard deviation of the class means' entries (default 1.0; 0 = all classes share mean 0).
    /// Range [0, 1e30].
    pub class_sep: f64,
    /// Mask resolution as a multiple of the latent grid (default 2: `2H x 2W` masks); 0 = no masks.
    /// Range 0..=16.
    pub mask_factor: usize,
    /// Seed of every random stream (default 0).
    pub seed: u64,
}

impl Default for SynthConfig {
    fn default() -> Self {
        SynthConfig {
            classes: 10,
            per_class: 100,
            channels: 8,
            height: 16,
            width: 16,
            corr_len: 2.0,
            within_scale: 1.0,
            anisotropy: 1.0,
            class_sep: 1.0,
            mask_factor: 2,
            seed: 0,
        }
    }
}

/// Checks an integer parameter against `[lo, hi]` (`hi = None`: no upper bound).
fn check_count(name: &str, v: usize, lo: usize, hi: Option<usize>) -> Result<()> {
    let ok = v >= lo && hi.is_none_or(|hi| v <= hi);
    if ok {
        return Ok(());
    }
    let range = match hi {
        Some(hi) => format!("an integer in [{lo}, {hi}]"),
        None => format!("an integer >= {lo}"),
    };
    Err(Error::usage(format!(
        "synth: `{name}` must be {range}, found {v}"
    )))
}

/// Checks a real parameter against `[lo, hi]` (`range` spells the interval for the message); NaN and
/// infinities fail.
fn check_real(name: &str, v: f64, lo: f64, hi: f64, range: &str) -> Result<()> {
    if v >= lo && v <= hi {
        Ok(())
    } else {
        Err(Error::usage(format!(
            "synth: `{name}` must be a number in {range}, found {v}"
        )))
    }
}

impl SynthConfig {
    /// Checks every parameter; the message names the parameter, its allowed range and the value found.
    pub fn validate(&self) -> Result<()> {
        check_count("classes", self.classes, 1, None)?;
        check_count("per_class", self.per_class, 1, None)?;
        check_count("channels", self.channels, 1, Some(MAX_CHANNELS))?;
        check_count("height", self.height, 1, Some(MAX_TOKENS))?;
        check_count("width", self.width, 1, Some(MAX_TOKENS))?;
        let s = self.height * self.width;
        if s > MAX_TOKENS {
            return Err(Error::usage(format!(
                "synth: `height * width` must be at most {MAX_TOKENS} tokens (the spatial covariance is \
                 a dense S x S matrix), found {} x {} = {s}",
                self.height, self.width
            )));
        }
        check_real("corr_len", self.corr_len, 0.0, 1e6, "[0, 1e6]")?;
        check_real(
            "within_scale",
            self.within_scale,
            1e-30,
            1e30,
            "[1e-30, 1e30]",
        )?;
        check_real("anisotropy", self.anisotropy, 0.0, 100.0, "[0, 100]")?;
        check_real("class_sep", self.class_sep, 0.0, 1e30, "[0, 1e30]")?;
        check_count("mask_factor", self.mask_factor, 0, Some(MAX_MASK_FACTOR))?;
        let f = self.mask_factor.max(1);
        let values = [self.per_class, self.channels, s, f * f]
            .iter()
            .try_fold(self.classes, |acc, &x| acc.checked_mul(x))
            .filter(|&v| v <= (isize::MAX as usize) / 8);
        if values.is_none() {
            return Err(Error::usage(format!(
                "synth: {} classes x {} per class of {} x {} x {} latents is too large to hold in memory",
                self.classes, self.per_class, self.channels, self.height, self.width
            )));
        }
        Ok(())
    }

    /// Number of samples `N = classes * per_class` (after [`SynthConfig::validate`]).
    pub fn n(&self) -> usize {
        self.classes * self.per_class
    }

    /// The mask resolution `(mask_factor * H, mask_factor * W)`, or `None` without masks.
    pub fn mask_shape(&self) -> Option<(usize, usize)> {
        (self.mask_factor > 0).then(|| {
            (
                self.mask_factor * self.height,
                self.mask_factor * self.width,
            )
        })
    }
}

/// A generated synthetic data set with the parameters it was drawn from.
#[derive(Clone, Debug)]
pub struct Synth {
    pub config: SynthConfig,
    /// `N * C * H * W` values, sample-major, channel-major within a sample.
    pub latents: Vec<f32>,
    /// `N` labels; sample `n` has class `n / per_class`.
    pub labels: Vec<i64>,
    /// `N * mh * mw` flags (0/1), `(mh, mw) = config.mask_shape()`; `None` when `mask_factor = 0`.
    pub masks: Option<Vec<u8>>,
    /// Class means, `K * C * H * W` (row-major `(K, C, H, W)`).
    pub means: Vec<f64>,
    /// `Sigma_C`, `C x C` row-major.
    pub sigma_c: Vec<f64>,
    /// `Sigma_S`, `S x S` row-major (token index `y * W + x`).
    pub sigma_s: Vec<f64>,
    truth: Truth,
}

/// Draws a synthetic data set. Deterministic for `cfg` (including its seed) whatever the number of
/// threads of the enclosing rayon pool.
///
/// Cost: `O(C^3 + S^3)` for the factors, then `O(N (C^2 S + C S^2))` for the samples, parallel over
/// samples. Errors: [`SynthConfig::validate`]'s usage errors.
pub fn generate(cfg: &SynthConfig) -> Result<Synth> {
    cfg.validate()?;
    let (k, c, h, w) = (cfg.classes, cfg.channels, cfg.height, cfg.width);
    let s = h * w;
    let d = c * s;
    let n = cfg.n();

    let lc = cov::channel_spectrum(c, cfg.anisotropy);
    let q = cov::random_orthogonal(c, &mut stream(cfg.seed, "synth-channel-basis"))?;
    let (sigma_c, root_c) = cov::channel_factors(&q, &lc);
    let sigma_s = cov::spatial_covariance(h, w, cfg.corr_len, cfg.within_scale);
    // With the jitter the kernel is positive definite by a wide margin; failure means a bug.
    let l_s = cov::cholesky_lower(&sigma_s).ok_or_else(|| {
        Error::internal(format!(
            "synth: the spatial covariance (corr_len {}, within_scale {}) is not positive definite",
            cfg.corr_len, cfg.within_scale
        ))
    })?;
    let eig_s = cov::sym_eigenvalues(&sigma_s)?;

    let mut rng = stream(cfg.seed, "synth-class-means");
    let means: Vec<f64> = (0..k * d)
        .map(|_| cfg.class_sep * rng.sample::<f64, _>(StandardNormal))
        .collect();

    let mut latents = vec![0f32; n * d];
    latents.par_chunks_mut(d).enumerate().for_each_init(
        || {
            (
                vec![0f64; d],
                Mat::<f64>::zeros(c, s),
                Mat::<f64>::zeros(c, s),
            )
        },
        |(g, t, x), (i, out)| {
            let mut rng = stream(cfg.seed, "synth-noise");
            rng.set_stream(i as u64);
            for v in g.iter_mut() {
                *v = rng.sample(StandardNormal);
            }
            let g = MatRef::from_row_major_slice(g.as_slice(), c, s);
            matmul(
                t.as_mut(),
                Accum::Replace,
                g,
                l_s.transpose(),
                1.0,
                Par::Seq,
            );
            matmul(x.as_mut(), Accum::Replace, &root_c, &*t, 1.0, Par::Seq);
            let mean = &means[(i / cfg.per_class) * d..][..d];
            for ch in 0..c {
                for tok in 0..s {
                    out[ch * s + tok] = (mean[ch * s + tok] + x[(ch, tok)]) as f32;
                }
            }
        },
    );

    let labels = (0..n).map(|i| (i / cfg.per_class) as i64).collect();

    let masks = cfg.mask_shape().map(|(mh, mw)| {
        let mut m = vec![0u8; n * mh * mw];
        m.par_chunks_mut(mh * mw).enumerate().for_each(|(i, out)| {
            let mut rng = stream(cfg.seed, "synth-masks");
            rng.set_stream(i as u64);
            masks::ellipse(&mut rng, mh, mw, out);
        });
        m
    });

    let row_major = |m: &Mat<f64>| -> Vec<f64> {
        (0..m.nrows())
            .flat_map(|i| (0..m.ncols()).map(move |j| m[(i, j)]))
            .collect()
    };
    Ok(Synth {
        config: cfg.clone(),
        latents,
        labels,
        masks,
        means,
        sigma_c: row_major(&sigma_c),
        sigma_s: row_major(&sigma_s),
        truth: Truth::from_eigenvalues(lc, eig_s),
    })
}

impl Synth {
    /// The closed-form truth of the model (eigenvalues of both factors, VIV, VIV per dimension, total
    /// variance per dimension, anisotropy), for the raw latents. The within-class covariance is shared,
    /// so the class-conditional VIV of every class, and their mean, equal [`Truth::viv`].
    pub fn truth(&self) -> &Truth {
        &self.truth
    }

    /// `VIV = (pi/2) * (sum_i sqrt(lc_i)) * (sum_j sqrt(ls_j))`, the same for every class.
    pub fn true_viv(&self) -> f64 {
        self.truth.viv
    }

    /// The parameters as a JSON object: the [`SynthConfig`] fields plus `spatial_jitter` and
    /// `generator` (this library's name and version).
    pub fn config_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(&self.config).expect("a config serializes");
        if let Some(obj) = v.as_object_mut() {
            obj.insert("spatial_jitter".into(), cov::SPATIAL_JITTER.into());
            obj.insert(
                "generator".into(),
                format!("diffusability {}", crate::VERSION).into(),
            );
        }
        v
    }

    /// The arrays of the `.npz` file, in order: `latents` (f32, `(N, C, H, W)`), `labels` (i64, `(N,)`),
    /// `masks` (u8, `(N, mh, mw)`, if any), `means` (f64, `(K, C, H, W)`), `sigma_c` (f64, `(C, C)`),
    /// `sigma_s` (f64, `(S, S)`), the scalars `true_viv`, `true_viv_per_dim`, `true_total_variance`,
    /// `true_anisotropy` (f64, shape `()`), `eig_c`, `eig_s` (f64, descending), and `config` (u8: the
    /// UTF-8 bytes of [`Synth::config_json`]; `json.loads(bytes(a))` in Python).
    pub fn to_arrays(&self) -> Vec<(&'static str, RawArray)> {
        let cfg = &self.config;
        let (k, c, h, w) = (cfg.classes, cfg.channels, cfg.height, cfg.width);
        let n = cfg.n();
        let s = h * w;
        let t = &self.truth;
        let mut out = vec![
            (
                "latents",
                RawArray::f32(vec![n, c, h, w], self.latents.clone()),
            ),
            ("labels", RawArray::i64(vec![n], self.labels.clone())),
        ];
        if let (Some(m), Some((mh, mw))) = (&self.masks, cfg.mask_shape()) {
            out.push((
                "masks",
                RawArray::new(vec![n, mh, mw], crate::io::ArrayData::U8(m.clone())),
            ));
        }
        let scalar = |v: f64| RawArray::f64(vec![], vec![v]);
        let config = serde_json::to_vec(&self.config_json()).expect("JSON serializes");
        out.extend([
            ("means", RawArray::f64(vec![k, c, h, w], self.means.clone())),
            ("sigma_c", RawArray::f64(vec![c, c], self.sigma_c.clone())),
            ("sigma_s", RawArray::f64(vec![s, s], self.sigma_s.clone())),
            ("true_viv", scalar(t.viv)),
            ("true_viv_per_dim", scalar(t.viv_per_dim)),
            ("true_total_variance", scalar(t.total_variance)),
            ("true_anisotropy", scalar(t.anisotropy)),
            ("eig_c", RawArray::f64(vec![c], t.eig_c.clone())),
            ("eig_s", RawArray::f64(vec![s], t.eig_s.clone())),
            (
                "config",
                RawArray::new(vec![config.len()], crate::io::ArrayData::U8(config)),
            ),
        ]);
        out
    }

    /// Writes [`Synth::to_arrays`] as an uncompressed `.npz`.
    pub fn write(&self, path: &Path) -> Result<()> {
        let arrays = self.to_arrays();
        let named: Vec<(&str, &RawArray)> = arrays.iter().map(|(k, a)| (*k, a)).collect();
        write_npz(path, &named)
    }

    /// The latents, labels and token-level masks as a [`Dataset`] (copied), named `synth` with the
    /// source path `built-in:synth`.
    pub fn dataset(&self) -> Dataset {
        let cfg = &self.config;
        let latents = Latents::from_vec(cfg.channels, cfg.height, cfg.width, self.latents.clone());
        let labels = Labels::new(self.labels.clone());
        let masks = match (&self.masks, cfg.mask_shape()) {
            (Some(m), Some((mh, mw))) => {
                let px: Vec<bool> = m.iter().map(|&v| v != 0).collect();
                Some(Masks::pool(&px, cfg.n(), mh, mw, cfg.height, cfg.width))
            }
            _ => None,
        };
        let source = Source {
            name: "synth".into(),
            paths: vec!["built-in:synth".into()],
            dtype: "f32".into(),
            key: "latents".into(),
            sha256: data::digest(&latents, Some(&labels), masks.as_ref()),
            example: false,
        };
        Dataset {
            latents,
            labels: Some(labels),
            masks,
            source,
        }
    }
}
