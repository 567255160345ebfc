"""Tests for paintproc_jax.io: image loading/saving, atomic writes, video, strokes JSON, SVG."""

import io
import json
import math
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from PIL import Image

from paintproc_jax.errors import PaintprocError
from paintproc_jax.io import (
    atomic_path,
    contact_sheet,
    list_images,
    load_image,
    load_program,
    mp4_available,
    program_to_dict,
    program_to_svg,
    resize_image,
    save_contact_sheet,
    save_png,
    save_program,
    save_svg,
    staged_dir,
    to_uint8,
    write_frames,
    write_gif,
    write_mp4,
)
from paintproc_jax.program import NUM_PARAMS, P, make_program


def _assert_one_line_error(excinfo, path):
    msg = str(excinfo.value)
    assert "\n" not in msg
    assert str(path) in msg


def _leftovers(directory):
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


# ----------------------------------------------------------------------------- images


@pytest.mark.parametrize("fmt,suffix,tol", [("JPEG", ".jpg", 0.08), ("PNG", ".png", 0.0), ("WEBP", ".webp", 0.08)])
def test_load_image_formats(tmp_path, astronaut, fmt, suffix, tol):
    path = tmp_path / f"astro{suffix}"
    Image.fromarray(astronaut).save(path, format=fmt, quality=95)
    img = load_image(path)
    assert img.shape == (512, 512, 3) and img.dtype == np.float32
    assert 0.0 <= img.min() and img.max() <= 1.0
    assert np.abs(img - astronaut / 255.0).mean() <= tol + 1e-6


def test_load_image_grayscale_and_1bit(tmp_path):
    gray = (np.arange(60).reshape(6, 10) * 4).astype(np.uint8)
    Image.fromarray(gray).save(tmp_path / "g.png")
    img = load_image(tmp_path / "g.png")
    assert img.shape == (6, 10, 3)
    np.testing.assert_allclose(img[..., 0], gray / 255.0, atol=1e-6)
    np.testing.assert_array_equal(img[..., 0], img[..., 2])

    Image.fromarray(gray > 100).convert("1").save(tmp_path / "b.bmp")
    bits = load_image(tmp_path / "b.bmp")
    assert set(np.unique(bits).tolist()) == {0.0, 1.0}


def test_load_image_rgba_over_white(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 255  # red
    rgba[..., 3] = 255
    rgba[0, 0, 3] = 0  # fully transparent -> white
    rgba[1, 1, 3] = 128  # half red over white
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    img = load_image(tmp_path / "a.png")
    np.testing.assert_allclose(img[0, 0], [1, 1, 1])
    np.testing.assert_allclose(img[2, 2], [1, 0, 0])
    np.testing.assert_allclose(img[1, 1], [1, 127 / 255, 127 / 255], atol=2e-3)


def test_load_image_palette_with_transparency(tmp_path):
    pal = Image.new("P", (3, 2), 1)
    pal.putpalette([0, 0, 0, 0, 0, 255] + [0] * 762)
    pal.putpixel((0, 0), 0)
    pal.save(tmp_path / "p.gif", transparency=0)
    img = load_image(tmp_path / "p.gif")
    np.testing.assert_allclose(img[0, 0], [1, 1, 1])  # transparent index -> white
    np.testing.assert_allclose(img[1, 2], [0, 0, 1])


def test_load_image_16bit_precision(tmp_path):
    ramp = np.tile(np.linspace(0, 65535, 2000).astype(np.uint16), (3, 1))  # [3, 2000]
    Image.fromarray(ramp).save(tmp_path / "g16.png")
    img = load_image(tmp_path / "g16.png")
    assert img.shape == (3, 2000, 3)
    assert len(np.unique(img[..., 0])) > 256
    np.testing.assert_allclose(img[0, -1], 1.0)
    small = load_image(tmp_path / "g16.png", size=1000)  # resize in float keeps the depth
    assert small.shape == (2, 1000, 3)
    assert len(np.unique(small[..., 0])) > 256


def test_load_image_cmyk_and_exif(tmp_path, astronaut):
    Image.fromarray(astronaut).convert("CMYK").save(tmp_path / "c.jpg", quality=95)
    assert load_image(tmp_path / "c.jpg").shape == (512, 512, 3)

    tall = np.zeros((20, 10, 3), np.uint8)  # stored 20 high x 10 wide
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees to display
    Image.fromarray(tall).save(tmp_path / "r.jpg", exif=exif)
    assert load_image(tmp_path / "r.jpg").shape == (10, 20, 3)


@pytest.mark.parametrize("hw,size,expected", [((1, 2), 64, (32, 64, 3)), ((3, 5), 64, (38, 64, 3)),
                                              ((1, 1), 7, (7, 7, 3)), ((5, 3), 10, (10, 6, 3))])
def test_load_image_upsamples_tiny(tmp_path, hw, size, expected):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (*hw, 3), dtype=np.uint8)).save(tmp_path / "t.png")
    img = load_image(tmp_path / "t.png", size=size)
    assert img.shape == expected
    assert img.dtype == np.float32 and img.min() >= 0.0 and img.max() <= 1.0


