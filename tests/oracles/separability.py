"""Reference values for the semantic-separability metrics (spec section 2), independent of diffusability.

    separability.py lnc DIR     DIR holds latents.npy (normalized, N x C x H x W), labels.npy, optionally
                                masks.npy (N x h x w pixel masks), and params.json {k, metric, features}
    separability.py probe DIR   DIR holds latents.npy, labels.npy, train.npy, test.npy (sample indices)
                                and params.json {alpha, features}

Prints one JSON object on stdout.

LNC: features are per-image channel means over foreground tokens (a token is foreground if any pixel of
its block is nonzero; all tokens if no mask or no foreground), or the flattened latent. Neighbours come
from a direct f64 scan with ties broken by the lower index; scikit-learn's NearestNeighbors
(algorithm="brute") is run as a second opinion and its agreement reported.

Probe: StandardScaler (train mean, population std) and LogisticRegression(C = 1/(alpha n_train),
lbfgs, multinomial, tol 1e-10) on the given split; coefficients, intercepts and accuracies.
"""

import json
import os
import sys

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import NearestNeighbors
from sklearn.preprocessing import StandardScaler


def load(d, name):
    return np.load(os.path.join(d, name))


def features(z, kind, masks=None):
    n, c, h, w = z.shape
    z = z.astype(np.float64)
    if kind == "flatten":
        return z.reshape(n, c * h * w)
    if masks is None:
        return z.mean(axis=(2, 3))
    mh, mw = masks.shape[1:]
    fy, fx = mh // h, mw // w
    fg = (masks != 0).reshape(n, h, fy, w, fx).any(axis=(2, 4))  # max-pool onto the token grid
    out = np.empty((n, c))
    for i in range(n):
        if fg[i].any():
            out[i] = z[i][:, fg[i]].mean(axis=1)
        else:
            out[i] = z[i].mean(axis=(1, 2))
    return out


def scores(x, i, metric):
    """Scores of every point as a neighbour of point i: cosine similarity or -squared distance."""
    if metric == "cosine":
        norms = np.sqrt((x * x).sum(axis=1))
        dots = x @ x[i]
        with np.errstate(invalid="ignore", divide="ignore"):
            s = dots / (norms * norms[i])
        s[(norms == 0) | (norms[i] == 0)] = 0.0
        return s
    return -((x - x[i]) ** 2).sum(axis=1)


def knn_scan(x, k, metric):
    n = len(x)
    idx = np.arange(n)
    out = np.empty((n, k), dtype=np.int64)
    for i in range(n):
        s = scores(x, i, metric)
        keep = idx != i
        order = np.lexsort((idx[keep], -s[keep]))  # score descending, then index ascending
        out[i] = idx[keep][order[:k]]
    return out


def lnc(d):
    p = json.load(open(os.path.join(d, "params.json")))
    z = load(d, "latents.npy")
    y = load(d, "labels.npy")
    masks = load(d, "masks.npy") if os.path.exists(os.path.join(d, "masks.npy")) else None
    x = features(z, p["features"], masks)
    k = p["k"]
    nb = knn_scan(x, k, p["metric"])
    counts = (y[nb] == y[:, None]).sum(axis=1)
    skl = NearestNeighbors(n_neighbors=k + 1, algorithm="brute", metric="cosine" if p["metric"] == "cosine" else "euclidean")
    skl_nb = skl.fit(x).kneighbors(x, return_distance=False)
    skl_sets = [set(r[r != i][:k]) for i, r in enumerate(skl_nb)]
    agree = all(set(nb[i]) == skl_sets[i] for i in range(len(x)))
    classes = np.unique(y)
    per_class = [float(np.mean(counts[y == c] / k)) for c in classes]
    print(json.dumps({
        "neighbors": nb.tolist(),
        "counts": counts.tolist(),
        "total": int(counts.sum()),
        "lnc": float(np.mean(counts / k)),
        "classes": classes.tolist(),
        "per_class": per_class,
        "sklearn_agrees": bool(agree),
    }))


def probe(d):
    p = json.load(open(os.path.join(d, "params.json")))
    z = load(d, "latents.npy")
    y = load(d, "labels.npy")
    tr, te = load(d, "train.npy"), load(d, "test.npy")
    x = features(z, p["features"])
    sc = StandardScaler().fit(x[tr])
    xtr, xte = sc.transform(x[tr]), sc.transform(x[te])
    clf = LogisticRegression(C=1.0 / (p["alpha"] * len(tr)), solver="lbfgs", tol=1e-10, max_iter=100000)
    clf.fit(xtr, y[tr])
    print(json.dumps({
        "classes": clf.classes_.tolist(),
        "coef": clf.coef_.tolist(),
        "intercept": clf.intercept_.tolist(),
        "acc": float(clf.score(xte, y[te])),
        "train_acc": float(clf.score(xtr, y[tr])),
        "n_iter": int(np.max(clf.n_iter_)),
    }))


if __name__ == "__main__":
    {"lnc": lnc, "probe": probe}[sys.argv[1]](sys.argv[2])
