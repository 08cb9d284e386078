"""Reference values of the iREPA spatial metrics (lds, cds, srss, rmsc), independent of diffusability.

Written from the metric specification (section 3) and End2End-Diffusion/iREPA
`metrics/spatial_metrics.py` (the metrics) and `metrics/spatial_metrics_comparison.py` (mask max-pooling
and the 64/64 image filter, here a quarter of the tokens), in numpy float64.

usage: spatial.py LATENTS.npy [--masks MASKS.npy] [--lds-far 6] [--cds-dmax 8] [--srss-dpos 1]
                  [--srss-dneg 6] [--normalize channel|none]
LATENTS: (N, C, H, W); MASKS: (N, h, w) with h, w multiples of H, W (nonzero = foreground).
Prints one JSON object.
"""

import argparse
import json

import numpy as np


def channel_normalize(x):
    mean = x.mean(axis=(0, 2, 3), keepdims=True)
    std = x.std(axis=(0, 2, 3), ddof=1, keepdims=True)
    std = np.where(std > 0, std, 1.0)
    return (x - mean) / std


def unit_tokens(z):
    n, c, h, w = z.shape
    u = z.reshape(n, c, h * w).transpose(0, 2, 1)  # (N, T, C)
    norm = np.linalg.norm(u, axis=-1, keepdims=True)
    return u / np.maximum(norm, 1e-8)


def manhattan(h, w):
    yy, xx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    c = np.stack([yy.ravel(), xx.ravel()], axis=1)
    return np.abs(c[:, None, :] - c[None, :, :]).sum(-1)


def lds(u, h, w, far_dist):
    n, t, c = u.shape
    uhw = u.reshape(n, h, w, c)
    up = (uhw[:, 1:] * uhw[:, :-1]).sum(-1).reshape(n, -1)
    left = (uhw[:, :, 1:] * uhw[:, :, :-1]).sum(-1).reshape(n, -1)
    local = np.concatenate([up, left], axis=1).mean(axis=1)
    g = np.einsum("btd,bsd->bts", u, u)
    dist = manhattan(h, w)
    far_mask = (dist >= far_dist) & (dist > 0)
    denom = max(far_mask.sum(), 1)
    far = (g * far_mask).sum(axis=(1, 2)) / denom
    return local - far, local, far


def cds(u, h, w, dmax):
    g = np.einsum("btd,bsd->bts", u, u)
    dist = manhattan(h, w)
    sims, ds = [], []
    for d in range(1, dmax + 1):
        m = dist == d
        if m.any():
            sims.append(g[:, m].mean(axis=1))
            ds.append(d)
    if not sims:
        return np.zeros(u.shape[0]), [], []
    s = np.stack(sims, axis=1)
    x0 = np.array(ds, dtype=np.float64)
    x0 = x0 - x0.mean()
    denom = max(x0 @ x0, 1e-12)
    b = ((s - s.mean(axis=1, keepdims=True)) @ x0) / denom
    return -b, ds, s.mean(axis=0)


def pool_masks(m, h, w):
    n, mh, mw = m.shape
    fy, fx = mh // h, mw // w
    return (m != 0).reshape(n, h, fy, w, fx).any(axis=(2, 4)).reshape(n, h * w)


def srss(u, h, w, fg_all, d_pos, d_neg):
    n, t, _ = u.shape
    need = int(np.ceil(t / 4))
    pos_counts = fg_all.sum(axis=1)
    neg_counts = t - pos_counts
    keep = (pos_counts >= need) & (neg_counts >= need)
    few_fg = int((pos_counts < need).sum())
    few_bg = int(((pos_counts >= need) & (neg_counts < need)).sum())
    dist = manhattan(h, w)
    pos_dist = (dist <= d_pos) & (dist >= 1)
    neg_dist = dist >= d_neg
    vals = []
    for b in np.nonzero(keep)[0]:
        fg = fg_all[b]
        if fg.sum() < 2 or (~fg).sum() < 1:
            vals.append(np.nan)
            continue
        g = u[b] @ u[b].T
        pos_mask = (fg[:, None] & fg[None, :]) & pos_dist
        neg_mask = (fg[:, None] & (~fg)[None, :]) & neg_dist
        pc = pos_mask.sum(axis=1)
        nc = neg_mask.sum(axis=1)
        pm = (g * pos_mask).sum(axis=1) / np.maximum(pc, 1)
        nm = (g * neg_mask).sum(axis=1) / np.maximum(nc, 1)
        valid = fg & (pc > 0) & (nc > 0)
        vals.append((pm[valid] - nm[valid]).mean() if valid.any() else np.nan)
    vals = np.array(vals)
    used = int(np.isfinite(vals).sum())
    return {
        "srss": float(np.nanmean(vals)) if used else None,
        "images_used": used,
        "few_foreground": few_fg,
        "few_background": few_bg,
        "no_valid_anchor": int(len(vals) - used),
        "min_tokens": need,
    }


def rmsc(u):
    xc = u - u.mean(axis=1, keepdims=True)
    return np.sqrt((xc**2).sum(-1).mean(axis=1))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("latents")
    p.add_argument("--masks")
    p.add_argument("--lds-far", type=int, default=6)
    p.add_argument("--cds-dmax", type=int, default=8)
    p.add_argument("--srss-dpos", type=int, default=1)
    p.add_argument("--srss-dneg", type=int, default=6)
    p.add_argument("--normalize", default="channel", choices=["channel", "none"])
    a = p.parse_args()

    x = np.load(a.latents).astype(np.float64)
    n, c, h, w = x.shape
    z = channel_normalize(x) if a.normalize == "channel" else x
    u = unit_tokens(z)
    out = {}
    l, local, far = lds(u, h, w, a.lds_far)
    out["lds"] = float(l.mean())
    out["lds_local"] = float(local.mean())
    out["lds_far"] = float(far.mean())
    cv, ds, curve = cds(u, h, w, a.cds_dmax)
    out["cds"] = float(cv.mean())
    out["cds_d"] = ds
    out["cds_s_d"] = [float(v) for v in curve]
    out["rmsc"] = float(rmsc(u).mean())
    if a.masks:
        fg = pool_masks(np.load(a.masks), h, w)
        out["srss"] = srss(u, h, w, fg, a.srss_dpos, a.srss_dneg)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
