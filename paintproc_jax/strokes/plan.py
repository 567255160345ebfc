"""Plan: image + depth -> an ordered `StrokeProgram`, in NumPy (fast, no gradients).

Runs in data-loader workers, so NumPy/SciPy only (never jax). The plan makes the two human
habits of AnimatePainter explicit:
- *layering*: the depth map is cut into K layers by quantiles, far (0) to near (K-1);
- *refinement*: L levels of brush sizes, coarse (0) to fine; level 0 covers the whole canvas,
  each finer level places its strokes where the image still holds detail that the coarser
  levels miss (the band between two blur scales of a Gaussian pyramid).
Colours come from the image blurred at the brush scale; directions follow the image
structure (structure tensor), stroke length grows with how oriented the structure is.
The order is a policy (data): `ORDER_POLICIES[name]` lists the sort keys.

Speed: colours and directions are needed only at the stroke centres, so each level blurs a
small image of a 2x block-mean pyramid (the block mean does most of the blur) and samples
it bilinearly; the detail weight is only needed per placement cell.

Slot mode (`PlanConfig.slots`): every (layer, level) group has a fixed number of strokes and
brush sizes that depend only on the config and the canvas size, so a batch of programs
shares one static render layout (`slot_layout`).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from scipy import ndimage

from paintproc_jax.program import MEDIUM_ID, NUM_PARAMS, P, StrokeProgram, canvas_hw_for, make_program
from paintproc_jax.strokes.layout import FINE_WINDOW_SIZES, group_runs, stroke_radius_px, window_class
from paintproc_jax.strokes.media import DRY_START, PLAN_STYLE, RENDER_TABLE, R

# Painting order as sort keys, most significant first ("rand" = a seeded shuffle within groups).
ORDER_POLICIES = {
    "level-major": ("level", "layer", "rand"),  # default: block the whole canvas in far -> near, then refine level by level
    "layer-major": ("layer", "level", "rand"),  # each layer far -> near, coarse -> fine within it
}

_LUMA = np.array([0.299, 0.587, 0.114], np.float32)
_WIDTH_JITTER = (0.85, 1.15)  # per-stroke width multiplier range (uniform, upper end excluded)
_RADIUS_SLACK = 1e-5  # relative margin on slot radii: float32 rounding can never cross a window
_PYR_MARGIN = 1.0  # blur on the pyramid level f <= sigma / margin
_GRID_PX = 2.0  # the planning grid resolves the finest brush in at least this many cells
_HOLE_ROUNDS = 3  # block-in strokes moved onto bare canvas at most this many times
_COVER_MARGIN_PX = 1.5  # the planner counts a stroke's cells this far inside its edge (soft edge)
_DRY_COVER = 0.35  # dry-brush threshold (raster.stroke_window) past which the planner counts a stroke's end as bare


@dataclasses.dataclass(frozen=True)
class PlanConfig:
    """How to decompose an image into strokes (all sizes relative, so any resolution works)."""

    strokes: int = 1000  # total stroke budget N
    layers: int = 3  # depth layers K
    levels: int = 4  # refinement levels L
    order: str = "level-major"  # a painter's order: block-in of the whole canvas, then ever finer levels
    medium: str = "oil"
    base_coverage: float = 5.0  # how many times level 0 covers the canvas (big block-in strokes: no canvas left bare)
    coverage: float = 1.5  # how many times each finer level covers the area that still needs detail
    growth: float = 2.0  # stroke count ratio of consecutive levels (finer levels get more)
    aspect: float = 2.5  # stroke length / width for a perfectly oriented structure
    bend: float = 0.05  # spread of random centre-line bend (sagitta / length)
    detail_gamma: float = 1.0  # sharpness of the placement distribution on detail
    background: tuple[float, float, float] = (1.0, 1.0, 1.0)
    slots: bool = False  # fixed (layer, level) group sizes and image-independent brush sizes
    size_scale: float = 1.0  # multiplies every brush width (augmentation)
    fill: float = 1.0  # slot mode: fraction of each finer-level group's slots holding a real stroke

    def validate(self) -> "PlanConfig":
        if self.strokes < 1:
            raise ValueError(f"the stroke budget must be at least 1 (got {self.strokes})")
        if self.layers < 1 or self.levels < 1:
            raise ValueError("layers and levels must be at least 1")
        if self.order not in ORDER_POLICIES:
            raise ValueError(f"unknown order {self.order!r}; choose one of {', '.join(ORDER_POLICIES)}")
        if self.medium not in MEDIUM_ID:
            raise ValueError(f"unknown medium {self.medium!r}; choose one of {', '.join(MEDIUM_ID)}")
        if not (math.isfinite(self.size_scale) and self.size_scale > 0):
            raise ValueError(f"size_scale must be a finite number > 0 (got {self.size_scale})")
        if not (0.0 < self.fill <= 1.0):
            raise ValueError(f"fill must be in (0, 1] (got {self.fill})")
        if not self.bend >= 0:
            raise ValueError(f"bend must be >= 0 (got {self.bend})")
        if not self.growth > 0:
            raise ValueError(f"growth must be > 0 (got {self.growth})")
        return self


def depth_layers(depth: np.ndarray, layers: int) -> np.ndarray:
    """[H, W] depth (1 = nearest) -> [H, W] int32 layer ids by quantiles, far = 0."""
    if layers == 1:
        return np.zeros(depth.shape, np.int32)
    smooth = ndimage.gaussian_filter(depth.astype(np.float32), 1.0)
    edges = np.quantile(smooth, np.linspace(0, 1, layers + 1)[1:-1])
    return np.searchsorted(edges, smooth, side="right").astype(np.int32)


def level_counts(total: int, levels: int, growth: float) -> np.ndarray:
    """Strokes per level, coarse to fine, summing to `total` (every level gets at least one)."""
    levels = min(levels, total)
    weights = growth ** np.arange(levels, dtype=np.float64)
    counts = np.maximum(1, np.floor(weights / weights.sum() * total)).astype(np.int64)
    counts[-1] += total - counts.sum()
    while counts[-1] < 1:  # give back from the largest level
        counts[np.argmax(counts[:-1])] -= 1
        counts[-1] += 1
    return counts


def slot_counts(config: PlanConfig) -> np.ndarray:
    """Slots per (layer k, level l) group, [K, L] int64, summing to `config.strokes`.

    Each level's count is split evenly over the K layers; the remainders go round-robin,
    nearest layer first, continuing across levels (so layer totals stay balanced too).
    Levels beyond the budget (strokes < levels) get zero columns.
    """
    config.validate()
    k_layers = config.layers
    counts = np.zeros((k_layers, config.levels), np.int64)
    cursor = 0
    for lvl, n in enumerate(level_counts(config.strokes, config.levels, config.growth)):
        counts[:, lvl] = n // k_layers
        for i in range(int(n % k_layers)):
            counts[k_layers - 1 - (cursor + i) % k_layers, lvl] += 1
        cursor += int(n % k_layers)
    return counts


def real_counts(config: PlanConfig) -> np.ndarray:
    """Real (valid) strokes per (layer, level) group in slot mode, [K, L]: level 0 is full,
    finer groups hold floor(fill * slots + 0.5); the rest of each group is padding."""
    slots = slot_counts(config)
    real = np.floor(config.fill * slots + 0.5).astype(np.int64)
    real[:, 0] = slots[:, 0]
    return real


def group_order(config: PlanConfig) -> list[tuple[int, int]]:
    """(layer, level) groups in painting order for the config's policy."""
    pairs = [(k, lvl) for k in range(config.layers) for lvl in range(config.levels)]
    if ORDER_POLICIES[config.order][0] == "level":
        pairs.sort(key=lambda kl: (kl[1], kl[0]))
    return pairs


