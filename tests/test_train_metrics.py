"""Train metrics: clu accumulation (incl. t buckets, under jit), throughput/MFU, MetricsWriter."""

import json
import math
import pathlib

import imageio.v2 as imageio
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from paintproc_jax.train.metrics import (
    T_EDGES,
    MetricsWriter,
    TrainMetrics,
    device_peak_flops,
    read_metrics,
    step_metrics,
    t_bucket_names,
    throughput,
    train_metrics_class,
)


def _steps(rng, n=5, b=6, t_high=1.0):
    """n steps of random metrics inputs; t drawn from [0, t_high]."""
    return [
        dict(
            loss=rng.uniform(0, 2),
            per_sample_loss=rng.uniform(0, 3, b).astype(np.float32),
            per_sample_t=rng.uniform(0, t_high, b).astype(np.float32),
            grad_norm=rng.uniform(0, 5),
            learning_rate=rng.uniform(1e-4, 1e-3),
        )
        for _ in range(n)
    ]


def _expected(steps, edges=T_EDGES):
    """NumPy reference of what TrainMetrics.compute() should give."""
    out = {k: float(np.mean([np.float32(s[k]) for s in steps])) for k in ("loss", "grad_norm", "learning_rate")}
    loss = np.concatenate([s["per_sample_loss"] for s in steps])
    t = np.concatenate([s["per_sample_t"] for s in steps])
    for k, name in enumerate(t_bucket_names(edges)):
        last = k == len(edges) - 2
        sel = (t >= edges[k]) & ((t <= edges[k + 1]) if last else (t < edges[k + 1]))
        if sel.any():
            out[name] = float(loss[sel].mean())
    return out


def _assert_close(got, want):
    assert got.keys() == want.keys()
    for k in want:
        assert got[k] == pytest.approx(want[k], rel=1e-5), k


def test_bucket_names():
    assert t_bucket_names() == ["loss_t0.00-0.25", "loss_t0.25-0.50", "loss_t0.50-0.75", "loss_t0.75-1.00"]


def test_merged_metrics_match_numpy_and_skip_empty_bucket(rng):
    steps = _steps(rng, t_high=0.7)  # nothing reaches the last bucket
    acc = TrainMetrics.empty()
    for s in steps:
        acc = acc.merge(step_metrics(**s))
    got = acc.compute()
    _assert_close(got, _expected(steps))
    assert "loss_t0.75-1.00" not in got
    assert all(isinstance(v, float) and math.isfinite(v) for v in got.values())


def test_bucket_edges_are_half_open_and_one_is_in_last():
    m = step_metrics(0.0, jnp.array([1.0, 2.0, 3.0, 4.0, 5.0]), jnp.array([0.0, 0.25, 0.5, 0.75, 1.0]), 0.0, 0.0)
    got = m.compute()
    assert got["loss_t0.00-0.25"] == 1.0
    assert got["loss_t0.25-0.50"] == 2.0
    assert got["loss_t0.50-0.75"] == 3.0
    assert got["loss_t0.75-1.00"] == 4.5


def test_empty_metrics_compute_to_nothing():
    assert TrainMetrics.empty().compute() == {}


def test_jit_accumulation_and_host_merge(rng):
    steps = _steps(rng, n=4, b=8)

    @jax.jit
    def update(acc, s):
        return acc.merge(step_metrics(**s))

    acc = TrainMetrics.empty()
    for s in steps[:2]:
        acc = update(acc, {k: jnp.asarray(v, jnp.bfloat16 if k == "loss" else None) for k, v in s.items()})
    assert acc.loss.total.dtype == jnp.float32  # accumulators keep one dtype across steps
    # merge a device-accumulated part with a host (numpy) one
    rest = jax.device_get(step_metrics(**steps[2]).merge(step_metrics(**steps[3])))
    got = jax.device_get(acc).merge(rest).compute()
    want = _expected(steps)
    want["loss"] = float(
        np.mean([np.float32(jnp.bfloat16(s["loss"])) for s in steps[:2]] + [np.float32(s["loss"]) for s in steps[2:]])
    )
    _assert_close(got, want)


