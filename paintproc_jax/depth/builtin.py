"""`BuiltinDepth`: the default depth estimator. No weights, deterministic, NumPy/SciPy, fast.

It guesses *relative* depth (order, not metres) from monocular cues that hold for most photos and
paintings. What it assumes:

- **Upright picture, ground at the bottom** (ground-plane prior): lower in the frame is nearer. The
  strongest cue for landscapes and street scenes; wrong for views straight down or up.
- **The subject is in focus and detailed** (defocus/detail cue): regions dense in local gradient
  energy (two scales) are nearer; smooth, low-contrast regions (sky, walls, blurred backgrounds) are
  farther. An isolated contour is not "detail": the energy is eroded so only textured *regions*
  count, and a boundary does not make both of its sides look near.
- **Aerial perspective**: far things look desaturated, bluish and bright (haze); saturated, warm,
  darker colours are nearer. Grayscale images get no information from this cue.
- **Subjects tend to be central** (mild centre prior).
- **Depth changes at image edges** and is smooth inside regions of similar colour.

Pipeline (at a reduced resolution, longest side `work_size`, then upsampled): the per-pixel cue
measurements are pooled *within* image regions by an edge-aware domain-transform filter (Gastal &
Oliveira, 2011), so a textured subject does not bleed into a flat background; each cue is
rank-normalized with a tolerance (`soft_rank`: differences far below the tolerance, such as noise in
a flat sky, do not get stretched into depth; a constant cue maps to 0.5 and contributes nothing);
the cues are combined as a weighted sum; the map is smoothed edge-aware again (domain transform)
and snapped to object boundaries by a colour guided filter (He et al., 2010), both guided by the
slightly blurred image so fine texture is not copied into the depth; finally it is spread over
[0, 1] by a blend of (tolerant) histogram equalization and a percentile stretch.

It does not understand objects: a textured background behind a smooth subject, a blue car, a
bright face or a sharp background with a blurred foreground fool it. Use a depth file or a learned
estimator where this matters.
"""

from __future__ import annotations

import functools

import numpy as np
from PIL import Image
from scipy import ndimage

from paintproc_jax.depth.base import normalize_depth, register_estimator
from paintproc_jax.errors import PaintprocError
from paintproc_jax.io.images import resize_image

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
_BINS = 1024  # histogram resolution of the tolerant rank normalization


def as_rgb(image: np.ndarray) -> np.ndarray:
    """Coerce an image to `[H, W, 3]` float32 in [0, 1] (accepts uint8/uint16, gray `[H, W]` or
    `[H, W, 1]`, RGBA; NaN -> 0)."""
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


# -- rank normalization ---------------------------------------------------------------------------


def rank_normalize(x: np.ndarray) -> np.ndarray:
    """Exact mid-rank of each value, scaled to [0, 1] (ties share the average rank; constant -> 0.5)."""
    flat = np.asarray(x, dtype=np.float32).ravel()
    n = flat.size
    if n < 2 or flat.min() == flat.max():
        return np.full(np.shape(x), 0.5, dtype=np.float32)
    order = np.argsort(flat)  # ties are averaged below, so stability does not matter
    srt = flat[order]
    new = np.empty(n, dtype=bool)
    new[0] = True
    np.not_equal(srt[1:], srt[:-1], out=new[1:])
    group = np.cumsum(new) - 1  # [n] group id of each sorted value
    starts = np.flatnonzero(new)  # [G]
    ends = np.append(starts[1:], n)  # [G]
    mid = (starts + ends - 1) * (0.5 / (n - 1))  # [G] average rank in [0, 1]
    out = np.empty(n, dtype=np.float32)
    out[order] = mid[group]
    return out.reshape(np.shape(x))


