"""Baseline processes to judge a painter against, on the same image: frames [T, H, W, 3] in [0, 1],
painting order (blank canvas first, the image last).

- `crossfade`: the image fades in from a white canvas (no order in space at all).
- `raster`: pixels appear in reading order, row by row (an order, but not a painter's).
- `random_strokes`: the stroke engine's strokes in a random order, then a uniform fade of the
  residual (strokes, but neither layered nor coarse to fine).
- `strokes`: the stroke engine itself (layered by depth, coarse to fine).
"""

from __future__ import annotations

import numpy as np

from paintproc_jax.strokes.engine import EngineConfig, decompose
from paintproc_jax.strokes.fit import FitConfig
from paintproc_jax.strokes.plan import PlanConfig
from paintproc_jax.strokes.process import process_frames
from paintproc_jax.strokes.schedule import split_frames

BASELINES = ("crossfade", "raster", "random_strokes", "strokes")


def _times(frames: int) -> np.ndarray:
    if frames < 3:
        raise ValueError(f"a baseline process needs at least 3 frames, got {frames}")
    return np.linspace(0.0, 1.0, frames, dtype=np.float32)


def crossfade(image: np.ndarray, frames: int) -> np.ndarray:
    """Linear blend from white to the image."""
    t = _times(frames)[:, None, None, None]
    return ((1.0 - t) + t * np.asarray(image, np.float32)[None]).astype(np.float32)


def raster(image: np.ndarray, frames: int) -> np.ndarray:
    """Pixels revealed in row-major order over a white canvas, an equal share per frame."""
    image = np.asarray(image, np.float32)
    h, w = image.shape[:2]
    shown = np.round(_times(frames) * h * w).astype(np.int64)  # pixels shown per frame
    index = np.arange(h * w).reshape(h, w)
    mask = index[None] < shown[:, None, None]  # [T, H, W]
    return np.where(mask[..., None], image[None], 1.0).astype(np.float32)


def stroke_processes(image: np.ndarray, depth: np.ndarray, frames: int, *, strokes: int = 400, fit_steps: int = 30,
                     medium: str = "oil", seed: int = 0) -> dict[str, np.ndarray]:
    """{"strokes", "random_strokes"} from one decomposition of the image: the engine's order
    (layer-major: far to near, coarse to fine) and the same strokes shuffled."""
    image = np.asarray(image, np.float32)
    config = EngineConfig(plan=PlanConfig(strokes=strokes, medium=medium), fit=FitConfig(steps=fit_steps))
    (program,), _ = decompose([image], [depth], config, seed=seed)
    ordered, _ = process_frames(program, image, depth, frames)

    rng = np.random.default_rng(seed)
    valid = np.flatnonzero(program.valid)
    perm = np.concatenate([rng.permutation(valid), np.flatnonzero(~program.valid)])  # padding stays last
    shuffled = program._replace(params=program.params[perm], layer=program.layer[perm], level=program.level[perm],
                                valid=program.valid[perm])
    rand, _ = process_frames(shuffled, image, depth, frames)
    # The engine's reveal stage blends the residual far-first; the random baseline fades it in uniformly.
    n_strokes, n_reveal = split_frames(frames)
    start = rand[n_strokes]  # the last stroke frame
    f = (np.arange(1, n_reveal + 1, dtype=np.float32) / n_reveal)[:, None, None, None]
    rand[n_strokes + 1 :] = start[None] + f * (image[None] - start[None])
    return {"strokes": ordered, "random_strokes": rand}


def baseline_processes(image: np.ndarray, depth: np.ndarray, frames: int, *, names=BASELINES, **stroke_kwargs) -> dict[str, np.ndarray]:
    """{name: frames [T, H, W, 3]} for the requested baselines of one image."""
    unknown = sorted(set(names) - set(BASELINES))
    if unknown:
        raise ValueError(f"unknown baselines {unknown}; choose from {BASELINES}")
    out = {}
    if "crossfade" in names:
        out["crossfade"] = crossfade(image, frames)
    if "raster" in names:
        out["raster"] = raster(image, frames)
    if {"strokes", "random_strokes"} & set(names):
        made = stroke_processes(image, depth, frames, **stroke_kwargs)
        out.update({k: v for k, v in made.items() if k in names})
    return out
