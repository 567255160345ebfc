"""Rasterizer: gradients, jit/eager parity, windows vs a full-canvas reference, frames, batching."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from paintproc_jax.program import MEDIA, NUM_PARAMS, P, make_program, stack
from paintproc_jax.strokes import raster


def random_program(rng, n=24, medium=0, canvas_hw=(0.75, 1.0), size=(0.03, 0.12)):
    p = np.zeros((n, NUM_PARAMS), np.float32)
    p[:, P["x"]] = rng.uniform(-0.05, canvas_hw[1] + 0.05, n)  # some strokes hang over the border
    p[:, P["y"]] = rng.uniform(-0.05, canvas_hw[0] + 0.05, n)
    p[:, P["width"]] = rng.uniform(*size, n)
    p[:, P["length"]] = p[:, P["width"]] * rng.uniform(1, 3.5, n)
    p[:, P["angle"]] = rng.uniform(-np.pi, np.pi, n)
    p[:, P["bend"]] = rng.uniform(-0.15, 0.15, n)
    p[:, P["r"] : P["b"] + 1] = rng.uniform(0, 1, (n, 3))
    p[:, P["opacity"]] = rng.uniform(0.4, 1.0, n)
    p[:, P["seed"]] = rng.uniform(0, 1, n)
    return make_program(p, medium=medium, canvas_hw=canvas_hw, background=(1.0, 0.95, 0.9))


HW = (36, 48)


@pytest.mark.parametrize("medium", range(len(MEDIA)))
def test_windows_equal_full_canvas_reference(rng, medium):
    prog = random_program(rng, medium=medium)
    layout = raster.make_layout(prog, max(HW), softness=0.8)
    dev = jax.tree.map(jnp.asarray, prog)
    fast = raster.render_jit(dev, hw=HW, layout=layout, softness=0.8)
    ref = raster.reference_render(dev, HW, 0.8)
    # Windows cut the soft tail at 3 sigma: differences stay far below one 8-bit level.
    np.testing.assert_allclose(np.asarray(fast), np.asarray(ref), atol=2e-3)
    # The static-medium specialisation renders the same picture.
    spec = raster.render_jit(dev, hw=HW, layout=layout, softness=0.8, medium=medium)
    np.testing.assert_allclose(np.asarray(spec), np.asarray(fast), atol=1e-5)


def test_gradient_matches_autodiff_of_reference(rng):
    prog = random_program(rng, n=16)
    layout = raster.make_layout(prog, max(HW), softness=1.0)
    dev = jax.tree.map(jnp.asarray, prog)
    target = jnp.asarray(rng.uniform(0, 1, (*HW, 3)), jnp.float32)

    def loss(render_fn, params, background):
        img = render_fn(dev._replace(params=params, background=background))
        return jnp.mean(jnp.square(img - target))

    fast = jax.grad(lambda p, b: loss(lambda q: raster.render(q, HW, layout, 1.0), p, b), (0, 1))
    ref = jax.grad(lambda p, b: loss(lambda q: raster.reference_render(q, HW, 1.0), p, b), (0, 1))
    (gp, gb), (rp, rb) = fast(dev.params, dev.background), ref(dev.params, dev.background)
    scale = float(jnp.abs(rp).max())
    assert scale > 1e-4  # the check is not vacuous
    np.testing.assert_allclose(np.asarray(gp), np.asarray(rp), atol=2e-2 * scale)
    np.testing.assert_allclose(np.asarray(gb), np.asarray(rb), atol=2e-2 * float(jnp.abs(rb).max()))


def test_gradient_matches_finite_differences(rng):
    # Marker has no bristle texture (which oscillates fast across a stroke and needs tiny steps).
    prog = random_program(rng, n=6, size=(0.08, 0.15), medium=MEDIA.index("marker"))
    layout = raster.make_layout(prog, max(HW), softness=1.5)
    dev = jax.tree.map(lambda x: jnp.asarray(x), prog)
    target = jnp.asarray(rng.uniform(0, 1, (*HW, 3)), jnp.float32)

    def loss(params):
        img = raster.render(dev._replace(params=params), HW, layout, 1.5)
        return jnp.sum(jnp.square(img - target))

    grad = np.asarray(jax.grad(loss)(dev.params))
    params = np.asarray(dev.params, np.float64)
    for stroke, col in [(0, P["x"]), (1, P["y"]), (2, P["width"]), (3, P["r"]), (4, P["opacity"]), (5, P["angle"])]:
        eps = 3e-4 if col in (P["x"], P["y"], P["width"]) else 1e-2
        up, down = params.copy(), params.copy()
        up[stroke, col] += eps
        down[stroke, col] -= eps
        fd = (float(loss(jnp.asarray(up, jnp.float32))) - float(loss(jnp.asarray(down, jnp.float32)))) / (2 * eps)
        assert grad[stroke, col] == pytest.approx(fd, rel=0.05, abs=0.05), (stroke, col)


def test_jit_and_eager_agree(rng):
    prog = random_program(rng, n=12)
    layout = raster.make_layout(prog, max(HW))
    dev = jax.tree.map(jnp.asarray, prog)
    with jax.disable_jit():
        eager = raster.render(dev, HW, layout)
    jitted = raster.render_jit(dev, hw=HW, layout=layout)
    np.testing.assert_allclose(np.asarray(eager), np.asarray(jitted), atol=1e-5)


def test_frames_are_prefixes_of_one_composite(rng):
    prog = random_program(rng, n=20)
    prog = prog._replace(frame_ends=np.array([0, 5, 5, 12, 20], np.int32))
    layout = raster.make_layout(prog, max(HW))
    dev = jax.tree.map(jnp.asarray, prog)
    frames = np.asarray(raster.render_frames_jit(dev, hw=HW, layout=layout))
    assert frames.shape == (5, *HW, 3)
    np.testing.assert_allclose(frames[0], np.broadcast_to(prog.background, (*HW, 3)), atol=1e-6)
    np.testing.assert_array_equal(frames[1], frames[2])
    for t, n in enumerate(prog.frame_ends):
        part = dev._replace(valid=dev.valid & (jnp.arange(20) < n))
        np.testing.assert_allclose(frames[t], np.asarray(raster.render_jit(part, hw=HW, layout=layout)), atol=1e-5)


def test_padding_strokes_are_never_drawn(rng):
    prog = random_program(rng, n=10)
    hidden = prog._replace(valid=np.zeros(10, bool))
    img = raster.render_program(hidden, 48)
    np.testing.assert_allclose(img, np.broadcast_to(prog.background, img.shape), atol=1e-6)


def test_vmap_over_a_batch_matches_single_renders(rng):
    progs = [random_program(rng, n=16) for _ in range(3)]
    layout = raster.batch_layout(progs, max(HW))
    batch = jax.tree.map(jnp.asarray, stack(progs))
    out = jax.jit(jax.vmap(lambda p: raster.render(p, HW, layout)))(batch)
    for i, prog in enumerate(progs):
        single = raster.render_jit(jax.tree.map(jnp.asarray, prog), hw=HW, layout=layout)
        np.testing.assert_allclose(np.asarray(out[i]), np.asarray(single), atol=1e-5)


def test_renders_at_any_resolution_with_the_same_picture(rng):
    prog = random_program(rng, n=30, size=(0.06, 0.15))
    small = raster.render_program(prog, 64)
    large = raster.render_program(prog, 256)
    assert small.shape == (48, 64, 3) and large.shape == (192, 256, 3)
    down = large.reshape(48, 4, 64, 4, 3).mean((1, 3))
    assert np.mean(np.abs(down - small)) < 0.02


def test_hard_render_has_sharper_edges_than_soft(rng):
    prog = random_program(rng, n=1, size=(0.3, 0.3))
    prog.params[0, P["x"]], prog.params[0, P["y"]] = 0.5, 0.375
    prog.params[0, P["r"] : P["b"] + 1] = 0.0  # black on a light ground: full contrast
    prog.params[0, P["opacity"]] = 1.0
    hard = raster.render_program(prog, 64, softness=0.0)
    soft = raster.render_program(prog, 64, softness=4.0)
    grad = lambda im: np.abs(np.diff(im.mean(-1), axis=1)).max()
    assert grad(hard) > 2 * grad(soft)


def test_layout_merges_runs_and_covers_every_stroke(rng):
    prog = random_program(rng, n=200, size=(0.005, 0.2))
    layout = raster.make_layout(prog, 256)
    assert sum(c for _, c in layout) == 200
    assert len(layout) <= 12
    radius = raster.stroke_radius_px(prog.params, 256, 0)
    windows = np.concatenate([np.full(c, w) for w, c in layout])
    assert np.all(windows >= 2 * radius - 1e-3)  # every stroke fits its window


def test_render_cost_follows_stroke_area_not_count(rng):
    """The static layout (what the renderer evaluates) grows with stroke area, not N x canvas."""
    small = random_program(rng, n=400, size=(0.01, 0.01))
    big = random_program(rng, n=400, size=(0.1, 0.1))
    px = lambda prog: sum(w * w * c for w, c in raster.make_layout(prog, 256))
    assert px(small) < 0.1 * 400 * 256 * 256
    assert px(big) > 10 * px(small)


def test_render_stages_are_prefix_renders_with_their_gradients(rng):
    """render_stages: canvases after each prefix in one pass, values and gradients as separate renders."""
    prog = random_program(rng, n=24)
    layout = raster.make_layout(prog, max(HW), softness=1.0)
    dev = jax.tree.map(jnp.asarray, prog)
    ends = (0, 5, 11, 24)
    stages = raster.render_stages(dev, HW, layout, ends, 1.0)
    assert stages.shape == (4, *HW, 3)
    for s, e in zip(stages, ends):
        part = dev._replace(valid=dev.valid & (jnp.arange(24) < e))
        np.testing.assert_allclose(np.asarray(s), np.asarray(raster.render(part, HW, layout, 1.0)), atol=1e-5)
    w = jnp.asarray([0.3, 0.5, 1.0, 2.0])
    target = jnp.asarray(rng.uniform(0, 1, (*HW, 3)), jnp.float32)

    def staged(p):
        return jnp.sum(w * jnp.mean(jnp.square(raster.render_stages(dev._replace(params=p), HW, layout, ends, 1.0) - target), (1, 2, 3)))

    def separate(p):
        return sum(wi * jnp.mean(jnp.square(raster.render(dev._replace(params=p, valid=dev.valid & (jnp.arange(24) < e)), HW, layout, 1.0) - target))
                   for wi, e in zip(w, ends))

    np.testing.assert_allclose(np.asarray(jax.grad(staged)(dev.params)), np.asarray(jax.grad(separate)(dev.params)), atol=1e-5)
    assert raster.split_layout(((8, 10), (16, 4)), (3, 10, 12)) == ((8, 3), (8, 7), (16, 2), (16, 2))
    with pytest.raises(ValueError, match="stage ends"):
        raster.render_stages(dev, HW, layout, (11, 5), 1.0)