def test_sharded_batch_under_jit(rng):
    """Per-sample arrays sharded over 8 devices reduce to the same global bucket means."""
    s = _steps(rng, n=1, b=16)[0]
    mesh = jax.make_mesh((len(jax.devices()),), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
    sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
    sharded = dict(
        s,
        per_sample_loss=jax.device_put(s["per_sample_loss"], sharding),
        per_sample_t=jax.device_put(s["per_sample_t"], sharding),
    )
    acc = jax.jit(lambda a, s: a.merge(step_metrics(**s)))(TrainMetrics.empty(), sharded)
    _assert_close(acc.compute(), _expected([s]))


def test_custom_edges(rng):
    edges = (0.0, 0.1, 0.9, 1.0)
    steps = _steps(rng, n=3)
    cls = train_metrics_class(edges)
    assert cls is train_metrics_class(edges) and issubclass(cls, TrainMetrics)
    acc = cls.empty()
    for s in steps:
        acc = jax.jit(lambda a, s: a.merge(step_metrics(**s, t_edges=edges)))(acc, s)
    _assert_close(acc.compute(), _expected(steps, edges))
    with pytest.raises(ValueError):
        train_metrics_class((0.0, 0.5, 0.5, 1.0))


def test_throughput_and_mfu():
    out = throughput(steps=10, seconds=5.0, clips_per_step=32, flops_per_clip_train=1e12, peak_flops_per_s=8 * 989e12)
    assert out["step_time_s"] == pytest.approx(0.5)
    assert out["clips_per_s"] == pytest.approx(64.0)
    assert out["tflops_per_s"] == pytest.approx(64.0)
    assert out["mfu"] == pytest.approx(64e12 / (8 * 989e12))
    assert "mfu" not in throughput(10, 5.0, 32, 1e12, None)
    assert "mfu" not in throughput(10, 5.0, 32, 1e12, 0.0)
    with pytest.raises(ValueError):
        throughput(0, 1.0, 1, 1.0, None)


def test_device_peak_flops():
    assert device_peak_flops("NVIDIA H100 80GB HBM3") == 989e12
    assert device_peak_flops("NVIDIA H200") == 989e12
    assert device_peak_flops("NVIDIA A100-SXM4-80GB") == 312e12
    assert device_peak_flops("TPU v4") == 275e12
    assert device_peak_flops("TPU v5 lite") == 197e12
    assert device_peak_flops("TPU v5p") == 459e12
    assert device_peak_flops("TPU v6 lite") == 918e12
    assert device_peak_flops("cpu") is None
    assert device_peak_flops(jax.devices()[0].device_kind) is None


def test_writer_jsonl_nan_append_and_tensorboard(tmp_path):
    with MetricsWriter(tmp_path) as w:
        w.write_scalars(1, {"loss": np.float32(0.5), "mfu": float("nan"), "n": np.int64(3)})
        w.write_scalars(2, {"loss": jnp.array(0.25), "grad_norm": float("inf")})
        # flushed per call: readable before close
        assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 2
    with MetricsWriter(tmp_path) as w:  # a second writer appends
        w.write_scalars(3, {"loss": 0.125})
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]  # every line valid JSON
    assert [list(r)[0] for r in records] == ["step"] * 3
    assert records[0] == {"step": 1, "loss": 0.5, "mfu": None, "n": 3}
    assert records[1] == {"step": 2, "loss": 0.25, "grad_norm": None}
    assert read_metrics(tmp_path / "metrics.jsonl") == records
    # one event file per writer, even when opened within the same second
    assert len(list((tmp_path / "tb").glob("events.out.tfevents.*"))) == 2


def test_truncate_after_drops_later_steps_and_corrupt_line(tmp_path):
    with MetricsWriter(tmp_path, tensorboard=False) as w:
        for step in (10, 20, 30):
            w.write_scalars(step, {"loss": step / 10})
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"step": 40, "lo')  # a crash mid-write
    with MetricsWriter(tmp_path, tensorboard=False) as w:
        w.truncate_after(20)
        w.write_scalars(30, {"loss": 3.5})
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert records == [{"step": 10, "loss": 1.0}, {"step": 20, "loss": 2.0}, {"step": 30, "loss": 3.5}]
    assert not list(tmp_path.glob(".*tmp*"))  # the atomic rewrite left no temp file


