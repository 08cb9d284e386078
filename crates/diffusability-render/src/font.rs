//! The vendored font (DejaVu Sans, `fonts/LICENSE`), registered with plotters from bytes.
//!
//! plotters' default `ttf` feature looks fonts up on the machine at run time and panics where there are
//! none (containers, CI); registering the font from bytes makes text measurement and PNG rasterization
//! the same everywhere.

use diffusability::{Error, Result};
use plotters::style::{FontStyle, register_font};
use std::sync::OnceLock;

/// The family name every figure asks for; SVG files name it too, so browsers use their own sans-serif.
pub const FAMILY: &str = "sans-serif";

static DEJAVU_SANS: &[u8] = include_bytes!("../fonts/DejaVuSans.ttf");

/// Registers the font once per process.
pub fn ensure() -> Result<()> {
    static DONE: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        register_font(FAMILY, FontStyle::Normal, DEJAVU_SANS)
            .map_err(|_| "the vendored DejaVu Sans font could not be parsed".to_string())
    })
    .clone()
    .map_err(Error::internal)
}

/// The vendored font, for drawing text outside plotters (see [`crate::raster`]).
pub fn font_ref() -> Result<ab_glyph::FontRef<'static>> {
    ab_glyph::FontRef::try_from_slice(DEJAVU_SANS)
        .map_err(|_| Error::internal("the vendored DejaVu Sans font could not be parsed"))
}
