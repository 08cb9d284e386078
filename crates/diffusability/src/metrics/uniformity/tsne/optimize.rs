//! The optimization (the third stage): gradient descent on the KL divergence with scikit-learn's
//! schedule and update rule, the repulsion summed over every pair ([`ExactRepulsion`], small maps),
//! approximated with scikit-learn's Barnes-Hut tree ([`super::barnes_hut`], the metric's setting) or
//! interpolated on an FFT grid (Linderman et al. 2019, FIt-SNE; [`FftRepulsion`]).
//!
//! The loop is ours and follows scikit-learn (`sklearn/manifold/_t_sne.py`, `_gradient_descent`):
//! - phase 1 (`early_iters`): `P` multiplied by the exaggeration, momentum 0.5; phase 2: momentum 0.8;
//!   `update` and `gains` start afresh at each phase, as scikit-learn calls `_gradient_descent` twice;
//! - delta-bar-delta gains: `+0.2` where `update * grad < 0`, `x0.8` elsewhere, floor 0.01, no cap;
//!   `update = momentum * update - lr * gains * grad`; no step clipping, no recentring;
//! - the gradient is written without t-SNE's factor 4, so the learning rate is `max(n / 12, 200)`,
//!   scikit-learn's `max(n / 48, 50)` with the factor;
//! - fixed iteration count (scikit-learn's early stopping on a stalled KL estimate is not used).
//!
//! Why the approximation is part of the metric: with the same `P`, initialization and schedule, the
//! three repulsions end at different maps. On 800 32-dimensional points (six clumps) from one PCA
//! initialization: every pair, KL 0.508, `uniformity_cv` 0.348 (scikit-learn `method="exact"` 0.508,
//! 0.356); Barnes-Hut 0.522, 0.315 (scikit-learn's Barnes-Hut 0.522, 0.316; 0.514-0.536 and
//! 0.304-0.314 over five random initializations, ours 0.517-0.536 and 0.305-0.316 from the same
//! five); this FFT grid 0.534, 0.285 (openTSNE 0.534, 0.286), and finer grids approach the exact sums
//! (boxes 0.5 wide: 0.511, 0.337; 0.25: 0.508, 0.348). Both approximations leave the map less clumpy
//! than the exact gradient, the coarse grid more so; only Barnes-Hut with scikit-learn's criterion
//! reproduces scikit-learn's maps, against which metrics.md section 5 defines the statistics.
//!
//! The repulsion `sum_j q_ij^2 (y_i - y_j)` and `Z = sum_{i != j} q_ij` are interpolated on a grid
//! laid over the embedding's bounding square every iteration, as in openTSNE/FIt-SNE, so the grid
//! resolves the map at every scale, including the first iterations when the points span 1e-4
//! ([`FftRepulsion`]; the n-body FFT itself is manifolds-rs's). manifolds-rs's own optimizer is not
//! used: it keeps boxes at least 1 unit wide, which blurs those first iterations, and clips steps; its
//! exact KL ended 3-5 % above openTSNE's on the same points.
//!
//! Every step is per point or summed sequentially, the tree walks are per group of points, and the FFT
//! passes work row by row with identical plans, so the result is the same for any thread count.

use super::super::vexp::{self, LANES, simd_kernel};
use super::affinity::Csr;
use super::attraction::Attraction;
use crate::progress::Progress;
use manifolds_rs::utils::fft::{FftGrid, FftKernels3k, FftWorkspace3k, n_body_fft_2d_3k};
use rayon::prelude::*;

/// Points per chunk of the per-point passes.
const CHUNK: usize = 512;
/// Minimum boxes per axis (FIt-SNE's and openTSNE's `min_num_intervals`).
const MIN_BOXES: usize = 50;

/// The optimizer's schedule.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Schedule {
    pub iters: usize,
    pub early_iters: usize,
    pub early_exaggeration: f64,
    /// In the convention without the gradient's factor 4.
    pub learning_rate: f64,
}

