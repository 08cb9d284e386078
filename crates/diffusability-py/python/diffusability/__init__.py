"""Proxy metrics of latent diffusability (arXiv 2606.03578), from Python.

Every number is computed by the same Rust library as the ``diffusability`` command line, so a report
from :func:`metrics` equals the CLI's ``--json`` report on the same data. Exact definitions of every
metric: the ``//!`` docs of ``crates/diffusability/src/metrics/`` and ``shared/spec/metrics.md``.

Inputs are numpy arrays or torch tensors (through DLPack or ``.numpy()``; torch is not a dependency):

- latents ``(N, C, H, W)``, f16, bf16 (torch or ml_dtypes), f32 or f64;
- labels ``(N,)`` of any integer dtype;
- masks ``(N, h, w)`` of any dtype, nonzero = foreground, ``h, w`` multiples of ``H, W``.

C-contiguous f32 arrays (including memory-mapped ``.npy`` files, ``np.load(path, mmap_mode="r")``)
are read in place, without a copy; other dtypes and layouts are converted. The GIL is released while
the library works, so other Python threads run meanwhile: do not write to an array while a call that
reads it is running.

Errors: :class:`DiffusabilityError` (a ``ValueError``) with the command line's message, naming the
argument (``latents``, ``labels``, ``masks``) where the command line names the file;
``FileNotFoundError`` for missing files.
"""

from __future__ import annotations

import json
import os
import warnings as _warnings

import numpy as np

from . import _diffusability as _ext
from ._diffusability import DiffusabilityError

__version__: str = _ext.__version__

__all__ = [
    "DiffusabilityError",
    "DiffusabilityWarning",
    "__version__",
    "metrics",
    "registry",
    "show_versions",
    "viv",
    "lnc",
    "linear_probe",
    "spatial",
    "sec",
    "uniformity",
    "equivariance",
    "fd",
    "trajectory",
    "study",
]


class DiffusabilityWarning(UserWarning):
    """A metric was skipped or clamped; the report's ``warnings`` say why."""


_REGISTRY = json.loads(_ext.registry_json())


def registry() -> list[dict]:
    """Every metric family of the library: ``name``, ``needs``, ``metrics`` (name, perspective,
    higher_is_better, opt_in, help) and ``params`` (name, kind, default, help). The keyword
    arguments of :func:`metrics` are the parameter names."""
    return json.loads(_ext.registry_json())


def _param_specs() -> dict[str, dict]:
    out: dict[str, dict] = {}
    for fam in _REGISTRY:
        for p in fam["params"]:
            out.setdefault(p["name"], p)
    return out


_PARAMS = _param_specs()

# -- array conversion ---------------------------------------------------------------------------

_FLOAT = {2: "f16", 4: "f32", 8: "f64"}
_INT = {1: "i8", 2: "i16", 4: "i32", 8: "i64"}
_UINT = {1: "u8", 2: "u16", 4: "u32", 8: "u64"}


def _torch_to_numpy(x):
    """A torch tensor as a numpy array without importing torch at module level: DLPack for CPU
    tensors (no copy), else ``.detach().cpu()``; bf16 travels as its raw 16-bit words."""
    t = x.detach() if hasattr(x, "detach") else x
    if getattr(t, "device", None) is not None and getattr(t.device, "type", "cpu") != "cpu":
        t = t.cpu()
    if str(getattr(t, "dtype", "")) == "torch.bfloat16":
        import torch  # present: x is a torch tensor

        return t.contiguous().view(torch.int16).numpy().view(np.uint16), "bf16"
    try:
        return np.from_dlpack(t), None
    except (TypeError, BufferError, RuntimeError, AttributeError):
        return t.numpy(), None


