"""Experiment configs: every variant loads, its sections agree, and bench_model runs the tiny one."""

import importlib.util
import pathlib
import subprocess
import sys

import pytest

from paintproc_jax.models.config import spec_from_config
from paintproc_jax.models.flops import count_flops
from paintproc_jax.presets import assemble, check_consistent

ROOT = pathlib.Path(__file__).resolve().parents[1]
VARIANTS = [("tiny", None), ("tiny", "loomis")] + [
    (name, v) for name in ("animatepainter", "loomis") for v in ("128", "128-small", "256", "256-factorized", "tiny", "cpu")
]


def load(name):
    spec = importlib.util.spec_from_file_location(f"cfg_{name}", ROOT / "configs" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("name, arg", VARIANTS)
def test_config_variants_are_consistent(name, arg):
    c = load(name).get_config(arg)
    check_consistent(c)
    spec = spec_from_config(c.model)
    assert c.data.frames == spec.frames + 1 and c.diffusion.window == spec.frames
    assert 16 <= spec.frames <= 32 or name == "tiny" or arg in ("tiny", "cpu")
    flops = count_flops(c)
    assert flops.forward > 0 and flops.tokens == (1 + spec.frames // spec.tubelet) * spec.grid**2


def test_unknown_variant_and_inconsistent_sections():
    with pytest.raises(ValueError, match="unknown variant"):
        load("animatepainter").get_config("512")
    with pytest.raises(ValueError, match="unknown model size"):
        assemble(**dict(load("animatepainter").VARIANTS["128"], model_size="XL/2"))
    with pytest.raises(ValueError, match="model.image_size"):  # assemble checks the sections agree
        assemble(**dict(load("animatepainter").VARIANTS["128"], model=dict(image_size=64)))
    c = load("tiny").get_config()
    c.data.frames = 4
    with pytest.raises(ValueError, match="at least model.frames"):
        check_consistent(c)
    c.data.frames = 11  # longer processes train on windows of model.frames ...
    check_consistent(c)
    c.diffusion.window = 0  # ... which the diffusion section must ask for
    with pytest.raises(ValueError, match="diffusion.window"):
        check_consistent(c)


def test_the_two_styles_share_their_variants_and_tiny_is_one_experiment():
    """Each configs file states its variants in full; the copies must not drift apart by accident:
    animatepainter and loomis differ only in the data style, and configs/tiny.py is their "tiny"."""
    style_keys = {"media", "end_on", "cross_media"}
    ap, lo, tiny = load("animatepainter"), load("loomis"), load("tiny")
    assert set(ap.VARIANTS) == set(lo.VARIANTS)
    for arg in ap.VARIANTS:
        a, b = ap.get_config(arg).to_dict(), lo.get_config(arg).to_dict()
        assert {k: v for k, v in a["data"].items() if k not in style_keys} == {
            k: v for k, v in b["data"].items() if k not in style_keys}, arg
        assert {k: v for k, v in a.items() if k != "data"} == {k: v for k, v in b.items() if k != "data"}, arg
        assert {k: b["data"][k] for k in style_keys} == lo.STYLE
    for style, mod in (("animatepainter", ap), ("loomis", lo)):
        assert tiny.get_config(style).to_dict() == mod.get_config("tiny").to_dict()
        assert tiny.STYLES[style] == mod.STYLE
    data = load("data")
    assert data.get_config("tiny").data.to_dict() == tiny.get_config().data.to_dict()
    assert data.get_config("loomis").data.media == lo.get_config().data.media


def test_bench_model_prints_its_contract_line():
    out = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "bench_model.py"), "--config", str(ROOT / "configs" / "tiny.py"), "--iters", "1"],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    fields = dict(kv.split("=") for kv in out.stdout.strip().splitlines()[-1].split())
    assert {"params", "gflops_per_clip", "fwd_ms", "fwd_bwd_ms"} <= set(fields)
    assert int(fields["params"]) > 0 and float(fields["fwd_bwd_ms"]) > 0
    assert abs(float(fields["gflops_per_clip"]) - count_flops(load("tiny").get_config()).forward / 1e9) < 1e-3


def test_the_cpu_reference_variant_trains_on_the_training_photos_and_samples_the_held_out_ones():
    """`:cpu` is the README's reference run: 64 px, 1 + 8 frames, a few million parameters, fp32 on CPU,
    trained on tools/make_photos.py's train/ split and sampled on its heldout/ split (never the same)."""
    from paintproc_jax.data.samples import HELDOUT_PHOTOS, TRAIN_PHOTOS
    from paintproc_jax.models import create_model
    from flax import nnx
    import jax
    import numpy as np

    c = load("animatepainter").get_config("cpu")
    assert (c.data.size, c.data.frames, c.model.dtype, c.model.scan_layers) == (64, 9, "float32", False)
    assert c.data.source == "folder:photos/train" and c.train.sample_source == "photos/heldout"
    assert not set(TRAIN_PHOTOS) & set(HELDOUT_PHOTOS)
    params = nnx.state(nnx.eval_shape(lambda: create_model(c.model)), nnx.Param)
    n = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(params))
    assert 2e6 < n < 5e6  # <= 10 MB as bf16


TABLE_ROW = r"^\s+(?P<arg>\S+)\s+params\s+(?P<params>[\d.]+) M\s+forward\s+(?P<gflops>[\d,]+) GFLOP/clip \((?P<tokens>[\d,]+) tokens \+ (?P<depth>[\d,]+) depth tokens\)"


@pytest.mark.parametrize("name", ["animatepainter", "loomis"])
def test_the_parameter_and_flop_tables_in_the_config_docstrings_are_what_the_configs_build(name):
    import re

    from paintproc_jax.models.flops import param_count

    mod = load(name)
    rows = [m.groupdict() for m in re.finditer(TABLE_ROW, mod.__doc__, re.M)]
    assert {r["arg"] for r in rows} == {"128", "128-small", "256", "256-factorized"}
    for r in rows:
        c = mod.get_config(r["arg"])
        f = count_flops(c)
        assert (round(param_count(c) / 1e6, 1), round(f.forward / 1e9), f.tokens, f.depth_tokens) == (
            float(r["params"]), int(r["gflops"].replace(",", "")), int(r["tokens"].replace(",", "")),
            int(r["depth"].replace(",", ""))), r


def test_the_small_configs_docstrings_quote_their_parameters():
    import re

    from paintproc_jax.models.flops import param_count

    tiny = load("tiny")
    m = re.search(r"Params ([\d.]+) M, forward ([\d.]+) GFLOP per clip", tiny.__doc__)
    c = tiny.get_config()
    assert (float(m[1]), float(m[2])) == (round(param_count(c) / 1e6, 2), round(count_flops(c).forward / 1e9, 2))
    cpu = load("animatepainter").get_config("cpu")
    quoted = re.search(r"([\d.]+) M-parameter DiT", load("animatepainter").__doc__)[1]
    assert float(quoted) == round(param_count(cpu) / 1e6, 1)
