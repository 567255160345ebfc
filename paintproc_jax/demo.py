"""`paintproc demo`: a local Gradio page that paints the image you drop on it.

Each request runs `cli.cmd_paint` — the same code as `paintproc paint` — on a copy of the upload in
its own output folder, with the fit's `(step, loss)` callback shown as the page's progress. Requests
queue (one paint at a time: a paint already uses every core); a failed request gets its reason and
the server keeps serving; output folders older than `keep_minutes` are deleted.

Nothing here paints: settings are checked against `LIMITS`, turned into `paint` arguments, and the
outputs of the process folder are read back for the page.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import pathlib
import shutil
import sys
import tempfile
import threading
import time
import traceback
import uuid

import numpy as np
from PIL import Image

from paintproc_jax import cli
from paintproc_jax.errors import PaintprocError, one_line
from paintproc_jax.program import MEDIA
from paintproc_jax.strokes.plan import ORDER_POLICIES

ASSETS = pathlib.Path(__file__).parent / "assets"
EXAMPLES = tuple(sorted(ASSETS.glob("*.jpg")))
# Tighter than the CLI's LIMITS: one request must not hold a shared server for hours.
LIMITS = {"strokes": (1, 5000), "size": (16, 1024), "frames": (3, 240), "fit_steps": (0, 500), "seed": (0, 2**31 - 1)}
MAX_UPLOAD_MB = 30
MAX_PIXELS = 40_000_000  # refused from the header alone, before any decoding (no decompression bombs)
STAGE_LABELS = ("1/16", "1/8", "1/4", "1/2")
ENGINE_STROKES, ENGINE_BUNDLED, ENGINE_CHECKPOINT = "strokes", "bundled", "checkpoint"
DOWNLOADS = ("process.mp4", "process.gif", "strokes.json", "strokes.svg")


def paint_defaults() -> dict:
    """The stroke engine's defaults of `paintproc paint`, read from its parser (one source of truth)."""
    args = cli.build_parser().parse_args(["paint", "IMAGE", "--out", "OUT"])
    return {"medium": args.medium, "strokes": args.strokes, "size": cli.PAINT_SIZE, "order": args.order,
            "seed": args.seed, "frames": cli.PAINT_FRAMES, "fit_steps": args.fit_steps}


@dataclasses.dataclass(frozen=True)
class Settings:
    """One request's settings, as the page sends them."""

    engine: str = ENGINE_STROKES
    medium: str = "oil"
    strokes: int = 1000
    size: int = cli.PAINT_SIZE
    order: str = "level-major"
    seed: int = 0
    frames: int = cli.PAINT_FRAMES
    fit_steps: int = 100

    def checked(self, engines) -> Settings:
        """Whole numbers in `LIMITS`, known choices; else a PaintprocError naming the setting."""
        if self.engine not in engines:
            raise PaintprocError(f"engine must be one of {', '.join(engines)}, got {self.engine!r}")
        if self.medium not in MEDIA:
            raise PaintprocError(f"medium must be one of {', '.join(MEDIA)}, got {self.medium!r}")
        if self.order not in ORDER_POLICIES:
            raise PaintprocError(f"order must be one of {', '.join(ORDER_POLICIES)}, got {self.order!r}")
        numbers = {}
        for name, (lo, hi) in LIMITS.items():
            value = getattr(self, name)
            if value is None or isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or value != int(value):
                raise PaintprocError(f"{name.replace('_', ' ')} must be a whole number, got {value!r}")
            if not lo <= value <= hi:
                raise PaintprocError(f"{name.replace('_', ' ')} must be between {lo} and {hi} in the demo, got {int(value)}")
            numbers[name] = int(value)
        return dataclasses.replace(self, **numbers)


