"""Video diffusion transformer over space-time pixel patches, with reference-frame conditioning,
depth fusion and medium conditioning (`VideoDiT`), and `create_model` to build it sharded.

Tokens are frame groups [B, G, N, D]: group 0 is the clean reference image (its own patch
embedding, never noised, never predicted), groups 1.. are tubelets of the generated frames
(with `ref_in_frames`, each also carries the reference patch at its position, added). Every
group has its own noise level, so known frames (t = 0) can condition a continuation. adaLN-Zero
modulation per group comes from noise level + medium + reference medium.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
from flax import nnx

from paintproc_jax.models.config import ModelSpec, spec_from_config
from paintproc_jax.models.depth_fusion import DepthEncoder, DepthFusion
from paintproc_jax.models.layers import (
    MLP,
    Attention,
    layer_norm,
    linear,
    modulate,
    patchify,
    position_table,
    timestep_features,
    unpatchify,
)
from paintproc_jax.models.sharding import constrain, param_shardings
from paintproc_jax import parallel

_ZERO = nnx.initializers.zeros_init()
_REMAT = {
    "full": jax.checkpoint_policies.nothing_saveable,
    "dots": jax.checkpoint_policies.checkpoint_dots,
    "dots_no_batch": jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
}
_TOKENS = ("batch", None, "act_seq", "act_embed")  # [B, G, N, D]


class Modulation(NamedTuple):
    """One adaLN-Zero chunk per sub-layer, each [B, G, D]: x + gate * f(norm(x) * (1 + scale) + shift)."""

    shift: jax.Array
    scale: jax.Array
    gate: jax.Array


class Block(nnx.Module):
    """DiT block: adaLN-Zero self-attention (full space-time, or spatial then temporal), gated
    depth cross-attention, adaLN-Zero MLP."""

    def __init__(self, spec: ModelSpec, *, rngs: nnx.Rngs):
        d, dt, pdt = spec.width, spec.dtype, spec.param_dtype
        kw = dict(rngs=rngs, dtype=dt, param_dtype=pdt)
        att = dict(qk_norm=spec.qk_norm, impl=spec.attention_impl, rules=spec.rules, **kw)
        self.factorized = spec.attention == "factorized"
        self.sublayers = ("attn", "temporal", "mlp") if self.factorized else ("attn", "mlp")  # the ada output's order
        self.n_mod = 3 * len(self.sublayers)
        self.norm = layer_norm(d, rngs=rngs, dtype=dt)
        self.ada = linear(d, self.n_mod * d, ("embed", "mod"), init=_ZERO, **kw)
        self.attn = Attention(d, spec.heads, **att)
        self.temporal = Attention(d, spec.heads, **att) if self.factorized else None
        self.depth = DepthFusion(spec, rngs=rngs) if spec.depth_fusion else None
        self.mlp = MLP(d, spec.mlp_hidden, rules=spec.rules, **kw)
        self.rules = spec.rules

    def __call__(self, x, c, depth_tokens=None, keep_depth=None, depth_kv=None):
        """x [B, G, N, D], c [B, G, D] (conditioning, SiLU applied), depth tokens [B, M, D] or this
        block's cached depth keys/values (`VideoDiT.depth_kv`) -> x."""
        b, g, n, d = x.shape
        chunks = jnp.split(self.ada(c), self.n_mod, axis=-1)
        m = {name: Modulation(*chunks[3 * i : 3 * i + 3]) for i, name in enumerate(self.sublayers)}
        if self.factorized:
            h = modulate(self.norm(x), m["attn"].shift, m["attn"].scale).reshape(b * g, n, d)
            x = x + m["attn"].gate[:, :, None] * self.attn(h).reshape(b, g, n, d)
            h = modulate(self.norm(x), m["temporal"].shift, m["temporal"].scale).transpose(0, 2, 1, 3).reshape(b * n, g, d)
            x = x + m["temporal"].gate[:, :, None] * self.temporal(h).reshape(b, n, g, d).transpose(0, 2, 1, 3)
        else:
            h = modulate(self.norm(x), m["attn"].shift, m["attn"].scale).reshape(b, g * n, d)
            x = x + m["attn"].gate[:, :, None] * self.attn(h).reshape(b, g, n, d)
        x = constrain(x, _TOKENS, self.rules)
        if self.depth is not None and (depth_tokens is not None or depth_kv is not None):
            x = self.depth(x.reshape(b, g * n, d), depth_tokens, keep_depth, kv=depth_kv).reshape(b, g, n, d)
        h = modulate(self.norm(x), m["mlp"].shift, m["mlp"].scale).reshape(b, g * n, d)
        x = x + m["mlp"].gate[:, :, None] * self.mlp(h).reshape(b, g, n, d)
        return constrain(x, _TOKENS, self.rules)


