"""Frame schedules: how many strokes each frame of a process shows (NumPy only: data workers use it)."""

from __future__ import annotations

import numpy as np


def frame_schedule(num_strokes: int, frames: int, rng: np.random.Generator | None = None, jitter: float = 0.0) -> np.ndarray:
    """`frames` cumulative stroke counts ending at `num_strokes` (evenly spaced, optionally jittered)."""
    if frames < 1:
        raise ValueError("need at least one stroke frame")
    steps = np.full(frames, num_strokes / frames)
    if rng is not None and jitter > 0:
        steps = steps * rng.uniform(1 - jitter, 1 + jitter, frames)
        steps = steps / steps.sum() * num_strokes
    ends = np.round(np.cumsum(steps)).astype(np.int32)
    ends[-1] = num_strokes
    return np.clip(ends, 0, num_strokes)


def split_frames(total: int, reveal_fraction: float = 0.15) -> tuple[int, int]:
    """(stroke frames, reveal frames) for a process of `total` frames (one is the blank canvas)."""
    if total < 3:
        raise ValueError(f"a process needs at least 3 frames (blank, strokes, image); got {total}")
    reveal = max(1, int(round(reveal_fraction * total)))
    strokes = max(1, total - 1 - reveal)
    return strokes, total - 1 - strokes
