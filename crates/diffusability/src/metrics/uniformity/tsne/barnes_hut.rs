//! Barnes-Hut repulsion (van der Maaten 2014, "Accelerating t-SNE using tree-based algorithms"), with
//! scikit-learn's quadtree and summary criterion (`sklearn/neighbors/_quad_tree.pyx`, `summarize`;
//! `sklearn/manifold/_barnes_hut_tsne.pyx`, `compute_gradient_negative`):
//! - the tree splits each cell at its centre into four, the root being the points' bounding rectangle;
//!   each cell keeps its point count, centre of mass and squared widest side;
//! - a cell stands for its points, all at its centre of mass, when `max_width^2 / d^2 < theta^2`
//!   (`d` the distance from the query point to the centre of mass), or when it is a leaf.
//!
//! Written here rather than taken from a crate: what matters is reproducing scikit-learn's
//! approximation exactly (its criterion, its cells split at their centres, every summary at a centre
//! of mass), because the approximation shapes the map the metric measures; a t-SNE crate's
//! Barnes-Hut would bring its own variant of these choices, tied to its own optimizer.
//!
//! Differences from scikit-learn, none of which changes the criterion: the root is the bare bounding
//! rectangle (scikit-learn pads its upper bounds by a relative 1e-3, or 1e-3 absolute on the small maps
//! of the first iterations), only identical points share a leaf (scikit-learn merges points within 1e-6
//! in each coordinate and skips them), and the sums are f64 (scikit-learn's are f32).
//!
//! Speed: the points are visited in groups (the largest cells of at most [`GROUP`] points, and runs of
//! at most [`GROUP`] points of a larger leaf of coincident points). One walk
//! of the tree per group decides each cell for all the group's points at once where the group's
//! bounding box settles it (summarized for all, or opened for all), and point by point otherwise; a
//! cell summarized for only some points carries their mask, and the others go on to its children.
//! The summarized cells form one list that the group's points sum over in SIMD lanes, each counting
//! the cells whose mask has its bit. Each point gets the same summaries as with its own walk (up to
//! rounding at the threshold), at a fraction of the cost of walking the tree once per point.
//!
//! The tree is built sequentially (`O(n log n)`, a small share of an iteration); the groups are
//! processed in parallel, each point's sums in one fixed order, so results are identical for any
//! thread count.

use super::super::vexp::{self, LANES, simd_kernel};
use super::optimize::{RepulsionForces, split_columns};
use rayon::prelude::*;

/// scikit-learn's default `angle`.
pub const THETA: f64 = 0.5;

/// Most points per group (see the module docs).
const GROUP: u32 = 32;
/// Deepest level: points closer than `2^-48` of the map's extent share a leaf (scikit-learn merges
/// points within 1e-6 of each other in absolute terms, which would merge most of the points of the
/// first iterations' 1e-4-wide map of 10,000 points).
const MAX_DEPTH: u32 = 48;
const NONE: u32 = u32::MAX;

#[derive(Clone, Copy, Debug)]
struct Cell {
    /// Centre of the cell's box (where it splits).
    cx: f64,
    cy: f64,
    /// Half widths of the box.
    hx: f64,
    hy: f64,
    /// Sum of the positions of its points, then (after [`Tree::finish`]) their centre of mass.
    mx: f64,
    my: f64,
    /// A leaf's first point, exactly: the mean of coincident points can round away from their common
    /// position, and routing a leaf's content by that mean could send it to a different child than the
    /// one its points' own positions lead to.
    fx: f64,
    fy: f64,
    count: u32,
    depth: u32,
    /// The children by quadrant (`2 * (x >= cx) + (y >= cy)`), or [`NONE`]; all [`NONE`] for a leaf.
    children: [u32; 4],
}

impl Cell {
    fn new(cx: f64, cy: f64, hx: f64, hy: f64, depth: u32) -> Cell {
        Cell {
            cx,
            cy,
            hx,
            hy,
            mx: 0.0,
            my: 0.0,
            fx: 0.0,
            fy: 0.0,
            count: 0,
            depth,
            children: [NONE; 4],
        }
    }

    fn is_leaf(&self) -> bool {
        self.children == [NONE; 4]
    }

