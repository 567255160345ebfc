"""Contact sheets of the five media: what a stroke of each brush family looks like.

    python tools/media_sheet.py                      # every medium -> docs/media/<medium>.png
    python tools/media_sheet.py --media oil pencil   # some of them
    python tools/media_sheet.py --out DIR            # somewhere else

Each sheet (768 px wide, one medium) shows, top to bottom:
  1. large single strokes on white: straight, bent and strongly bent, dark, mid and light
     colours (the bristle / grain texture and the dry end must read at a glance);
  2. left: a few strokes crossing each other (overlap: glazing of a wash, darker marker
     overlaps, opaque oil over oil); right: one very large bent stroke, cropped (no rings:
     streaks must follow the stroke, unevenly spaced);
  3. a small painting: planned strokes (no fitting) on scikit-image's `chelsea` (the face,
     cropped from a 768 px render), beside the source.

Rendering goes through `raster.render_program`, i.e. the same renderer as the engine, at
softness 0 (the final hard render). Sheets are written as dithered 256-colour PNGs (< 300 KB).
"""

from __future__ import annotations

import argparse
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from paintproc_jax.program import MEDIA, NUM_PARAMS, P, make_program  # noqa: E402

WIDTH = 768
_COLOURS = {  # a dark, mid and light paint of a few hues
    "umber": (0.36, 0.20, 0.10),
    "red": (0.78, 0.16, 0.12),
    "blue": (0.12, 0.24, 0.62),
    "ochre": (0.86, 0.62, 0.20),
    "green": (0.22, 0.48, 0.28),
    "pale": (0.93, 0.86, 0.62),
}


def _stroke(x, y, length, width, angle, bend, colour, seed, opacity=1.0) -> np.ndarray:
    row = np.zeros(NUM_PARAMS, np.float32)
    row[[P["x"], P["y"], P["length"], P["width"], P["angle"], P["bend"]]] = x, y, length, width, angle, bend
    row[P["r"] : P["b"] + 1] = _COLOURS[colour]
    row[P["opacity"]], row[P["seed"]] = opacity, seed
    return row


def _render(rows, medium: str, hw_px: tuple[int, int]) -> np.ndarray:
    from paintproc_jax.strokes import raster

    h, w = hw_px
    long_side = max(h, w)
    prog = make_program(np.stack(rows), medium=medium, canvas_hw=(h / long_side, w / long_side))
    return raster.render_program(prog, long_side)


def single_strokes(medium: str) -> np.ndarray:
    """Row 1: large single strokes (canvas units: the row is 1 wide, 0.4 high)."""
    narrow = medium == "pencil"  # pencil lines are thin by nature; show them a little thinner
    wd = 0.045 if narrow else 0.075
    rows = [
        _stroke(0.25, 0.07, 0.42, wd, 0.0, 0.0, "umber", 0.11),
        _stroke(0.25, 0.19, 0.42, wd, 0.0, 0.08, "blue", 0.52),
        _stroke(0.25, 0.32, 0.42, wd, 0.0, -0.18, "ochre", 0.83),
        _stroke(0.62, 0.20, 0.32, wd * 1.4, 1.25, 0.12, "red", 0.27),
        _stroke(0.86, 0.13, 0.26, wd, 0.35, -0.22, "green", 0.64),
        _stroke(0.86, 0.30, 0.26, wd, -0.2, 0.05, "pale", 0.95),
    ]
    return _render(rows, medium, (int(0.4 * WIDTH), WIDTH))


def overlaps(medium: str, hw=(288, 384)) -> np.ndarray:
    """Row 2, left: strokes crossing each other (canvas 1 wide, 0.75 high)."""
    wd = 0.05 if medium == "pencil" else 0.10
    rows = [
        _stroke(0.45, 0.25, 0.75, wd, 0.05, 0.04, "ochre", 0.1),
        _stroke(0.35, 0.40, 0.60, wd, 1.2, -0.06, "blue", 0.3),
        _stroke(0.55, 0.45, 0.70, wd, -0.5, 0.10, "red", 0.5),
        _stroke(0.62, 0.55, 0.55, wd, 0.9, 0.0, "green", 0.7),
        _stroke(0.50, 0.62, 0.80, wd, -0.05, -0.08, "umber", 0.9),
    ]
    for k, y in enumerate(np.linspace(0.2, 0.6, 7)):  # hatching: thin parallel strokes
        rows.append(_stroke(0.86, y, 0.22, 0.018, -0.6, 0.02, "blue", 0.13 * k))
    return _render(rows, medium, hw)


