"""Depth Anything: parity with transformers on tiny random models, converter round trip, bad inputs, estimator."""

import importlib.util
import json
import math
import pathlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import jax.numpy as jnp  # noqa: E402

from paintproc_jax.depth import get_estimator  # noqa: E402
from paintproc_jax.errors import PaintprocError  # noqa: E402
from paintproc_jax.models import depth_anything as da  # noqa: E402

TOL = 1e-4
ROOT = pathlib.Path(__file__).resolve().parents[1]


def _tool(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _hf_model(seed=0, metric=False, out_indices=(1, 2, 3, 4), factors=(4, 2, 1, 0.5)):
    """Tiny random DepthAnythingForDepthEstimation; every parameter perturbed, neck/head scaled to O(1) outputs."""
    torch.manual_seed(seed)
    bb = transformers.Dinov2Config(hidden_size=32, num_hidden_layers=4, num_attention_heads=2, patch_size=14,
                                   image_size=56, out_indices=list(out_indices), reshape_hidden_states=False,
                                   attn_implementation="eager")
    cfg = transformers.DepthAnythingConfig(
        backbone_config=bb, reassemble_hidden_size=32, neck_hidden_sizes=[8, 16, 32, 64], reassemble_factors=list(factors),
        fusion_hidden_size=16, head_hidden_size=8, depth_estimation_type="metric" if metric else "relative",
        max_depth=20 if metric else 1)
    model = transformers.DepthAnythingForDepthEstimation(cfg)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.startswith("backbone."):
                p.add_(0.2 * torch.randn(p.shape, generator=g))
            elif p.ndim == 4:  # conv: unit-variance outputs (a transposed conv's fan-in is its input channels)
                transposed = isinstance(model.get_submodule(name.rsplit(".", 1)[0]), torch.nn.ConvTranspose2d)
                fan_in = p.shape[0] if transposed else math.prod(p.shape[1:])
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(fan_in))
            else:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
    return model.eval()


def _sd(model):
    return {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}


def _nchw(x):
    return torch.from_numpy(np.ascontiguousarray(np.asarray(x).transpose(0, 3, 1, 2)))


def _hf_config(model):
    return json.loads(model.config.to_json_string())


@pytest.fixture(scope="module")
def hf():
    return _hf_model()


@pytest.fixture(scope="module")
def saved(hf, tmp_path_factory):
    """(transformers folder, converted folder) of the tiny model."""
    src = tmp_path_factory.mktemp("hf")
    hf.save_pretrained(src)
    out = tmp_path_factory.mktemp("conv") / "da"
    assert _tool("convert_weights").main(["--model", "depth-anything-v2", "--src", str(src), "--out", str(out)]) == 0
    return src, out


def test_config_from_hf_reads_the_transformers_config(hf):
    c = da.config_from_hf(_hf_config(hf))
    assert c.out_indices == (1, 2, 3, 4) and c.backbone.hidden_size == 32 and c.backbone.num_layers == 4
    assert c.neck_hidden_sizes == (8, 16, 32, 64) and c.reassemble_factors == (4, 2, 1, 0.5)
    assert (c.fusion_hidden_size, c.head_hidden_size, c.head_in_index) == (16, 8, -1)
    assert c.backbone.interpolate_offset == 0.0  # transformers 5.x resizes the position table with size=
    assert da.DepthAnythingConfig() == da.config_from_hf(_tool("bench_depth").SMALL_CONFIG)


@pytest.mark.parametrize("metric", [False, True])
def test_parity_with_transformers_on_a_non_square_input(metric, hf):
    # metric: also the stem as a tap, a transposed conv of 2 and a stride-4 conv
    model = _hf_model(seed=2, metric=True, out_indices=(0, 1, 3, 4), factors=(2, 1, 0.5, 0.25)) if metric else hf
    ours = da.depth_anything_from_torch(_sd(model), da.config_from_hf(_hf_config(model)))
    x = np.random.default_rng(0).standard_normal((2, 42, 70, 3)).astype(np.float32)
    with torch.no_grad():
        px = _nchw(x)
        taps = model.backbone(px).feature_maps
        neck = model.neck(list(taps), 3, 5)
        ref = model(px).predicted_depth.numpy()
    out = ours(jnp.asarray(x), intermediates=True)
    assert len(out["taps"]) == len(taps) == 4
    for a, b in zip(out["taps"], taps):
        assert np.abs(np.asarray(a) - b.numpy()).max() < TOL
    for a, b in zip(out["neck"], neck):
        b = b.numpy().transpose(0, 2, 3, 1)
        assert a.shape == b.shape and np.abs(np.asarray(a) - b).max() < TOL
    assert out["predicted_depth"].shape == ref.shape == (2, 42, 70)
    assert (ref > 0).mean() > 0.2 and ref.std() > 1e-3  # not a trivially constant output
    assert np.abs(np.asarray(out["predicted_depth"]) - ref).max() < TOL
    if metric:
        assert ref.max() < 20


def test_bilinear_align_corners_matches_torch():
    x = np.random.default_rng(3).standard_normal((1, 5, 7, 2)).astype(np.float32)
    for size, ac in [((11, 3), True), ((10, 14), True), ((1, 4), True), ((9, 5), False)]:
        ref = torch.nn.functional.interpolate(_nchw(x), size=size, mode="bilinear", align_corners=ac)
        ours = np.asarray(da.resize_bilinear(jnp.asarray(x), size, ac))
        assert np.abs(ours - ref.numpy().transpose(0, 2, 3, 1)).max() < 1e-5


