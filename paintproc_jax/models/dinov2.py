"""DINOv2 ViT image tower (Flax NNX), converted from the PyTorch checkpoints (facebook/dinov2-*).

    model = load_dinov2("/path/to/dinov2-small")                 # Hub folder or .safetensors
    out = model(dinov2_preprocess(images))                        # images [B, H, W, 3] in [0, 1]
    out["cls"] [B, D], out["patch_tokens"] [B, N, D], out["hidden_states"] (with out_layers=...)

Matches `transformers.Dinov2Model` (last_hidden_state after the final LayerNorm).
"""

from __future__ import annotations

import dataclasses
import pathlib
import re
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

FORMAT = "paintproc-dinov2"  # converted-folder format (paintproc_jax/models/converted.py)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclasses.dataclass(frozen=True)
class Dinov2Config:
    """Shape of a DINOv2 ViT; `image_size` is the pretraining size behind the position table (518 on the Hub).

    `interpolate_offset` 0 resizes position tables as transformers 5.x does (`size=`); 0.1 is the
    original DINOv2 repo / transformers 4.x (`scale_factor=(h + 0.1)/g`), used by Depth Anything V2.
    """

    hidden_size: int = 384
    num_layers: int = 12
    num_heads: int = 6
    mlp_ratio: float = 4.0
    patch_size: int = 14
    image_size: int = 518
    layerscale_value: float = 1.0
    layer_norm_eps: float = 1e-6
    use_swiglu_ffn: bool = False
    hidden_act: str = "gelu"
    qkv_bias: bool = True
    interpolate_offset: float = 0.0

    @property
    def intermediate_size(self) -> int:
        return int(self.hidden_size * self.mlp_ratio)


def config_from_hf(cfg: Mapping) -> Dinov2Config:
    """Dinov2Config from a Hub config.json dict (a Depth Anything `backbone_config` works too)."""
    cfg = dict(cfg.get("backbone_config") or cfg)

    def one(v):
        return int(v[0] if isinstance(v, (list, tuple)) else v)

    try:
        return Dinov2Config(
            hidden_size=int(cfg.get("hidden_size", 768)), num_layers=int(cfg.get("num_hidden_layers", 12)),
            num_heads=int(cfg.get("num_attention_heads", 12)), mlp_ratio=float(cfg.get("mlp_ratio", 4)),
            patch_size=one(cfg.get("patch_size", 14)), image_size=one(cfg.get("image_size", 224)),
            layerscale_value=float(cfg.get("layerscale_value", 1.0)),
            layer_norm_eps=float(cfg.get("layer_norm_eps", 1e-6)),
            use_swiglu_ffn=bool(cfg.get("use_swiglu_ffn", False)), hidden_act=str(cfg.get("hidden_act", "gelu")),
            qkv_bias=bool(cfg.get("qkv_bias", True)),
        )
    except (TypeError, ValueError) as e:
        raise PaintprocError(f"bad DINOv2 config: {one_line(e)}") from None


class Dinov2(nnx.Module):
    """DINOv2 ViT on normalised pixels [B, H, W, 3] (H, W multiples of the patch size, any size)."""

    def __init__(self, config: Dinov2Config, *, rngs: nnx.Rngs):
        c = self.config = config
        d = c.hidden_size
        self.patch_embed = patch_embed(d, c.patch_size, bias=True, rngs=rngs)
        grid = c.image_size // c.patch_size
        self.cls_token = nnx.Param(jnp.zeros((d,), jnp.float32))
        self.pos_embed = nnx.Param(0.02 * jax.random.normal(rngs.params(), (1 + grid * grid, d), jnp.float32))
        self.blocks = nnx.List([
            ViTBlock(d, c.num_heads, c.intermediate_size, eps=c.layer_norm_eps, act=c.hidden_act, rngs=rngs,
                     layerscale=c.layerscale_value, qkv_bias=c.qkv_bias, mlp="swiglu" if c.use_swiglu_ffn else "mlp")
            for _ in range(c.num_layers)
        ])
        self.norm = nnx.LayerNorm(d, epsilon=c.layer_norm_eps, rngs=rngs)

    def embed(self, pixels: jax.Array) -> jax.Array:
        """Tokens [B, 1 + N, D] (class token first) with interpolated position embeddings."""
        b, h, w, _ = pixels.shape
        x = self.patch_embed(pixels.astype(jnp.float32))
        x = x.reshape(b, -1, x.shape[-1])
        cls = jnp.broadcast_to(self.cls_token[...], (b, 1, x.shape[-1]))
        pos = interpolate_pos_table(self.pos_embed[...], h, w, self.config.patch_size, self.config.interpolate_offset)
        return jnp.concatenate([cls, x], axis=1) + pos[None]

    def __call__(self, pixels: jax.Array, out_layers: tuple[int, ...] = ()) -> dict:
        """pixels [B, H, W, 3] -> {'cls' [B, D], 'patch_tokens' [B, N, D], 'hidden_states' [[B, 1 + N, D]]}.

        `hidden_states` holds, for each 0-based block index in `out_layers` (negatives count from
        the end), that block's output after the final LayerNorm (= HF backbone stage i+1).
        """
        n = len(self.blocks)
        want = [i % n if -n <= i < n else None for i in out_layers]
        if None in want:
            raise ValueError(f"out_layers {out_layers} out of range for {n} layers")
        x = self.embed(pixels)
        taps = {}
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in want:
                taps[i] = self.norm(x)
        x = self.norm(x)
        return {"cls": x[:, 0], "patch_tokens": x[:, 1:], "hidden_states": [taps[i] for i in want]}


# ----------------------------------------------------------------------------- conversion

