"""The network with its objective and samplers: reference pass-through, determinism, overfitting one clip."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from paintproc_jax import parallel
from paintproc_jax.data.pipeline import make_pipeline
from paintproc_jax.data.samples import write_sample_folder
from paintproc_jax.diffusion import objective, samplers
from paintproc_jax.models import create_model, default_config
from paintproc_jax.presets import check_consistent, tiny_config

S, F = 8, 4


def model_config():
    c = default_config()
    c.update(image_size=S, frames=F, patch=2, width=48, depth=2, heads=4, depth_scales=2, mlp_ratio=2.0, depth_layers=2)
    return c


def synthetic_clip(frames=F):
    """One reverse-painting clip [1, 1 + frames, S, S, 3] in [0, 1]: a two-colour picture whose near
    half (right) disappears first, then the far half, ending on the white canvas."""
    img = np.zeros((S, S, 3), np.float32)
    img[:, : S // 2] = (0.2, 0.4, 0.8)
    img[:, S // 2 :] = (0.9, 0.5, 0.1)
    img[S // 4 : S // 2, S // 4 : 3 * S // 4] = (0.1, 0.7, 0.2)
    out = [img]
    for k in range(1, frames + 1):
        f = img.copy()
        cut = S - int(round(S * k / frames))  # columns >= cut are back to white
        f[:, cut:] = 1.0
        out.append(f)
    depth = np.tile(np.linspace(0, 1, S, dtype=np.float32), (S, 1))  # near on the right
    return {
        "clip": jnp.asarray(np.stack(out)[None]),
        "depth": jnp.asarray(depth[None]),
        "layers": jnp.asarray((depth[None] > 0.5).astype(np.int32)),
        "medium": jnp.zeros(1, jnp.int32),
        "ref_medium": jnp.zeros(1, jnp.int32),
    }


def test_sampler_with_model_is_deterministic_and_keeps_the_reference():
    model = create_model(model_config(), seed=3)
    nnx.update(model, jax.tree.map(lambda v: v + 0.02, nnx.state(model, nnx.Param)))  # make the output non-trivial
    batch = synthetic_clip()
    _, cond = objective.split_clip(batch)
    run = nnx.jit(lambda m, key: samplers.sample(m, cond, key, frames=F, sampler="heun", steps=3, guidance=dict(ref=1.5)))
    a, b, other = run(model, jax.random.key(0)), run(model, jax.random.key(0)), run(model, jax.random.key(1))
    assert a.shape == (1, 1 + F, S, S, 3)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert float(jnp.abs(a - other).max()) > 1e-3
    np.testing.assert_array_equal(np.asarray(a[:, 0]), np.asarray(cond["ref"]))  # bitwise
    forward = nnx.jit(lambda m, key: samplers.sample(m, cond, key, frames=F, sampler="heun", steps=3, guidance=dict(ref=1.5), forward=True))(model, jax.random.key(0))
    np.testing.assert_array_equal(np.asarray(forward), np.asarray(samplers.to_forward(a)))
    np.testing.assert_array_equal(np.asarray(forward[:, -1]), np.asarray(cond["ref"]))  # painting order ends on the reference


def overfit(batch, c, steps, seed=0):
    """Adam on one batch for `steps` steps, all in one compiled scan; returns (model, losses)."""
    model = create_model(model_config(), seed=seed)
    opt = nnx.Optimizer(model, optax.adam(3e-3), wrt=nnx.Param)
    graphdef, state = nnx.split((model, opt))

    @jax.jit
    def train(state, keys):  # no per-step dispatch
        def step(state, key):
            model, opt = nnx.merge(graphdef, state)
            loss, grads = nnx.value_and_grad(lambda m: objective.diffusion_loss(m, batch, key, c)[0])(model)
            opt.update(model, grads)
            return nnx.state((model, opt)), loss

        return jax.lax.scan(step, state, keys)

    state, losses = train(state, jax.random.split(jax.random.key(seed), steps))
    return nnx.merge(graphdef, state)[0], np.asarray(losses)


def no_dropout():
    c = objective.default_config()
    c.update(p_drop_ref=0.0, p_drop_depth=0.0, p_drop_medium=0.0, p_drop_all=0.0, time_sampling="uniform")
    return c


@pytest.mark.slow
def test_tiny_model_overfits_one_clip():
    """Trained on one clip, the loss falls by a large factor and sampling reproduces the clip."""
    batch = jax.tree.map(lambda x: jnp.repeat(x, 8, axis=0), synthetic_clip())  # 8 noise draws per step
    model, losses = overfit(batch, no_dropout(), 300)
    first, last = losses[:20].mean(), losses[-50:].mean()
    assert last < first / 10, (first, last)

    _, cond = objective.split_clip(synthetic_clip())
    out = samplers.sample(model, cond, jax.random.key(7), frames=F, steps=16)
    target = 2 * synthetic_clip()["clip"] - 1
    err = float(jnp.mean((out[:, 1:] - target[:, 1:]) ** 2))
    blank = float(jnp.mean((jnp.ones_like(target[:, 1:]) - target[:, 1:]) ** 2))  # guessing "all white"
    assert err < blank / 50, (err, blank)


@pytest.mark.slow
def test_windows_of_a_longer_process_let_continuation_reproduce_it():
    """A model of F-frame windows, trained on windows of a 2F-frame process (with clean context
    frames), continues itself chunk by chunk into the whole 2F-frame process."""
    long_clip = synthetic_clip(2 * F)
    c = no_dropout()
    c.update(window=F, context_prob=0.5, max_context_frames=2)
    model, _ = overfit(jax.tree.map(lambda x: jnp.repeat(x, 8, axis=0), long_clip), c, 400)
    _, cond = objective.split_clip(long_clip)
    out = samplers.continue_process(model, cond, jax.random.key(3), total_frames=2 * F, frames=F, overlap=2, steps=16)
    target = 2 * long_clip["clip"] - 1
    err = np.asarray(jnp.mean((out[:, 1:] - target[:, 1:]) ** 2, axis=(0, 2, 3, 4)))  # per generated frame
    white = float(jnp.mean((1 - target[:, 1:]) ** 2))
    assert out.shape == target.shape
    assert err.max() < white / 5 and err.mean() < white / 20, (err, white)


def test_tiny_config_pipeline_batches_train_the_model(tmp_path):
    """The halves fit: clips from the data pipeline of configs/tiny.py go through the loss and its gradient."""
    write_sample_folder(tmp_path, 4, min_side=40, max_side=64)
    c = tiny_config()
    c.data.source = str(tmp_path)
    check_consistent(c)
    mesh = parallel.make_mesh(devices=jax.devices()[:1])
    pipe = make_pipeline(c.data, mesh)
    try:
        with jax.set_mesh(mesh):
            clips = pipe.next_clips()
    finally:
        pipe.close()
    assert clips["clip"].shape == (c.data.batch_size, c.model.frames + 1, 32, 32, 3)
    model = create_model(c.model, mesh)
    loss, grads = nnx.jit(nnx.value_and_grad(lambda m: objective.diffusion_loss(m, clips, jax.random.key(0), c.diffusion)[0]))(model)
    assert np.isfinite(float(loss)) and 0.5 < float(loss) < 5  # ~ E|eps - x0|^2 at init
    assert float(jnp.abs(grads["final"]["kernel"][...]).max()) > 0