# ----------------------------------------------------------------------------------------------
# Brush sizes (shared by the planner and `slot_layout`, so both see bit-identical values).


def _aspect(config: PlanConfig) -> float:
    return max(1.0, config.aspect * PLAN_STYLE[config.medium]["aspect"])


def _level_width_px(config: PlanConfig, hw: tuple[int, int], level: int, n: int, frac: float) -> float:
    """Brush width (px) of a level of `n` strokes covering the fraction `frac` of the canvas."""
    h, w = hw
    cover = config.base_coverage if level == 0 else config.coverage
    area = cover * h * w * frac / n  # px^2 per stroke
    width = np.sqrt(area / _aspect(config)) * PLAN_STYLE[config.medium]["width"]
    return float(np.clip(width, 1.0, 0.5 * max(h, w))) * config.size_scale


def _slot_bounds(config: PlanConfig, hw: tuple[int, int]) -> np.ndarray:
    """Largest (width, length, |bend|) in canvas units any slot-mode stroke of each level can
    have, [L, 3] float32 (zeros for levels without strokes). The planner clamps to these."""
    counts = level_counts(config.strokes, config.levels, config.growth)
    scale = float(max(hw))
    bounds = np.zeros((config.levels, 3), np.float32)
    for lvl, n in enumerate(counts):
        wmax = np.float32(_level_width_px(config, hw, lvl, int(n), 1.0) / scale * _WIDTH_JITTER[1])
        bounds[lvl] = (wmax, np.float32(wmax * _aspect(config)), np.float32(2 * config.bend))
    return bounds


def slot_layout(config: PlanConfig, hw: tuple[int, int], media=None, max_scale: float | None = None):
    """Static render `Layout` (runs of (window side px, count)) shared by every slot-mode program
    of `config` planned at pixel size `hw` (windows at long side max(hw), softness 0).

    One run per (layer, level) group in painting order (equal neighbours merged); a group's
    window holds the largest stroke its level can get for any medium in `media` (default
    (config.medium,)) and any size_scale <= `max_scale` (default config.size_scale).
    Independent of the image.
    """
    config.validate()
    if not config.slots:
        raise ValueError("slot_layout needs a slot-mode config (PlanConfig(slots=True))")
    media = (config.medium,) if media is None else tuple(media)
    max_scale = config.size_scale if max_scale is None else float(max_scale)
    if config.medium not in media:
        raise ValueError(f"media {media} must include the config's medium {config.medium!r}")
    unknown = [m for m in media if m not in MEDIUM_ID]
    if unknown:
        raise ValueError(f"unknown medium {unknown[0]!r}; choose from {', '.join(MEDIUM_ID)}")
    if not max_scale >= config.size_scale:
        raise ValueError(f"max_scale ({max_scale}) must be >= the config's size_scale ({config.size_scale})")
    windows = np.zeros(config.levels, np.int64)  # [L]
    for medium in media:
        cfg = dataclasses.replace(config, medium=medium, size_scale=max_scale).validate()
        bounds = _slot_bounds(cfg, hw)
        rows = np.zeros((config.levels, NUM_PARAMS), np.float32)
        rows[:, [P["width"], P["length"], P["bend"]]] = bounds
        for shown_in in media:  # strokes planned for one medium may be rendered in another (cross-media)
            radius = stroke_radius_px(rows, float(max(hw)), MEDIUM_ID[shown_in]) * (1 + _RADIUS_SLACK)
            windows = np.maximum(windows, window_class(2 * np.ceil(radius), FINE_WINDOW_SIZES))
    counts = slot_counts(config)
    order = group_order(config)
    runs = group_runs([windows[lvl] for _, lvl in order], [counts[k, lvl] for k, lvl in order])
    return tuple((w, n) for w, n in runs)


