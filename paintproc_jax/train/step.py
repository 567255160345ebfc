"""The jitted train step: render clips on device, diffusion loss (with gradient accumulation over
micro-batches), AdamW update, EMA of parameters, and per-step metrics.

State is functional: `state` = nnx.state((model, optimizer)), `ema` = a State of parameters (or
None). The step is `jax.jit`-ed with donated state and explicit output shardings.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from paintproc_jax.data.clips import render_clips
from paintproc_jax.diffusion.objective import diffusion_loss
from paintproc_jax.train.metrics import step_metrics


_global_norm = optax.tree.norm if hasattr(optax, "tree") and hasattr(optax.tree, "norm") else optax.global_norm


def micro_batches(tree, count: int):
    """[B, ...] -> [count, B / count, ...] taking every count-th example, so each micro-batch draws
    evenly from every batch shard (no resharding)."""
    return jax.tree.map(lambda x: jnp.swapaxes(x.reshape((x.shape[0] // count, count) + x.shape[1:]), 0, 1), tree)


def make_train_step(graphdef, clip_spec, diffusion, *, grad_accum: int, ema_decay: float, lr_fn,
                    skip_nonfinite: bool = False):
    """train_step(state, ema, batch, key) -> (state, ema, metrics, finite); `batch` is the pipeline's
    device batch, `finite` whether the loss and the gradient norm were finite. `skip_nonfinite`: a
    step where they are not leaves the state and EMA as they were (else the loop stops the run)."""

    def train_step(state, ema, batch, key):
        # merge reuses state's Variables and the update mutates them: keep the old arrays apart
        old_state = jax.tree.map(lambda x: x, state) if skip_nonfinite else None
        model, opt = nnx.merge(graphdef, state)
        gdef_m, params, rest = nnx.split(model, nnx.Param, ...)
        clips = render_clips(batch, clip_spec)  # {"clip": [B, T, S, S, 3], ...}

        def loss_of(params, clips, key):
            loss, aux = diffusion_loss(nnx.merge(gdef_m, params, rest), clips, key, diffusion)
            return loss, aux

        grad_fn = jax.value_and_grad(loss_of, has_aux=True)
        if grad_accum == 1:
            (loss, aux), grads = grad_fn(params, clips, key)
        else:
            def accumulate(total, inputs):
                micro, k = inputs
                (loss, aux), grads = grad_fn(params, micro, k)
                return jax.tree.map(jnp.add, total, grads), (loss, aux)

            zeros = jax.tree.map(jnp.zeros_like, params)
            keys = jax.random.split(key, grad_accum)
            grads, (losses, auxs) = jax.lax.scan(accumulate, zeros, (micro_batches(clips, grad_accum), keys))
            grads = jax.tree.map(lambda g: g / grad_accum, grads)
            loss = jnp.mean(losses)
            aux = jax.tree.map(lambda a: a.reshape((-1,) + a.shape[2:]), auxs)
        grad_norm = _global_norm(grads)
        lr = lr_fn(opt.step[...])
        opt.update(model, grads)
        finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
        new_params = nnx.state(model, nnx.Param)
        new_state = nnx.state((model, opt))
        new_ema = None if ema is None else jax.tree.map(lambda e, p: ema_decay * e + (1.0 - ema_decay) * p, ema, new_params)
        if skip_nonfinite:
            keep = lambda new, old: jnp.where(finite, new, old)  # noqa: E731
            new_state = jax.tree.map(keep, new_state, old_state)
            new_ema = None if ema is None else jax.tree.map(keep, new_ema, ema)
        metrics = step_metrics(loss, aux["loss"], aux["t"], grad_norm, lr)
        return new_state, new_ema, metrics, finite

    return train_step
