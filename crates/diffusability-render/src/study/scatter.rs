//! The study's Figure 4: one scatter panel per metric against the quality, points coloured by cluster or
//! family, the least-squares line, and r and p in each panel's title. A star marks the metric with the
//! largest |r| of its perspective.

use crate::figure::*;
use diffusability::study::{GroupData, Study};
use plotters::coord::Shift;
use plotters::prelude::*;

const PANEL_W: u32 = 340;
const PANEL_H: u32 = 290;
const HEADER_H: u32 = 78;

pub struct Scatter<'a> {
    pub study: &'a Study,
    pub group: &'a GroupData,
}

impl Scatter<'_> {
    fn cols(&self) -> u32 {
        (self.study.params.metrics.len() as u32).clamp(1, 4)
    }

    fn rows(&self) -> u32 {
        (self.study.params.metrics.len() as u32)
            .div_ceil(self.cols())
            .max(1)
    }

    fn panel<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        m: usize,
        cats: &[(String, RGBColor)],
    ) -> Drawn<DB> {
        let s = self.study;
        let name = &s.params.metrics[m];
        let pts: Vec<(f64, f64, RGBColor)> = self
            .group
            .points
            .iter()
            .filter_map(|p| {
                p.values[m].map(|x| (x, p.target, colour_of(cats, p.colour.as_deref())))
            })
            .collect();
        let corr = s.correlation(&self.group.group, name);
        let best = s
            .ranking
            .iter()
            .any(|r| r.group == self.group.group && &r.metric == name);
        let stats = match corr.and_then(|c| c.pearson_r.zip(c.pearson_p)) {
            Some((r, p)) => format!("r = {r:.2}, p = {}", p_value(p)),
            None => "no correlation".into(),
        };
        let caption = format!("{}{name}: {stats}", if best { "★ " } else { "" });
        let (x0, x1) = padded_range(pts.iter().map(|p| p.0));
        // One y range for every panel of the group, so panels compare at a glance.
        let (y0, y1) = padded_range(self.group.points.iter().map(|p| p.target));
        let perspective = corr.map_or(String::new(), |c| c.perspective.clone());
        let mut chart = ChartBuilder::on(area)
            .margin(10)
            .margin_right(20)
            .caption(
                caption,
                text(14.0, if best { RGBColor(0, 0, 0) } else { INK }),
            )
            .x_label_area_size(42)
            .y_label_area_size(54)
            .build_cartesian_2d(x0..x1, y0..y1)?;
        let (xs, ys) = (x1 - x0, y1 - y0);
        let xf = move |v: &f64| tick(*v, xs);
        let yf = move |v: &f64| tick(*v, ys);
        chart
            .configure_mesh()
            .light_line_style(GRID.mix(0.0))
            .bold_line_style(GRID)
            .x_labels(5)
            .y_labels(5)
            .x_label_formatter(&xf)
            .y_label_formatter(&yf)
            .x_desc(format!("{name} ({perspective})"))
            .y_desc(s.params.target.clone())
            .label_style(text(11.0, MUTED))
            .axis_desc_style(text(12.0, INK))
            .draw()?;
        if let Some(seg) = fit_line(&pts).and_then(|(a, b)| clip(a, b, (x0, x1), (y0, y1))) {
            chart.draw_series(LineSeries::new(seg, MUTED.stroke_width(2)))?;
        }
        chart.draw_series(
            pts.iter()
                .map(|&(x, y, c)| Circle::new((x, y), 5, c.filled())),
        )?;
        chart.draw_series(
            pts.iter()
                .map(|&(x, y, _)| Circle::new((x, y), 5, INK.mix(0.6).stroke_width(1))),
        )?;
        if best {
            let (w, h) = area.dim_in_pixel();
            area.draw(&Rectangle::new(
                [(3, 3), (w as i32 - 4, h as i32 - 4)],
                RGBColor(222, 184, 60).stroke_width(2),
            ))?;
        }
        Ok(())
    }
}