def check_upload(path) -> tuple[int, int]:
    """(width, height) of an uploaded image from its header; PaintprocError for an empty file, a
    file that is not an image, or one over `MAX_PIXELS` / `MAX_UPLOAD_MB` (nothing is decoded)."""
    if path is None:
        raise PaintprocError("no image: drop one on the page or pick an example")
    path = pathlib.Path(path)
    if not path.is_file():
        raise PaintprocError("the upload did not arrive; please upload the image again")
    size = path.stat().st_size
    if size == 0:
        raise PaintprocError(f"{path.name} is empty (0 bytes)")
    if size > MAX_UPLOAD_MB * 2**20:
        raise PaintprocError(f"{path.name} is {size / 2**20:.0f} MB; the demo takes images up to {MAX_UPLOAD_MB} MB")
    too_large = f"; the demo takes images up to {MAX_PIXELS // 1_000_000} megapixels"
    try:
        with Image.open(path) as img:
            width, height = img.size
    except Image.DecompressionBombError:  # Pillow's own guard, far above ours
        raise PaintprocError(f"{path.name} is too large{too_large}") from None
    except (OSError, ValueError, SyntaxError):
        raise PaintprocError(f"{path.name} is not an image this demo can read (JPEG, PNG, WebP, TIFF or BMP)") from None
    if width * height > MAX_PIXELS:
        raise PaintprocError(f"{path.name} is too large: {width}x{height} pixels{too_large}")
    return width, height


class RunFolders:
    """One fresh folder per request under `root`; folders older than `max_age_s` are deleted
    (never one still in use)."""

    def __init__(self, root, max_age_s: float):
        self.root = pathlib.Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.max_age_s = float(max_age_s)
        self._active: set[pathlib.Path] = set()
        self._lock = threading.Lock()

    def new(self) -> pathlib.Path:
        path = self.root / f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"
        path.mkdir()
        with self._lock:
            self._active.add(path)
        return path

    def release(self, path: pathlib.Path) -> None:
        with self._lock:
            self._active.discard(path)

    def cleanup(self, now: float | None = None) -> list[pathlib.Path]:
        """Deletes run folders last modified more than `max_age_s` ago; returns them."""
        now = time.time() if now is None else now
        removed = []
        for path in self.root.iterdir():
            with self._lock:
                busy = path in self._active
            try:
                old = now - path.stat().st_mtime > self.max_age_s
            except FileNotFoundError:
                continue
            if path.is_dir() and not busy and old:
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
        return removed

    def start_sweeper(self, interval_s: float | None = None) -> threading.Event:
        """A daemon thread that runs `cleanup` every `interval_s` (default: a quarter of the age
        limit, at most 10 minutes); set the returned event to stop it."""
        interval = interval_s or min(600.0, max(5.0, self.max_age_s / 4))
        stop = threading.Event()

        def sweep():
            while not stop.wait(interval):
                self.cleanup()

        threading.Thread(target=sweep, name="paintproc-demo-cleanup", daemon=True).start()
        return stop


def _psnr(mse: float) -> float:
    return float(-10 * np.log10(max(mse, 1e-10)))


def fit_reporter(report):
    """A `cmd_paint` progress factory: each fit step calls `report(fraction, text)` with the stage
    and the PSNR so far (the fit reports its loss every 10 steps); the PSNRs are kept in `.trail`."""

    def factory(total: int, desc: str):
        def update(i: int, loss: float):
            if loss == loss:  # not NaN
                factory.trail.append((i + 1, round(_psnr(loss), 2)))
            psnr = f" · PSNR {factory.trail[-1][1]:.1f} dB" if factory.trail else ""
            done = i + 1 >= total
            report((i + 1) / max(total, 1), f"fitting strokes: step {i + 1}/{total}{psnr}"
                   + (" · rendering frames and writing the video" if done else ""))

        return update

    factory.trail = []
    return factory


def paint_args(image: pathlib.Path, out: pathlib.Path, s: Settings, checkpoint: str | None):
    """`paintproc paint` arguments for `s`, parsed by the CLI's own parser (so its defaults and
    checks apply). Diffusion runs leave the stroke-only options at their defaults."""
    argv = ["paint", str(image), "--out", str(out), "--medium", s.medium, "--size", str(s.size),
            "--seed", str(s.seed), "--frames", str(s.frames), "--quiet"]
    if s.engine == ENGINE_STROKES:
        argv += ["--strokes", str(s.strokes), "--order", s.order, "--fit-steps", str(s.fit_steps)]
    else:
        argv += ["--engine", "diffusion", "--checkpoint", "bundled" if s.engine == ENGINE_BUNDLED else str(checkpoint)]
    return cli.build_parser().parse_args(argv)