/// How the repulsive forces are computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Repulsion {
    /// FFT-interpolated: `O(n + G^2 log G)` per iteration for a grid of `G` nodes per axis; its maps
    /// are less clumpy than scikit-learn's (see the module docs).
    Fft,
    /// Every pair: `O(n^2)` per iteration; the reference the FFT path is tested against.
    Exact,
    /// Barnes-Hut with scikit-learn's criterion ([`super::barnes_hut`]), about `O(n log n)` per
    /// iteration: the metric's setting.
    BarnesHut,
}

/// Repulsive forces `sum_j q_ij^2 (y_i - y_j)` (`n x 2`, unnormalized) and `Z = sum_{i != j} q_ij`,
/// `q_ij = 1 / (1 + |y_i - y_j|^2)`, of the embedding `y` (`n x 2`, row-major).
pub trait RepulsionForces {
    fn forces(&mut self, y: &[f64], out: &mut [f64]) -> f64;

    /// The points of the last call in an order that keeps neighbours of the map together, where
    /// the repulsion has one (a tree's); the optimizer renumbers the points in it now and then.
    fn locality_order(&self) -> Option<&[u32]> {
        None
    }
}

simd_kernel! {
    /// For the point `(xi, yi)` against the points `(xs, ys)`: `(sum q^2 dx, sum q^2 dy, sum q)` with
    /// `q = 1 / (1 + dx^2 + dy^2)`, `d = (xi, yi) - (x_j, y_j)`, in lanes merged in order.
    fn exact_row(xs: &[f64], ys: &[f64], xi: f64, yi: f64) -> [f64; 3] {
        let mut acc = [[0.0; LANES]; 3];
        let mut cx = xs.chunks_exact(LANES);
        let mut cy = ys.chunks_exact(LANES);
        for (bx, by) in (&mut cx).zip(&mut cy) {
            for l in 0..LANES {
                let (dx, dy) = (xi - bx[l], yi - by[l]);
                let q = 1.0 / (1.0 + dx * dx + dy * dy);
                let q2 = q * q;
                acc[0][l] += q2 * dx;
                acc[1][l] += q2 * dy;
                acc[2][l] += q;
            }
        }
        for (l, (px, py)) in cx.remainder().iter().zip(cy.remainder()).enumerate() {
            let (dx, dy) = (xi - px, yi - py);
            let q = 1.0 / (1.0 + dx * dx + dy * dy);
            acc[0][l] += q * q * dx;
            acc[1][l] += q * q * dy;
            acc[2][l] += q;
        }
        [vexp::merge(&acc[0]), vexp::merge(&acc[1]), vexp::merge(&acc[2])]
    }
}

/// The exact repulsion, per point in fixed chunks, each point's sums in SIMD lanes: `n^2` pairs per
/// call (about 0.3 ns per pair with AVX-512), cheaper than the FFT grid up to a few thousand points.
#[derive(Default)]
pub struct ExactRepulsion {
    xs: Vec<f64>,
    ys: Vec<f64>,
}

/// The columns of the row-major `n x 2` embedding `y` into `xs` and `ys`.
pub(super) fn split_columns(y: &[f64], xs: &mut Vec<f64>, ys: &mut Vec<f64>) {
    xs.clear();
    ys.clear();
    xs.extend(y.iter().step_by(2));
    ys.extend(y.iter().skip(1).step_by(2));
}

impl RepulsionForces for ExactRepulsion {
    fn forces(&mut self, y: &[f64], out: &mut [f64]) -> f64 {
        split_columns(y, &mut self.xs, &mut self.ys);
        let (xs, ys) = (&self.xs, &self.ys);
        let z: Vec<f64> = out
            .par_chunks_mut(2 * CHUNK)
            .enumerate()
            .map(|(c, o)| {
                let mut z = 0.0;
                for (r, f) in o.chunks_exact_mut(2).enumerate() {
                    let i = c * CHUNK + r;
                    let [fx, fy, zi] = exact_row(xs, ys, xs[i], ys[i]);
                    f[0] = fx;
                    f[1] = fy;
                    // The pair (i, i) adds q = 1 to Z and nothing to the forces.
                    z += zi - 1.0;
                }
                z
            })
            .collect();
        z.iter().sum()
    }
}

