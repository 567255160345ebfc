"""CLIP ViT image tower (Flax NNX), converted from the PyTorch checkpoints (openai/clip-vit-*).

    model = load_clip_vision("/path/to/clip-vit-base-patch32")   # Hub folder or .safetensors
    out = model(clip_preprocess(images, model.config.image_size)) # images [B, H, W, 3] in [0, 1]
    out["image_embeds"] [B, P] (unnormalised, like HF), out["pooled"] [B, D]

Matches `transformers.CLIPVisionModelWithProjection`.
"""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from paintproc_jax.errors import PaintprocError, one_line
from paintproc_jax.models.vit import (
    ViTBlock, build_module, check_keys, interpolate_pos_table, linear_params, load_module, norm_params, normalise,
    patch_embed, resize_center_crop,
)

FORMAT = "paintproc-clip-vision"  # converted-folder format (paintproc_jax/models/converted.py)

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclasses.dataclass(frozen=True)
class ClipVisionConfig:
    """Shape of a CLIP vision tower (defaults: ViT-B/32)."""

    hidden_size: int = 768
    intermediate_size: int = 3072
    num_layers: int = 12
    num_heads: int = 12
    patch_size: int = 32
    image_size: int = 224
    projection_dim: int = 512
    hidden_act: str = "quick_gelu"
    layer_norm_eps: float = 1e-5


def config_from_hf(cfg: Mapping) -> ClipVisionConfig:
    """ClipVisionConfig from a Hub config.json: a full CLIP config (its `vision_config` + top-level
    `projection_dim`) or a CLIPVisionModelWithProjection config."""
    cfg = dict(cfg)
    vision = cfg.get("vision_config") or cfg.get("vision_config_dict")
    if vision is not None:
        vision = {**vision, "projection_dim": cfg.get("projection_dim", vision.get("projection_dim", 512))}
    else:
        vision = cfg
    d = ClipVisionConfig()
    try:
        return ClipVisionConfig(
            hidden_size=int(vision.get("hidden_size", d.hidden_size)),
            intermediate_size=int(vision.get("intermediate_size", d.intermediate_size)),
            num_layers=int(vision.get("num_hidden_layers", d.num_layers)),
            num_heads=int(vision.get("num_attention_heads", d.num_heads)),
            patch_size=int(vision.get("patch_size", d.patch_size)), image_size=int(vision.get("image_size", d.image_size)),
            projection_dim=int(vision.get("projection_dim", d.projection_dim)),
            hidden_act=str(vision.get("hidden_act", d.hidden_act)),
            layer_norm_eps=float(vision.get("layer_norm_eps", d.layer_norm_eps)),
        )
    except (TypeError, ValueError) as e:
        raise PaintprocError(f"bad CLIP vision config: {one_line(e)}") from None


class ClipVision(nnx.Module):
    """CLIP image tower on CLIP-normalised pixels [B, S, S, 3] (S = config.image_size)."""

    def __init__(self, config: ClipVisionConfig, *, rngs: nnx.Rngs):
        c = self.config = config
        d = c.hidden_size
        grid = c.image_size // c.patch_size
        self.patch_embed = patch_embed(d, c.patch_size, bias=False, rngs=rngs)
        self.cls_token = nnx.Param(0.02 * jax.random.normal(rngs.params(), (d,), jnp.float32))
        self.pos_embed = nnx.Param(0.02 * jax.random.normal(rngs.params(), (1 + grid * grid, d), jnp.float32))
        self.pre_norm = nnx.LayerNorm(d, epsilon=c.layer_norm_eps, rngs=rngs)
        self.blocks = nnx.List([
            ViTBlock(d, c.num_heads, c.intermediate_size, eps=c.layer_norm_eps, act=c.hidden_act, rngs=rngs)
            for _ in range(c.num_layers)
        ])
        self.post_norm = nnx.LayerNorm(d, epsilon=c.layer_norm_eps, rngs=rngs)
        self.proj = nnx.Linear(d, c.projection_dim, use_bias=False, param_dtype=jnp.float32, rngs=rngs)

    def __call__(self, pixels: jax.Array, interpolate_pos_encoding: bool = False) -> dict:
        """pixels [B, S, S, 3] -> {'image_embeds' [B, P], 'pooled' [B, D], 'last_hidden_state' [B, 1 + N, D]}.

        Other sizes need interpolate_pos_encoding=True (bicubic position table, as in HF).
        """
        b, h, w, _ = pixels.shape
        s = self.config.image_size
        if not interpolate_pos_encoding and (h, w) != (s, s):
            raise ValueError(f"CLIP input {h}x{w} does not match the model's {s}x{s} (or pass interpolate_pos_encoding)")
        x = self.patch_embed(pixels.astype(jnp.float32))
        x = x.reshape(b, -1, x.shape[-1])
        cls = jnp.broadcast_to(self.cls_token[...], (b, 1, x.shape[-1]))
        pos = interpolate_pos_table(self.pos_embed[...], h, w, self.config.patch_size)
        x = self.pre_norm(jnp.concatenate([cls, x], axis=1) + pos[None])
        for block in self.blocks:
            x = block(x)
        pooled = self.post_norm(x[:, 0])
        return {"image_embeds": self.proj(pooled), "pooled": pooled, "last_hidden_state": x}


