"""Process frames: blank canvas -> strokes -> the input image, exactly.

Forward time: frame 0 is the blank canvas; stroke frames show growing prefixes of the
program (one render pass, `raster.render_frames`); a final *reveal* stage blends in the
residual detail the strokes cannot carry, far layers first (by depth), so the last frame is
the input image itself. Training clips are the same frames reversed (reference first).
"""

from __future__ import annotations

import numpy as np

from paintproc_jax.program import StrokeProgram
from paintproc_jax.strokes import raster


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


def reveal_frames(strokes_final: np.ndarray, image: np.ndarray, depth: np.ndarray, count: int, softness: float = 0.15) -> np.ndarray:
    """Frames [count, H, W, 3] that blend the residual in, far (low depth) first; the last is `image`."""
    residual = image - strokes_final
    out = []
    for k in range(1, count + 1):
        f = k / count
        mask = np.clip((f * (1.0 + softness) - depth) / softness, 0.0, 1.0)[..., None]
        out.append(strokes_final + mask * residual)
    out[-1] = image.astype(np.float32).copy()
    return np.stack(out).astype(np.float32)


def process_frames(program: StrokeProgram, image: np.ndarray, depth: np.ndarray, frames: int) -> tuple[np.ndarray, StrokeProgram]:
    """The whole forward process [frames, H, W, 3] in [0, 1] at the image's resolution.

    Returns the frames and the program with its stroke-frame schedule set.
    """
    h, w = image.shape[:2]
    n_strokes, n_reveal = split_frames(frames)
    program = program._replace(frame_ends=frame_schedule(program.num_strokes, n_strokes))
    size = max(h, w)
    stroke_frames = raster.render_program_frames(program, size)
    if stroke_frames.shape[1:3] != (h, w):
        raise ValueError(f"program canvas {stroke_frames.shape[1:3]} does not match the image {(h, w)}")
    blank = np.broadcast_to(np.asarray(program.background, np.float32), (1, h, w, 3))
    tail = reveal_frames(stroke_frames[-1], image, depth, n_reveal)
    return np.concatenate([blank, stroke_frames, tail]).astype(np.float32), program


def reverse_clip(frames: np.ndarray) -> np.ndarray:
    """Training order (both papers): reference image first, blank canvas last."""
    return frames[::-1]
