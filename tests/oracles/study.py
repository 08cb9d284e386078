"""Reference values for the study analysis (metrics.md section 9), from scipy.stats and numpy.

Usage: study.py TABLE.csv [--target gfid[:higher|:lower]] [--group-by COL ...] [--best-over COL]
                [--bootstrap B --seed S]

Independent of the Rust code: reads the CSV with the csv module, groups rows, keeps each tokenizer's
best-quality row over --best-over, then per group and metric calls scipy.stats.pearsonr (with its
Fisher-z confidence_interval), spearmanr and kendalltau with default arguments; per pair of metrics
fits numpy.linalg.lstsq with an intercept and refits it n times for the leave-one-out R^2. With
--bootstrap, a numpy percentile bootstrap of r (its own generator: agreement is only statistical).
Prints JSON: {"correlations": [...], "pairs": [...]}. Values scipy returns as NaN are null.
"""

import argparse
import csv
import itertools
import json
import math
import warnings

import numpy as np
from scipy import stats

# interface.md "Metric names": name -> higher is better
METRICS = {
    "viv": False, "viv_per_dim": False, "viv_logit_normal": False, "viv_marginal": False,
    "viv_total_variance": False, "viv_anisotropy": False,
    "lnc": True, "linear_probe_acc": True,
    "lds": True, "cds": True, "srss": True, "rmsc": False,
    "sec": False, "local_corr": True,
    "uniformity_cv": False, "uniformity_gini": False, "uniformity_entropy": True,
    "equiv_rel_err": False, "equiv_cos": True,
    "ifid": False,
}
MISSING = {"", "na", "nan", "n/a", "null", "none", "-"}


def num(cell):
    c = cell.strip()
    return None if c.lower() in MISSING else float(c)


def clean(v):
    if v is None:
        return None
    v = float(v)
    return None if math.isnan(v) else v


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("table")
    ap.add_argument("--target", default="gfid")
    ap.add_argument("--group-by", action="append", default=[])
    ap.add_argument("--best-over")
    ap.add_argument("--bootstrap", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    target, _, direction = a.target.partition(":")
    higher = {"higher": True, "lower": False}.get(direction, target in ("is", "precision", "recall"))

    with open(a.table, newline="") as f:
        rows = [{k.strip(): v.strip() for k, v in r.items()} for r in csv.DictReader(f)]
    metrics = [m for m in METRICS if rows and m in rows[0]]

    groups = {}
    for r in rows:
        if num(r[target]) is None:
            continue
        key = tuple((g, r[g]) for g in a.group_by)
        groups.setdefault(key, []).append(r)
    for key, rs in groups.items():
        if a.best_over:
            best = {}
            for r in rs:
                t = r["tokenizer"]
                y = num(r[target])
                if t not in best or (y > num(best[t][target]) if higher else y < num(best[t][target])):
                    best[t] = r
            groups[key] = list(best.values())

    s_target = 1.0 if higher else -1.0
    out_c, out_p = [], []
    rng = np.random.default_rng(a.seed)
    for key, rs in groups.items():
        group = dict(key)
        for m in metrics:
            pts = [(num(r[m]), num(r[target])) for r in rs if num(r[m]) is not None]
            x = np.array([p[0] for p in pts])
            y = np.array([p[1] for p in pts])
            entry = {"group": group, "metric": m, "n": len(pts)}
            ok = len(pts) >= 3 and np.ptp(x) > 0 and np.ptp(y) > 0
            if ok:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    pr = stats.pearsonr(x, y)
                    ci = pr.confidence_interval(0.95)
                    sr = stats.spearmanr(x, y)
                    kt = stats.kendalltau(x, y)
                entry.update(
                    pearson_r=clean(pr.statistic), pearson_p=clean(pr.pvalue),
                    pearson_ci=[clean(ci.low), clean(ci.high)],
                    spearman_rho=clean(sr.statistic), spearman_p=clean(sr.pvalue),
                    kendall_tau=clean(kt.statistic), kendall_p=clean(kt.pvalue),
                    aligned_r=clean(pr.statistic) * (1.0 if METRICS[m] else -1.0) * s_target,
                )
                if a.bootstrap:
                    rb = []
                    for _ in range(a.bootstrap):
                        i = rng.integers(0, len(x), len(x))
                        if np.ptp(x[i]) > 0 and np.ptp(y[i]) > 0:
                            rb.append(np.corrcoef(x[i], y[i])[0, 1])
                    entry["bootstrap_ci"] = [float(np.percentile(rb, 2.5)), float(np.percentile(rb, 97.5))]
                if len(x) >= 4:
                    loo = []
                    for i in range(len(x)):
                        xi, yi = np.delete(x, i), np.delete(y, i)
                        if np.ptp(xi) > 0 and np.ptp(yi) > 0:
                            loo.append(stats.pearsonr(xi, yi).statistic)
                    entry["loo_range"] = [float(min(loo)), float(max(loo))]
            out_c.append(entry)
        usable = []
        for m in metrics:
            vals = [num(r[m]) for r in rs if num(r[m]) is not None]
            ys = [num(r[target]) for r in rs if num(r[m]) is not None]
            if len(vals) >= 3 and np.ptp(vals) > 0 and np.ptp(ys) > 0:
                usable.append(m)
        for ma, mb in itertools.combinations(usable, 2):
            pts = [(num(r[ma]), num(r[mb]), num(r[target])) for r in rs
                   if num(r[ma]) is not None and num(r[mb]) is not None]
            if len(pts) < 4:
                continue
            P = np.array(pts)
            X = np.column_stack([np.ones(len(P)), P[:, 0], P[:, 1]])
            y = P[:, 2]
            if np.linalg.matrix_rank(X) < 3:
                continue
            b = np.linalg.lstsq(X, y, rcond=None)[0]
            ss_tot = np.sum((y - y.mean()) ** 2)
            r2 = 1 - np.sum((y - X @ b) ** 2) / ss_tot
            n = len(y)
            press = 0.0
            for i in range(n):
                keep = np.arange(n) != i
                bi = np.linalg.lstsq(X[keep], y[keep], rcond=None)[0]
                press += (y[i] - X[i] @ bi) ** 2
            out_p.append({
                "group": group, "metrics": [ma, mb], "n": n,
                "r2": float(r2), "adj_r2": float(1 - (1 - r2) * (n - 1) / (n - 3)),
                "loo_r2": float(1 - press / ss_tot),
                "coef": {"intercept": float(b[0]), ma: float(b[1]), mb: float(b[2])},
            })
    print(json.dumps({"correlations": out_c, "pairs": out_p}))


if __name__ == "__main__":
    main()
