"""Forward and forward+backward time of a config's video DiT on random clips, on all devices.

    python tools/bench_model.py --config configs/tiny.py
    python tools/bench_model.py --config configs/animatepainter.py:128 --batch 8 [--config.model.remat=none]
    python tools/bench_model.py --config configs/animatepainter.py:cpu --batch 1 --sampling   # + a whole sample

The batch is sharded over the config's mesh (`mesh` section; default: every device on `data`).
fwd_bwd is the diffusion loss and its gradient with respect to all parameters (a train step
without the optimizer update). Ends with one line:
`params= gflops_per_clip= fwd_ms= fwd_bwd_ms= ...` (ms per batch; TFLOP/s and MFU from the
analytic FLOPs of `count_flops`, MFU only where the device's bf16 peak is known). `--sampling` adds
the time of one whole sample of the batch with the config's `sample` settings, with the depth
keys/values computed once (`VideoDiT.cache_depth`, what the sampler does) and per step, interleaved:
`sample_ms= sample_uncached_ms= depth_cache_speedup=`.
"""

from __future__ import annotations

import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from absl import app, flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file("config", None, "experiment config (configs/<name>.py[:variant])")
_BATCH = flags.DEFINE_integer("batch", 0, "global batch (clips); 0 = one per batch shard of the mesh")
_ITERS = flags.DEFINE_integer("iters", 5, "timed iterations of each (after one warm-up)")
_SAMPLING = flags.DEFINE_bool("sampling", False, "also time a whole sample, with and without the depth K/V cache")
_PEAK = flags.DEFINE_float("peak_tflops", 0.0, "device bf16 dense peak in TFLOP/s for MFU; 0 = known GPUs only")

def _timed(fn, *args, iters: int) -> tuple[float, float]:
    """(compile+first-run seconds, median ms per call)."""
    import jax

    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    first = time.perf_counter() - t0
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t0)
    times.sort()
    return first, 1e3 * times[len(times) // 2]


def _sampling_fields(c, gdef, state, dev, mesh) -> dict:
    """Median ms of one sample of the batch, depth K/V cached vs recomputed at every step (interleaved runs)."""
    import jax
    from flax import nnx

    from paintproc_jax.diffusion import sample, sampler_kwargs
    from paintproc_jax.diffusion.objective import split_clip

    _, cond = split_clip(dev)
    s = c.sample
    kw = dict(frames=c.model.frames, sampler=s.sampler, steps=s.steps, guidance=s.guidance.to_dict(), **sampler_kwargs(c.diffusion))

    def runner(cached):
        @jax.jit
        def run(state, cond, key):
            net = nnx.merge(gdef, state)
            return sample(net, net.cache_depth(cond) if cached else cond, key, **kw)
        return run

    runs = {True: runner(True), False: runner(False)}
    times = {True: [], False: []}
    with jax.set_mesh(mesh):
        key = jax.random.key(1)
        for cached in runs:
            jax.block_until_ready(runs[cached](state, cond, key))  # compile
        for _ in range(max(_ITERS.value, 3)):
            for cached in runs:
                t0 = time.perf_counter()
                jax.block_until_ready(runs[cached](state, cond, key))
                times[cached].append(time.perf_counter() - t0)
    med = {k: 1e3 * sorted(v)[len(v) // 2] for k, v in times.items()}
    return dict(sample_ms=round(med[True], 1), sample_uncached_ms=round(med[False], 1),
                depth_cache_speedup=round(med[False] / med[True], 3), sample_steps=s.steps)


def main(argv):
    del argv
    import jax
    import numpy as np
    from flax import nnx

    from paintproc_jax import parallel
    from paintproc_jax.diffusion.objective import diffusion_loss
    from paintproc_jax.models import create_model
    from paintproc_jax.models.flops import count_flops
    from paintproc_jax.presets import check_consistent
    from paintproc_jax.train.metrics import device_peak_flops

    c = _CONFIG.value
    if c is None:
        print("bench_model: error: --config is required (e.g. configs/tiny.py)", file=sys.stderr)
        return 2
    try:
        check_consistent(c)
        from paintproc_jax.train.loop import mesh_from_config

        mesh = mesh_from_config(c)
        batch = _BATCH.value or parallel.batch_shards(mesh)
        parallel.check_batch(batch, mesh)
        model = create_model(c.model, mesh)
    except ValueError as e:
        print(f"bench_model: error: {e}", file=sys.stderr)
        return 2
    m = c.model
    params = sum(int(np.prod(v.shape)) for v in jax.tree.leaves(nnx.state(model, nnx.Param)))
    flops = count_flops(c)
    r = np.random.default_rng(0)
    s, frames = m.image_size, m.frames + 1
    host = {
        "clip": r.uniform(size=(batch, frames, s, s, 3)).astype(np.float32),
        "depth": r.uniform(size=(batch, s, s)).astype(np.float32),
        "layers": r.integers(0, max(m.depth_layers, 1), (batch, s, s)).astype(np.int32),
        "medium": r.integers(0, m.num_media, batch).astype(np.int32),
        "ref_medium": r.integers(0, m.num_ref_media, batch).astype(np.int32),
    }
    kind = jax.devices()[0].device_kind
    print(f"== {c.get('model_size', '?')} model: {params / 1e6:.2f} M params, {m.image_size}px, 1+{m.frames} frames, "
          f"{flops.tokens} tokens + {flops.depth_tokens} depth tokens, {flops.forward / 1e9:.2f} GFLOP/clip forward; "
          f"batch {batch} on {len(jax.devices())} x {kind}, mesh {dict(mesh.shape)}, {m.dtype}, "
          f"attention={m.attention}, scan={m.scan_layers}, remat={m.remat}")
    gdef, state = nnx.split(model)
    diff = c.diffusion

    @jax.jit
    def fwd(state, batch, key):
        net = nnx.merge(gdef, state)
        return diffusion_loss(net, batch, key, diff)[0]

    @jax.jit
    def fwd_bwd(state, batch, key):
        def loss(st):
            return diffusion_loss(nnx.merge(gdef, st), batch, key, diff)[0]

        return jax.value_and_grad(loss)(state)

    with jax.set_mesh(mesh):
        dev = parallel.to_global(host, mesh)
        key = jax.random.key(0)
        c_fwd, fwd_ms = _timed(fwd, state, dev, key, iters=_ITERS.value)
        c_bwd, bwd_ms = _timed(fwd_bwd, state, dev, key, iters=_ITERS.value)
    fields = dict(
        params=params, gflops_per_clip=round(flops.forward / 1e9, 3), fwd_ms=round(fwd_ms, 2), fwd_bwd_ms=round(bwd_ms, 2),
        batch=batch, clips_per_s_fwd_bwd=round(batch / (bwd_ms / 1e3), 2),
        tflops_fwd_bwd=round(flops.train * batch / (bwd_ms / 1e3) / 1e12, 3),
        compile_fwd_s=round(c_fwd, 1), compile_fwd_bwd_s=round(c_bwd, 1),
    )
    if _SAMPLING.value:
        fields.update(_sampling_fields(c, gdef, state, dev, mesh))
    peak = (_PEAK.value or (device_peak_flops(kind) or 0.0) / 1e12) * len(jax.devices())
    if peak:
        fields["mfu_fwd_bwd"] = round(fields["tflops_fwd_bwd"] / peak, 4)
    print(" ".join(f"{k}={v}" for k, v in fields.items()))
    return 0


if __name__ == "__main__":
    app.run(main)
