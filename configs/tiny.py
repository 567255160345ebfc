"""CPU-tiny experiment: 32 px clips of 1 reference + 5 generated frames, a 2-block width-64 DiT.

    get_config()          AnimatePainter-style data
    get_config("loomis")  Loomis-style data (five media, cross-media references)

Params 0.26 M, forward 0.17 GFLOP per clip (`python tools/bench_model.py --config configs/tiny.py`).
CI and smoke runs use it. get_sweep(): attention full/factorized x objective flow/v (`tools/sweep.py`).
"""

from paintproc_jax.presets import tiny_config
from paintproc_jax.sweeps import product


def get_config(arg: str | None = None):
    return tiny_config(arg or "animatepainter")


def get_sweep(arg: str | None = None):
    """A 4-run sweep for tests and smoke runs of `tools/sweep.py`: attention mode x diffusion objective."""
    del arg  # the same sweep for both data styles
    return product({"model.attention": ("full", "factorized"), "diffusion.objective": ("flow", "v")})
