//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root (two levels above this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root exists")
}

/// The Python interpreter that runs the oracle scripts: `DIFFUSABILITY_PYTHON`, else the workspace's
/// `.venv` (made by `scripts/test`). Oracle tests fail, not skip, without one: a reference that is not
/// run proves nothing.
pub fn python() -> PathBuf {
    if let Ok(p) = std::env::var("DIFFUSABILITY_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = workspace_root().join(".venv/bin/python");
    assert!(
        venv.exists(),
        "oracle tests need Python with numpy, scipy and scikit-learn: run scripts/test (it creates .venv) \
         or set DIFFUSABILITY_PYTHON"
    );
    venv
}

/// Runs `tests/oracles/<script>` with `args` and parses the JSON it prints on stdout.
pub fn oracle(script: &str, args: &[&str]) -> serde_json::Value {
    let path = workspace_root().join("tests/oracles").join(script);
    let out = Command::new(python())
        .arg(&path)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", path.display()));
    assert!(
        out.status.success(),
        "{} failed:\n{}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{} printed no JSON ({e}):\n{}",
            path.display(),
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Relative difference `|a - b| / max(|b|, tiny)`.
pub fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-300)
}
