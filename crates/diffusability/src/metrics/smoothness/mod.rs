//! Latent smoothness: `sec` (spectral energy concentration, the study's metric) and opt-in
//! `local_corr` (SSVAE's local correlation). One family on latents alone; both read the normalized
//! latents in fixed chunks of images merged in chunk order (identical results for any thread count).

pub mod local_corr;
pub mod sec;

use super::params::DefaultValue;
use super::{
    Context, Family, MetricInfo, Needs, Output, ParamKind, ParamSpec, Params, Perspective,
};
use crate::error::Result;
use serde_json::json;

pub static SEC_RATIO: ParamSpec = ParamSpec {
    name: "sec_ratio",
    kind: ParamKind::Float {
        min: 0.0,
        max: 1.0,
        open_min: false,
    },
    default: DefaultValue::Float(0.5),
    help: "SEC: DCT coefficients with u+v > this x ((H-1)+(W-1)) are the high frequencies",
};

/// Latents only: `sec`, `local_corr` (opt-in).
pub static SMOOTHNESS: Family = Family {
    name: "smoothness",
    needs: Needs {
        labels: false,
        masks: false,
    },
    metrics: &[
        MetricInfo {
            name: "sec",
            perspective: Perspective::LatentSmoothness,
            higher_is_better: false,
            opt_in: false,
            help: "spectral energy concentration: share of the latents' orthonormal 2-D DCT energy at high frequencies",
        },
        MetricInfo {
            name: "local_corr",
            perspective: Perspective::LatentSmoothness,
            higher_is_better: true,
            opt_in: true,
            help: "local correlation: mean correlation of the tokens within 2x2 windows (SSVAE)",
        },
    ],
    params: &[SEC_RATIO],
    compute: compute_smoothness,
};

fn compute_smoothness(ctx: &Context<'_>, params: &Params) -> Result<Output> {
    let sh = ctx.z.shape();
    let mut out = Output::default();
    if ctx.wants("sec") {
        ctx.progress.begin("sec", sh.n as u64);
        let (e, maps) = sec::energy(&ctx.z, ctx.progress);
        ctx.progress.end();
        match sec::sec_of_energy(&e, sh.h, sh.w, params.float("sec_ratio")?) {
            Some(r) => {
                out.metrics.push(("sec", r.sec));
                out.details.insert(
                    "sec".into(),
                    json!({"maps": maps, "tau": r.tau, "profile": r.profile}),
                );
            }
            None => out.warnings.push(format!(
                "sec: not reported, the {maps} normalized latent maps have no spectral energy (all zero)"
            )),
        }
    }
    if ctx.wants("local_corr") {
        ctx.progress.begin("local_corr", sh.n as u64);
        let r = local_corr::local_corr(&ctx.z, ctx.progress);
        ctx.progress.end();
        match r {
            Some(r) => {
                out.metrics.push(("local_corr", r.value));
                out.details.insert(
                    "local_corr".into(),
                    json!({"images": sh.n, "windows_per_image": r.windows_per_image}),
                );
            }
            None if sh.n == 0 => out
                .warnings
                .push("local_corr: not reported, the input has no latents".into()),
            None => out.warnings.push(format!(
                "local_corr: not reported, a {}x{} latent grid does not split into 2x2 windows",
                sh.h, sh.w
            )),
        }
    }
    Ok(out)
}
