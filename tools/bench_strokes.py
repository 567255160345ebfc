"""Benchmarks of the stroke engine (issue 2): rasterizer speed, fit quality per time, paint end to end.

    python tools/bench_strokes.py --what raster        # fwd / fwd+bwd, scaling with N and resolution
    python tools/bench_strokes.py --what fit           # PSNR/SSIM/seconds over scikit-image photos
    python tools/bench_strokes.py --what paint         # `paintproc paint`: empty cache, new photo, repeat, new bucket; peak RSS
    python tools/bench_strokes.py --what stages        # stage PSNR (first N/16 .. N strokes), plan and fit, 500 strokes
    python tools/bench_strokes.py                      # all three

Strokes come from the real planner on scikit-image's astronaut, so window sizes are those the
engine actually renders. The last line is `key=value` pairs with the headline figures.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np


def _photo(name: str, size: int) -> np.ndarray:
    """A photo that an installed package ships: scikit-image's samples by name, or matplotlib's
    `grace_hopper`; float [H, W, 3] with the longer side `size` (Lanczos)."""
    from skimage import data

    from paintproc_jax.io import resize_image

    if name == "grace_hopper":
        import matplotlib.cbook
        from PIL import Image

        img = np.asarray(Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg")).convert("RGB"))
    else:
        img = getattr(data, name)()
    if img.ndim == 2:
        img = np.stack([img] * 3, -1)
    img = img[..., :3].astype(np.float32) / 255.0
    h, w = img.shape[:2]
    s = size / max(h, w)
    return np.clip(resize_image(img, (max(1, round(h * s)), max(1, round(w * s)))), 0, 1)


def _time(fn, *args, repeat: int = 10) -> float:
    import jax

    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def bench_raster(results: dict, counts=(256, 512, 1024, 2048), sizes=(128, 512)):
    """fwd and fwd+bwd at 256 px for each stroke count, then the largest count at the other sizes;
    the headline is the largest count at 256 px."""
    import jax
    import jax.numpy as jnp

    from paintproc_jax.depth import estimate_depth
    from paintproc_jax.strokes import plan, raster

    print("== rasterizer (planned strokes on astronaut, softness 1 px, medium oil)")
    print(f"{'N':>6} {'size':>5} {'runs':>4} {'window Mpx':>10} {'fwd ms':>8} {'fwd+bwd ms':>10} {'strokes*px/s':>13}")

    def one(n: int, size: int):
        image = _photo("astronaut", size)
        prog = plan.plan_strokes(image, estimate_depth(image), plan.PlanConfig(strokes=n), seed=0)
        hw = image.shape[:2]
        layout = raster.make_layout(prog, size, softness=1.0)
        dev = jax.tree.map(jnp.asarray, prog)
        target = jnp.asarray(image)
        medium = int(prog.medium)
        fwd = jax.jit(lambda p: raster.render(dev._replace(params=p), hw, layout, 1.0, medium))
        vg = jax.jit(jax.value_and_grad(lambda p: jnp.mean(jnp.square(raster.render(dev._replace(params=p), hw, layout, 1.0, medium) - target))))
        t_f = _time(fwd, dev.params)
        t_fb = _time(vg, dev.params)
        win = sum(w * w * c for w, c in layout)
        rate = n * hw[0] * hw[1] / t_fb
        print(f"{n:>6} {size:>5} {len(layout):>4} {win / 1e6:>10.2f} {t_f * 1e3:>8.1f} {t_fb * 1e3:>10.1f} {rate:>13.3g}")
        return t_f, t_fb, win, rate

    for n in counts:
        t_f, t_fb, win, rate = one(n, 256)
    results.update(raster_strokes=counts[-1], raster_fwd_ms=round(t_f * 1e3, 2), raster_fwdbwd_ms=round(t_fb * 1e3, 2),
                   raster_window_mpx=round(win / 1e6, 2), strokes_px_per_s=f"{rate:.3g}",
                   window_px_per_s_fwdbwd=f"{win / t_fb:.3g}")
    for size in sizes:
        one(counts[-1], size)


def bench_fit(results: dict, images: list[str], budgets: dict[int, int]):
    from skimage.metrics import structural_similarity

    from paintproc_jax.depth import estimate_depth
    from paintproc_jax.strokes import engine, fit, plan, raster

    print("== fit quality per time at 256 px (plan + fit; seconds are warm: the compile, paid once per")
    print("   image size and batch in a folder run, is listed apart); PSNR/SSIM of the hard render vs Lanczos")
    print(f"{'image':>10} {'strokes':>7} {'steps':>5} {'seconds':>8} {'compile':>8} {'PSNR dB':>8} {'SSIM':>6}")
    for n, steps in budgets.items():
        psnrs, secs = [], []
        for name in images:
            image = _photo(name, 256)
            depth = estimate_depth(image)
            cfg = engine.EngineConfig(plan=plan.PlanConfig(strokes=n), fit=fit.FitConfig(steps=steps))
            # First call compiles (cached afterwards for this shape); time a second, warm call.
            t0 = time.perf_counter()
            engine.decompose([image], [depth], cfg)
            cold = time.perf_counter() - t0
            t0 = time.perf_counter()
            (prog,), _ = engine.decompose([image], [depth], cfg)
            warm = time.perf_counter() - t0
            out = raster.render_program(prog, 256)
            psnr = 10 * np.log10(1.0 / np.mean(np.square(out - image)))
            ssim = structural_similarity(out, image, channel_axis=-1, data_range=1.0)
            print(f"{name:>10} {n:>7} {steps:>5} {warm:>8.1f} {cold - warm:>8.1f} {psnr:>8.2f} {ssim:>6.3f}", flush=True)
            psnrs.append(psnr)
            secs.append(warm)
        results[f"fit{n}_psnr"] = round(float(np.mean(psnrs)), 2)
        results[f"fit{n}_s"] = round(float(np.mean(secs)), 2)


STAGE_FRACTIONS = (1 / 16, 1 / 8, 1 / 4, 1 / 2)
# Photos no setting was tuned on (the planner and fitter were tuned on astronaut, coffee, chelsea).
HELD_OUT = "rocket,immunohistochemistry,hubble_deep_field,grace_hopper"


def bench_stages(results: dict, images: list[str], strokes: int = 500, size: int = 256, steps: int = 100):
    """Stage quality: PSNR to the photo of the first k strokes (hard render), k = N/16, N/8, N/4, N/2, N,
    for the plan alone and for the fit, default order; fit seconds warm (second run of the shape)."""
    import jax

    from paintproc_jax.depth import estimate_depth
    from paintproc_jax.strokes import engine, fit, plan, raster

    jax.config.update("jax_compilation_cache_dir", os.path.join(tempfile.gettempdir(), "paintproc_bench_cache"))
    ks = [int(round(strokes * f)) for f in STAGE_FRACTIONS] + [strokes]
    print(f"== stages: first k of {strokes} strokes at {size} px vs the photo (Lanczos), order {plan.PlanConfig().order}")
    print(f"{'image':>22} {'what':>5} " + " ".join(f"{'k=' + str(k):>7}" for k in ks) + f" {'fit s':>6} {'compile':>7}")
    rows = []
    for name in images:
        image = _photo(name, size)
        depth = estimate_depth(image)
        cfg = engine.EngineConfig(plan=plan.PlanConfig(strokes=strokes), fit=fit.FitConfig(steps=steps))
        t0 = time.perf_counter()
        engine.decompose([image], [depth], cfg)  # compiles this shape
        cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        (fitted,), _ = engine.decompose([image], [depth], cfg)
        warm = time.perf_counter() - t0
        planned = plan.plan_strokes(image, depth, cfg.plan, seed=0)
        for what, prog in (("plan", planned), ("fit", fitted)):
            frames = raster.render_program_frames(prog._replace(frame_ends=np.asarray(ks, np.int32)), size)
            psnr = [float(10 * np.log10(1.0 / np.mean(np.square(f - image)))) for f in frames]
            tag = f"{name}{'' if name in HELD_OUT.split(',') else ' (tuned)'}"
            extra = f" {warm:>6.1f} {cold - warm:>7.1f}" if what == "fit" else ""
            print(f"{tag:>22} {what:>5} " + " ".join(f"{p:>7.2f}" for p in psnr) + extra, flush=True)
            if what == "fit":
                rows.append(psnr + [warm])
    med = np.median(np.asarray(rows), axis=0)
    keys = [f"stage_psnr_{n}" for n in ("1_16", "1_8", "1_4", "1_2")] + ["final_psnr", "fit_s"]
    results.update({k: round(float(v), 2) for k, v in zip(keys, med)})


def bench_paint(results: dict):
    """`paintproc paint` with defaults, wall time as a user sees it (issue 15), on one fresh
    compilation cache, held-out photos only: rocket (427x640 -> 256x384) on the empty cache; a
    new photo of a new size in the same canvas bucket (grace_hopper cut to 300x512 -> 225x384,
    bucket 256x384) with the cache warm from rocket; that photo again (a repeat); and grace_hopper
    whole (600x512, portrait: a new bucket, which compiles its own fit)."""
    from PIL import Image

    from paintproc_jax.data.samples import named_photo

    print("== paintproc paint, default settings: empty cache / new photo, same bucket / repeat / new bucket")
    photos = {"rocket": named_photo("rocket"), "grace_hopper_cut": named_photo("grace_hopper")[100:400],
              "grace_hopper": named_photo("grace_hopper")}
    cases = (("cold", "rocket"), ("new_photo", "grace_hopper_cut"), ("repeat", "grace_hopper_cut"), ("new_bucket", "grace_hopper"))
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, PAINTPROC_CACHE=os.path.join(tmp, "cache"))
        walls = {}
        for case, name in cases:
            src = os.path.join(tmp, f"{name}.png")
            if not os.path.exists(src):
                Image.fromarray(photos[name]).save(src)
            cmd = [sys.executable, "-m", "paintproc_jax.cli", "paint", src, "--out", os.path.join(tmp, case), "--quiet"]
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
            walls[case] = time.perf_counter() - t0
            if proc.returncode != 0:
                raise SystemExit(f"paint failed: {proc.stderr}")
            print(f"{case:>10} {name:>16} {walls[case]:6.1f}s  {proc.stdout.strip()}", flush=True)
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # MiB (Linux reports KiB)
    print(f"peak RSS {peak:.0f} MiB")
    results.update({f"paint_{case}_s": round(walls[case], 1) for case, _ in cases}, paint_peak_mib=round(peak))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--what", choices=("raster", "fit", "paint", "stages", "all"), default="all",
                    help="all = raster, fit and paint (stages is its own run)")
    ap.add_argument("--images", default=None,
                    help="photo names: scikit-image samples or grace_hopper (default: astronaut,coffee,chelsea,rocket; "
                         f"stages: astronaut plus the held-out {HELD_OUT})")
    ap.add_argument("--budgets", default="500:40,2000:100", help="strokes:fit-steps pairs")
    ap.add_argument("--raster-strokes", default="256,512,1024,2048",
                    help="raster: stroke counts at 256 px (the last is the headline and is also run at 128 and 512 px)")
    ap.add_argument("--raster-sizes", default="128,512", help="raster: other sizes for the largest count ('' for none)")
    args = ap.parse_args()
    results: dict = {}
    if args.what in ("raster", "all"):
        bench_raster(results, tuple(int(n) for n in args.raster_strokes.split(",")),
                     tuple(int(x) for x in args.raster_sizes.split(",") if x))
    if args.what in ("fit", "all"):
        budgets = {int(b.split(":")[0]): int(b.split(":")[1]) for b in args.budgets.split(",")}
        bench_fit(results, (args.images or "astronaut,coffee,chelsea,rocket").split(","), budgets)
    if args.what == "stages":
        bench_stages(results, (args.images or "astronaut," + HELD_OUT).split(","))
    if args.what in ("paint", "all"):
        bench_paint(results)
    print(" ".join(f"{k}={v}" for k, v in results.items()))


if __name__ == "__main__":
    main()
