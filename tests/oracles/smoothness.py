"""Reference values of the latent smoothness metrics (sec, local_corr), independent of diffusability.

SEC from its definition (spec section 4) with scipy.fft.dctn(norm="ortho"); local correlation after
zai-org/SSVAE `ssvae/modules/autoencoding/regularizers/calc_local_corr.py` (2x2 windows, renorm=True)
and its caller's per-channel standardization (`regularizers/__init__.py`), in numpy float64.

usage:
  smoothness.py dct MAP.npy                          2-D orthonormal DCT-II of one (h, w) map
  smoothness.py sec LATENTS.npy [--ratio 0.5]        SEC and its profile
  smoothness.py local_corr LATENTS.npy               SSVAE local correlation
LATENTS: (N, C, H, W), channel-normalized here (mean, unbiased std per channel) as the tool does.
Prints one JSON object.
"""

import argparse
import json

import numpy as np
import scipy.fft


def channel_normalize(x):
    mean = x.mean(axis=(0, 2, 3), keepdims=True)
    std = x.std(axis=(0, 2, 3), ddof=1, keepdims=True)
    std = np.where(std > 0, std, 1.0)
    return (x - mean) / std


def sec(z, ratio):
    n, c, h, w = z.shape
    f = scipy.fft.dctn(z, type=2, axes=(-2, -1), norm="ortho")
    e = (f**2).mean(axis=(0, 1))
    uu, vv = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    tau = ratio * ((h - 1) + (w - 1))
    total = e.sum()
    profile = [float(e[uu + vv == d].sum() / total) for d in range(h + w - 1)]
    return {"sec": float(e[uu + vv > tau].sum() / total), "tau": tau, "profile": profile}


def local_corr(z):
    # SSVAE works on (B, D, F, H, W); an image is one frame.
    mean = z.mean(axis=(0, 2, 3), keepdims=True)
    std = z.std(axis=(0, 2, 3), ddof=1, keepdims=True)
    z = (z - mean) / (std + 1e-6)
    b, d, h, w = z.shape
    t = z.reshape(b, d, h // 2, 2, w // 2, 2).transpose(0, 2, 4, 3, 5, 1)
    t = t.reshape(-1, 4, d)
    t = t - t.mean(axis=-1, keepdims=True)
    t = t / (np.linalg.norm(t, axis=-1, keepdims=True) + 1e-8)
    sim = t @ t.transpose(0, 2, 1)
    iu = np.triu_indices(4, k=1)
    return float(sim[:, iu[0], iu[1]].mean())


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["dct", "sec", "local_corr"])
    p.add_argument("path")
    p.add_argument("--ratio", type=float, default=0.5)
    a = p.parse_args()
    x = np.load(a.path).astype(np.float64)
    if a.mode == "dct":
        f = scipy.fft.dctn(x, type=2, norm="ortho")
        print(json.dumps({"coef": [float(v) for v in f.ravel()]}))
        return
    z = channel_normalize(x)
    if a.mode == "sec":
        print(json.dumps(sec(z, a.ratio)))
    else:
        print(json.dumps({"local_corr": local_corr(z)}))


if __name__ == "__main__":
    main()
