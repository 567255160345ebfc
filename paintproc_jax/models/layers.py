"""Building blocks of the video DiT: sharded linear maps, attention, MLP, patches, positions.

Every parameter is created with logical axis names (see `models/sharding.py`); compute runs in
the spec's dtype (bf16 on accelerators) with float32 parameters.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from paintproc_jax.models.sharding import constrain

_DEFAULT = nnx.initializers.xavier_uniform()


def linear(din, dout, names, *, rngs, dtype, param_dtype, init=_DEFAULT, bias=True) -> nnx.Linear:
    """`nnx.Linear` whose kernel [din, dout] carries logical names `names` (bias: names[-1])."""
    return nnx.Linear(
        din, dout, use_bias=bias, dtype=dtype, param_dtype=param_dtype, rngs=rngs,
        kernel_init=nnx.with_partitioning(init, names),
        bias_init=nnx.with_partitioning(nnx.initializers.zeros_init(), (names[-1],)),
    )


def layer_norm(width, *, rngs, dtype, affine=False) -> nnx.LayerNorm:
    """LayerNorm over the last axis; without affine terms where adaLN supplies them."""
    return nnx.LayerNorm(
        width, use_bias=affine, use_scale=affine, dtype=dtype, rngs=rngs, epsilon=1e-6,
        scale_init=nnx.with_partitioning(nnx.initializers.ones_init(), ("vector",)),
        bias_init=nnx.with_partitioning(nnx.initializers.zeros_init(), ("vector",)),
    )


class Attention(nnx.Module):
    """Multi-head attention: queries from x [B, L, D] over context [B, M, D] (x itself by default).

    Heads are a parameter axis (q/k/v kernels [D, H, Dh], out [H, Dh, D]) so tensor parallelism
    splits whole heads; RMS-normalised queries and keys keep bf16 logits tame.
    """

    def __init__(self, width, heads, *, qk_norm, impl, rules, rngs, dtype, param_dtype, context_width=None):
        hd = width // heads
        cw = context_width or width

        def proj(din):
            return nnx.Einsum(
                "bld,dhk->blhk", (din, heads, hd), (heads, hd), dtype=dtype, param_dtype=param_dtype, rngs=rngs,
                kernel_init=nnx.with_partitioning(_DEFAULT, ("embed", "heads", "head_dim")),
                bias_init=nnx.with_partitioning(nnx.initializers.zeros_init(), ("heads", "head_dim")),
            )

        self.q, self.k, self.v = proj(width), proj(cw), proj(cw)
        self.o = nnx.Einsum(
            "blhk,hkd->bld", (heads, hd, width), (width,), dtype=dtype, param_dtype=param_dtype, rngs=rngs,
            kernel_init=nnx.with_partitioning(_DEFAULT, ("heads", "head_dim", "embed")),
            bias_init=nnx.with_partitioning(nnx.initializers.zeros_init(), ("embed",)),
        )
        self.qk_norm = qk_norm
        if qk_norm:
            norm = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs, epsilon=1e-6,
                        scale_init=nnx.with_partitioning(nnx.initializers.ones_init(), ("head_dim",)))
            self.q_norm, self.k_norm = nnx.RMSNorm(hd, **norm), nnx.RMSNorm(hd, **norm)
        self.impl = None if impl == "auto" else impl
        self.rules = rules

    def kv(self, context: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Keys and values [B, M, H, Dh] of `context` [B, M, D] (normalised keys): what a cross-attention
        to a fixed context can compute once and reuse."""
        k, v = self.k(context), self.v(context)
        if self.qk_norm:
            k = self.k_norm(k)
        return constrain(k, ("batch", None, "act_heads", None), self.rules), constrain(v, ("batch", None, "act_heads", None), self.rules)

    def __call__(self, x: jax.Array, context: jax.Array | None = None, kv: tuple[jax.Array, jax.Array] | None = None) -> jax.Array:
        """Attention of x [B, L, D] over `context` (default x), or over precomputed `kv` = self.kv(context)."""
        q = self.q(x)  # [B, L, H, Dh]
        k, v = self.kv(x if context is None else context) if kv is None else kv
        if self.qk_norm:
            q = self.q_norm(q)
        q = constrain(q, ("batch", "act_seq", "act_heads", None), self.rules)
        out = jax.nn.dot_product_attention(q, k.astype(q.dtype), v.astype(q.dtype), implementation=self.impl)
        return self.o(out)


