"""`StrokeProgram`: the one type that describes a painting process.

A program is a pytree of small arrays (kilobytes) that rendering, frames, datasets and the
JSON/SVG exports all consume. Array order *is* painting order.

Units are resolution independent: lengths are fractions of the canvas's longer side, so
`x` runs over `[0, canvas_hw[1]]`, `y` over `[0, canvas_hw[0]]`, and one of the two
extents is exactly 1. A program renders at any pixel size with the same aspect ratio.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

# Columns of `StrokeProgram.params`, in order.
PARAM_NAMES = (
    "x",  # centre, canvas units
    "y",
    "length",  # along the stroke, canvas units (end to end, including the rounded caps)
    "width",  # across the stroke, canvas units
    "angle",  # radians, direction of the stroke's long axis (image x to the right, y down)
    "bend",  # sagitta of the centre line as a fraction of the length (0 = straight)
    "r",  # colour in [0, 1]
    "g",
    "b",
    "opacity",  # in [0, 1]
    "seed",  # in [0, 1): phase of the medium's texture (bristles, grain)
)
NUM_PARAMS = len(PARAM_NAMES)
P = {name: i for i, name in enumerate(PARAM_NAMES)}

MEDIA = ("oil", "acrylic", "watercolor", "pencil", "marker")
MEDIUM_ID = {name: i for i, name in enumerate(MEDIA)}


class StrokeProgram(NamedTuple):
    """One painting process (a pytree; leaves may carry a leading batch axis).

    params:     [N, NUM_PARAMS] float32, columns as in `PARAM_NAMES`.
    layer:      [N] int32, depth layer, far = 0.
    level:      [N] int32, refinement level, coarse = 0.
    valid:      [N] bool, False for padding strokes (never drawn).
    frame_ends: [T] int32, strokes shown by each stroke frame (non-decreasing, <= N).
    medium:     [] int32, index into `MEDIA`.
    canvas_hw:  [2] float32, canvas extent (height, width) in units of the longer side.
    background: [3] float32, colour of the blank canvas (white or a toned ground).
    """

    params: np.ndarray
    layer: np.ndarray
    level: np.ndarray
    valid: np.ndarray
    frame_ends: np.ndarray
    medium: np.ndarray
    canvas_hw: np.ndarray
    background: np.ndarray

    @property
    def num_strokes(self) -> int:
        return int(self.params.shape[-2])


def canvas_hw_for(height: int, width: int) -> np.ndarray:
    """Canvas extent in long-side units for an image of `height` x `width` pixels."""
    long_side = max(height, width)
    return np.array([height / long_side, width / long_side], np.float32)


def pixel_size(canvas_hw, size: int) -> tuple[int, int]:
    """(H, W) in pixels for a canvas whose longer side is `size` pixels."""
    h, w = (float(v) for v in np.asarray(canvas_hw))
    return max(1, int(round(h * size))), max(1, int(round(w * size)))


def make_program(
    params,
    *,
    layer=None,
    level=None,
    valid=None,
    frame_ends=None,
    medium: int | str = 0,
    canvas_hw=(1.0, 1.0),
    background=(1.0, 1.0, 1.0),
) -> StrokeProgram:
    """Builds a host (NumPy) program with checked shapes and dtypes; defaults fill the rest."""
    params = np.asarray(params, np.float32)
    if params.ndim != 2 or params.shape[1] != NUM_PARAMS:
        raise ValueError(f"params must be [N, {NUM_PARAMS}], got {params.shape}")
    n = params.shape[0]
    if isinstance(medium, str):
        if medium not in MEDIUM_ID:
            raise ValueError(f"unknown medium {medium!r}; choose one of {', '.join(MEDIA)}")
        medium = MEDIUM_ID[medium]
    if not 0 <= int(medium) < len(MEDIA):
        raise ValueError(f"medium id {medium} out of range 0..{len(MEDIA) - 1}")

    def ints(x, default):
        x = np.full(n, default, np.int32) if x is None else np.asarray(x, np.int32)
        if x.shape != (n,):
            raise ValueError(f"per-stroke arrays must be [{n}], got {x.shape}")
        return x

    valid = np.ones(n, bool) if valid is None else np.asarray(valid, bool)
    if valid.shape != (n,):
        raise ValueError(f"valid must be [{n}], got {valid.shape}")
    frame_ends = np.array([n], np.int32) if frame_ends is None else np.asarray(frame_ends, np.int32)
    if frame_ends.ndim != 1 or (frame_ends.size and (np.any(np.diff(frame_ends) < 0)
                                                    or frame_ends.min() < 0 or frame_ends.max() > n)):
        raise ValueError("frame_ends must be a non-decreasing 1-D array of stroke counts in [0, N]")
    return StrokeProgram(
        params=params,
        layer=ints(layer, 0),
        level=ints(level, 0),
        valid=valid,
        frame_ends=frame_ends,
        medium=np.asarray(int(medium), np.int32),
        canvas_hw=np.asarray(canvas_hw, np.float32).reshape(2),
        background=np.asarray(background, np.float32).reshape(3),
    )


def stack(programs: list[StrokeProgram]) -> StrokeProgram:
    """Stacks programs of equal shapes into one with a leading batch axis."""
    return StrokeProgram(*(np.stack(leaves) for leaves in zip(*programs)))


def unstack(program: StrokeProgram) -> list[StrokeProgram]:
    """Inverse of `stack`."""
    n = np.asarray(program.params).shape[0]
    return [StrokeProgram(*(np.asarray(x)[i] for x in program)) for i in range(n)]
