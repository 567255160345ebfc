"""The grain pipeline: image source -> shuffled, per-process shard -> examples -> batches.

    MapDataset.range(len(source)).seed(s).shuffle().repeat()      # reshuffled every epoch
      [process_index::process_count]                              # each process reads its own shard
      .map_with_index(ExampleMaker)                               # NumPy: decode, depth, plan, schedule
      .batch(local_batch, drop_remainder=True)
      .to_iter_dataset(ReadOptions(num_threads=1))                # one example thread per process
      .mp_prefetch(workers)                                       # worker processes

`DataPipeline` wraps the iterator: host batches (NumPy), global device arrays sharded over the
mesh's batch axes, the jitted clip renderer, counters of skipped items, and the iterator state
for orbax checkpoints (`grain.checkpoint.CheckpointSave(pipeline.iterator)`).
"""

from __future__ import annotations

import logging

import grain
import jax
import ml_collections
import numpy as np
from absl import flags

from paintproc_jax import parallel
from paintproc_jax.data import clips as clips_lib
from paintproc_jax.data import config as config_lib
from paintproc_jax.data.examples import BadItem, ExampleMaker
from paintproc_jax.data.sources import ProgramSource, open_source
from paintproc_jax.errors import PaintprocError

log = logging.getLogger(__name__)

PROBE_ITEMS = 8  # items decoded at start-up so a broken dataset fails before any compile


def _absl_flags_parsed():
    """grain's worker processes read absl flags; mark them parsed when no absl app did."""
    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()


class DataPipeline:
    """Batches of reverse-painting training examples for one process, from a data config."""

    def __init__(
        self,
        config: ml_collections.ConfigDict,
        mesh: jax.sharding.Mesh | None = None,
        *,
        batch_mode: str | None = None,
        process_index: int | None = None,
        process_count: int | None = None,
    ):
        """`process_index/count` default to JAX's (override only to simulate other hosts)."""
        config_lib.validate(config)
        self.mesh = mesh if mesh is not None else parallel.make_mesh()
        self.process_index = jax.process_index() if process_index is None else process_index
        self.process_count = jax.process_count() if process_count is None else process_count
        self.local_batch = parallel.check_batch(config.batch_size, self.mesh, self.process_count)
        c = ml_collections.ConfigDict(config.to_dict())
        self.source = open_source(c.source, tfds_data_dir=c.tfds_data_dir, image_key=c.image_key, depth_key=c.depth_key)
        if isinstance(self.source, ProgramSource):
            c = self._adopt_manifest(c, self.source.manifest)
        self.config = c
        self.maker = ExampleMaker(
            self.source, c, local_batch=self.local_batch,
            process_index=self.process_index, process_count=self.process_count,
        )
        self._probe()
        self.spec = clips_lib.clip_spec(c, batch_mode)
        self.dataset = self._dataset()
        self.iterator = iter(self.dataset)
        self.examples = 0
        self.bad_reads = 0

    # -- construction ---------------------------------------------------------------------------

    @staticmethod
    def _adopt_manifest(c, manifest: dict) -> ml_collections.ConfigDict:
        """A program dataset fixes the stroke plan (N, layers, levels, order): take them from it."""
        plan = manifest["plan"]
        for key in ("strokes", "layers", "levels"):
            if c[key] != plan[key]:
                log.info("data.%s=%s taken from the program dataset (was %s)", key, plan[key], c[key])
                c[key] = plan[key]
        c.orders = (plan["order"],)
        c.stroke_scale = (1.0, float(plan.get("size_scale", 1.0)))
        return c

    def _probe(self) -> None:
        """Decodes the first few items now, so that a dataset with no usable image, or a broken
        depth (a sidecar of the wrong size, a missing feature), fails here with one clear line."""
        errors, usable = [], 0
        for index in range(min(PROBE_ITEMS, len(self.source))):
            item = self.source[index]
            try:
                if "record" in item:
                    self.maker.from_record(item, np.random.default_rng(index))
                else:
                    self.maker.load(item, np.random.default_rng(index))
                usable += 1
            except BadItem as e:
                if e.kind == "depth":
                    raise PaintprocError(f"data: {e}") from None
                errors.append(str(e))
        if not usable:
            raise PaintprocError(f"data: no usable image among the first {len(errors)} items of {self.source!r}; e.g. {errors[0]}")

    def _dataset(self) -> grain.IterDataset:
        c = self.config
        ds = grain.MapDataset.range(len(self.source)).seed(c.seed)
        if c.shuffle:
            ds = ds.shuffle()
        ds = ds.repeat(None if c.num_epochs == -1 else c.num_epochs)
        ds = ds[self.process_index :: self.process_count]
        ds = ds.map_with_index(self.maker).batch(self.local_batch, drop_remainder=True)
        # One thread makes examples in each process: the work is NumPy/SciPy that holds the GIL for
        # much of the time, and grain's default of 16 threads (and 500 examples read ahead) made a
        # 2-core host 2.3x slower than one thread, whatever the worker count. Read one batch ahead.
        it = ds.to_iter_dataset(grain.ReadOptions(num_threads=1, prefetch_buffer_size=self.local_batch))
        if c.workers > 0:
            _absl_flags_parsed()
            it = it.mp_prefetch(grain.MultiprocessingOptions(num_workers=c.workers, per_worker_buffer_size=c.worker_buffer))
        return it

    # -- iteration ------------------------------------------------------------------------------

    def __iter__(self):
        return self

    def __next__(self) -> dict:
        """The next host batch: dict of NumPy arrays with a leading local-batch axis."""
        batch = next(self.iterator)
        self.examples += len(batch["index"])
        bad = int(batch["bad_reads"].sum())
        if bad:
            self.bad_reads += bad
        return batch

    def to_device(self, batch: dict) -> dict:
        """Host batch -> global arrays sharded over the mesh's batch axes."""
        return parallel.to_global(batch, self.mesh)

    def render(self, device_batch: dict) -> dict:
        """Device batch -> clips (`clips.render_clips`), jitted; the train step calls it inline."""
        with jax.set_mesh(self.mesh):
            return clips_lib.render_clips_jit(device_batch, spec=self.spec)

    def next_clips(self) -> dict:
        """Convenience for previews and benchmarks: the next batch, on device, rendered."""
        return self.render(self.to_device(next(self)))

    def summary(self) -> str:
        return f"{self.examples} examples from {self.source!r}; {self.bad_reads} unreadable items skipped"

    def close(self) -> None:
        """Stops worker processes (also done at interpreter exit)."""
        close = getattr(self.iterator, "close", None)
        if close is not None:
            close()


def make_pipeline(config: ml_collections.ConfigDict, mesh: jax.sharding.Mesh | None = None, **kwargs) -> DataPipeline:
    """Builds the pipeline of a data config (fails fast, before any compile, on bad input)."""
    return DataPipeline(config, mesh, **kwargs)
