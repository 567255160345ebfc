"""Offline sampling from a checkpoint: `paintproc_jax.sampling`, `tools/sample.py`, `paintproc paint --checkpoint`.

One module-scoped tiny training run (2 steps, one checkpoint) feeds every test; sampling uses 2
steps, and the tool and CLI run in-process (compiles are shared; conftest gives 8 CPU devices).
"""

import contextlib
import importlib.util
import io
import json
import pathlib
import re

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest
from flax import nnx
from PIL import Image

from paintproc_jax import cli, sampling
from paintproc_jax.presets import tiny_config
from paintproc_jax.train.loop import train

ROOT = pathlib.Path(__file__).resolve().parents[1]
ASSETS = ROOT / "paintproc_jax" / "assets"
STEPS = ["--steps", "2"]

pytestmark = [pytest.mark.filterwarnings("ignore:os.fork\\(\\) was called:RuntimeWarning"),
              pytest.mark.filterwarnings("ignore:Sharding info not provided when restoring")]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """The tiny config trained for 2 steps (checkpoint at step 2, with EMA)."""
    d = tmp_path_factory.mktemp("run")
    c = tiny_config()
    c.data.source = f"folder:{ASSETS}"
    c.data.orders = ["layer-major"]  # one render layout: half the data-side tracing, same model
    c.mesh.update(data=1, num_devices=1)
    c.total_steps = 2
    c.train.update(ckpt_every=2, sample_every=0)
    train(c, d)
    return d


