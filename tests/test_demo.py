"""Tests for `paintproc demo`: the real server (a subprocess on a free loopback port) driven by
headless Chromium (Selenium) and by `gradio_client`, plus the output-folder sweeper.

Every paint here is tiny (coffee.jpg at 64 px: one compile shape for all of them). Every wait is
bounded in time. `PAINTPROC_DEMO_SCREENSHOT=docs/demo.png` makes the browser test paint at 256 px
and save its screenshot there (the README's picture).
"""

import json
import os
import pathlib
import re
import shutil
import socket
import struct
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import zlib

import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from paintproc_jax import demo
from paintproc_jax.metrics.stages import stage_indices
from paintproc_jax.strokes.schedule import split_frames

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::ResourceWarning")

ROOT = pathlib.Path(__file__).resolve().parents[1]
COFFEE = ROOT / "paintproc_jax" / "assets" / "coffee.jpg"  # 400 x 300: 64 x 48 at size 64
TINY = {"engine": "strokes", "medium": "oil", "strokes": 50, "size": 64, "order": "level-major", "seed": 0,
        "frames": 8, "fit_steps": 120}
API_ORDER = ("engine", "medium", "strokes", "size", "order", "seed", "frames", "fit_steps")
STARTUP_S, PAINT_S = 120, 240
SCREENSHOT = os.environ.get("PAINTPROC_DEMO_SCREENSHOT")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check, timeout_s: float, what: str, interval_s: float = 0.2):
    """Calls `check()` until it returns something truthy, at most `timeout_s` seconds."""
    deadline = time.monotonic() + timeout_s
    for _ in range(int(timeout_s / interval_s) + 1):
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            break
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def user_env() -> dict:
    """The environment of a user's command: one CPU device (not the tests' 8), the tests' compile cache."""
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env["PAINTPROC_CACHE"] = os.environ.get("PAINTPROC_TEST_CACHE", str(pathlib.Path.home() / ".cache" / "paintproc_jax_tests"))
    return env


class Server:
    def __init__(self, tmp: pathlib.Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.outputs = tmp / "outputs"
        self.outputs.mkdir()
        self.stale = self.outputs / "20000101-000000-stale"  # older than --keep-minutes: swept at start-up
        self.stale.mkdir()
        os.utime(self.stale, (0, 0))
        self.log_path = tmp / "server.log"
        env = {**user_env(), "GRADIO_TEMP_DIR": str(tmp / "gradio")}
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "paintproc_jax.cli", "demo", "--port", str(self.port), "--outputs", str(self.outputs),
             "--keep-minutes", "60"], stdout=self.log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        wait_for(self._up, STARTUP_S, f"the demo server at {self.url}", interval_s=0.25)

    def _up(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"the server exited with {self.proc.returncode}:\n{self.text()}")
        try:
            with urllib.request.urlopen(self.url, timeout=5) as r:
                return r.status == 200
        except OSError:
            return False

    def text(self) -> str:
        self.log.flush()
        return self.log_path.read_text()

    def runs(self) -> list[pathlib.Path]:
        return sorted(p for p in self.outputs.iterdir() if p.is_dir())

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.log.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("demo"))
    yield s
    s.stop()


@pytest.fixture(scope="module")
def client(server):
    return Client(server.url, verbose=False)


def paint_api(client, image, **settings):
    """Submits one paint through the API (the page's own endpoint); returns the job."""
    s = {**TINY, **settings}
    return client.submit(handle_file(str(image)), *(s[k] for k in API_ORDER), api_name="/paint")


def run_folder(summary: str, server: Server) -> pathlib.Path:
    name = re.search(r"run\s+`?(\d{8}-\d{6}-[0-9a-f]{8})", summary).group(1)  # markdown, or as the page shows it
    return server.outputs / name


def fetch(url: str) -> bytes:
    assert urllib.parse.urlparse(url).hostname == "127.0.0.1", url
    with urllib.request.urlopen(url, timeout=30) as r:
        assert r.status == 200
        return r.read()


# ------------------------------------------------------------------------------------- browser


