//! The study's Figures 5-6: aligned Pearson r of every metric (rows, grouped by perspective) in every
//! group (columns), on a diverging scale where blue means "predicts better generation".

use crate::figure::*;
use diffusability::study::Study;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

const CELL_H: i32 = 30;
const TOP: i32 = 92;
const BOTTOM: i32 = 78;

pub struct Heatmap<'a> {
    pub study: &'a Study,
}

impl Heatmap<'_> {
    fn label_w(&self) -> i32 {
        let s = self.study;
        let widest = s
            .params
            .metrics
            .iter()
            .map(|m| text_width(m, 13.0))
            .fold(0.0, f64::max);
        let widest_p = s
            .correlations
            .iter()
            .map(|c| text_width(&c.perspective, 12.0))
            .fold(0.0, f64::max);
        (widest + widest_p + 40.0) as i32
    }

    fn cell_w(&self) -> i32 {
        let widest = self
            .study
            .groups
            .iter()
            .map(|g| text_width(&g.group.short_label(), 13.0))
            .fold(0.0, f64::max);
        (widest as i32 + 16).max(84)
    }
}

fn left(size: f64, c: RGBColor) -> TextStyle<'static> {
    text(size, c).pos(Pos::new(HPos::Left, VPos::Center))
}

fn center(size: f64, c: RGBColor) -> TextStyle<'static> {
    text(size, c).pos(Pos::new(HPos::Center, VPos::Center))
}

impl Figure for Heatmap<'_> {
    fn size(&self) -> (u32, u32) {
        let s = self.study;
        let w = self.label_w() + self.cell_w() * s.groups.len().max(1) as i32 + 30;
        let h = TOP + CELL_H * s.params.metrics.len() as i32 + BOTTOM;
        (w.max(560) as u32, h as u32)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Drawn<DB> {
        root.fill(&WHITE)?;
        let s = self.study;
        let (lw, cw) = (self.label_w(), self.cell_w());
        root.draw(&Text::new(
            format!("Aligned Pearson r with {} by group", s.params.target),
            (14, 22),
            left(17.0, INK),
        ))?;
        root.draw(&Text::new(
            "positive (blue) = the metric predicts better generation; n/a = no correlation (see warnings)".to_string(),
            (14, 46),
            left(12.0, MUTED),
        ))?;
        let by = if s.params.group_by.is_empty() {
            "all rows".to_string()
        } else {
            s.params.group_by.join(" / ")
        };
        root.draw(&Text::new(by, (14, TOP - 14), left(12.0, MUTED)))?;
        for (j, g) in s.groups.iter().enumerate() {
            let x = lw + cw * j as i32 + cw / 2;
            root.draw(&Text::new(
                g.group.short_label(),
                (x, TOP - 14),
                center(13.0, INK),
            ))?;
        }
        let mut last_perspective = String::new();
        for (i, m) in s.params.metrics.iter().enumerate() {
            let y = TOP + CELL_H * i as i32;
            let perspective = s
                .correlations
                .iter()
                .find(|c| &c.metric == m)
                .map_or(String::new(), |c| c.perspective.clone());
            if perspective != last_perspective {
                root.draw(&Text::new(
                    perspective.clone(),
                    (14, y + CELL_H / 2),
                    left(12.0, MUTED),
                ))?;
                if i > 0 {
                    root.draw(&PathElement::new(
                        vec![(14, y), (lw + cw * s.groups.len() as i32, y)],
                        GRID,
                    ))?;
                }
                last_perspective = perspective;
            }
            root.draw(&Text::new(
                m.clone(),
                (lw - 8, y + CELL_H / 2),
                text(13.0, INK).pos(Pos::new(HPos::Right, VPos::Center)),
            ))?;
            for (j, g) in s.groups.iter().enumerate() {
                let x = lw + cw * j as i32;
                let a = s.correlation(&g.group, m).and_then(|c| c.aligned_r);
                let fill = a.map_or(RGBColor(235, 235, 235), diverging);
                root.draw(&Rectangle::new(
                    [(x + 1, y + 1), (x + cw - 1, y + CELL_H - 1)],
                    fill.filled(),
                ))?;
                let label = a.map_or("n/a".to_string(), |v| format!("{v:+.2}"));
                let ink = if a.is_some_and(|v| v.abs() > 0.6) {
                    WHITE
                } else {
                    INK
                };
                root.draw(&Text::new(
                    label,
                    (x + cw / 2, y + CELL_H / 2),
                    center(13.0, ink),
                ))?;
            }
        }
        // colour bar
        let y = TOP + CELL_H * s.params.metrics.len() as i32 + 24;
        let (bx, bw) = (lw, (cw * s.groups.len() as i32).max(240));
        for k in 0..bw {
            let v = -1.0 + 2.0 * k as f64 / (bw - 1) as f64;
            root.draw(&Rectangle::new(
                [(bx + k, y), (bx + k + 1, y + 12)],
                diverging(v).filled(),
            ))?;
        }
        for (v, label) in [(-1.0, "-1"), (0.0, "0"), (1.0, "+1")] {
            let x = bx + ((v + 1.0) / 2.0 * (bw - 1) as f64) as i32;
            root.draw(&Text::new(
                label.to_string(),
                (x, y + 26),
                center(12.0, MUTED),
            ))?;
        }
        root.draw(&Text::new(
            "aligned r".to_string(),
            (bx - 8, y + 6),
            text(12.0, MUTED).pos(Pos::new(HPos::Right, VPos::Center)),
        ))?;
        Ok(())
    }
}
