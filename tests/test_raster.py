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


@pytest.mark.parametrize("medium", [MEDIA.index("oil"), MEDIA.index("watercolor")])
def test_hand_written_outline_vjp_equals_autodiff(rng, medium, monkeypatch):
    """The outline's custom VJP (`raster._geometry_vjp`) gives autodiff's gradients for every parameter."""
    prog = random_program(rng, n=16, medium=medium)
    layout = raster.make_layout(prog, max(HW), softness=1.0)
    dev = jax.tree.map(jnp.asarray, prog)
    target = jnp.asarray(rng.uniform(0, 1, (*HW, 3)), jnp.float32)

    def grad():
        return np.asarray(jax.jit(jax.grad(lambda p: jnp.mean(jnp.square(
            raster.render(dev._replace(params=p), HW, layout, 1.0, medium) - target))))(dev.params))

    monkeypatch.setattr(raster, "_GEOMETRY", raster._geometry_vjp)
    fast = grad()
    monkeypatch.setattr(raster, "_GEOMETRY", raster._geometry)
    auto = grad()
    for name in ("x", "y", "angle", "width", "length", "bend", "r", "opacity"):
        col = auto[:, P[name]]
        assert np.abs(col).max() > 1e-6, name  # every geometric parameter gets a gradient here
        np.testing.assert_allclose(fast[:, P[name]], col, rtol=1e-3, atol=1e-4 * np.abs(col).max(), err_msg=name)


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


@pytest.mark.parametrize("paint", ["any", "black", "white"])
def test_frames_are_prefixes_of_one_composite(rng, paint):
    """Every frame equals the render of its strokes; black and white paint too (oil shading
    darkens grooves and lights ridges, which must neither leave [0, 1] nor look unwritten)."""
    prog = random_program(rng, n=20, size=(0.03, 0.12) if paint == "any" else (0.3, 0.6))
    if paint != "any":
        params = prog.params.copy()
        params[:, P["r"] : P["b"] + 1] = 0.0 if paint == "black" else 1.0
        prog = prog._replace(params=params, background=np.float32([0.5, 0.5, 0.5]))
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
    assert frames.min() >= 0.0 and frames.max() <= 1.0


@pytest.mark.parametrize("widest_px", [10, 28, 40, 130])  # bristle octaves shown: 0, 1 (clumps), 2 (fine), 3 (hairs)
def test_frames_skip_only_octaves_no_stroke_shows(rng, widest_px):
    """With a static medium, render_frames computes only the bristle octaves that some stroke of
    a run is wide enough to show; the frames equal the fully computed ones (traced medium)."""
    hw = (120, 160)
    prog = random_program(rng, n=12, size=(4 / 160, 10 / 160))
    params = prog.params.copy()
    params[0, P["width"]] = widest_px / 160
    params[0, P["length"]] = 1.2 * widest_px / 160
    params[0, P["x"]], params[0, P["y"]] = 0.5, 0.35
    prog = prog._replace(params=params, frame_ends=np.array([0, 4, 12], np.int32))
    layout = ((256, 12),)  # one run, every octave possible: only the stroke widths decide
    dev = jax.tree.map(jnp.asarray, prog)
    full = raster.render_frames_jit(dev, hw=hw, layout=layout)  # medium read at run time: all octaves
    fast = raster.render_frames_jit(dev, hw=hw, layout=layout, medium=int(prog.medium), skip_octaves=True)
    np.testing.assert_allclose(np.asarray(fast), np.asarray(full), atol=1e-6)
    # The 256-px windows are cut to the 120 x 160 canvas: the last frame is still the full render.
    np.testing.assert_allclose(np.asarray(fast[-1]), np.asarray(raster.reference_render(dev, hw)), atol=2e-3)


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
    stages = jax.jit(lambda d: raster.render_stages(d, HW, layout, ends, 1.0))(dev)
    assert stages.shape == (4, *HW, 3)
    for s, e in zip(stages, ends):
        part = dev._replace(valid=dev.valid & (jnp.arange(24) < e))
        np.testing.assert_allclose(np.asarray(s), np.asarray(raster.render_jit(part, hw=HW, layout=layout, softness=1.0)), atol=1e-5)
    w = jnp.asarray([0.3, 0.5, 1.0, 2.0])
    target = jnp.asarray(rng.uniform(0, 1, (*HW, 3)), jnp.float32)

    def staged(p):
        return jnp.sum(w * jnp.mean(jnp.square(raster.render_stages(dev._replace(params=p), HW, layout, ends, 1.0) - target), (1, 2, 3)))

    def separate(p):
        return sum(wi * jnp.mean(jnp.square(raster.render(dev._replace(params=p, valid=dev.valid & (jnp.arange(24) < e)), HW, layout, 1.0) - target))
                   for wi, e in zip(w, ends))

    np.testing.assert_allclose(np.asarray(jax.jit(jax.grad(staged))(dev.params)),
                               np.asarray(jax.jit(jax.grad(separate))(dev.params)), atol=1e-5)
    assert raster.split_layout(((8, 10), (16, 4)), (3, 10, 12)) == ((8, 3), (8, 7), (16, 2), (16, 2))
    with pytest.raises(ValueError, match="stage ends"):
        raster.render_stages(dev, HW, layout, (11, 5), 1.0)


