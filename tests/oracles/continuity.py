#!/usr/bin/env python3
"""Reference values for iFID's latent side (numpy only; never imports diffusability).

Written from the recipe in metrics.md section 7 (after tongdaxu/Making-rFID-Predictive-of-Diffusion-
gFID `evalvae.py`): cosine similarity of flattened raw latents (float64), top-K by descending cosine
(ties by smaller index, a stable sort), draw probabilities softmax(-MSE) over the K candidates
(MSE = mean over elements), slerp(z_q, z_nn, alpha) with theta = arccos(clip(cos, -1, 1)) and the
linear (1 - alpha) z_q + alpha z_nn when sin(theta) < 1e-6.

Usage: continuity.py cases DIR   (writes q.npy, r.npy and top1_ALPHA.npy (float64 expected
                                  interpolations with K = 1); prints neighbours, candidates and
                                  probabilities as JSON)
"""

import json
import os
import sys

import numpy as np

K = 5
ALPHAS = [0.5, 0.3]


def cosines(q, r):
    qn = np.linalg.norm(q, axis=1)
    rn = np.linalg.norm(r, axis=1)
    return (q @ r.T) / np.outer(qn, rn)


def slerp(a, b, t):
    c = np.clip(a.dot(b) / (np.linalg.norm(a) * np.linalg.norm(b)), -1.0, 1.0)
    theta = np.arccos(c)
    if np.sin(theta) < 1e-6:
        return (1 - t) * a + t * b, True
    return (np.sin((1 - t) * theta) * a + np.sin(t * theta) * b) / np.sin(theta), False


def cases(d):
    rng = np.random.default_rng(7)
    c, h, w = 2, 4, 4
    nq, nr = 12, 200
    base = rng.standard_normal((8, c, h, w))
    # References: noisy copies of a few prototypes, so that queries have several close neighbours
    # with comparable MSE (a spread-out softmax).
    r = base[rng.integers(0, 8, nr)] + 0.6 * rng.standard_normal((nr, c, h, w))
    q = base[rng.integers(0, 8, nq)] + 0.6 * rng.standard_normal((nq, c, h, w))
    r[17] = 2.0 * q[3]  # parallel to query 3: its slerp falls back to linear
    q = q.astype(np.float32)
    r = r.astype(np.float32)
    np.save(os.path.join(d, "q.npy"), q)
    np.save(os.path.join(d, "r.npy"), r)

    qf = q.reshape(nq, -1).astype(np.float64)
    rf = r.reshape(nr, -1).astype(np.float64)
    cs = cosines(qf, rf)
    order = np.argsort(-cs, axis=1, kind="stable")[:, :K]
    probs = []
    for i in range(nq):
        mse = ((qf[i] - rf[order[i]]) ** 2).mean(axis=1)
        e = np.exp(-(mse - mse.min()))
        probs.append((e / e.sum()).tolist())
    out = {"k": K, "candidates": order.tolist(),
           "cos": np.take_along_axis(cs, order, 1).tolist(), "probabilities": probs, "top1": {}}
    for alpha in ALPHAS:
        res, linear = [], []
        for i in range(nq):
            v, lin = slerp(qf[i], rf[order[i, 0]], alpha)
            res.append(v)
            linear.append(lin)
        np.save(os.path.join(d, f"top1_{alpha}.npy"), np.array(res).reshape(q.shape))
        out["top1"][str(alpha)] = {"neighbours": order[:, 0].tolist(), "linear": linear}
    return out


def main():
    if sys.argv[1] != "cases":
        sys.exit(f"unknown command {sys.argv[1]}")
    print(json.dumps(cases(sys.argv[2])))


if __name__ == "__main__":
    main()
