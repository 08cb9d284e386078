#!/usr/bin/env python3
"""Reference values for the Fréchet distance (numpy/scipy only; never imports diffusability).

Usage:
  fd.py cases DIR      writes the test inputs into DIR and prints, per case, the expected values:
                       - `sqrtm`: pytorch-fid's formula, ||mu1 - mu2||^2 + tr S1 + tr S2 - 2 tr sqrtm(S1 S2)
                         (scipy.linalg.sqrtm, real part), with the covariances from numpy.cov;
                       - `exact`: where sqrtm is unreliable (singular covariances), an exact route:
                         * features with N < F: tr sqrt(sqrt(S1) S2 sqrt(S1)) is the nuclear norm of
                           Xb_c Xa_c^T / sqrt((Na - 1)(Nb - 1)) (centred data, an Nb x Na matrix), whose
                           singular values numpy's SVD computes backward-stably, with no square roots of
                           rounding-level eigenvalues;
                         * commuting diagonal covariances: sum (sqrt a - sqrt b)^2 + ||mu1 - mu2||^2.
  fd.py stats FEATURES.npy STATS.npz
                       compares a statistics file with numpy's mean / cov(rowvar=False) of the features
                       and prints the largest relative differences.
"""

import json
import os
import sys
import warnings

import numpy as np
import scipy.linalg


def cov_stats(x):
    x = np.asarray(x, dtype=np.float64)
    return x.mean(axis=0), np.cov(x, rowvar=False)


def fd_sqrtm(mu1, s1, mu2, s2):
    """pytorch-fid's calculate_frechet_distance, reimplemented from its documented formula."""
    diff = mu1 - mu2
    covmean = scipy.linalg.sqrtm(s1.dot(s2))
    finite = bool(np.isfinite(covmean).all())
    if not finite:
        off = np.eye(s1.shape[0]) * 1e-6
        covmean = scipy.linalg.sqrtm((s1 + off).dot(s2 + off))
    imag = float(np.max(np.abs(np.imag(covmean)))) if np.iscomplexobj(covmean) else 0.0
    covmean = np.real(covmean)
    # Relative residual of the square root: how well the reference itself is conditioned here.
    resid = float(np.linalg.norm(covmean @ covmean - s1 @ s2) / max(np.linalg.norm(s1 @ s2), 1e-300))
    fd = float(diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))
    return {"fd": fd, "finite": finite, "max_imag": imag, "residual": resid}


def fd_nuclear(xa, xb):
    xa = np.asarray(xa, dtype=np.float64)
    xb = np.asarray(xb, dtype=np.float64)
    na, nb = len(xa), len(xb)
    ca = xa - xa.mean(0)
    cb = xb - xb.mean(0)
    sv = np.linalg.svd(cb @ ca.T, compute_uv=False) / np.sqrt((na - 1) * (nb - 1))
    diff = xa.mean(0) - xb.mean(0)
    tra = (ca * ca).sum() / (na - 1)
    trb = (cb * cb).sum() / (nb - 1)
    return float(diff.dot(diff) + tra + trb - 2 * sv.sum())


def random_cov(rng, f, spread):
    q, _ = np.linalg.qr(rng.standard_normal((f, f)))
    lam = np.exp(rng.uniform(-spread, spread, f))
    return (q * lam) @ q.T