class _SoftCDF:
    """Empirical CDF of `values` blurred by a Gaussian of width `tol` (value units), on a histogram.

    Evaluating it is a rank normalization that ignores differences much smaller than `tol`. Built in
    O(n) on `bins` equal-width bins; evaluated by direct indexing (no search).
    """

    def __init__(self, values: np.ndarray, tol: float, bins: int = _BINS):
        flat = np.asarray(values, dtype=np.float32).ravel()
        tol = max(float(tol), 0.0)
        lo, hi = float(flat.min()), float(flat.max())
        pad = 3.0 * tol if tol > 0 else 0.5 * max(hi - lo, 1e-12)
        self.lo, self.bins = lo - pad, bins
        self.scale = bins / ((hi + pad) - self.lo)  # bins per value unit
        idx = ((flat - self.lo) * self.scale).astype(np.int64)
        np.clip(idx, 0, bins - 1, out=idx)
        cnt = np.bincount(idx, minlength=bins).astype(np.float64)  # [B]
        if tol * self.scale > 0.5:  # tolerance wider than a bin: blur the histogram
            cnt = ndimage.gaussian_filter1d(cnt, tol * self.scale, mode="constant", truncate=3.0)
        self.cdf = (np.cumsum(cnt) - 0.5 * cnt) / max(cnt.sum(), 1e-12)  # [B] mid-rank per bin

    def centers(self) -> np.ndarray:
        return self.lo + (np.arange(self.bins) + 0.5) / self.scale  # [B]

    def __call__(self, v: np.ndarray, curve: np.ndarray | None = None) -> np.ndarray:
        """Evaluate `curve` (default: the CDF), defined per bin, at values `v` (linear between bins)."""
        c = self.cdf if curve is None else curve
        t = (np.asarray(v, dtype=np.float32) - np.float32(self.lo)) * np.float32(self.scale) - np.float32(0.5)
        np.clip(t, 0.0, self.bins - 1.0, out=t)
        i0 = np.minimum(t.astype(np.int64), self.bins - 2)
        frac = t - i0
        c0, c1 = c[i0], c[i0 + 1]
        return (c0 + frac * (c1 - c0)).astype(np.float32)


def soft_rank(x: np.ndarray, tol: float) -> np.ndarray:
    """Rank-normalize to [0, 1] with a tolerance: values closer than ~`tol` get nearly equal ranks.

    Plain ranks stretch any variation, however tiny (noise in a flat sky, a faint halo) over the
    full range; this is the CDF of the values blurred by `tol`. A constant map gives 0.5.
    """
    x = np.asarray(x, dtype=np.float32)
    if x.size == 0:
        return x
    if x.size == 1 or x.min() == x.max():
        return np.full(x.shape, 0.5, dtype=np.float32)
    return _SoftCDF(x, tol)(x).reshape(x.shape)


# -- filters ----------------------------------------------------------------------------------------


def _smooth(x: np.ndarray, sigma: float) -> np.ndarray:
    """Approximate Gaussian blur of `[h, w]` by three box passes (cost independent of `sigma`)."""
    size = round(float(np.sqrt(4.0 * sigma * sigma + 1.0)))  # 3 boxes: var = 3 (size^2 - 1) / 12
    for _ in range(3 if size > 1 else 0):
        x = ndimage.uniform_filter(x, size=size, mode="reflect")
    return x


def _box(x: np.ndarray, r: int) -> np.ndarray:
    """Mean over a (2r+1)^2 window of each plane; `[h, w]` or planar `[C, h, w]`."""
    size = (1,) * (x.ndim - 2) + (2 * r + 1, 2 * r + 1)
    return ndimage.uniform_filter(x, size=size, mode="reflect")


def _rf_scan(J: np.ndarray, V: np.ndarray) -> None:
    """In place: recursive filter along axis 0 of `J [n, m]`, forward then backward; `V [n-1, m]`
    is the feedback weight between rows k and k+1."""
    tmp = np.empty_like(J[0])
    for k in range(1, J.shape[0]):
        np.subtract(J[k - 1], J[k], out=tmp)
        tmp *= V[k - 1]
        J[k] += tmp
    for k in range(J.shape[0] - 2, -1, -1):
        np.subtract(J[k + 1], J[k], out=tmp)
        tmp *= V[k]
        J[k] += tmp


