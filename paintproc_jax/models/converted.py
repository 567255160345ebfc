"""Converted checkpoints: our folder format for weights converted from PyTorch / safetensors
(`tools/convert_weights.py`), read without torch.

    DIR/config.json         the original transformers config
    DIR/params.safetensors  the NNX parameters as flat 'a/b/c' float32 tensors
    DIR/paintproc.json      {"format": "paintproc-<model>", "version": 1}
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Mapping

import jax
import numpy as np
from flax import nnx
from safetensors.numpy import load_file, save_file

from paintproc_jax.errors import PaintprocError, one_line

FORMAT_VERSION = 1


def flatten_params(pure: Mapping) -> dict[str, np.ndarray]:
    """Nested pure dict -> {'a/b/c': float32 array}."""
    out = {}

    def walk(node, prefix):
        if isinstance(node, Mapping):
            for k, v in node.items():
                walk(v, f"{prefix}{k}/")
        else:
            out[prefix[:-1]] = np.ascontiguousarray(np.asarray(node, np.float32))

    walk(pure, "")
    return out


def unflatten_params(flat: Mapping[str, np.ndarray]) -> dict:
    """{'a/0/c': array} -> nested pure dict (all-digit parts become int keys, as nnx.List indices)."""
    out: dict = {}
    for key, value in flat.items():
        node = out
        parts = [int(p) if p.isdigit() else p for p in key.split("/")]
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    return out


def save_converted(model_or_params, hf_config: Mapping, out_dir, *, fmt: str) -> dict:
    """Write `out_dir/{config.json, params.safetensors, paintproc.json}`; returns {'params', 'bytes', 'tensors'}.

    `model_or_params` is an nnx.Module or its pure dict; `hf_config` the transformers config.json dict.
    """
    if isinstance(model_or_params, nnx.Module):
        pure = nnx.to_pure_dict(nnx.state(model_or_params, nnx.Param))
    else:
        pure = model_or_params
    flat = flatten_params(jax.tree.map(np.asarray, pure))
    out = pathlib.Path(out_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise PaintprocError(f"output {out} exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        save_file(flat, str(out / "params.safetensors"), metadata={"format": fmt})
        (out / "config.json").write_text(json.dumps(dict(hf_config), indent=2, sort_keys=True) + "\n")
        (out / "paintproc.json").write_text(json.dumps({"format": fmt, "version": FORMAT_VERSION}) + "\n")
    except OSError as e:
        raise PaintprocError(f"cannot write {out}: {one_line(e)}") from None
    return {"params": int(sum(v.size for v in flat.values())), "tensors": len(flat),
            "bytes": int(sum(v.nbytes for v in flat.values()))}


def read_json(file: pathlib.Path, what: str) -> dict:
    try:
        data = json.loads(file.read_text())
    except (OSError, ValueError) as e:
        raise PaintprocError(f"{what}: cannot parse {file}: {one_line(e)}") from None
    if not isinstance(data, dict):
        raise PaintprocError(f"{what}: {file} is not a JSON object")
    return data


def is_converted(path) -> bool:
    """True for a folder in our converted format (has paintproc.json)."""
    return (pathlib.Path(path).expanduser() / "paintproc.json").is_file()


def read_converted(path, fmt: str) -> tuple[dict, dict]:
    """(HF config dict, nested pure dict) of a converted folder written by `save_converted` with `fmt`."""
    folder = pathlib.Path(path).expanduser()
    marker = read_json(folder / "paintproc.json", "converted checkpoint")
    if marker.get("format") != fmt or marker.get("version") != FORMAT_VERSION:
        raise PaintprocError(f"{folder} holds format {marker.get('format')!r} version {marker.get('version')!r}; "
                             f"expected {fmt!r} version {FORMAT_VERSION}")
    cfg_file, params_file = folder / "config.json", folder / "params.safetensors"
    for f in (cfg_file, params_file):
        if not f.is_file():
            raise PaintprocError(f"converted checkpoint {folder}: missing {f.name}")
    cfg = read_json(cfg_file, "converted checkpoint")
    try:
        flat = load_file(str(params_file))
    except Exception as e:  # noqa: BLE001 - corrupt / truncated file
        raise PaintprocError(f"cannot read {params_file}: {one_line(e)}") from None
    return cfg, unflatten_params(flat)
