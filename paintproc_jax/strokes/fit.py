"""Fit: refine planned stroke parameters against the image with the differentiable renderer.

The whole ordered composite is optimised (strokes keep their painting order, so the picture
is right at every prefix of the order the renderer uses). Adam with per-parameter step
sizes; after each step the parameters are projected back into their valid box (colours and
opacity in [0, 1], sizes within what the static render layout's windows hold). Edge softness
is annealed from soft (wide gradients) to the hard final render. A batch of images shares
one layout and canvas (for level-major plans, one per canvas bucket), so it compiles once.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from paintproc_jax.io.images import resize_image
from paintproc_jax.program import NUM_PARAMS, P, StrokeProgram
from paintproc_jax.strokes import plan as plan_lib
from paintproc_jax.strokes import raster


@dataclasses.dataclass(frozen=True)
class FitConfig:
    steps: int = 200
    lr: float = 1.0  # multiplies the per-parameter step sizes below
    softness_start: float = 1.0  # px, annealed to softness_end
    softness_end: float = 0.0
    grow: float = 1.1  # strokes may grow up to this factor (windows are sized for it)
    coarse_fraction: float = 0.5  # share of the steps run at half resolution (about 4x cheaper)
    min_coarse_size: int = 96  # no coarse phase when half resolution would be smaller than this
    stage_weight: float = 0.1  # loss weight of each intermediate stage canvas (the finished one weighs 1) ...
    stage_weight_end: float = 0.1  # ... annealed (cosine) to this by the last step
    block_in_splits: int = 4  # stages inside the first (block-in) level: its quarters
    refine_splits: int = 1  # stages inside each finer level (1: only its end; each split is one more scan to compile)


# Adam step sizes per parameter column (canvas units, radians, colour units); tuned on
# scikit-image photos for 25-100 step fits (see tools/bench_strokes.py).
_STEP = np.zeros(NUM_PARAMS, np.float32)
for _name, _lr in {
    "x": 6e-3, "y": 6e-3, "length": 4e-3, "width": 2e-3, "angle": 0.12, "bend": 0.04,
    "r": 0.08, "g": 0.08, "b": 0.08, "opacity": 0.08,
}.items():
    _STEP[P[_name]] = _lr


def _bounds(params0: jax.Array, canvas_hw: jax.Array, size: int, grow: float):
    """Per-parameter box [lo, hi] that keeps strokes inside their layout windows."""
    n = params0.shape[0]
    lo = jnp.full((n, NUM_PARAMS), -jnp.inf)
    hi = jnp.full((n, NUM_PARAMS), jnp.inf)
    px = 1.0 / size
    lo = lo.at[:, P["x"]].set(-0.02).at[:, P["y"]].set(-0.02)
    hi = hi.at[:, P["x"]].set(canvas_hw[1] + 0.02).at[:, P["y"]].set(canvas_hw[0] + 0.02)
    lo = lo.at[:, P["width"]].set(0.7 * px)
    hi = hi.at[:, P["width"]].set(jnp.maximum(params0[:, P["width"]], px) * grow)
    lo = lo.at[:, P["length"]].set(0.7 * px)
    hi = hi.at[:, P["length"]].set(jnp.maximum(params0[:, P["length"]], params0[:, P["width"]]) * grow)
    lo = lo.at[:, P["bend"]].set(-0.25)
    hi = hi.at[:, P["bend"]].set(0.25)
    for c in ("r", "g", "b"):
        lo = lo.at[:, P[c]].set(0.0)
        hi = hi.at[:, P[c]].set(1.0)
    lo = lo.at[:, P["opacity"]].set(0.05)
    hi = hi.at[:, P["opacity"]].set(1.0)
    return lo, hi


MAX_STAGES = 24


def stage_ends(level: np.ndarray, block_in_splits: int = 4, refine_splits: int = 1) -> tuple[int, ...]:
    """Stroke counts [S] that end a stage of a program whose strokes have refinement `level` [N]
    (painting order): every change of level, the end, and `block_in_splits` even parts of the
    first level run (the block-in). Increasing, the last is N."""
    level = np.asarray(level)
    n = len(level)
    if n == 0:
        return (0,)
    bounds = [0] + sorted(set(int(i) for i in np.flatnonzero(np.diff(level) != 0) + 1) | {n})
    ends = set(bounds[1:])
    for a, b in zip(bounds[:-1], bounds[1:]):
        splits = block_in_splits if a == 0 else refine_splits
        ends |= {int(round(a + (b - a) * k / splits)) for k in range(1, splits)}
    return tuple(sorted(e for e in ends if e > 0))


def batch_stage_ends(levels: list[np.ndarray], block_in_splits: int = 4, refine_splits: int = 1) -> tuple[int, ...]:
    """One set of stage ends for a batch: the union of every program's, or (when that is more
    than MAX_STAGES, e.g. layer-major orders whose level changes depend on the image) evenly
    spaced ones."""
    ends = sorted(set().union(*(stage_ends(lv, block_in_splits, refine_splits) for lv in levels)))
    if len(ends) > MAX_STAGES:
        n = len(levels[0])
        ends = sorted({int(round(n * k / 16)) for k in range(1, 17)} - {0})
    return tuple(ends)


@functools.lru_cache(maxsize=16)
def make_fitter(hw: tuple[int, int], layout: raster.Layout, medium: int | None, config: FitConfig,
                ends: tuple[int, ...] | None = None):
    """Returns (init, step) for batched fitting at pixel size `hw` with a fixed layout.

    The loss is the MSE of the finished canvas plus `config.stage_weight` times the MSE of every
    intermediate stage canvas (after the first `ends[s]` strokes): each stage is fitted to be the
    best picture its strokes make over the strokes before them, not only the last one.
    init(programs, targets, valid) -> state; step(state, programs, targets, i) -> (state, loss [B]),
    loss being the finished canvas's MSE.
    `programs` carry a leading batch axis, `targets` are [B, H, W, 3]; `valid` [B, 2] int32 is
    each image's own pixel size, top left in the canvas (the rest is padding up to the canvas
    bucket, outside the loss). Cached: every batch with the same shapes, layout and config
    reuses one compiled step. The batch is iterated with `lax.map` (not `vmap`): batched
    window updates would become scatters, several times slower than in-place updates.
    """
    size = max(hw)
    tx = optax.chain(optax.scale_by_adam(b1=0.9, b2=0.99), optax.scale_by_schedule(
        optax.cosine_decay_schedule(1.0, config.steps, alpha=0.05)))
    step_sizes = jnp.asarray(_STEP) * config.lr

    layout_strokes = sum(c for _, c in layout)
    ends = (layout_strokes,) if ends is None else tuple(ends)
    if ends[-1] != layout_strokes:
        raise ValueError(f"the last stage must end at the last stroke ({layout_strokes}), got {ends}")
    is_stage = jnp.asarray([1.0] * (len(ends) - 1) + [0.0], jnp.float32)  # [S]

    def loss_fn(params, program, target, valid, softness, stage_weight):
        stages = raster.render_stages(program._replace(params=params), hw, layout, ends, softness, medium)  # [S, H, W, 3]
        inside = (jnp.arange(hw[0])[:, None] < valid[0]) & (jnp.arange(hw[1])[None, :] < valid[1])  # [H, W]
        sq = jnp.where(inside[..., None], jnp.square(stages - target), 0.0)
        mse = jnp.sum(sq, axis=(1, 2, 3)) / (3.0 * valid[0] * valid[1]).astype(jnp.float32)  # [S], over the image only
        return jnp.sum((1.0 + is_stage * (stage_weight - 1.0)) * mse), mse[-1]

    def init_one(program, target, valid):
        lo, hi = _bounds(program.params, program.canvas_hw, size, config.grow)
        return dict(params=program.params, opt=tx.init(program.params), lo=lo, hi=hi, valid=valid)

    def step_one(state, program, target, i):
        frac = i / jnp.maximum(config.steps - 1, 1)
        anneal = 0.5 * (1 + jnp.cos(jnp.pi * frac))  # 1 -> 0
        softness = config.softness_end + (config.softness_start - config.softness_end) * anneal
        stage_weight = config.stage_weight_end + (config.stage_weight - config.stage_weight_end) * anneal
        (_, loss), grad = jax.value_and_grad(loss_fn, has_aux=True)(state["params"], program, target, state["valid"], softness,
                                                                    stage_weight)
        updates, opt = tx.update(grad, state["opt"], state["params"])
        params = jnp.clip(state["params"] - updates * step_sizes, state["lo"], state["hi"])
        return dict(state, params=params, opt=opt), loss

    init = jax.jit(jax.vmap(init_one))

    def step(state, programs, targets, i):
        return jax.lax.map(lambda xs: step_one(*xs, i), (state, programs, targets))

    return init, jax.jit(step, donate_argnums=(0,))


def canvas_bucket(hw: tuple[int, int]) -> tuple[int, int]:
    """The canvas a fit compiles for: the long side kept, the short side rounded up to a multiple
    of 1/12 of it (at least 8 px), so photos of nearby aspects share one compiled program."""
    long = max(hw)
    step = max(8, long // 12)
    return tuple(s if s == long else min(long, -(-s // step) * step) for s in hw)


def _coarse_hw(hw: tuple[int, int]) -> tuple[int, int]:
    return ((hw[0] + 1) // 2, (hw[1] + 1) // 2)


def canonical_layouts(plan: plan_lib.PlanConfig, config: FitConfig, hw: tuple[int, int]) -> list | None:
    """The image-independent fit canvases of a `hw` image: [(canvas hw, layout)] for the coarse
    (half size) and the full phase, or None when `plan` has no canonical layout (`plan.fit_layout`)."""
    if not plan_lib.canonical_order(plan):
        return None
    full = canvas_bucket(hw)
    return [(c, plan_lib.fit_layout(plan, c, softness=config.softness_start, grow=config.grow)) for c in (_coarse_hw(full), full)]


def _half(image: np.ndarray) -> np.ndarray:
    """[H, W, 3] -> [ceil(H/2), ceil(W/2), 3] by Lanczos (host side, once per fit)."""
    return np.clip(resize_image(image, _coarse_hw(image.shape[:2])), 0.0, 1.0).astype(np.float32)


def _pad_to(image: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """[h, w, 3] -> [H, W, 3], edge values repeated into the padding (outside the loss)."""
    return np.pad(image, ((0, hw[0] - image.shape[0]), (0, hw[1] - image.shape[1]), (0, 0)), mode="edge")


def batch_key(plan: plan_lib.PlanConfig | None, config: FitConfig, hw: tuple[int, int]) -> tuple[int, int]:
    """Images with one key fit as one batch (one compiled program): the canvas bucket where the
    plan has canonical layouts, else the pixel size."""
    return canvas_bucket(hw) if plan is not None and plan_lib.canonical_order(plan) else tuple(hw)


def fit_programs(
    programs: StrokeProgram,
    targets,
    config: FitConfig = FitConfig(),
    *,
    plan: plan_lib.PlanConfig | None = None,
    progress: Callable[[int, float], None] | None = None,
) -> tuple[StrokeProgram, np.ndarray]:
    """Fits a batch of programs (leading axis B, same N) to `targets`: [B, H, W, 3], or B images
    [h, w, 3] of one `batch_key`.

    Coarse to fine in resolution too: the first `coarse_fraction` of the steps fit the image at
    half resolution (the parameters are resolution independent; the optimiser state carries
    over), the rest at full resolution. Returns the fitted programs (NumPy) and the final
    per-image MSE [B] at full resolution.

    With the `plan` config the programs were planned with, and a level-major order, the fit
    compiles for the image-independent `canonical_layouts` on a padded canvas bucket (strokes
    too large for their window are shrunk to fit first): every photo of a bucket reuses one
    compiled program, and photos of different sizes in a bucket fit as one batch. Without it,
    layouts follow the programs (one compile per layout) and the images must share one size.
    """
    images = [np.asarray(t, np.float32) for t in targets]
    b = len(images)
    sizes = [im.shape[:2] for im in images]
    keys = {batch_key(plan, config, hw) for hw in sizes}
    if len(keys) != 1:
        raise ValueError(f"a batch must hold images of one {'canvas bucket' if plan is not None and plan_lib.canonical_order(plan) else 'size'}, "
                         f"got {sorted(set(sizes))}")
    h, w = max(h for h, _ in sizes), max(w for _, w in sizes)
    medium = int(np.asarray(programs.medium).reshape(-1)[0])
    same_medium = bool(np.all(np.asarray(programs.medium) == medium))
    canvases = canonical_layouts(plan, config, sizes[0]) if plan is not None else None
    if canvases is not None:
        counts = [c for _, c in canvases[0][1]]
        expected = np.repeat(np.arange(len(counts)), counts)
        if np.asarray(programs.level).shape[-1] != len(expected) or np.any(np.asarray(programs.level) != expected):
            canvases = None  # not the plan's level sequence (e.g. edited programs): layouts follow the data
            if len(set(sizes)) > 1:
                raise ValueError(f"programs whose levels are not their plan's need images of one size, got {sorted(set(sizes))}")
    singles = [StrokeProgram(*(np.asarray(x)[i] for x in programs)) for i in range(b)]
    if canvases is not None:  # strokes too large for a phase's windows shrink to fit
        for c, layout in canvases:
            singles = [plan_lib.clamp_to_layout(p, layout, max(c), softness=config.softness_start, grow=config.grow)
                       for p in singles]
        programs = programs._replace(params=np.stack([p.params for p in singles]).astype(np.asarray(programs.params).dtype))
    dev_programs = jax.tree.map(jnp.asarray, programs)
    coarse_steps = int(round(config.steps * config.coarse_fraction)) if max(h, w) // 2 >= config.min_coarse_size else 0
    phases = [([_half(im) for im in images] if coarse_steps else None, coarse_steps), (images, config.steps - coarse_steps)]
    ends = (batch_stage_ends([p.level for p in singles], config.block_in_splits, config.refine_splits)
            if config.stage_weight > 0 else None)
    state, loss, i = None, None, 0
    for (phase_images, steps), (canvas, layout) in zip(phases, canvases or [(None, None)] * 2):
        if steps <= 0:
            continue
        if canvas is None:
            canvas = phase_images[0].shape[:2]
            layout = raster.batch_layout(singles, max(canvas), softness=config.softness_start, grow=config.grow)
        init, step = make_fitter(canvas, layout, medium if same_medium else None, config, ends)
        dev_targets = jnp.asarray(np.stack([_pad_to(im, canvas) for im in phase_images]))
        valid = jnp.asarray([im.shape[:2] for im in phase_images], jnp.int32)  # [B, 2]
        fresh = init(dev_programs, dev_targets, valid)  # bounds for this resolution
        state = fresh if state is None else dict(fresh, params=state["params"], opt=state["opt"])
        for _ in range(steps):
            state, loss = step(state, dev_programs, dev_targets, jnp.float32(i))
            if progress is not None:
                progress(i, float(jnp.mean(loss)) if i == config.steps - 1 or i % 10 == 0 else float("nan"))
            i += 1
    fitted = programs._replace(params=np.asarray(state["params"]) if state is not None else programs.params)
    final = np.asarray(loss) if loss is not None else np.full(b, np.nan)
    return fitted, final
