"""Load a large latents .npy and compute per-channel mean and std: numpy beside diffusability.

numpy side: what a numpy user writes -- np.load, then mean and ddof=1 std over axes (0, 2, 3) with
float64 accumulation -- run in a subprocess so that its peak RSS (resource.getrusage) is its own.
Our side: `cargo bench -p diffusability --bench read_pass -- PATH` (io::load with every input check,
NaN/Inf scan and SHA-256 digest, then the per-channel moments pass).

Each side runs twice and the second (warm page cache) run is reported. Prints a table and exits 1 if
the two results differ by more than 1e-6 relative.

Usage: python bench/read_pass.py [--n 50000]
The file bench/data/latents_{N}x32x16x16.npy (1.6 GB for N = 50000) is created if missing, written in
chunks; bench/data/ is not tracked, delete it when done.
"""

import argparse
import json
import os
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
C, H, W = 32, 16, 16

NUMPY_SIDE = r"""
import json, resource, sys, time
import numpy as np
path = sys.argv[1]
t0 = time.perf_counter()
x = np.load(path)
t1 = time.perf_counter()
mean = x.mean(axis=(0, 2, 3), dtype=np.float64)
std = x.std(axis=(0, 2, 3), ddof=1, dtype=np.float64)
t2 = time.perf_counter()
print(json.dumps({
    "load_s": t1 - t0, "pass_s": t2 - t1, "total_s": t2 - t0,
    "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    "mean": mean.tolist(), "std": std.tolist(),
}))
"""


def make(path, n):
    """Random f32 latents with a different mean and scale per channel, written 1000 samples at a time."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".part"
    rng = np.random.default_rng(0)
    shift = rng.uniform(-2, 2, size=(1, C, 1, 1)).astype(np.float32)
    scale = rng.uniform(0.5, 3, size=(1, C, 1, 1)).astype(np.float32)
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype="<f4", shape=(n, C, H, W))
    for a in range(0, n, 1000):
        b = min(n, a + 1000)
        out[a:b] = rng.standard_normal((b - a, C, H, W), dtype=np.float32) * scale + shift
    out.flush()
    del out
    os.replace(tmp, path)


def run_numpy(path):
    r = subprocess.run([sys.executable, "-c", NUMPY_SIDE, path], capture_output=True, text=True, check=True)
    return json.loads(r.stdout)


def run_ours(path):
    r = subprocess.run(
        ["cargo", "bench", "-q", "-p", "diffusability", "--bench", "read_pass", "--", path],
        cwd=ROOT, capture_output=True, text=True,
    )
    if r.returncode != 0:
        sys.exit(f"cargo bench failed:\n{r.stderr}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=50000)
    args = ap.parse_args()
    path = os.path.join(ROOT, "bench", "data", f"latents_{args.n}x{C}x{H}x{W}.npy")
    if not os.path.exists(path):
        print(f"writing {path} ...", file=sys.stderr)
        make(path, args.n)
    size = os.path.getsize(path)

    runs_np = [run_numpy(path) for _ in range(2)]
    runs_ours = [run_ours(path) for _ in range(2)]
    npy, ours = runs_np[-1], runs_ours[-1]

    gib = 2.0**30
    print(f"file: {path} ({size / gib:.2f} GiB, shape ({args.n}, {C}, {H}, {W}) f32)")
    print(f"{'':28}{'numpy':>12}{'diffusability':>16}{'ratio':>10}")
    for key, label in [("load_s", "load (s)"), ("pass_s", "mean+std pass (s)"), ("total_s", "total (s)")]:
        print(f"{label:28}{npy[key]:12.3f}{ours[key]:16.3f}{npy[key] / ours[key]:10.2f}x")
    print(f"{'  of which sha256 (s)':28}{'-':>12}{ours['digest_s']:16.3f}")
    print(f"{'peak RSS / file size':28}{npy['peak_rss_bytes'] / size:12.2f}{ours['peak_rss_bytes'] / size:16.2f}")
    print(f"{'peak RSS (GiB)':28}{npy['peak_rss_bytes'] / gib:12.2f}{ours['peak_rss_bytes'] / gib:16.2f}")
    print(f"first runs (cold-ish), total s: numpy {runs_np[0]['total_s']:.3f}, ours {runs_ours[0]['total_s']:.3f}")
    print(f"ours: memory-mapped={ours['mapped']}, threads={ours['threads']}")

    worst = 0.0
    for k in ("mean", "std"):
        a, b = np.array(npy[k]), np.array(ours[k])
        worst = max(worst, float(np.max(np.abs(a - b) / np.maximum(np.abs(a), 1e-300))))
    ok = worst <= 1e-6
    print(f"results agree: max relative difference {worst:.2e} ({'ok' if ok else 'FAIL'}, tolerance 1e-6)")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
