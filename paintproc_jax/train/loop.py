"""The training loop: one code path from a laptop CPU to a multi-host pod.

    summary = train(config, workdir)     # tools/train.py calls this

Sets up (before any compile: config checks, mesh, data probe) → builds the sharded model,
optimizer and EMA → restores the latest checkpoint if there is one (bit-identical resume) → runs
the jitted step, logging metrics every `train.log_every` steps, checkpointing every
`train.ckpt_every`, sampling GIFs every `train.sample_every`; SIGTERM saves a checkpoint and stops.
Periodic work is due by `periodic.Every`; `periodic.StepClock` times it, so step time and MFU
count training steps only (the step is compiled ahead of time, outside them).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import pathlib
import signal

import jax
import ml_collections
from jax.experimental import multihost_utils
import numpy as np
from flax import nnx

from paintproc_jax import parallel
from paintproc_jax.errors import ConfigError, PaintprocError
from paintproc_jax.models import create_model
from paintproc_jax.models.flops import count_flops
from paintproc_jax.models.sharding import param_shardings
from paintproc_jax.train import checkpoint
from paintproc_jax.train.config import validate
from paintproc_jax.train.metrics import MetricsWriter, device_peak_flops, throughput
from paintproc_jax.train.optim import learning_rate, make_optimizer
from paintproc_jax.train.periodic import Every, StepClock
from paintproc_jax.train.step import make_train_step
from paintproc_jax.diffusion import sample, sampler_kwargs, to_forward
from paintproc_jax.diffusion.objective import split_clip
from paintproc_jax.metrics.evaluate import sample_scores
from paintproc_jax.metrics.lpips import get_lpips
from paintproc_jax.metrics.pdp import pdp_distance

log = logging.getLogger("paintproc.train")
ASSETS = pathlib.Path(__file__).resolve().parents[1] / "assets"


@dataclasses.dataclass
class Summary:
    """What a run did: last step reached, where it started, whether it was pre-empted, last metrics,
    how many non-finite steps were skipped (`train.skip_nonfinite`) and where the time went."""

    step: int
    start_step: int
    preempted: bool
    last_metrics: dict
    skipped_steps: int = 0
    seconds: dict = dataclasses.field(default_factory=dict)  # StepClock totals: train, compile, checkpoint, ...


class Diverged(PaintprocError):
    """A step's loss or gradient norm was not finite: the run stopped before checkpointing it."""


class _FiniteCheck:
    """Reads each step's `finite` flag one step late (no stall: the next step is already queued), and
    all of them before a checkpoint, so a poisoned state is never saved (big_vision stops on NaN)."""

    def __init__(self, skip: bool):
        self.skip, self.pending, self.skipped = skip, [], 0

    def add(self, step: int, finite) -> None:
        self.pending.append((step, finite))
        while len(self.pending) > 1:
            self._check(*self.pending.pop(0))

    def flush(self) -> None:
        while self.pending:
            self._check(*self.pending.pop(0))

    def _check(self, step: int, finite) -> None:
        if bool(finite):
            return
        if self.skip:
            self.skipped += 1
            log.warning("step %d: non-finite loss/gradient, step skipped (%d so far)", step, self.skipped)
            return
        raise Diverged(
            f"non-finite loss/gradient at step {step}; stopped without checkpointing it (earlier checkpoints are kept). "
            "Lower train.optim.lr (or raise warmup_steps), or set train.skip_nonfinite=True to skip such steps"
        )


def maybe_initialize_distributed() -> None:
    """`jax.distributed.initialize()` when launched as several processes (SLURM, a TPU pod, or JAX_* env)."""
    multi = (
        "JAX_COORDINATOR_ADDRESS" in os.environ
        or int(os.environ.get("SLURM_NTASKS", "1")) > 1
        or len(os.environ.get("TPU_WORKER_HOSTNAMES", "").split(",")) > 1
    )
    if multi and not jax.distributed.is_initialized():
        env = os.environ  # JAX_NUM_PROCESSES / JAX_PROCESS_ID for launchers jax does not detect (SLURM, TPU are)
        jax.distributed.initialize(
            num_processes=int(env["JAX_NUM_PROCESSES"]) if "JAX_NUM_PROCESSES" in env else None,
            process_id=int(env["JAX_PROCESS_ID"]) if "JAX_PROCESS_ID" in env else None,
        )


