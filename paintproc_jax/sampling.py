"""Offline sampling from trained checkpoints: image (+ depth) -> painting-process video.

    painter = load_painter("runs/tiny")                  # a training WORKDIR (latest step, EMA params)
    inp = painter.prepare(image, depth)                  # image [H, W, 3] in [0, 1], depth [H, W] (1 = near)
    [frames] = painter.paint_prepared([inp], [image_key(0, "photo")])   # [1 + F, h, w, 3] in [0, 1]

Shared by `tools/sample.py` (datasets/folders, batched, resumable) and `paintproc paint --checkpoint`.

- Checkpoints: a training WORKDIR, its `checkpoints/` folder or one step folder `checkpoints/<step>`.
  The resolved config saved with the checkpoint rebuilds the model; the EMA parameters are
  restored when the checkpoint has them, else the model's (`train/checkpoint.py` owns the format
  and reads both layouts; the optimizer state is never read). An exported model folder (`models/weights.py`: bf16 safetensors + config.json)
  or "bundled" (the one shipped in the package) loads without orbax.
- Fit ("stretch"): the model works on square `data.size` images. An image is resized (stretched)
  to that square for the model, and the generated frames are resized back to the image's aspect
  ratio with the longer side `data.size` (or `out_size`). The whole image is painted (nothing is
  cropped) at the cost of a temporary anisotropic stretch, and the output lines up pixel for pixel
  with the source image resized to the same size. The last frame (the finished image) is the
  source image resized directly, not the stretched reference stretched back.
- Determinism: each image has its own key, `image_key(seed, name) = fold_in(key(seed), crc32(name))`,
  and the sampler draws row b's noise from its key alone, so an image's process does not depend
  on what else is in the batch, the batch size, the padding or the order (on one set of devices;
  a different number of devices or batch shape can change the last bits of floating point).
- Devices: a 1-D data mesh over all `jax.devices()`; parameters replicated, the batch split over
  devices and padded to a multiple of the device count. One compile per (padded batch size,
  sampler, steps, guidance, frames).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import pathlib
import re
import zlib
from collections import defaultdict
from typing import Callable, Iterable, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx
from PIL import Image

from paintproc_jax import parallel
from paintproc_jax.errors import PaintprocError, one_line
from paintproc_jax.program import MEDIA, MEDIUM_ID
from paintproc_jax.train import checkpoint as checkpoint_format
from paintproc_jax.train.checkpoint import resolve as resolve_checkpoint  # noqa: F401 - public (demo.py, tests)

log = logging.getLogger(__name__)

FIT = "stretch"
DEPTH_MODES = ("auto", "sidecar", "estimator")
SAMPLER_NAMES = ("euler", "heun", "ddim")  # = diffusion.samplers.SAMPLERS (checked in `Painter.settings`)
MAX_STEPS = 10_000
BUNDLED = "bundled"  # `--checkpoint bundled`: the model shipped in the package (models/weights.py)


# -- checkpoints ---------------------------------------------------------------------------------------


def load_painter(checkpoint, step: int | None = None, *, devices=None) -> Painter:
    """A `Painter` from a training checkpoint (WORKDIR, WORKDIR/checkpoints or a step folder;
    `step` None = the latest), an exported model folder (`models/weights.py`) or "bundled" (the
    shipped model). PaintprocError for a missing folder, no checkpoints, an unreadable or damaged one."""
    from paintproc_jax.models import create_model

    from paintproc_jax.models import weights

    if jax.process_count() > 1:
        raise PaintprocError("offline sampling runs in one process (all of its local devices); start it on one host")
    exported = str(checkpoint) == BUNDLED or weights.is_exported(checkpoint)
    if exported:  # an exported model (safetensors + config.json): no orbax, no training state
        path = weights.BUNDLED if str(checkpoint) == BUNDLED else pathlib.Path(checkpoint)
        if step is not None:
            raise PaintprocError(f"--step {step}: {path} is an exported model of one step, not a training run")
        meta, flat = weights.read_exported(path)
        config, step, what = ml_collections.ConfigDict(meta["config"]), int(meta.get("source", {}).get("step", 0)), str(path)
    else:
        ckpt_dir, step = checkpoint_format.resolve(checkpoint, step)
        step_dir = ckpt_dir / str(step)
        config, what = ml_collections.ConfigDict(checkpoint_format.read_config(step_dir)), f"checkpoint {step_dir}"
    try:
        abstract = nnx.eval_shape(lambda: create_model(config.model))
    except (ValueError, KeyError, AttributeError, TypeError) as e:
        raise PaintprocError(f"{what}: cannot build its model from the saved config ({one_line(e)})") from None
    graphdef, params, rest = nnx.split(abstract, nnx.Param, ...)
    mesh = parallel.make_mesh({parallel.DATA: -1}, devices=devices)
    replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
    target = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=replicated), nnx.to_pure_dict(params))
    if exported:
        try:
            restored = jax.device_put(weights.unflatten_like(flat, target), replicated)
        except ValueError as e:
            raise PaintprocError(f"{what} does not match its config's model ({one_line(e)})") from None
        which = "ema" if meta.get("source", {}).get("params", "ema") == "ema" else "model"
    else:
        try:
            restored, which = checkpoint_format.restore_params(step_dir, target)
        except PaintprocError:
            raise
        except Exception as e:  # noqa: BLE001 - corrupt files, shape mismatch, ...: one line
            raise PaintprocError(f"checkpoint {step_dir} could not be read ({type(e).__name__}: {one_line(e)[:300]})") from None
    nnx.replace_by_pure_dict(params, restored)
    rest = jax.device_put(rest, replicated)
    if exported:
        name = BUNDLED if str(checkpoint) == BUNDLED else str(path.resolve())
    else:
        run_dir = ckpt_dir.parent if ckpt_dir.name == "checkpoints" else ckpt_dir  # the training workdir
        name = str(run_dir.resolve())
    return Painter(config=config, graphdef=graphdef, params=params, rest=rest, mesh=mesh,
                   checkpoint=name, step=step, params_from=which)


# -- inputs ------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Prepared:
    """One image ready for the model: ref [S, S, 3] in [-1, 1], depth [S, S] in [0, 1], layers
    [S, S] int32 (square, stretched), and the image/depth at the output size [h, w] (aspect kept)."""

    ref: np.ndarray
    depth: np.ndarray
    layers: np.ndarray
    image: np.ndarray
    depth_out: np.ndarray


def image_key(seed: int, name: str):
    """The PRNG key of one image: fold_in(key(seed), crc32(name)), independent of batching and order."""
    return jax.random.fold_in(jax.random.key(int(seed)), np.uint32(zlib.crc32(str(name).encode("utf-8"))))


def _resize(x: np.ndarray, hw, resample=Image.Resampling.BILINEAR) -> np.ndarray:
    from paintproc_jax.io.images import resize_image

    return np.clip(resize_image(np.asarray(x, np.float32), hw, resample), 0.0, 1.0)


@dataclasses.dataclass
class Painter:
    """A trained model ready to sample (see the module doc). `params_from`: "ema" or "model"."""

    config: ml_collections.ConfigDict
    graphdef: object
    params: object
    rest: object
    mesh: jax.sharding.Mesh
    checkpoint: str
    step: int
    params_from: str
    _jits: dict = dataclasses.field(default_factory=dict, repr=False)

    @property
    def size(self) -> int:
        """The model's square image size (data.size)."""
        return int(self.config.data.size)

    @property
    def frames(self) -> int:
        """Generated frames per clip; a video holds one more (the finished image)."""
        return int(self.config.model.frames)

    @property
    def media(self) -> tuple[str, ...]:
        """The media the model was trained on."""
        return tuple(self.config.data.media)

    @property
    def num_devices(self) -> int:
        return int(self.mesh.size)

    def output_hw(self, height: int, width: int, out_size: int | None = None) -> tuple[int, int]:
        """Output frame size for an image of height x width: aspect kept, longer side out_size (default data.size)."""
        from paintproc_jax.io.images import output_size

        return output_size(int(height), int(width), int(out_size or self.size))

    def defaults(self) -> dict:
        """Sampling settings of the checkpoint's config (`sample` section)."""
        s = self.config.get("sample") or ml_collections.ConfigDict()
        g = s.get("guidance") or {}
        g = g.to_dict() if hasattr(g, "to_dict") else dict(g)
        return {"sampler": s.get("sampler", "euler"), "steps": int(s.get("steps", 32)),
                "guidance": {k: float(g.get(k, 1.0)) for k in ("ref", "depth", "medium")},
                "medium": self.media[0] if self.media else "oil"}

    def settings(self, *, medium=None, sampler=None, steps=None, guidance=None, frames=None) -> dict:
        """Fills unset settings from the checkpoint's config and validates them (PaintprocError)."""
        d = self.defaults()
        medium = medium or d["medium"]
        sampler = sampler or d["sampler"]
        steps = d["steps"] if steps is None else int(steps)
        g = dict(d["guidance"])
        g.update({k: float(v) for k, v in (guidance or {}).items() if v is not None})
        if medium not in MEDIUM_ID:
            raise PaintprocError(f"unknown medium {medium!r}; choose one of {', '.join(MEDIA)}")
        if sampler not in SAMPLER_NAMES:
            raise PaintprocError(f"unknown sampler {sampler!r}; choose one of {', '.join(SAMPLER_NAMES)}")
        if not 1 <= steps <= MAX_STEPS:
            raise PaintprocError(f"steps must be in 1..{MAX_STEPS}, got {steps}")
        unknown = set(g) - {"ref", "depth", "medium"}
        if unknown:
            raise PaintprocError(f"unknown guidance condition(s) {sorted(unknown)}; use ref, depth, medium")
        if not all(np.isfinite(v) for v in g.values()):
            raise PaintprocError(f"guidance scales must be finite numbers, got {g}")
        clip = self.frames + 1
        frames = clip if frames is None else int(frames)
        if frames < clip:
            raise PaintprocError(
                f"a {frames}-frame video is shorter than this checkpoint's {clip}-frame clips ({self.frames} generated "
                f"frames + the finished image): use --frames {clip} (or omit it), or more for a longer process sampled clip by clip"
            )
        return {"medium": medium, "sampler": sampler, "steps": steps, "guidance": g, "frames": frames}

    def prepare(self, image: np.ndarray, depth: np.ndarray) -> Prepared:
        """image [H, W, 3] in [0, 1] + depth [H, W] (1 = near; resized if its size differs) -> `Prepared`."""
        from paintproc_jax.strokes.plan import depth_layers

        image = np.asarray(image, np.float32)
        if image.ndim != 3 or image.shape[-1] != 3 or min(image.shape[:2]) < 1:
            raise PaintprocError(f"expected an image [H, W, 3], got shape {image.shape}")
        depth = np.asarray(depth, np.float32)
        if depth.ndim != 2:
            raise PaintprocError(f"expected a depth map [H, W], got shape {depth.shape}")
        s = self.size
        hw = self.output_hw(*image.shape[:2])
        image = np.clip(image, 0.0, 1.0)
        depth = np.clip(depth, 0.0, 1.0)
        ref = _resize(image, (s, s), Image.Resampling.LANCZOS)
        depth_sq = _resize(depth, (s, s))
        return Prepared(
            ref=2.0 * ref - 1.0,
            depth=depth_sq,
            layers=depth_layers(depth_sq, int(self.config.data.layers)).astype(np.int32),
            image=_resize(image, hw, Image.Resampling.LANCZOS),
            depth_out=_resize(depth, hw),
        )

    def _runner(self, sampler: str, steps: int, guidance: dict, frames: int):
        key = (sampler, steps, tuple(sorted(guidance.items())), frames)
        if key not in self._jits:
            from paintproc_jax.diffusion import continue_process, sample, sampler_kwargs

            kw = dict(frames=self.frames, sampler=sampler, steps=steps, guidance=dict(guidance), forward=True,
                      **sampler_kwargs(self.config.diffusion))
            graphdef, total = self.graphdef, frames - 1
            tubelet = kw["tubelet"]
            overlap = max(tubelet, (self.frames // 2) // tubelet * tubelet)

            def run(params, rest, cond, keys):
                model = nnx.merge(graphdef, params, rest)
                if total == self.frames:
                    out = sample(model, cond, keys, **kw)
                else:
                    out = continue_process(model, cond, keys, total_frames=total, overlap=overlap, **kw)
                return jnp.clip((out + 1.0) / 2.0, 0.0, 1.0)

            self._jits[key] = jax.jit(run, out_shardings=parallel.batch_sharding(self.mesh, 5))
        return self._jits[key]

    def sample_square(self, prepared: Sequence[Prepared], keys: Sequence, *, medium=None, sampler=None, steps=None,
                      guidance=None, frames=None) -> np.ndarray:
        """The model's own output: [B, frames, S, S, 3] in [0, 1], painting order (blank first, reference last)."""
        st = self.settings(medium=medium, sampler=sampler, steps=steps, guidance=guidance, frames=frames)
        b = len(prepared)
        if b == 0:
            return np.zeros((0, st["frames"], self.size, self.size, 3), np.float32)
        if len(keys) != b:
            raise ValueError(f"{len(keys)} keys for {b} images")
        n = self.num_devices
        padded = -(-b // n) * n
        rows = list(prepared) + [prepared[-1]] * (padded - b)  # padding repeats the last image
        key_rows = list(keys) + [keys[-1]] * (padded - b)
        medium_id = MEDIUM_ID[st["medium"]]
        from paintproc_jax.data.config import PHOTO

        cond = {
            "ref": np.stack([p.ref for p in rows]).astype(np.float32),
            "depth": np.stack([p.depth for p in rows]).astype(np.float32),
            "layers": np.stack([p.layers for p in rows]).astype(np.int32),
            "medium": np.full((padded,), medium_id, np.int32),
            "ref_medium": np.full((padded,), PHOTO, np.int32),  # the reference is a photo, not a rendering
        }
        cond = {k: jax.device_put(v, parallel.batch_sharding(self.mesh, v.ndim)) for k, v in cond.items()}
        keys_arr = jax.device_put(jnp.stack(key_rows), parallel.batch_sharding(self.mesh, 1))
        run = self._runner(st["sampler"], st["steps"], st["guidance"], st["frames"])
        with jax.set_mesh(self.mesh):
            out = run(self.params, self.rest, cond, keys_arr)
        return np.asarray(out)[:b]

    def paint_prepared(self, prepared: Sequence[Prepared], keys: Sequence, *, out_size: int | None = None, **settings) -> list[np.ndarray]:
        """Per image: frames [T, h, w, 3] in [0, 1], painting order, aspect of the image (see "fit" in
        the module doc); the last frame is the image itself at that size."""
        square = self.sample_square(prepared, keys, **settings)
        videos = []
        for p, clip in zip(prepared, square):
            hw = p.image.shape[:2] if out_size is None else self.output_hw(*p.image.shape[:2], out_size)
            frames = np.stack([_resize(f, hw, Image.Resampling.LANCZOS) for f in clip[:-1]])
            final = p.image if tuple(hw) == p.image.shape[:2] else _resize(p.image, hw, Image.Resampling.LANCZOS)
            videos.append(np.concatenate([frames, final[None]]).astype(np.float32))
        return videos

    def paint(self, images: Sequence[np.ndarray], depths: Sequence[np.ndarray], keys: Sequence, *, out_size: int | None = None,
              **settings) -> list[np.ndarray]:
        """images [H, W, 3] in [0, 1], depths [H, W], one key each (`image_key`) -> per image frames
        [1 + frames, h, w, 3] in [0, 1], painting order (blank canvas first, finished image last), at
        the image's aspect with the longer side data.size (or out_size). Settings: medium, sampler,
        steps, guidance {"ref", "depth", "medium"}, frames (video length; default the model's clip)."""
        return self.paint_prepared([self.prepare(i, d) for i, d in zip(images, depths)], keys, out_size=out_size, **settings)

    def meta(self, settings: dict) -> dict:
        """process.json fields describing the model and settings (the caller adds seed, source, name)."""
        return {
            "engine": "diffusion", "checkpoint": self.checkpoint, "step": self.step, "params": self.params_from,
            "medium": settings["medium"], "sampler": settings["sampler"], "steps": settings["steps"],
            "guidance": settings["guidance"], "fit": FIT, "model_size": self.size,
            "final_frame": "reference",  # the last frame is the input (the model's own last frame is the one before)
            "config": self.config.get("model_size", None),
        }


# -- reading images ----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Job:
    """One image to paint: `name` (output folder, and the key), `source` (for messages/metadata),
    and `read()` -> its data-source item {"key", "path" | "bytes" | "image", optional "depth_path"/"depth"}
    (read when painted, not kept)."""

    name: str
    source: str
    read: Callable[[], dict]


def output_names(paths: Sequence[pathlib.Path], root: pathlib.Path) -> dict[pathlib.Path, str]:
    """Output names per image: the stem, or (when stems collide) the relative path with its
    extension, e.g. `a/pic.png` -> `a__pic_png`, so no two images share an output."""
    import os

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


def jobs_from_source(spec: str, *, tfds_data_dir: str = "") -> list[Job]:
    """`FOLDER` / `folder:FOLDER` (images found recursively, sorted; depth sidecars) or
    `tfds:NAME/SPLIT` -> jobs, read through `paintproc_jax.data.sources` (items are read lazily)."""
    from paintproc_jax.data.sources import FolderSource, open_source

    source = open_source(spec, tfds_data_dir=tfds_data_dir)
    if isinstance(source, FolderSource):
        paths = [pathlib.Path(p) for p in source.paths]
        names = output_names(paths, source.root)
        return [Job(names[p], str(p), functools.partial(source.__getitem__, i)) for i, p in enumerate(paths)]
    if spec.startswith("programs:"):
        raise PaintprocError(f"{spec}: sampling needs images (a folder or tfds:NAME/SPLIT), not a program dataset")
    return [Job(f"{i:06d}", f"{spec}[{i}]", functools.partial(source.__getitem__, i)) for i in range(len(source))]


def jobs_from_paths(paths: Sequence[pathlib.Path], root: pathlib.Path, depth_file=None) -> list[Job]:
    """Image files -> jobs (names as `output_names`); `depth_file` is the depth of a single image."""
    from paintproc_jax.depth.files import sidecar_depth_path

    names = output_names(list(paths), root)
    jobs = []
    for p in paths:
        item = {"key": str(p), "path": str(p)}
        d = depth_file or sidecar_depth_path(p)
        if d is not None:
            item["depth_path"] = str(d)
        jobs.append(Job(names[p], str(p), functools.partial(dict, item)))
    return jobs


class InputLoader:
    """Job -> (image [H, W, 3] in [0, 1], depth [H, W], depth source). Depth: "auto" = the item's
    depth / sidecar file when there is one, else the estimator of the checkpoint's data config;
    "sidecar" = the file or an error; "estimator" = always the estimator. Images are decoded at no
    more than `max_side` pixels (a JPEG at a reduced DCT scale)."""

    def __init__(self, config: ml_collections.ConfigDict, depth: str = "auto", *, far_is_high: bool = False,
                 depth_model: str | None = None):
        if depth not in DEPTH_MODES:
            raise PaintprocError(f"unknown depth mode {depth!r}; choose one of {', '.join(DEPTH_MODES)}")
        self.depth, self.far_is_high = depth, far_is_high
        self.size = int(config.data.size)
        self.max_side = 4 * self.size
        self._name = str(config.data.get("depth_estimator", "builtin"))
        self._kwargs = {"work_size": int(config.data.get("depth_work_size", 64))} if self._name == "builtin" else {}
        if self._name != "builtin" and config.data.get("depth_model"):
            self._kwargs = {"model_dir": str(config.data.depth_model)}
        if depth_model:  # a learned estimator given for this run (`--depth-model`) wins over the checkpoint's
            self._name, self._kwargs = "depth-anything", {"model_dir": str(depth_model)}
        self._estimator = None

    def estimator(self):
        if self._estimator is None:
            from paintproc_jax.depth import get_estimator

            self._estimator = get_estimator(self._name, **self._kwargs)
        return self._estimator

    def image(self, item: dict) -> np.ndarray:
        from paintproc_jax.io.images import _to_rgb_float, load_image

        if "path" in item:  # a file: load_image's checks and messages; decoded at <= max_side
            size = None
            try:
                with Image.open(item["path"]) as im:
                    size = self.max_side if max(im.size) > self.max_side else None
            except (OSError, ValueError, SyntaxError, TypeError, Image.DecompressionBombError):
                pass  # load_image reports it
            return load_image(item["path"], size)
        if "error" in item:
            raise PaintprocError(item["error"])
        try:
            if "bytes" in item:
                from paintproc_jax.data.examples import _open_rgb

                im = _open_rgb(item["bytes"], self.size)
                rgb = np.asarray(im, np.float32) / 255.0
            else:
                arr = np.asarray(item["image"])
                if arr.ndim == 3 and arr.shape[-1] == 1:
                    arr = arr[..., 0]
                rgb = _to_rgb_float(Image.fromarray(arr)) if arr.dtype != np.uint8 or arr.ndim != 3 else arr.astype(np.float32) / 255.0
        except (OSError, ValueError, SyntaxError, TypeError, Image.DecompressionBombError) as e:
            msg = re.sub(r"\s*<_io\.BytesIO object at 0x[0-9a-f]+>", "", one_line(e))
            raise PaintprocError(f"cannot decode the image ({msg})") from None
        if rgb.ndim != 3 or rgb.shape[-1] != 3:
            raise PaintprocError(f"expected an RGB image, got shape {rgb.shape}")
        if max(rgb.shape[:2]) > self.max_side:
            from paintproc_jax.io.images import output_size

            rgb = _resize(rgb, output_size(*rgb.shape[:2], self.max_side), Image.Resampling.LANCZOS)
        return rgb

    def __call__(self, job: Job) -> tuple[np.ndarray, np.ndarray, str]:
        from paintproc_jax.depth import estimate_depth, normalize_depth

        item = job.read()
        image = self.image(item)
        if self.depth != "estimator":
            if "depth_path" in item:
                return image, estimate_depth(image, item["depth_path"], far_is_high=self.far_is_high), str(item["depth_path"])
            if item.get("depth") is not None:
                d = np.asarray(item["depth"], np.float32).squeeze()
                if d.ndim != 2 or not np.all(np.isfinite(d)):
                    raise PaintprocError(f"the depth feature must be a finite [H, W] map, got shape {d.shape}")
                return image, _resize(normalize_depth(d), image.shape[:2]), "dataset depth feature"
            if self.depth == "sidecar":
                raise PaintprocError("no depth sidecar (<stem>.depth.npy/png beside the image); use --depth auto to fall back to the estimator")
        return image, estimate_depth(image, estimator=self.estimator()), f"{self._name} estimator"


# -- batches -----------------------------------------------------------------------------------------


@dataclasses.dataclass
class Result:
    job: Job
    frames: np.ndarray  # [T, h, w, 3] in [0, 1]
    prepared: Prepared
    depth_source: str
    meta: dict
    seconds: float  # this image's share of its batch's wall time


def paint_jobs(
    painter: Painter,
    jobs: Iterable[Job],
    *,
    seed: int,
    batch_size: int,
    loader: InputLoader,
    settings: dict,
    out_size: int | None = None,
    on_error: Callable[[Job, PaintprocError], None] | None = None,
):
    """Loads, prepares and paints `jobs` in batches of `batch_size`; yields one list of `Result` per
    batch. An unreadable image calls `on_error(job, error)` (default: raise) and is left out."""
    import time

    batch_size = max(1, int(batch_size))
    jobs = list(jobs)
    for start in range(0, len(jobs), batch_size):
        t0 = time.perf_counter()
        chunk, prepared, sources = [], [], []
        for job in jobs[start : start + batch_size]:
            try:
                image, depth, depth_source = loader(job)
                p = painter.prepare(image, depth)
            except PaintprocError as e:
                if on_error is None:
                    raise
                on_error(job, e)
                continue
            chunk.append(job)
            prepared.append(p)
            sources.append(depth_source)
        if not chunk:
            continue
        keys = [image_key(seed, j.name) for j in chunk]
        videos = painter.paint_prepared(prepared, keys, out_size=out_size, **settings)
        seconds = (time.perf_counter() - t0) / len(chunk)
        base = painter.meta(painter.settings(**settings))
        yield [
            Result(job, v, p, src, {**base, "seed": int(seed), "source": job.source, "name": job.name, "depth": src}, seconds)
            for job, v, p, src in zip(chunk, videos, prepared, sources)
        ]


def write_result(target, result: Result, *, fps: float = 12.0, mp4: bool = True) -> list[str]:
    """The process folder of one result (`write_process_dir`: GIF, MP4, frames, contact sheet, depth, process.json)."""
    from paintproc_jax.io.process_dir import write_process_dir

    depth = result.prepared.depth_out
    if depth.shape != result.frames.shape[1:3]:
        depth = _resize(depth, result.frames.shape[1:3])
    return write_process_dir(target, result.frames, result.meta, depth=depth, fps=fps, mp4=mp4)
