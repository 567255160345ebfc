"""Host side of the rasterizer, NumPy only: the static `Layout` (runs of equal window sides) that
`raster.py` compiles for, the window ladders, and the window each stroke needs.

A layout is a tuple of (window side in pixels, number of strokes), in painting order; it is part
of a compiled renderer's signature, so it is built on the host from the programs (`make_layout`,
`batch_layout`) or from a plan config alone (`plan.slot_layout`, `plan.fit_layout`), all through
`group_runs`. The planner imports this module without pulling in JAX.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from paintproc_jax.program import P, StrokeProgram
from paintproc_jax.strokes.media import RENDER_TABLE, R

Layout = tuple[tuple[int, int], ...]  # runs of (window side in pixels, number of strokes), in order

# Window sides: a sqrt(2) ladder keeps wasted window area under 2x (and leaves slack beyond the
# soft tail's cut for the soft renders of fitting).
WINDOW_SIZES = (4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048, 3072, 4096)
# A finer ladder (steps of 1.14-1.25x) for the static layouts of hard-edged batch renders (data
# clips), where every stroke of a level gets its level's window: ~20 % less window area.
FINE_WINDOW_SIZES = (4, 6, 8, 10, 12, 14, 16, 20, 24, 28, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256,
                     320, 384, 448, 512, 640, 768, 896, 1024, 1280, 1536, 1792, 2048, 2560, 3072, 3584, 4096)
AA_SIGMA = 0.4  # pixels: the hard render's anti-aliasing
TAIL = 3.0  # soft edges are cut at this many sigmas outside the stroke


# ----------------------------------------------------------------------------------------------
# Host side: the static layout.


def stroke_radius_px(params: np.ndarray, scale: float, medium: int, softness: float = 0.0) -> np.ndarray:
    """Radius in pixels of the disc around the centre that holds each stroke, soft tail included. [N]

    The farthest point of a bent capsule is at most the core's half length and the centre-line
    sagitta apart (Pythagoras), plus the cap radius.
    """
    params = np.asarray(params, np.float32)
    width = np.maximum(params[:, P["width"]] * scale, 0.5)
    length = np.maximum(params[:, P["length"]] * scale, width)
    sagitta = np.abs(params[:, P["bend"]]) * length
    sigma = np.sqrt(softness**2 + AA_SIGMA**2 + (RENDER_TABLE[medium, R["edge"]] * width) ** 2)
    return np.hypot(0.5 * (length - width), sagitta) + 0.5 * width + TAIL * sigma + 1.0


def window_class(needed: np.ndarray, ladder: tuple[int, ...] = WINDOW_SIZES) -> np.ndarray:
    """Smallest window side of `ladder` >= `needed` pixels."""
    sizes = np.asarray(ladder)
    idx = np.searchsorted(sizes, np.asarray(needed), side="left")
    return sizes[np.minimum(idx, len(sizes) - 1)]


def make_layout(
    program: StrokeProgram,
    size: int,
    *,
    softness: float = 0.0,
    grow: float = 1.0,
    max_runs: int = 12,
    run_cost_px: int = 65536,
) -> Layout:
    """Static layout for rendering `program` at long side `size` px.

    `grow` enlarges every window (for fitting, where strokes may grow); adjacent runs are
    merged while cheap, and down to at most `max_runs` runs (fewer scans, faster compiles).
    """
    params = np.asarray(program.params)
    if len(params) == 0:
        return ()
    radius = stroke_radius_px(params, size, int(program.medium), softness) * grow
    need = np.where(np.asarray(program.valid), 2 * np.ceil(radius), 0)
    cls = window_class(need)
    # Padding strokes take their predecessor's class (the smallest before any) instead of breaking runs.
    cls = np.where(np.asarray(program.valid), cls, 0)
    filled, prev = [], WINDOW_SIZES[0]
    for c in cls:
        prev = int(c) or prev
        filled.append(prev)
    return merge_runs(group_runs(filled), max_runs=max_runs, run_cost_px=run_cost_px)


def group_runs(windows, counts=None) -> list[list[int]]:
    """Runs [[window, count], ...] of equal neighbouring windows, in order (each window `counts`
    strokes, default 1; zero counts skipped): the one run-building rule of every layout."""
    counts = [1] * len(windows) if counts is None else counts
    runs: list[list[int]] = []
    for w, n in zip(windows, counts):
        w, n = int(w), int(n)
        if n == 0:
            continue
        if runs and runs[-1][0] == w:
            runs[-1][1] += n
        else:
            runs.append([w, n])
    return runs


def merge_runs(runs: list[list[int]], *, max_runs: int, run_cost_px: int) -> Layout:
    """Greedily merges adjacent runs (promoting the smaller window) while it is cheap.

    Merging two runs costs the extra window area of the promoted strokes; a run costs a scan
    (dispatch, compile). Merge the cheapest pair while that cost is below `run_cost_px` or
    while there are more than `max_runs` runs.
    """
    runs = [list(r) for r in runs]
    while len(runs) > 1:
        costs = [
            runs[i][1] * (runs[i + 1][0] ** 2 - runs[i][0] ** 2)
            if runs[i][0] < runs[i + 1][0]
            else runs[i + 1][1] * (runs[i][0] ** 2 - runs[i + 1][0] ** 2)
            for i in range(len(runs) - 1)
        ]
        i = int(np.argmin(costs))
        if costs[i] > run_cost_px and len(runs) <= max_runs:
            break
        runs[i] = [max(runs[i][0], runs[i + 1][0]), runs[i][1] + runs[i + 1][1]]
        runs.pop(i + 1)
    return tuple((int(c), int(n)) for c, n in runs)


def batch_layout(programs: Sequence[StrokeProgram], size: int, **kwargs) -> Layout:
    """One layout valid for every program of a batch (all with the same N).

    Each stroke gets the largest window any program needs at its index; equal neighbours
    are regrouped into runs and merged as in `make_layout`.
    """
    layouts = [make_layout(p, size, **kwargs) for p in programs]
    n = programs[0].num_strokes
    win = np.zeros(n, np.int64)
    for lay in layouts:
        win = np.maximum(win, np.concatenate([np.full(c, w) for w, c in lay]))
    return merge_runs(group_runs(win), max_runs=kwargs.get("max_runs", 12), run_cost_px=kwargs.get("run_cost_px", 65536))


def window_shape(w: int, hw: tuple[int, int]) -> tuple[int, int]:
    """Rows and columns of a `w`-class window on an `hw` canvas: the window, cut to the canvas.

    A window never needs to be larger than the canvas: clamped into the canvas it still holds the
    on-canvas part of its stroke (a stroke's support is a disc of radius <= w/2 around its centre,
    so along an axis where w fits, the clamped window holds the support's on-canvas interval, and
    along an axis where it does not, the window is the whole canvas). No padding, no pixels off
    the canvas computed.
    """
    return min(w, hw[0]), min(w, hw[1])



def split_layout(layout: Layout, ends: Sequence[int]) -> Layout:
    """`layout` with its runs cut at the stroke counts `ends` (same windows, more runs)."""
    cuts = sorted(set(int(e) for e in ends))
    runs, start = [], 0
    for w, count in layout:
        stop = start + count
        for cut in cuts:
            if start < cut < stop:
                runs.append((w, cut - start))
                start = cut
        runs.append((w, stop - start))
        start = stop
    return tuple(runs)
