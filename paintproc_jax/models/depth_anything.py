"""Depth Anything (V1/V2) monocular depth in Flax NNX, converted from the transformers checkpoints.

    model = load_depth_anything("/path/to/Depth-Anything-V2-Small-hf")   # Hub folder or converted folder
    x = preprocess(images)                       # images [B, H, W, 3] in [0, 1] -> [B, h, w, 3], h, w % 14 == 0
    depth = model(jnp.asarray(x))                # [B, h, w] relative inverse depth (larger = nearer)
    depth = postprocess(np.asarray(depth), (H, W))   # back to the input resolution (bilinear)

Matches `transformers.DepthAnythingForDepthEstimation` (5.x): DINOv2 backbone taps (final LayerNorm
applied to each tapped stage, position table resized with `size=`), DPT neck (reassemble: 1x1
projection + transposed-conv / identity / strided-conv resize; fusion: pre-activation residual units
and bilinear upsampling with align_corners=True) and the 3-conv head (ReLU: relative, sigmoid *
max_depth: metric). Converted folders: `config.json` (the HF config) + `params.safetensors` (flat
`a/b/c` keys of the NNX pure dict, float32) + `paintproc.json` ({"format", "version"}).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import pathlib
from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from paintproc_jax.errors import PaintprocError, one_line
from paintproc_jax.models.converted import is_converted, read_converted, read_json, save_converted  # noqa: F401 (API)
from paintproc_jax.models.dinov2 import IMAGENET_MEAN, IMAGENET_STD, Dinov2, Dinov2Config, dinov2_params_from_torch
from paintproc_jax.models.dinov2 import normalise_keys as _normalise_dinov2_keys
from paintproc_jax.models.dinov2 import config_from_hf as dinov2_config_from_hf
from paintproc_jax.models.vit import build_module, read_checkpoint

FORMAT = "paintproc-depth-anything"
ARCHITECTURE = "DepthAnythingForDepthEstimation"
_HIGHEST = jax.lax.Precision.HIGHEST


@dataclasses.dataclass(frozen=True)
class DepthAnythingConfig:
    """Shape of a Depth Anything model (defaults: Depth-Anything-V2-Small).

    `out_indices` are backbone stages (0 = patch embeddings, i = output of block i), as in the HF
    `backbone_config.out_indices`; one neck level per stage, in increasing stage order.
    """

    backbone: Dinov2Config = Dinov2Config()
    out_indices: tuple[int, ...] = (3, 6, 9, 12)
    apply_layernorm: bool = True
    patch_size: int = 14
    reassemble_hidden_size: int = 384
    reassemble_factors: tuple[float, ...] = (4, 2, 1, 0.5)
    neck_hidden_sizes: tuple[int, ...] = (48, 96, 192, 384)
    fusion_hidden_size: int = 64
    head_in_index: int = -1
    head_hidden_size: int = 32
    depth_estimation_type: str = "relative"
    max_depth: float = 1.0

    def __post_init__(self):
        n = len(self.neck_hidden_sizes)
        problems = []
        if n == 0:
            problems.append("neck_hidden_sizes is empty")
        if len(self.out_indices) != n or len(self.reassemble_factors) != n:
            problems.append(f"{len(self.out_indices)} backbone out_indices, {len(self.reassemble_factors)} "
                            f"reassemble_factors and {n} neck_hidden_sizes (must be equal)")
        bad = [i for i in self.out_indices if not 0 <= i <= self.backbone.num_layers]
        if bad or list(self.out_indices) != sorted(set(self.out_indices)):
            problems.append(f"out_indices {list(self.out_indices)} must be increasing stages in "
                            f"[0, {self.backbone.num_layers}]")
        if self.reassemble_hidden_size != self.backbone.hidden_size:
            problems.append(f"reassemble_hidden_size {self.reassemble_hidden_size} != backbone hidden_size "
                            f"{self.backbone.hidden_size}")
        if self.patch_size != self.backbone.patch_size:
            problems.append(f"patch_size {self.patch_size} != backbone patch_size {self.backbone.patch_size}")
        for f in self.reassemble_factors:
            if not (f > 0 and (f <= 1 or float(f).is_integer()) and (f >= 1 or int(1 / f) >= 1)):
                problems.append(f"reassemble factor {f} (need an integer > 1, 1, or a fraction 1/k)")
        if self.depth_estimation_type not in ("relative", "metric"):
            problems.append(f"depth_estimation_type {self.depth_estimation_type!r} (relative or metric)")
        if n and not -n <= self.head_in_index < n:
            problems.append(f"head_in_index {self.head_in_index} out of range for {n} neck levels")
        if self.fusion_hidden_size < 2 or self.head_hidden_size < 1 or min(self.neck_hidden_sizes, default=1) < 1:
            problems.append("fusion_hidden_size must be >= 2 and the neck/head sizes >= 1")
        if problems:
            raise PaintprocError(f"bad Depth Anything config: {'; '.join(problems)}")

    def describe(self) -> str:
        """One-line summary of the sizes that decide the checkpoint's shapes."""
        b = self.backbone
        return (f"backbone hidden {b.hidden_size} x {b.num_layers} layers, stages {list(self.out_indices)}, "
                f"neck {list(self.neck_hidden_sizes)}, fusion {self.fusion_hidden_size}, head {self.head_hidden_size}")


