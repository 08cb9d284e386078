//! The study's Figure 8: the best two-metric fit of a group as a bubble chart: the axes are the two
//! metrics, each bubble a tokenizer, its size the quality.

use super::scatter::legend;
use crate::figure::*;
use diffusability::study::{GroupData, Pair, Study};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

const R_MIN: f64 = 5.0;
const R_MAX: f64 = 24.0;
/// Tokenizer names are written beside bubbles only up to this many points (beyond, they overlap).
const MAX_LABELS: usize = 24;

pub struct Bubble<'a> {
    pub study: &'a Study,
    pub group: &'a GroupData,
    pub pair: &'a Pair,
}

impl Figure for Bubble<'_> {
    fn size(&self) -> (u32, u32) {
        (760, 640)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Drawn<DB> {
        root.fill(&WHITE)?;
        let s = self.study;
        let p = self.pair;
        let idx = |m: &str| s.params.metrics.iter().position(|x| x == m);
        let (Some(ia), Some(ib)) = (idx(&p.metrics[0]), idx(&p.metrics[1])) else {
            return Ok(());
        };
        let pts: Vec<(f64, f64, f64, Option<&str>, &str)> = self
            .group
            .points
            .iter()
            .filter_map(|q| {
                Some((
                    q.values[ia]?,
                    q.values[ib]?,
                    q.target,
                    q.colour.as_deref(),
                    q.tokenizer.as_str(),
                ))
            })
            .collect();
        let (tmin, tmax) = pts
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), q| {
                (a.min(q.2), b.max(q.2))
            });
        let radius = |t: f64| {
            if tmax > tmin {
                R_MIN + (R_MAX - R_MIN) * (t - tmin) / (tmax - tmin)
            } else {
                (R_MIN + R_MAX) / 2.0
            }
        };
        let left = Pos::new(HPos::Left, VPos::Center);
        root.draw(&Text::new(
            format!(
                "{} ~ {} + {} — {}",
                s.params.target,
                p.metrics[0],
                p.metrics[1],
                self.group.group.label()
            ),
            (14, 22),
            text(17.0, INK).pos(left),
        ))?;
        root.draw(&Text::new(
            format!(
                "R² = {:.3}, adjusted R² = {:.3}, leave-one-out R² = {}, n = {} (best pair of this group)",
                p.r2,
                p.adj_r2,
                p.loo_r2.map_or("n/a".into(), |v| format!("{v:.3}")),
                p.n
            ),
            (14, 46),
            text(13.0, INK).pos(left),
        ))?;
        let better = if s.params.target_higher_is_better {
            "higher"
        } else {
            "lower"
        };
        root.draw(&Text::new(
            format!(
                "bubble size: {} from {} (smallest) to {} (largest); {better} is better",
                s.params.target,
                tick(tmin, tmax - tmin),
                tick(tmax, tmax - tmin)
            ),
            (14, 68),
            text(12.0, MUTED).pos(left),
        ))?;
        let cats = categories(self.group.points.iter().map(|q| q.colour.as_deref()));
        let mut top = 84;
        if let Some(by) = &s.params.colour_by {
            top = legend(root, &format!("{by}:"), &cats, (14, 92), 730)? + 6;
        }
        let (_, body) = root.split_vertically(top);
        let (x0, x1) = padded_range(pts.iter().map(|q| q.0));
        let (y0, y1) = padded_range(pts.iter().map(|q| q.1));
        let mut chart = ChartBuilder::on(&body)
            .margin(20)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(x0..x1, y0..y1)?;
        let (xs, ys) = (x1 - x0, y1 - y0);
        let xf = move |v: &f64| tick(*v, xs);
        let yf = move |v: &f64| tick(*v, ys);
        let desc = |m: &str| {
            s.correlation(&self.group.group, m)
                .map_or(m.to_string(), |c| format!("{m} ({})", c.perspective))
        };
        chart
            .configure_mesh()
            .light_line_style(GRID.mix(0.0))
            .bold_line_style(GRID)
            .x_labels(6)
            .y_labels(6)
            .x_label_formatter(&xf)
            .y_label_formatter(&yf)
            .x_desc(desc(&p.metrics[0]))
            .y_desc(desc(&p.metrics[1]))
            .label_style(text(11.0, MUTED))
            .axis_desc_style(text(13.0, INK))
            .draw()?;
        // largest first, so small bubbles stay visible on top
        let mut order: Vec<usize> = (0..pts.len()).collect();
        order.sort_by(|&a, &b| pts[b].2.total_cmp(&pts[a].2));
        chart.draw_series(order.iter().map(|&i| {
            let q = pts[i];
            Circle::new(
                (q.0, q.1),
                radius(q.2) as i32,
                colour_of(&cats, q.3).mix(0.55).filled(),
            )
        }))?;
        chart.draw_series(order.iter().map(|&i| {
            let q = pts[i];
            Circle::new(
                (q.0, q.1),
                radius(q.2) as i32,
                colour_of(&cats, q.3).stroke_width(1),
            )
        }))?;
        if pts.len() <= MAX_LABELS {
            chart.draw_series(pts.iter().map(|q| {
                let r = radius(q.2) as i32;
                EmptyElement::at((q.0, q.1))
                    + Text::new(q.4.to_string(), (r + 3, 0), text(11.0, INK).pos(left))
            }))?;
        }
        Ok(())
    }
}
