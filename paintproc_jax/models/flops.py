"""Analytic FLOPs of the video DiT per clip, for MFU: 2 * m * n * k for every matrix product
(embeddings, projections, attention scores and values, MLPs, depth encoder), nothing else.

Training counts 3x the forward pass (forward + two products per backward matmul); recomputation
under remat is not counted, as is usual for MFU. Checked against XLA's cost analysis in the tests.
"""

from __future__ import annotations

import dataclasses

import jax
import ml_collections
import numpy as np
from flax import nnx

from paintproc_jax.models.config import ModelSpec, spec_from_config
from paintproc_jax.models.dit import VideoDiT


@dataclasses.dataclass(frozen=True)
class FlopCount:
    """FLOPs per clip (one reference + `frames` generated frames)."""

    forward: float
    attention: float  # the part of `forward` in attention scores and values (grows as tokens²)
    tokens: int  # video tokens per clip, reference group included
    depth_tokens: int

    @property
    def train(self) -> float:
        """Forward + backward per clip."""
        return 3.0 * self.forward


def count_flops(config: ml_collections.ConfigDict, frames: int | None = None, image_size: int | None = None) -> FlopCount:
    """FLOPs per clip of a config (the full config or its `model` section), at the model's
    frames and size unless given."""
    c = config.model if "model" in config else config
    spec = spec_from_config(c)
    return flops_of_spec(spec, frames or spec.frames, image_size or spec.image_size)


def flops_of_spec(spec: ModelSpec, frames: int, image_size: int) -> FlopCount:
    d, m = spec.width, spec.mlp_hidden
    ns = (image_size // spec.patch) ** 2
    g = 1 + frames // spec.tubelet
    L = g * ns
    p2c = spec.patch * spec.patch * 3
    mm = 0.0
    # embeddings: generated tubelets, reference patches, noise-level MLP; final adaLN + projection
    mm += 2 * (g - 1) * ns * spec.patch_dim * d + 2 * ns * p2c * d + 2 * g * (256 * d + d * d)
    mm += 2 * g * d * 2 * d + 2 * L * d * spec.patch_dim * (2 if spec.output_head == "ref_mix" else 1)  # ref_mix: gate + colour
    mm += 2 * 256 * d if spec.phase_conditioning else 0
    # depth encoder
    md = 0
    if spec.depth_fusion:
        cin = 1 + spec.depth_layers + spec.region_channels
        mm += 2 * ns * spec.patch * spec.patch * cin * d
        for s in range(spec.depth_scales):
            n_s = ns // 4**s
            md += n_s
            mm += (2 * n_s * 4 * d * d if s else 0) + 2 * 2 * n_s * d * 2 * d
    # blocks
    att = 0.0
    per = 2 * 2 * L * d * m  # MLP
    if spec.attention == "factorized":
        per += 2 * g * d * 9 * d + 2 * (4 * 2 * L * d * d)
        att += 2 * 2 * g * ns * ns * d + 2 * 2 * ns * g * g * d
    else:
        per += 2 * g * d * 6 * d + 4 * 2 * L * d * d
        att += 2 * 2 * L * L * d
    if spec.depth_fusion:
        per += 2 * 2 * L * d * d + 2 * 2 * md * d * d
        att += 2 * 2 * L * md * d
    total = mm + spec.depth * (per + att)
    return FlopCount(forward=float(total), attention=float(spec.depth * att), tokens=L, depth_tokens=md)


def param_count(config: ml_collections.ConfigDict) -> int:
    """Parameters of a config's DiT (the full config or its `model` section), from abstract shapes only
    (no memory, no compile): what the config docstrings' tables quote."""
    c = config.model if "model" in config else config
    spec = spec_from_config(c)
    with nnx.use_eager_sharding(False):
        abstract = nnx.eval_shape(lambda: VideoDiT(spec, rngs=nnx.Rngs(0)))
    return int(sum(np.prod(v.shape) for v in jax.tree.leaves(nnx.state(abstract, nnx.Param))))
