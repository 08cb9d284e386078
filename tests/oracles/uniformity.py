"""Oracle for latent uniformity (metrics.md section 5), independent of diffusability's code.

Subcommands (each prints one JSON object on stdout):

  kde EMB.npy
      scipy.stats.gaussian_kde(Y.T)(Y.T) of an N x 2 embedding, then the three statistics:
      {"density": [...], "uniformity_cv": ..., "uniformity_gini": ..., "uniformity_entropy": ...}

  kl POINTS.npy EMB.npy [--perplexity 30]
      the exact KL divergence of an embedding of the points: {"kl": ...}

  tsne POINTS.npy OURS.npy [OURS.npy ...] [--perplexity 30] [--seeds 5] [--jobs 2] [--skip-opentsne]
      openTSNE (FFT gradients) and scikit-learn (Barnes-Hut) on the same points with the settings of
      metrics.md section 5, the exact KL of their embeddings and of each OURS (one function for all),
      and the statistics of each, every entry {"kl", "uniformity_*", and "seed", "time_s" for references}:
      {"ours": [{...}, ...] (one per OURS, in order), "opentsne": {...} (PCA init, seed 0),
       "sklearn_pca": {...} (PCA init, seed 0; only with --seeds > 0),
       "sklearn": [{...}, ...] (random init, seeds 0..seeds-1)}; no "opentsne" with --skip-opentsne.
      scikit-learn's seed-to-seed spread is taken with random initialization: with init="pca" its only
      random step, a randomized SVD for two components, gives the same components for every seed, so
      the runs coincide and have no spread.

The exact KL: p_{j|i} = exp(-beta_i d_ij^2) / sum_{k != i} exp(-beta_i d_ik^2) over ALL other points,
beta_i found by bisection on ln(beta_i) (64 halvings, to machine precision) so that the entropy of
p_{.|i} is ln(perplexity) nats; p_ij = (p_{j|i} + p_{i|j}) / (2n); q_ij = w_ij / sum_{k != l} w_kl with
w_ij = 1 / (1 + |y_i - y_j|^2); KL = sum_{i != j} p_ij ln(p_ij / q_ij). Evaluated in row blocks, f64.
"""

import argparse
import json
import sys
import time

import numpy as np
from scipy.stats import gaussian_kde

BLOCK = 256


def statistics(density):
    d = np.asarray(density, dtype=np.float64)
    n = d.size
    cv = np.std(d) / np.mean(d)
    s = np.sort(d)
    i = np.arange(1, n + 1)
    gini = np.sum((2 * i - n - 1) * s) / (n * np.sum(s))
    p = d / np.sum(d)
    entropy = -np.sum(p * np.log2(p + 1e-10)) / np.log2(n)
    return {"uniformity_cv": float(cv), "uniformity_gini": float(gini), "uniformity_entropy": float(entropy)}


def kde_statistics(y):
    y = np.asarray(y, dtype=np.float64)
    density = gaussian_kde(y.T)(y.T)
    return density, statistics(density)


def sq_dist_rows(x, norms, rows):
    d = norms[rows, None] + norms[None, :] - 2.0 * (x[rows] @ x.T)
    np.maximum(d, 0.0, out=d)
    d[np.arange(len(rows)), rows] = 0.0
    return d


def calibrate(x, perplexity):
    """Per point: beta, the shift (smallest squared distance) and the normalizer z, over all others."""
    n = x.shape[0]
    norms = np.einsum("ij,ij->i", x, x)
    target = np.log(perplexity)
    beta = np.empty(n)
    shift = np.empty(n)
    z = np.empty(n)
    for a in range(0, n, BLOCK):
        rows = np.arange(a, min(n, a + BLOCK))
        d = sq_dist_rows(x, norms, rows)
        d[np.arange(len(rows)), rows] = np.inf
        sh = d.min(axis=1)
        s = d - sh[:, None]
        scale = np.mean(np.where(np.isfinite(s), s, 0.0), axis=1) * n / (n - 1)
        scale = np.where(scale > 0, scale, 1.0)
        lo = np.full(len(rows), -60.0)
        hi = np.full(len(rows), 60.0)
        for _ in range(64):
            mid = 0.5 * (lo + hi)
            b = np.exp(mid) / scale
            w = np.exp(-b[:, None] * s)
            zz = w.sum(axis=1)
            h = np.log(zz) + b * (w * np.where(np.isfinite(s), s, 0.0)).sum(axis=1) / zz
            too_high = h > target
            lo = np.where(too_high, mid, lo)
            hi = np.where(too_high, hi, mid)
        b = np.exp(0.5 * (lo + hi)) / scale
        beta[rows] = b
        shift[rows] = sh
        z[rows] = np.exp(-b[:, None] * s).sum(axis=1)
    return beta, shift, z