class VideoDiT(nnx.Module):
    """Reverse-clip denoiser: (noisy frames, per-frame noise level, conditions) -> prediction.

    `__call__(x [B,F,H,W,3], t [B,F], cond, keep=None) -> [B,F,H,W,3] float32`, where cond has
    "ref" [B,H,W,3] in [-1,1], "medium" [B], "ref_medium" [B], and optionally "depth" [B,H,W],
    "layers" [B,H,W], "regions" [B,H,W,R], "phase" [B] (window start in a longer process), "depth_kv"
    (`cache_depth`: the depth keys/values, computed once per sample); keep maps "ref"/"depth"/"medium" to bool [B]
    (False = condition dropped, for CFG). Frames in one tubelet share t[:, ::tubelet].
    """

    def __init__(self, spec: ModelSpec, *, rngs: nnx.Rngs):
        d, dt, pdt = spec.width, spec.dtype, spec.param_dtype
        kw = dict(rngs=rngs, dtype=dt, param_dtype=pdt)
        p2c = spec.patch * spec.patch * 3
        self.spec = spec
        self.embed = linear(spec.patch_dim, d, ("patch", "embed"), **kw)
        self.ref_embed = linear(p2c, d, ("patch", "embed"), **kw)
        self.ref_null = nnx.Param(nnx.with_partitioning(nnx.initializers.normal(0.02), ("embed",))(rngs.params(), (d,), pdt))
        self.t_mlp1 = linear(256, d, ("patch", "embed"), **kw)
        self.t_mlp2 = linear(d, d, ("mlp", "embed"), **kw)
        self.phase = linear(256, d, ("patch", "embed"), **kw) if spec.phase_conditioning else None
        emb = dict(dtype=dt, param_dtype=pdt, rngs=rngs,
                   embedding_init=nnx.with_partitioning(nnx.initializers.normal(0.02), ("vocab", "embed")))
        self.medium = nnx.Embed(spec.num_media + 1, d, **emb)  # last id = dropped
        self.ref_medium = nnx.Embed(spec.num_ref_media + 1, d, **emb)
        self.depth_encoder = DepthEncoder(spec, rngs=rngs) if spec.depth_fusion else None
        if spec.scan_layers:
            @nnx.split_rngs(splits=spec.depth)
            @nnx.vmap(in_axes=(0,), out_axes=0, transform_metadata={nnx.PARTITION_NAME: "layers"})
            def stack(r):
                return Block(spec, rngs=r)

            self.blocks = stack(rngs)
        else:
            self.blocks = nnx.List([Block(spec, rngs=rngs) for _ in range(spec.depth)])
        self.final_norm = layer_norm(d, rngs=rngs, dtype=dt)
        self.final_ada = linear(d, 2 * d, ("embed", "mod"), init=_ZERO, **kw)
        out_dim = 2 * spec.patch_dim if spec.output_head == "ref_mix" else spec.patch_dim  # ref_mix: gate, colour
        self.final = linear(d, out_dim, ("embed", "patch"), init=_ZERO, **kw)

    def __call__(self, x, t, cond, keep=None):
        spec = self.spec
        b, f, h, w, _ = x.shape
        _check_inputs(spec, x, t, cond)
        keep = keep or {}
        dtype = jnp.dtype(spec.dtype)
        # tokens [B, G, N, D]: reference group, then tubelets of generated frames, + (t, y, x) positions
        gen = self.embed(patchify(x.astype(dtype), spec.tubelet, spec.patch))
        ref = self.ref_embed(patchify(cond["ref"][:, None].astype(dtype), 1, spec.patch))
        if "ref" in keep:
            ref = jnp.where(keep["ref"][:, None, None, None], ref, self.ref_null[...].astype(dtype))
        if spec.ref_in_frames:  # each generated token also sees the reference patch at its position
            gen = gen + ref
        tokens = jnp.concatenate([ref, gen], 1)
        tokens = tokens + jnp.asarray(position_table(tokens.shape[1], h // spec.patch, w // spec.patch, spec.width), dtype)
        tokens = constrain(tokens, _TOKENS, spec.rules)
        # conditioning per group [B, G, D]: noise level (reference: 0) + media
        tg = jnp.concatenate([jnp.zeros((b, 1), jnp.float32), t[:, :: spec.tubelet].astype(jnp.float32)], 1)
        c = self.t_mlp2(nnx.silu(self.t_mlp1(timestep_features(tg).astype(dtype))))
        medium = jnp.asarray(cond["medium"], jnp.int32)
        ref_medium = jnp.asarray(cond["ref_medium"], jnp.int32)
        if "medium" in keep:
            medium = jnp.where(keep["medium"], medium, spec.num_media)
        if "ref" in keep:
            ref_medium = jnp.where(keep["ref"], ref_medium, spec.num_ref_media)
        c = c + (self.medium(medium) + self.ref_medium(ref_medium))[:, None]
        if self.phase is not None:  # start of this window in the whole process, [B] in [0, 1); absent = 0
            phase = cond.get("phase")
            phase = jnp.zeros((b,), jnp.float32) if phase is None else phase
            c = c + self.phase(timestep_features(phase).astype(dtype))[:, None]
        c = nnx.silu(c)
        depth_tokens, depth_kv = None, cond.get("depth_kv") if self.depth_encoder is not None else None
        if depth_kv is None and self.depth_encoder is not None and cond.get("depth") is not None:
            depth_tokens = self._depth_tokens(cond)
        tokens = self._blocks(tokens, c, depth_tokens, keep.get("depth"), depth_kv)
        shift, scale = jnp.split(self.final_ada(c), 2, axis=-1)
        out = self.final(modulate(self.final_norm(tokens), shift, scale))[:, 1:]  # drop the reference group
        out = out.astype(jnp.float32)
        if spec.output_head == "direct":
            return unpatchify(out, spec.tubelet, spec.patch, (h, w))
        gate, colour = (unpatchify(o, spec.tubelet, spec.patch, (h, w)) for o in jnp.split(out, 2, axis=-1))
        ref = jnp.asarray(cond["ref"], jnp.float32)
        if "ref" in keep:  # a dropped reference must not reach the output either
            ref = jnp.where(keep["ref"][:, None, None, None], ref, 0.0)
        g = jax.nn.sigmoid(gate)  # [B, F, H, W, 3]
        return g * ref[:, None] + (1.0 - g) * colour

    def _depth_tokens(self, cond):
        tokens = self.depth_encoder(cond["depth"], cond.get("layers"), cond.get("regions"))
        return constrain(tokens, ("batch", None, "act_embed"), self.spec.rules)

    def depth_kv(self, cond) -> tuple | None:
        """Each block's depth keys and values ((k, v) per block, each [B, M, H, Dh]) for cond's depth map,
        or None without depth fusion or depth. They do not depend on the frames or the noise level."""
        if self.depth_encoder is None or cond.get("depth") is None:
            return None
        tokens = self._depth_tokens(cond)
        if self.spec.scan_layers:
            graphdef, state = nnx.split(self.blocks)
            k, v = jax.vmap(lambda layer: nnx.merge(graphdef, layer).depth.attn.kv(tokens))(state)  # [L, B, M, H, Dh]
            return tuple((k[i], v[i]) for i in range(self.spec.depth))
        return tuple(block.depth.attn.kv(tokens) for block in self.blocks)

    def cache_depth(self, cond: dict) -> dict:
        """`cond` with "depth_kv" (`depth_kv`) added: computed once, reused by every sampler step and
        guidance pass (the samplers batch it with the rest of cond). Unchanged without depth."""
        kv = self.depth_kv(cond)
        return cond if kv is None else {**cond, "depth_kv": kv}

    def _blocks(self, x, c, depth_tokens, keep_depth, depth_kv=None):
        policy = _REMAT.get(self.spec.remat)

        def run(block, x, c, depth_tokens, keep_depth, kv):
            return block(x, c, depth_tokens, keep_depth, kv)

        if policy is not None:
            run = nnx.remat(run, policy=policy)
        if self.spec.scan_layers:
            # lax.scan over the stacked blocks' state, one block merged per step. (nnx.scan refuses a
            # model from an outer trace, which is what a sampler's fori_loop body sees.)
            graphdef, state = nnx.split(self.blocks)
            stacked = None if depth_kv is None else jax.tree.map(lambda *a: jnp.stack(a), *depth_kv)  # [L, B, M, H, Dh]

            def body(x, xs):
                layer, kv = xs
                return run(nnx.merge(graphdef, layer), x, c, None if kv is not None else depth_tokens, keep_depth, kv), None

            return jax.lax.scan(body, x, (state, stacked))[0]
        for i, block in enumerate(self.blocks):
            x = run(block, x, c, depth_tokens, keep_depth, None if depth_kv is None else depth_kv[i])
        return x


def _check_inputs(spec: ModelSpec, x, t, cond) -> None:
    """Static shape checks with messages that say what to change."""
    if x.ndim != 5 or x.shape[-1] != 3:
        raise ValueError(f"frames must be [B, F, H, W, 3], got {x.shape}")
    b, f, h, w, _ = x.shape
    unit = spec.patch * 2 ** (spec.depth_scales - 1 if spec.depth_fusion else 0)
    if h % unit or w % unit:
        raise ValueError(f"frame size {h}x{w} must be a multiple of {unit} (patch * 2**(depth_scales-1))")
    if f % spec.tubelet or f < spec.tubelet:
        raise ValueError(f"{f} generated frames is not a positive multiple of the tubelet ({spec.tubelet})")
    if f > spec.frames:
        raise ValueError(f"{f} generated frames exceed the model's maximum of {spec.frames} (model.frames)")
    if t.shape != (b, f):
        raise ValueError(f"noise levels t must be [B, F] = {(b, f)}, got {t.shape}")
    if cond["ref"].shape != (b, h, w, 3):
        raise ValueError(f"cond['ref'] must be [B, H, W, 3] = {(b, h, w, 3)}, got {cond['ref'].shape}")
    if cond.get("depth") is not None and cond["depth"].shape != (b, h, w):
        raise ValueError(f"cond['depth'] must be [B, H, W] = {(b, h, w)}, got {cond['depth'].shape}")


def create_model(config: ml_collections.ConfigDict, mesh: jax.sharding.Mesh | None = None, seed: int = 0) -> VideoDiT:
    """Builds a `VideoDiT` from a model config, its parameters initialised directly in their
    shardings on `mesh` (one jitted init; a one-device mesh when none is given).

    Variables keep their logical names as metadata but are not eagerly sharded, so optimizers
    and restores built from the model work with or without an active mesh; shardings are
    applied explicitly (here, and by the trainer from `sharding.param_shardings`).
    """

    spec = spec_from_config(config, mesh)  # checked once, mesh included, before anything is built
    mesh = mesh or parallel.make_mesh(devices=jax.devices()[:1])

    def build():
        with nnx.use_eager_sharding(False):
            return VideoDiT(spec, rngs=nnx.Rngs(seed))

    graphdef, abstract = nnx.split(jax.eval_shape(build))  # (nnx.eval_shape would shard eagerly under a mesh)
    shardings = param_shardings(abstract, spec.rules, mesh)
    state = jax.jit(lambda: nnx.state(build()), out_shardings=shardings)()
    return nnx.merge(graphdef, state)
