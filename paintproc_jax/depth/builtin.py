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

import numpy as np
from PIL import Image
from scipy import ndimage

from paintproc_jax.depth.base import normalize_depth, register_estimator
from paintproc_jax.errors import PaintprocError

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


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


def rank_normalize(x: np.ndarray) -> np.ndarray:
    """Map values to their mid-rank in [0, 1] (ties share the average rank; constant -> 0.5)."""
    flat = np.asarray(x, dtype=np.float32).ravel()
    n = flat.size
    if n < 2 or flat.min() == flat.max():
        return np.full(np.shape(x), 0.5, dtype=np.float32)
    order = np.argsort(flat, kind="stable")
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


def _resize_channels(x: np.ndarray, hw: tuple[int, int], resample) -> np.ndarray:
    """Resize each channel of `[h, w, C]` float32 to `[H, W, C]` with Pillow's float ('F') mode."""
    H, W = hw
    chans = [
        np.asarray(Image.fromarray(np.ascontiguousarray(x[..., c]), mode="F").resize((W, H), resample))
        for c in range(x.shape[-1])
    ]
    return np.stack(chans, axis=-1)


def _box(x: np.ndarray, r: int) -> np.ndarray:
    """Mean over a (2r+1)^2 window per channel; `[h, w]` or `[h, w, C]`."""
    size = (2 * r + 1, 2 * r + 1) + (1,) * (x.ndim - 2)
    return ndimage.uniform_filter(x, size=size, mode="reflect")


