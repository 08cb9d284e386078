//! The study analysis as files: `correlations.csv`, `pairs.csv`, `ranking.md`, the figures (SVG and PNG)
//! and `report.html` that shows them all.
//!
//! Figures: `heatmap` (aligned r, metric x group: the study's Figures 5-6), per group `scatter_<group>`
//! (one panel per metric: Figure 4) and `bubble_<group>` (the group's best metric pair: Figure 8).

pub mod bubble;
pub mod heatmap;
pub mod html;
pub mod scatter;

use crate::figure::write_both;
use diffusability::study::{Study, export};
use diffusability::{Error, Result};
use std::path::{Path, PathBuf};

fn write_text(path: &Path, text: &str) -> Result<PathBuf> {
    std::fs::write(path, text)
        .map_err(|e| Error::internal(format!("cannot write {}: {e}", path.display())))?;
    Ok(path.to_path_buf())
}

/// Unique file stems for the groups' figures: `prefix_<slug>`, with `-2`, `-3` ... on collisions.
fn stems(study: &Study, prefix: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for g in &study.groups {
        let base = format!("{prefix}_{}", g.group.slug());
        let mut stem = base.clone();
        let mut k = 2;
        while out.contains(&stem) {
            stem = format!("{base}-{k}");
            k += 1;
        }
        out.push(stem);
    }
    out
}

/// Writes every output of the study into `dir` (created if missing); returns the paths written.
pub fn write_report(study: &Study, dir: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| {
        Error::internal(format!(
            "cannot create the output directory {}: {e}",
            dir.display()
        ))
    })?;
    let mut written = vec![
        write_text(
            &dir.join("correlations.csv"),
            &export::correlations_csv(study)?,
        )?,
        write_text(&dir.join("pairs.csv"), &export::pairs_csv(study)?)?,
        write_text(&dir.join("ranking.md"), &export::ranking_md(study))?,
    ];
    written.extend(write_both(&heatmap::Heatmap { study }, dir, "heatmap")?);
    let scatter_stems = stems(study, "scatter");
    let bubble_stems = stems(study, "bubble");
    let mut bubbles = Vec::new();
    for (i, g) in study.groups.iter().enumerate() {
        written.extend(write_both(
            &scatter::Scatter { study, group: g },
            dir,
            &scatter_stems[i],
        )?);
        match study.best_pair(&g.group) {
            Some(pair) => {
                written.extend(write_both(
                    &bubble::Bubble {
                        study,
                        group: g,
                        pair,
                    },
                    dir,
                    &bubble_stems[i],
                )?);
                bubbles.push(Some(bubble_stems[i].clone()));
            }
            None => bubbles.push(None),
        }
    }
    let page = html::page(study, "heatmap", &scatter_stems, &bubbles);
    written.push(write_text(&dir.join("report.html"), &page)?);
    Ok(written)
}
