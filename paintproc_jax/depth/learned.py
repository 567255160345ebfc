"""`DepthAnythingEstimator`: learned depth (Depth Anything V1/V2, Flax port) behind the depth protocol.

    est = get_estimator("depth-anything", model_dir="ckpt/da2-small")   # converted or transformers folder
    depth = est(image)                      # image [H, W, 3] in [0, 1] -> [H, W] float32 in [0, 1], 1 = nearest
    depths = est.batch([img1, img2, ...])   # jitted and batched, grouped by the model's input shape

Each image is resized as the transformers processor does (aspect kept, sides multiples of 14 near
`input_size`, bicubic), the model's relative inverse depth is resized back to the image
(bilinear) and min-max normalised per image. Batches are split over the host's devices. JAX/Flax are imported only when an estimator is
built, so importing this module (done by `paintproc_jax.depth` in data workers) stays cheap.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from paintproc_jax.depth.base import normalize_depth, register_estimator
from paintproc_jax.depth.builtin import as_rgb
from paintproc_jax.errors import PaintprocError


class DepthAnythingEstimator:
    """Depth Anything on images [H, W, 3] in [0, 1] -> depth [H, W] in [0, 1], 1 = nearest."""

    name = "depth-anything"

    def __init__(self, model_dir, input_size: int = 518, batch_size: int = 8):
        try:
            input_size, batch_size = int(input_size), int(batch_size)
        except (TypeError, ValueError):
            raise PaintprocError(f"depth-anything: input_size and batch_size must be integers, got "
                                 f"{input_size!r}, {batch_size!r}") from None
        if input_size < 14:
            raise PaintprocError(f"depth-anything: input_size must be >= 14, got {input_size}")
        if batch_size < 1:
            raise PaintprocError(f"depth-anything: batch_size must be >= 1, got {batch_size}")
        # JAX/Flax only once an estimator is built: paintproc_jax.depth (NumPy-only, in data workers) imports this module
        import jax  # lazy: JAX-free import
        from flax import nnx  # lazy: JAX-free import
        from jax.sharding import Mesh, NamedSharding, PartitionSpec  # lazy: JAX-free import

        from paintproc_jax.models import depth_anything as da  # lazy: JAX-free import

        self._da = da
        self.model_dir = str(model_dir)
        self.input_size, self.batch_size = input_size, batch_size
        model = da.load_depth_anything(model_dir)
        self.config = model.config
        graphdef, state = nnx.split(model)
        # batches split over this host's devices (parameters replicated): a data mesh, no pmap
        devices = jax.local_devices()
        mesh = Mesh(np.array(devices), ("data",))
        self._devices = len(devices)
        replicated, split = NamedSharding(mesh, PartitionSpec()), NamedSharding(mesh, PartitionSpec("data"))
        self._state = jax.device_put(state, replicated)
        self._forward = jax.jit(lambda state, x: nnx.merge(graphdef, state)(x), in_shardings=(replicated, split),
                                out_shardings=split)

    def __repr__(self) -> str:
        return f"DepthAnythingEstimator({self.model_dir!r}, input_size={self.input_size}, batch_size={self.batch_size})"

    def input_shape(self, height: int, width: int) -> tuple[int, int]:
        """The model's input (h, w) for an image of `height` x `width`."""
        return self._da.resize_output_size(height, width, self.input_size, self.config.patch_size)

    def _padded(self, n: int) -> int:
        """Batch size compiled for `n` images: the next power of two, at most `batch_size`, rounded up
        to a multiple of the device count (few compiled shapes; every device gets rows)."""
        size = min(self.batch_size, 1 << max(n - 1, 0).bit_length())
        return -(-size // self._devices) * self._devices

    def __call__(self, image: np.ndarray) -> np.ndarray:
        return self.batch([image])[0]

    def batch(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Depth of each image (list, input order); images sharing a model input shape run together."""
        imgs = [as_rgb(im) for im in images]
        groups: dict[tuple[int, int], list[int]] = {}
        for i, im in enumerate(imgs):
            groups.setdefault(self.input_shape(*im.shape[:2]), []).append(i)
        out: list[np.ndarray | None] = [None] * len(imgs)
        p = self.config.patch_size
        for idx in groups.values():
            for start in range(0, len(idx), self.batch_size):
                chunk = idx[start:start + self.batch_size]
                x = np.concatenate([self._da.preprocess(imgs[i][None], self.input_size, p) for i in chunk])
                pad = self._padded(len(chunk)) - len(chunk)
                if pad:
                    x = np.concatenate([x, np.zeros((pad, *x.shape[1:]), x.dtype)])
                pred = np.asarray(self._forward(self._state, x))
                for j, i in enumerate(chunk):
                    d = self._da.postprocess(pred[j:j + 1], imgs[i].shape[:2])[0]
                    out[i] = normalize_depth(d)
        return out  # type: ignore[return-value]


register_estimator("depth-anything", DepthAnythingEstimator)
