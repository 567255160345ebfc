"""Differentiable stroke rasterizer: stamp each stroke into a local window, composite "over" in order.

Cost scales with the strokes' area, not strokes x canvas: every stroke is evaluated only on a
square window around it, and the windows are composited into the canvas one after the other
by a `lax.scan` of `dynamic_update_slice`s (cheap in-place updates). Strokes come in *runs* of
equal window size (a static `Layout`): the planner emits strokes grouped by refinement level,
so a program has few runs.

Gradients go through a custom VJP: the forward pass saves only the canvas *under* each
window (small), and the backward pass sweeps the strokes in reverse with the adjoint image,
so memory and time stay proportional to the windows, not to N full canvases.

Edges: `softness` (pixels, added in quadrature to a 0.4 px anti-aliasing term and to the
medium's own edge) makes strokes smooth for fitting; `softness=0` is the hard final render.
"""

from __future__ import annotations

import functools
import math
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from paintproc_jax.program import P, StrokeProgram, pixel_size
from paintproc_jax.strokes.layout import (  # noqa: F401  (the host-side layout names, re-exported for callers of raster)
    AA_SIGMA,
    FINE_WINDOW_SIZES,
    WINDOW_SIZES,
    Layout,
    batch_layout,
    make_layout,
    split_layout,
    stroke_radius_px,
    window_class,
    window_shape,
)
from paintproc_jax.strokes.media import DRY_START, RENDER_TABLE, R

# ----------------------------------------------------------------------------------------------
# Device side: one stroke on its window.


def _hash01(ix, iy, salt=0):
    """Deterministic pseudo-random values in [0, 1) on an integer lattice (paper grain, bristles).

    `ix`, `iy` are integer-valued floats (any sign) or ints; `salt` (int) picks another lattice.
    Integer arithmetic only (wrapping uint32 multiplies), no transcendentals.
    """
    u32 = lambda z: jnp.asarray(z).astype(jnp.int32).astype(jnp.uint32)  # noqa: E731  (wraps negatives)
    h = u32(ix) * jnp.uint32(73856093) ^ u32(iy) * jnp.uint32(19349663) ^ u32(salt) * jnp.uint32(83492791)
    h = (h ^ (h >> 13)) * jnp.uint32(0x5BD1E995)
    h = h ^ (h >> 15)
    return (h & jnp.uint32(0xFFFF)).astype(jnp.float32) * (1.0 / 65536.0)


def _wave(x):
    """Smooth periodic bump in [0, 1] with period 1 (a cheap stand-in for a sine: no transcendentals)."""
    f = x - jnp.floor(x)
    return 16.0 * jnp.square(f * (1.0 - f))


def _lattice(k, salt):
    """Two independent pseudo-random values in [0, 1) per integer `k` (a float) and uint32 `salt`.

    One integer hash (multiply / xor-shift rounds, wrapping uint32) whose low and high 16 bits
    give the two values: half the hashing of two separate lattices.
    """
    h = k.astype(jnp.int32).astype(jnp.uint32) * jnp.uint32(0x9E3779B1) + salt
    h = (h ^ (h >> 15)) * jnp.uint32(0x2C1B3C6D)
    h = (h ^ (h >> 12)) * jnp.uint32(0x297A2D39)
    h = h ^ (h >> 15)
    to01 = 1.0 / 65536.0
    return (h & jnp.uint32(0xFFFF)).astype(jnp.float32) * to01, (h >> 16).astype(jnp.float32) * to01


def _noise(s, salt):
    """Two 1-D value noises along `s`: hashed heights at its integers, smoothstep in between.

    Returns two [0, 1] heights. Random lattice values rather than a periodic wave, so features
    come at irregular spacing and strength.
    """
    k = jnp.floor(s)
    f = s - k
    fs = f * f * (3.0 - 2.0 * f)
    a0, b0 = _lattice(k, salt)
    a1, b1 = _lattice(k + 1.0, salt)
    return a0 + (a1 - a0) * fs, b0 + (b1 - b0) * fs


def _sat(x):
    return jnp.clip(x, 0.0, 1.0)


def _term(m, name):
    """A medium coefficient: a Python float when the medium is static (zero terms vanish)."""
    v = m[R[name]]
    return float(v) if isinstance(m, np.ndarray) else v


