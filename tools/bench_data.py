"""Benchmark of the training-data pipeline: rendered reverse-painting clips per second.

    python tools/bench_data.py --images DIR --size 128 --frames 16 [--workers 1,2] [--batch 16]

1. Per-stage costs, one example at a time in this process (ms per example): decode (read, JPEG
   draft decode, crop, resize, flip), depth (built-in estimator at `depth_work_size`), plan
   (slot-mode stroke plan + frame schedule), render (jitted batch render, per clip).
2. End to end: the grain pipeline with N worker processes planning while this process renders
   each batch (what a training host does, minus the model), for each worker count. The timed
   batches start once the workers' read-ahead buffers have drained (steady state: a rate read
   from full buffers measures the start-up, not the pipeline).
Ends with one line of key=value pairs; `clips_per_s` is the best end-to-end figure.
`--make-samples N` first fills DIR with N JPEGs made from scikit-image's bundled photos.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))


def _parse(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", required=True, help="folder of images (or folder:/tfds:/programs: source)")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--strokes", type=int, default=256)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--workers", default="1,2", help="comma-separated worker counts to measure end to end")
    ap.add_argument("--batches", type=int, default=30, help="timed batches per worker count (after the buffers drain)")
    ap.add_argument("--stage-items", type=int, default=24, help="examples timed per stage")
    ap.add_argument("--media", default="oil", help="comma-separated process media")
    ap.add_argument("--make-samples", type=int, default=0, metavar="N", help="first write N sample JPEGs into --images")
    return ap.parse_args(argv)


def _config(args):
    from paintproc_jax.data.config import default_config

    c = default_config()
    c.source, c.size, c.frames, c.strokes, c.batch_size = args.images, args.size, args.frames, args.strokes, args.batch
    c.media = tuple(args.media.split(","))
    return c


def stages(args) -> dict[str, float]:
    """Per-example cost of each stage, in ms, in this process."""
    import jax
    import numpy as np

    from paintproc_jax.data import pipeline as pipeline_lib
    from paintproc_jax.data.examples import plan_config, visible_frame_ends
    from paintproc_jax.program import MEDIA
    from paintproc_jax.depth import estimate_depth
    from paintproc_jax.strokes import plan as plan_lib

    c = _config(args)
    c.workers = 0
    pipe = pipeline_lib.make_pipeline(c)
    maker, source = pipe.maker, pipe.source
    n = min(args.stage_items, len(source))
    t = {"decode": 0.0, "depth": 0.0, "plan": 0.0}
    for i in range(n):
        rng = np.random.default_rng(i)
        t0 = time.perf_counter()
        image, _ = _load_without_depth(maker, source[i], rng)  # read + decode + crop + resize + flip
        t1 = time.perf_counter()
        depth = estimate_depth(image, estimator=maker.get_estimator())
        t2 = time.perf_counter()
        cfg = plan_config(c, c.orders[0], MEDIA[0], rng.uniform(*c.stroke_scale), rng.uniform(*c.fill))
        program = plan_lib.plan_strokes(image.astype(np.float32) / 255.0, depth, cfg, seed=i)
        visible_frame_ends(program.valid, maker.strokes_frames, rng, c.frame_jitter)
        t3 = time.perf_counter()
        t["decode"] += t1 - t0
        t["depth"] += t2 - t1
        t["plan"] += t3 - t2
    out = {k: 1e3 * v / n for k, v in t.items()}
    # Render: a whole batch through the jitted renderer, per clip.
    batch = pipe.to_device(next(pipe))
    jax.block_until_ready(pipe.render(batch))  # compile
    reps = 3
    t0 = time.perf_counter()
    for _ in range(reps):
        jax.block_until_ready(pipe.render(batch))
    out["render"] = 1e3 * (time.perf_counter() - t0) / (reps * c.batch_size)
    pipe.close()
    return out


def _load_without_depth(maker, item, rng):
    """`ExampleMaker.load` minus the depth estimate (timed on its own)."""
    item = dict(item)
    item.pop("depth_path", None)
    saved = maker.get_estimator
    maker.get_estimator = lambda: _NoDepth()
    try:
        return maker.load(item, rng)
    finally:
        maker.get_estimator = saved


class _NoDepth:
    name = "none"

    def __call__(self, image):
        import numpy as np

        return np.full(image.shape[:2], 0.5, np.float32)


def end_to_end(args, workers: int) -> float:
    """Rendered clips per second with `workers` grain processes (this process renders)."""
    import jax

    from paintproc_jax.data import pipeline as pipeline_lib

    c = _config(args)
    c.workers = workers
    pipe = pipeline_lib.make_pipeline(c)
    jax.block_until_ready(pipe.next_clips())  # compile + worker start-up (the workers fill their buffers)
    for _ in range(workers * c.worker_buffer + 2):  # drain what was read ahead meanwhile: steady state
        jax.block_until_ready(pipe.next_clips())
    t0 = time.perf_counter()
    pending = None
    for _ in range(args.batches):
        out = pipe.render(pipe.to_device(next(pipe)))  # dispatch is async: the next batch loads meanwhile
        if pending is not None:
            jax.block_until_ready(pending)
        pending = out
    jax.block_until_ready(pending)
    rate = args.batches * c.batch_size / (time.perf_counter() - t0)
    pipe.close()
    return rate


def _image_sizes(images: str) -> str:
    """' (N images, W x H to W x H px)' for a plain folder of images, else ''."""
    from PIL import Image

    path = pathlib.Path(images)
    if not path.is_dir():
        return ""
    sizes = []
    for f in sorted(path.iterdir()):
        try:
            with Image.open(f) as im:
                sizes.append(im.size)
        except OSError:
            continue
    if not sizes:
        return ""
    lo, hi = min(sizes, key=lambda s: s[0] * s[1]), max(sizes, key=lambda s: s[0] * s[1])
    return f" ({len(sizes)} images, {lo[0]}x{lo[1]} to {hi[0]}x{hi[1]} px)"


def main(argv=None):
    args = _parse(argv)
    if args.make_samples:
        from paintproc_jax.data.samples import write_sample_folder

        write_sample_folder(args.images, args.make_samples)
    print(f"== data pipeline: {args.images}{_image_sizes(args.images)}, {args.size}x{args.size}, {args.frames} frames, "
          f"{args.strokes} stroke slots, batch {args.batch}, {os.cpu_count()} CPUs")
    st = stages(args)
    host = st["decode"] + st["depth"] + st["plan"]
    print("per example (ms): " + ", ".join(f"{k} {v:.2f}" for k, v in st.items()) + f"; host total {host:.2f}")
    rates = {}
    for w in [int(x) for x in args.workers.split(",") if x.strip()]:
        rates[w] = end_to_end(args, w)
        print(f"end to end, {w} worker(s): {rates[w]:.1f} clips/s")
    best = max(rates.values()) if rates else float("nan")
    fields = {"clips_per_s": f"{best:.1f}", "size": args.size, "frames": args.frames, "strokes": args.strokes,
              "batch": args.batch}
    fields |= {f"{k}_ms": f"{v:.2f}" for k, v in st.items()}
    fields |= {f"clips_per_s_w{w}": f"{r:.1f}" for w, r in rates.items()}
    print(" ".join(f"{k}={v}" for k, v in fields.items()))


if __name__ == "__main__":
    main()
