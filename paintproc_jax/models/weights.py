"""Exported models: a DiT's parameters as bf16 safetensors + the run's config, loadable without orbax.

    DIR/model.safetensors   parameters, keys "path/to/param" (nnx pure-dict paths joined by "/"), bf16
    DIR/config.json         {"config": the training config, "weights_sha256": ..., "source": {...}}

`export_model` writes one from a training checkpoint's EMA parameters (`tools/export_model.py`);
`load_exported` reads it back for sampling (`paintproc_jax.sampling.load_painter`). The package
ships one (`BUNDLED`, the CPU reference run of README "A model trained on this CPU"). The SHA-256 in
config.json is checked on load, so a damaged file is reported as such instead of sampling noise.
"""

from __future__ import annotations

import hashlib
import json
import pathlib

import ml_dtypes
import numpy as np
from safetensors.numpy import load_file, save_file

from paintproc_jax.errors import PaintprocError, one_line

BUNDLED = pathlib.Path(__file__).resolve().parents[1] / "assets" / "model"
WEIGHTS, CONFIG = "model.safetensors", "config.json"
FORMAT = "paintproc-model/1"


def is_exported(path) -> bool:
    """True for a folder holding an exported model (model.safetensors + config.json)."""
    path = pathlib.Path(path)
    return (path / WEIGHTS).is_file() and (path / CONFIG).is_file()


def flatten(tree: dict, prefix: str = "") -> dict[str, np.ndarray]:
    """Nested dict of arrays -> {"a/b/c": array}."""
    out = {}
    for k, v in tree.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "/"))
        else:
            out[key] = np.asarray(v)
    return out


def unflatten_like(flat: dict[str, np.ndarray], target: dict, prefix: str = "") -> dict:
    """{"a/b/c": array} -> a dict shaped like `target` (its keys may be ints, as nnx pure dicts' are);
    ValueError naming the first missing key or wrong shape."""
    out = {}
    for k, v in target.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out[k] = unflatten_like(flat, v, key + "/")
            continue
        if key not in flat:
            raise ValueError(f"no parameter {key!r}")
        if tuple(flat[key].shape) != tuple(v.shape):
            raise ValueError(f"parameter {key!r} has shape {tuple(flat[key].shape)}, the model wants {tuple(v.shape)}")
        out[k] = flat[key].astype(v.dtype)
    return out


def _sha256(path: pathlib.Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def export_model(params: dict, config: dict, out, *, source: dict | None = None, dtype: str = "bfloat16") -> pathlib.Path:
    """Writes `params` (an nnx pure dict of the model's Params) as `dtype` safetensors and `config`
    (a plain dict) to folder `out`; returns the weights file."""
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    np_dtype = ml_dtypes.bfloat16 if dtype == "bfloat16" else np.dtype(dtype)
    flat = {k: np.ascontiguousarray(v.astype(np_dtype)) for k, v in flatten(params).items()}
    weights = out / WEIGHTS
    save_file(flat, str(weights), metadata={"format": FORMAT})
    weights.chmod(0o644)  # safetensors writes 0600; a shipped file is read by every user
    meta = {"format": FORMAT, "config": config, "weights_sha256": _sha256(weights), "dtype": dtype,
            "params": int(sum(v.size for v in flat.values())), "source": source or {}}
    (out / CONFIG).write_text(json.dumps(meta, indent=1, default=str))
    return weights


def read_exported(path) -> tuple[dict, dict[str, np.ndarray]]:
    """(metadata of config.json, flat parameters) of an exported model folder; PaintprocError for a
    missing, damaged or foreign file."""
    path = pathlib.Path(path)
    what = "the shipped model" if path.resolve() == BUNDLED.resolve() else f"exported model {path}"
    if not is_exported(path):
        raise PaintprocError(f"{what} is missing ({WEIGHTS} and {CONFIG} expected in {path})")
    try:
        meta = json.loads((path / CONFIG).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise PaintprocError(f"{what} is corrupted: cannot read {CONFIG} ({one_line(e)})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or not isinstance(meta.get("config"), dict):
        raise PaintprocError(f"{what}: {CONFIG} is not a paintproc model description (format {FORMAT!r} expected)")
    weights = path / WEIGHTS
    if meta.get("weights_sha256") and _sha256(weights) != meta["weights_sha256"]:
        raise PaintprocError(f"{what} is corrupted: {weights} does not match the checksum in {CONFIG} "
                             "(reinstall the package, or export the model again)")
    try:
        flat = load_file(str(weights))
    except Exception as e:  # noqa: BLE001 - safetensors raises its own error types for bad headers
        raise PaintprocError(f"{what} is corrupted: cannot read {weights} ({one_line(e)[:200]})") from None
    return meta, flat
