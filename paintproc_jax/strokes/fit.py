"""Fit: refine planned stroke parameters against the image with the differentiable renderer.

The whole ordered composite is optimised (strokes keep their painting order, so the picture
is right at every prefix of the order the renderer uses). Adam with per-parameter step
sizes; after each step the parameters are projected back into their valid box (colours and
opacity in [0, 1], sizes within what the static render layout's windows hold). Edge softness
is annealed from soft (wide gradients) to the hard final render. Batched over images with
`vmap`: every image in a batch shares one layout, so a folder compiles once.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from paintproc_jax.program import NUM_PARAMS, P, StrokeProgram
from paintproc_jax.strokes import raster


@dataclasses.dataclass(frozen=True)
class FitConfig:
    steps: int = 200
    lr: float = 1.0  # multiplies the per-parameter step sizes below
    softness_start: float = 1.0  # px, annealed to softness_end
    softness_end: float = 0.0
    grow: float = 1.2  # strokes may grow up to this factor (windows are sized for it)


# Adam step sizes per parameter column (canvas units, radians, colour units).
_STEP = np.zeros(NUM_PARAMS, np.float32)
for _name, _lr in {
    "x": 1.5e-3, "y": 1.5e-3, "length": 1e-3, "width": 5e-4, "angle": 0.03, "bend": 0.01,
    "r": 0.02, "g": 0.02, "b": 0.02, "opacity": 0.02,
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


def make_fitter(hw: tuple[int, int], layout: raster.Layout, medium: int | None, config: FitConfig):
    """Returns (init, step) for batched fitting at pixel size `hw` with a fixed layout.

    init(programs, targets) -> state; step(state, i) -> (state, loss [B]).
    Both are jitted once; `programs` carry a leading batch axis, `targets` are [B, H, W, 3].
    """
    size = max(hw)
    tx = optax.chain(optax.scale_by_adam(b1=0.9, b2=0.99), optax.scale_by_schedule(
        optax.cosine_decay_schedule(1.0, config.steps, alpha=0.05)))
    step_sizes = jnp.asarray(_STEP) * config.lr

    def loss_fn(params, program, target, softness):
        img = raster.render(program._replace(params=params), hw, layout, softness, medium)
        return jnp.mean(jnp.square(img - target))

    def init_one(program, target):
        lo, hi = _bounds(program.params, program.canvas_hw, size, config.grow)
        return dict(params=program.params, opt=tx.init(program.params), lo=lo, hi=hi)

    def step_one(state, program, target, i):
        frac = i / jnp.maximum(config.steps - 1, 1)
        softness = config.softness_end + (config.softness_start - config.softness_end) * 0.5 * (1 + jnp.cos(jnp.pi * frac))
        loss, grad = jax.value_and_grad(loss_fn)(state["params"], program, target, softness)
        updates, opt = tx.update(grad, state["opt"], state["params"])
        params = jnp.clip(state["params"] - updates * step_sizes, state["lo"], state["hi"])
        return dict(state, params=params, opt=opt), loss

    init = jax.jit(jax.vmap(init_one))
    step = jax.jit(jax.vmap(step_one, in_axes=(0, 0, 0, None)), donate_argnums=(0,))
    return init, step


def fit_programs(
    programs: StrokeProgram,
    targets: np.ndarray,
    config: FitConfig = FitConfig(),
    *,
    progress: Callable[[int, float], None] | None = None,
) -> tuple[StrokeProgram, np.ndarray]:
    """Fits a batch of programs (leading axis B, same N) to `targets` [B, H, W, 3].

    Returns the fitted programs (NumPy) and the final per-image MSE [B].
    """
    targets = np.asarray(targets, np.float32)
    b, h, w = targets.shape[:3]
    size = max(h, w)
    medium = int(np.asarray(programs.medium).reshape(-1)[0])
    same_medium = bool(np.all(np.asarray(programs.medium) == medium))
    singles = [StrokeProgram(*(np.asarray(x)[i] for x in programs)) for i in range(b)]
    layout = raster.batch_layout(singles, size, softness=config.softness_start, grow=config.grow)
    init, step = make_fitter((h, w), layout, medium if same_medium else None, config)
    dev_programs = jax.tree.map(jnp.asarray, programs)
    dev_targets = jnp.asarray(targets)
    state = init(dev_programs, dev_targets)
    loss = None
    for i in range(config.steps):
        state, loss = step(state, dev_programs, dev_targets, jnp.float32(i))
        if progress is not None:
            progress(i, float(jnp.mean(loss)) if i == config.steps - 1 or i % 10 == 0 else float("nan"))
    fitted = programs._replace(params=np.asarray(state["params"]))
    final = np.asarray(loss) if loss is not None else np.full(b, np.nan)
    return fitted, final
