"""Offline sampling from trained checkpoints: image (+ depth) -> painting-process video.

    painter = load_painter("runs/tiny")                  # a training WORKDIR (latest step, EMA params)
    inp = painter.prepare(image, depth)                  # image [H, W, 3] in [0, 1], depth [H, W] (1 = near)
    [frames] = painter.paint_prepared([inp], [image_key(0, "photo")])   # [1 + F, h, w, 3] in [0, 1]

Shared by `tools/sample.py` (datasets/folders, batched, resumable) and `paintproc paint --checkpoint`.
One module per job: `painter` (load a model, prepare, sample), `inputs` (read an image and its
depth), `jobs` (what to paint and the output names), `batches` (batch, paint, write). Checkpoints
are found and read by `paintproc_jax.train.checkpoint`; output names are `io.images.output_names`.

- Checkpoints: a training WORKDIR, its `checkpoints/` folder or one step folder `checkpoints/<step>`.
  The resolved config saved with the checkpoint rebuilds the model; the EMA parameters are
  restored when the checkpoint has them, else the model's (`train/checkpoint.py` owns the format
  and reads both layouts; the optimizer state is never read). An exported model folder (`models/weights.py`: bf16 safetensors + config.json)
  or "bundled" (the one shipped in the package) loads without orbax.
- Fit ("stretch"): the model works on square `data.size` images. An image is resized (stretched)
  to that square for the model, and the generated frames are resized back to the image's aspect
  ratio with the longer side `data.size` (or `out_size`). The whole image is painted (nothing is
  cropped) at the cost of a temporary anisotropic stretch, and the output lines up pixel for pixel
  with the source image resized to the same size. The last frame (the finished image) is the
  source image resized directly, not the stretched reference stretched back.
- Determinism: each image has its own key, `image_key(seed, name) = fold_in(key(seed), crc32(name))`,
  and the sampler draws row b's noise from its key alone, so an image's process does not depend
  on what else is in the batch, the batch size, the padding or the order (on one set of devices;
  a different number of devices or batch shape can change the last bits of floating point).
- Devices: a 1-D data mesh over all `jax.devices()`; parameters replicated, the batch split over
  devices and padded to a multiple of the device count. One compile per (padded batch size,
  sampler, steps, guidance, frames).
"""

from paintproc_jax.sampling.batches import Result, paint_jobs, write_result
from paintproc_jax.sampling.inputs import DEPTH_MODES, InputLoader
from paintproc_jax.sampling.jobs import Job, jobs_from_paths, jobs_from_source
from paintproc_jax.sampling.painter import (
    BUNDLED,
    FIT,
    MAX_STEPS,
    SAMPLER_NAMES,
    Painter,
    Prepared,
    image_key,
    load_painter,
)
from paintproc_jax.train.checkpoint import resolve as resolve_checkpoint

__all__ = [
    "BUNDLED", "DEPTH_MODES", "FIT", "MAX_STEPS", "SAMPLER_NAMES", "InputLoader", "Job", "Painter", "Prepared", "Result",
    "image_key", "jobs_from_paths", "jobs_from_source", "load_painter", "paint_jobs", "resolve_checkpoint", "write_result",
]
