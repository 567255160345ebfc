"""Depth: the built-in estimator's cues, depth files, the estimator registry, bad files."""


import numpy as np
import pytest
from PIL import Image

from paintproc_jax.depth import (
    BuiltinDepth,
    estimate_depth,
    get_estimator,
    guided_filter,
    load_depth_file,
    normalize_depth,
    rank_normalize,
    register_estimator,
    sidecar_depth_path,
    soft_rank,
    validate_depth,
)
from paintproc_jax.depth import base as depth_base
from paintproc_jax.errors import PaintprocError


def _landscape(rng, h=96, w=128):
    img = np.zeros((h, w, 3), np.float32)
    img[: h // 2] = [0.70, 0.80, 0.95]  # smooth, pale, bluish sky
    img[: h // 2] += np.linspace(0, 0.03, h // 2, dtype=np.float32)[:, None, None]
    ground = np.array([0.45, 0.30, 0.10], np.float32) + rng.normal(0, 0.12, (h - h // 2, w, 3)).astype(np.float32)
    img[h // 2 :] = ground  # textured, saturated, warm ground
    return np.clip(img, 0, 1)


def test_builtin_puts_the_ground_nearer_than_the_sky(rng):
    img = _landscape(rng)
    d = estimate_depth(img)
    assert d.shape == img.shape[:2] and d.dtype == np.float32
    assert d[48:].mean() - d[:48].mean() > 0.3


def test_builtin_puts_a_detailed_subject_nearer_than_a_hazy_background(rng):
    h = w = 128
    img = np.full((h, w, 3), [0.75, 0.78, 0.85], np.float32)
    yy, xx = np.mgrid[:h, :w]
    disc = (yy - 64) ** 2 + (xx - 64) ** 2 < 28**2
    img[disc] = np.clip(np.array([0.8, 0.2, 0.1]) + rng.normal(0, 0.15, (disc.sum(), 3)), 0, 1)
    d = estimate_depth(img)
    ring = ((yy - 64) ** 2 + (xx - 64) ** 2 > 45**2) & (yy < 64)  # background at the disc's height and above
    assert d[disc].mean() - d[ring].mean() > 0.2


def test_edges_stay_sharp(rng):
    img = _landscape(rng)
    d = estimate_depth(img)
    rows = np.abs(np.diff(d.mean(1)))  # row-to-row change of the mean depth
    at_edge = rows[44:52].max()
    in_sky = np.median(rows[8:40])  # the ground-plane prior ramps smoothly inside the sky
    assert at_edge > 5 * in_sky


@pytest.mark.parametrize("shape", [(1, 1), (3, 7), (300, 200)])
def test_any_size_gives_a_valid_map(rng, shape):
    gray = rng.uniform(0, 1, shape).astype(np.float32)
    img = np.stack([gray] * 3, -1)
    d = estimate_depth(img)
    assert d.shape == shape and d.dtype == np.float32
    assert np.all(np.isfinite(d)) and d.min() >= 0 and d.max() <= 1


def test_deterministic_on_a_real_photo(astronaut):
    img = astronaut.astype(np.float32) / 255
    est = BuiltinDepth()
    a = est(img)
    np.testing.assert_array_equal(a, est(img))
    assert a.shape == (512, 512) and a.min() == 0.0 and a.max() == 1.0


def test_registry(tmp_path):
    assert isinstance(get_estimator("builtin"), BuiltinDepth)
    with pytest.raises(PaintprocError, match="builtin"):
        get_estimator("no-such-model")

    class Flat:
        name = "ramp"

        def __call__(self, image):
            return np.tile(np.linspace(0, 1, image.shape[1], dtype=np.float32), (image.shape[0], 1))

    register_estimator("ramp", lambda **kw: Flat())
    d = estimate_depth(np.zeros((4, 5, 3), np.float32), estimator="ramp")
    np.testing.assert_allclose(d[0], np.linspace(0, 1, 5))


def test_depth_files(tmp_path):
    hw = (40, 60)
    ramp = np.tile(np.linspace(0, 1, 60, dtype=np.float32), (40, 1))
    np.save(tmp_path / "a.npy", ramp)
    np.save(tmp_path / "b.npy", ramp[..., None] * 5 + 2)
    np.testing.assert_allclose(load_depth_file(tmp_path / "a.npy", hw), ramp, atol=1e-6)
    np.testing.assert_allclose(load_depth_file(tmp_path / "b.npy", hw), ramp, atol=1e-5)
    np.testing.assert_allclose(load_depth_file(tmp_path / "a.npy", hw, far_is_high=True), 1 - ramp, atol=1e-6)
    # 8-bit and 16-bit PNG; 16-bit keeps its precision.
    Image.fromarray((ramp * 255).round().astype(np.uint8)).save(tmp_path / "c.png")
    assert np.abs(load_depth_file(tmp_path / "c.png", hw) - ramp).max() < 1 / 255 + 1e-6
    fine = np.tile(np.linspace(0, 1, 1000), (10, 1))
    Image.fromarray((fine * 65535).round().astype(np.uint16)).save(tmp_path / "d.png")
    assert len(np.unique(load_depth_file(tmp_path / "d.png", (10, 1000)))) > 256
    # Half resolution, same aspect: resized to the image.
    np.save(tmp_path / "half.npy", ramp[::2, ::2])
    half = load_depth_file(tmp_path / "half.npy", hw)
    assert half.shape == hw and np.abs(half - ramp).max() < 0.05


@pytest.mark.parametrize(
    "name,content,message",
    [
        ("missing.npy", None, "not found"),
        ("aspect.npy", np.random.default_rng(0).uniform(size=(40, 40)), "wrong shape"),
        ("nan.npy", np.where(np.eye(40, 60) > 0, np.nan, 0.5), "NaN|finite"),
        ("inf.npy", np.where(np.eye(40, 60) > 0, np.inf, 0.5), "inf|finite"),
        ("const.npy", np.full((40, 60), 0.3), "constant"),
        ("rgb.npy", np.random.default_rng(0).uniform(size=(40, 60, 3)), "2-D"),
        ("text.png", b"not a png at all", "cannot read|not"),
    ],
)
def test_bad_depth_files_give_one_line_errors(tmp_path, name, content, message):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        np.save(path, content)
    with pytest.raises(PaintprocError, match=message) as err:
        load_depth_file(path, (40, 60))
    text = str(err.value)
    assert "\n" not in text and name in text


def test_sidecar_lookup(tmp_path):
    img = tmp_path / "photo.jpg"
    img.write_bytes(b"")
    assert sidecar_depth_path(img) is None
    np.save(tmp_path / "photo.depth.npy", np.eye(3))
    assert sidecar_depth_path(img) == tmp_path / "photo.depth.npy"


# -- more detailed checks ---------------------------------------------------------------------------

H, W = 120, 180


def _check_protocol(d, hw):
    assert d.shape == hw
    assert d.dtype == np.float32
    assert np.isfinite(d).all()
    assert d.min() >= 0.0 and d.max() <= 1.0


def _sky_ground(rng):
    """Smooth bluish low-contrast sky on top, textured saturated green ground in the bottom half."""
    img = np.zeros((H, W, 3), np.float32)
    y = np.linspace(0.0, 1.0, H // 2, dtype=np.float32)[:, None, None]
    img[: H // 2] = np.array([0.60, 0.70, 0.92], np.float32) + 0.04 * y
    tex = rng.random((H - H // 2, W, 1), dtype=np.float32)
    img[H // 2 :] = np.array([0.25, 0.55, 0.10], np.float32) * (0.5 + tex)
    return np.clip(img, 0.0, 1.0)


def _hazy_disc(rng):
    """Textured saturated red disc in the middle of a smooth hazy background; returns (image, mask)."""
    yy, xx = np.mgrid[:H, :W]
    img = np.zeros((H, W, 3), np.float32) + np.array([0.78, 0.80, 0.84], np.float32)
    img += 0.03 * (yy / H)[..., None].astype(np.float32)
    mask = (yy - H / 2) ** 2 + (xx - W / 2) ** 2 < (0.3 * H) ** 2
    tex = rng.random((H, W, 1), dtype=np.float32)
    img[mask] = (np.array([0.85, 0.20, 0.10], np.float32) * (0.5 + tex))[mask]
    return np.clip(img, 0.0, 1.0), mask


def _one_line_naming(excinfo, path):
    msg = str(excinfo.value)
    assert "\n" not in msg, msg
    assert str(path) in msg, msg
    return msg


# -- built-in estimator ----------------------------------------------------------------------------


def test_builtin_landscape_ground_is_nearer():
    d = BuiltinDepth()(_sky_ground(np.random.default_rng(0)))
    _check_protocol(d, (H, W))
    top, bottom = d[: H // 2].mean(), d[H // 2 :].mean()
    assert bottom - top > 0.4, (top, bottom)
    # The horizon is a depth edge: rows just below it are nearer than rows just above it.
    assert d[H // 2 + 3].mean() - d[H // 2 - 4].mean() > 0.2


def test_builtin_textured_disc_is_nearer_than_hazy_background():
    img, mask = _hazy_disc(np.random.default_rng(1))
    d = BuiltinDepth()(img)
    yy, xx = np.mgrid[:H, :W]
    rr = np.sqrt((yy - H / 2) ** 2 + (xx - W / 2) ** 2)
    far_bg = rr > 0.3 * H + 25
    assert d[mask].mean() - d[far_bg].mean() > 0.35
    # Little halo: the background right next to the disc stays close to the rest of the background
    # (a boundary's gradient energy must not make the flat side look detailed).
    ring = (rr > 0.3 * H + 2) & (rr < 0.3 * H + 10)
    assert d[mask].mean() - d[ring].mean() > 0.35
    assert d[ring].mean() - d[far_bg].mean() < 0.2


def test_builtin_cue_directions_each_alone():
    """Each cue on its own points the documented way (so a sign flip anywhere fails a test)."""
    rng = np.random.default_rng(2)
    img, mask = _hazy_disc(rng)
    only = dict(w_ground=0.0, w_detail=0.0, w_aerial=0.0, w_center=0.0)
    for cue in ("detail", "aerial", "center"):
        d = BuiltinDepth(**{**only, f"w_{cue}": 1.0})(img)
        assert d[mask].mean() > d[~mask].mean() + 0.1, cue
    flat = np.full((H, W, 3), 0.5, np.float32)
    d = BuiltinDepth(**{**only, "w_ground": 1.0})(flat)
    assert d[-10:].mean() > d[:10].mean() + 0.5  # lower in the frame = nearer


@pytest.mark.parametrize("hw", [(1, 1), (1, 2), (3, 7), (7, 3), (1, 40), (40, 1), (300, 200), (64, 700)])
def test_builtin_shapes_dtype_range(hw):
    rng = np.random.default_rng(hw[0] * 1000 + hw[1])
    img = rng.random(hw + (3,), dtype=np.float32)
    d = BuiltinDepth()(img)
    _check_protocol(d, hw)
    if hw == (1, 1):
        assert d[0, 0] == 0.5
    d2 = estimate_depth(img)
    np.testing.assert_array_equal(d, d2)


def test_builtin_grayscale_and_other_inputs():
    rng = np.random.default_rng(3)
    gray = np.repeat(rng.random((300, 200, 1), dtype=np.float32), 3, axis=-1)  # grayscale-looking RGB
    d = estimate_depth(gray)
    _check_protocol(d, (300, 200))
    assert d.max() - d.min() > 0.5
    # Gray [H, W], uint8 and a flat image are accepted too.
    _check_protocol(BuiltinDepth()(gray[..., 0]), (300, 200))
    _check_protocol(BuiltinDepth()((gray * 255).astype(np.uint8)), (300, 200))
    _check_protocol(BuiltinDepth()(np.zeros((20, 30, 3), np.float32)), (20, 30))
    with pytest.raises(PaintprocError):
        BuiltinDepth()(np.zeros((4, 4, 5), np.float32))


def test_builtin_is_deterministic():
    img = np.random.default_rng(4).random((97, 131, 3), dtype=np.float32)
    a = BuiltinDepth()(img)
    b = BuiltinDepth()(img.copy())
    c = get_estimator("builtin")(img)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)


def test_builtin_keeps_a_sharp_step_at_an_image_edge():
    """Depth differs across a strong image edge much more than across a flat area."""
    img = np.zeros((H, W, 3), np.float32) + np.array([0.80, 0.15, 0.10], np.float32)  # saturated red
    img[:, W // 2 :] = [0.75, 0.78, 0.82]  # hazy grey
    d = BuiltinDepth()(img)
    e = W // 2
    across_edge = np.abs(d[:, e - 3] - d[:, e + 2]).mean()
    across_flat = max(np.abs(d[:, c - 3] - d[:, c + 2]).mean() for c in (W // 4, 3 * W // 4))
    assert across_edge > 0.1
    assert across_edge > 5 * across_flat, (across_edge, across_flat)


def test_guided_filter_sharpens_a_blurred_step():
    from scipy import ndimage

    guide = np.zeros((64, 64, 3), np.float32)
    guide[:, 32:] = 1.0
    src = ndimage.gaussian_filter(guide[..., 0], sigma=(0, 6))  # blurred step, [64, 64]
    out = guided_filter(guide, src, radius=8, eps=1e-3)
    step_src = src[:, 34].mean() - src[:, 29].mean()
    step_out = out[:, 34].mean() - out[:, 29].mean()
    assert step_out > step_src + 0.2, (step_src, step_out)
    # ... and smooths a noisy map where the guide is flat.
    noisy = src + np.random.default_rng(5).normal(0, 0.1, src.shape).astype(np.float32)
    assert guided_filter(guide, noisy, 4, 1e-3)[:, :20].std() < 0.5 * noisy[:, :20].std()


def test_builtin_on_a_real_photo(astronaut):
    d = estimate_depth(astronaut.astype(np.float32) / 255.0)
    _check_protocol(d, astronaut.shape[:2])
    assert d.max() - d.min() > 0.9
    assert np.unique(d).size > 1000  # a continuous map, not a handful of levels
    np.testing.assert_array_equal(d, estimate_depth(astronaut))  # uint8 input gives the same map


def test_soft_and_exact_rank_normalization():
    x = np.array([[3.0, 1.0, 1.0, 2.0]], np.float32)
    np.testing.assert_allclose(rank_normalize(x), [[1.0, 1 / 6, 1 / 6, 2 / 3]], atol=1e-6)
    assert (rank_normalize(np.ones((3, 3))) == 0.5).all()
    # Tiny noise on a flat field is not stretched; a real step is.
    rng = np.random.default_rng(7)
    flat = 0.5 + 1e-3 * rng.standard_normal((50, 50)).astype(np.float32)
    r = soft_rank(flat, tol=0.05)
    assert r.max() - r.min() < 0.1
    step = flat.copy()
    step[:, 25:] += 0.5
    r = soft_rank(step, tol=0.05)
    assert r[:, 25:].min() - r[:, :25].max() > 0.3


# -- estimate_depth / registry / checks -------------------------------------------------------------


def test_registry_unknown_name_lists_known():
    with pytest.raises(PaintprocError) as e:
        get_estimator("depth-anything-v7")
    msg = str(e.value)
    assert "depth-anything-v7" in msg and "builtin" in msg and "\n" not in msg
    with pytest.raises(PaintprocError):
        estimate_depth(np.zeros((4, 4, 3), np.float32), estimator="nope")
    with pytest.raises(PaintprocError, match="bad options"):
        get_estimator("builtin", no_such_option=1)
    assert isinstance(get_estimator("builtin", w_center=0.0), BuiltinDepth)


def test_registry_plugs_in_an_estimator_and_checks_its_output():
    class Ramp:
        name = "ramp"

        def __call__(self, image):
            h, w = image.shape[:2]
            return np.broadcast_to(np.linspace(0, 1, w, dtype=np.float32), (h, w)).copy()

    class Broken:
        name = "broken"

        def __init__(self, out):
            self.out = out

        def __call__(self, image):
            return self.out

    saved = dict(depth_base._REGISTRY)
    try:
        register_estimator("ramp", Ramp)
        assert "ramp" in depth_base.available_estimators()
        d = estimate_depth(np.zeros((5, 6, 3), np.float32), estimator="ramp")
        assert d[0, -1] == 1.0 and d[0, 0] == 0.0
        img = np.zeros((5, 6, 3), np.float32)
        for bad in (np.zeros((5, 7)), np.full((5, 6), 2.0), np.full((5, 6), np.nan), np.zeros((5, 6, 1))):
            with pytest.raises(PaintprocError) as e:
                estimate_depth(img, estimator=Broken(bad))
            assert "broken" in str(e.value) and "\n" not in str(e.value)
    finally:
        depth_base._REGISTRY.clear()
        depth_base._REGISTRY.update(saved)


def test_validate_and_normalize_depth():
    assert validate_depth(np.arange(6.0).reshape(2, 3), "x").shape == (2, 3)
    for bad, word in [
        (np.zeros(5), "2-D"),
        (np.array([[1.0, np.nan]]), "NaN"),
        (np.array([[1.0, np.inf]]), "inf"),
        (np.full((3, 3), 7.0), "constant"),
        (np.array([[1e6, 1e6 + 1e-4]]), "constant"),  # range < 1e-6 relative
    ]:
        with pytest.raises(PaintprocError, match=word) as e:
            validate_depth(bad, "my-where")
        assert "my-where" in str(e.value) and "\n" not in str(e.value)
    validate_depth(np.full((3, 3), 7.0), "ok", allow_constant=True)
    n = normalize_depth(np.array([[2.0, 4.0], [3.0, 4.0]]))
    assert n.dtype == np.float32 and n.min() == 0.0 and n.max() == 1.0 and n[1, 0] == 0.5
    assert (normalize_depth(np.ones((2, 2))) == 0.5).all()


# -- depth files ------------------------------------------------------------------------------------


def _ramp(h, w):
    """Horizontal-and-vertical ramp, larger = nearer, [h, w] float64."""
    return np.add.outer(np.arange(h, dtype=np.float64), 2.0 * np.arange(w, dtype=np.float64))


def test_load_npy_2d_and_hw1(tmp_path):
    raw = _ramp(H, W)
    p = tmp_path / "a.npy"
    np.save(p, raw)
    d = load_depth_file(p, (H, W))
    _check_protocol(d, (H, W))
    np.testing.assert_allclose(d, normalize_depth(raw), atol=1e-6)
    p1 = tmp_path / "b.npy"
    np.save(p1, raw[..., None].astype(np.float32))
    np.testing.assert_allclose(load_depth_file(p1, (H, W)), d, atol=1e-6)
    # Via estimate_depth: the image's H, W are the target.
    np.testing.assert_allclose(estimate_depth(np.zeros((H, W, 3), np.float32), p), d, atol=1e-6)


def test_load_png_8bit_and_16bit_precision(tmp_path):
    raw = _ramp(H, W)
    p8 = tmp_path / "d8.png"
    Image.fromarray(np.round(normalize_depth(raw) * 255).astype(np.uint8)).save(p8)
    d8 = load_depth_file(p8, (H, W))
    _check_protocol(d8, (H, W))
    np.testing.assert_allclose(d8, normalize_depth(raw), atol=1 / 255 + 1e-6)
    assert d8[-1, -1] == 1.0 and d8[0, 0] == 0.0

    p16 = tmp_path / "d16.png"
    Image.fromarray(np.round(normalize_depth(raw) * 65535).astype(np.uint16)).save(p16)
    with Image.open(p16) as im:
        assert im.mode in ("I;16", "I")  # really a 16-bit file
    d16 = load_depth_file(p16, (H, W))
    _check_protocol(d16, (H, W))
    assert np.unique(d16).size > 256  # precision kept beyond 8 bits
    np.testing.assert_allclose(d16, normalize_depth(raw), atol=1e-4)

    prgb = tmp_path / "rgb.png"
    g = np.round(normalize_depth(raw) * 255).astype(np.uint8)
    Image.fromarray(np.stack([g, g, g], -1)).save(prgb)
    np.testing.assert_allclose(load_depth_file(prgb, (H, W)), d8, atol=1e-6)

    ptif = tmp_path / "f.tiff"
    Image.fromarray(raw.astype(np.float32), mode="F").save(ptif)
    np.testing.assert_allclose(load_depth_file(ptif, (H, W)), normalize_depth(raw), atol=1e-5)


def test_load_resizes_same_aspect_and_inverts_far_is_high(tmp_path):
    half = _ramp(H // 2, W // 2)
    p = tmp_path / "half.npy"
    np.save(p, half)
    d = load_depth_file(p, (H, W))
    _check_protocol(d, (H, W))
    assert d.min() == 0.0 and d.max() == 1.0
    np.testing.assert_allclose(d, normalize_depth(_ramp(H, W)), atol=0.03)  # a ramp resizes to a ramp
    # Larger = farther (metric depth): inverted so 1 = nearest.
    inv = load_depth_file(p, (H, W), far_is_high=True)
    np.testing.assert_allclose(inv, 1.0 - d, atol=1e-6)
    assert inv[0, 0] == 1.0
    np.testing.assert_allclose(
        estimate_depth(np.zeros((H, W, 3), np.float32), p, far_is_high=True), inv, atol=1e-6
    )
    # Aspect within 2 % is accepted (e.g. a model's rounded output size), and 1x1 targets work.
    np.save(tmp_path / "near.npy", _ramp(60, 91))
    _check_protocol(load_depth_file(tmp_path / "near.npy", (H, W)), (H, W))
    assert load_depth_file(p, (1, 1)).shape == (1, 1)


def test_load_errors_are_one_line_and_name_the_file(tmp_path):
    cases = []
    missing = tmp_path / "missing.npy"
    cases.append((missing, "not found"))
    wrong = tmp_path / "wrong_aspect.npy"
    np.save(wrong, _ramp(H, H))  # square map for a 3:2 image
    cases.append((wrong, "wrong shape"))
    nan = tmp_path / "nan.npy"
    a = _ramp(H, W)
    a[3, 4] = np.nan
    np.save(nan, a)
    cases.append((nan, "NaN"))
    inf = tmp_path / "inf.npy"
    a = _ramp(H, W)
    a[5, 6] = np.inf
    np.save(inf, a)
    cases.append((inf, "inf"))
    const = tmp_path / "const.npy"
    np.save(const, np.full((H, W), 3.0))
    cases.append((const, "constant"))
    const_png = tmp_path / "const.png"
    Image.fromarray(np.full((H, W), 9, np.uint8)).save(const_png)
    cases.append((const_png, "constant"))
    rgb_npy = tmp_path / "rgb.npy"
    np.save(rgb_npy, np.random.default_rng(0).random((H, W, 3)))
    cases.append((rgb_npy, "2-D"))
    text = tmp_path / "notes.png"
    text.write_text("this is not an image\n")
    cases.append((text, "cannot read"))
    text_npy = tmp_path / "notes.npy"
    text_npy.write_text("neither is this\n")
    cases.append((text_npy, "cannot read"))
    for path, word in cases:
        with pytest.raises(PaintprocError) as e:
            load_depth_file(path, (H, W))
        msg = _one_line_naming(e, path)
        assert word in msg, (path.name, msg)
    # estimate_depth reports the same errors.
    with pytest.raises(PaintprocError, match="wrong shape"):
        estimate_depth(np.zeros((H, W, 3), np.float32), wrong)


def test_sidecar_lookup_order(tmp_path):
    img = tmp_path / "photo.jpg"
    img.write_bytes(b"")
    assert sidecar_depth_path(img) is None
    (tmp_path / "photo_depth.png").write_bytes(b"x")
    assert sidecar_depth_path(img) == tmp_path / "photo_depth.png"
    (tmp_path / "photo_depth.npy").write_bytes(b"x")
    assert sidecar_depth_path(img) == tmp_path / "photo_depth.npy"
    (tmp_path / "photo.depth.png").write_bytes(b"x")
    assert sidecar_depth_path(img) == tmp_path / "photo.depth.png"
    (tmp_path / "photo.depth.npy").write_bytes(b"x")
    assert sidecar_depth_path(str(img)) == tmp_path / "photo.depth.npy"
    # Other images' sidecars and directories named like sidecars do not count.
    (tmp_path / "other.depth.npy").write_bytes(b"x")
    (tmp_path / "pic.depth.npy").mkdir()
    assert sidecar_depth_path(tmp_path / "pic.png") is None
