"""Training metrics: per-step values accumulated inside jit (clu.metrics), throughput/MFU, and a
writer that logs scalars to JSONL + TensorBoard and sample videos to GIFs (process 0 only).

Metric keys from `TrainMetrics.compute()`:
  `loss`, `grad_norm`, `learning_rate`: means over the logging interval (one value per step);
  `loss_t{lo:.2f}-{hi:.2f}`: mean per-sample loss of the samples whose noise level t fell in
  [lo, hi) (the last bucket includes 1.0), e.g. `loss_t0.00-0.25` ... `loss_t0.75-1.00`; a bucket
  that saw no sample in the interval is left out (never NaN).

No `from __future__ import annotations` here: clu's `Collection` reads its fields' metric classes
from `__annotations__`, which must be classes, not strings.
"""

import functools
import itertools
import json
import math
import os
import pathlib
from typing import ClassVar

import flax
import jax
import jax.numpy as jnp
import numpy as np
from clu import metrics as clu_metrics

from paintproc_jax.io.atomic import atomic_path
from paintproc_jax.io.images import to_uint8
from paintproc_jax.io.video import key_frame_indices, write_gif

T_EDGES = (0.0, 0.25, 0.5, 0.75, 1.0)  # default noise-level bucket edges

# ---------------------------------------------------------------------------------------------
# Per-step metrics (jittable), merged over a logging interval.


def t_bucket_names(edges=T_EDGES) -> list[str]:
    """Metric keys of the noise-level buckets, e.g. `loss_t0.00-0.25`."""
    return [f"loss_t{lo:.2f}-{hi:.2f}" for lo, hi in zip(edges[:-1], edges[1:])]


@flax.struct.dataclass
class LossByT(clu_metrics.Metric):
    """Per-sample loss summed and counted per noise-level bucket; `compute` gives bucket means.

    Bucket k holds t in [edges[k], edges[k+1]); the last one also holds t == edges[-1]. t outside
    the edges goes to the nearest end bucket. The edges are a class attribute (static under jit);
    `with_edges` makes a subclass for other edges.
    """

    total: jax.Array  # [K] float32, sum of per-sample losses per bucket
    count: jax.Array  # [K] int32, number of samples per bucket
    edges: ClassVar[tuple[float, ...]] = T_EDGES

    @classmethod
    @functools.cache
    def with_edges(cls, edges: tuple[float, ...]) -> type["LossByT"]:
        """The subclass for these bucket edges (cached, so equal edges give the same pytree type)."""
        edges = tuple(float(e) for e in edges)
        if len(edges) < 2 or any(b <= a for a, b in zip(edges[:-1], edges[1:])):
            raise ValueError(f"t bucket edges must be >= 2 strictly increasing values, got {edges}")
        if len(set(t_bucket_names(edges))) != len(edges) - 1:
            raise ValueError(f"t bucket edges {edges} give clashing names at 2 decimals")
        if edges == cls.edges:
            return cls
        return flax.struct.dataclass(type(cls.__name__, (cls,), {"edges": edges}))

    @classmethod
    def empty(cls) -> "LossByT":
        k = len(cls.edges) - 1
        return cls(total=jnp.zeros((k,), jnp.float32), count=jnp.zeros((k,), jnp.int32))

    @classmethod
    def from_model_output(cls, per_sample_loss: jax.Array, per_sample_t: jax.Array, **_) -> "LossByT":
        k = len(cls.edges) - 1
        loss = jnp.asarray(per_sample_loss, jnp.float32).reshape(-1)  # [B]
        t = jnp.asarray(per_sample_t, jnp.float32).reshape(-1)  # [B]
        if loss.shape != t.shape:
            raise ValueError(f"per_sample_loss {loss.shape} and per_sample_t {t.shape} must match")
        inner = jnp.asarray(cls.edges[1:-1], jnp.float32)  # [K-1]
        bucket = jnp.clip(jnp.searchsorted(inner, t, side="right"), 0, k - 1)  # [B]
        onehot = jax.nn.one_hot(bucket, k, dtype=jnp.float32)  # [B, K]
        return cls(total=(loss[:, None] * onehot).sum(0), count=onehot.sum(0).astype(jnp.int32))  # exact f32, no matmul

    def merge(self, other: "LossByT") -> "LossByT":
        return type(self)(total=self.total + other.total, count=self.count + other.count)

    def compute(self) -> dict[str, float]:
        total, count = np.asarray(self.total, np.float64), np.asarray(self.count)
        return {name: float(total[i] / count[i]) for i, name in enumerate(t_bucket_names(self.edges)) if count[i] > 0}