def _stage_index(name) -> int:
    if name == "stem":
        return 0
    if isinstance(name, str) and name.startswith("stage") and name[5:].isdigit():
        return int(name[5:])
    raise ValueError(f"unknown backbone stage name {name!r}")


def config_from_hf(cfg: Mapping) -> DepthAnythingConfig:
    """DepthAnythingConfig from a transformers config.json dict (`model_type: depth_anything`)."""
    if not isinstance(cfg, Mapping):
        raise PaintprocError(f"Depth Anything config must be a JSON object, got {type(cfg).__name__}")
    mt = cfg.get("model_type")
    if mt != "depth_anything":
        arch = ", ".join(cfg.get("architectures") or []) or "none listed"
        raise PaintprocError(f"not a Depth Anything checkpoint: config.json has model_type {mt!r} "
                             f"(architectures: {arch}); expected 'depth_anything' ({ARCHITECTURE})")
    archs = cfg.get("architectures")
    if archs and ARCHITECTURE not in archs:
        raise PaintprocError(f"unsupported Depth Anything architecture {', '.join(archs)}; expected {ARCHITECTURE}")
    bb = cfg.get("backbone_config")
    if cfg.get("use_timm_backbone") or not isinstance(bb, Mapping):
        raise PaintprocError(f"Depth Anything config without a DINOv2 backbone_config (backbone "
                             f"{cfg.get('backbone')!r}) is not supported")
    if bb.get("model_type", "dinov2") != "dinov2":
        raise PaintprocError(f"unsupported Depth Anything backbone model_type {bb.get('model_type')!r} (expected 'dinov2')")
    if int(bb.get("num_channels", 3)) != 3:
        raise PaintprocError(f"unsupported backbone num_channels {bb.get('num_channels')} (expected 3)")
    if bb.get("reshape_hidden_states", False):
        raise PaintprocError("unsupported backbone_config.reshape_hidden_states=true (Depth Anything uses false)")
    backbone = dinov2_config_from_hf(bb)

    def one(v):
        return v[0] if isinstance(v, (list, tuple)) else v

    try:
        if bb.get("out_indices") is not None:
            stages = tuple(int(i) for i in bb["out_indices"])
        elif bb.get("out_features") is not None:
            stages = tuple(_stage_index(s) for s in bb["out_features"])
        else:  # transformers' BackboneMixin default: the last stage only
            stages = (backbone.num_layers,)
        stages = tuple(i % (backbone.num_layers + 1) if i < 0 else i for i in stages)
        max_depth = cfg.get("max_depth")
        return DepthAnythingConfig(
            backbone=backbone, out_indices=stages, apply_layernorm=bool(bb.get("apply_layernorm", True)),
            patch_size=int(one(cfg.get("patch_size", 14))),
            reassemble_hidden_size=int(cfg.get("reassemble_hidden_size", 384)),
            reassemble_factors=tuple(float(f) for f in cfg.get("reassemble_factors", (4, 2, 1, 0.5))),
            neck_hidden_sizes=tuple(int(s) for s in cfg.get("neck_hidden_sizes", (48, 96, 192, 384))),
            fusion_hidden_size=int(cfg.get("fusion_hidden_size", 64)),
            head_in_index=int(cfg.get("head_in_index", -1)),
            head_hidden_size=int(cfg.get("head_hidden_size", 32)),
            depth_estimation_type=str(cfg.get("depth_estimation_type", "relative")),
            max_depth=1.0 if max_depth is None else float(max_depth),
        )
    except (TypeError, ValueError) as e:
        raise PaintprocError(f"bad Depth Anything config: {one_line(e)}") from None


