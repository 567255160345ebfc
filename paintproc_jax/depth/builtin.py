"""`BuiltinDepth`: the default depth estimator. No weights, deterministic, NumPy/SciPy, fast.

It guesses *relative* depth from monocular cues that hold for most photos and paintings. What it
assumes:

- **Upright picture, ground at the bottom** (ground-plane prior): lower in the frame is nearer. This
  is the strongest cue for landscapes and street scenes; it is wrong for views straight down or up.
- **The subject is in focus and detailed** (defocus/detail cue): regions with high local gradient
  energy (at two scales, smoothed) are nearer; smooth, low-contrast regions (sky, walls, blurred
  backgrounds) are farther.
- **Aerial perspective**: far things look desaturated, bluish, bright and low in contrast; saturated,
  warm colours are nearer. Grayscale images simply get no information from this cue.
- **Subjects tend to be central** (mild centre prior).

Each cue is computed at a reduced resolution (longest side `work_size`), rank-normalized (so cues of
different units combine fairly and constant cues contribute nothing), and combined as a weighted
sum. A colour guided filter (He et al., 2010) guided by the image then makes the map follow object
boundaries; its linear coefficients are upsampled and applied to the full-resolution image ("fast
guided filter"), so edges stay sharp at any input size. Finally the map is spread over the full
[0, 1] range by a blend of histogram equalization (rank) and a percentile stretch.

It does not understand objects: a textured background in front of a smooth subject, a blue car,
or a sharp background with a blurred foreground fool it. Use a depth file or a learned estimator
where this matters.
"""

from __future__ import annotations

import functools

import numpy as np
from PIL import Image
from scipy import ndimage

from paintproc_jax.depth.base import normalize_depth, register_estimator
from paintproc_jax.errors import PaintprocError

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
_BINS = 2048  # histogram resolution of the fast rank normalization


def as_rgb(image: np.ndarray) -> np.ndarray:
    """Coerce an image to `[H, W, 3]` float32 in [0, 1] (accepts uint8, gray `[H, W]`/`[H, W, 1]`, RGBA)."""
    img = np.asarray(image)
    if img.ndim == 2:
        img = img[..., None]
    if img.ndim != 3 or img.shape[-1] not in (1, 3, 4) or img.shape[0] < 1 or img.shape[1] < 1:
        raise PaintprocError(f"depth: expected an image [H, W, 3], got shape {tuple(img.shape)}")
    if img.shape[-1] == 4:
        img = img[..., :3]
    elif img.shape[-1] == 1:
        img = np.repeat(img, 3, axis=-1)
    if img.dtype == np.uint8:
        img = img.astype(np.float32) / 255.0
    elif img.dtype == np.uint16:
        img = img.astype(np.float32) / 65535.0
    else:
        img = np.nan_to_num(img.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0)
    return np.clip(img, 0.0, 1.0)


def rank_normalize(x: np.ndarray, bins: int | None = None) -> np.ndarray:
    """Map values to their mid-rank in [0, 1] (ties share the average rank; constant -> 0.5).

    `bins=None` is exact (a sort); `bins=B` reads the mid-rank off a B-bin histogram (linear
    between bin centres): O(n), several times faster, and equal values still get equal ranks.
    """
    flat = np.asarray(x, dtype=np.float32).ravel()
    n = flat.size
    lo, hi = (float(flat.min()), float(flat.max())) if n else (0.0, 0.0)
    if n < 2 or lo == hi:
        return np.full(np.shape(x), 0.5, dtype=np.float32)
    if bins is not None:
        curve = _HistCurve(flat, lo, hi, bins)
        return curve(flat, curve.mid).reshape(np.shape(x))
    order = np.argsort(flat)  # ties are averaged below, so stability does not matter
    srt = flat[order]
    new = np.empty(n, dtype=bool)
    new[0] = True
    np.not_equal(srt[1:], srt[:-1], out=new[1:])
    group = np.cumsum(new) - 1  # [n] group id of each sorted value
    starts = np.flatnonzero(new)  # [G]
    ends = np.append(starts[1:], n)  # [G]
    mid = (starts + ends - 1) * (0.5 / (n - 1))  # [G] average rank, scaled to [0, 1]
    out = np.empty(n, dtype=np.float32)
    out[order] = mid[group]
    return out.reshape(np.shape(x))


