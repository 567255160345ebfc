"""Stage metrics: how good a picture the painting is part of the way through.

A viewer watches the intermediate frames of a painting video, so besides the finished frame we
judge the frames at 1/16, 1/8, 1/4 and 1/2 of the process: PSNR (`fidelity.psnr`, dB, capped at
100) and LPIPS of each against the final image (the evaluation reference: the input being
painted). Keys: `stage_psnr_1_16` … `stage_psnr_1_2`, `stage_lpips_1_16` … `stage_lpips_1_2`, and
`stage_psnr` / `stage_lpips`, the means over the four fractions.

Which frame is "fraction f of the process" (`stage_indices`; round = half up):

- **a stroke process** — frame 0 the blank canvas, frames 1..S the stroke frames (frame k shows
  about k/S of the strokes), then the reveal stage — is judged on its strokes alone, before any
  reveal: index round(f * S). S is `process.json`'s `"stroke_frames"` (written by
  `paintproc paint` and by `make_baselines`); older folders without it get
  `split_frames(T)[0]`, the split their frames were made with (`stroke_frames_of`).
- **any other process** (a diffusion sample, a method folder of unknown make) is judged at
  fractions of the whole process: index round(f * (T - 1)) over all T frames.

Baselines (`metrics/baselines.py`) follow the same rule by what their frames are: `crossfade`
and `raster` have no stroke stage, so fractions of the whole process; `strokes` and
`random_strokes` are stroke-engine processes (blank + `split_frames(T)[0]` stroke frames made
by `process_frames`, then a reveal / a uniform fade), so the stroke rule — the same rule as
`paintproc paint`, which keeps the `strokes` baseline and the engine comparable frame for frame
(by whole-process fractions the `strokes` baseline would be judged at ~0.6 of its strokes where
the engine is judged at 0.5). For f <= 1/2 neither rule reaches the reveal stage of a stroke
process (the reveal is ~15% of the frames).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from paintproc_jax.errors import PaintprocError
from paintproc_jax.metrics import fidelity
from paintproc_jax.strokes.schedule import split_frames

# baselines (`baselines.stroke_processes`) that are stroke-engine processes: blank + split_frames(T)[0] stroke frames
STROKE_BASELINES = ("random_strokes", "strokes")

STAGE_FRACTIONS = (1 / 16, 1 / 8, 1 / 4, 1 / 2)
STAGE_NAMES = ("1_16", "1_8", "1_4", "1_2")  # key suffixes, one per fraction
STAGE_PSNR_KEYS = tuple(f"stage_psnr_{n}" for n in STAGE_NAMES)
STAGE_LPIPS_KEYS = tuple(f"stage_lpips_{n}" for n in STAGE_NAMES)
STAGE_KEYS = ("stage_psnr", "stage_lpips") + STAGE_PSNR_KEYS + STAGE_LPIPS_KEYS  # every key `stage_scores` returns


def stage_indices(num_frames: int, stroke_frames: int | None = None) -> np.ndarray:
    """Frame index [4] per stage fraction of a process of `num_frames` frames: round(f * S) for a
    stroke process with S stroke frames after the blank canvas, else round(f * (T - 1))."""
    if num_frames < 2:
        raise ValueError(f"a process needs at least 2 frames, got {num_frames}")
    if stroke_frames is None:
        span = num_frames - 1
    else:
        span = int(stroke_frames)
        if not 1 <= span <= num_frames - 1:
            raise ValueError(f"stroke_frames must be in [1, {num_frames - 1}] for {num_frames} frames, got {stroke_frames}")
    # half up (np.round is half to even); f * span is exact for these power-of-two fractions
    return np.floor(np.asarray(STAGE_FRACTIONS) * span + 0.5).astype(np.int64)


def stroke_frames_of(meta: dict, num_frames: int) -> int | None:
    """The stroke-frame count S of a process from its process.json `meta`, or None for a process
    without a stroke stage (see the module docstring for which processes have one)."""
    if "stroke_frames" in meta:
        value = meta["stroke_frames"]
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= num_frames - 1:
            raise PaintprocError(f"process.json stroke_frames must be an integer in [1, {num_frames - 1}] "
                                 f"for {num_frames} frames, got {value!r}")
        return value
    engine = meta.get("engine")
    if engine == "strokes" or (engine == "baseline" and meta.get("baseline") in STROKE_BASELINES):
        if num_frames < 3:
            raise PaintprocError(f"a stroke process needs at least 3 frames (blank, strokes, image), got {num_frames}")
        return split_frames(num_frames)[0]  # folders written before the field: the split paint used
    return None


def stage_scores(frames: np.ndarray, final: np.ndarray, distance: Callable, stroke_frames: int | None = None) -> dict:
    """PSNR and LPIPS (`distance`) against `final` [H, W, 3] of the stage frames of frames
    [T, H, W, 3] (painting order, [0, 1]); keys `STAGE_KEYS`."""
    frames, final = np.asarray(frames, np.float32), np.asarray(final, np.float32)
    stages = frames[stage_indices(len(frames), stroke_frames)]  # [4, H, W, 3]
    psnr = np.asarray(fidelity.psnr(stages, final[None]), np.float64)  # [4]
    lpips = np.asarray(distance(stages, np.broadcast_to(final, stages.shape)), np.float64).reshape(-1)  # [4]
    m = {"stage_psnr": float(psnr.mean()), "stage_lpips": float(lpips.mean())}
    m.update({k: float(v) for k, v in zip(STAGE_PSNR_KEYS, psnr)})
    m.update({k: float(v) for k, v in zip(STAGE_LPIPS_KEYS, lpips)})
    return m
