"""CPU-tiny experiment: 32 px clips of 1 reference + 5 generated frames, a 2-block width-64 DiT.

    get_config()          AnimatePainter-style data
    get_config("loomis")  Loomis-style data (five media, cross-media references)

Params 0.26 M, forward 0.17 GFLOP per clip (`python tools/bench_model.py --config configs/tiny.py`).
CI and smoke runs use it. get_sweep(): attention full/factorized x objective flow/v (`tools/sweep.py`).

Every setting it sets is in `TINY` and `STYLES` below, and `presets.assemble` applies exactly those
(the same as the "tiny" variant of configs/animatepainter.py and configs/loomis.py).
A key not listed takes its section default: paintproc_jax/data/config.py (data),
paintproc_jax/models/config.py (model: `ModelSpec`, and `MODEL_SIZES[model_size]` over it),
paintproc_jax/diffusion/objective.py (diffusion) and paintproc_jax/train/config.py (train).
`--config.KEY=VALUE` on the command line overrides any key after that.
"""

from paintproc_jax.presets import assemble
from paintproc_jax.program import MEDIA
from paintproc_jax.sweeps import product

# The data styles of configs/animatepainter.py and configs/loomis.py.
STYLES = {
    "animatepainter": dict(media=("oil",), end_on="image", cross_media=0.0),
    "loomis": dict(media=MEDIA, end_on="strokes", cross_media=0.3),
}

# data.frames = 1 + model.frames; data.layers = model.depth_layers; diffusion.tubelet = model.tubelet;
# diffusion.window = model.frames (checked by `presets.assemble`). fp32, unscanned: seconds per step.
TINY = dict(
    model_size="tiny",
    data=dict(size=32, frames=1 + 5, layers=2, batch_size=4, strokes=24, levels=2, workers=0, depth_work_size=32),
    model=dict(dtype="float32", scan_layers=False, remat="none", image_size=32, frames=5, tubelet=1, attention="full",
               depth_layers=2),
    diffusion=dict(tubelet=1, window=5),
    sample=dict(sampler="euler", steps=8, guidance=dict(ref=1.0, depth=1.0, medium=1.0)),
    # axis sizes (one may be -1: the rest of the devices); num_devices=0: all devices, N: the first N
    mesh=dict(data=-1, fsdp=1, context=1, tensor=1, num_devices=0),
    train=dict(log_every=1, ckpt_every=10, sample_every=10, ema_decay=0.99, optim=dict(lr=1e-3, warmup_steps=5)),
    total_steps=20,
)


def get_config(arg: str | None = None):
    style = arg or "animatepainter"
    if style not in STYLES:
        raise ValueError(f"unknown variant {style!r}; use one of {sorted(STYLES)}")
    return assemble(**dict(TINY, data=dict(STYLES[style], **TINY["data"])))


def get_sweep(arg: str | None = None):
    """A 4-run sweep for tests and smoke runs of `tools/sweep.py`: attention mode x diffusion objective."""
    del arg  # the same sweep for both data styles
    return product({"model.attention": ("full", "factorized"), "diffusion.objective": ("flow", "v")})