@dataclasses.dataclass
class Result:
    """What the page shows of one finished run (paths inside its run folder)."""

    folder: pathlib.Path
    video: pathlib.Path | None
    contact_sheet: pathlib.Path
    depth: pathlib.Path | None
    stages: list[tuple[pathlib.Path, str]]
    downloads: list[pathlib.Path]
    meta: dict
    seconds: float
    psnr_trail: list

    def summary(self) -> str:
        m = self.meta
        parts = [f"**Done in {self.seconds:.1f} s** — {m.get('width')}×{m.get('height')} px, {m.get('frames')} frames, "
                 f"{m.get('medium')}, seed {m.get('seed')}"]
        if m.get("engine") == "strokes":
            parts.append(f"{m.get('strokes')} strokes, {m.get('order')}, {m.get('fit_steps')} fit steps")
            if m.get("fit_psnr_db") is not None:
                parts.append(f"strokes fit {m['fit_psnr_db']:.2f} dB")
            if self.psnr_trail:
                parts.append("PSNR by fit step: " + ", ".join(f"{i}: {p:.1f}" for i, p in self.psnr_trail))
        else:
            parts.append(f"diffusion {m.get('checkpoint', '')}, {m.get('sampler', '')} × {m.get('steps', '')} steps")
        if self.video is None:
            parts.append("no MP4 (it needs imageio-ffmpeg): the GIF is in the downloads")
        parts.append(f"run `{self.folder.name}`")
        return " · ".join(str(p) for p in parts)


def _stage_frames(folder: pathlib.Path, meta: dict) -> list[tuple[pathlib.Path, str]]:
    """The frames at 1/16, 1/8, 1/4, 1/2 of the process, by the evaluation's rule
    (`metrics.stages.stage_indices`), each with its PSNR to the last frame."""
    from paintproc_jax.io.process_dir import read_png
    from paintproc_jax.metrics.stages import stage_indices, stroke_frames_of

    names = sorted((folder / "frames").glob("frame_*.png"))
    final = read_png(names[-1])
    out = []
    for label, index in zip(STAGE_LABELS, stage_indices(len(names), stroke_frames_of(meta, len(names)))):
        mse = float(np.mean((read_png(names[index]) - final) ** 2))
        out.append((names[index], f"{label} · frame {index} · {min(_psnr(mse), 100.0):.1f} dB"))
    return out


def run_paint(image_path, settings: Settings, folders: RunFolders, *, checkpoint: str | None = None, report=None) -> Result:
    """One request: checks the upload and settings, copies the image into a fresh run folder, runs
    `cli.cmd_paint` there and collects the outputs. Raises PaintprocError with the reason."""
    report = report or (lambda fraction, text: None)
    engines = (ENGINE_STROKES, ENGINE_BUNDLED) + ((ENGINE_CHECKPOINT,) if checkpoint else ())
    settings = settings.checked(engines)
    check_upload(image_path)
    folders.cleanup()
    run = folders.new()
    try:
        src = pathlib.Path(image_path)
        image = run / "input" / ("image" + src.suffix.lower()[:6])  # no sidecar depth can sit beside it
        image.parent.mkdir()
        shutil.copyfile(src, image)
        out = run / "process"
        t0 = time.perf_counter()
        if settings.engine == ENGINE_STROKES:
            report(0.0, "reading the image, estimating depth, planning strokes (the first paint of a size compiles)")
        else:
            report(0.0, "sampling the diffusion model (the first run compiles)")
        reporter = fit_reporter(report)
        try:
            cli.cmd_paint(paint_args(image, out, settings, checkpoint), progress=reporter)
        except PaintprocError as err:  # name the upload, not the server's copy of it
            raise PaintprocError(str(err).replace(str(image), src.name)) from None
        seconds = time.perf_counter() - t0
        meta = json.loads((out / "process.json").read_text())
        return Result(
            folder=run, video=out / "process.mp4" if (out / "process.mp4").exists() else None,
            contact_sheet=out / "contact_sheet.png", depth=out / "depth.png" if (out / "depth.png").exists() else None,
            stages=_stage_frames(out, meta), downloads=[out / n for n in DOWNLOADS if (out / n).exists()],
            meta=meta, seconds=seconds, psnr_trail=list(reporter.trail))
    except BaseException:
        shutil.rmtree(run, ignore_errors=True)  # a failed run leaves nothing to serve
        raise
    finally:
        folders.release(run)


