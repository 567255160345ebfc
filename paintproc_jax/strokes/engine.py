"""The stroke engine end to end: image (+ depth) -> fitted, ordered program -> process frames.

One place that the CLI, the dataset builder and the evaluation all call, so "paint this
image" means the same thing everywhere.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import numpy as np

from paintproc_jax.program import StrokeProgram, stack, unstack
from paintproc_jax.strokes import fit as fit_lib
from paintproc_jax.strokes import plan as plan_lib
from paintproc_jax.strokes import process as process_lib


@dataclasses.dataclass(frozen=True)
class EngineConfig:
    plan: plan_lib.PlanConfig = plan_lib.PlanConfig()
    fit: fit_lib.FitConfig = fit_lib.FitConfig()


def decompose(
    images: Sequence[np.ndarray],
    depths: Sequence[np.ndarray],
    config: EngineConfig,
    seed: int = 0,
    progress: Callable[[int, float], None] | None = None,
) -> tuple[list[StrokeProgram], np.ndarray]:
    """Plans and (if `config.fit.steps` > 0) fits a batch of images of one `fit.batch_key`
    (one size, or one canvas bucket for level-major plans).

    Returns the programs (in painting order) and the final per-image MSE of the fit at the
    images' resolution (NaN when not fitted).
    """
    if not images:
        return [], np.zeros(0)
    keys = {fit_lib.batch_key(config.plan, config.fit, im.shape[:2]) for im in images}
    if len(keys) != 1:
        raise ValueError(f"a batch must hold images of one size (or canvas bucket), got {sorted({im.shape for im in images})}")
    programs = [plan_lib.plan_strokes(im, d, config.plan, seed=seed + i) for i, (im, d) in enumerate(zip(images, depths))]
    if config.fit.steps <= 0:
        return programs, np.full(len(images), np.nan)
    fitted, mse = fit_lib.fit_programs(stack(programs), images, config.fit, plan=config.plan, progress=progress)
    return unstack(fitted), mse


def paint(
    image: np.ndarray,
    depth: np.ndarray,
    frames: int,
    config: EngineConfig,
    seed: int = 0,
    progress: Callable[[int, float], None] | None = None,
) -> tuple[np.ndarray, StrokeProgram, float]:
    """The whole process for one image: frames [T, H, W, 3] (blank -> image), program, fit MSE."""
    (program,), mse = decompose([image], [depth], config, seed=seed, progress=progress)
    canvas = None
    canvases = fit_lib.canonical_layouts(config.plan, config.fit, image.shape[:2]) if config.fit.steps > 0 else None
    if canvases is not None:  # the fitted strokes stay inside the fit's full-size windows: one compiled render per bucket
        canvas = canvases[-1]
    frames_arr, program = process_lib.process_frames(program, image, depth, frames, canvas=canvas)
    return frames_arr, program, float(mse[0])
