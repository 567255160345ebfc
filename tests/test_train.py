"""Training: a sharded tiny run, kill-and-resume equals uninterrupted, corrupted checkpoints, config errors."""

import os
import pathlib
import subprocess
import sys
import signal

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from paintproc_jax.presets import tiny_config
from paintproc_jax.train.loop import train
from paintproc_jax.train.metrics import read_metrics

ROOT = pathlib.Path(__file__).resolve().parents[1]
ASSETS = ROOT / "paintproc_jax" / "assets"


def config(steps=8, **mesh):
    c = tiny_config()
    c.data.source = f"folder:{ASSETS}"
    c.data.batch_size = 8
    c.mesh.update(mesh or dict(data=1, num_devices=1))  # one device, except where a test asks for a mesh
    c.total_steps = steps
    c.train.update(ckpt_every=4, sample_every=0)
    return c


def saved(workdir, step=None, items=("model", "optimizer")):
    """(step, {item: tree}) of a checkpoint (default the latest), read straight from disk by orbax."""
    mngr = ocp.CheckpointManager(pathlib.Path(workdir).resolve() / "checkpoints")
    step = mngr.latest_step() if step is None else step
    out = mngr.restore(step, args=ocp.args.Composite(**{k: ocp.args.StandardRestore() for k in items}))
    return step, {k: out[k] for k in items}


def final_state(workdir):
    """(latest checkpoint step, its model+optimizer arrays) read straight from disk."""
    step, items = saved(workdir)
    return step, [np.asarray(x) for x in jax.tree.leaves(items)]


def losses(workdir):
    return [(r["step"], r["loss"]) for r in read_metrics(pathlib.Path(workdir) / "metrics.jsonl")]


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """An uninterrupted 8-step run (checkpoints at 4 and 8)."""
    d = tmp_path_factory.mktemp("straight")
    c = config()
    c.train.sample_every = 8
    train(c, d)
    return d


def test_tiny_run_on_an_8_device_mesh_learns(tmp_path, monkeypatch):
    """Also: step time counts training steps only. Each save costs 1000 s on the loop's clock (saves
    at 4, 8, 10 with a metrics row every step), and compile happens before the first step."""
    import time

    from paintproc_jax.train import checkpoint, loop
    from paintproc_jax.train.periodic import StepClock

    offset, real_save = [0.0], checkpoint.save

    def slow_save(*args):
        offset[0] += 1000.0
        return real_save(*args)

    monkeypatch.setattr(checkpoint, "save", slow_save)
    monkeypatch.setattr(loop, "StepClock", lambda: StepClock(now=lambda: time.perf_counter() + offset[0]))
    c = config(steps=10, data=4, fsdp=2, num_devices=8)
    c.train.optim.update(lr=3e-3, warmup_steps=2)
    summary = train(c, tmp_path)
    rows = read_metrics(tmp_path / "metrics.jsonl")
    assert all(r["step_time_s"] < 100 for r in rows) and summary.seconds.get("checkpoint", 0) >= 3000, [r["step_time_s"] for r in rows]
    assert rows[0]["step_time_s"] < summary.seconds["compile"] / 2, (rows[0], summary.seconds)
    assert summary.step == 10 and not summary.preempted
    assert [r["step"] for r in rows] == list(range(1, 11))  # configs/tiny.py logs every step
    losses = np.array([r["loss"] for r in rows])
    assert losses[-3:].mean() < 0.85 * losses[:3].mean(), losses
    for key in ("grad_norm", "learning_rate", "step_time_s", "clips_per_s", "tflops_per_s"):
        assert key in rows[-1]
    assert list((tmp_path / "tb").rglob("events.out.tfevents*"))
    assert sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit()) == [4, 8, 10]


