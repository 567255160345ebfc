"""Tests for the `paintproc` command line (paint / fit / render): outputs, determinism, bad input.

Runs `paintproc_jax.cli.main` in-process (JAX compiles are shared across tests) with tiny
settings, plus subprocess runs (the installed console script, a fresh compilation cache).
"""

import contextlib
import io
import json
import os
import pathlib
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from PIL import Image

from paintproc_jax.cli import main
from paintproc_jax.io import load_image, load_program, mp4_available, to_uint8
from paintproc_jax.strokes.schedule import split_frames

pytestmark = pytest.mark.filterwarnings("ignore:os.fork\\(\\) was called:RuntimeWarning")

SIZE = 48
FRAMES = 6
TINY = ["--size", str(SIZE), "--strokes", "40", "--fit-steps", "3", "--quiet"]
PAINT = [*TINY, "--frames", str(FRAMES)]
# Photo is 512 wide x 384 high (4:3), so at --size 48 the canvas is 36 x 48 pixels.
PHOTO_HW = (384, 512)
OUT_HW = (36, 48)

FINAL_NAMES = ("process.gif", "process.mp4", "frames", "strokes.json", "strokes.svg", "contact_sheet.png", "depth.png", "process.json")

ERROR_LINE = re.compile(r"^paintproc: error: \S")
ARGPARSE_ERROR_LINE = re.compile(r"^paintproc( \w+)?: error: \S")


# --------------------------------------------------------------------------------------- helpers