@functools.cache
def _model_frames(checkpoint: str) -> int:
    """Frames of one clip of a diffusion model (its default video length)."""
    from paintproc_jax import sampling

    return sampling.load_painter(checkpoint).frames + 1


def _preview(path):
    """A small copy of the upload for the page, or a message why it cannot be used."""
    from paintproc_jax.io import load_image

    if path is None:
        return None, ""
    try:
        width, height = check_upload(path)
        return load_image(path, min(512, max(width, height))), f"{pathlib.Path(path).name}: {width}×{height} px"
    except PaintprocError as err:
        return None, f"**Cannot use this file:** {str(err).replace(str(path), pathlib.Path(path).name)}"


def build_app(folders: RunFolders, checkpoint: str | None = None):
    """The page (a `gr.Blocks`); `checkpoint` adds a third engine, that diffusion model."""
    import gradio as gr

    d = paint_defaults()
    engines = [("stroke engine", ENGINE_STROKES), ("diffusion: the shipped 64-px model", ENGINE_BUNDLED)]
    if checkpoint:
        engines.append((f"diffusion: {checkpoint}", ENGINE_CHECKPOINT))

    def number(name, label, info=""):
        lo, hi = LIMITS[name]
        return gr.Number(value=d[name], label=label, precision=0, info=f"{lo}–{hi}{info}", elem_id=name.replace("_", "-"))

    def paint(image, engine, medium, strokes, size, order, seed, frames, fit_steps, progress=gr.Progress()):
        settings = Settings(engine=engine, medium=medium, strokes=strokes, size=size, order=order, seed=seed,
                            frames=frames, fit_steps=fit_steps)
        try:
            r = run_paint(image, settings, folders, checkpoint=checkpoint,
                          report=lambda fraction, text: progress(fraction, desc=text))
        except PaintprocError as err:
            raise gr.Error(str(err), print_exception=False) from None
        except Exception as err:  # a bug or a resource problem: say so, keep serving
            traceback.print_exc()  # the server's log gets the details, the page the reason
            raise gr.Error(f"the paint failed: {type(err).__name__}: {one_line(err)}", print_exception=False) from None
        return (str(r.video) if r.video else None, str(r.contact_sheet), str(r.depth) if r.depth else None,
                [(str(p), caption) for p, caption in r.stages], [str(p) for p in r.downloads], r.summary())

    def engine_changed(engine):
        if engine == ENGINE_STROKES:
            return gr.update(value=d["frames"])
        try:
            return gr.update(value=_model_frames("bundled" if engine == ENGINE_BUNDLED else checkpoint))
        except PaintprocError as err:
            raise gr.Error(str(err), print_exception=False) from None

    with gr.Blocks(title="paintproc — paint any image", analytics_enabled=False,
                   delete_cache=(int(min(600, max(60, folders.max_age_s / 4))), int(folders.max_age_s))) as app:
        gr.Markdown("# paintproc: watch any image being painted\nDrop an image, pick settings, press **Paint**. "
                    "Blank canvas first, big shapes back to front, then details.")
        with gr.Row():
            with gr.Column(scale=1):
                upload = gr.File(label="Image (JPEG, PNG, WebP, TIFF, BMP)", type="filepath", elem_id="image-input",
                                 file_types=sorted(_upload_extensions()))
                preview = gr.Image(label="Your image", interactive=False, height=220, elem_id="preview")
                note = gr.Markdown(elem_id="upload-note")
                gr.Examples([[str(p), str(p)] for p in EXAMPLES], inputs=[upload, preview], label="Or pick a bundled photo",
                            elem_id="examples")
            with gr.Column(scale=1):
                engine = gr.Radio(engines, value=ENGINE_STROKES, label="Engine", elem_id="engine")
                medium = gr.Dropdown(list(MEDIA), value=d["medium"], label="Medium", elem_id="medium")
                with gr.Row():
                    strokes = number("strokes", "Strokes", " · stroke engine")
                    size = number("size", "Size (px, longer side)")
                with gr.Row():
                    frames = number("frames", "Frames")
                    fit_steps = number("fit_steps", "Fit steps", " · stroke engine; 0 = plan only")
                with gr.Row():
                    order = gr.Dropdown(list(ORDER_POLICIES), value=d["order"], label="Order (stroke engine)", elem_id="order")
                    seed = number("seed", "Seed")
                button = gr.Button("Paint", variant="primary", elem_id="paint-button")
        summary = gr.Markdown(elem_id="summary")
        with gr.Row():
            video = gr.Video(label="The painting process", autoplay=True, loop=True, interactive=False, elem_id="video")
            sheet = gr.Image(label="Contact sheet", interactive=False, elem_id="contact-sheet")
        stages = gr.Gallery(label="Stages: the canvas at 1/16, 1/8, 1/4 and 1/2 of the process (PSNR to the end)",
                            columns=4, height=320, object_fit="contain", elem_id="stages")
        with gr.Row():
            depth = gr.Image(label="Depth (white = near)", interactive=False, height=260, elem_id="depth")
            downloads = gr.File(label="Downloads: MP4, GIF, strokes JSON, SVG", file_count="multiple", interactive=False,
                                elem_id="downloads")

        upload.change(_preview, inputs=upload, outputs=[preview, note], api_name=False, queue=False)
        engine.change(engine_changed, inputs=engine, outputs=frames, api_name=False)
        button.click(paint, inputs=[upload, engine, medium, strokes, size, order, seed, frames, fit_steps],
                     outputs=[video, sheet, depth, stages, downloads, summary], api_name="paint", concurrency_limit=1)
    return app


