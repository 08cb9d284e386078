//! Spatial structure: the iREPA metrics [ref: End2End-Diffusion/iREPA `metrics/spatial_metrics.py`].
//!
//! Two families, because masks are the unit of `needs`: `spatial` (`lds`, `cds`, opt-in `rmsc`) runs on
//! latents alone, `srss` needs foreground masks. Both work per image on the normalized latents, in
//! fixed chunks of images merged in chunk order (identical results for any thread count), and average
//! the per-image values in f64. LDS and CDS are linear in each image's Gram matrix, so they are read
//! off the sum of the Gram matrices over images; SRSS, a ratio per anchor, is computed image by image.

pub mod cds;
pub mod gram;
pub mod kernels;
pub mod lds;
pub mod rmsc;
pub mod srss;

use super::params::DefaultValue;
use super::{
    Context, Family, MetricInfo, Needs, Output, ParamKind, ParamSpec, Params, Perspective,
};
use crate::error::{Error, Result};
use crate::par;
use cds::Cds;
use gram::{GramSum, Grid, normalize_tokens};
use lds::Lds;
use serde_json::json;
use srss::{Srss, SrssImage, SrssScratch};

/// Images per chunk: fixed, so results never depend on the thread count.
const CHUNK: usize = 64;

const MAX_DIST_PARAM: i64 = 1 << 20;

pub static LDS_FAR: ParamSpec = ParamSpec {
    name: "lds_far",
    kind: ParamKind::Int {
        min: 1,
        max: MAX_DIST_PARAM,
    },
    default: DefaultValue::Int(6),
    help: "LDS: token pairs at Manhattan distance >= this are the distant ones (iREPA far_dist)",
};

pub static CDS_DMAX: ParamSpec = ParamSpec {
    name: "cds_dmax",
    kind: ParamKind::Int {
        min: 1,
        max: MAX_DIST_PARAM,
    },
    default: DefaultValue::Int(8),
    help: "CDS: the similarity-vs-distance line is fitted over distances 1..=this (iREPA dmax)",
};

pub static SRSS_DPOS: ParamSpec = ParamSpec {
    name: "srss_dpos",
    kind: ParamKind::Int {
        min: 1,
        max: MAX_DIST_PARAM,
    },
    default: DefaultValue::Int(1),
    help: "SRSS: foreground tokens at distance 1..=this from an anchor are its positives (iREPA d_pos)",
};

pub static SRSS_DNEG: ParamSpec = ParamSpec {
    name: "srss_dneg",
    kind: ParamKind::Int {
        min: 1,
        max: MAX_DIST_PARAM,
    },
    default: DefaultValue::Int(6),
    help: "SRSS: background tokens at distance >= this from an anchor are its negatives (iREPA d_neg)",
};

/// Latents only: `lds`, `cds`, `rmsc` (opt-in).
pub static SPATIAL: Family = Family {
    name: "spatial",
    needs: Needs {
        labels: false,
        masks: false,
    },
    metrics: &[
        MetricInfo {
            name: "lds",
            perspective: Perspective::SpatialStructure,
            higher_is_better: true,
            opt_in: false,
            help: "local-vs-distant similarity: mean cosine of neighbouring tokens minus that of distant ones (iREPA)",
        },
        MetricInfo {
            name: "cds",
            perspective: Perspective::SpatialStructure,
            higher_is_better: true,
            opt_in: false,
            help: "correlation-decay slope: minus the slope of token cosine against grid distance (iREPA)",
        },
        MetricInfo {
            name: "rmsc",
            perspective: Perspective::SpatialStructure,
            higher_is_better: false,
            opt_in: true,
            help: "RMS spatial contrast: RMS distance of unit tokens from their image mean (iREPA; the study excludes it)",
        },
    ],
    params: &[LDS_FAR, CDS_DMAX],
    compute: compute_spatial,
};

/// Needs masks: `srss`.
pub static SRSS: Family = Family {
    name: "srss",
    needs: Needs {
        labels: false,
        masks: true,
    },
    metrics: &[MetricInfo {
        name: "srss",
        perspective: Perspective::SpatialStructure,
        higher_is_better: true,
        opt_in: false,
        help: "semantic-region self-similarity: foreground-foreground minus foreground-background token cosine (iREPA, needs masks)",
    }],
    params: &[SRSS_DPOS, SRSS_DNEG],
    compute: compute_srss,
};

