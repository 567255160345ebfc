"""Media as brush families: one renderer, one table of parameters per medium.

Rendering reads a row of `RENDER_TABLE` by the program's medium id (so one compiled renderer
serves every medium); planning reads `PLAN_STYLE` (how a medium is laid down: broad washes,
thin hatching lines, ...).
"""

from __future__ import annotations

import numpy as np

from paintproc_jax.program import MEDIA

# Columns of RENDER_TABLE. Lengths that scale with the stroke are fractions of its width.
# How each term is drawn is documented in `raster.stroke_window`.
RENDER_COLUMNS = (
    "opacity",  # multiplies each stroke's opacity (watercolour is a transparent wash)
    "edge",  # extra edge softness, fraction of the stroke width (soft wash vs crisp marker)
    "bristle",  # depth of the grooves between bristle streaks (alpha), growing as the load thins
    "bristles",  # bristle clumps across the stroke width (each with its own paint load)
    "shade",  # colour modulation by the paint ridges (ridges catch the light, grooves stay dark)
    "dry",  # dry brush: how far low bristles run out over the last part of the stroke
    "grain",  # amplitude of paper grain that breaks up the deposit (pencil, watercolour)
    "grain_cells",  # grain cells per canvas long side (resolution independent)
    "rim",  # pigment pooling just inside the edge of a wash: denser, darker (watercolour, marker)
    "rim_width",  # width of that pooled band, fraction of the stroke width
)
R = {name: i for i, name in enumerate(RENDER_COLUMNS)}
DRY_START = 0.55  # fraction of a stroke's length where a brush with a "dry" term starts running dry

# Look at docs/media/<medium>.png (tools/media_sheet.py) after changing a row.
# Oil: coarse irregular clumps, ridges in colour, dry-brush ends; opaque body (grooves are thin:
# mean alpha >= 0.93 over the first 70 % of a stroke). Acrylic: finer, flatter streaks, crisper
# edge, less breakup. Watercolour: transparent, soft edge, faintly uneven wash, granulating paper
# grain, pigment pooled at the rim. Pencil: lines along the stroke broken by strong paper tooth,
# lighter at the lift-off. Marker: flat and crisp, a thin darker ink edge, darker where strokes
# overlap (opacity < 1). Edges are crisper than they used to be (oil 0.04 -> 0.008 of the width;
# watercolour 0.15 -> 0.035): the texture, not a blur, makes a stroke read as paint.
_RENDER = {
    #              opac  edge   brist  n     shade  dry   grain  cells  rim   rim_w
    "oil":        (1.00, 0.008, 0.15, 8.0,  0.42, 0.90, 0.00, 600.0, 0.00, 0.00),
    "acrylic":    (1.00, 0.006, 0.10, 14.0, 0.25, 0.55, 0.00, 600.0, 0.00, 0.00),
    "watercolor": (0.60, 0.035, 0.15, 2.5,  0.00, 0.00, 0.20, 500.0, 0.40, 0.10),
    "pencil":     (0.85, 0.010, 0.30, 3.0,  0.00, 0.50, 0.70, 700.0, 0.00, 0.00),
    "marker":     (0.90, 0.008, 0.00, 1.0,  0.00, 0.00, 0.04, 600.0, 0.20, 0.04),
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
