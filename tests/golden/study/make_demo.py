"""Writes demo.csv: a SYNTHETIC study table for trying `diffusability study` and testing its report.

Not study results: every number is drawn from a seeded random model below. 8 made-up tokenizers
(`synthetic-01` ..) x 2 backbones x 3 CFG scales. Each tokenizer has a hidden quality q in [0, 1]; metrics
are noisy monotone functions of q (VIV, SEC, iFID, uniformity CV fall as q rises; LNC, probe accuracy,
LDS/CDS/SRSS, uniformity entropy rise), equivariance error is unrelated to q, and gFID / IS / FDr6 per
backbone and CFG scale follow q with noise, with the best CFG near 1.5.

Usage: python make_demo.py > demo.csv   (numpy only; seed 20240607)
"""

import csv
import sys

import numpy as np

rng = np.random.default_rng(20240607)
n = 8
q = np.sort(rng.uniform(0, 1, n))[rng.permutation(n)]
clusters = ["baseline", "semantic-reg", "spatial-reg"]


def noisy(base, scale):
    return base + scale * rng.standard_normal(n)


metrics = {
    "viv": noisy(1400 - 500 * q, 50),
    "lnc": noisy(0.45 + 0.35 * q, 0.04),
    "linear_probe_acc": noisy(0.30 + 0.40 * q, 0.05),
    "lds": noisy(0.10 + 0.25 * q, 0.04),
    "cds": noisy(0.20 + 0.30 * q, 0.06),
    "srss": noisy(0.05 + 0.20 * q, 0.02),
    "sec": noisy(0.50 - 0.25 * q, 0.06),
    "uniformity_cv": noisy(0.80 - 0.20 * q, 0.08),
    "uniformity_entropy": noisy(7.0 + 0.8 * q, 0.25),
    "ifid": noisy(12 - 6 * q, 2.0),
    "equiv_rel_err": rng.uniform(0.2, 0.4, n),
}
w = csv.writer(sys.stdout, lineterminator="\n")
w.writerow(["tokenizer", "family", "cluster", "backbone", "cfg", *metrics, "gfid", "is", "fdr6"])
for b, (backbone, offset) in enumerate([("SiT-B", 30.0), ("LightningDiT-B", 18.0)]):
    for cfg, penalty in [(1.0, 6.0), (1.5, 0.0), (2.0, 2.5)]:
        for t in range(n):
            gfid = offset + penalty * (1.2 - q[t]) - 14 * q[t] + rng.normal(0, 1.5)
            row = [f"synthetic-{t + 1:02d}", "conv-f16d32" if t < 5 else "trans-f16d32",
                   clusters[t % 3], backbone, f"{cfg:.1f}"]
            row += [f"{metrics[m][t]:.4g}" for m in metrics]
            row += [f"{gfid:.2f}", f"{220 - 9 * gfid / 2 + rng.normal(0, 6):.1f}",
                    f"{gfid * 14 + rng.normal(0, 20):.1f}"]
            w.writerow(row)
