"""Shared pieces of the pretrained ViT image towers (DINOv2, CLIP): block, position tables, loading.

Layouts follow the PyTorch checkpoints so converters are a key rename plus transposes: linear
kernels [in, out], patch conv [p, p, 3, D], position tables [1 + g*g, D] on a square grid g.
"""

from __future__ import annotations

import math
import pathlib
from collections.abc import Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from safetensors.numpy import load_file

from paintproc_jax.errors import PaintprocError, one_line
from paintproc_jax.models.converted import is_converted, read_converted, read_json

_ACTS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "gelu": lambda x: jax.nn.gelu(x, approximate=False),
    "quick_gelu": lambda x: x * jax.nn.sigmoid(1.702 * x),
    "gelu_new": lambda x: jax.nn.gelu(x, approximate=True),
    "gelu_pytorch_tanh": lambda x: jax.nn.gelu(x, approximate=True),
    "gelu_fast": lambda x: jax.nn.gelu(x, approximate=True),
    "relu": jax.nn.relu,
    "silu": jax.nn.silu,
}


def activation(name: str) -> Callable[[jax.Array], jax.Array]:
    """The activation named by a HF `hidden_act` (gelu = exact erf form, quick_gelu = x*sigmoid(1.702x))."""
    if name not in _ACTS:
        raise PaintprocError(f"unsupported hidden_act {name!r} (known: {', '.join(sorted(_ACTS))})")
    return _ACTS[name]


# ----------------------------------------------------------------------------- position tables


def torch_bicubic_matrix(in_size: int, out_size: int, scale_factor: float | None = None) -> np.ndarray:
    """[out, in] weights of torch's bicubic resize along one axis (a=-0.75, align_corners=False, no antialias).

    With `scale_factor` the source coordinates use 1/scale_factor, as torch does when
    `F.interpolate` is given `scale_factor=` rather than `size=`.
    """
    a = -0.75
    scale = 1.0 / scale_factor if scale_factor and scale_factor > 0 else in_size / out_size
    mat = np.zeros((out_size, in_size), np.float64)
    for i in range(out_size):
        src = scale * (i + 0.5) - 0.5  # no clamp for cubic
        idx = min(math.floor(src), in_size - 1)
        t = min(max(src - idx, 0.0), 1.0)
        x1, x2 = t, 1.0 - t
        w = (
            ((a * (x1 + 1) - 5 * a) * (x1 + 1) + 8 * a) * (x1 + 1) - 4 * a,
            ((a + 2) * x1 - (a + 3)) * x1 * x1 + 1,
            ((a + 2) * x2 - (a + 3)) * x2 * x2 + 1,
            ((a * (x2 + 1) - 5 * a) * (x2 + 1) + 8 * a) * (x2 + 1) - 4 * a,
        )
        for j in range(4):
            mat[i, min(max(idx - 1 + j, 0), in_size - 1)] += w[j]
    return mat


def interpolate_pos_table(table: jax.Array, height: int, width: int, patch: int, offset: float = 0.0) -> jax.Array:
    """Position table [1 + g*g, D] resized to the grid of an image [height, width] -> [1 + h*w, D].

    Follows transformers' `interpolate_pos_encoding`: kept as is when the patch count matches and
    height == width, else torch bicubic to (height//patch, width//patch). `offset` > 0 is the
    original DINOv2 / transformers 4.x variant: `scale_factor=((h + offset)/g, (w + offset)/g)`.
    """
    n = table.shape[0] - 1
    g = int(round(math.sqrt(n)))
    h, w = height // patch, width // patch
    if h * w == n and height == width:
        return table
    if offset:
        sh, sw = (h + offset) / g, (w + offset) / g
        if math.floor(g * sh) != h or math.floor(g * sw) != w:  # pragma: no cover - offset < 1 guarantees it
            raise ValueError(f"position grid {g} cannot be scaled to {h}x{w} with offset {offset}")
        mh, mw = torch_bicubic_matrix(g, h, sh), torch_bicubic_matrix(g, w, sw)
    else:
        mh, mw = torch_bicubic_matrix(g, h), torch_bicubic_matrix(g, w)
    grid = table[1:].astype(jnp.float32).reshape(g, g, -1)
    out = jnp.einsum("ih,jw,hwd->ijd", jnp.asarray(mh, jnp.float32), jnp.asarray(mw, jnp.float32), grid,
                     precision=jax.lax.Precision.HIGHEST)
    return jnp.concatenate([table[:1], out.reshape(h * w, -1).astype(table.dtype)], axis=0)


# ----------------------------------------------------------------------------- modules