def exact_kl(x, y, perplexity, cal=None):
    """cal: calibrate(x, perplexity), when several embeddings of the same points are evaluated."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n = x.shape[0]
    beta, shift, z = cal if cal is not None else calibrate(x, perplexity)
    norms = np.einsum("ij,ij->i", x, x)
    plogp = 0.0
    plogw = 0.0
    zq = 0.0
    for a in range(0, n, BLOCK):
        rows = np.arange(a, min(n, a + BLOCK))
        d = sq_dist_rows(x, norms, rows)
        pi = np.exp(-beta[rows, None] * (d - shift[rows, None])) / z[rows, None]
        pj = np.exp(-beta[None, :] * (d - shift[None, :])) / z[None, :]
        p = (pi + pj) / (2.0 * n)
        dy = ((y[rows, None, :] - y[None, :, :]) ** 2).sum(axis=2)
        w = 1.0 / (1.0 + dy)
        off = np.ones_like(p, dtype=bool)
        off[np.arange(len(rows)), rows] = False
        p = np.where(off, p, 0.0)
        w = np.where(off, w, 0.0)
        pos = p > 0
        plogp += float(np.sum(p[pos] * np.log(p[pos])))
        plogw += float(np.sum(p[pos] * np.log(w[pos])))
        zq += float(np.sum(w))
    return plogp - plogw + np.log(zq)


def run_opentsne(x, perplexity, seed, jobs):
    from openTSNE import TSNE

    n = x.shape[0]
    t = time.perf_counter()
    emb = TSNE(
        n_components=2,
        perplexity=perplexity,
        learning_rate=max(n / 12.0, 200.0),
        early_exaggeration_iter=250,
        early_exaggeration=12,
        n_iter=750,
        initialization="pca",
        initial_momentum=0.5,
        final_momentum=0.8,
        negative_gradient_method="fft",
        n_jobs=jobs,
        random_state=seed,
    ).fit(x)
    return np.asarray(emb, dtype=np.float64), time.perf_counter() - t


def run_sklearn(x, perplexity, seed, jobs, init="pca"):
    from sklearn.manifold import TSNE

    t = time.perf_counter()
    emb = TSNE(
        n_components=2,
        perplexity=perplexity,
        early_exaggeration=12.0,
        learning_rate="auto",
        max_iter=1000,
        init=init,
        method="barnes_hut",
        angle=0.5,
        n_jobs=jobs,
        random_state=seed,
    ).fit_transform(x)
    return np.asarray(emb, dtype=np.float64), time.perf_counter() - t


def entry(x, y, perplexity, cal=None, **extra):
    _, st = kde_statistics(y)
    return {**extra, "kl": exact_kl(x, y, perplexity, cal), **st}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=["kde", "kl", "tsne"])
    ap.add_argument("files", nargs="+")
    ap.add_argument("--perplexity", type=float, default=30.0)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--skip-opentsne", action="store_true")
    a = ap.parse_args()
    if a.cmd == "kde":
        density, st = kde_statistics(np.load(a.files[0]))
        out = {"density": density.tolist(), **st}
    elif a.cmd == "kl":
        out = {"kl": exact_kl(np.load(a.files[0]), np.load(a.files[1]), a.perplexity)}
    else:
        x = np.load(a.files[0]).astype(np.float64)
        cal = calibrate(x, a.perplexity)
        out = {"ours": [entry(x, np.load(f), a.perplexity, cal) for f in a.files[1:]]}
        if not a.skip_opentsne:
            y, t = run_opentsne(x, a.perplexity, 0, a.jobs)
            out["opentsne"] = entry(x, y, a.perplexity, cal, seed=0, time_s=t)
        if a.seeds > 0:
            y, t = run_sklearn(x, a.perplexity, 0, a.jobs)
            out["sklearn_pca"] = entry(x, y, a.perplexity, cal, seed=0, time_s=t)
        out["sklearn"] = []
        for seed in range(a.seeds):
            y, t = run_sklearn(x, a.perplexity, seed, a.jobs, init="random")
            out["sklearn"].append(entry(x, y, a.perplexity, cal, seed=seed, time_s=t))
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
