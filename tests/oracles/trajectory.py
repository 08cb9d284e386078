"""Independent numpy/scipy implementation of the trajectory measures (metrics.md section 10), for the
Rust tests.

Usage: trajectory.py TRAJ.npy LAYOUT TIMES.npy|none DIRECTION [LATENTS.npy LABELS.npy|none RIDGE TOL MAX_SWEEPS]

TRAJ holds the states x_0 (noise) .. x_K (sample), (K+1, B, C, H, W) for LAYOUT kbchw or (B, K+1, C, H, W)
for bkchw, any float dtype (read as float64). TIMES holds the K+1 times (none: uniform); with DIRECTION repa
they are t_repa (1 at the noise, 0 at the data) and t = 1 - t_repa. Everything is vectorized over samples
and segments in float64:

    d_k = x_{k+1} - x_k,  straightness = mean_b mean_k cos(d_k, d_{k+1}),
    efficiency = mean_b |x_K - x_0| / sum_k |d_k|,  length_ratio_k = mean_b |d_k| / (dt_k |x_K - x_0|).

With LATENTS, the class-conditional Kronecker Gaussian model is fitted by the flip-flop of viv.py (the
VIV oracle, itself independent of the library) after the default channel normalization, and the mean over
classes of V_k(t) = sum lam / ((1-t)^2 + t^2 lam) is evaluated at the segment midpoints; its Pearson r
with the length ratio comes from scipy.stats.pearsonr. Prints JSON.
"""

import json
import os
import sys

import numpy as np
from scipy import stats

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from viv import channel_normalize, flip_flop, v_of_t  # noqa: E402


def measures(x, t):
    """x: (K+1, B, D) float64, t: (K+1,). Returns a dict of the three quantities."""
    k1 = x.shape[0]
    d = np.diff(x, axis=0)  # (K, B, D)
    seg = np.linalg.norm(d, axis=2)  # (K, B)
    out = {"mean_step_norm": seg.mean(axis=1).tolist()}
    if k1 >= 3:
        dots = np.einsum("kbd,kbd->kb", d[:-1], d[1:])
        den = seg[:-1] * seg[1:]
        ok = den > 0
        cos = np.where(ok, dots / np.where(ok, den, 1.0), 0.0)
        pairs = ok.sum(axis=0)
        have = pairs > 0
        if have.any():
            out["straightness"] = float(np.mean(cos.sum(axis=0)[have] / pairs[have]))
    chord = np.linalg.norm(x[-1] - x[0], axis=1)  # (B,)
    moving = chord > 0
    if moving.any():
        out["efficiency"] = float(np.mean(chord[moving] / seg[:, moving].sum(axis=0)))
        dt = np.diff(t)
        out["length_ratio"] = (seg[:, moving] / (dt[:, None] * chord[None, moving])).mean(axis=1).tolist()
    return out


def main():
    traj, layout, times, direction = sys.argv[1:5]
    x = np.load(traj).astype(np.float64)
    if layout == "bkchw":
        x = np.swapaxes(x, 0, 1)
    k1, b = x.shape[:2]
    x = x.reshape(k1, b, -1)
    if times == "none":
        t = np.arange(k1) / (k1 - 1)
    else:
        t = np.load(times).astype(np.float64).ravel()
        if direction == "repa":
            t = 1.0 - t
    out = measures(x, t)
    out["times"] = t.tolist()
    mid = 0.5 * (t[:-1] + t[1:])
    out["t_mid"] = mid.tolist()
    if len(sys.argv) > 5:
        lat, lab = sys.argv[5], sys.argv[6]
        eps, tol, max_sweeps = float(sys.argv[7]), float(sys.argv[8]), int(sys.argv[9])
        z = np.load(lat)
        n, c, h, w = z.shape
        z = channel_normalize(z).reshape(n, c, h * w)
        if lab == "none":
            groups = [np.arange(n)]
        else:
            labels = np.load(lab).astype(np.int64)
            groups = [np.nonzero(labels == k)[0] for k in np.unique(labels)]
        curves = []
        for idx in groups:
            if len(idx) < 2:
                continue
            zk = z[idx].astype(np.float64)
            sc, ss, _, _, _ = flip_flop(zk - zk.mean(axis=0), eps, tol, max_sweeps)
            lc = np.clip(np.linalg.eigvalsh(sc), 0, None)
            ls = np.clip(np.linalg.eigvalsh(ss), 0, None)
            lam = np.outer(lc, ls).ravel()
            curves.append([v_of_t(lam, tm) for tm in mid])
        curve = np.mean(np.array(curves), axis=0)
        out["viv_curve"] = curve.tolist()
        if "length_ratio" in out and len(mid) >= 2:
            out["viv_length_ratio_r"] = float(stats.pearsonr(curve, out["length_ratio"]).statistic)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