# `fit_layout` sizes windows for: a finer level's detail on this share of the canvas, widths up
# to this jitter (of _WIDTH_JITTER's range); wider strokes, rare, are shrunk to fit.
FIT_FRAC, FIT_JITTER = 0.5, 1.1


def canonical_order(config: PlanConfig) -> bool:
    """Whether every program of `config` has the same level at every stroke index (so one
    layout, `fit_layout`, can serve them all): level-major orders, whose level counts are
    fixed by the config."""
    return ORDER_POLICIES[config.order][0] == "level" and not config.slots


def fit_layout(config: PlanConfig, hw: tuple[int, int], *, softness: float, grow: float, frac: float = FIT_FRAC,
               jitter: float = FIT_JITTER):
    """Image-independent render `Layout` for fitting any non-slot `canonical_order` program of
    `config` on a canvas of pixel size `hw` (a canvas bucket, see `fit.canvas_bucket`).

    One run per level, in order; its window holds a stroke of the level's planned width times
    `jitter`, on a canvas with detail on the share `frac` of it (finer levels' strokes narrow
    with the square root of that share), as long as the aspect allows, at the fit's `softness`,
    grown by `grow`. The few wider strokes (top of the width jitter; photos with detail
    everywhere) are shrunk to their window by `clamp_to_layout`. Compiling per layout, not per
    photo, is what lets one compiled fit serve every photo of a bucket (issue 15).
    """
    config.validate()
    if not canonical_order(config):
        raise ValueError(f"fit_layout needs a level-major, non-slot config (got order={config.order!r}, slots={config.slots})")
    counts = level_counts(config.strokes, config.levels, config.growth)
    rows = np.zeros((len(counts), NUM_PARAMS), np.float32)
    scale = float(max(hw))
    for lvl, n in enumerate(counts):
        width = _level_width_px(config, hw, lvl, int(n), 1.0 if lvl == 0 else frac) * jitter / scale
        rows[lvl, [P["width"], P["length"], P["bend"]]] = (width, width * _aspect(config), 2 * config.bend)
    radius = stroke_radius_px(rows, scale, MEDIUM_ID[config.medium], softness) * grow
    windows = window_class(2 * np.ceil(radius), FINE_WINDOW_SIZES)
    return tuple((int(w), int(n)) for w, n in zip(windows, counts))


def clamp_to_layout(program: StrokeProgram, layout, size: int, *, softness: float, grow: float) -> StrokeProgram:
    """Shrinks (width and length together) every stroke that `make_layout` would give a larger
    window than its run in `layout` has at long side `size` px, until it fits; others unchanged."""
    window = np.concatenate([np.full(c, w) for w, c in layout]).astype(np.float32)  # [N]
    p = np.array(program.params, np.float32)
    medium = int(program.medium)
    for _ in range(60):
        over = 2 * np.ceil(stroke_radius_px(p, size, medium, softness) * grow) > window
        if not over.any():
            break
        p[over, P["width"]] *= 0.97
        p[over, P["length"]] *= 0.97
    return program._replace(params=p)


# ----------------------------------------------------------------------------------------------
# Image features at the stroke centres: a block-mean pyramid, blurred per level, sampled bilinearly.


class _Pyramid:
    """2x block-mean pyramid of an [H, W, C] image, built lazily. Pixel j of level k covers
    full-resolution pixels [j 2^k, (j + 1) 2^k) (odd sizes are edge-padded first)."""

    def __init__(self, image: np.ndarray):
        self.levels = [image]

    def level(self, k: int) -> np.ndarray:
        while len(self.levels) <= k:
            a = self.levels[-1]
            if a.shape[0] % 2:
                a = np.concatenate([a, a[-1:]], 0)
            if a.shape[1] % 2:
                a = np.concatenate([a, a[:, -1:]], 1)
            self.levels.append(0.25 * (a[0::2, 0::2] + a[1::2, 0::2] + a[0::2, 1::2] + a[1::2, 1::2]))
        return self.levels[k]


def _residual_sigma(sigma: float, f: int) -> float:
    """Gaussian sigma (level-f px) that, after a 2^k block mean (variance (f^2 - 1) / 12 px^2),
    makes a total blur of `sigma` full-res px."""
    return float(np.sqrt(max(sigma**2 - (f * f - 1) / 12.0, 0.0)) / f)