/// Per-chunk sums of the `spatial` family.
#[derive(Clone, Debug, Default)]
struct SpatialSums {
    images: usize,
    /// `sum over images and ordered pairs at distance d of G_ij`.
    by_dist: Vec<f64>,
    rmsc: f64,
}

impl SpatialSums {
    fn merge(mut self, o: SpatialSums) -> SpatialSums {
        self.images += o.images;
        for (a, b) in self.by_dist.iter_mut().zip(&o.by_dist) {
            *a += b;
        }
        self.rmsc += o.rmsc;
        self
    }
}

fn compute_spatial(ctx: &Context<'_>, params: &Params) -> Result<Output> {
    let sh = ctx.z.shape();
    let (n, c, s) = (sh.n, sh.c, sh.s());
    let grid = Grid::new(sh.h, sh.w);
    let lds = Lds::new(&grid, params.usize("lds_far")?);
    let cds = Cds::new(&grid, params.usize("cds_dmax")?);
    let (want_lds, want_cds, want_rmsc) = (ctx.wants("lds"), ctx.wants("cds"), ctx.wants("rmsc"));
    let need_gram = want_lds || want_cds;
    let mut out = Output::default();
    if n == 0 {
        out.warnings
            .push("spatial: not computed, the input has no latents".into());
        return Ok(out);
    }
    let nd = grid.max_dist() + 1;

    ctx.progress.begin("spatial", n as u64);
    let sums = par::map_reduce(
        n,
        CHUNK,
        |range| {
            let len = range.len();
            let mut acc = SpatialSums {
                by_dist: vec![0.0; nd],
                ..Default::default()
            };
            let mut x = vec![0.0f32; c * s];
            let mut norms = vec![0.0f64; s];
            let mut gsum = need_gram.then(|| GramSum::new(&grid, c));
            for i in range {
                ctx.z.sample_into(i, &mut x);
                normalize_tokens(&mut x, c, s, &mut norms);
                if want_rmsc {
                    acc.rmsc += rmsc::rmsc_image(&x, c, s);
                }
                if let Some(g) = gsum.as_mut() {
                    g.add(&x);
                }
                acc.images += 1;
            }
            if let Some(g) = gsum {
                g.add_distance_sums(&mut acc.by_dist);
            }
            ctx.progress.advance(len as u64);
            acc
        },
        SpatialSums::merge,
    )
    .ok_or_else(|| Error::internal("spatial: no chunk was computed"))?;
    ctx.progress.end();

    // LDS and CDS are linear in G: their mean over images is their value on the mean distance sums.
    let m = sums.images as f64;
    let mean_sums: Vec<f64> = sums.by_dist.iter().map(|v| v / m).collect();
    if want_lds {
        let (local, far) = lds.parts(&mean_sums);
        if !lds.has_neighbours() {
            out.warnings.push(format!(
                "lds: not reported, a {}x{} latent grid has no neighbouring tokens",
                grid.h, grid.w
            ));
        } else {
            if lds.far_pairs() == 0 {
                out.warnings.push(format!(
                    "lds: no token pair is at distance >= {} on a {}x{} grid (largest {}); the distant term is 0, as in iREPA",
                    params.int("lds_far")?,
                    grid.h,
                    grid.w,
                    grid.max_dist()
                ));
            }
            out.metrics.push(("lds", local - far));
            out.details.insert(
                "lds".into(),
                json!({
                    "images": sums.images,
                    "local": local,
                    "far": far,
                    "far_pairs_per_image": lds.far_pairs(),
                }),
            );
        }
    }
    if want_cds {
        if cds.distances().is_empty() {
            out.warnings.push(format!(
                "cds: a {}x{} latent grid has no token pair at distance 1..={}; cds is 0, as in iREPA",
                grid.h,
                grid.w,
                params.int("cds_dmax")?
            ));
        }
        let mut curve = vec![0.0; cds.distances().len()];
        cds.curve(&mean_sums, &mut curve);
        out.metrics.push(("cds", cds.value(&curve)));
        out.details.insert(
            "cds".into(),
            json!({"images": sums.images, "d": cds.distances(), "s_d": curve}),
        );
    }
    if want_rmsc {
        out.metrics.push(("rmsc", sums.rmsc / m));
        out.details
            .insert("rmsc".into(), json!({"images": sums.images}));
    }
    Ok(out)
}