class DomainTransform:
    """Edge-aware smoothing by the domain transform's recursive filter (Gastal & Oliveira, 2011).

    Pixels are spaced by `1 + sigma_s / sigma_r * |dI|` (colour difference summed over channels),
    then smoothed with spatial scale `sigma_s` (pixels) in that warped domain: averages spread
    freely inside regions and stop at edges whose contrast is well above `sigma_r`. A blurred edge
    keeps its full distance (the summed difference is the same), fine texture much less.
    `guide` planar `[3, h, w]` float32.
    """

    def __init__(self, guide: np.ndarray, sigma_s: float, sigma_r: float):
        g = np.asarray(guide, dtype=np.float32)
        self.sigma_s = float(sigma_s)
        k = np.float32(sigma_s / sigma_r)
        self.dx = (1.0 + k * np.abs(np.diff(g, axis=2)).sum(0)).T.copy()  # [w-1, h] (scan axis first)
        self.dy = 1.0 + k * np.abs(np.diff(g, axis=1)).sum(0)  # [h-1, w]

    def __call__(self, src: np.ndarray, iters: int = 2) -> np.ndarray:
        """Smooth `src [h, w]` or `[C, h, w]` (channels share the guide) -> same shape, float32."""
        J = np.asarray(src, dtype=np.float32)
        single = J.ndim == 2
        J = J[None] if single else J
        C, h, w = J.shape
        for i in range(iters):
            # Per-iteration scale so that the iterations compose to sigma_s (the paper's eq. 14).
            sigma_i = self.sigma_s * np.sqrt(3.0) * 2.0 ** (iters - i - 1) / np.sqrt(4.0**iters - 1.0)
            a = np.float32(np.exp(-np.sqrt(2.0) / max(sigma_i, 1e-6)))
            if w > 1:
                Jt = np.ascontiguousarray(J.transpose(2, 0, 1)).reshape(w, C * h)
                _rf_scan(Jt, np.tile(np.power(a, self.dx), C))
                J = Jt.reshape(w, C, h).transpose(1, 2, 0)
            if h > 1:
                Jt = np.ascontiguousarray(J.transpose(1, 0, 2)).reshape(h, C * w)
                _rf_scan(Jt, np.tile(np.power(a, self.dy), C))
                J = Jt.reshape(h, C, w).transpose(1, 0, 2)
        J = np.ascontiguousarray(J, dtype=np.float32)
        return J[0] if single else J


class GuidedFilter:
    """Colour guided filter (He et al., 2010) with the guide's statistics precomputed.

    Locally the output is a linear function of the guide, `q = a . guide + b`, so it is smooth where
    the image is flat and steps where the image has an edge; `eps` (in guide-variance units) sets
    how strong an edge must be to be followed. `guide [h, w, 3]`, or planar `[3, h, w]` with
    `planar=True`.
    """

    def __init__(self, guide: np.ndarray, radius: int, eps: float, *, planar: bool = False):
        I = np.asarray(guide, dtype=np.float32)
        if not planar:
            I = np.ascontiguousarray(I.transpose(2, 0, 1))
        self.guide, self.radius = I, int(radius)  # [3, h, w]
        self.mean_I = m = _box(I, self.radius)  # [3, h, w]
        iu = ((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2))
        var = _box(np.stack([I[i] * I[j] for i, j in iu]), self.radius)  # [6, h, w]
        for k, (i, j) in enumerate(iu):
            var[k] -= m[i] * m[j]
        rr, rg, rb, gg, gb, bb = var
        rr, gg, bb = rr + eps, gg + eps, bb + eps
        # Inverse of the symmetric 3x3 [[rr, rg, rb], [rg, gg, gb], [rb, gb, bb]] by cofactors.
        c00, c01, c02 = gg * bb - gb * gb, rb * gb - rg * bb, rg * gb - rb * gg
        c11, c12, c22 = rr * bb - rb * rb, rb * rg - rr * gb, rr * gg - rg * rg
        det = np.maximum(rr * c00 + rg * c01 + rb * c02, 1e-12)  # > 0: covariance + eps I is SPD
        self.inv = tuple(c / det for c in (c00, c01, c02, c11, c12, c22))  # 6 x [h, w]

    def __call__(self, src: np.ndarray) -> np.ndarray:
        """Edge-aware smoothing of `src [h, w]` -> `[h, w]` float32."""
        I, r, m = self.guide, self.radius, self.mean_I
        p = np.asarray(src, dtype=np.float32)
        mean_p = _box(p, r)  # [h, w]
        cr, cg, cb = _box(I * p, r) - m * mean_p  # 3 x [h, w]: cov(I, p) per window
        i00, i01, i02, i11, i12, i22 = self.inv
        a = np.stack([i00 * cr + i01 * cg + i02 * cb, i01 * cr + i11 * cg + i12 * cb, i02 * cr + i12 * cg + i22 * cb])
        b = mean_p - a[0] * m[0] - a[1] * m[1] - a[2] * m[2]  # [h, w]
        a, b = _box(a, r), _box(b, r)  # average the window models covering each pixel
        return (a[0] * I[0] + a[1] * I[1] + a[2] * I[2] + b).astype(np.float32)


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """Edge-aware smoothing of `src [h, w]` guided by the image `guide [h, w, 3]` -> `[h, w]` float32."""
    return GuidedFilter(guide, radius, eps)(src)


# -- the estimator ----------------------------------------------------------------------------------