def _on(m, name) -> bool:
    return not isinstance(m, np.ndarray) or float(m[R[name]]) != 0.0


def _flag(m, name):
    """1 where the medium has term `name`, else 0 (static: a Python float; traced: an array).

    Couplings between terms (grain or rim following the streaks) are scaled by it, so a traced
    medium row renders exactly what the static specialisation (which skips the term) renders.
    """
    v = m[R[name]]
    return float(float(v) != 0.0) if isinstance(m, np.ndarray) else (v != 0.0).astype(jnp.float32)


# Bristle texture constants (see `stroke_window`).
_FINE = 2.63  # fine streaks per clump across (irrational-ish: the two lattices never line up)
_FINE_ALONG = 1.2  # fine streaks: length (in stroke widths) over which their load wanders
_HAIR = 3.7  # single hairs per fine streak across
_MIN_BLUR = 0.75  # px: streaks fade in from 2x this spacing (at softness 0) to 4x ...
_CLUMP_BLUR = 2.0  # ... and clumps (broad, strong) from twice that: at low resolution the
# picture keeps the same look (what a 4x larger render shows, averaged down, stays close)
# Bristle octaves, coarse to fine: (name, streak spacing per clump, amplitude).
_OCTAVES = (("clump", _CLUMP_BLUR, 0.45), ("fine", _FINE, 0.4), ("hair", _FINE * _HAIR, 0.3))


def _textured(m) -> bool:
    """Whether medium row `m` draws bristle streaks (static rows; a traced row may)."""
    return _on(m, "bristle") or _on(m, "dry") or _on(m, "shade")


def _shown_octaves(m, w: int) -> int:
    """How many octaves (a coarse-to-fine prefix) a stroke as wide as a `w` window could show.

    An octave fades in where its streaks are more than 2 * _MIN_BLUR px apart; with a traced
    medium row the count of bristles is unknown at trace time, so all are computed.
    """
    n = _term(m, "bristles")
    if not isinstance(n, float):
        return len(_OCTAVES)
    return sum(w > n * c * 2.0 * _MIN_BLUR for _, c, _ in _OCTAVES)


def _live_octaves(params, valid, row, scale: float, softness):
    """Octaves (a coarse-to-fine prefix) that some valid stroke of `params` [n, P] shows at all:
    an int32 scalar. Strokes narrower than a few pixels per clump show none (most small strokes)."""
    width = jax.lax.stop_gradient(jnp.maximum(params[:, P["width"]] * scale, 0.5))
    fades = _octave_fades(width, _term(row, "bristles"), softness)
    return sum(jnp.any(valid & (f > 0.0)).astype(jnp.int32) for f in fades)


def _octave_fades(width, n, softness):
    """Amplitude of each octave for strokes `width` px wide: zero where its streaks would be too
    close for the pixel grid or for the blur of `softness` (no aliasing; soft renders smooth)."""
    blur = 2.0 * jnp.sqrt(softness**2 + _MIN_BLUR**2)  # px
    return tuple(amp * _sat(width / (n * c * blur) - 1.0) for _, c, amp in _OCTAVES)


def _outline(x, y, ca, sa, width, length, bend, xs, ys, scale: float):
    """The outline maths on the pixel grid xs [v] x ys [h] (canvas units), with the intermediates
    the VJP needs: dx [1, v], dy [h, 1], u, q, vr, c0, core, r (each [h, v]). Scalars: centre (x, y),
    direction (ca, sa) = (cos, sin) of the angle, width and length in px."""
    dx = xs[None, :] - x
    dy = ys[:, None] - y
    u = (dx * ca + dy * sa) * scale  # px along the stroke
    v = (dy * ca - dx * sa) * scale  # px across
    half = 0.5 * length
    q = jnp.clip(u, -half, half) / half
    vr = v - bend * length * (1.0 - jnp.square(q))  # distance from the bent centre line
    c0 = jnp.abs(u) - (half - 0.5 * width)
    core = jnp.maximum(c0, 0.0)
    r = jnp.sqrt(core * core + vr * vr + 1e-6)
    return dx, dy, u, q, vr, c0, core, r


def _geometry(x, y, ca, sa, width, length, bend, xs, ys, scale: float):
    """A stroke's outline: u [h, v] px along the stroke, vr [h, v] px from its bent centre line,
    sd [h, v] signed distance to its edge (px). Arguments as `_outline`."""
    _, _, u, _, vr, _, _, r = _outline(x, y, ca, sa, width, length, bend, xs, ys, scale)
    return u, vr, r - 0.5 * width


