"""Process scores: does a painting process look human-made — back to front, coarse to fine?

The image is split into a grid of regions. A region *settles* at the first normalised time after
which its error to the finished image stays below `rel` (half) of that region's largest error.
- **layering**: Spearman correlation between a region's nearness (depth, 1 = near) and its settle
  time. Far regions first => positive; near first => negative; no depth order => ~0.
- **refinement**: Spearman correlation between a region's spatial frequency (high-pass energy of
  the finished image) and its settle time. Flat regions first, detail last => positive.

Both compare a region only with the regions of its own grid row (the correlations are averaged
over rows, weighted by regions): in photos depth and detail change with height, so a plain
top-to-bottom sweep would otherwise score as layered (measured on the bundled photos: a raster
reveal scores +0.8 on the global correlation, `layering_global`, and ~0 row by row). A threshold
of half the peak error keeps "many small strokes land late" from reading as order: strokes in a
random order score ~0 with it, but +0.3 with a quarter.
- **temporal coherence**: the perceptual change between consecutive frames (mean) and how evenly
  it is spread (jitter: mean |change step to step| / mean change; 0 = perfectly even).
- **final fidelity**: PSNR / SSIM / LPIPS of the last frame to the reference image.

Regions that never differ from the final image by more than `abs_tol` (e.g. a white sky on a
white canvas) carry no order and are left out. A correlation over < 3 regions, or with no spread,
is 0.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from scipy import ndimage, stats

from paintproc_jax.metrics import fidelity

GRID_CELLS = 16  # regions per side of the grid (16 x 16 = 256 regions)


def region_grid(h: int, w: int, cells: int = GRID_CELLS) -> np.ndarray:
    """Region ids [H, W] of a `cells` x `cells` grid (cells at least 2 pixels on a side)."""
    ch, cw = max(1, min(cells, h // 2)), max(1, min(cells, w // 2))
    rows = np.minimum(np.arange(h) * ch // h, ch - 1)
    cols = np.minimum(np.arange(w) * cw // w, cw - 1)
    return rows[:, None] * cw + cols[None, :]


def region_means(values: np.ndarray, regions: np.ndarray) -> np.ndarray:
    """values [..., H, W] -> [..., R]: mean per region."""
    n = int(regions.max()) + 1
    flat = values.reshape(values.shape[:-2] + (-1,))
    ids = regions.reshape(-1)
    counts = np.bincount(ids, minlength=n).astype(np.float64)
    sums = np.stack([np.bincount(ids, weights=row, minlength=n) for row in flat.reshape(-1, flat.shape[-1])])
    return (sums / counts).reshape(values.shape[:-2] + (n,))


def settle_times(frames: np.ndarray, regions: np.ndarray, rel: float = 0.5, abs_tol: float = 0.02) -> tuple[np.ndarray, np.ndarray]:
    """(settle time [R] in [0, 1], valid [R]) of each region for frames [T, H, W, 3] in painting order.

    A region's error e(t) is its mean |frame - final| over pixels and channels; it settles at the
    first frame from which e stays <= rel * max_t e(t). `valid` is False where max e <= abs_tol.
    """
    frames = np.asarray(frames, np.float32)
    t = len(frames)
    err = region_means(np.abs(frames - frames[-1]).mean(axis=-1), regions)  # [T, R]
    peak = err.max(axis=0)
    above = err > rel * peak[None]  # [T, R]
    # last frame still above the threshold, +1 = first frame from which it stays below
    last_above = np.where(above.any(axis=0), t - 1 - np.argmax(above[::-1], axis=0), -1)
    settle = (last_above + 1) / (t - 1)
    return settle.astype(np.float64), peak > abs_tol


def spatial_frequency(image: np.ndarray, sigma: float = 1.5) -> np.ndarray:
    """High-pass energy [H, W] of an image [H, W, 3]: |gray - blur(gray)|, the local detail."""
    gray = np.asarray(image, np.float64) @ np.array([0.299, 0.587, 0.114])
    return np.abs(gray - ndimage.gaussian_filter(gray, sigma))


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    r = stats.spearmanr(a, b).statistic
    return 0.0 if not np.isfinite(r) else float(r)


def _rowwise_spearman(a: np.ndarray, b: np.ndarray, valid: np.ndarray, row: np.ndarray) -> float:
    """Spearman of a vs b within each row of regions, averaged over rows weighted by valid regions."""
    rs, ws = [], []
    for r in np.unique(row):
        v = valid & (row == r)
        if v.sum() >= 3:
            rs.append(_spearman(a[v], b[v]))
            ws.append(v.sum())
    return float(np.average(rs, weights=ws)) if rs else 0.0


def order_scores(frames: np.ndarray, reference: np.ndarray, depth: np.ndarray | None, cells: int = GRID_CELLS) -> dict:
    """{"layering", "layering_global", "refinement", "regions"} for frames [T, H, W, 3] (painting
    order), the reference [H, W, 3] and depth [H, W] (1 = near; without it no layering scores)."""
    frames = np.asarray(frames, np.float32)
    h, w = frames.shape[1:3]
    regions = region_grid(h, w, cells)
    row = region_means(np.broadcast_to(np.arange(h, dtype=np.float64)[:, None], (h, w)), regions)  # mean y per region
    settle, valid = settle_times(frames, regions)
    out = {"regions": int(valid.sum())}
    freq = region_means(spatial_frequency(reference), regions)
    out["refinement"] = _rowwise_spearman(freq, settle, valid, row)
    if depth is not None:
        near = region_means(np.asarray(depth, np.float64), regions)
        out["layering"] = _rowwise_spearman(near, settle, valid, row)
        out["layering_global"] = _spearman(near[valid], settle[valid])
    return out


def temporal_scores(frames: np.ndarray, distance: Callable) -> dict:
    """{"temporal_change", "temporal_jitter"} from the perceptual distance of consecutive frames."""
    frames = np.asarray(frames, np.float32)
    d = np.asarray(distance(frames[:-1], frames[1:]), np.float64)  # [T - 1]
    mean = float(d.mean())
    jitter = float(np.mean(np.abs(np.diff(d))) / mean) if len(d) > 1 and mean > 0 else 0.0
    return {"temporal_change": mean, "temporal_jitter": jitter}


def final_scores(final: np.ndarray, reference: np.ndarray, distance: Callable) -> dict:
    """{"psnr_final", "ssim_final", "lpips_final"}: the finished frame against the reference image."""
    final, reference = np.asarray(final, np.float32), np.asarray(reference, np.float32)
    return {
        "psnr_final": float(fidelity.psnr(final, reference)),
        "ssim_final": float(fidelity.ssim(final, reference)),
        "lpips_final": float(np.asarray(distance(final[None], reference[None]))[0]),
    }


def pdp_monotonicity(pdp: np.ndarray) -> float:
    """Fraction of time steps on which the PDP does not rise (1 = always moving toward the final)."""
    d = np.diff(np.asarray(pdp, np.float64))
    return float(np.mean(d <= 1e-6)) if len(d) else 1.0