class MLP(nnx.Module):
    """Two-layer GELU MLP, hidden axis sharded over `tensor`."""

    def __init__(self, width, hidden, *, rules, rngs, dtype, param_dtype):
        self.fc1 = linear(width, hidden, ("embed", "mlp"), rngs=rngs, dtype=dtype, param_dtype=param_dtype)
        self.fc2 = linear(hidden, width, ("mlp", "embed"), rngs=rngs, dtype=dtype, param_dtype=param_dtype)
        self.rules = rules

    def __call__(self, x: jax.Array) -> jax.Array:
        h = nnx.gelu(self.fc1(x), approximate=True)
        h = constrain(h, ("batch", "act_seq", "act_mlp"), self.rules)
        return self.fc2(h)


def modulate(x: jax.Array, shift: jax.Array, scale: jax.Array) -> jax.Array:
    """adaLN: x [B, G, N, D] * (1 + scale) + shift, with per-frame-group shift/scale [B, G, D]."""
    return x * (1 + scale[:, :, None]) + shift[:, :, None]


def patchify(x: jax.Array, tubelet: int, patch: int) -> jax.Array:
    """Frames [B, F, H, W, C] -> patches [B, F/pt, (H/p)*(W/p), pt*p*p*C]."""
    b, f, h, w, c = x.shape
    x = x.reshape(b, f // tubelet, tubelet, h // patch, patch, w // patch, patch, c)
    x = x.transpose(0, 1, 3, 5, 2, 4, 6, 7)
    return x.reshape(b, f // tubelet, (h // patch) * (w // patch), tubelet * patch * patch * c)


def unpatchify(x: jax.Array, tubelet: int, patch: int, hw: tuple[int, int], channels: int = 3) -> jax.Array:
    """Inverse of `patchify`: [B, G, N, pt*p*p*C] -> [B, G*pt, H, W, C]."""
    b, g = x.shape[:2]
    gh, gw = hw[0] // patch, hw[1] // patch
    x = x.reshape(b, g, gh, gw, tubelet, patch, patch, channels)
    x = x.transpose(0, 1, 4, 2, 5, 3, 6, 7)
    return x.reshape(b, g * tubelet, hw[0], hw[1], channels)


def sincos(pos: np.ndarray, dim: int, max_period: float = 10000.0) -> np.ndarray:
    """Sinusoidal features of positions [...] -> [..., dim] (dim even)."""
    half = dim // 2
    freqs = np.exp(-math.log(max_period) * np.arange(half, dtype=np.float64) / max(half, 1))
    ang = np.asarray(pos, np.float64)[..., None] * freqs
    return np.concatenate([np.sin(ang), np.cos(ang)], -1)


def position_table(groups: int, gh: int, gw: int, dim: int) -> np.ndarray:
    """Fixed (t, y, x) positional encoding [groups, gh*gw, dim]: a third of the channels each
    (temporal gets the remainder), so any resolution and clip length work without new parameters."""
    ds = 2 * (dim // 6)
    dt = dim - 2 * ds
    t, y, x = np.meshgrid(np.arange(groups), np.arange(gh), np.arange(gw), indexing="ij")
    table = np.concatenate([sincos(t, dt), sincos(y, ds), sincos(x, ds)], -1)
    return table.reshape(groups, gh * gw, dim).astype(np.float32)


def grid_table(gh: int, gw: int, dim: int, stride: float = 1.0) -> np.ndarray:
    """2-D (y, x) encoding [gh*gw, dim] of cell centres in units of the finest grid (`stride` cells)."""
    c = (np.arange(gh) + 0.5) * stride - 0.5, (np.arange(gw) + 0.5) * stride - 0.5
    y, x = np.meshgrid(*c, indexing="ij")
    return np.concatenate([sincos(y, dim // 2), sincos(x, dim - dim // 2)], -1).reshape(gh * gw, dim).astype(np.float32)


def timestep_features(t: jax.Array, dim: int = 256) -> jax.Array:
    """Noise level t in [0, 1] [...] -> sinusoidal features [..., dim] (t scaled by 1000 as in DiT)."""
    half = dim // 2
    freqs = jnp.exp(-math.log(10000.0) * jnp.arange(half, dtype=jnp.float32) / half)
    ang = (1000.0 * t.astype(jnp.float32))[..., None] * freqs
    return jnp.concatenate([jnp.sin(ang), jnp.cos(ang)], -1)
