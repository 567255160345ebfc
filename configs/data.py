"""Data-only config: the `data` section the training configs share, in three variants.

    get_config()            AnimatePainter-style: oil, processes end on the real image, 128 px
    get_config("loomis")    Loomis-style: five media, processes end on the strokes, cross-media references
    get_config("tiny")      32 px, 6 frames, 24 strokes: CPU tests and smoke runs

Used by tools/preview_data.py and tools/bench_data.py; `--config.data.source=DIR` sets the images.
"""

from paintproc_jax.data.config import default_config
from paintproc_jax.program import MEDIA


def get_config(arg: str | None = None):
    import ml_collections

    c = ml_collections.ConfigDict()
    c.data = default_config()
    variant = arg or "animatepainter"
    if variant == "loomis":
        c.data.media = MEDIA
        c.data.end_on = "strokes"
        c.data.cross_media = 0.3
    elif variant == "tiny":
        c.data.update(size=32, frames=6, strokes=24, layers=2, levels=2, batch_size=4, workers=0, depth_work_size=32)
    elif variant != "animatepainter":
        raise ValueError(f"unknown variant {variant!r}; use animatepainter, loomis or tiny")
    return c