class BuiltinDepth:
    """Weight-free monocular depth from ground-plane, detail, aerial-perspective and centre cues.

    Cue weights are relative (normalized to sum to 1). Spatial scales are fractions of the longest
    side of the internal image (`work_size` pixels): `pool_sigma` pools the cue measurements within
    regions, `smooth_sigma` smooths the combined map, `guide_radius` is the guided filter's window
    (0 disables it). `edge_contrast` is the colour difference (summed over RGB) treated as a region
    boundary; `guide_eps` the guide variance the guided filter follows; `guide_blur` (work pixels)
    pre-blurs the guide so fine texture is not copied into the depth. `detail_tol` (log-energy
    units) and `color_tol` are the cue tolerances of `soft_rank`. `equalize` blends histogram
    equalization (1) with a 2-98 % percentile stretch (0) for the output.
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
        pool_sigma: float = 0.05,
        smooth_sigma: float = 0.15,
        edge_contrast: float = 0.3,
        guide_radius: float = 0.02,
        guide_eps: float = 1e-3,
        guide_blur: float = 1.5,
        detail_tol: float = 0.5,
        color_tol: float = 0.05,
        equalize: float = 0.5,
    ):
        weights = np.array([w_ground, w_detail, w_aerial, w_center], dtype=np.float64)
        if not np.all(np.isfinite(weights)) or np.any(weights < 0) or weights.sum() <= 0:
            raise PaintprocError(f"builtin depth: cue weights must be >= 0 and not all 0, got {weights.tolist()}")
        if int(work_size) < 8:
            raise PaintprocError(f"builtin depth: work_size must be >= 8, got {work_size}")
        if not 0.0 <= equalize <= 1.0:
            raise PaintprocError(f"builtin depth: equalize must be in [0, 1], got {equalize}")
        positive = dict(
            pool_sigma=pool_sigma, smooth_sigma=smooth_sigma, edge_contrast=edge_contrast, guide_eps=guide_eps
        )
        nonneg = dict(guide_radius=guide_radius, guide_blur=guide_blur, detail_tol=detail_tol, color_tol=color_tol)
        for k, v in positive.items():
            if not (np.isfinite(v) and v > 0):
                raise PaintprocError(f"builtin depth: {k} must be > 0, got {v}")
        for k, v in nonneg.items():
            if not (np.isfinite(v) and v >= 0):
                raise PaintprocError(f"builtin depth: {k} must be >= 0, got {v}")
        self.weights = weights / weights.sum()
        self.work_size = int(work_size)
        self.pool_sigma, self.smooth_sigma = float(pool_sigma), float(smooth_sigma)
        self.edge_contrast = float(edge_contrast)
        self.guide_radius, self.guide_eps, self.guide_blur = float(guide_radius), float(guide_eps), float(guide_blur)
        self.detail_tol, self.color_tol = float(detail_tol), float(color_tol)
        self.equalize = float(equalize)

    def __repr__(self) -> str:
        w = ", ".join(f"w_{k}={v:.3g}" for k, v in zip(self.CUES, self.weights))
        return f"BuiltinDepth({w}, work_size={self.work_size})"

    # -- cues: each `[h, w]` float32 in [0, 1], larger = nearer ------------------------------------

    @staticmethod
    @functools.lru_cache(maxsize=16)
    def _geometric_cues(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
        """Rank-normalized ground (lower = nearer) and centre (central = nearer) priors, cached."""
        n = h * w
        row = np.arange(h, dtype=np.float64)
        # Every pixel of a row ties: the mid-rank of row i is (i w + (w - 1) / 2) / (n - 1).
        ground = (row * w + (w - 1) / 2) / (n - 1) if n > 1 else np.full(h, 0.5)
        ground = np.ascontiguousarray(np.broadcast_to(ground.astype(np.float32)[:, None], (h, w)))
        y = ((np.arange(h, dtype=np.float32) + 0.5) / h - 0.5) * 2.0
        x = ((np.arange(w, dtype=np.float32) + 0.5) / w - 0.5) * 2.0
        center = rank_normalize(-(y[:, None] ** 2 + x[None, :] ** 2))  # elliptical: follows the aspect
        ground.flags.writeable = False
        center.flags.writeable = False
        return ground, center

    def _measurements(self, P: np.ndarray, guide: np.ndarray) -> np.ndarray:
        """Per-pixel cue measurements pooled within regions -> `[5, h, w]`: detail energy at two
        scales, chroma, warmth (red - blue), luminance. `P`, `guide` planar `[3, h, w]`."""
        h, w = P.shape[1:]
        lum = _LUMA[0] * P[0] + _LUMA[1] * P[1] + _LUMA[2] * P[2]  # [h, w]
        maps = []
        for s in (1.0, 2.5):  # derivative-of-Gaussian scales, in work pixels
            g = ndimage.gaussian_gradient_magnitude(lum, sigma=s, mode="reflect", truncate=3.0)
            e = _smooth(g * g, 1.5 * s)  # local energy
            # Erode by more than an edge's width: a lone contour vanishes, textured regions stay.
            e = ndimage.minimum_filter(e, size=2 * int(np.ceil(3.0 * s)) + 1, mode="reflect")
            maps.append(e)
        chroma = np.maximum(np.maximum(P[0], P[1]), P[2]) - np.minimum(np.minimum(P[0], P[1]), P[2])
        maps += [chroma, P[0] - P[2], lum]
        pool = DomainTransform(guide, max(1.0, self.pool_sigma * max(h, w)), self.edge_contrast)
        return pool(np.stack(maps), iters=2)

    def cues(self, image: np.ndarray) -> dict[str, np.ndarray]:
        """Cue maps `{name: [h, w]}` in [0, 1] (larger = nearer) for an image `[h, w, 3]`, computed
        at the image's own resolution (pass a work-size image)."""
        P = np.ascontiguousarray(as_rgb(image).transpose(2, 0, 1))
        return self._cues(P, self._guide(P))

    def _guide(self, P: np.ndarray) -> np.ndarray:
        if self.guide_blur > 0 and min(P.shape[1:]) > 2:
            return ndimage.gaussian_filter(P, sigma=(0, self.guide_blur, self.guide_blur), mode="reflect")
        return P

    def _cues(self, P: np.ndarray, guide: np.ndarray) -> dict[str, np.ndarray]:
        h, w = P.shape[1:]
        e1, e2, chroma, warm, lum = self._measurements(P, guide)
        floor = np.float32(5e-4)  # energy of an essentially flat region (noise, JPEG artefacts)
        detail = soft_rank(np.log(e1 + floor) + np.log(e2 + floor), self.detail_tol)
        ct = self.color_tol
        aerial = 0.45 * soft_rank(chroma, ct) + 0.30 * soft_rank(warm, ct) + 0.25 * (1.0 - soft_rank(lum, ct))
        ground, center = self._geometric_cues(h, w)
        return {"ground": ground, "detail": detail, "aerial": aerial.astype(np.float32), "center": center}

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """`image [H, W, 3]` in [0, 1] -> depth `[H, W]` float32 in [0, 1], 1 = nearest."""
        img = as_rgb(image)  # [H, W, 3]
        H, W = img.shape[:2]
        scale = min(1.0, self.work_size / max(H, W))
        h, w = max(1, round(H * scale)), max(1, round(W * scale))
        if (h, w) == (H, W):
            P = np.ascontiguousarray(np.moveaxis(img, -1, 0))  # [3, h, w]
        else:
            P = np.ascontiguousarray(np.moveaxis(np.clip(resize_image(img, (h, w), Image.Resampling.BOX), 0.0, 1.0), -1, 0))
        side = max(h, w)

        guide = self._guide(P)
        c = self._cues(P, guide)
        q = sum(float(wt) * c[k] for wt, k in zip(self.weights, self.CUES)).astype(np.float32)  # [h, w]
        q = DomainTransform(guide, max(1.0, self.smooth_sigma * side), self.edge_contrast)(q, iters=2)
        if self.guide_radius > 0:
            q = GuidedFilter(guide, max(1, round(self.guide_radius * side)), self.guide_eps, planar=True)(q)
        # Upsample the result, not guided-filter coefficients: applying those to the sharp full-res
        # image would copy fine texture (eyes, fur) into the depth.
        q_full = q if (h, w) == (H, W) else resize_image(q, (H, W), Image.Resampling.BILINEAR)
        return self._spread(q, q_full)

    def _spread(self, ref: np.ndarray, q: np.ndarray) -> np.ndarray:
        """Map `q` to [0, 1] by a monotone curve fitted on the work-size map `ref`: `equalize` x the
        tolerant CDF (histogram equalization) + (1 - `equalize`) x a 2-98 % percentile stretch."""
        lo, hi = float(ref.min()), float(ref.max())
        if ref.size < 2 or hi - lo <= 1e-6:
            return np.full(q.shape, 0.5, dtype=np.float32)
        cdf = _SoftCDF(ref, tol=0.01 * (hi - lo))
        x = cdf.centers()  # [B]
        p_lo, p_hi = np.interp([0.02, 0.98], cdf.cdf, x)
        if not p_hi > p_lo:
            p_lo, p_hi = lo, hi
        stretch = np.clip((x - p_lo) / (p_hi - p_lo), 0.0, 1.0)
        return normalize_depth(cdf(q, self.equalize * cdf.cdf + (1.0 - self.equalize) * stretch))


register_estimator("builtin", BuiltinDepth)
