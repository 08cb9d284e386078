"""Fréchet distance of two feature sets: the scipy sqrtm route beside diffusability, same inputs and
thread count.

scipy side (pytorch-fid's formula, what FID code does): np.load, mu = mean, sigma = np.cov(rowvar=False),
then ||mu1 - mu2||^2 + tr S1 + tr S2 - 2 tr Re sqrtm(S1 @ S2) with scipy.linalg.sqrtm; run in a
subprocess with OMP/OPENBLAS/MKL_NUM_THREADS set to the thread count.
Our side: `cargo bench -p diffusability --bench fd -- A B --threads T` (read, f64 blocked covariance,
then the symmetric eigen form).

Both report two stages: statistics (load + mean + covariance) and the distance from the statistics.
Prints a table and exits 1 if the two distances differ by more than 1e-6 relative.

Usage: python bench/fd.py [--n 10000] [--f 2048] [--threads 2]
Inputs bench/data/fd_{a,b}_{N}x{F}.npy (f32) are created if missing; bench/data/ is not tracked.
"""

import argparse
import json
import os
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCIPY_SIDE = r"""
import json, sys, time, warnings
import numpy as np, scipy.linalg
warnings.simplefilter("ignore")
a, b = sys.argv[1], sys.argv[2]
t0 = time.perf_counter()
xa = np.load(a).astype(np.float64)
xb = np.load(b).astype(np.float64)
mu1, s1 = xa.mean(0), np.cov(xa, rowvar=False)
mu2, s2 = xb.mean(0), np.cov(xb, rowvar=False)
t1 = time.perf_counter()
diff = mu1 - mu2
covmean = scipy.linalg.sqrtm(s1.dot(s2))
if not np.isfinite(covmean).all():
    off = np.eye(s1.shape[0]) * 1e-6
    covmean = scipy.linalg.sqrtm((s1 + off).dot(s2 + off))
fd = float(diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * np.trace(np.real(covmean)))
t2 = time.perf_counter()
print(json.dumps({"fd": fd, "stats_s": t1 - t0, "fd_s": t2 - t1, "total_s": t2 - t0}))
"""


def make(path, n, f, seed):
    """Features with a decaying spectrum and a shared random basis, like pooled network features."""
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(np.random.default_rng(0).standard_normal((f, f)))[0]
    scale = 1.0 / np.sqrt(1.0 + np.arange(f) / 8.0)
    tmp = path + ".part"
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype="<f4", shape=(n, f))
    for a in range(0, n, 1000):
        b = min(n, a + 1000)
        z = rng.standard_normal((b - a, f)) * scale * (1.0 + 0.1 * seed)
        out[a:b] = (z @ basis.T + 0.05 * seed).astype(np.float32)
    out.flush()
    del out
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--f", type=int, default=2048)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    data = os.path.join(ROOT, "bench", "data")
    os.makedirs(data, exist_ok=True)
    paths = []
    for name, seed in (("a", 1), ("b", 2)):
        p = os.path.join(data, f"fd_{name}_{args.n}x{args.f}.npy")
        if not os.path.exists(p):
            print(f"writing {p} ...", file=sys.stderr)
            make(p, args.n, args.f, seed)
        paths.append(p)

    t = str(args.threads)
    env = dict(os.environ, OMP_NUM_THREADS=t, OPENBLAS_NUM_THREADS=t, MKL_NUM_THREADS=t)
    r = subprocess.run([sys.executable, "-c", SCIPY_SIDE, *paths], capture_output=True, text=True,
                       check=True, env=env)
    sp = json.loads(r.stdout)
    r = subprocess.run(["cargo", "bench", "-q", "-p", "diffusability", "--bench", "fd", "--", *paths,
                        "--threads", t], cwd=ROOT, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"cargo bench failed:\n{r.stderr}")
    ours = json.loads(r.stdout.strip().splitlines()[-1])

    print(f"features: 2 x ({args.n}, {args.f}) f32, threads {args.threads}")
    print(f"{'':34}{'scipy sqrtm':>12}{'diffusability':>16}{'ratio':>10}")
    for key, label in [("stats_s", "load + mean + covariance (s)"), ("fd_s", "distance from statistics (s)"),
                       ("total_s", "total (s)")]:
        print(f"{label:34}{sp[key]:12.3f}{ours[key]:16.3f}{sp[key] / ours[key]:10.2f}x")
    d = abs(sp["fd"] - ours["fd"]) / abs(sp["fd"])
    ok = d <= 1e-6
    print(f"fd: scipy {sp['fd']!r}, ours {ours['fd']!r}, relative difference {d:.2e} "
          f"({'ok' if ok else 'FAIL'}, tolerance 1e-6)")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
