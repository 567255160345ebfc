"""CPU-tiny experiment: 32 px clips of 1 reference + 5 generated frames, a 2-block width-64 DiT.

    get_config()          AnimatePainter-style data
    get_config("loomis")  Loomis-style data (five media, cross-media references)

Params 0.26 M, forward 0.17 GFLOP per clip (`python tools/bench_model.py --config configs/tiny.py`).
CI and smoke runs use it.
"""

from paintproc_jax.presets import tiny_config


def get_config(arg: str | None = None):
    return tiny_config(arg or "animatepainter")
