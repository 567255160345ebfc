"""Depth: the built-in estimator's cues, depth files, the estimator registry, bad files."""

import time

import numpy as np
import pytest
from PIL import Image

from paintproc_jax.depth import (BuiltinDepth, estimate_depth, get_estimator, load_depth_file, register_estimator,
                                 sidecar_depth_path)
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


def test_deterministic_and_fast_on_a_real_photo(astronaut):
    img = astronaut.astype(np.float32) / 255
    est = BuiltinDepth()
    t = time.perf_counter()
    a = est(img)
    elapsed = time.perf_counter() - t
    np.testing.assert_array_equal(a, est(img))
    assert a.shape == (512, 512) and a.min() == 0.0 and a.max() == 1.0
    assert elapsed < 5.0  # generous: it runs in data workers (tens of ms typically)


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