# ----------------------------------------------------------------------------- torch-exact resampling


@functools.lru_cache(maxsize=64)
def torch_bilinear_matrix(in_size: int, out_size: int, align_corners: bool) -> np.ndarray:
    """[out, in] weights of torch's bilinear resize along one axis (`size=` given, no antialias)."""
    mat = np.zeros((out_size, in_size), np.float64)
    for i in range(out_size):
        if align_corners:
            src = i * (in_size - 1) / (out_size - 1) if out_size > 1 else 0.0
        else:
            src = max((i + 0.5) * in_size / out_size - 0.5, 0.0)
        i0 = min(int(src), in_size - 1)
        i1 = i0 + (1 if i0 < in_size - 1 else 0)
        t = src - i0
        mat[i, i0] += 1.0 - t
        mat[i, i1] += t
    return mat


def resize_bilinear(x: jax.Array, size: tuple[int, int], align_corners: bool) -> jax.Array:
    """Feature maps [B, h, w, C] -> [B, H, W, C] exactly as torch `interpolate(mode="bilinear")`."""
    _, h, w, _ = x.shape
    if (h, w) == tuple(size) and not align_corners:
        return x
    mh = jnp.asarray(torch_bilinear_matrix(h, int(size[0]), align_corners), x.dtype)
    mw = jnp.asarray(torch_bilinear_matrix(w, int(size[1]), align_corners), x.dtype)
    x = jnp.einsum("oh,bhwc->bowc", mh, x, precision=_HIGHEST)
    return jnp.einsum("pw,bowc->bopc", mw, x, precision=_HIGHEST)


# ----------------------------------------------------------------------------- modules


def _conv(cin: int, cout: int, k: int, *, rngs: nnx.Rngs, stride: int = 1, bias: bool = True) -> nnx.Conv:
    """torch Conv2d(cin, cout, k, stride, padding=k // 2) on [B, H, W, C]."""
    p = k // 2
    return nnx.Conv(cin, cout, (k, k), strides=(stride, stride), padding=((p, p), (p, p)), use_bias=bias,
                    param_dtype=jnp.float32, rngs=rngs)


class PatchUpsample(nnx.Module):
    """torch ConvTranspose2d(c, c, kernel_size=f, stride=f): [B, h, w, C] -> [B, f*h, f*w, C']."""

    def __init__(self, cin: int, cout: int, factor: int, *, rngs: nnx.Rngs):
        self.factor = factor
        scale = 1.0 / math.sqrt(cin * factor * factor)
        self.kernel = nnx.Param(scale * jax.random.normal(rngs.params(), (cin, factor, factor, cout), jnp.float32))
        self.bias = nnx.Param(jnp.zeros((cout,), jnp.float32))

    def __call__(self, x: jax.Array) -> jax.Array:
        b, h, w, _ = x.shape
        f = self.factor
        y = jnp.einsum("bhwc,cklo->bhkwlo", x, self.kernel[...])
        return y.reshape(b, h * f, w * f, -1) + self.bias[...]


