"""Benchmark of the Depth Anything model: images per second at a square input size.

    python tools/bench_depth.py [--size 518] [--batch 1] [--model_dir ckpt/da2-small] [--repeat 3]

Without --model_dir it builds the Depth-Anything-V2-Small architecture (SMALL_CONFIG below, the
Hub's `depth-anything/Depth-Anything-V2-Small-hf` config.json) with random weights: the speed is
the same as with the real weights. Times the jitted model alone (preprocessing excluded) on JAX's
default device, after compiling; the last line is `key=value` pairs.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from paintproc_jax.errors import PaintprocError  # noqa: E402

# depth-anything/Depth-Anything-V2-Small-hf config.json (the fields that define the model)
SMALL_CONFIG = {
    "architectures": ["DepthAnythingForDepthEstimation"],
    "model_type": "depth_anything",
    "backbone": None,
    "backbone_config": {
        "architectures": ["Dinov2Model"],
        "hidden_size": 384,
        "image_size": 518,
        "model_type": "dinov2",
        "num_attention_heads": 6,
        "out_features": ["stage3", "stage6", "stage9", "stage12"],
        "out_indices": [3, 6, 9, 12],
        "reshape_hidden_states": False,
        "torch_dtype": "float32",
    },
    "depth_estimation_type": "relative",
    "fusion_hidden_size": 64,
    "head_hidden_size": 32,
    "head_in_index": -1,
    "initializer_range": 0.02,
    "neck_hidden_sizes": [48, 96, 192, 384],
    "patch_size": 14,
    "reassemble_factors": [4, 2, 1, 0.5],
    "reassemble_hidden_size": 384,
    "torch_dtype": "float32",
    "use_pretrained_backbone": False,
}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=518, help="square input side (a multiple of 14)")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--model_dir", help="converted or transformers Depth Anything folder (default: random Small)")
    p.add_argument("--repeat", type=int, default=3, help="timed calls after compiling (the best is reported)")
    args = p.parse_args(argv)
    try:
        if args.size < 14 or args.size % 14 or args.batch < 1 or args.repeat < 1:
            raise PaintprocError("--size must be a positive multiple of 14, --batch and --repeat >= 1")
        import jax
        from flax import nnx

        from paintproc_jax.models import depth_anything as da

        if args.model_dir:
            model, name = da.load_depth_anything(args.model_dir), pathlib.Path(args.model_dir).name
        else:
            model, name = da.build_depth_anything(da.config_from_hf(SMALL_CONFIG)), "v2-small-random"
    except PaintprocError as e:
        print(f"bench_depth: error: {e}", file=sys.stderr)
        return 2
    graphdef, state = nnx.split(model)
    n_params = sum(x.size for x in jax.tree.leaves(state))
    fn = jax.jit(lambda s, x: nnx.merge(graphdef, s)(x))
    x = jax.device_put(np.random.default_rng(0).standard_normal((args.batch, args.size, args.size, 3)).astype(np.float32))
    t0 = time.perf_counter()
    compiled = fn.lower(state, x).compile()
    compile_s = time.perf_counter() - t0
    compiled(state, x).block_until_ready()  # warm up
    times = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        compiled(state, x).block_until_ready()
        times.append(time.perf_counter() - t)
    best = min(times)
    dev = jax.devices()[0]
    device = f"{dev.platform}:{getattr(dev, 'device_kind', '?')}".replace(" ", "_")
    print(f"params={n_params / 1e6:.1f}M times_s={[round(t, 3) for t in times]}")
    print(f"device={device} model={name} size={args.size} batch={args.batch} images_per_s={args.batch / best:.3f} "
          f"compile_s={compile_s:.1f} ms_per_image={1000 * best / args.batch:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