def mesh_from_config(c: ml_collections.ConfigDict) -> jax.sharding.Mesh:
    """The `mesh` section: axis sizes (one may be -1) over all devices, or the first `num_devices`."""
    m = c.mesh.to_dict() if "mesh" in c else {}
    n = int(m.pop("num_devices", 0) or 0)
    return parallel.make_mesh({k: int(v) for k, v in m.items()}, devices=jax.devices()[:n] if n else None)


class _Stop:
    """SIGTERM (pre-emption) flag; the loop checkpoints and returns at the next step boundary."""

    def __init__(self):
        self.requested = False
        self._old = None

    def __enter__(self):
        def handler(signum, frame):
            log.warning("SIGTERM: saving a checkpoint and stopping after this step")
            self.requested = True

        try:
            self._old = signal.signal(signal.SIGTERM, handler)
        except ValueError:  # not the main thread: no handler
            self._old = None
        return self

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGTERM, self._old)


def _sample_batch(c: ml_collections.ConfigDict, mesh):
    """A fixed batch of held-out clips (source train.sample_source, no shuffling) for periodic samples."""
    from paintproc_jax.data.pipeline import make_pipeline  # lazy: grain (the data pipeline) only where a run reads data; the GPU image lacks it unless carried

    d = ml_collections.ConfigDict(c.data.to_dict())
    d.source = c.train.sample_source or f"folder:{ASSETS}"
    shards = parallel.batch_shards(mesh)
    d.batch_size = -(-c.train.sample_count // shards) * shards
    d.update(shuffle=False, workers=0, num_epochs=-1, cross_media=0.0)
    pipe = make_pipeline(d, mesh)
    try:
        return pipe.next_clips()
    finally:
        pipe.close()


def train(config: ml_collections.ConfigDict, workdir: str | os.PathLike) -> Summary:
    """Runs (or resumes) training of `config` in `workdir`; returns a `Summary`."""
    from paintproc_jax.data.pipeline import make_pipeline  # lazy: grain (the data pipeline) only where a run reads data; the GPU image lacks it unless carried

    c = config
    t = c.train
    maybe_initialize_distributed()
    try:  # the checks before any compile: their ValueErrors are bad input (one line), later ones bugs
        mesh = mesh_from_config(c)
        validate(c, mesh)  # every check that needs no compile
        workdir = pathlib.Path(workdir)
        main = jax.process_index() == 0
        if main:
            workdir.mkdir(parents=True, exist_ok=True)
            (workdir / "config.json").write_text(json.dumps(c.to_dict(), indent=1, default=str))
        pipe = make_pipeline(c.data, mesh)  # probes the data: bad input fails here
    except ValueError as e:
        if isinstance(e, PaintprocError):
            raise
        raise ConfigError(str(e)) from e

    with jax.set_mesh(mesh):
        model = create_model(c.model, mesh, seed=t.seed)
        total = c.total_steps
        opt = nnx.Optimizer(model, make_optimizer(t.optim, total), wrt=nnx.Param)
        graphdef, state = nnx.split((model, opt))
        model_def, model_params, model_rest = nnx.split(model, nnx.Param, ...)
        params = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(model_params))
        shardings = param_shardings(state, c.model.rules, mesh)
        state = jax.device_put(state, shardings)
        ema = None
        ema_shardings = None
        if t.ema_decay > 0:
            ema = jax.tree.map(lambda x: x.copy(), nnx.state(model, nnx.Param))
            ema_shardings = param_shardings(ema, c.model.rules, mesh)
            ema = jax.device_put(ema, ema_shardings)
        del model, opt, model_params

        mngr = checkpoint.manager(workdir, t.keep_checkpoints)
        restored = checkpoint.restore_latest(mngr, state, ema, pipe.iterator)
        start = 0
        if restored is not None:
            start, state, ema = restored
            state = jax.device_put(state, shardings)
            ema = None if ema is None else jax.device_put(ema, ema_shardings)
        writer = MetricsWriter(workdir, enabled=main)
        if restored is not None:
            writer.truncate_after(start)

        skip_nonfinite = bool(t.get("skip_nonfinite", False))  # configs saved before the option lack it
        flops = count_flops(c)
        batch = c.data.batch_size
        peak = device_peak_flops(jax.devices()[0].device_kind)
        log.info(
            "devices: %d x %s (%d processes); mesh %s; params %.2f M; %.3f TFLOP per step (%d clips x %.1f GFLOP train); "
            "%s from step %d to %d", jax.device_count(), jax.devices()[0].device_kind, jax.process_count(),
            dict(mesh.shape), params / 1e6, flops.train * batch / 1e12, batch, flops.train / 1e9,
            "resuming" if restored else "starting", start, total,
        )
        step_fn = jax.jit(
            make_train_step(graphdef, pipe.spec, c.diffusion, grad_accum=t.grad_accum, ema_decay=t.ema_decay,
                            lr_fn=learning_rate(t.optim, total), skip_nonfinite=skip_nonfinite),
            out_shardings=(shardings, ema_shardings, None, None),
            donate_argnums=(0, 1),
        )
        # every process samples (the jitted sampler spans the mesh); only process 0 writes
        sampler = _Sampler(c, mesh, model_def, model_rest) if t.sample_every else None
        base_key = jax.random.key(t.seed)
        log_due, ckpt_due, sample_due = Every(t.log_every, (total,)), Every(t.ckpt_every, (total,)), Every(t.sample_every)
        profile_on = Every(also=(t.profile_start,) if t.profile_start >= 0 else ())
        profile_off = Every(also=(t.profile_start + t.profile_steps,) if t.profile_start >= 0 else ())
        acc, last, since, last_saved, dev = None, {}, 0, start, None
        step = start
        finite = _FiniteCheck(skip_nonfinite)
        clock = StepClock()
        try:
            with _Stop() as stop:
                if step < total:  # compile ahead of the first step, on its batch: not a training step
                    with clock.section("compile"):
                        dev = pipe.to_device(next(pipe))
                        step_fn = step_fn.lower(state, ema, dev, jax.random.fold_in(base_key, step)).compile()
                    log.info("train step compiled in %.1f s", clock.totals["compile"])
                clock.start()
                while step < total and not stop.requested:
                    if profile_on(step):
                        jax.profiler.start_trace(str(workdir / "profile"))
                    if dev is None:
                        with clock.part("data"):
                            dev = pipe.to_device(next(pipe))
                    state, ema, m, ok = step_fn(state, ema, dev, jax.random.fold_in(base_key, step))
                    dev = None
                    step += 1
                    finite.add(step, ok)
                    if profile_off(step):
                        with clock.section("profile", wait=state):
                            jax.profiler.stop_trace()
                    acc = m if acc is None else acc.merge(m)
                    since += 1
                    scalars = None
                    if log_due(step):
                        seconds = clock.take(wait=state)  # training steps only: compile, saves, samples are sections
                        with clock.section("log"):
                            scalars = acc.compute()
                            scalars.update(throughput(since, seconds, batch, flops.train, peak * jax.device_count() if peak else None))
                        last = scalars
                        acc, since = None, 0
                    if ckpt_due(step):
                        with clock.section("checkpoint", wait=state):
                            finite.flush()  # never save a poisoned state
                            _save(mngr, step, state, ema, pipe.iterator, c)
                        last_saved = step
                    if sampler is not None and sample_due(step):
                        with clock.section("sample", wait=state):
                            videos, scores = sampler(ema if ema is not None else nnx.state(nnx.merge(graphdef, state)[0], nnx.Param), step)
                            writer.write_videos(step, videos)
                        scalars = {**(scalars or {}), **scores}  # one metrics row per step
                    if scalars is not None:
                        with clock.section("log"):
                            writer.write_scalars(step, scalars)
                finite.flush()  # the last steps, before any final save
                if stop.requested and last_saved != step:
                    with clock.section("checkpoint", wait=state):
                        _save(mngr, step, state, ema, pipe.iterator, c)
                log.info("time: %s", clock.summary())
            try:
                mngr.wait_until_finished()
            except OSError as e:
                raise PaintprocError(f"saving the checkpoint of step {last_saved} failed ({e}); earlier checkpoints are intact") from e
        finally:  # also on errors: let pending async saves finish, stop workers, flush metrics
            try:
                mngr.wait_until_finished()
            except Exception as e:  # noqa: BLE001 - already failing; keep the first error
                log.warning("a pending checkpoint save failed: %s", e)
            mngr.close()
            writer.close()
            pipe.close()
    return Summary(step=step, start_step=start, preempted=stop.requested, last_metrics=last, skipped_steps=finite.skipped,
                   seconds=clock.seconds())


