//! The PNG backend: plotters' `BitMapBackend` with text drawn by our own glyph layout.
//!
//! plotters 0.3.7's ab_glyph text drawing places each glyph's bitmap at the pen position without the
//! glyph's left side bearing, so narrow glyphs (`.`, `-`, `,`) sit at the left of their advance and words
//! look broken ("0. 88", "SiT B"). This wrapper delegates every shape to the bitmap backend and rasterizes
//! text with ab_glyph itself, bearings and kerning included. The layout box (advance widths, height
//! `size / 1.24`) is plotters' own, so text measured by plotters while laying out a chart still fits.

use crate::font;
use ab_glyph::{Font, FontRef, PxScale, ScaleFont, point};
use plotters::prelude::*;
use plotters_backend::text_anchor::{HPos, VPos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingErrorKind,
};

/// A PNG file backend with correct glyph placement.
pub struct Raster<'a> {
    inner: BitMapBackend<'a>,
    font: FontRef<'static>,
}

impl<'a> Raster<'a> {
    /// A backend that writes a PNG file to `path` on `present`.
    pub fn new(path: &'a std::path::Path, size: (u32, u32)) -> diffusability::Result<Raster<'a>> {
        Ok(Raster {
            inner: BitMapBackend::new(path, size),
            font: font::font_ref()?,
        })
    }

    /// A backend that draws into `buf`, RGB row-major, `3 * width * height` bytes.
    pub fn with_buffer(buf: &'a mut [u8], size: (u32, u32)) -> diffusability::Result<Raster<'a>> {
        Ok(Raster {
            inner: BitMapBackend::with_buffer(buf, size),
            font: font::font_ref()?,
        })
    }
}

type Res<E> = Result<(), DrawingErrorKind<E>>;

impl DrawingBackend for Raster<'_> {
    type ErrorType = <BitMapBackend<'static> as DrawingBackend>::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.inner.get_size()
    }

    fn ensure_prepared(&mut self) -> Res<Self::ErrorType> {
        self.inner.ensure_prepared()
    }

    fn present(&mut self) -> Res<Self::ErrorType> {
        self.inner.present()
    }

    fn draw_pixel(&mut self, point: BackendCoord, color: BackendColor) -> Res<Self::ErrorType> {
        self.inner.draw_pixel(point, color)
    }

    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Res<Self::ErrorType> {
        self.inner.draw_line(from, to, style)
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Res<Self::ErrorType> {
        self.inner.draw_rect(upper_left, bottom_right, style, fill)
    }

    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Res<Self::ErrorType> {
        self.inner.draw_path(path, style)
    }

    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Res<Self::ErrorType> {
        self.inner.draw_circle(center, radius, style, fill)
    }

    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Res<Self::ErrorType> {
        self.inner.fill_polygon(vert, style)
    }

    fn blit_bitmap(
        &mut self,
        pos: BackendCoord,
        size: (u32, u32),
        src: &[u8],
    ) -> Res<Self::ErrorType> {
        self.inner.blit_bitmap(pos, size, src)
    }

    /// Lays the glyphs out on a baseline at the font's ascent inside plotters' layout box, anchors the box
    /// as plotters does, and blends each glyph's coverage, rotated by the style's transform.
    fn draw_text<T: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &T,
        pos: BackendCoord,
    ) -> Res<Self::ErrorType> {
        let color = style.color();
        if color.alpha == 0.0 {
            return Ok(());
        }
        let size = style.size() as f32;
        let scale = PxScale::from(size);
        let font = self.font.as_scaled(scale);
        let baseline = font.ascent();
        let mut glyphs = Vec::new();
        let mut x = 0f32;
        let mut prev = None;
        for c in text.chars() {
            let id = font.glyph_id(c);
            if let Some(p) = prev {
                x += font.kern(p, id);
            }
            glyphs.push(id.with_scale_and_position(scale, point(x, baseline)));
            x += font.h_advance(id);
            prev = Some(id);
        }
        let (width, height) = (x as i32, (style.size() / 1.24) as i32);
        let dx = match style.anchor().h_pos {
            HPos::Left => 0,
            HPos::Right => -width,
            HPos::Center => -width / 2,
        };
        let dy = match style.anchor().v_pos {
            VPos::Top => 0,
            VPos::Center => -height / 2,
            VPos::Bottom => -height,
        };
        let trans = style.transform();
        let mut pixels: Vec<(i32, i32, f32)> = Vec::new();
        for g in glyphs {
            if let Some(outline) = self.font.outline_glyph(g) {
                let b = outline.px_bounds();
                outline.draw(|gx, gy, cov| {
                    pixels.push((b.min.x as i32 + gx as i32, b.min.y as i32 + gy as i32, cov));
                });
            }
        }
        for (px, py, cov) in pixels {
            if cov <= 0.0 {
                continue;
            }
            let (tx, ty) = trans.transform(px + dx, py + dy);
            let c = BackendColor {
                alpha: color.alpha * f64::from(cov.min(1.0)),
                rgb: color.rgb,
            };
            self.inner.draw_pixel((pos.0 + tx, pos.1 + ty), c)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::figure::{INK, text};

    /// Ink columns of `s` drawn left-aligned at 40 px.
    fn ink_columns(s: &str) -> Vec<bool> {
        let (w, h) = (200u32, 60u32);
        let mut buf = vec![255u8; (3 * w * h) as usize];
        {
            let root = Raster::with_buffer(&mut buf, (w, h))
                .unwrap()
                .into_drawing_area();
            root.draw(&Text::new(s.to_string(), (10, 10), text(40.0, INK)))
                .unwrap();
            root.present().unwrap();
        }
        (0..w as usize)
            .map(|x| (0..h as usize).any(|y| buf[3 * (y * w as usize + x)] < 128))
            .collect()
    }

    /// Lengths of the blank runs between inked runs.
    fn gaps(cols: &[bool]) -> Vec<usize> {
        let first = cols.iter().position(|c| *c).unwrap();
        let last = cols.iter().rposition(|c| *c).unwrap();
        let mut out = Vec::new();
        let mut run = 0;
        for &c in &cols[first..=last] {
            if c {
                if run > 0 {
                    out.push(run);
                }
                run = 0;
            } else {
                run += 1;
            }
        }
        out
    }

    #[test]
    fn narrow_glyphs_sit_inside_their_advance() {
        // In "l.l" the period is centred between the stems: the two gaps differ by at most a pixel or two
        // (plotters' own placement puts it against the first stem).
        let g = gaps(&ink_columns("l.l"));
        assert_eq!(g.len(), 2, "{g:?}");
        assert!(g[0].abs_diff(g[1]) <= 2, "gaps around the period: {g:?}");
        assert!(g[0] >= 3, "{g:?}");
        let g = gaps(&ink_columns("l-l"));
        assert!(g[0].abs_diff(g[1]) <= 2, "gaps around the hyphen: {g:?}");
    }
}
