//! Loading a data set: latents from one file or a set of shards, with labels and masks from the same
//! files or from their own files, every check done before any metric runs.

use super::array::shape_str;
use super::checks;
use super::container::{Container, list_keys};
use super::dtype::Elem;
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
    /// `(N, C, H, W)` of its latents.
    dims: [usize; 4],
}

/// Where labels (or masks) come from.
enum Aux {
    Absent,
    /// A file of their own, with the key picked in it.
    File(String, Container, Option<String>),
    /// The `labels` (or `masks`) key of every shard.
    Shards,
}

/// Reads and checks a data set. Latents of f32 in native byte order and C order stay in their
/// memory map; other dtypes and layouts are converted to f32 in memory.
///
/// Checks, in order: files exist and parse; the latents are `(N, C, H, W)` floats, nonempty; shards
/// agree in `(C, H, W)`, dtype and keys; labels are integers, one per latent; masks are
/// `(N, [1,] h, w)` with `h x w` a whole multiple of `H x W`; all of this from headers, before any
/// data is read. Then mask values are not NaN, u64 labels fit i64, and every latent value is finite;
/// the content digest is computed in parallel with that last scan.
pub fn load(spec: &InputSpec) -> Result<Dataset> {
    let files = shards::expand(&spec.path)?;
    let mut shards = open_shards(&files.files, spec)?;
    let [_, c, h, w] = shards[0].dims;
    let total: usize = shards.iter().map(|s| s.dims[0]).sum();
    let mut paths = files.files.clone();

    let labels_from = aux(
        spec.labels.as_deref(),
        LABELS,
        &shards,
        &mut paths,
        |l, err| checks::labels_layout(l, total, err),
    )?;
    let masks_from = aux(
        spec.masks.as_deref(),
        MASKS,
        &shards,
        &mut paths,
        |l, err| checks::masks_layout(l, total, h, w, err).map(|_| ()),
    )?;
    check_shard_aux(&mut shards, &labels_from, &masks_from, h, w)?;

    let labels = match labels_from {
        Aux::Absent => None,
        Aux::File(path, mut file, key) => Some(read_labels(&mut file, key.as_deref(), &path)?),
        Aux::Shards => {
            let mut all = Vec::with_capacity(total);
            for s in shards.iter_mut() {
                all.extend(read_labels(&mut s.file, Some(LABELS), &s.path)?);
            }
            Some(all)
        }
    }
    .map(Labels::new);
    let masks = match masks_from {
        Aux::Absent => None,
        Aux::File(_, mut file, key) => Some(read_masks(&mut file, key.as_deref(), h, w)?),
        Aux::Shards => {
            let mut all: Option<Masks> = None;
            for s in shards.iter_mut() {
                let m = read_masks(&mut s.file, Some(MASKS), h, w)?;
                match all.as_mut() {
                    None => all = Some(m),
                    Some(a) => a.fg.extend(m.fg),
                }
            }
            all
        }
    };

    let mut segments = Vec::with_capacity(shards.len());
    for s in shards.iter_mut() {
        let seg = s
            .file
            .read(s.key.as_deref())?
            .into_segment()
            .ok_or_else(|| {
                Error::internal("latents are not floating point after the dtype check")
            })?;
        segments.push(seg);
    }
    let latents = Latents::from_segments(c, h, w, segments);
    let dtype = shards[0].layout.elem;
    let (sha, scanned) = rayon::join(
        || digest(&latents, labels.as_ref(), masks.as_ref()),
        || {
            for (seg, s) in latents.segments().iter().zip(&shards) {
                let err = |w: String| Error::input(&s.path, s.key.as_deref(), w);
                checks::finite(seg, c * h * w, dtype == Elem::F64, &err)?;
            }
            Ok::<(), Error>(())
        },
    );
    scanned?;
    let key = shards[0]
        .key
        .clone()
        .or_else(|| spec.key.clone())
        .unwrap_or_else(|| LATENTS.to_string());
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

/// Opens every shard and checks its latents header, and that it agrees with the first shard.
fn open_shards(files: &[String], spec: &InputSpec) -> Result<Vec<Shard>> {
    let mut shards: Vec<Shard> = Vec::with_capacity(files.len());
    for path in files {
        let mut file = Container::open(path)?;
        let key = match shards.first().and_then(|f| f.key.as_deref()) {
            None => resolve(&file, path, spec.key.as_deref(), LATENTS, &[LABELS, MASKS])?,
            // Every shard must hold the key resolved in the first one.
            Some(k) => resolve(&file, path, Some(k), k, &[])?,
        };
        let layout = file.layout(key.as_deref())?;
        let err = |w: String| Error::input(path, key.as_deref(), w);
        let dims = checks::latents_shape(&layout, &err)?;
        if let Some(first) = shards.first() {
            if first.dims[1..] != dims[1..] {
                let [_, c, h, w] = first.dims;
                return Err(err(format!(
                    "shape {} does not match (C, H, W) = ({c}, {h}, {w}) of the first shard {}",
                    shape_str(&layout.shape),
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
            // Keys given by their own file are not read from the shards, so they need not agree.
            for (k, own) in [(LABELS, &spec.labels), (MASKS, &spec.masks)] {
                if own.is_none() && first.file.has(k) != file.has(k) {
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
            dims,
        });
    }
    Ok(shards)
}

/// Decides where labels (or masks, by `default` key) come from; a file of their own is opened, its
/// array picked and its layout checked, and its path appended to `paths`.
fn aux(
    own: Option<&str>,
    default: &str,
    shards: &[Shard],
    paths: &mut Vec<String>,
    check: impl Fn(&Layout, &dyn Fn(String) -> Error) -> Result<()>,
) -> Result<Aux> {
    let Some(path) = own else {
        return Ok(if shards[0].file.has(default) {
            Aux::Shards
        } else {
            Aux::Absent
        });
    };
    let mut file = Container::open(path)?;
    let key = resolve(&file, path, None, default, &[])?;
    let layout = file.layout(key.as_deref())?;
    check(&layout, &|w| Error::input(path, key.as_deref(), w))?;
    paths.push(path.to_string());
    Ok(Aux::File(path.to_string(), file, key))
}

/// Checks the headers of labels and masks held inside the shards: one per latent of that shard, and
/// the same mask size in every shard.
fn check_shard_aux(
    shards: &mut [Shard],
    labels: &Aux,
    masks: &Aux,
    h: usize,
    w: usize,
) -> Result<()> {
    let first_path = shards[0].path.clone();
    let mut first_mask: Option<(usize, usize)> = None;
    for s in shards.iter_mut() {
        let n = s.dims[0];
        if let Aux::Shards = labels {
            let l = s.file.layout(Some(LABELS))?;
            checks::labels_layout(&l, n, &|m| Error::input(&s.path, Some(LABELS), m))?;
        }
        if let Aux::Shards = masks {
            let l = s.file.layout(Some(MASKS))?;
            let err = |m: String| Error::input(&s.path, Some(MASKS), m);
            let (mh, mw) = checks::masks_layout(&l, n, h, w, &err)?;
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
    Ok(())
}

fn read_labels(file: &mut Container, key: Option<&str>, path: &str) -> Result<Vec<i64>> {
    let s = file.read(key)?;
    checks::labels_values(&s.to_raw(), &|w| Error::input(path, key, w))
}

fn read_masks(file: &mut Container, key: Option<&str>, h: usize, w: usize) -> Result<Masks> {
    let s = file.read(key)?;
    let (mh, mw) = checks::masks_layout(&s.layout, s.shape()[0], h, w, &|m| s.err(m))?;
    checks::masks_values(&s, s.shape()[0], mh, mw, h, w)
}