    fn quadrant(&self, x: f64, y: f64) -> usize {
        2 * usize::from(x >= self.cx) + usize::from(y >= self.cy)
    }

    /// The squared widest side of the box.
    fn sq_max_width(&self) -> f64 {
        let w = 2.0 * self.hx.max(self.hy);
        w * w
    }
}

/// A quadtree over the points of one iteration, its buffers reused between iterations.
#[derive(Default)]
struct Tree {
    cells: Vec<Cell>,
    /// Per point: its leaf, and the first point inserted there (to recover a leaf's own position).
    leaf: Vec<u32>,
    /// Per cell: the squared widest side over `theta^2`, the summary threshold on `d^2`.
    reach: Vec<f64>,
    /// Per cell: its points' range in `order`.
    range: Vec<(u32, u32)>,
    /// The points in depth-first order of their leaves (by index within a leaf).
    order: Vec<u32>,
    /// The groups as ranges in `order`: the largest cells of at most [`GROUP`] points, and a larger
    /// leaf (coincident points) cut into runs of at most [`GROUP`], in depth-first order; the ranges
    /// in `order` follow each other and cover it.
    groups: Vec<(u32, u32)>,
    next: Vec<u32>,
}

impl Tree {
    fn build(&mut self, xs: &[f64], ys: &[f64]) {
        let n = xs.len();
        let (mut x0, mut x1, mut y0, mut y1) = (
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::INFINITY,
            f64::NEG_INFINITY,
        );
        for (&x, &y) in xs.iter().zip(ys) {
            x0 = x0.min(x);
            x1 = x1.max(x);
            y0 = y0.min(y);
            y1 = y1.max(y);
        }
        self.cells.clear();
        self.cells.push(Cell::new(
            0.5 * (x0 + x1),
            0.5 * (y0 + y1),
            0.5 * (x1 - x0),
            0.5 * (y1 - y0),
            0,
        ));
        // In the previous iteration's tree order, where there is one: the tree does not depend on the
        // order of insertion (only the rounding of its centres of mass does), and neighbours inserted
        // one after another find their path in cache.
        if self.order.len() == n {
            for k in 0..n {
                let i = self.order[k] as usize;
                self.insert(xs[i], ys[i]);
            }
        } else {
            for i in 0..n {
                self.insert(xs[i], ys[i]);
            }
        }
        self.finish(xs, ys);
    }

    /// Inserts one point, splitting leaves as scikit-learn's `insert_point` does: a leaf that receives a
    /// second point at another position moves its content into a child and becomes an inner cell.
    fn insert(&mut self, x: f64, y: f64) {
        let mut c = 0usize;
        loop {
            let cell = self.cells[c];
            if cell.count == 0 {
                let cell = &mut self.cells[c];
                cell.mx = x;
                cell.my = y;
                cell.fx = x;
                cell.fy = y;
                cell.count = 1;
                return;
            }
            if cell.is_leaf() {
                // Above the depth limit a leaf holds coincident points only, all at its first one.
                let (px, py) = (cell.fx, cell.fy);
                if (px == x && py == y) || cell.depth >= MAX_DEPTH {
                    let cell = &mut self.cells[c];
                    cell.mx += x;
                    cell.my += y;
                    cell.count += 1;
                    return;
                }
                // Move the leaf's content one level down; then insert into the now inner cell.
                let q = cell.quadrant(px, py);
                let child = self.child(c, q);
                let (mx, my, count) = (cell.mx, cell.my, cell.count);
                let ch = &mut self.cells[child];
                ch.mx = mx;
                ch.my = my;
                ch.fx = px;
                ch.fy = py;
                ch.count = count;
                continue;
            }
            let q = cell.quadrant(x, y);
            let cell = &mut self.cells[c];
            cell.mx += x;
            cell.my += y;
            cell.count += 1;
            c = match cell.children[q] {
                NONE => self.child(c, q),
                k => k as usize,
            };
        }
    }

    /// Creates the empty child `q` of cell `c`.
    fn child(&mut self, c: usize, q: usize) -> usize {
        let p = self.cells[c];
        let (hx, hy) = (0.5 * p.hx, 0.5 * p.hy);
        let cx = if q >= 2 { p.cx + hx } else { p.cx - hx };
        let cy = if q % 2 == 1 { p.cy + hy } else { p.cy - hy };
        let id = self.cells.len();
        self.cells.push(Cell::new(cx, cy, hx, hy, p.depth + 1));
        self.cells[c].children[q] = id as u32;
        id
    }

