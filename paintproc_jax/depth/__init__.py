"""Depth: image `[H, W, 3]` in [0, 1] -> relative depth `[H, W]` float32 in [0, 1], 1 = nearest.

Sources: a depth file (e.g. a sidecar beside the image), the weight-free built-in estimator (the
default), or any estimator registered by name (learned ones plug in via `register_estimator`).
NumPy/SciPy only, so it runs in grain data workers.
"""

from __future__ import annotations

import os

import numpy as np

from paintproc_jax.depth.base import (
    DepthEstimator,
    available_estimators,
    get_estimator,
    normalize_depth,
    register_estimator,
    validate_depth,
)
from paintproc_jax.depth.builtin import BuiltinDepth, guided_filter, rank_normalize, soft_rank
from paintproc_jax.depth.files import load_depth_file, sidecar_depth_path
from paintproc_jax.errors import PaintprocError

__all__ = [
    "BuiltinDepth",
    "DepthEstimator",
    "available_estimators",
    "estimate_depth",
    "get_estimator",
    "guided_filter",
    "load_depth_file",
    "normalize_depth",
    "rank_normalize",
    "register_estimator",
    "sidecar_depth_path",
    "soft_rank",
    "validate_depth",
]


def estimate_depth(
    image: np.ndarray,
    depth_file: str | os.PathLike | None = None,
    *,
    estimator: str | DepthEstimator = "builtin",
    far_is_high: bool = False,
) -> np.ndarray:
    """Depth for `image [H, W, 3]` -> `[H, W]` float32 in [0, 1], 1 = nearest.

    From `depth_file` if given (resized to the image; `far_is_high` for metric depth/distance maps),
    else from `estimator` (a registered name or an estimator object). The result is checked against
    the protocol either way, so a misbehaving plug-in fails here, in one line, not downstream.
    """
    shape = np.shape(image)
    if len(shape) not in (2, 3) or shape[0] < 1 or shape[1] < 1:
        raise PaintprocError(f"estimate_depth: expected an image [H, W, 3], got shape {tuple(shape)}")
    hw = (int(shape[0]), int(shape[1]))
    if depth_file is not None:
        d = load_depth_file(depth_file, hw, far_is_high=far_is_high)
        where = f"depth file {depth_file}"
    else:
        est = get_estimator(estimator) if isinstance(estimator, str) else estimator
        d = est(image)
        where = f"depth estimator {getattr(est, 'name', type(est).__name__)!r}"
    # A constant map is legitimate from an estimator (1x1 or blank image); files were checked on load.
    d = validate_depth(d, where, allow_constant=True)
    if d.shape != hw:
        raise PaintprocError(f"{where}: depth shape {tuple(d.shape)} does not match the image's {hw}")
    lo, hi = float(d.min()), float(d.max())
    if lo < 0.0 or hi > 1.0:
        raise PaintprocError(f"{where}: depth values must be in [0, 1], got [{lo:.4g}, {hi:.4g}]")
    return np.ascontiguousarray(d, dtype=np.float32)
