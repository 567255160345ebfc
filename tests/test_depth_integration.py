"""Learned depth wherever depth is used: `paintproc depth`, `paint --depth-model`, the data config,
tools/make_dataset.py (batched), tools/sample.py's loader. A tiny random Depth Anything stands in
for a downloaded checkpoint (saved by transformers, converted by tools/convert_weights.py)."""

import importlib.util
import json
import pathlib

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from paintproc_jax import cli  # noqa: E402
from paintproc_jax.depth import get_estimator  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _tool(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    torch.manual_seed(0)
    bb = transformers.Dinov2Config(hidden_size=32, num_hidden_layers=4, num_attention_heads=2, patch_size=14, image_size=56,
                                   out_indices=[1, 2, 3, 4], reshape_hidden_states=False)
    cfg = transformers.DepthAnythingConfig(backbone_config=bb, reassemble_hidden_size=32, neck_hidden_sizes=[8, 16, 32, 64],
                                           fusion_hidden_size=16, head_hidden_size=8)
    src = tmp_path_factory.mktemp("hf")
    transformers.DepthAnythingForDepthEstimation(cfg).eval().save_pretrained(src)
    out = tmp_path_factory.mktemp("conv") / "da"
    assert _tool("convert_weights").main(["--model", "depth-anything-v2", "--src", str(src), "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def photo_path(tmp_path_factory):
    from skimage import data

    path = tmp_path_factory.mktemp("img") / "cat.png"
    Image.fromarray(data.chelsea()).resize((60, 40)).save(path)
    return path


def test_paintproc_depth_writes_the_map_and_a_picture(model_dir, photo_path, tmp_path, capsys):
    assert cli.main(["depth", str(photo_path), "--depth-model", str(model_dir), "--out", str(tmp_path / "d.npy")]) == 0
    d = np.load(tmp_path / "d.npy")
    assert d.shape == (40, 60) and d.dtype == np.float32
    assert d.min() == 0.0 and d.max() == 1.0  # the protocol: relative depth in [0, 1], 1 = nearest
    image = np.asarray(Image.open(photo_path), np.float32) / 255.0
    np.testing.assert_allclose(d, get_estimator("depth-anything", model_dir=str(model_dir))(image), atol=1e-6)
    assert "depth-anything" in capsys.readouterr().out
    assert cli.main(["depth", str(photo_path), "--depth-model", str(model_dir), "--out", str(tmp_path / "d.png")]) == 0
    with Image.open(tmp_path / "d.png") as im:
        assert im.size == (60, 40)
    # without a model: the built-in estimator, same contract
    assert cli.main(["depth", str(photo_path), "--out", str(tmp_path / "b.npy")]) == 0
    b = np.load(tmp_path / "b.npy")
    assert b.shape == (40, 60) and 0.0 <= b.min() <= b.max() <= 1.0
    assert not np.allclose(b, d)


def test_paintproc_depth_bad_inputs_are_one_line_errors(model_dir, photo_path, tmp_path, capsys):
    assert cli.main(["depth", str(photo_path), "--out", str(tmp_path / "d.jpg")]) == 2
    assert ".npy" in capsys.readouterr().err
    assert cli.main(["depth", str(photo_path), "--depth-model", str(tmp_path / "nope"), "--out", str(tmp_path / "d.npy")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("paintproc: error:") and "nope" in err and "Traceback" not in err
    assert not (tmp_path / "d.npy").exists()


def test_paint_uses_the_learned_estimator(model_dir, photo_path, tmp_path):
    out = tmp_path / "painted"
    assert cli.main(["paint", str(photo_path), "--depth-model", str(model_dir), "--strokes", "30", "--fit-steps", "0",
                     "--size", "48", "--frames", "6", "--no-mp4", "--quiet", "--out", str(out)]) == 0
    meta = json.loads((out / "process.json").read_text())
    assert meta["depth"].startswith("depth-anything")


def test_data_config_takes_a_learned_estimator_in_the_main_process(model_dir):
    from paintproc_jax.data.config import default_config, validate
    from paintproc_jax.data.examples import ExampleMaker
    from paintproc_jax.data.sources import open_source

    c = default_config()
    c.update(source=f"folder:{ROOT / 'paintproc_jax' / 'assets'}", depth_estimator="depth-anything", workers=2, size=32)
    with pytest.raises(ValueError, match="depth_model"):
        validate(c)
    c.depth_model = str(model_dir)
    with pytest.raises(ValueError, match="workers=0"):
        validate(c)
    c.workers = 0
    validate(c)
    maker = ExampleMaker(open_source(c.source), c, local_batch=1)
    image, depth = maker.load(open_source(c.source)[0], np.random.default_rng(0))
    assert depth.shape == (32, 32) and depth.max() == pytest.approx(1.0)
    expected = get_estimator("depth-anything", model_dir=str(model_dir))(image.astype(np.float32) / 255.0)
    np.testing.assert_allclose(depth, expected, atol=1e-6)


def test_make_dataset_estimates_depth_in_batches(model_dir, tmp_path, monkeypatch):
    from paintproc_jax.data.records import decode_record
    from paintproc_jax.data.sources import open_source
    from paintproc_jax.depth.learned import DepthAnythingEstimator

    calls = []
    batch = DepthAnythingEstimator.batch
    monkeypatch.setattr(DepthAnythingEstimator, "batch", lambda self, images: calls.append(len(images)) or batch(self, images))
    out = tmp_path / "ds"
    assets = ROOT / "paintproc_jax" / "assets"
    argv = ["--images", str(assets), "--out", str(out), "--size", "32", "--strokes", "16", "--fit-steps", "0",
            "--batch", "2", "--depth-model", str(model_dir), "--quiet"]
    assert _tool("make_dataset").main(argv) == 0
    assert calls == [2]  # both images of the chunk in one call
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["depth"]["estimator"] == "depth-anything" and manifest["records"] == 2
    src = open_source(f"programs:{out}")
    rec = decode_record(src[0]["record"])
    est = get_estimator("depth-anything", model_dir=str(model_dir))
    np.testing.assert_allclose(rec["depth"], est(rec["image"].astype(np.float32) / 255.0), atol=1e-5)


def test_sampling_loader_takes_a_depth_model(model_dir):
    from paintproc_jax import sampling
    from paintproc_jax.presets import tiny_config

    loader = sampling.InputLoader(tiny_config(), "estimator", depth_model=str(model_dir))
    assert loader.estimator().name == "depth-anything"
    assert sampling.InputLoader(tiny_config(), "estimator").estimator().name != "depth-anything"
