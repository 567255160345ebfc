"""`paintproc` command line: paint, fit and render with the stroke engine.

Every user-input problem ends in one line `paintproc: error: ...` and exit status 2 (never a
traceback); outputs are staged and renamed into place, so an interrupted run leaves no
half-written file under a final name.
"""

from __future__ import annotations

import argparse
import math
import os
import pathlib
import sys
import time
from collections import defaultdict

import numpy as np

from paintproc_jax.errors import PaintprocError
from paintproc_jax.program import MEDIA
from paintproc_jax.strokes.plan import ORDER_POLICIES

LIMITS = {"strokes": (1, 100_000), "size": (16, 4096), "frames": (3, 2000), "fit_steps": (0, 100_000), "seed": (0, 2**63 - 1)}


def _bounded(name: str):
    lo, hi = LIMITS[name]

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"must be between {lo} and {hi}, got {value}")
        return value

    return parse


def _fps(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (math.isfinite(value) and 0 < value <= 120):
        raise argparse.ArgumentTypeError(f"must be a frame rate in (0, 120], got {text}")
    return value


def _add_engine_args(p: argparse.ArgumentParser, *, strokes_default: int | None, size_default: int | None):
    p.add_argument("input", metavar="IMAGE|DIR", help="an image file, or a folder of images (recursive)")
    p.add_argument("--strokes", type=_bounded("strokes"), default=strokes_default, required=strokes_default is None,
                   help="stroke budget per image (default: %(default)s)")
    p.add_argument("--size", type=_bounded("size"), default=size_default, required=size_default is None,
                   help="longer side in pixels; aspect ratio kept (default: %(default)s)")
    p.add_argument("--medium", choices=MEDIA, default="oil", help="brush family (default: %(default)s)")
    p.add_argument("--order", choices=tuple(ORDER_POLICIES), default="layer-major",
                   help="painting order: layer-major = far to near, coarse to fine within a layer; "
                        "level-major = coarse to fine, far to near within a level (default: %(default)s)")
    p.add_argument("--seed", type=_bounded("seed"), default=0, help="random seed; a given seed gives identical outputs")
    p.add_argument("--fit-steps", type=_bounded("fit_steps"), default=100,
                   help="optimisation steps of the stroke fit (0 = plan only) (default: %(default)s)")
    p.add_argument("--layers", type=int, default=3, help="depth layers (default: %(default)s)")
    p.add_argument("--levels", type=int, default=4, help="refinement levels (default: %(default)s)")
    p.add_argument("--depth", metavar="FILE", help="depth map for the image (.npy, 8/16-bit PNG); 1 = nearest")
    p.add_argument("--depth-far-is-high", action="store_true",
                   help="the depth file holds distances (larger = farther) rather than nearness")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="paintproc", description="Turn any image into a video of it being painted.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("paint", help="the whole painting process: video, PNG frames, strokes JSON/SVG, contact sheet")
    _add_engine_args(p, strokes_default=1000, size_default=384)
    p.add_argument("--frames", type=_bounded("frames"), default=48, help="frames in the video (default: %(default)s)")
    p.add_argument("--fps", type=_fps, default=12.0, help="video frame rate (default: %(default)s)")
    p.add_argument("--no-mp4", action="store_true", help="skip the MP4 even when imageio-ffmpeg is installed")

    p = sub.add_parser("fit", help="fit strokes only; writes <image stem>.json per image (a folder is one batch)")
    _add_engine_args(p, strokes_default=None, size_default=None)
    p.add_argument("--batch", type=int, default=8, help="images fitted together (default: %(default)s)")

    p = sub.add_parser("render", help="final composite of a strokes JSON (no reveal stage), at any resolution")
    p.add_argument("strokes_json", metavar="STROKES.json")
    p.add_argument("--size", type=_bounded("size"), required=True, help="longer side in pixels")
    p.add_argument("--out", required=True, metavar="FILE.png")
    p.add_argument("--softness", type=float, default=0.0, help="edge softness in pixels (0 = hard, the default)")
    return parser


# ---------------------------------------------------------------------------------------------


def _setup_jax():
    """Persistent compilation cache: the second run of a command skips most compile time."""
    import jax

    cache = pathlib.Path(os.environ.get("PAINTPROC_CACHE", pathlib.Path.home() / ".cache" / "paintproc_jax")) / "jax"
    jax.config.update("jax_compilation_cache_dir", str(cache))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)


