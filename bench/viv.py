"""VIV at the study's scale: ours against the straightforward numpy implementation of the same estimator.

    python bench/viv.py [--classes 1000] [--per-class 50] [--skip-numpy] [--no-marginal] [--cleanup]

1. Creates bench/data/viv_{N}x32x16x16.npy (float32, about 1.6 GB at the default size) and
   bench/data/viv_{N}_labels.npy (int64) if they are missing: 1000 classes of 50 samples in shuffled
   order, each class Gaussian with its own mean, a random channel covariance, an exponential spatial
   kernel of its own length scale, plus independent noise (so the classes are not exactly separable).
   bench/data is git-ignored.
2. Reads the latents once (so that both sides find them in the page cache), then runs ours
   (`cargo bench --bench viv`, release build, memory-mapped input, --threads, default 2) for the five
   default keys and, unless --no-marginal, once more with viv_marginal at default settings.
3. Runs the numpy implementation of the same estimator on the same file (per-class flip-flop with
   matrix products, np.linalg.inv and eigvalsh, vectorized over samples and time points) in a
   separate process with --numpy-threads BLAS threads (default 2, as ours), times it (wall and CPU), and
   checks that both give the same values to 1e-5 relative.
4. Prints both times, the ratio, peak memory, and viv_marginal's value, standard error and time.
   --cleanup deletes the generated files afterwards.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "bench", "data")
C, H, W = 32, 16, 16
KEYS = ["viv", "viv_per_dim", "viv_total_variance", "viv_anisotropy", "viv_logit_normal"]


def paths(n):
    return (
        os.path.join(DATA, f"viv_{n}x{C}x{H}x{W}.npy"),
        os.path.join(DATA, f"viv_{n}_labels.npy"),
    )


def generate(classes, per, seed=0):
    n = classes * per
    px, py = paths(n)
    if os.path.exists(px) and os.path.exists(py):
        return px, py
    os.makedirs(DATA, exist_ok=True)
    rng = np.random.default_rng(seed)
    s = H * W
    yy, xx = np.meshgrid(np.arange(H), np.arange(W), indexing="ij")
    pos = np.stack([yy.ravel(), xx.ravel()], 1).astype(np.float64)
    dist = np.sqrt(((pos[:, None] - pos[None]) ** 2).sum(-1))
    shared = 0.5 * rng.standard_normal((C, s))
    x = np.lib.format.open_memmap(px + ".tmp", mode="w+", dtype=np.float32, shape=(n, C, H, W))
    labels = np.empty(n, dtype=np.int64)
    perm = rng.permutation(n)
    t0 = time.time()
    for k in range(classes):
        ls = np.linalg.cholesky(np.exp(-dist / rng.uniform(1.0, 4.0)))
        a = rng.standard_normal((C, C)) / np.sqrt(C)
        lc = np.linalg.cholesky(rng.uniform(0.3, 1.5) * (a @ a.T) + 0.05 * np.eye(C))
        mean = shared + 0.7 * rng.standard_normal((C, s))
        xi = rng.standard_normal((C, per * s))
        corr = ((lc @ xi).reshape(C, per, s).transpose(1, 0, 2).reshape(per * C, s) @ ls.T).reshape(per, C, s)
        block = mean + corr + 0.2 * rng.standard_normal((per, C, s))
        idx = np.sort(perm[k * per : (k + 1) * per])
        x[idx] = block.reshape(per, C, H, W).astype(np.float32)
        labels[idx] = k
    x.flush()
    del x
    os.replace(px + ".tmp", px)
    np.save(py, labels)
    print(f"generated {px} ({n} x {C} x {H} x {W}) in {time.time() - t0:.1f} s", file=sys.stderr)
    return px, py


# ------------------------------------------------------------------------------------------------
# The straightforward numpy implementation of the same estimator (metrics.md sections 0-1).


def numpy_viv(px, py, eps=1e-6, tol=1e-6, max_sweeps=100, m=0.0, sd=1.0):
    x = np.load(px, mmap_mode="r")
    y = np.load(py)
    n, c, h, w = x.shape
    s, d = h * w, c * h * w
    # Channel normalization: per-channel mean and unbiased std over (N, H, W), in chunks.
    s1 = np.zeros(c)
    for i in range(0, n, 4096):
        s1 += x[i : i + 4096].astype(np.float64).sum(axis=(0, 2, 3))
    mean = s1 / (n * s)
    s2 = np.zeros(c)
    for i in range(0, n, 4096):
        s2 += ((x[i : i + 4096].astype(np.float64) - mean[None, :, None, None]) ** 2).sum(axis=(0, 2, 3))
    std = np.sqrt(s2 / (n * s - 1))
    m32 = mean.astype(np.float32)[None, :, None, None]
    k32 = (1.0 / std).astype(np.float32)[None, :, None, None]
    nodes, weights = np.polynomial.hermite.hermgauss(max(64, int(np.ceil(80 * sd * sd))))
    tq = 1.0 / (1.0 + np.exp(-(m + np.sqrt(2.0) * sd * nodes)))
    wq = weights / np.sqrt(np.pi)
    ts = np.linspace(0.0, 1.0, 101)
    order = np.argsort(y, kind="stable")
    classes, starts = np.unique(y[order], return_index=True)
    ends = np.append(starts[1:], n)
    out = {k: [] for k in ["viv", "tv", "rho", "ln"]}
    sweeps = []
    curve = np.zeros(101)
    for a, b in zip(starts, ends):
        idx = np.sort(order[a:b])
        nk = len(idx)
        if nk < 2:
            continue
        z = ((x[idx] - m32) * k32).astype(np.float64).reshape(nk, c, s)
        r = z - z.mean(axis=0)
        r2 = r.reshape(nk * c, s)
        rt = np.ascontiguousarray(r.transpose(1, 0, 2)).reshape(c, nk * s)
        ridge_c, ridge_s = (nk - 1) * s < c, (nk - 1) * c < s
        ss = np.eye(s)
        prev = None
        for sweep in range(1, max_sweeps + 1):
            yv = (r2 @ np.linalg.inv(ss)).reshape(nk, c, s).transpose(1, 0, 2).reshape(c, nk * s)
            sc = yv @ rt.T / (nk * s)
            sc = 0.5 * (sc + sc.T)
            if ridge_c or np.linalg.eigvalsh(sc)[0] <= 0:
                ridge_c = True
                sc = sc + eps * np.trace(sc) / c * np.eye(c)
            zv = np.matmul(np.linalg.inv(sc), r).reshape(nk * c, s)
            ss = r2.T @ zv / (nk * c)
            ss = 0.5 * (ss + ss.T)
            if ridge_s:
                ss = ss + eps * np.trace(ss) / s * np.eye(s)
            f = np.trace(ss) / s
            ss, sc = ss / f, sc * f
            done = False
            if prev is not None:
                dc = np.linalg.norm(sc - prev[0]) / np.linalg.norm(sc)
                ds = np.linalg.norm(ss - prev[1]) / np.linalg.norm(ss)
                done = max(dc, ds) < tol
            prev = (sc, ss)
            if done:
                break
        sweeps.append(sweep)
        lc = np.clip(np.linalg.eigvalsh(sc), 0, None)
        lsv = np.clip(np.linalg.eigvalsh(ss), 0, None)
        lam = np.outer(lc, lsv).ravel()
        lam = lam[lam > 0]
        out["viv"].append(np.pi / 2 * np.sqrt(lc).sum() * np.sqrt(lsv).sum())
        out["tv"].append(lam.sum())
        out["rho"].append(np.sqrt(lam).sum() / np.sqrt(d * lam.sum()))
        vq = (lam[None, :] / ((1 - tq[:, None]) ** 2 + tq[:, None] ** 2 * lam[None, :])).sum(axis=1)
        out["ln"].append(float(wq @ vq))
        curve += (lam[None, :] / ((1 - ts[:, None]) ** 2 + ts[:, None] ** 2 * lam[None, :])).sum(axis=1)
    viv = float(np.mean(out["viv"]))
    return {
        "viv": viv,
        "viv_per_dim": viv / d,
        "viv_total_variance": float(np.mean(out["tv"])) / d,
        "viv_anisotropy": float(np.mean(out["rho"])),
        "viv_logit_normal": float(np.mean(out["ln"])),
    }, float(np.mean(sweeps))


def run_numpy(px, py):
    """Times the numpy implementation in this process (started with the BLAS thread count wanted)."""
    t0 = time.time()
    c0 = time.process_time()
    values, sweeps = numpy_viv(px, py)
    wall, cpu = time.time() - t0, time.process_time() - c0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"wall_s": wall, "cpu_s": cpu, "metrics": values, "mean_sweeps": sweeps, "peak_rss_mb": peak}))


def run_ours(px, py, marginal, threads):
    cmd = ["cargo", "bench", "-q", "-p", "diffusability", "--bench", "viv", "--", px, py, "--threads", str(threads)]
    if marginal:
        cmd.append("--marginal")
    out = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--classes", type=int, default=1000)
    ap.add_argument("--per-class", type=int, default=50)
    ap.add_argument("--skip-numpy", action="store_true")
    ap.add_argument("--no-marginal", action="store_true")
    ap.add_argument("--cleanup", action="store_true")
    ap.add_argument("--threads", type=int, default=2, help="threads for ours (default 2, as the numpy run)")
    ap.add_argument(
        "--numpy-threads",
        default="2",
        help="comma-separated BLAS thread counts for the numpy runs ('default' = numpy's own choice)",
    )
    ap.add_argument("--numpy-only", nargs=2, metavar=("LATENTS", "LABELS"), help=argparse.SUPPRESS)
    ap.add_argument("--generate-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.numpy_only:
        run_numpy(*args.numpy_only)
        return
    if args.generate_only:
        generate(args.classes, args.per_class)
        return
    # Generation is a sequence of small matrix products: one BLAS thread is fastest on a busy machine.
    env1 = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    gen = [sys.executable, __file__, "--generate-only", "--classes", str(args.classes)]
    subprocess.run(gen + ["--per-class", str(args.per_class)], check=True, env=env1)
    px, py = paths(args.classes * args.per_class)
    # Read the latents once so that both sides find them in the page cache: disk reads (or pages the
    # cache dropped since) would otherwise land on whichever side runs first.
    with open(px, "rb") as f:
        while f.read(1 << 24):
            pass
    load = os.getloadavg()
    ours = run_ours(px, py, not args.no_marginal, args.threads)
    d = ours["default"]
    print(f"input: {ours['shape']} float32, {ours['input_mb']:.0f} MB, {ours['threads']} threads")
    print(
        f"ours  (5 default keys): {d['wall_s']:.2f} s wall, {d['cpu_s']:.2f} s CPU "
        f"(normalize {d['timings_s']['normalize']:.2f} s, viv {d['timings_s']['viv']:.2f} s), "
        f"mean sweeps {d['mean_sweeps']:.2f} ({d.get('mean_sweeps_f32', 0):.2f} of them f32, max "
        f"{d['max_sweeps']:.0f}), load average before {load[0]:.2f}, peak RSS {d['peak_rss_mb']:.0f} MB "
        f"= input + {d['peak_rss_mb'] - ours['input_mb']:.0f} MB"
    )
    if d["warnings"]:
        print("ours warnings:", d["warnings"])
    result = {"ours": ours}
    if not args.skip_numpy:
        result["numpy"] = {}
        for threads in args.numpy_threads.split(","):
            env = dict(os.environ)
            if threads != "default":
                env.update(OPENBLAS_NUM_THREADS=threads, OMP_NUM_THREADS=threads)
            out = subprocess.run(
                [sys.executable, __file__, "--numpy-only", px, py],
                check=True,
                capture_output=True,
                text=True,
                env=env,
            )
            ref = json.loads(out.stdout)
            ref["load_after"] = os.getloadavg()[0]
            result["numpy"][threads] = ref
            print(
                f"numpy (5 default keys, BLAS threads {threads}): {ref['wall_s']:.2f} s wall, "
                f"{ref['cpu_s']:.2f} s CPU, mean sweeps {ref['mean_sweeps']:.2f}, peak RSS {ref['peak_rss_mb']:.0f} MB, "
                f"load average after {ref['load_after']:.2f}"
            )
            print(f"  speed-up: {ref['wall_s'] / d['wall_s']:.1f}x wall, {ref['cpu_s'] / d['cpu_s']:.1f}x CPU")
            worst = 0.0
            for k in KEYS:
                a, b = d["metrics"][k], ref["metrics"][k]
                r = abs(a - b) / abs(b)
                worst = max(worst, r)
                print(f"  {k:20s} ours {a:.10g}  numpy {b:.10g}  rel {r:.1e}")
            print(f"  values agree to 1e-5 relative: {worst <= 1e-5} (worst {worst:.1e})")
            result["numpy"][threads]["agree_1e-5"] = worst <= 1e-5
    if "with_marginal" in ours:
        m = ours["with_marginal"]
        mg = m["marginal"]
        print(
            f"viv_marginal (default: {mg['samples_per_node']} draws x {mg['nodes']} nodes): "
            f"{mg['value']:.6g} +- {mg['std_error']:.3g} (SE, {100 * mg['std_error'] / mg['value']:.2f} %), "
            f"run with it {m['wall_s']:.1f} s wall ({m['wall_s'] - d['wall_s']:.1f} s more than without), "
            f"peak RSS {m['peak_rss_mb']:.0f} MB"
        )
    print(json.dumps(result))
    if args.cleanup:
        for p in (px, py):
            os.remove(p)
        print("deleted", px, py, file=sys.stderr)


if __name__ == "__main__":
    main()
