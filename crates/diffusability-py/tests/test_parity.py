"""Every metric from Python equals the command line's JSON report on the same data: the same library
computes both, so values must agree exactly (bit for bit), for f16, f32 and f64 arrays alike."""

import numpy as np
import pytest

import diffusability as d

# A small t-SNE (a few hundred points, two maps) keeps the uniformity metrics of "all" quick; the
# defaults (10,000 points, 10 maps) take about a minute per call.
QUICK_TSNE = ("--tsne-samples", "400", "--uniformity-repeats", "2")
QUICK_TSNE_KW = {"tsne_samples": 400, "uniformity_repeats": 2}

DTYPES = {"f16": np.float16, "f32": np.float32, "f64": np.float64}


def comparable(report):
    """The parts of a report that do not depend on how the data was handed over (file or array)."""
    inp = {k: v for k, v in report["input"].items() if k not in ("name", "paths", "key")}
    return {
        "input": inp,
        "params": report["params"],
        "metrics": report["metrics"],
        "details": report["details"],
        "warnings": report["warnings"],
    }


@pytest.mark.parametrize("dtype", list(DTYPES))
def test_metrics_all_equal_cli(cli, files, dataset, dtype):
    z, y, m = dataset
    want = cli("metrics", files[dtype], "--labels", files["labels"], "--masks", files["masks"],
               "--metrics", "all", *QUICK_TSNE, "--json", "--quiet", "--threads", "2")
    got = d.metrics(z.astype(DTYPES[dtype]), y, m, metrics="all", threads=2, **QUICK_TSNE_KW)
    assert got["tool"] == want["tool"]
    assert comparable(got) == comparable(want)
    # Every registered metric was computed (the data meets every need).
    names = {m["name"] for fam in d.registry() for m in fam["metrics"]}
    assert set(got["metrics"]) == names


def test_parameters_and_options_equal_cli(cli, files, dataset):
    z, y, m = dataset
    want = cli("metrics", files["f32"], "--labels", files["labels"], "--metrics", "lnc,sec,viv,lds",
               "--lnc-k", "5", "--lnc-metric", "l2", "--sec-ratio", "0.25", "--viv-ridge", "1e-5",
               "--lds-far", "3", "--normalize", "global", "--seed", "7", "--json", "--quiet")
    got = d.metrics(z.astype(np.float32), y, metrics=["lnc", "sec", "viv", "lds"], lnc_k=5,
                    lnc_metric="l2", sec_ratio=0.25, viv_ridge=1e-5, lds_far=3, normalize="global",
                    seed=7)
    assert comparable(got) == comparable(want)
    assert got["params"]["lnc_k"] == 5 and got["params"]["normalize"] == "global"


def test_family_functions_equal_cli(cli, files, dataset):
    z, y, m = dataset
    want = cli("metrics", files["f32"], "--labels", files["labels"], "--masks", files["masks"],
               "--metrics", "all", *QUICK_TSNE, "--json", "--quiet")["metrics"]
    z32 = z.astype(np.float32)
    families = {"viv": d.viv, "lnc": d.lnc, "linear_probe": d.linear_probe, "spatial": d.spatial,
                "sec": d.sec}
    seen = set()
    for name, f in families.items():
        got = f(z32, y, m)
        assert got, name
        for k, v in got.items():
            assert v == want[k], (name, k)
        seen |= set(got)
    # Opt-in metrics by name.
    assert d.spatial(z32, masks=m, metrics=["rmsc"]) == {"rmsc": want["rmsc"]}
    assert d.sec(z32, metrics="local_corr") == {"local_corr": want["local_corr"]}
    assert {"viv", "lnc", "linear_probe_acc", "lds", "cds", "srss", "sec"} <= seen


def test_uniformity_family_when_registered(cli, files, dataset):
    if not any(m["perspective"] == "latent uniformity" for f in d.registry() for m in f["metrics"]):
        pytest.skip("no latent uniformity metric in this build")
    z, y, m = dataset
    want = cli("metrics", files["f32"], "--labels", files["labels"], "--metrics", "all", *QUICK_TSNE, "--json",
               "--quiet")["metrics"]
    got = d.uniformity(z.astype(np.float32), y, **QUICK_TSNE_KW)
    assert got and all(v == want[k] for k, v in got.items())


def test_threads_do_not_change_results(dataset):
    z, y, m = dataset
    z32 = z.astype(np.float32)
    one = d.metrics(z32, y, m, metrics="all", threads=1, **QUICK_TSNE_KW)
    two = d.metrics(z32, y, m, metrics="all", threads=2, **QUICK_TSNE_KW)
    assert one["metrics"] == two["metrics"]
    assert one["details"] == two["details"]
    assert (one["params"]["threads"], two["params"]["threads"]) == (1, 2)


def test_layouts_and_byte_orders_are_converted(dataset):
    z, y, m = dataset
    z32 = z.astype(np.float32)
    want = d.metrics(z32, y, metrics="sec,lnc")["metrics"]
    fortran = np.asfortranarray(z32)
    swapped = z32.astype(z32.dtype.newbyteorder(">"))
    strided = np.concatenate([z32, z32], axis=1)[:, ::2]
    strided[:] = z32
    for arr in (fortran, swapped, strided):
        assert d.metrics(arr, y.astype(np.int16), metrics="sec,lnc")["metrics"] == want
    # Labels of any integer dtype and a plain list.
    assert d.metrics(z32, list(y), metrics="lnc")["metrics"]["lnc"] == want["lnc"]