def test_append_after_partial_line_starts_a_new_line(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"step": 1, "loss": 1.0}\n{"step": 2, "lo')
    with MetricsWriter(tmp_path, tensorboard=False) as w:
        w.write_scalars(2, {"loss": 2.0})
    assert read_metrics(tmp_path) == [{"step": 1, "loss": 1.0}, {"step": 2, "loss": 2.0}]


def test_write_videos(tmp_path, rng):
    video = rng.uniform(0, 1, (5, 16, 24, 3)).astype(np.float32)
    with MetricsWriter(tmp_path) as w:
        w.write_videos(1200, {"sample_0": video, "sample_1": (video * 255).astype(np.uint8)})
    for name in ("sample_0", "sample_1"):
        frames = np.asarray(imageio.mimread(tmp_path / "samples" / "step_0001200" / f"{name}.gif"))
        assert frames.shape[:3] == (5, 16, 24)
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))


def test_disabled_writer_writes_nothing(tmp_path):
    workdir = tmp_path / "run"
    with MetricsWriter(workdir, enabled=False) as w:
        w.write_scalars(1, {"loss": 1.0})
        w.write_videos(1, {"v": np.zeros((2, 4, 4, 3), np.float32)})
        w.truncate_after(0)
        w.flush()
    assert not workdir.exists()


def _plot_tool():
    import importlib.util

    path = pathlib.Path(__file__).resolve().parents[1] / "tools" / "plot_run.py"
    spec = importlib.util.spec_from_file_location("plot_run", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_plot_run_draws_loss_buckets_learning_rate_and_sample_scores(tmp_path, capsys):
    from PIL import Image

    runs = []
    for name, shift in (("a", 0.0), ("b", 0.2)):
        run = tmp_path / name
        run.mkdir()
        rows = [{"step": s, "loss": 1.0 / s + shift, "learning_rate": 1e-3 * min(1, s / 5), "loss_t0.00-0.50": 0.5 / s,
                 "loss_t0.50-1.00": 2.0 / s} for s in range(1, 21)]
        for r in rows[9::10]:
            r.update({"sample/pdp_to_strokes": 0.1 + shift, "sample/layering": 0.3, "sample/refinement": 0.2,
                      "sample/strokes_layering": 0.4, "sample/strokes_refinement": 0.3})
        (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        runs.append(run)
    tool = _plot_tool()
    assert tool.main([str(r) for r in runs] + ["--out", str(tmp_path / "plots")]) == 0
    for png in ("loss.png", "learning_rate.png", "samples.png"):
        im = np.asarray(Image.open(tmp_path / "plots" / png).convert("L"))
        assert im.shape[0] > 200 and im.std() > 5, png  # a drawn figure, not a blank canvas
    # a run without periodic samples gets no samples.png; a folder without metrics is a one-line error
    (runs[0] / "metrics.jsonl").write_text(json.dumps({"step": 1, "loss": 1.0, "learning_rate": 1e-4}) + "\n")
    assert tool.main([str(runs[0]), "--out", str(tmp_path / "one")]) == 0
    assert not (tmp_path / "one" / "samples.png").exists() and (tmp_path / "one" / "loss.png").is_file()
    capsys.readouterr()
    assert tool.main([str(tmp_path / "nope"), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("plot_run: error:") and "metrics.jsonl" in err[0]


def test_every_is_due_on_multiples_and_the_listed_steps():
    from paintproc_jax.train.periodic import Every

    assert [s for s in range(1, 11) if Every(4, (10,))(s)] == [4, 8, 10]
    assert not any(Every()(s) for s in range(20)) and [s for s in range(9) if Every(also=(3,))(s)] == [3]


def test_step_clock_counts_training_steps_only():
    from paintproc_jax.train.periodic import StepClock

    now = [0.0]
    clock = StepClock(now=lambda: now[0])
    with clock.section("compile"):  # before start(): not training
        now[0] += 30
    clock.start()
    now[0] += 2  # two steps
    with clock.part("data"):  # a part of a step: counted as training too
        now[0] += 1
    with clock.section("checkpoint", wait=jnp.ones(3)):
        now[0] += 100
    now[0] += 1
    assert clock.take() == 4
    with clock.section("sample"):
        now[0] += 50
    now[0] += 3
    assert clock.take() == 3 and clock.take() == 0
    assert clock.seconds() == {"compile": 30, "data": 1, "checkpoint": 100, "sample": 50, "train": 7}
