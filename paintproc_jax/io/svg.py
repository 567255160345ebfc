"""Standalone SVG export of a `StrokeProgram`: one round-capped quadratic Bézier per stroke.

A vector preview, not a render: the medium's texture and blending are not modelled, only
each stroke's centre line, width, colour and opacity, painted in array order.
"""

from __future__ import annotations

import pathlib

import numpy as np

from paintproc_jax.io.atomic import atomic_path
from paintproc_jax.program import P, StrokeProgram, pixel_size


def _rgb(r, g, b) -> str:
    r, g, b = (int(np.clip(round(float(c) * 255.0), 0, 255)) for c in (r, g, b))
    return f"rgb({r},{g},{b})"


def stroke_path_d(x, y, length, width, angle, bend) -> str:
    """SVG path data (pixels) of one stroke's centre line: 'M p0 Q control p2'.

    Round caps add width/2 at each end, so the centre line spans max(length - width, 0).
    `bend` is the sagitta as a fraction of `length`: the curve's midpoint sits bend*length
    along the normal (-sin a, cos a), so the Bézier control point sits at twice that.
    """
    c, s = np.cos(angle), np.sin(angle)
    half = max(length - width, 0.0) / 2.0
    x0, y0 = x - half * c, y - half * s
    x2, y2 = x + half * c, y + half * s
    off = 2.0 * bend * length
    qx, qy = x - off * s, y + off * c
    return f"M{x0:.2f} {y0:.2f} Q{qx:.2f} {qy:.2f} {x2:.2f} {y2:.2f}"


def program_to_svg(program: StrokeProgram, size: int = 1024) -> str:
    """SVG text, `viewBox` in pixels with the longer side `size`; valid strokes in array order."""
    params = np.asarray(program.params, np.float64)  # [N, NUM_PARAMS]
    if params.ndim != 2:
        raise ValueError(f"export one program at a time: params are {params.shape}")
    h, w = pixel_size(program.canvas_hw, size)
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}">',
        f'<rect x="0" y="0" width="{w}" height="{h}" fill="{_rgb(*np.asarray(program.background))}"/>',
        '<g fill="none" stroke-linecap="round" stroke-linejoin="round">',
    ]
    for row in params[np.asarray(program.valid, bool)]:
        geom = (row[[P["x"], P["y"], P["length"], P["width"]]] * size).tolist()  # canvas units -> pixels
        d = stroke_path_d(*geom, row[P["angle"]], row[P["bend"]])
        opacity = float(np.clip(row[P["opacity"]], 0.0, 1.0))
        lines.append(
            f'<path d="{d}" stroke="{_rgb(row[P["r"]], row[P["g"]], row[P["b"]])}" '
            f'stroke-width="{max(geom[3], 0.0):.2f}" stroke-opacity="{opacity:.3f}"/>'
        )
    lines += ["</g>", "</svg>", ""]
    return "\n".join(lines)


def save_svg(path, program: StrokeProgram, size: int = 1024) -> pathlib.Path:
    """Writes `program_to_svg` atomically."""
    path = pathlib.Path(path)
    text = program_to_svg(program, size)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path