@functools.partial(jax.custom_vjp, nondiff_argnums=(9,))
def _geometry_vjp(x, y, ca, sa, width, length, bend, xs, ys, scale: float):
    """`_geometry` with a hand-written VJP (same gradients): the backward recomputes the outline
    per pixel and reduces every scalar's gradient from it, instead of autodiff's transposed graph,
    which wrote ~30 window-sized intermediates per run (about half of the backward)."""
    return _geometry(x, y, ca, sa, width, length, bend, xs, ys, scale)


def _geometry_fwd(x, y, ca, sa, width, length, bend, xs, ys, scale):
    return _geometry(x, y, ca, sa, width, length, bend, xs, ys, scale), (x, y, ca, sa, width, length, bend, xs, ys)


def _geometry_bwd(scale, res, g):
    x, y, ca, sa, width, length, bend, xs, ys = res
    gu, gvr, gsd = g  # [h, v] each
    dx, dy, u, q, vr, c0, core, r = _outline(*res, scale)
    half = 0.5 * length
    inside = jnp.abs(u) < half  # where the clip of u to the stroke's length passes u through
    w1 = 1.0 - q * q
    g_vr = gvr + gsd * (vr / r)
    g_c0 = jnp.where(c0 > 0.0, gsd * (core / r), 0.0)
    g_q = jnp.where(inside, g_vr * (2.0 * bend * length) * q / half, 0.0)  # through uc / half, per unit of u
    g_u = gu + g_c0 * jnp.sign(u) + g_q
    g_v = g_vr
    s_vr_w1 = jnp.sum(g_vr * w1)
    g_half = -jnp.sum(g_c0) - jnp.sum(g_q * u) / half  # d q / d half = -u / half^2 inside, 0 where clipped
    gu_rows, gu_cols = jnp.sum(g_u, 1), jnp.sum(g_u, 0)  # [h], [v]
    gv_rows, gv_cols = jnp.sum(g_v, 1), jnp.sum(g_v, 0)
    su, sv = jnp.sum(gu_cols), jnp.sum(gv_cols)
    dxs, dys = dx[0], dy[:, 0]
    g_x = scale * (sa * sv - ca * su)
    g_y = -scale * (sa * su + ca * sv)
    g_ca = scale * (jnp.dot(gu_cols, dxs) + jnp.dot(gv_rows, dys))
    g_sa = scale * (jnp.dot(gu_rows, dys) - jnp.dot(gv_cols, dxs))
    g_width = 0.5 * jnp.sum(g_c0) - 0.5 * jnp.sum(gsd)
    g_length = -bend * s_vr_w1 + 0.5 * g_half
    g_bend = -length * s_vr_w1
    return g_x, g_y, g_ca, g_sa, g_width, g_length, g_bend, jnp.zeros_like(xs), jnp.zeros_like(ys)


_geometry_vjp.defvjp(_geometry_fwd, _geometry_bwd)
_GEOMETRY = _geometry_vjp  # tests swap in `_geometry` to compare with autodiff


