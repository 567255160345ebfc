"""Diffusion paths, loss and samplers, tested with closed-form fake networks (CPU, tiny shapes)."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from paintproc_jax.diffusion import objective, samplers, schedules

B, F, H, W = 2, 4, 4, 4
KEYS = ("ref", "depth", "medium")


def _ab(t, obj):
    """Path coefficients written out independently of `schedules` (the tests check it against these)."""
    if obj in ("flow", "flow_x0"):
        return 1.0 - t, t
    return jnp.cos(0.5 * jnp.pi * t), jnp.sin(0.5 * jnp.pi * t)


def _tgt(x0, eps, t, obj):
    a, s = _ab(t, obj)
    return {"flow": eps - x0, "flow_x0": x0}.get(obj, a * eps - s * x0)


def gaussian_apply(mu, sd, obj):
    """The exact (optimal) prediction for data x0 ~ N(mu, sd²): sd = 0 is a single data point."""

    def apply(x, t, cond, keep):
        a, s = _ab(t[..., None, None, None], obj)
        r2 = a * a * sd * sd + s * s
        x0 = mu + a * sd * sd / r2 * (x - a * mu)
        eps = s / r2 * (x - a * mu)
        return _tgt(x0, eps, t[..., None, None, None], obj)

    return apply


def make_cond(key=0, depth=True):
    k1, k2 = jax.random.split(jax.random.key(key))
    cond = {
        "ref": jax.random.uniform(k1, (B, H, W, 3), minval=-1, maxval=1),
        "medium": jnp.arange(B, dtype=jnp.int32),
        "ref_medium": jnp.zeros(B, jnp.int32),
    }
    if depth:
        cond["depth"] = jax.random.uniform(k2, (B, H, W))
        cond["layers"] = jnp.zeros((B, H, W), jnp.int32)
    return cond


def keyed_apply(x, t, cond, keep):
    """A fake network whose output depends non-additively on which conditions are kept."""
    n = x.shape[0]
    if keep is None:
        keep = {k: jnp.ones(n, bool) for k in KEYS}
    r, d, m = (keep[k].astype(jnp.float32)[:, None, None, None, None] for k in KEYS)
    ref = cond["ref"][:, None]
    return jnp.sin(x) + t[..., None, None, None] + r * ref + 0.5 * r * d * jnp.tanh(x) ** 2 + 0.3 * d * m + 0.2 * m * jnp.cos(x)


# --- schedules -------------------------------------------------------------------------------


@pytest.mark.parametrize("obj", schedules.OBJECTIVES)
def test_schedule_roundtrip_and_velocity(obj):
    k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
    x0 = jax.random.normal(k1, (B, F, H, W, 3))
    eps = jax.random.normal(k2, (B, F, H, W, 3))
    t = jax.random.uniform(k3, (B, F), minval=0.05, maxval=0.95)
    a, s = _ab(t[..., None, None, None], obj)
    x_t = schedules.add_noise(x0, eps, t, obj)
    np.testing.assert_allclose(x_t, a * x0 + s * eps, atol=1e-6)
    pred = schedules.target(x0, eps, t, obj)
    np.testing.assert_allclose(pred, _tgt(x0, eps, t[..., None, None, None], obj), atol=1e-6)
    x0_hat, eps_hat = schedules.to_x0_eps(pred, x_t, t, obj)
    np.testing.assert_allclose(x0_hat, x0, atol=1e-5)
    np.testing.assert_allclose(eps_hat, eps, atol=1e-5)
    # velocity = d/dt of the path at fixed (x0, eps), by central differences
    h = 1e-3
    fd = (schedules.add_noise(x0, eps, t + h, obj) - schedules.add_noise(x0, eps, t - h, obj)) / (2 * h)
    np.testing.assert_allclose(schedules.velocity(pred, x_t, t, obj), fd, atol=2e-3)
    da, ds = schedules.alpha_sigma_derivative(t[..., None, None, None], obj)
    np.testing.assert_allclose(schedules.velocity(pred, x_t, t, obj), da * x0 + ds * eps, atol=1e-5)


def test_time_shift_grid_and_sampling():
    np.testing.assert_allclose(schedules.shift_time(jnp.array([0.0, 0.5, 1.0]), 3.0), [0.0, 0.75, 1.0], atol=1e-7)
    for shift in (1.0, 3.0):
        g = schedules.time_grid(8, shift)
        assert g.shape == (9,) and g[0] == 1.0 and g[-1] == 0.0 and np.all(np.diff(g) < 0)
    assert np.all(schedules.time_grid(8, 3.0)[1:-1] > schedules.time_grid(8, 1.0)[1:-1])  # more steps at high noise
    key = jax.random.key(1)
    u = schedules.sample_time(key, (20000,), method="uniform")
    assert 0 <= float(u.min()) and float(u.max()) < 1 and abs(float(u.mean()) - 0.5) < 0.02
    ln = schedules.sample_time(key, (20000,), method="logit_normal", logit_mean=0.0, logit_std=1.0)
    assert abs(float(jnp.median(ln)) - 0.5) < 0.02 and float(ln.std()) < float(u.std())
    shifted = schedules.sample_time(key, (20000,), method="logit_normal", shift=3.0)
    assert abs(float(jnp.median(shifted)) - 0.75) < 0.02


# --- samplers ---------------------------------------------------------------------------------


@pytest.mark.parametrize("obj", schedules.OBJECTIVES)
@pytest.mark.parametrize("sampler", samplers.SAMPLERS)
def test_single_data_point_is_recovered(sampler, obj):
    """With the exact prediction for a one-point dataset, every sampler lands on that point."""
    x_star = jax.random.uniform(jax.random.key(3), (B, F, H, W, 3), minval=-1, maxval=1)
    cond = make_cond()
    out = samplers.sample(gaussian_apply(x_star, 0.0, obj), cond, jax.random.key(0), frames=F, sampler=sampler, steps=6, objective=obj, shift=3.0)
    assert out.shape == (B, 1 + F, H, W, 3) and out.dtype == jnp.float32
    np.testing.assert_allclose(out[:, 1:], x_star, atol=1e-4)


def test_flow_euler_is_exact_in_one_step():
    x_star = jax.random.uniform(jax.random.key(3), (B, F, H, W, 3), minval=-1, maxval=1)
    out = samplers.sample(gaussian_apply(x_star, 0.0, "flow"), make_cond(), jax.random.key(5), frames=F, steps=1)
    np.testing.assert_allclose(out[:, 1:], x_star, atol=1e-6)


@pytest.mark.parametrize("sampler,obj,order", [("euler", "flow", 1), ("heun", "flow", 2), ("heun", "v", 2), ("ddim", "v", 1)])
def test_gaussian_data_convergence_order(sampler, obj, order):
    """Data N(mu, sd²): the probability-flow ODE maps noise z to mu + sd·z; the error shrinks at the sampler's order."""
    mu = jax.random.uniform(jax.random.key(4), (B, F, H, W, 3), minval=-1, maxval=1)
    sd = 0.5
    rng = jax.random.key(7)
    z = schedules.normal(rng, (B, F, H, W, 3))  # the sampler's initial noise for this rng
    errs = []
    for steps in (8, 32):
        out = samplers.sample(gaussian_apply(mu, sd, obj), make_cond(), rng, frames=F, sampler=sampler, steps=steps, objective=obj)
        errs.append(float(jnp.max(jnp.abs(out[:, 1:] - (mu + sd * z)))))
    assert errs[1] < errs[0] / (4**order) * 2.0, errs  # 4x the steps: error down by about 4**order
    assert errs[1] < (0.1 if order == 1 else 0.01), errs


