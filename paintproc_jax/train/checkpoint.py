"""The one owner of the checkpoint format: writes, finds and restores a run's checkpoints.

    WORKDIR/checkpoints/<step>/{model, optimizer, ema, data_iter, config}

Named items (orbax, saved asynchronously): `model` and `optimizer` (nnx pure dicts of the two
halves of `nnx.state((model, optimizer))`), `ema` (parameters; absent when EMA is off), `data_iter`
(the grain iterator state) and `config` (the resolved config, JSON). Checkpoints written before
issue 16 hold one positional item `state` = {"0": model, "1": optimizer} instead of `model` and
`optimizer`; everything here reads both layouts, and only this module knows either.

Orbax writes each checkpoint into a temporary folder and renames it into place when complete,
and deletes old ones (beyond `keep`) only after a save succeeded: a failed save (disk full, a
kill) never costs an earlier checkpoint.
"""

from __future__ import annotations

import functools
import json
import logging
import pathlib

import grain
import jax
import orbax.checkpoint as ocp
from flax import nnx

from paintproc_jax.errors import PaintprocError, one_line

log = logging.getLogger(__name__)

MODEL, OPTIMIZER, EMA, DATA_ITER, CONFIG = "model", "optimizer", "ema", "data_iter", "config"
LEGACY_STATE = "state"  # the pre-issue-16 item {"0": model, "1": optimizer}

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


# -- writing and resuming (the trainer) ------------------------------------------------------------


def manager(workdir: pathlib.Path, keep: int) -> ocp.CheckpointManager:
    """One manager per run, over WORKDIR/checkpoints."""
    _register_array_handler()
    return ocp.CheckpointManager(
        pathlib.Path(workdir).resolve() / "checkpoints",
        options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True, enable_async_checkpointing=True),
    )


def _pure(state):
    return None if state is None else nnx.to_pure_dict(state)


def save(mngr: ocp.CheckpointManager, step: int, state, ema, iterator, config_dict: dict) -> None:
    """Starts an async save of everything a bit-identical resume needs; `state` = nnx.state((model, optimizer))."""
    pure = _pure(state)
    items = {
        MODEL: ocp.args.StandardSave(pure[0]),
        OPTIMIZER: ocp.args.StandardSave(pure[1]),
        DATA_ITER: grain.checkpoint.CheckpointSave(iterator),
        CONFIG: ocp.args.JsonSave(config_dict),
    }
    if ema is not None:
        items[EMA] = ocp.args.StandardSave(_pure(ema))
    mngr.save(step, args=ocp.args.Composite(**items), force=True)


def _abstract(tree):
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), tree)


def _is_legacy(step_dir: pathlib.Path) -> bool:
    return not (step_dir / MODEL).is_dir() and (step_dir / LEGACY_STATE).is_dir()


def restore_latest(mngr: ocp.CheckpointManager, state, ema, iterator):
    """(step, state, ema) from the newest checkpoint that restores, or None when there is none.

    `state`/`ema` are the freshly initialised (sharded) targets; the iterator is restored in place.
    A checkpoint that fails to restore is skipped with a warning and the previous one is tried;
    once one restores, the unreadable newer ones are deleted (the run will write those steps again).
    """
    unreadable = []
    pure = _pure(state)
    for step in sorted(mngr.all_steps(), reverse=True):
        legacy = _is_legacy(pathlib.Path(mngr.directory) / str(step))
        if legacy:
            items = {LEGACY_STATE: ocp.args.StandardRestore(_abstract(pure))}
        else:
            items = {MODEL: ocp.args.StandardRestore(_abstract(pure[0])), OPTIMIZER: ocp.args.StandardRestore(_abstract(pure[1]))}
        items[DATA_ITER] = grain.checkpoint.CheckpointRestore(iterator)
        if ema is not None:
            items[EMA] = ocp.args.StandardRestore(_abstract(_pure(ema)))
        try:
            out = mngr.restore(step, args=ocp.args.Composite(**items))
        except Exception as e:  # noqa: BLE001 - any unreadable checkpoint: fall back to an older one
            log.warning("checkpoint %d could not be restored (%s: %s); trying the previous one", step, type(e).__name__, str(e)[:300])
            unreadable.append(step)
            continue
        for bad in unreadable:
            log.warning("deleting unreadable checkpoint %d (resuming from %d)", bad, step)
            mngr.delete(bad)
        nnx.replace_by_pure_dict(state, out[LEGACY_STATE] if legacy else {0: out[MODEL], 1: out[OPTIMIZER]})
        if ema is not None:
            nnx.replace_by_pure_dict(ema, out[EMA])
        return step, state, ema
    return None


