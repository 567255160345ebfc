"""Plan: image + depth -> an ordered `StrokeProgram`, in NumPy (fast, no gradients).

Runs in data-loader workers, so NumPy/SciPy only. The plan makes the two human habits of
AnimatePainter explicit:
- *layering*: the depth map is cut into K layers by quantiles, far (0) to near (K-1);
- *refinement*: L levels of brush sizes, coarse (0) to fine; level 0 covers the whole canvas,
  each finer level places its strokes where the image still holds detail that the coarser
  levels miss (the band between two blur scales of a Gaussian pyramid).
Colours come from the image blurred at the brush scale; directions follow the image
structure (structure tensor), stroke length grows with how oriented the structure is.
The order is a policy (data): `ORDER_POLICIES[name]` lists the sort keys.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import ndimage

from paintproc_jax.program import MEDIUM_ID, NUM_PARAMS, P, StrokeProgram, canvas_hw_for, make_program
from paintproc_jax.strokes.media import PLAN_STYLE

# Painting order as sort keys, most significant first ("rand" = a seeded shuffle within groups).
ORDER_POLICIES = {
    "layer-major": ("layer", "level", "rand"),  # each layer far -> near, coarse -> fine within it
    "level-major": ("level", "layer", "rand"),  # each level coarse -> fine, far -> near within it
}


@dataclasses.dataclass(frozen=True)
class PlanConfig:
    """How to decompose an image into strokes (all sizes relative, so any resolution works)."""

    strokes: int = 1000  # total stroke budget N
    layers: int = 3  # depth layers K
    levels: int = 4  # refinement levels L
    order: str = "layer-major"
    medium: str = "oil"
    base_coverage: float = 2.5  # how many times level 0 covers the canvas (no canvas left bare)
    coverage: float = 1.5  # how many times each finer level covers the area that still needs detail
    growth: float = 2.0  # stroke count ratio of consecutive levels (finer levels get more)
    aspect: float = 2.5  # stroke length / width for a perfectly oriented structure
    bend: float = 0.05  # spread of random centre-line bend (sagitta / length)
    detail_gamma: float = 1.0  # sharpness of the placement distribution on detail
    background: tuple[float, float, float] = (1.0, 1.0, 1.0)

    def validate(self) -> "PlanConfig":
        if self.strokes < 1:
            raise ValueError(f"the stroke budget must be at least 1 (got {self.strokes})")
        if self.layers < 1 or self.levels < 1:
            raise ValueError("layers and levels must be at least 1")
        if self.order not in ORDER_POLICIES:
            raise ValueError(f"unknown order {self.order!r}; choose one of {', '.join(ORDER_POLICIES)}")
        if self.medium not in MEDIUM_ID:
            raise ValueError(f"unknown medium {self.medium!r}; choose one of {', '.join(MEDIUM_ID)}")
        return self


def depth_layers(depth: np.ndarray, layers: int) -> np.ndarray:
    """[H, W] depth (1 = nearest) -> [H, W] int32 layer ids by quantiles, far = 0."""
    smooth = ndimage.gaussian_filter(depth.astype(np.float32), 1.0)
    if layers == 1:
        return np.zeros(depth.shape, np.int32)
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


def _blur(img: np.ndarray, sigma: float) -> np.ndarray:
    if sigma <= 0.3:
        return img
    if img.ndim == 3:
        return np.stack([ndimage.gaussian_filter(img[..., c], sigma, mode="nearest") for c in range(img.shape[-1])], -1)
    return ndimage.gaussian_filter(img, sigma, mode="nearest")


def _structure(gray: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Edge-following direction (radians) and coherence in [0, 1] at scale `sigma` px."""
    gy = ndimage.sobel(gray, 0, mode="nearest")
    gx = ndimage.sobel(gray, 1, mode="nearest")
    jxx = ndimage.gaussian_filter(gx * gx, sigma)
    jyy = ndimage.gaussian_filter(gy * gy, sigma)
    jxy = ndimage.gaussian_filter(gx * gy, sigma)
    grad_dir = 0.5 * np.arctan2(2 * jxy, jxx - jyy)
    disc = np.sqrt((jxx - jyy) ** 2 + 4 * jxy**2)
    coherence = np.square(disc / (jxx + jyy + 1e-8))
    return grad_dir + 0.5 * np.pi, np.clip(coherence, 0.0, 1.0)