/// Box width tried first, then every `2^(1/16)` wider: the kernel spectra are rebuilt only when the
/// box count or this step changes, so while the map grows they are reused for many iterations, and
/// only the grid's origin moves (the kernels depend on node offsets alone).
const LADDER: f64 = 16.0;

/// The smallest even `2^a 3^b 5^c >= n` (`a >= 1`): a length rustfft transforms with its fast radix-2,
/// 3 and 5 butterflies, and the finest step between grid sizes of that kind.
pub fn fft_size(n: usize) -> usize {
    let smooth = |mut v: usize| {
        for f in [2, 3, 5] {
            while v.is_multiple_of(f) {
                v /= f;
            }
        }
        v == 1
    };
    let mut v = n.max(2) + n % 2;
    while !smooth(v) {
        v += 2;
    }
    v
}

/// The FFT-interpolated repulsion (f32 transforms), keeping plans, kernel spectra and buffers between
/// iterations.
///
/// Three kernels `q`, `q^2 dx`, `q^2 dy` against a unit charge (manifolds-rs's `n_body_fft_2d_3k`: one
/// forward and three inverse transforms, against FIt-SNE's four and four) give `Z_i` and the forces
/// directly. Grid: the points' bounding square, `max(50, span / MAX_WIDTH)` boxes (50 is FIt-SNE's
/// and openTSNE's minimum), `NODES` Lagrange nodes per box and axis, the transform length the smallest
/// 5-smooth size that holds the padded grid, and then as many boxes as that length holds.
///
/// `NODES = 4` (FIt-SNE uses 3) and `MAX_WIDTH = 1` were chosen by the exact KL divergence they reach:
/// on 10,000- and 2,000-point 32-dimensional mixtures the final KL is within 0.5 % of openTSNE's on
/// the same points (FFT, 3 nodes, width 1, f64), at about a third of its CPU time. The interpolation
/// error is what limits the final KL: narrower boxes (0.9, 0.8) end 2-3 % and 4-6 % lower at 1.5x and
/// 2x the time, exact forces about 15 % lower; 3 nodes at width 1 end 4 % higher; f64 transforms end
/// at the same KL in twice the time.
pub struct FftRepulsion {
    nodes: usize,
    max_width: f64,
    key: (usize, i64),
    grid: Option<(FftGrid<f32>, FftKernels3k<f32>)>,
    ws: Option<FftWorkspace3k<f32>>,
    xs: Vec<f32>,
    ys: Vec<f32>,
    out: Vec<f32>,
}

/// Lagrange nodes per box and axis.
pub const NODES: usize = 4;
/// Widest box, in embedding units.
pub const MAX_WIDTH: f64 = 1.0;

impl Default for FftRepulsion {
    fn default() -> Self {
        FftRepulsion::new(NODES, MAX_WIDTH)
    }
}

impl FftRepulsion {
    /// A grid of `nodes` Lagrange nodes per box and boxes at most `max_width` wide.
    pub fn new(nodes: usize, max_width: f64) -> Self {
        FftRepulsion {
            nodes,
            max_width,
            key: (0, i64::MIN),
            grid: None,
            ws: None,
            xs: Vec::new(),
            ys: Vec::new(),
            out: Vec::new(),
        }
    }