def _chrome():
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not (binary and driver):
        if os.environ.get("PAINTPROC_REQUIRE_BROWSER"):
            pytest.fail("PAINTPROC_REQUIRE_BROWSER is set but chromium/chromedriver are not installed")
        pytest.skip("headless Chromium is not installed (apt-get install -y chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,2200",
                "--autoplay-policy=no-user-gesture-required", "--disable-gpu"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(driver), options=options)


def test_page_paints_an_upload_in_a_real_browser(server, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    settings = dict(TINY, size=256, strokes=400, frames=24, fit_steps=60) if SCREENSHOT else TINY
    browser = _chrome()
    try:
        browser.get(server.url)
        examples = wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#examples tbody tr"), 60, "the page")
        assert len(examples) == len(demo.EXAMPLES) >= 2
        examples[0].click()  # a bundled photo, then the user's own upload replaces it
        note = f"{demo.EXAMPLES[0].name}: 512×512 px"
        wait_for(lambda: note in browser.find_element(By.ID, "upload-note").text, 30, "the example's note")
        browser.find_element(By.CSS_SELECTOR, "#image-input button[aria-label=Clear]").click()
        upload = wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#image-input input[type=file]"), 30, "the drop zone")
        upload[0].send_keys(str(COFFEE))
        wait_for(lambda: "coffee.jpg: 400×300 px" in browser.find_element(By.ID, "upload-note").text, 30, "the upload note")
        for name in ("strokes", "size", "frames", "fit_steps"):
            field = browser.find_element(By.CSS_SELECTOR, f"#{name.replace('_', '-')} input")
            field.send_keys(Keys.CONTROL, "a")
            field.send_keys(str(settings[name]), Keys.TAB)
        browser.find_element(By.ID, "paint-button").click()

        shown = set()  # progress texts the page showed while it painted

        def video_ready():
            shown.update(re.findall(r"fitting strokes: step \d+/\d+ · PSNR [\d.]+ dB", browser.find_element(By.TAG_NAME, "body").text))
            return browser.execute_script("const v = document.querySelector('#video video');"
                                          "return v && v.src && v.readyState >= 2 ? [v.videoWidth, v.videoHeight] : null")

        width, height = wait_for(video_ready, PAINT_S, "the process video", interval_s=0.1)
        assert (width, height) == ((256, 192) if SCREENSHOT else (64, 48))
        assert shown, "no fit progress (stage + PSNR) was shown while painting"
        wait_for(lambda: browser.execute_script("return document.querySelector('#video video').currentTime > 0"), 30,
                 "the video to play")

        summary = browser.find_element(By.ID, "summary").text
        assert f"{settings['strokes']} strokes" in summary and "PSNR by fit step" in summary, summary
        loaded = "return [...document.querySelectorAll('%s img')].filter(i => i.complete && i.naturalWidth > 0).length"
        assert wait_for(lambda: browser.execute_script(loaded % "#contact-sheet") >= 1, 30, "the contact sheet")
        assert wait_for(lambda: browser.execute_script(loaded % "#depth") >= 1, 30, "the depth map")
        assert wait_for(lambda: browser.execute_script(loaded % "#stages") >= 4, 30, "the four stages")
        stages = browser.find_element(By.ID, "stages").text
        captions = re.findall(r"(1/\d+) · frame (\d+) · [\d.]+ dB", stages)
        assert [c[0] for c in captions] == list(demo.STAGE_LABELS), stages
        expected = stage_indices(settings["frames"], split_frames(settings["frames"])[0])  # the evaluation's rule
        assert [int(c[1]) for c in captions] == list(expected), stages

        links = {pathlib.PurePosixPath(urllib.parse.urlparse(a.get_attribute("href")).path).name: a.get_attribute("href")
                 for a in browser.find_elements(By.CSS_SELECTOR, "#downloads a[href]")}
        assert sorted(links) == sorted(demo.DOWNLOADS), links
        mp4, gif = fetch(links["process.mp4"]), fetch(links["process.gif"])
        assert mp4[4:8] == b"ftyp" and gif[:4] == b"GIF8"
        strokes = json.loads(fetch(links["strokes.json"]))
        assert strokes["meta"]["strokes"] == settings["strokes"] and strokes["meta"]["seed"] == 0
        assert b"<svg" in fetch(links["strokes.svg"])
        folder = run_folder(summary, server) / "process"
        assert fetch(links["process.mp4"]) == (folder / "process.mp4").read_bytes()  # this run's own file

        remote = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)"
                                        ".filter(u => !u.startsWith('data:') && new URL(u).hostname !== '127.0.0.1')")
        assert remote == [], f"the page fetched from other hosts (it must work offline): {remote}"
        browser.execute_script("window.scrollTo(0, 0)")
        shot = tmp_path / "demo.png"
        browser.save_screenshot(str(shot))
    finally:
        browser.quit()
    picture = np.asarray(Image.open(shot).convert("RGB"), np.float32)
    assert picture.shape[0] >= 1000 and picture.std() > 10  # the page, not a blank window
    if SCREENSHOT:
        pathlib.Path(SCREENSHOT).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, SCREENSHOT)


