"""Image files in and out: any Pillow-readable image to float RGB, PNG out (atomic).

Images inside the project are `[H, W, 3] float32` in `[0, 1]`. Loading is forgiving about
formats (EXIF rotation, grayscale, 16-bit, alpha, palette, CMYK) and strict about broken
files: every problem becomes a one-line `PaintprocError` that names the file.
"""

from __future__ import annotations

import os
import pathlib
from collections import defaultdict

import numpy as np
from PIL import Image, ImageOps

from paintproc_jax.errors import PaintprocError, one_line
from paintproc_jax.io.atomic import atomic_path
from paintproc_jax.program import canvas_hw_for, pixel_size

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"})

# Pillow warns above MAX_IMAGE_PIXELS and refuses above twice that; we refuse above it ourselves.
MAX_PIXELS = 400_000_000
Image.MAX_IMAGE_PIXELS = MAX_PIXELS


def _check_file(path: pathlib.Path, what: str = "image") -> None:
    """One-line errors for the usual path problems, before any decoder sees the file."""
    if not path.exists():
        raise PaintprocError(f"{what} {path} does not exist")
    if path.is_dir():
        raise PaintprocError(f"{what} {path} is a directory, not a file")
    if path.stat().st_size == 0:
        raise PaintprocError(f"{what} {path} is empty (0 bytes)")


def output_size(height: int, width: int, size: int) -> tuple[int, int]:
    """(h, w) with the longer side exactly `size`, aspect kept (same rounding as the canvas)."""
    return pixel_size(canvas_hw_for(height, width), size)


def to_rgb_float(img: Image.Image) -> np.ndarray:
    """Any Pillow mode -> [H, W, 3] float32 in [0, 1]; alpha is composited over white."""
    if img.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        gray = np.asarray(img).astype(np.float32)  # [H, W]
        # 'I;16*' are 16-bit by definition; plain 'I' may hold 8- or 16-bit data.
        scale = 65535.0 if img.mode != "I" or gray.max(initial=0) > 255 else 255.0
        gray = np.clip(gray / scale, 0.0, 1.0)
        return np.repeat(gray[..., None], 3, axis=-1)
    if img.mode == "F":
        gray = np.clip(np.nan_to_num(np.asarray(img, np.float32)), 0.0, 1.0)  # [H, W]
        return np.repeat(gray[..., None], 3, axis=-1)
    if img.has_transparency_data:  # RGBA, LA, PA, P/L/RGB with a tRNS colour
        rgba = np.asarray(img.convert("RGBA"), np.float32) / 255.0  # [H, W, 4]
        alpha = rgba[..., 3:]
        return rgba[..., :3] * alpha + (1.0 - alpha)
    return np.asarray(img.convert("RGB"), np.float32) / 255.0  # 1, L, P, CMYK, YCbCr, RGB


def resize_image(img: np.ndarray, hw, resample=Image.Resampling.LANCZOS) -> np.ndarray:
    """Resize of [H, W, C] (or [H, W]) float to [h, w, C] in float, one channel at a time.

    Working on Pillow 'F' images keeps full precision (16-bit sources survive). Lanczos (the
    default) can overshoot slightly; callers that need [0, 1] clip.
    """
    img = np.asarray(img, np.float32)
    h, w = int(hw[0]), int(hw[1])
    if img.shape[:2] == (h, w):
        return img.copy()
    channels = img[..., None] if img.ndim == 2 else img  # [H, W, C]
    out = np.stack(
        [
            np.asarray(Image.fromarray(np.ascontiguousarray(channels[..., c])).resize((w, h), resample))
            for c in range(channels.shape[-1])
        ],
        axis=-1,
    )  # [h, w, C]
    return out[..., 0] if img.ndim == 2 else out


def resize_unit(x: np.ndarray, hw, resample=Image.Resampling.BILINEAR) -> np.ndarray:
    """`resize_image` of an image or map in [0, 1], clipped back to [0, 1] (bilinear by default)."""
    return np.clip(resize_image(np.asarray(x, np.float32), hw, resample), 0.0, 1.0)