def test_sigterm_then_resume_equals_uninterrupted(straight, tmp_path, monkeypatch):
    """Pre-empted mid-run (SIGTERM: checkpoint at the current step), then the same call again:
    the same losses at every step and bit-identical final parameters and optimizer state."""
    from paintproc_jax.train import loop

    class PreemptedWriter(loop.MetricsWriter):  # SIGTERM arrives right after step 3 is logged
        def write_scalars(self, step, scalars):
            super().write_scalars(step, scalars)
            if step == 3:
                os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(loop, "MetricsWriter", PreemptedWriter)
    first = train(config(), tmp_path)
    monkeypatch.undo()
    assert first.preempted and first.step == 3
    assert final_state(tmp_path)[0] == first.step  # a checkpoint at the step where it stopped
    second = train(config(), tmp_path)
    assert second.start_step == first.step and second.step == 8 and not second.preempted
    assert losses(tmp_path) == losses(straight)  # metrics.jsonl of the resumed run = uninterrupted run
    assert {p.name for p in (straight / "samples" / "step_0000008").iterdir()} == {"sample_0.gif", "sample_1.gif", "strokes_0.gif", "strokes_1.gif"}
    # the samples are scored in the same metrics row: PDP gap to the stroke clips, layering, refinement
    row = read_metrics(straight / "metrics.jsonl")[-1]
    assert row["step"] == 8 and np.isfinite(row["loss"])
    for key in ("sample/pdp_to_strokes", "sample/layering", "sample/refinement", "sample/strokes_layering", "sample/strokes_refinement"):
        assert np.isfinite(row[key]), key
    assert row["sample/pdp_to_strokes"] > 0  # an 8-step model does not paint like the engine yet
    (sa, a), (sb, b) = final_state(straight), final_state(tmp_path)
    assert sa == sb == 8
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def legacy_save(mngr, step, state, ema, iterator, config_dict):
    """The checkpoint writer before issue 16, verbatim: one positional item `state` = {0: model, 1: optimizer}."""
    import grain
    from flax import nnx

    items = dict(
        state=ocp.args.StandardSave(nnx.to_pure_dict(state)),
        data_iter=grain.checkpoint.CheckpointSave(iterator),
        config=ocp.args.JsonSave(config_dict),
    )
    if ema is not None:
        items["ema"] = ocp.args.StandardSave(nnx.to_pure_dict(ema))
    mngr.save(step, args=ocp.args.Composite(**items), force=True)


def by_path(tree):
    """{"a/0/b": array} of a pytree (nnx int keys and orbax str keys give the same paths)."""
    return {jax.tree_util.keystr(k, simple=True, separator="/"): np.asarray(v) for k, v in jax.tree_util.tree_leaves_with_path(tree)}


def test_named_items_and_checkpoints_of_the_old_layout_resume_and_sample(straight, tmp_path, monkeypatch):
    """New checkpoints hold named items; one written by the earlier version (a positional `state`
    item) still resumes bit-identically and still samples (EMA, or the model's own parameters)."""
    import shutil

    from flax import nnx

    from paintproc_jax import sampling
    from paintproc_jax.train import checkpoint

    items = lambda d: sorted(p.name for p in d.iterdir() if p.is_dir())  # noqa: E731
    assert items(straight / "checkpoints" / "8") == ["config", "data_iter", "ema", "model", "optimizer"]
    monkeypatch.setattr(checkpoint, "save", legacy_save)
    train(config(), tmp_path)  # legacy checkpoints at 4 and 8
    monkeypatch.undo()
    old = tmp_path / "checkpoints"
    assert items(old / "4") == ["config", "data_iter", "ema", "state"]

    new_model = by_path(saved(straight, 8, ("model",))[1]["model"])
    painter = sampling.load_painter(tmp_path)
    assert (painter.step, painter.params_from) == (8, "ema")
    assert by_path(nnx.to_pure_dict(painter.params)).keys() == new_model.keys()
    for k, v in by_path(nnx.to_pure_dict(painter.params)).items():
        np.testing.assert_array_equal(v, by_path(saved(straight, 8, ("ema",))[1]["ema"])[k])
    no_ema = tmp_path / "no_ema"
    for src in (straight, tmp_path):  # without an EMA item: the model's parameters, in either layout
        shutil.copytree(src / "checkpoints" / "8", no_ema / src.name / "checkpoints" / "8")
        shutil.rmtree(no_ema / src.name / "checkpoints" / "8" / "ema")
        painter = sampling.load_painter(no_ema / src.name)
        assert painter.params_from == "model"
        got = by_path(nnx.to_pure_dict(painter.params))
        assert got.keys() == new_model.keys() and all(np.array_equal(got[k], new_model[k]) for k in got)

    shutil.rmtree(old / "8")
    summary = train(config(), tmp_path)  # resumes from the legacy checkpoint 4, saves 8 in the new layout
    assert summary.start_step == 4 and summary.step == 8
    assert losses(tmp_path) == losses(straight)
    assert items(old / "8") == ["config", "data_iter", "ema", "model", "optimizer"]
    for x, y in zip(final_state(straight)[1], final_state(tmp_path)[1]):
        np.testing.assert_array_equal(x, y)


