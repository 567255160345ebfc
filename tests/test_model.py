"""Video DiT: shapes per attention mode, depth-fusion gate, gradient flow, sharding, FLOPs, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.sharding import PartitionSpec as P

from paintproc_jax import parallel
from paintproc_jax.models import create_model, default_config
from paintproc_jax.models.flops import count_flops
from paintproc_jax.models.sharding import logical_spec, param_specs

B, F, S = 2, 4, 16


def tiny(**kw):
    c = default_config()
    c.update(image_size=S, frames=F, patch=4, width=32, depth=2, heads=4, depth_scales=2, mlp_ratio=2.0, depth_layers=3)
    c.update(**kw)
    return c


def inputs(seed=0, batch=B, frames=F, size=S):
    r = np.random.default_rng(seed)
    x = jnp.asarray(r.normal(size=(batch, frames, size, size, 3)), jnp.float32)
    t = jnp.asarray(r.uniform(size=(batch, frames)), jnp.float32)
    cond = dict(
        ref=jnp.asarray(r.uniform(-1, 1, (batch, size, size, 3)), jnp.float32),
        depth=jnp.asarray(r.uniform(size=(batch, size, size)), jnp.float32),
        layers=jnp.asarray(r.integers(0, 3, (batch, size, size)), jnp.int32),
        medium=jnp.asarray(r.integers(0, 5, batch), jnp.int32),
        ref_medium=jnp.asarray(r.integers(0, 6, batch), jnp.int32),
    )
    return x, t, cond


def perturb(model, scale=0.05, seed=1, skip=("gate",)):
    """Random values in the zero-initialised parameters (adaLN, output, gates) so every path is live."""
    state = nnx.state(model, nnx.Param)
    leaves, tree = jax.tree.flatten_with_path(state)
    keys = jax.random.split(jax.random.key(seed), len(leaves))
    new = []
    for (path, v), k in zip(leaves, keys):
        name = jax.tree_util.keystr(path)
        if any(s in name for s in skip) or jnp.any(v != 0):
            new.append(v)
        else:
            new.append(jax.device_put(scale * jax.random.normal(k, v.shape, v.dtype), v.sharding))
    nnx.update(model, jax.tree.unflatten(tree, new))
    return model


def open_gates(model, value=0.5):
    """Depth gates at `value` (tanh 0.46): the depth-fusion path is part of the output."""
    for gate in [v for path, v in nnx.iter_graph(model) if path and path[-1] == "gate" and isinstance(v, nnx.Param)]:
        gate[...] = jnp.full_like(gate[...], value)
    return model


def depth_matters(model, x, t, cond):
    """The output moves when depth is dropped (so an equality test also compares the depth path)."""
    no_depth = {k: v for k, v in cond.items() if k not in ("depth", "layers")}
    return float(jnp.abs(apply(model, x, t, cond) - apply(model, x, t, no_depth)).max()) > 1e-3


def padded(spec, ndim):
    return tuple(spec) + (None,) * (ndim - len(spec))


def apply(model, x, t, cond, keep=None):
    return nnx.jit(lambda m, x, t, c, k: m(x, t, c, k))(model, x, t, cond, keep)


@pytest.mark.parametrize(
    "kw",
    [dict(attention="full"), dict(attention="factorized"), dict(attention="full", scan_layers=True, remat="full"),
     dict(attention="factorized", tubelet=2, scan_layers=True, remat="dots"), dict(depth_fusion=False),
     dict(dtype="bfloat16", region_channels=2)],
    ids=["full", "factorized", "full-scan-remat", "factorized-tubelet2-scan", "no-depth-fusion", "bf16-regions"],
)
def test_output_shape_per_attention_mode(kw):
    model = perturb(create_model(tiny(**kw)))
    x, t, cond = inputs()
    if kw.get("region_channels"):
        cond["regions"] = jax.random.uniform(jax.random.key(0), (B, S, S, kw["region_channels"]))
    y = apply(model, x, t, cond)
    assert y.shape == (B, F, S, S, 3) and y.dtype == jnp.float32
    assert bool(jnp.all(jnp.isfinite(y))) and float(jnp.std(y)) > 0
    y2 = apply(model, x[:, :2], t[:, :2], cond) if not kw.get("tubelet") else None  # shorter clips work
    assert y2 is None or y2.shape == (B, 2, S, S, 3)


def test_scan_and_loop_models_agree():
    """scan_layers stacks the same blocks: identical parameters give the same output (depth gates open)."""
    loop = open_gates(perturb(create_model(tiny())))
    scan = create_model(tiny(scan_layers=True))
    state = nnx.state(loop, nnx.Param)
    blocks = jax.tree.map(lambda *xs: jnp.stack(xs), *[state["blocks"][i] for i in range(2)])
    new = nnx.state(scan, nnx.Param)
    new = jax.tree.map(lambda a: a, new)
    for k in state:
        if k != "blocks":
            new[k] = state[k]
    new["blocks"] = blocks
    nnx.update(scan, new)
    x, t, cond = inputs()
    assert depth_matters(loop, x, t, cond) and depth_matters(scan, x, t, cond)
    np.testing.assert_allclose(apply(loop, x, t, cond), apply(scan, x, t, cond), atol=1e-5)


def test_depth_gate_at_zero_means_depth_is_ignored():
    model = perturb(create_model(tiny()))  # gates stay at their zero init
    x, t, cond = inputs()
    no_depth = {k: v for k, v in cond.items() if k not in ("depth", "layers")}
    with_depth, without = apply(model, x, t, cond), apply(model, x, t, no_depth)
    np.testing.assert_array_equal(np.asarray(with_depth), np.asarray(without))
    # an open gate makes the output depend on depth; dropping depth (keep=False) restores the no-depth output
    for blk in model.blocks:
        blk.depth.gate[...] = jnp.full_like(blk.depth.gate[...], 0.5)
    opened = apply(model, x, t, cond)
    assert float(jnp.abs(opened - without).max()) > 1e-3
    keep = dict(depth=jnp.array([False, True]))
    mixed = apply(model, x, t, cond, keep)
    np.testing.assert_allclose(mixed[0], without[0], atol=1e-6)
    np.testing.assert_allclose(mixed[1], opened[1], atol=1e-6)


def test_conditions_change_the_output():
    model = perturb(create_model(tiny()))
    x, t, cond = inputs()
    base = apply(model, x, t, cond)
    other_medium = dict(cond, medium=(cond["medium"] + 1) % 5)
    assert float(jnp.abs(apply(model, x, t, other_medium) - base).max()) > 1e-4
    later = dict(cond, phase=jnp.full((B,), 0.5))  # a window from the middle of a longer process
    assert float(jnp.abs(apply(model, x, t, later) - base).max()) > 1e-4
    np.testing.assert_array_equal(apply(model, x, t, dict(cond, phase=jnp.zeros(B))), base)  # absent = phase 0
    other_ref = dict(cond, ref=-cond["ref"])
    assert float(jnp.abs(apply(model, x, t, other_ref) - base).max()) > 1e-4
    # with the reference dropped, the reference pixels no longer matter
    drop = dict(ref=jnp.zeros(B, bool))
    np.testing.assert_allclose(apply(model, x, t, cond, drop), apply(model, x, t, other_ref, drop), atol=1e-6)


def test_ref_in_frames_adds_no_parameters_and_the_dropped_reference_still_does_not_matter():
    a = perturb(create_model(tiny()))
    b = create_model(tiny(ref_in_frames=True))
    pa, pb = nnx.state(a, nnx.Param), nnx.state(b, nnx.Param)
    assert jax.tree.structure(pa) == jax.tree.structure(pb)  # a checkpoint of either loads into the other
    nnx.update(b, pa)
    x, t, cond = inputs()
    assert float(jnp.abs(apply(b, x, t, cond) - apply(a, x, t, cond)).max()) > 1e-4
    other_ref = dict(cond, ref=-cond["ref"])
    drop = dict(ref=jnp.zeros(B, bool))
    np.testing.assert_allclose(apply(b, x, t, cond, drop), apply(b, x, t, other_ref, drop), atol=1e-6)
    old = tiny()
    del old["ref_in_frames"]  # configs saved before the option
    assert not create_model(old).spec.ref_in_frames


def test_ref_mix_head_takes_reference_detail_where_its_gate_is_open_and_never_a_dropped_reference():
    model = perturb(create_model(tiny(output_head="ref_mix", ref_in_frames=True)))
    pd = model.spec.patch_dim
    x, t, cond = inputs()
    final = model.final
    final.kernel[...] = jnp.zeros_like(final.kernel[...])
    final.bias[...] = jnp.concatenate([jnp.full((pd,), 30.0), jnp.zeros((pd,))])  # gate open, colour 0
    out = apply(model, x, t, cond)
    np.testing.assert_allclose(out, jnp.broadcast_to(cond["ref"][:, None], out.shape), atol=1e-6)  # pixel detail inside each patch
    drop = dict(ref=jnp.zeros(B, bool))
    np.testing.assert_allclose(apply(model, x, t, cond, drop), 0.0, atol=1e-6)  # the colour alone
    final.bias[...] = jnp.concatenate([jnp.full((pd,), -30.0), jnp.full((pd,), 0.7)])  # gate shut: the colour
    np.testing.assert_allclose(apply(model, x, t, cond), 0.7, atol=1e-6)
    with pytest.raises(ValueError, match="output_head"):
        create_model(tiny(output_head="mix"))
    old = tiny()
    del old["output_head"]  # configs saved before the option
    assert create_model(old).spec.output_head == "direct"


def test_ref_mix_needs_an_x0_objective():
    from paintproc_jax.consistency import check_consistent
    from paintproc_jax.presets import cpu_config

    c = cpu_config()
    check_consistent(c)
    c.diffusion.objective = "flow"
    with pytest.raises(ValueError, match="flow_x0"):
        check_consistent(c)


@pytest.mark.parametrize("scan", [False, True])
def test_cached_depth_keys_and_values_give_the_same_prediction_and_sample(scan):
    from paintproc_jax.diffusion import sample

    model = open_gates(perturb(create_model(tiny(scan_layers=scan))))
    x, t, cond = inputs()
    cached = nnx.jit(lambda m, c: m.cache_depth(c))(model, cond)
    assert len(cached["depth_kv"]) == model.spec.depth
    keep = dict(ref=jnp.array([True, False]), medium=jnp.array([True, True]), depth=jnp.array([False, True]))
    want = apply(model, x, t, cond, keep)
    assert float(jnp.abs(want - apply(model, x, t, dict(cond, depth=1.0 - cond["depth"]), keep)).max()) > 1e-4  # depth matters
    np.testing.assert_allclose(apply(model, x, t, cached, keep), want, atol=1e-5)
    run = nnx.jit(lambda m, c: sample(m, c, jax.random.key(0), frames=F, steps=3, guidance=dict(ref=2.0, depth=1.5)))
    np.testing.assert_allclose(run(model, cached), run(model, cond), atol=1e-4)
    no_depth = {k: v for k, v in cond.items() if k not in ("depth", "layers")}
    assert model.cache_depth(no_depth) is no_depth


def test_gradients_reach_every_parameter_group():
    model = create_model(tiny())
    x, t, cond = inputs()

    keep = dict(ref=jnp.array([True, False]), medium=jnp.array([False, True]), depth=jnp.array([True, True]))

    def loss(m):  # one example without reference and one without medium: the null embeddings are used too
        y = m(x, t, cond, keep)
        return jnp.mean(y**2 + y)

    def grad_norms(name):
        grads = nnx.jit(nnx.grad(loss))(model)
        return [float(jnp.linalg.norm(v)) for p, v in jax.tree.flatten_with_path(grads)[0] if name in jax.tree_util.keystr(p)]

    # adaLN-Zero init: only the output projection gets gradient at first, and that starts training
    assert all(n > 0 for n in grad_norms("['final']['kernel']"))
    assert all(n == 0 for n in grad_norms("['gate']"))
    # with the rest of the network live, the depth gates get gradient from zero: depth fusion opens
    perturb(model)
    assert all(n > 0 for n in grad_norms("['gate']"))
    # once they are non-zero, every parameter gets a gradient
    for blk in model.blocks:
        blk.depth.gate[...] = jnp.full_like(blk.depth.gate[...], 0.3)
    perturb(model)
    grads = nnx.jit(nnx.grad(loss))(model)
    dead = [jax.tree_util.keystr(p) for p, v in jax.tree.flatten_with_path(grads)[0] if not float(jnp.abs(v).max()) > 0]
    # the null rows of the medium embeddings are used only when a condition is dropped
    dead = [d for d in dead if "embedding" not in d]
    assert not dead, dead
    groups = {jax.tree_util.keystr(p[:1]) for p, _ in jax.tree.flatten_with_path(grads)[0]}
    assert {"['blocks']", "['depth_encoder']", "['embed']", "['ref_embed']", "['medium']", "['final']"} <= groups


@pytest.mark.parametrize(
    "scan, axes",
    [(False, {parallel.DATA: 2, parallel.FSDP: 2, parallel.TENSOR: 2}),
     (True, {parallel.DATA: 2, parallel.FSDP: 2, parallel.TENSOR: 2}),
     (False, {parallel.FSDP: 2, parallel.CONTEXT: 2, parallel.TENSOR: 2})],
    ids=["loop-data-fsdp-tensor", "scan-data-fsdp-tensor", "loop-fsdp-context-tensor"],
)
def test_sharding_specs_and_sharded_forward(scan, axes):
    nnx_cfg = tiny(scan_layers=scan)
    mesh = parallel.make_mesh(axes)
    with jax.set_mesh(mesh):  # creating the model inside the mesh context works too
        sharded = open_gates(perturb(create_model(nnx_cfg, mesh)))  # the depth path is compared too
    specs = param_specs(sharded, nnx_cfg.rules)
    # every parameter is laid out as its logical names say under the rules
    for (path, var), (_, spec) in zip(
        jax.tree.flatten_with_path(nnx.state(sharded))[0], jax.tree.flatten_with_path(specs, is_leaf=lambda s: isinstance(s, P))[0]
    ):
        assert padded(var.sharding.spec, var.ndim) == padded(spec, var.ndim), jax.tree_util.keystr(path)
    q = sharded.blocks.attn.q.kernel if scan else sharded.blocks[0].attn.q.kernel
    assert q.get_metadata()["out_sharding"][-3:] == ("embed", "heads", "head_dim")
    assert padded(q[...].sharding.spec, q.ndim)[-3:] == ("fsdp", "tensor", None)
    fc1 = sharded.blocks.mlp.fc1.kernel if scan else sharded.blocks[0].mlp.fc1.kernel
    assert padded(fc1[...].sharding.spec, fc1.ndim)[-2:] == ("fsdp", "tensor")
    # the same parameters on one device give the same output
    single = create_model(nnx_cfg)
    nnx.update(single, jax.device_get(nnx.state(sharded)))
    x, t, cond = inputs(batch=4)
    with jax.set_mesh(mesh):
        xs, ts, cs = parallel.to_global((np.asarray(x), np.asarray(t), jax.tree.map(np.asarray, cond)), mesh)
        y_sharded = apply(sharded, xs, ts, cs)
    assert y_sharded.sharding.spec[0] in (parallel.BATCH_AXES, parallel.FSDP)
    assert depth_matters(single, x, t, cond)
    np.testing.assert_allclose(np.asarray(y_sharded), np.asarray(apply(single, x, t, cond)), atol=2e-5)


def test_logical_spec_rules():
    rules = default_config().rules
    assert logical_spec(("embed", "mlp"), rules) == P("fsdp", "tensor")
    assert logical_spec(("batch", "act_seq", "act_embed"), rules) == P(("data", "fsdp"), "context", None)
    assert logical_spec(("layers", "heads", "head_dim", "embed"), rules) == P(None, "tensor", None, "fsdp")
    assert logical_spec(("batch", "act_seq"), rules, mesh_axes=("data",)) == P("data", None)
    with pytest.raises(ValueError, match="unknown logical axis 'embd'"):  # a typo must not silently replicate
        logical_spec(("embd", "mlp"), rules)


@pytest.mark.parametrize("attention", ["full", "factorized"])
def test_count_flops_matches_xla(attention):
    c = tiny(attention=attention, width=64, image_size=32)
    model = create_model(c)
    x, t, cond = inputs(batch=1, size=32)
    gd, st = nnx.split(model)
    cost = jax.jit(lambda st, x: nnx.merge(gd, st)(x, t, cond)).lower(st, x).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    ours = count_flops(c)
    # XLA also counts elementwise work (norms, softmax, GELU): a few percent more at this width
    assert 1.0 <= cost["flops"] / ours.forward < 1.12
    assert ours.train == 3 * ours.forward and 0 < ours.attention < ours.forward


@pytest.mark.parametrize(
    "kw, mesh, match",
    [
        (dict(attention="spatial"), None, "model.attention"),
        (dict(width=30), None, "not divisible by model.heads"),
        (dict(frames=5, tubelet=2), None, "multiple of model.tubelet"),
        (dict(image_size=20), None, "multiple of patch"),
        (dict(heads=2, width=16), {parallel.TENSOR: 4, parallel.DATA: 2}, "tensor axis"),
        (dict(remat="some"), None, "model.remat"),
    ],
)
def test_config_errors(kw, mesh, match):
    with pytest.raises(ValueError, match=match):
        create_model(tiny(**kw), parallel.make_mesh(mesh) if mesh else None)


def test_input_errors():
    model = create_model(tiny())
    x, t, cond = inputs()
    with pytest.raises(ValueError, match="exceed the model's maximum"):
        model(jnp.zeros((B, 2 * F, S, S, 3)), jnp.zeros((B, 2 * F)), cond)
    with pytest.raises(ValueError, match="must be a multiple of 8"):
        model(jnp.zeros((B, F, 12, 12, 3)), t, dict(cond, ref=jnp.zeros((B, 12, 12, 3)), depth=None))
    with pytest.raises(ValueError, match=r"cond\['depth'\]"):
        model(x, t, dict(cond, depth=jnp.zeros((B, 8, 8))))


def test_depth_without_its_layer_map_is_refused_not_binned_another_way():
    """One rule for depth layers (strokes.plan.depth_layers, quantiles): the model never makes its own."""
    model = create_model(tiny())
    x, t, cond = inputs()
    del cond["layers"]
    with pytest.raises(ValueError, match=r"cond\['layers'\].*depth_layers"):
        apply(model, x, t, cond)