/// Per-chunk sums of the `srss` family.
#[derive(Clone, Copy, Debug, Default)]
struct SrssSums {
    sum: f64,
    used: usize,
    few_fg: usize,
    few_bg: usize,
    no_anchor: usize,
}

impl SrssSums {
    fn merge(self, o: SrssSums) -> SrssSums {
        SrssSums {
            sum: self.sum + o.sum,
            used: self.used + o.used,
            few_fg: self.few_fg + o.few_fg,
            few_bg: self.few_bg + o.few_bg,
            no_anchor: self.no_anchor + o.no_anchor,
        }
    }
}

fn compute_srss(ctx: &Context<'_>, params: &Params) -> Result<Output> {
    let sh = ctx.z.shape();
    let (n, c, s) = (sh.n, sh.c, sh.s());
    let masks = ctx
        .data
        .masks
        .as_ref()
        .ok_or_else(|| Error::internal("srss: computed without masks"))?;
    if masks.h != sh.h || masks.w != sh.w || masks.len() != n {
        return Err(Error::internal(format!(
            "srss: masks pooled to {} x {}x{}, latents are {} x {}x{}",
            masks.len(),
            masks.h,
            masks.w,
            n,
            sh.h,
            sh.w
        )));
    }
    let grid = Grid::new(sh.h, sh.w);
    let (dpos, dneg) = (params.usize("srss_dpos")?, params.usize("srss_dneg")?);
    let srss = Srss::new(&grid, dpos, dneg);
    let mut out = Output::default();
    if n == 0 {
        out.warnings
            .push("srss: not reported, the input has no latents".into());
        return Ok(out);
    }

    ctx.progress.begin("srss", n as u64);
    let sums = par::map_reduce(
        n,
        CHUNK,
        |range| {
            let len = range.len();
            let mut acc = SrssSums::default();
            let mut x = vec![0.0f32; c * s];
            let mut norms = vec![0.0f64; s];
            let mut sc = SrssScratch::default();
            for i in range {
                let fg = masks.sample(i);
                // The filter reads only the mask: skip the latent work for images that cannot enter.
                let n_fg = fg.iter().filter(|&&f| f).count();
                if n_fg < srss.min_tokens() {
                    acc.few_fg += 1;
                    continue;
                }
                if s - n_fg < srss.min_tokens() {
                    acc.few_bg += 1;
                    continue;
                }
                ctx.z.sample_into(i, &mut x);
                normalize_tokens(&mut x, c, s, &mut norms);
                match srss.image(&x, c, fg, &mut sc) {
                    SrssImage::Value(v) => {
                        acc.sum += v;
                        acc.used += 1;
                    }
                    SrssImage::FewForeground(_) => acc.few_fg += 1,
                    SrssImage::FewBackground(_) => acc.few_bg += 1,
                    SrssImage::NoValidAnchor => acc.no_anchor += 1,
                }
            }
            ctx.progress.advance(len as u64);
            acc
        },
        SrssSums::merge,
    )
    .ok_or_else(|| Error::internal("srss: no chunk was computed"))?;
    ctx.progress.end();

    let min = srss.min_tokens();
    let left_out = n - sums.used;
    if sums.used == 0 {
        out.warnings.push(format!(
            "srss: not reported, none of the {n} images qualifies ({} with fewer than {min} foreground tokens, {} with fewer than {min} background tokens, {} with no foreground token that has a foreground neighbour within {dpos} and a background token at distance >= {dneg})",
            sums.few_fg, sums.few_bg, sums.no_anchor
        ));
    } else {
        if left_out > 0 {
            out.warnings.push(format!(
                "srss: {left_out} of {n} images left out ({} with fewer than {min} foreground tokens, {} with fewer than {min} background tokens, {} with no valid anchor)",
                sums.few_fg, sums.few_bg, sums.no_anchor
            ));
        }
        out.metrics.push(("srss", sums.sum / sums.used as f64));
    }
    out.details.insert(
        "srss".into(),
        json!({
            "images": n,
            "images_used": sums.used,
            "min_tokens": min,
            "left_out": {
                "few_foreground": sums.few_fg,
                "few_background": sums.few_bg,
                "no_valid_anchor": sums.no_anchor,
            },
        }),
    );
    Ok(out)
}