def output_names(paths, root: pathlib.Path) -> dict[pathlib.Path, str]:
    """Output names per image: the stem, or (when stems collide) the relative path with its
    extension, e.g. `a/pic.png` -> `a__pic_png`, so no two images share an output."""
    counts = defaultdict(int)
    for p in paths:
        counts[p.stem] += 1
    out = {}
    for p in paths:
        if counts[p.stem] == 1 or not root.is_dir():
            out[p] = p.stem
        else:
            rel = p.relative_to(root)
            out[p] = str(rel.with_suffix("")).replace(os.sep, "__") + "_" + rel.suffix.lstrip(".").lower()
    return out


def load_image(path, size: int | None = None) -> np.ndarray:
    """Reads any Pillow-readable image as [H, W, 3] float32 in [0, 1].

    EXIF orientation is applied and the file is fully decoded here, so truncated files fail
    now rather than later. With `size`, the longer side becomes exactly `size` pixels
    (Lanczos, up or down, aspect kept).
    """
    path = pathlib.Path(path)
    if size is not None and int(size) < 1:
        raise PaintprocError(f"image size must be a positive number of pixels, got {size}")
    _check_file(path)
    try:
        with Image.open(path) as img:
            width, height = img.size
            if width * height > MAX_PIXELS:
                raise PaintprocError(
                    f"image {path} is too large: {width}x{height} pixels (limit {MAX_PIXELS // 1_000_000} megapixels)"
                )
            if size is not None and img.format == "JPEG" and max(width, height) >= 2 * size:
                th, tw = output_size(height, width, size)
                img.draft("RGB" if img.mode == "RGB" else None, (tw, th))  # decode at 1/2..1/8 scale
            img.load()
            rgb = to_rgb_float(ImageOps.exif_transpose(img))  # [H, W, 3]
    except PaintprocError:
        raise
    except (OSError, ValueError, SyntaxError, TypeError, Image.DecompressionBombError) as e:
        # UnidentifiedImageError is an OSError; truncated data raises OSError on load().
        raise PaintprocError(f"cannot read image {path}: {one_line(e)}") from None
    if size is not None:
        rgb = np.clip(resize_image(rgb, output_size(*rgb.shape[:2], int(size))), 0.0, 1.0)
    return np.ascontiguousarray(rgb, np.float32)


def list_images(path) -> list[pathlib.Path]:
    """A file -> [file] (load_image judges it); a directory -> its images, recursive, sorted.

    Hidden files and directories (names starting with '.') are skipped in directories.
    """
    path = pathlib.Path(path)
    if not path.exists():
        raise PaintprocError(f"{path} does not exist")
    if not path.is_dir():
        return [path]
    found = []
    for root, dirs, files in os.walk(path):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found += [
            pathlib.Path(root, f)
            for f in files
            if not f.startswith(".") and pathlib.Path(f).suffix.lower() in IMAGE_EXTENSIONS
        ]
    if not found:
        raise PaintprocError(f"no images found in {path} (looked for {', '.join(sorted(IMAGE_EXTENSIONS))})")
    return sorted(found)


def to_uint8(img) -> np.ndarray:
    """Float in [0, 1] -> uint8 (rounded, clipped; NaN -> 0). uint8 input is returned as is."""
    img = np.asarray(img)
    if img.dtype == np.uint8:
        return img
    return np.clip(np.round(np.nan_to_num(img.astype(np.float32)) * 255.0), 0, 255).astype(np.uint8)


def save_png(path, img) -> pathlib.Path:
    """Writes [H, W, 3] / [H, W] / [H, W, 1] float or uint8 as a PNG, atomically."""
    arr = to_uint8(img)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] not in (3, 4)):
        raise ValueError(f"save_png wants [H, W], [H, W, 3] or [H, W, 4], got {arr.shape}")
    path = pathlib.Path(path)
    with atomic_path(path) as tmp:
        Image.fromarray(np.ascontiguousarray(arr)).save(tmp, format="PNG")
    return path
