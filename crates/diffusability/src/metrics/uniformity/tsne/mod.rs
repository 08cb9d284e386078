//! t-SNE in stages, as openTSNE organizes it: [`affinity`] (exact neighbours, perplexity calibration,
//! joint probabilities), [`init`] (PCA, rescaled), [`optimize`] (gradient descent with Barnes-Hut
//! repulsion, [`barnes_hut`]) and [`kl`] (the exact KL divergence of the result, for quality reporting).
//!
//! Settings follow metrics.md section 5 (scikit-learn's defaults): perplexity 30, 1000 iterations,
//! early exaggeration 12 for the first 250, learning rate `max(n / 12, 200)` on the gradient without
//! its factor 4 (= scikit-learn's `max(n / 48, 50)` with it; openTSNE's "auto"), PCA initialization with
//! standard deviation 1e-4, momentum 0.5 then 0.8, delta-bar-delta gains with floor 0.01.
//! The repulsion is scikit-learn's Barnes-Hut approximation (theta 0.5, its quadtree criterion) at
//! every size: the approximation shapes the map, and this one reproduces scikit-learn's maps in KL
//! and in the uniformity statistics, which FFT interpolation and exact sums do not ([`optimize`]'s
//! module docs have the measurements; both are kept for tests and comparisons).
//! The whole pipeline is deterministic: no randomness at all (the caller's seed only picks the
//! points), and the same result for any thread count.

pub mod affinity;
mod attraction;
pub mod barnes_hut;
pub mod init;
pub mod kl;
pub mod optimize;

pub use affinity::Points;

use crate::progress::Progress;

/// The t-SNE settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Settings {
    pub perplexity: f64,
    pub iters: usize,
    pub early_iters: usize,
    pub early_exaggeration: f64,
    pub init_std: f64,
    /// `None`: Barnes-Hut (the metric's setting).
    pub repulsion: Option<optimize::Repulsion>,
}

impl Settings {
    /// scikit-learn's defaults with the given perplexity and iteration count.
    pub fn new(perplexity: f64, iters: usize) -> Settings {
        Settings {
            perplexity,
            iters,
            early_iters: 250,
            early_exaggeration: 12.0,
            init_std: 1e-4,
            repulsion: None,
        }
    }

    /// How the repulsion of `n` points is computed.
    pub fn repulsion_method(&self) -> optimize::Repulsion {
        self.repulsion.unwrap_or(optimize::Repulsion::BarnesHut)
    }

    /// Neighbours per point of the sparse `P`: `min(n - 1, floor(3 perplexity + 1))` (scikit-learn).
    pub fn neighbours(&self, n: usize) -> usize {
        ((3.0 * self.perplexity + 1.0).floor() as usize).min(n.saturating_sub(1))
    }

    /// Learning rate in the convention without the gradient's factor 4: `max(n / 12, 200)`.
    pub fn learning_rate(&self, n: usize) -> f64 {
        (n as f64 / 12.0).max(200.0)
    }

    /// The smallest point count for which the perplexity can be met: more than `perplexity + 1`.
    pub fn min_points(&self) -> usize {
        self.perplexity.floor() as usize + 2
    }

    /// The settings as JSON (for the report's details).
    pub fn to_json(&self, n: usize) -> serde_json::Value {
        let method = self.repulsion_method();
        let repulsion = match method {
            optimize::Repulsion::Exact => "exact (every pair)",
            optimize::Repulsion::BarnesHut => {
                "Barnes-Hut (scikit-learn's quadtree and criterion max_width^2 / d^2 < theta^2)"
            }
            optimize::Repulsion::Fft => {
                "FFT-interpolated (FIt-SNE grid, manifolds-rs 0.8.0 n-body FFT)"
            }
        };
        let mut v = serde_json::json!({
            "implementation": "exact kNN affinities, PCA init, scikit-learn update rule",
            "repulsion": repulsion,
            "points": n,
            "perplexity": self.perplexity,
            "neighbours": self.neighbours(n),
            "iterations": self.iters,
            "early_exaggeration": self.early_exaggeration,
            "early_exaggeration_iterations": self.early_iters.min(self.iters),
            "learning_rate": self.learning_rate(n),
            "learning_rate_sklearn_convention": self.learning_rate(n) / 4.0,
            "momentum": [0.5, 0.8],
            "initialization": "pca",
            "initialization_std": self.init_std,
        });
        let extra = match method {
            optimize::Repulsion::BarnesHut => serde_json::json!({"theta": barnes_hut::THETA}),
            optimize::Repulsion::Fft => serde_json::json!({
                "interpolation_points": optimize::NODES,
                "max_box_width": optimize::MAX_WIDTH,
            }),
            optimize::Repulsion::Exact => serde_json::json!({}),
        };
        if let (Some(v), serde_json::Value::Object(e)) = (v.as_object_mut(), extra) {
            v.extend(e);
        }
        v
    }
}

/// Why an embedding could not be computed.
#[derive(Clone, Debug, PartialEq)]
pub enum TsneError {
    /// Fewer points than the perplexity needs.
    TooFewPoints { n: usize, min: usize },
    /// All points are identical.
    NoVariance,
    /// The optimizer failed (a bug).
    Internal(String),
}

/// One t-SNE run.
#[derive(Clone, Debug)]
pub struct Embedding {
    /// `n x 2`, row-major.
    pub y: Vec<f64>,
    /// The exact KL divergence of `y` ([`kl::exact_kl`]).
    pub kl: f64,
    /// Points whose perplexity could not be reached (more duplicates than the perplexity).
    pub unreached: usize,
}

/// Embeds `x` (`n x d`) in 2-D, reporting one progress step per iteration. `second` supplies the
/// second initial coordinate when `d = 1` (PCA has only one axis then). Cost: about `2.4 n^2 d`
/// flops, `7 n^2` exponentials and `iters` tree iterations.
pub fn embed(
    x: Points<'_>,
    s: &Settings,
    second: Option<&[f64]>,
    progress: &dyn Progress,
) -> Result<Embedding, TsneError> {
    let n = x.n;
    if n < s.min_points() {
        return Err(TsneError::TooFewPoints {
            n,
            min: s.min_points(),
        });
    }
    let a = affinity::affinities(x, s.perplexity, s.neighbours(n));
    let p = affinity::joint(&a);
    let y0 = init::pca(x, s.init_std, second).map_err(|e| match e {
        init::InitError::NoVariance => TsneError::NoVariance,
        init::InitError::Eigen => TsneError::Internal("PCA eigendecomposition failed".into()),
    })?;
    let schedule = optimize::Schedule {
        iters: s.iters,
        early_iters: s.early_iters,
        early_exaggeration: s.early_exaggeration,
        learning_rate: s.learning_rate(n),
    };
    let y = optimize::optimize(&p, &y0, &schedule, s.repulsion_method(), progress);
    let kl = kl::exact_kl(x, &a.exact, &y);
    Ok(Embedding {
        y,
        kl,
        unreached: a.unreached(),
    })
}
