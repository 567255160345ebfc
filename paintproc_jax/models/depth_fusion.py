"""Depth fusion (AnimatePainter's DF-Encoder): depth -> multi-scale tokens, and the gated
cross-attention through which every transformer block reads them.

The gate is a per-channel vector initialised at zero (output = x + tanh(gate) * attn), so a
model trained without depth is an exact starting point: at gate 0 the output with and without
depth is identical.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from paintproc_jax.models.config import ModelSpec
from paintproc_jax.models.layers import MLP, Attention, grid_table, layer_norm, linear, patchify


def depth_features(depth: jax.Array, layers: jax.Array | None, regions: jax.Array | None, spec: ModelSpec) -> jax.Array:
    """Depth [B, H, W] in [0, 1] (1 = near), layer ids [B, H, W] (far = 0), optional regions
    [B, H, W, R] -> encoder input [B, H, W, 1 + K + R]: depth in [-1, 1], one-hot layer masks, regions."""
    parts = [(2.0 * depth.astype(jnp.float32) - 1.0)[..., None]]
    if spec.depth_layers:
        if layers is None:  # one rule for layers everywhere (strokes.plan.depth_layers); the model never invents its own
            raise ValueError(
                f"cond['layers'] [B, H, W] is required with model.depth_layers={spec.depth_layers}: make it with "
                "paintproc_jax.strokes.plan.depth_layers(depth, layers), as the data pipeline and the sampler do"
            )
        parts.append(jax.nn.one_hot(layers, spec.depth_layers, dtype=jnp.float32))
    if spec.region_channels:
        if regions is None:
            regions = jnp.zeros(depth.shape + (spec.region_channels,), jnp.float32)
        parts.append(regions.astype(jnp.float32))
    return jnp.concatenate(parts, -1)


class DepthEncoder(nnx.Module):
    """Depth map + layer masks (+ regions) -> tokens [B, M, D] at `depth_scales` scales.

    Scale 0 has one token per image patch; each next scale merges 2x2 tokens (patch merging +
    a residual MLP), so M = N * (1 + 1/4 + 1/16 ...). Tokens carry a 2-D position in the
    image-patch grid and a learned scale embedding.
    """

    def __init__(self, spec: ModelSpec, *, rngs: nnx.Rngs):
        d, dt, pdt = spec.width, spec.dtype, spec.param_dtype
        cin = 1 + spec.depth_layers + spec.region_channels
        kw = dict(rngs=rngs, dtype=dt, param_dtype=pdt)
        self.stem = linear(spec.patch * spec.patch * cin, d, ("patch", "embed"), **kw)
        self.merges = nnx.List([linear(4 * d, d, ("mlp", "embed"), **kw) for _ in range(spec.depth_scales - 1)])
        self.norms = nnx.List([layer_norm(d, affine=True, rngs=rngs, dtype=dt) for _ in range(spec.depth_scales)])
        self.mlps = nnx.List([MLP(d, 2 * d, rules=spec.rules, **kw) for _ in range(spec.depth_scales)])
        self.scale_embed = nnx.Param(
            nnx.with_partitioning(nnx.initializers.normal(0.02), ("layers", "embed"))(rngs.params(), (spec.depth_scales, d), pdt)
        )
        self.out_norm = layer_norm(d, affine=True, rngs=rngs, dtype=dt)
        self.spec = spec

    def __call__(self, depth, layers=None, regions=None) -> jax.Array:
        spec = self.spec
        x = depth_features(depth, layers, regions, spec)
        b, h, w, _ = x.shape
        x = self.stem(patchify(x[:, None].astype(spec.dtype), 1, spec.patch)[:, 0])  # [B, N, D]
        gh, gw = h // spec.patch, w // spec.patch
        tokens = []
        for s in range(spec.depth_scales):
            if s:
                x = x.reshape(b, gh // 2, 2, gw // 2, 2, -1).transpose(0, 1, 3, 2, 4, 5)
                gh, gw = gh // 2, gw // 2
                x = self.merges[s - 1](x.reshape(b, gh * gw, -1))
            x = x + self.mlps[s](self.norms[s](x))
            pos = jnp.asarray(grid_table(gh, gw, spec.width, stride=2.0**s), x.dtype)
            tokens.append(x + pos + self.scale_embed[s].astype(x.dtype))
        return self.out_norm(jnp.concatenate(tokens, 1))


class DepthFusion(nnx.Module):
    """Gated cross-attention from video tokens to depth tokens: x + tanh(gate) * keep * attn(LN(x), depth)."""

    def __init__(self, spec: ModelSpec, *, rngs: nnx.Rngs):
        self.norm = layer_norm(spec.width, affine=True, rngs=rngs, dtype=spec.dtype)
        self.attn = Attention(
            spec.width, spec.heads, qk_norm=spec.qk_norm, impl=spec.attention_impl, rules=spec.rules,
            rngs=rngs, dtype=spec.dtype, param_dtype=spec.param_dtype,
        )
        self.gate = nnx.Param(nnx.with_partitioning(nnx.initializers.zeros_init(), ("vector",))(rngs.params(), (spec.width,), spec.param_dtype))

    def __call__(self, x: jax.Array, tokens: jax.Array | None, keep: jax.Array | None, kv=None) -> jax.Array:
        """x [B, L, D], depth tokens [B, M, D] or their keys/values `kv` = self.attn.kv(tokens) (the same
        for every noise level, so a sampler computes them once), keep [B] bool (False: depth dropped) -> [B, L, D]."""
        y = self.attn(self.norm(x), tokens, kv=kv)
        g = jnp.tanh(self.gate[...]).astype(y.dtype)
        if keep is not None:
            g = g * keep.astype(y.dtype)[:, None, None]
        return x + g * y
