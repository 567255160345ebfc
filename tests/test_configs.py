"""Experiment configs: every variant loads, its sections agree, and bench_model runs the tiny one."""

import importlib.util
import pathlib
import subprocess
import sys

import pytest

from paintproc_jax.models.config import spec_from_config
from paintproc_jax.models.flops import count_flops
from paintproc_jax.presets import check_consistent, experiment_config

ROOT = pathlib.Path(__file__).resolve().parents[1]
VARIANTS = [("tiny", None), ("tiny", "loomis")] + [
    (name, v) for name in ("animatepainter", "loomis") for v in ("128", "128-small", "256", "256-factorized", "tiny")
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
    assert 16 <= spec.frames <= 32 or name == "tiny" or arg == "tiny"
    flops = count_flops(c)
    assert flops.forward > 0 and flops.tokens == (1 + spec.frames // spec.tubelet) * spec.grid**2


def test_unknown_variant_and_inconsistent_sections():
    with pytest.raises(ValueError, match="unknown variant"):
        load("animatepainter").get_config("512")
    with pytest.raises(ValueError, match="unknown model size"):
        experiment_config(style="animatepainter", size=128, frames=16, model="XL/2")
    c = load("tiny").get_config()
    c.data.frames = 4
    with pytest.raises(ValueError, match="at least model.frames"):
        check_consistent(c)
    c.data.frames = 11  # longer processes train on windows of model.frames ...
    check_consistent(c)
    c.diffusion.window = 0  # ... which the diffusion section must ask for
    with pytest.raises(ValueError, match="diffusion.window"):
        check_consistent(c)


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