class ViTBlock(nnx.Module):
    """Pre-norm transformer block on tokens [B, L, D]: x + ls1*attn(norm1 x), then x + ls2*mlp(norm2 x).

    `layerscale` None means no LayerScale (CLIP); `mlp="swiglu"` is DINOv2-giant's SwiGLU FFN.
    """

    def __init__(self, width: int, heads: int, mlp_width: int, *, eps: float, act: str, rngs: nnx.Rngs,
                 layerscale: float | None = None, qkv_bias: bool = True, mlp: str = "mlp"):
        lin = dict(rngs=rngs, param_dtype=jnp.float32)
        self.heads = heads
        self.act = act
        self.mlp_kind = mlp
        self.norm1 = nnx.LayerNorm(width, epsilon=eps, rngs=rngs)
        self.q = nnx.Linear(width, width, use_bias=qkv_bias, **lin)
        self.k = nnx.Linear(width, width, use_bias=qkv_bias, **lin)
        self.v = nnx.Linear(width, width, use_bias=qkv_bias, **lin)
        self.o = nnx.Linear(width, width, **lin)
        self.norm2 = nnx.LayerNorm(width, epsilon=eps, rngs=rngs)
        if mlp == "mlp":
            self.fc1 = nnx.Linear(width, mlp_width, **lin)
            self.fc2 = nnx.Linear(mlp_width, width, **lin)
        elif mlp == "swiglu":
            hidden = (int(mlp_width * 2 / 3) + 7) // 8 * 8
            self.gate = nnx.Linear(width, hidden, **lin)
            self.up = nnx.Linear(width, hidden, **lin)
            self.down = nnx.Linear(hidden, width, **lin)
        else:
            raise ValueError(f"unknown mlp kind {mlp!r}")
        if layerscale is None:
            self.ls1 = self.ls2 = None
        else:
            self.ls1 = nnx.Param(jnp.full((width,), layerscale, jnp.float32))
            self.ls2 = nnx.Param(jnp.full((width,), layerscale, jnp.float32))

    def _mlp(self, x: jax.Array) -> jax.Array:
        if self.mlp_kind == "swiglu":
            return self.down(jax.nn.silu(self.gate(x)) * self.up(x))
        return self.fc2(activation(self.act)(self.fc1(x)))

    def __call__(self, x: jax.Array) -> jax.Array:
        b, n, d = x.shape
        y = self.norm1(x)
        q, k, v = (f(y).reshape(b, n, self.heads, d // self.heads) for f in (self.q, self.k, self.v))
        y = self.o(jax.nn.dot_product_attention(q, k, v).reshape(b, n, d))
        x = x + (y * self.ls1[...] if self.ls1 is not None else y)
        y = self._mlp(self.norm2(x))
        return x + (y * self.ls2[...] if self.ls2 is not None else y)


def patch_embed(width: int, patch: int, *, bias: bool, rngs: nnx.Rngs) -> nnx.Conv:
    """Non-overlapping patch projection: [B, H, W, 3] -> [B, H//p, W//p, D] (remainder pixels dropped)."""
    return nnx.Conv(3, width, (patch, patch), strides=(patch, patch), padding="VALID", use_bias=bias,
                    param_dtype=jnp.float32, rngs=rngs)


# ----------------------------------------------------------------------------- preprocessing


def resize_center_crop(images: jax.Array, short: int, crop: int) -> jax.Array:
    """Images [B, H, W, C] in [0, 1]: shorter side resized to `short` (bicubic, antialiased), center crop `crop`."""
    b, h, w, c = images.shape
    if h <= w:
        nh, nw = short, int(short * w / h)
    else:
        nh, nw = int(short * h / w), short
    if (nh, nw) != (h, w):
        images = jnp.clip(jax.image.resize(images.astype(jnp.float32), (b, nh, nw, c), "bicubic", antialias=True), 0, 1)
    top, left = max(nh - crop, 0) // 2, max(nw - crop, 0) // 2
    return images[:, top:top + crop, left:left + crop]


def normalise(images: jax.Array, mean, std) -> jax.Array:
    """(images - mean) / std over the channel axis of [B, H, W, 3]."""
    return (images.astype(jnp.float32) - jnp.asarray(mean, jnp.float32)) / jnp.asarray(std, jnp.float32)


# ----------------------------------------------------------------------------- conversion and loading


def linear_params(sd: Mapping[str, np.ndarray], key: str, bias: bool = True) -> dict:
    """torch Linear `key.weight` [out, in] (+ `key.bias`) -> {'kernel': [in, out], 'bias'}."""
    out = {"kernel": np.ascontiguousarray(sd[f"{key}.weight"].T)}
    if bias:
        out["bias"] = sd[f"{key}.bias"]
    return out


def norm_params(sd: Mapping[str, np.ndarray], key: str) -> dict:
    """torch LayerNorm `key.weight`/`key.bias` -> {'scale', 'bias'}."""
    return {"scale": sd[f"{key}.weight"], "bias": sd[f"{key}.bias"]}


def check_keys(sd: Mapping[str, np.ndarray], expected: set[str], ignored: Callable[[str], bool], what: str) -> None:
    """PaintprocError listing a few missing / unexpected keys of a (normalised) state dict."""
    missing = sorted(expected - set(sd))
    unknown = sorted(k for k in sd if k not in expected and not ignored(k))
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing key(s), e.g. {', '.join(missing[:4])}")
        if unknown:
            parts.append(f"{len(unknown)} unexpected key(s), e.g. {', '.join(unknown[:4])}")
        raise PaintprocError(f"{what} state dict does not match its config: {'; '.join(parts)}")


def build_module(make: Callable[[], nnx.Module], pure: dict, what: str) -> nnx.Module:
    """The module `make()` builds, with its parameters taken from the pure dict `pure` (shapes checked)."""
    graphdef, state = nnx.split(nnx.eval_shape(make))
    want = {jax.tree_util.keystr(p): x.shape for p, x in jax.tree_util.tree_leaves_with_path(nnx.to_pure_dict(state))}
    got = {jax.tree_util.keystr(p): np.shape(x) for p, x in jax.tree_util.tree_leaves_with_path(pure)}
    bad = [f"{k} {got.get(k)} != {s}" for k, s in want.items() if got.get(k) != tuple(s)]
    bad += [f"{k} (not a parameter)" for k in got if k not in want]
    if bad:
        raise PaintprocError(f"{what} weights do not fit the config ({len(bad)} tensors): {'; '.join(bad[:3])}")
    nnx.replace_by_pure_dict(state, jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), pure))
    return nnx.merge(graphdef, state)


