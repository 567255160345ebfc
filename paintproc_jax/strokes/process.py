"""Process frames: blank canvas -> strokes -> the input image, exactly.

Forward time: frame 0 is the blank canvas; stroke frames show growing prefixes of the
program (one render pass, `raster.render_frames`); a final *reveal* stage blends in the
residual detail the strokes cannot carry, far layers first (by depth), so the last frame is
the input image itself. Training clips are the same frames reversed (reference first).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from paintproc_jax.program import StrokeProgram
from paintproc_jax.strokes import raster
from paintproc_jax.strokes.schedule import frame_schedule, split_frames  # noqa: F401 (part of this module's API)


def reveal_frames(strokes_final, image, depth, count: int, softness: float = 0.15) -> jax.Array:
    """Frames [count, H, W, 3] that blend the residual in, far (low depth) first; the last is `image`.

    jnp, so the CLI (host arrays) and the batched clip renderer (inside jit) share it.
    """
    image = jnp.asarray(image, jnp.float32)
    f = jnp.arange(1, count + 1, dtype=jnp.float32)[:, None, None] / count  # [count, 1, 1]
    mask = jnp.clip((f * (1.0 + softness) - jnp.asarray(depth)) / softness, 0.0, 1.0)[..., None]
    out = strokes_final + mask * (image - strokes_final)
    return out.at[-1].set(image)


def process_frames(program: StrokeProgram, image: np.ndarray, depth: np.ndarray, frames: int,
                   canvas=None) -> tuple[np.ndarray, StrokeProgram]:
    """The whole forward process [frames, H, W, 3] in [0, 1] at the image's resolution.

    Returns the frames and the program with its stroke-frame schedule set. `canvas` = (canvas
    hw, layout) renders the strokes on that padded canvas (`raster.render_program_frames`).
    """
    h, w = image.shape[:2]
    n_strokes, n_reveal = split_frames(frames)
    program = program._replace(frame_ends=frame_schedule(program.num_strokes, n_strokes))
    size = max(h, w)
    stroke_frames = raster.render_program_frames(program, size, canvas=canvas)
    if stroke_frames.shape[1:3] != (h, w):
        raise ValueError(f"program canvas {stroke_frames.shape[1:3]} does not match the image {(h, w)}")
    blank = np.broadcast_to(np.asarray(program.background, np.float32), (1, h, w, 3))
    tail = np.asarray(reveal_frames(stroke_frames[-1], image, depth, n_reveal))
    return np.concatenate([blank, stroke_frames, tail]).astype(np.float32), program


def reverse_clip(frames: np.ndarray) -> np.ndarray:
    """Training order (both papers): reference image first, blank canvas last."""
    return frames[::-1]