    /// Lays the grid over the bounding square `[lo, hi]^2`, centred on it.
    fn layout(&mut self, lo: f64, hi: f64) {
        let span = (hi - lo).max(1e-30);
        let nodes = self.nodes;
        let need = ((span / self.max_width).ceil() as usize).max(MIN_BOXES);
        let n_fft = fft_size(2 * nodes * need);
        let boxes = n_fft / (2 * nodes);
        let step = (LADDER * (span / boxes as f64).log2()).ceil();
        let width = (step / LADDER).exp2();
        let origin = 0.5 * (lo + hi) - 0.5 * width * boxes as f64;
        let key = (n_fft, step as i64);
        if self.key != key || self.grid.is_none() {
            let mut grid = FftGrid::new_geometry(
                origin as f32,
                (origin + width * boxes as f64) as f32,
                boxes,
                nodes,
            );
            grid.n_fft = n_fft;
            let kernels = FftKernels3k::new(&grid);
            if self.ws.as_ref().is_none_or(|w| w.n_fft != n_fft) {
                self.ws = Some(FftWorkspace3k::new(n_fft));
            }
            self.grid = Some((grid, kernels));
            self.key = key;
        }
        let (grid, _) = self.grid.as_mut().expect("just set");
        // Move the origin: node coordinates shift, node offsets (and so the kernels) do not.
        let h = width / nodes as f64;
        grid.coord_min = origin as f32;
        grid.box_width = width as f32;
        for (k, (gx, gy)) in grid
            .global_x_coords
            .iter_mut()
            .zip(grid.global_y_coords.iter_mut())
            .enumerate()
        {
            let c = (origin + h * (k as f64 + 0.5)) as f32;
            *gx = c;
            *gy = c;
        }
    }
}

impl RepulsionForces for FftRepulsion {
    fn forces(&mut self, y: &[f64], out: &mut [f64]) -> f64 {
        let n = y.len() / 2;
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for &v in y {
            lo = lo.min(v);
            hi = hi.max(v);
        }
        self.layout(lo, hi);
        self.xs.clear();
        self.ys.clear();
        self.xs.extend(y.iter().step_by(2).map(|&v| v as f32));
        self.ys
            .extend(y.iter().skip(1).step_by(2).map(|&v| v as f32));
        self.out.resize(3 * n, 0.0);
        let (grid, kernels) = self.grid.as_ref().expect("laid out");
        let ws = self.ws.as_mut().expect("built with the grid");
        n_body_fft_2d_3k(&self.xs, &self.ys, grid, kernels, ws, &mut self.out);
        // Per point: sum_j q_ij (self term 1 included), then the two force components.
        let mut z = 0.0;
        for (f, p) in out.chunks_exact_mut(2).zip(self.out.chunks_exact(3)) {
            z += p[0] as f64 - 1.0;
            f[0] = p[1] as f64;
            f[1] = p[2] as f64;
        }
        z
    }
}

/// Every this many iterations the points are renumbered in the repulsion's spatial order.
const RENUMBER: usize = 25;

/// `v` (`n x 2`) with row `k` taken from row `ord[k]`.
pub(super) fn permute_rows(v: &mut Vec<f64>, ord: &[u32]) {
    *v = ord
        .iter()
        .flat_map(|&i| [v[2 * i as usize], v[2 * i as usize + 1]])
        .collect();
}

/// Runs the optimizer from `init` (`n x 2`, row-major) on the joint probabilities `p`; returns the
/// final embedding. Reports one progress step per iteration. Cost per iteration `O(nnz(p))` for the
/// attraction plus the repulsion's.
pub fn optimize(
    p: &Csr,
    init: &[f64],
    schedule: &Schedule,
    repulsion: Repulsion,
    progress: &dyn Progress,
) -> Vec<f64> {
    match repulsion {
        Repulsion::Fft => optimize_with(p, init, schedule, &mut FftRepulsion::default(), progress),
        Repulsion::Exact => {
            optimize_with(p, init, schedule, &mut ExactRepulsion::default(), progress)
        }
        Repulsion::BarnesHut => optimize_with(
            p,
            init,
            schedule,
            &mut super::barnes_hut::BarnesHutRepulsion::default(),
            progress,
        ),
    }
}

