"""Benchmark: lnc and linear_probe_acc, ours against faiss and scikit-learn on the same latents.

    python bench/separability.py [--n 50000] [--classes 1000] [--threads 2] [--keep]

Generates N x 32 x 16 x 16 f32 latents with class structure in bench/data/ (written in chunks; deleted
at the end unless --keep), runs the Rust bench target (cargo bench --bench separability), then on the
same data: pooled features once (channel-normalized, mean over tokens), faiss IndexFlatIP on the
normalized pooled vectors, scikit-learn NearestNeighbors(algorithm="brute", metric="cosine"), and
scikit-learn LogisticRegression(C = 1/(alpha n_train)) on the split the Rust side used. Every side
runs on the same number of threads. Prints wall and CPU times (all threads), ratios, values and the load
average before and after, as JSON. Reuses bench/data/latents.npy and labels.npy when present (as
bench/spatial.py --keep leaves them).

Needs bench/requirements.txt (faiss-cpu, scikit-learn, threadpoolctl).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / "data"


def generate(n, classes, seed=0, c=32, h=16, w=16, chunk=2000):
    """Latent = class centre (per channel) + image offset (per channel) + unit token noise."""
    import numpy as np

    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 0.1, (classes, c)).astype(np.float32)
    y = rng.permutation(np.arange(n) % classes).astype(np.int64)
    z = np.lib.format.open_memmap(DATA / "latents.npy", mode="w+", dtype="<f4", shape=(n, c, h, w))
    for a in range(0, n, chunk):
        b = min(n, a + chunk)
        base = centres[y[a:b]] + rng.normal(0.0, 0.1, (b - a, c)).astype(np.float32)
        z[a:b] = base[:, :, None, None] + rng.standard_normal((b - a, c, h, w), dtype=np.float32)
    z.flush()
    del z
    np.save(DATA / "labels.npy", y)


def lnc_of(nb, y, k):
    return float((y[nb[:, :k]] == y[:, None]).mean())


def drop_self(idx):
    """Neighbour lists of k+1 that include the query somewhere: remove it, keep k."""
    import numpy as np

    n, k1 = idx.shape
    out = np.empty((n, k1 - 1), dtype=np.int64)
    for i in range(n):
        r = idx[i]
        r = r[r != i]
        out[i] = r[: k1 - 1]
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=50000)
    ap.add_argument("--classes", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--keep", action="store_true", help="keep bench/data")
    ap.add_argument("--skip-sklearn-knn", action="store_true")
    args = ap.parse_args()
    t = str(args.threads)
    # Thread counts must be set before numpy, BLAS and faiss load.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = t
    import numpy as np
    from threadpoolctl import threadpool_limits

    DATA.mkdir(parents=True, exist_ok=True)
    try:
        if not (DATA / "latents.npy").exists():
            t0 = time.perf_counter()
            generate(args.n, args.classes)
            print(f"generated in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        res = {"n": args.n, "classes": args.classes, "threads": args.threads, "k": 10,
               "load_before": os.getloadavg()}

        env = dict(os.environ, CARGO_TARGET_DIR=os.environ.get("CARGO_TARGET_DIR", str(ROOT / "target")))
        cmd = ["cargo", "bench", "-q", "-p", "diffusability", "--bench", "separability", "--",
               str(DATA / "latents.npy"), str(DATA / "labels.npy"), str(DATA), t]
        subprocess.run(cmd, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
        ours = json.loads((DATA / "rust.json").read_text())
        res["ours"] = ours

        y = np.load(DATA / "labels.npy")
        z = np.load(DATA / "latents.npy", mmap_mode="r")
        n, c = z.shape[:2]
        k = 10
        t0 = time.perf_counter()
        # Channel normalization (mean, unbiased std over N, H, W) and pooling, in f64, in chunks.
        s1 = np.zeros(c)
        s2 = np.zeros(c)
        pooled = np.empty((n, c))
        for a in range(0, n, 2000):
            blk = np.asarray(z[a : a + 2000], dtype=np.float64)
            s1 += blk.sum(axis=(0, 2, 3))
            s2 += (blk * blk).sum(axis=(0, 2, 3))
            pooled[a : a + 2000] = blk.mean(axis=(2, 3))
        m = z.shape[2] * z.shape[3] * n
        mean = s1 / m
        std = np.sqrt((s2 - m * mean * mean) / (m - 1))
        pooled = (pooled - mean) / std
        res["numpy_pool_s"] = time.perf_counter() - t0

        import faiss

        faiss.omp_set_num_threads(args.threads)
        xf = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
        xf = np.ascontiguousarray(xf, dtype=np.float32)
        t0, c0 = time.perf_counter(), time.process_time()
        index = faiss.IndexFlatIP(c)
        index.add(xf)
        _, I = index.search(xf, k + 1)
        res["faiss_s"] = time.perf_counter() - t0
        res["faiss_cpu_s"] = time.process_time() - c0
        res["faiss_lnc"] = lnc_of(drop_self(I), y, k)

        with threadpool_limits(limits=args.threads):
            from sklearn.neighbors import NearestNeighbors

            if not args.skip_sklearn_knn:
                t0, c0 = time.perf_counter(), time.process_time()
                nn = NearestNeighbors(n_neighbors=k + 1, algorithm="brute", metric="cosine", n_jobs=args.threads)
                I = nn.fit(pooled).kneighbors(pooled, return_distance=False)
                res["sklearn_knn_s"] = time.perf_counter() - t0
                res["sklearn_knn_cpu_s"] = time.process_time() - c0
                res["sklearn_lnc"] = lnc_of(drop_self(I), y, k)

            from sklearn.linear_model import LogisticRegression
            from sklearn.preprocessing import StandardScaler

            tr, te = np.load(DATA / "train.npy"), np.load(DATA / "test.npy")
            t0, c0 = time.perf_counter(), time.process_time()
            sc = StandardScaler().fit(pooled[tr])
            clf = LogisticRegression(C=1.0 / (1e-4 * len(tr)), tol=1e-6, max_iter=500)
            clf.fit(sc.transform(pooled[tr]), y[tr])
            res["sklearn_probe_s"] = time.perf_counter() - t0
            res["sklearn_probe_cpu_s"] = time.process_time() - c0
            res["sklearn_probe_acc"] = float(clf.score(sc.transform(pooled[te]), y[te]))
            res["sklearn_probe_iterations"] = int(np.max(clf.n_iter_))

        ours_lnc_s = ours["pool_s"] + ours["knn_s"]
        res["ratio_knn_ours_over_faiss"] = ours["knn_s"] / res["faiss_s"]
        if "sklearn_knn_s" in res:
            res["speedup_knn_vs_sklearn"] = res["sklearn_knn_s"] / ours["knn_s"]
        res["speedup_lnc_incl_pooling_vs_numpy_pool_plus_sklearn"] = (
            (res["numpy_pool_s"] + res.get("sklearn_knn_s", float("nan"))) / ours_lnc_s
        )
        res["speedup_probe_vs_sklearn"] = res["sklearn_probe_s"] / ours["probe_s"]
        res["cpu_ratio_knn_ours_over_faiss"] = ours["knn_cpu_s"] / res["faiss_cpu_s"]
        res["cpu_speedup_probe_vs_sklearn"] = res["sklearn_probe_cpu_s"] / ours["probe_cpu_s"]
        res["load_after"] = os.getloadavg()
        print(json.dumps(res, indent=2))
    finally:
        if not args.keep:
            shutil.rmtree(DATA, ignore_errors=True)


if __name__ == "__main__":
    main()