    /// Turns position sums into centres of mass, and finds each point's leaf.
    fn finish(&mut self, xs: &[f64], ys: &[f64]) {
        self.reach.clear();
        for cell in &mut self.cells {
            if cell.count > 0 {
                cell.mx /= cell.count as f64;
                cell.my /= cell.count as f64;
            }
            self.reach.push(cell.sq_max_width() / (THETA * THETA));
        }
        self.leaf.clear();
        for (&x, &y) in xs.iter().zip(ys) {
            let mut c = 0usize;
            while !self.cells[c].is_leaf() {
                c = self.cells[c].children[self.cells[c].quadrant(x, y)] as usize;
            }
            self.leaf.push(c as u32);
        }
        // Ranges in depth-first order, children in quadrant order; groups where a cell first fits.
        self.range.clear();
        self.range.resize(self.cells.len(), (0, 0));
        self.groups.clear();
        let mut offset = 0u32;
        // (cell, children done, inside a group)
        let mut stack = vec![(0u32, false, false)];
        while let Some((c, done, grouped)) = stack.pop() {
            let cell = &self.cells[c as usize];
            if done {
                self.range[c as usize].1 = offset;
                continue;
            }
            self.range[c as usize].0 = offset;
            let group = !grouped && cell.count <= GROUP;
            if group {
                self.groups.push((offset, offset + cell.count));
            } else if !grouped && cell.is_leaf() {
                // More coincident points than a group holds: in runs (the mask has one bit per point).
                let end = offset + cell.count;
                let mut lo = offset;
                while lo < end {
                    self.groups.push((lo, end.min(lo + GROUP)));
                    lo += GROUP;
                }
            }
            if cell.is_leaf() {
                offset += cell.count;
                self.range[c as usize].1 = offset;
                continue;
            }
            stack.push((c, true, grouped));
            for &k in cell.children.iter().rev() {
                if k != NONE {
                    stack.push((k, false, grouped || group));
                }
            }
        }
        // Each leaf's points by index, at its range's start.
        self.next.clear();
        self.next.extend(self.range.iter().map(|r| r.0));
        self.order.clear();
        self.order.resize(xs.len(), 0);
        for (i, &l) in self.leaf.iter().enumerate() {
            self.order[self.next[l as usize] as usize] = i as u32;
            self.next[l as usize] += 1;
        }
    }

    /// The other points of point `i`'s own leaf (coincident ones, or merged at the depth limit), as
    /// one summary at their centre of mass: `(sum q^2 dx, sum q^2 dy, sum q)`, or zeros when alone.
    fn own_leaf(&self, i: usize, x: f64, y: f64) -> [f64; 3] {
        let cell = &self.cells[self.leaf[i] as usize];
        let size = cell.count as f64 - 1.0;
        if size == 0.0 {
            return [0.0; 3];
        }
        let dx = x - (cell.mx * cell.count as f64 - x) / size;
        let dy = y - (cell.my * cell.count as f64 - y) / size;
        let q = 1.0 / (1.0 + dx * dx + dy * dy);
        [size * q * q * dx, size * q * q * dy, size * q]
    }