def test_corrupted_latest_checkpoint_falls_back_to_the_previous(straight, tmp_path, caplog):
    import shutil

    work = tmp_path / "run"
    shutil.copytree(straight, work)
    for f in (work / "checkpoints" / "8" / "model").rglob("*"):
        if f.is_file():
            f.write_bytes(b"garbage")
    with caplog.at_level("WARNING"):
        summary = train(config(), work)
    assert summary.start_step == 4 and summary.step == 8
    assert "checkpoint 8 could not be restored" in caplog.text
    assert losses(work) == losses(straight)  # steps 5..8 redone identically


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda c: c.data.update(batch_size=6) or c.mesh.update(data=-1, num_devices=0), "does not divide the mesh"),
        (lambda c: c.mesh.update(data=1, tensor=8, num_devices=8), "tensor axis"),  # 4 heads
        (lambda c: c.data.update(frames=5), "at least model.frames"),
        (lambda c: c.data.update(frames=9) or c.diffusion.update(window=0), "diffusion.window"),  # longer than the model
        (lambda c: c.train.update(grad_accum=3), "grad_accum"),
        (lambda c: c.train.optim.update(schedule="linear"), "train.optim.schedule"),
    ],
    ids=["batch-vs-mesh", "heads-vs-tensor", "frames-vs-model", "frames-longer-than-model", "grad-accum", "schedule"],
)
def test_bad_configs_fail_before_compiling(tmp_path, change, match):
    from paintproc_jax.errors import PaintprocError

    c = config()
    change(c)
    with pytest.raises(ValueError, match=match) as info:
        train(c, tmp_path)
    assert isinstance(info.value, PaintprocError)  # tools/train.py: one line, exit 2
    assert not (tmp_path / "checkpoints").exists()


def test_a_bug_after_the_checks_is_not_reported_as_bad_input(tmp_path, monkeypatch):
    """tools/train.py prints one line for PaintprocError only; a ValueError from a bug keeps its traceback."""
    from paintproc_jax.errors import PaintprocError
    from paintproc_jax.train import loop

    def broken(*args, **kwargs):
        raise ValueError("a bug in the model code")

    monkeypatch.setattr(loop, "create_model", broken)
    with pytest.raises(ValueError, match="a bug") as info:
        train(config(), tmp_path)
    assert not isinstance(info.value, PaintprocError)


