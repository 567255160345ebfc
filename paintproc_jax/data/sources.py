"""Random-access image sources for the grain pipeline (NumPy only; picklable for worker processes).

- `FolderSource`: image files under a folder (recursive, sorted), with optional depth sidecars.
- `TfdsSource`: any TFDS image dataset through `tfds.data_source` (ArrayRecord, no TensorFlow).
- `ProgramSource`: the ArrayRecord shards written by `tools/make_dataset.py` (image, depth and a
  fitted stroke program per record).

Every item is a dict with a `key` (for messages) and either `bytes` (an encoded image file),
`image` (uint8 `[H, W, 3]`) or a whole program `record`; optionally `depth` (`[H, W]` float32,
1 = nearest) or `depth_path` (a file to read it from). Reading never decodes; the example
maker does that, so a corrupt file is a counted skip, not a crash.
"""

from __future__ import annotations

import json
import pathlib

import numpy as np

from paintproc_jax.depth.files import sidecar_depth_path
from paintproc_jax.io.images import IMAGE_EXTENSIONS, list_images
from paintproc_jax.errors import PaintprocError, one_line

MANIFEST = "manifest.json"


class FolderSource:
    """Image files under `root` (recursive, hidden files skipped, sorted for determinism)."""

    def __init__(self, root, *, sidecars: bool = True):
        self.root = pathlib.Path(root)
        if not self.root.is_dir():
            raise PaintprocError(f"image folder {self.root} does not exist or is not a folder")
        try:
            self.paths = [str(p) for p in list_images(self.root)]
        except PaintprocError:
            raise PaintprocError(
                f"no images in {self.root} (looked recursively for {', '.join(sorted(IMAGE_EXTENSIONS))})"
            ) from None
        self.sidecars = sidecars

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict:
        path = self.paths[index]
        item = {"key": path}
        try:
            item["bytes"] = pathlib.Path(path).read_bytes()
        except OSError as e:
            item["error"] = f"cannot read {path}: {e.strerror or e}"
        if self.sidecars:
            depth_path = sidecar_depth_path(path)
            if depth_path is not None:
                item["depth_path"] = str(depth_path)
        return item

    def __repr__(self) -> str:
        return f"FolderSource({str(self.root)!r}, {len(self)} images)"


class TfdsSource:
    """A TFDS split read with `tfds.data_source` (prepared ArrayRecord data; never downloads)."""

    def __init__(self, name: str, split: str, *, data_dir: str | None = None, image_key: str = "image", depth_key: str = ""):
        import tensorflow_datasets as tfds  # lazy: TFDS is heavy and only tfds: sources need it

        self.name, self.split, self.data_dir = name, split, data_dir or None
        self.image_key, self.depth_key = image_key, depth_key
        try:
            self._source = tfds.data_source(name, split=split, data_dir=self.data_dir, download=False)
        except Exception as e:  # DatasetNotFoundError, unknown split (ValueError), ...
            msg = one_line(e)[:400]
            raise PaintprocError(f"tfds:{name}/{split}: cannot open ({type(e).__name__}: {msg})") from None
        if len(self._source) == 0:
            raise PaintprocError(f"tfds:{name}/{split} has no examples")
        features = getattr(getattr(self._source, "dataset_info", None), "features", None)
        if features is not None and image_key not in features:
            raise PaintprocError(f"tfds:{name}/{split} has no feature {image_key!r} (features: {', '.join(features)})")
        if features is not None and depth_key and depth_key not in features:
            raise PaintprocError(f"tfds:{name}/{split} has no depth feature {depth_key!r} (features: {', '.join(features)})")

    def __len__(self) -> int:
        return len(self._source)

    def __getitem__(self, index: int) -> dict:
        ex = self._source[int(index)]
        item = {"key": f"tfds:{self.name}/{self.split}[{index}]", "image": np.asarray(ex[self.image_key])}
        if self.depth_key:
            item["depth"] = np.asarray(ex[self.depth_key], np.float32)
        return item

    def __repr__(self) -> str:
        return f"TfdsSource({self.name}/{self.split}, {len(self)} examples)"


class ProgramSource:
    """ArrayRecord shards of (image, depth, fitted program) written by `tools/make_dataset.py`."""

    def __init__(self, root):
        import grain  # lazy: keeps this module NumPy-only for FolderSource (grain imports JAX)

        self.root = pathlib.Path(root)
        manifest = self.root / MANIFEST
        if not manifest.is_file():
            raise PaintprocError(f"{self.root} is not a program dataset (no {MANIFEST}; build one with tools/make_dataset.py)")
        self.manifest = json.loads(manifest.read_text())
        shards = [str(self.root / s["file"]) for s in self.manifest.get("shards", []) if s.get("records", 0) > 0]
        if not shards:
            raise PaintprocError(f"program dataset {self.root} has no finished shards")
        self._source = grain.sources.ArrayRecordDataSource(shards)

    def __len__(self) -> int:
        return len(self._source)

    def __getitem__(self, index: int) -> dict:
        return {"key": f"programs:{self.root}[{index}]", "record": self._source[int(index)]}

    def __repr__(self) -> str:
        return f"ProgramSource({str(self.root)!r}, {len(self)} programs)"


def open_source(spec: str, *, tfds_data_dir: str = "", image_key: str = "image", depth_key: str = ""):
    """`folder:DIR` (or a plain DIR), `tfds:NAME/SPLIT`, `programs:DIR` -> a source."""
    kind, _, rest = spec.partition(":")
    if kind == "tfds":
        name, _, split = rest.partition("/")
        if not name or not split:
            raise PaintprocError(f"tfds source {spec!r}: write tfds:NAME/SPLIT, e.g. tfds:oxford_flowers102/train")
        return TfdsSource(name, split, data_dir=tfds_data_dir, image_key=image_key, depth_key=depth_key)
    if kind == "programs":
        return ProgramSource(rest)
    if kind == "folder":
        return FolderSource(rest)
    return FolderSource(spec)
