"""AdamW with linear warmup then cosine (or constant) learning rate, and global-norm clipping."""

from __future__ import annotations

import ml_collections
import optax


def learning_rate(c: ml_collections.ConfigDict, total_steps: int) -> optax.Schedule:
    """Warmup from 0 to lr over warmup_steps, then cosine to end_lr_fraction * lr at total_steps (or constant)."""
    warmup = int(c.warmup_steps)
    if c.schedule == "constant":
        after = optax.constant_schedule(c.lr)
    else:
        after = optax.cosine_decay_schedule(c.lr, max(total_steps - warmup, 1), alpha=c.end_lr_fraction)
    if warmup == 0:
        return after
    return optax.join_schedules([optax.linear_schedule(0.0, c.lr, warmup), after], [warmup])


def make_optimizer(c: ml_collections.ConfigDict, total_steps: int) -> optax.GradientTransformation:
    """The optimizer of a `train.optim` section."""
    tx = optax.adamw(learning_rate(c, total_steps), b1=c.b1, b2=c.b2, eps=c.eps, weight_decay=c.weight_decay)
    return optax.chain(optax.clip_by_global_norm(c.clip_norm), tx) if c.clip_norm > 0 else tx
