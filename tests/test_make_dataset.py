"""tools/make_dataset.py: shards + manifest, resume, splits, skipped items, and the pipeline reading them."""

import json
import pathlib
import sys

import jax
import numpy as np
import pytest

from paintproc_jax import parallel
from paintproc_jax.data import pipeline as pipeline_lib
from paintproc_jax.data.config import default_config
from paintproc_jax.data.samples import write_sample_folder

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tools"))
import make_dataset  # noqa: E402

ARGS = ["--size", "32", "--strokes", "24", "--layers", "2", "--levels", "2", "--fit-steps", "3", "--batch", "3",
        "--shard-size", "4", "--depth-work-size", "32", "--quiet"]


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    d = tmp_path_factory.mktemp("imgs")
    write_sample_folder(d, 9, min_side=48, max_side=80)
    (d / "zz_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    return d


@pytest.fixture(scope="module")
def built(images, tmp_path_factory):
    out = tmp_path_factory.mktemp("progs")
    assert make_dataset.main(["--images", str(images), "--out", str(out), *ARGS]) == 0
    return out


def test_manifest_counts_shards_and_skips(built):
    m = json.loads((built / "manifest.json").read_text())
    assert m["complete"] and m["records"] == 9 and m["skipped"] == 1
    assert [s["records"] for s in m["shards"]] == [4, 4, 1]  # 10 items in shards of 4, one unreadable
    assert "zz_broken.png" in m["skipped_items"][0]["key"]
    assert m["plan"]["strokes"] == 24 and "jax" in m["versions"]
    for s in m["shards"]:
        assert (built / s["file"]).exists()


def test_rerun_resumes_without_rebuilding(built, images):
    before = {p.name: p.stat().st_mtime_ns for p in built.glob("*.array_record")}
    assert make_dataset.main(["--images", str(images), "--out", str(built), *ARGS]) == 0
    after = {p.name: p.stat().st_mtime_ns for p in built.glob("*.array_record")}
    assert before == after


def test_interrupted_shard_is_rebuilt(images, tmp_path):
    assert make_dataset.main(["--images", str(images), "--out", str(tmp_path), *ARGS]) == 0
    victim = sorted(tmp_path.glob("*.array_record"))[1]
    data = victim.read_bytes()
    victim.unlink()  # as if the job died before renaming this shard into place
    assert make_dataset.main(["--images", str(images), "--out", str(tmp_path), *ARGS]) == 0
    assert victim.exists() and victim.read_bytes() == data  # deterministic rebuild


def test_splits_are_disjoint_and_merge_into_one_manifest(images, tmp_path):
    for i in range(2):
        assert make_dataset.main(["--images", str(images), "--out", str(tmp_path), "--split", str(i), "--num-splits", "2", *ARGS]) == 0
    m = json.loads((tmp_path / "manifest.json").read_text())
    assert m["complete"] and m["records"] + m["skipped"] == 10
    assert len({s["file"] for s in m["shards"]}) == len(m["shards"])


def test_pipeline_reads_program_shards(built):
    c = default_config()
    c.source = f"programs:{built}"
    c.size, c.frames, c.batch_size, c.workers = 32, 6, 4, 0
    pipe = pipeline_lib.make_pipeline(c, parallel.make_mesh(devices=jax.devices()[:1]))
    assert pipe.config.strokes == 24 and pipe.config.layers == 2  # taken from the manifest
    host = next(pipe)
    out = jax.tree.map(np.asarray, pipe.render(pipe.to_device(host)))
    assert out["clip"].shape == (4, 6, 32, 32, 3)
    np.testing.assert_allclose(out["clip"][:, 0], host["image"] / 255.0, atol=1e-6)
    # Fitted strokes still fit the static layout the pipeline renders them with.
    from paintproc_jax.strokes import raster

    slot = np.concatenate([np.full(n, w) for w, n in pipe.spec.layouts[0]])
    for i in range(4):
        need = 2 * np.ceil(raster.stroke_radius_px(host["params"][i], 32, int(host["medium"][i])))
        assert np.all(need[host["valid"][i]] <= slot[host["valid"][i]])


def test_bad_arguments(images, tmp_path, capsys):
    with pytest.raises(SystemExit):
        make_dataset.main(["--images", str(images), "--out", str(tmp_path), "--split", "2", "--num-splits", "2"])
    assert make_dataset.main(["--images", str(tmp_path / "none"), "--out", str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err