# ------------------------------------------------------------------------------------- gradio_client


def test_concurrent_requests_each_get_their_own_outputs(server, client):
    jobs = {seed: paint_api(client, COFFEE, seed=seed) for seed in (11, 12)}  # both queued at once
    results = {seed: job.result(timeout=PAINT_S) for seed, job in jobs.items()}
    folders = {seed: run_folder(r[-1], server) for seed, r in results.items()}
    assert folders[11] != folders[12]
    programs = {}
    for seed, folder in folders.items():
        names = {p.name for p in (folder / "process").iterdir()}
        assert {"process.mp4", "process.gif", "strokes.json", "strokes.svg", "contact_sheet.png", "depth.png"} <= names
        saved = json.loads((folder / "process" / "strokes.json").read_text())
        assert saved["meta"]["seed"] == seed
        served = json.loads(pathlib.Path(results[seed][4][2]).read_text())  # what the client downloaded
        assert served == saved
        programs[seed] = saved["strokes"]
    assert programs[11] != programs[12]
    assert not server.stale.exists(), "the start-up sweep left a folder older than --keep-minutes"


def test_a_page_result_is_what_paintproc_paint_makes(server, client, tmp_path):
    summary = paint_api(client, COFFEE, seed=5).result(timeout=PAINT_S)[-1]
    page = run_folder(summary, server) / "process"
    cli = tmp_path / "cli"
    argv = ["paint", COFFEE, "--out", cli, "--quiet", *(f"--{k.replace('_', '-')}={TINY[k]}" for k in TINY if k != "engine")]
    subprocess.run([sys.executable, "-m", "paintproc_jax.cli", *map(str, argv), "--seed=5"], check=True, timeout=PAINT_S,
                   env=user_env(), cwd=ROOT, capture_output=True)
    assert json.loads((page / "strokes.json").read_text())["strokes"] == json.loads((cli / "strokes.json").read_text())["strokes"]
    frames = sorted(p.name for p in (cli / "frames").iterdir())
    assert frames == sorted(p.name for p in (page / "frames").iterdir()) and len(frames) == TINY["frames"]
    for name in frames:
        assert (page / "frames" / name).read_bytes() == (cli / "frames" / name).read_bytes(), name


def test_the_shipped_diffusion_model_paints_from_the_page(server, client):
    video, sheet, depth, stages, downloads, summary = paint_api(client, COFFEE, engine="bundled", frames=9).result(timeout=PAINT_S)
    assert "diffusion bundled" in summary and "strokes" not in summary
    assert sorted(pathlib.Path(d).name for d in downloads) == ["process.gif", "process.mp4"]  # no strokes to download
    meta = json.loads((run_folder(summary, server) / "process" / "process.json").read_text())
    assert (meta["engine"], meta["frames"], meta["width"], meta["height"]) == ("diffusion", 9, 64, 48)
    assert len(stages) == 4 and pathlib.Path(video).name == "process.mp4"


