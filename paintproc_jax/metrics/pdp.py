"""Perceptual Distance Profile (Loomis Painter): for a process, the perceptual (LPIPS) distance of
each frame to the final frame over normalised time in [0, 1]; it shows how a painting converges
(early blocking-in, then details). Curves of different lengths are compared on a common grid.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

GRID = 101  # points of the common time grid, t = 0, 0.01, ..., 1


def time_grid(points: int = GRID) -> np.ndarray:
    return np.linspace(0.0, 1.0, points)


def pdp_values(frames: np.ndarray, distance: Callable) -> np.ndarray:
    """Distance of each frame [T, H, W, 3] (painting order, the finished image last) to the last
    frame -> [T]; `distance(x [N, H, W, 3], y [N, H, W, 3]) -> [N]` is e.g. `LPIPS("alex")`."""
    frames = np.asarray(frames, np.float32)
    if frames.ndim != 4 or len(frames) < 2:
        raise ValueError(f"a process is frames [T >= 2, H, W, 3], got shape {frames.shape}")
    return np.asarray(distance(frames, np.broadcast_to(frames[-1], frames.shape)), np.float64)


def pdp_curve(frames: np.ndarray, distance: Callable, points: int = GRID) -> np.ndarray:
    """PDP of a process: `pdp_values` linearly resampled onto `time_grid(points)` -> [points]."""
    return resample(pdp_values(frames, distance), points)


def resample(values: np.ndarray, points: int = GRID) -> np.ndarray:
    """Values at T evenly spaced times in [0, 1] -> [points] by linear interpolation."""
    values = np.asarray(values, np.float64)
    return np.interp(time_grid(points), np.linspace(0.0, 1.0, len(values)), values)


def pdp_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute gap between two PDP curves on the same grid (0 = same profile; symmetric)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"PDP curves must be 1-D on one grid, got shapes {a.shape} and {b.shape}")
    return float(np.mean(np.abs(a - b)))


def pdp_stats(curves) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) curves [points] over a set of curves [N, points]."""
    curves = np.asarray(curves, np.float64)
    if curves.ndim != 2 or len(curves) == 0:
        raise ValueError(f"want curves [N >= 1, points], got shape {curves.shape}")
    return curves.mean(axis=0), curves.std(axis=0)


def pdp_auc(curve: np.ndarray) -> float:
    """Area under a PDP curve over t in [0, 1]: small = converges to the final image early."""
    curve = np.asarray(curve, np.float64)
    return float(np.mean((curve[1:] + curve[:-1]) / 2))  # trapezoid rule on an even grid over [0, 1]


def plot_pdp(curves: dict, path, title: str = "Perceptual Distance Profile") -> None:
    """PNG of mean ± std PDP bands, one per name: `curves` maps name -> [N, points] curves."""
    import matplotlib  # lazy: pyplot (~0.8 s) only when a PDP is plotted, and after choosing the Agg backend

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: as above

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    for name, c in curves.items():
        mean, std = pdp_stats(c)
        t = time_grid(len(mean))
        ax.plot(t, mean, label=f"{name} (n={len(np.atleast_2d(c))})")
        ax.fill_between(t, mean - std, mean + std, alpha=0.2)
    ax.set_xlabel("normalised time (0 = blank canvas, 1 = finished)")
    ax.set_ylabel("LPIPS to the final frame")
    ax.set_title(title)
    ax.set_xlim(0, 1)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