# ----------------------------------------------------------------------------- conversion


def _ignored(key: str) -> bool:
    return (key.startswith(("text_model.", "text_projection.")) or key in ("logit_scale", "embeddings.position_ids"))


def clip_vision_params_from_torch(state_dict: Mapping[str, np.ndarray], config: ClipVisionConfig) -> dict:
    """Pure dict of `ClipVision(config)` parameters from a CLIP / CLIPVisionModelWithProjection state dict.

    Keys with or without the `vision_model.` prefix; `text_model.*`, `text_projection`, `logit_scale` ignored.
    """
    sd = {k.removeprefix("vision_model."): np.asarray(v, np.float32) for k, v in state_dict.items()}
    expected = {"embeddings.class_embedding", "embeddings.patch_embedding.weight", "embeddings.position_embedding.weight",
                "pre_layrnorm.weight", "pre_layrnorm.bias", "post_layernorm.weight", "post_layernorm.bias",
                "visual_projection.weight"}
    for i in range(config.num_layers):
        p = f"encoder.layers.{i}."
        for name in ("layer_norm1", "layer_norm2", "mlp.fc1", "mlp.fc2", *(f"self_attn.{n}_proj" for n in "qkv"),
                     "self_attn.out_proj"):
            expected |= {p + name + ".weight", p + name + ".bias"}
    check_keys(sd, expected, _ignored, "CLIP vision")

    blocks = {}
    for i in range(config.num_layers):
        p = f"encoder.layers.{i}."
        blocks[i] = {
            "norm1": norm_params(sd, p + "layer_norm1"), "norm2": norm_params(sd, p + "layer_norm2"),
            "q": linear_params(sd, p + "self_attn.q_proj"), "k": linear_params(sd, p + "self_attn.k_proj"),
            "v": linear_params(sd, p + "self_attn.v_proj"), "o": linear_params(sd, p + "self_attn.out_proj"),
            "fc1": linear_params(sd, p + "mlp.fc1"), "fc2": linear_params(sd, p + "mlp.fc2"),
        }
    return {
        "patch_embed": {"kernel": sd["embeddings.patch_embedding.weight"].transpose(2, 3, 1, 0)},
        "cls_token": sd["embeddings.class_embedding"].reshape(-1),
        "pos_embed": sd["embeddings.position_embedding.weight"],
        "pre_norm": norm_params(sd, "pre_layrnorm"),
        "blocks": blocks,
        "post_norm": norm_params(sd, "post_layernorm"),
        "proj": linear_params(sd, "visual_projection", bias=False),
    }


def clip_vision_from_torch(state_dict: Mapping[str, np.ndarray], config: ClipVisionConfig) -> ClipVision:
    """A `ClipVision` module holding the weights of a PyTorch CLIP state dict."""
    pure = clip_vision_params_from_torch(state_dict, config)
    return build_module(lambda: ClipVision(config, rngs=nnx.Rngs(0)), pure, "CLIP vision")


def load_clip_vision(path: str | pathlib.Path) -> ClipVision:
    """CLIP image tower from a Hub folder (config.json + model.safetensors | pytorch_model.bin), a weights
    file, or a folder converted by tools/convert_weights.py."""
    return load_module(path, FORMAT, "CLIP vision", config_from_hf, lambda config: ClipVision(config, rngs=nnx.Rngs(0)),
                       clip_vision_params_from_torch)


def clip_preprocess(images: jax.Array, size: int = 224, crop: bool = True) -> jax.Array:
    """Images [B, H, W, 3] in [0, 1] -> CLIP-normalised [B, size, size, 3].

    crop=True approximates CLIPImageProcessor (shorter side to `size`, bicubic antialiased, center
    crop); crop=False squashes the whole image to size x size.
    """
    if crop:
        images = resize_center_crop(images, size, size)
    elif images.shape[1:3] != (size, size):
        b, _, _, c = images.shape
        images = jnp.clip(jax.image.resize(images.astype(jnp.float32), (b, size, size, c), "bicubic", antialias=True), 0, 1)
    return normalise(images, CLIP_MEAN, CLIP_STD)
