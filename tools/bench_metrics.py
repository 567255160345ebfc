"""Benchmark of the evaluation metrics: LPIPS throughput and the cost of scoring one process.

    python tools/bench_metrics.py [--size 256] [--frames 48] [--batch 32] [--net alex]

Measures (after compiling): LPIPS pairs per second at `--size` in batches of `--batch`; one
process of `--frames` frames scored whole (PDP, layering / refinement, temporal, final fidelity),
and the split of that time. The last line is `key=value` pairs with the headline figures.
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


def _best(fn, repeat: int) -> float:
    fn()  # compile / warm up
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--frames", type=int, default=48)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--net", choices=("alex", "vgg"), default="alex")
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args(argv)

    import jax
    from skimage import data

    from paintproc_jax.depth import estimate_depth
    from paintproc_jax.io import resize_image
    from paintproc_jax.metrics import baselines, process_scores
    from paintproc_jax.metrics.evaluate import Scorer
    from paintproc_jax.metrics.lpips import LPIPS
    from paintproc_jax.metrics.pdp import pdp_values

    image = np.clip(resize_image(data.astronaut().astype(np.float32) / 255.0, (args.size, args.size)), 0, 1)
    depth = estimate_depth(image)
    frames = baselines.raster(image, args.frames)
    lpips = LPIPS(args.net, chunk=args.batch)
    x = np.broadcast_to(frames[: args.batch], (args.batch,) + image.shape) if args.frames >= args.batch else np.stack([image] * args.batch)

    t0 = time.perf_counter()
    lpips(x, x)
    compile_s = time.perf_counter() - t0
    lp = _best(lambda: lpips(x, x), args.repeat)
    pdp_s = _best(lambda: pdp_values(frames, lpips), args.repeat)
    order_s = _best(lambda: process_scores.order_scores(frames, image, depth), args.repeat)
    scorer = Scorer(distance=lpips)
    total_s = _best(lambda: scorer.score(frames, image, depth), args.repeat)
    fields = dict(
        device=jax.devices()[0].platform, net=args.net, size=args.size, frames=args.frames,
        lpips_pairs_per_s=round(args.batch / lp, 1), lpips_compile_s=round(compile_s, 2), pdp_s=round(pdp_s, 3),
        order_scores_s=round(order_s, 3), process_score_s=round(total_s, 3),
    )
    print(" ".join(f"{k}={v}" for k, v in fields.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
