"""Training throughput of a config: the real loop (data pipeline, on-device rendering, jitted step)
for a few steps in a temporary workdir; first-step (compile) time, then median step time.

    python tools/bench_train.py --config configs/tiny.py
    python tools/bench_train.py --config configs/animatepainter.py:128 --images DIR --steps 30

Ends with one line: `step_ms= clips_per_s= compile_s= tflops_per_s= mfu= batch= devices=`
(MFU from the analytic FLOPs of `count_flops` and the device's bf16 peak; absent on CPU).
"""

from __future__ import annotations

import pathlib
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from absl import app, flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file("config", None, "experiment config (configs/<name>.py[:variant])")
_IMAGES = flags.DEFINE_string("images", None, "image source (folder or folder:/tfds: spec); default: the bundled photos")
_STEPS = flags.DEFINE_integer("steps", 12, "steps to run (the first one compiles)")


def main(argv):
    del argv
    import jax
    import numpy as np

    from paintproc_jax.train.loop import ASSETS, train
    from paintproc_jax.train.metrics import read_metrics

    c = _CONFIG.value
    if c is None:
        print("bench_train: error: --config is required", file=sys.stderr)
        return 2
    c.data.source = _IMAGES.value or f"folder:{ASSETS}"
    c.total_steps = _STEPS.value
    c.train.update(log_every=1, ckpt_every=_STEPS.value, sample_every=0, profile_start=-1)
    with tempfile.TemporaryDirectory() as work:
        try:
            train(c, work)
        except ValueError as e:
            print(f"bench_train: error: {e}", file=sys.stderr)
            return 2
        rows = read_metrics(pathlib.Path(work) / "metrics.jsonl")
    times = np.array([r["step_time_s"] for r in rows])
    steady = rows[1:] or rows
    step_s = float(np.median(times[1:] if len(times) > 1 else times))
    fields = dict(
        step_ms=round(1e3 * step_s, 1),
        clips_per_s=round(c.data.batch_size / step_s, 2),
        compile_s=round(float(times[0]), 1),
        tflops_per_s=round(float(np.median([r["tflops_per_s"] for r in steady])), 4),
        mfu=round(float(np.median([r["mfu"] for r in steady])), 4) if "mfu" in steady[-1] else "n/a",
        batch=c.data.batch_size,
        devices=f"{jax.device_count()}x{jax.devices()[0].device_kind.replace(' ', '_')}",
        final_loss=round(rows[-1]["loss"], 4),
    )
    print(" ".join(f"{k}={v}" for k, v in fields.items()))
    return 0


if __name__ == "__main__":
    app.run(main)