def test_determinism_reference_and_forward_order():
    cond = make_cond()
    run = jax.jit(lambda r: samplers.sample(keyed_apply, cond, r, frames=F, sampler="heun", steps=3, guidance={"ref": 2.0}))
    a, a2, b = run(jax.random.key(0)), run(jax.random.key(0)), run(jax.random.key(1))
    np.testing.assert_array_equal(a, a2)
    assert float(jnp.max(jnp.abs(a - b))) > 1e-3
    np.testing.assert_array_equal(np.asarray(a[:, 0]), np.asarray(cond["ref"]))  # bitwise
    fwd = samplers.to_forward(a)
    np.testing.assert_array_equal(fwd[:, -1], cond["ref"])
    np.testing.assert_array_equal(fwd[:, 0], a[:, -1])
    np.testing.assert_array_equal(samplers.to_forward(fwd), a)


def test_guidance_scales_one_is_the_plain_conditional_pass():
    cond = make_cond()
    seen = []

    def apply(x, t, c, keep):
        seen.append((x.shape[0], keep))
        return keyed_apply(x, t, c, keep)

    x = jax.random.normal(jax.random.key(0), (B, F, H, W, 3))
    t = jnp.full((B, F), 0.3)
    for guidance in (None, {"ref": 1.0, "depth": 1.0, "medium": 1.0}):
        seen.clear()
        out = samplers.guided_apply(apply, cond, guidance)(x, t)
        assert seen == [(B, None)]
        np.testing.assert_array_equal(out, keyed_apply(x, t, cond, None))


