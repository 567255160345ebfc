"""Batches: load, prepare and paint jobs in batches, and write each result's process folder."""

from __future__ import annotations

import dataclasses
import time
from typing import Callable, Iterable

import numpy as np

from paintproc_jax.errors import PaintprocError
from paintproc_jax.io.images import resize_unit
from paintproc_jax.sampling.inputs import InputLoader
from paintproc_jax.sampling.jobs import Job
from paintproc_jax.sampling.painter import Painter, Prepared, image_key
from paintproc_jax.io.process_dir import write_process_dir


@dataclasses.dataclass
class Result:
    job: Job
    frames: np.ndarray  # [T, h, w, 3] in [0, 1]
    prepared: Prepared
    depth_source: str
    meta: dict
    seconds: float  # this image's share of its batch's wall time


def paint_jobs(
    painter: Painter,
    jobs: Iterable[Job],
    *,
    seed: int,
    batch_size: int,
    loader: InputLoader,
    settings: dict,
    out_size: int | None = None,
    on_error: Callable[[Job, PaintprocError], None] | None = None,
):
    """Loads, prepares and paints `jobs` in batches of `batch_size`; yields one list of `Result` per
    batch. An unreadable image calls `on_error(job, error)` (default: raise) and is left out."""
    batch_size = max(1, int(batch_size))
    jobs = list(jobs)
    for start in range(0, len(jobs), batch_size):
        t0 = time.perf_counter()
        chunk, prepared, sources = [], [], []
        for job in jobs[start : start + batch_size]:
            try:
                image, depth, depth_source = loader(job)
                p = painter.prepare(image, depth)
            except PaintprocError as e:
                if on_error is None:
                    raise
                on_error(job, e)
                continue
            chunk.append(job)
            prepared.append(p)
            sources.append(depth_source)
        if not chunk:
            continue
        keys = [image_key(seed, j.name) for j in chunk]
        videos = painter.paint_prepared(prepared, keys, out_size=out_size, **settings)
        seconds = (time.perf_counter() - t0) / len(chunk)
        base = painter.meta(painter.settings(**settings))
        yield [
            Result(job, v, p, src, {**base, "seed": int(seed), "source": job.source, "name": job.name, "depth": src}, seconds)
            for job, v, p, src in zip(chunk, videos, prepared, sources)
        ]


def write_result(target, result: Result, *, fps: float = 12.0, mp4: bool = True) -> list[str]:
    """The process folder of one result (`write_process_dir`: GIF, MP4, frames, contact sheet, depth, process.json)."""

    depth = result.prepared.depth_out
    if depth.shape != result.frames.shape[1:3]:
        depth = resize_unit(depth, result.frames.shape[1:3])
    return write_process_dir(target, result.frames, result.meta, depth=depth, fps=fps, mp4=mp4)
