"""Planner: slot mode (fixed groups, image-independent brush sizes, one static layout), size
augmentation, padding, validation, and the fast feature helpers."""

import itertools

import numpy as np
import pytest
from PIL import Image

from paintproc_jax.program import MEDIA, MEDIUM_ID, P
from paintproc_jax.strokes import plan, raster


@pytest.fixture(scope="module")
def photo():
    from skimage import data

    return np.asarray(Image.fromarray(data.astronaut()).resize((64, 64), Image.LANCZOS), np.float32) / 255


def _ramp_depth(h=64, w=64):
    """Depth growing downwards: three horizontal bands of layers."""
    return np.tile(np.linspace(0, 1, h, dtype=np.float32)[:, None], (1, w))


def _images(photo):
    rng = np.random.default_rng(1)
    noise = rng.uniform(0, 1, (48, 80, 3)).astype(np.float32)  # non-square, maximal detail
    flat = np.full((64, 64, 3), 0.4, np.float32)  # no detail at all
    return [(photo, _ramp_depth()), (noise, _ramp_depth(48, 80)), (flat, np.full((64, 64), 0.5, np.float32))]


def _groups(prog):
    """Consecutive (layer, level) runs of a program: [((layer, level), count), ...]."""
    runs = []
    for key in zip(prog.layer.tolist(), prog.level.tolist()):
        if runs and runs[-1][0] == key:
            runs[-1][1] += 1
        else:
            runs.append([key, 1])
    return [(k, n) for k, n in runs]


def _slot_windows(layout):
    return np.concatenate([np.full(n, w) for w, n in layout])


def test_slot_counts_split_levels_evenly():
    for strokes, layers, levels in ((256, 3, 4), (1000, 4, 3), (7, 3, 4), (2, 3, 4), (5, 1, 1)):
        cfg = plan.PlanConfig(strokes=strokes, layers=layers, levels=levels)
        counts = plan.slot_counts(cfg)
        assert counts.shape == (layers, levels)
        assert counts.sum() == strokes
        per_level = plan.level_counts(strokes, levels, cfg.growth)
        np.testing.assert_array_equal(counts.sum(0)[: len(per_level)], per_level)
        assert np.all(counts.max(0) - counts.min(0) <= 1)
        assert counts.sum(1).max() - counts.sum(1).min() <= 1  # layer totals balanced too


@pytest.mark.parametrize("order", list(plan.ORDER_POLICIES))
def test_slot_mode_groups_follow_policy(photo, order):
    cfg = plan.PlanConfig(strokes=200, order=order, slots=True)
    prog = plan.plan_strokes(photo, _ramp_depth(), cfg, seed=0)
    assert prog.num_strokes == 200 and prog.valid.all()
    counts = plan.slot_counts(cfg)
    expected = [((k, lvl), int(counts[k, lvl])) for k, lvl in plan.group_order(cfg) if counts[k, lvl]]
    assert _groups(prog) == expected
    # The layout has one run per group (equal neighbours merged), covering all N slots.
    layout = plan.slot_layout(cfg, photo.shape[:2])
    assert sum(n for _, n in layout) == 200 and len(layout) <= len(expected)


def test_slot_mode_places_groups_inside_their_layer(photo):
    cfg = plan.PlanConfig(strokes=300, slots=True)
    depth = _ramp_depth()
    prog = plan.plan_strokes(photo, depth, cfg, seed=2)
    layer_map = plan.depth_layers(depth, cfg.layers)
    iy = np.clip((prog.params[:, P["y"]] * 64).astype(int), 0, 63)
    ix = np.clip((prog.params[:, P["x"]] * 64).astype(int), 0, 63)
    assert np.mean(layer_map[iy, ix] == prog.layer) > 0.9
    # A constant depth leaves layers 0 and 1 empty: their strokes spread over the whole canvas.
    flat = plan.plan_strokes(photo, np.full((64, 64), 0.5, np.float32), cfg, seed=2)
    assert flat.num_strokes == 300 and _groups(flat) == _groups(prog)
    ys = flat.params[flat.layer == 0, P["y"]]
    assert ys.min() < 0.3 and ys.max() > 0.7


def test_every_stroke_fits_its_slot_window(photo):
    media = ("oil", "pencil", "watercolor")
    for (image, depth), order in itertools.product(_images(photo), plan.ORDER_POLICIES):
        hw = image.shape[:2]
        base = plan.PlanConfig(strokes=150, order=order, slots=True, size_scale=1.3, fill=0.8, bend=0.2)
        layout = plan.slot_layout(base, hw, media=media, max_scale=1.3)
        slot_win = _slot_windows(layout)
        assert len(slot_win) == 150
        for medium, scale, seed in itertools.product(media, (0.5, 1.0, 1.3), (0, 1)):
            cfg = plan.PlanConfig(strokes=150, order=order, medium=medium, slots=True, size_scale=scale, fill=0.8, bend=0.2)
            prog = plan.plan_strokes(image, depth, cfg, seed=seed)
            need = 2 * np.ceil(raster.stroke_radius_px(prog.params, max(hw), MEDIUM_ID[medium]))
            assert np.all(need <= slot_win), (medium, scale, seed, order)


