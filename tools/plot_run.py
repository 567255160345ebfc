"""Draw training runs' metrics.jsonl as PNGs: loss per noise-level bucket, learning rate, sample scores.

    python tools/plot_run.py runs/cpu --out docs/cpu_run
    python tools/plot_run.py runs/cpu runs/cpu-nodepth --out docs/ablation    # runs overlaid

Writes OUT/loss.png (total loss and one curve per `loss_t*` bucket), OUT/learning_rate.png and, when
the runs logged periodic samples, OUT/samples.png (`sample/*` scores over steps: PDP distance to the
stroke engine, layering, refinement, with the stroke engine's own scores as dashed lines).
"""

from __future__ import annotations

import argparse
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))


def read_run(run) -> list[dict]:
    """The rows of RUN/metrics.jsonl (`train.metrics.read_metrics`); PaintprocError if absent or empty."""
    from paintproc_jax.errors import PaintprocError
    from paintproc_jax.train.metrics import METRICS_FILE, read_metrics

    path = pathlib.Path(run)
    if not (path / METRICS_FILE if path.is_dir() else path).is_file():
        raise PaintprocError(f"{run}: no {METRICS_FILE} (give a training workdir)")
    rows = read_metrics(path)
    if not rows:
        raise PaintprocError(f"{run}: {METRICS_FILE} has no steps yet")
    return rows


def _series(rows: list[dict], key: str) -> tuple[list[int], list[float]]:
    pts = [(r["step"], r[key]) for r in rows if key in r and r[key] is not None]
    return [p[0] for p in pts], [p[1] for p in pts]


def plot_runs(runs: dict[str, list[dict]], out) -> list[pathlib.Path]:
    """{label: rows} -> the PNGs written into `out`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    styles = ["-", "--", ":", "-."]

    def save(fig, name):
        fig.tight_layout()
        written.append(out / name)
        fig.savefig(written[-1], dpi=110)
        plt.close(fig)

    buckets = sorted({k for rows in runs.values() for r in rows for k in r if k.startswith("loss_t")})
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for i, (label, rows) in enumerate(runs.items()):
        axes[0].plot(*_series(rows, "loss"), styles[i % 4], label=label)
        for j, b in enumerate(buckets):
            axes[1].plot(*_series(rows, b), styles[i % 4], color=f"C{j}", label=f"{label} {b[5:]}" if len(runs) > 1 else b[5:])
    axes[0].set(title="training loss", xlabel="step", ylabel="loss", yscale="log")
    axes[1].set(title="loss per noise level t", xlabel="step", yscale="log")
    for ax in axes:
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:  # a run may log no loss buckets
            ax.legend(fontsize=7)
    save(fig, "loss.png")

    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    for i, (label, rows) in enumerate(runs.items()):
        ax.plot(*_series(rows, "learning_rate"), styles[i % 4], label=label)
    ax.set(title="learning rate", xlabel="step")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    save(fig, "learning_rate.png")

    scores = [("sample/pdp_to_strokes", None, "PDP distance to the stroke engine (lower is better)"),
              ("sample/layering", "sample/strokes_layering", "layering (far first)"),
              ("sample/refinement", "sample/strokes_refinement", "refinement (coarse first)")]
    if any(_series(rows, s[0])[0] for rows in runs.values() for s in scores):
        fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
        for ax, (key, ref, title) in zip(axes, scores):
            for i, (label, rows) in enumerate(runs.items()):
                ax.plot(*_series(rows, key), styles[i % 4] + "o", color=f"C{i}", label=label, ms=3)
                if ref and _series(rows, ref)[0] and i == 0:
                    steps, vals = _series(rows, ref)
                    ax.axhline(vals[-1], color="k", ls="--", lw=0.8, label="stroke engine's clips")
            ax.set(title=title, xlabel="step")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
        save(fig, "samples.png")
    return written


def main(argv=None) -> int:
    from paintproc_jax.errors import PaintprocError

    p = argparse.ArgumentParser(prog="tools/plot_run.py", description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", metavar="RUN", help="training workdir(s) holding metrics.jsonl")
    p.add_argument("--out", required=True, help="folder for the PNGs")
    args = p.parse_args(argv)
    try:
        runs = {}
        for run in args.runs:
            label = pathlib.Path(run).resolve().name
            runs[label if label not in runs else str(run)] = read_run(run)
        written = plot_runs(runs, args.out)
    except PaintprocError as e:
        print(f"plot_run: error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {', '.join(str(w) for w in written)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