@pytest.mark.parametrize("depth", [True, False])
def test_guidance_matches_compositional_formula(depth):
    cond = make_cond(depth=depth)
    x = jax.random.normal(jax.random.key(0), (B, F, H, W, 3))
    t = jnp.full((B, F), 0.6)
    scales = {"ref": 2.5, "depth": 1.5, "medium": 3.0}
    chain = ["ref", "depth", "medium"] if depth else ["ref", "medium"]
    ones = jnp.ones(B, bool)

    def p(on):  # prediction with the first `on` chain conditions kept (absent ones always "kept")
        keep = {k: ones if (k in chain[:on] or k not in chain) else ~ones for k in KEYS}
        return keyed_apply(x, t, cond, keep)

    expected = p(0) + sum(scales[k] * (p(i + 1) - p(i)) for i, k in enumerate(chain))
    sizes = []

    def apply(x_, t_, c_, keep):
        sizes.append(x_.shape[0])
        return keyed_apply(x_, t_, c_, keep)

    out = samplers.guided_apply(apply, cond, scales)(x, t)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-3)
    assert sizes == [B * (len(chain) + 1)]  # all passes in one batched call
    # Only the passes with a nonzero coefficient run: ref guidance alone needs none, +ref, all.
    assert len(samplers.guidance_weights(cond, {"ref": 3.0})) == 3
    assert samplers.guidance_weights(cond, ml_collections.ConfigDict(scales)) == samplers.guidance_weights(cond, scales)


def test_context_frames_are_kept_and_clean():
    cond = make_cond()
    ctx = jax.random.uniform(jax.random.key(9), (B, 2, H, W, 3), minval=-1, maxval=1)
    calls = []

    def apply(x, t, c, keep):
        jax.debug.callback(lambda xx, tt: calls.append((np.asarray(xx), np.asarray(tt))), x, t)
        return keyed_apply(x, t, c, keep)

    steps = []
    for sampler in samplers.SAMPLERS:
        calls.clear()
        out = samplers.sample(apply, cond, jax.random.key(0), frames=F, sampler=sampler, steps=4, tubelet=2, context=ctx, progress=lambda i, n: steps.append((i, n)))
        jax.effects_barrier()
        np.testing.assert_array_equal(np.asarray(out[:, 1:3]), np.asarray(ctx))
        assert len(calls) == (7 if sampler == "heun" else 4)
        for xx, tt in calls:
            assert np.all(tt[:, :2] == 0) and np.all(tt[:, 2:] > 0)
            assert np.all(tt[:, 2] == tt[:, 3])  # constant within the tubelet
            np.testing.assert_array_equal(xx[:, :2], np.asarray(ctx))
    assert sorted(steps)[-1] == (4, 4) and len(steps) == 3 * 4


def test_continue_process_stitches_consistent_chunks():
    cond = make_cond()
    contexts = []

    def apply(x, t, c, keep):
        jax.debug.callback(lambda xx, tt: contexts.append(np.asarray(xx)[:, : int((np.asarray(tt)[0] == 0).sum())]), x, t)
        return keyed_apply(x, t, c, keep)

    for frames, overlap, total in ((4, 3, 6),):
        contexts.clear()
        out = samplers.continue_process(apply, cond, jax.random.key(0), total_frames=total, frames=frames, overlap=overlap, steps=2)
        jax.effects_barrier()
        assert out.shape == (B, 1 + total, H, W, 3)
        np.testing.assert_array_equal(out[:, 0], cond["ref"])
        seen = {c.tobytes(): c for c in contexts if c.shape[1]}
        starts = range(frames - overlap, total - overlap, frames - overlap)  # generated-frame index of each chunk's context
        expected = [np.asarray(out[:, 1 + s : 1 + s + overlap]) for s in starts]
        assert len(seen) == len(expected)
        for e in expected:
            assert e.tobytes() in seen
    first = samplers.sample(keyed_apply, cond, jax.random.fold_in(jax.random.key(0), 0), frames=4, steps=2)
    np.testing.assert_array_equal(out[:, :5], first)