def _png_header(width: int, height: int) -> bytes:
    """A PNG that claims width x height pixels and holds no pixel data (a decompression bomb's header)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


BAD_UPLOADS = {
    "notes.png": (b"these are not pixels\n", "notes.png is not an image this demo can read"),
    "empty.jpg": (b"", r"empty.jpg is empty \(0 bytes\)"),
    "big.png": (_png_header(10_000, 10_000), "big.png is too large: 10000x10000 pixels; the demo takes images up to 40 megapixels"),
    "bomb.png": (_png_header(100_000, 100_000), "bomb.png is too large"),
    "cut.jpg": (COFFEE.read_bytes()[:3000], r"cannot read image cut\.jpg"),  # a valid header: fails in the engine
}
BAD_SETTINGS = {
    "strokes": ({"strokes": 50_000}, "strokes must be between 1 and 5000 in the demo, got 50000"),
    "size": ({"size": 8}, "size must be between 16 and 1024 in the demo, got 8"),
    "frames": ({"frames": 100_000}, "frames must be between 3 and 240 in the demo, got 100000"),
    "fit_steps": ({"fit_steps": -1}, "fit steps must be between 0 and 500 in the demo, got -1"),
}


def test_bad_uploads_and_settings_get_their_message_and_the_server_keeps_serving(server, client, tmp_path):
    before = server.runs()
    for name, (data, message) in BAD_UPLOADS.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(AppError, match=message):
            paint_api(client, path).result(timeout=PAINT_S)
    for name, (settings, message) in BAD_SETTINGS.items():
        with pytest.raises(AppError, match=message):
            paint_api(client, COFFEE, **settings).result(timeout=PAINT_S)
    assert server.runs() == before  # failed runs leave no folder behind
    result = paint_api(client, COFFEE, seed=3).result(timeout=PAINT_S)  # the next request still works
    assert json.loads(pathlib.Path(result[4][2]).read_text())["meta"]["seed"] == 3
    assert server.proc.poll() is None


def test_a_second_server_on_a_taken_port_is_a_one_line_error(server):
    proc = subprocess.run([sys.executable, "-m", "paintproc_jax.cli", "demo", "--port", str(server.port)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines[-1] == f"paintproc: error: cannot serve on 127.0.0.1:{server.port}: the port is in use (pick another with --port)"
    assert "Traceback" not in proc.stderr


# ------------------------------------------------------------------------------------- in-process


def test_sweeper_deletes_old_folders_but_not_fresh_or_active_ones(tmp_path):
    folders = demo.RunFolders(tmp_path, max_age_s=60)
    old, fresh = tmp_path / "old", tmp_path / "fresh"
    old.mkdir(), fresh.mkdir()
    os.utime(old, (time.time() - 120,) * 2)
    active = folders.new()
    os.utime(active, (time.time() - 120,) * 2)  # old, but a paint is still writing into it
    assert folders.cleanup() == [old]
    assert fresh.exists() and active.exists()
    folders.release(active)
    assert folders.cleanup() == [active]
    assert fresh.exists()


@pytest.mark.parametrize("field, value, message", [
    ("strokes", 0, "strokes must be between 1 and 5000"), ("seed", 1.5, "seed must be a whole number"),
    ("frames", None, "frames must be a whole number"), ("medium", "crayon", "medium must be one of"),
    ("engine", "checkpoint", "engine must be one of strokes, bundled, got 'checkpoint'"),
])
def test_settings_out_of_range_are_refused_by_name(field, value, message):
    with pytest.raises(demo.PaintprocError, match=message):
        demo.Settings(**{field: value}).checked((demo.ENGINE_STROKES, demo.ENGINE_BUNDLED))


def test_demo_defaults_are_the_paint_command_defaults():
    from paintproc_jax.cli import PAINT_FRAMES, PAINT_SIZE, build_parser

    args = build_parser().parse_args(["paint", "x.jpg", "--out", "o"])
    d = demo.paint_defaults()
    assert (d["strokes"], d["fit_steps"], d["size"], d["frames"]) == (args.strokes, args.fit_steps, PAINT_SIZE, PAINT_FRAMES)
    assert all(getattr(demo.Settings(), k) == v for k, v in d.items())  # what an API call without settings gets


def test_demo_without_gradio_is_one_line_error(monkeypatch, capsys):
    from paintproc_jax.cli import main

    monkeypatch.setitem(sys.modules, "gradio", None)
    assert main(["demo"]) == 2
    assert capsys.readouterr().err.strip() == 'paintproc: error: the demo needs Gradio: pip install -e ".[demo]"'
