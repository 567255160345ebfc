"""Export a training run's EMA parameters as a small, orbax-free model folder (bf16 safetensors + config.json).

    python tools/export_model.py runs/cpu --out paintproc_jax/assets/model     # the shipped model
    python tools/export_model.py runs/ap128 --step 200000 --out models/ap128 --dtype float32

The folder loads with `paintproc paint --checkpoint DIR`, `tools/sample.py --checkpoint DIR` and
`paintproc_jax.sampling.load_painter(DIR)`; the one in paintproc_jax/assets/model is `--checkpoint bundled`.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    from paintproc_jax.errors import PaintprocError

    p = argparse.ArgumentParser(prog="tools/export_model.py", description=__doc__.split("\n\n")[0])
    p.add_argument("run", help="training workdir, its checkpoints/ folder or a step folder")
    p.add_argument("--step", type=int, help="checkpoint step (default: the latest)")
    p.add_argument("--out", required=True, help="model folder to write")
    p.add_argument("--dtype", choices=("bfloat16", "float32"), default="bfloat16", help="stored precision (default: %(default)s)")
    args = p.parse_args(argv)
    try:
        from flax import nnx

        from paintproc_jax.models.weights import export_model
        from paintproc_jax.sampling import load_painter

        painter = load_painter(args.run, args.step)
        source = {"run": painter.checkpoint, "step": painter.step, "params": painter.params_from}
        path = export_model(nnx.to_pure_dict(painter.params), painter.config.to_dict(), args.out, source=source, dtype=args.dtype)
    except PaintprocError as e:
        print(f"export_model: error: {e}", file=sys.stderr)
        return 2
    print(f"{args.run} step {painter.step} ({painter.params_from} params) -> {path} ({path.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