# -- finding and reading one checkpoint (sampling, export) -------------------------------------------


def is_step_dir(path: pathlib.Path) -> bool:
    """A finished checkpoint folder `checkpoints/<step>` (orbax writes into temporaries and renames)."""
    return path.is_dir() and path.name.isdigit() and any(
        (path / name).exists() for name in ("_CHECKPOINT_METADATA", MODEL, LEGACY_STATE)
    )


def steps_in(ckpt_dir: pathlib.Path) -> list[int]:
    """Finished checkpoint steps in a `checkpoints/` folder, ascending."""
    return sorted(int(p.name) for p in ckpt_dir.iterdir() if is_step_dir(p))


def resolve(checkpoint, step: int | None = None) -> tuple[pathlib.Path, int]:
    """(checkpoints folder, step) for a WORKDIR, its `checkpoints/` folder or a step folder (step None = the latest)."""
    path = pathlib.Path(checkpoint).expanduser().absolute()  # orbax wants absolute paths
    if not path.exists():
        raise PaintprocError(f"checkpoint {path} does not exist (give a training workdir, its checkpoints/ folder or a step folder)")
    if not path.is_dir():
        raise PaintprocError(f"checkpoint {path} is not a folder (give a training workdir, its checkpoints/ folder or a step folder)")
    if is_step_dir(path):
        if step is not None and step != int(path.name):
            raise PaintprocError(f"--step {step} contradicts the step folder {path} (step {path.name})")
        return path.parent, int(path.name)
    ckpt_dir = path / "checkpoints" if (path / "checkpoints").is_dir() else path
    steps = steps_in(ckpt_dir)
    if not steps:
        raise PaintprocError(f"no checkpoints in {path} (expected a training workdir with checkpoints/<step>/ folders)")
    if step is None:
        return ckpt_dir, steps[-1]
    if step not in steps:
        raise PaintprocError(f"no checkpoint of step {step} in {ckpt_dir}; steps there: {', '.join(map(str, steps))}")
    return ckpt_dir, step


def read_config(step_dir: pathlib.Path) -> dict:
    """The resolved config saved with the checkpoint (else the workdir's config.json)."""
    cfg = None
    if (step_dir / CONFIG).is_dir():
        try:
            cfg = ocp.Checkpointer(ocp.JsonCheckpointHandler()).restore(step_dir / CONFIG, args=ocp.args.JsonRestore())
        except Exception as e:  # noqa: BLE001 - fall back to the workdir's copy below
            log.warning("cannot read the config of %s (%s); trying the workdir's config.json", step_dir, one_line(e))
    if cfg is None:
        path = step_dir.parent.parent / "config.json"
        if not path.is_file():
            raise PaintprocError(f"checkpoint {step_dir} has no readable config (no config/ item, no {path})")
        try:
            cfg = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise PaintprocError(f"cannot read {path}: {one_line(e)}") from None
    if not isinstance(cfg, dict) or "model" not in cfg or "data" not in cfg:
        raise PaintprocError(f"checkpoint {step_dir}: its config has no model/data sections; is this a paintproc training run?")
    return cfg


def restore_params(step_dir: pathlib.Path, target: dict) -> tuple[dict, str]:
    """The parameters (a pure dict like `target`, with its shardings): the EMA item if present, else
    the model's parameters; the optimizer state is never read. Returns (params, "ema" | "model")."""
    restore_args = jax.tree.map(lambda x: ocp.ArrayRestoreArgs(sharding=x.sharding, global_shape=x.shape, dtype=x.dtype), target)
    ckptr = ocp.PyTreeCheckpointer()
    if (step_dir / EMA).is_dir():
        return ckptr.restore(step_dir / EMA, args=ocp.args.PyTreeRestore(item=target, restore_args=restore_args)), "ema"
    if (step_dir / MODEL).is_dir():  # all model variables: take the parameters
        args = ocp.args.PyTreeRestore(item=target, restore_args=restore_args, partial_restore=True)
        return ckptr.restore(step_dir / MODEL, args=args), "model"
    if (step_dir / LEGACY_STATE).is_dir():
        args = ocp.args.PyTreeRestore(item={"0": target}, restore_args={"0": restore_args}, partial_restore=True)
        return ckptr.restore(step_dir / LEGACY_STATE, args=args)["0"], "model"
    raise PaintprocError(f"checkpoint {step_dir} holds neither {EMA}/ nor {MODEL}/ (nor the older {LEGACY_STATE}/)")
