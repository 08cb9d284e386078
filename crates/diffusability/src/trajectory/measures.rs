//! Straightness, efficiency and per-segment length ratio of ODE paths (metrics.md section 10, study
//! eqs. 10-11), from a stream of states per sample.
//!
//! With segments `d_k = x_{k+1} - x_k` (`k = 0 .. K-1`, flattened, f64):
//!
//! ```text
//! straightness    = mean_b (1/(K-1)) sum_{k=0}^{K-2} cos(d_k, d_{k+1})                  (study eq. 10)
//! efficiency      = mean_b ||x_K - x_0|| / sum_k ||d_k||                                (study eq. 11)
//! length_ratio[k] = mean_b ||d_k|| / ((t_{k+1} - t_k) ||x_K - x_0||)    (Figure 10; 1 = straight path)
//! ```
//!
//! Degenerate cases give no NaN: a pair of adjacent segments of which one has length 0 has no cosine
//! and is left out of that sample's mean (the mean is over its remaining pairs; a sample with none
//! left is out of the straightness mean); a sample whose end equals its start (`x_K = x_0`) is out of
//! efficiency and length ratio. Each case is counted and reported as a warning. With `K = 1` there is
//! no pair: straightness is absent.
//!
//! Only norms and inner products of state differences enter, so the quantities are invariant under an
//! orthogonal change of basis: the ideal ODE ([`super::ideal`]) feeds its states in each class's
//! eigenbasis.

/// What one sample's path contributes.
#[derive(Clone, Debug, PartialEq)]
pub struct PathStats {
    /// `||d_k||`, `K` values.
    pub seg: Vec<f64>,
    /// Sum of `cos(d_k, d_{k+1})` over pairs where both lengths are positive.
    pub cos_sum: f64,
    /// Number of such pairs.
    pub cos_pairs: usize,
    /// Pairs left out because a segment has length 0.
    pub zero_pairs: usize,
    /// `||x_K - x_0||`.
    pub chord: f64,
}

/// Builds a [`PathStats`] from the states `x_0 .. x_K` pushed in order; keeps four `D`-vectors.
pub struct PathBuilder {
    first: Vec<f64>,
    prev: Vec<f64>,
    prev_d: Vec<f64>,
    d: Vec<f64>,
    pushed: usize,
    stats: PathStats,
}

impl PathBuilder {
    /// For states of `dim` values and `steps` = K segments.
    pub fn new(dim: usize, steps: usize) -> PathBuilder {
        PathBuilder {
            first: vec![0.0; dim],
            prev: vec![0.0; dim],
            prev_d: vec![0.0; dim],
            d: vec![0.0; dim],
            pushed: 0,
            stats: PathStats {
                seg: Vec::with_capacity(steps),
                cos_sum: 0.0,
                cos_pairs: 0,
                zero_pairs: 0,
                chord: 0.0,
            },
        }
    }

    /// Adds the next state (`dim` values).
    pub fn push(&mut self, x: &[f64]) {
        if self.pushed == 0 {
            self.first.copy_from_slice(x);
            self.prev.copy_from_slice(x);
            self.pushed = 1;
            return;
        }
        let mut nn = 0.0;
        for ((d, a), b) in self.d.iter_mut().zip(x).zip(&self.prev) {
            *d = a - b;
            nn += *d * *d;
        }
        let norm = nn.sqrt();
        if self.pushed >= 2 {
            let prev_norm = *self.stats.seg.last().expect("a previous segment");
            if norm > 0.0 && prev_norm > 0.0 {
                let dot: f64 = self.d.iter().zip(&self.prev_d).map(|(a, b)| a * b).sum();
                self.stats.cos_sum += dot / (norm * prev_norm);
                self.stats.cos_pairs += 1;
            } else {
                self.stats.zero_pairs += 1;
            }
        }
        self.stats.seg.push(norm);
        std::mem::swap(&mut self.d, &mut self.prev_d);
        self.prev.copy_from_slice(x);
        self.pushed += 1;
    }

    /// The path's statistics; `x_K` is the last state pushed.
    pub fn finish(mut self) -> PathStats {
        self.stats.chord = self
            .prev
            .iter()
            .zip(&self.first)
            .map(|(a, b)| (a - b) * (a - b))
            .sum::<f64>()
            .sqrt();
        self.stats
    }
}

/// The three quantities over samples, with the per-segment mean step length and what was left out.
#[derive(Clone, Debug, PartialEq)]
pub struct Measures {
    /// `None` with `K = 1` or when no sample has a pair of nonzero adjacent segments.
    pub straightness: Option<f64>,
    /// `None` when every sample ends where it starts.
    pub efficiency: Option<f64>,
    /// `K` values; `None` as `efficiency`.
    pub length_ratio: Option<Vec<f64>>,
    /// Mean over all samples of `||d_k||` (`K` values).
    pub mean_step_norm: Vec<f64>,
    pub samples: usize,
    /// Samples in the straightness mean.
    pub samples_straightness: usize,
    /// Samples in the efficiency and length-ratio means (`x_K != x_0`).
    pub samples_chord: usize,
    pub warnings: Vec<String>,
}

