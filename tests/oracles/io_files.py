"""Writes arrays the way numpy users do (Fortran order, big-endian, f16, f64, bfloat16, savez,
savez_compressed, safetensors) into the directory given as the only argument, and prints JSON with the
values numpy reads back from each file, so that the Rust readers can be checked against numpy itself.

Usage: python io_files.py OUT_DIR

Output: {"latents": {file: {"key", "shape", "dtype", "values", "f32"}}, "labels": {file: [...]},
         "masks": {file: {"shape", "pooled"}}, "grid": [H, W], "n": N}
`values` are the stored values as float64 (exact for f16/bf16/f32/f64); `f32` the same values rounded
to float32 by numpy (round to nearest even); `pooled` the masks max-pooled onto the latent grid.
"""

import json
import os
import sys

import ml_dtypes
import numpy as np
import safetensors.numpy

N, C, H, W = 5, 3, 4, 4

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(0)
x32 = rng.standard_normal((N, C, H, W)).astype(np.float32)
x64 = rng.standard_normal((N, C, H, W)) * 3.0  # float64 values that float32 cannot hold exactly

result = {"latents": {}, "labels": {}, "masks": {}, "grid": [H, W], "n": N}


def latents(name, arr, key=None):
    """Records what numpy reads back from `name`."""
    path = os.path.join(out, name)
    if name.endswith(".npy"):
        back = np.load(path)
    elif name.endswith(".npz"):
        with np.load(path) as z:
            back = z[key]
    else:
        back = safetensors.numpy.load_file(path)[key] if arr.dtype != ml_dtypes.bfloat16 else arr
    if back.dtype.kind == "V":  # numpy reads bfloat16 back as a 2-byte void
        back = back.view(ml_dtypes.bfloat16)
    assert back.shape == arr.shape and np.array_equal(back.astype(np.float64), arr.astype(np.float64))
    result["latents"][name] = {
        "key": key,
        "shape": list(back.shape),
        "dtype": back.dtype.name,
        "values": back.astype(np.float64).ravel(order="C").tolist(),
        "f32": back.astype(np.float32).astype(np.float64).ravel(order="C").tolist(),
    }


np.save(os.path.join(out, "c_f4.npy"), x32)
latents("c_f4.npy", x32)
np.save(os.path.join(out, "fortran_f4.npy"), np.asfortranarray(x32))
latents("fortran_f4.npy", x32)
np.save(os.path.join(out, "big_f4.npy"), x32.astype(">f4"))
latents("big_f4.npy", x32)
np.save(os.path.join(out, "big_f8_fortran.npy"), np.asfortranarray(x64.astype(">f8")))
latents("big_f8_fortran.npy", x64)
np.save(os.path.join(out, "f8.npy"), x64)
latents("f8.npy", x64)
x16 = x32.astype(np.float16)
np.save(os.path.join(out, "f2.npy"), x16)
latents("f2.npy", x16)
xb = x32.astype(ml_dtypes.bfloat16)
np.save(os.path.join(out, "bf16.npy"), xb)
latents("bf16.npy", xb)
np.savez(os.path.join(out, "savez_positional.npz"), x32)
latents("savez_positional.npz", x32, "arr_0")

# Labels of several integer dtypes and byte orders; (N, 1) is accepted as (N,).
labels = {
    "labels_i8.npy": np.array([-3, 7, -3, 0, 127], dtype=np.int8),
    "labels_u16.npy": np.array([65535, 1, 2, 1, 0], dtype=np.uint16),
    "labels_i32_big_col.npy": np.array([[5], [-100000], [5], [9], [2**31 - 1]], dtype=">i4"),
    "labels_u64.npy": np.array([2**63 - 1, 0, 2**62, 1, 2**63 - 1], dtype=np.uint64),
}
for name, arr in labels.items():
    np.save(os.path.join(out, name), arr)
    result["labels"][name] = [int(v) for v in np.load(os.path.join(out, name)).reshape(-1)]


def pooled(m):
    """Max-pool of nonzero pixels onto the H x W grid, per sample, row-major."""
    m = np.asarray(m).reshape(N, m.shape[-2], m.shape[-1]) != 0
    fy, fx = m.shape[1] // H, m.shape[2] // W
    return m.reshape(N, H, fy, W, fx).any(axis=(2, 4)).ravel().tolist()


masks = {
    "masks_bool.npy": rng.random((N, 8, 8)) < 0.1,
    "masks_u8_n1hw.npy": ((rng.random((N, 1, 8, 8)) < 0.1) * 3).astype(np.uint8),
    "masks_f4_fortran.npy": np.asfortranarray(
        np.where(rng.random((N, 16, 16)) < 0.05, rng.choice([0.5, -1.0], (N, 16, 16)), 0.0).astype(np.float32)
    ),
}
for name, m in masks.items():
    np.save(os.path.join(out, name), m)
    back = np.load(os.path.join(out, name))
    result["masks"][name] = {"shape": list(back.shape), "pooled": pooled(back)}

# One compressed archive with all three keys, as numpy.savez_compressed writes it.
lab = labels["labels_i8.npy"]
msk = masks["masks_bool.npy"]
np.savez_compressed(os.path.join(out, "all_compressed.npz"), latents=x32, labels=lab, masks=msk)
latents("all_compressed.npz", x32, "latents")
result["labels"]["all_compressed.npz"] = [int(v) for v in lab]
result["masks"]["all_compressed.npz"] = {"shape": list(msk.shape), "pooled": pooled(msk)}

# bfloat16 latents with labels in safetensors, as LightningDiT-style shards.
safetensors.numpy.save_file(
    {"latents": xb, "labels": lab.astype(np.int64)}, os.path.join(out, "bf16.safetensors")
)
latents("bf16.safetensors", xb, "latents")
result["labels"]["bf16.safetensors"] = [int(v) for v in lab]

json.dump(result, sys.stdout)
