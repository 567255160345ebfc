"""paintproc_jax: turn any image into a video of it being painted (stroke engine + video diffusion)."""

from paintproc_jax.program import MEDIA, PARAM_NAMES, StrokeProgram, make_program

__all__ = ["MEDIA", "PARAM_NAMES", "StrokeProgram", "make_program"]
__version__ = "0.1.0"