class _HistCurve:
    """Histogram CDF of non-constant values on `bins` equal-width bins over [lo, hi].

    `mid [B]` is the mid-rank in [0, 1] of the values in each bin (empty bins in between, so it is
    non-decreasing); `__call__` evaluates any per-bin curve at arbitrary values, linear between bin
    centres, by direct indexing (no search).
    """

    def __init__(self, flat: np.ndarray, lo: float, hi: float, bins: int):
        self.lo, self.bins, self.scale = lo, bins, bins / (hi - lo)
        idx = ((flat - lo) * self.scale).astype(np.int64)
        np.clip(idx, 0, bins - 1, out=idx)
        cnt = np.bincount(idx, minlength=bins)
        self.mid = (np.cumsum(cnt) - 0.5 * (cnt + 1)) / (flat.size - 1)  # [B]
        self.mid[0], self.mid[-1] = 0.0, 1.0  # min and max values get the extreme ranks

    def centers(self) -> np.ndarray:
        return self.lo + (np.arange(self.bins) + 0.5) / self.scale  # [B]

    def __call__(self, v: np.ndarray, curve: np.ndarray) -> np.ndarray:
        t = (np.asarray(v, dtype=np.float32) - np.float32(self.lo)) * np.float32(self.scale) - np.float32(0.5)
        np.clip(t, 0.0, self.bins - 1.0, out=t)
        i0 = t.astype(np.int64)
        np.minimum(i0, self.bins - 2, out=i0)
        frac = t - i0
        c = curve.astype(np.float32)
        return c[i0] + frac * (c[i0 + 1] - c[i0])  # float32, same shape as v


def _smooth(x: np.ndarray, sigma: float) -> np.ndarray:
    """Approximate Gaussian blur of `[h, w]` by three box passes (cost independent of `sigma`)."""
    size = max(1, round(float(np.sqrt(4.0 * sigma * sigma + 1.0))))  # 3 boxes: var = 3 (size^2-1)/12
    if size <= 1:
        return x
    for _ in range(3):
        x = ndimage.uniform_filter(x, size=size, mode="reflect")
    return x


def _resize_planes(planes, hw: tuple[int, int], resample) -> np.ndarray:
    """Resize each `[h, w]` float plane to `[H, W]` with Pillow's float ('F') mode -> `[C, H, W]`."""
    H, W = hw
    out = [
        np.asarray(Image.fromarray(np.ascontiguousarray(p, dtype=np.float32), mode="F").resize((W, H), resample))
        for p in planes
    ]
    return np.stack(out, axis=0)


def _box(x: np.ndarray, r: int) -> np.ndarray:
    """Mean over a (2r+1)^2 window of each plane; `[h, w]` or planar `[C, h, w]`."""
    size = (1,) * (x.ndim - 2) + (2 * r + 1, 2 * r + 1)
    return ndimage.uniform_filter(x, size=size, mode="reflect")