def _upload_extensions() -> set[str]:
    from paintproc_jax.io import IMAGE_EXTENSIONS

    return set(IMAGE_EXTENSIONS) - {".gif"}  # a GIF upload would be painted from its first frame only


def serve(host: str = "127.0.0.1", port: int = 7860, checkpoint: str | None = None, outputs=None,
          keep_minutes: int = 60, block: bool = True):
    """Starts the server (blocks until interrupted unless `block=False`; then returns the app)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # offline: no calls home
    import gradio as gr

    if checkpoint:
        from paintproc_jax import sampling

        sampling.resolve_checkpoint(checkpoint)  # a bad folder fails now, in one line, not per request
    cli._setup_jax()
    folders = RunFolders(outputs or pathlib.Path(tempfile.gettempdir()) / "paintproc_demo", keep_minutes * 60)
    folders.cleanup()
    folders.start_sweeper()
    app = build_app(folders, checkpoint)
    app.queue(max_size=32)
    theme = gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"],
                              font_mono=["ui-monospace", "monospace"])  # system fonts: no font downloads
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(f"paintproc demo: warning: serving on {host}: other machines can reach this page", file=sys.stderr)
    try:
        app.launch(server_name=host, server_port=port, share=False, inbrowser=False, show_error=True, ssr_mode=False,
                   max_file_size=f"{MAX_UPLOAD_MB}mb", allowed_paths=[str(folders.root)], prevent_thread_lock=True,
                   theme=theme, quiet=True)
    except OSError as err:  # port taken, address not on this machine
        why = "the port is in use (pick another with --port)" if "empty port" in str(err) else one_line(err)
        raise PaintprocError(f"cannot serve on {host}:{port}: {why}") from None
    print(f"paintproc demo: serving on http://{host}:{port} (outputs in {folders.root}, kept {keep_minutes} min; Ctrl-C stops)",
          flush=True)
    if not block:
        return app
    try:
        app.block_thread()
    finally:
        app.close()
    return 0
