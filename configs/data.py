"""Data-only config: the `data` section the training configs share, in three variants.

    get_config()            AnimatePainter-style: oil, processes end on the real image, 128 px
    get_config("loomis")    Loomis-style: five media, processes end on the strokes, cross-media references
    get_config("tiny")      32 px, 6 frames, 24 strokes: CPU tests and smoke runs

The settings are the experiment configs' own, not repeated here: the data section's defaults
(paintproc_jax/data/config.py: 128 px, 16 frames) with the `STYLE` of configs/animatepainter.py or
configs/loomis.py, or the data of configs/tiny.py.
Used by tools/preview_data.py and tools/bench_data.py; `--config.data.source=DIR` sets the images.
"""

import pathlib

import ml_collections

from paintproc_jax.data.config import default_config
from paintproc_jax.presets import load_config_module

HERE = pathlib.Path(__file__).resolve().parent


def get_config(arg: str | None = None):
    variant = arg or "animatepainter"
    if variant in ("animatepainter", "loomis"):
        overrides = load_config_module(HERE / f"{variant}.py").STYLE
    elif variant == "tiny":
        tiny = load_config_module(HERE / "tiny.py")
        overrides = dict(tiny.STYLES["animatepainter"], **tiny.TINY["data"])
    else:
        raise ValueError(f"unknown variant {variant!r}; use animatepainter, loomis or tiny")
    c = ml_collections.ConfigDict()
    c.data = default_config()
    c.data.update(overrides)
    return c
