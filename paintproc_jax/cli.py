"""`paintproc` command line: paint (stroke engine, or a trained diffusion checkpoint), fit, render, depth
and demo (a local web page around `paint`).

Every user-input problem ends in one line `paintproc: error: ...` and exit status 2 (never a
traceback); outputs are staged and renamed into place, so an interrupted run leaves no
half-written file under a final name.
"""

from __future__ import annotations

import argparse
import functools
import math
import pathlib
import sys
import time
from collections import defaultdict

import numpy as np

from paintproc_jax.errors import PaintprocError
from paintproc_jax.jax_cache import setup_jax
from paintproc_jax.program import MEDIA
from paintproc_jax.strokes.plan import ORDER_POLICIES, PlanConfig

LIMITS = {"strokes": (1, 100_000), "size": (16, 4096), "frames": (3, 2000), "fit_steps": (0, 100_000), "seed": (0, 2**63 - 1),
          "steps": (1, 10_000)}
ENGINES = ("strokes", "diffusion")
PAINT_SIZE, PAINT_FRAMES = 384, 48  # stroke-engine defaults of `paint`
STROKE_ONLY = ("strokes", "order", "fit_steps", "layers", "levels")  # `paint` options the diffusion engine refuses


def whole_number(lo: int, hi: int | None = None):
    """argparse type: an int in [lo, hi] (no upper bound when hi is None), else a one-line reason."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if hi is None and value < lo:
            raise argparse.ArgumentTypeError(f"must be at least {lo}, got {value}")
        if hi is not None and not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"must be between {lo} and {hi}, got {value}")
        return value

    return parse


def _bounded(name: str):
    return whole_number(*LIMITS[name])


def finite_number(text: str) -> float:
    """argparse type: a finite float."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text}")
    return value


def frame_rate(text: str) -> float:
    """argparse type: a frame rate in (0, 120]."""
    value = finite_number(text)
    if not 0 < value <= 120:
        raise argparse.ArgumentTypeError(f"must be a frame rate in (0, 120], got {text}")
    return value


