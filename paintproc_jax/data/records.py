"""One record of a program dataset: (image, depth, fitted program) as bytes, and back (lossless).

A record is an uncompressed `.npz` archive: the image as PNG (uint8), the depth as 16-bit PNG,
the program's arrays as they are (float32 params bit-exact), and a few scalars. NumPy + Pillow
only, so grain workers decode records.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from paintproc_jax.program import StrokeProgram, make_program

_PROGRAM_KEYS = ("params", "layer", "level", "valid", "medium", "canvas_hw", "background")


def _png(arr: np.ndarray) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", compress_level=1)
    return np.frombuffer(buf.getvalue(), np.uint8)


def _unpng(data: np.ndarray) -> np.ndarray:
    with Image.open(io.BytesIO(data.tobytes())) as im:
        return np.asarray(im)


def encode_record(key: str, image: np.ndarray, depth: np.ndarray, program: StrokeProgram, fit_mse: float = float("nan")) -> bytes:
    """image uint8 [H, W, 3], depth [H, W] in [0, 1] (quantised to 16 bits), program -> bytes."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"record image must be uint8 [H, W, 3], got {image.dtype} {image.shape}")
    depth16 = np.round(np.clip(np.asarray(depth, np.float64), 0.0, 1.0) * 65535).astype(np.uint16)
    arrays = {k: np.asarray(getattr(program, k)) for k in _PROGRAM_KEYS}
    buf = io.BytesIO()
    np.savez(buf, key=np.array(key), image=_png(image), depth=_png(depth16), fit_mse=np.float32(fit_mse), **arrays)
    return buf.getvalue()


def decode_record(data: bytes) -> dict:
    """bytes -> {key, image uint8 [H, W, 3], depth float32 [H, W], program, fit_mse}."""
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        program = make_program(**{k: z[k] for k in _PROGRAM_KEYS if k != "medium"}, medium=int(z["medium"]))
        return {
            "key": str(z["key"]),
            "image": _unpng(z["image"]),
            "depth": _unpng(z["depth"]).astype(np.float32) / 65535.0,
            "program": program,
            "fit_mse": float(z["fit_mse"]),
        }