def _array(x, name: str):
    """``(array, dtype name)`` for the bindings: C order, native byte order; None stays None."""
    if x is None:
        return None
    forced = None
    if not isinstance(x, np.ndarray):
        if type(x).__module__.startswith("torch"):
            x, forced = _torch_to_numpy(x)
        elif hasattr(x, "__dlpack__"):
            x = np.from_dlpack(x)
        elif hasattr(x, "numpy") and callable(x.numpy):
            x = x.numpy()
        else:
            x = np.asarray(x)
    dt = x.dtype
    if forced is not None:
        dtype = forced
    elif dt.names is not None:
        raise DiffusabilityError(
            f"{name}: unsupported dtype: a structured (record) array; expected f16, bf16, f32, f64, "
            "an integer type or bool"
        )
    elif dt.kind == "f" and dt.itemsize in _FLOAT:
        dtype = _FLOAT[dt.itemsize]
    elif dt.kind == "i" and dt.itemsize in _INT:
        dtype = _INT[dt.itemsize]
    elif dt.kind == "u" and dt.itemsize in _UINT:
        dtype = _UINT[dt.itemsize]
    elif dt.kind == "b":
        dtype = "bool"
    elif dt.name == "bfloat16" and dt.itemsize == 2:  # ml_dtypes
        dtype = "bf16"
        x = x.view(np.uint16)
    else:
        raise DiffusabilityError(
            f"{name}: unsupported dtype `{dt}`; expected f16, bf16, f32, f64, an integer type or bool"
        )
    if not dt.isnative:
        x = x.astype(dt.newbyteorder("="))
    if not x.flags.c_contiguous:
        x = np.ascontiguousarray(x)
    return x, dtype


