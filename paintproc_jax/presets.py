"""Experiment configs: a data section, a model size and the diffusion settings, kept consistent.

`configs/*.py` are thin wrappers over `experiment_config`, so every experiment file stays a few
lines and the rules that tie sections together (clip length = 1 + model frames, image size,
depth layers, tubelet) live once in `consistency.check_consistent`.
"""

from __future__ import annotations

import ml_collections

from paintproc_jax.consistency import check_consistent  # noqa: F401 - re-exported (tests, tools)
from paintproc_jax.data.config import default_config as data_config
from paintproc_jax.diffusion.objective import default_config as diffusion_config
from paintproc_jax.models.config import default_config as model_config
from paintproc_jax.program import MEDIA
from paintproc_jax.train.config import default_config as train_config

# width, blocks, heads, patch; the DiT family's names (S/B/L) and patch size.
MODEL_SIZES = {
    "tiny": dict(width=64, depth=2, heads=4, patch=4, mlp_ratio=2.0, depth_scales=2),
    "cpu": dict(width=192, depth=4, heads=6, patch=8, mlp_ratio=3.0, depth_scales=2),
    "S/8": dict(width=384, depth=12, heads=6, patch=8),
    "B/8": dict(width=768, depth=12, heads=12, patch=8),
    "B/16": dict(width=768, depth=12, heads=12, patch=16),
    "L/16": dict(width=1024, depth=24, heads=16, patch=16),
}


# Accelerator variants shared by configs/animatepainter.py and configs/loomis.py (plus "tiny").
VARIANTS = {
    "128": dict(size=128, frames=16, model="B/8"),
    "128-small": dict(size=128, frames=16, model="S/8"),
    "256": dict(size=256, frames=32, model="B/16", tubelet=2),
    "256-factorized": dict(size=256, frames=16, model="B/8", attention="factorized"),
}


def variant_config(style: str, arg: str | None = None) -> ml_collections.ConfigDict:
    """`get_config(arg)` of a style's config file: a variant of `VARIANTS` (default "128") or "tiny"."""
    arg = arg or "128"
    if arg == "tiny":
        return tiny_config(style)
    if arg == "cpu":
        return cpu_config(style)
    if arg not in VARIANTS:
        raise ValueError(f"unknown variant {arg!r}; use one of {sorted(VARIANTS) + ['cpu', 'tiny']}")
    return experiment_config(style=style, **VARIANTS[arg])


def experiment_config(
    *, style: str, size: int, frames: int, model: str, tubelet: int = 1, attention: str = "full",
    accelerator: bool = True,
) -> ml_collections.ConfigDict:
    """Full config: `data` (style "animatepainter" or "loomis"), `model`, `diffusion`, `sample`, `mesh`, `train`.

    `frames` counts generated frames; clips carry one more (the reference). `accelerator` turns on
    bf16 compute, layer scanning and rematerialisation.
    """
    if model not in MODEL_SIZES:
        raise ValueError(f"unknown model size {model!r}; sizes: {sorted(MODEL_SIZES)}")
    c = ml_collections.ConfigDict()
    c.data = data_config()
    c.data.size = size
    c.data.frames = frames + 1
    if style == "loomis":
        c.data.media = MEDIA
        c.data.end_on = "strokes"
        c.data.cross_media = 0.3
    elif style != "animatepainter":
        raise ValueError(f"unknown style {style!r}; use animatepainter or loomis")
    c.model = model_config()
    c.model.update(MODEL_SIZES[model])
    c.model.update(image_size=size, frames=frames, tubelet=tubelet, attention=attention, depth_layers=c.data.layers)
    if accelerator:
        c.model.update(dtype="bfloat16", scan_layers=True, remat="dots_no_batch")
    c.diffusion = diffusion_config()
    c.diffusion.tubelet = tubelet
    c.diffusion.window = frames  # clips longer than the model (data.frames > frames + 1) train on windows
    c.sample = ml_collections.ConfigDict(dict(sampler="euler", steps=32, guidance=dict(ref=1.0, depth=1.0, medium=1.0)))
    # axis sizes (one may be -1: the rest of the devices); num_devices=0: all devices, N: the first N
    c.mesh = ml_collections.ConfigDict(dict(data=-1, fsdp=1, context=1, tensor=1, num_devices=0))
    c.train = train_config()
    c.total_steps = 100_000  # length of the run (--config.total_steps=N)
    c.model_size = model
    return c


def tiny_config(style: str = "animatepainter") -> ml_collections.ConfigDict:
    """CPU-tiny experiment: 32 px, 1 + 5 frames, 24 strokes, a 2-block width-64 DiT; seconds per step."""
    c = experiment_config(style=style, size=32, frames=5, model="tiny", accelerator=False)
    c.data.update(strokes=24, layers=2, levels=2, batch_size=4, workers=0, depth_work_size=32)
    c.model.depth_layers = 2
    c.sample.steps = 8
    c.total_steps = 20
    c.train.update(log_every=1, ckpt_every=10, sample_every=10, ema_decay=0.99)
    c.train.optim.update(lr=1e-3, warmup_steps=5)
    return c


def cpu_config(style: str = "animatepainter") -> ml_collections.ConfigDict:
    """CPU reference run: 64 px, 1 + 8 frames, a 4-block width-192 DiT (patch 8, 3.82 M parameters, ref_mix head),
    1200 steps of 8 clips (~80 min per run with two runs side by side, one core each). Photos from `tools/make_photos.py --out photos`:
    trains on photos/train, samples photos/heldout (never trained on) every `sample_every` steps."""
    c = experiment_config(style=style, size=64, frames=8, model="cpu", accelerator=False)
    c.model.ref_in_frames = True
    c.model.output_head = "ref_mix"  # x0 = gate * ref + (1 - gate) * colour: detail inside a patch from the reference
    c.diffusion.objective = "flow_x0"  # predicting ε − x0 with patch 8 at width 192 sampled 8x8-patch noise (docs/architecture.md)
    c.data.update(source="folder:photos/train", strokes=128, layers=3, levels=2, batch_size=8, workers=1,
                  depth_work_size=64, crop_scale=(0.35, 1.0), stroke_scale=(0.8, 1.2))
    c.sample.steps = 16
    c.total_steps = 1200
    c.train.update(log_every=10, ckpt_every=100, keep_checkpoints=2, sample_every=300, sample_count=3,
                   sample_source="photos/heldout", ema_decay=0.99)
    c.train.optim.update(lr=5e-4, warmup_steps=100)
    return c
