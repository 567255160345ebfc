"""Video diffusion for reverse-painting clips: noise paths, the training loss, and samplers.

- `schedules`: the "flow" (rectified flow) and "v" (cosine) paths, their targets, prediction ->
  (x0, ε) and velocity conversions, training time sampling and the sampler time grid (SD3 shift).
- `objective`: `diffusion_loss` with per-sample condition dropout and clean context frames, and
  its config section (`default_config`).
- `samplers`: Euler / Heun / DDIM sampling with compositional classifier-free guidance, context
  frames, `to_forward` (painting order) and `continue_process` (processes longer than a clip).

The network is any `apply(x, t, cond, keep)`; see `objective` for the contract.
"""

from paintproc_jax.diffusion.objective import default_config, diffusion_loss, sampler_kwargs, settings
from paintproc_jax.diffusion.samplers import SAMPLERS, continue_process, guidance_weights, guided_apply, sample, to_forward
from paintproc_jax.diffusion.schedules import (
    OBJECTIVES,
    TIME_SAMPLING,
    add_noise,
    alpha_sigma,
    sample_time,
    shift_time,
    target,
    time_grid,
    to_x0_eps,
    velocity,
)

__all__ = [
    "OBJECTIVES",
    "SAMPLERS",
    "TIME_SAMPLING",
    "add_noise",
    "alpha_sigma",
    "continue_process",
    "default_config",
    "diffusion_loss",
    "guidance_weights",
    "guided_apply",
    "sample",
    "sample_time",
    "sampler_kwargs",
    "settings",
    "shift_time",
    "target",
    "time_grid",
    "to_forward",
    "to_x0_eps",
    "velocity",
]
