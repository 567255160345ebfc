"""Convert a transformers checkpoint folder into paintproc's Flax format.

    python tools/convert_weights.py --model depth-anything-v2 --src Depth-Anything-V2-Small-hf --out ckpt/da2-small
    python tools/convert_weights.py --model dinov2 --src dinov2-small --out ckpt/dinov2-small
    python tools/convert_weights.py --model clip --src clip-vit-base-patch32 --out ckpt/clip-b32

`--src`: a folder with config.json + model.safetensors (or pytorch_model.bin, which needs torch).
`--out` gets config.json (copied), params.safetensors (flat `a/b/c` keys of the NNX parameters,
float32) and paintproc.json ({"format", "version"}). Names and shapes are checked against the
config first; errors are one line, exit status 2. `load_depth_anything(out)` reads the result.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from paintproc_jax.errors import PaintprocError  # noqa: E402

MODELS = ("depth-anything-v2", "depth-anything", "dinov2", "clip")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, choices=MODELS,
                   help="architecture of --src (depth-anything covers V1 and V2: same architecture)")
    p.add_argument("--src", required=True, help="transformers checkpoint folder (config.json + weights)")
    p.add_argument("--out", required=True, help="output folder (created; an existing converted folder is replaced)")
    return p


def _read_config(src: pathlib.Path) -> dict:
    if not src.exists():
        raise PaintprocError(f"--src {src} does not exist")
    if not src.is_dir():
        raise PaintprocError(f"--src {src} is not a folder (expected config.json + model.safetensors)")
    cfg_file = src / "config.json"
    if not cfg_file.is_file():
        raise PaintprocError(f"--src {src} has no config.json")
    from paintproc_jax.models.converted import read_json

    return read_json(cfg_file, f"--src {src}")


def _check_out(src: pathlib.Path, out: pathlib.Path) -> None:
    if out.exists() and not out.is_dir():
        raise PaintprocError(f"--out {out} exists and is not a folder")
    if out.resolve() == src.resolve():
        raise PaintprocError("--out must differ from --src")
    if out.is_dir() and any(out.iterdir()) and not (out / "paintproc.json").is_file():
        raise PaintprocError(f"--out {out} is a non-empty folder that is not a converted checkpoint; choose another")


def convert(model: str, src, out) -> dict:
    """Convert `src` to `out`; returns {'format', 'params', 'tensors', 'bytes'}."""
    from flax import nnx

    from paintproc_jax.models import depth_anything as da
    from paintproc_jax.models.converted import save_converted
    from paintproc_jax.models.vit import build_module, read_checkpoint

    src, out = pathlib.Path(src).expanduser(), pathlib.Path(out).expanduser()
    cfg = _read_config(src)
    _check_out(src, out)
    mt = cfg.get("model_type")
    if model in ("depth-anything-v2", "depth-anything"):
        config = da.config_from_hf(cfg)  # architecture checked before the weights are read
        _, sd = read_checkpoint(src, "Depth Anything")
        pure, fmt = da.depth_anything_params_from_torch(sd, config), da.FORMAT
        da.build_depth_anything(config, pure)  # every shape checked against the module
    elif model == "dinov2":
        from paintproc_jax.models import dinov2

        if mt != "dinov2":
            raise PaintprocError(f"--src {src} is not a DINOv2 checkpoint (model_type {mt!r}, expected 'dinov2')")
        config = dinov2.config_from_hf(cfg)
        _, sd = read_checkpoint(src, "DINOv2")
        pure, fmt = dinov2.dinov2_params_from_torch(sd, config), dinov2.FORMAT
        build_module(lambda: dinov2.Dinov2(config, rngs=nnx.Rngs(0)), pure, "DINOv2")
    else:
        from paintproc_jax.models import clip_vision

        if mt not in ("clip", "clip_vision_model"):
            raise PaintprocError(f"--src {src} is not a CLIP checkpoint (model_type {mt!r}, expected 'clip' or "
                                 "'clip_vision_model')")
        config = clip_vision.config_from_hf(cfg)
        _, sd = read_checkpoint(src, "CLIP vision")
        pure, fmt = clip_vision.clip_vision_params_from_torch(sd, config), clip_vision.FORMAT
        build_module(lambda: clip_vision.ClipVision(config, rngs=nnx.Rngs(0)), pure, "CLIP vision")
    info = save_converted(pure, cfg, out, fmt=fmt)
    return {"format": fmt, **info}


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        info = convert(args.model, args.src, args.out)
    except PaintprocError as e:
        print(f"convert_weights: error: {e}", file=sys.stderr)
        return 2
    out = pathlib.Path(args.out)
    size = (out / "params.safetensors").stat().st_size
    print(f"wrote {out}/config.json, params.safetensors, paintproc.json: format={info['format']} "
          f"params={info['params']:,} ({info['params'] / 1e6:.1f}M) tensors={info['tensors']} "
          f"float32={info['bytes'] / 2**20:.1f} MiB file={size / 2**20:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