def test_slot_windows_do_not_depend_on_the_image(photo):
    """Brush sizes depend only on (config, canvas size): each level's widths share one bound."""
    cfg = plan.PlanConfig(strokes=200, slots=True)
    progs = [plan.plan_strokes(im, d, cfg, seed=3) for im, d in _images(photo) if im.shape[:2] == (64, 64)]
    for lvl in range(cfg.levels):
        widths = np.concatenate([p.params[p.level == lvl, P["width"]] for p in progs])
        assert widths.max() <= widths.min() * 1.15 / 0.85 + 1e-6
    assert plan.slot_layout(cfg, (64, 64)) == plan.slot_layout(cfg, (64, 64), media=("oil",), max_scale=1.0)
    # More media or a larger scale can only widen windows.
    wide = plan.slot_layout(cfg, (64, 64), media=MEDIA, max_scale=1.5)
    assert np.all(_slot_windows(wide) >= _slot_windows(plan.slot_layout(cfg, (64, 64))))


def test_fill_pads_finer_groups_only(photo):
    cfg = plan.PlanConfig(strokes=240, slots=True, fill=0.6)
    prog = plan.plan_strokes(photo, _ramp_depth(), cfg, seed=4)
    slots = plan.slot_counts(cfg)
    real = plan.real_counts(cfg)
    assert prog.num_strokes == 240
    assert prog.valid[prog.level == 0].all()
    for k, lvl in itertools.product(range(cfg.layers), range(cfg.levels)):
        in_group = (prog.layer == k) & (prog.level == lvl)
        assert in_group.sum() == slots[k, lvl]
        expect = slots[k, lvl] if lvl == 0 else int(np.floor(0.6 * slots[k, lvl] + 0.5))
        assert real[k, lvl] == expect == prog.valid[in_group].sum()
        # Padding comes last in its group and is harmless (transparent, tiny).
        idx = np.flatnonzero(in_group)
        assert np.all(np.diff(prog.valid[idx].astype(int)) <= 0)
    pad = ~prog.valid
    assert pad.sum() == slots.sum() - real.sum() > 0
    assert np.all(prog.params[pad, P["opacity"]] == 0) and np.all(prog.params[pad, P["width"]] == 0)
    # Same groups and layout whatever the fill.
    full = plan.plan_strokes(photo, _ramp_depth(), plan.PlanConfig(strokes=240, slots=True), seed=4)
    assert _groups(full) == _groups(prog)


def test_size_scale_multiplies_widths(photo):
    depth = _ramp_depth()
    a = plan.plan_strokes(photo, depth, plan.PlanConfig(strokes=100), seed=0)
    b = plan.plan_strokes(photo, depth, plan.PlanConfig(strokes=100, size_scale=2.0), seed=0)
    wa, wb = a.params[a.level == 0, P["width"]], b.params[b.level == 0, P["width"]]
    # (block-in strokes moved onto bare canvas are enlarged to the gap, so compare typical widths)
    np.testing.assert_allclose(np.median(wb), 2 * np.median(wa), rtol=0.1)
    s = plan.PlanConfig(strokes=100, slots=True)
    layout1, layout2 = plan.slot_layout(s, (64, 64)), plan.slot_layout(s, (64, 64), max_scale=2.0)
    assert sum(w * w * n for w, n in layout2) > sum(w * w * n for w, n in layout1)


@pytest.mark.parametrize("slots", [False, True])
def test_deterministic_per_seed(photo, slots):
    cfg = plan.PlanConfig(strokes=150, slots=slots, fill=0.75)
    a = plan.plan_strokes(photo, _ramp_depth(), cfg, seed=7)
    b = plan.plan_strokes(photo, _ramp_depth(), cfg, seed=7)
    c = plan.plan_strokes(photo, _ramp_depth(), cfg, seed=8)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a.params, c.params)


def test_bad_config_raises():
    for kwargs, match in (
        (dict(size_scale=0.0), "size_scale"),
        (dict(size_scale=-1.0), "size_scale"),
        (dict(size_scale=float("nan")), "size_scale"),
        (dict(fill=0.0), "fill"),
        (dict(fill=1.5), "fill"),
        (dict(growth=0.0), "growth"),
        (dict(bend=-0.1), "bend"),
        (dict(layers=0), "layers"),
        (dict(medium="crayon"), "medium"),
    ):
        with pytest.raises(ValueError, match=match):
            plan.PlanConfig(**kwargs).validate()
    with pytest.raises(ValueError, match="slot"):
        plan.slot_layout(plan.PlanConfig(), (64, 64))
    with pytest.raises(ValueError, match="medium"):
        plan.slot_layout(plan.PlanConfig(slots=True), (64, 64), media=("oil", "crayon"))
    with pytest.raises(ValueError, match="include"):  # the layout would not hold this config's strokes
        plan.slot_layout(plan.PlanConfig(slots=True), (64, 64), media=("pencil",))
    with pytest.raises(ValueError, match="max_scale"):
        plan.slot_layout(plan.PlanConfig(slots=True, size_scale=1.2), (64, 64), max_scale=1.0)


