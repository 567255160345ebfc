"""The `train` config section and the checks every experiment passes before anything compiles."""

from __future__ import annotations

import ml_collections

from paintproc_jax import parallel
from paintproc_jax.consistency import check_consistent
from paintproc_jax.data.config import validate as validate_data
from paintproc_jax.diffusion.objective import settings
from paintproc_jax.models.config import validate as validate_model

SCHEDULES = ("cosine", "constant")


def default_config() -> ml_collections.ConfigDict:
    """AdamW, warmup + cosine, clipping, EMA; log / checkpoint / sample cadences. (The run length is
    the top-level `total_steps`, so `--config.total_steps=N` sets it.)"""
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.grad_accum = 1  # micro-batches per step: the global batch (data.batch_size) is split this many ways
    c.optim = ml_collections.ConfigDict()
    c.optim.lr = 1e-4
    c.optim.schedule = "cosine"  # after warmup: "cosine" (to end_lr_fraction * lr) or "constant"
    c.optim.warmup_steps = 1000
    c.optim.end_lr_fraction = 0.1
    c.optim.b1 = 0.9
    c.optim.b2 = 0.999
    c.optim.eps = 1e-8
    c.optim.weight_decay = 0.0
    c.optim.clip_norm = 1.0  # global gradient-norm clipping; 0 = off
    c.ema_decay = 0.9999  # EMA of parameters (what sampling uses); 0 = off
    c.log_every = 50
    c.ckpt_every = 1000
    c.keep_checkpoints = 3
    c.sample_every = 5000  # 0 = off
    c.sample_source = ""  # images for the periodic samples; "" = the bundled photos (paintproc_jax/assets)
    c.sample_count = 2
    c.profile_start = -1  # first step of a jax.profiler trace into WORKDIR/profile; -1 = off
    c.profile_steps = 5
    c.skip_nonfinite = False  # skip (and count) steps whose loss or gradient norm is not finite, instead of stopping
    return c


def validate(c: ml_collections.ConfigDict, mesh=None) -> None:
    """Raises ValueError naming the first bad setting of a whole experiment config (before compile)."""
    t = c.train
    if c.total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {c.total_steps}")
    for name in ("log_every", "ckpt_every", "keep_checkpoints", "grad_accum", "sample_count", "profile_steps"):
        if t[name] < 1:
            raise ValueError(f"train.{name} must be >= 1, got {t[name]}")
    if t.sample_every < 0:
        raise ValueError(f"train.sample_every must be >= 0 (0 = off), got {t.sample_every}")
    if t.optim.schedule not in SCHEDULES:
        raise ValueError(f"train.optim.schedule must be one of {SCHEDULES}, got {t.optim.schedule!r}")
    if not t.optim.lr > 0 or t.optim.warmup_steps < 0 or not 0 <= t.optim.end_lr_fraction <= 1:
        raise ValueError("train.optim: lr must be > 0, warmup_steps >= 0, end_lr_fraction in [0, 1]")
    if not 0 <= t.ema_decay < 1:
        raise ValueError(f"train.ema_decay must be in [0, 1), got {t.ema_decay}")
    validate_data(c.data)
    validate_model(c.model, mesh)
    settings(c.diffusion)
    check_consistent(c)
    if mesh is not None:
        local = parallel.check_batch(c.data.batch_size, mesh)
        shards = parallel.batch_shards(mesh)
        if c.data.batch_size % (shards * t.grad_accum):
            raise ValueError(
                f"data.batch_size {c.data.batch_size} must split into train.grad_accum={t.grad_accum} micro-batches "
                f"that each divide the mesh's {shards} batch shards"
            )
        del local