def stroke_window(p, medium_row, origin, w: int, scale: float, softness, shape: tuple[int, int] | None = None,
                  live=None):
    """Alpha [h, v] and colour [h, v, 3] of stroke `p` on the window at canvas pixel `origin`.

    `w` is the window class (the side a stroke of this run needs); `shape` = (h, v), default
    (w, w), is the part of it computed (`window_shape`: cut to the canvas). `live` (static int)
    caps the bristle octaves computed, coarse first: the caller's count of octaves whose fade
    is not zero for some stroke (`_live_octaves`); None computes all.

    `medium_row` is a row of RENDER_TABLE: a NumPy row (static medium: texture terms with zero
    amplitude are not computed) or a traced one (medium chosen per program at run time).

    Texture (amplitudes from the medium row, see media.py), after the issue "brushwork that
    reads as paint" (periodic streaks across the stroke drew large bent strokes as evenly
    spaced concentric rings):
      * Bristles: the brush is a row of `bristles` clumps across the stroke, each with its own
        paint load, plus finer ridged streaks (`_FINE` per clump) whose load wanders along the
        stroke, plus single hairs on big strokes. All are value noise (hashed lattice values,
        per stroke from `seed`) of the across coordinate measured from the *bent* centre line:
        streaks run along the stroke, at irregular spacing and strength, no two strokes alike.
        Each octave fades out where its streaks would be closer than a few pixels (or than the
        blur of `softness`): no aliasing, and soft renders stay smooth for fitting.
      * Load along the stroke: loaded at the start (paint fills the grooves: weak streaks),
        thinner toward the end (stronger streaks). From `DRY_START` of the length on, low
        bristles run out first (`dry`): the end breaks up into separate streaks (dry brush).
        The body stays nearly opaque (grooves, `bristle`, are thin), which the fitter needs.
      * Shade: paint ridges catch the light, grooves stay dark (`shade`): colour, not alpha,
        carries most of an oil stroke's texture. Lighter/darker by each channel's room in
        [0, 1], so light and dark paints show it too.
      * Grain: paper grain fixed to the canvas, breaking up the deposit (pencil, watercolour);
        where the streaks are low (light pressure) more of the paper's tooth stays bare.
      * Rim: pigment pools just inside the edge of a wash: denser and a little darker there,
        unevenly along the edge (watercolour; a thin ink edge for marker).
    The texture pattern is not differentiated w.r.t. the stroke's geometry (see `b` below);
    gradients w.r.t. every parameter still flow through the outline, coverage, colour, opacity.
    A stroke is assumed to fit its window (what the layouts guarantee): octaves that no stroke
    as wide as the window could show are skipped at trace time.
    """
    f32 = jnp.float32
    m = medium_row
    rows, cols = shape or (w, w)
    ys = (origin[0].astype(f32) + jnp.arange(rows, dtype=f32) + 0.5) / scale  # [h] canvas units
    xs = (origin[1].astype(f32) + jnp.arange(cols, dtype=f32) + 0.5) / scale  # [v]
    ca, sa = jnp.cos(p[P["angle"]]), jnp.sin(p[P["angle"]])
    width = jnp.maximum(p[P["width"]] * scale, 0.5)
    length = jnp.maximum(p[P["length"]] * scale, width)
    half = 0.5 * length
    u, vr, sd = _GEOMETRY(p[P["x"]], p[P["y"]], ca, sa, width, length, p[P["bend"]], xs, ys, scale)

    sigma = jnp.sqrt(softness**2 + AA_SIGMA**2 + jnp.square(_term(m, "edge") * width))
    tone, gain = None, None  # colour = (rgb + tone * room) * gain ([h, v] each; None: rgb as is)
    b = None  # paint height of the bristle streaks, [h, v] in ~[0, 1]
    if _textured(m):
        a = jnp.clip(u / length + 0.5, 0.0, 1.0)  # 0 at the start of the stroke, 1 at the end
        n = _term(m, "bristles")
        # A stroke is at most its window wide, so with a static medium an octave that no stroke of
        # this window size can show is not computed (at 256 px, windows up to 96 px compute clumps
        # and fine streaks only); of the others, only the first `live` (the caller's count of
        # octaves that some stroke shows: narrow strokes show none).
        k = min(_shown_octaves(m, w), len(_OCTAVES) if live is None else live)
        if k == 0:
            b = 0.5  # flat paint: no stroke here is wide enough to show bristles
        else:
            # The stroke's own bristles: a per-stroke salt for each octave's lattice (scalars).
            salt = jnp.floor(p[P["seed"]] * 65536.0).astype(jnp.uint32) * jnp.uint32(0x85EBCA6B)
            # Texture coordinates: clumps across (0..n, from the bent centre line) and along.
            s = (0.5 * n) * (vr / (0.5 * width) + 1.0)
            fades = _octave_fades(width, n, softness)
            clump, _ = _noise(s, salt)  # one load per clump, all along the stroke
            x = fades[0] * (clump - 0.5)
            if k > 1:  # fine streaks: two patterns, cross-faded along the stroke (load wanders)
                fa, fb = _noise(_FINE * s + 0.37, salt + jnp.uint32(0x68E31DA4))
                r = (u + half) / (_FINE_ALONG * width) + 2.0 * p[P["seed"]]
                fine = fa + (fb - fa) * _wave(0.5 * r)
                # Ridged: thin sharp grooves where the noise crosses its middle.
                x = x + fades[1] * (jnp.abs(2.0 * fine - 1.0) - 0.36)
            if k > 2:  # single hairs (big strokes only)
                hair, _ = _noise((_FINE * _HAIR) * s + 0.71, salt + jnp.uint32(0xB5297A4D))
                x = x + fades[2] * (hair - 0.5)
            # Paint height in (0, 1), mean 0.5 (softly clipped). It is painted onto the stroke: not
            # differentiated w.r.t. the stroke's geometry (a high-frequency, noisy signal for a fitter,
            # and most of the texture's backward cost); edges, coverage, colour and opacity are. The
            # division (an op XLA will not duplicate) also makes XLA compute the noise once per pixel
            # instead of once in every consumer (alpha, each colour channel, each backward fusion).
            b = jax.lax.stop_gradient(0.5 + x / (1.0 + 0.8 * jnp.abs(x)))
        if _on(m, "bristle"):
            # The edge follows the outermost bristles (pulled in where they carry little paint).
            sd = sd + (0.05 * _term(m, "bristle")) * width * (1.0 - b)
        alpha = jax.nn.sigmoid(-sd / sigma)
        if _on(m, "bristle"):  # grooves between streaks, deeper as the load thins
            alpha = alpha * (1.0 - _term(m, "bristle") * jnp.square(1.0 - b) * (0.3 + 0.7 * a))
        if _on(m, "dry"):  # dry brush: low bristles run out first toward the end
            thr = _term(m, "dry") * jnp.square(_sat((a - DRY_START) * (1.0 / (1.0 - DRY_START))))
            alpha = alpha * _sat((b - thr) * 6.0 + 1.0)
        if _on(m, "shade") and not isinstance(b, float):
            # Ridges catch the light, grooves stay dark, more so as the paint thins (colour only:
            # the shading is not differentiated w.r.t. geometry; that path doubled the backward).
            tone = (_term(m, "shade") * 2.0) * (b - 0.5) * (0.6 + 0.4 * jax.lax.stop_gradient(a))
    else:
        alpha = jax.nn.sigmoid(-sd / sigma)
    if _on(m, "grain"):  # paper grain, fixed to the canvas (not the stroke)
        cells = _term(m, "grain_cells")
        gx = jnp.floor(xs * cells)[None, :]
        gy = jnp.floor(ys * cells)[:, None]
        tooth = _hash01(gx, gy)
        if b is not None:  # light pressure (low streaks) leaves more of the paper's tooth bare
            tooth = _sat(tooth + (1.5 * _flag(m, "bristle")) * (0.5 - b))
        alpha = alpha * (1.0 - _term(m, "grain") * tooth)
    alpha = alpha * jnp.clip(p[P["opacity"]], 0.0, 1.0) * _term(m, "opacity")
    if _on(m, "rim"):  # pigment pools just inside the edge of a wash: denser and darker there
        band = _term(m, "rim_width") * width + 0.7
        q = _sat(1.0 - jnp.square((sd + band) * (0.5 / band)))  # a bump around sd = -band
        pool = _term(m, "rim") * (q * q)
        if b is not None:  # pools unevenly along the edge (with the streaks of the wash)
            pool = pool * (1.0 + _flag(m, "bristle") * (1.4 * b - 0.7))
        alpha = jnp.minimum(alpha * (1.0 + pool), 1.0)
        gain = 1.0 - 0.25 * pool
    rgb = p[P["r"] : P["b"] + 1]
    if tone is None:  # flat paint (shaded media: clipped to [0, 1], as the shaded path is)
        color = jnp.broadcast_to(_sat(rgb) if _on(m, "shade") else rgb, (rows, cols, 3))
    else:  # lighter on ridges, darker in grooves, by about the room each channel has in [0, 1]
        room = 0.2 + 0.8 * jnp.minimum(rgb, 1.0 - rgb)  # [3]
        color = _sat(rgb + tone[..., None] * room)  # [h, v, 3]; paint stays in [0, 1]
    if gain is not None:
        color = color * gain[..., None]
    return alpha, color


