#!/usr/bin/env python3
"""Independent check of a `diffusability synth` .npz file (numpy only).

Reads the file, then from the stored factors alone computes the closed-form truth of the model the
dense way: the eigenvalues of the D x D Kronecker product sigma_c (x) sigma_s (row-major vec, channel
outer), VIV = (pi/2) sum sqrt(lam), T/D and the anisotropy rho = sum sqrt(lam) / sqrt(D sum lam)
(metrics.md section 1). It also rebuilds sigma_s and the channel spectrum from the stored config, and
describes the masks. Prints one JSON object.

Usage: synth_check.py FILE.npz
"""

import json
import sys

import numpy as np


def main():
    z = np.load(sys.argv[1])
    cfg = json.loads(bytes(z["config"]).decode("utf-8"))
    C, H, W = cfg["channels"], cfg["height"], cfg["width"]
    S = H * W
    D = C * S
    sc = z["sigma_c"]
    ss = z["sigma_s"]

    lam = np.clip(np.linalg.eigvalsh(np.kron(sc, ss)), 0.0, None)
    root = np.sqrt(lam).sum()
    total = lam.sum()

    # sigma_s from its definition: within^2 (exp(-d^2 / (2 l^2)) + jitter I) / (1 + jitter).
    yy, xx = np.meshgrid(np.arange(H), np.arange(W), indexing="ij")
    pos = np.stack([yy.ravel(), xx.ravel()], axis=1).astype(np.float64)
    d2 = ((pos[:, None, :] - pos[None, :, :]) ** 2).sum(-1)
    ws2 = cfg["within_scale"] ** 2
    if cfg["corr_len"] == 0:
        ref_ss = ws2 * np.eye(S)
    else:
        jit = cfg["spatial_jitter"]
        ref_ss = ws2 * (np.exp(-d2 / (2 * cfg["corr_len"] ** 2)) + jit * np.eye(S)) / (1 + jit)

    lc = (np.arange(C) + 1.0) ** (-cfg["anisotropy"])
    lc /= lc.mean()

    out = {
        "viv": float(np.pi / 2 * root),
        "viv_per_dim": float(np.pi / 2 * root / D),
        "total_variance": float(total / D),
        "anisotropy": float(root / np.sqrt(D * total)),
        "kron_min_eig": float(np.linalg.eigvalsh(np.kron(sc, ss)).min()),
        "sigma_s_max_abs_err": float(np.abs(ss - ref_ss).max()),
        "sigma_c_eig_max_abs_err": float(np.abs(np.sort(np.linalg.eigvalsh(sc))[::-1] - lc).max()),
        "sigma_c_asymmetry": float(np.abs(sc - sc.T).max()),
        "latents_shape": list(z["latents"].shape),
        "latents_dtype": str(z["latents"].dtype),
        "labels_counts": np.bincount(z["labels"]).tolist(),
        "means_shape": list(z["means"].shape),
        "scalars_shape": [list(z[k].shape) for k in
                          ("true_viv", "true_viv_per_dim", "true_total_variance", "true_anisotropy")],
        "stored": {k: float(z[k]) for k in
                   ("true_viv", "true_viv_per_dim", "true_total_variance", "true_anisotropy")},
    }
    if "masks" in z.files:
        m = z["masks"]
        frac = m.reshape(m.shape[0], -1).mean(axis=1)
        out["masks"] = {
            "shape": list(m.shape),
            "dtype": str(m.dtype),
            "values": sorted(int(v) for v in np.unique(m)),
            "factor": [m.shape[1] / H, m.shape[2] / W],
            "fg_fraction_min": float(frac.min()),
            "fg_fraction_max": float(frac.max()),
        }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
