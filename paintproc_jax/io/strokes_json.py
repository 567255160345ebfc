"""Lossless JSON for `StrokeProgram` (format "paintproc.strokes", version 1).

Layout (one stroke per line, so files diff and skim well):

    {
      "format": "paintproc.strokes",
      "version": 1,
      "param_names": ["x", "y", ...],
      "canvas_hw": [h, w],
      "background": [r, g, b],
      "medium": "oil",
      "frame_ends": [...],
      "strokes": [
        [x, y, length, width, angle, bend, r, g, b, opacity, seed],
        ...
      ],
      "layer": [...], "level": [...], "valid": [true, ...],
      "meta": {...}
    }

float32 values round-trip bit-exactly: each is written as the shortest decimal that reads
back (via a Python float) to the same float32, or as the full double repr if that fails.
"""

from __future__ import annotations

import json
import pathlib

import numpy as np

from paintproc_jax.errors import PaintprocError, one_line
from paintproc_jax.io.atomic import atomic_path
from paintproc_jax.program import MEDIA, NUM_PARAMS, PARAM_NAMES, StrokeProgram, make_program

FORMAT = "paintproc.strokes"
VERSION = 1
_REQUIRED = ("format", "version", "param_names", "canvas_hw", "background", "medium", "frame_ends", "strokes",
             "layer", "level", "valid")


def _floats(x) -> list[float]:
    """float32 array -> Python floats (exact: every float32 is a double)."""
    return [float(v) for v in np.asarray(x, np.float32).ravel()]


def program_to_dict(program: StrokeProgram, meta: dict | None = None) -> dict:
    """JSON-ready dict of one (unbatched) program; `meta` is any JSON-serialisable dict."""
    params = np.asarray(program.params, np.float32)
    if params.ndim != 2:
        raise ValueError(f"save one program at a time: params are {params.shape}, expected [N, {NUM_PARAMS}]")
    return {
        "format": FORMAT,
        "version": VERSION,
        "param_names": list(PARAM_NAMES),
        "canvas_hw": _floats(program.canvas_hw),
        "background": _floats(program.background),
        "medium": MEDIA[int(program.medium)],
        "frame_ends": [int(v) for v in np.asarray(program.frame_ends)],
        "strokes": [_floats(row) for row in params],
        "layer": [int(v) for v in np.asarray(program.layer)],
        "level": [int(v) for v in np.asarray(program.level)],
        "valid": [bool(v) for v in np.asarray(program.valid)],
        "meta": dict(meta or {}),
    }


def _array(d: dict, key: str, shape: tuple, kind: str, source: str) -> np.ndarray:
    """Checks that d[key] is numbers (kind 'f': int or float, 'i': int, 'b': bool) of `shape`."""
    try:
        arr = np.asarray(d[key])
    except ValueError:  # ragged nested lists
        raise PaintprocError(f"{source}: '{key}' must be an array of shape {list(shape)}") from None
    if arr.size == 0 and len(shape) == 2:
        arr = arr.reshape(0, shape[1])
    allowed = {"f": "iuf", "i": "iu", "b": "b"}[kind]
    if arr.size and arr.dtype.kind not in allowed:
        what = {"f": "numbers", "i": "integers", "b": "true/false values"}[kind]
        raise PaintprocError(f"{source}: '{key}' must contain only {what}")
    if arr.shape != shape:
        raise PaintprocError(f"{source}: '{key}' has shape {list(arr.shape)}, expected {list(shape)}")
    if kind == "i" and arr.size and (arr.min() < -(2**31) or arr.max() >= 2**31):
        raise PaintprocError(f"{source}: '{key}' has integers outside the int32 range")
    return arr


def _float32(d: dict, key: str, shape: tuple, source: str) -> np.ndarray:
    """d[key] as float32 of `shape`; NaN/Infinity or values beyond float32's range are errors."""
    arr = _array(d, key, shape, "f", source).astype(np.float64)
    if not np.all(np.abs(arr) <= np.finfo(np.float32).max):  # also False for NaN
        raise PaintprocError(f"{source}: '{key}' contains non-finite numbers (NaN, Infinity or beyond float32)")
    return arr.astype(np.float32)