# --- objective --------------------------------------------------------------------------------


def make_batch(b=B, t=F + 1, size=H, key=0, depth=True):
    k1, k2 = jax.random.split(jax.random.key(key))
    batch = {
        "clip": jax.random.uniform(k1, (b, t, size, size, 3)),
        "medium": jnp.zeros(b, jnp.int32),
        "ref_medium": jnp.ones(b, jnp.int32),
    }
    if depth:
        batch["depth"] = jax.random.uniform(k2, (b, size, size))
        batch["layers"] = jnp.zeros((b, size, size), jnp.int32)
    return batch


def config(**kw):
    c = objective.default_config()
    c.update(kw)
    return c


def oracle_apply(batch, obj, offset=0.0, context_value=1e3, record=None):
    """Returns the exact target (plus `offset`) on noisy frames, recovered from x_t and the known clean
    frames, and garbage on context frames (t = 0), which the loss must ignore."""
    x0 = 2.0 * batch["clip"][:, 1:] - 1.0

    def apply(x, t, cond, keep):
        if record is not None:
            record.append({"x": x, "t": t, "cond": cond, "keep": keep})
        a, s = _ab(t[..., None, None, None], obj)
        eps = (x - a * x0) / jnp.where(s > 0, s, 1.0)
        return jnp.where(t[..., None, None, None] > 0, _tgt(x0, eps, t[..., None, None, None], obj) + offset, context_value)

    return apply


def run_loss(batch, cfg, offset=0.0, key=0, jit=False):
    """Loss with the oracle network -> (loss, aux, what the network was called with), as NumPy.
    (Eager by default: on CPU, compiling each config's jitted loss costs more than running it.)"""

    def fn(bt, off, rng):
        record = []
        loss, aux = objective.diffusion_loss(oracle_apply(bt, cfg.objective, off, record=record), bt, rng, cfg)
        return loss, aux, record[0]

    return jax.tree.map(np.asarray, (jax.jit(fn) if jit else fn)(batch, jnp.float32(offset), jax.random.key(key)))


@pytest.mark.parametrize("obj", schedules.OBJECTIVES)
@pytest.mark.parametrize("weighting", objective.WEIGHTINGS)
def test_loss_zero_for_exact_target_positive_otherwise(obj, weighting):
    batch = make_batch(b=16)
    cfg = config(objective=obj, weighting=weighting, context_prob=0.5, max_context_frames=2)
    loss, aux, _ = run_loss(batch, cfg)
    assert float(loss) < 1e-8
    loss, aux, _ = run_loss(batch, cfg, offset=0.1)
    assert float(loss) > 1e-4
    assert set(aux) >= {"t", "loss", "mse"} and aux["t"].shape == (16,) and aux["loss"].shape == (16,)
    np.testing.assert_allclose(float(loss), float(aux["loss"].mean()), rtol=1e-6)


def test_loss_excludes_context_and_normalises_per_sample():
    batch = make_batch(b=16)  # 4 generated frames
    cfg = config(context_prob=0.7, max_context_frames=2, tubelet=2, per_tubelet_t=True, time_sampling="uniform")
    loss, aux, seen = run_loss(batch, cfg, offset=1.0, key=1, jit=True)
    # error exactly 1 per element on loss frames, garbage on context frames: every sample's MSE is 1
    np.testing.assert_allclose(aux["mse"], 1.0, rtol=1e-4)
    np.testing.assert_allclose(float(loss), 1.0, rtol=1e-4)
    x, t, n = seen["x"], seen["t"], aux["context_frames"]
    x0 = np.asarray(2.0 * batch["clip"][:, 1:] - 1.0)
    assert x.shape == (16, F, H, W, 3)  # frame 0 (the reference) is never generated
    np.testing.assert_array_equal(seen["cond"]["ref"], 2.0 * batch["clip"][:, 0] - 1.0)
    assert set(np.unique(n)) == {0, 2}
    for i in range(16):
        assert np.all(t[i, : n[i]] == 0) and np.all(t[i, n[i] :] > 0)
        np.testing.assert_array_equal(x[i, : n[i]], x0[i, : n[i]])
        np.testing.assert_array_equal(t[i, 0::2], t[i, 1::2])  # constant within tubelets
        np.testing.assert_allclose(aux["t"][i], t[i, n[i] :].mean(), rtol=1e-6)
    assert np.all(t[n == 0, 0] != t[n == 0, 2])  # one noise level per tubelet


