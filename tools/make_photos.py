"""Write the CPU reference run's photos: OUT/train/ (trained on) and OUT/heldout/ (never trained on).

    python tools/make_photos.py --out photos

Photos that installed packages ship (scikit-image, matplotlib, scikit-learn; nothing is downloaded),
at most 512 px: train = astronaut, coffee, chelsea, immunohistochemistry, retina, motorcycle, china,
flower; held out = rocket, grace_hopper, hubble_deep_field, each whole and as two square crops.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    from paintproc_jax.data.samples import write_photo_splits
    from paintproc_jax.errors import PaintprocError

    p = argparse.ArgumentParser(prog="tools/make_photos.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="photos", help="output folder (default: %(default)s)")
    p.add_argument("--max_side", type=int, default=512, help="longer side of the written photos (default: %(default)s)")
    args = p.parse_args(argv)
    try:
        paths = write_photo_splits(args.out, max_side=args.max_side)
    except PaintprocError as e:
        print(f"make_photos: error: {e}", file=sys.stderr)
        return 2
    for split, ps in paths.items():
        print(f"{split}: {len(ps)} images in {pathlib.Path(args.out) / split}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