def _save(mngr, step, state, ema, iterator, c) -> None:
    """Checkpoint, turning a failed write (disk full, ...) into one clear error; orbax only renames a
    checkpoint into place once complete and deletes old ones after, so earlier checkpoints survive."""
    try:
        checkpoint.save(mngr, step, state, ema, iterator, c.to_dict())
    except OSError as e:
        raise PaintprocError(f"saving the checkpoint of step {step} failed ({e}); earlier checkpoints are intact") from e


class _Sampler:
    """Periodic samples from fixed held-out images with the EMA parameters: videos {name: [T, H, W, 3]
    in [0, 1]}, the generated process (painting order) beside the stroke engine's clip of the same
    image, and scores {sample/pdp_to_strokes, sample/layering, sample/refinement, sample/strokes_*}
    that show whether the model paints like the engine (see `metrics.evaluate.sample_scores`)."""

    def __init__(self, c, mesh, model_def, rest):
        clips = _sample_batch(c, mesh)
        _, self.cond = split_clip(clips)
        reference, depth = to_forward(clips["clip"]), self.cond.get("depth")
        if jax.process_count() > 1:
            reference, depth = multihost_utils.process_allgather((reference, depth), tiled=True)
        self.reference = np.asarray(reference)[: c.train.sample_count]
        self.depth = None if depth is None else np.asarray(depth)[: c.train.sample_count]
        # the stroke clips never change: their PDP curves and scores are computed once
        self.reference_curves, self.reference_scores = sample_scores(self.reference, self.depth, get_lpips("alex"))
        self.count, self.seed = c.train.sample_count, c.train.seed
        s = c.sample
        kw = dict(frames=c.model.frames, sampler=s.sampler, steps=s.steps, guidance=s.guidance.to_dict(), forward=True,
                  **sampler_kwargs(c.diffusion))

        def run(params, cond, key):
            model = nnx.merge(model_def, params, rest)
            return sample(model, model.cache_depth(cond), key, **kw)

        self._run = jax.jit(run)

    def __call__(self, params, step: int) -> tuple[dict, dict]:
        out = self._run(params, self.cond, jax.random.key(self.seed))  # same noise every time
        out = np.asarray(multihost_utils.process_allgather(out, tiled=True) if jax.process_count() > 1 else out)
        generated = np.clip((out[: self.count] + 1) / 2, 0, 1)
        videos = {}
        for i in range(self.count):
            videos[f"sample_{i}"] = generated[i]
            videos[f"strokes_{i}"] = self.reference[i]
        curves, scores = sample_scores(generated, self.depth, get_lpips("alex"))
        scores["pdp_to_strokes"] = float(np.mean([pdp_distance(a, b) for a, b in zip(curves, self.reference_curves)]))
        scores.update({f"strokes_{k}": v for k, v in self.reference_scores.items()})
        return videos, {f"sample/{k}": v for k, v in scores.items()}
