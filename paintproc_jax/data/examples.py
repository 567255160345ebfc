"""Worker side of the pipeline: source item -> one training example (NumPy only, fixed shapes).

Per example, deterministically from its seed: decode -> random square crop / resize / flip ->
depth -> stroke plan in slot mode (jittered brush size, stroke count, medium) -> frame schedule.
The example is compact (uint8 image, depth, a program of N slots); frames are rendered later,
in batch, by the jitted renderer (`paintproc_jax.data.clips`).
"""

from __future__ import annotations

import io
import logging

import ml_collections
import numpy as np
from PIL import Image, ImageOps

from paintproc_jax.data.config import PHOTO, frame_split
from paintproc_jax.data.records import decode_record
from paintproc_jax.depth import estimate_depth, get_estimator, load_depth_file, normalize_depth
from paintproc_jax.errors import PaintprocError, one_line
from paintproc_jax.io.images import to_rgb_float, to_uint8
from paintproc_jax.program import MEDIA, MEDIUM_ID, P, StrokeProgram
from paintproc_jax.strokes import plan as plan_lib
from paintproc_jax.strokes.schedule import frame_schedule

log = logging.getLogger(__name__)

MAX_TRIES = 16  # unreadable items skipped (in a row) before an example gives up
_MODES_AS_IS = ("RGB", "L")


class BadItem(Exception):
    """An item that cannot become an example (corrupt image, bad depth): skipped and counted."""

    def __init__(self, message: str, kind: str = "image"):
        super().__init__(message)
        self.kind = kind  # "image" or "depth"


def plan_config(c: ml_collections.ConfigDict, order: str, medium: str, scale: float = 1.0, fill: float = 1.0) -> plan_lib.PlanConfig:
    """The slot-mode plan config of one example (the static layout depends only on order/media)."""
    return plan_lib.PlanConfig(
        strokes=c.strokes, layers=c.layers, levels=c.levels, order=order, medium=medium,
        slots=True, size_scale=float(scale), fill=float(fill),
    )


def batch_order(c: ml_collections.ConfigDict, batch_index: int) -> int:
    """Order policy id of a batch (policies differ in render layout, so a batch shares one)."""
    if len(c.orders) == 1:
        return 0
    return int(np.random.default_rng([c.seed, batch_index, 0x0DE5]).integers(len(c.orders)))


# -- decoding and augmentation ---------------------------------------------------------------------


def open_rgb(data: bytes, need_side: float) -> Image.Image:
    """Encoded bytes -> RGB Pillow image, JPEGs decoded at the smallest DCT scale that keeps
    `need_side` pixels on the shorter side."""
    im = Image.open(io.BytesIO(data))
    if im.format == "JPEG" and im.mode == "RGB":
        w, h = im.size
        f = min(1.0, need_side / max(1, min(w, h)))
        im.draft("RGB", (max(1, int(w * f)), max(1, int(h * f))))
    im.load()
    im = ImageOps.exif_transpose(im)
    if im.mode not in _MODES_AS_IS:
        return Image.fromarray(to_uint8(to_rgb_float(im)))  # alpha over white, 16-bit, palette ...
    return im.convert("RGB") if im.mode != "RGB" else im


def _crop_box(w: int, h: int, scale: float, rng: np.random.Generator) -> tuple[float, float, float, float]:
    side = scale * min(w, h)
    x0 = rng.uniform(0, w - side)
    y0 = rng.uniform(0, h - side)
    return (x0, y0, x0 + side, y0 + side)


def _resize_box(im: Image.Image, size: int, box) -> np.ndarray:
    return np.asarray(im.resize((size, size), Image.Resampling.BILINEAR, box=box, reducing_gap=2.0))


def _crop_depth(depth: np.ndarray, size: int, box_frac) -> np.ndarray:
    """Same crop (given as fractions of the image) of a float depth map, resized to size x size."""
    h, w = depth.shape
    box = (box_frac[0] * w, box_frac[1] * h, box_frac[2] * w, box_frac[3] * h)
    out = np.asarray(Image.fromarray(np.ascontiguousarray(depth, np.float32)).resize((size, size), Image.Resampling.BILINEAR, box=box))
    return np.clip(out, 0.0, 1.0)


def flip_program(program: StrokeProgram) -> StrokeProgram:
    """Mirror left-right (for flipped images): x -> W - x, angle -> pi - angle, bend -> -bend."""
    p = program.params.copy()
    p[:, P["x"]] = program.canvas_hw[1] - p[:, P["x"]]
    p[:, P["angle"]] = np.pi - p[:, P["angle"]]
    p[:, P["bend"]] = -p[:, P["bend"]]
    return program._replace(params=p)


