"""Orbax checkpoints of a run: model + optimizer, EMA, step, the grain iterator state and the
resolved config, saved asynchronously; restore falls back past a corrupted latest checkpoint.

Orbax writes each checkpoint into a temporary folder and renames it into place when complete,
and deletes old ones (beyond `keep`) only after a save succeeded: a failed save (disk full, a
kill) never costs an earlier checkpoint.
"""

from __future__ import annotations

import functools
import logging
import pathlib

import grain
import jax
import orbax.checkpoint as ocp
from flax import nnx

log = logging.getLogger(__name__)


# Orbax's replica-parallel save (its default on CPU and TPU) cuts every replicated array into one
# slice per replica with eager ops: a small XLA program per array shape, compiled on a cold cache.
# For the many small arrays of a model (norms, biases, adapters) that costs far more than the
# bytes it spreads; on a cold cache it was ~20 s per save of the tiny test model on 8 CPU
# devices. Arrays whose per-replica slice is under this size are written whole by one replica
# (the same files on disk: checkpoints written either way load the same).
MIN_REPLICA_SLICE_BYTES = 4 << 20


@functools.cache
def _register_array_handler() -> None:
    """Once per process: orbax's type-handler registry is global."""
    try:
        handler = ocp.type_handlers.ArrayHandler(min_slice_bytes_for_replica_parallel=MIN_REPLICA_SLICE_BYTES)
    except (AttributeError, TypeError):  # an orbax without the option: keep its default handler
        return
    ocp.type_handlers.register_type_handler(jax.Array, handler, override=True)


def manager(workdir: pathlib.Path, keep: int) -> ocp.CheckpointManager:
    """One manager per run: WORKDIR/checkpoints/<step>/{state,ema,data_iter,config}."""
    _register_array_handler()
    return ocp.CheckpointManager(
        pathlib.Path(workdir).resolve() / "checkpoints",
        options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True, enable_async_checkpointing=True),
    )


def _pure(state):
    return None if state is None else nnx.to_pure_dict(state)


def save(mngr: ocp.CheckpointManager, step: int, state, ema, iterator, config_dict: dict) -> None:
    """Starts an async save of everything a bit-identical resume needs."""
    items = dict(
        state=ocp.args.StandardSave(_pure(state)),
        data_iter=grain.checkpoint.CheckpointSave(iterator),
        config=ocp.args.JsonSave(config_dict),
    )
    if ema is not None:
        items["ema"] = ocp.args.StandardSave(_pure(ema))
    mngr.save(step, args=ocp.args.Composite(**items), force=True)


def _abstract(state):
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), _pure(state))


def restore_latest(mngr: ocp.CheckpointManager, state, ema, iterator):
    """(step, state, ema) from the newest checkpoint that restores, or None when there is none.

    `state`/`ema` are the freshly initialised (sharded) targets; the iterator is restored in place.
    A checkpoint that fails to restore is skipped with a warning and the previous one is tried;
    once one restores, the unreadable newer ones are deleted (the run will write those steps again).
    """
    unreadable = []
    for step in sorted(mngr.all_steps(), reverse=True):
        items = dict(state=ocp.args.StandardRestore(_abstract(state)), data_iter=grain.checkpoint.CheckpointRestore(iterator))
        if ema is not None:
            items["ema"] = ocp.args.StandardRestore(_abstract(ema))
        try:
            out = mngr.restore(step, args=ocp.args.Composite(**items))
        except Exception as e:  # noqa: BLE001 - any unreadable checkpoint: fall back to an older one
            log.warning("checkpoint %d could not be restored (%s: %s); trying the previous one", step, type(e).__name__, str(e)[:300])
            unreadable.append(step)
            continue
        for bad in unreadable:
            log.warning("deleting unreadable checkpoint %d (resuming from %d)", bad, step)
            mngr.delete(bad)
        nnx.replace_by_pure_dict(state, out["state"])
        if ema is not None:
            nnx.replace_by_pure_dict(ema, out["ema"])
        return step, state, ema
    return None
