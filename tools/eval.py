"""Evaluate painting processes: PDP curves, layering / refinement scores, temporal coherence, final
fidelity (PSNR / SSIM / LPIPS), stage fidelity (PSNR / LPIPS of the frames at 1/16, 1/8, 1/4, 1/2
of the process to the final image), optional DINO / CLIP similarity; a table per method and per medium.

    python tools/eval.py --processes RUNS --baselines --out report/

RUNS/<method>/<image>/ are process folders (the outputs of `paintproc paint` or `tools/sample.py`,
one per image); `--baselines` adds a cross-fade, a raster reveal, strokes in random order and the
stroke engine, made on the same images (kept in OUT/baselines/ and reused by a rerun). Writes
OUT/report.json ({method: {metric: mean over images}}), OUT/details.json, OUT/report.md,
OUT/pdp_curves.png and OUT/scores.png, and prints the report's tables (all metrics; stages).
"""

from __future__ import annotations

import argparse
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from paintproc_jax.errors import PaintprocError  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    from paintproc_jax.metrics.baselines import BASELINES

    p = argparse.ArgumentParser(prog="tools/eval.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--processes", required=True, metavar="DIR", help="folder of <method>/<image>/ process folders")
    p.add_argument("--out", required=True, metavar="DIR", help="report folder")
    p.add_argument("--baselines", action="store_true", help=f"add the baselines {', '.join(BASELINES)} on the same images")
    p.add_argument("--baseline_names", default=",".join(BASELINES), help="comma-separated subset of the baselines (default: all)")
    p.add_argument("--baseline_strokes", type=int, default=400, help="stroke budget of the stroke baselines (default: %(default)s)")
    p.add_argument("--baseline_fit_steps", type=int, default=30, help="fit steps of the stroke baselines (default: %(default)s)")
    p.add_argument("--size", type=int, default=256, help="every process is judged at this longer side (default: %(default)s)")
    p.add_argument("--lpips", choices=("alex", "vgg"), default="alex", help="LPIPS network (default: %(default)s)")
    p.add_argument("--dino", metavar="PATH", help="DINOv2 checkpoint (Hub folder or .safetensors) for DINO similarity")
    p.add_argument("--clip", metavar="PATH", help="CLIP checkpoint (Hub folder or .safetensors) for CLIP similarity")
    p.add_argument("--pdp_reference", metavar="METHOD",
                   help="method whose PDP curves the `pdp` distance is measured to (default: strokes, when present)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except PaintprocError as e:
        print(f"eval: error: {e}", file=sys.stderr)
        return 2


def run(args) -> int:
    from paintproc_jax.metrics import evaluate
    from paintproc_jax.metrics.baselines import BASELINES
    from paintproc_jax.metrics.lpips import get_lpips

    if not 32 <= args.size <= 2048:
        raise PaintprocError(f"--size must be in [32, 2048], got {args.size}")
    names = tuple(n.strip() for n in args.baseline_names.split(",") if n.strip()) if args.baselines else ()
    unknown = sorted(set(names) - set(BASELINES))
    if unknown:
        raise PaintprocError(f"unknown baselines {unknown}; choose from {', '.join(BASELINES)}")
    if args.baselines and not (1 <= args.baseline_strokes <= 100_000 and 0 <= args.baseline_fit_steps <= 100_000):
        raise PaintprocError("--baseline_strokes must be in [1, 100000] and --baseline_fit_steps in [0, 100000]")
    processes = evaluate.find_processes(args.processes)
    embedders = {}
    if args.dino:
        from paintproc_jax.metrics.similarity import dino_embedder

        embedders["dino"] = dino_embedder(str(args.dino))
    if args.clip:
        from paintproc_jax.metrics.similarity import clip_embedder

        embedders["clip"] = clip_embedder(str(args.clip))
    scorer = evaluate.Scorer(distance=get_lpips(args.lpips), embedders=embedders)
    out = pathlib.Path(args.out)
    results = evaluate.evaluate_folder(
        processes, scorer, size=args.size, baselines=names, baseline_dir=out / "baselines", pdp_reference=args.pdp_reference,
        baseline_kwargs=dict(strokes=args.baseline_strokes, fit_steps=args.baseline_fit_steps), quiet=args.quiet,
    )
    evaluate.write_report(results, out)
    md = (out / "report.md").read_text()
    for heading in ("## All images", "## Stages (all images)"):  # the tables over all images
        print(md.split(heading + "\n\n", 1)[1].split("\n\n", 1)[0] + "\n")
    print(f"wrote {out}/report.json, report.md, details.json, pdp_curves.png, scores.png "
          f"({len(results['images'])} images, {len(results['per_image'])} methods)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
