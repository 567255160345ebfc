"""Noise paths x_t = a(t)·x0 + s(t)·ε on t ∈ [0, 1] (0 = clean, 1 = pure noise) and time sampling.

Three objectives, each a path plus the network's target:
- "flow" (rectified flow): a = 1 − t, s = t; target u = ε − x0 (= dx_t/dt).
- "flow_x0": the same path; the network predicts x0 itself (u = (x_t − x0)/t). With large patches
  a token cannot carry the full-entropy noise of ε − x0 (patch 8: 192 values from a width-192
  token), but x0 is an image, smooth and close to the reference (cf. JiT, "Back to Basics").
- "v" (cosine path): a = cos(πt/2), s = sin(πt/2); target v = a·ε − s·x0 (dx_t/dt = (π/2)·v).

Samplers only use `to_x0_eps` and `velocity`, so they work for either objective. Functions take
`t` of any shape that is a prefix of the data's shape (e.g. t [B, F] for x [B, F, H, W, 3]) or a
scalar; `objective` and `shift` are static Python values.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

OBJECTIVES = ("flow", "flow_x0", "v")
_T_MIN = 1e-3  # flow_x0: velocity (x_t − x0)/t is taken at t >= this (samplers never ask at t = 0)
TIME_SAMPLING = ("uniform", "logit_normal")


def check_objective(objective: str) -> None:
    """Raises ValueError for an objective other than "flow", "flow_x0" or "v"."""
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown diffusion objective {objective!r}; choose one of {', '.join(OBJECTIVES)}")


def check_shift(shift: float) -> None:
    """Raises ValueError for a time shift that is not a positive number."""
    if not (isinstance(shift, (int, float)) and shift > 0 and math.isfinite(shift)):
        raise ValueError(f"time shift must be a positive number, got {shift!r}")


def _expand(t, x):
    """t [*P] -> [*P, 1, ...] broadcastable against x [*P, ...]."""
    t = jnp.asarray(t, jnp.float32)
    return t.reshape(t.shape + (1,) * (jnp.ndim(x) - t.ndim))


def normal(rng, shape) -> jax.Array:
    """Standard normal noise [*shape] float32, drawn as [shape[0], rest] and reshaped: the values of
    `jax.random.normal(rng, shape)` (current JAX), but XLA:CPU compiles rank-5 random bits ~10x slower."""
    shape = tuple(shape)
    flat = (shape[0], math.prod(shape[1:])) if len(shape) > 2 else shape
    return jax.random.normal(rng, flat, jnp.float32).reshape(shape)


def alpha_sigma(t, objective: str):
    """(a(t), s(t)), the signal and noise coefficients of the path, same shape as t."""
    check_objective(objective)
    t = jnp.asarray(t, jnp.float32)
    if objective in ("flow", "flow_x0"):
        return 1.0 - t, t
    half_pi = 0.5 * jnp.pi
    return jnp.cos(half_pi * t), jnp.sin(half_pi * t)


def alpha_sigma_derivative(t, objective: str):
    """(a'(t), s'(t)): the path's time derivative coefficients (dx_t/dt = a'·x0 + s'·ε)."""
    check_objective(objective)
    t = jnp.asarray(t, jnp.float32)
    if objective in ("flow", "flow_x0"):
        return -jnp.ones_like(t), jnp.ones_like(t)
    half_pi = 0.5 * jnp.pi
    return -half_pi * jnp.sin(half_pi * t), half_pi * jnp.cos(half_pi * t)


def add_noise(x0, eps, t, objective: str):
    """x_t = a(t)·x0 + s(t)·ε; x0, eps [B, F, H, W, C], t [B, F] (or any prefix shape / scalar)."""
    a, s = alpha_sigma(_expand(t, x0), objective)
    return a * x0 + s * eps


def target(x0, eps, t, objective: str):
    """What the network predicts: u = ε − x0 ("flow"), x0 ("flow_x0") or v = a·ε − s·x0 ("v")."""
    check_objective(objective)
    if objective == "flow":
        return eps - x0
    if objective == "flow_x0":
        return x0
    a, s = alpha_sigma(_expand(t, x0), objective)
    return a * eps - s * x0


def to_x0_eps(pred, x_t, t, objective: str):
    """A prediction at (x_t, t) -> (x0_hat, eps_hat), the clean data and noise it implies."""
    a, s = alpha_sigma(_expand(t, x_t), objective)
    if objective == "flow":  # x_t = x0 + t·u and ε = x0 + u
        return x_t - s * pred, x_t + a * pred
    if objective == "flow_x0":  # x_t = (1 − t)·x0 + t·ε
        return pred, (x_t - a * pred) / jnp.maximum(s, _T_MIN)
    return a * x_t - s * pred, s * x_t + a * pred  # a² + s² = 1


def velocity(pred, x_t, t, objective: str):
    """dx_t/dt implied by a prediction (= a'·x0_hat + s'·eps_hat): u itself, (x_t − x0_hat)/t, or (π/2)·v."""
    check_objective(objective)
    if objective == "flow_x0":
        return (x_t - pred) / jnp.maximum(_expand(t, x_t), _T_MIN)
    return pred if objective == "flow" else (0.5 * jnp.pi) * pred


def shift_time(t, shift: float = 1.0):
    """SD3-style shift t' = shift·t / (1 + (shift − 1)·t): shift > 1 spends more time at high noise."""
    check_shift(shift)
    if shift == 1.0:
        return t
    return shift * t / (1.0 + (shift - 1.0) * t)


def sample_time(rng, shape, *, method: str = "uniform", logit_mean: float = 0.0, logit_std: float = 1.0, shift: float = 1.0):
    """Training noise levels [*shape] in [0, 1): "uniform" or "logit_normal" (sigmoid of N(mean, std)), then shifted."""
    if method == "uniform":
        t = jax.random.uniform(rng, shape, jnp.float32)
    elif method == "logit_normal":
        if not logit_std > 0:
            raise ValueError(f"logit_std must be positive, got {logit_std!r}")
        t = jax.nn.sigmoid(logit_mean + logit_std * jax.random.normal(rng, shape, jnp.float32))
    else:
        raise ValueError(f"unknown time sampling {method!r}; choose one of {', '.join(TIME_SAMPLING)}")
    return shift_time(t, shift)


def time_grid(steps: int, shift: float = 1.0) -> np.ndarray:
    """Sampler noise levels [steps + 1] float32 from 1 down to exactly 0, uniform before the shift."""
    if not (isinstance(steps, (int, np.integer)) and steps >= 1):
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    check_shift(shift)
    u = np.linspace(1.0, 0.0, int(steps) + 1, dtype=np.float64)
    t = shift * u / (1.0 + (shift - 1.0) * u)
    t[0], t[-1] = 1.0, 0.0
    return t.astype(np.float32)
