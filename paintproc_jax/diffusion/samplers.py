"""Samplers: noise -> reverse-painting clip, with compositional classifier-free guidance, clean context
frames, and autoregressive continuation for processes longer than the training clips.

A reverse clip [B, 1 + F, H, W, 3] in [-1, 1] has the reference (`cond["ref"]`) as frame 0, then the
process from the finished painting back to the blank canvas; `to_forward` flips it to painting order.
Every sampler integrates the path's ODE from t = 1 to the last grid level and then takes the
denoised estimate x0_hat as its final step (for "flow" that is exactly Euler's last step, for any
path it is DDIM's, and it never asks the network for a prediction at t = 0).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from paintproc_jax.diffusion import schedules

SAMPLERS = ("euler", "heun", "ddim")
GUIDANCE_CHAIN = ("ref", "depth", "medium")  # compositional CFG adds conditions in this order


def to_forward(clip):
    """Reverse clip [B, T, H, W, 3] (reference first, blank last) -> painting order (blank first, reference last)."""
    return jnp.flip(jnp.asarray(clip), axis=1)


def guidance_weights(cond: dict, guidance: dict | None) -> list[tuple[dict, float]]:
    """The passes compositional CFG needs: [(keep flags, coefficient)], coefficients summing to 1.

    Along the chain none -> +ref -> +depth -> +medium (conditions absent from `cond` are skipped and
    kept "on" in every pass), pred = p0 + Σ_k s_k·(p_k − p_{k−1}) = Σ_k c_k·p_k with c_0 = 1 − s_1,
    c_k = s_k − s_{k+1}, c_K = s_K; passes whose coefficient is 0 are left out, so scales all 1
    give the single conditional pass.
    """
    guidance = {} if guidance is None else guidance
    if hasattr(guidance, "to_dict"):  # an ml_collections ConfigDict (the `sample.guidance` config section)
        guidance = guidance.to_dict()
    if not isinstance(guidance, Mapping):
        raise ValueError(f"guidance must be a dict of scales with keys among {GUIDANCE_CHAIN}, got {guidance!r}")
    unknown = set(guidance) - set(GUIDANCE_CHAIN)
    if unknown:
        raise ValueError(f"unknown guidance condition(s) {sorted(unknown)}; use {', '.join(GUIDANCE_CHAIN)}")
    chain = [name for name in GUIDANCE_CHAIN if name in cond]
    scales = [float(guidance.get(name, 1.0)) for name in chain]
    coeffs = [1.0 - scales[0]] + [scales[k] - scales[k + 1] for k in range(len(chain) - 1)] + [scales[-1]] if chain else [1.0]
    passes = []
    for j, c in enumerate(coeffs):
        if c != 0.0:
            on = set(chain[:j])
            passes.append(({name: name in on or name not in chain for name in GUIDANCE_CHAIN}, c))
    return passes


def guided_apply(apply, cond: dict, guidance: dict | None):
    """(x [B, F, H, W, 3], t [B, F]) -> guided prediction; the needed passes run as one call, batched
    along the batch axis."""
    passes = guidance_weights(cond, guidance)
    if len(passes) == 1 and all(passes[0][0].values()) and passes[0][1] == 1.0:
        return lambda x, t: apply(x, t, cond, None)  # plain conditional prediction
    n = len(passes)
    b = cond["ref"].shape[0]
    cond_n = jax.tree.map(lambda v: jnp.concatenate([jnp.asarray(v)] * n, axis=0), cond)
    keep_n = {name: jnp.repeat(jnp.asarray([flags[name] for flags, _ in passes]), b) for name in GUIDANCE_CHAIN}  # [n·B]
    coeffs = [c for _, c in passes]

    def fn(x, t):
        out = apply(jnp.concatenate([x] * n, axis=0), jnp.concatenate([t] * n, axis=0), cond_n, keep_n)
        out = out.reshape((n, b) + out.shape[1:])
        pred = coeffs[0] * out[0]
        for k in range(1, n):
            pred = pred + coeffs[k] * out[k]
        return pred

    return fn


def _is_key_batch(rng) -> bool:
    """True for a batch of PRNG keys [B] (typed keys, or raw uint32 keys [B, 2]), False for one key."""
    if jax.dtypes.issubdtype(jnp.result_type(rng), jax.dtypes.prng_key):
        return jnp.ndim(rng) == 1
    return jnp.ndim(rng) == 2


def _check_rng(rng, b: int) -> bool:
    """Validates `rng` (one key, or one key per row); returns whether it is per row."""
    batched = _is_key_batch(rng)
    if batched and jnp.shape(rng)[0] != b:
        raise ValueError(f"rng holds {jnp.shape(rng)[0]} keys but the batch has {b} rows: give one key, or one per row")
    return batched


def _fold_in(rng, data: int):
    """`jax.random.fold_in` of one key or of each key of a batch."""
    if _is_key_batch(rng):
        return jax.vmap(lambda k: jax.random.fold_in(k, data))(rng)
    return jax.random.fold_in(rng, data)


def initial_noise(rng, shape):
    """Noise [B, ...] at t = 1: from one key (the whole batch at once), or from a batch of B keys,
    row b from rng[b] alone, so a row does not depend on the rest of the batch (or its padding)."""
    if _check_rng(rng, shape[0]):
        return jax.vmap(lambda k: schedules.normal(k, shape[1:]))(rng)
    return schedules.normal(rng, shape)


def _check_common(cond: dict, frames: int, tubelet: int, sampler: str, objective: str, image_hw):
    """Validates the arguments shared by `sample` and `continue_process`; returns (B, H, W)."""
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; choose one of {', '.join(SAMPLERS)}")
    schedules.check_objective(objective)
    if not (isinstance(tubelet, (int, np.integer)) and tubelet >= 1):
        raise ValueError(f"tubelet must be a positive integer, got {tubelet!r}")
    if not (isinstance(frames, (int, np.integer)) and frames >= tubelet and frames % tubelet == 0):
        raise ValueError(f"frames={frames!r} must be a positive multiple of tubelet={tubelet}")
    if "ref" not in cond:
        raise ValueError("cond must hold the reference image 'ref' [B, H, W, 3]")
    ref_shape = jnp.shape(cond["ref"])
    if len(ref_shape) != 4 or ref_shape[-1] != 3:
        raise ValueError(f"cond['ref'] must be [B, H, W, 3], got shape {ref_shape}")
    b, h, w = ref_shape[:3]
    if image_hw is not None and tuple(image_hw) != (h, w):
        raise ValueError(f"image_hw={tuple(image_hw)} does not match the reference's size {(h, w)}")
    return b, h, w


def sample(
    apply,
    cond: dict,
    rng,
    *,
    frames: int,
    sampler: str = "euler",
    steps: int = 32,
    guidance: dict | None = None,
    objective: str = "flow",
    shift: float = 1.0,
    tubelet: int = 1,
    context=None,
    image_hw: tuple[int, int] | None = None,
    progress: Callable[[int, int], None] | None = None,
    forward: bool = False,
):
    """Samples a reverse clip [B, 1 + frames, H, W, 3] in [-1, 1]; frame 0 is `cond["ref"]` unchanged
    (`forward=True`: painting order, the reference last).

    `apply(x, t, cond, keep)` is the network; `steps` time intervals on the shifted grid 1 -> 0
    ("heun" costs 2·steps − 1 network calls). `guidance`: scales {"ref", "depth", "medium"} (default 1,
    one pass). `context` [B, C, H, W, 3]: known first generated frames (C a multiple of tubelet,
    C < frames), held clean at t = 0 and returned as given. `image_hw` (optional) is checked against
    the reference. `rng`: one key, or a batch of B keys (row b's noise from rng[b] alone, so a
    sample depends only on its own key, not on what else is in the batch). `progress(step, steps)` is called from the device after each step. Jittable:
    close over everything but cond, rng and context (frames, sampler, steps, guidance, ... are static).
    """
    cond = {k: v for k, v in cond.items() if v is not None}  # None = absent (e.g. no depth)
    b, h, w = _check_common(cond, frames, tubelet, sampler, objective, image_hw)
    _check_rng(rng, b)
    grid = schedules.time_grid(steps, shift)  # [steps + 1], 1 -> 0
    ref = cond["ref"]
    shape = (b, frames, h, w, 3)

    n_ctx = 0
    if context is not None:
        cshape = jnp.shape(context)
        if len(cshape) != 5 or cshape[0] != b or tuple(cshape[2:]) != (h, w, 3):
            raise ValueError(f"context must be [B={b}, C, {h}, {w}, 3], got shape {cshape}")
        n_ctx = cshape[1]
        if n_ctx >= frames:
            raise ValueError(f"context has {n_ctx} frames but frames={frames}: it must be shorter, leaving frames to generate")
        if n_ctx % tubelet:
            raise ValueError(f"context has {n_ctx} frames, not a multiple of tubelet={tubelet}")
    is_ctx = np.arange(frames) < n_ctx  # [F], static
    ctx_mask = jnp.asarray(is_ctx)[None, :, None, None, None]  # [1, F, 1, 1, 1]
    if n_ctx:
        known = jnp.concatenate([jnp.asarray(context, jnp.float32), jnp.zeros((b, frames - n_ctx, h, w, 3), jnp.float32)], axis=1)
        hold = lambda x: jnp.where(ctx_mask, known, x)  # noqa: E731 - context frames stay as given
    else:
        hold = lambda x: x  # noqa: E731

    predict = guided_apply(apply, cond, guidance)
    ts = jnp.asarray(grid)

    def frame_t(t):  # scalar -> [B, F]: t on generated frames, 0 on context
        return jnp.broadcast_to(jnp.where(jnp.asarray(is_ctx), 0.0, t), (b, frames)).astype(jnp.float32)

    def step(i, x):
        t, t_next = ts[i], ts[i + 1]
        pred = predict(x, frame_t(t))
        if sampler == "ddim":
            x0, eps = schedules.to_x0_eps(pred, x, t, objective)
            a, s = schedules.alpha_sigma(t_next, objective)
            x_new = a * x0 + s * eps
        else:
            v = schedules.velocity(pred, x, t, objective)
            x_new = x + (t_next - t) * v
            if sampler == "heun":
                x_e = hold(x_new)
                v2 = schedules.velocity(predict(x_e, frame_t(t_next)), x_e, t_next, objective)
                x_new = x + (t_next - t) * 0.5 * (v + v2)
        if progress is not None:
            jax.debug.callback(lambda k: progress(int(k) + 1, steps), i)
        return hold(x_new.astype(jnp.float32))

    x = hold(initial_noise(rng, shape))  # t = 1: pure noise
    x = jax.lax.fori_loop(0, steps - 1, step, x)
    # Last step to t = 0: the denoised estimate at the last grid level.
    x0, _ = schedules.to_x0_eps(predict(x, frame_t(ts[steps - 1])), x, ts[steps - 1], objective)
    x = hold(x0.astype(jnp.float32))
    if progress is not None:
        jax.debug.callback(lambda: progress(steps, steps))
    clip = jnp.concatenate([jnp.asarray(ref)[:, None].astype(x.dtype), x], axis=1)
    return to_forward(clip) if forward else clip


def continue_process(
    apply,
    cond: dict,
    rng,
    *,
    total_frames: int,
    frames: int,
    overlap: int,
    sampler: str = "euler",
    steps: int = 32,
    guidance: dict | None = None,
    objective: str = "flow",
    shift: float = 1.0,
    tubelet: int = 1,
    image_hw: tuple[int, int] | None = None,
    progress: Callable[[int, int], None] | None = None,
    forward: bool = False,
):
    """A process longer than one clip: reverse clip [B, 1 + total_frames, H, W, 3] (`forward=True`:
    painting order).

    Samples a first clip of `frames` generated frames, then chunks whose first `overlap` frames are
    the previous last `overlap` frames as clean context, keeping each chunk's frames − overlap new
    frames, until `total_frames` (the last chunk is cut to fit). Chunk k uses rng fold_in(rng, k)
    (of each key, when `rng` is a batch of per-row keys) and cond["phase"] = its first frame / total_frames: a model trained on windows of longer
    processes (`diffusion.window`) knows where in the process each chunk lies.
    """
    b, _, _ = _check_common(cond, frames, tubelet, sampler, objective, image_hw)
    _check_rng(rng, b)
    if not (isinstance(total_frames, (int, np.integer)) and total_frames >= 1):
        raise ValueError(f"total_frames must be a positive integer, got {total_frames!r}")
    if not (isinstance(overlap, (int, np.integer)) and tubelet <= overlap < frames and overlap % tubelet == 0):
        raise ValueError(f"overlap={overlap!r} must be a multiple of tubelet={tubelet} in [tubelet, frames={frames})")
    kwargs = dict(frames=frames, sampler=sampler, steps=steps, guidance=guidance, objective=objective, shift=shift, tubelet=tubelet, progress=progress)

    def at(start):  # cond for a window starting at generated frame `start`: phase = start / total
        return {**cond, "phase": jnp.full((b,), start / total_frames, jnp.float32)}

    first = sample(apply, at(0), _fold_in(rng, 0), **kwargs)  # [B, 1 + frames, H, W, 3]
    clip = first
    k = 1
    while clip.shape[1] - 1 < total_frames:
        context = clip[:, -overlap:]  # the last `overlap` generated frames so far
        chunk = sample(apply, at(clip.shape[1] - 1 - overlap), _fold_in(rng, k), context=context, **kwargs)
        clip = jnp.concatenate([clip, chunk[:, 1 + overlap :]], axis=1)  # drop the reference and the repeated context
        k += 1
    clip = clip[:, : 1 + total_frames]
    return to_forward(clip) if forward else clip
