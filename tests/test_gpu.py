"""Accelerator checks (`gpu` marker; run by tools/device_check.sh with `-m gpu`): the rasterizer
under jit/vmap/grad, a sharded train step, cuDNN attention against the XLA path. They run on
whatever `jax.devices()` is, so the script's CPU dry run exercises the same code; the one test
that needs cuDNN skips elsewhere. The last test (unmarked) is that dry run, in CI."""

import os
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from paintproc_jax.program import stack
from paintproc_jax.strokes import raster
from test_raster import random_program

ROOT = pathlib.Path(__file__).resolve().parents[1]
HW = (48, 64)


@pytest.mark.gpu
def test_rasterizer_jit_vmap_grad_on_the_device(rng):
    progs = [random_program(rng, n=32, medium=m) for m in (0, 2)]
    layout = raster.batch_layout(progs, max(HW), softness=1.0)
    batch = jax.device_put(jax.tree.map(jnp.asarray, stack(progs)), jax.devices()[0])
    fast = jax.jit(jax.vmap(lambda p: raster.render(p, HW, layout, 1.0)))(batch)
    ref = jax.vmap(lambda p: raster.reference_render(p, HW, 1.0))(batch)
    np.testing.assert_allclose(np.asarray(fast), np.asarray(ref), atol=2e-3)
    target = jnp.full((*HW, 3), 0.5, jnp.float32)

    def loss(render, params):
        one = jax.tree.map(lambda x: x[0], batch)._replace(params=params)
        return jnp.mean(jnp.square(render(one) - target))

    g = jax.jit(jax.grad(lambda p: loss(lambda q: raster.render(q, HW, layout, 1.0), p)))(batch.params[0])
    r = jax.grad(lambda p: loss(lambda q: raster.reference_render(q, HW, 1.0), p))(batch.params[0])
    scale = float(jnp.abs(r).max())
    assert scale > 1e-4 and g.devices() == {jax.devices()[0]}
    np.testing.assert_allclose(np.asarray(g), np.asarray(r), atol=2e-2 * scale)


@pytest.mark.gpu
def test_sharded_train_step_on_every_device(tmp_path):
    """Two steps of the tiny config on a data-parallel mesh over all devices: finite, decreasing-or-not
    but recorded losses and a checkpoint."""
    from paintproc_jax.presets import tiny_config
    from paintproc_jax.train.loop import train
    from paintproc_jax.train.metrics import read_metrics

    c = tiny_config()
    c.data.source = f"folder:{ROOT / 'paintproc_jax' / 'assets'}"
    n = len(jax.devices())
    c.data.batch_size = max(2, n)
    c.mesh.update(data=-1, num_devices=0)
    c.total_steps = 2
    c.train.update(ckpt_every=2, sample_every=0, log_every=1)
    train(c, tmp_path)
    rows = read_metrics(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in rows if "loss" in r][-1] == 2
    assert all(np.isfinite(r["loss"]) for r in rows if "loss" in r)


@pytest.mark.gpu
def test_cudnn_attention_matches_the_xla_path():
    if jax.devices()[0].platform != "gpu":
        pytest.skip("cuDNN attention needs a CUDA GPU")
    k = jax.random.split(jax.random.key(0), 3)
    q, kk, v = (jax.random.normal(key, (2, 256, 4, 64), jnp.bfloat16) for key in k)
    xla = jax.nn.dot_product_attention(q, kk, v, implementation="xla")
    cudnn = jax.nn.dot_product_attention(q, kk, v, implementation="cudnn")
    np.testing.assert_allclose(np.asarray(cudnn, np.float32), np.asarray(xla, np.float32), atol=2e-2)
    gx = jax.grad(lambda a: jnp.sum(jax.nn.dot_product_attention(a, kk, v, implementation="xla").astype(jnp.float32)))(q)
    gc = jax.grad(lambda a: jnp.sum(jax.nn.dot_product_attention(a, kk, v, implementation="cudnn").astype(jnp.float32)))(q)
    np.testing.assert_allclose(np.asarray(gc, np.float32), np.asarray(gx, np.float32), atol=5e-2 * float(jnp.abs(gx).max()))


def test_device_check_dry_run_on_cpu(tmp_path):
    """tools/device_check.sh --dry-run: every step of the GPU script at tiny sizes, each bench's
    key=value line in its figures file."""
    env = dict(os.environ, OUT=str(tmp_path), PY=sys.executable, PAINTPROC_CACHE=str(tmp_path / "cache"))
    env.pop("XLA_FLAGS", None)
    proc = subprocess.run(["bash", str(ROOT / "tools" / "device_check.sh"), "--dry-run"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    figures = (tmp_path / "figures.txt").read_text()
    for key in ("raster_fwdbwd_ms=", "fwd_bwd_ms=", "step_ms=", "images_per_s=", "gpu_tests="):
        assert key in figures, figures
