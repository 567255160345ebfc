"""Device side of the pipeline: a batch of examples (programs + images) -> reverse-painting clips.

Jitted; call it inside the train step (frames never cross the host-device link) or on the host
for previews and benchmarks. Per example: stroke frames in the process medium (one render pass,
`raster.render_frames`), then (end_on="image") reveal frames ending on the image; the clip is
that process reversed, so frame 0 is the reference and the last frame the blank canvas. With
cross-media augmentation, frame 0 is replaced by the reference in another medium (a rendering of
the same strokes, or the photo).
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import ml_collections

from paintproc_jax.data.config import PHOTO, frame_split
from paintproc_jax.data.examples import plan_config
from paintproc_jax.program import MEDIUM_ID, StrokeProgram
from paintproc_jax.strokes import plan as plan_lib
from paintproc_jax.strokes import raster
from paintproc_jax.strokes.process import reveal_frames


@dataclasses.dataclass(frozen=True)
class ClipSpec:
    """Everything static about rendering a config's clips (hashable: a jit static argument)."""

    size: int
    stroke_frames: int
    reveal_frames: int
    end_on: str
    layouts: tuple[raster.Layout, ...]  # one per order policy in `config.orders`
    media: tuple[int, ...]  # process media in use
    ref_media: tuple[int, ...]  # reference media that need a rendering (no PHOTO)
    batch_mode: str  # "map" (one example at a time: in-place updates, best on CPU) or "vmap"

    @property
    def frames(self) -> int:
        """Frames per clip: blank + strokes + reveal, plus the reference with end_on="strokes"."""
        return 1 + self.stroke_frames + self.reveal_frames + (self.end_on == "strokes")


def clip_spec(config: ml_collections.ConfigDict, batch_mode: str | None = None) -> ClipSpec:
    """The static render spec of a data config; `batch_mode` defaults to "map" on CPU, else "vmap"."""
    c = config
    hw = (c.size, c.size)
    layouts = tuple(
        plan_lib.slot_layout(plan_config(c, order, c.media[0], c.stroke_scale[1]), hw, media=tuple(dict.fromkeys(tuple(c.media) + _rendered(c))), max_scale=c.stroke_scale[1])
        for order in c.orders
    )
    strokes, reveal = frame_split(c)
    mode = batch_mode or ("map" if jax.default_backend() == "cpu" else "vmap")
    if mode not in ("map", "vmap"):
        raise ValueError(f"batch_mode must be 'map' or 'vmap', got {mode!r}")
    ref = tuple(sorted({MEDIUM_ID[m] for m in _rendered(c)}))
    return ClipSpec(c.size, strokes, reveal, c.end_on, layouts, tuple(MEDIUM_ID[m] for m in c.media), ref, mode)


def _rendered(c) -> tuple[str, ...]:
    """Reference media that may need a rendering (only with cross-media augmentation)."""
    return tuple(m for m in c.ref_media if m != "photo") if c.cross_media > 0 else ()


def _program(ex: dict) -> StrokeProgram:
    return StrokeProgram(
        params=ex["params"], layer=ex["stroke_layer"], level=ex["stroke_level"], valid=ex["valid"],
        frame_ends=ex["frame_ends"], medium=ex["medium"], canvas_hw=jnp.ones(2, jnp.float32),
        background=ex["background"],
    )


def _by_medium(fn, medium, media: tuple[int, ...], specialise: bool):
    """fn(medium) for a traced medium id: a switch over renderers specialised to each medium in use
    (only the taken branch runs inside `lax.map`), or one renderer reading the medium table."""
    if not specialise:
        return fn(None)
    if len(media) == 1:
        return fn(media[0])
    branch = jnp.argmax(jnp.asarray(media) == medium)
    return jax.lax.switch(branch, [functools.partial(fn, m) for m in media])


def _clip(ex: dict, layout: raster.Layout, spec: ClipSpec) -> jax.Array:
    """One example -> clip [T, S, S, 3] in [0, 1], reference first, blank canvas last.

    end_on="image": the reversed process (image, reveal, strokes, blank); frame 0 is the image,
    or with cross-media its rendering in the reference medium. end_on="strokes": frame 0 is the
    reference, then the reversed process from the finished painting (frame 1) to the blank.
    """
    hw = (spec.size, spec.size)
    program = _program(ex)
    specialise = spec.batch_mode == "map"
    # Small clips of narrow strokes: skip the bristle octaves no stroke of a run shows (half the render).
    strokes = _by_medium(lambda m: raster.render_frames(program, hw, layout, 0.0, m, skip_octaves=True), ex["medium"], spec.media, specialise)
    blank = jnp.broadcast_to(ex["background"], (1, *hw, 3))
    image = ex["image"].astype(jnp.float32) / 255.0
    parts = [blank, strokes]
    if spec.end_on == "image":
        parts.append(reveal_frames(strokes[-1], image, ex["depth"], spec.reveal_frames))
    process = jnp.clip(jnp.concatenate(parts)[::-1], 0.0, 1.0)  # reversed: finished -> blank

    # The reference: the process's own end, the photo, or the strokes rendered in another medium.
    own = PHOTO if spec.end_on == "image" else ex["medium"]
    ref = ex["ref_medium"]
    renders = [
        functools.partial(lambda m: jnp.clip(raster.render(program, hw, layout, 0.0, m if specialise else None), 0.0, 1.0), m)
        for m in spec.ref_media
    ]
    branches = [lambda: process[0], lambda: image] + renders
    index = jnp.where(ref == own, 0, jnp.where(ref == PHOTO, 1, 2 + jnp.argmax(jnp.asarray(spec.ref_media + (-1,)) == ref)))
    if spec.end_on == "image":
        if not renders:
            return process  # the reference is always the image itself
        return process.at[0].set(jax.lax.switch(index, branches))
    return jnp.concatenate([jax.lax.switch(index, branches)[None], process])


def render_clips(batch: dict, spec: ClipSpec) -> dict:
    """Batch of examples (leading axis B) -> {clip [B, T, S, S, 3] float32, depth, layers, medium, ref_medium}.

    Frame 0 of `clip` is the reference (never noised in training), the last frame the blank
    canvas. The batch's order policy (`order`, one per batch) picks the static layout.
    """

    def with_layout(layout):
        one = functools.partial(_clip, layout=layout, spec=spec)
        return jax.vmap(one)(batch) if spec.batch_mode == "vmap" else jax.lax.map(one, batch)

    if len(spec.layouts) == 1:
        clip = with_layout(spec.layouts[0])
    else:
        clip = jax.lax.switch(batch["order"][0], [functools.partial(with_layout, lay) for lay in spec.layouts])
    return {
        "clip": clip,
        "depth": batch["depth"],
        "layers": batch["layers"].astype(jnp.int32),
        "medium": batch["medium"],
        "ref_medium": batch["ref_medium"],
    }


render_clips_jit = jax.jit(render_clips, static_argnames=("spec",))
