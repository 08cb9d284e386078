#!/usr/bin/env python3
"""Independent reference of the built-in example's tokenizer (numpy only).

Reads the committed examples/fashion-mnist/images.u8 and labels.u8, applies the tokenizer with numpy
reshapes (pixels / 255 in float32, zero-pad 28 -> 32, pixel unshuffle by 2 as
torch.nn.functional.pixel_unshuffle: out[c*4 + i*2 + j, y, x] = in[c, 2y + i, 2x + j]) and prints the
SHA-256 of the latents (float32 little-endian) and of the max-pooled token masks, per-channel sums, a
few values, the foreground-token fraction and the class counts as JSON.

Usage: example_check.py EXAMPLE_DIR
"""

import hashlib
import json
import pathlib
import sys

import numpy as np


def main():
    root = pathlib.Path(sys.argv[1])
    img = np.frombuffer((root / "images.u8").read_bytes(), dtype=np.uint8).reshape(-1, 28, 28)
    lab = np.frombuffer((root / "labels.u8").read_bytes(), dtype=np.uint8)
    n = img.shape[0]

    x = img.astype(np.float32) / np.float32(255.0)
    x = np.pad(x, ((0, 0), (2, 2), (2, 2)))[:, None]  # (n, 1, 32, 32)
    # pixel unshuffle: (n, c, y, i, x, j) -> (n, c, i, j, y, x) -> (n, c*4, 16, 16)
    lat = x.reshape(n, 1, 16, 2, 16, 2).transpose(0, 1, 3, 5, 2, 4).reshape(n, 4, 16, 16)
    lat = np.ascontiguousarray(lat, dtype="<f4")

    fg_px = np.pad(img, ((0, 0), (2, 2), (2, 2))) != 0  # (n, 32, 32)
    fg_tok = fg_px.reshape(n, 16, 2, 16, 2).any(axis=(2, 4))  # max-pool to the 16 x 16 grid

    out = {
        "shape": list(lat.shape),
        "latents_sha256": hashlib.sha256(lat.tobytes()).hexdigest(),
        "mask_tokens_sha256": hashlib.sha256(fg_tok.astype(np.uint8).tobytes()).hexdigest(),
        "channel_sums": [float(v) for v in lat.astype(np.float64).sum(axis=(0, 2, 3))],
        "channel_pixel_sums": [int(v) for v in np.rint(lat.astype(np.float64) * 255).sum(axis=(0, 2, 3))],
        "values": [[i, c, y, xx, float(lat[i, c, y, xx])]
                   for (i, c, y, xx) in [(0, 0, 8, 8), (0, 3, 7, 9), (1, 1, 5, 5), (1999, 2, 10, 6), (17, 0, 0, 0)]],
        "fg_token_fraction": float(fg_tok.mean()),
        "fg_pixel_fraction": float(fg_px.mean()),
        "class_counts": np.bincount(lab, minlength=10).tolist(),
        "labels_head": lab[:10].tolist(),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