@flax.struct.dataclass
class TrainMetrics(clu_metrics.Collection):
    """Means of loss, grad norm and learning rate over the steps merged, plus loss per t bucket.

    Build one per step with `step_metrics` (inside jit), accumulate with `merge` (device or host),
    start from `TrainMetrics.empty()`, and read on the host with `compute()`.
    """

    loss: clu_metrics.Average
    grad_norm: clu_metrics.Average
    learning_rate: clu_metrics.Average
    loss_by_t: LossByT

    def compute(self) -> dict[str, float]:
        """Host-side dict of Python floats (see the module docstring for keys); empty means are left out."""
        host = jax.device_get(self)
        out = {}
        for name in ("loss", "grad_norm", "learning_rate"):
            m = getattr(host, name)
            if int(m.count) > 0:
                out[name] = float(np.float64(m.total) / int(m.count))
        out.update(host.loss_by_t.compute())
        return out


@functools.cache
def train_metrics_class(t_edges: tuple[float, ...] = T_EDGES) -> type[TrainMetrics]:
    """`TrainMetrics`, or a subclass whose loss buckets have other edges (cached per edges)."""
    bucket_cls = LossByT.with_edges(tuple(t_edges))
    if bucket_cls is LossByT:
        return TrainMetrics
    annotations = {**TrainMetrics.__annotations__, "loss_by_t": bucket_cls}
    return flax.struct.dataclass(type("TrainMetrics", (TrainMetrics,), {"__annotations__": annotations}))


def _mean1(x) -> clu_metrics.Average:
    """An Average holding one float32 scalar value."""
    return clu_metrics.Average(total=jnp.asarray(x, jnp.float32).reshape(()), count=jnp.array(1, jnp.int32))


def step_metrics(
    loss, per_sample_loss, per_sample_t, grad_norm, learning_rate, *, t_edges: tuple[float, ...] = T_EDGES
) -> TrainMetrics:
    """One training step's metrics (jittable). `loss`, `grad_norm`, `learning_rate`: scalars;
    `per_sample_loss`, `per_sample_t`: [B]. Values are cast to float32 so accumulators keep one dtype."""
    cls = train_metrics_class(tuple(t_edges))
    bucket_cls = LossByT.with_edges(tuple(t_edges))
    return cls.empty().replace(
        loss=_mean1(loss),
        grad_norm=_mean1(grad_norm),
        learning_rate=_mean1(learning_rate),
        loss_by_t=bucket_cls.from_model_output(per_sample_loss, per_sample_t),
    )


# ---------------------------------------------------------------------------------------------
# Throughput and MFU.

# bf16 dense peak FLOP/s per device, matched by substring of `jax.Device.device_kind`;
# first match wins, so more specific names come first.
_PEAK_FLOPS = (
    ("H100", 989e12),
    ("H200", 989e12),
    ("A100", 312e12),
    ("TPU v4", 275e12),
    ("TPU v5 lite", 197e12),
    ("TPU v5e", 197e12),
    ("TPU v5p", 459e12),
    ("TPU v5", 459e12),
    ("TPU v6", 918e12),
)


def device_peak_flops(device_kind: str) -> float | None:
    """bf16 dense peak FLOP/s of one device of this kind (`jax.devices()[0].device_kind`); None if unknown/CPU."""
    kind = device_kind.lower()
    for name, peak in _PEAK_FLOPS:
        if name.lower() in kind:
            return peak
    return None


def throughput(
    steps: int, seconds: float, clips_per_step: int, flops_per_clip_train: float, peak_flops_per_s: float | None = None
) -> dict[str, float]:
    """Step time, clips/s and achieved TFLOP/s (from analytic FLOPs) over `steps` steps in `seconds`.

    `mfu` (achieved / peak) is added only when `peak_flops_per_s` > 0; pass the peak of all devices
    together, e.g. `device_peak_flops(kind) * jax.device_count()`.
    """
    if steps <= 0 or seconds <= 0:
        raise ValueError(f"throughput needs steps > 0 and seconds > 0, got steps={steps}, seconds={seconds}")
    clips_per_s = steps * clips_per_step / seconds
    flops_per_s = clips_per_s * flops_per_clip_train
    out = {"step_time_s": seconds / steps, "clips_per_s": clips_per_s, "tflops_per_s": flops_per_s / 1e12}
    if peak_flops_per_s is not None and peak_flops_per_s > 0:
        out["mfu"] = flops_per_s / peak_flops_per_s
    return out


# ---------------------------------------------------------------------------------------------
# Writing: JSONL + TensorBoard scalars, GIF + TensorBoard image samples.

METRICS_FILE = "metrics.jsonl"
_TB_FILES = itertools.count()  # numbers the TensorBoard event files this process opens


def _json_number(value) -> int | float | None:
    """Python int/float for JSON; NaN and inf become None (JSON has no such numbers)."""
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    value = float(value)  # Python/NumPy floats, 0-d NumPy or JAX arrays
    return value if math.isfinite(value) else None


def read_metrics(path) -> list[dict]:
    """Parses a metrics.jsonl (a file, or a workdir holding one); unparsable lines (a write cut
    short by a crash) are skipped."""
    path = pathlib.Path(path)
    if path.is_dir():
        path = path / METRICS_FILE
    records = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict) and isinstance(record.get("step"), int):
                records.append(record)
    return records


