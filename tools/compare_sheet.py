"""One PNG that sets methods' painting processes side by side: a row per (image, method), a column per
normalised time (frames picked at the same fractions of each process).

    python tools/compare_sheet.py --processes eval/cpu/processes --out docs/cpu_run/samples.png
    python tools/compare_sheet.py --processes RUNS --methods diffusion,strokes --images rocket_full --columns 9 --out sheet.png

RUNS/<method>/<image>/ are process folders (`paintproc paint`, `tools/sample.py`, or tools/eval.py's
OUT/baselines/); methods and images default to all that RUNS holds (images: those every method has).
"""

from __future__ import annotations

import argparse
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    from paintproc_jax.errors import PaintprocError

    p = argparse.ArgumentParser(prog="tools/compare_sheet.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--processes", action="append", required=True, metavar="DIR", help="folder(s) of <method>/<image>/ process folders")
    p.add_argument("--out", required=True, help="PNG to write")
    p.add_argument("--methods", help="comma-separated methods, in row order (default: all)")
    p.add_argument("--images", help="comma-separated image names (default: those every method has)")
    p.add_argument("--columns", type=int, default=9, help="frames per row (default: %(default)s)")
    args = p.parse_args(argv)
    try:
        write_sheet(args)
    except PaintprocError as e:
        print(f"compare_sheet: error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}")
    return 0


def write_sheet(args) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from paintproc_jax.errors import PaintprocError
    from paintproc_jax.io.process_dir import read_process_dir
    from paintproc_jax.metrics.evaluate import find_processes

    found = {}
    for root in args.processes:
        for method, images in find_processes(root).items():
            found.setdefault(method, {}).update(images)
    methods = args.methods.split(",") if args.methods else sorted(found)
    missing = [m for m in methods if m not in found]
    if missing or not methods:
        raise PaintprocError(f"no processes of {missing or 'any method'} in {', '.join(args.processes)} (found: {sorted(found)})")
    names = args.images.split(",") if args.images else sorted(set.intersection(*(set(found[m]) for m in methods)))
    if not names or any(n not in found[m] for n in names for m in methods):
        raise PaintprocError(f"images {names or '(none in common)'} are not processed by every method of {methods}")
    if args.columns < 2:
        raise PaintprocError("--columns must be at least 2")
    rows = [(n, m) for n in names for m in methods]
    fig, axes = plt.subplots(len(rows), args.columns, figsize=(1.1 * args.columns + 1.4, 1.1 * len(rows)), squeeze=False)
    for r, (name, method) in enumerate(rows):
        frames = read_process_dir(found[method][name]).frames
        pick = np.round(np.linspace(0, len(frames) - 1, args.columns)).astype(int)
        for c, i in enumerate(pick):
            ax = axes[r, c]
            ax.imshow(frames[i], interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"t={i / (len(frames) - 1):.2f}", fontsize=7)
        axes[r, 0].set_ylabel(f"{name}\n{method}", fontsize=6, rotation=0, ha="right", va="center")
    fig.subplots_adjust(left=0.16, right=0.99, top=0.96, bottom=0.01, wspace=0.04, hspace=0.08)
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