def _engine_config(args):
    from paintproc_jax.strokes.engine import EngineConfig
    from paintproc_jax.strokes.fit import FitConfig
    from paintproc_jax.strokes.plan import PlanConfig

    if not 1 <= args.layers <= 16 or not 1 <= args.levels <= 8:
        raise PaintprocError("--layers must be in 1..16 and --levels in 1..8")
    plan = PlanConfig(strokes=args.strokes, layers=args.layers, levels=args.levels, order=args.order, medium=args.medium)
    return EngineConfig(plan=plan, fit=FitConfig(steps=args.fit_steps))


def _progress_bar(total: int, desc: str, quiet: bool):
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=desc, unit="step", disable=quiet or total == 0, leave=False, file=sys.stderr)

    def update(i: int, loss: float):
        bar.update(1)
        if loss == loss:  # not NaN
            bar.set_postfix(psnr=f"{-10 * np.log10(max(loss, 1e-10)):.1f}dB")
        if i + 1 >= total:
            bar.close()

    return update


def _depth_for(args, image_path: pathlib.Path, image: np.ndarray) -> tuple[np.ndarray, str]:
    from paintproc_jax.depth import estimate_depth, sidecar_depth_path

    if args.depth:
        return estimate_depth(image, args.depth, far_is_high=args.depth_far_is_high), str(args.depth)
    sidecar = sidecar_depth_path(image_path)
    if sidecar is not None:
        return estimate_depth(image, sidecar, far_is_high=args.depth_far_is_high), str(sidecar)
    return estimate_depth(image), "builtin estimator"


def _load_all(args, paths):
    """Loads images (+ depth); in a folder, bad files are skipped with a warning and counted."""
    from paintproc_jax.io import load_image

    single = not pathlib.Path(args.input).is_dir()
    if args.depth and not single:
        raise PaintprocError("--depth names one file; for a folder put <stem>.depth.npy/png beside each image")
    loaded, failed = [], []
    for path in paths:
        try:
            image = load_image(path, args.size)
            depth, source = _depth_for(args, path, image)
            loaded.append((path, image, depth, source))
        except PaintprocError as err:
            if single:
                raise
            print(f"paintproc: warning: skipping {path}: {err}", file=sys.stderr)
            failed.append(path)
    if not loaded:
        raise PaintprocError(f"no usable images in {args.input}")
    return loaded, failed


def _stems(paths: list[pathlib.Path], root: pathlib.Path) -> dict[pathlib.Path, str]:
    """Output names per image: the stem, or (when stems collide) the relative path with its
    extension, e.g. `a/pic.png` -> `a__pic_png`, so no two images share an output."""
    counts = defaultdict(int)
    for p in paths:
        counts[p.stem] += 1
    out = {}
    for p in paths:
        if counts[p.stem] == 1 or not root.is_dir():
            out[p] = p.stem
        else:
            rel = p.relative_to(root)
            out[p] = str(rel.with_suffix("")).replace(os.sep, "__") + "_" + rel.suffix.lstrip(".").lower()
    return out