_RENAMES = [  # Hub (transformers 4.x) names -> transformers 5.x names
    (r"\.attention\.attention\.query\.", ".attention.q_proj."),
    (r"\.attention\.attention\.key\.", ".attention.k_proj."),
    (r"\.attention\.attention\.value\.", ".attention.v_proj."),
    (r"\.attention\.output\.dense\.", ".attention.o_proj."),
    (r"\.mlp\.weights_out\.", ".mlp.down_proj."),
]


def normalise_keys(sd: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = {}
    for key, value in sd.items():
        for prefix in ("dinov2.", "backbone.", "model."):
            if key.startswith(prefix):
                key = key[len(prefix):]
        for pat, rep in _RENAMES:
            key = re.sub(pat, rep, key)
        m = re.fullmatch(r"(.*\.mlp)\.weights_in\.(weight|bias)", key)
        if m:  # SwiGLU fused input projection: first half gate, second half up
            gate, up = np.split(np.asarray(value), 2, axis=0)
            out[f"{m[1]}.gate_proj.{m[2]}"], out[f"{m[1]}.up_proj.{m[2]}"] = gate, up
            continue
        out[key] = value
    return out


def _ignored(key: str) -> bool:
    return key == "embeddings.mask_token" or key.startswith(("classifier.", "head.", "neck."))


def dinov2_params_from_torch(state_dict: Mapping[str, np.ndarray], config: Dinov2Config) -> dict:
    """Pure dict of `Dinov2(config)` parameters from a PyTorch DINOv2 state dict (Hub or transformers 5 names)."""
    sd = normalise_keys({k: np.asarray(v, np.float32) for k, v in state_dict.items()})
    mlp = ("gate_proj", "up_proj", "down_proj") if config.use_swiglu_ffn else ("fc1", "fc2")
    expected = {"embeddings.cls_token", "embeddings.position_embeddings", "embeddings.patch_embeddings.projection.weight",
                "embeddings.patch_embeddings.projection.bias", "layernorm.weight", "layernorm.bias"}
    for i in range(config.num_layers):
        p = f"encoder.layer.{i}."
        expected |= {p + "layer_scale1.lambda1", p + "layer_scale2.lambda1"}
        for name in ("norm1", "norm2", "attention.o_proj", *(f"mlp.{m}" for m in mlp)):
            expected |= {p + name + ".weight", p + name + ".bias"}
        for name in ("q_proj", "k_proj", "v_proj"):
            expected |= {p + f"attention.{name}.weight"} | ({p + f"attention.{name}.bias"} if config.qkv_bias else set())
    check_keys(sd, expected, _ignored, "DINOv2 (keys shown in transformers 5.x naming)")

    conv = sd["embeddings.patch_embeddings.projection.weight"]
    blocks = {}
    for i in range(config.num_layers):
        p = f"encoder.layer.{i}."
        blk = {
            "norm1": norm_params(sd, p + "norm1"), "norm2": norm_params(sd, p + "norm2"),
            "q": linear_params(sd, p + "attention.q_proj", config.qkv_bias),
            "k": linear_params(sd, p + "attention.k_proj", config.qkv_bias),
            "v": linear_params(sd, p + "attention.v_proj", config.qkv_bias),
            "o": linear_params(sd, p + "attention.o_proj"),
            "ls1": sd[p + "layer_scale1.lambda1"], "ls2": sd[p + "layer_scale2.lambda1"],
        }
        if config.use_swiglu_ffn:
            blk |= {k: linear_params(sd, p + f"mlp.{k}_proj") for k in ("gate", "up", "down")}
        else:
            blk |= {"fc1": linear_params(sd, p + "mlp.fc1"), "fc2": linear_params(sd, p + "mlp.fc2")}
        blocks[i] = blk
    return {
        "patch_embed": {"kernel": conv.transpose(2, 3, 1, 0), "bias": sd["embeddings.patch_embeddings.projection.bias"]},
        "cls_token": sd["embeddings.cls_token"].reshape(-1),
        "pos_embed": sd["embeddings.position_embeddings"].reshape(-1, config.hidden_size),
        "blocks": blocks,
        "norm": norm_params(sd, "layernorm"),
    }


def dinov2_from_torch(state_dict: Mapping[str, np.ndarray], config: Dinov2Config) -> Dinov2:
    """A `Dinov2` module holding the weights of a PyTorch DINOv2 state dict."""
    pure = dinov2_params_from_torch(state_dict, config)
    return build_module(lambda: Dinov2(config, rngs=nnx.Rngs(0)), pure, "DINOv2")


def load_dinov2(path: str | pathlib.Path, **overrides) -> Dinov2:
    """DINOv2 from a Hub folder (config.json + model.safetensors | pytorch_model.bin), a weights file,
    or a folder converted by tools/convert_weights.py.

    `overrides` replace config fields (e.g. interpolate_offset=0.1).
    """
    return load_module(path, FORMAT, "DINOv2", lambda cfg: dataclasses.replace(config_from_hf(cfg), **overrides),
                       lambda config: Dinov2(config, rngs=nnx.Rngs(0)), dinov2_params_from_torch)


def dinov2_preprocess(images: jax.Array, size: int = 224, crop: bool = True) -> jax.Array:
    """Images [B, H, W, 3] in [0, 1] -> ImageNet-normalised [B, size, size, 3].

    crop=True approximates the HF processor: shorter side to size*256/224 (bicubic, antialiased;
    HF uses PIL), then center crop. crop=False squashes the whole image to size x size.
    """
    if crop:
        images = resize_center_crop(images, round(size * 256 / 224), size)
    elif images.shape[1:3] != (size, size):
        b, _, _, c = images.shape
        images = jnp.clip(jax.image.resize(images.astype(jnp.float32), (b, size, size, c), "bicubic", antialias=True), 0, 1)
    return normalise(images, IMAGENET_MEAN, IMAGENET_STD)
