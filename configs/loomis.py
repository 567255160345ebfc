"""Loomis-style experiments: five media, processes ending on the strokes, cross-media references, depth fusion on.

    get_config()                   "128": 128 px, 1 + 16 frames, DiT-B/8, full space-time attention
    get_config("128-small")        128 px, 1 + 16 frames, DiT-S/8 (37% of the FLOPs of "128")
    get_config("256")              256 px, 1 + 32 frames, DiT-B/16 with tubelets of 2 frames, full attention
    get_config("256-factorized")   256 px, 1 + 16 frames, DiT-B/8, spatial-then-temporal attention
    get_config("cpu")              64 px, 1 + 8 frames, the CPU reference run's 3.8 M-parameter DiT on this data style
    get_config("tiny")             the CPU-tiny model on this data style (as configs/tiny.py:loomis)

Params and forward FLOPs per clip (`python tools/bench_model.py --config configs/loomis.py:ARG`):
    128              params 170.6 M   forward 1,630 GFLOP/clip (4,352 tokens + 336 depth tokens)
    128-small        params  43.0 M   forward   596 GFLOP/clip (4,352 tokens + 336 depth tokens)
    256              params 173.6 M   forward 1,648 GFLOP/clip (4,352 tokens + 336 depth tokens)
    256-factorized   params 220.2 M   forward 6,025 GFLOP/clip (17,408 tokens + 1,344 depth tokens)
Training costs 3x the forward FLOPs; at 128 px, 46% of the forward FLOPs are attention.
get_sweep(): cross-media references 0/0.3 x reference dropout 0/0.1 (`python tools/sweep.py --config configs/loomis.py:ARG`).

Every setting a variant sets is in `VARIANTS` below, and `presets.assemble` applies exactly those.
A key not listed takes its section default: paintproc_jax/data/config.py (data),
paintproc_jax/models/config.py (model: `ModelSpec`, and `MODEL_SIZES[model_size]` over it),
paintproc_jax/diffusion/objective.py (diffusion) and paintproc_jax/train/config.py (train).
`--config.KEY=VALUE` on the command line overrides any key after that.
"""

from paintproc_jax.presets import assemble
from paintproc_jax.program import MEDIA
from paintproc_jax.sweeps import product

# The data style: all five media, processes end on the strokes, 30% of references shown in another medium.
STYLE = dict(media=MEDIA, end_on="strokes", cross_media=0.3)

ACCELERATOR = dict(dtype="bfloat16", scan_layers=True, remat="dots_no_batch")  # bf16 compute, scanned, rematerialised blocks
CPU = dict(dtype="float32", scan_layers=False, remat="none")
SAMPLE = dict(sampler="euler", steps=32, guidance=dict(ref=1.0, depth=1.0, medium=1.0))
# Axis sizes (one may be -1: the rest of the devices); num_devices=0: all devices, N: the first N.
MESH = dict(data=-1, fsdp=1, context=1, tensor=1, num_devices=0)
# The accelerator runs' training: AdamW (train section) at lr 1e-4 after 1000 warmup steps, EMA 0.9999.
TRAIN = dict(log_every=50, ckpt_every=1000, sample_every=5000, ema_decay=0.9999, optim=dict(lr=1e-4, warmup_steps=1000))

# data.frames = 1 + model.frames (the reference, then the generated frames); data.layers = model.depth_layers;
# diffusion.tubelet = model.tubelet; diffusion.window = model.frames (longer clips train on windows).
# `presets.assemble` checks these ties (consistency.check_consistent).
VARIANTS = {
    "128": dict(
        model_size="B/8",
        data=dict(STYLE, size=128, frames=1 + 16, layers=3, batch_size=8),
        model=dict(ACCELERATOR, image_size=128, frames=16, tubelet=1, attention="full", depth_layers=3),
        diffusion=dict(tubelet=1, window=16),
        sample=SAMPLE, mesh=MESH, train=TRAIN, total_steps=100_000,
    ),
    "128-small": dict(
        model_size="S/8",
        data=dict(STYLE, size=128, frames=1 + 16, layers=3, batch_size=8),
        model=dict(ACCELERATOR, image_size=128, frames=16, tubelet=1, attention="full", depth_layers=3),
        diffusion=dict(tubelet=1, window=16),
        sample=SAMPLE, mesh=MESH, train=TRAIN, total_steps=100_000,
    ),
    "256": dict(
        model_size="B/16",
        data=dict(STYLE, size=256, frames=1 + 32, layers=3, batch_size=8),
        model=dict(ACCELERATOR, image_size=256, frames=32, tubelet=2, attention="full", depth_layers=3),
        diffusion=dict(tubelet=2, window=32),
        sample=SAMPLE, mesh=MESH, train=TRAIN, total_steps=100_000,
    ),
    "256-factorized": dict(
        model_size="B/8",
        data=dict(STYLE, size=256, frames=1 + 16, layers=3, batch_size=8),
        model=dict(ACCELERATOR, image_size=256, frames=16, tubelet=1, attention="factorized", depth_layers=3),
        diffusion=dict(tubelet=1, window=16),
        sample=SAMPLE, mesh=MESH, train=TRAIN, total_steps=100_000,
    ),
    # Trains on photos/train, samples photos/heldout (never trained on) every `sample_every` steps.
    "cpu": dict(
        model_size="cpu",
        data=dict(STYLE, size=64, frames=1 + 8, layers=3, batch_size=8, source="folder:photos/train", strokes=128,
                  levels=2, workers=1, depth_work_size=64, crop_scale=(0.35, 1.0), stroke_scale=(0.8, 1.2)),
        # output_head "ref_mix": x0 = gate * ref + (1 - gate) * colour, detail inside a patch from the reference
        model=dict(CPU, image_size=64, frames=8, tubelet=1, attention="full", depth_layers=3, ref_in_frames=True,
                   output_head="ref_mix"),
        # flow_x0: predicting ε − x0 with patch 8 at width 192 sampled 8x8-patch noise (docs/architecture.md)
        diffusion=dict(tubelet=1, window=8, objective="flow_x0"),
        sample=dict(SAMPLE, steps=16), mesh=MESH,
        train=dict(log_every=10, ckpt_every=100, keep_checkpoints=2, sample_every=300, sample_count=3,
                   sample_source="photos/heldout", ema_decay=0.99, optim=dict(lr=5e-4, warmup_steps=100)),
        total_steps=1200,
    ),
    "tiny": dict(
        model_size="tiny",
        data=dict(STYLE, size=32, frames=1 + 5, layers=2, batch_size=4, strokes=24, levels=2, workers=0,
                  depth_work_size=32),
        model=dict(CPU, image_size=32, frames=5, tubelet=1, attention="full", depth_layers=2),
        diffusion=dict(tubelet=1, window=5),
        sample=dict(SAMPLE, steps=8), mesh=MESH,
        train=dict(log_every=1, ckpt_every=10, sample_every=10, ema_decay=0.99, optim=dict(lr=1e-3, warmup_steps=5)),
        total_steps=20,
    ),
}


def get_config(arg: str | None = None):
    arg = arg or "128"
    if arg not in VARIANTS:
        raise ValueError(f"unknown variant {arg!r}; use one of {sorted(VARIANTS)}")
    return assemble(**VARIANTS[arg])


def get_sweep(arg: str | None = None):
    """Cross-media reference probability x reference dropout (0: no guidance-free training; 0.1: the default)."""
    del arg  # the same sweep for every variant
    return product({"data.cross_media": (0.0, 0.3), "diffusion.p_drop_ref": (0.0, 0.1)})