def test_resize_rule_matches_the_processor():
    """`get_resize_output_image_size` (keep_aspect_ratio, ensure_multiple_of=14) over many sizes."""
    dpt = pytest.importorskip("transformers.models.dpt.image_processing_pil_dpt")
    rng = np.random.default_rng(7)
    sizes = [(50, 37), (518, 518), (259, 777), (1036, 518), (20, 1000)] + [tuple(rng.integers(8, 3000, 2)) for _ in range(300)]
    for hw in sizes:
        for target in (518, 56):
            ref = dpt.get_resize_output_image_size(np.zeros((3, *hw)), (target, target), True, 14)
            assert da.resize_output_size(*hw, target) == (max(ref.height, 14), max(ref.width, 14)), (hw, target)


@pytest.mark.parametrize("hw", [(50, 37), (600, 451), (300, 1000), (1000, 20)])
def test_preprocess_resizes_like_torch_bicubic_antialias(hw):
    h, w = da.resize_output_size(*hw)
    assert h % 14 == 0 and w % 14 == 0 and min(h, w) >= 14
    x = np.random.default_rng(4).random((1, *hw, 3)).astype(np.float32)
    ref = torch.nn.functional.interpolate(_nchw(x), size=(h, w), mode="bicubic", antialias=True, align_corners=False)
    ref = np.clip(ref.numpy().transpose(0, 2, 3, 1), 0, 1)
    mean, std = np.array(da.IMAGENET_MEAN, np.float32), np.array(da.IMAGENET_STD, np.float32)
    assert np.abs(da.preprocess(x) - (ref - mean) / std).max() < 5e-4
    d = np.random.default_rng(5).random((1, h, w)).astype(np.float32)
    ref = torch.nn.functional.interpolate(torch.from_numpy(d)[:, None], size=hw, mode="bilinear", antialias=True)
    assert np.abs(da.postprocess(d, hw) - ref.numpy()[:, 0]).max() < 1e-4


def test_converted_and_transformers_folders_load_to_the_same_model(hf, saved):
    src, out = saved
    assert json.loads((out / "paintproc.json").read_text()) == {"format": "paintproc-depth-anything", "version": 1}
    assert json.loads((out / "config.json").read_text())["model_type"] == "depth_anything"
    x = jnp.asarray(np.random.default_rng(5).standard_normal((1, 56, 28, 3)).astype(np.float32))
    with torch.no_grad():
        ref = hf(_nchw(x)).predicted_depth.numpy()
    for path in (out, out / "params.safetensors", src, src / "model.safetensors"):
        assert np.abs(np.asarray(da.load_depth_anything(path)(x)) - ref).max() < TOL


def test_bad_checkpoints_fail_with_one_line_naming_the_problem(hf, saved, tmp_path):
    src, _ = saved
    with pytest.raises(PaintprocError, match="no such checkpoint folder"):
        da.load_depth_anything(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(PaintprocError, match="no config.json"):
        da.load_depth_anything(tmp_path / "empty")
    dino = transformers.Dinov2Model(transformers.Dinov2Config(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                                              image_size=28, patch_size=14))
    dino.save_pretrained(tmp_path / "dino")
    with pytest.raises(PaintprocError, match="model_type 'dinov2'.*expected 'depth_anything'"):
        da.load_depth_anything(tmp_path / "dino")
    tool = _tool("convert_weights")
    assert tool.main(["--model", "depth-anything-v2", "--src", str(tmp_path / "dino"), "--out", str(tmp_path / "o")]) == 2
    assert tool.main(["--model", "depth-anything-v2", "--src", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
    # weights of another size: config says hidden 64, checkpoint holds 32
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "model.safetensors").write_bytes((src / "model.safetensors").read_bytes())
    cfg = json.loads((src / "config.json").read_text())
    cfg["backbone_config"]["hidden_size"] = cfg["reassemble_hidden_size"] = 64
    (bad / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(PaintprocError, match=r"mis-shaped.*backbone\.\S+ \(1, 1, 32\) != \(1, 1, 64\)") as e:
        da.load_depth_anything(bad)
    assert "\n" not in str(e.value)
    # names: a missing and an unexpected tensor
    sd = _sd(hf)
    sd["neck.extra.weight"] = sd.pop("head.conv3.weight")
    with pytest.raises(PaintprocError, match=r"1 missing key\(s\), e\.g\. head\.conv3\.weight.*1 unexpected.*neck\.extra"):
        da.depth_anything_params_from_torch(sd, da.config_from_hf(_hf_config(hf)))
    cfg["backbone_config"]["hidden_size"] = 32
    with pytest.raises(PaintprocError, match="reassemble_hidden_size 64 != backbone hidden_size 32"):
        da.config_from_hf(cfg)


def test_estimator_protocol_and_batching(saved):
    _, out = saved
    est = get_estimator("depth-anything", model_dir=str(out), input_size=56, batch_size=4)
    assert est.name == "depth-anything"
    rng = np.random.default_rng(6)
    a = rng.random((50, 37, 3)).astype(np.float32)
    b = rng.random((30, 64, 3)).astype(np.float32)
    d = est(a)
    assert d.shape == (50, 37) and d.dtype == np.float32 and d.min() == 0.0 and d.max() == 1.0
    batched = est.batch([a, b, a[::-1], b])
    assert [x.shape for x in batched] == [(50, 37), (30, 64), (50, 37), (30, 64)]
    for img, got in zip([a, b, a[::-1], b], batched):
        np.testing.assert_allclose(got, est(img), atol=1e-5)
    with pytest.raises(PaintprocError, match="bad options"):
        get_estimator("depth-anything")
    with pytest.raises(PaintprocError, match="no such checkpoint folder"):
        get_estimator("depth-anything", model_dir=str(out / "missing"))