def visible_frame_ends(valid: np.ndarray, frames: int, rng: np.random.Generator, jitter: float) -> np.ndarray:
    """Frame ends (slot positions) that spread the *valid* strokes over `frames` frames. [frames]"""
    where = np.flatnonzero(valid)
    counts = frame_schedule(len(where), frames, rng, jitter)  # cumulative visible strokes
    ends = np.where(counts > 0, where[np.maximum(counts, 1) - 1] + 1, 0)
    ends[-1] = len(valid)
    return ends.astype(np.int32)


# -- the example maker ------------------------------------------------------------------------------


class ExampleMaker:
    """`map_with_index` transform: (stream position k, source index) -> example dict.

    Randomness comes from (seed, global position), so an example is identical whatever the
    number of workers, and resuming from a saved iterator state replays it exactly. An
    unreadable item is replaced by the next source index (counted in `bad_reads`), which keeps
    batch boundaries, and so the per-batch order policy, deterministic.
    """

    def __init__(self, source, config: ml_collections.ConfigDict, *, local_batch: int, process_index: int = 0, process_count: int = 1):
        self.source = source
        self.c = ml_collections.ConfigDict(config.to_dict())  # plain, unlocked copy (picklable)
        self.local_batch = local_batch
        self.process_index, self.process_count = process_index, process_count
        self.strokes_frames, self.reveal_frames = frame_split(self.c)
        self._estimator = None

    # Example layout (shapes and dtypes), used to check batches and to document them.
    def spec(self) -> dict[str, tuple[tuple[int, ...], type]]:
        s, n = self.c.size, self.c.strokes
        return {
            "image": ((s, s, 3), np.uint8), "depth": ((s, s), np.float32), "layers": ((s, s), np.uint8),
            "params": ((n, len(P)), np.float32), "valid": ((n,), np.bool_),
            "stroke_layer": ((n,), np.int32), "stroke_level": ((n,), np.int32),
            "frame_ends": ((self.strokes_frames,), np.int32), "background": ((3,), np.float32),
            "medium": ((), np.int32), "ref_medium": ((), np.int32), "order": ((), np.int32),
            "index": ((), np.int64), "bad_reads": ((), np.int32),
        }

    def __call__(self, k: int, source_index: int) -> dict:
        c = self.c
        global_pos = self.process_index + int(k) * self.process_count
        rng = np.random.default_rng([c.seed, global_pos])
        order = batch_order(c, int(k) // self.local_batch)
        bad = 0
        for attempt in range(MAX_TRIES):
            index = (int(source_index) + attempt) % len(self.source)
            try:
                ex = self._example(self.source[index], rng, order)
            except BadItem as e:
                bad += 1
                log.warning("skipping %s", e)
                continue
            ex["index"] = np.int64(index)
            ex["bad_reads"] = np.int32(bad)
            return ex
        raise PaintprocError(f"{MAX_TRIES} unreadable items in a row from {self.source!r} (last at index {index}); is the dataset broken?")

    # -- one item -------------------------------------------------------------------------------

    def _example(self, item: dict, rng: np.random.Generator, order: int) -> dict:
        c = self.c
        if "record" in item:
            return self.from_record(item, rng)
        image, depth = self.load(item, rng)
        medium, ref_medium = self._media(rng)
        order_name = c.orders[order]
        cfg = plan_config(c, order_name, MEDIA[medium], rng.uniform(*c.stroke_scale), rng.uniform(*c.fill))
        program = plan_lib.plan_strokes(image.astype(np.float32) / 255.0, depth, cfg, seed=int(rng.integers(2**31)))
        return self._pack(image, depth, program, medium, ref_medium, order, rng)

    def load(self, item: dict, rng: np.random.Generator, *, estimate: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        """Decode, crop, resize, flip; depth from the item or the estimator -> (uint8 [S,S,3], [S,S]).
        `estimate=False`: depth None when the item has none (the caller estimates a batch at once)."""
        c = self.c
        scale = rng.uniform(*c.crop_scale)
        flip = bool(c.flip) and rng.random() < 0.5
        key = item["key"]
        if "error" in item:
            raise BadItem(item["error"])
        try:
            if "bytes" in item:
                im = open_rgb(item["bytes"], c.size / scale)
            else:
                arr = np.asarray(item["image"])
                im = Image.fromarray(arr if arr.dtype == np.uint8 and arr.ndim == 3 and arr.shape[-1] == 3 else to_uint8(to_rgb_float(Image.fromarray(arr.squeeze()))))
            w, h = im.size
            box = _crop_box(w, h, scale, rng)
            image = _resize_box(im, c.size, box)
        except (OSError, ValueError, SyntaxError, TypeError, Image.DecompressionBombError) as e:
            raise BadItem(f"{key}: cannot decode image ({one_line(e)})") from None
        frac = (box[0] / w, box[1] / h, box[2] / w, box[3] / h)
        depth = self._given_depth(item, (h, w), key)
        if depth is not None:
            depth = _crop_depth(depth, c.size, frac)
        if flip:
            image = image[:, ::-1]
            depth = None if depth is None else depth[:, ::-1]
        if depth is None:
            if not estimate:
                return np.ascontiguousarray(image), None
            depth = estimate_depth(image, estimator=self.get_estimator())
        return np.ascontiguousarray(image), np.ascontiguousarray(depth, np.float32)

    def _given_depth(self, item: dict, hw: tuple[int, int], key: str) -> np.ndarray | None:
        mode = self.c.depth
        if mode == "estimator":
            return None
        if "depth" in item and mode in ("auto", "feature"):
            d = np.asarray(item["depth"], np.float32).squeeze()
            if d.ndim != 2 or not np.all(np.isfinite(d)):
                raise BadItem(f"{key}: depth feature must be a finite [H, W] map, got shape {d.shape}", "depth")
            return normalize_depth(d)
        if "depth_path" in item and mode in ("auto", "sidecar"):
            try:
                return load_depth_file(item["depth_path"], hw)
            except PaintprocError as e:
                raise BadItem(str(e), "depth") from None
        if mode in ("feature", "sidecar"):
            raise BadItem(f"{key}: no depth {mode} (data.depth={mode!r}; use 'auto' to fall back to the estimator)", "depth")
        return None

    def get_estimator(self):
        """The configured depth estimator (built once per worker)."""
        if self._estimator is None:
            kwargs = {}
            if self.c.depth_estimator == "builtin":
                kwargs = {"work_size": self.c.depth_work_size}
            elif self.c.depth_model:
                kwargs = {"model_dir": self.c.depth_model}
            self._estimator = get_estimator(self.c.depth_estimator, **kwargs)
        return self._estimator

    def _media(self, rng: np.random.Generator) -> tuple[int, int]:
        """(process medium, reference medium) ids; the reference is PHOTO or a rendering."""
        c = self.c
        medium = MEDIUM_ID[c.media[int(rng.integers(len(c.media)))]]
        own = PHOTO if c.end_on == "image" else medium
        if rng.random() < c.cross_media:
            others = [PHOTO if m == "photo" else MEDIUM_ID[m] for m in c.ref_media]
            others = [m for m in others if m != own and not (c.end_on == "image" and m == PHOTO)]
            if others:
                return medium, int(others[int(rng.integers(len(others)))])
        return medium, own

    def from_record(self, item: dict, rng: np.random.Generator) -> dict:
        """A program-dataset record: resized to the clip size, flipped, new media and schedule."""
        c = self.c
        try:
            rec = decode_record(item["record"])
        except Exception as e:  # corrupt record bytes
            raise BadItem(f"{item['key']}: cannot decode record ({one_line(e)})") from None
        image, depth, program = rec["image"], rec["depth"], rec["program"]
        if image.shape[:2] != (c.size, c.size):
            image = _resize_box(Image.fromarray(image), c.size, None)
            depth = _crop_depth(depth, c.size, (0.0, 0.0, 1.0, 1.0))
        if bool(c.flip) and rng.random() < 0.5:
            image, depth, program = image[:, ::-1], depth[:, ::-1], flip_program(program)
        medium, ref_medium = self._media(rng)
        return self._pack(np.ascontiguousarray(image), np.ascontiguousarray(depth), program, medium, ref_medium, 0, rng)

    def _pack(self, image, depth, program: StrokeProgram, medium: int, ref_medium: int, order: int, rng) -> dict:
        c = self.c
        if program.num_strokes != c.strokes:
            raise PaintprocError(f"program has {program.num_strokes} strokes, the data config wants {c.strokes}")
        return {
            "image": image,
            "depth": depth.astype(np.float32),
            "layers": plan_lib.depth_layers(depth, c.layers).astype(np.uint8),
            "params": program.params,
            "valid": program.valid,
            "stroke_layer": program.layer,
            "stroke_level": program.level,
            "frame_ends": visible_frame_ends(program.valid, self.strokes_frames, rng, c.frame_jitter),
            "background": np.asarray(program.background, np.float32),
            "medium": np.int32(medium),
            "ref_medium": np.int32(ref_medium),
            "order": np.int32(order),
        }
