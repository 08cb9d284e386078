#!/usr/bin/env python3
"""Reference values for affine equivariance (numpy only; never imports diffusability).

Transforms follow PyTorch's definitions, written here from its documentation and ATen's
UpSample.h rules rather than by calling torch:
  rot90:K  numpy.rot90(z, K, axes=(-2, -1)), which is torch.rot90(z, K, dims=(-2, -1));
  flip     z[..., ::-1] (torch.flip(z, dims=(-1,)));
  scale:S  torch.nn.functional.interpolate(z, scale_factor=S, mode="bilinear", align_corners=False):
           output floor(in * S); along each axis source = max((dst + 0.5) / S - 0.5, 0) (ratio 0 when
           the output has one element), i0 = floor(source), i1 = min(i0 + 1, in - 1), weight
           source - i0; applied separably (rows, then columns), which is the bilinear formula.
Metrics (metrics.md section 6): both tensors normalized with Z's per-channel mean and ddof=1 std over
(N, H, W); rel_err = mean_n ||zt_n - tau(z_n)||^2 / ||tau(z_n)||^2, cos = mean_n cosine, in float64.

Usage: equivariance.py cases DIR   (writes z.npy and per transform tau_I.npy (float64), exact_I.npy and
                                    noisy_I.npy (float32); prints the expected values as JSON)
"""

import json
import math
import os
import sys

import numpy as np

TRANSFORMS = ["rot90:1", "rot90:2", "rot90:3", "rot90:-1", "flip",
              "scale:0.5", "scale:2", "scale:0.75", "scale:1.5", "scale:0.2"]


def resize_axis(x, axis, s):
    n_in = x.shape[axis]
    n_out = int(math.floor(n_in * s))
    ratio = 1.0 / s if n_out > 1 else 0.0
    src = np.maximum((np.arange(n_out) + 0.5) * ratio - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    lam = src - i0
    shape = [1] * x.ndim
    shape[axis] = n_out
    lam = lam.reshape(shape)
    return np.take(x, i0, axis=axis) * (1.0 - lam) + np.take(x, i1, axis=axis) * lam


def tau(z, t):
    z = np.asarray(z, dtype=np.float64)
    if t == "flip":
        return z[..., ::-1].copy()
    kind, arg = t.split(":")
    if kind == "rot90":
        return np.rot90(z, int(arg), axes=(-2, -1)).copy()
    s = float(arg)
    return resize_axis(resize_axis(z, 2, s), 3, s)


def metrics(z, zt, t):
    z64 = np.asarray(z, dtype=np.float64)
    mean = z64.mean(axis=(0, 2, 3), keepdims=True)
    std = z64.std(axis=(0, 2, 3), ddof=1, keepdims=True)
    a = (tau(z64, t) - mean) / std
    b = (np.asarray(zt, dtype=np.float64) - mean) / std
    a = a.reshape(len(a), -1)
    b = b.reshape(len(b), -1)
    rel = ((b - a) ** 2).sum(1) / (a * a).sum(1)
    cos = (a * b).sum(1) / np.sqrt((a * a).sum(1) * (b * b).sum(1))
    return float(rel.mean()), float(cos.mean())


def cases(d):
    rng = np.random.default_rng(6)
    n, c, h, w = 5, 3, 8, 6
    shift = rng.uniform(-2, 2, (1, c, 1, 1))
    scale = rng.uniform(0.5, 3, (1, c, 1, 1))
    z = (rng.standard_normal((n, c, h, w)) * scale + shift).astype(np.float32)
    np.save(os.path.join(d, "z.npy"), z)
    out = []
    for i, t in enumerate(TRANSFORMS):
        tz = tau(z, t)
        exact = tz.astype(np.float32)
        noisy = (tz + 0.3 * rng.standard_normal(tz.shape) * scale).astype(np.float32)
        np.save(os.path.join(d, f"tau_{i}.npy"), tz)
        np.save(os.path.join(d, f"exact_{i}.npy"), exact)
        np.save(os.path.join(d, f"noisy_{i}.npy"), noisy)
        rel_e, cos_e = metrics(z, exact, t)
        rel_n, cos_n = metrics(z, noisy, t)
        out.append({"transform": t, "index": i, "shape": list(tz.shape),
                    "exact_rel_err": rel_e, "exact_cos": cos_e,
                    "noisy_rel_err": rel_n, "noisy_cos": cos_n})
    return out


def main():
    if sys.argv[1] != "cases":
        sys.exit(f"unknown command {sys.argv[1]}")
    print(json.dumps(cases(sys.argv[2])))


if __name__ == "__main__":
    main()