def test_load_image_downsamples_large_jpeg(tmp_path, astronaut):
    big = np.asarray(Image.fromarray(astronaut).resize((2048, 1536)))
    Image.fromarray(big).save(tmp_path / "big.jpg", quality=90)
    img = load_image(tmp_path / "big.jpg", size=256)
    assert img.shape == (192, 256, 3)
    ref = resize_image(big / 255.0, (192, 256))
    assert np.abs(img - ref).mean() < 0.03  # draft decoding + Lanczos stay close to a full decode


def test_resize_image_float_and_2d():
    img = np.random.default_rng(0).random((10, 20, 3), dtype=np.float32)
    assert resize_image(img, (5, 7)).shape == (5, 7, 3)
    assert resize_image(img[..., 0], (30, 40)).shape == (30, 40)
    const = np.full((9, 9, 2), 0.3, np.float32)
    np.testing.assert_allclose(resize_image(const, (4, 4)), 0.3, atol=1e-5)


def test_load_image_errors(tmp_path, astronaut):
    with pytest.raises(PaintprocError, match="does not exist") as e:
        load_image(tmp_path / "missing.png")
    _assert_one_line_error(e, tmp_path / "missing.png")

    with pytest.raises(PaintprocError, match="directory") as e:
        load_image(tmp_path)
    _assert_one_line_error(e, tmp_path)

    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(PaintprocError, match="empty") as e:
        load_image(tmp_path / "empty.jpg")
    _assert_one_line_error(e, tmp_path / "empty.jpg")

    (tmp_path / "text.png").write_text("hello\nthis is not a png\n")
    with pytest.raises(PaintprocError, match="cannot read image") as e:
        load_image(tmp_path / "text.png")
    _assert_one_line_error(e, tmp_path / "text.png")

    buf = io.BytesIO()
    Image.fromarray(astronaut).save(buf, format="JPEG", quality=90)
    data = buf.getvalue()
    (tmp_path / "half.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(PaintprocError, match="cannot read image") as e:
        load_image(tmp_path / "half.jpg", size=64)
    _assert_one_line_error(e, tmp_path / "half.jpg")


def test_load_image_too_large(tmp_path, monkeypatch):
    from paintproc_jax.io import images

    Image.new("RGB", (20, 10)).save(tmp_path / "big.png")
    monkeypatch.setattr(images, "MAX_PIXELS", 199)
    with pytest.raises(PaintprocError, match="too large") as e:
        load_image(tmp_path / "big.png")
    _assert_one_line_error(e, tmp_path / "big.png")


def test_list_images(tmp_path):
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    (tmp_path / ".hidden").mkdir()
    for name in ["b.PNG", "a.jpg", "sub/c.webp", "sub/deeper/d.tiff", ".hidden/e.png", ".f.png", "notes.txt"]:
        (tmp_path / name).write_bytes(b"x")
    found = list_images(tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in found] == ["a.jpg", "b.PNG", "sub/c.webp", "sub/deeper/d.tiff"]
    assert list_images(tmp_path / "notes.txt") == [tmp_path / "notes.txt"]

    (tmp_path / "none").mkdir()
    with pytest.raises(PaintprocError, match="no images found") as e:
        list_images(tmp_path / "none")
    _assert_one_line_error(e, tmp_path / "none")
    with pytest.raises(PaintprocError, match="does not exist"):
        list_images(tmp_path / "nope")


def test_to_uint8_and_save_png(tmp_path):
    assert to_uint8(np.array([-0.5, 0.0, 0.5, 1.0, 2.0, np.nan])).tolist() == [0, 0, 128, 255, 255, 0]
    img = np.random.default_rng(1).random((7, 9, 3), dtype=np.float32)
    save_png(tmp_path / "out" / "x.png", img)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "out" / "x.png")), to_uint8(img))
    save_png(tmp_path / "g.png", img[..., 0])
    assert Image.open(tmp_path / "g.png").mode == "L"
    assert _leftovers(tmp_path / "out") == []