# ----------------------------------------------------------------------------------------------
# Brushwork: what each medium's texture looks like on one large stroke (stroke_window directly).

def _big_stroke(medium, *, w=128, width=0.35, length=0.8, bend=0.0, seed=0.3, softness=0.0, traced=False):
    """Alpha [w, w], colour [w, w, 3] of one horizontal mid-grey stroke filling a w-px canvas, and
    its coordinates: `along` (0 at the start, 1 at the end), `across` (px from the bent centre
    line) and `sd` (px, signed distance to the capsule's outline, < 0 inside)."""
    p = np.zeros(NUM_PARAMS, np.float32)
    p[[P["x"], P["y"], P["length"], P["width"], P["angle"], P["bend"]]] = 0.5, 0.5, length, width, 0.0, bend
    p[P["r"] : P["b"] + 1] = 0.5
    p[P["opacity"]], p[P["seed"]] = 1.0, seed
    row = raster.RENDER_TABLE[MEDIA.index(medium)]
    row = jnp.asarray(row) if traced else row
    alpha, color = raster.stroke_window(jnp.asarray(p), row, jnp.zeros(2, jnp.int32), w, float(w), softness)
    c = (np.arange(w) + 0.5) - 0.5 * w  # px from the centre
    half, wpx = 0.5 * length * w, width * w
    u = np.broadcast_to(c[None, :], (w, w))
    across = c[:, None] - bend * 2 * half * (1 - np.square(np.clip(u / half, -1, 1)))
    sd = np.hypot(np.maximum(np.abs(u) - (half - 0.5 * wpx), 0), across) - 0.5 * wpx
    return np.asarray(alpha), np.asarray(color), u / (2 * half) + 0.5, across, sd


def _inside(along, across, width_px, lo, hi, margin=0.8):
    """Pixels well inside the stroke's width, between fractions lo and hi of its length."""
    return (np.abs(across) < margin * 0.5 * width_px) & (along > lo) & (along < hi)


def test_oil_streaks_run_along_the_stroke():
    # In the body, shading and coverage change much faster across the stroke than along it.
    w, width = 128, 0.35
    alpha, color, along, across, _ = _big_stroke("oil", w=w, width=width)
    ins = _inside(along, across, width * w, 0.1, 0.6)
    for img in (color[..., 0], alpha):
        d_along = np.abs(np.diff(img, axis=1))[ins[:, 1:] & ins[:, :-1]].mean()
        d_across = np.abs(np.diff(img, axis=0))[ins[1:] & ins[:-1]].mean()
        assert d_across > 1e-3  # there is a texture at all
        assert d_across > 5 * d_along, (d_across, d_along)


def _profile(seed, bend=0.0):
    """Across-profile of an oil stroke's shading (the body, averaged along the stroke)."""
    w, width = 256, 0.6
    _, color, along, across, _ = _big_stroke("oil", w=w, width=width, length=0.9, bend=bend, seed=seed)
    rows = np.abs(across[:, 0]) < 0.45 * width * w
    cols = (along[0] > 0.15) & (along[0] < 0.45)
    prof = color[..., 0][np.ix_(rows, cols)].mean(1)
    return prof - prof.mean()


def test_oil_streak_spacing_is_irregular_and_per_stroke():
    for seed in (0.1, 0.4, 0.8):
        prof = _profile(seed)
        ac = np.correlate(prof, prof, "full")[len(prof) - 1 :] / np.dot(prof, prof)
        first_zero = int(np.argmax(ac < 0))
        # A periodic profile (evenly spaced streaks) correlates with itself shifted by a period.
        assert first_zero > 0 and ac[first_zero:].max() < 0.5, (seed, ac[first_zero:].max())
    # Every stroke has its own bristles.
    a, b = _profile(0.1), _profile(0.6)
    assert abs(np.corrcoef(a, b)[0, 1]) < 0.5


def test_bent_stroke_streaks_follow_the_bend():
    # Along a bent stroke, texture is constant along curves of constant distance to the centre line.
    w, width, bend = 192, 0.3, 0.15
    _, color, along, across, _ = _big_stroke("oil", w=w, width=width, length=0.85, bend=bend)
    band = (along > 0.15) & (along < 0.55)
    ins = band & (np.abs(across) < 0.4 * width * w)
    key = np.round(across[ins]).astype(int)  # 1-px bins of distance to the bent centre line
    vals = color[..., 0][ins]
    bins = np.unique(key)
    within = np.mean([vals[key == k].var() for k in bins])
    between = np.var([vals[key == k].mean() for k in bins])
    assert between > 3 * within, (between, within)