def _text(name: str, v) -> str:
    """A keyword value as the flag's argument text, so that it is parsed and validated exactly as
    the command line does (Python's float repr round-trips exactly)."""
    if isinstance(v, (os.PathLike, str)):
        return os.fspath(v)
    if isinstance(v, (bool, np.bool_)):
        return str(v)  # refused by the parser: True is not a number
    if isinstance(v, (float, np.floating)):
        return repr(float(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    return str(v)


def _params(func: str, kwargs: dict) -> dict[str, str]:
    out = {}
    for k, v in kwargs.items():
        if k not in _PARAMS:
            known = ", ".join(sorted(_PARAMS))
            raise TypeError(
                f"{func}() got an unexpected keyword argument {k!r}; metric parameters are: {known}"
            )
        if v is None:
            continue
        out[k] = _text(k, v)
    return out


def _selection(metrics) -> str:
    if isinstance(metrics, str):
        return metrics
    return ",".join(metrics)


def metrics(
    latents,
    labels=None,
    masks=None,
    metrics="default",
    *,
    normalize: str = "channel",
    seed: int = 0,
    threads: int | None = None,
    name: str = "array",
    **params,
) -> dict:
    """The report of one latent set, as ``diffusability metrics --json`` prints it.

    ``metrics`` is ``"default"`` (every metric the inputs allow that is not opt-in), ``"all"``, or
    metric names (a comma-separated string or a list). ``normalize`` is ``channel`` (default),
    ``global``, ``none``, ``scale:F`` or ``stats:FILE``. Every metric parameter is a keyword named as
    its flag with underscores (``lnc_k=10``, ``sec_ratio=0.5``, ``viv_ridge=1e-6``, ...; see
    :func:`registry`). ``threads`` sets the worker threads (default: all cores); results do not
    depend on it. ``name`` is the report's ``input.name``.

    Returns a dict with ``tool``, ``input``, ``params``, ``metrics``, ``details``, ``warnings`` and
    ``timings_s``.
    """
    p = _params("metrics", params)
    report = _ext.metrics_json(
        _array(latents, "latents"),
        _array(labels, "labels"),
        _array(masks, "masks"),
        _selection(metrics),
        p,
        str(normalize),
        int(seed),
        threads,
        str(name),
    )
    return json.loads(report)


# -- one function per metric family --------------------------------------------------------------

# Which registry entries each function covers: a family name, or every family of a perspective.
_GROUPS = {
    "viv": ("family", "viv"),
    "lnc": ("family", "lnc"),
    "linear_probe": ("family", "linear_probe"),
    "spatial": ("perspective", "spatial structure"),
    "sec": ("perspective", "latent smoothness"),
    "uniformity": ("perspective", "latent uniformity"),
}


def _group_metrics(group: str) -> list[tuple[dict, dict]]:
    by, value = _GROUPS[group]
    out = []
    for fam in _REGISTRY:
        for m in fam["metrics"]:
            if (by == "family" and fam["name"] == value) or (
                by == "perspective" and m["perspective"] == value
            ):
                out.append((fam, m))
    return out


def _family_call(group, latents, labels, masks, metrics, kwargs):
    entries = _group_metrics(group)
    if not entries:
        raise DiffusabilityError(f"{group}: no metric of this family in this build of diffusability")
    if metrics is None:
        names = [
            m["name"]
            for fam, m in entries
            if not m["opt_in"]
            and (labels is not None or not fam["needs"]["labels"])
            and (masks is not None or not fam["needs"]["masks"])
        ]
        if not names:
            need = sorted({w for fam, _ in entries for w, v in fam["needs"].items() if v})
            raise DiffusabilityError(f"{group}: needs {' and '.join(need)}, but none were given")
    else:
        names = [metrics] if isinstance(metrics, str) else list(metrics)
        allowed = {m["name"] for _, m in entries}
        for n in names:
            if n not in allowed:
                raise DiffusabilityError(
                    f"{group}: `{n}` is not one of its metrics: {', '.join(sorted(allowed))}"
                )
    report = globals()["metrics"](latents, labels, masks, names, **kwargs)
    for w in report["warnings"]:
        _warnings.warn(w, DiffusabilityWarning, stacklevel=3)
    return {k: report["metrics"][k] for k in names if k in report["metrics"]}


def _family_doc(group: str) -> str:
    lines = []
    for _, m in _group_metrics(group):
        opt = " (opt-in: name it in ``metrics``)" if m["opt_in"] else ""
        lines.append(f"- ``{m['name']}``{opt}: {m['help']}")
    return "\n".join(lines) or "- (no metric of this family in this build)"


def _make_family(group: str):
    def f(latents, labels=None, masks=None, *, metrics=None, **kwargs) -> dict[str, float]:
        return _family_call(group, latents, labels, masks, metrics, kwargs)

    f.__name__ = f.__qualname__ = group
    f.__doc__ = (
        f"The ``{group}`` metrics of a latent set as ``{{name: value}}``, for use inside a training "
        "loop.\n\nSame arguments as :func:`metrics` (``normalize``, ``seed``, ``threads``, metric "
        "parameters); ``metrics`` picks some of the family's metrics (default: those that are not "
        "opt-in and whose needs the inputs meet). Report warnings are issued as "
        ":class:`DiffusabilityWarning`. Metrics:\n\n" + _family_doc(group)
    )
    return f


viv = _make_family("viv")
lnc = _make_family("lnc")
linear_probe = _make_family("linear_probe")
spatial = _make_family("spatial")
sec = _make_family("sec")
uniformity = _make_family("uniformity")


# -- commands that are not per-latent-set metrics ------------------------------------------------


def equivariance(
    latents,
    transformed,
    transform: str,
    *,
    normalize: str = "channel",
    threads: int | None = None,
) -> dict:
    """Affine equivariance, as ``diffusability equivariance --json``: ``equiv_rel_err`` =
    mean_n ||tau(Z_n) - Z_tau,n|| / ||tau(Z_n)|| and ``equiv_cos`` = mean_n cos(tau(Z_n), Z_tau,n)
    (metrics.md, affine equivariance), with ``transform`` ``rot90:K`` (as ``torch.rot90``), ``flip``
    (horizontal) or ``scale:S`` (bilinear, ``align_corners=False``); the normalization is fitted on
    ``latents`` and applied to both."""
    return json.loads(
        _ext.equivariance_json(
            _array(latents, "latents"),
            _array(transformed, "transformed"),
            str(transform),
            str(normalize),
            threads,
        )
    )


def _fd_input(x, name):
    if isinstance(x, (str, os.PathLike)):
        return os.fspath(x)
    return _array(x, name)


def fd(a, b, *, threads: int | None = None) -> dict:
    """Fréchet distance, as ``diffusability fd A B --json``:
    ``||mu_a - mu_b||^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))`` (Heusel et al. 2017; pytorch-fid),
    with diagnostics. ``a`` and ``b`` are feature arrays ``(N, F)`` or paths of feature or
    statistics files (keys ``mu``, ``sigma``)."""
    return json.loads(_ext.fd_json(_fd_input(a, "a"), _fd_input(b, "b"), threads))


def trajectory(
    traj,
    times=None,
    *,
    layout: str = "kbchw",
    direction: str = "sit",
    latents=None,
    labels=None,
    normalize: str = "channel",
    viv_ridge: float | None = None,
    viv_tol: float | None = None,
    viv_max_sweeps: int | None = None,
    ideal: bool = False,
    ideal_samples: int | None = None,
    ideal_solver: str = "euler",
    seed: int = 0,
    threads: int | None = None,
) -> dict:
    """Straightness, efficiency and per-segment length ratio of recorded ODE sampling
    trajectories, as ``diffusability trajectory --json``. ``traj`` holds the states x_0 (noise) ..
    x_K (sample): ``(K+1, B, C, H, W)`` (``layout="kbchw"``) or ``(B, K+1, C, H, W)``; ``times`` the
    K+1 times (default uniform). With ``latents`` (and ``labels``), adds V(t) of their
    class-conditional Gaussian model (study eq. 4) and its Pearson r with the length ratio;
    ``ideal=True`` also integrates the Bayes-optimal ODE of that model."""
    t = None if times is None else [float(v) for v in np.asarray(times, dtype=np.float64).ravel()]
    return json.loads(
        _ext.trajectory_json(
            _array(traj, "traj"),
            t,
            str(layout),
            str(direction),
            _array(latents, "latents"),
            _array(labels, "labels"),
            str(normalize),
            None if viv_ridge is None else _text("viv_ridge", viv_ridge),
            None if viv_tol is None else _text("viv_tol", viv_tol),
            None if viv_max_sweeps is None else _text("viv_max_sweeps", viv_max_sweeps),
            bool(ideal),
            ideal_samples,
            str(ideal_solver),
            int(seed),
            threads,
        )
    )


def study(
    table=None,
    *,
    metrics_dir=None,
    results=None,
    target: str = "gfid",
    group_by=(),
    best_over: str | None = None,
    metrics=None,
    seed: int = 0,
    bootstrap: int = 2000,
) -> dict:
    """Which metric predicts generation quality, as ``diffusability study --json``: Pearson,
    Spearman and Kendall correlations with p-values, the perspective ranking and two-metric fits
    (metrics.md section 9). Give a CSV ``table``, or ``metrics_dir`` (``metrics`` JSON reports) and
    a ``results`` CSV."""
    if table is not None and (metrics_dir is not None or results is not None):
        raise DiffusabilityError(
            "study: give either TABLE.csv or --metrics-dir DIR --results FILE, not both"
        )
    if table is None and metrics_dir is not None and results is None:
        raise DiffusabilityError("study: --metrics-dir needs --results FILE")
    if table is None and metrics_dir is None and results is not None:
        raise DiffusabilityError("study: --results needs --metrics-dir DIR")
    if table is None and metrics_dir is None:
        raise DiffusabilityError("study: expected TABLE.csv, or --metrics-dir DIR --results FILE")
    group_by = [group_by] if isinstance(group_by, str) else list(group_by)
    path = lambda p: None if p is None else os.fspath(p)  # noqa: E731
    return json.loads(
        _ext.study_json(
            path(table),
            path(metrics_dir),
            path(results),
            str(target),
            group_by,
            best_over,
            None if metrics is None else _selection(metrics),
            int(seed),
            int(bootstrap),
        )
    )


def show_versions() -> None:
    """Prints the versions of diffusability, Python, numpy and the platform (for bug reports)."""
    import platform
    import sys

    print(f"diffusability: {__version__}")
    print(f"python:        {sys.version.split()[0]} ({platform.python_implementation()})")
    print(f"numpy:         {np.__version__}")
    print(f"platform:      {platform.platform()}")
    print(f"cpus:          {os.cpu_count()}")
    try:  # optional
        import torch  # noqa: F401

        print(f"torch:         {torch.__version__}")
    except ImportError:
        print("torch:         not installed")
