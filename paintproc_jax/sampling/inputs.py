"""Reading a job's image and depth for the model (files, encoded bytes, dataset arrays)."""

from __future__ import annotations

import re

import ml_collections
import numpy as np
from PIL import Image

from paintproc_jax.data.examples import open_rgb
from paintproc_jax.depth import estimate_depth, get_estimator, normalize_depth
from paintproc_jax.errors import PaintprocError, one_line
from paintproc_jax.io.images import load_image, output_size, resize_unit, to_rgb_float
from paintproc_jax.sampling.jobs import Job

DEPTH_MODES = ("auto", "sidecar", "estimator")


class InputLoader:
    """Job -> (image [H, W, 3] in [0, 1], depth [H, W], depth source). Depth: "auto" = the item's
    depth / sidecar file when there is one, else the estimator of the checkpoint's data config;
    "sidecar" = the file or an error; "estimator" = always the estimator. Images are decoded at no
    more than `max_side` pixels (a JPEG at a reduced DCT scale)."""

    def __init__(self, config: ml_collections.ConfigDict, depth: str = "auto", *, far_is_high: bool = False,
                 depth_model: str | None = None):
        if depth not in DEPTH_MODES:
            raise PaintprocError(f"unknown depth mode {depth!r}; choose one of {', '.join(DEPTH_MODES)}")
        self.depth, self.far_is_high = depth, far_is_high
        self.size = int(config.data.size)
        self.max_side = 4 * self.size
        self._name = str(config.data.get("depth_estimator", "builtin"))
        self._kwargs = {"work_size": int(config.data.get("depth_work_size", 64))} if self._name == "builtin" else {}
        if self._name != "builtin" and config.data.get("depth_model"):
            self._kwargs = {"model_dir": str(config.data.depth_model)}
        if depth_model:  # a learned estimator given for this run (`--depth-model`) wins over the checkpoint's
            self._name, self._kwargs = "depth-anything", {"model_dir": str(depth_model)}
        self._estimator = None

    def estimator(self):
        if self._estimator is None:
            self._estimator = get_estimator(self._name, **self._kwargs)
        return self._estimator

    def image(self, item: dict) -> np.ndarray:
        if "path" in item:  # a file: load_image's checks and messages; decoded at <= max_side
            size = None
            try:
                with Image.open(item["path"]) as im:
                    size = self.max_side if max(im.size) > self.max_side else None
            except (OSError, ValueError, SyntaxError, TypeError, Image.DecompressionBombError):
                pass  # load_image reports it
            return load_image(item["path"], size)
        if "error" in item:
            raise PaintprocError(item["error"])
        try:
            if "bytes" in item:
                im = open_rgb(item["bytes"], self.size)
                rgb = np.asarray(im, np.float32) / 255.0
            else:
                arr = np.asarray(item["image"])
                if arr.ndim == 3 and arr.shape[-1] == 1:
                    arr = arr[..., 0]
                rgb = to_rgb_float(Image.fromarray(arr)) if arr.dtype != np.uint8 or arr.ndim != 3 else arr.astype(np.float32) / 255.0
        except (OSError, ValueError, SyntaxError, TypeError, Image.DecompressionBombError) as e:
            msg = re.sub(r"\s*<_io\.BytesIO object at 0x[0-9a-f]+>", "", one_line(e))
            raise PaintprocError(f"cannot decode the image ({msg})") from None
        if rgb.ndim != 3 or rgb.shape[-1] != 3:
            raise PaintprocError(f"expected an RGB image, got shape {rgb.shape}")
        if max(rgb.shape[:2]) > self.max_side:
            rgb = resize_unit(rgb, output_size(*rgb.shape[:2], self.max_side), Image.Resampling.LANCZOS)
        return rgb

    def __call__(self, job: Job) -> tuple[np.ndarray, np.ndarray, str]:
        item = job.read()
        image = self.image(item)
        if self.depth != "estimator":
            if "depth_path" in item:
                return image, estimate_depth(image, item["depth_path"], far_is_high=self.far_is_high), str(item["depth_path"])
            if item.get("depth") is not None:
                d = np.asarray(item["depth"], np.float32).squeeze()
                if d.ndim != 2 or not np.all(np.isfinite(d)):
                    raise PaintprocError(f"the depth feature must be a finite [H, W] map, got shape {d.shape}")
                return image, resize_unit(normalize_depth(d), image.shape[:2]), "dataset depth feature"
            if self.depth == "sidecar":
                raise PaintprocError("no depth sidecar (<stem>.depth.npy/png beside the image); use --depth auto to fall back to the estimator")
        return image, estimate_depth(image, estimator=self.estimator()), f"{self._name} estimator"
