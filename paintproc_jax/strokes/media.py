"""Media as brush families: one renderer, one table of parameters per medium.

Rendering reads a row of `RENDER_TABLE` by the program's medium id (so one compiled renderer
serves every medium); planning reads `PLAN_STYLE` (how a medium is laid down: broad washes,
thin hatching lines, ...).
"""

from __future__ import annotations

import numpy as np

from paintproc_jax.program import MEDIA

# Columns of RENDER_TABLE. Lengths that scale with the stroke are fractions of its width.
RENDER_COLUMNS = (
    "opacity",  # multiplies each stroke's opacity (watercolour is a transparent wash)
    "edge",  # extra edge softness, fraction of the stroke width (soft wash vs crisp marker)
    "bristle",  # amplitude of bristle streaks along the stroke (oil/acrylic)
    "bristles",  # number of streaks across the stroke width
    "shade",  # colour modulation by the streaks (paint ridges catch light)
    "dry",  # fade toward the end of the stroke (brush running dry)
    "grain",  # amplitude of paper grain that breaks up the deposit (pencil, watercolour)
    "grain_cells",  # grain cells per canvas long side (resolution independent)
    "rim",  # edge darkening of a wash (watercolour pigment pooling at the edge)
)
R = {name: i for i, name in enumerate(RENDER_COLUMNS)}

_RENDER = {
    #              opac  edge  brist  n    shade  dry   grain  cells  rim
    "oil":        (1.00, 0.04, 0.16, 7.0, 0.06, 0.25, 0.00, 600.0, 0.00),
    "acrylic":    (1.00, 0.02, 0.08, 11.0, 0.03, 0.12, 0.00, 600.0, 0.00),
    "watercolor": (0.60, 0.15, 0.00, 1.0, 0.00, 0.00, 0.20, 500.0, 0.30),
    "pencil":     (0.85, 0.05, 0.10, 3.0, 0.00, 0.10, 0.55, 900.0, 0.00),
    "marker":     (0.90, 0.01, 0.00, 1.0, 0.00, 0.00, 0.04, 600.0, 0.10),
}
RENDER_TABLE = np.array([_RENDER[m] for m in MEDIA], np.float32)  # [num_media, len(RENDER_COLUMNS)]


# How the planner lays each medium down (multipliers on its default stroke shapes).
PLAN_COLUMNS = ("width", "aspect", "opacity")
_PLAN = {
    "oil":        (1.00, 1.0, 1.00),
    "acrylic":    (1.00, 1.0, 1.00),
    "watercolor": (1.30, 0.8, 1.00),
    "pencil":     (0.45, 2.2, 1.00),
    "marker":     (0.80, 1.6, 1.00),
}
PLAN_STYLE = {m: dict(zip(PLAN_COLUMNS, _PLAN[m])) for m in MEDIA}


def edge_softness_px(medium: int, width_px: np.ndarray) -> np.ndarray:
    """The medium's own edge softness in pixels for strokes `width_px` wide (host side)."""
    return RENDER_TABLE[int(medium), R["edge"]] * np.asarray(width_px)
