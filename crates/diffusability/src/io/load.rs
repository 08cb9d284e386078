//! Loading a data set: latents from one file or a set of shards, with labels and masks from the same
//! files or from their own files, every check done before any metric runs.

use super::checks;
use super::container::{Container, list_keys};
use super::shards;
use super::stored::Layout;
use crate::data::{Dataset, Labels, Latents, Masks, Source, digest};
use crate::error::{Error, Result};

/// What to read: the command line's `INPUT [--key K] [--labels F] [--masks F] [--name N]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InputSpec {
    /// A file, a directory of shards, or a glob of shards.
    pub path: String,
    /// The latents key in `.npz`/`.safetensors` files (default `latents`; a file without that key
    /// whose only other arrays are `labels`/`masks` gives its one remaining array).
    pub key: Option<String>,
    /// A separate labels file; it takes precedence over a `labels` key in the latents files.
    pub labels: Option<String>,
    /// A separate masks file; it takes precedence over a `masks` key in the latents files.
    pub masks: Option<String>,
    /// The display name (`input.name`); default the file stem, or the directory's name.
    pub name: Option<String>,
}

const LATENTS: &str = "latents";
const LABELS: &str = "labels";
const MASKS: &str = "masks";

/// Picks the array `wanted` (or `default`) of a file. `.npy` files hold one array; in other files a
/// missing default key falls back to the only array not named in `besides`.
pub(crate) fn resolve(
    c: &Container,
    path: &str,
    wanted: Option<&str>,
    default: &str,
    besides: &[&str],
) -> Result<Option<String>> {
    if c.is_npy() {
        return match wanted {
            Some(k) if k != default => Err(Error::input(
                path,
                Some(k),
                "cannot select a key: a .npy file holds one unnamed array",
            )),
            _ => Ok(None),
        };
    }
    let keys = c.keys();
    let key = wanted.unwrap_or(default);
    if c.has(key) {
        return Ok(Some(key.to_string()));
    }
    if wanted.is_none() {
        let rest: Vec<&String> = keys
            .iter()
            .filter(|k| !besides.contains(&k.as_str()))
            .collect();
        if let [only] = rest[..] {
            return Ok(Some(only.clone()));
        }
    }
    Err(Error::input(
        path,
        Some(key),
        format!("not found; the file has {}", list_keys(&keys)),
    ))
}

/// One shard: its open file, the latents key and layout.
struct Shard {
    path: String,
    file: Container,
    key: Option<String>,
    layout: Layout,
    n: usize,
}