def _origins(params, w: int, scale: float, hw):
    """Top-left canvas pixel of each stroke's window (`window_shape`), clamped into the canvas. [n, 2]"""
    centre = jnp.stack([params[:, P["y"]], params[:, P["x"]]], -1) * scale  # [n, 2] px
    o = jnp.floor(centre - 0.5 * w).astype(jnp.int32)
    rows, cols = window_shape(w, hw)
    return jnp.clip(o, 0, jnp.array([hw[0] - rows, hw[1] - cols], jnp.int32))


def _run_windows(program: StrokeProgram, start: int, count: int, w: int, hw, softness, medium, variants: bool = False):
    """Windows of strokes [start, start+count): alpha [n,h,v], colour [n,h,v,3], origin [n,2].

    `variants` (static medium): compute only the bristle octaves some stroke of the run shows,
    by a switch between window computations specialised to each count. At 128 px most runs show
    none (a data clip renders in half the time), but every variant compiles; under `grad` that
    doubled the fit's compile and slowed its steps, so the fit does not use it.
    """
    scale = float(max(hw))
    params = program.params[start : start + count]
    origins = _origins(params, w, scale, hw)
    row = jnp.asarray(RENDER_TABLE)[program.medium] if medium is None else RENDER_TABLE[medium]
    shape = window_shape(w, hw)

    def windows(live=None):
        return jax.vmap(lambda p, o: stroke_window(p, row, o, w, scale, softness, shape, live))(params, origins)

    k = _shown_octaves(row, w) if variants and medium is not None and _textured(row) else 0
    if k > 0:
        live = _live_octaves(params, program.valid[start : start + count], row, scale, softness)
        alpha, color = jax.lax.switch(jnp.minimum(live, k), [functools.partial(windows, j) for j in range(k + 1)])
    else:
        alpha, color = windows()
    alpha = alpha * program.valid[start : start + count, None, None].astype(alpha.dtype)
    return alpha, color, origins