def test_cli_unknown_config_key_and_missing_source(tmp_path):
    """Also: --config.total_steps is the run length (the documented contract)."""
    base = [sys.executable, str(ROOT / "tools" / "train.py"), "--config", str(ROOT / "configs" / "tiny.py"), "--workdir", str(tmp_path)]
    out = subprocess.run(base + ["--config.train.no_such_key=1", "--config.total_steps=3"], capture_output=True, text=True, timeout=120)
    assert out.returncode != 0 and "no_such_key" in out.stderr
    out = subprocess.run(base, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "train: error:" in out.stderr and "source" in out.stderr


def test_disk_full_while_saving_keeps_earlier_checkpoints(tmp_path, monkeypatch):
    from paintproc_jax.errors import PaintprocError
    from paintproc_jax.train import checkpoint

    real = checkpoint.save

    def failing(mngr, step, *args):
        if step == 8:
            raise OSError(28, "No space left on device")  # the second save of the run
        return real(mngr, step, *args)

    monkeypatch.setattr(checkpoint, "save", failing)
    with pytest.raises(PaintprocError, match="step 8 failed.*earlier checkpoints are intact"):
        train(config(), tmp_path)
    monkeypatch.setattr(checkpoint, "save", real)
    assert final_state(tmp_path)[0] == 4
    summary = train(config(), tmp_path)  # space again: resumes from step 4
    assert summary.start_step == 4 and summary.step == 8


def _saved_steps(workdir):
    return sorted(int(p.name) for p in (pathlib.Path(workdir) / "checkpoints").iterdir() if p.name.isdigit())


def _diverging(steps):
    c = config(steps=steps)
    c.train.optim.update(lr=1e9, warmup_steps=0)
    c.train.update(ckpt_every=1, keep_checkpoints=50)
    return c


def test_a_diverging_run_stops_at_the_first_non_finite_step_without_saving_it(tmp_path):
    """The issue-16 repro through tools/train.py (lr 1e9), a checkpoint every step."""
    import re

    cmd = [sys.executable, str(ROOT / "tools" / "train.py"), "--config", str(ROOT / "configs" / "tiny.py"), "--workdir", str(tmp_path),
           f"--config.data.source=folder:{ASSETS}", "--config.total_steps=12", "--config.train.optim.lr=1e9",
           "--config.train.optim.warmup_steps=0", "--config.train.ckpt_every=1", "--config.train.keep_checkpoints=50",
           "--config.train.sample_every=0", "--config.mesh.num_devices=1"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    errors = [line for line in out.stderr.splitlines() if line.startswith("train: error:")]
    assert out.returncode == 1 and len(errors) == 1 and "Traceback" not in out.stderr, out.stderr[-2000:]
    bad = int(re.match(r"train: error: non-finite loss/gradient at step (\d+)", errors[0]).group(1))
    assert 1 < bad < 12, bad  # it trains a little, then diverges
    assert _saved_steps(tmp_path) == list(range(1, bad))  # every earlier checkpoint kept, none after
    step, arrays = final_state(tmp_path)
    assert step == bad - 1 and all(np.all(np.isfinite(a)) for a in arrays if np.issubdtype(a.dtype, np.floating))


def _saved_arrays(workdir, step):
    """Model, optimizer state and EMA of checkpoint `step`, as a flat list of NumPy arrays."""
    return [np.asarray(x) for x in jax.tree.leaves(saved(workdir, step, ("model", "optimizer", "ema"))[1])]


def test_skip_nonfinite_skips_the_poisoned_steps_and_finishes(tmp_path):
    c = _diverging(6)
    c.train.skip_nonfinite = True
    summary = train(c, tmp_path)
    assert summary.step == 6 and summary.skipped_steps >= 1
    step, arrays = final_state(tmp_path)
    assert step == 6 and all(np.all(np.isfinite(a)) for a in arrays if np.issubdtype(a.dtype, np.floating))
    # a skipped step leaves parameters, optimizer state (its step count too) and EMA exactly as they were
    rows = read_metrics(tmp_path / "metrics.jsonl")
    bad = [r["step"] for r in rows if r["loss"] is None or r["grad_norm"] is None]
    assert len(bad) == summary.skipped_steps and bad[0] > 1, rows  # lr 1e9: finite at first, then not
    for s in bad:
        before, after = _saved_arrays(tmp_path, s - 1), _saved_arrays(tmp_path, s)
        assert all(np.array_equal(a, b) for a, b in zip(before, after)), s
    # ... while a finite step does change them: step 1's parameters differ from the initial ones
    from flax import nnx

    from paintproc_jax.models import create_model

    init = by_path(nnx.to_pure_dict(nnx.state(create_model(c.model, seed=c.train.seed))))
    step1 = by_path(saved(tmp_path, 1, ("model",))[1]["model"])
    assert init.keys() == step1.keys() and not all(np.array_equal(init[k], step1[k]) for k in init)