def cases(d):
    rng = np.random.default_rng(20260603)
    out = {}

    # 1. Well conditioned: N >> F, full-rank covariances, f32 features (what Inception gives).
    f = 48
    la = np.linalg.cholesky(random_cov(rng, f, 1.0))
    lb = np.linalg.cholesky(random_cov(rng, f, 1.0))
    xa = (rng.standard_normal((3000, f)) @ la.T + rng.normal(0, 0.5, f)).astype(np.float32)
    xb = (rng.standard_normal((2500, f)) @ lb.T + rng.normal(0, 0.5, f)).astype(np.float32)
    np.save(os.path.join(d, "well_a.npy"), xa)
    np.save(os.path.join(d, "well_b.npy"), xb)
    mu_a, s_a = cov_stats(xa)
    mu_b, s_b = cov_stats(xb)
    np.savez(os.path.join(d, "well_b_stats.npz"), mu=mu_b, sigma=s_b)
    out["well"] = fd_sqrtm(mu_a, s_a, mu_b, s_b)
    out["well"]["trace_a"] = float(np.trace(s_a))

    # 2. Identical sets: FD = 0 up to rounding.
    out["identical"] = {"trace": float(np.trace(s_a)), **fd_sqrtm(mu_a, s_a, mu_a, s_a)}

    # 3. N < F on both sides: singular covariances (rank N - 1).
    f = 64
    sa = rng.standard_normal((20, f)) * np.linspace(0.5, 2.0, f) + 1.0
    sb = rng.standard_normal((30, f)) * np.linspace(2.0, 0.5, f)
    np.save(os.path.join(d, "small_a.npy"), sa)
    np.save(os.path.join(d, "small_b.npy"), sb)
    mu_a, s_a = cov_stats(sa)
    mu_b, s_b = cov_stats(sb)
    out["small"] = {"exact": fd_nuclear(sa, sb), "sqrtm": fd_sqrtm(mu_a, s_a, mu_b, s_b)}
    out["small_self"] = {"exact": fd_nuclear(sa, sa)}

    # 4. Commuting diagonal covariances with zero variances (singular), as statistics files.
    a = np.array([4.0, 0.0, 1.0, 9.0, 0.0, 2.5, 0.0, 1e-3])
    b = np.array([1.0, 2.0, 0.0, 9.0, 0.0, 0.5, 3.0, 1e-3])
    m1 = np.array([1.0, 0.0, 0.0, 0.0, 2.0, -1.0, 0.5, 0.0])
    m2 = np.zeros(8)
    # A random rotation keeps them commuting (same eigenvectors) but not diagonal.
    q, _ = np.linalg.qr(rng.standard_normal((8, 8)))
    np.savez(os.path.join(d, "diag_a.npz"), mu=m1, sigma=np.diag(a))
    np.savez(os.path.join(d, "diag_b.npz"), mu=m2, sigma=np.diag(b))
    np.savez(os.path.join(d, "rot_a.npz"), mu=q @ m1, sigma=(q * a) @ q.T)
    np.savez(os.path.join(d, "rot_b.npz"), mu=q @ m2, sigma=(q * b) @ q.T)
    closed = float(((np.sqrt(a) - np.sqrt(b)) ** 2).sum() + ((m1 - m2) ** 2).sum())
    out["diag"] = {"exact": closed, "sqrtm": fd_sqrtm(m1, np.diag(a), m2, np.diag(b))}
    out["rot"] = {"exact": closed, "sqrtm": fd_sqrtm(q @ m1, (q * a) @ q.T, q @ m2, (q * b) @ q.T)}
    return out


def stats(features, path):
    x = np.load(features)
    mu, s = cov_stats(x)
    z = np.load(path)
    rel = lambda p, q: float(np.max(np.abs(p - q)) / max(np.max(np.abs(q)), 1e-300))
    return {
        "keys": sorted(z.files),
        "mu_dtype": str(z["mu"].dtype),
        "sigma_dtype": str(z["sigma"].dtype),
        "sigma_shape": list(z["sigma"].shape),
        "mu_rel": rel(z["mu"], mu),
        "sigma_rel": rel(z["sigma"], s),
    }


def main():
    # scipy warns on singular inputs; the values it returns are what the tests compare against.
    warnings.simplefilter("ignore")
    cmd = sys.argv[1]
    if cmd == "cases":
        res = cases(sys.argv[2])
    elif cmd == "stats":
        res = stats(sys.argv[2], sys.argv[3])
    else:
        sys.exit(f"unknown command {cmd}")
    print(json.dumps(res))


if __name__ == "__main__":
    main()