def _to_numpy(sd: Mapping) -> dict[str, np.ndarray]:
    out = {}
    for k, v in sd.items():
        if hasattr(v, "detach"):  # torch tensor (bf16 has no numpy dtype)
            v = v.detach().float().cpu().numpy()
        out[k] = np.asarray(v, np.float32)
    return out


def read_state_dict(file: pathlib.Path) -> dict[str, np.ndarray]:
    """A checkpoint file (.safetensors without torch, .bin/.pt with torch) as float32 numpy arrays."""
    if not file.is_file():
        raise PaintprocError(f"checkpoint file not found: {file}")
    if file.suffix == ".safetensors":
        try:
            return _to_numpy(load_file(str(file)))
        except Exception as e:  # noqa: BLE001 - e.g. bf16 tensors numpy cannot hold; try torch below
            err = e
        try:
            from safetensors.torch import load_file as load_torch  # lazy: imports torch (optional)

            return _to_numpy(load_torch(str(file)))
        except ImportError:
            raise PaintprocError(f"cannot read {file}: {' '.join(str(err).split())}") from None
        except Exception as e:  # noqa: BLE001
            raise PaintprocError(f"cannot read {file}: {one_line(e)}") from None
    if file.suffix in (".bin", ".pt", ".pth"):
        try:
            import torch  # lazy: optional (.bin/.pt checkpoints only)
        except ImportError:
            raise PaintprocError(f"reading {file.name} needs torch (pip install torch), or use model.safetensors") from None
        try:
            sd = torch.load(str(file), map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001
            raise PaintprocError(f"cannot read {file}: {one_line(e)}") from None
        return _to_numpy(sd.get("state_dict", sd) if isinstance(sd, dict) else sd)
    raise PaintprocError(f"unsupported checkpoint file {file} (expected .safetensors or .bin)")


def read_checkpoint(path: str | pathlib.Path, what: str) -> tuple[dict, dict[str, np.ndarray]]:
    """(config.json dict, state dict) of a Hub folder or of a .safetensors/.bin file with config.json beside it."""
    path = pathlib.Path(path).expanduser()
    if path.is_dir():
        folder = path
        index = folder / "model.safetensors.index.json"
        names = ["model.safetensors", "pytorch_model.bin"]
        files = [folder / n for n in names if (folder / n).is_file()][:1]
        if not files and index.is_file():
            shards = sorted(set(read_json(index, what)["weight_map"].values()))
            files = [folder / s for s in shards]
        if not files:
            raise PaintprocError(f"{what}: no model.safetensors or pytorch_model.bin in {folder}")
    elif path.is_file():
        folder, files = path.parent, [path]
    else:
        raise PaintprocError(f"{what}: no such checkpoint file or folder: {path}")
    cfg_file = folder / "config.json"
    if not cfg_file.is_file():
        raise PaintprocError(f"{what}: no config.json beside {files[0]}")
    cfg = read_json(cfg_file, what)
    sd: dict[str, np.ndarray] = {}
    for f in files:
        sd.update(read_state_dict(f))
    return cfg, sd


def load_module(path, fmt: str, what: str, config_fn: Callable[[dict], object], make: Callable[[object], nnx.Module],
                params_from_torch: Callable[[Mapping, object], dict]) -> nnx.Module:
    """A module from a folder converted by tools/convert_weights.py (format `fmt`) or from a Hub
    checkpoint (`read_checkpoint`): config from its config.json via `config_fn`, weights checked."""
    if is_converted(path):
        cfg, pure = read_converted(path, fmt)
        config = config_fn(cfg)
    else:
        cfg, sd = read_checkpoint(path, what)
        config = config_fn(cfg)
        pure = params_from_torch(sd, config)
    return build_module(lambda: make(config), pure, what)
