//! Affine equivariance: transforms equal independent numpy implementations of PyTorch's definitions,
//! an exactly equivariant encoder scores 0 / 1, the metrics equal numpy's, and shape errors are exact.

use crate::common::{oracle, rel};
use diffusability::data::{Affine, Latents, Normalize};
use diffusability::io::{ArrayData, InputSpec, load, read_array};
use diffusability::metrics::equivariance::{Transform, equivariance};
use diffusability::par::Threads;
use std::path::Path;

fn latents(path: &Path) -> Latents {
    load(&InputSpec {
        path: path.display().to_string(),
        ..Default::default()
    })
    .unwrap()
    .latents
}

fn cases() -> (tempfile::TempDir, Vec<serde_json::Value>) {
    let dir = tempfile::tempdir().unwrap();
    let v = oracle("equivariance.py", &["cases", dir.path().to_str().unwrap()]);
    (dir, v.as_array().unwrap().clone())
}

fn run(z: &Latents, zt: &Latents, t: &Transform, threads: usize) -> (f64, f64) {
    let (affine, _) = Affine::fit(&Normalize::Channel, z, None).unwrap();
    let r = Threads(threads)
        .install(|| equivariance(z, zt, "zt.npy", t, &affine))
        .unwrap()
        .unwrap();
    assert_eq!(r.skipped, 0);
    (r.equiv_rel_err, r.equiv_cos)
}

#[test]
fn transforms_match_numpy_implementations_of_torch() {
    let (dir, cases) = cases();
    let z = latents(&dir.path().join("z.npy"));
    let sh = z.shape();
    let zmax = (0..sh.n)
        .flat_map(|i| z.sample(i).iter().map(|v| v.abs() as f64))
        .fold(0.0, f64::max);
    for c in &cases {
        let name = c["transform"].as_str().unwrap();
        let t: Transform = name.parse().unwrap();
        let want = read_array(
            dir.path()
                .join(format!("tau_{}.npy", c["index"]))
                .to_str()
                .unwrap(),
            None,
        )
        .unwrap();
        let (oh, ow) = t.output_hw(sh.h, sh.w).unwrap();
        assert_eq!(want.shape, vec![sh.n, sh.c, oh, ow], "{name}");
        let ArrayData::F64(want) = want.data else {
            panic!("tau is f64")
        };
        let d = sh.c * oh * ow;
        let mut out = vec![0.0; d];
        for i in 0..sh.n {
            t.apply(z.sample(i), sh.c, sh.h, sh.w, &mut out).unwrap();
            // Rotations and flips move values exactly. The resize is the same formula in f64 on the
            // same f32 inputs, numpy applying it separably: they differ by a few ulps of max|z|.
            let tol = if name.starts_with("scale") {
                1e-14 * zmax
            } else {
                0.0
            };
            for (k, (a, b)) in out.iter().zip(&want[i * d..(i + 1) * d]).enumerate() {
                assert!(
                    (a - b).abs() <= tol,
                    "{name} sample {i} value {k}: {a} vs {b}"
                );
            }
        }
    }
}

#[test]
fn an_exactly_equivariant_encoder_scores_zero_error_and_unit_cosine() {
    let (dir, cases) = cases();
    let z = latents(&dir.path().join("z.npy"));
    for c in &cases {
        let name = c["transform"].as_str().unwrap();
        let t: Transform = name.parse().unwrap();
        let zt = latents(&dir.path().join(format!("exact_{}.npy", c["index"])));
        let (err, cos) = run(&z, &zt, &t, 2);
        if name.starts_with("scale") {
            // Z_tau is numpy's f64 resize stored as f32: the two differ by f32 rounding (2^-24
            // relative per value), so err ~ 1e-15 and 1 - cos ~ 1e-15; 1e-12 leaves margin.
            assert!(err < 1e-12, "{name}: {err}");
            assert!((1.0 - cos).abs() < 1e-12, "{name}: {cos}");
        } else {
            // Exact index maps: identical normalized values, so exactly 0 and 1 up to the last bit
            // of a square root.
            assert_eq!(err, 0.0, "{name}");
            assert!((cos - 1.0).abs() <= 2.0 * f64::EPSILON, "{name}: {cos}");
        }
    }
}

#[test]
fn metrics_match_numpy_on_imperfect_encoders() {
    let (dir, cases) = cases();
    let z = latents(&dir.path().join("z.npy"));
    for c in &cases {
        let name = c["transform"].as_str().unwrap();
        let t: Transform = name.parse().unwrap();
        let zt = latents(&dir.path().join(format!("noisy_{}.npy", c["index"])));
        let (err, cos) = run(&z, &zt, &t, 2);
        // Ours normalizes in f32 (the library's per-channel map), numpy in f64: ~1e-7 relative per
        // value, averaged over the tensors.
        let (we, wc) = (
            c["noisy_rel_err"].as_f64().unwrap(),
            c["noisy_cos"].as_f64().unwrap(),
        );
        assert!(rel(err, we) < 1e-5, "{name}: {err} vs {we}");
        assert!(rel(cos, wc) < 1e-6, "{name}: {cos} vs {wc}");
        assert_eq!(run(&z, &zt, &t, 1), run(&z, &zt, &t, 3), "{name}: threads");
    }
}

#[test]
fn shape_mismatch_names_the_file_and_both_shapes() {
    let (dir, _) = cases();
    let z = latents(&dir.path().join("z.npy"));
    // exact_4 is the flip: (5, 3, 8, 6), not the (5, 3, 6, 8) of rot90:1.
    let zt = latents(&dir.path().join("exact_4.npy"));
    let (affine, _) = Affine::fit(&Normalize::Channel, &z, None).unwrap();
    let e = equivariance(&z, &zt, "zt.npy", &Transform::Rot90(1), &affine).unwrap_err();
    assert_eq!(
        e.message,
        "zt.npy: has shape (5, 3, 8, 6), expected (5, 3, 6, 8) (rot90:1 of the latents' (5, 3, 8, 6))"
    );
    assert_eq!(e.exit_code(), 2);
    let e = Transform::Scale(0.1).output_hw(8, 6).unwrap_err();
    assert_eq!(
        e.message,
        "--transform scale:0.1: a 8 x 6 latent grid becomes 0 x 0; expected at least 1 x 1"
    );
}