def _blurred_features(pyr: _Pyramid, sigma: float) -> tuple[np.ndarray, int]:
    """Colour and structure-tensor products blurred at `sigma` full-res px: ([h, w, 6], factor f).

    Works on the coarsest pyramid level f = 2^k <= sigma (its block mean already does most of
    the blur) and blurs the rest there. As in a classic structure tensor, the gradients are
    taken on the grey image pre-blurred at sigma / 2.
    """
    h, w = pyr.levels[0].shape[:2]
    k = int(np.floor(np.log2(max(sigma / _PYR_MARGIN, 1.0))))
    k = max(0, min(k, int(np.floor(np.log2(max(1, min(h, w) // 4))))))  # keep >= ~4 px per side
    f = 2**k
    rgb = pyr.level(k)  # [h/f, w/f, 3]
    gray = rgb @ _LUMA
    pre = _residual_sigma(0.5 * sigma, f)
    if pre > 0.3:
        gray = ndimage.gaussian_filter(gray, pre, mode="nearest")
    gy = ndimage.sobel(gray, 0, mode="nearest")
    gx = ndimage.sobel(gray, 1, mode="nearest")
    feat = np.concatenate([rgb, np.stack([gx * gx, gy * gy, gx * gy], -1)], -1)  # [h/f, w/f, 6]
    residual = _residual_sigma(sigma, f)
    if residual > 0.3:
        feat = ndimage.gaussian_filter(feat, (residual, residual, 0), mode="nearest")
    return feat, f


def _lerp_coords(coord: np.ndarray, f: int, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Full-res px coordinates -> (i0, i1, t) to interpolate a factor-f level of `size` pixels."""
    c = np.clip(coord / f - 0.5, 0.0, size - 1.0)
    i0 = np.minimum(c.astype(np.int64), size - 1)
    i1 = np.minimum(i0 + 1, size - 1)
    t = (c - i0).astype(np.float32)
    return i0, i1, t


def _sample(a: np.ndarray, pos: np.ndarray, f: int) -> np.ndarray:
    """Bilinear samples of a factor-f level `a` [h, w, C] at full-res points `pos` [n, 2] (y, x) -> [n, C]."""
    y0, y1, ty = _lerp_coords(pos[:, 0], f, a.shape[0])
    x0, x1, tx = _lerp_coords(pos[:, 1], f, a.shape[1])
    ty, tx = ty[:, None], tx[:, None]
    top = a[y0, x0] * (1 - tx) + a[y0, x1] * tx
    bottom = a[y1, x0] * (1 - tx) + a[y1, x1] * tx
    return top * (1 - ty) + bottom * ty


def _upsample_rows(a: np.ndarray, f: int, size: int) -> np.ndarray:
    """Bilinear upsampling by f along axis 0 of a factor-f level `a` [n, ...] -> [size, ...].

    Full-res row j f + r sits at level coordinate j + o_r, o_r = (r + 0.5) / f - 0.5: it mixes
    row j with row j - 1 (first half of r) or j + 1 (second half), edges replicated.
    """
    n = a.shape[0]
    o = ((np.arange(f) + 0.5) / f - 0.5).astype(np.float32)  # [f]
    shape = (1, f // 2) + (1,) * (a.ndim - 1)
    p = np.concatenate([a[:1], a, a[-1:]], 0)  # [n + 2, ...]
    out = np.empty((n, f) + a.shape[1:], np.float32)  # [n, f, ...]
    np.multiply((p[:-2] - a)[:, None], -o[: f // 2].reshape(shape), out=out[:, : f // 2])
    np.multiply((p[2:] - a)[:, None], o[f // 2 :].reshape(shape), out=out[:, f // 2 :])
    out += a[:, None]
    return out.reshape((n * f,) + a.shape[1:])[:size]


def _upsample(a: np.ndarray, f: int, hw: tuple[int, int]) -> np.ndarray:
    """Bilinear upsampling of a factor-f level `a` [h, w, C] to full resolution [H, W, C].

    Both passes run along axis 0 (contiguous rows; much faster in NumPy than the inner axis).
    """
    if f == 1:
        return a[: hw[0], : hw[1]]
    cols = _upsample_rows(np.ascontiguousarray(a.transpose(1, 0, 2)), f, hw[1])  # [W, h, C]
    return _upsample_rows(np.ascontiguousarray(cols.transpose(1, 0, 2)), f, hw[0])  # [H, W, C]


def _orientation(j: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Structure tensor samples [n, 3] (jxx, jyy, jxy) -> edge-following angle (rad), coherence in [0, 1]."""
    jxx, jyy, jxy = j[:, 0], j[:, 1], j[:, 2]
    grad_dir = 0.5 * np.arctan2(2 * jxy, jxx - jyy)
    disc = np.sqrt((jxx - jyy) ** 2 + 4 * jxy**2)
    coherence = np.square(disc / (jxx + jyy + 1e-8))
    return grad_dir + 0.5 * np.pi, np.clip(coherence, 0.0, 1.0)


# ----------------------------------------------------------------------------------------------
# Placement on a grid of cells.


class _Cells:
    """A grid of ~`cell`-px cells over an [H, W] canvas, with per-cell sums of full-res maps."""

    def __init__(self, hw: tuple[int, int], cell: float):
        h, w = hw
        cell = max(cell, 1.0)  # at least one pixel per cell
        self.gh, self.gw = max(1, int(np.ceil(h / cell))), max(1, int(np.ceil(w / cell)))
        self.ch, self.cw = h / self.gh, w / self.gw
        # First pixel row / column of each cell (cells are non-empty since ch, cw >= 1).
        self.y_starts = np.ceil(np.arange(self.gh) * self.ch - 1e-9).astype(np.int64)
        self.x_starts = np.ceil(np.arange(self.gw) * self.cw - 1e-9).astype(np.int64)

    def sums(self, a: np.ndarray) -> np.ndarray:
        """[H, W, ...] -> per-cell sums [gh, gw, ...]."""
        return np.add.reduceat(np.add.reduceat(a, self.y_starts, axis=0), self.x_starts, axis=1)

    def place(self, weight: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        """n positions (y, x in px), cells drawn by `weight` [gh, gw] without replacement
        (Gumbel top-k over the cells of positive weight, repeating cells if n exceeds them),
        uniform inside a cell's central 80%."""
        if n == 0:
            return np.zeros((0, 2))
        weight = weight.reshape(-1)
        cand = np.flatnonzero(weight > 0)
        if cand.size == 0:
            cand = np.arange(weight.size)
        logw = np.log(np.maximum(weight[cand], 1e-30))
        picks = []
        while sum(len(p) for p in picks) < n:
            k = min(n - sum(len(p) for p in picks), cand.size)
            keys = logw + rng.gumbel(size=cand.size)
            picks.append(cand[np.argpartition(-keys, k - 1)[:k]])
        cy, cx = np.divmod(np.concatenate(picks), self.gw)
        y = (cy + rng.uniform(0.1, 0.9, n)) * self.ch
        x = (cx + rng.uniform(0.1, 0.9, n)) * self.cw
        h, w = self.gh * self.ch, self.gw * self.cw
        return np.stack([np.clip(y, 0, h - 1e-3), np.clip(x, 0, w - 1e-3)], -1)  # [n, 2]


def _support_fraction(weight: np.ndarray) -> float:
    """Effective fraction of the canvas a weight map covers (participation ratio)."""
    s1, s2 = weight.sum(dtype=np.float64), np.square(weight).sum(dtype=np.float64)
    return float(np.clip(s1 * s1 / (s2 * weight.size + 1e-12), 0.05, 1.0))


def _first_positive(*weights: np.ndarray) -> np.ndarray:
    """The first weight map with any positive entry (fallbacks for flat images / empty layers)."""
    for wgt in weights:
        if np.any(wgt > 0):
            return wgt
    return np.ones_like(weights[-1])


# ----------------------------------------------------------------------------------------------
# The canvas so far: a hard, opaque-core raster of the planned strokes on a coarse grid.


def _grid_factor(config: PlanConfig, hw: tuple[int, int]) -> int:
    """Block factor f = 2^k of the planning grid: the finest level's brush stays >= _GRID_PX grid px wide."""
    counts = level_counts(config.strokes, config.levels, config.growth)
    finest = _level_width_px(config, hw, len(counts) - 1, int(counts[-1]), 1.0)
    k = int(np.floor(np.log2(max(finest / _GRID_PX, 1.0))))
    return 2 ** max(0, min(k, int(np.floor(np.log2(max(1, min(hw) // 8))))))


def cover_reach(medium: str) -> float:
    """Fraction of a stroke's length (from its start) that `medium` covers before its dry-brush end.

    The renderer thins the last part of an oil stroke into separate streaks (threshold
    `dry * ((a - start) / (1 - start))**2` on the streak height at fraction `a` of the length);
    the planner counts cells only where that threshold is below `_DRY_COVER`, so the gaps the
    dry end leaves are bare canvas that gap repair fills.
    """
    dry = float(RENDER_TABLE[MEDIUM_ID[medium], R["dry"]])
    if dry <= _DRY_COVER:
        return 1.0
    return DRY_START + (1.0 - DRY_START) * float(np.sqrt(_DRY_COVER / dry))


def _cover(p: np.ndarray, grid_hw: tuple[int, int], f: int, scale: float,
           reach: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Grid cells inside each stroke's core (the same bent capsule as the renderer, no soft edge).

    p [m, NUM_PARAMS] (canvas units) on a grid of f-px cells -> (flat cell index [k], stroke [k]).
    Only the first `reach` of each stroke's length counts (`cover_reach`: the dry-brush end).
    """
    m = len(p)
    if m == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    gh, gw = grid_hw
    sc = scale / f  # grid px per canvas unit
    width = np.maximum(p[:, P["width"]] * scale, 0.5) / f
    length = np.maximum(p[:, P["length"]] * scale / f, width)
    half = 0.5 * length
    sag = p[:, P["bend"]] * length
    radius = np.hypot(0.5 * (length - width), sag) + 0.5 * width
    ws = int(np.ceil(2 * radius.max())) + 2
    cy, cx = p[:, P["y"]] * sc, p[:, P["x"]] * sc
    oy = np.floor(cy - 0.5 * ws).astype(np.int64)
    ox = np.floor(cx - 0.5 * ws).astype(np.int64)
    r = np.arange(ws)
    gy = oy[:, None] + r  # [m, ws]
    gx = ox[:, None] + r
    dy = (gy + 0.5 - cy[:, None]).astype(np.float32)[:, :, None]  # [m, ws, 1]
    dx = (gx + 0.5 - cx[:, None]).astype(np.float32)[:, None, :]  # [m, 1, ws]
    ca = np.cos(p[:, P["angle"]])[:, None, None]
    sa = np.sin(p[:, P["angle"]])[:, None, None]
    u = dx * ca + dy * sa  # [m, ws, ws]
    v = dy * ca - dx * sa
    h3, w3 = half[:, None, None], width[:, None, None]
    uc = np.clip(u, -h3, h3)
    vr = v - sag[:, None, None] * (1.0 - np.square(uc / h3))
    core = np.maximum(np.abs(u) - (h3 - 0.5 * w3), 0.0)
    rim = np.maximum(0.5 * w3 - _COVER_MARGIN_PX / f, 0.25)  # a cell counts as covered well inside the edge
    inside = core * core + vr * vr < np.square(rim)
    if reach < 1.0:  # u runs from -half (start) to +half (end) along the stroke
        inside &= u < (reach - 0.5) * 2.0 * h3
    inside &= ((gy >= 0) & (gy < gh))[:, :, None] & ((gx >= 0) & (gx < gw))[:, None, :]
    k, iy, ix = np.nonzero(inside)
    return gy[k, iy] * gw + gx[k, ix], k


def _paint_level(canvas: np.ndarray, target: np.ndarray, cover: tuple[np.ndarray, np.ndarray], p: np.ndarray,
                 rank: np.ndarray, alpha: np.ndarray, prior: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Paints one level's strokes over the grid canvas with least-squares colours.

    canvas, target [gh, gw, 3]; cover = `_cover(p, ...)` (cells, stroke); p [m, NUM_PARAMS];
    rank [m] painting order within the level; alpha [m] opacity.
    Each stroke's colour is the one that makes its visible cells (where it is
    the topmost stroke of the level) closest to the target over the canvas under it,
    c = mean((T - (1 - a) U) / a), shrunk toward its planned colour by `prior` cells' worth.
    Returns (colours [m, 3], new canvas, covered-cells mask [gh, gw], visible cells per stroke [m]).
    """
    gh, gw = canvas.shape[:2]
    flat, k = cover
    top = np.full(gh * gw, -1, np.int64)
    np.maximum.at(top, flat, rank[k])
    covered = top >= 0
    by_rank = np.argsort(rank)
    sid = by_rank[top[covered]]  # stroke on top of each covered cell
    a = alpha[sid][:, None]
    under = canvas.reshape(-1, 3)[covered]
    want = (target.reshape(-1, 3)[covered] - (1.0 - a) * under) / a  # colour each cell asks for
    m = len(p)
    n_vis = np.bincount(sid, minlength=m).astype(np.float32)
    sums = np.stack([np.bincount(sid, weights=want[:, c], minlength=m) for c in range(3)], -1)
    planned = p[:, P["r"] : P["b"] + 1]
    colours = np.clip((sums + prior * planned) / (n_vis + prior)[:, None], 0.0, 1.0).astype(np.float32)
    out = canvas.reshape(-1, 3).copy()
    out[covered] = a * colours[sid] + (1.0 - a) * under
    return colours, out.reshape(gh, gw, 3), covered.reshape(gh, gw), n_vis


def _holes(covered: np.ndarray, n: int) -> list[tuple[np.ndarray, float]]:
    """Up to `n` bare patches of the grid, largest first: (centre (y, x) in grid px, radius in grid px)."""
    labels, count = ndimage.label(~covered, structure=np.ones((3, 3)))
    if count == 0:
        return []
    sizes = np.bincount(labels.ravel())[1:]
    keep = np.argsort(-sizes)[:n] + 1
    centres = ndimage.center_of_mass(~covered, labels, keep)
    return [(np.asarray(c) + 0.5, float(np.sqrt(sizes[i - 1] / np.pi))) for c, i in zip(centres, keep)]


# ----------------------------------------------------------------------------------------------
# The planner.


def plan_strokes(image: np.ndarray, depth: np.ndarray, config: PlanConfig, seed: int = 0) -> StrokeProgram:
    """Decomposes `image` [H, W, 3] in [0, 1] with `depth` [H, W] (1 = nearest) into strokes.

    Returns a program in painting order (`config.order`), with one frame showing all strokes.
    In slot mode it has exactly `config.strokes` strokes in fixed (layer, level) groups (see
    `slot_counts`), padding slots marked invalid, every stroke inside its `slot_layout` window.
    """
    config.validate()
    image = np.asarray(image, np.float32)
    depth = np.asarray(depth, np.float32)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"image must be [H, W, 3], got {image.shape}")
    if depth.shape != image.shape[:2]:
        raise ValueError(f"depth must be {image.shape[:2]}, got {depth.shape}")
    rng = np.random.default_rng(seed)
    h, w = image.shape[:2]
    hw = (h, w)
    scale = float(max(h, w))  # px per canvas unit
    style = PLAN_STYLE[config.medium]
    aspect = _aspect(config)
    k_layers = config.layers
    layer_map = depth_layers(depth, k_layers)  # [H, W]
    counts = level_counts(config.strokes, config.levels, config.growth)  # [L']
    if config.slots:
        groups, reals = slot_counts(config), real_counts(config)  # [K, L]
        bounds = _slot_bounds(config, hw)  # [L, 3]
        layer_onehot = (layer_map[..., None] == np.arange(k_layers)).astype(np.float32)  # [H, W, K]
    pyr = _Pyramid(image)
    gf = _grid_factor(config, hw)  # the canvas so far is kept on a grid of gf-px cells
    gk = int(np.log2(gf))
    target_g = pyr.level(gk)  # [gh, gw, 3] block means
    gh, gw = target_g.shape[:2]
    canvas_g = np.broadcast_to(np.asarray(config.background, np.float32), target_g.shape).copy()
    medium_alpha = float(RENDER_TABLE[MEDIUM_ID[config.medium], R["opacity"]])
    reach = cover_reach(config.medium)
    if config.slots:
        in_layer_g = _Pyramid(layer_onehot).level(gk)  # [gh, gw, K] share of each layer per cell

    rows, layers, levels, pads, rands = [], [], [], [], []
    for lvl, n in enumerate(counts):
        n = int(n)
        if lvl == 0:
            detail, frac = None, 1.0
        else:  # what the canvas so far still misses: [gh, gw]
            detail = np.abs(target_g - canvas_g).sum(-1)
            frac = _support_fraction(detail)
        width = _level_width_px(config, hw, lvl, n, 1.0 if config.slots else frac)
        sigma = 0.5 * width
        cells = _Cells((gh, gw), np.sqrt(h * w * frac / n) / gf)
        if detail is None:
            cell_w = np.ones((cells.gh, cells.gw))
        else:  # mean residual per cell, blurred at the brush scale (in cell units)
            cell_w = cells.sums(detail) / (cells.ch * cells.cw)
            cell_w = ndimage.gaussian_filter(cell_w, (sigma / gf / cells.ch, sigma / gf / cells.cw), mode="nearest")
            cell_w = np.maximum(cell_w, 0.0) ** config.detail_gamma

        # Positions [n_real, 2] (y, x px), layer ids and padding counts of this level.
        if config.slots:
            in_layer = cells.sums(in_layer_g) / (cells.ch * cells.cw)  # [cgh, cgw, K] layer share of each cell
            pos, lay, n_pads = [], [], []
            for k in range(k_layers):  # group (k, lvl): residual inside layer k (else the layer, else anywhere)
                n_real = int(reals[k, lvl])
                pos.append(cells.place(_first_positive(cell_w * in_layer[..., k], in_layer[..., k], cell_w), n_real, rng))
                lay.append(np.full(n_real, k, np.int32))
                n_pads.append(int(groups[k, lvl]) - n_real)
            pos, lay = np.concatenate(pos), np.concatenate(lay)
        else:
            pos = cells.place(_first_positive(cell_w), n, rng)
            lay, n_pads = None, [0] * k_layers
        pos = np.minimum(pos * gf, np.array([h, w]) - 1e-3)  # grid px -> image px
        if lay is None:
            iy = np.clip(pos[:, 0].astype(int), 0, h - 1)
            ix = np.clip(pos[:, 1].astype(int), 0, w - 1)
            lay = layer_map[iy, ix]

        feat, f = _blurred_features(pyr, sigma)
        at = _sample(feat, pos, f)  # [m, 6]: colour, structure tensor
        direction, coherence = _orientation(at[:, 3:])
        m = len(pos)
        p = np.zeros((m, NUM_PARAMS), np.float32)
        p[:, P["x"]] = pos[:, 1] / scale
        p[:, P["y"]] = pos[:, 0] / scale
        p[:, P["width"]] = width / scale * rng.uniform(*_WIDTH_JITTER, m)
        p[:, P["length"]] = p[:, P["width"]] * (1.0 + (aspect - 1.0) * (0.35 + 0.65 * coherence))
        if lvl == 0:  # the block-in keeps its planned area (coverage) when the structure is not oriented
            grow = np.sqrt(aspect * p[:, P["width"]] / p[:, P["length"]])
            p[:, P["width"]] *= grow
            p[:, P["length"]] *= grow
        p[:, P["angle"]] = direction + rng.normal(0, 0.15, m)
        p[:, P["bend"]] = np.clip(rng.normal(0, config.bend, m), -2 * config.bend, 2 * config.bend)
        p[:, P["r"] : P["b"] + 1] = np.clip(at[:, :3], 0.0, 1.0)
        p[:, P["opacity"]] = np.clip(style["opacity"] * rng.uniform(0.9, 1.0, m), 0, 1)
        p[:, P["seed"]] = rng.uniform(0, 1, m)
        if config.slots:  # never outgrow the slot's window (float rounding of the size rules)
            wmax, lmax, bmax = bounds[lvl]
            p[:, P["width"]] = np.minimum(p[:, P["width"]], wmax)
            p[:, P["length"]] = np.minimum(p[:, P["length"]], lmax)
            p[:, P["bend"]] = np.clip(p[:, P["bend"]], -bmax, bmax)
        # Least-squares colours over the canvas so far, in this level's painting order (layer, then shuffled).
        rand = rng.permutation(m)
        rank = np.empty(m, np.int64)
        rank[np.lexsort((rand, lay))] = np.arange(m)
        under = canvas_g
        cover = _cover(p, (gh, gw), gf, scale, reach)
        colours, canvas_g, covered, n_vis = _paint_level(under, target_g, cover, p, rank, p[:, P["opacity"]] * medium_alpha)
        for _ in range(_HOLE_ROUNDS if lvl == 0 else 0):  # the block-in leaves no bare canvas
            holes = _holes(covered, max(1, m // 4))
            if not holes:
                break
            order = np.argsort(n_vis, kind="stable")  # the strokes that show least move first
            moved = order[: len(holes)]
            for i, ((cy, cx), radius) in zip(moved.tolist(), holes):
                p[i, P["y"]], p[i, P["x"]] = min(cy * gf, h - 1e-3) / scale, min(cx * gf, w - 1e-3) / scale
                if not config.slots:  # big enough for the patch (slot strokes keep their slot's size)
                    p[i, P["width"]] = max(p[i, P["width"]], (2.0 * radius + 2.0) * gf / scale)
                    p[i, P["length"]] = max(p[i, P["length"]], p[i, P["width"]])
                if not config.slots:
                    lay[i] = layer_map[min(int(cy * gf), h - 1), min(int(cx * gf), w - 1)]
            rank[np.lexsort((rand, lay))] = np.arange(m)
            flat_m, k_m = _cover(p[moved], (gh, gw), gf, scale, reach)  # only the moved strokes' cells change
            keep = ~np.isin(cover[1], moved)
            cover = (np.concatenate([cover[0][keep], flat_m]), np.concatenate([cover[1][keep], moved[k_m]]))
            colours, canvas_g, covered, n_vis = _paint_level(under, target_g, cover, p, rank, p[:, P["opacity"]] * medium_alpha)
        p[:, P["r"] : P["b"] + 1] = colours
        rows.append(p)
        layers.append(lay)
        levels.append(np.full(m, lvl, np.int32))
        pads.append(np.zeros(m, bool))
        rands.append(rand)
        for k, n_pad in enumerate(n_pads):  # padding slots of this level's groups
            if n_pad:
                rows.append(_padding_params(n_pad, (h / scale, w / scale), config.background))
                layers.append(np.full(n_pad, k, np.int32))
                levels.append(np.full(n_pad, lvl, np.int32))
                pads.append(np.ones(n_pad, bool))
                rands.append(np.zeros(n_pad, np.int64))

    params = np.concatenate(rows)
    layer = np.concatenate(layers).astype(np.int32)
    level = np.concatenate(levels)
    pad = np.concatenate(pads)
    order = painting_order(layer, level, config.order, rng, pad=pad, rand=np.concatenate(rands))
    return make_program(
        params[order],
        layer=layer[order],
        level=level[order],
        valid=~pad[order],
        medium=config.medium,
        canvas_hw=canvas_hw_for(h, w),
        background=config.background,
    )


def _padding_params(n: int, canvas_hw: tuple[float, float], background) -> np.ndarray:
    """[n, NUM_PARAMS] harmless placeholder strokes: zero-sized at the canvas centre (the
    smallest window any stroke can need), transparent, background colour."""
    p = np.zeros((n, NUM_PARAMS), np.float32)
    p[:, P["x"]], p[:, P["y"]] = 0.5 * canvas_hw[1], 0.5 * canvas_hw[0]
    p[:, P["r"] : P["b"] + 1] = background
    return p


def painting_order(
    layer: np.ndarray, level: np.ndarray, policy: str, rng: np.random.Generator, pad: np.ndarray | None = None,
    rand: np.ndarray | None = None,
) -> np.ndarray:
    """Indices that sort strokes by the policy's keys (stable; seeded shuffle within groups, or
    the given `rand` keys).

    Padding strokes (`pad` True) go after the real strokes of their group.
    """
    keys = {"layer": layer, "level": level, "rand": rng.permutation(len(layer)) if rand is None else rand}
    names = list(ORDER_POLICIES[policy])
    if pad is not None:
        keys["pad"] = pad
        names.insert(names.index("rand"), "pad")
    # np.lexsort sorts by the last key first.
    return np.lexsort(tuple(keys[k] for k in reversed(names)))


def clamp_to_slots(program: StrokeProgram, config: PlanConfig, hw: tuple[int, int]) -> StrokeProgram:
    """Clamps each stroke's width, length and |bend| to its level's slot bounds, e.g. after a fit
    (which may bend strokes more than the planner does), so it stays inside its `slot_layout` window."""
    bounds = _slot_bounds(config, hw)[np.clip(program.level, 0, config.levels - 1)]  # [N, 3]
    p = program.params.copy()
    p[:, P["width"]] = np.minimum(p[:, P["width"]], bounds[:, 0])
    p[:, P["length"]] = np.minimum(p[:, P["length"]], bounds[:, 1])
    p[:, P["bend"]] = np.clip(p[:, P["bend"]], -bounds[:, 2], bounds[:, 2])
    return program._replace(params=p)
