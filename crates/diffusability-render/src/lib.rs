//! # diffusability-render
//!
//! Figures and HTML pages for diffusability results, kept out of the core library so that its users do
//! not pull in a plotting stack. Every figure is written twice, as SVG (for pages and papers) and PNG
//! (drawn with the vendored DejaVu Sans, so the output does not depend on the fonts of the machine).
//!
//! Entry point: [`study::write_report`] writes the study analysis of `diffusability study -o DIR`.

pub mod figure;
pub mod font;
pub mod raster;
pub mod study;