    /// One walk for the group of points `order[lo..hi]`: every cell summarized for at least one of its points, with the
    /// mask of those points, into `l`. A cell is decided for all active points at once when the
    /// group's bounding box settles it, else point by point; the points that open it go on to its
    /// children. A leaf is summarized for the active points other than its own.
    fn walk(&self, (lo, hi): (u32, u32), l: &mut Lists) {
        let pts = &self.order[lo as usize..hi as usize];
        let (px, py) = (&l.px, &l.py);
        let (x0, x1) = px
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                (a.min(v), b.max(v))
            });
        let (y0, y1) = py
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                (a.min(v), b.max(v))
            });
        let all = if pts.len() == 64 {
            u64::MAX
        } else {
            (1u64 << pts.len()) - 1
        };
        l.x.clear();
        l.y.clear();
        l.size.clear();
        l.mask.clear();
        l.walk.clear();
        l.walk.push((0, all));
        while let Some((c, mask)) = l.walk.pop() {
            let cu = c as usize;
            let cell = &self.cells[cu];
            let mut take = |m: u64| {
                l.x.push(cell.mx);
                l.y.push(cell.my);
                l.size.push(cell.count as f64);
                l.mask.push(m);
            };
            if cell.is_leaf() {
                let mut m = mask;
                let (a, b) = self.range[cu];
                if a < hi && lo < b {
                    // Points of the group whose own leaf this is.
                    for (a, &i) in pts.iter().enumerate() {
                        if self.leaf[i as usize] == c {
                            m &= !(1u64 << a);
                        }
                    }
                }
                if m != 0 {
                    take(m);
                }
                continue;
            }
            let gap = |v: f64, a: f64, b: f64| (a - v).max(v - b).max(0.0);
            let far = |v: f64, a: f64, b: f64| (v - a).abs().max((b - v).abs());
            let (gx, gy) = (gap(cell.mx, x0, x1), gap(cell.my, y0, y1));
            let (fx, fy) = (far(cell.mx, x0, x1), far(cell.my, y0, y1));
            let reach = self.reach[cu];
            let accept = if reach < gx * gx + gy * gy {
                mask
            } else if reach >= fx * fx + fy * fy {
                0
            } else {
                let mut acc = 0u64;
                let mut rest = mask;
                while rest != 0 {
                    let a = rest.trailing_zeros() as usize;
                    rest &= rest - 1;
                    let (dx, dy) = (px[a] - cell.mx, py[a] - cell.my);
                    if reach < dx * dx + dy * dy {
                        acc |= 1u64 << a;
                    }
                }
                acc
            };
            if accept != 0 {
                take(accept);
            }
            let open = mask & !accept;
            if open != 0 {
                for &k in cell.children.iter().rev() {
                    if k != NONE {
                        l.walk.push((k, open));
                    }
                }
            }
        }
    }
}

/// A group's scratch: its points' positions, the cells summarized for them with their point masks,
/// and the sums.
#[derive(Default)]
struct Lists {
    px: Vec<f64>,
    py: Vec<f64>,
    x: Vec<f64>,
    y: Vec<f64>,
    size: Vec<f64>,
    mask: Vec<u64>,
    walk: Vec<(u32, u64)>,
    t: Vec<f64>,
    sums: Vec<f64>,
}

simd_kernel! {
    /// For each point `a` at `(px[a], py[a])`: `(sum s q^2 dx, sum s q^2 dy, sum s q)` over the cells
    /// `(cx, cy, s)` whose mask has bit `a`, `q = 1 / (1 + dx^2 + dy^2)`, `d = p - c`, into
    /// `out[3a..3a + 3]`; lanes merged in order. The cells come in whole blocks of [`LANES`] (the
    /// caller pads with empty ones); `t` is scratch of `3 m` values. Written as an element-wise pass
    /// and three lane sums, each simple enough for the compiler to vectorize.
    fn cell_sums(
        px: &[f64],
        py: &[f64],
        cells: (&[f64], &[f64], &[f64], &[u64]),
        t: &mut [f64],
        out: &mut [f64],
    ) -> () {
        let (cx, cy, cs, cm) = cells;
        let m = cx.len();
        let (cy, cs, cm) = (&cy[..m], &cs[..m], &cm[..m]);
        let (tx, rest) = t[..3 * m].split_at_mut(m);
        let (ty, tz) = rest.split_at_mut(m);
        for (a, (&xi, &yi)) in px.iter().zip(py).enumerate() {
            let shift = a as u64;
            for j in 0..m {
                // The size where bit `a` is set, else +0.0: integer masking keeps the loop
                // branch-free.
                let keep = 0u64.wrapping_sub((cm[j] >> shift) & 1);
                let w = f64::from_bits(cs[j].to_bits() & keep);
                let (dx, dy) = (xi - cx[j], yi - cy[j]);
                let q = 1.0 / (1.0 + dx * dx + dy * dy);
                let sq = w * q;
                tx[j] = sq * q * dx;
                ty[j] = sq * q * dy;
                tz[j] = sq;
            }
            for (k, v) in [&*tx, &*ty, &*tz].into_iter().enumerate() {
                let mut acc = [0.0; LANES];
                for c in v.chunks_exact(LANES) {
                    for l in 0..LANES {
                        acc[l] += c[l];
                    }
                }
                out[3 * a + k] = vexp::merge(&acc);
            }
        }
    }
}

