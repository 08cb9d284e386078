//! Input layer: every container, dtype and layout reads the numbers numpy reads; the same data in any
//! container or sharding gives the same data set; every bad input gives its one exact message.

use crate::common::oracle;
use diffusability::data::{Affine, Dataset, Normalize, Normalized, Segment};
use diffusability::io::{
    ArrayData, InputSpec, RawArray, load, read_array, read_stats, write_npy, write_npz,
    write_safetensors,
};
use diffusability::par::Threads;
use diffusability::{Error, ErrorKind};
use half::f16;
use std::path::Path;

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().expect("temporary directory")
}

fn p(dir: &Path, name: &str) -> String {
    dir.join(name).display().to_string()
}

fn spec(path: &str) -> InputSpec {
    InputSpec {
        path: path.to_string(),
        ..Default::default()
    }
}

fn with_labels(path: &str, labels: &str) -> InputSpec {
    InputSpec {
        labels: Some(labels.to_string()),
        ..spec(path)
    }
}

fn with_masks(path: &str, masks: &str) -> InputSpec {
    InputSpec {
        masks: Some(masks.to_string()),
        ..spec(path)
    }
}

/// All raw latent values of a data set, in sample order.
fn values(ds: &Dataset) -> Vec<f32> {
    let n = ds.latents.shape().n;
    (0..n).flat_map(|i| ds.latents.sample(i).to_vec()).collect()
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn as_f64(a: &RawArray) -> Vec<f64> {
    match &a.data {
        ArrayData::F16(v) => v.iter().map(|x| x.to_f64()).collect(),
        ArrayData::BF16(v) => v.iter().map(|x| x.to_f64()).collect(),
        ArrayData::F32(v) => v.iter().map(|&x| x as f64).collect(),
        ArrayData::F64(v) => v.clone(),
        other => panic!("not a float array: {}", other.dtype()),
    }
}

/// Asserts the error's kind and its full message.
#[track_caller]
fn expect_err<T: std::fmt::Debug>(r: diffusability::Result<T>, kind: ErrorKind, message: &str) {
    let e: Error = r.expect_err("expected an error");
    assert_eq!(e.message, message);
    assert_eq!(e.kind, kind, "kind of: {}", e.message);
}

/// A version 1.0 `.npy` file with a hand-written header (for layouts our writer does not produce).
fn npy_raw(header: &str, data: &[u8]) -> Vec<u8> {
    let mut h = header.to_string();
    let total = 10 + h.len() + 1;
    h.push_str(&" ".repeat(total.next_multiple_of(64) - total));
    h.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(h.len() as u16).to_le_bytes());
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(data);
    out
}

/// A `.safetensors` file with a hand-written JSON header.
fn safetensors_raw(header: &str, data: &[u8]) -> Vec<u8> {
    let mut h = header.to_string();
    h.push_str(&" ".repeat(h.len().next_multiple_of(8) - h.len()));
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(data);
    out
}

fn write(path: &str, bytes: &[u8]) {
    std::fs::write(path, bytes).expect("write test file");
}

fn f32s(shape: &[usize], f: impl Fn(usize) -> f32) -> RawArray {
    let n = shape.iter().product();
    RawArray::f32(shape.to_vec(), (0..n).map(f).collect())
}

fn small(shape: &[usize]) -> RawArray {
    f32s(shape, |i| (i as f32 * 0.37).sin())
}

// ---------------------------------------------------------------------------------------------
// Values against numpy

fn json_f64s(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect()
}

