"""AnimatePainter-style experiments: oil processes ending on the real image, depth fusion on.

    get_config()                   "128": 128 px, 1 + 16 frames, DiT-B/8, full space-time attention
    get_config("128-small")        128 px, 1 + 16 frames, DiT-S/8 (37% of the FLOPs of "128")
    get_config("256")              256 px, 1 + 32 frames, DiT-B/16 with tubelets of 2 frames, full attention
    get_config("256-factorized")   256 px, 1 + 16 frames, DiT-B/8, spatial-then-temporal attention
    get_config("cpu")              64 px, 1 + 8 frames, a 3.8 M-parameter DiT: the CPU reference run (1200 steps,
                                   ~80 min per run with two side by side; README "A model trained on this CPU";
                                   photos from tools/make_photos.py --out photos)
    get_config("tiny")             the CPU-tiny model on this data style

Params and forward FLOPs per clip (`python tools/bench_model.py --config configs/animatepainter.py:ARG`):
    128              params 170.6 M   forward 1,630 GFLOP/clip (4,352 tokens + 336 depth tokens)
    128-small        params  43.0 M   forward   596 GFLOP/clip (4,352 tokens + 336 depth tokens)
    256              params 173.6 M   forward 1,648 GFLOP/clip (4,352 tokens + 336 depth tokens)
    256-factorized   params 220.2 M   forward 6,025 GFLOP/clip (17,408 tokens + 1,344 depth tokens)
Training costs 3x the forward FLOPs; at 128 px, 46% of the forward FLOPs are attention.
get_sweep(): depth fusion on/off x learning rate 1e-4/3e-4 (`python tools/sweep.py --config configs/animatepainter.py:ARG`).
"""

from paintproc_jax.presets import variant_config
from paintproc_jax.sweeps import product


def get_config(arg: str | None = None):
    return variant_config("animatepainter", arg)


def get_sweep(arg: str | None = None):
    """Depth-fusion ablation at two learning rates: does the depth branch help, at either step size?"""
    del arg  # the same ablation for every variant
    return product({"model.depth_fusion": (True, False), "train.optim.lr": (1e-4, 3e-4)})