def test_context_frame_counts():
    s = objective.settings(config(context_prob=0.7, max_context_frames=4, tubelet=2))
    n = np.asarray(objective.context_frames(jax.random.key(0), 20000, 6, s))
    assert abs(np.mean(n > 0) - 0.7) < 0.015
    assert abs(np.mean(n == 2) - 0.35) < 0.015 and abs(np.mean(n == 4) - 0.35) < 0.015 and set(np.unique(n)) == {0, 2, 4}


def test_condition_dropout_rates():
    n = 20000
    keep = objective.dropout_keep(jax.random.key(0), n, objective.settings(config(p_drop_ref=0.1, p_drop_depth=0.3, p_drop_medium=0.5, p_drop_all=0.0)))
    keep = {k: np.asarray(v) for k, v in keep.items()}
    for k, p in (("ref", 0.1), ("depth", 0.3), ("medium", 0.5)):
        assert keep[k].shape == (n,) and keep[k].dtype == bool
        assert abs((1 - keep[k].mean()) - p) < 0.015, (k, keep[k].mean())
    assert abs(np.mean(~keep["ref"] & ~keep["medium"]) - 0.05) < 0.01  # independent
    keep = objective.dropout_keep(jax.random.key(0), n, objective.settings(config(p_drop_all=0.05)))
    none = np.mean(np.all([~np.asarray(v) for v in keep.values()], axis=0))
    assert abs(none - (0.05 + 0.95 * 0.001)) < 0.01
    # the loss hands the network one keep flag per sample and condition
    _, _, seen = run_loss(make_batch(b=16), config(p_drop_ref=0.5))
    assert set(seen["keep"]) == set(KEYS) and all(v.shape == (16,) and v.dtype == bool for v in seen["keep"].values())
    assert 0 < seen["keep"]["ref"].sum() < 16


def test_loss_without_depth():
    batch = make_batch(b=16, depth=False)
    loss, _, seen = run_loss(batch, config(objective="v"))
    assert "depth" not in seen["cond"] and float(loss) < 1e-8


# --- bad arguments ----------------------------------------------------------------------------


def test_bad_arguments_raise_clear_errors():
    cond = make_cond()
    run = lambda **kw: samplers.sample(keyed_apply, cond, jax.random.key(0), **{"frames": F, "steps": 2, **kw})  # noqa: E731
    with pytest.raises(ValueError, match="unknown sampler"):
        run(sampler="rk4")
    with pytest.raises(ValueError, match="objective"):
        run(objective="eps")
    with pytest.raises(ValueError, match="multiple of tubelet"):
        run(frames=5, tubelet=2)
    with pytest.raises(ValueError, match="shorter"):
        run(context=jnp.zeros((B, F + 1, H, W, 3)))
    with pytest.raises(ValueError, match="shorter"):
        run(context=jnp.zeros((B, F, H, W, 3)))
    with pytest.raises(ValueError, match="tubelet"):
        run(tubelet=2, context=jnp.zeros((B, 1, H, W, 3)))
    with pytest.raises(ValueError, match="context must be"):
        run(context=jnp.zeros((B, 1, H + 1, W, 3)))
    with pytest.raises(ValueError, match="guidance"):
        run(guidance={"text": 2.0})
    with pytest.raises(ValueError, match="steps"):
        run(steps=0)
    with pytest.raises(ValueError, match="image_hw"):
        run(image_hw=(H + 1, W))
    with pytest.raises(ValueError, match="overlap"):
        samplers.continue_process(keyed_apply, cond, jax.random.key(0), total_frames=8, frames=F, overlap=F)
    batch = make_batch(b=16)
    for kw, msg in (
        ({"objective": "eps"}, "objective"),
        ({"time_sampling": "cosine"}, "time_sampling"),
        ({"weighting": "p2"}, "weighting"),
        ({"p_drop_ref": 1.5}, "p_drop_ref"),
        ({"tubelet": 3}, "multiple of tubelet"),
        ({"context_prob": 0.5, "max_context_frames": 4}, "max_context_frames"),
        ({"context_prob": 0.5, "max_context_frames": 3, "tubelet": 2}, "max_context_frames"),
    ):
        with pytest.raises(ValueError, match=msg):
            objective.diffusion_loss(keyed_apply, batch, jax.random.key(0), config(**kw))


