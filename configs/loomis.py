"""Loomis-style experiments: five media, processes ending on the strokes, cross-media references, depth fusion on.

    get_config()                   "128": 128 px, 1 + 16 frames, DiT-B/8, full space-time attention
    get_config("128-small")        128 px, 1 + 16 frames, DiT-S/8 (37% of the FLOPs of "128")
    get_config("256")              256 px, 1 + 32 frames, DiT-B/16 with tubelets of 2 frames, full attention
    get_config("256-factorized")   256 px, 1 + 16 frames, DiT-B/8, spatial-then-temporal attention
    get_config("tiny")             the CPU-tiny model on this data style

Params and forward FLOPs per clip (`python tools/bench_model.py --config configs/loomis.py:ARG`):
    128              params 170.6 M   forward 1,630 GFLOP/clip (4,352 tokens + 336 depth tokens)
    128-small        params  43.0 M   forward   596 GFLOP/clip (4,352 tokens + 336 depth tokens)
    256              params 173.6 M   forward 1,648 GFLOP/clip (4,352 tokens + 336 depth tokens)
    256-factorized   params 220.2 M   forward 6,025 GFLOP/clip (17,408 tokens + 1,344 depth tokens)
Training costs 3x the forward FLOPs; at 128 px, 46% of the forward FLOPs are attention.
get_sweep(): cross-media references 0/0.3 x reference dropout 0/0.1 (`python tools/sweep.py --config configs/loomis.py:ARG`).
"""

from paintproc_jax.presets import variant_config
from paintproc_jax.sweeps import product


def get_config(arg: str | None = None):
    return variant_config("loomis", arg)


def get_sweep(arg: str | None = None):
    """Cross-media reference probability x reference dropout (0: no guidance-free training; 0.1: the default)."""
    del arg  # the same sweep for every variant
    return product({"data.cross_media": (0.0, 0.3), "diffusion.p_drop_ref": (0.0, 0.1)})