def test_bf16_arrays_read_as_their_values(dataset):
    ml_dtypes = pytest.importorskip("ml_dtypes")
    z, y, m = dataset
    zb = z.astype(ml_dtypes.bfloat16)
    got = d.metrics(zb, y, metrics="sec,viv")
    assert got["input"]["dtype"] == "bf16"
    assert got["metrics"] == d.metrics(zb.astype(np.float32), y, metrics="sec,viv")["metrics"]


class DLPackOnly:
    """A DLPack producer that is not a numpy array (as a torch tensor on the CPU is)."""

    def __init__(self, a):
        self._a = a

    def __dlpack__(self, **kw):
        return self._a.__dlpack__(**kw)

    def __dlpack_device__(self):
        return self._a.__dlpack_device__()


def test_dlpack_input_is_read_in_place(dataset):
    z, y, m = dataset
    z32 = np.ascontiguousarray(z, dtype=np.float32)
    got = d.metrics(DLPackOnly(z32), y, metrics="sec")["metrics"]
    assert got == d.metrics(z32, y, metrics="sec")["metrics"]
    arr, dtype = d._array(DLPackOnly(z32), "latents")
    assert dtype == "f32" and d._diffusability.latents_address((arr, dtype)) == z32.ctypes.data


def test_torch_tensors(dataset):
    torch = pytest.importorskip("torch")
    z, y, m = dataset
    z32 = z.astype(np.float32)
    t = torch.from_numpy(z32).requires_grad_(True)
    want = d.metrics(z32, y, metrics="sec,viv")["metrics"]
    assert d.metrics(t, torch.from_numpy(y), metrics="sec,viv")["metrics"] == want
    tb = torch.from_numpy(z32).to(torch.bfloat16)
    got = d.metrics(tb, y, metrics="sec")
    assert got["input"]["dtype"] == "bf16"
    assert got["metrics"] == d.metrics(tb.float().numpy(), y, metrics="sec")["metrics"]


def test_equivariance_equals_cli(cli, files, dataset, tmp_path):
    z, y, m = dataset
    z32 = z.astype(np.float32)
    rng = np.random.default_rng(1)
    zt = (np.rot90(z32, 1, axes=(2, 3)) + 0.1 * rng.standard_normal(z32.shape)).astype(np.float32)
    np.save(tmp_path / "zt.npy", zt)
    want = cli("equivariance", "--latents", files["f32"], "--transformed", tmp_path / "zt.npy",
               "--transform", "rot90:1", "--json", "--quiet")
    got = d.equivariance(z32, zt, "rot90:1")
    for k in ("equiv_rel_err", "equiv_cos", "transform", "normalize", "n", "skipped", "warnings"):
        assert got[k] == want[k], k


def test_fd_equals_cli(cli, tmp_path):
    rng = np.random.default_rng(2)
    a = rng.standard_normal((300, 16)).astype(np.float32)
    b = (rng.standard_normal((250, 16)) * 1.2 + 0.3).astype(np.float64)
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    want = cli("fd", tmp_path / "a.npy", tmp_path / "b.npy", "--json", "--quiet")
    got = d.fd(a, b)
    assert got["fd"] == want["fd"]
    strip = lambda r: {k: v for k, v in r.items() if k not in ("a", "b")}  # noqa: E731
    assert strip(got) == strip(want)
    assert d.fd(tmp_path / "a.npy", str(tmp_path / "b.npy")) == want


def test_trajectory_equals_cli(cli, files, dataset, tmp_path):
    z, y, m = dataset
    rng = np.random.default_rng(3)
    k, b = 6, 5
    x0 = rng.standard_normal((b, 4, 8, 8))
    x1 = z[:b]
    t = np.linspace(0, 1, k + 1)
    wiggle = 0.2 * np.sin(np.pi * t)[:, None, None, None, None] * rng.standard_normal((1, b, 4, 8, 8))
    traj = ((1 - t)[:, None, None, None, None] * x0 + t[:, None, None, None, None] * x1 + wiggle)
    traj = traj.astype(np.float32)
    np.save(tmp_path / "traj.npy", traj)
    want = cli("trajectory", tmp_path / "traj.npy", "--latents", files["f32"], "--labels",
               files["labels"], "--ideal", "--json", "--quiet")
    got = d.trajectory(traj, latents=z.astype(np.float32), labels=y, ideal=True)
    for key in want:
        if key not in ("input",):
            assert got[key] == want[key], key
    assert got["input"]["steps"] == want["input"]["steps"]


def test_study_equals_cli(cli, tmp_path):
    rng = np.random.default_rng(4)
    rows = ["tokenizer,backbone,lnc,sec,gfid"]
    for i in range(8):
        for bb in ("B", "L"):
            rows.append(f"tok{i},{bb},{rng.uniform():.4f},{rng.uniform():.4f},{rng.uniform(2, 20):.3f}")
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    want = cli("study", tmp_path / "t.csv", "--bootstrap", "50", "--json", "--quiet")
    got = d.study(tmp_path / "t.csv", bootstrap=50)
    assert got == want