def test_settings_fill_defaults_and_sampler_kwargs():
    c = ml_collections.ConfigDict({"objective": "v", "shift": 3.0})
    assert objective.settings(c).p_drop == (0.1, 0.1, 0.1)
    assert objective.sampler_kwargs(c) == {"objective": "v", "shift": 3.0, "tubelet": 1}


def test_process_window_crops_aligned_windows_with_their_phase():
    c = objective.default_config()
    c.update(window=4, tubelet=2)
    s = objective.settings(c)
    x0 = jnp.broadcast_to(jnp.arange(10, dtype=jnp.float32)[None, :, None, None, None], (64, 10, 2, 2, 3))
    win, phase = objective.process_window(jax.random.key(0), x0, s)
    assert win.shape == (64, 4, 2, 2, 3)
    starts = np.asarray(win[:, 0, 0, 0, 0]).astype(int)
    np.testing.assert_array_equal(np.asarray(win[:, :, 0, 0, 0]), starts[:, None] + np.arange(4))  # consecutive frames
    assert set(starts) == {0, 2, 4, 6}  # every tubelet-aligned start occurs
    np.testing.assert_allclose(np.asarray(phase), starts / 10)
    whole, phase0 = objective.process_window(jax.random.key(0), x0[:, :4], s)  # no longer than a window
    np.testing.assert_array_equal(np.asarray(whole), np.asarray(x0[:, :4]))
    assert not np.asarray(phase0).any()
    c.window = 3
    with pytest.raises(ValueError, match="window"):
        objective.settings(c)


def test_continue_process_tells_each_chunk_its_phase():
    seen = []

    def apply(x, t, cond, keep):
        seen.append(float(np.asarray(cond["phase"])[0]))
        return jnp.zeros_like(x)

    cond = make_cond()
    out = samplers.continue_process(apply, cond, jax.random.key(0), total_frames=10, frames=4, overlap=2, steps=2)
    assert out.shape == (B, 11, H, W, 3)
    # chunks start at generated frames 0, 2, 4, 6 (4 frames each, 2 of them context after the first)
    np.testing.assert_allclose(sorted(set(np.round(seen, 6))), [0.0, 0.2, 0.4, 0.6])


def test_per_row_keys_make_each_sample_independent_of_its_batch():
    """A batch of keys [B]: row b depends only on rng[b], so a row is the same alone or in a batch
    (with other rows, or padding), for `sample` and `continue_process`; a wrong key count fails."""
    cond = make_cond()
    keys = jax.random.split(jax.random.key(7), B)
    row = lambda c, i: jax.tree.map(lambda v: v[i : i + 1], c)  # noqa: E731
    for run in (
        lambda c, k: samplers.sample(keyed_apply, c, k, frames=F, steps=3, sampler="heun"),
        lambda c, k: samplers.continue_process(keyed_apply, c, k, total_frames=6, frames=F, overlap=2, steps=2),
    ):
        both = np.asarray(run(cond, keys))
        for i in range(B):
            np.testing.assert_allclose(np.asarray(run(row(cond, i), keys[i : i + 1])), both[i : i + 1], rtol=1e-6, atol=1e-6)
        assert not np.allclose(both[0, 1:], both[1, 1:])  # different keys, different noise
        padded = jax.tree.map(lambda v: jnp.concatenate([v, v[:1]]), cond)  # row 0 repeated as padding
        pk = jnp.concatenate([keys, jax.random.split(jax.random.key(99), 1)])
        np.testing.assert_allclose(np.asarray(run(padded, pk))[:B], both, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="keys"):
        samplers.sample(keyed_apply, cond, keys[:1], frames=F, steps=2)