/// The Barnes-Hut repulsion with scikit-learn's criterion at `theta = 0.5`: about `O(n log n)` per
/// iteration. Its forces and `Z` are biased in scikit-learn's way (a cell's points all placed at its
/// centre of mass); maps optimized with it match scikit-learn's in distribution.
#[derive(Default)]
pub struct BarnesHutRepulsion {
    tree: Tree,
    xs: Vec<f64>,
    ys: Vec<f64>,
    /// Forces in the tree's point order.
    sorted: Vec<f64>,
}

impl RepulsionForces for BarnesHutRepulsion {
    fn forces(&mut self, y: &[f64], out: &mut [f64]) -> f64 {
        split_columns(y, &mut self.xs, &mut self.ys);
        self.tree.build(&self.xs, &self.ys);
        let n = self.xs.len();
        self.sorted.clear();
        self.sorted.resize(2 * n, 0.0);
        let (tree, xs, ys) = (&self.tree, &self.xs, &self.ys);
        // Each group's slice of the sorted forces.
        let mut parts = Vec::with_capacity(tree.groups.len());
        let mut rest = &mut self.sorted[..];
        for &g in &tree.groups {
            let (head, tail) = rest.split_at_mut(2 * (g.1 - g.0) as usize);
            parts.push((g, head));
            rest = tail;
        }
        let z: Vec<f64> = parts
            .into_par_iter()
            .map_init(Lists::default, |l, (g, f)| {
                let (lo, hi) = g;
                let pts = &tree.order[lo as usize..hi as usize];
                l.px.clear();
                l.py.clear();
                l.px.extend(pts.iter().map(|&i| xs[i as usize]));
                l.py.extend(pts.iter().map(|&i| ys[i as usize]));
                tree.walk(g, l);
                while l.x.len() % LANES != 0 {
                    l.x.push(0.0);
                    l.y.push(0.0);
                    l.size.push(0.0);
                    l.mask.push(0);
                }
                l.sums.clear();
                l.sums.resize(3 * pts.len(), 0.0);
                l.t.resize(3 * l.x.len(), 0.0);
                cell_sums(
                    &l.px,
                    &l.py,
                    (&l.x, &l.y, &l.size, &l.mask),
                    &mut l.t,
                    &mut l.sums,
                );
                let mut z = 0.0;
                for (a, &i) in pts.iter().enumerate() {
                    let [ex, ey, ez] = tree.own_leaf(i as usize, l.px[a], l.py[a]);
                    f[2 * a] = l.sums[3 * a] + ex;
                    f[2 * a + 1] = l.sums[3 * a + 1] + ey;
                    z += l.sums[3 * a + 2] + ez;
                }
                z
            })
            .collect();
        for (k, &i) in self.tree.order.iter().enumerate() {
            out[2 * i as usize] = self.sorted[2 * k];
            out[2 * i as usize + 1] = self.sorted[2 * k + 1];
        }
        z.iter().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::super::optimize::{ExactRepulsion, relative_error};
    use super::*;

    /// Every point inserted once, counts and centres of mass consistent, and the forces near the exact
    /// sums (Barnes-Hut at theta 0.5 is within a few per cent), with exact duplicates handled.
    #[test]
    fn tree_is_consistent_and_forces_are_close() {
        let n = 2000;
        let mut y: Vec<f64> = (0..n)
            .flat_map(|i| {
                let t = i as f64;
                let c = (i % 4) as f64;
                [
                    10.0 * c
                        + 3.0 * (1.0 - (t * 0.618_034).fract()).ln().abs().sqrt() * (t * 2.4).cos(),
                    -5.0 * c + 2.0 * (t * 0.414_214).fract() * (t * 1.7).sin(),
                ]
            })
            .collect();
        // A few exact duplicates.
        for k in 0..5 {
            y[2 * (100 + k)] = y[0];
            y[2 * (100 + k) + 1] = y[1];
        }
        let mut t = Tree::default();
        let (xs, ys): (Vec<f64>, Vec<f64>) = (0..n).map(|i| (y[2 * i], y[2 * i + 1])).unzip();
        t.build(&xs, &ys);
        assert_eq!(t.cells[0].count as usize, n);
        for c in &t.cells {
            if !c.is_leaf() {
                let s: u32 = c
                    .children
                    .iter()
                    .filter(|&&k| k != NONE)
                    .map(|&k| t.cells[k as usize].count)
                    .sum();
                assert_eq!(s, c.count);
            }
        }
        assert_eq!(t.cells[t.leaf[0] as usize].count, 6);
        let (mut a, mut b) = (vec![0.0; 2 * n], vec![0.0; 2 * n]);
        let za = BarnesHutRepulsion::default().forces(&y, &mut a);
        let zb = ExactRepulsion::default().forces(&y, &mut b);
        assert!((za - zb).abs() < 0.02 * zb, "Z {za} vs {zb}");
        let err = relative_error(&a, &b);
        assert!(err < 0.05, "relative force error {err}");
    }

    /// Coincident points whose mean rounds away from their position (three copies of 0.1 sum to
    /// 0.30000000000000004), beside points one ulp away, at every scale down to the depth limit:
    /// each point is found again in the leaf that holds it, and the forces stay finite.
    #[test]
    fn near_coincident_points_keep_their_leaves() {
        // The root's centre is the rounded mean of the three copies of 0.1 (0.1 + 1 ulp) and lies
        // between them and the fourth point.
        let tiny = [
            (0.1, 0.0),
            (0.1, 0.0),
            (0.1, 0.0),
            (0.1f64.next_up().next_up(), 0.0),
        ];
        let (xs, ys): (Vec<f64>, Vec<f64>) = tiny.iter().copied().unzip();
        let mut t = Tree::default();
        t.build(&xs, &ys);
        assert_eq!(t.leaf[0], t.leaf[2]);
        assert_ne!(t.leaf[0], t.leaf[3]);
        let mut pts = vec![(-3.0, -2.0), (4.0, 5.0), (0.7, -1.1)];
        for &base in &[0.1f64, 1.0 / 3.0, 0.7] {
            for _ in 0..3 {
                pts.push((base, base));
            }
            pts.push((base.next_up(), base));
            pts.push((base, base.next_down()));
            pts.push((base.next_up().next_up(), base.next_up()));
        }
        let (xs, ys): (Vec<f64>, Vec<f64>) = pts.iter().copied().unzip();
        let mut t = Tree::default();
        t.build(&xs, &ys);
        assert_eq!(t.cells[0].count as usize, pts.len());
        for (i, &(x, y)) in pts.iter().enumerate() {
            let leaf = &t.cells[t.leaf[i] as usize];
            assert!(leaf.is_leaf());
            assert!(
                leaf.depth >= MAX_DEPTH || (leaf.fx == x && leaf.fy == y),
                "point {i}"
            );
        }
        let y: Vec<f64> = pts.iter().flat_map(|&(x, y)| [x, y]).collect();
        let mut f = vec![0.0; y.len()];
        let z = BarnesHutRepulsion::default().forces(&y, &mut f);
        assert!(z.is_finite() && f.iter().all(|v| v.is_finite()));
    }

    /// More coincident points than a group holds (constant tokens map to one position): they still
    /// get their forces, and every other point gets its own.
    #[test]
    fn large_coincident_leaves_get_their_forces() {
        for copies in [40usize, 100] {
            let spread = 300;
            let mut y: Vec<f64> = (0..spread)
                .flat_map(|i| {
                    let t = i as f64;
                    [
                        5.0 * (t * 0.618_034).fract() - 2.5,
                        4.0 * (t * 0.414_214).fract() - 2.0,
                    ]
                })
                .collect();
            for _ in 0..copies {
                y.extend([0.3, -0.7]);
            }
            let n = spread + copies;
            let (mut a, mut b) = (vec![0.0; 2 * n], vec![0.0; 2 * n]);
            let za = BarnesHutRepulsion::default().forces(&y, &mut a);
            let zb = ExactRepulsion::default().forces(&y, &mut b);
            assert!(
                (za - zb).abs() < 0.02 * zb,
                "{copies} copies: Z {za} vs {zb}"
            );
            let err = relative_error(&a, &b);
            assert!(err < 0.05, "{copies} copies: relative force error {err}");
        }
    }
}