class ReassembleLayer(nnx.Module):
    """Tokens as a map [B, h, w, D] -> 1x1 projection -> resize by `factor` -> [B, h', w', C]."""

    def __init__(self, cin: int, channels: int, factor: float, *, rngs: nnx.Rngs):
        self.projection = _conv(cin, channels, 1, rngs=rngs)
        if factor > 1:
            self.resize = PatchUpsample(channels, channels, int(factor), rngs=rngs)
        elif factor == 1:
            self.resize = None
        else:
            self.resize = _conv(channels, channels, 3, stride=int(1 / factor), rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        x = self.projection(x)
        return x if self.resize is None else self.resize(x)


class ResidualUnit(nnx.Module):
    """Pre-activation residual unit: x + conv2(relu(conv1(relu(x)))) on [B, H, W, C]."""

    def __init__(self, c: int, *, rngs: nnx.Rngs):
        self.conv1 = _conv(c, c, 3, rngs=rngs)
        self.conv2 = _conv(c, c, 3, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return x + self.conv2(jax.nn.relu(self.conv1(jax.nn.relu(x))))


class FusionLayer(nnx.Module):
    """DPT fusion: (x + res1(skip)) -> res2 -> bilinear (align_corners) to `size` or 2x -> 1x1 projection."""

    def __init__(self, c: int, *, rngs: nnx.Rngs):
        self.projection = _conv(c, c, 1, rngs=rngs)
        self.res1 = ResidualUnit(c, rngs=rngs)
        self.res2 = ResidualUnit(c, rngs=rngs)

    def __call__(self, x: jax.Array, skip: jax.Array | None = None, size: tuple[int, int] | None = None) -> jax.Array:
        if skip is not None:
            if skip.shape != x.shape:
                skip = resize_bilinear(skip, x.shape[1:3], align_corners=False)
            x = x + self.res1(skip)
        x = self.res2(x)
        size = size if size is not None else (2 * x.shape[1], 2 * x.shape[2])
        return self.projection(resize_bilinear(x, size, align_corners=True))


class DepthHead(nnx.Module):
    """conv3x3 (F -> F/2) -> bilinear to the input size -> conv3x3 -> ReLU -> conv1x1 -> ReLU | sigmoid*max."""

    def __init__(self, config: DepthAnythingConfig, *, rngs: nnx.Rngs):
        f = config.fusion_hidden_size
        self.metric = config.depth_estimation_type == "metric"
        self.max_depth = float(config.max_depth)
        self.conv1 = _conv(f, f // 2, 3, rngs=rngs)
        self.conv2 = _conv(f // 2, config.head_hidden_size, 3, rngs=rngs)
        self.conv3 = _conv(config.head_hidden_size, 1, 1, rngs=rngs)

    def __call__(self, x: jax.Array, size: tuple[int, int]) -> jax.Array:
        """[B, h, w, F] -> depth [B, H, W]."""
        x = resize_bilinear(self.conv1(x), size, align_corners=True)
        x = self.conv3(jax.nn.relu(self.conv2(x)))
        x = jax.nn.sigmoid(x) if self.metric else jax.nn.relu(x)
        return (x * self.max_depth)[..., 0]


class DepthAnything(nnx.Module):
    """Depth Anything on ImageNet-normalised pixels [B, H, W, 3] (H, W multiples of the patch size)."""

    def __init__(self, config: DepthAnythingConfig, *, rngs: nnx.Rngs):
        self.config = c = config
        self.backbone = Dinov2(c.backbone, rngs=rngs)
        self.reassemble = nnx.List([
            ReassembleLayer(c.reassemble_hidden_size, ch, f, rngs=rngs)
            for ch, f in zip(c.neck_hidden_sizes, c.reassemble_factors)
        ])
        self.convs = nnx.List([_conv(ch, c.fusion_hidden_size, 3, bias=False, rngs=rngs) for ch in c.neck_hidden_sizes])
        self.fusion = nnx.List([FusionLayer(c.fusion_hidden_size, rngs=rngs) for _ in c.neck_hidden_sizes])
        self.head = DepthHead(c, rngs=rngs)

    def encode(self, pixels: jax.Array) -> list[jax.Array]:
        """pixels [B, H, W, 3] -> backbone taps [[B, 1 + h*w, D]] (class token first), one per out_indices stage."""
        bb, c = self.backbone, self.config
        x = bb.embed(pixels)
        stages = {0: x}
        for i, block in enumerate(bb.blocks):
            x = block(x)
            stages[i + 1] = x
        return [bb.norm(stages[s]) if c.apply_layernorm else stages[s] for s in c.out_indices]

    def neck(self, taps: Sequence[jax.Array], grid: tuple[int, int]) -> list[jax.Array]:
        """Backbone taps -> fused maps [[B, h_i, w_i, F]], coarsest first (HF neck output order)."""
        gh, gw = grid
        feats = []
        for tap, reassemble, conv in zip(taps, self.reassemble, self.convs):
            tokens = tap[:, 1:]
            feats.append(conv(reassemble(tokens.reshape(tokens.shape[0], gh, gw, tokens.shape[-1]))))
        feats = feats[::-1]
        fused, x = [], None
        for i, (feat, layer) in enumerate(zip(feats, self.fusion)):
            size = feats[i + 1].shape[1:3] if i + 1 < len(feats) else None
            x = layer(feat, size=size) if x is None else layer(x, feat, size=size)
            fused.append(x)
        return fused

    def __call__(self, pixels: jax.Array, *, intermediates: bool = False):
        """pixels [B, H, W, 3] -> predicted_depth [B, H, W] (relative: inverse depth, larger = nearer).

        Sizes that are not multiples of the patch lose their remainder pixels, as in the reference.
        intermediates=True returns {'taps', 'neck', 'predicted_depth'} instead.
        """
        p = self.config.patch_size
        grid = (pixels.shape[1] // p, pixels.shape[2] // p)
        taps = self.encode(pixels)
        fused = self.neck(taps, grid)
        depth = self.head(fused[self.config.head_in_index], (grid[0] * p, grid[1] * p))
        if intermediates:
            return {"taps": taps, "neck": fused, "predicted_depth": depth}
        return depth


# ----------------------------------------------------------------------------- conversion


def _expected_shapes(config: DepthAnythingConfig) -> dict[str, tuple[int, ...]]:
    """Every tensor of the transformers state dict (backbone in transformers 5.x naming) and its shape."""
    b = config.backbone
    d, p, g = b.hidden_size, b.patch_size, b.image_size // b.patch_size
    out = {
        "backbone.embeddings.cls_token": (1, 1, d),
        "backbone.embeddings.position_embeddings": (1, 1 + g * g, d),
        "backbone.embeddings.patch_embeddings.projection.weight": (d, 3, p, p),
        "backbone.embeddings.patch_embeddings.projection.bias": (d,),
        "backbone.layernorm.weight": (d,), "backbone.layernorm.bias": (d,),
    }
    if b.use_swiglu_ffn:
        hidden = (int(b.intermediate_size * 2 / 3) + 7) // 8 * 8
        mlp = {"gate_proj": (hidden, d), "up_proj": (hidden, d), "down_proj": (d, hidden)}
    else:
        mlp = {"fc1": (b.intermediate_size, d), "fc2": (d, b.intermediate_size)}
    for i in range(b.num_layers):
        q = f"backbone.encoder.layer.{i}."
        out |= {q + "layer_scale1.lambda1": (d,), q + "layer_scale2.lambda1": (d,)}
        for n in ("norm1", "norm2"):
            out |= {q + n + ".weight": (d,), q + n + ".bias": (d,)}
        for n in ("q_proj", "k_proj", "v_proj", "o_proj"):
            out[q + f"attention.{n}.weight"] = (d, d)
            if b.qkv_bias or n == "o_proj":
                out[q + f"attention.{n}.bias"] = (d,)
        for n, shape in mlp.items():
            out |= {q + f"mlp.{n}.weight": shape, q + f"mlp.{n}.bias": (shape[0],)}
    f = config.fusion_hidden_size
    for i, (ch, fac) in enumerate(zip(config.neck_hidden_sizes, config.reassemble_factors)):
        q = f"neck.reassemble_stage.layers.{i}."
        out |= {q + "projection.weight": (ch, config.reassemble_hidden_size, 1, 1), q + "projection.bias": (ch,)}
        if fac > 1:
            out |= {q + "resize.weight": (ch, ch, int(fac), int(fac)), q + "resize.bias": (ch,)}
        elif fac < 1:
            out |= {q + "resize.weight": (ch, ch, 3, 3), q + "resize.bias": (ch,)}
        out[f"neck.convs.{i}.weight"] = (f, ch, 3, 3)
        q = f"neck.fusion_stage.layers.{i}."
        out |= {q + "projection.weight": (f, f, 1, 1), q + "projection.bias": (f,)}
        for r in ("residual_layer1", "residual_layer2"):
            for cv in ("convolution1", "convolution2"):
                out |= {q + f"{r}.{cv}.weight": (f, f, 3, 3), q + f"{r}.{cv}.bias": (f,)}
    h = config.head_hidden_size
    out |= {"head.conv1.weight": (f // 2, f, 3, 3), "head.conv1.bias": (f // 2,),
            "head.conv2.weight": (h, f // 2, 3, 3), "head.conv2.bias": (h,),
            "head.conv3.weight": (1, h, 1, 1), "head.conv3.bias": (1,)}
    return out


def _ignored(key: str) -> bool:
    return key == "backbone.embeddings.mask_token"


def _normalise(state_dict: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """float32 numpy state dict, backbone keys renamed to transformers 5.x naming (Hub 4.x names accepted)."""
    sd, backbone = {}, {}
    for k, v in state_dict.items():
        v = np.asarray(v.detach().float().cpu().numpy() if hasattr(v, "detach") else v, np.float32)
        if k.startswith("depth_anything."):  # a prefix some exports carry
            k = k[len("depth_anything."):]
        if k.startswith("backbone."):
            backbone[k[len("backbone."):]] = v
        else:
            sd[k] = v
    sd.update({"backbone." + k: v for k, v in _normalise_dinov2_keys(backbone).items()})
    return sd


def check_state_dict(state_dict: Mapping[str, np.ndarray], config: DepthAnythingConfig) -> dict[str, np.ndarray]:
    """The normalised state dict; PaintprocError naming missing / unexpected / mis-shaped tensors."""
    sd = _normalise(state_dict)
    want = _expected_shapes(config)
    missing = sorted(k for k in want if k not in sd)
    unknown = sorted(k for k in sd if k not in want and not _ignored(k))
    shaped = [f"{k} {tuple(sd[k].shape)} != {tuple(s)}" for k, s in want.items() if k in sd and sd[k].shape != tuple(s)]
    if missing or unknown or shaped:
        parts = []
        if shaped:
            parts.append(f"{len(shaped)} mis-shaped tensor(s) (checkpoint != config), e.g. {'; '.join(shaped[:3])}")
        if missing:
            parts.append(f"{len(missing)} missing key(s), e.g. {', '.join(missing[:4])}")
        if unknown:
            parts.append(f"{len(unknown)} unexpected key(s), e.g. {', '.join(unknown[:4])}")
        raise PaintprocError(f"Depth Anything weights do not match the config ({config.describe()}): "
                             f"{' | '.join(parts)}")
    return sd


def _conv_params(sd: Mapping[str, np.ndarray], key: str, bias: bool = True) -> dict:
    """torch Conv2d `key.weight` [O, I, kh, kw] (+ bias) -> {'kernel': [kh, kw, I, O], 'bias'}."""
    out = {"kernel": np.ascontiguousarray(sd[f"{key}.weight"].transpose(2, 3, 1, 0))}
    if bias:
        out["bias"] = sd[f"{key}.bias"]
    return out


def depth_anything_params_from_torch(state_dict: Mapping[str, np.ndarray], config: DepthAnythingConfig) -> dict:
    """Pure dict of `DepthAnything(config)` parameters from a transformers state dict (names and shapes checked)."""
    sd = check_state_dict(state_dict, config)
    backbone = dinov2_params_from_torch({k[len("backbone."):]: v for k, v in sd.items() if k.startswith("backbone.")},
                                        config.backbone)
    reassemble, convs, fusion = {}, {}, {}
    for i, fac in enumerate(config.reassemble_factors):
        q = f"neck.reassemble_stage.layers.{i}."
        layer = {"projection": _conv_params(sd, q + "projection")}
        if fac > 1:  # ConvTranspose2d weight [in, out, k, k] -> [in, k, k, out]
            layer["resize"] = {"kernel": np.ascontiguousarray(sd[q + "resize.weight"].transpose(0, 2, 3, 1)),
                               "bias": sd[q + "resize.bias"]}
        elif fac < 1:
            layer["resize"] = _conv_params(sd, q + "resize")
        reassemble[i] = layer
        convs[i] = _conv_params(sd, f"neck.convs.{i}", bias=False)
        q = f"neck.fusion_stage.layers.{i}."
        fusion[i] = {"projection": _conv_params(sd, q + "projection")}
        for ours, theirs in (("res1", "residual_layer1"), ("res2", "residual_layer2")):
            fusion[i][ours] = {"conv1": _conv_params(sd, q + f"{theirs}.convolution1"),
                               "conv2": _conv_params(sd, q + f"{theirs}.convolution2")}
    head = {n: _conv_params(sd, f"head.{n}") for n in ("conv1", "conv2", "conv3")}
    return {"backbone": backbone, "reassemble": reassemble, "convs": convs, "fusion": fusion, "head": head}


def build_depth_anything(config: DepthAnythingConfig, params: dict | None = None, seed: int = 0) -> DepthAnything:
    """A `DepthAnything(config)`: random weights (seed), or `params` (a pure dict, shapes checked)."""
    if params is None:
        return DepthAnything(config, rngs=nnx.Rngs(seed))
    return build_module(lambda: DepthAnything(config, rngs=nnx.Rngs(seed)), params, "Depth Anything")


def depth_anything_from_torch(state_dict: Mapping[str, np.ndarray], config: DepthAnythingConfig) -> DepthAnything:
    """A `DepthAnything` module holding the weights of a transformers state dict."""
    return build_depth_anything(config, depth_anything_params_from_torch(state_dict, config))


def load_depth_anything(path) -> DepthAnything:
    """Depth Anything from our converted folder or a transformers folder (config.json + model.safetensors
    | pytorch_model.bin, the latter needs torch) or a weights file with config.json beside it."""
    path = pathlib.Path(path).expanduser()
    if not path.exists():
        raise PaintprocError(f"Depth Anything: no such checkpoint folder: {path}")
    folder = path if path.is_dir() else path.parent
    cfg_file = folder / "config.json"
    if not cfg_file.is_file():
        raise PaintprocError(f"Depth Anything: no config.json in {folder}")
    config = config_from_hf(read_json(cfg_file, "Depth Anything"))
    if is_converted(folder) and (path.is_dir() or path.name == "params.safetensors"):
        _, pure = read_converted(folder, FORMAT)
        return build_depth_anything(config, pure)
    _, sd = read_checkpoint(path, "Depth Anything")
    return depth_anything_from_torch(sd, config)


# ----------------------------------------------------------------------------- pre/post-processing


def resize_output_size(height: int, width: int, size: int | tuple[int, int] = 518, multiple: int = 14) -> tuple[int, int]:
    """(h, w) the transformers DPT/Depth Anything processor resizes an image to (keep_aspect_ratio=True).

    The scale closest to 1 of (size_h / height, size_w / width) is applied to both sides, each then
    rounded (Python round) to a multiple of `multiple`; unlike the reference, never below `multiple`.
    """
    th, tw = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    sh, sw = th / height, tw / width
    if abs(1 - sw) < abs(1 - sh):
        sh = sw
    else:
        sw = sh
    return (max(round(sh * height / multiple) * multiple, multiple),
            max(round(sw * width / multiple) * multiple, multiple))


def _cubic(x: np.ndarray, a: float = -0.5) -> np.ndarray:
    x = np.abs(x)
    return np.where(x < 1, ((a + 2) * x - (a + 3)) * x * x + 1,
                    np.where(x < 2, (((x - 5) * x + 8) * x - 4) * a, 0.0))


def _triangle(x: np.ndarray) -> np.ndarray:
    return np.maximum(1.0 - np.abs(x), 0.0)


@functools.lru_cache(maxsize=128)
def aa_resize_matrix(in_size: int, out_size: int, kind: str = "bicubic") -> np.ndarray:
    """[out, in] weights of an antialiased resize along one axis, as PIL / torch `antialias=True` compute them.

    bicubic: Keys a=-0.5 (support 2); bilinear: triangle (support 1); the kernel is stretched by the
    scale when shrinking; taps outside the image are dropped and the rest renormalised.
    """
    filt, support = (_cubic, 2.0) if kind == "bicubic" else (_triangle, 1.0)
    scale = in_size / out_size
    ss = max(scale, 1.0)
    sup = support * ss
    mat = np.zeros((out_size, in_size), np.float64)
    for i in range(out_size):
        center = scale * (i + 0.5)
        lo = max(int(center - sup + 0.5), 0)
        hi = min(int(center + sup + 0.5), in_size)
        j = np.arange(lo, hi)
        w = filt((j - center + 0.5) / ss)
        total = w.sum()
        mat[i, lo:hi] = w / total if total != 0 else 0.0
    return mat


def _resize_np(x: np.ndarray, size: tuple[int, int], kind: str) -> np.ndarray:
    """[B, H, W, ...] -> [B, h, w, ...] (float32) with separable antialiased weights."""
    b, h, w = x.shape[:3]
    if (h, w) == tuple(size):
        return x.astype(np.float32, copy=False)
    mh = aa_resize_matrix(h, int(size[0]), kind).astype(np.float32)
    mw = aa_resize_matrix(w, int(size[1]), kind).astype(np.float32)
    x = np.einsum("oh,bh...->bo...", mh, x.astype(np.float32), optimize=True)
    return np.einsum("pw,bow...->bop...", mw, x, optimize=True)


def preprocess(images, size: int | tuple[int, int] = 518, multiple: int = 14) -> np.ndarray:
    """Images [B, H, W, 3] in [0, 1] -> ImageNet-normalised [B, h, w, 3] float32 (numpy), h, w from
    `resize_output_size` — the transformers Depth Anything processor: bicubic, antialiased (as PIL /
    torchvision do), clipped to [0, 1] (as the processor's uint8 images are), then mean/std."""
    x = np.asarray(images, np.float32)
    if x.ndim != 4 or x.shape[-1] != 3:
        raise PaintprocError(f"Depth Anything preprocess: expected images [B, H, W, 3], got shape {x.shape}")
    hw = resize_output_size(x.shape[1], x.shape[2], size, multiple)
    x = np.clip(_resize_np(x, hw, "bicubic"), 0.0, 1.0)
    return ((x - np.asarray(IMAGENET_MEAN, np.float32)) / np.asarray(IMAGENET_STD, np.float32)).astype(np.float32)


def postprocess(depth, size: tuple[int, int]) -> np.ndarray:
    """Depth [B, h, w] -> [B, H, W] float32 at `size` (bilinear, antialiased when shrinking; the HF
    `post_process_depth_estimation` uses bicubic, which can overshoot)."""
    return _resize_np(np.asarray(depth, np.float32), size, "bilinear")
