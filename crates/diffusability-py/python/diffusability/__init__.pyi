"""Type stubs of diffusability: proxy metrics of latent diffusability (arXiv 2606.03578)."""

import os
from typing import Any, Iterable, Optional, Sequence, Union

ArrayLike = Any  # numpy.ndarray, a torch tensor, or any DLPack producer / array-like
PathLike = Union[str, "os.PathLike[str]"]
Selection = Union[str, Sequence[str]]
ParamValue = Union[int, float, str, PathLike, None]

__version__: str
__all__: list[str]

class DiffusabilityError(ValueError):
    """Bad input or parameters, with the command line's message."""

class DiffusabilityWarning(UserWarning):
    """A metric was skipped or clamped."""

def registry() -> list[dict[str, Any]]: ...
def metrics(
    latents: ArrayLike,
    labels: Optional[ArrayLike] = ...,
    masks: Optional[ArrayLike] = ...,
    metrics: Selection = ...,
    *,
    normalize: str = ...,
    seed: int = ...,
    threads: Optional[int] = ...,
    name: str = ...,
    **params: ParamValue,
) -> dict[str, Any]: ...
def viv(
    latents: ArrayLike,
    labels: Optional[ArrayLike] = ...,
    masks: Optional[ArrayLike] = ...,
    *,
    metrics: Optional[Selection] = ...,
    **kwargs: ParamValue,
) -> dict[str, float]: ...
def lnc(
    latents: ArrayLike,
    labels: Optional[ArrayLike] = ...,
    masks: Optional[ArrayLike] = ...,
    *,
    metrics: Optional[Selection] = ...,
    **kwargs: ParamValue,
) -> dict[str, float]: ...
def linear_probe(
    latents: ArrayLike,
    labels: Optional[ArrayLike] = ...,
    masks: Optional[ArrayLike] = ...,
    *,
    metrics: Optional[Selection] = ...,
    **kwargs: ParamValue,
) -> dict[str, float]: ...
def spatial(
    latents: ArrayLike,
    labels: Optional[ArrayLike] = ...,
    masks: Optional[ArrayLike] = ...,
    *,
    metrics: Optional[Selection] = ...,
    **kwargs: ParamValue,
) -> dict[str, float]: ...
def sec(
    latents: ArrayLike,
    labels: Optional[ArrayLike] = ...,
    masks: Optional[ArrayLike] = ...,
    *,
    metrics: Optional[Selection] = ...,
    **kwargs: ParamValue,
) -> dict[str, float]: ...
def uniformity(
    latents: ArrayLike,
    labels: Optional[ArrayLike] = ...,
    masks: Optional[ArrayLike] = ...,
    *,
    metrics: Optional[Selection] = ...,
    **kwargs: ParamValue,
) -> dict[str, float]: ...
def equivariance(
    latents: ArrayLike,
    transformed: ArrayLike,
    transform: str,
    *,
    normalize: str = ...,
    threads: Optional[int] = ...,
) -> dict[str, Any]: ...
def fd(
    a: Union[ArrayLike, PathLike],
    b: Union[ArrayLike, PathLike],
    *,
    threads: Optional[int] = ...,
) -> dict[str, Any]: ...
def trajectory(
    traj: ArrayLike,
    times: Optional[Union[ArrayLike, Iterable[float]]] = ...,
    *,
    layout: str = ...,
    direction: str = ...,
    latents: Optional[ArrayLike] = ...,
    labels: Optional[ArrayLike] = ...,
    normalize: str = ...,
    viv_ridge: Optional[float] = ...,
    viv_tol: Optional[float] = ...,
    viv_max_sweeps: Optional[int] = ...,
    ideal: bool = ...,
    ideal_samples: Optional[int] = ...,
    ideal_solver: str = ...,
    seed: int = ...,
    threads: Optional[int] = ...,
) -> dict[str, Any]: ...
def study(
    table: Optional[PathLike] = ...,
    *,
    metrics_dir: Optional[PathLike] = ...,
    results: Optional[PathLike] = ...,
    target: str = ...,
    group_by: Union[str, Sequence[str]] = ...,
    best_over: Optional[str] = ...,
    metrics: Optional[Selection] = ...,
    seed: int = ...,
    bootstrap: int = ...,
) -> dict[str, Any]: ...
def show_versions() -> None: ...