def _add_engine_args(p: argparse.ArgumentParser, *, strokes_default: int | None, size_default: int | None, paint: bool = False):
    p.add_argument("input", metavar="IMAGE|DIR", help="an image file, or a folder of images (recursive)")
    p.add_argument("--strokes", type=_bounded("strokes"), default=strokes_default, required=strokes_default is None,
                   help="stroke budget per image (default: %(default)s)")
    p.add_argument("--size", type=_bounded("size"), default=size_default, required=size_default is None and not paint,
                   help="longer side in pixels; aspect ratio kept " + (
                       f"(default: {PAINT_SIZE}; diffusion: the model's resolution, another size resizes its frames)" if paint
                       else "(default: %(default)s)"))
    p.add_argument("--medium", choices=MEDIA, default="oil", help="brush family (default: %(default)s)")
    p.add_argument("--order", choices=tuple(ORDER_POLICIES), default=PlanConfig().order,
                   help="painting order: level-major = block in the whole canvas far to near, then refine it level by "
                        "level (coarse to fine, far to near within a level); layer-major = finish each depth layer "
                        "(far to near) coarse to fine before the next (default: %(default)s)")
    p.add_argument("--seed", type=_bounded("seed"), default=0, help="random seed; a given seed gives identical outputs")
    p.add_argument("--fit-steps", type=_bounded("fit_steps"), default=100,
                   help="optimisation steps of the stroke fit (0 = plan only) (default: %(default)s)")
    p.add_argument("--layers", type=int, default=3, help="depth layers (default: %(default)s)")
    p.add_argument("--levels", type=int, default=4, help="refinement levels (default: %(default)s)")
    p.add_argument("--depth", metavar="FILE", help="depth map for the image (.npy, 8/16-bit PNG); 1 = nearest")
    p.add_argument("--depth-far-is-high", action="store_true",
                   help="the depth file holds distances (larger = farther) rather than nearness")
    p.add_argument("--depth-model", metavar="DIR",
                   help="estimate depth with this Depth Anything checkpoint (tools/convert_weights.py output or a "
                        "transformers folder) instead of the built-in estimator (a depth file or sidecar still wins)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="paintproc", description="Turn any image into a video of it being painted.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("paint", help="the whole painting process: video, PNG frames, strokes JSON/SVG, contact sheet")
    _add_engine_args(p, strokes_default=1000, size_default=None, paint=True)
    p.add_argument("--frames", type=_bounded("frames"), default=None,
                   help=f"frames in the video (default: {PAINT_FRAMES}; diffusion: the checkpoint's clip length, "
                        "more = a longer process sampled clip by clip)")
    p.add_argument("--engine", choices=ENGINES, default=None,
                   help="strokes: fit and render brush strokes; diffusion: sample a trained model (--checkpoint, default: the shipped one) "
                        "(default: diffusion when --checkpoint is given, else strokes)")
    p.add_argument("--checkpoint", metavar="DIR", help="diffusion: a training workdir, its checkpoints/ folder, a step folder, an exported model folder, "
                        "or 'bundled' (the 64-px model shipped in the package; the default of --engine diffusion)")
    p.add_argument("--step", type=_bounded("seed"), help="diffusion: checkpoint step (default: the latest)")
    p.add_argument("--sampler", help="diffusion: euler, heun or ddim (default: the checkpoint's sample.sampler)")
    p.add_argument("--steps", type=_bounded("steps"), help="diffusion: sampling steps (default: the checkpoint's sample.steps)")
    p.add_argument("--fps", type=frame_rate, default=12.0, help="video frame rate (default: %(default)s)")
    p.add_argument("--no-mp4", action="store_true", help="skip the MP4 even when imageio-ffmpeg is installed")
    p.set_defaults(stroke_defaults={k: p.get_default(k) for k in STROKE_ONLY})  # to tell given stroke options

    p = sub.add_parser("fit", help="fit strokes only; writes <image stem>.json per image (a folder is one batch)")
    _add_engine_args(p, strokes_default=None, size_default=None)
    p.add_argument("--batch", type=int, default=8, help="images fitted together (default: %(default)s)")

    p = sub.add_parser("depth", help="depth map of an image: FILE.npy (float32, 1 = nearest) or FILE.png (a picture)")
    p.add_argument("input", metavar="IMAGE")
    p.add_argument("--depth-model", metavar="DIR",
                   help="Depth Anything checkpoint folder (default: the built-in weight-free estimator)")
    p.add_argument("--size", type=_bounded("size"), help="longer side in pixels (default: the image's own size)")
    p.add_argument("--out", required=True, metavar="FILE.npy|FILE.png")

    p = sub.add_parser("render", help="final composite of a strokes JSON (no reveal stage), at any resolution")
    p.add_argument("strokes_json", metavar="STROKES.json")
    p.add_argument("--size", type=_bounded("size"), required=True, help="longer side in pixels")
    p.add_argument("--out", required=True, metavar="FILE.png")
    p.add_argument("--softness", type=float, default=0.0, help="edge softness in pixels (0 = hard, the default)")

    p = sub.add_parser("demo", help="a local web page (Gradio) that paints any image you drop on it; needs the demo extra")
    p.add_argument("--host", default="127.0.0.1", help="address to serve on (default: %(default)s, this machine only)")
    p.add_argument("--port", type=whole_number(1, 65535), default=7860, help="port (default: %(default)s)")
    p.add_argument("--checkpoint", metavar="DIR", help="also offer this diffusion model (any `paint --checkpoint` form) "
                                                       "beside the stroke engine and the shipped model")
    p.add_argument("--outputs", metavar="DIR", help="where each request's output folder goes "
                                                    "(default: paintproc_demo in the system temp folder)")
    p.add_argument("--keep-minutes", type=whole_number(1, 7 * 24 * 60), default=60,
                   help="output folders older than this are deleted (default: %(default)s)")
    return parser


# ---------------------------------------------------------------------------------------------


_setup_jax = setup_jax  # the old name (paintproc_jax/demo.py calls it)


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
    if args.depth_model:
        return estimate_depth(image, estimator=_learned_estimator(args.depth_model)), f"depth-anything {args.depth_model}"
    return estimate_depth(image), "builtin estimator"


@functools.cache
def _learned_estimator(model_dir: str):
    """The Depth Anything estimator of `model_dir`, loaded once per run."""
    from paintproc_jax.depth import get_estimator

    return get_estimator("depth-anything", model_dir=model_dir)


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
    extension, e.g. `a/pic.png` -> `a__pic_png`, so no two images share an output (one rule for
    both engines and tools/sample.py)."""
    from paintproc_jax.io.images import output_names

    return output_names(paths, root)


def _paint_engine(args) -> str:
    """`--engine`, defaulted from `--checkpoint`, with contradicting options refused."""
    engine = args.engine or ("diffusion" if args.checkpoint else "strokes")
    if engine == "diffusion" and not args.checkpoint:
        args.checkpoint = "bundled"  # the model shipped in the package (README "A model trained on this CPU")
    if engine == "strokes":
        given = [f"--{name}" for name in ("checkpoint", "step", "sampler", "steps") if getattr(args, name) is not None]
        if given:
            raise PaintprocError(f"{', '.join(given)} belong{'s' if len(given) == 1 else ''} to --engine diffusion, not strokes")
    return engine


def cmd_paint(args, progress=None) -> int:
    """`paintproc paint`, also what `paintproc demo` runs per request. `progress(total, desc)`, when
    given, makes the fit's `(step, loss)` callback instead of the terminal progress bar."""
    if _paint_engine(args) == "diffusion":
        return _paint_diffusion(args)
    from paintproc_jax.io import list_images, save_program, save_svg
    from paintproc_jax.io.process_dir import write_process_dir
    from paintproc_jax.strokes.engine import paint
    from paintproc_jax.strokes.schedule import split_frames

    args.size = PAINT_SIZE if args.size is None else args.size
    args.frames = PAINT_FRAMES if args.frames is None else args.frames
    config = _engine_config(args)
    paths = list_images(args.input)
    loaded, failed = _load_all(args, paths)
    out_root = pathlib.Path(args.out)
    names = _stems([p for p, *_ in loaded], pathlib.Path(args.input))
    single = not pathlib.Path(args.input).is_dir()
    for path, image, depth, source in loaded:
        t0 = time.perf_counter()
        update = (progress or functools.partial(_progress_bar, quiet=args.quiet))(config.fit.steps, f"fit {path.name}")
        frames, program, mse = paint(image, depth, args.frames, config, seed=args.seed, progress=update)
        target = out_root if single else out_root / names[path]
        meta = {
            "source": str(path), "size": args.size, "seed": args.seed, "order": args.order, "medium": args.medium,
            "strokes": args.strokes, "fit_steps": args.fit_steps, "depth": source, "frames": args.frames,
            "stroke_frames": split_frames(args.frames)[0],  # frames 1..this are the strokes, the rest the reveal
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


def _paint_diffusion(args) -> int:
    """`paint --checkpoint DIR`: the process sampled from a trained model (`paintproc_jax.sampling`);
    the same output folder as the stroke engine, less strokes.json/svg."""
    from paintproc_jax import sampling
    from paintproc_jax.io import list_images

    given = [f"--{k.replace('_', '-')}" for k, default in args.stroke_defaults.items() if getattr(args, k) != default]
    if given:
        raise PaintprocError(f"{', '.join(given)} belong{'s' if len(given) == 1 else ''} to the stroke engine; "
                             "the diffusion engine's layers, resolution and process come from the checkpoint")
    paths = list_images(args.input)
    root = pathlib.Path(args.input)
    single = not root.is_dir()
    if args.depth and not single:
        raise PaintprocError("--depth names one file; for a folder put <stem>.depth.npy/png beside each image")
    painter = sampling.load_painter(args.checkpoint, args.step)
    settings = painter.settings(medium=args.medium, sampler=args.sampler, steps=args.steps, frames=args.frames)
    if settings["medium"] not in painter.media:
        print(f"paintproc: warning: the checkpoint was trained on {', '.join(painter.media)}; medium "
              f"{settings['medium']!r} is new to it", file=sys.stderr)
    if settings["frames"] > painter.frames + 1 and not painter.config.diffusion.get("context_prob", 0):
        print(f"paintproc: warning: --frames {settings['frames']} is longer than the checkpoint's {painter.frames + 1}-frame "
              "clips and it was not trained with context frames (diffusion.context_prob=0): the clips may not join up",
              file=sys.stderr)
    loader = sampling.InputLoader(painter.config, "auto", far_is_high=args.depth_far_is_high, depth_model=args.depth_model)
    jobs = sampling.jobs_from_paths(paths, root, depth_file=args.depth)
    out_root = pathlib.Path(args.out)
    failed = []

    def on_error(job, err):
        if single:
            raise err
        print(f"paintproc: warning: skipping {job.source}: {err}", file=sys.stderr)
        failed.append(job)

    done = 0
    batch = -(-8 // painter.num_devices) * painter.num_devices
    for results in sampling.paint_jobs(painter, jobs, seed=args.seed, batch_size=batch, loader=loader, settings=settings,
                                       out_size=args.size, on_error=on_error):
        for r in results:
            target = out_root if single else out_root / r.job.name
            r.meta["size"] = max(r.frames.shape[1:3])
            written = sampling.write_result(target, r, fps=args.fps, mp4=not args.no_mp4)
            print(f"{r.job.source} -> {target}/: {', '.join(written)} [{r.seconds:.1f}s, {settings['sampler']} x {settings['steps']} steps]")
            done += 1
    if not done:
        raise PaintprocError(f"no usable images in {args.input}")
    return _summary(done, failed)


def cmd_fit(args) -> int:
    from paintproc_jax.io import save_program
    from paintproc_jax.strokes.engine import decompose

    config = _engine_config(args)
    from paintproc_jax.io import list_images

    paths = list_images(args.input)
    loaded, failed = _load_all(args, paths)
    names = _stems([p for p, *_ in loaded], pathlib.Path(args.input))
    from paintproc_jax.strokes.fit import batch_key

    groups = defaultdict(list)  # images of one canvas bucket (or, for layer-major, one size) fit as one batch: one compile
    for item in loaded:
        groups[batch_key(config.plan, config.fit, item[1].shape[:2])].append(item)
    out_root = pathlib.Path(args.out)
    batch = max(1, args.batch)
    for shape, items in groups.items():
        for start in range(0, len(items), batch):
            chunk = items[start : start + batch]
            t0 = time.perf_counter()
            progress = _progress_bar(config.fit.steps, f"fit {len(chunk)} image(s) on {shape[1]}x{shape[0]}", args.quiet)
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


def cmd_depth(args) -> int:
    """`paintproc depth IMAGE --out FILE.npy|.png`: the depth protocol's map (1 = nearest) of one image."""
    from paintproc_jax.depth import estimate_depth
    from paintproc_jax.io import load_image, save_png
    from paintproc_jax.io.atomic import atomic_path

    out = pathlib.Path(args.out)
    if out.suffix.lower() not in (".npy", ".png"):
        raise PaintprocError(f"--out must name a .npy (the map) or .png (a picture of it) file, got {out}")
    if pathlib.Path(args.input).is_dir():
        raise PaintprocError(f"{args.input} is a folder; paintproc depth takes one image")
    image = load_image(args.input, args.size)
    estimator = _learned_estimator(args.depth_model) if args.depth_model else "builtin"
    t0 = time.perf_counter()
    depth = estimate_depth(image, estimator=estimator)
    elapsed = time.perf_counter() - t0
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".npy":
        with atomic_path(out) as tmp:
            with open(tmp, "wb") as f:
                np.save(f, depth.astype(np.float32))
    else:
        save_png(out, depth)
    source = f"depth-anything {args.depth_model}" if args.depth_model else "builtin estimator"
    print(f"{args.input} -> {out} ({depth.shape[1]}x{depth.shape[0]}, {source}, {elapsed:.1f}s; 1 = nearest)")
    return 0


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


def cmd_demo(args) -> int:
    """`paintproc demo`: serves the web page until interrupted (paintproc_jax/demo.py)."""
    try:
        import gradio  # noqa: F401
    except ImportError:
        raise PaintprocError('the demo needs Gradio: pip install -e ".[demo]"') from None
    from paintproc_jax import demo

    return demo.serve(host=args.host, port=args.port, checkpoint=args.checkpoint, outputs=args.outputs,
                      keep_minutes=args.keep_minutes)


def _summary(done: int, failed: list) -> int:
    if failed:
        print(f"paintproc: {done} image(s) done, {len(failed)} skipped (unreadable)", file=sys.stderr)
        return 1
    return 0


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        setup_jax()
        return {"paint": cmd_paint, "fit": cmd_fit, "depth": cmd_depth, "render": cmd_render, "demo": cmd_demo}[args.command](args)
    except PaintprocError as err:
        print(f"paintproc: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("paintproc: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