# ----------------------------------------------------------------------------------------------
# Compositing with a window-sized custom VJP.


_ROWS = jax.lax.GatherDimensionNumbers(offset_dims=(1, 2), collapsed_slice_dims=(0,), start_index_map=(0, 1))


def _gather_window(img, o, shape: tuple[int, int]):
    """Reads img[o0:o0+h, o1:o1+v] as a gather of h rows.

    A gather makes a fresh buffer, so XLA need not copy the whole scan carry to keep the
    window alive across the in-place update (a plain slice costs a full-canvas copy per
    stroke); gathering whole rows keeps it a few contiguous copies.
    """
    rows, cols = shape
    starts = jnp.stack([o[0] + jnp.arange(rows), jnp.broadcast_to(o[1], (rows,))], -1)  # [h, 2]
    return jax.lax.gather(img, starts, _ROWS, (1, cols, img.shape[-1]), mode="clip")


def _stamp(canvas, alpha, color, o, under=None):
    """Composites one window over `canvas` at pixel `o` ("over", in place)."""
    if under is None:
        under = jax.lax.dynamic_slice(canvas, (o[0], o[1], 0), (*alpha.shape, 3))
    a = alpha[..., None]
    return jax.lax.dynamic_update_slice(canvas, under * (1 - a) + color * a, (o[0], o[1], 0))


@jax.custom_vjp
def composite(canvas, alpha, color, origins):
    """Composites windows in order: canvas [H,W,3], alpha [n,h,v], colour [n,h,v,3], origins [n,2]."""
    return jax.lax.scan(lambda c, x: (_stamp(c, *x), None), canvas, (alpha, color, origins))[0]


def _composite_fwd(canvas, alpha, color, origins):
    shape = alpha.shape[1:]

    def body(c, x):
        a, col, o = x
        under = _gather_window(c, o, shape)
        return _stamp(c, a, col, o, under), under

    out, unders = jax.lax.scan(body, canvas, (alpha, color, origins))
    return out, (alpha, color, origins, unders)


def _composite_bwd(res, g):
    alpha, color, origins, unders = res
    shape = alpha.shape[1:]

    def body(gimg, x):
        a, col, o, under = x
        gw = _gather_window(gimg, o, shape)  # adjoint of the canvas right after this stroke
        d_alpha = jnp.sum(gw * (col - under), -1)
        d_color = gw * a[..., None]
        gimg = jax.lax.dynamic_update_slice(gimg, gw * (1 - a[..., None]), (o[0], o[1], 0))
        return gimg, (d_alpha, d_color)

    g_canvas, (d_alpha, d_color) = jax.lax.scan(body, g, (alpha, color, origins, unders), reverse=True)
    # Keep the windows' own backward pass out of the scan (same reason as in `render`).
    g_canvas, d_alpha, d_color = jax.lax.optimization_barrier((g_canvas, d_alpha, d_color))
    return g_canvas, d_alpha, d_color, None