def guided_filter_coeffs(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """Colour guided filter (He et al.): per-pixel `a [h, w, 3]`, `b [h, w]` with `q = a . guide + b`.

    `guide [h, w, 3]`, `src [h, w]`, both float32. Locally the output is a linear function of the
    guide, so it is smooth where the image is flat and steps where the image has an edge; `eps`
    (in guide-variance units) sets how strong an edge must be to be followed.
    """
    I = guide.astype(np.float32)
    p = src.astype(np.float32)
    mean_I = _box(I, radius)  # [h, w, 3]
    mean_p = _box(p, radius)  # [h, w]
    cov_Ip = _box(I * p[..., None], radius) - mean_I * mean_p[..., None]  # [h, w, 3]
    iu = ((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2))
    prods = np.stack([I[..., i] * I[..., j] for i, j in iu], axis=-1)  # [h, w, 6]
    var = _box(prods, radius) - np.stack([mean_I[..., i] * mean_I[..., j] for i, j in iu], axis=-1)
    rr, rg, rb, gg, gb, bb = (var[..., k] for k in range(6))
    rr = rr + eps
    gg = gg + eps
    bb = bb + eps
    # Inverse of the symmetric 3x3 [[rr, rg, rb], [rg, gg, gb], [rb, gb, bb]] by cofactors.
    c00 = gg * bb - gb * gb
    c01 = rb * gb - rg * bb
    c02 = rg * gb - rb * gg
    c11 = rr * bb - rb * rb
    c12 = rb * rg - rr * gb
    c22 = rr * gg - rg * rg
    det = rr * c00 + rg * c01 + rb * c02
    det = np.maximum(det, 1e-12)
    cr, cg, cb = cov_Ip[..., 0], cov_Ip[..., 1], cov_Ip[..., 2]
    a = np.stack(
        [
            (c00 * cr + c01 * cg + c02 * cb) / det,
            (c01 * cr + c11 * cg + c12 * cb) / det,
            (c02 * cr + c12 * cg + c22 * cb) / det,
        ],
        axis=-1,
    )  # [h, w, 3]
    b = mean_p - (a * mean_I).sum(-1)  # [h, w]
    return _box(a, radius), _box(b, radius)


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """Edge-aware smoothing of `src [h, w]` guided by `guide [h, w, 3]` -> `[h, w]` float32."""
    a, b = guided_filter_coeffs(guide, src, radius, eps)
    return ((a * guide).sum(-1) + b).astype(np.float32)


class BuiltinDepth:
    """Weight-free monocular depth from ground-plane, detail, aerial-perspective and centre cues.

    Weights are relative (they are normalized to sum to 1). `work_size` is the longest side of the
    internal resolution; `guide_radius` and `guide_eps` set the edge-aware smoothing (radius as a
    fraction of `work_size`); `equalize` blends rank equalization (1) with a 2-98 % percentile
    stretch (0) for the final [0, 1] mapping.
    """

    name = "builtin"

    def __init__(
        self,
        *,
        w_ground: float = 0.35,
        w_detail: float = 0.30,
        w_aerial: float = 0.25,
        w_center: float = 0.10,
        work_size: int = 256,
        guide_radius: float = 1 / 32,
        guide_eps: float = 1e-3,
        equalize: float = 0.5,
    ):
        weights = np.array([w_ground, w_detail, w_aerial, w_center], dtype=np.float64)
        if not np.all(np.isfinite(weights)) or np.any(weights < 0) or weights.sum() <= 0:
            raise PaintprocError(f"builtin depth: cue weights must be >= 0 and not all 0, got {weights.tolist()}")
        if int(work_size) < 8:
            raise PaintprocError(f"builtin depth: work_size must be >= 8, got {work_size}")
        if not 0.0 <= equalize <= 1.0:
            raise PaintprocError(f"builtin depth: equalize must be in [0, 1], got {equalize}")
        if not guide_eps > 0 or not guide_radius > 0:
            raise PaintprocError("builtin depth: guide_radius and guide_eps must be > 0")
        self.weights = weights / weights.sum()
        self.work_size = int(work_size)
        self.guide_radius = float(guide_radius)
        self.guide_eps = float(guide_eps)
        self.equalize = float(equalize)

    def __repr__(self) -> str:
        w = ", ".join(f"{k}={v:.3g}" for k, v in zip(("ground", "detail", "aerial", "center"), self.weights))
        return f"BuiltinDepth({w}, work_size={self.work_size})"

    # -- cues, each `[h, w]` float32 where larger = nearer (before rank normalization) -------------

    @staticmethod
    def _ground_cue(h: int, w: int) -> np.ndarray:
        y = (np.arange(h, dtype=np.float32) + 0.5) / h  # 0 = top, 1 = bottom
        return np.broadcast_to(y[:, None], (h, w))

    @staticmethod
    def _center_cue(h: int, w: int) -> np.ndarray:
        y = ((np.arange(h, dtype=np.float32) + 0.5) / h - 0.5) * 2.0
        x = ((np.arange(w, dtype=np.float32) + 0.5) / w - 0.5) * 2.0
        return -(y[:, None] ** 2 + x[None, :] ** 2)  # elliptical: adapts to the aspect ratio

    @staticmethod
    def _detail_cue(lum: np.ndarray, sigma_s: float) -> np.ndarray:
        """Local gradient energy at two scales, smoothed; log so it is scale-free before ranking."""
        out = np.zeros_like(lum)
        for s in (1.0, 2.5):
            g = ndimage.gaussian_gradient_magnitude(lum, sigma=s, mode="reflect")
            out += np.log(ndimage.gaussian_filter(g * g, sigma=sigma_s, mode="reflect") + 1e-6)
        return out

    @staticmethod
    def _aerial_cue(img: np.ndarray, lum: np.ndarray, detail_rank: np.ndarray, sigma_s: float) -> np.ndarray:
        """Saturated, warm, darker/contrasty = near; grey, bluish, bright and flat = far."""
        mx, mn = img.max(-1), img.min(-1)
        chroma = mx - mn  # [h, w]
        warm = img[..., 0] - img[..., 2]  # red minus blue
        haze = lum * (1.0 - detail_rank)  # bright and low contrast
        parts = [ndimage.gaussian_filter(c, sigma=sigma_s, mode="reflect") for c in (chroma, warm, haze)]
        return 0.45 * rank_normalize(parts[0]) + 0.30 * rank_normalize(parts[1]) + 0.25 * (1.0 - rank_normalize(parts[2]))

    def cues(self, small: np.ndarray) -> dict[str, np.ndarray]:
        """Rank-normalized cue maps `{name: [h, w]}` (larger = nearer) for an image at work size."""
        h, w = small.shape[:2]
        lum = small @ _LUMA  # [h, w]
        side = max(h, w)
        detail = rank_normalize(self._detail_cue(lum, sigma_s=max(1.0, 0.03 * side)))
        aerial = rank_normalize(self._aerial_cue(small, lum, detail, sigma_s=max(0.5, 0.01 * side)))
        return {
            "ground": rank_normalize(self._ground_cue(h, w)),
            "detail": detail,
            "aerial": aerial,
            "center": rank_normalize(self._center_cue(h, w)),
        }

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """`image [H, W, 3]` in [0, 1] -> depth `[H, W]` float32 in [0, 1], 1 = nearest."""
        img = as_rgb(image)  # [H, W, 3]
        H, W = img.shape[:2]
        scale = min(1.0, self.work_size / max(H, W))
        h, w = max(1, round(H * scale)), max(1, round(W * scale))
        small = img if (h, w) == (H, W) else np.clip(_resize_channels(img, (h, w), Image.Resampling.BOX), 0, 1)

        c = self.cues(small)
        raw = sum(wt * c[k] for wt, k in zip(self.weights, ("ground", "detail", "aerial", "center")))  # [h, w]

        radius = max(1, round(self.guide_radius * max(h, w)))
        a, b = guided_filter_coeffs(small, raw.astype(np.float32), radius, self.guide_eps)
        q_small = (a * small).sum(-1) + b  # [h, w]
        if (h, w) == (H, W):
            q = q_small
        else:  # fast guided filter: smooth coefficients upsampled, applied to the full-res image
            ab = _resize_channels(np.concatenate([a, b[..., None]], axis=-1), (H, W), Image.Resampling.BILINEAR)
            q = (ab[..., :3] * img).sum(-1) + ab[..., 3]  # [H, W]
        return self._spread(q_small, q)

    def _spread(self, ref: np.ndarray, q: np.ndarray) -> np.ndarray:
        """Map `q` to [0, 1] by a monotone curve fitted on `ref` (the work-size map): equalize + stretch."""
        vals = np.sort(ref.ravel().astype(np.float64))
        if vals[-1] - vals[0] <= 1e-9 * max(1.0, abs(vals[-1])):
            return np.full(q.shape, 0.5, dtype=np.float32)
        qd = q.astype(np.float64)
        uniq, first = np.unique(vals, return_index=True)
        last = np.append(first[1:], vals.size) - 1
        ranks = (first + last) / 2.0 / max(1, vals.size - 1)  # mid-rank of each distinct value
        eq = np.interp(qd, uniq, ranks)
        lo, hi = np.percentile(vals, [2.0, 98.0])
        if hi <= lo:
            lo, hi = vals[0], vals[-1]
        st = np.clip((qd - lo) / (hi - lo), 0.0, 1.0)
        return normalize_depth(self.equalize * eq + (1.0 - self.equalize) * st)


register_estimator("builtin", BuiltinDepth)