/// Averages the per-sample statistics `paths` (in their order) on the time grid `times` (`K+1`
/// strictly increasing values).
pub fn summarize(paths: &[PathStats], times: &[f64]) -> Measures {
    let steps = times.len() - 1;
    let n = paths.len();
    let dt: Vec<f64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    let mut warnings = Vec::new();

    let mut mean_step_norm = vec![0.0; steps];
    for p in paths {
        for (m, s) in mean_step_norm.iter_mut().zip(&p.seg) {
            *m += s;
        }
    }
    for m in &mut mean_step_norm {
        *m /= n as f64;
    }

    let (mut s_sum, mut s_n, mut zero_pairs, mut no_pair) = (0.0, 0usize, 0usize, 0usize);
    for p in paths {
        zero_pairs += p.zero_pairs;
        if p.cos_pairs > 0 {
            s_sum += p.cos_sum / p.cos_pairs as f64;
            s_n += 1;
        } else {
            no_pair += 1;
        }
    }
    let straightness = if steps < 2 {
        warnings.push(
            "trajectory: K = 1 segment: straightness needs at least 2 segments and is not computed"
                .to_string(),
        );
        None
    } else {
        if zero_pairs > 0 {
            warnings.push(format!(
                "trajectory: {zero_pairs} of {} pairs of adjacent segments include a zero-length \
                 segment and have no cosine; they are left out of straightness{}",
                n * (steps - 1),
                if no_pair > 0 {
                    format!(" ({no_pair} samples have no pair left and are not in its mean)")
                } else {
                    String::new()
                }
            ));
        }
        if s_n == 0 {
            warnings.push(
                "trajectory: no sample has two adjacent segments of nonzero length; straightness is \
                 not computed"
                    .to_string(),
            );
            None
        } else {
            Some(s_sum / s_n as f64)
        }
    };

    let moving: Vec<&PathStats> = paths.iter().filter(|p| p.chord > 0.0).collect();
    let still = n - moving.len();
    if still > 0 {
        warnings.push(format!(
            "trajectory: {still} of {n} samples end where they start (x_K = x_0); they are left out of \
             efficiency and length ratio"
        ));
    }
    let (efficiency, length_ratio) = if moving.is_empty() {
        warnings.push(
            "trajectory: every sample ends where it starts; efficiency and length ratio are not computed"
                .to_string(),
        );
        (None, None)
    } else {
        let m = moving.len() as f64;
        let eff = moving
            .iter()
            .map(|p| p.chord / p.seg.iter().sum::<f64>())
            .sum::<f64>()
            / m;
        let mut lr = vec![0.0; steps];
        for p in &moving {
            for ((l, s), h) in lr.iter_mut().zip(&p.seg).zip(&dt) {
                *l += s / (h * p.chord);
            }
        }
        for l in &mut lr {
            *l /= m;
        }
        (Some(eff), Some(lr))
    };
    Measures {
        straightness,
        efficiency,
        length_ratio,
        mean_step_norm,
        samples: n,
        samples_straightness: if steps < 2 { 0 } else { s_n },
        samples_chord: moving.len(),
        warnings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(states: &[&[f64]]) -> PathStats {
        let mut p = PathBuilder::new(states[0].len(), states.len() - 1);
        for s in states {
            p.push(s);
        }
        p.finish()
    }

    #[test]
    fn right_angle_path() {
        // (0,0) -> (1,0) -> (1,1): one right angle, chord sqrt 2, length 2.
        let p = path(&[&[0.0, 0.0], &[1.0, 0.0], &[1.0, 1.0]]);
        assert_eq!(p.seg, vec![1.0, 1.0]);
        assert_eq!((p.cos_sum, p.cos_pairs), (0.0, 1));
        let m = summarize(&[p], &[0.0, 0.5, 1.0]);
        assert_eq!(m.straightness, Some(0.0));
        assert!((m.efficiency.unwrap() - 2f64.sqrt() / 2.0).abs() < 1e-15);
        let lr = m.length_ratio.unwrap();
        assert!((lr[0] - 2.0 / 2f64.sqrt()).abs() < 1e-15);
        assert!(m.warnings.is_empty());
    }

    #[test]
    fn degenerate_paths_give_no_nan() {
        let still = path(&[&[1.0, 2.0], &[3.0, 2.0], &[1.0, 2.0]]);
        let stop = path(&[&[0.0, 0.0], &[1.0, 0.0], &[1.0, 0.0], &[2.0, 0.0]]);
        let m = summarize(&[stop], &[0.0, 0.3, 0.6, 1.0]);
        // Both pairs touch the zero segment: no cosine at all.
        assert_eq!(m.straightness, None);
        assert_eq!(m.efficiency, Some(1.0));
        assert_eq!(m.warnings.len(), 2, "{:?}", m.warnings);
        let m = summarize(&[still], &[0.0, 0.5, 1.0]);
        assert_eq!(m.straightness, Some(-1.0));
        assert_eq!((m.efficiency, m.length_ratio), (None, None));
        assert!(m.mean_step_norm.iter().all(|x| x.is_finite()));
        let one = path(&[&[0.0], &[2.0]]);
        let m = summarize(&[one], &[0.0, 1.0]);
        assert_eq!(m.straightness, None);
        assert_eq!(m.efficiency, Some(1.0));
        assert_eq!(m.length_ratio, Some(vec![1.0]));
    }
}