/// Reads and checks a data set. Latents of f32 in native byte order and C order stay in their
/// memory map; other dtypes and layouts are converted to f32 in memory.
///
/// Checks, in order: files exist and parse; the latents are `(N, C, H, W)` floats, nonempty; shards
/// agree in `(C, H, W)`, dtype and keys; labels are integers, one per latent; masks are
/// `(N, [1,] h, w)` with `h x w` a whole multiple of `H x W`; mask values are not NaN; every latent
/// value is finite. Then the content digest is computed (in parallel with the finiteness scan).
pub fn load(spec: &InputSpec) -> Result<Dataset> {
    let files = shards::expand(&spec.path)?;
    let mut shards: Vec<Shard> = Vec::with_capacity(files.files.len());
    for path in &files.files {
        let mut file = Container::open(path)?;
        let key = match shards.first() {
            None => resolve(&file, path, spec.key.as_deref(), LATENTS, &[LABELS, MASKS])?,
            // Every shard must hold the key resolved in the first one.
            Some(first) => match &first.key {
                Some(k) => resolve(&file, path, Some(k), k, &[])?,
                None => resolve(&file, path, None, LATENTS, &[LABELS, MASKS])?,
            },
        };
        let layout = file.layout(key.as_deref())?;
        let err = |w: String| Error::input(path, key.as_deref(), w);
        let [n, ..] = checks::latents_shape(&layout, &err)?;
        if let Some(first) = shards.first() {
            let (a, b) = (&first.layout.shape[1..], &layout.shape[1..]);
            if a != b {
                return Err(err(format!(
                    "shape {} does not match (C, H, W) = ({}, {}, {}) of the first shard {}",
                    super::array::shape_str(&layout.shape),
                    a[0],
                    a[1],
                    a[2],
                    first.path
                )));
            }
            if first.layout.elem != layout.elem {
                return Err(err(format!(
                    "dtype {} differs from {} in the first shard {}; all shards must have the same dtype",
                    layout.elem.name(),
                    first.layout.elem.name(),
                    first.path
                )));
            }
            for k in [LABELS, MASKS] {
                let own = match k {
                    LABELS => spec.labels.is_none(),
                    _ => spec.masks.is_none(),
                };
                if own && first.file.has(k) != file.has(k) {
                    let (has, first_has) = if file.has(k) {
                        ("has", "does not")
                    } else {
                        ("has no", "does")
                    };
                    return Err(Error::input(
                        path,
                        None,
                        format!(
                            "{has} key `{k}` but the first shard {} {first_has}; all shards must hold the same keys",
                            first.path
                        ),
                    ));
                }
            }
        }
        shards.push(Shard {
            path: path.clone(),
            file,
            key,
            layout,
            n,
        });
    }
    let first = &shards[0];
    let [_, c, h, w] = checks::latents_shape(&first.layout, &|w| Error::internal(w))?;
    let total: usize = shards.iter().map(|s| s.n).sum();
    let dtype = first.layout.elem;
    let key = first
        .key
        .clone()
        .unwrap_or_else(|| spec.key.clone().unwrap_or_else(|| LATENTS.to_string()));
    let mut paths = files.files.clone();

    // Labels and masks: from their own files, else from the shards.
    let labels_inside = spec.labels.is_none() && first.file.has(LABELS);
    let masks_inside = spec.masks.is_none() && first.file.has(MASKS);
    let mut label_file = match &spec.labels {
        Some(p) => {
            paths.push(p.clone());
            Some(open_aux(p, LABELS, |l, err| {
                checks::labels_layout(l, total, err)
            })?)
        }
        None => None,
    };
    let mut mask_file = match &spec.masks {
        Some(p) => {
            paths.push(p.clone());
            Some(open_aux(p, MASKS, |l, err| {
                checks::masks_layout(l, total, h, w, err).map(|_| ())
            })?)
        }
        None => None,
    };
    let first_path = shards[0].path.clone();
    let mut first_mask: Option<(usize, usize)> = None;
    for s in shards.iter_mut() {
        if labels_inside {
            let l = s.file.layout(Some(LABELS))?;
            checks::labels_layout(&l, s.n, &|w| Error::input(&s.path, Some(LABELS), w))?;
        }
        if masks_inside {
            let l = s.file.layout(Some(MASKS))?;
            let err = |w: String| Error::input(&s.path, Some(MASKS), w);
            let (mh, mw) = checks::masks_layout(&l, s.n, h, w, &err)?;
            match first_mask {
                None => first_mask = Some((mh, mw)),
                Some((fh, fw)) if (fh, fw) != (mh, mw) => {
                    return Err(err(format!(
                        "mask size {mh}x{mw} does not match {fh}x{fw} of the first shard {first_path}"
                    )));
                }
                Some(_) => {}
            }
        }
    }

    let mut labels_raw: Option<Vec<i64>> = None;
    let mut masks: Option<Masks> = None;
    if let Some((file, k)) = label_file.as_mut() {
        let p = spec.labels.as_deref().unwrap_or_default();
        labels_raw = Some(read_labels(file, k.as_deref(), p)?);
    } else if labels_inside {
        let mut all = Vec::with_capacity(total);
        for s in shards.iter_mut() {
            all.extend(read_labels(&mut s.file, Some(LABELS), &s.path)?);
        }
        labels_raw = Some(all);
    }
    if let Some((file, k)) = mask_file.as_mut() {
        masks = Some(read_masks(file, k.as_deref(), h, w)?);
    } else if masks_inside {
        let mut all: Option<Masks> = None;
        for s in shards.iter_mut() {
            let m = read_masks(&mut s.file, Some(MASKS), h, w)?;
            all = Some(match all {
                None => m,
                Some(mut a) => {
                    a.fg.extend(m.fg);
                    a
                }
            });
        }
        masks = all;
    }

    let mut segments = Vec::with_capacity(shards.len());
    let mut scans = Vec::with_capacity(shards.len());
    for s in shards.iter_mut() {
        let stored = s.file.read(s.key.as_deref())?;
        let seg = stored.into_segment().ok_or_else(|| {
            Error::internal("latents are not floating point after the dtype check")
        })?;
        scans.push((s.path.clone(), s.key.clone()));
        segments.push(seg);
    }
    let latents = Latents::from_segments(c, h, w, segments);
    let labels = labels_raw.map(Labels::new);
    let d = c * h * w;
    let from_f64 = dtype == super::dtype::Elem::F64;
    let (sha, scanned) = rayon::join(
        || digest(&latents, labels.as_ref(), masks.as_ref()),
        || {
            for (seg, (path, key)) in latents.segments().iter().zip(&scans) {
                checks::finite(seg, d, from_f64, &|w| Error::input(path, key.as_deref(), w))?;
            }
            Ok::<(), Error>(())
        },
    );
    scanned?;
    Ok(Dataset {
        latents,
        labels,
        masks,
        source: Source {
            name: spec.name.clone().unwrap_or(files.name),
            paths,
            dtype: dtype.name().to_string(),
            key,
            sha256: sha,
            example: false,
        },
    })
}

/// Opens a labels or masks file, picks its array and checks its layout.
fn open_aux(
    path: &str,
    default: &str,
    check: impl Fn(&Layout, &dyn Fn(String) -> Error) -> Result<()>,
) -> Result<(Container, Option<String>)> {
    let mut file = Container::open(path)?;
    let key = resolve(&file, path, None, default, &[])?;
    let layout = file.layout(key.as_deref())?;
    check(&layout, &|w| Error::input(path, key.as_deref(), w))?;
    Ok((file, key))
}

fn read_labels(file: &mut Container, key: Option<&str>, path: &str) -> Result<Vec<i64>> {
    let s = file.read(key)?;
    checks::labels_values(&s.to_raw(), &|w| Error::input(path, key, w))
}

fn read_masks(file: &mut Container, key: Option<&str>, h: usize, w: usize) -> Result<Masks> {
    let s = file.read(key)?;
    let err = |m: String| s.err(m);
    let (mh, mw) = checks::masks_layout(&s.layout, s.shape()[0], h, w, &err)?;
    checks::masks_values(&s, s.shape()[0], mh, mw, h, w)
}
