"""DINO and CLIP similarity: unit image embeddings from our Flax DINOv2 / CLIP image towers, loaded
from checkpoints the user downloads (a Hub folder or a .safetensors file); cosine similarity of
frames to the reference image is their dot product.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from paintproc_jax.models.clip_vision import clip_preprocess, load_clip_vision
from paintproc_jax.models.dinov2 import dinov2_preprocess, load_dinov2


def _unit(e):
    return e / jnp.maximum(jnp.linalg.norm(e, axis=-1, keepdims=True), 1e-12)


def embedder(model: nnx.Module, kind: str, chunk: int = 16):
    """images [N, H, W, 3] in [0, 1] -> unit embeddings [N, D] (numpy): DINOv2's class token
    ("dino") or CLIP's projected image embedding ("clip"), jitted, in chunks of `chunk` images."""
    if kind not in ("dino", "clip"):
        raise ValueError(f"kind must be 'dino' or 'clip', got {kind!r}")
    graphdef, state = nnx.split(model)

    @jax.jit
    def run(state, images):
        m = nnx.merge(graphdef, state)
        if kind == "dino":
            return _unit(m(dinov2_preprocess(images))["cls"])
        return _unit(m(clip_preprocess(images, size=m.config.image_size))["image_embeds"])

    def embed(images) -> np.ndarray:
        images = np.asarray(images, np.float32)
        out = []
        for i in range(0, len(images), chunk):
            part = images[i : i + chunk]
            n = len(part)
            if n < chunk and len(images) > chunk:  # one compiled shape per image size
                part = np.concatenate([part, np.zeros((chunk - n,) + part.shape[1:], np.float32)])
            out.append(np.asarray(run(state, part))[:n])
        return np.concatenate(out)

    return embed


@functools.cache
def dino_embedder(path: str):
    """Embedder of the DINOv2 checkpoint at `path` (e.g. a downloaded facebook/dinov2-small folder)."""
    return embedder(load_dinov2(path), "dino")


@functools.cache
def clip_embedder(path: str):
    """Embedder of the CLIP checkpoint at `path` (e.g. a downloaded openai/clip-vit-base-patch32 folder)."""
    return embedder(load_clip_vision(path), "clip")
