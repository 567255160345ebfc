"""Look at the training data before spending accelerator hours: a few clips as GIFs + a contact sheet.

    python tools/preview_data.py --config configs/data.py[:loomis] --config.data.source=DIR --out DIR [--clips 8]

Writes, into --out: `clip_000.gif ...` in training order (frame 0 = the reference the model is
given, last = the blank canvas), `painting_000.gif ...` the same clip played forward (as a painting
is made), `contact_sheet.png` (one row per clip: every frame, then depth and depth layers), and
`clips.json` (per clip: source item, medium, reference medium, order policy, strokes drawn).
"""

from __future__ import annotations

import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from absl import app, flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file("config", str(pathlib.Path(__file__).resolve().parents[1] / "configs" / "data.py"), "config file with a `data` section")
_OUT = flags.DEFINE_string("out", None, "output folder", required=True)
_CLIPS = flags.DEFINE_integer("clips", 8, "how many clips to write")


def _sheet_row(clip, depth, layers, layer_count):
    import numpy as np

    from paintproc_jax.io.images import to_uint8

    pad = np.full((clip.shape[1], 2, 3), 255, np.uint8)
    tiles = [to_uint8(f) for f in clip]
    tiles.append(to_uint8(np.repeat(depth[..., None], 3, -1)))
    tiles.append(to_uint8(np.repeat((layers / max(layer_count - 1, 1))[..., None], 3, -1)))
    return np.concatenate([x for t in tiles for x in (t, pad)], axis=1)


def main(argv):
    del argv
    import jax
    import numpy as np

    from paintproc_jax import parallel
    from paintproc_jax.data.config import PHOTO
    from paintproc_jax.data.pipeline import make_pipeline
    from paintproc_jax.errors import PaintprocError
    from paintproc_jax.io.images import save_png
    from paintproc_jax.io.video import write_gif
    from paintproc_jax.program import MEDIA

    c = _CONFIG.value.data
    out = pathlib.Path(_OUT.value)
    try:
        pipe = make_pipeline(c, parallel.make_mesh(devices=jax.devices()[:1]))
    except (PaintprocError, ValueError) as e:
        print(f"preview_data: error: {e}", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    rows, info, n = [], [], 0
    names = MEDIA + ("photo",)
    while n < _CLIPS.value:
        host = next(pipe)
        clips = np.asarray(pipe.render(pipe.to_device(host))["clip"])
        for i in range(len(clips)):
            if n >= _CLIPS.value:
                break
            write_gif(out / f"clip_{n:03d}.gif", clips[i], fps=6)
            write_gif(out / f"painting_{n:03d}.gif", clips[i][::-1], fps=6)
            rows.append(_sheet_row(clips[i], host["depth"][i], host["layers"][i], pipe.config.layers))
            info.append({
                "clip": n, "item": pipe.source.paths[host["index"][i]] if hasattr(pipe.source, "paths") else int(host["index"][i]),
                "medium": names[host["medium"][i]], "reference": names[host["ref_medium"][i]] if host["ref_medium"][i] != PHOTO else "photo",
                "order": pipe.config.orders[host["order"][i]], "strokes": int(host["valid"][i].sum()), "slots": int(host["valid"][i].size),
            })
            n += 1
    gap = np.full((2, rows[0].shape[1], 3), 255, np.uint8)
    save_png(out / "contact_sheet.png", np.concatenate([x for r in rows for x in (r, gap)], axis=0))
    (out / "clips.json").write_text(json.dumps(info, indent=2))
    pipe.close()
    print(f"wrote {n} clips ({pipe.spec.frames} frames of {c.size}x{c.size}) to {out}: clip_*.gif, painting_*.gif, contact_sheet.png, clips.json")
    print(pipe.summary())
    return 0


if __name__ == "__main__":
    app.run(main)
