//! Reading single arrays and statistics files for commands other than `metrics` (`fd`, `interpolate`,
//! `--normalize stats:FILE`, ...).

use super::array::RawArray;
use super::container::{Container, list_keys};
use crate::error::{Error, Result};

/// Reads one array as stored (converted to native byte order and C order). For `.npz` and
/// `.safetensors`, `key` None means the file's only array; a file with several arrays then gives an
/// error listing its keys. A `.npy` file holds one array and takes no key.
pub fn read_array(path: &str, key: Option<&str>) -> Result<RawArray> {
    let mut file = Container::open(path)?;
    let key = if file.is_npy() {
        if let Some(k) = key {
            return Err(Error::input(
                path,
                Some(k),
                "cannot select a key: a .npy file holds one unnamed array",
            ));
        }
        None
    } else {
        let keys = file.keys();
        match key {
            Some(k) if file.has(k) => Some(k.to_string()),
            Some(k) => {
                return Err(Error::input(
                    path,
                    Some(k),
                    format!("not found; the file has {}", list_keys(&keys)),
                ));
            }
            None => match &keys[..] {
                [only] => Some(only.clone()),
                _ => {
                    return Err(Error::input(
                        path,
                        None,
                        format!(
                            "expected one array or a key to choose one, found {}",
                            list_keys(&keys)
                        ),
                    ));
                }
            },
        }
    };
    Ok(file.read(key.as_deref())?.to_raw())
}

/// Numeric values of a vector-shaped array (any shape with at most one dimension above 1, so that
/// `(C,)` and `(1, C, 1, 1)` both work), as f64.
fn vector(a: &RawArray, err: &dyn Fn(String) -> Error) -> Result<Vec<f64>> {
    if a.shape.iter().filter(|&&d| d > 1).count() > 1 {
        return Err(err(format!(
            "expected one value per channel, shape (C,), found {}",
            a.shape_str()
        )));
    }
    a.data
        .to_f64()
        .ok_or_else(|| err("expected numbers, found dtype bool".to_string()))
}

/// Reads per-channel normalization statistics: arrays `mean` and `std` (C values each) from `.npz` or
/// `.safetensors`, or `{"mean": [...], "std": [...]}` from `.json`. Their count and values are checked
/// against the latents by [`crate::data::Affine::fit`].
pub fn read_stats(path: &str) -> Result<(Vec<f64>, Vec<f64>)> {
    let is_json = std::path::Path::new(path)
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    if is_json {
        return read_stats_json(path);
    }
    let mut file = Container::open(path)?;
    if file.is_npy() {
        return Err(Error::input(
            path,
            None,
            "expected a .npz, .safetensors or .json file with keys `mean` and `std`, found a .npy file (one array)",
        ));
    }
    let keys = file.keys();
    let mut get = |k: &str| -> Result<Vec<f64>> {
        if !file.has(k) {
            return Err(Error::input(
                path,
                Some(k),
                format!("not found; the file has {}", list_keys(&keys)),
            ));
        }
        let a = file.read(Some(k))?.to_raw();
        vector(&a, &|w| Error::input(path, Some(k), w))
    };
    let mean = get("mean")?;
    let std = get("std")?;
    Ok((mean, std))
}

fn read_stats_json(path: &str) -> Result<(Vec<f64>, Vec<f64>)> {
    let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::not_found(path, "file"),
        _ => Error::input(path, None, format!("cannot read: {e}")),
    })?;
    let v: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::input(path, None, format!("not valid JSON: {e}")))?;
    let obj = v.as_object().ok_or_else(|| {
        Error::input(
            path,
            None,
            "expected a JSON object with keys `mean` and `std`",
        )
    })?;
    let get = |k: &str| -> Result<Vec<f64>> {
        let arr = obj.get(k).ok_or_else(|| {
            let keys: Vec<String> = obj.keys().cloned().collect();
            Error::input(
                path,
                Some(k),
                format!("not found; the file has {}", list_keys(&keys)),
            )
        })?;
        arr.as_array()
            .and_then(|a| a.iter().map(|x| x.as_f64()).collect::<Option<Vec<f64>>>())
            .ok_or_else(|| {
                Error::input(
                    path,
                    Some(k),
                    format!("expected a list of numbers, found {arr}"),
                )
            })
    };
    Ok((get("mean")?, get("std")?))
}
