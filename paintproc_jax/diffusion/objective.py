"""Training loss: noise the generated frames of a reverse clip, drop conditions, optionally give the
first frames clean as context (for continuation), and regress the network onto the path's target.

Clip frame 0 is the reference: it is passed clean as `cond["ref"]`, never noised, never in the loss.
The network: `apply(x [B, F, H, W, 3], t [B, F], cond, keep) -> [B, F, H, W, 3]` prediction of the
target; cond = {"ref" [B, H, W, 3] in [-1, 1], "medium", "ref_medium" [B] int32, optional "depth"
[B, H, W], "layers" [B, H, W]}; keep = {"ref", "depth", "medium": bool [B]} or None (all kept).
The config (`default_config()`) holds static Python values, read outside traced code, so
`diffusion_loss` can run under `jax.jit` with the config closed over.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import ml_collections

from paintproc_jax.diffusion import schedules

WEIGHTINGS = ("none", "min_snr")
CONDITIONS = ("ref", "depth", "medium")  # the keep-mask keys the network reads


def default_config() -> ml_collections.ConfigDict:
    """Defaults: rectified flow, logit-normal times, 10% dropout of each condition, no context."""
    c = ml_collections.ConfigDict()
    c.objective = "flow"  # "flow" (target ε − x0), "flow_x0" (same path, target x0) or "v" (cosine path, target a·ε − s·x0)
    c.time_sampling = "logit_normal"  # "uniform" or "logit_normal"
    c.logit_mean = 0.0
    c.logit_std = 1.0
    c.shift = 1.0  # SD3-style time shift for training and sampling (> 1: more time at high noise)
    c.tubelet = 1  # frames per network tubelet: noise levels are constant within each
    c.per_tubelet_t = False  # False: one noise level per clip; True: one per tubelet (diffusion forcing)
    # Condition dropout (per sample, independent), for robustness and classifier-free guidance.
    c.p_drop_ref = 0.1
    c.p_drop_depth = 0.1
    c.p_drop_medium = 0.1
    c.p_drop_all = 0.05  # extra: drop every condition together, so the unconditional pass is trained
    # Context frames: with this probability the first k generated frames (k a multiple of
    # `tubelet`, tubelet <= k <= max_context_frames) are given clean (t = 0) and left out of the loss.
    c.context_prob = 0.0
    c.max_context_frames = 4
    # Windows of longer processes: when clips carry more generated frames than `window`, each sample
    # trains on a random window of `window` frames (start a multiple of tubelet), and cond["phase"]
    # = start / frames tells the network where in the process it is; `continue_process` relies on
    # it for processes longer than one window. 0 = the whole clip (phase 0).
    c.window = 0
    # Loss weighting: "none", or "min_snr" (min-SNR-γ on the x0 error: w = min(a², γ·s²)).
    c.weighting = "none"
    c.min_snr_gamma = 5.0
    return c


@dataclasses.dataclass(frozen=True)
class Settings:
    """The loss config as plain, validated Python values (hashable)."""

    objective: str
    time_sampling: str
    logit_mean: float
    logit_std: float
    shift: float
    tubelet: int
    per_tubelet_t: bool
    p_drop: tuple[float, float, float]  # ref, depth, medium
    p_drop_all: float
    context_prob: float
    max_context_frames: int
    window: int
    weighting: str
    min_snr_gamma: float


def settings(config: ml_collections.ConfigDict) -> Settings:
    """Reads and validates a loss config; raises ValueError with a clear message for a bad one."""
    given = config.to_dict() if hasattr(config, "to_dict") else dict(config)
    c = ml_collections.ConfigDict({**default_config().to_dict(), **given})  # missing fields: defaults

    def fail(msg):
        raise ValueError(f"diffusion config: {msg}")

    schedules.check_objective(c.objective)
    if c.time_sampling not in schedules.TIME_SAMPLING:
        fail(f"time_sampling={c.time_sampling!r}; choose one of {', '.join(schedules.TIME_SAMPLING)}")
    if not c.logit_std > 0:
        fail(f"logit_std={c.logit_std} must be positive")
    if not c.shift > 0:
        fail(f"shift={c.shift} must be positive")
    if not (isinstance(c.tubelet, int) and c.tubelet >= 1):
        fail(f"tubelet={c.tubelet!r} must be a positive integer")
    for name in ("p_drop_ref", "p_drop_depth", "p_drop_medium", "p_drop_all", "context_prob"):
        if not 0.0 <= c[name] <= 1.0:
            fail(f"{name}={c[name]} must be a probability in [0, 1]")
    if c.context_prob > 0:
        m = c.max_context_frames
        if not (isinstance(m, int) and m >= c.tubelet and m % c.tubelet == 0):
            fail(f"max_context_frames={m!r} must be a positive multiple of tubelet={c.tubelet}")
    if not (isinstance(c.window, int) and c.window >= 0 and c.window % c.tubelet == 0):
        fail(f"window={c.window!r} must be 0 (whole clip) or a positive multiple of tubelet={c.tubelet}")
    if c.weighting not in WEIGHTINGS:
        fail(f"weighting={c.weighting!r}; choose one of {', '.join(WEIGHTINGS)}")
    if not c.min_snr_gamma > 0:
        fail(f"min_snr_gamma={c.min_snr_gamma} must be positive")
    return Settings(
        objective=c.objective, time_sampling=c.time_sampling, logit_mean=float(c.logit_mean),
        logit_std=float(c.logit_std), shift=float(c.shift), tubelet=int(c.tubelet),
        per_tubelet_t=bool(c.per_tubelet_t),
        p_drop=(float(c.p_drop_ref), float(c.p_drop_depth), float(c.p_drop_medium)),
        p_drop_all=float(c.p_drop_all), context_prob=float(c.context_prob),
        max_context_frames=int(c.max_context_frames), window=int(c.window), weighting=c.weighting,
        min_snr_gamma=float(c.min_snr_gamma),
    )


def sampler_kwargs(config: ml_collections.ConfigDict) -> dict:
    """The path settings `samplers.sample` must share with training: objective, shift, tubelet."""
    s = settings(config)
    return {"objective": s.objective, "shift": s.shift, "tubelet": s.tubelet}


def loss_weight(t, s: Settings):
    """Per-frame loss weight for noise levels t [B, F]: 1, or min-SNR-γ of the x0 error (≤ 1).

    The x0 error is s(t) times the prediction error for "flow" and "v", so min(SNR, γ)·‖Δx0‖²
    is min(a², γ·s²)·‖Δpred‖²; for "flow_x0" the prediction is x0, weighted min(SNR, γ).
    """
    if s.weighting == "none":
        return jnp.ones_like(t)
    a, sig = schedules.alpha_sigma(t, s.objective)
    if s.objective == "flow_x0":
        return jnp.minimum(jnp.square(a) / jnp.maximum(jnp.square(sig), 1e-6), s.min_snr_gamma)
    return jnp.minimum(jnp.square(a), s.min_snr_gamma * jnp.square(sig))


def dropout_keep(rng, batch_size: int, s: Settings) -> dict:
    """Per-sample keep masks {"ref", "depth", "medium": bool [B]}: each dropped independently, and all
    together with probability p_drop_all."""
    k_all, *keys = jax.random.split(rng, 1 + len(CONDITIONS))
    keep_all = jax.random.uniform(k_all, (batch_size,)) >= s.p_drop_all
    return {name: (jax.random.uniform(k, (batch_size,)) >= p) & keep_all for name, k, p in zip(CONDITIONS, keys, s.p_drop)}


def context_frames(rng, batch_size: int, frames: int, s: Settings):
    """Per-sample number of clean context frames [B] int32: 0, or with probability context_prob a
    uniform multiple of tubelet in [tubelet, max_context_frames]."""
    if s.context_prob == 0:
        return jnp.zeros((batch_size,), jnp.int32)
    if s.max_context_frames >= frames:
        raise ValueError(
            f"diffusion config: max_context_frames={s.max_context_frames} must be less than the "
            f"{frames} generated frames per clip (at least one tubelet must stay in the loss)"
        )
    k_has, k_n = jax.random.split(rng)
    has = jax.random.uniform(k_has, (batch_size,)) < s.context_prob
    n = jax.random.randint(k_n, (batch_size,), 1, s.max_context_frames // s.tubelet + 1) * s.tubelet
    return jnp.where(has, n, 0).astype(jnp.int32)


def process_window(rng, x0, s: Settings):
    """Random windows of `s.window` frames [B, window, H, W, 3] (start a multiple of tubelet) and
    their phase = start / F [B]; the whole clip and phase 0 when the clip is no longer than a window."""
    b, f = x0.shape[:2]
    if not s.window or f <= s.window:
        return x0, jnp.zeros((b,), jnp.float32)
    starts = jax.random.randint(rng, (b,), 0, (f - s.window) // s.tubelet + 1) * s.tubelet
    crop = jax.vmap(lambda x, i: jax.lax.dynamic_slice_in_dim(x, i, s.window, axis=0))
    return crop(x0, starts), starts.astype(jnp.float32) / f


def split_clip(batch: dict):
    """Training batch -> (x0 [B, F, H, W, 3] generated frames in [-1, 1], cond dict with the clean reference)."""
    clip = jnp.asarray(batch["clip"], jnp.float32)  # [B, T, H, W, 3] in [0, 1]
    if clip.ndim != 5 or clip.shape[-1] != 3 or clip.shape[1] < 2:
        raise ValueError(f"batch['clip'] must be [B, T >= 2, H, W, 3], got shape {clip.shape}")
    clip = 2.0 * clip - 1.0
    cond = {"ref": clip[:, 0], "medium": batch["medium"], "ref_medium": batch["ref_medium"]}
    for name in ("depth", "layers", "regions"):  # optional per-sample conditions
        if batch.get(name) is not None:
            cond[name] = batch[name]
    return clip[:, 1:], cond


def diffusion_loss(apply, batch: dict, rng, config: ml_collections.ConfigDict):
    """(loss scalar, aux) for one batch; `apply(x, t, cond, keep)` is the network (see module doc).

    loss = mean over samples of the (weighted) MSE over the non-context generated frames, each
    sample normalised by its number of loss frames. aux (per sample [B]): "t" (mean noise level of
    the loss frames), "loss" (weighted, averages to `loss`), "mse" (unweighted), "context_frames".
    """
    s = settings(config)
    x0, cond = split_clip(batch)  # x0 [B, F, H, W, 3]
    k_win, rng = jax.random.split(rng)
    x0, cond["phase"] = process_window(k_win, x0, s)
    b, f = x0.shape[:2]
    if f % s.tubelet:
        raise ValueError(f"{f} generated frames per clip (clip length {f + 1} minus the reference) is not a multiple of tubelet={s.tubelet}")
    k_t, k_eps, k_keep, k_ctx = jax.random.split(rng, 4)

    groups = f // s.tubelet if s.per_tubelet_t else 1
    t = schedules.sample_time(k_t, (b, groups), method=s.time_sampling, logit_mean=s.logit_mean, logit_std=s.logit_std, shift=s.shift)
    t = jnp.repeat(t, f // groups, axis=1)  # [B, F], constant within tubelets
    n_ctx = context_frames(k_ctx, b, f, s)  # [B]
    ctx = jnp.arange(f)[None, :] < n_ctx[:, None]  # [B, F]
    t = jnp.where(ctx, 0.0, t)

    eps = schedules.normal(k_eps, x0.shape)
    x_t = jnp.where(ctx[..., None, None, None], x0, schedules.add_noise(x0, eps, t, s.objective))
    keep = dropout_keep(k_keep, b, s)
    pred = jnp.asarray(apply(x_t, t, cond, keep), jnp.float32)
    if pred.shape != x0.shape:
        raise ValueError(f"apply returned shape {pred.shape}, expected {x0.shape}")

    err = jnp.mean(jnp.square(pred - schedules.target(x0, eps, t, s.objective)), axis=(2, 3, 4))  # [B, F]
    mask = (~ctx).astype(jnp.float32)
    count = jnp.sum(mask, axis=1)  # [B], >= tubelet
    per_sample = jnp.sum(err * loss_weight(t, s) * mask, axis=1) / count
    aux = {
        "t": jnp.sum(t * mask, axis=1) / count,
        "loss": per_sample,
        "mse": jnp.sum(err * mask, axis=1) / count,
        "context_frames": n_ctx,
    }
    return jnp.mean(per_sample), aux