composite.defvjp(_composite_fwd, _composite_bwd)


# ----------------------------------------------------------------------------------------------
# Public renderers (jit with static `hw` and `layout`; vmap over a leading batch axis).


def _check_layout(program: StrokeProgram, layout: Layout):
    n = sum(c for _, c in layout)
    if n != program.params.shape[-2]:
        raise ValueError(f"layout covers {n} strokes but the program has {program.params.shape[-2]}")


def render(program: StrokeProgram, hw: tuple[int, int], layout: Layout, softness=0.0, medium: int | None = None) -> jax.Array:
    """Final composite of all strokes over the background: [H, W, 3]. Differentiable in params.

    `medium` (static) specialises the renderer to one medium; None reads `program.medium`.
    """
    return render_stages(program, hw, layout, (program.params.shape[-2],), softness, medium)[0]


def render_stages(
    program: StrokeProgram, hw: tuple[int, int], layout: Layout, ends: Sequence[int], softness=0.0, medium: int | None = None
) -> jax.Array:
    """Canvases after the first `ends[s]` strokes (static, increasing, in [0, N]): [S, H, W, 3].

    One pass over the strokes (the layout's runs are cut at `ends`), differentiable in params
    through the same window-sized VJP as `render`: a loss on every stage costs about one render.
    """
    _check_layout(program, layout)
    ends = tuple(int(e) for e in ends)
    if list(ends) != sorted(set(ends)) or not ends or ends[0] < 0 or ends[-1] > program.params.shape[-2]:
        raise ValueError(f"stage ends must increase within [0, {program.params.shape[-2]}], got {ends}")
    canvas = jnp.broadcast_to(program.background.astype(jnp.float32), (*hw, 3))
    stages = [canvas] * sum(e == 0 for e in ends)
    start = 0
    for w, count in layout:  # windows per run (one trace of the stroke maths), composited per stage
        alpha, color, origins = _run_windows(program, start, count, w, hw, softness, medium)
        # Materialise the windows before the scan, so XLA does not fuse (recompute) them into it.
        alpha, color, origins = jax.lax.optimization_barrier((alpha, color, origins))
        lo = 0
        for _, part in split_layout(((w, count),), [e - start for e in ends]):
            canvas = composite(canvas, alpha[lo : lo + part], color[lo : lo + part], origins[lo : lo + part])
            lo += part
            if start + lo in ends:
                stages.append(canvas)
        start += count
    return jnp.stack(stages)


def _composite_frames(carry, alpha, color, origins, frame_of):
    """Composites one run of windows in order, also writing each stamped window into the buffer
    of the frame the stroke first shows in. carry = (canvas [H,W,3], written [T,H,W,3])."""
    shape = alpha.shape[1:]

    def body(c, x):
        canvas, written = c
        a, col, o, f = x
        under = _gather_window(canvas, o, shape)  # a gather, not a slice: no copy of the carry
        new = under * (1 - a[..., None]) + col * a[..., None]
        canvas = jax.lax.dynamic_update_slice(canvas, new, (o[0], o[1], 0))
        written = jax.lax.dynamic_update_slice(written, new[None], (f, o[0], o[1], 0))
        return (canvas, written), None

    return jax.lax.scan(body, carry, (alpha, color, origins, frame_of))[0]


_UNWRITTEN = -1e30  # frame-buffer value of a pixel no stroke of that frame wrote (any colour is above it)


