"""Shared fixtures: a small seeded latent set, and the command-line binary to compare against.

The command line is found through DIFFUSABILITY_CLI (scripts/test sets it to target/debug/diffusability);
without it, the tests that compare against it are skipped with a message.
"""

import json
import os
import pathlib
import subprocess

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]


def cli_path():
    p = os.environ.get("DIFFUSABILITY_CLI")
    if p:
        return p
    target = os.environ.get("CARGO_TARGET_DIR", str(ROOT / "target"))
    cand = pathlib.Path(target) / "debug" / "diffusability"
    return str(cand) if cand.exists() else None


@pytest.fixture(scope="session")
def cli():
    p = cli_path()
    if p is None:
        pytest.skip("DIFFUSABILITY_CLI is not set and target/debug/diffusability does not exist")

    def run(*args, ok=True):
        r = subprocess.run([p, *map(str, args)], capture_output=True, text=True, timeout=600)
        if ok:
            assert r.returncode == 0, f"{args}: exit {r.returncode}: {r.stderr}"
            return json.loads(r.stdout)
        return r

    return run


def make_set(n_classes=6, per_class=20, c=4, h=8, w=8, mask_factor=2, seed=0):
    """Latents with class structure and spatial correlation, labels, and pixel masks."""
    rng = np.random.default_rng(seed)
    n = n_classes * per_class
    labels = np.repeat(np.arange(n_classes), per_class)
    rng.shuffle(labels)
    means = rng.standard_normal((n_classes, c, h, w)) * 0.8
    noise = rng.standard_normal((n, c, h, w))
    # Neighbouring tokens correlate: average with a shifted copy.
    noise = 0.6 * noise + 0.4 * np.roll(noise, 1, axis=2) + 0.3 * np.roll(noise, 1, axis=3)
    z = (means[labels] + noise).astype(np.float64)
    yy, xx = np.mgrid[0 : h * mask_factor, 0 : w * mask_factor]
    r = rng.uniform(2, h * mask_factor / 2, size=n)
    cy, cx = rng.uniform(0, h * mask_factor, size=(2, n))
    masks = ((yy[None] - cy[:, None, None]) ** 2 + (xx[None] - cx[:, None, None]) ** 2) < r[:, None, None] ** 2
    return z, labels.astype(np.int64), masks.astype(np.uint8)


@pytest.fixture(scope="session")
def dataset():
    return make_set()


@pytest.fixture(scope="session")
def files(tmp_path_factory, dataset):
    """The data set saved as .npy files: latents in f16, f32 and f64, labels and masks."""
    d = tmp_path_factory.mktemp("data")
    z, y, m = dataset
    out = {}
    for name, dt in (("f16", np.float16), ("f32", np.float32), ("f64", np.float64)):
        p = d / f"latents_{name}.npy"
        np.save(p, z.astype(dt))
        out[name] = p
    np.save(d / "labels.npy", y)
    np.save(d / "masks.npy", m)
    out["labels"] = d / "labels.npy"
    out["masks"] = d / "masks.npy"
    out["dir"] = d
    return out
