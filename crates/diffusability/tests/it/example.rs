//! The built-in Fashion-MNIST example: shape, balance, masks, the tokenizer against a numpy reference,
//! and reproducibility of the committed bytes from the Debian package.

use crate::common::{oracle, python, rel, workspace_root};
use diffusability::example::load_example;
use sha2::{Digest, Sha256};

#[test]
fn example_loads_with_the_documented_shape() {
    let ds = load_example().unwrap();
    let sh = ds.latents.shape();
    assert_eq!((sh.n, sh.c, sh.h, sh.w), (2000, 4, 16, 16));
    let labels = ds.labels.as_ref().unwrap();
    assert_eq!(labels.classes, (0..10).collect::<Vec<i64>>());
    assert!(labels.members().iter().all(|m| m.len() == 200));
    let masks = ds.masks.as_ref().unwrap();
    assert_eq!(
        (masks.source_h, masks.source_w, masks.h, masks.w),
        (32, 32, 16, 16)
    );
    assert_eq!(masks.len(), 2000);
    let src = &ds.source;
    assert_eq!(src.name, "fashion-mnist-example");
    assert_eq!(src.paths, vec!["built-in:fashion-mnist".to_string()]);
    assert_eq!((src.dtype.as_str(), src.key.as_str()), ("f32", "latents"));
    assert!(src.example);
    assert_eq!(
        src.sha256,
        diffusability::data::digest(&ds.latents, Some(labels), Some(masks))
    );
    // The padding ring (2 pixels) is background: the border tokens' outer pixels are 0.
    let x = ds.latents.sample(0);
    for ch in 0..4 {
        assert_eq!(x[ch * 256], 0.0);
    }
    // Every value is k/255 in f32.
    for seg in ds.latents.segments() {
        for &v in seg.as_slice() {
            let k = (v * 255.0).round();
            assert!((0.0..=255.0).contains(&k) && v == k / 255.0);
        }
    }
}

/// The tokenizer against an independent numpy implementation (reshape-based pixel unshuffle) on the
/// committed images: the latents' f32 bytes and the pooled token masks agree exactly (SHA-256), the
/// integer pixel sums per channel exactly, the float sums to 1e-12 (only the summation order differs).
#[test]
fn example_matches_numpy_tokenizer() {
    let ds = load_example().unwrap();
    let dir = workspace_root().join("examples/fashion-mnist");
    let o = oracle("example_check.py", &[dir.to_str().unwrap()]);

    let mut h = Sha256::new();
    let mut sums = [0f64; 4];
    let mut pixel_sums = [0i64; 4];
    for i in 0..2000 {
        let x = ds.latents.sample(i);
        for (j, v) in x.iter().enumerate() {
            h.update(v.to_le_bytes());
            sums[j / 256] += *v as f64;
            pixel_sums[j / 256] += (*v * 255.0).round() as i64;
        }
    }
    assert_eq!(o["shape"], serde_json::json!([2000, 4, 16, 16]));
    assert_eq!(
        o["latents_sha256"].as_str().unwrap(),
        format!("{:x}", h.finalize())
    );
    let masks = ds.masks.as_ref().unwrap();
    let flags: Vec<u8> = masks.fg.iter().map(|&b| b as u8).collect();
    assert_eq!(
        o["mask_tokens_sha256"].as_str().unwrap(),
        format!("{:x}", Sha256::digest(&flags))
    );
    for c in 0..4 {
        assert_eq!(o["channel_pixel_sums"][c].as_i64().unwrap(), pixel_sums[c]);
        assert!(rel(sums[c], o["channel_sums"][c].as_f64().unwrap()) < 1e-12);
    }
    for v in o["values"].as_array().unwrap() {
        let idx: Vec<usize> = (0..4).map(|k| v[k].as_u64().unwrap() as usize).collect();
        let got = ds.latents.sample(idx[0])[(idx[1] * 16 + idx[2]) * 16 + idx[3]];
        assert_eq!(got as f64, v[4].as_f64().unwrap(), "value at {idx:?}");
    }
    let fg = masks.fg.iter().filter(|&&b| b).count() as f64 / masks.fg.len() as f64;
    assert_eq!(fg, o["fg_token_fraction"].as_f64().unwrap());
    let labels = ds.labels.as_ref().unwrap();
    assert_eq!(o["class_counts"], serde_json::json!(vec![200; 10]));
    assert_eq!(o["labels_head"], serde_json::json!(labels.raw[..10]));
    println!(
        "foreground tokens {:.4}, pixels {:.4}",
        fg,
        o["fg_pixel_fraction"].as_f64().unwrap()
    );
}

/// `scripts/make_example.py` rebuilds the committed bytes from the Debian package
/// `dataset-fashion-mnist`; skipped (with a note) where the package is not installed.
#[test]
fn example_is_reproducible_from_the_package() {
    let src = std::path::Path::new("/usr/share/datasets/fashion-mnist");
    if !src.join("t10k-images-idx3-ubyte.gz").exists() {
        eprintln!(
            "skipped: {} not found (install the Debian package dataset-fashion-mnist to run this check)",
            src.display()
        );
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let root = workspace_root();
    let status = std::process::Command::new(python())
        .arg(root.join("scripts/make_example.py"))
        .arg("--source")
        .arg(src)
        .arg("--out")
        .arg(out.path())
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "make_example.py failed:\n{}",
        String::from_utf8_lossy(&status.stderr)
    );
    for f in ["images.u8", "labels.u8"] {
        let made = std::fs::read(out.path().join(f)).unwrap();
        let committed = std::fs::read(root.join("examples/fashion-mnist").join(f)).unwrap();
        assert!(made == committed, "{f} differs from the committed file");
    }
}
