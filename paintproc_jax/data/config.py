"""The `data` section of a training config (ml_collections), its defaults and validation.

Every field is plain data so a sweep can override it (`--config.data.strokes=384`). Ranges
`(lo, hi)` are drawn uniformly per example, from the example's own seed.
"""

from __future__ import annotations

import ml_collections

from paintproc_jax.program import MEDIA
from paintproc_jax.strokes.plan import ORDER_POLICIES
from paintproc_jax.strokes.schedule import split_frames

PHOTO = len(MEDIA)  # `ref_medium` id of a reference that is the image itself, not a rendering
END_ON = ("image", "strokes")
DEPTH_MODES = ("auto", "estimator", "sidecar", "feature")


def default_config() -> ml_collections.ConfigDict:
    """Defaults: AnimatePainter-style clips (one medium, ending on the real image) at 128 px."""
    c = ml_collections.ConfigDict()
    # Where images come from: "folder:DIR" (or just DIR), "tfds:NAME/SPLIT", "programs:DIR" (make_dataset shards).
    c.source = ""
    c.tfds_data_dir = ""  # data_dir for tfds sources ("" = TFDS's default)
    c.image_key = "image"  # tfds feature holding the image
    c.depth_key = ""  # tfds feature holding a depth map ("" = none)
    # Depth: "auto" = dataset feature or sidecar file when there is one, else the estimator.
    c.depth = "auto"
    c.depth_estimator = "builtin"  # or "depth-anything" (a learned estimator; set depth_model)
    c.depth_work_size = 64  # the builtin estimator's internal resolution (depth is smooth: small is fine)
    c.depth_model = ""  # checkpoint folder of a learned estimator (tools/convert_weights.py output or a transformers folder)
    # Clips.
    c.size = 128  # square crops, pixels
    c.frames = 16  # frames per clip, reference (frame 0) and blank canvas (last) included
    c.end_on = "image"  # the process ends on the real "image" (strokes + reveal) or on its "strokes"
    c.reveal_fraction = 0.15  # share of the frames that reveal the residual (end_on="image")
    c.frame_jitter = 0.3  # relative jitter of the number of strokes per frame
    # Augmentation.
    c.crop_scale = (0.6, 1.0)  # crop side as a fraction of the image's shorter side
    c.flip = True
    # Stroke plan (slot mode: one static render layout per order policy).
    c.strokes = 256  # slots per program (N)
    c.layers = 3
    c.levels = 4
    c.fill = (0.7, 1.0)  # fraction of the finer levels' slots used (stroke-count jitter)
    c.stroke_scale = (0.85, 1.15)  # brush size jitter
    c.orders = ("level-major",)  # policies, drawn per batch (they differ in layout); also "layer-major"
    # Media (Loomis Painter): the process medium is drawn per example from `media`; with
    # probability `cross_media` the reference (frame 0) is shown in another of `ref_media`
    # ("photo" = the image itself). With end_on="strokes", frame 0 is the reference and frame 1
    # the finished painting in the process medium (the same picture when not crossing media).
    c.media = ("oil",)
    c.cross_media = 0.0
    c.ref_media = MEDIA + ("photo",)
    # Batching and loading.
    c.batch_size = 8  # global
    c.seed = 0
    c.shuffle = True
    c.num_epochs = -1  # -1 = repeat forever
    c.workers = 2  # grain worker processes (0 = in the main process)
    c.worker_buffer = 2  # batches each worker prepares ahead
    return c


def validate(c: ml_collections.ConfigDict) -> None:
    """Raises ValueError with a clear message for a bad data config (called before any work)."""

    def fail(msg):
        raise ValueError(f"data config: {msg}")

    if not c.source:
        fail("`source` is empty; give folder:DIR, tfds:NAME/SPLIT or programs:DIR")
    if c.depth not in DEPTH_MODES:
        fail(f"depth={c.depth!r}; choose one of {', '.join(DEPTH_MODES)}")
    if c.end_on not in END_ON:
        fail(f"end_on={c.end_on!r}; choose one of {', '.join(END_ON)}")
    if c.depth_estimator == "depth-anything":
        if not c.depth_model:
            fail("depth_estimator='depth-anything' needs depth_model=DIR (a converted or transformers checkpoint folder)")
        if c.workers > 0 and c.depth != "sidecar":
            fail("a learned depth estimator runs jitted in the main process (on the accelerator), not in data workers: "
                 "set workers=0, or precompute depth once with tools/make_dataset.py --depth-model DIR")
    if not 16 <= c.size <= 4096:
        fail(f"size={c.size} must be in [16, 4096] pixels")
    if c.frames < 3:
        fail(f"frames={c.frames}: a clip needs at least 3 frames (reference, strokes, blank)")
    if c.end_on == "image" and c.frames < 4:
        fail("end_on='image' needs at least 4 frames (reference, reveal, strokes, blank)")
    if not 0.0 < c.reveal_fraction < 1.0:
        fail(f"reveal_fraction={c.reveal_fraction} must be in (0, 1)")
    if not 0.0 <= c.frame_jitter < 1.0:
        fail(f"frame_jitter={c.frame_jitter} must be in [0, 1)")
    for name, lo_min, hi_max in (("crop_scale", 0.05, 1.0), ("fill", 0.01, 1.0), ("stroke_scale", 0.1, 4.0)):
        r = tuple(getattr(c, name))
        if len(r) != 2 or not lo_min <= r[0] <= r[1] <= hi_max:
            fail(f"{name}={r} must be (lo, hi) with {lo_min} <= lo <= hi <= {hi_max}")
    if c.strokes < 1 or c.layers < 1 or c.levels < 1:
        fail("strokes, layers and levels must be at least 1")
    if not c.orders or any(o not in ORDER_POLICIES for o in c.orders):
        fail(f"orders={tuple(c.orders)}; each must be one of {', '.join(ORDER_POLICIES)}")
    if not c.media or any(m not in MEDIA for m in c.media):
        fail(f"media={tuple(c.media)}; each must be one of {', '.join(MEDIA)}")
    if any(m not in MEDIA + ("photo",) for m in c.ref_media):
        fail(f"ref_media={tuple(c.ref_media)}; each must be one of {', '.join(MEDIA + ('photo',))}")
    if not 0.0 <= c.cross_media <= 1.0:
        fail(f"cross_media={c.cross_media} must be a probability")
    if c.batch_size < 1:
        fail(f"batch_size={c.batch_size} must be positive")
    if c.workers < 0 or c.worker_buffer < 1:
        fail("workers must be >= 0 and worker_buffer >= 1")
    if c.num_epochs == 0 or c.num_epochs < -1:
        fail(f"num_epochs={c.num_epochs}: use a positive count or -1 (forever)")


def frame_split(c: ml_collections.ConfigDict) -> tuple[int, int]:
    """(stroke frames, reveal frames) of a clip. The other frames: the blank canvas, and with
    end_on="strokes" the reference (frame 0, before the finished painting at frame 1)."""
    if c.end_on == "strokes":
        return c.frames - 2, 0
    return split_frames(c.frames, c.reveal_fraction)