def big_stroke(medium: str, hw=(288, 384)) -> np.ndarray:
    """Row 2, right: a crop of one very large bent stroke (about 220 px wide)."""
    size = 2 * hw[1]
    rows = [_stroke(0.5, 0.45, 1.1, 0.28, 0.15, 0.12, "red", 0.37)]
    img = _render(rows, medium, (size, size))
    y0, x0 = int(0.36 * size), int(0.25 * size)
    return img[y0 : y0 + hw[0], x0 : x0 + hw[1]]


def painting(medium: str, strokes: int = 700, plan_size: int = 384, hw=(288, 384)):
    """Row 3: scikit-image's `chelsea`, planned (not fitted) in this medium; the face, cropped.

    Planned at `plan_size` px, rendered at twice that (programs are resolution independent), so
    the crop shows strokes at the size a 768 px painting has them. Returns (painting, source).
    """
    from skimage import data

    from paintproc_jax.depth import estimate_depth
    from paintproc_jax.io import resize_image
    from paintproc_jax.strokes import plan, raster

    img = data.chelsea()[..., :3].astype(np.float32) / 255.0
    h, w = img.shape[:2]
    fit = lambda size: np.clip(resize_image(img, (round(h * size / w), size)), 0, 1)  # noqa: E731
    small = fit(plan_size)
    prog = plan.plan_strokes(small, estimate_depth(small), plan.PlanConfig(strokes=strokes, medium=medium), seed=0)
    out = raster.render_program(prog, 2 * plan_size)
    big = fit(2 * plan_size)
    y0, x0 = int(0.22 * out.shape[0]), int(0.2 * out.shape[1])
    crop = lambda im: im[y0 : y0 + hw[0], x0 : x0 + hw[1]]  # noqa: E731
    return crop(out), crop(big)


def _label(tile: np.ndarray, text: str) -> np.ndarray:
    from PIL import Image, ImageDraw

    im = Image.fromarray(np.clip(np.round(tile * 255), 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(im)
    x0, y0, x1, y1 = draw.textbbox((4, 2), text)
    draw.rectangle((0, 0, x1 + 4, y1 + 3), fill=(255, 255, 255))
    draw.text((4, 2), text, fill=(0, 0, 0))
    return np.asarray(im).astype(np.float32) / 255.0


def sheet(medium: str) -> np.ndarray:
    gap = lambda h: np.ones((h, 4, 3), np.float32)  # noqa: E731
    row1 = _label(single_strokes(medium), f"{medium}: single strokes")
    left, right = _label(overlaps(medium), "overlaps, hatching"), _label(big_stroke(medium), "large stroke, crop")
    row2 = np.concatenate([left, gap(left.shape[0]), right[:, : WIDTH - left.shape[1] - 4]], 1)
    paint, photo = painting(medium)
    paint = _label(paint, "planned strokes (no fit), 768 px render, crop")
    photo = _label(photo[:, : WIDTH - paint.shape[1] - 4], "source")
    row3 = np.concatenate([paint, gap(paint.shape[0]), photo], 1)
    rows = [row1, row2, row3]
    band = np.ones((4, WIDTH, 3), np.float32)
    return np.concatenate([x for r in rows for x in (r, band)][:-1], 0)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--media", nargs="+", choices=MEDIA, default=list(MEDIA))
    parser.add_argument("--out", default=str(pathlib.Path(__file__).resolve().parents[1] / "docs" / "media"))
    args = parser.parse_args(argv)

    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for medium in args.media:
        path = save_sheet(out / f"{medium}.png", sheet(medium))
        print(f"{path}  {path.stat().st_size / 1024:.0f} KB")


def save_sheet(path: pathlib.Path, img: np.ndarray) -> pathlib.Path:
    """Writes a sheet as a 256-colour PNG (dithered: textures survive, the file stays small)."""
    from PIL import Image

    from paintproc_jax.io.atomic import atomic_path

    im = Image.fromarray(np.clip(np.round(img * 255), 0, 255).astype(np.uint8))
    im = im.quantize(256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.FLOYDSTEINBERG)
    with atomic_path(path) as tmp:
        im.save(tmp, format="PNG", optimize=True)
    return path


if __name__ == "__main__":
    main()