@pytest.fixture(scope="module")
def painter(workdir):
    return sampling.load_painter(workdir)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """Three small images: the two bundled photos (square, 4:3) and a 40x60 one with a depth sidecar."""
    d = tmp_path_factory.mktemp("images")
    for p in ASSETS.glob("*.jpg"):
        Image.open(p).resize((96, 96 * Image.open(p).height // Image.open(p).width)).save(d / p.name)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (40, 60, 3), dtype=np.uint8)).save(d / "noise.png")
    np.save(d / "noise.depth.npy", np.linspace(0, 1, 20 * 30, dtype=np.float32).reshape(20, 30))
    return d


@pytest.fixture(scope="module")
def sample_tool():
    spec = importlib.util.spec_from_file_location("sample_tool", ROOT / "tools" / "sample.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def run_main(main, argv):
    """main(argv) in-process -> (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as e:
            code = e.code
    return code, out.getvalue(), err.getvalue()


def assert_one_line_error(code, err, prog):
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("WARNING:absl")]
    assert len(lines) == 1 and re.match(rf"^{prog}: error: \S", lines[0]), err
    assert "Traceback" not in err


def flat(tree, prefix=""):
    """Nested dict -> {"a/0/b": leaf} (orbax gives string keys where nnx has ints)."""
    if not isinstance(tree, dict):
        return {prefix: tree}
    return {k: v for key, sub in tree.items() for k, v in flat(sub, f"{prefix}/{key}").items()}


def paint_all(painter, folder, seed, batch_size, **kw):
    jobs = sampling.jobs_from_source(str(folder))
    loader = sampling.InputLoader(painter.config)
    settings = painter.settings(steps=2, **kw)
    return {r.job.name: r.frames for batch in sampling.paint_jobs(painter, jobs, seed=seed, batch_size=batch_size, loader=loader,
                                                                   settings=settings) for r in batch}


# ------------------------------------------------------------------------------------------ tests


def test_load_painter_restores_the_ema_params(workdir, painter):
    assert painter.step == 2 and painter.params_from == "ema" and painter.num_devices == jax.device_count()
    assert painter.size == 32 and painter.frames == 5
    raw = flat(ocp.PyTreeCheckpointer().restore(workdir / "checkpoints" / "2" / "ema"))
    mine = flat(nnx.to_pure_dict(painter.params))
    assert sorted(raw) == sorted(mine) and len(raw) > 10
    for k in raw:
        np.testing.assert_array_equal(np.asarray(raw[k]), np.asarray(mine[k]), err_msg=k)
    # the checkpoints/ folder and the step folder name the same checkpoint
    for path in (workdir / "checkpoints", workdir / "checkpoints" / "2"):
        assert sampling.resolve_checkpoint(path) == (workdir / "checkpoints", 2)


def test_same_seed_same_frames_other_seed_differs(painter, images):
    a = paint_all(painter, images, seed=0, batch_size=8)
    b = paint_all(painter, images, seed=0, batch_size=8)
    c = paint_all(painter, images, seed=1, batch_size=8)
    assert set(a) == {"astronaut", "coffee", "noise"}
    for name, frames in a.items():
        h, w = frames.shape[1:3]
        assert frames.shape[0] == painter.frames + 1 and max(h, w) == painter.size and frames.dtype == np.float32
        assert 0.0 <= frames.min() and frames.max() <= 1.0
        np.testing.assert_array_equal(frames, b[name])
        assert not np.array_equal(frames[:-1], c[name][:-1])
        np.testing.assert_array_equal(frames[-1], c[name][-1])  # the finished image is the input either way
    assert a["coffee"].shape[1:3] == (24, 32)  # 4:3 kept at the model's resolution (fit = stretch)


def test_each_image_is_independent_of_batch_size_and_order(painter, images):
    one = paint_all(painter, images, seed=3, batch_size=1)
    two = paint_all(painter, images, seed=3, batch_size=2)
    for name in one:
        np.testing.assert_array_equal(one[name], two[name])
    # a batch in another order, straight through Painter.paint
    loader = sampling.InputLoader(painter.config)
    jobs = sampling.jobs_from_source(str(images))[::-1]
    loaded = [loader(j) for j in jobs]
    out = painter.paint([x[0] for x in loaded], [x[1] for x in loaded], [sampling.image_key(3, j.name) for j in jobs], steps=2)
    for job, frames in zip(jobs, out):
        np.testing.assert_array_equal(frames, one[job.name])


def test_sample_tool_writes_process_folders_and_resumes(sample_tool, workdir, images, tmp_path):
    out = tmp_path / "out"
    argv = ["--checkpoint", workdir, "--images", images, "--out", out, *STEPS, "--no_mp4", "--quiet", "--batch_size", "2"]
    code, stdout, err = run_main(sample_tool.main, argv)
    assert code == 0, err
    index = json.loads((out / "index.json").read_text())
    assert [e["name"] for e in index] == ["astronaut", "coffee", "noise"]
    for e in index:
        d = out / e["dir"]
        assert {p.name for p in d.iterdir()} == {"process.gif", "frames", "contact_sheet.png", "depth.png", "process.json"}
        meta = json.loads((d / "process.json").read_text())
        assert meta["engine"] == "diffusion" and meta["step"] == 2 and meta["steps"] == 2 and meta["seed"] == 0
        assert meta["name"] == e["name"] and meta["source"].endswith(e["name"] + (".png" if e["name"] == "noise" else ".jpg"))
        assert meta["fit"] == "stretch" and meta["frames"] == 6 and set(meta["guidance"]) == {"ref", "depth", "medium"}
        assert len(list((d / "frames").glob("frame_*.png"))) == 6
        assert e["depth"] == (str(images / "noise.depth.npy") if e["name"] == "noise" else "builtin estimator")
    stamp = (out / "coffee" / "process.json").stat().st_mtime_ns
    code, stdout, err = run_main(sample_tool.main, argv)
    assert code == 0, err
    assert "sampled 0 image(s)" in stdout and "skipped 3 already done" in stdout
    assert (out / "coffee" / "process.json").stat().st_mtime_ns == stamp
    assert json.loads((out / "index.json").read_text()) == index


def test_paint_with_a_checkpoint_writes_a_process_folder(workdir, tmp_path):
    out = tmp_path / "paint"
    code, stdout, err = run_main(cli.main, ["paint", ASSETS / "coffee.jpg", "--checkpoint", workdir, *STEPS, "--no-mp4", "--quiet",
                                            "--out", out])
    assert code == 0, err
    assert {p.name for p in out.iterdir()} == {"process.gif", "frames", "contact_sheet.png", "depth.png", "process.json"}
    meta = json.loads((out / "process.json").read_text())
    assert meta["engine"] == "diffusion" and meta["frames"] == 6 and (meta["height"], meta["width"]) == (24, 32)
    assert meta["model_px"] == 32 and meta["model_size"] == "tiny"  # pixels vs the DiT size (config.model_size)
    assert "coffee.jpg -> " in stdout


@pytest.mark.parametrize(
    "argv, match",
    [
        (["--checkpoint", "{missing}"], "does not exist"),
        (["--checkpoint", "{images}"], "no checkpoints"),
        (["--engine", "strokes", "--checkpoint", "{workdir}"], "--checkpoint belongs to --engine diffusion"),
        (["--checkpoint", "{workdir}", "--frames", "3"], "shorter than this checkpoint's 6-frame clips"),
        (["--checkpoint", "{workdir}", "--step", "7"], "no checkpoint of step 7"),
        (["--checkpoint", "{workdir}", "--strokes", "10"], "--strokes belongs to the stroke engine"),
    ],
    ids=["missing-dir", "not-a-run", "strokes-with-checkpoint", "short-frames", "missing-step",
         "stroke-option"],
)
def test_paint_bad_inputs_are_one_line_errors(workdir, images, tmp_path, argv, match):
    argv = [a.format(missing=tmp_path / "nope", images=images, workdir=workdir) for a in argv]
    code, _, err = run_main(cli.main, ["paint", ASSETS / "coffee.jpg", *argv, "--out", tmp_path / "o"])
    assert_one_line_error(code, err, "paintproc")
    assert match in err
    assert not (tmp_path / "o").exists()


def test_sample_tool_bad_inputs_are_one_line_errors(sample_tool, workdir, tmp_path):
    code, _, err = run_main(sample_tool.main, ["--checkpoint", tmp_path / "nope", "--images", ASSETS, "--out", tmp_path / "o"])
    assert_one_line_error(code, err, "sample")
    assert "does not exist" in err
    code, _, err = run_main(sample_tool.main, ["--checkpoint", workdir, "--images", tmp_path / "none", "--out", tmp_path / "o"])
    assert_one_line_error(code, err, "sample")
    assert "does not exist" in err


def test_sample_tool_reads_tfds_and_its_folders_feed_the_evaluation(sample_tool, workdir, tmp_path):
    """tfds:NAME/SPLIT input, then tools/eval.py on the sampled process folders beside a baseline."""
    from tiny_tfds import TinyImages

    data_dir = tmp_path / "tfds"
    TinyImages(data_dir=str(data_dir), file_format="array_record").download_and_prepare()
    out = tmp_path / "runs" / "tiny_model"
    argv = ["--checkpoint", workdir, "--images", "tfds:tiny_images/train", "--tfds_data_dir", data_dir, "--limit", "2",
            "--out", out, *STEPS, "--no_mp4", "--quiet"]
    code, stdout, err = run_main(sample_tool.main, argv)
    assert code == 0, err
    index = json.loads((out / "index.json").read_text())
    assert len(index) == 2
    spec = importlib.util.spec_from_file_location("eval_tool", ROOT / "tools" / "eval.py")
    eval_tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(eval_tool)
    report_dir = tmp_path / "report"
    code, stdout, err = run_main(eval_tool.main, ["--processes", tmp_path / "runs", "--out", report_dir, "--size", "32",
                                                  "--baselines", "--baseline_names", "crossfade", "--pdp_reference", "crossfade",
                                                  "--quiet"])
    assert code == 0, err
    report = json.loads((report_dir / "report.json").read_text())
    assert set(report) == {"tiny_model", "crossfade"}
    assert report["crossfade"]["pdp"] == 0.0 and report["tiny_model"]["pdp"] > 0
    # a sample's last frame is its input: fidelity is judged on the model's own last frame
    assert report["tiny_model"]["lpips_final"] > 0 and report["crossfade"]["lpips_final"] < 1e-6


@pytest.fixture(scope="module")
def exported(workdir, tmp_path_factory):
    """The tiny run exported by tools/export_model.py in float32 (so it must paint exactly as the checkpoint)."""
    spec = importlib.util.spec_from_file_location("export_tool", ROOT / "tools" / "export_model.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path_factory.mktemp("exported") / "model"
    code, stdout, err = run_main(mod.main, [workdir, "--out", out, "--dtype", "float32"])
    assert code == 0, err
    assert "step 2 (ema params)" in stdout
    return out


def test_an_exported_model_paints_like_its_checkpoint_without_orbax(exported, painter, images, monkeypatch):
    assert {p.name for p in exported.iterdir()} == {"model.safetensors", "config.json"}

    def no_orbax(*a, **k):
        raise AssertionError("an exported model must load without orbax")

    monkeypatch.setattr(ocp, "PyTreeCheckpointer", no_orbax)
    monkeypatch.setattr(ocp, "Checkpointer", no_orbax)
    loaded = sampling.load_painter(exported)
    assert (loaded.step, loaded.params_from, loaded.size, loaded.frames) == (2, "ema", painter.size, painter.frames)
    mine, theirs = flat(nnx.to_pure_dict(loaded.params)), flat(nnx.to_pure_dict(painter.params))
    assert sorted(mine) == sorted(theirs)
    for k in mine:
        np.testing.assert_array_equal(np.asarray(mine[k]), np.asarray(theirs[k]), err_msg=k)
    a, b = paint_all(loaded, images, 0, 2), paint_all(painter, images, 0, 2)
    assert sorted(a) == sorted(b)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_a_bf16_export_is_half_the_size_and_paints_nearly_alike(workdir, exported, painter, images, tmp_path):
    from paintproc_jax.models.weights import export_model

    out = export_model(nnx.to_pure_dict(painter.params), painter.config.to_dict(), tmp_path / "bf16", source={"step": 2})
    assert out.stat().st_size < 0.55 * (exported / "model.safetensors").stat().st_size
    a, b = paint_all(sampling.load_painter(out.parent), images, 0, 2), paint_all(painter, images, 0, 2)
    for k in a:
        assert np.abs(a[k] - b[k]).mean() < 0.02, k


@pytest.mark.parametrize("damage, match", [
    ("flip", "is corrupted: .*does not match the checksum"),
    ("truncate", "is corrupted: cannot read .*model.safetensors"),
    ("config", "is corrupted: cannot read config.json"),
    ("other-model", "does not match its config's model"),
    ("step", "is an exported model of one step"),
], ids=["flipped-byte", "truncated-no-checksum", "garbage-config", "other-model", "step"])
def test_a_damaged_or_mismatched_exported_model_is_a_one_line_error(exported, tmp_path, damage, match):
    import shutil

    d = tmp_path / "model"
    shutil.copytree(exported, d)
    weights, config = d / "model.safetensors", d / "config.json"
    meta = json.loads(config.read_text())
    extra = []
    if damage == "flip":
        data = bytearray(weights.read_bytes())
        data[len(data) // 2] ^= 0xFF
        weights.write_bytes(bytes(data))
    elif damage == "truncate":
        weights.write_bytes(weights.read_bytes()[:1000])
        meta["weights_sha256"] = ""
        config.write_text(json.dumps(meta))
    elif damage == "config":
        config.write_text("{not json")
    elif damage == "other-model":
        meta["config"]["model"]["width"] = 32
        meta["config"]["model"]["heads"] = 2
        config.write_text(json.dumps(meta))
    else:
        extra = ["--step", "2"]
    code, _, err = run_main(cli.main, ["paint", ASSETS / "coffee.jpg", "--checkpoint", d, *extra, *STEPS, "--out", tmp_path / "o"])
    assert_one_line_error(code, err, "paintproc")
    assert re.search(match, err), err
    assert not (tmp_path / "o").exists()


def test_a_relative_checkpoint_path_loads(workdir, monkeypatch):
    monkeypatch.chdir(workdir.parent)  # orbax refuses relative paths; load_painter makes them absolute
    for rel in (pathlib.Path(workdir.name), pathlib.Path(workdir.name) / "checkpoints" / "2"):
        p = sampling.load_painter(rel)
        assert (p.step, p.params_from) == (2, "ema") and pathlib.Path(p.checkpoint).is_absolute()


def test_sample_tool_takes_the_paintproc_flag_spellings_and_the_old_ones(sample_tool):
    parse = sample_tool.build_parser().parse_args
    base = ["--checkpoint", "c", "--images", "i", "--out", "o"]
    for depth, tfds in (("--depth-model", "--tfds-data-dir"), ("--depth_model", "--tfds_data_dir")):
        args = parse(base + [depth, "D", tfds, "T"])
        assert (args.depth_model, args.tfds_data_dir) == ("D", "T")
