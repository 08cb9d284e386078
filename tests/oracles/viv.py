"""Independent numpy/scipy implementation of VIV (metrics.md sections 0 and 1), for the Rust tests.

Usage: viv.py LATENTS.npy LABELS.npy|none RIDGE TOL MAX_SWEEPS LOGIT_MEAN LOGIT_STD

Reads f32 latents (N, C, H, W) and integer labels (N,) (or none: one class of all samples), applies the
default `channel` normalization the way the library does (per-channel mean and unbiased std over
(N, H, W) in float64, then `(x - mean) * (1 / std)` in float32), fits every class's covariance as
Sigma_C (x) Sigma_S by flip-flop in float64 with numpy's own matrix routines (explicit per-sample sums
written with einsum, inverses from np.linalg.solve), and prints JSON with the per-class and averaged VIV
quantities. The logit-normal time average uses scipy.integrate.quad (adaptive Gauss-Kronrod), not
Gauss-Hermite.
"""

import json
import sys

import numpy as np
from scipy import integrate, special


def channel_normalize(x):
    n, c, h, w = x.shape
    x64 = x.astype(np.float64)
    mean = x64.mean(axis=(0, 2, 3))
    std = x64.std(axis=(0, 2, 3), ddof=1)
    scale = np.where((std > 0) & np.isfinite(std), 1.0 / np.where(std > 0, std, 1.0), 1.0)
    m32 = mean.astype(np.float32)[None, :, None, None]
    k32 = scale.astype(np.float32)[None, :, None, None]
    return ((x - m32) * k32).astype(np.float32)


def is_pd(f):
    try:
        np.linalg.cholesky(f)
        return True
    except np.linalg.LinAlgError:
        return False


def add_ridge(f, eps):
    r = eps * np.trace(f) / f.shape[0]
    return f + r * np.eye(f.shape[0]), r


def flip_flop(r, eps, tol, max_sweeps):
    """r: (N, C, S) float64 residuals. Returns (sigma_c, sigma_s, sweeps, ridge_c, ridge_s)."""
    n, c, s = r.shape
    ridge_c_on = (n - 1) * s < c
    ridge_s_on = (n - 1) * c < s
    sigma_s = np.eye(s)
    prev = None
    rc = rs = 0.0
    sweeps = 0
    for sweep in range(1, max_sweeps + 1):
        sweeps = sweep
        # Sigma_C = 1/(N S) sum_n R_n Sigma_S^{-1} R_n^T
        sinv_rt = np.linalg.solve(sigma_s, np.transpose(r, (0, 2, 1)))  # (N, S, C)
        sigma_c = np.einsum("ncs,nsd->cd", r, sinv_rt) / (n * s)
        sigma_c = 0.5 * (sigma_c + sigma_c.T)
        if not ridge_c_on and not is_pd(sigma_c):
            ridge_c_on = True
        if ridge_c_on:
            sigma_c, rc = add_ridge(sigma_c, eps)
        # Sigma_S = 1/(N C) sum_n R_n^T Sigma_C^{-1} R_n
        cinv_r = np.linalg.solve(sigma_c, r)  # (N, C, S)
        sigma_s = np.einsum("ncs,nct->st", r, cinv_r) / (n * c)
        sigma_s = 0.5 * (sigma_s + sigma_s.T)
        if not ridge_s_on and not is_pd(sigma_s):
            ridge_s_on = True
        if ridge_s_on:
            sigma_s, rs = add_ridge(sigma_s, eps)
        a = np.trace(sigma_s) / s
        sigma_s = sigma_s / a
        sigma_c = sigma_c * a
        scale = a
        converged = False
        if prev is not None:
            dc = np.linalg.norm(sigma_c - prev[0]) / np.linalg.norm(sigma_c)
            ds = np.linalg.norm(sigma_s - prev[1]) / np.linalg.norm(sigma_s)
            converged = max(dc, ds) < tol
        prev = (sigma_c, sigma_s)
        if converged:
            break
    return sigma_c, sigma_s, sweeps, (rc * scale if ridge_c_on else 0.0), (rs / scale if ridge_s_on else 0.0)


def v_of_t(lam, t):
    lam = lam[lam > 0]
    return float(np.sum(lam / ((1 - t) ** 2 + t**2 * lam)))


def logit_normal_expectation(lam, m, sd):
    lam = lam[lam > 0]

    def f(u):
        t = special.expit(u)
        return v_of_t(lam, t) * np.exp(-0.5 * ((u - m) / sd) ** 2) / (sd * np.sqrt(2 * np.pi))

    lo, hi = m - 14 * sd, m + 14 * sd
    val, _ = integrate.quad(f, lo, hi, epsabs=0, epsrel=1e-12, limit=400)
    return val


def main():
    lat_path, lab_path = sys.argv[1], sys.argv[2]
    eps, tol = float(sys.argv[3]), float(sys.argv[4])
    max_sweeps = int(sys.argv[5])
    m, sd = float(sys.argv[6]), float(sys.argv[7])
    x = np.load(lat_path)
    n, c, h, w = x.shape
    s, d = h * w, c * h * w
    z = channel_normalize(x).reshape(n, c, s)
    if lab_path == "none":
        groups = [(None, np.arange(n))]
    else:
        labels = np.load(lab_path).astype(np.int64)
        groups = [(int(k), np.nonzero(labels == k)[0]) for k in np.unique(labels)]
    ts = np.linspace(0.0, 1.0, 101)
    per_class, skipped, curves = [], [], []
    for label, idx in groups:
        if len(idx) < 2:
            skipped.append(label)
            continue
        xk = z[idx].astype(np.float64)
        r = xk - xk.mean(axis=0)
        sc, ss, sweeps, rc, rs = flip_flop(r, eps, tol, max_sweeps)
        lc = np.clip(np.linalg.eigvalsh(sc), 0, None)
        ls = np.clip(np.linalg.eigvalsh(ss), 0, None)
        lam = np.outer(lc, ls).ravel()
        viv = np.pi / 2 * np.sqrt(lc).sum() * np.sqrt(ls).sum()
        tv = lc.sum() * ls.sum()
        rho = np.sqrt(lam).sum() / np.sqrt(d * lam.sum())
        curves.append([v_of_t(lam, t) for t in ts])
        per_class.append(
            {
                "label": label,
                "n": int(len(idx)),
                "viv": float(viv),
                "total_variance": float(tv),
                "anisotropy": float(rho),
                "logit_normal": logit_normal_expectation(lam, m, sd),
                "sweeps": sweeps,
                "ridge_c": float(rc),
                "ridge_s": float(rs),
            }
        )
    k = len(per_class)
    mean = lambda key: float(np.mean([p[key] for p in per_class]))
    out = {
        "metrics": {
            "viv": mean("viv"),
            "viv_per_dim": mean("viv") / d,
            "viv_total_variance": mean("total_variance") / d,
            "viv_anisotropy": mean("anisotropy"),
            "viv_logit_normal": mean("logit_normal"),
        },
        "per_class": per_class,
        "skipped": skipped,
        "curve": np.mean(np.array(curves), axis=0).tolist() if k else [],
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