class GuidedFilter:
    """Colour guided filter (He et al., 2010) with the guide's statistics precomputed.

    Locally the output is a linear function of the guide, `q = a . guide + b`, so it is smooth where
    the image is flat and steps where the image has an edge; `eps` (in guide-variance units) sets
    how strong an edge must be to be followed. Filtering several sources (or iterating) with one
    guide reuses the guide's box statistics. `guide [h, w, 3]`, or planar `[3, h, w]` with
    `planar=True` (faster: no strided channel access).
    """

    def __init__(self, guide: np.ndarray, radius: int, eps: float, *, planar: bool = False):
        I = np.asarray(guide, dtype=np.float32)
        if not planar:
            I = np.ascontiguousarray(I.transpose(2, 0, 1))
        self.guide, self.radius = I, int(radius)  # [3, h, w]
        self.mean_I = m = _box(I, self.radius)  # [3, h, w]
        iu = ((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2))
        prods = np.stack([I[i] * I[j] for i, j in iu])  # [6, h, w]
        var = _box(prods, self.radius)
        for k, (i, j) in enumerate(iu):
            var[k] -= m[i] * m[j]
        rr, rg, rb, gg, gb, bb = var
        rr, gg, bb = rr + eps, gg + eps, bb + eps
        # Inverse of the symmetric 3x3 [[rr, rg, rb], [rg, gg, gb], [rb, gb, bb]] by cofactors.
        c00, c01, c02 = gg * bb - gb * gb, rb * gb - rg * bb, rg * gb - rb * gg
        c11, c12, c22 = rr * bb - rb * rb, rb * rg - rr * gb, rr * gg - rg * rg
        det = np.maximum(rr * c00 + rg * c01 + rb * c02, 1e-12)  # > 0: covariance + eps I is SPD
        self.inv = tuple(c / det for c in (c00, c01, c02, c11, c12, c22))  # 6 x [h, w]

    def coeffs(self, src: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Window-averaged coefficients: planar `a [3, h, w]`, `b [h, w]` for `src [h, w]`."""
        I, r, m = self.guide, self.radius, self.mean_I
        p = np.asarray(src, dtype=np.float32)
        mean_p = _box(p, r)  # [h, w]
        cr, cg, cb = _box(I * p, r) - m * mean_p  # 3 x [h, w]: cov(I, p)
        i00, i01, i02, i11, i12, i22 = self.inv
        a = np.stack([i00 * cr + i01 * cg + i02 * cb, i01 * cr + i11 * cg + i12 * cb, i02 * cr + i12 * cg + i22 * cb])
        b = mean_p - a[0] * m[0] - a[1] * m[1] - a[2] * m[2]  # [h, w]
        return _box(a, r), _box(b, r)

    def apply(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """`q = a . guide + b` -> `[h, w]` float32."""
        I = self.guide
        return (a[0] * I[0] + a[1] * I[1] + a[2] * I[2] + b).astype(np.float32)

    def __call__(self, src: np.ndarray) -> np.ndarray:
        """Edge-aware smoothing of `src [h, w]` -> `[h, w]` float32."""
        return self.apply(*self.coeffs(src))


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """Edge-aware smoothing of `src [h, w]` guided by the image `guide [h, w, 3]` -> `[h, w]` float32."""
    return GuidedFilter(guide, radius, eps)(src)


class BuiltinDepth:
    """Weight-free monocular depth from ground-plane, detail, aerial-perspective and centre cues.

    Cue weights are relative (normalized to sum to 1). Lengths are fractions of the longest side of
    the internal image (`work_size` pixels): `detail_sigma` / `color_sigma` pool the detail and
    colour cues, `guide_radius` is the guided filter's window radius; `guide_eps` (guide variance)
    sets which image edges the map may step at, `guide_iters` how often the filter is applied, and
    `guide_blur` (work pixels) pre-blurs the guide so fine texture is not copied into the depth.
    `equalize` blends rank equalization (1) with a 2-98 % percentile stretch (0) for the output.
    """

    name = "builtin"
    CUES = ("ground", "detail", "aerial", "center")

    def __init__(
        self,
        *,
        w_ground: float = 0.35,
        w_detail: float = 0.30,
        w_aerial: float = 0.25,
        w_center: float = 0.10,
        work_size: int = 256,
        detail_sigma: float = 0.02,
        color_sigma: float = 0.02,
        guide_radius: float = 0.25,
        guide_eps: float = 0.05,
        guide_iters: int = 2,
        guide_blur: float = 1.0,
        equalize: float = 0.5,
    ):
        weights = np.array([w_ground, w_detail, w_aerial, w_center], dtype=np.float64)
        if not np.all(np.isfinite(weights)) or np.any(weights < 0) or weights.sum() <= 0:
            raise PaintprocError(f"builtin depth: cue weights must be >= 0 and not all 0, got {weights.tolist()}")
        if int(work_size) < 8:
            raise PaintprocError(f"builtin depth: work_size must be >= 8, got {work_size}")
        if not 0.0 <= equalize <= 1.0:
            raise PaintprocError(f"builtin depth: equalize must be in [0, 1], got {equalize}")
        lengths = dict(detail_sigma=detail_sigma, color_sigma=color_sigma, guide_radius=guide_radius, guide_eps=guide_eps)
        for k, v in lengths.items():
            if not (np.isfinite(v) and v > 0):
                raise PaintprocError(f"builtin depth: {k} must be > 0, got {v}")
        if int(guide_iters) < 0 or not guide_blur >= 0:
            raise PaintprocError("builtin depth: guide_iters and guide_blur must be >= 0")
        self.weights = weights / weights.sum()
        self.work_size = int(work_size)
        self.detail_sigma, self.color_sigma = float(detail_sigma), float(color_sigma)
        self.guide_radius, self.guide_eps = float(guide_radius), float(guide_eps)
        self.guide_iters, self.guide_blur = int(guide_iters), float(guide_blur)
        self.equalize = float(equalize)

    def __repr__(self) -> str:
        w = ", ".join(f"w_{k}={v:.3g}" for k, v in zip(self.CUES, self.weights))
        return f"BuiltinDepth({w}, work_size={self.work_size})"

    # -- cues, each `[h, w]` float32 in [0, 1] where larger = nearer ------------------------------

    @staticmethod
    @functools.lru_cache(maxsize=16)
    def _geometric_cues(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
        """Rank-normalized ground (lower = nearer) and centre (central = nearer) priors, cached."""
        n = h * w
        row = np.arange(h, dtype=np.float64)
        # mid-rank of row i when every pixel of a row ties: (i w + (w - 1) / 2) / (n - 1)
        ground = ((row * w + (w - 1) / 2) / max(1, n - 1)) if n > 1 else np.full(h, 0.5)
        ground = np.broadcast_to(ground.astype(np.float32)[:, None], (h, w))
        y = ((np.arange(h, dtype=np.float32) + 0.5) / h - 0.5) * 2.0
        x = ((np.arange(w, dtype=np.float32) + 0.5) / w - 0.5) * 2.0
        center = rank_normalize(-(y[:, None] ** 2 + x[None, :] ** 2))  # elliptical: follows the aspect
        ground.flags.writeable = False
        center.flags.writeable = False
        return ground, center

    @staticmethod
    def _detail_cue(lum: np.ndarray, sigma_s: float) -> np.ndarray:
        """Local gradient energy at two scales, smoothed; log so the two scales add as a product."""
        out = np.zeros_like(lum)
        for s in (1.0, 2.5):
            g = ndimage.gaussian_gradient_magnitude(lum, sigma=s, mode="reflect", truncate=3.0)
            out += np.log(_smooth(g * g, sigma_s) + 1e-6)
        return rank_normalize(out, bins=_BINS)

    @staticmethod
    def _aerial_cue(P: np.ndarray, lum: np.ndarray, detail: np.ndarray, sigma_s: float) -> np.ndarray:
        """Saturated, warm, contrasty = near; grey, bluish, bright and flat (hazy) = far. `P [3, h, w]`."""
        chroma = np.maximum(np.maximum(P[0], P[1]), P[2]) - np.minimum(np.minimum(P[0], P[1]), P[2])
        warm = P[0] - P[2]  # red minus blue
        haze = lum * (1.0 - detail)  # bright and low contrast
        r = [rank_normalize(_smooth(c, sigma_s), bins=_BINS) for c in (chroma, warm, haze)]
        return rank_normalize(0.45 * r[0] + 0.30 * r[1] + 0.25 * (1.0 - r[2]), bins=_BINS)

    def cues(self, small: np.ndarray, *, planar: bool = False) -> dict[str, np.ndarray]:
        """Rank-normalized cue maps `{name: [h, w]}` in [0, 1] (larger = nearer) for an image at work
        size, `[h, w, 3]` (or `[3, h, w]` with `planar=True`)."""
        P = np.asarray(small, dtype=np.float32) if planar else np.ascontiguousarray(as_rgb(small).transpose(2, 0, 1))
        h, w = P.shape[1:]
        lum = _LUMA[0] * P[0] + _LUMA[1] * P[1] + _LUMA[2] * P[2]  # [h, w]
        side = max(h, w)
        detail = self._detail_cue(lum, sigma_s=max(1.0, self.detail_sigma * side))
        aerial = self._aerial_cue(P, lum, detail, sigma_s=max(0.5, self.color_sigma * side))
        ground, center = self._geometric_cues(h, w)
        return {"ground": ground, "detail": detail, "aerial": aerial, "center": center}

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """`image [H, W, 3]` in [0, 1] -> depth `[H, W]` float32 in [0, 1], 1 = nearest."""
        img = as_rgb(image)  # [H, W, 3]
        H, W = img.shape[:2]
        scale = min(1.0, self.work_size / max(H, W))
        h, w = max(1, round(H * scale)), max(1, round(W * scale))
        planes = [img[..., k] for k in range(3)]
        if (h, w) == (H, W):
            P = np.stack(planes)  # [3, h, w]
        else:
            P = np.clip(_resize_planes(planes, (h, w), Image.Resampling.BOX), 0.0, 1.0)

        c = self.cues(P, planar=True)
        q_small = sum(float(wt) * c[k] for wt, k in zip(self.weights, self.CUES)).astype(np.float32)  # [h, w]
        if self.guide_iters > 0:
            guide = P
            if self.guide_blur > 0 and min(h, w) > 2:
                guide = ndimage.gaussian_filter(P, sigma=(0, self.guide_blur, self.guide_blur), mode="reflect")
            gf = GuidedFilter(guide, max(1, round(self.guide_radius * max(h, w))), self.guide_eps, planar=True)
            for _ in range(self.guide_iters):  # iterating lets the map snap to edges farther than one radius
                q_small = gf(q_small)  # [h, w]
        # Upsample the result, not the coefficients: applying `a` to the sharp full-res image
        # would copy fine texture (eyes, fur) into the depth.
        q = q_small if (h, w) == (H, W) else _resize_planes([q_small], (H, W), Image.Resampling.BILINEAR)[0]
        return self._spread(q_small, q)

    def _spread(self, ref: np.ndarray, q: np.ndarray) -> np.ndarray:
        """Map `q` to [0, 1] by a monotone curve fitted on the work-size map `ref`: `equalize` x rank
        (histogram equalization) + (1 - `equalize`) x a 2-98 % percentile stretch."""
        flat = ref.ravel().astype(np.float32)
        lo, hi = float(flat.min()), float(flat.max())
        if flat.size < 2 or hi - lo <= 1e-7:
            return np.full(q.shape, 0.5, dtype=np.float32)
        hc = _HistCurve(flat, lo, hi, _BINS)
        x = hc.centers()  # [B]
        p_lo, p_hi = np.interp([0.02, 0.98], hc.mid, x)
        if not p_hi > p_lo:
            p_lo, p_hi = lo, hi
        stretch = np.clip((x - p_lo) / (p_hi - p_lo), 0.0, 1.0)
        return normalize_depth(hc(q, self.equalize * hc.mid + (1.0 - self.equalize) * stretch))


register_estimator("builtin", BuiltinDepth)