@pytest.mark.parametrize("medium", ["oil", "acrylic"])
def test_opaque_body_stays_nearly_opaque(medium):
    # The fitter relies on opaque strokes covering what is under them: mean alpha over the first
    # 70 % of the length, inside the stroke, at opacity 1 and softness 0.
    w, width = 256, 0.2
    for seed in (0.05, 0.3, 0.55, 0.8):
        alpha, _, along, _, sd = _big_stroke(medium, w=w, width=width, length=0.6, seed=seed)
        body = (sd < 0) & (along < 0.7)
        assert alpha[body].mean() >= 0.93, (seed, alpha[body].mean())


def test_oil_end_breaks_up_into_dry_brush_streaks():
    w, width = 256, 0.2
    alpha, _, along, across, _ = _big_stroke("oil", w=w, width=width, length=0.6)
    body = _inside(along, across, width * w, 0.05, 0.6)
    end = _inside(along, across, width * w, 0.88, 0.97)
    assert np.mean(alpha[body] < 0.5) < 0.01  # no holes in the loaded body
    assert np.mean(alpha[end] < 0.5) > 0.15  # gaps between the streaks at the dry end
    assert np.mean(alpha[end] > 0.8) > 0.15  # ... where some streaks still carry paint


def test_soft_renders_smooth_the_texture():
    # Fitting starts soft: the texture fades with `softness` (wide, smooth gradients).
    w, width = 128, 0.35
    stds = []
    for softness in (0.0, 6.0):
        _, color, along, across, _ = _big_stroke("oil", w=w, width=width, softness=softness)
        stds.append(color[..., 0][_inside(along, across, width * w, 0.1, 0.6)].std())
    assert stds[0] > 0.02 and stds[1] < 0.3 * stds[0], stds


def test_media_are_distinct():
    w, width = 192, 0.3
    stats = {}
    for medium in MEDIA:
        wid = width * (0.5 if medium == "pencil" else 1.0)
        alpha, color, along, across, sd = _big_stroke(medium, w=w, width=wid, length=0.7)
        mid = (along > 0.2) & (along < 0.6)
        body = _inside(along, across, wid * w, 0.1, 0.7, margin=0.6)
        level = alpha[body].mean()
        stats[medium] = dict(
            alpha=level, alpha_std=alpha[body].std(), shade_std=color[..., 0][body].std(),
            tail=alpha[mid & (np.abs(sd - 3.0) < 0.5)].mean() / level,  # 3 px outside: a soft edge
            rim=alpha[mid & (sd > -0.2 * wid * w) & (sd < -2.0)].mean() / level,  # just inside the edge
        )
    oil, acr, wc, pen, mk = (stats[m] for m in ("oil", "acrylic", "watercolor", "pencil", "marker"))
    assert wc["alpha"] < 0.75 * oil["alpha"]  # watercolour is a transparent wash ...
    assert wc["tail"] > 0.1 and oil["tail"] < 0.03 and mk["tail"] < 0.03  # ... with a soft edge
    assert wc["rim"] > 1.1 and mk["rim"] > 1.05 and oil["rim"] < 1.02  # pigment pools at a wash's rim
    assert pen["alpha_std"] > 3 * oil["alpha_std"]  # pencil: broken up by the paper's tooth
    assert oil["shade_std"] > 0.02 and oil["shade_std"] > 1.3 * acr["shade_std"]  # oil: ridges; acrylic flatter
    assert mk["shade_std"] < 1e-3 and mk["alpha_std"] < 0.05  # marker: flat ink


@pytest.mark.parametrize("medium", range(len(MEDIA)))
def test_textured_stroke_is_the_same_with_a_traced_medium(medium):
    # Big strokes exercise the texture (small ones fade it out): the traced medium row, which
    # computes every term, renders what the static specialisation renders.
    name = MEDIA[medium]
    a, c, *_ = _big_stroke(name, w=96, width=0.4, bend=0.1)
    at, ct, *_ = _big_stroke(name, w=96, width=0.4, bend=0.1, traced=True)
    np.testing.assert_allclose(at, a, atol=1e-5)
    np.testing.assert_allclose(ct, c, atol=1e-5)


def test_large_textured_strokes_match_the_reference_and_have_gradients(rng):
    prog = random_program(rng, n=6, size=(0.3, 0.5), canvas_hw=(1.0, 1.0))
    hw = (96, 96)
    layout = raster.make_layout(prog, 96)
    assert max(w for w, _ in layout) > 24  # windows wide enough for the texture to be computed
    dev = jax.tree.map(jnp.asarray, prog)
    fast = raster.render_jit(dev, hw=hw, layout=layout)
    ref = raster.reference_render(dev, hw)
    np.testing.assert_allclose(np.asarray(fast), np.asarray(ref), atol=2e-3)
    target = jnp.asarray(rng.uniform(0, 1, (*hw, 3)), jnp.float32)
    loss = lambda q: jnp.mean(jnp.square(raster.render(dev._replace(params=q), hw, layout, 0.0, 0) - target))  # noqa: E731
    grad = np.asarray(jax.grad(loss)(dev.params))
    assert np.all(np.isfinite(grad))
    for col in ("x", "y", "width", "length", "angle", "r", "opacity"):
        assert np.abs(grad[:, P[col]]).max() > 0, col
