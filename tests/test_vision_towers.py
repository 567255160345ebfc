"""DINOv2 and CLIP image towers: parity with transformers on tiny random models, key mapping, loaders."""

import dataclasses
import json
import re

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import jax  # noqa: E402
from flax import nnx  # noqa: E402
from safetensors.numpy import save_file  # noqa: E402

from paintproc_jax.errors import PaintprocError  # noqa: E402
from paintproc_jax.models import clip_vision as cv  # noqa: E402
from paintproc_jax.models import dinov2 as dv  # noqa: E402
from paintproc_jax.models.vit import interpolate_pos_table  # noqa: E402

TOL = 1e-4


def _randomise(model, seed):
    """Every parameter perturbed (LayerNorm/LayerScale would otherwise be constants the test cannot see)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.2 * torch.randn(p.shape, generator=g))
    return model.eval()


def _sd(model):
    return {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}


def _nchw(x):
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def _dinov2_hf(seed=0, swiglu=False):
    torch.manual_seed(seed)
    cfg = transformers.Dinov2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, image_size=56,
                                    patch_size=14, use_swiglu_ffn=swiglu, attn_implementation="eager")
    return _randomise(transformers.Dinov2Model(cfg), seed)


def _hub_names(sd):
    """transformers 5.x DINOv2 names -> the old names the Hub checkpoints carry."""
    out = {}
    for k, v in sd.items():
        k = (k.replace(".attention.q_proj.", ".attention.attention.query.")
             .replace(".attention.k_proj.", ".attention.attention.key.")
             .replace(".attention.v_proj.", ".attention.attention.value.")
             .replace(".attention.o_proj.", ".attention.output.dense.")
             .replace(".mlp.down_proj.", ".mlp.weights_out."))
        out[k] = v
    for k in [k for k in out if ".mlp.gate_proj." in k]:  # SwiGLU: gate and up fused as weights_in
        up = k.replace("gate_proj", "up_proj")
        out[k.replace("gate_proj", "weights_in")] = np.concatenate([out.pop(k), out.pop(up)], axis=0)
    return out


@pytest.mark.parametrize("offset", [0.0, 0.1])
@pytest.mark.parametrize("size", [(37, 37, 16, 16), (4, 4, 3, 6), (4, 4, 9, 7)])
def test_pos_table_interpolation_matches_torch(size, offset):
    g, _, h, w = size
    table = np.random.default_rng(1).standard_normal((1 + g * g, 8)).astype(np.float32)
    grid = torch.from_numpy(table[1:]).reshape(1, g, g, 8).permute(0, 3, 1, 2)
    kw = dict(scale_factor=((h + offset) / g, (w + offset) / g)) if offset else dict(size=(h, w))
    ref = torch.nn.functional.interpolate(grid, mode="bicubic", align_corners=False, **kw)
    ref = ref.permute(0, 2, 3, 1).reshape(-1, 8).numpy()
    ours = np.asarray(interpolate_pos_table(table, 14 * h, 14 * w + 3, 14, offset))  # remainder pixels ignored
    assert ours.shape == (1 + h * w, 8)
    np.testing.assert_array_equal(ours[0], table[0])
    assert np.abs(ours[1:] - ref).max() < 1e-5


@pytest.mark.parametrize("hw", [(56, 56), (42, 56)])
def test_dinov2_matches_transformers(hw):
    tm = _dinov2_hf()
    config = dv.config_from_hf(tm.config.to_dict())
    assert config.image_size == 56 and config.layer_norm_eps == 1e-6
    model = dv.dinov2_from_torch(_sd(tm), config)
    x = np.random.default_rng(0).standard_normal((2, *hw, 3)).astype(np.float32)
    with torch.no_grad():
        ref = tm(_nchw(x), output_hidden_states=True)
        tap = tm.layernorm(ref.hidden_states[1]).numpy()  # after block 0, final norm applied
    out = nnx.jit(lambda m, p: m(p, out_layers=(0, -1)))(model, x)
    diffs = {
        "cls": np.abs(np.asarray(out["cls"]) - ref.pooler_output.numpy()).max(),
        "patch": np.abs(np.asarray(out["patch_tokens"]) - ref.last_hidden_state[:, 1:].numpy()).max(),
        "layer0": np.abs(np.asarray(out["hidden_states"][0]) - tap).max(),
        "last": np.abs(np.asarray(out["hidden_states"][1]) - ref.last_hidden_state.numpy()).max(),
    }
    print(f"DINOv2 {hw} max abs diffs: {diffs}")
    assert out["patch_tokens"].shape == (2, (hw[0] // 14) * (hw[1] // 14), 32)
    assert max(diffs.values()) < TOL, diffs


@pytest.mark.parametrize("swiglu", [False, True])
def test_dinov2_hub_key_names(swiglu):
    tm = _dinov2_hf(seed=3, swiglu=swiglu)
    sd = _sd(tm)
    hub = _hub_names(sd)
    assert "encoder.layer.0.attention.attention.query.weight" in hub and "embeddings.mask_token" in hub
    config = dv.config_from_hf(tm.config.to_dict())
    new, old = dv.dinov2_params_from_torch(sd, config), dv.dinov2_params_from_torch(hub, config)
    for a, b in zip(jax.tree_util.tree_leaves(new), jax.tree_util.tree_leaves(old), strict=True):
        np.testing.assert_array_equal(a, b)
    x = np.random.default_rng(2).standard_normal((1, 28, 42, 3)).astype(np.float32)
    with torch.no_grad():
        ref = tm(_nchw(x)).last_hidden_state.numpy()
    out = dv.dinov2_from_torch(hub, config)(x)
    assert np.abs(np.asarray(out["patch_tokens"]) - ref[:, 1:]).max() < TOL


def _clip_hf(seed=0):
    torch.manual_seed(seed)
    text = dict(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                max_position_embeddings=8, bos_token_id=0, eos_token_id=2, pad_token_id=1)
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=32,
                  patch_size=8)
    cfg = transformers.CLIPConfig(text_config=text, vision_config=vision, projection_dim=24,
                                  attn_implementation="eager")
    return _randomise(transformers.CLIPModel(cfg), seed)


def _clip_ref(tm, x, **kw):
    with torch.no_grad():
        pooled = tm.vision_model(_nchw(x), **kw).pooler_output
        return tm.visual_projection(pooled).numpy(), pooled.numpy()


def test_clip_matches_transformers():
    tm = _clip_hf()
    sd = _sd(tm)  # full CLIPModel: text_model.*, text_projection, logit_scale are ignored
    assert any(k.startswith("text_model.") for k in sd) and "logit_scale" in sd
    config = cv.config_from_hf(tm.config.to_dict())
    assert (config.projection_dim, config.image_size, config.hidden_act) == (24, 32, "quick_gelu")
    model = cv.clip_vision_from_torch(sd, config)
    x = np.random.default_rng(0).standard_normal((2, 32, 32, 3)).astype(np.float32)
    emb, pooled = _clip_ref(tm, x)
    out = nnx.jit(lambda m, p: m(p))(model, x)
    d_emb = np.abs(np.asarray(out["image_embeds"]) - emb).max()
    d_pool = np.abs(np.asarray(out["pooled"]) - pooled).max()
    x2 = np.random.default_rng(1).standard_normal((1, 40, 48, 3)).astype(np.float32)
    emb2, _ = _clip_ref(tm, x2, interpolate_pos_encoding=True)
    d_interp = np.abs(np.asarray(model(x2, interpolate_pos_encoding=True)["image_embeds"]) - emb2).max()
    print(f"CLIP max abs diffs: image_embeds {d_emb:.2e} pooled {d_pool:.2e} interpolated {d_interp:.2e}")
    assert out["image_embeds"].shape == (2, 24)
    assert max(d_emb, d_pool, d_interp) < TOL
    # Also the CLIPVisionModelWithProjection layout: no prefix stripped from the projection.
    vis = {k: v for k, v in sd.items() if k.startswith(("vision_model.", "visual_projection."))}
    np.testing.assert_allclose(np.asarray(cv.clip_vision_from_torch(vis, config)(x)["image_embeds"]),
                               np.asarray(out["image_embeds"]), atol=TOL)
    with pytest.raises(ValueError, match="does not match"):
        model(x2)


def test_loaders_round_trip(tmp_path):
    tm = _dinov2_hf(seed=5)
    folder = tmp_path / "dinov2"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(tm.config.to_dict()))
    save_file(_hub_names(_sd(tm)), str(folder / "model.safetensors"))
    x = np.random.default_rng(3).standard_normal((1, 28, 28, 3)).astype(np.float32)
    with torch.no_grad():
        ref = tm(_nchw(x)).pooler_output.numpy()
    for path in (folder, folder / "model.safetensors"):
        assert np.abs(np.asarray(dv.load_dinov2(path)(x)["cls"]) - ref).max() < TOL

    cm = _clip_hf(seed=6)
    folder = tmp_path / "clip"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(cm.config.to_dict()))
    torch.save(cm.state_dict(), folder / "pytorch_model.bin")  # the .bin path (torch present here)
    x = np.random.default_rng(4).standard_normal((1, 32, 32, 3)).astype(np.float32)
    emb, _ = _clip_ref(cm, x)
    assert np.abs(np.asarray(cv.load_clip_vision(folder)(x)["image_embeds"]) - emb).max() < TOL


def test_errors(tmp_path):
    tm = _dinov2_hf()
    config = dv.config_from_hf(tm.config.to_dict())
    sd = _hub_names(_sd(tm))
    del sd["encoder.layer.1.mlp.fc2.weight"]
    with pytest.raises(PaintprocError, match=r"1 missing key\(s\), e\.g\. encoder\.layer\.1\.mlp\.fc2\.weight"):
        dv.dinov2_params_from_torch(sd, config)
    sd = _sd(tm) | {"encoder.layer.9.norm1.weight": np.zeros(32, np.float32)}
    with pytest.raises(PaintprocError, match="unexpected key"):
        dv.dinov2_params_from_torch(sd, config)
    with pytest.raises(PaintprocError, match="do not fit the config"):  # wrong image_size: position table shape
        dv.dinov2_from_torch(_sd(tm), dataclasses.replace(config, image_size=28))
    with pytest.raises(PaintprocError, match="no such checkpoint"):
        dv.load_dinov2(tmp_path / "nope")
    with pytest.raises(PaintprocError, match="no model.safetensors"):
        cv.load_clip_vision(tmp_path)
    save_file({"a": np.zeros(2, np.float32)}, str(tmp_path / "w.safetensors"))
    with pytest.raises(PaintprocError, match="no config.json"):
        dv.load_dinov2(tmp_path / "w.safetensors")
    (tmp_path / "config.json").write_text(json.dumps(tm.config.to_dict()))
    with pytest.raises(PaintprocError, match=re.escape("unexpected key(s), e.g. a")):
        dv.load_dinov2(tmp_path / "w.safetensors")


def test_preprocess():
    img = np.random.default_rng(0).uniform(size=(2, 60, 90, 3)).astype(np.float32)
    out = dv.dinov2_preprocess(img, size=56)
    assert out.shape == (2, 56, 56, 3)
    mean_img = np.broadcast_to(np.asarray(cv.CLIP_MEAN, np.float32), (1, 50, 40, 3))
    out = np.asarray(cv.clip_preprocess(mean_img, size=32))
    assert out.shape == (1, 32, 32, 3) and np.abs(out).max() < 1e-5
    assert np.asarray(cv.clip_preprocess(img, size=32, crop=False)).shape == (2, 32, 32, 3)
