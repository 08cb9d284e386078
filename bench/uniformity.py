"""Benchmark: uniformity_cv / _gini / _entropy, ours against openTSNE (FFT) and scikit-learn (Barnes-Hut).

    python bench/uniformity.py [--n 10000] [--repeats 10] [--threads 2] [--images 2000] [--skip-sklearn]
                               [--keep] [--bin BENCH_BINARY]

Generates 2,000 x 32 x 8 x 8 f32 latents whose pixel vectors form clumps of unequal size and shape in
bench/data/uniformity/ (deleted at the end unless --keep), then
1. runs the whole uniformity family as `diffusability metrics` does (`cargo bench --bench uniformity --
   metric`: channel normalization, --repeats repeats of --n sampled pixel vectors), and writes the pixel
   vectors of repeat 0;
2. runs our t-SNE stage by stage on those points (`-- points`), openTSNE (FFT gradients) and scikit-learn
   (Barnes-Hut, theta 0.5) on the same points with the settings of metrics.md section 5, each on --threads
   threads;
3. evaluates the exact KL divergence of the three embeddings with one numpy function (the oracle's,
   tests/oracles/uniformity.py: P over all pairs with each point's Gaussian calibrated by bisection) and
   the three statistics with scipy's gaussian_kde.
Prints wall and CPU times, KL values, statistics and ratios as JSON. Times include the affinities and the
optimization; ours also include the exact KL that every repeat reports. Needs bench/requirements.txt.
"""

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / "data" / "uniformity"


def generate(images, seed=0, c=32, h=8, w=8, clumps=12):
    """Each pixel vector: one of `clumps` centres (sizes falling off as 1/k) plus noise along three
    directions of its clump and a little isotropic noise, so the t-SNE map has clumps of every size."""
    import numpy as np

    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 2.0, (clumps, c))
    axes = rng.normal(0.0, 0.8, (clumps, 3, c))
    weights = 1.0 / np.arange(1, clumps + 1)
    weights /= weights.sum()
    m = images * h * w
    k = rng.choice(clumps, size=m, p=weights)
    z = rng.standard_normal((m, 3))
    v = centres[k] + np.einsum("mj,mjc->mc", z, axes[k]) + 0.3 * rng.standard_normal((m, c))
    lat = v.reshape(images, h, w, c).transpose(0, 3, 1, 2).astype(np.float32)
    np.save(DATA / "latents.npy", np.ascontiguousarray(lat))


def cpu_now():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def cargo_bench(args, threads, binary=None):
    env = dict(os.environ, CARGO_TARGET_DIR=os.environ.get("CARGO_TARGET_DIR", str(ROOT / "target")))
    if binary:
        cmd = [binary]
    else:
        cmd = ["cargo", "bench", "-q", "-p", "diffusability", "--bench", "uniformity", "--"]
    cmd += [*args, "--threads", str(threads)]
    out = subprocess.run(cmd, cwd=ROOT, env=env, check=True, stdout=subprocess.PIPE).stdout
    return json.loads(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10000, help="t-SNE points per repeat (--tsne-samples)")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--skip-sklearn", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep bench/data/uniformity")
    ap.add_argument("--bin", help="a built bench binary (target/release/deps/uniformity-*) instead of cargo bench")
    args = ap.parse_args()
    t = str(args.threads)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[var] = t
    import numpy as np
    from threadpoolctl import threadpool_limits

    sys.path.insert(0, str(ROOT / "tests" / "oracles"))
    import uniformity as oracle

    DATA.mkdir(parents=True, exist_ok=True)
    try:
        if not (DATA / "latents.npy").exists():
            generate(args.images)
        res = {"n": args.n, "repeats": args.repeats, "threads": args.threads, "load_avg_before": os.getloadavg()}

        # 1. The whole metric, every repeat.
        t0 = time.perf_counter()
        c0 = os.times()
        metric = cargo_bench(["metric", str(DATA / "latents.npy"), str(DATA), "--repeats", str(args.repeats),
                              "--samples", str(args.n)], args.threads, args.bin)
        c1 = os.times()
        res["ours_metric"] = {
            "total_s": metric["total_s"],
            "cpu_s_incl_cargo": (c1.children_user + c1.children_system) - (c0.children_user + c0.children_system),
            "per_repeat_s": metric["total_s"] / args.repeats,
            "metrics": metric["metrics"],
            "std": metric["details"]["uniformity"]["std"],
            "kl_exact": metric["details"]["uniformity"]["kl_exact"],
            "repulsion": metric["details"]["uniformity"]["tsne"]["repulsion"],
        }
        res["ours_metric_wall_incl_cargo_s"] = time.perf_counter() - t0

        # 2. One t-SNE of repeat 0's points by each implementation.
        x = np.load(DATA / "points.npy")
        ours = cargo_bench(["points", str(DATA / "points.npy"), str(DATA)], args.threads, args.bin)
        y_ours = np.load(DATA / "ours_embedding.npy")
        res["ours"] = {"wall_s": ours["total_s"], "cpu_s": ours["cpu_s"]["total"], "stages_s": {
            k: ours[k] for k in ("affinity_s", "init_s", "optimize_s", "kl_s", "kde_s")}, "kl_rust": ours["kl"]}

        emb = {"ours": y_ours}
        with threadpool_limits(limits=args.threads):
            c0, t0 = cpu_now(), time.perf_counter()
            y, _ = oracle.run_opentsne(x, 30.0, 0, args.threads)
            res["opentsne"] = {"wall_s": time.perf_counter() - t0, "cpu_s": cpu_now() - c0}
            emb["opentsne"] = y
            if not args.skip_sklearn:
                c0, t0 = cpu_now(), time.perf_counter()
                y, _ = oracle.run_sklearn(x, 30.0, 0, args.threads)
                res["sklearn"] = {"wall_s": time.perf_counter() - t0, "cpu_s": cpu_now() - c0}
                emb["sklearn"] = y

            # 3. Exact KL (one calibration of P, shared) and the statistics of each embedding.
            t0 = time.perf_counter()
            cal = oracle.calibrate(np.asarray(x, dtype=np.float64), 30.0)
            for name, y in emb.items():
                res[name]["kl"] = oracle.exact_kl(x, y, 30.0, cal)
                res[name].update(oracle.kde_statistics(y)[1])
            res["oracle_eval_s"] = time.perf_counter() - t0

        for other in ("opentsne", "sklearn"):
            if other in res:
                res[f"speedup_vs_{other}_wall"] = res[other]["wall_s"] / res["ours"]["wall_s"]
                res[f"speedup_vs_{other}_cpu"] = res[other]["cpu_s"] / res["ours"]["cpu_s"]
                res[f"kl_ratio_ours_over_{other}"] = res["ours"]["kl"] / res[other]["kl"]
        res["load_avg_after"] = os.getloadavg()
        print(json.dumps(res, indent=2))
    finally:
        if not args.keep:
            shutil.rmtree(DATA, ignore_errors=True)


if __name__ == "__main__":
    main()