def run_cli(*argv):
    """main(argv) in-process -> (exit code, stdout, stderr); argparse's SystemExit becomes a code."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    return code, out.getvalue(), err.getvalue()


def assert_user_error(code, out, err):
    """Non-zero exit, exactly one stderr line `paintproc: error: ...`, no traceback anywhere."""
    assert code == 2, (code, out, err)
    assert "Traceback" not in out + err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert ERROR_LINE.match(lines[0]), lines[0]


def assert_argparse_error(code, out, err):
    """argparse: exit 2, usage + exactly one `paintproc <cmd>: error: ...` line, no traceback."""
    assert code == 2, (code, out, err)
    assert "Traceback" not in out + err
    errors = [line for line in err.splitlines() if ARGPARSE_ERROR_LINE.match(line)]
    assert len(errors) == 1, err


def assert_nothing_written(out_dir: pathlib.Path):
    """No output under --out (final names or hidden temp entries) and no temp dir beside it."""
    if out_dir.exists():
        leftovers = sorted(str(p.relative_to(out_dir)) for p in out_dir.rglob("*"))
        assert leftovers == [], leftovers
    hidden = sorted(p.name for p in out_dir.parent.iterdir() if p.name.startswith("."))
    assert hidden == [], hidden


def assert_no_hidden(directory: pathlib.Path):
    hidden = sorted(str(p.relative_to(directory)) for p in directory.rglob(".*"))
    assert hidden == [], hidden


def read_rgb(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def frame_paths(out_dir: pathlib.Path) -> list[pathlib.Path]:
    return sorted((out_dir / "frames").glob("*.png"))


def assert_paint_outputs(out_dir: pathlib.Path, hw=OUT_HW):
    for name in ("process.gif", "strokes.json", "strokes.svg", "contact_sheet.png", "depth.png"):
        assert (out_dir / name).is_file(), name
        assert (out_dir / name).stat().st_size > 0, name
    if mp4_available():
        assert (out_dir / "process.mp4").is_file()
    frames = frame_paths(out_dir)
    assert [p.name for p in frames] == [f"frame_{i:04d}.png" for i in range(FRAMES)]
    for p in frames:
        assert read_rgb(p).shape == (*hw, 3)
    assert_no_hidden(out_dir)


def save_jpeg(path, rgb):
    Image.fromarray(rgb).save(path, format="JPEG", quality=92)
    return path


# -------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def photo_rgb():
    from skimage import data

    return np.ascontiguousarray(data.astronaut()[: PHOTO_HW[0], : PHOTO_HW[1]])  # [384, 512, 3] uint8


@pytest.fixture(scope="module")
def photo(tmp_path_factory, photo_rgb):
    """The astronaut, cropped to 512x384 (non-square), as a real JPEG file."""
    return save_jpeg(tmp_path_factory.mktemp("photo") / "astronaut.jpg", photo_rgb)


@pytest.fixture(scope="module")
def painted(tmp_path_factory, photo):
    """`paintproc paint photo` once (seed 0), shared by several tests."""
    out_dir = tmp_path_factory.mktemp("painted") / "out"
    code, out, err = run_cli("paint", photo, *PAINT, "--seed", "0", "--out", out_dir)
    return code, out, err, out_dir


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory, photo_rgb):
    """Two good images (RGBA PNG, grayscale PNG; both 4:3) and one corrupt file."""
    folder = tmp_path_factory.mktemp("folder") / "images"
    folder.mkdir()
    small = np.asarray(Image.fromarray(photo_rgb).resize((64, 48), Image.Resampling.LANCZOS))  # [48, 64, 3]
    alpha = np.tile(np.linspace(0, 255, 64).astype(np.uint8), (48, 1))  # transparent on the left
    Image.fromarray(np.dstack([small, alpha]), mode="RGBA").save(folder / "rgba.png")
    Image.fromarray(photo_rgb).convert("L").resize((128, 96)).save(folder / "gray.png")
    (folder / "broken.png").write_text("this is not an image\n")
    return folder


@pytest.fixture(scope="module")
def fitted(tmp_path_factory, photo):
    """`paintproc fit photo` once (seed 0)."""
    out_dir = tmp_path_factory.mktemp("fitted") / "out"
    code, out, err = run_cli("fit", photo, *TINY, "--seed", "0", "--out", out_dir)
    return code, out, err, out_dir


# ------------------------------------------------------------------------------------------ paint


def test_paint_writes_every_output(painted, photo):
    code, out, err, out_dir = painted
    assert code == 0, err
    assert "Traceback" not in out + err
    assert_paint_outputs(out_dir)
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(
        n for n in FINAL_NAMES if n != "process.mp4" or mp4_available()
    )
    assert sorted(p.name for p in out_dir.parent.iterdir() if p.name.startswith(".")) == []

    # Prints where it wrote what.
    assert str(photo) in out and str(out_dir) in out
    for name in ("process.gif", "frames/", "strokes.json", "strokes.svg", "contact_sheet.png", "depth.png"):
        assert name in out
    if mp4_available():
        assert "process.mp4" in out

    with Image.open(out_dir / "process.gif") as gif:
        assert gif.size == (OUT_HW[1], OUT_HW[0])
        assert gif.n_frames == FRAMES
    if mp4_available():
        assert (out_dir / "process.mp4").read_bytes()[4:8] == b"ftyp"
    with Image.open(out_dir / "depth.png") as im:
        assert im.size == (OUT_HW[1], OUT_HW[0])
    with Image.open(out_dir / "contact_sheet.png") as im:
        assert im.size[0] > OUT_HW[1] and im.size[1] > OUT_HW[0]
    root = ET.parse(out_dir / "strokes.svg").getroot()
    assert root.tag.endswith("svg")

    program, meta = load_program(out_dir / "strokes.json")
    assert meta["seed"] == 0 and meta["size"] == SIZE and meta["frames"] == FRAMES
    assert meta["medium"] == "oil" and meta["order"] == "level-major"  # the default order
    # process.json says where the stroke frames end (the stage metrics of tools/eval.py read it)
    process = json.loads((out_dir / "process.json").read_text())
    assert process["engine"] == "strokes" and process["stroke_frames"] == split_frames(FRAMES)[0] == FRAMES - 2
    assert 0 < int(np.sum(np.asarray(program.valid))) <= 40


def test_paint_starts_blank_and_ends_on_the_input(painted, photo):
    code, _, err, out_dir = painted
    assert code == 0, err
    frames = [read_rgb(p) for p in frame_paths(out_dir)]
    assert np.all(frames[0] == 255), "the first frame is the blank (white) canvas"
    target = to_uint8(load_image(photo, SIZE))
    assert target.shape == (*OUT_HW, 3)
    diff = np.abs(frames[-1].astype(int) - target.astype(int)).max()
    assert diff <= 1, diff
    # Something happens in between: the middle frames are neither blank nor the final image.
    middle = frames[len(frames) // 2]
    assert not np.all(middle == 255)


def test_paint_is_deterministic_per_seed(painted, photo, tmp_path):
    code, _, err, out_a = painted
    assert code == 0, err
    out_b, out_c = tmp_path / "b", tmp_path / "c"
    code, _, err = run_cli("paint", photo, *PAINT, "--seed", "0", "--out", out_b)
    assert code == 0, err
    assert (out_a / "strokes.json").read_text() == (out_b / "strokes.json").read_text()
    for fa, fb in zip(frame_paths(out_a), frame_paths(out_b), strict=True):
        assert fa.read_bytes() == fb.read_bytes(), fa.name
        np.testing.assert_array_equal(read_rgb(fa), read_rgb(fb))
    assert (out_a / "process.gif").read_bytes() == (out_b / "process.gif").read_bytes()
    assert (out_a / "strokes.svg").read_text() == (out_b / "strokes.svg").read_text()

    code, _, err = run_cli("paint", photo, *PAINT, "--seed", "1", "--out", out_c)
    assert code == 0, err
    pa, _ = load_program(out_a / "strokes.json")
    pc, meta_c = load_program(out_c / "strokes.json")
    assert meta_c["seed"] == 1
    assert not np.array_equal(np.asarray(pa.params), np.asarray(pc.params))


def test_paint_with_depth_file_medium_and_order(photo, tmp_path):
    depth = np.tile(np.linspace(0.0, 5.0, 40, dtype=np.float32), (30, 1))  # [30, 40], nearer to the right
    depth_path = tmp_path / "depth.npy"
    np.save(depth_path, depth)
    out_dir = tmp_path / "out"
    code, out, err = run_cli(
        "paint", photo, *PAINT, "--medium", "watercolor", "--order", "layer-major", "--depth", depth_path,
        "--out", out_dir,
    )
    assert code == 0, err
    assert "Traceback" not in out + err
    assert_paint_outputs(out_dir)
    program, meta = load_program(out_dir / "strokes.json")
    assert meta["medium"] == "watercolor" and meta["order"] == "layer-major"
    assert meta["depth"] == str(depth_path)
    with Image.open(out_dir / "depth.png") as im:
        d = np.asarray(im.convert("L"), np.float32)
    assert d.shape == OUT_HW
    assert d[:, -8:].mean() > d[:, :8].mean() + 100  # the given map, 1 = nearest = white
    frames = [read_rgb(p) for p in frame_paths(out_dir)]
    assert np.all(frames[0] == 255)
    assert np.abs(frames[-1].astype(int) - to_uint8(load_image(photo, SIZE)).astype(int)).max() <= 1


def test_paint_folder_skips_corrupt_files(image_folder, tmp_path):
    out_dir = tmp_path / "out"
    # --fit-steps 0 (plan only): each image has its own render layout, so fitting costs a compile each.
    code, out, err = run_cli("paint", image_folder, *PAINT, "--fit-steps", "0", "--out", out_dir)
    assert code == 1, err  # some images done, some skipped
    assert "Traceback" not in out + err
    assert sorted(p.name for p in out_dir.iterdir()) == ["gray", "rgba"]
    for stem in ("gray", "rgba"):
        assert_paint_outputs(out_dir / stem)
        assert str(out_dir / stem) in out
        last = read_rgb(frame_paths(out_dir / stem)[-1])
        target = to_uint8(load_image(image_folder / f"{stem}.png", SIZE))
        assert np.abs(last.astype(int) - target.astype(int)).max() <= 1
    # RGBA is composited over white: its transparent left edge ends up white.
    assert read_rgb(frame_paths(out_dir / "rgba")[-1])[:, 0].min() >= 250
    gray_last = read_rgb(frame_paths(out_dir / "gray")[-1]).astype(int)
    assert np.abs(gray_last[..., 0] - gray_last[..., 1]).max() <= 1
    warnings = [line for line in err.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "broken.png" in warnings[0]
    assert "paintproc: error" not in err
    assert_no_hidden(tmp_path)


def test_paint_folder_with_one_image_still_uses_a_subfolder(photo, tmp_path):
    """Contract: for a DIR input, one subfolder per image stem under --out (even for one image)."""
    folder = tmp_path / "one"
    folder.mkdir()
    (folder / "astronaut.jpg").write_bytes(photo.read_bytes())
    out_dir = tmp_path / "out"
    code, out, err = run_cli("paint", folder, *PAINT, "--out", out_dir)
    assert code == 0, err
    assert sorted(p.name for p in out_dir.iterdir()) == ["astronaut"]
    assert_paint_outputs(out_dir / "astronaut")


def test_interrupted_paint_leaves_nothing_behind(photo, tmp_path, monkeypatch):
    import paintproc_jax.io as pio
    from paintproc_jax.errors import PaintprocError

    def fail(*args, **kwargs):
        raise PaintprocError("disk full (simulated)")

    monkeypatch.setattr(pio, "save_svg", fail)  # cmd_paint imports it at call time, mid-way through writing
    out_dir = tmp_path / "out"
    assert_user_error(*run_cli("paint", photo, *PAINT, "--out", out_dir))
    assert_nothing_written(out_dir)

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pio, "save_svg", interrupt)
    code, out, err = run_cli("paint", photo, *PAINT, "--out", out_dir)
    assert code == 130 and "Traceback" not in out + err
    assert_nothing_written(out_dir)


def test_a_corrupt_compilation_cache_entry_recompiles_instead_of_crashing(photo, tmp_path):
    """The persistent cache (PAINTPROC_CACHE) may hold a truncated or foreign file: the run recompiles
    and paints the same strokes."""
    env = dict(os.environ, PAINTPROC_CACHE=str(tmp_path / "cache"))
    args = [sys.executable, "-m", "paintproc_jax.cli", "paint", str(photo), *map(str, PAINT), "--no-mp4", "--quiet"]
    first = subprocess.run([*args, "--out", str(tmp_path / "a")], env=env, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr
    entries = list((tmp_path / "cache" / "jax").glob("*-cache"))
    assert entries, "the fit step should have been cached"
    for entry in entries:
        entry.write_bytes(b"not a compiled program")
    second = subprocess.run([*args, "--out", str(tmp_path / "b")], env=env, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0 and "Traceback" not in second.stderr, second.stderr
    assert (tmp_path / "a" / "strokes.json").read_bytes() == (tmp_path / "b" / "strokes.json").read_bytes()


# ------------------------------------------------------------------------------------ fit + render


def test_fit_writes_one_json_per_image(fitted, photo):
    code, out, err, out_dir = fitted
    assert code == 0, err
    assert "Traceback" not in out + err
    assert sorted(p.name for p in out_dir.iterdir()) == ["astronaut.json"]
    assert str(out_dir / "astronaut.json") in out
    program, meta = load_program(out_dir / "astronaut.json")
    assert meta["seed"] == 0 and meta["size"] == SIZE and meta["strokes"] == 40
    np.testing.assert_allclose(np.asarray(program.canvas_hw), [0.75, 1.0], rtol=1e-6)
    assert 0 < int(np.sum(np.asarray(program.valid))) <= 40


def test_fit_is_deterministic_per_seed(fitted, photo, tmp_path):
    code, _, err, out_a = fitted
    assert code == 0, err
    code, _, err = run_cli("fit", photo, *TINY, "--seed", "0", "--out", tmp_path)
    assert code == 0, err
    a = json.loads((out_a / "astronaut.json").read_text())
    b = json.loads((tmp_path / "astronaut.json").read_text())
    for d in (a, b):
        d["meta"].pop("fit_seconds_batch", None)  # wall-clock timing, the one field allowed to vary
    assert a == b


def test_fit_folder(image_folder, tmp_path):
    code, out, err = run_cli("fit", image_folder, *TINY, "--out", tmp_path / "out")
    assert code == 1, err
    assert "Traceback" not in out + err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["gray.json", "rgba.json"]
    for name in ("gray.json", "rgba.json"):
        load_program(tmp_path / "out" / name)
    assert "broken.png" in err and "paintproc: error" not in err


def test_fit_folder_same_stem_different_extension_does_not_overwrite(photo_rgb, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    small = Image.fromarray(photo_rgb).resize((64, 48))
    small.save(folder / "pic.png")
    small.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(folder / "pic.jpg", quality=92)
    out_dir = tmp_path / "out"
    code, out, err = run_cli("fit", folder, *TINY, "--fit-steps", "0", "--out", out_dir)  # naming only: no fit
    assert code == 0, err
    written = sorted(p.name for p in out_dir.iterdir())
    assert len(written) == 2, f"two images, but only {written} written (one overwrote the other)"


def test_render_keeps_aspect_at_any_size(fitted, tmp_path):
    code, _, err, fit_dir = fitted
    assert code == 0, err
    src = fit_dir / "astronaut.json"
    for size in (SIZE, 2 * SIZE):
        dest = tmp_path / f"render_{size}.png"
        code, out, err = run_cli("render", src, "--size", size, "--out", dest)
        assert code == 0, err
        assert "Traceback" not in out + err
        assert str(dest) in out
        img = read_rgb(dest)
        h, w = img.shape[:2]
        assert max(h, w) == size == w
        assert h == round(size * PHOTO_HW[0] / PHOTO_HW[1])
        assert img.std() > 5  # strokes were drawn, not a blank canvas
    assert_no_hidden(tmp_path)


def test_render_of_paint_strokes(painted, tmp_path):
    code, _, err, out_dir = painted
    assert code == 0, err
    dest = tmp_path / "final.png"
    code, out, err = run_cli("render", out_dir / "strokes.json", "--size", 64, "--out", dest)
    assert code == 0, err
    assert read_rgb(dest).shape == (48, 64, 3)


# -------------------------------------------------------------------------------------- bad input


def _text_png(tmp_path, photo):
    p = tmp_path / "x.png"
    p.write_text("hello, I am not a PNG\n")
    return p


def _truncated_jpeg(tmp_path, photo):
    data = photo.read_bytes()
    p = tmp_path / "truncated.jpg"
    p.write_bytes(data[: len(data) // 2])
    return p


def _empty_file(tmp_path, photo):
    p = tmp_path / "empty.jpg"
    p.write_bytes(b"")
    return p


def _empty_folder(tmp_path, photo):
    p = tmp_path / "nothing_here"
    p.mkdir()
    (p / "notes.txt").write_text("no images")
    return p


def _only_corrupt_folder(tmp_path, photo):
    p = tmp_path / "corrupt_only"
    p.mkdir()
    (p / "a.png").write_text("nope")
    (p / "b.jpg").write_bytes(photo.read_bytes()[:1000])
    return p


BAD_IMAGES = {
    "missing": lambda tmp_path, photo: tmp_path / "does_not_exist.jpg",
    "text_named_png": _text_png,
    "truncated_jpeg": _truncated_jpeg,
    "empty_file": _empty_file,
    "folder_without_images": _empty_folder,
}


@pytest.mark.parametrize("command", ["paint", "fit"])
@pytest.mark.parametrize("case", sorted(BAD_IMAGES))
def test_bad_image_is_one_line_error(command, case, photo, tmp_path):
    bad = BAD_IMAGES[case](tmp_path, photo)
    out_dir = tmp_path / "out"
    args = PAINT if command == "paint" else TINY
    code, out, err = run_cli(command, bad, *args, "--out", out_dir)
    assert_user_error(code, out, err)
    assert_nothing_written(out_dir)


def test_folder_with_only_corrupt_files_fails(photo, tmp_path):
    folder = _only_corrupt_folder(tmp_path, photo)
    out_dir = tmp_path / "out"
    code, out, err = run_cli("paint", folder, *PAINT, "--out", out_dir)
    assert code == 2 and "Traceback" not in out + err
    lines = err.splitlines()
    assert sum(bool(ERROR_LINE.match(line)) for line in lines) == 1 and ERROR_LINE.match(lines[-1])
    assert sum("warning" in line for line in lines) == 2
    assert_nothing_written(out_dir)


def _depth_wrong_aspect(tmp_path):
    np.save(tmp_path / "d.npy", np.random.default_rng(0).random((40, 40), dtype=np.float32))
    return tmp_path / "d.npy"


def _depth_with(value):
    def make(tmp_path):
        d = np.random.default_rng(0).random((30, 40), dtype=np.float32)
        d[3, 5] = value
        np.save(tmp_path / "d.npy", d)
        return tmp_path / "d.npy"

    return make


def _depth_constant(tmp_path):
    np.save(tmp_path / "d.npy", np.full((30, 40), 0.7, np.float32))
    return tmp_path / "d.npy"


def _depth_constant_png(tmp_path):
    Image.fromarray(np.full((30, 40), 128, np.uint8)).save(tmp_path / "d.png")
    return tmp_path / "d.png"


def _depth_not_an_array(tmp_path):
    (tmp_path / "d.npy").write_text("not numpy")
    return tmp_path / "d.npy"


BAD_DEPTHS = {
    "missing": lambda tmp_path: tmp_path / "no_depth.npy",
    "wrong_aspect": _depth_wrong_aspect,
    "nan": _depth_with(np.nan),
    "inf": _depth_with(np.inf),
    "neg_inf": _depth_with(-np.inf),
    "constant": _depth_constant,
    "constant_png": _depth_constant_png,
    "not_npy": _depth_not_an_array,
}


@pytest.mark.parametrize("case", sorted(BAD_DEPTHS))
def test_bad_depth_is_one_line_error(case, photo, tmp_path):
    depth = BAD_DEPTHS[case](tmp_path)
    out_dir = tmp_path / "out"
    code, out, err = run_cli("paint", photo, *PAINT, "--depth", depth, "--out", out_dir)
    assert_user_error(code, out, err)
    assert str(depth) in err
    assert_nothing_written(out_dir)


BAD_FLAGS = {
    "strokes_0": ["paint", "{photo}", *TINY, "--frames", "6", "--strokes", "0"],
    "strokes_text": ["paint", "{photo}", *TINY, "--frames", "6", "--strokes", "many"],
    "size_0": ["paint", "{photo}", *TINY, "--frames", "6", "--size", "0"],
    "size_huge": ["paint", "{photo}", *TINY, "--frames", "6", "--size", "100000"],
    "size_negative": ["paint", "{photo}", *TINY, "--frames", "6", "--size", "-48"],
    "frames_1": ["paint", "{photo}", *TINY, "--frames", "1"],
    "frames_2": ["paint", "{photo}", *TINY, "--frames", "2"],
    "medium_unknown": ["paint", "{photo}", *PAINT, "--medium", "crayon"],
    "order_unknown": ["paint", "{photo}", *PAINT, "--order", "random"],
    "paint_no_out": ["paint", "{photo}", *PAINT],
    "fit_no_strokes": ["fit", "{photo}", "--size", "48", "--out", "{out}"],
    "fit_no_size": ["fit", "{photo}", "--strokes", "40", "--out", "{out}"],
    "fit_strokes_0": ["fit", "{photo}", "--size", "48", "--strokes", "0"],
    "render_size_0": ["render", "{photo}", "--size", "0"],
    "render_size_huge": ["render", "{photo}", "--size", "100000"],
    "no_command": [],
    "unknown_command": ["draw", "{photo}"],
}


@pytest.mark.parametrize("case", sorted(BAD_FLAGS))
def test_bad_flags_are_argparse_errors(case, photo, tmp_path):
    out_dir = tmp_path / "out"
    argv = [a.format(photo=photo, out=out_dir) for a in BAD_FLAGS[case]]
    if "--out" not in argv and argv and argv[0] in ("paint", "fit", "render") and case != "paint_no_out":
        argv += ["--out", str(out_dir / "x.png") if argv[0] == "render" else str(out_dir)]
    assert_argparse_error(*run_cli(*argv))
    assert_nothing_written(out_dir)


@pytest.mark.parametrize("extra", [["--layers", "0"], ["--levels", "99"]])
def test_bad_engine_options_are_one_line_errors(extra, photo, tmp_path):
    out_dir = tmp_path / "out"
    assert_user_error(*run_cli("paint", photo, *PAINT, *extra, "--out", out_dir))
    assert_nothing_written(out_dir)


@pytest.mark.parametrize(
    "extra", [["--fps", "0"], ["--fps", "-5"], ["--fps", "nan"], ["--seed", "-1"]], ids=lambda e: " ".join(e)
)
def test_bad_fps_or_seed_is_one_line_error(extra, photo, tmp_path):
    out_dir = tmp_path / "out"
    try:
        result = run_cli("paint", photo, *PAINT, "--fit-steps", "0", *extra, "--out", out_dir)
    except Exception as e:  # an uncaught exception in main() is a traceback for the user
        pytest.fail(f"paintproc paint {' '.join(extra)} raised {type(e).__name__}: {e} (a traceback for the user)")
    code, out, err = result
    if code == 2 and "usage:" in err:
        assert_argparse_error(code, out, err)
    else:
        assert_user_error(code, out, err)
    assert_nothing_written(out_dir)


def test_paint_folder_with_depth_flag_is_one_line_error(image_folder, tmp_path):
    out_dir = tmp_path / "out"
    depth = np.save(tmp_path / "d.npy", np.random.default_rng(0).random((30, 40))) or tmp_path / "d.npy"
    assert_user_error(*run_cli("paint", image_folder, *PAINT, "--depth", depth, "--out", out_dir))
    assert_nothing_written(out_dir)


def _bad_json(tmp_path):
    (tmp_path / "s.json").write_text("{not json")
    return tmp_path / "s.json"


def _wrong_format_json(tmp_path):
    (tmp_path / "s.json").write_text(json.dumps({"format": "something-else", "strokes": []}))
    return tmp_path / "s.json"


def _nan_json(tmp_path):
    (tmp_path / "s.json").write_text('{"format": "paintproc.strokes", "version": 1, "strokes": [[NaN]]}')
    return tmp_path / "s.json"


BAD_RENDER = {
    "missing": lambda tmp_path: tmp_path / "missing.json",
    "not_json": _bad_json,
    "wrong_format": _wrong_format_json,
    "nan": _nan_json,
    "directory": lambda tmp_path: tmp_path,
}


@pytest.mark.parametrize("case", sorted(BAD_RENDER))
def test_render_bad_strokes_file_is_one_line_error(case, tmp_path):
    src = BAD_RENDER[case](tmp_path)
    dest = tmp_path / "out" / "final.png"
    assert_user_error(*run_cli("render", src, "--size", SIZE, "--out", dest))
    assert_nothing_written(dest.parent)


@pytest.mark.parametrize("extra", [["--out", "{out}/final.jpg"], ["--softness", "-1"]])
def test_render_bad_options_are_one_line_errors(extra, fitted, tmp_path):
    code, _, err, fit_dir = fitted
    assert code == 0, err
    out_dir = tmp_path / "out"
    argv = ["render", fit_dir / "astronaut.json", "--size", SIZE, *[a.format(out=out_dir) for a in extra]]
    if "--out" not in extra:
        argv += ["--out", out_dir / "final.png"]
    assert_user_error(*run_cli(*argv))
    assert_nothing_written(out_dir)


# ----------------------------------------------------------------------------------- entry point


def test_console_script_entry_point(photo, tmp_path):
    """The installed `paintproc` script: --help works; bad input is one line, exit 2, no traceback."""
    exe = pathlib.Path(sys.executable).parent / "paintproc"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "paintproc_jax.cli"]
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}

    res = subprocess.run([*cmd, "--help"], capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0, res.stderr
    for word in ("paint", "fit", "render"):
        assert word in res.stdout

    bad = _text_png(tmp_path, photo)
    out_dir = tmp_path / "out"
    res = subprocess.run(
        [*cmd, "paint", str(bad), *PAINT, "--out", str(out_dir)], capture_output=True, text=True, env=env, timeout=120
    )
    assert_user_error(res.returncode, res.stdout, res.stderr)
    assert str(bad) in res.stderr
    assert_nothing_written(out_dir)
