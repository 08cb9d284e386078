#!/usr/bin/env python3
"""Make the built-in example data set: a class-balanced subset of the Fashion-MNIST test set.

Reads the gzip'd IDX files of the test set (Debian package `dataset-fashion-mnist`:
/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz), keeps the
first PER_CLASS images of each of the 10 classes in file order, and writes them, still in file order
(classes interleaved as in the test set), as

    OUT/images.u8   raw bytes, N x 28 x 28 pixels (row-major), N = 10 * PER_CLASS
    OUT/labels.u8   raw bytes, N labels 0..9

Needs numpy only. Usage: python3 scripts/make_example.py [--source DIR] [--out DIR] [--per-class 200]
"""

import argparse
import gzip
import hashlib
import json
import pathlib

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
IMAGES = "t10k-images-idx3-ubyte.gz"
LABELS = "t10k-labels-idx1-ubyte.gz"


def read_idx(path, magic, ndim):
    """An IDX file (big-endian header: magic, then one u32 per dimension; then u8 values)."""
    raw = gzip.open(path, "rb").read()
    head = np.frombuffer(raw[: 4 * (1 + ndim)], dtype=">u4")
    if head[0] != magic:
        raise SystemExit(f"{path}: magic number {head[0]}, expected {magic}")
    shape = tuple(int(v) for v in head[1:])
    data = np.frombuffer(raw[4 * (1 + ndim):], dtype=np.uint8)
    if data.size != int(np.prod(shape)):
        raise SystemExit(f"{path}: {data.size} values, expected {np.prod(shape)} for shape {shape}")
    return data.reshape(shape)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--out", default=str(ROOT / "examples" / "fashion-mnist"))
    ap.add_argument("--per-class", type=int, default=200)
    args = ap.parse_args()

    src = pathlib.Path(args.source)
    images = read_idx(src / IMAGES, 2051, 3)
    labels = read_idx(src / LABELS, 2049, 1)
    if images.shape[1:] != (28, 28) or images.shape[0] != labels.shape[0]:
        raise SystemExit(f"unexpected shapes: images {images.shape}, labels {labels.shape}")

    keep = []
    for k in range(10):
        idx = np.flatnonzero(labels == k)[: args.per_class]
        if idx.size < args.per_class:
            raise SystemExit(f"class {k} has only {idx.size} test images, expected {args.per_class}")
        keep.append(idx)
    keep = np.sort(np.concatenate(keep))  # file order

    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    img_bytes = np.ascontiguousarray(images[keep]).tobytes()
    lab_bytes = np.ascontiguousarray(labels[keep]).tobytes()
    (out / "images.u8").write_bytes(img_bytes)
    (out / "labels.u8").write_bytes(lab_bytes)
    print(json.dumps({
        "images": len(keep),
        "first_index": int(keep[0]),
        "last_index": int(keep[-1]),
        "images_sha256": hashlib.sha256(img_bytes).hexdigest(),
        "labels_sha256": hashlib.sha256(lab_bytes).hexdigest(),
    }, indent=1))


if __name__ == "__main__":
    main()