def _strip(frames: np.ndarray, num: int = 8) -> np.ndarray:
    """Up to `num` frames evenly spaced in time, side by side: uint8 [H, n * W, 3]."""
    frames = to_uint8(frames)  # [T, H, W, 3]
    return np.concatenate(list(frames[key_frame_indices(len(frames), num)]), axis=1)


class MetricsWriter:
    """Writes `workdir/metrics.jsonl` (one JSON object per `write_scalars`, flushed each time),
    TensorBoard events under `workdir/tb/`, and sample GIFs under `workdir/samples/`.

    Only process 0 should write: pass `enabled=(jax.process_index() == 0)`; a disabled writer
    does nothing at all. Appends to an existing metrics.jsonl; call `truncate_after(step)` when
    resuming from a checkpoint at `step` so the file matches an uninterrupted run.
    """

    def __init__(self, workdir, *, enabled: bool = True, tensorboard: bool = True):
        self.workdir = pathlib.Path(workdir)
        self.enabled = enabled
        self.path = self.workdir / METRICS_FILE
        self._file = None  # metrics.jsonl, opened on first write
        self._tb = None  # tensorboardX.SummaryWriter, opened on first write
        self._tensorboard = tensorboard
        self._purge_step = None  # set by truncate_after for the next TensorBoard file
        if enabled:
            self.workdir.mkdir(parents=True, exist_ok=True)

    def _tb_writer(self):
        """The TensorBoard writer (None when off), opened on first use in a new event file."""
        if self._tb is None and self._tensorboard:
            from tensorboardX import SummaryWriter  # lazy: tensorboardX imports torch when it is installed (~3 s)

            # Event file names hold only the second and host name: a unique suffix stops a second
            # file opened in the same second (a resume, another writer) from overwriting the first.
            suffix = f".{os.getpid()}.{next(_TB_FILES)}"
            self._tb = SummaryWriter(
                str(self.workdir / "tb"), purge_step=self._purge_step, flush_secs=30, filename_suffix=suffix
            )
        return self._tb

    def _open_file(self):
        """Opens metrics.jsonl for appending, first ending a partial last line so new records stay valid."""
        if self._file is None:
            needs_newline = False
            if self.path.exists() and self.path.stat().st_size > 0:
                with open(self.path, "rb") as f:
                    f.seek(-1, os.SEEK_END)
                    needs_newline = f.read(1) != b"\n"
            self._file = open(self.path, "a", encoding="utf-8")
            if needs_newline:
                self._file.write("\n")
        return self._file

    def write_scalars(self, step: int, scalars: dict) -> None:
        """Appends `{"step": step, **scalars}` to metrics.jsonl (NaN/inf -> null) and logs the scalars to TensorBoard."""
        if not self.enabled:
            return
        step = int(step)
        record = {"step": step}
        for key, value in scalars.items():
            if key == "step":
                raise ValueError("'step' is reserved in metrics.jsonl; pass it as the step argument")
            record[str(key)] = _json_number(value)
        f = self._open_file()
        f.write(json.dumps(record, allow_nan=False) + "\n")
        f.flush()
        if (tb := self._tb_writer()) is not None:
            for key, value in record.items():
                if key != "step" and value is not None:
                    tb.add_scalar(key, value, step)

    def write_videos(self, step: int, videos: dict) -> None:
        """Each `[T, H, W, 3]` video (float in [0, 1] or uint8) -> `samples/step_{step:07d}/{name}.gif`,
        and a TensorBoard image strip of up to 8 frames evenly spaced in time."""
        if not self.enabled:
            return
        step = int(step)
        out_dir = self.workdir / "samples" / f"step_{step:07d}"
        for name, video in videos.items():
            video = np.asarray(video)
            write_gif(out_dir / f"{name}.gif", video)
            if (tb := self._tb_writer()) is not None:
                tb.add_image(f"samples/{name}", _strip(video), step, dataformats="HWC")

    def truncate_after(self, step: int) -> None:
        """Keeps only metrics.jsonl records with step <= `step` (and drops corrupt lines), atomically;
        TensorBoard hides its events after `step` too. Call when resuming from a checkpoint at `step`."""
        if not self.enabled:
            return
        step = int(step)
        if self._file is not None:
            self._file.close()
            self._file = None
        if self.path.exists():
            kept = [r for r in read_metrics(self.path) if r["step"] <= step]
            with atomic_path(self.path) as tmp, open(tmp, "w", encoding="utf-8") as f:
                for record in kept:
                    f.write(json.dumps(record, allow_nan=False) + "\n")
        if self._tb is not None:  # the next TensorBoard file hides older events after `step`
            self._tb.close()
            self._tb = None
        self._purge_step = step + 1

    def flush(self) -> None:
        """Pushes everything written so far to disk."""
        if self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())
        if self._tb is not None:
            self._tb.flush()

    def close(self) -> None:
        """Flushes and closes the files (a later write would open them again)."""
        if self._file is not None:
            self.flush()
            self._file.close()
            self._file = None
        if self._tb is not None:
            self._tb.close()
            self._tb = None

    def __enter__(self) -> "MetricsWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