def cmd_paint(args) -> int:
    from paintproc_jax.io import list_images, save_program, save_svg
    from paintproc_jax.io.process_dir import write_process_dir
    from paintproc_jax.strokes.engine import paint

    config = _engine_config(args)
    paths = list_images(args.input)
    loaded, failed = _load_all(args, paths)
    out_root = pathlib.Path(args.out)
    names = _stems([p for p, *_ in loaded], pathlib.Path(args.input))
    single = not pathlib.Path(args.input).is_dir()
    for path, image, depth, source in loaded:
        t0 = time.perf_counter()
        progress = _progress_bar(config.fit.steps, f"fit {path.name}", args.quiet)
        frames, program, mse = paint(image, depth, args.frames, config, seed=args.seed, progress=progress)
        target = out_root if single else out_root / names[path]
        meta = {
            "source": str(path), "size": args.size, "seed": args.seed, "order": args.order, "medium": args.medium,
            "strokes": args.strokes, "fit_steps": args.fit_steps, "depth": source, "frames": args.frames,
            "fit_psnr_db": None if mse != mse else round(float(-10 * np.log10(max(mse, 1e-10))), 3),
        }

        def strokes_files(tmp):
            save_program(tmp / "strokes.json", program, meta)
            save_svg(tmp / "strokes.svg", program)
            return ["strokes.json", "strokes.svg"]

        written = write_process_dir(target, frames, {"engine": "strokes", **meta}, depth=depth, fps=args.fps,
                                    mp4=not args.no_mp4, extra=strokes_files)
        elapsed = time.perf_counter() - t0
        psnr = f", strokes fit {meta['fit_psnr_db']:.2f} dB" if meta["fit_psnr_db"] is not None else ""
        print(f"{path} -> {target}/: {', '.join(written)} [{elapsed:.1f}s{psnr}]")
    return _summary(len(loaded), failed)


def cmd_fit(args) -> int:
    from paintproc_jax.io import save_program
    from paintproc_jax.strokes.engine import decompose

    config = _engine_config(args)
    from paintproc_jax.io import list_images

    paths = list_images(args.input)
    loaded, failed = _load_all(args, paths)
    names = _stems([p for p, *_ in loaded], pathlib.Path(args.input))
    groups = defaultdict(list)  # images of one pixel size fit as one batch (one compile)
    for item in loaded:
        groups[item[1].shape].append(item)
    out_root = pathlib.Path(args.out)
    batch = max(1, args.batch)
    for shape, items in groups.items():
        for start in range(0, len(items), batch):
            chunk = items[start : start + batch]
            t0 = time.perf_counter()
            progress = _progress_bar(config.fit.steps, f"fit {len(chunk)} image(s) {shape[1]}x{shape[0]}", args.quiet)
            programs, mse = decompose([c[1] for c in chunk], [c[2] for c in chunk], config, seed=args.seed, progress=progress)
            elapsed = time.perf_counter() - t0
            for (path, _, _, source), program, err in zip(chunk, programs, mse):
                psnr = None if err != err else round(float(-10 * np.log10(max(err, 1e-10))), 3)
                meta = {"source": str(path), "size": args.size, "seed": args.seed, "order": args.order,
                        "medium": args.medium, "strokes": args.strokes, "fit_steps": args.fit_steps,
                        "depth": source, "fit_psnr_db": psnr, "fit_seconds_batch": round(elapsed, 3)}
                dest = save_program(out_root / f"{names[path]}.json", program, meta)
                print(f"{path} -> {dest} [{elapsed / len(chunk):.1f}s per image" + (f", {psnr:.2f} dB]" if psnr else "]"))
    return _summary(len(loaded), failed)


def cmd_render(args) -> int:
    from paintproc_jax.io import load_program, save_png
    from paintproc_jax.strokes.raster import render_program

    if not (math.isfinite(args.softness) and 0 <= args.softness <= 100):
        raise PaintprocError(f"--softness must be in [0, 100] pixels, got {args.softness}")
    out = pathlib.Path(args.out)
    if out.suffix.lower() != ".png":
        raise PaintprocError(f"--out must name a .png file, got {out}")
    program, _ = load_program(args.strokes_json)
    image = render_program(program, args.size, softness=args.softness)
    save_png(out, image)
    print(f"{args.strokes_json} -> {out} ({image.shape[1]}x{image.shape[0]}, {int(np.sum(program.valid))} strokes)")
    return 0


def _summary(done: int, failed: list) -> int:
    if failed:
        print(f"paintproc: {done} image(s) done, {len(failed)} skipped (unreadable)", file=sys.stderr)
        return 1
    return 0


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        _setup_jax()
        return {"paint": cmd_paint, "fit": cmd_fit, "render": cmd_render}[args.command](args)
    except PaintprocError as err:
        print(f"paintproc: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("paintproc: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
