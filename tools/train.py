"""Train the video model: one command from a laptop CPU to a multi-host TPU pod or GPU cluster.

    python tools/train.py --config configs/tiny.py --workdir runs/tiny
    python tools/train.py --config configs/animatepainter.py:128 --workdir runs/ap128 \\
        --config.data.source=folder:/data/photos --config.total_steps=200000

Running the same command again resumes from the latest checkpoint in --workdir and continues
bit-identically. SIGTERM (pre-emption) saves a checkpoint and exits 0. WORKDIR gets
metrics.jsonl, tb/ (TensorBoard), samples/step_*/ (GIFs), checkpoints/, config.json.
"""

from __future__ import annotations

import logging
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from absl import app, flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file("config", None, "experiment config (configs/<name>.py[:variant])", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "run folder: checkpoints, metrics, samples", required=True)


def main(argv):
    del argv
    from paintproc_jax.errors import PaintprocError
    from paintproc_jax.train.loop import Diverged, train

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if _CONFIG.value is None:
        print("train: error: --config is required (e.g. configs/tiny.py)", file=sys.stderr)
        return 2
    try:
        summary = train(_CONFIG.value, _WORKDIR.value)
    except Diverged as e:  # the run trained and went bad: not a usage error
        print(f"train: error: {e}", file=sys.stderr)
        return 1
    except PaintprocError as e:  # bad input (config checks, data probe): one line; anything else is a bug: traceback
        print(f"train: error: {e}", file=sys.stderr)
        return 2
    what = "pre-empted (checkpoint saved)" if summary.preempted else "done"
    loss = summary.last_metrics.get("loss")
    skipped = f", {summary.skipped_steps} non-finite steps skipped" if summary.skipped_steps else ""
    print(f"train: {what} at step {summary.step} (started at {summary.start_step})" + (f", loss {loss:.4f}" if loss is not None else "") + skipped)
    return 0


if __name__ == "__main__":
    app.run(main)