def program_from_dict(d, source: str = "strokes file") -> tuple[StrokeProgram, dict]:
    """Inverse of `program_to_dict`, with one-line `PaintprocError`s naming `source`."""
    if not isinstance(d, dict):
        raise PaintprocError(f"{source}: expected a JSON object at the top level")
    if d.get("format") != FORMAT:
        got = d.get("format")
        raise PaintprocError(f"{source} is not a paintproc strokes file (format={got!r}, expected {FORMAT!r})")
    if d.get("version") != VERSION:
        raise PaintprocError(f"{source}: unsupported version {d.get('version')!r} (this reader knows {VERSION})")
    missing = [k for k in _REQUIRED if k not in d]
    if missing:
        raise PaintprocError(f"{source}: missing key(s) {', '.join(missing)}")
    if d["param_names"] != list(PARAM_NAMES):
        raise PaintprocError(f"{source}: param_names {d['param_names']} do not match {list(PARAM_NAMES)}")
    if d["medium"] not in MEDIA:
        raise PaintprocError(f"{source}: unknown medium {d['medium']!r} (choose one of {', '.join(MEDIA)})")
    if not isinstance(d.get("strokes"), list):
        raise PaintprocError(f"{source}: 'strokes' must be a list of rows")
    n = len(d["strokes"])
    params = _float32(d, "strokes", (n, NUM_PARAMS), source)
    canvas_hw = _float32(d, "canvas_hw", (2,), source)
    background = _float32(d, "background", (3,), source)
    if np.any(canvas_hw <= 0):
        raise PaintprocError(f"{source}: 'canvas_hw' must be positive, got {canvas_hw.tolist()}")
    frame_ends = d["frame_ends"]
    if not isinstance(frame_ends, list):
        raise PaintprocError(f"{source}: 'frame_ends' must be a list of stroke counts")
    meta = d.get("meta", {})
    if not isinstance(meta, dict):
        raise PaintprocError(f"{source}: 'meta' must be a JSON object")
    try:
        program = make_program(
            params,
            layer=_array(d, "layer", (n,), "i", source),
            level=_array(d, "level", (n,), "i", source),
            valid=_array(d, "valid", (n,), "b", source),
            frame_ends=_array(d, "frame_ends", (len(frame_ends),), "i", source),
            medium=d["medium"],
            canvas_hw=canvas_hw,
            background=background,
        )
    except ValueError as e:  # e.g. frame_ends decreasing or beyond N
        raise PaintprocError(f"{source}: {one_line(e)}") from None
    return program, meta


def _f32_text(values: np.ndarray) -> list[str]:
    """Shortest decimal text per float32 that reads back exactly; full double repr otherwise."""
    values = np.asarray(values, np.float32)
    out = []
    for v in values:
        text = repr(float(str(v)))  # str(np.float32) is numpy's shortest unique float32 repr
        if np.float32(float(text)).tobytes() != v.tobytes():
            text = repr(float(v))
        out.append(text)
    return out


def _json_default(obj):
    """Lets meta hold NumPy scalars/arrays and paths."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, pathlib.PurePath):
        return str(obj)
    raise TypeError(f"meta value of type {type(obj).__name__} is not JSON serialisable")


def program_to_json(program: StrokeProgram, meta: dict | None = None) -> str:
    """The file text: indented, one stroke per line."""
    d = program_to_dict(program, meta)
    params = np.asarray(program.params, np.float32)
    if not np.all(np.isfinite(params)):
        raise ValueError("cannot write a strokes file: the program has non-finite parameters")
    rows = ["[" + ", ".join(_f32_text(row)) + "]" for row in params]
    parts = []
    for key, value in d.items():
        if key == "strokes":
            text = "[\n    " + ",\n    ".join(rows) + "\n  ]" if rows else "[]"
        elif key == "meta":
            text = json.dumps(value, indent=2, default=_json_default, allow_nan=False).replace("\n", "\n  ")
        else:
            text = json.dumps(value, allow_nan=False)
        parts.append(f"  {json.dumps(key)}: {text}")
    return "{\n" + ",\n".join(parts) + "\n}\n"


def save_program(path, program: StrokeProgram, meta: dict | None = None) -> pathlib.Path:
    """Writes a strokes JSON file atomically."""
    path = pathlib.Path(path)
    text = program_to_json(program, meta)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def _no_constants(name: str):
    raise ValueError(f"non-finite number {name} is not allowed")


def load_program(path) -> tuple[StrokeProgram, dict]:
    """Reads a strokes JSON file -> (program, meta); one-line `PaintprocError` on any problem."""
    path = pathlib.Path(path)
    if not path.exists():
        raise PaintprocError(f"strokes file {path} does not exist")
    if path.is_dir():
        raise PaintprocError(f"strokes file {path} is a directory, not a file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise PaintprocError(f"cannot read strokes file {path}: {one_line(e)}") from None
    try:
        d = json.loads(text, parse_constant=_no_constants)
    except ValueError as e:  # JSONDecodeError is a ValueError
        raise PaintprocError(f"strokes file {path} is not valid JSON: {one_line(e)}") from None
    return program_from_dict(d, source=f"strokes file {path}")
