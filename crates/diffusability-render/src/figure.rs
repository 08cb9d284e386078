//! What every figure shares: drawing once for both backends, colours, and number formats.

use crate::font;
use diffusability::{Error, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

/// The error of a drawing call on backend `DB`.
pub type Drawn<DB> =
    std::result::Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// A figure that can draw itself on any plotters backend.
pub trait Figure {
    /// Width and height in pixels.
    fn size(&self) -> (u32, u32);
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Drawn<DB>;
}

/// Writes `fig` as `dir/name.svg` and `dir/name.png`; returns both paths.
pub fn write_both<F: Figure>(fig: &F, dir: &Path, name: &str) -> Result<Vec<PathBuf>> {
    font::ensure()?;
    let svg = dir.join(format!("{name}.svg"));
    let png = dir.join(format!("{name}.png"));
    let fail = |p: &Path, e: &dyn std::fmt::Display| {
        Error::internal(format!("cannot draw {}: {e}", p.display()))
    };
    {
        let root = SVGBackend::new(&svg, fig.size()).into_drawing_area();
        fig.draw(&root).map_err(|e| fail(&svg, &e))?;
        root.present().map_err(|e| fail(&svg, &e))?;
    }
    {
        let root = crate::raster::Raster::new(&png, fig.size())?.into_drawing_area();
        fig.draw(&root).map_err(|e| fail(&png, &e))?;
        root.present().map_err(|e| fail(&png, &e))?;
    }
    Ok(vec![svg, png])
}

/// A text style of the vendored font.
pub fn text(size: f64, color: RGBColor) -> TextStyle<'static> {
    TextStyle {
        font: (font::FAMILY, size).into_font(),
        color: color.to_backend_color(),
        pos: plotters::style::text_anchor::Pos::default(),
    }
}

pub const INK: RGBColor = RGBColor(33, 33, 33);
pub const MUTED: RGBColor = RGBColor(110, 110, 110);
pub const GRID: RGBColor = RGBColor(225, 225, 225);

/// Ten well-separated categorical colours (Tableau 10), for clusters and families.
pub const CATEGORY: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Categories in order of first appearance, each with its colour (cycling past ten).
pub fn categories<'a>(values: impl Iterator<Item = Option<&'a str>>) -> Vec<(String, RGBColor)> {
    let mut out: Vec<(String, RGBColor)> = Vec::new();
    for v in values.flatten() {
        if !out.iter().any(|(k, _)| k == v) {
            let c = CATEGORY[out.len() % CATEGORY.len()];
            out.push((v.to_string(), c));
        }
    }
    out
}

/// The colour of category `v` (the first colour when there are no categories).
pub fn colour_of(cats: &[(String, RGBColor)], v: Option<&str>) -> RGBColor {
    v.and_then(|v| cats.iter().find(|(k, _)| k == v).map(|(_, c)| *c))
        .unwrap_or(CATEGORY[0])
}

/// Diverging colour for a value in [-1, 1]: red (-1), white (0), blue (+1). plotters' colormaps are all
/// sequential, and a correlation needs its zero to be neutral.
pub fn diverging(v: f64) -> RGBColor {
    let v = v.clamp(-1.0, 1.0);
    let (end, t) = if v >= 0.0 {
        ((33.0, 102.0, 172.0), v)
    } else {
        ((178.0, 24.0, 43.0), -v)
    };
    let mix = |a: f64, b: f64| (a + (b - a) * t).round() as u8;
    RGBColor(mix(247.0, end.0), mix(247.0, end.1), mix(247.0, end.2))
}

/// A padded axis range around the values (a unit range around a single value).
pub fn padded_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    if hi - lo <= f64::EPSILON * lo.abs().max(hi.abs()).max(1.0) {
        let half = (lo.abs() * 0.05).max(0.5);
        return (lo - half, hi + half);
    }
    let pad = (hi - lo) * 0.08;
    (lo - pad, hi + pad)
}

/// A tick label with as many decimals as the axis span needs.
pub fn tick(v: f64, span: f64) -> String {
    let decimals = if span > 0.0 {
        (2.0 - span.log10().floor()).clamp(0.0, 6.0) as usize
    } else {
        2
    };
    let s = format!("{v:.decimals$}");
    if s.starts_with('-') && s.trim_start_matches(['-', '0', '.']).is_empty() {
        s[1..].to_string()
    } else {
        s
    }
}

/// A p-value for a title: three decimals, or scientific notation below 0.001.
pub fn p_value(p: f64) -> String {
    if p == 0.0 {
        "0".into()
    } else if p < 1e-3 {
        format!("{p:.1e}")
    } else {
        format!("{p:.3}")
    }
}

/// Approximate width in pixels of `s` at `size` px (DejaVu Sans averages ~0.6 em per character).
pub fn text_width(s: &str, size: f64) -> f64 {
    s.chars().count() as f64 * size * 0.6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_labels_follow_the_span() {
        assert_eq!(tick(1234.5678, 500.0), "1235");
        assert_eq!(tick(0.123456, 0.3), "0.123");
        assert_eq!(tick(-0.0001, 1.0), "0.00");
    }

    #[test]
    fn diverging_is_white_at_zero() {
        assert_eq!(diverging(0.0), RGBColor(247, 247, 247));
        assert_eq!(diverging(1.0), RGBColor(33, 102, 172));
        assert_eq!(diverging(-2.0), RGBColor(178, 24, 43));
    }

    #[test]
    fn p_values_in_titles() {
        assert_eq!(p_value(0.04321), "0.043");
        assert_eq!(p_value(3.2e-8), "3.2e-8");
    }
}