/// Least-squares line `y = a + b x`; `None` for fewer than two distinct x.
fn fit_line(pts: &[(f64, f64, RGBColor)]) -> Option<(f64, f64)> {
    let n = pts.len() as f64;
    let mx = pts.iter().map(|p| p.0).sum::<f64>() / n;
    let my = pts.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    (pts.len() >= 2 && sxx > 0.0).then(|| (my - sxy / sxx * mx, sxy / sxx))
}

/// The part of the line `y = a + b x` inside the plot box (plotters does not clip series).
fn clip(a: f64, b: f64, (x0, x1): (f64, f64), (y0, y1): (f64, f64)) -> Option<Vec<(f64, f64)>> {
    let (mut lo, mut hi) = (x0, x1);
    if b != 0.0 {
        let (xa, xb) = ((y0 - a) / b, (y1 - a) / b);
        lo = lo.max(xa.min(xb));
        hi = hi.min(xa.max(xb));
    } else if !(y0..=y1).contains(&a) {
        return None;
    }
    (lo < hi).then(|| vec![(lo, a + b * lo), (hi, a + b * hi)])
}

/// Draws `cats` as coloured dots with names from `(x, y)`, wrapping at `width`; returns the bottom y.
pub fn legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    cats: &[(String, RGBColor)],
    (x, y): (i32, i32),
    width: i32,
) -> std::result::Result<i32, DrawingAreaErrorKind<DB::ErrorType>> {
    let style = text(13.0, INK).pos(plotters::style::text_anchor::Pos::new(
        plotters::style::text_anchor::HPos::Left,
        plotters::style::text_anchor::VPos::Center,
    ));
    area.draw(&Text::new(
        title.to_string(),
        (x, y),
        style.clone().color(&MUTED),
    ))?;
    let mut cx = x + text_width(title, 13.0) as i32 + 12;
    let mut cy = y;
    for (name, c) in cats {
        let w = 18 + text_width(name, 13.0) as i32 + 16;
        if cx + w > x + width {
            cx = x + text_width(title, 13.0) as i32 + 12;
            cy += 20;
        }
        area.draw(&Circle::new((cx + 5, cy), 5, c.filled()))?;
        area.draw(&Text::new(name.clone(), (cx + 16, cy), style.clone()))?;
        cx += w;
    }
    Ok(cy + 10)
}

impl Figure for Scatter<'_> {
    fn size(&self) -> (u32, u32) {
        (self.cols() * PANEL_W + 20, self.rows() * PANEL_H + HEADER_H)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Drawn<DB> {
        root.fill(&WHITE)?;
        let s = self.study;
        let (w, _) = self.size();
        let (header, body) = root.split_vertically(HEADER_H);
        let best_over = s
            .params
            .best_over
            .as_ref()
            .map_or(String::new(), |b| format!(", best row over {b}"));
        header.draw(&Text::new(
            format!(
                "{} against each metric — {} ({} rows{best_over})",
                s.params.target,
                self.group.group.label(),
                self.group.points.len()
            ),
            (14, 22),
            text(17.0, INK).pos(plotters::style::text_anchor::Pos::new(
                plotters::style::text_anchor::HPos::Left,
                plotters::style::text_anchor::VPos::Center,
            )),
        ))?;
        let cats = categories(self.group.points.iter().map(|p| p.colour.as_deref()));
        if let Some(by) = &s.params.colour_by {
            legend(&header, &format!("{by}:"), &cats, (14, 52), w as i32 - 28)?;
        }
        let body = body.margin(0, 0, 10, 10);
        let panels = body.split_evenly((self.rows() as usize, self.cols() as usize));
        for (m, area) in panels.iter().enumerate().take(s.params.metrics.len()) {
            self.panel(area, m, &cats)?;
        }
        Ok(())
    }
}
