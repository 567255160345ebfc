"""Mesh axis names and the few sharding helpers every part of the stack shares.

One named mesh with axes (`data`, `fsdp`, `context`, `tensor`); batches are split over the
batch axes (`data`, `fsdp`). Logical -> mesh rules for parameters live in the model configs.
"""

from __future__ import annotations

import math

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

DATA, FSDP, CONTEXT, TENSOR = "data", "fsdp", "context", "tensor"
MESH_AXES = (DATA, FSDP, CONTEXT, TENSOR)
BATCH_AXES = (DATA, FSDP)


def make_mesh(shape: dict[str, int] | None = None, devices=None) -> jax.sharding.Mesh:
    """A mesh over all (or the given) devices; `shape` maps axis -> size, one size may be -1 (fill).

    Missing axes get size 1, so `make_mesh()` puts every device on `data`.
    """
    devices = list(jax.devices() if devices is None else devices)
    shape = dict(shape or {DATA: -1})
    unknown = set(shape) - set(MESH_AXES)
    if unknown:
        raise ValueError(f"unknown mesh axes {sorted(unknown)}; the axes are {MESH_AXES}")
    sizes = [int(shape.get(a, 1)) for a in MESH_AXES]
    if sizes.count(-1) > 1 or any(s == 0 or s < -1 for s in sizes):
        raise ValueError(f"mesh sizes must be positive, with at most one -1 to fill: {shape}")
    known = math.prod(s for s in sizes if s != -1)
    if -1 in sizes:
        if len(devices) % known:
            raise ValueError(f"{len(devices)} devices do not divide into a mesh with fixed sizes {shape}")
        sizes[sizes.index(-1)] = len(devices) // known
    if math.prod(sizes) != len(devices):
        raise ValueError(f"mesh {dict(zip(MESH_AXES, sizes))} needs {math.prod(sizes)} devices, have {len(devices)}")
    return jax.make_mesh(
        tuple(sizes), MESH_AXES, axis_types=(jax.sharding.AxisType.Auto,) * len(MESH_AXES), devices=devices
    )


def batch_shards(mesh: jax.sharding.Mesh) -> int:
    """How many ways a batch is split (product of the batch axes' sizes)."""
    return math.prod(mesh.shape[a] for a in BATCH_AXES)


def batch_sharding(mesh: jax.sharding.Mesh, ndim: int) -> NamedSharding:
    """Leading (batch) axis over the batch axes, the rest replicated."""
    return NamedSharding(mesh, PartitionSpec(BATCH_AXES, *([None] * (ndim - 1))))


def check_batch(global_batch: int, mesh: jax.sharding.Mesh, processes: int | None = None) -> int:
    """Validates a global batch size against the mesh and processes; returns the per-process batch."""
    shards, procs = batch_shards(mesh), processes or jax.process_count()
    if global_batch < 1 or global_batch % shards:
        raise ValueError(
            f"batch size {global_batch} does not divide the mesh: the batch axes {BATCH_AXES} have "
            f"{shards} shards ({dict(mesh.shape)}); use a multiple of {shards}"
        )
    if global_batch % procs:
        raise ValueError(f"batch size {global_batch} is not divisible by the {procs} processes")
    return global_batch // procs


def to_global(tree, mesh: jax.sharding.Mesh):
    """Per-process NumPy batch (leading axis = local batch) -> global arrays sharded over the batch axes."""
    return jax.tree.map(
        lambda x: jax.make_array_from_process_local_data(batch_sharding(mesh, np.ndim(x)), np.asarray(x)), tree
    )