def test_upsample_and_sample_are_bilinear():
    """The fast pyramid helpers agree with plain bilinear interpolation at pixel centres."""
    rng = np.random.default_rng(0)
    for f, hw in ((2, (7, 9)), (4, (13, 16)), (8, (40, 25))):
        a = rng.uniform(size=(-(-hw[0] // f), -(-hw[1] // f), 3)).astype(np.float32)
        up = plan._upsample(a, f, hw)
        assert up.shape == hw + (3,)
        ys, xs = np.meshgrid(np.arange(hw[0]) + 0.5, np.arange(hw[1]) + 0.5, indexing="ij")
        pts = np.stack([ys.ravel(), xs.ravel()], -1)
        np.testing.assert_allclose(up.reshape(-1, 3), plan._sample(a, pts, f), atol=1e-6)
    # The pyramid's level k is the block mean over 2^k x 2^k pixels.
    img = rng.uniform(size=(16, 16, 3)).astype(np.float32)
    lvl2 = plan._Pyramid(img).level(2)
    np.testing.assert_allclose(lvl2, img.reshape(4, 4, 4, 4, 3).mean((1, 3)), atol=1e-6)


def test_clamp_to_slots_keeps_grown_strokes_in_their_windows(photo):
    """A fit may grow or bend strokes; clamping puts every stroke back inside its slot window."""
    cfg = plan.PlanConfig(strokes=120, slots=True, fill=0.8)
    prog = plan.plan_strokes(photo, _ramp_depth(), cfg, seed=5)
    grown = prog.params.copy()
    grown[:, [P["width"], P["length"]]] *= 3.0
    grown[:, P["bend"]] = 0.25
    clamped = plan.clamp_to_slots(prog._replace(params=grown), cfg, (64, 64))
    need = 2 * np.ceil(raster.stroke_radius_px(clamped.params, 64, MEDIUM_ID["oil"]))
    assert np.all(need <= _slot_windows(plan.slot_layout(cfg, (64, 64))))
    # Strokes already inside their bounds are left as they are.
    np.testing.assert_array_equal(plan.clamp_to_slots(prog, cfg, (64, 64)).params, prog.params)


@pytest.mark.parametrize("medium", ["oil", "acrylic"])
def test_cells_the_planner_counts_as_covered_are_painted(medium):
    """The planner's coverage model (`_cover` up to `cover_reach`) agrees with the renderer: the
    cells it counts as covered by a stroke of an opaque medium are painted by it, dry-brush end
    included (pencil and watercolour let the paper show by design)."""
    from paintproc_jax.program import MEDIUM_ID, NUM_PARAMS, P, make_program
    from paintproc_jax.strokes.raster import render_program

    rng = np.random.default_rng(0)
    n = 12
    p = np.zeros((n, NUM_PARAMS), np.float32)
    p[:, P["x"]], p[:, P["y"]] = rng.uniform(0.3, 0.7, n), rng.uniform(0.3, 0.7, n)
    p[:, P["width"]] = rng.uniform(0.08, 0.2, n)
    p[:, P["length"]] = p[:, P["width"]] * rng.uniform(2.0, 4.0, n)
    p[:, P["angle"]] = rng.uniform(-np.pi, np.pi, n)
    p[:, P["bend"]] = rng.uniform(-0.1, 0.1, n)
    p[:, P["r"] : P["b"] + 1] = 1.0
    p[:, P["opacity"]] = 1.0
    p[:, P["seed"]] = rng.uniform(0, 1, n)
    reach = plan.cover_reach(medium)
    assert reach < 1.0
    bad = []
    for i in range(n):
        prog = make_program(p[i : i + 1], medium=MEDIUM_ID[medium], canvas_hw=(1.0, 1.0), background=(0.0, 0.0, 0.0))
        alpha = render_program(prog, 96).mean(-1)  # white paint on black: brightness = coverage
        flat, _ = plan._cover(p[i : i + 1], (96, 96), 1, 96.0, reach)
        bad.append(np.mean(alpha.ravel()[flat] < 0.5))
    assert np.mean(bad) < 0.02, np.round(bad, 3)


def test_the_planner_and_the_layouts_import_without_jax():
    """Host-side planning (plan.py, layout.py) is NumPy only: data workers and tools plan without JAX."""
    import subprocess
    import sys

    code = ("import sys; import paintproc_jax.strokes.plan, paintproc_jax.strokes.layout; "
            "print(sorted(m for m in sys.modules if m == 'jax' or m.startswith('jax.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
