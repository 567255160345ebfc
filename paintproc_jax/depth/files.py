"""Depth maps from files: `.npy`, 8/16-bit PNG, float TIFF, any Pillow image; sidecar lookup.

A file's values are taken as "larger = nearer" (disparity / inverse depth, what Depth Anything and
MiDaS write) unless `far_is_high` (metric depth or distance, larger = farther). The map may have any
resolution with the image's aspect ratio; it is resized (bilinear, in float) and normalized to the
protocol: `[H, W]` float32 in [0, 1], 1 = nearest.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from paintproc_jax.depth.base import normalize_depth, validate_depth
from paintproc_jax.errors import PaintprocError, one_line
from paintproc_jax.io.images import resize_image

ASPECT_TOLERANCE = 0.02  # relative difference of width/height ratios accepted before resizing
# Looked up next to `<dir>/<stem>.<ext>`, in this order.
SIDECAR_SUFFIXES = (".depth.npy", ".depth.png", "_depth.npy", "_depth.png")


def _read_npy(path: Path) -> np.ndarray:
    try:
        arr = np.load(path, allow_pickle=False)
    except Exception as e:  # ValueError (bad header, pickled objects), OSError, EOFError ...
        raise PaintprocError(f"cannot read depth file {path}: not a valid .npy file ({one_line(e)})") from e
    if not isinstance(arr, np.ndarray):  # .npz archives load as NpzFile
        raise PaintprocError(f"cannot read depth file {path}: expected a single array in a .npy file")
    return arr


def _read_image(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as im:
            im.seek(0)  # first frame of multi-page TIFFs
            im.load()
            mode = im.mode
            if mode in ("L", "I", "F") or mode.startswith("I;16"):
                arr = np.array(im)  # uint8 / int32 / float32 / uint16
            elif mode == "1":
                arr = np.array(im, dtype=np.uint8)
            elif mode in ("LA", "La"):
                arr = np.array(im.getchannel(0))
            elif mode in ("RGB", "RGBA", "RGBX", "RGBa"):
                arr = np.array(im)[..., :3].astype(np.float64).mean(axis=-1)
            else:  # P, CMYK, YCbCr, LAB, HSV ...: go through RGB
                arr = np.array(im.convert("RGB")).astype(np.float64).mean(axis=-1)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise PaintprocError(f"cannot read depth file {path}: not a readable image ({one_line(e)})") from e
    return arr


def load_depth_file(path: str | os.PathLike, hw: tuple[int, int], *, far_is_high: bool = False) -> np.ndarray:
    """Read a depth map for an image of size `hw` -> `[H, W]` float32 in [0, 1], 1 = nearest.

    Accepts `.npy` (`[h, w]` or `[h, w, 1]`) and Pillow images (8/16-bit PNG, float TIFF; RGB is
    averaged). Any resolution with the image's aspect ratio (within 2 %, or within a pixel for tiny
    images) is resized to `hw`. Every problem (missing, unreadable, not 2-D, NaN/inf, constant,
    aspect ratio unlike the image's) is a one-line PaintprocError naming the file.
    """
    path = Path(path)
    H, W = int(hw[0]), int(hw[1])
    if H < 1 or W < 1:
        raise PaintprocError(f"depth file {path}: target size must be positive, got {H}x{W}")
    if not path.exists():
        raise PaintprocError(f"depth file not found: {path}")
    if not path.is_file():
        raise PaintprocError(f"cannot read depth file {path}: not a regular file")

    arr = _read_npy(path) if path.suffix.lower() == ".npy" else _read_image(path)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim != 2:
        raise PaintprocError(
            f"depth file {path}: expected a 2-D depth map ([H, W] or [H, W, 1]), got shape {tuple(arr.shape)}"
        )
    arr = validate_depth(arr, f"depth file {path}")  # 2-D, numeric, finite, not constant
    d = arr.astype(np.float64)

    h, w = d.shape
    if (h, w) != (H, W):
        rel = abs((w / h) / (W / H) - 1.0)
        # Tiny images have coarse aspect ratios: also accept a map that, scaled to the image's
        # height (or width), lands within a pixel of its width (or height).
        within_a_pixel = abs(w * H / h - W) <= 1.0 or abs(h * W / w - H) <= 1.0
        if rel > ASPECT_TOLERANCE and not within_a_pixel:
            raise PaintprocError(
                f"depth file {path}: wrong shape {h}x{w} (aspect {w / h:.4g}) for an image of {H}x{W} "
                f"(aspect {W / H:.4g}); the aspect ratios must match within {ASPECT_TOLERANCE:.0%}"
            )
    lo, hi = d.min(), d.max()
    d = (d - lo) / (hi - lo)  # [h, w] in [0, 1]; normalize before float32 to keep 16/32-bit precision
    if (h, w) != (H, W):
        # Re-stretch (resampling shrinks the range a little); a map shrunk to ~1 pixel becomes 0.5.
        d = normalize_depth(resize_image(d, (H, W), Image.Resampling.BILINEAR)).astype(np.float64)
    if far_is_high:
        d = 1.0 - d
    return np.clip(d, 0.0, 1.0).astype(np.float32)


def sidecar_depth_path(image_path: str | os.PathLike) -> Path | None:
    """The depth file stored beside an image, if any: `<stem>.depth.npy`, `<stem>.depth.png`,
    `<stem>_depth.npy` or `<stem>_depth.png` in the image's folder (first found wins)."""
    p = Path(image_path)
    for suffix in SIDECAR_SUFFIXES:
        cand = p.with_name(p.stem + suffix)
        if cand.is_file() and cand != p:
            return cand
    return None
