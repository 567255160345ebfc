"""Job lists: the images to paint, each with its output name and a lazy reader."""

from __future__ import annotations

import dataclasses
import functools
import pathlib
from typing import Callable, Sequence

from paintproc_jax.errors import PaintprocError
from paintproc_jax.io.images import output_names
from paintproc_jax.data.sources import FolderSource, open_source
from paintproc_jax.depth.files import sidecar_depth_path


@dataclasses.dataclass(frozen=True)
class Job:
    """One image to paint: `name` (output folder, and the key), `source` (for messages/metadata),
    and `read()` -> its data-source item {"key", "path" | "bytes" | "image", optional "depth_path"/"depth"}
    (read when painted, not kept)."""

    name: str
    source: str
    read: Callable[[], dict]


def jobs_from_source(spec: str, *, tfds_data_dir: str = "") -> list[Job]:
    """`FOLDER` / `folder:FOLDER` (images found recursively, sorted; depth sidecars) or
    `tfds:NAME/SPLIT` -> jobs, read through `paintproc_jax.data.sources` (items are read lazily)."""

    source = open_source(spec, tfds_data_dir=tfds_data_dir)
    if isinstance(source, FolderSource):
        paths = [pathlib.Path(p) for p in source.paths]
        names = output_names(paths, source.root)
        return [Job(names[p], str(p), functools.partial(source.__getitem__, i)) for i, p in enumerate(paths)]
    if spec.startswith("programs:"):
        raise PaintprocError(f"{spec}: sampling needs images (a folder or tfds:NAME/SPLIT), not a program dataset")
    return [Job(f"{i:06d}", f"{spec}[{i}]", functools.partial(source.__getitem__, i)) for i in range(len(source))]


def jobs_from_paths(paths: Sequence[pathlib.Path], root: pathlib.Path, depth_file=None) -> list[Job]:
    """Image files -> jobs (names as `output_names`); `depth_file` is the depth of a single image."""

    names = output_names(list(paths), root)
    jobs = []
    for p in paths:
        item = {"key": str(p), "path": str(p)}
        d = depth_file or sidecar_depth_path(p)
        if d is not None:
            item["depth_path"] = str(d)
        jobs.append(Job(names[p], str(p), functools.partial(dict, item)))
    return jobs
