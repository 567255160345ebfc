"""The painter: a trained model (a training checkpoint, an exported model or the shipped one) that
turns prepared images into painting-process videos (see `paintproc_jax.sampling`)."""

from __future__ import annotations

import dataclasses
import pathlib
import zlib
from typing import Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx
from PIL import Image

from paintproc_jax import parallel
from paintproc_jax.data.config import PHOTO
from paintproc_jax.diffusion import continue_process, sample, sampler_kwargs
from paintproc_jax.errors import PaintprocError, one_line
from paintproc_jax.io.images import output_size, resize_unit
from paintproc_jax.models import create_model, weights
from paintproc_jax.strokes.plan import depth_layers
from paintproc_jax.program import MEDIA, MEDIUM_ID
from paintproc_jax.train import checkpoint as checkpoint_format

FIT = "stretch"
SAMPLER_NAMES = ("euler", "heun", "ddim")  # = diffusion.samplers.SAMPLERS (checked in `Painter.settings`)
MAX_STEPS = 10_000
BUNDLED = "bundled"  # `--checkpoint bundled`: the model shipped in the package (models/weights.py)


def load_painter(checkpoint, step: int | None = None, *, devices=None) -> Painter:
    """A `Painter` from a training checkpoint (WORKDIR, WORKDIR/checkpoints or a step folder;
    `step` None = the latest), an exported model folder (`models/weights.py`) or "bundled" (the
    shipped model). PaintprocError for a missing folder, no checkpoints, an unreadable or damaged one."""


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
        ref = resize_unit(image, (s, s), Image.Resampling.LANCZOS)
        depth_sq = resize_unit(depth, (s, s))
        return Prepared(
            ref=2.0 * ref - 1.0,
            depth=depth_sq,
            layers=depth_layers(depth_sq, int(self.config.data.layers)).astype(np.int32),
            image=resize_unit(image, hw, Image.Resampling.LANCZOS),
            depth_out=resize_unit(depth, hw),
        )

    def _runner(self, sampler: str, steps: int, guidance: dict, frames: int):
        key = (sampler, steps, tuple(sorted(guidance.items())), frames)
        if key not in self._jits:
            kw = dict(frames=self.frames, sampler=sampler, steps=steps, guidance=dict(guidance), forward=True,
                      **sampler_kwargs(self.config.diffusion))
            graphdef, total = self.graphdef, frames - 1
            tubelet = kw["tubelet"]
            overlap = max(tubelet, (self.frames // 2) // tubelet * tubelet)

            def run(params, rest, cond, keys):
                model = nnx.merge(graphdef, params, rest)
                cond = model.cache_depth(cond)  # depth K/V once, not per step and guidance pass
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
            frames = np.stack([resize_unit(f, hw, Image.Resampling.LANCZOS) for f in clip[:-1]])
            final = p.image if tuple(hw) == p.image.shape[:2] else resize_unit(p.image, hw, Image.Resampling.LANCZOS)
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
            "guidance": settings["guidance"], "fit": FIT, "model_px": self.size,  # the model's square image side
            "final_frame": "reference",  # the last frame is the input (the model's own last frame is the one before)
            "model_size": self.config.get("model_size", None),  # the DiT size, as config.model_size
        }
