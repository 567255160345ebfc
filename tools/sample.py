"""Sample painting processes from a trained checkpoint for a folder of images or a TFDS split.

    python tools/sample.py --checkpoint runs/tiny --images photos/ --out samples/tiny
    python tools/sample.py --checkpoint runs/ap128 --images tfds:oxford_flowers102/test --limit 64 \\
        --sampler heun --steps 16 --guidance_ref 2.0 --out samples/ap128

Writes OUT/<name>/ per image (process.gif, process.mp4, frames/, contact_sheet.png, depth.png,
process.json) and OUT/index.json (one entry per image, rewritten atomically after each batch).
Running it again skips images whose folder already has a process.json (resumable). Each image's
noise comes from (seed, its name), so results do not depend on batch size or order. Every device
is used (a data mesh; batches padded to a multiple of the device count).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

PROG = "sample"


def build_parser() -> argparse.ArgumentParser:
    from paintproc_jax.cli import finite_number, frame_rate, whole_number
    from paintproc_jax.program import MEDIA
    from paintproc_jax.sampling import DEPTH_MODES, SAMPLER_NAMES

    positive, nonneg = whole_number(1), whole_number(0)
    p = argparse.ArgumentParser(prog=PROG, description="Sample painting processes from a trained checkpoint.")
    p.add_argument("--checkpoint", required=True, metavar="DIR", help="training workdir, its checkpoints/ folder, a step folder, an exported model folder, or 'bundled' (the shipped model)")
    p.add_argument("--images", required=True, metavar="FOLDER|tfds:NAME/SPLIT", help="images to paint (a folder is searched recursively)")
    p.add_argument("--tfds-data-dir", "--tfds_data_dir", dest="tfds_data_dir", default="", metavar="DIR",
                   help="TFDS data dir for tfds: sources (default: TFDS's own, e.g. $TFDS_DATA_DIR)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder: OUT/<name>/ per image and OUT/index.json")
    p.add_argument("--step", type=nonneg, help="checkpoint step (default: the latest)")
    p.add_argument("--seed", type=nonneg, default=0, help="noise seed; with an image's name it fixes its process (default: %(default)s)")
    p.add_argument("--medium", choices=MEDIA, help="painting medium (default: the checkpoint's first training medium)")
    p.add_argument("--sampler", choices=SAMPLER_NAMES, help="ODE sampler (default: the checkpoint's sample.sampler)")
    p.add_argument("--steps", type=positive, help="sampling steps (default: the checkpoint's sample.steps)")
    for name in ("ref", "depth", "medium"):
        p.add_argument(f"--guidance_{name}", f"--guidance-{name}", dest=f"guidance_{name}", type=finite_number, metavar="SCALE",
                       help=f"classifier-free guidance scale of the {name} condition (default: the checkpoint's sample.guidance.{name})")
    p.add_argument("--batch_size", "--batch-size", dest="batch_size", type=positive, default=8,
                   help="images per sampling call; padded to a multiple of the device count (default: %(default)s)")
    p.add_argument("--depth-model", "--depth_model", dest="depth_model", metavar="DIR",
                   help="Depth Anything checkpoint folder (tools/convert_weights.py output or a transformers folder) "
                        "used instead of the checkpoint's depth estimator")
    p.add_argument("--depth", choices=DEPTH_MODES, default="auto",
                   help="auto: a <stem>.depth.npy/png sidecar when present, else the estimator; sidecar: require it; "
                        "estimator: always estimate (default: %(default)s)")
    p.add_argument("--limit", type=positive, help="only the first N images (sorted order)")
    p.add_argument("--fps", type=frame_rate, default=12.0, help="video frame rate (default: %(default)s)")
    p.add_argument("--no_mp4", "--no-mp4", dest="no_mp4", action="store_true", help="skip process.mp4")
    p.add_argument("--quiet", action="store_true", help="no progress bar or per-batch lines")
    return p


def _read_index(path: pathlib.Path) -> dict[str, dict]:
    if not path.is_file():
        return {}
    try:
        entries = json.loads(path.read_text())
        return {e["name"]: e for e in entries if isinstance(e, dict) and "name" in e}
    except (OSError, ValueError, TypeError):
        print(f"{PROG}: warning: {path} is unreadable; rebuilding it", file=sys.stderr)
        return {}


def _write_index(path: pathlib.Path, index: dict[str, dict]) -> None:
    from paintproc_jax.io.atomic import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps([index[k] for k in sorted(index)], indent=1, default=str))


def _entry(name: str, meta: dict) -> dict:
    keys = ("source", "seed", "medium", "sampler", "steps", "guidance", "checkpoint", "step", "frames", "height", "width", "depth")
    return {"name": name, "dir": name, **{k: meta.get(k) for k in keys}}


def run(args) -> int:
    from tqdm.auto import tqdm

    from paintproc_jax import sampling
    from paintproc_jax.jax_cache import setup_jax
    from paintproc_jax.io.process_dir import PROCESS_JSON

    setup_jax()
    t_load = time.perf_counter()
    painter = sampling.load_painter(args.checkpoint, args.step)
    guidance = {k: getattr(args, f"guidance_{k}") for k in ("ref", "depth", "medium")}
    settings = painter.settings(medium=args.medium, sampler=args.sampler, steps=args.steps, guidance=guidance)
    if settings["medium"] not in painter.media:
        print(f"{PROG}: warning: the checkpoint was trained on {', '.join(painter.media)}; medium {settings['medium']!r} is new to it",
              file=sys.stderr)
    loader = sampling.InputLoader(painter.config, args.depth, depth_model=args.depth_model)
    jobs = sampling.jobs_from_source(args.images, tfds_data_dir=args.tfds_data_dir)
    if args.limit:
        jobs = jobs[: args.limit]
    out = pathlib.Path(args.out)
    index_path = out / "index.json"
    index = _read_index(index_path)
    todo, done = [], []
    for job in jobs:
        pj = out / job.name / PROCESS_JSON
        (done if pj.is_file() else todo).append((job, pj))
    for job, pj in done:  # already sampled: keep (or rebuild) its index entry
        if job.name not in index:
            try:
                index[job.name] = _entry(job.name, json.loads(pj.read_text()))
            except (OSError, ValueError):
                pass
    say = (lambda *a: None) if args.quiet else (lambda msg: print(msg, file=sys.stderr))
    say(f"{PROG}: checkpoint {painter.checkpoint} step {painter.step} ({painter.params_from} params, "
        f"{painter.size}px, {painter.frames + 1} frames), loaded in {time.perf_counter() - t_load:.1f}s; "
        f"{settings['sampler']} x {settings['steps']} steps, guidance {settings['guidance']}, medium {settings['medium']}")
    say(f"{PROG}: {len(jobs)} image(s): {len(done)} already done (skipped), {len(todo)} to sample on "
        f"{painter.num_devices} device(s), batch {args.batch_size}")
    if args.batch_size % painter.num_devices and not args.quiet:
        say(f"{PROG}: note: --batch_size {args.batch_size} is padded to a multiple of the {painter.num_devices} devices")
    failed = []
    bar = tqdm(total=len(todo), desc="sample", unit="img", disable=args.quiet or not todo, file=sys.stderr)

    def on_error(job, err):
        tqdm.write(f"{PROG}: warning: skipping {job.source}: {err}", file=sys.stderr)
        failed.append(job)
        bar.update(1)

    t0, count = time.perf_counter(), 0
    try:
        for results in sampling.paint_jobs(painter, [j for j, _ in todo], seed=args.seed, batch_size=args.batch_size,
                                           loader=loader, settings=settings, on_error=on_error):
            for r in results:
                sampling.write_result(out / r.job.name, r, fps=args.fps, mp4=not args.no_mp4)
                meta = json.loads((out / r.job.name / PROCESS_JSON).read_text())
                index[r.job.name] = _entry(r.job.name, meta)
            _write_index(index_path, index)
            count += len(results)
            bar.update(len(results))
    finally:
        bar.close()
    if index:  # also when nothing was new (entries of finished folders rebuilt)
        _write_index(index_path, index)
    elapsed = time.perf_counter() - t0
    rate = f" ({elapsed / count:.2f}s per image incl. compile)" if count else ""
    print(f"{PROG}: sampled {count} image(s) in {elapsed:.1f}s{rate}, skipped {len(done)} already done"
          + (f", {len(failed)} unreadable" if failed else "") + f" -> {out}/")
    return 1 if failed else 0


def main(argv=None) -> int:
    from paintproc_jax.errors import PaintprocError

    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except PaintprocError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted (finished images are kept; run again to resume)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
