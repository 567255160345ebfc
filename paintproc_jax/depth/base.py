"""The depth protocol, the estimator registry, and map checks.

Protocol (whole project): image `[H, W, 3]` float32 in [0, 1] -> relative depth `[H, W]` float32 in
[0, 1], **1 = nearest**, at the input resolution. NumPy only: this runs in grain data workers.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import numpy as np

from paintproc_jax.errors import PaintprocError, one_line


@runtime_checkable
class DepthEstimator(Protocol):
    """Anything that maps an image `[H, W, 3]` in [0, 1] to depth `[H, W]` in [0, 1], 1 = nearest."""

    name: str

    def __call__(self, image: np.ndarray) -> np.ndarray: ...


EstimatorFactory = Callable[..., DepthEstimator]

_REGISTRY: dict[str, EstimatorFactory] = {}
# Modules that register estimators on import; imported lazily so `get_estimator` works even when
# only `base` was imported (and without an import cycle).
_BUILTIN_MODULES = ("paintproc_jax.depth.builtin", "paintproc_jax.depth.learned")


def register_estimator(name: str, factory: EstimatorFactory) -> EstimatorFactory:
    """Make `factory(**kwargs) -> DepthEstimator` available as `get_estimator(name, **kwargs)`.

    Re-registering a name replaces it (so a plugin can override a default). Returns `factory`, so
    this also works as a decorator via `functools.partial(register_estimator, "name")`.
    """
    if not isinstance(name, str) or not name or any(c.isspace() for c in name):
        raise ValueError(f"estimator name must be a non-empty string without spaces, got {name!r}")
    if not callable(factory):
        raise TypeError(f"estimator factory for {name!r} must be callable, got {type(factory).__name__}")
    _REGISTRY[name] = factory
    return factory


def _load_builtins() -> None:
    for mod in _BUILTIN_MODULES:
        importlib.import_module(mod)


def available_estimators() -> tuple[str, ...]:
    """Names `get_estimator` accepts, sorted."""
    _load_builtins()
    return tuple(sorted(_REGISTRY))


def get_estimator(name: str = "builtin", **kwargs: Any) -> DepthEstimator:
    """Build the estimator registered as `name` with `kwargs`; PaintprocError for unknown names."""
    _load_builtins()
    if name not in _REGISTRY:
        known = ", ".join(sorted(_REGISTRY)) or "(none)"
        raise PaintprocError(f"unknown depth estimator {name!r}; known estimators: {known}")
    try:
        return _REGISTRY[name](**kwargs)
    except TypeError as e:  # bad option names from a config/CLI: report in one line
        msg = one_line(e)
        raise PaintprocError(f"bad options for depth estimator {name!r}: {msg}") from e


def normalize_depth(d: np.ndarray) -> np.ndarray:
    """Min-max normalize to [0, 1] float32 (computed in float64). A constant map becomes all 0.5."""
    d = np.asarray(d, dtype=np.float64)
    if d.size == 0:
        return d.astype(np.float32)
    lo, hi = float(d.min()), float(d.max())
    if not hi > lo:  # constant (or NaN: callers validate first)
        return np.full(d.shape, 0.5, dtype=np.float32)
    out = (d - lo) / (hi - lo)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def is_nearly_constant(d: np.ndarray, rel: float = 1e-6) -> bool:
    """True if the value range is below `rel` times the largest magnitude (or exactly zero)."""
    d = np.asarray(d, dtype=np.float64)
    lo, hi = float(d.min()), float(d.max())
    ptp = hi - lo
    return ptp == 0.0 or ptp <= rel * max(abs(lo), abs(hi))


def validate_depth(d: Any, where: str, *, allow_constant: bool = False) -> np.ndarray:
    """Check a depth map is 2-D, finite and not (nearly) constant; PaintprocError naming `where`.

    Returns the map as a NumPy array (dtype unchanged). `allow_constant` is for estimator outputs,
    where a constant map is legitimate (a 1x1 or blank image); files must carry information.
    """
    where = " ".join(str(where).split())  # error messages stay on one line
    try:
        arr = np.asarray(d)
    except Exception as e:  # pragma: no cover - exotic objects
        raise PaintprocError(f"{where}: depth map is not an array ({type(d).__name__})") from e
    if arr.ndim != 2:
        raise PaintprocError(f"{where}: depth map must be 2-D [H, W], got shape {tuple(arr.shape)}")
    if arr.size == 0:
        raise PaintprocError(f"{where}: depth map is empty (shape {tuple(arr.shape)})")
    if arr.dtype == bool:
        arr = arr.astype(np.float32)
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise PaintprocError(f"{where}: depth map must be numeric, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.floating):
        finite = np.isfinite(arr)
        if not finite.all():
            n_nan = int(np.isnan(arr).sum())
            n_inf = int(arr.size - finite.sum() - n_nan)
            raise PaintprocError(f"{where}: depth map has non-finite values ({n_nan} NaN, {n_inf} inf)")
    if not allow_constant and is_nearly_constant(arr):
        raise PaintprocError(
            f"{where}: depth map is constant (all values ~{float(arr.flat[0]):.6g}); it carries no depth"
        )
    return arr