def _place(weight: np.ndarray, n: int, cell: float, rng: np.random.Generator) -> np.ndarray:
    """n positions (y, x in px) spread over a grid of `cell`-px cells, cells drawn by weight."""
    h, w = weight.shape
    gh, gw = max(1, int(np.ceil(h / cell))), max(1, int(np.ceil(w / cell)))
    ch, cw = h / gh, w / gw
    # Mean weight per cell.
    yy = np.minimum((np.arange(h) / ch).astype(int), gh - 1)
    xx = np.minimum((np.arange(w) / cw).astype(int), gw - 1)
    cell_w = np.zeros((gh, gw))
    np.add.at(cell_w, (yy[:, None], xx[None, :]), weight)
    cell_w = cell_w.reshape(-1) + 1e-12
    num_cells = cell_w.size
    # Weighted sampling without replacement (Gumbel top-k), repeating cells if n > cells.
    picks = []
    while len(picks) < n:
        k = min(n - len(picks), num_cells)
        keys = np.log(cell_w) + rng.gumbel(size=num_cells)
        picks.extend(np.argpartition(-keys, k - 1)[:k].tolist())
    picks = np.asarray(picks[:n])
    cy, cx = np.divmod(picks, gw)
    y = (cy + rng.uniform(0.1, 0.9, n)) * ch
    x = (cx + rng.uniform(0.1, 0.9, n)) * cw
    return np.stack([np.clip(y, 0, h - 1e-3), np.clip(x, 0, w - 1e-3)], -1)


def _support_fraction(weight: np.ndarray) -> float:
    """Effective fraction of the canvas a weight map covers (participation ratio)."""
    s1, s2 = weight.sum(), np.square(weight).sum()
    return float(np.clip(s1 * s1 / (s2 * weight.size + 1e-12), 0.05, 1.0))


def plan_strokes(image: np.ndarray, depth: np.ndarray, config: PlanConfig, seed: int = 0) -> StrokeProgram:
    """Decomposes `image` [H, W, 3] in [0, 1] with `depth` [H, W] (1 = nearest) into strokes.

    Returns a program in painting order (`config.order`), with one frame showing all strokes.
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
    scale = float(max(h, w))  # px per canvas unit
    style = PLAN_STYLE[config.medium]
    aspect = max(1.0, config.aspect * style["aspect"])
    layer_map = depth_layers(depth, config.layers)
    gray = image @ np.array([0.299, 0.587, 0.114], np.float32)
    counts = level_counts(config.strokes, config.levels, config.growth)

    rows, layers, levels = [], [], []
    prev_blur = np.broadcast_to(np.asarray(config.background, np.float32), image.shape)
    for lvl, n in enumerate(counts):
        if lvl == 0:
            weight = np.ones((h, w), np.float32)
        else:
            weight = np.abs(image - prev_blur).sum(-1)
        frac = 1.0 if lvl == 0 else _support_fraction(weight)
        cover = config.base_coverage if lvl == 0 else config.coverage
        area = cover * h * w * frac / n  # px^2 per stroke
        width = float(np.clip(np.sqrt(area / aspect) * style["width"], 1.0, 0.5 * scale))
        sigma = 0.5 * width
        blurred = _blur(image, sigma)
        if lvl > 0:
            weight = ndimage.gaussian_filter(weight, sigma) ** config.detail_gamma
        cell = np.sqrt(h * w * frac / n)
        pos = _place(weight, int(n), cell, rng)  # [n, 2] (y, x) px
        iy = np.clip(pos[:, 0].astype(int), 0, h - 1)
        ix = np.clip(pos[:, 1].astype(int), 0, w - 1)
        direction, coherence = _structure(_blur(gray, 0.5 * sigma), max(sigma, 1.0))
        p = np.zeros((n, NUM_PARAMS), np.float32)
        p[:, P["x"]] = pos[:, 1] / scale
        p[:, P["y"]] = pos[:, 0] / scale
        p[:, P["width"]] = width / scale * rng.uniform(0.85, 1.15, n)
        p[:, P["length"]] = p[:, P["width"]] * (1.0 + (aspect - 1.0) * (0.35 + 0.65 * coherence[iy, ix]))
        p[:, P["angle"]] = direction[iy, ix] + rng.normal(0, 0.15, n)
        p[:, P["bend"]] = np.clip(rng.normal(0, config.bend, n), -2 * config.bend, 2 * config.bend)
        p[:, P["r"] : P["b"] + 1] = blurred[iy, ix]
        p[:, P["opacity"]] = np.clip(style["opacity"] * rng.uniform(0.9, 1.0, n), 0, 1)
        p[:, P["seed"]] = rng.uniform(0, 1, n)
        rows.append(p)
        layers.append(layer_map[iy, ix])
        levels.append(np.full(n, lvl, np.int32))
        prev_blur = blurred
    params = np.concatenate(rows)
    layer = np.concatenate(layers).astype(np.int32)
    level = np.concatenate(levels)
    order = painting_order(layer, level, config.order, rng)
    return make_program(
        params[order],
        layer=layer[order],
        level=level[order],
        medium=config.medium,
        canvas_hw=canvas_hw_for(h, w),
        background=config.background,
    )


def painting_order(layer: np.ndarray, level: np.ndarray, policy: str, rng: np.random.Generator) -> np.ndarray:
    """Indices that sort strokes by the policy's keys (stable; seeded shuffle within groups)."""
    keys = {"layer": layer, "level": level, "rand": rng.permutation(len(layer))}
    # np.lexsort sorts by the last key first.
    return np.lexsort(tuple(keys[k] for k in reversed(ORDER_POLICIES[policy])))