def render_frames(
    program: StrokeProgram, hw: tuple[int, int], layout: Layout, softness=0.0, medium: int | None = None,
    skip_octaves: bool = False,
) -> jax.Array:
    """All stroke frames in one pass: frame t shows the first `frame_ends[t]` strokes. [T, H, W, 3]

    Frames are prefixes of one composite; each stroke is stamped once. Loop bounds are static
    (no per-frame loops), so the function batches under `vmap` as well as `lax.map`: every
    stamped window is also written into a buffer for the frame the stroke first shows in;
    afterwards frame t is that buffer where written, else frame t-1. A pixel's last write in
    frame t's buffer is its value at the end of frame t, since no later stroke writes there.
    `skip_octaves` (static medium): compute only the bristle octaves some stroke of each run
    shows (`_run_windows` variants): half the time for 128-px data clips, where most strokes
    are too narrow for any; it costs compile time (6.9 -> 11.5 s for a 640-px paint), so
    one-off renders leave it off.
    """
    _check_layout(program, layout)
    n = program.params.shape[0]
    ends = program.frame_ends
    num_frames = ends.shape[0]
    stroke = jnp.arange(n)
    frame_of = jnp.searchsorted(ends, stroke, side="right").astype(jnp.int32)  # [N], T = never shown
    shown = program.valid & (frame_of < num_frames)
    blank = jnp.broadcast_to(program.background.astype(jnp.float32), (*hw, 3))
    carry = (blank, jnp.full((num_frames, *hw, 3), _UNWRITTEN, jnp.float32))
    start = 0
    for w, count in layout:
        alpha, color, origins = _run_windows(program._replace(valid=shown), start, count, w, hw, softness, medium, variants=skip_octaves)
        alpha, color, origins = jax.lax.optimization_barrier((alpha, color, origins))
        f = jnp.minimum(frame_of[start : start + count], num_frames - 1)
        carry = _composite_frames(carry, alpha, color, origins, f)
        start += count
    written = carry[1]

    def settle(prev, buf):
        frame = jnp.where(buf[..., :1] > 0.5 * _UNWRITTEN, buf, prev)
        return frame, frame

    return jax.lax.scan(settle, blank, written)[1]


render_jit = jax.jit(render, static_argnames=("hw", "layout", "medium"))
render_frames_jit = jax.jit(render_frames, static_argnames=("hw", "layout", "medium", "skip_octaves"))


def _on_host(renderer, program: StrokeProgram, size: int, softness: float, canvas=None) -> np.ndarray:
    """Runs a jitted renderer at long side `size` px with the program's own layout and medium, or
    on `canvas` = (canvas hw, layout), a padded canvas (cut back to the picture) and a layout
    that holds the program's strokes: one compiled render for every program of that canvas."""
    hw = pixel_size(program.canvas_hw, size)
    if canvas is None:
        canvas = (hw, make_layout(program, size, softness=softness))
    (ch, cw), layout = canvas
    if max(ch, cw) != size or ch < hw[0] or cw < hw[1]:
        raise ValueError(f"canvas {(ch, cw)} cannot hold a {hw} picture at long side {size}")
    out = renderer(jax.tree.map(jnp.asarray, program), hw=(ch, cw), layout=layout, softness=softness, medium=int(program.medium))
    return np.clip(np.asarray(out)[..., : hw[0], : hw[1], :], 0.0, 1.0)


def render_program(program: StrokeProgram, size: int, *, softness: float = 0.0) -> np.ndarray:
    """Host convenience: final composite at long side `size` px as a NumPy [H, W, 3] in [0, 1]."""
    return _on_host(render_jit, program, size, softness)


def render_program_frames(program: StrokeProgram, size: int, *, softness: float = 0.0, canvas=None) -> np.ndarray:
    """Host convenience: stroke frames at long side `size` px, NumPy [T, H, W, 3] in [0, 1].
    `canvas` = (canvas hw, layout): render there (see `_on_host`)."""
    return _on_host(render_frames_jit, program, size, softness, canvas)


def reference_render(program: StrokeProgram, hw: tuple[int, int], softness=0.0) -> jax.Array:
    """Slow full-canvas reference (every stroke on every pixel) for tests: [H, W, 3]."""
    scale = float(max(hw))
    w = int(2 ** math.ceil(math.log2(max(hw))))
    row = jnp.asarray(RENDER_TABLE)[program.medium]
    canvas = jnp.broadcast_to(program.background.astype(jnp.float32), (w, w, 3))
    origin = jnp.zeros(2, jnp.int32)

    def body(c, xs):
        p, valid = xs
        a, col = stroke_window(p, row, origin, w, scale, softness)
        a = (a * valid)[..., None]
        return c * (1 - a) + col * a, None

    canvas = jax.lax.scan(body, canvas, (program.params, program.valid.astype(jnp.float32)))[0]
    return canvas[: hw[0], : hw[1]]