# ----------------------------------------------------------------------------- atomic


def test_atomic_path_success_and_failure(tmp_path):
    final = tmp_path / "result.png"
    with atomic_path(final) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".png" and tmp.name.startswith(".")
        tmp.write_text("done")
        assert not final.exists()
    assert final.read_text() == "done"

    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "other.png") as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.png"]

    with pytest.raises(RuntimeError):  # an existing file is left untouched on failure
        with atomic_path(final) as tmp:
            tmp.write_text("new")
            raise RuntimeError("interrupted")
    assert final.read_text() == "done"


def test_staged_dir(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("keep")
    (out / "a.txt").write_text("old")
    (out / "sub").mkdir()
    (out / "sub" / "stale.txt").write_text("stale")
    with staged_dir(out) as stage:
        assert stage.parent == tmp_path and stage.name.startswith(".out.partial-")
        (stage / "a.txt").write_text("new")
        (stage / "sub").mkdir()
        (stage / "sub" / "fresh.txt").write_text("fresh")
        assert (out / "a.txt").read_text() == "old"
    assert (out / "a.txt").read_text() == "new"
    assert (out / "keep.txt").read_text() == "keep"
    assert sorted(p.name for p in (out / "sub").iterdir()) == ["fresh.txt"]  # replaced whole
    assert _leftovers(tmp_path) == []

    with pytest.raises(KeyboardInterrupt):
        with staged_dir(tmp_path / "fresh") as stage:
            (stage / "half.png").write_text("half")
            raise KeyboardInterrupt
    assert not (tmp_path / "fresh").exists()
    assert _leftovers(tmp_path) == []


# ----------------------------------------------------------------------------- video


def _frames(t=5, h=24, w=31):
    """[T, H, W, 3] float frames that differ from each other (a bar growing left to right)."""
    frames = np.ones((t, h, w, 3), np.float32)
    for i in range(t):
        frames[i, :, : (i + 1) * w // t] = [0.8, 0.2 + 0.1 * i, 0.1]
    return frames


def test_write_gif(tmp_path):
    frames = _frames()
    path = write_gif(tmp_path / "p.gif", frames, fps=10, hold_last_s=1.0)
    with Image.open(path) as gif:
        assert gif.n_frames == len(frames)
        assert gif.info.get("loop") == 0
        durations = []
        for i in range(gif.n_frames):
            gif.seek(i)
            durations.append(gif.info["duration"])
            np.testing.assert_allclose(np.asarray(gif.convert("RGB")) / 255.0, frames[i], atol=0.02)
    assert durations[0] == 100 and durations[-1] == 1100
    assert _leftovers(tmp_path) == []


@pytest.mark.skipif(not mp4_available(), reason="imageio-ffmpeg not installed")
def test_write_mp4_odd_size(tmp_path):
    import imageio.v2 as imageio

    frames = _frames(t=6, h=25, w=31)
    path = write_mp4(tmp_path / "p.mp4", frames, fps=12, hold_last_s=0.5)
    reader = imageio.get_reader(path, format="FFMPEG")
    try:
        read = [f for f in reader]
    finally:
        reader.close()
    assert len(read) >= len(frames)
    assert read[0].shape == (26, 32, 3)  # padded to even sizes
    assert np.abs(read[-1][:25, :31] / 255.0 - frames[-1]).mean() < 0.05
    assert _leftovers(tmp_path) == []


def test_write_frames(tmp_path):
    paths = write_frames(tmp_path / "frames", _frames(t=3))
    assert [p.name for p in paths] == ["frame_0000.png", "frame_0001.png", "frame_0002.png"]
    assert all(p.exists() for p in paths)


def test_contact_sheet(tmp_path):
    frames = _frames(t=20, h=10, w=12)
    sheet = contact_sheet(frames, num=8, cols=4, pad=4)
    assert sheet.dtype == np.uint8 and sheet.shape == (2 * 10 + 3 * 4, 4 * 12 + 5 * 4, 3)
    np.testing.assert_array_equal(sheet[4:14, 4:16], to_uint8(frames[0]))  # first frame top left
    np.testing.assert_array_equal(sheet[18:28, 52:64], to_uint8(frames[-1]))  # last frame bottom right
    assert (sheet[:4] == 255).all()  # white padding

    labelled = contact_sheet(frames, num=3, cols=3, labels=True)
    assert labelled.shape[0] > 10 + 2 * 4 and labelled.shape[1] == 3 * 12 + 4 * 4
    assert contact_sheet(frames[:2], num=8).shape == (10 + 8, 2 * 12 + 3 * 4, 3)
    save_contact_sheet(tmp_path / "sheet.png", frames, labels=[f"f{i}" for i in range(20)])
    assert Image.open(tmp_path / "sheet.png").size[0] == 4 * 12 + 5 * 4


# ----------------------------------------------------------------------------- strokes JSON


def _program(n=40, seed=0):
    rng = np.random.default_rng(seed)
    params = rng.random((n, NUM_PARAMS)).astype(np.float32)
    params[0, :4] = [0.1, 1e-7, np.pi, np.float32(1) / 3]
    params[1, P["angle"]] = -np.e
    params[2, P["bend"]] = np.nextafter(np.float32(0.5), np.float32(1))
    valid = np.ones(n, bool)
    valid[-5:] = False
    return make_program(
        params,
        layer=rng.integers(0, 3, n),
        level=rng.integers(0, 4, n),
        valid=valid,
        frame_ends=[n // 8, n // 2, n, n],
        medium="watercolor",
        canvas_hw=(0.75, 1.0),
        background=(0.95, 0.85, 0.8),
    )


def test_json_round_trip_bit_exact(tmp_path):
    program = _program()
    meta = {"source": "astro.jpg", "size": 512, "seed": 3, "order": "coarse_to_fine",
            "timings": {"fit_s": 1.25}, "numpy_scalar": np.float32(0.5), "array": np.arange(3)}
    path = save_program(tmp_path / "s.json", program, meta)
    loaded, loaded_meta = load_program(path)
    for name, a, b in zip(program._fields, program, loaded):
        a, b = np.asarray(a), np.asarray(b)
        assert a.dtype == b.dtype and a.shape == b.shape, name
        assert a.tobytes() == b.tobytes(), name
    assert loaded_meta["source"] == "astro.jpg" and loaded_meta["timings"] == {"fit_s": 1.25}
    assert loaded_meta["numpy_scalar"] == 0.5 and loaded_meta["array"] == [0, 1, 2]
    text = path.read_text()
    assert len(text.splitlines()) > program.num_strokes  # one stroke per line
    assert "0.1," in text  # shortest float32 text, not 0.10000000149011612
    assert _leftovers(tmp_path) == []


def test_program_to_dict_is_json_exact():
    program = _program(n=10, seed=1)
    d = json.loads(json.dumps(program_to_dict(program, {"k": 1})))
    assert d["format"] == "paintproc.strokes" and d["version"] == 1 and d["medium"] == "watercolor"
    np.testing.assert_array_equal(np.asarray(d["strokes"], np.float32), program.params)


def test_json_empty_program(tmp_path):
    program = make_program(np.zeros((0, NUM_PARAMS)))
    loaded, meta = load_program(save_program(tmp_path / "e.json", program))
    assert loaded.params.shape == (0, NUM_PARAMS) and meta == {}


def _write_json(path, d):
    path.write_text(json.dumps(d))
    return path


@pytest.mark.parametrize(
    "edit,match",
    [
        (lambda d: d.update(format="something.else"), "not a paintproc strokes file"),
        (lambda d: d.update(version=2), "unsupported version"),
        (lambda d: d.pop("layer"), "missing key"),
        (lambda d: d.update(param_names=["x"]), "param_names"),
        (lambda d: d["strokes"][1].pop(), "strokes"),
        (lambda d: d["strokes"][1].__setitem__(0, "a"), "strokes"),
        (lambda d: d["level"].pop(), "level"),
        (lambda d: d.update(medium="crayon"), "unknown medium"),
        (lambda d: d.update(frame_ends=[5, 3]), "frame_ends"),
        (lambda d: d["layer"].__setitem__(0, 2**40), "layer.*int32"),
        (lambda d: d["strokes"][0].__setitem__(2, 1e39), "non-finite"),
    ],
)
def test_json_errors(tmp_path, edit, match):
    d = program_to_dict(_program(n=6), {})
    edit(d)
    path = _write_json(tmp_path / "bad.json", d)
    with pytest.raises(PaintprocError, match=match) as e:
        load_program(path)
    _assert_one_line_error(e, path)


def test_json_file_errors(tmp_path):
    with pytest.raises(PaintprocError, match="does not exist") as e:
        load_program(tmp_path / "missing.json")
    _assert_one_line_error(e, tmp_path / "missing.json")

    (tmp_path / "broken.json").write_text('{"format": "paintproc.strokes",\n "version": ')
    with pytest.raises(PaintprocError, match="not valid JSON") as e:
        load_program(tmp_path / "broken.json")
    _assert_one_line_error(e, tmp_path / "broken.json")

    d = program_to_dict(_program(n=3), {})
    text = json.dumps(d).replace(json.dumps(d["strokes"][0][0]), "NaN", 1)
    (tmp_path / "nan.json").write_text(text)
    with pytest.raises(PaintprocError, match="non-finite") as e:
        load_program(tmp_path / "nan.json")
    _assert_one_line_error(e, tmp_path / "nan.json")

    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(PaintprocError):
        load_program(tmp_path / "list.json")


# ----------------------------------------------------------------------------- SVG


def test_svg_parses_and_draws_valid_strokes(tmp_path):
    program = _program()
    text = program_to_svg(program, size=800)
    root = ET.fromstring(text.encode())
    ns = {"svg": "http://www.w3.org/2000/svg"}
    assert root.get("viewBox") == "0 0 800 600"
    rect = root.find("svg:rect", ns)
    assert rect is not None and rect.get("fill") == "rgb(242,217,204)"
    paths = root.findall(".//svg:path", ns)
    assert len(paths) == int(program.valid.sum())
    assert all(p.get("stroke").startswith("rgb(") for p in paths)

    path = save_svg(tmp_path / "p.svg", program, size=256)
    assert len(ET.parse(path).getroot().findall(".//svg:path", ns)) == int(program.valid.sum())


def test_svg_stroke_geometry():
    params = np.zeros((1, NUM_PARAMS), np.float32)
    params[0, [P["x"], P["y"], P["length"], P["width"], P["angle"], P["bend"]]] = [0.5, 0.5, 0.5, 0.1, 0.0, 0.1]
    params[0, [P["r"], P["g"], P["b"], P["opacity"]]] = [1.0, 0.0, 0.0, 0.5]
    root = ET.fromstring(program_to_svg(make_program(params), size=100))
    (path,) = root.iter("{http://www.w3.org/2000/svg}path")
    nums = [float(v) for v in path.get("d").replace("M", "").replace("Q", " ").split()]
    # centre line spans length - width = 40 px; control point at 2 * bend * length = 10 px along +y
    np.testing.assert_allclose(nums, [30, 50, 50, 60, 70, 50], atol=1e-6)
    assert float(path.get("stroke-width")) == pytest.approx(10.0)
    assert path.get("stroke") == "rgb(255,0,0)" and float(path.get("stroke-opacity")) == 0.5
    mid_y = 0.25 * 50 + 0.5 * 60 + 0.25 * 50  # quadratic Bezier at t = 1/2
    assert mid_y - 50 == pytest.approx(0.1 * 50 * math.cos(0.0))  # sagitta = bend * length