#[test]
fn numpy_written_files_read_back_as_numpy_reads_them() {
    let d = tmp();
    let dir = d.path().display().to_string();
    let want = oracle("io_files.py", &[&dir]);
    let dtype_name = |numpy: &str| match numpy {
        "float16" => "f16",
        "bfloat16" => "bf16",
        "float32" => "f32",
        "float64" => "f64",
        other => panic!("unexpected dtype {other}"),
    };

    let lat = want["latents"].as_object().expect("latents");
    assert!(
        lat.len() >= 10,
        "the oracle wrote {} latents files",
        lat.len()
    );
    for (name, exp) in lat {
        let path = p(d.path(), name);
        let key = exp["key"].as_str();
        let shape: Vec<usize> = json_f64s(&exp["shape"])
            .iter()
            .map(|&x| x as usize)
            .collect();
        let stored = json_f64s(&exp["values"]);
        let rounded = json_f64s(&exp["f32"]);
        let dtype = dtype_name(exp["dtype"].as_str().expect("dtype"));

        // The array as stored: same shape, dtype and values (exact: every value is one numpy holds).
        let a = read_array(&path, key).expect(name);
        assert_eq!(a.shape, shape, "{name}");
        assert_eq!(a.data.dtype(), dtype, "{name}");
        assert_eq!(as_f64(&a), stored, "{name}: stored values");

        // As latents: f32, exact where the values are f32-representable (f16, bf16, f32); f64 values
        // round to nearest, as numpy's astype(float32) does, so within 1 ulp of numpy's rounding.
        let ds = load(&InputSpec {
            key: key.map(str::to_string),
            ..spec(&path)
        })
        .expect(name);
        assert_eq!(ds.source.dtype, dtype, "{name}");
        assert_eq!(ds.source.paths, vec![path.clone()]);
        let got = values(&ds);
        assert_eq!(got.len(), rounded.len());
        for (i, (&g, &r)) in got.iter().zip(&rounded).enumerate() {
            let r = r as f32;
            if dtype == "f64" {
                let ulps = (g.to_bits() as i64 - r.to_bits() as i64).abs();
                assert!(ulps <= 1, "{name}[{i}]: {g} vs numpy {r} ({ulps} ulp)");
            } else {
                assert_eq!(g.to_bits(), r.to_bits(), "{name}[{i}]: {g} vs numpy {r}");
            }
        }
    }

    // Only the native f32, C-order file is used in place; the others are converted.
    let mapped = |name: &str| {
        let ds = load(&spec(&p(d.path(), name))).expect(name);
        matches!(ds.latents.segments()[0], Segment::Mapped { .. })
    };
    assert!(mapped("c_f4.npy"));
    for name in [
        "fortran_f4.npy",
        "big_f4.npy",
        "f2.npy",
        "f8.npy",
        "bf16.npy",
    ] {
        assert!(!mapped(name), "{name} cannot be used in place");
    }

    // Labels of every integer dtype and byte order, as a separate file or inside the latents file.
    let c_f4 = p(d.path(), "c_f4.npy");
    for (name, exp) in want["labels"].as_object().expect("labels") {
        let exp: Vec<i64> = exp
            .as_array()
            .expect("labels")
            .iter()
            .map(|v| v.as_i64().expect("i64"))
            .collect();
        let path = p(d.path(), name);
        let ds = if name.ends_with(".npy") {
            load(&with_labels(&c_f4, &path)).expect(name)
        } else {
            load(&spec(&path)).expect(name)
        };
        assert_eq!(ds.labels.expect("labels").raw, exp, "{name}");
    }

    // Masks of bool, uint8 and float values, (N, h, w) and (N, 1, h, w), max-pooled like numpy.
    let grid = json_f64s(&want["grid"]);
    for (name, exp) in want["masks"].as_object().expect("masks") {
        let path = p(d.path(), name);
        let ds = if name.ends_with(".npy") {
            load(&with_masks(&c_f4, &path)).expect(name)
        } else {
            load(&spec(&path)).expect(name)
        };
        let m = ds.masks.expect("masks");
        let pooled: Vec<bool> = exp["pooled"]
            .as_array()
            .expect("pooled")
            .iter()
            .map(|b| b.as_bool().expect("bool"))
            .collect();
        let shape = json_f64s(&exp["shape"]);
        assert_eq!((m.h as f64, m.w as f64), (grid[0], grid[1]), "{name}");
        assert_eq!(m.source_h as f64, shape[shape.len() - 2], "{name}");
        assert_eq!(m.fg, pooled, "{name}");
        assert!(
            m.fg.iter().any(|&b| b),
            "{name}: the test masks have foreground"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The same data in every container

const N: usize = 12;
const C: usize = 2;
const H: usize = 4;
const W: usize = 4;

/// Latent values that f16 holds exactly (multiples of 1/8 in [-4, 4)), so an f16 copy is lossless.
fn exact_values() -> Vec<f32> {
    (0..N * C * H * W)
        .map(|i| ((i * 7919) % 64) as f32 / 8.0 - 4.0)
        .collect()
}

fn test_labels() -> Vec<i64> {
    (0..N as i64).map(|i| (i * 5) % 3 + 10).collect()
}

/// (N, 8, 8) masks with one foreground pixel per sample at a varying place.
fn test_masks() -> Vec<bool> {
    let mut m = vec![false; N * 64];
    for i in 0..N {
        m[i * 64 + (i * 13) % 64] = true;
    }
    m
}

fn part<T: Clone>(v: &[T], per: usize, k: usize, of: usize) -> Vec<T> {
    v[k * of * per..(k + 1) * of * per].to_vec()
}

#[test]
fn same_data_in_every_container_and_sharding_gives_the_same_input() {
    let d = tmp();
    let z = exact_values();
    let lab = test_labels();
    let msk = test_masks();
    let zarr = RawArray::f32(vec![N, C, H, W], z.clone());
    let larr = RawArray::i64(vec![N], lab.clone());
    let marr = RawArray::new(vec![N, 8, 8], ArrayData::Bool(msk.clone()));
    let d_per = C * H * W;

    // 1. Separate .npy files.
    let (zp, lp, mp) = (
        p(d.path(), "z.npy"),
        p(d.path(), "l.npy"),
        p(d.path(), "m.npy"),
    );
    write_npy(Path::new(&zp), &zarr).unwrap();
    write_npy(Path::new(&lp), &larr).unwrap();
    write_npy(Path::new(&mp), &marr).unwrap();
    let npy = load(&InputSpec {
        labels: Some(lp.clone()),
        masks: Some(mp.clone()),
        ..spec(&zp)
    })
    .unwrap();

    // 2. One .npz with all three keys.
    let npz_path = p(d.path(), "all.npz");
    write_npz(
        Path::new(&npz_path),
        &[("latents", &zarr), ("labels", &larr), ("masks", &marr)],
    )
    .unwrap();
    let npz = load(&spec(&npz_path)).unwrap();

    // 3. .safetensors with f16 latents.
    let st_path = p(d.path(), "half.safetensors");
    let z16 = RawArray::new(
        vec![N, C, H, W],
        ArrayData::F16(z.iter().map(|&x| f16::from_f32(x)).collect()),
    );
    write_safetensors(
        Path::new(&st_path),
        &[("latents", &z16), ("labels", &larr), ("masks", &marr)],
    )
    .unwrap();
    let st = load(&spec(&st_path)).unwrap();

    // 4. A directory of 3 .npz shards; 5. a glob of 3 .safetensors shards; 6. a glob of 3 .npy
    // shards with separate labels and masks.
    let shard_dir = d.path().join("shards");
    std::fs::create_dir(&shard_dir).unwrap();
    let per = N / 3;
    for k in 0..3 {
        let zs = RawArray::f32(vec![per, C, H, W], part(&z, d_per, k, per));
        let ls = RawArray::i64(vec![per], part(&lab, 1, k, per));
        let ms = RawArray::new(vec![per, 8, 8], ArrayData::Bool(part(&msk, 64, k, per)));
        let arrays = [("latents", &zs), ("labels", &ls), ("masks", &ms)];
        write_npz(&shard_dir.join(format!("part_{k}.npz")), &arrays).unwrap();
        write_safetensors(&d.path().join(format!("st_{k}.safetensors")), &arrays).unwrap();
        write_npy(&d.path().join(format!("np_{k}.npy")), &zs).unwrap();
    }
    // A file of another kind in the directory is not a shard.
    write(
        &shard_dir.join("README.txt").display().to_string(),
        b"notes",
    );
    let dir = load(&spec(&shard_dir.display().to_string())).unwrap();
    let glob_st = load(&spec(&p(d.path(), "st_*.safetensors"))).unwrap();
    let glob_npy = load(&InputSpec {
        labels: Some(lp.clone()),
        masks: Some(mp.clone()),
        ..spec(&p(d.path(), "np_?.npy"))
    })
    .unwrap();

    let all = [
        ("npy", &npy),
        ("npz", &npz),
        ("safetensors f16", &st),
        ("directory", &dir),
        ("glob safetensors", &glob_st),
        ("glob npy", &glob_npy),
    ];
    let block = |ds: &Dataset| {
        let s = ds.latents.shape();
        let l = ds.labels.as_ref().expect("labels");
        (
            (s.n, s.c, s.h, s.w),
            l.num_classes(),
            l.raw.clone(),
            ds.masks.as_ref().map(|m| m.fg.clone()),
            ds.source.sha256.clone(),
        )
    };
    let reference = block(&npy);
    assert_eq!(reference.0, (N, C, H, W));
    assert_eq!(reference.1, 3);
    assert_eq!(reference.2, lab);
    assert_eq!(reference.4.len(), 64);
    for (what, ds) in all {
        assert_eq!(block(ds), reference, "{what}");
        assert_eq!(bits(&values(ds)), bits(&z), "{what}: raw values");
    }
    assert_eq!(st.source.dtype, "f16");
    assert_eq!(npz.source.dtype, "f32");

    // Normalized data is bit-identical for every f32 source, however it is sharded.
    let normalized = |ds: &Dataset| {
        let (a, _) = Affine::fit(&Normalize::Channel, &ds.latents, None).unwrap();
        bits(
            &Normalized {
                latents: &ds.latents,
                affine: &a,
            }
            .to_vec(),
        )
    };
    let want = normalized(&npy);
    for (what, ds) in [
        ("npz", &npz),
        ("directory", &dir),
        ("glob safetensors", &glob_st),
        ("glob npy", &glob_npy),
    ] {
        assert_eq!(normalized(ds), want, "{what}");
    }

    // Sources: shards in sorted order, then the labels and masks files; names from file or directory.
    assert_eq!(npy.source.paths, vec![zp.clone(), lp.clone(), mp.clone()]);
    assert_eq!(npy.source.name, "z");
    assert_eq!(npy.source.key, "latents");
    assert!(!npy.source.example);
    assert_eq!(dir.source.name, "shards");
    assert_eq!(
        dir.source.paths,
        (0..3)
            .map(|k| shard_dir
                .join(format!("part_{k}.npz"))
                .display()
                .to_string())
            .collect::<Vec<_>>()
    );
    assert_eq!(glob_npy.source.paths.len(), 5);
    assert_eq!(glob_npy.source.paths[3..], [lp, mp]);
    let named = load(&InputSpec {
        name: Some("tok-a".into()),
        ..spec(&npz_path)
    })
    .unwrap();
    assert_eq!(named.source.name, "tok-a");
}

#[test]
fn f32_npy_and_aligned_safetensors_are_memory_mapped() {
    let d = tmp();
    let z = small(&[3, 2, 4, 4]);
    let np = p(d.path(), "z.npy");
    write_npy(Path::new(&np), &z).unwrap();
    let ds = load(&spec(&np)).unwrap();
    assert_eq!(ds.latents.segments().len(), 1);
    let Segment::Mapped { offset, len, .. } = &ds.latents.segments()[0] else {
        panic!("an f32 little-endian C-order .npy must be memory-mapped");
    };
    assert_eq!((*offset, *len), (128, 96));
    assert_eq!(
        values(&ds),
        match &z.data {
            ArrayData::F32(v) => v.clone(),
            _ => unreachable!(),
        }
    );

    let st = p(d.path(), "z.safetensors");
    write_safetensors(Path::new(&st), &[("latents", &z)]).unwrap();
    let ds = load(&spec(&st)).unwrap();
    assert!(matches!(ds.latents.segments()[0], Segment::Mapped { .. }));

    // An .npz is read into memory (its f32 buffer becomes the latents without another copy).
    let nz = p(d.path(), "z.npz");
    write_npz(Path::new(&nz), &[("latents", &z)]).unwrap();
    let ds = load(&spec(&nz)).unwrap();
    assert!(matches!(ds.latents.segments()[0], Segment::Owned(_)));
}

#[test]
fn misaligned_safetensors_f32_is_copied() {
    // A 1-byte tensor first puts the f32 data at an odd offset: it must be copied, not cast.
    let d = tmp();
    let vals: Vec<f32> = (0..8).map(|i| i as f32 - 3.5).collect();
    let mut data = vec![7u8];
    for v in &vals {
        data.extend_from_slice(&v.to_le_bytes());
    }
    let path = p(d.path(), "odd.safetensors");
    write(
        &path,
        &safetensors_raw(
            r#"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"latents":{"dtype":"F32","shape":[2,1,2,2],"data_offsets":[1,33]}}"#,
            &data,
        ),
    );
    let ds = load(&spec(&path)).unwrap();
    assert!(matches!(ds.latents.segments()[0], Segment::Owned(_)));
    assert_eq!(values(&ds), vals);
}

#[test]
fn default_key_falls_back_to_the_only_other_array() {
    // numpy.savez(f, z, labels=y) names the latents arr_0.
    let d = tmp();
    let path = p(d.path(), "pos.npz");
    let z = small(&[2, 1, 2, 2]);
    write_npz(
        Path::new(&path),
        &[
            ("arr_0", &z),
            ("labels", &RawArray::i64(vec![2], vec![1, 2])),
        ],
    )
    .unwrap();
    let ds = load(&spec(&path)).unwrap();
    assert_eq!(ds.source.key, "arr_0");
    assert_eq!(ds.labels.unwrap().raw, vec![1, 2]);
}

#[test]
fn key_selects_another_latents_array() {
    let d = tmp();
    let path = p(d.path(), "feat.safetensors");
    let a = f32s(&[2, 1, 2, 2], |i| i as f32);
    let b = f32s(&[2, 1, 2, 2], |i| -(i as f32));
    write_safetensors(Path::new(&path), &[("latents", &a), ("latents_flip", &b)]).unwrap();
    let ds = load(&InputSpec {
        key: Some("latents_flip".into()),
        ..spec(&path)
    })
    .unwrap();
    assert_eq!(ds.source.key, "latents_flip");
    assert_eq!(values(&ds)[1], -1.0);
}

#[test]
fn explicit_labels_file_takes_precedence_over_the_labels_key() {
    let d = tmp();
    let path = p(d.path(), "all.npz");
    let z = small(&[3, 1, 2, 2]);
    write_npz(
        Path::new(&path),
        &[
            ("latents", &z),
            ("labels", &RawArray::i64(vec![3], vec![0, 0, 0])),
        ],
    )
    .unwrap();
    let lp = p(d.path(), "l.npy");
    write_npy(
        Path::new(&lp),
        &RawArray::new(vec![3], ArrayData::U8(vec![4, 5, 4])),
    )
    .unwrap();
    let ds = load(&with_labels(&path, &lp)).unwrap();
    assert_eq!(ds.labels.unwrap().raw, vec![4, 5, 4]);
}

#[test]
fn bfloat16_npy_written_by_our_writer_reads_back() {
    let d = tmp();
    let path = p(d.path(), "b.npy");
    let v: Vec<half::bf16> = [1.5f32, -2.0, 0.25, 3.0]
        .iter()
        .map(|&x| half::bf16::from_f32(x))
        .collect();
    write_npy(
        Path::new(&path),
        &RawArray::new(vec![1, 1, 2, 2], ArrayData::BF16(v)),
    )
    .unwrap();
    let ds = load(&spec(&path)).unwrap();
    assert_eq!(ds.source.dtype, "bf16");
    assert_eq!(values(&ds), vec![1.5, -2.0, 0.25, 3.0]);
}

#[test]
fn read_array_and_read_stats() {
    let d = tmp();
    let path = p(d.path(), "s.npz");
    let mean = RawArray::f64(vec![3], vec![0.5, -1.0, 2.0]);
    let std = RawArray::new(vec![1, 3, 1, 1], ArrayData::F32(vec![1.0, 2.0, 0.5]));
    write_npz(Path::new(&path), &[("mean", &mean), ("std", &std)]).unwrap();
    assert_eq!(read_array(&path, Some("mean")).unwrap(), mean);
    assert_eq!(
        read_stats(&path).unwrap(),
        (vec![0.5, -1.0, 2.0], vec![1.0, 2.0, 0.5])
    );

    let st = p(d.path(), "s.safetensors");
    write_safetensors(Path::new(&st), &[("mean", &mean), ("std", &std)]).unwrap();
    assert_eq!(
        read_stats(&st).unwrap(),
        (vec![0.5, -1.0, 2.0], vec![1.0, 2.0, 0.5])
    );

    let js = p(d.path(), "s.json");
    write(&js, br#"{"mean": [0.5, -1, 2], "std": [1, 2, 0.5]}"#);
    assert_eq!(
        read_stats(&js).unwrap(),
        (vec![0.5, -1.0, 2.0], vec![1.0, 2.0, 0.5])
    );

    let one = p(d.path(), "one.npz");
    write_npz(Path::new(&one), &[("mu", &mean)]).unwrap();
    assert_eq!(read_array(&one, None).unwrap(), mean);
    let np = p(d.path(), "one.npy");
    write_npy(Path::new(&np), &mean).unwrap();
    assert_eq!(read_array(&np, None).unwrap(), mean);
}

// ---------------------------------------------------------------------------------------------
// Invariants

#[test]
fn nonfinite_values_are_found_in_any_shard_with_counts() {
    let d = tmp();
    let dir = d.path().join("s");
    std::fs::create_dir(&dir).unwrap();
    write_npy(&dir.join("a.npy"), &small(&[4, 2, 2, 2])).unwrap();
    let mut v = match small(&[6, 2, 2, 2]).data {
        ArrayData::F32(v) => v,
        _ => unreachable!(),
    };
    v[3 * 8 + 1] = f32::NAN;
    v[3 * 8 + 2] = f32::NAN;
    v[5 * 8] = f32::INFINITY;
    v[5 * 8 + 7] = f32::NEG_INFINITY;
    write_npy(&dir.join("b.npy"), &RawArray::f32(vec![6, 2, 2, 2], v)).unwrap();
    expect_err(
        load(&spec(&dir.display().to_string())),
        ErrorKind::Input,
        &format!(
            "{}: expected finite values, found 2 NaN and 2 infinite; the first is in sample 3",
            dir.join("b.npy").display()
        ),
    );
}

#[test]
fn thread_count_does_not_change_the_dataset() {
    let d = tmp();
    let dir = d.path().join("s");
    std::fs::create_dir(&dir).unwrap();
    // f16 shards (converted in parallel) with labels and masks, 700 samples in all.
    let mut all = Vec::new();
    for k in 0..2 {
        let n = 300 + 100 * k;
        let v: Vec<f16> = (0..n * 3 * 4 * 4)
            .map(|i| f16::from_f32(((i * 31 + k) as f32 * 0.013).sin()))
            .collect();
        all.extend(v.iter().map(|x| x.to_f32()));
        let z = RawArray::new(vec![n, 3, 4, 4], ArrayData::F16(v));
        let l = RawArray::new(
            vec![n],
            ArrayData::I32((0..n as i32).map(|i| i % 7).collect()),
        );
        let m = RawArray::new(
            vec![n, 8, 8],
            ArrayData::U8((0..n * 64).map(|i| (i % 11 == 0) as u8).collect()),
        );
        write_safetensors(
            &dir.join(format!("s{k}.safetensors")),
            &[("latents", &z), ("labels", &l), ("masks", &m)],
        )
        .unwrap();
    }
    let s = spec(&dir.display().to_string());
    let one = Threads(1).install(|| load(&s)).unwrap().unwrap();
    let two = Threads(2).install(|| load(&s)).unwrap().unwrap();
    assert_eq!(one.source, two.source);
    assert_eq!(one.labels, two.labels);
    assert_eq!(one.masks, two.masks);
    assert_eq!(bits(&values(&one)), bits(&values(&two)));
    assert_eq!(bits(&values(&one)), bits(&all));
}

// ---------------------------------------------------------------------------------------------
// Bad inputs: one test per message, with its full text and kind

#[test]
fn err_missing_input() {
    let d = tmp();
    let path = p(d.path(), "nope.npy");
    expect_err(
        load(&spec(&path)),
        ErrorKind::NotFound,
        &format!("{path}: file or directory not found"),
    );
}

#[test]
fn err_missing_labels_file() {
    let d = tmp();
    let z = p(d.path(), "z.npy");
    write_npy(Path::new(&z), &small(&[2, 1, 2, 2])).unwrap();
    let l = p(d.path(), "labels.npy");
    expect_err(
        load(&with_labels(&z, &l)),
        ErrorKind::NotFound,
        &format!("{l}: file not found"),
    );
}

#[test]
fn err_empty_glob() {
    let d = tmp();
    let pat = p(d.path(), "*.npz");
    expect_err(
        load(&spec(&pat)),
        ErrorKind::NotFound,
        &format!("{pat}: no file matches this pattern"),
    );
}

#[test]
fn err_invalid_glob() {
    let d = tmp();
    let pat = p(d.path(), "[*.npz");
    expect_err(
        load(&spec(&pat)),
        ErrorKind::Input,
        &format!(
            "{pat}: invalid glob pattern: Pattern syntax error near position {}: invalid range pattern",
            pat.len() - 6
        ),
    );
}

#[test]
fn err_empty_directory() {
    let d = tmp();
    write(&p(d.path(), "notes.txt"), b"x");
    let dir = d.path().display().to_string();
    expect_err(
        load(&spec(&dir)),
        ErrorKind::Input,
        &format!("{dir}: expected .npy, .npz or .safetensors files in this directory, found none"),
    );
}

#[test]
fn err_unsupported_file_type() {
    let d = tmp();
    let path = p(d.path(), "z.pt");
    write(&path, b"x");
    expect_err(
        load(&spec(&path)),
        ErrorKind::Input,
        &format!("{path}: unsupported file type `.pt`; expected .npy, .npz or .safetensors"),
    );
}

#[test]
fn err_directory_given_as_a_file() {
    let d = tmp();
    let z = p(d.path(), "z.npy");
    write_npy(Path::new(&z), &small(&[2, 1, 2, 2])).unwrap();
    let l = p(d.path(), "labels.npy");
    std::fs::create_dir(&l).unwrap();
    expect_err(
        load(&with_labels(&z, &l)),
        ErrorKind::Input,
        &format!("{l}: expected a file, found a directory"),
    );
}

#[test]
fn err_unreadable_path() {
    let d = tmp();
    let z = p(d.path(), "z.npy");
    write_npy(Path::new(&z), &small(&[2, 1, 2, 2])).unwrap();
    let l = format!("{z}/labels.npy");
    expect_err(
        load(&with_labels(&z, &l)),
        ErrorKind::Input,
        &format!("{l}: cannot read: Not a directory (os error 20)"),
    );
}

#[test]
fn err_npy_bad_magic() {
    let d = tmp();
    let path = p(d.path(), "z.npy");
    write(&path, b"PK\x03\x04 this is a zip, not an npy");
    expect_err(
        load(&spec(&path)),
        ErrorKind::Input,
        &format!("{path}: not a .npy file: it does not start with the magic string \\x93NUMPY"),
    );
}

#[test]
fn err_npy_truncated_preamble() {
    let d = tmp();
    let path = p(d.path(), "z.npy");
    write(&path, b"\x93NUMPY\x01");
    expect_err(
        load(&spec(&path)),
        ErrorKind::Input,
        &format!("{path}: truncated .npy header: expected at least 10 bytes, found 7"),
    );
}

#[test]
fn err_npy_truncated_header() {
    let d = tmp();
    let path = p(d.path(), "z.npy");
    let full = npy_raw(
        "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1, 1), }",
        &[0; 4],
    );
    write(&path, &full[..50]);
    expect_err(
        load(&spec(&path)),
        ErrorKind::Input,
        &format!("{path}: truncated .npy header: expected 128 bytes, found 50"),
    );
}

#[test]
fn err_npy_unsupported_version() {
    let d = tmp();
    let path = p(d.path(), "z.npy");
    let mut b = npy_raw(
        "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1, 1), }",
        &[0; 4],
    );
    b[6] = 4;
    write(&path, &b);
    expect_err(
        load(&spec(&path)),
        ErrorKind::Input,
        &format!("{path}: unsupported .npy format version 4.0, expected 1.0, 2.0 or 3.0"),
    );
}

#[test]
fn err_npy_header_parse() {
    let d = tmp();
    let path = p(d.path(), "z.npy");
    write(
        &path,
        &npy_raw("{'descr': '<f4', 'fortran_order': False, }", &[0; 4]),
    );
    expect_err(
        load(&spec(&path)),
        ErrorKind::Input,
        &format!(
            "{path}: cannot parse the .npy header {{'descr': '<f4', 'fortran_order': False, }}: missing key 'shape'"
        ),
    );
}

#[test]
fn err_npy_truncated_data() {
    let d = tmp();
    let path = p(d.path(), "z.npy");
    let full = write_and_read_bytes(&small(&[4, 2, 2, 2]));
    write(&path, &full[..128 + 100]);
    expect_err(
        load(&spec(&path)),
        ErrorKind::Input,
        &format!("{path}: truncated: shape (4, 2, 2, 2) of f32 needs 128 bytes of data, found 100"),
    );
}

fn write_and_read_bytes(a: &RawArray) -> Vec<u8> {
    diffusability::io::write::npy_bytes(a)
}

#[test]
fn err_npy_shape_too_large() {
    let d = tmp();
    let path = p(d.path(), "z.npy");
    write(
        &path,
        &npy_raw(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 1, 1), }",
            &[0; 4],
        ),
    );
    expect_err(
        load(&spec(&path)),
        ErrorKind::Input,
        &format!(
            "{path}: the header declares shape (4294967296, 4294967296, 1, 1), which is too large"
        ),
    );
}

#[test]
fn err_npy_unsupported_dtype() {
    let d = tmp();
    let path = p(d.path(), "z.npy");
    write(
        &path,
        &npy_raw(
            "{'descr': '<c8', 'fortran_order': False, 'shape': (1, 1, 1, 1), }",
            &[0; 8],
        ),
    );
    expect_err(
        load(&spec(&path)),
        ErrorKind::Input,
        &format!(
            "{path}: unsupported dtype `<c8`; expected f16, bf16, f32, f64, an integer type or bool"
        ),
    );
}

#[test]
fn err_npy_structured_dtype() {
    let d = tmp();
    let path = p(d.path(), "z.npy");
    write(
        &path,
        &npy_raw(
            "{'descr': [('a', '<f4'), ('b', '<i4')], 'fortran_order': False, 'shape': (1,), }",
            &[0; 8],
        ),
    );
    expect_err(
        load(&spec(&path)),
        ErrorKind::Input,
        &format!(
            "{path}: unsupported dtype: a structured (record) array; expected f16, bf16, f32, f64, an integer type or bool"
        ),
    );
}

#[test]
fn err_npz_not_a_zip() {
    let d = tmp();
    let path = p(d.path(), "z.npz");
    write(&path, b"\x93NUMPY this is not a zip archive");
    expect_err(
        load(&spec(&path)),
        ErrorKind::Input,
        &format!(
            "{path}: not a readable .npz (zip) archive: invalid Zip archive: Could not find EOCD"
        ),
    );
}

#[test]
fn err_npz_corrupt_entry() {
    // Flipping a data byte of a stored entry breaks its CRC-32.
    let d = tmp();
    let path = p(d.path(), "z.npz");
    write_npz(Path::new(&path), &[("latents", &small(&[2, 1, 2, 2]))]).unwrap();
    let mut b = std::fs::read(&path).unwrap();
    let at = b.windows(6).position(|w| w == b"\x93NUMPY").unwrap() + 128 + 5;
    b[at] ^= 0xff;
    write(&path, &b);
    expect_err(
        load(&spec(&path)),
        ErrorKind::Input,
        &format!("{path}: key `latents`: cannot read: Invalid checksum"),
    );
}

#[test]
fn err_npz_truncated_entry() {
    // An entry whose .npy header declares more data than the entry holds.
    let d = tmp();
    let path = p(d.path(), "z.npz");
    let f = std::fs::File::create(&path).unwrap();
    let mut zip = zip::ZipWriter::new(f);
    zip.start_file("latents.npy", zip::write::SimpleFileOptions::default())
        .unwrap();
    use std::io::Write;
    zip.write_all(&npy_raw(
        "{'descr': '<f4', 'fortran_order': False, 'shape': (10, 1, 2, 2), }",
        &[0; 40],
    ))
    .unwrap();
    zip.finish().unwrap();
    expect_err(
        load(&spec(&path)),
        ErrorKind::Input,
        &format!(
            "{path}: key `latents`: truncated: shape (10, 1, 2, 2) of f32 needs 160 bytes of data, found 40"
        ),
    );
}

#[test]
fn err_safetensors_corrupt() {
    let d = tmp();
    let path = p(d.path(), "z.safetensors");
    write_safetensors(Path::new(&path), &[("latents", &small(&[2, 1, 2, 2]))]).unwrap();
    let b = std::fs::read(&path).unwrap();
    write(&path, &b[..b.len() - 4]);
    expect_err(
        load(&spec(&path)),
        ErrorKind::Input,
        &format!(
            "{path}: not a readable .safetensors file: incomplete metadata, file not fully covered"
        ),
    );
}

#[test]
fn err_safetensors_unsupported_dtype() {
    let d = tmp();
    let path = p(d.path(), "z.safetensors");
    write(
        &path,
        &safetensors_raw(
            r#"{"latents":{"dtype":"C64","shape":[1,1,1,1],"data_offsets":[0,8]}}"#,
            &[0; 8],
        ),
    );
    expect_err(
        load(&spec(&path)),
        ErrorKind::Input,
        &format!(
            "{path}: key `latents`: unsupported dtype C64; expected F16, BF16, F32, F64, an integer type or BOOL"
        ),
    );
}

#[test]
fn err_missing_key_lists_keys() {
    let d = tmp();
    let path = p(d.path(), "z.npz");
    let z = small(&[2, 1, 2, 2]);
    write_npz(
        Path::new(&path),
        &[
            ("a", &z),
            ("b", &z),
            ("labels", &RawArray::i64(vec![2], vec![0, 1])),
        ],
    )
    .unwrap();
    expect_err(
        load(&spec(&path)),
        ErrorKind::Input,
        &format!("{path}: key `latents`: not found; the file has keys `a`, `b`, `labels`"),
    );
    expect_err(
        load(&InputSpec {
            key: Some("latents_flip".into()),
            ..spec(&path)
        }),
        ErrorKind::Input,
        &format!("{path}: key `latents_flip`: not found; the file has keys `a`, `b`, `labels`"),
    );
}

#[test]
fn err_key_on_npy() {
    let d = tmp();
    let path = p(d.path(), "z.npy");
    write_npy(Path::new(&path), &small(&[2, 1, 2, 2])).unwrap();
    expect_err(
        load(&InputSpec {
            key: Some("latents_flip".into()),
            ..spec(&path)
        }),
        ErrorKind::Input,
        &format!(
            "{path}: key `latents_flip`: cannot select a key: a .npy file holds one unnamed array"
        ),
    );
}

#[test]
fn err_wrong_rank() {
    let d = tmp();
    let path = p(d.path(), "z.npy");
    write_npy(Path::new(&path), &small(&[6, 32, 256])).unwrap();
    expect_err(
        load(&spec(&path)),
        ErrorKind::Input,
        &format!("{path}: expected 4 dimensions (N, C, H, W), found shape (6, 32, 256)"),
    );
}

#[test]
fn err_integer_latents() {
    let d = tmp();
    let path = p(d.path(), "z.safetensors");
    write_safetensors(
        Path::new(&path),
        &[(
            "latents",
            &RawArray::new(vec![1, 1, 2, 2], ArrayData::I32(vec![1, 2, 3, 4])),
        )],
    )
    .unwrap();
    expect_err(
        load(&spec(&path)),
        ErrorKind::Input,
        &format!(
            "{path}: key `latents`: expected floating-point latents (f16, bf16, f32 or f64), found dtype i32"
        ),
    );
}

#[test]
fn err_empty_latents() {
    let d = tmp();
    let path = p(d.path(), "z.npy");
    write_npy(Path::new(&path), &RawArray::f32(vec![0, 2, 4, 4], vec![])).unwrap();
    expect_err(
        load(&spec(&path)),
        ErrorKind::Input,
        &format!(
            "{path}: expected at least one sample and nonzero C, H, W, found shape (0, 2, 4, 4)"
        ),
    );
}

#[test]
fn err_f64_beyond_f32_range() {
    let d = tmp();
    let path = p(d.path(), "z.npy");
    write_npy(
        Path::new(&path),
        &RawArray::f64(vec![2, 1, 1, 2], vec![0.0, 1.0, 1e39, f64::NAN]),
    )
    .unwrap();
    expect_err(
        load(&spec(&path)),
        ErrorKind::Input,
        &format!(
            "{path}: expected finite values, found 1 NaN and 1 infinite (f64 values beyond the f32 range count as infinite); the first is in sample 1"
        ),
    );
}

fn latents_file(d: &Path, n: usize) -> String {
    let path = p(d, "z.npy");
    write_npy(Path::new(&path), &small(&[n, 1, 4, 4])).unwrap();
    path
}

#[test]
fn err_labels_count() {
    let d = tmp();
    let z = latents_file(d.path(), 6);
    let l = p(d.path(), "val.npz");
    write_npz(
        Path::new(&l),
        &[("labels", &RawArray::i64(vec![5], vec![0; 5]))],
    )
    .unwrap();
    expect_err(
        load(&with_labels(&z, &l)),
        ErrorKind::Input,
        &format!("{l}: key `labels`: has 5 entries, expected 6 (one per latent)"),
    );
}

#[test]
fn err_labels_count_inside_a_shard() {
    let d = tmp();
    let dir = d.path().join("s");
    std::fs::create_dir(&dir).unwrap();
    for (k, m) in [(0, 4), (1, 3)] {
        write_npz(
            &dir.join(format!("{k}.npz")),
            &[
                ("latents", &small(&[4, 1, 2, 2])),
                ("labels", &RawArray::i64(vec![m], vec![1; m])),
            ],
        )
        .unwrap();
    }
    expect_err(
        load(&spec(&dir.display().to_string())),
        ErrorKind::Input,
        &format!(
            "{}: key `labels`: has 3 entries, expected 4 (one per latent)",
            dir.join("1.npz").display()
        ),
    );
}

#[test]
fn err_labels_shape() {
    let d = tmp();
    let z = latents_file(d.path(), 6);
    let l = p(d.path(), "l.npy");
    write_npy(Path::new(&l), &RawArray::i64(vec![6, 2], vec![0; 12])).unwrap();
    expect_err(
        load(&with_labels(&z, &l)),
        ErrorKind::Input,
        &format!("{l}: expected shape (N,) or (N, 1), found (6, 2)"),
    );
}

#[test]
fn err_float_labels() {
    let d = tmp();
    let z = latents_file(d.path(), 6);
    let l = p(d.path(), "l.npy");
    write_npy(Path::new(&l), &RawArray::f32(vec![6], vec![0.0; 6])).unwrap();
    expect_err(
        load(&with_labels(&z, &l)),
        ErrorKind::Input,
        &format!("{l}: expected integer class labels, found dtype f32"),
    );
}

#[test]
fn err_u64_label_too_large() {
    let d = tmp();
    let z = latents_file(d.path(), 3);
    let l = p(d.path(), "l.npy");
    write_npy(
        Path::new(&l),
        &RawArray::new(vec![3], ArrayData::U64(vec![1, 1 << 63, 2])),
    )
    .unwrap();
    expect_err(
        load(&with_labels(&z, &l)),
        ErrorKind::Input,
        &format!(
            "{l}: label 9223372036854775808 at index 1 is larger than the largest supported label 9223372036854775807"
        ),
    );
}

#[test]
fn err_masks_count() {
    let d = tmp();
    let z = latents_file(d.path(), 6);
    let m = p(d.path(), "m.npy");
    write_npy(
        Path::new(&m),
        &RawArray::new(vec![5, 8, 8], ArrayData::Bool(vec![false; 320])),
    )
    .unwrap();
    expect_err(
        load(&with_masks(&z, &m)),
        ErrorKind::Input,
        &format!("{m}: has 5 masks, expected 6 (one per latent)"),
    );
}

#[test]
fn err_masks_shape() {
    let d = tmp();
    let z = latents_file(d.path(), 6);
    let m = p(d.path(), "m.npy");
    write_npy(
        Path::new(&m),
        &RawArray::new(vec![6, 2, 8, 8], ArrayData::U8(vec![0; 768])),
    )
    .unwrap();
    expect_err(
        load(&with_masks(&z, &m)),
        ErrorKind::Input,
        &format!("{m}: expected shape (N, h, w) or (N, 1, h, w), found (6, 2, 8, 8)"),
    );
}

#[test]
fn err_mask_size_not_a_multiple_of_the_grid() {
    let d = tmp();
    let z = latents_file(d.path(), 6);
    let m = p(d.path(), "m.npy");
    write_npy(
        Path::new(&m),
        &RawArray::new(vec![6, 6, 8], ArrayData::U8(vec![0; 288])),
    )
    .unwrap();
    expect_err(
        load(&with_masks(&z, &m)),
        ErrorKind::Input,
        &format!("{m}: mask size 6x8 is not a positive whole multiple of the latent grid 4x4"),
    );
}

#[test]
fn err_mask_nan() {
    let d = tmp();
    let z = latents_file(d.path(), 3);
    let m = p(d.path(), "m.npy");
    let mut v = vec![0.0f32; 3 * 16];
    v[16 + 3] = f32::NAN;
    v[32] = f32::NAN;
    v[5] = 1.0;
    write_npy(Path::new(&m), &RawArray::f32(vec![3, 4, 4], v)).unwrap();
    expect_err(
        load(&with_masks(&z, &m)),
        ErrorKind::Input,
        &format!(
            "{m}: expected finite mask values (nonzero = foreground), found 2 NaN; the first is in sample 1"
        ),
    );
}

fn shard_dir(d: &Path) -> std::path::PathBuf {
    let dir = d.join("s");
    std::fs::create_dir(&dir).unwrap();
    dir
}

#[test]
fn err_shards_disagree_in_shape() {
    let d = tmp();
    let dir = shard_dir(d.path());
    write_npy(&dir.join("shard_0.npy"), &small(&[2, 2, 4, 4])).unwrap();
    write_npy(&dir.join("shard_1.npy"), &small(&[2, 3, 4, 4])).unwrap();
    expect_err(
        load(&spec(&dir.display().to_string())),
        ErrorKind::Input,
        &format!(
            "{}: shape (2, 3, 4, 4) does not match (C, H, W) = (2, 4, 4) of the first shard {}",
            dir.join("shard_1.npy").display(),
            dir.join("shard_0.npy").display()
        ),
    );
}

#[test]
fn err_shards_disagree_in_dtype() {
    let d = tmp();
    let dir = shard_dir(d.path());
    write_npy(&dir.join("a.npy"), &small(&[2, 1, 2, 2])).unwrap();
    write_npy(
        &dir.join("b.npy"),
        &RawArray::new(vec![1, 1, 2, 2], ArrayData::F16(vec![f16::ZERO; 4])),
    )
    .unwrap();
    expect_err(
        load(&spec(&dir.display().to_string())),
        ErrorKind::Input,
        &format!(
            "{}: dtype f16 differs from f32 in the first shard {}; all shards must have the same dtype",
            dir.join("b.npy").display(),
            dir.join("a.npy").display()
        ),
    );
}

#[test]
fn err_shards_disagree_in_keys() {
    let d = tmp();
    let dir = shard_dir(d.path());
    let z = small(&[2, 1, 2, 2]);
    let l = RawArray::i64(vec![2], vec![0, 1]);
    write_npz(&dir.join("a.npz"), &[("latents", &z), ("labels", &l)]).unwrap();
    write_npz(&dir.join("b.npz"), &[("latents", &z)]).unwrap();
    let s = spec(&dir.display().to_string());
    expect_err(
        load(&s),
        ErrorKind::Input,
        &format!(
            "{}: has no key `labels` but the first shard {} does; all shards must hold the same keys",
            dir.join("b.npz").display(),
            dir.join("a.npz").display()
        ),
    );
    write_npz(&dir.join("a.npz"), &[("latents", &z)]).unwrap();
    write_npz(
        &dir.join("b.npz"),
        &[
            ("latents", &z),
            (
                "masks",
                &RawArray::new(vec![2, 2, 2], ArrayData::Bool(vec![true; 8])),
            ),
        ],
    )
    .unwrap();
    expect_err(
        load(&s),
        ErrorKind::Input,
        &format!(
            "{}: has key `masks` but the first shard {} does not; all shards must hold the same keys",
            dir.join("b.npz").display(),
            dir.join("a.npz").display()
        ),
    );
}

#[test]
fn err_shards_disagree_in_mask_size() {
    let d = tmp();
    let dir = shard_dir(d.path());
    let z = small(&[2, 1, 2, 2]);
    let m2 = RawArray::new(vec![2, 2, 2], ArrayData::Bool(vec![true; 8]));
    let m4 = RawArray::new(vec![2, 4, 4], ArrayData::Bool(vec![true; 32]));
    write_npz(&dir.join("a.npz"), &[("latents", &z), ("masks", &m2)]).unwrap();
    write_npz(&dir.join("b.npz"), &[("latents", &z), ("masks", &m4)]).unwrap();
    expect_err(
        load(&spec(&dir.display().to_string())),
        ErrorKind::Input,
        &format!(
            "{}: key `masks`: mask size 4x4 does not match 2x2 of the first shard {}",
            dir.join("b.npz").display(),
            dir.join("a.npz").display()
        ),
    );
}

#[test]
fn err_read_array_needs_a_key() {
    let d = tmp();
    let path = p(d.path(), "two.npz");
    let z = small(&[2]);
    write_npz(Path::new(&path), &[("mu", &z), ("sigma", &z)]).unwrap();
    expect_err(
        read_array(&path, None),
        ErrorKind::Input,
        &format!("{path}: expected one array or a key to choose one, found keys `mu`, `sigma`"),
    );
    expect_err(
        read_array(&path, Some("x")),
        ErrorKind::Input,
        &format!("{path}: key `x`: not found; the file has keys `mu`, `sigma`"),
    );
}

#[test]
fn err_stats_from_npy() {
    let d = tmp();
    let path = p(d.path(), "s.npy");
    write_npy(Path::new(&path), &small(&[2])).unwrap();
    expect_err(
        read_stats(&path),
        ErrorKind::Input,
        &format!(
            "{path}: expected a .npz, .safetensors or .json file with keys `mean` and `std`, found a .npy file (one array)"
        ),
    );
}

#[test]
fn err_stats_not_a_vector() {
    let d = tmp();
    let path = p(d.path(), "s.npz");
    write_npz(
        Path::new(&path),
        &[("mean", &small(&[2, 3])), ("std", &small(&[3]))],
    )
    .unwrap();
    expect_err(
        read_stats(&path),
        ErrorKind::Input,
        &format!("{path}: key `mean`: expected one value per channel, shape (C,), found (2, 3)"),
    );
}

#[test]
fn err_stats_bool() {
    let d = tmp();
    let path = p(d.path(), "s.npz");
    let b = RawArray::new(vec![2], ArrayData::Bool(vec![true, false]));
    write_npz(Path::new(&path), &[("mean", &small(&[2])), ("std", &b)]).unwrap();
    expect_err(
        read_stats(&path),
        ErrorKind::Input,
        &format!("{path}: key `std`: expected numbers, found dtype bool"),
    );
}

#[test]
fn err_stats_json() {
    let d = tmp();
    let path = p(d.path(), "s.json");
    write(&path, b"{\"mean\": [1, 2],");
    expect_err(
        read_stats(&path),
        ErrorKind::Input,
        &format!("{path}: not valid JSON: EOF while parsing a value at line 1 column 16"),
    );
    write(&path, b"[1, 2]");
    expect_err(
        read_stats(&path),
        ErrorKind::Input,
        &format!("{path}: expected a JSON object with keys `mean` and `std`"),
    );
    write(&path, br#"{"mean": [1, 2], "sd": [1, 1]}"#);
    expect_err(
        read_stats(&path),
        ErrorKind::Input,
        &format!("{path}: key `std`: not found; the file has keys `mean`, `sd`"),
    );
    write(&path, br#"{"mean": [1, "a"], "std": [1, 1]}"#);
    expect_err(
        read_stats(&path),
        ErrorKind::Input,
        &format!("{path}: key `mean`: expected a list of numbers, found [1,\"a\"]"),
    );
    let missing = p(d.path(), "none.json");
    expect_err(
        read_stats(&missing),
        ErrorKind::NotFound,
        &format!("{missing}: file not found"),
    );
}
