"""Evaluation of painting processes: every metric of one process (`Scorer`), a folder of methods
(`evaluate_folder`), and the report (`write_report`: report.json, report.md, PNG plots).

Layout read: PROCESSES/<method>/<image>/ process folders (`io/process_dir.py`), e.g. the outputs of
`paintproc paint` or `tools/sample.py` per image. Processes of one image share its name across
methods; every process is resized to one evaluation size so all are judged alike.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import pathlib
import sys
from collections import defaultdict
from typing import Callable

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from paintproc_jax.depth import estimate_depth
from paintproc_jax.errors import PaintprocError
from paintproc_jax.io import load_image
from paintproc_jax.io.images import output_size, resize_image, to_uint8
from paintproc_jax.io.process_dir import ProcessDir, is_process_dir, read_process_dir, write_process_dir
from paintproc_jax.metrics import pdp as pdp_lib
from paintproc_jax.metrics.baselines import baseline_processes
from paintproc_jax.metrics import process_scores, stages
from paintproc_jax.strokes.schedule import split_frames

log = logging.getLogger(__name__)

# report columns, in order; "higher" says which way is better (for the Markdown table)
METRICS = {
    "pdp": "lower", "pdp_auc": None, "pdp_monotonicity": "higher", "layering": "higher", "layering_global": "higher",
    "refinement": "higher", "temporal_change": None, "temporal_jitter": "lower", "lpips_final": "lower",
    "psnr_final": "higher", "ssim_final": "higher", "stage_psnr": "higher", "stage_lpips": "lower",
    **{k: "higher" for k in stages.STAGE_PSNR_KEYS}, **{k: "lower" for k in stages.STAGE_LPIPS_KEYS},
    "dino_final": "higher", "dino_frames": "higher", "clip_final": "higher", "clip_frames": "higher",
}
# per-fraction stage columns: in report.json / details.json, and in report.md's own "Stages" table
STAGE_COLUMNS = stages.STAGE_PSNR_KEYS + stages.STAGE_LPIPS_KEYS


def _resize(image: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """An image [H, W, 3] (Lanczos, on 8-bit levels like the frames on disk, so a process that ends
    on its input scores exactly) or a map [H, W] (bilinear) in [0, 1] at (h, w)."""
    if image.ndim == 3:
        return to_uint8(resize_image(image, hw, Image.Resampling.LANCZOS)).astype(np.float32) / 255.0
    return np.clip(resize_image(image, hw, Image.Resampling.BILINEAR), 0.0, 1.0)


def eval_hw(h: int, w: int, size: int) -> tuple[int, int]:
    """(height, width) with the longer side `size`, aspect kept; at least 32 (LPIPS's smallest input)."""
    oh, ow = output_size(h, w, size)
    return max(32, oh), max(32, ow)


@dataclasses.dataclass
class Scorer:
    """All metrics of one process. `distance` is LPIPS; `embedders` maps "dino"/"clip" to
    functions images [N, H, W, 3] in [0, 1] -> unit embeddings [N, D] (optional)."""

    distance: Callable
    embedders: dict = dataclasses.field(default_factory=dict)
    embed_frames: int = 8  # frames per process for the DINO/CLIP frame similarity

    def score(self, frames: np.ndarray, reference: np.ndarray, depth: np.ndarray | None, *,
              final_is_reference: bool = False, stroke_frames: int | None = None) -> tuple[dict, np.ndarray]:
        """(metrics, PDP curve [GRID]) of frames [T, H, W, 3] (painting order) against the reference
        [H, W, 3] and depth [H, W]. `final_is_reference`: the last frame is the input copied in (a
        diffusion sample), so final fidelity is measured on the frame before it, the model's own.
        `stroke_frames`: the process is a stroke process with that many stroke frames after the
        blank canvas, so its stage frames are fractions of the strokes (`stages.stage_indices`)."""
        values = pdp_lib.pdp_values(frames, self.distance)
        curve = pdp_lib.resample(values)
        m = {"pdp_auc": pdp_lib.pdp_auc(curve), "pdp_monotonicity": process_scores.pdp_monotonicity(values)}
        m.update({k: v for k, v in process_scores.order_scores(frames, reference, depth).items() if k != "regions"})
        m.update(process_scores.temporal_scores(frames, self.distance))
        m.update(process_scores.final_scores(frames[-2] if final_is_reference else frames[-1], reference, self.distance))
        m.update(stages.stage_scores(frames, reference, self.distance, stroke_frames))
        for name, embed in self.embedders.items():
            idx = np.unique(np.round(np.linspace(0, len(frames) - 1, self.embed_frames)).astype(int))
            e = np.asarray(embed(np.concatenate([frames[idx], reference[None]])))
            sims = e[:-1] @ e[-1]
            m[f"{name}_final"] = float(sims[-1])
            m[f"{name}_frames"] = float(sims.mean())
        return m, curve


def find_processes(root) -> dict[str, dict[str, pathlib.Path]]:
    """{method: {image: folder}} from ROOT/<method>/<image>/ process folders."""
    root = pathlib.Path(root)
    if not root.is_dir():
        raise PaintprocError(f"--processes {root} is not a folder")
    found = {}
    for method in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        images = {p.name: p for p in sorted(method.iterdir()) if p.is_dir() and is_process_dir(p)}
        if images:
            found[method.name] = images
        elif is_process_dir(method):
            raise PaintprocError(f"{method} is a process folder itself: --processes wants ROOT/<method>/<image>/ (one folder per method)")
    if not found:
        raise PaintprocError(f"no process folders under {root}: expected {root}/<method>/<image>/frames/frame_*.png")
    return found


def _reference(processes: list[ProcessDir]) -> tuple[np.ndarray, str]:
    """The image a set of processes of one image paints: the `source` named in a process.json if it
    can be read, else the last frame of the first process."""
    for p in processes:
        src = p.meta.get("source")
        if src and pathlib.Path(src).is_file():
            try:
                return load_image(src), str(src)
            except PaintprocError:
                continue
    return processes[0].frames[-1], f"last frame of {processes[0].path}"


def _depth(processes: list[ProcessDir], reference: np.ndarray) -> tuple[np.ndarray, str]:
    for p in processes:
        if p.depth is not None:
            return p.depth, str(p.path / "depth.png")
    return estimate_depth(reference), "builtin estimator"


def make_baselines(images: dict[str, tuple[np.ndarray, np.ndarray, int]], out: pathlib.Path, names, *, progress=None,
                   **stroke_kwargs) -> dict[str, dict[str, pathlib.Path]]:
    """Writes baseline processes as process folders OUT/<baseline>/<image>/ (kept: a rerun reuses
    them) for images {name: (reference, depth, frames)}; returns {baseline: {image: folder}}."""
    found = defaultdict(dict)
    for image, (ref, depth, frames) in images.items():
        todo = [b for b in names if not (out / b / image / "process.json").exists()]
        if todo:
            made = baseline_processes(ref, depth, frames, names=todo, **stroke_kwargs)
            for b, fr in made.items():
                meta = {"engine": "baseline", "baseline": b, "medium": "none"}
                if b in stages.STROKE_BASELINES:  # blank + stroke frames + reveal, like `paintproc paint`
                    meta["stroke_frames"] = split_frames(len(fr))[0]
                write_process_dir(out / b / image, fr, meta, depth=depth, mp4=False)
        for b in names:
            found[b][image] = out / b / image
        if progress:
            progress()
    return dict(found)


def evaluate_folder(processes: dict[str, dict[str, pathlib.Path]], scorer: Scorer, *, size: int = 256,
                    baselines=(), baseline_dir=None, pdp_reference: str | None = None, baseline_kwargs=None,
                    quiet: bool = False) -> dict:
    """Scores every process; returns the full results (see `write_report`)."""
    images = sorted({i for per in processes.values() for i in per})
    loaded = {m: {i: read_process_dir(p) for i, p in per.items()} for m, per in processes.items()}
    refs, depths, sources = {}, {}, {}
    for image in images:
        procs = [loaded[m][image] for m in loaded if image in loaded[m]]
        ref, src = _reference(procs)
        h, w = eval_hw(*ref.shape[:2], size)
        refs[image] = _resize(ref, (h, w))
        depth, dsrc = _depth(procs, ref)
        depths[image] = _resize(depth, (h, w))
        sources[image] = {"reference": src, "depth": dsrc}
    if baselines:
        frames = {i: int(np.median([len(loaded[m][i].frames) for m in loaded if i in loaded[m]])) for i in images}
        bar = tqdm(total=len(images), desc="baselines", disable=quiet, file=sys.stderr, leave=False)
        made = make_baselines({i: (refs[i], depths[i], max(3, frames[i])) for i in images}, pathlib.Path(baseline_dir),
                              baselines, progress=bar.update, **(baseline_kwargs or {}))
        bar.close()
        clash = sorted(set(made) & set(loaded))
        if clash:
            raise PaintprocError(f"method folder(s) {clash} clash with baseline names; rename them or drop --baselines")
        for b, per in made.items():
            loaded[b] = {i: read_process_dir(p) for i, p in per.items()}

    per_image, curves, media = defaultdict(dict), defaultdict(dict), defaultdict(dict)
    total = sum(len(v) for v in loaded.values())
    bar = tqdm(total=total, desc="scoring", disable=quiet, file=sys.stderr, leave=False)
    for method, per in loaded.items():
        for image, proc in per.items():
            ref = refs[image]
            frames = np.stack([_resize(f, ref.shape[:2]) for f in proc.frames])  # same T, eval size
            try:
                stroke_frames = stages.stroke_frames_of(proc.meta, len(frames))
            except PaintprocError as e:
                raise PaintprocError(f"{proc.path}: {e}") from None
            m, curve = scorer.score(frames, ref, depths[image], final_is_reference=proc.meta.get("final_frame") == "reference",
                                    stroke_frames=stroke_frames)
            per_image[method][image] = m
            curves[method][image] = curve
            media[method][image] = str(proc.meta.get("medium", "unknown"))
            bar.update()
    bar.close()

    if pdp_reference is None and "strokes" in loaded:
        pdp_reference = "strokes"
    if pdp_reference is not None:
        if pdp_reference not in loaded:
            raise PaintprocError(f"--pdp_reference {pdp_reference!r} is not a method here; methods: {sorted(loaded)}")
        for method in loaded:
            for image, curve in curves[method].items():
                if image in curves[pdp_reference]:
                    per_image[method][image]["pdp"] = pdp_lib.pdp_distance(curve, curves[pdp_reference][image])
    return {"per_image": per_image, "curves": curves, "media": media, "sources": sources, "pdp_reference": pdp_reference,
            "images": images, "size": size}


def _mean_metrics(rows: list[dict]) -> dict:
    keys = [k for k in METRICS if any(k in r for r in rows)]
    return {k: float(np.mean([r[k] for r in rows if k in r])) for k in keys}


def summarize(results: dict) -> tuple[dict, dict]:
    """(report {method: {metric: mean over images}}, per medium {method: {medium: {metric: mean}}})."""
    report, per_medium = {}, {}
    for method, per in results["per_image"].items():
        report[method] = _mean_metrics(list(per.values()))
        groups = defaultdict(list)
        for image, m in per.items():
            groups[results["media"][method][image]].append(m)
        per_medium[method] = {medium: _mean_metrics(rows) for medium, rows in sorted(groups.items())}
    return report, per_medium


def _table(rows: dict[str, dict], columns=None) -> list[str]:
    """A Markdown table of `columns` (default: every metric but the per-fraction stage ones) present in rows."""
    columns = [k for k in METRICS if k not in STAGE_COLUMNS] if columns is None else columns
    cols = [k for k in columns if any(k in r for r in rows.values())]
    head = "| method | " + " | ".join(f"{c} {'↑' if METRICS[c] == 'higher' else '↓' if METRICS[c] == 'lower' else ''}".strip()
                                       for c in cols) + " |"
    lines = [head, "|" + "---|" * (len(cols) + 1)]
    for name, r in rows.items():
        lines.append(f"| {name} | " + " | ".join(f"{r[c]:.3f}" if c in r else "–" for c in cols) + " |")
    return lines


def plot_scores(report: dict, path, metrics=("layering", "refinement", "pdp_monotonicity", "ssim_final")) -> None:
    """PNG of grouped bars: one group per metric, one bar per method."""
    import matplotlib  # lazy: pyplot (~0.8 s) only when a report is plotted, and after choosing the Agg backend

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: as above

    metrics = [m for m in metrics if any(m in r for r in report.values())]
    methods = list(report)
    fig, ax = plt.subplots(figsize=(max(6.4, 1.6 * len(metrics)), 4.0), dpi=120)
    width = 0.8 / max(1, len(methods))
    for j, method in enumerate(methods):
        xs = np.arange(len(metrics)) + (j - (len(methods) - 1) / 2) * width
        ax.bar(xs, [report[method].get(m, np.nan) for m in metrics], width, label=method)
    ax.set_xticks(np.arange(len(metrics)), metrics)
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_ylabel("score (mean over images)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_report(results: dict, out) -> dict:
    """Writes OUT/report.json ({method: {metric: mean}}), OUT/details.json (per image, per medium,
    mean PDP curves, inputs), OUT/report.md, OUT/pdp_curves.png and OUT/scores.png; returns the report."""
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    report, per_medium = summarize(results)
    (out / "report.json").write_text(json.dumps(report, indent=1))
    curve_sets = {m: np.stack(list(c.values())) for m, c in results["curves"].items()}
    details = {
        "per_image": results["per_image"], "per_medium": per_medium, "media": results["media"],
        "pdp_reference": results["pdp_reference"], "size": results["size"], "inputs": results["sources"],
        "pdp_curves": {m: {"t": pdp_lib.time_grid().tolist(), "mean": pdp_lib.pdp_stats(c)[0].tolist(),
                           "std": pdp_lib.pdp_stats(c)[1].tolist()} for m, c in curve_sets.items()},
    }
    (out / "details.json").write_text(json.dumps(details, indent=1))
    pdp_lib.plot_pdp(curve_sets, out / "pdp_curves.png")
    plot_scores(report, out / "scores.png")

    n = len(results["images"])
    md = ["# Painting-process evaluation", "",
          f"{n} image(s), every process resized to {results['size']} px on its longer side. "
          "Arrows: which way is better. `pdp`: mean gap of the PDP curve to "
          + (f"`{results['pdp_reference']}`'s on the same image" if results["pdp_reference"] else "(no reference method; not computed)")
          + "; `layering` / `refinement`: rank correlation of when a region settles with its nearness / its detail, "
          "within rows (+1 = far first / coarse first); see `paintproc_jax/metrics/process_scores.py`. "
          "`stage_psnr` / `stage_lpips`: PSNR / LPIPS to the final image of the frames at 1/16, 1/8, 1/4 and 1/2 "
          "of the process (of the strokes, for a stroke process), averaged; per stage below and in "
          "`paintproc_jax/metrics/stages.py`.", "",
          "## All images", ""]
    md += _table(report)
    md += ["", "## Stages (all images)", ""] + _table(report, STAGE_COLUMNS)
    media = sorted({med for per in per_medium.values() for med in per})
    for medium in media:
        rows = {m: per[medium] for m, per in per_medium.items() if medium in per}
        md += ["", f"## Medium: {medium}", ""] + _table(rows)
    md += ["", "![PDP curves](pdp_curves.png)", "", "![scores](scores.png)", ""]
    (out / "report.md").write_text("\n".join(md))
    return report


def sample_scores(processes: np.ndarray, depth: np.ndarray | None, distance: Callable) -> tuple[np.ndarray, dict]:
    """For a training run's periodic samples: (PDP curves [N, GRID], means of layering / refinement)
    of processes [N, T, H, W, 3] (painting order, in [0, 1], each ending on its reference) with depth
    [N, H, W]. The trainer scores the stroke engine's clips once and the model's samples each time."""
    curves, rows = [], defaultdict(list)
    for i, frames in enumerate(processes):
        curves.append(pdp_lib.pdp_curve(frames, distance))
        scores = process_scores.order_scores(frames, frames[-1], None if depth is None else depth[i])
        for k in ("layering", "refinement"):
            if k in scores:
                rows[k].append(scores[k])
    return np.stack(curves), {k: float(np.mean(v)) for k, v in rows.items()}
