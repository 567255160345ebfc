"""Build a program dataset: plan + fit stroke programs over an image collection, as ArrayRecord shards.

    python tools/make_dataset.py --images DIR|tfds:NAME/SPLIT --out DIR [--size 128] [--strokes 256]
        [--fit-steps 60] [--order layer-major] [--medium oil] [--shard-size 256]
        [--split I --num-splits K]

Each record holds (image, depth, fitted program, medium) — see `paintproc_jax/data/records.py`.
Programs are planned in slot mode and fitted without growing, so every stroke stays inside the
static render layout the training pipeline uses for them (`data.source = "programs:DIR"`).

- Resumable: shards are written under a temporary name and renamed when complete; a rerun of
  the same command skips finished shards.
- Splittable: `--split I --num-splits K` takes items I, I+K, I+2K, ... so K processes or machines
  build disjoint parts into the same folder (a shared file system), each with its own shards.
- Manifest: `DIR/manifest.json` (rewritten after each shard) lists shards, counts, skipped items
  (unreadable images are skipped, counted and named, never fatal), the config and versions.
"""

from __future__ import annotations

import argparse
import datetime
import json
import pathlib
import platform
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

SPLITS_DIR = "splits"


def _parse(argv):
    from paintproc_jax.program import MEDIA
    from paintproc_jax.strokes.plan import ORDER_POLICIES

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", required=True, help="folder of images or tfds:NAME/SPLIT")
    ap.add_argument("--out", required=True, help="dataset folder (created; reruns resume)")
    ap.add_argument("--size", type=int, default=128, help="square crop side in pixels")
    ap.add_argument("--strokes", type=int, default=256)
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--levels", type=int, default=4)
    ap.add_argument("--order", choices=sorted(ORDER_POLICIES), default="layer-major")
    ap.add_argument("--medium", choices=MEDIA, default="oil")
    ap.add_argument("--fit-steps", type=int, default=60, help="0 = plan only")
    ap.add_argument("--batch", type=int, default=8, help="images fitted together")
    ap.add_argument("--shard-size", type=int, default=256, help="records per shard")
    ap.add_argument("--split", type=int, default=0)
    ap.add_argument("--num-splits", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--depth-work-size", type=int, default=128, help="the builtin estimator's internal resolution")
    ap.add_argument("--depth-model", default="", metavar="DIR",
                    help="Depth Anything checkpoint folder (tools/convert_weights.py output or a transformers folder): "
                         "depth for images without a sidecar/feature comes from it, batched and jitted on the accelerator")
    ap.add_argument("--tfds-data-dir", default="")
    ap.add_argument("--limit", type=int, default=0, help="use only the first N items of the source (0 = all)")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    args = ap.parse_args(argv)
    if not 0 <= args.split < args.num_splits:
        ap.error(f"--split must be in [0, --num-splits) = [0, {args.num_splits})")
    for name in ("size", "strokes", "layers", "levels", "batch", "shard_size"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be positive")
    if args.fit_steps < 0:
        ap.error("--fit-steps must be >= 0")
    return args


def _data_config(args):
    """The pipeline's example maker does decoding/depth the same way training does."""
    from paintproc_jax.data.config import default_config

    c = default_config()
    c.source, c.size, c.strokes, c.layers, c.levels = args.images, args.size, args.strokes, args.layers, args.levels
    c.crop_scale, c.flip, c.depth_work_size, c.tfds_data_dir = (1.0, 1.0), False, args.depth_work_size, args.tfds_data_dir
    c.orders, c.media = (args.order,), (args.medium,)
    if args.depth_model:
        c.depth_estimator, c.depth_model, c.workers = "depth-anything", args.depth_model, 0
    return c


def _plan_config(args):
    from paintproc_jax.strokes.plan import PlanConfig

    return PlanConfig(strokes=args.strokes, layers=args.layers, levels=args.levels, order=args.order, medium=args.medium, slots=True)


def _versions() -> dict:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("paintproc-jax", "jax", "numpy", "grain", "array-record"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


def _write_json(path: pathlib.Path, obj) -> None:
    from paintproc_jax.io.atomic import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True))


def _build_shard(indices, source, maker, args, plan_cfg, progress) -> tuple[list[bytes], list[dict]]:
    """Records for `indices` (in order) and the skipped items."""
    import numpy as np

    from paintproc_jax.data.examples import BadItem
    from paintproc_jax.data.records import encode_record
    from paintproc_jax.program import stack, unstack
    from paintproc_jax.strokes import fit as fit_lib
    from paintproc_jax.strokes import plan as plan_lib

    records, skipped = [], []
    learned = bool(args.depth_model)
    fit_cfg = fit_lib.FitConfig(steps=args.fit_steps, grow=1.0)
    hw = (args.size, args.size)
    for lo in range(0, len(indices), args.batch):
        chunk, images, depths, seeds, keys = indices[lo : lo + args.batch], [], [], [], []
        for i in chunk:
            item = source[int(i)]
            rng = np.random.default_rng([args.seed, int(i)])
            try:
                image, depth = maker.load(item, rng, estimate=not learned)
            except BadItem as e:
                skipped.append({"index": int(i), "key": item.get("key", str(i)), "reason": str(e)})
                continue
            images.append(image)
            depths.append(depth)
            keys.append(item["key"])
            seeds.append(int(rng.integers(2**31)))
        if learned:  # one batched, jitted call for the chunk's images without a given depth
            todo = [j for j, d in enumerate(depths) if d is None]
            if todo:
                for j, d in zip(todo, maker.get_estimator().batch([images[j].astype(np.float32) / 255.0 for j in todo])):
                    depths[j] = np.asarray(d, np.float32)
        programs = [plan_lib.plan_strokes(im / 255.0, d, plan_cfg, seed=s) for im, d, s in zip(images, depths, seeds)]
        mse = np.full(len(programs), np.nan)
        if programs and args.fit_steps > 0:
            fitted, mse = fit_lib.fit_programs(stack(programs), np.stack(images).astype(np.float32) / 255.0, fit_cfg)
            programs = [plan_lib.clamp_to_slots(p, plan_cfg, hw) for p in unstack(fitted)]
        for key, image, depth, program, m in zip(keys, images, depths, programs, mse):
            records.append(encode_record(key, image, depth, program, float(m)))
        progress(len(chunk))
    return records, skipped


def _write_shard(path: pathlib.Path, records: list[bytes]) -> None:
    from array_record.python.array_record_module import ArrayRecordWriter

    tmp = path.with_name(path.name + ".tmp")
    writer = ArrayRecordWriter(str(tmp), "group_size:1")
    for r in records:
        writer.write(r)
    writer.close()
    tmp.replace(path)  # atomic: a shard under its final name is complete


def _merge_manifest(out: pathlib.Path, header: dict) -> dict:
    """manifest.json from every split's progress file present (any machine's)."""
    splits = [json.loads(p.read_text()) for p in sorted((out / SPLITS_DIR).glob("split-*.json"))]
    shards = [s for sp in splits for s in sp["shards"]]
    done = {sp["split"] for sp in splits if sp["complete"]}
    manifest = dict(header)
    manifest.update(
        shards=shards,
        records=sum(s["records"] for s in shards),
        skipped=sum(s["skipped"] for s in shards),
        skipped_items=[x for sp in splits for x in sp["skipped_items"]][:200],
        splits_complete=sorted(done),
        complete=len(done) == header["num_splits"],
        updated=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    )
    _write_json(out / "manifest.json", manifest)
    return manifest


def main(argv=None) -> int:
    args = _parse(argv)
    from tqdm import tqdm

    from paintproc_jax.data.examples import ExampleMaker
    from paintproc_jax.data.sources import ProgramSource, open_source
    from paintproc_jax.errors import PaintprocError

    out = pathlib.Path(args.out)
    try:
        source = open_source(args.images, tfds_data_dir=args.tfds_data_dir)
        if isinstance(source, ProgramSource):
            raise PaintprocError("--images must be images (a folder or tfds:NAME/SPLIT), not a program dataset")
    except PaintprocError as e:
        print(f"make_dataset: error: {e}", file=sys.stderr)
        return 2
    maker = ExampleMaker(source, _data_config(args), local_batch=1)
    if args.depth_model:
        try:
            maker.get_estimator()  # load the checkpoint now: a bad folder fails before any work
        except PaintprocError as e:
            print(f"make_dataset: error: {e}", file=sys.stderr)
            return 2
    plan_cfg = _plan_config(args)
    total = min(len(source), args.limit) if args.limit else len(source)
    mine = list(range(args.split, total, args.num_splits))
    shards = [mine[i : i + args.shard_size] for i in range(0, len(mine), args.shard_size)]
    header = {
        "format": "paintproc_jax program dataset v1",
        "source": args.images,
        "items": total,
        "num_splits": args.num_splits,
        "size": args.size,
        "plan": {"strokes": args.strokes, "layers": args.layers, "levels": args.levels, "order": args.order,
                 "medium": args.medium, "slots": True, "size_scale": 1.0},
        "fit": {"steps": args.fit_steps, "grow": 1.0},
        "seed": args.seed,
        "depth": {"estimator": "depth-anything", "model": str(args.depth_model)} if args.depth_model
        else {"estimator": "builtin", "work_size": args.depth_work_size},
        "versions": _versions(),
    }
    (out / SPLITS_DIR).mkdir(parents=True, exist_ok=True)
    progress_file = out / SPLITS_DIR / f"split-{args.split:05d}-of-{args.num_splits:05d}.json"
    state = json.loads(progress_file.read_text()) if progress_file.exists() else None
    if state is not None and state.get("header", {}).get("plan") != header["plan"]:
        print(f"make_dataset: error: {out} was built with another plan config; use a new --out", file=sys.stderr)
        return 2
    state = state or {"split": args.split, "header": header, "shards": [], "skipped_items": [], "complete": False}
    finished = {s["file"] for s in state["shards"]}
    todo = sum(len(s) for j, s in enumerate(shards) if _shard_name(args, j) not in finished)
    bar = tqdm(total=todo, unit="img", desc=f"split {args.split}/{args.num_splits}", disable=args.quiet)
    t0 = time.perf_counter()
    for j, indices in enumerate(shards):
        name = _shard_name(args, j)
        if name in finished and (out / name).exists():
            continue
        records, skipped = _build_shard(indices, source, maker, args, plan_cfg, bar.update)
        _write_shard(out / name, records)
        state["shards"] = [s for s in state["shards"] if s["file"] != name]
        state["shards"].append({"file": name, "records": len(records), "skipped": len(skipped)})
        state["skipped_items"] += skipped
        _write_json(progress_file, state)
        _merge_manifest(out, header)
    bar.close()
    state["complete"] = True
    _write_json(progress_file, state)
    manifest = _merge_manifest(out, header)
    mine_records = sum(s["records"] for s in state["shards"])
    mine_skipped = sum(s["skipped"] for s in state["shards"])
    print(f"split {args.split}/{args.num_splits}: {mine_records} records in {len(state['shards'])} shards, "
          f"{mine_skipped} unreadable items skipped, {time.perf_counter() - t0:.1f} s; "
          f"dataset {out}: {manifest['records']} records, complete={manifest['complete']}")
    for x in state["skipped_items"][:10]:
        print(f"  skipped {x['key']}: {x['reason']}")
    return 0


def _shard_name(args, j: int) -> str:
    return f"shard-{args.split:05d}-of-{args.num_splits:05d}-{j:05d}.array_record"


if __name__ == "__main__":
    sys.exit(main())