/// [`optimize`] with the given repulsion.
pub fn optimize_with(
    p: &Csr,
    init: &[f64],
    s: &Schedule,
    rep: &mut dyn RepulsionForces,
    progress: &dyn Progress,
) -> Vec<f64> {
    let n = p.n;
    let mut y = init.to_vec();
    let mut update = vec![0.0; 2 * n];
    let mut gains = vec![1.0; 2 * n];
    let mut attr = vec![0.0; 2 * n];
    let mut repf = vec![0.0; 2 * n];
    let mut attraction = Attraction::new(p);
    let early = s.early_iters.min(s.iters);
    let lr = s.learning_rate;
    for it in 0..s.iters {
        if it == early {
            update.iter_mut().for_each(|v| *v = 0.0);
            gains.iter_mut().for_each(|v| *v = 1.0);
        }
        let (exaggeration, momentum) = if it < early {
            (s.early_exaggeration, 0.5)
        } else {
            (1.0, 0.8)
        };
        if it % RENUMBER == 1
            && let Some(ord) = rep.locality_order()
        {
            let ord = ord.to_vec();
            attraction.renumber(&ord);
            for v in [&mut y, &mut update, &mut gains] {
                permute_rows(v, &ord);
            }
        }
        let z = rep.forces(&y, &mut repf);
        let inv_z = if z > 0.0 { 1.0 / z } else { 0.0 };
        attraction.forces(&y, exaggeration, &mut attr);
        y.par_chunks_mut(2 * CHUNK)
            .zip(update.par_chunks_mut(2 * CHUNK))
            .zip(gains.par_chunks_mut(2 * CHUNK))
            .enumerate()
            .for_each(|(c, ((yc, uc), gc))| {
                let base = c * 2 * CHUNK;
                for k in 0..yc.len() {
                    let t = base + k;
                    let grad = attr[t] - repf[t] * inv_z;
                    let g: f64 = if uc[k] * grad < 0.0 {
                        gc[k] + 0.2
                    } else {
                        gc[k] * 0.8
                    };
                    gc[k] = g.max(0.01);
                    uc[k] = momentum * uc[k] - lr * gc[k] * grad;
                    yc[k] += uc[k];
                }
            });
        progress.advance(1);
    }
    // Back to the original numbering.
    let mut out = vec![0.0; 2 * n];
    for (k, &i) in attraction.original.iter().enumerate() {
        out[2 * i as usize] = y[2 * k];
        out[2 * i as usize + 1] = y[2 * k + 1];
    }
    out
}

/// `|a - b| / |b|` (Euclidean norms), for comparing forces in tests.
#[cfg(test)]
pub(super) fn relative_error(a: &[f64], b: &[f64]) -> f64 {
    let norm = b.iter().map(|v| v * v).sum::<f64>().sqrt();
    let err = a.iter().zip(b).map(|(u, v)| (u - v).powi(2)).sum::<f64>();
    err.sqrt() / norm
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A t-SNE-like map: 3000 points in unequal Gaussian clumps at about one point per unit area
    /// (the density of a converged map), deterministic.
    fn map(scale: f64) -> Vec<f64> {
        (0..3000)
            .flat_map(|i| {
                let c = (i % 5) as f64;
                let (a, b) = (
                    (i as f64 * 0.618_034).fract(),
                    (i as f64 * 0.414_214).fract(),
                );
                // Box-Muller on quasi-random pairs.
                let r = (-2.0 * (a.max(1e-9)).ln()).sqrt() * (4.0 + 3.0 * c);
                let t = std::f64::consts::TAU * b;
                [
                    scale * (25.0 * c.cos() * c + r * t.cos()),
                    scale * (20.0 * c.sin() * c + r * t.sin()),
                ]
            })
            .collect()
    }

    /// The interpolated forces and `Z` against every pair: at the scale of a converged map within the
    /// interpolation error measured for these settings (2e-4 in `Z`, 1.4 % in the forces), and
    /// far better on the small maps of the early iterations (f32 transforms limit `Z` to ~1e-7).
    #[test]
    fn fft_repulsion_matches_exact() {
        for (scale, tol_z, tol_f) in [(1.0, 1e-3, 2.5e-2), (0.1, 5e-6, 1e-3), (1e-3, 5e-7, 5e-6)] {
            let y = map(scale);
            let (mut a, mut b) = (vec![0.0; y.len()], vec![0.0; y.len()]);
            let za = FftRepulsion::default().forces(&y, &mut a);
            let zb = ExactRepulsion::default().forces(&y, &mut b);
            assert!(
                (za - zb).abs() < tol_z * zb,
                "scale {scale}: Z {za} vs {zb}"
            );
            let err = relative_error(&a, &b);
            assert!(err < tol_f, "scale {scale}: relative force error {err}");
        }
    }
}
