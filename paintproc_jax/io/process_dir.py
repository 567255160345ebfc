"""Process folders: the one on-disk form of a painting process, written by `paintproc paint` (either
engine) and `tools/sample.py`, read by `tools/eval.py`.

    DIR/process.gif           the video (painting order, finished image last)
    DIR/process.mp4           the same, when imageio-ffmpeg is installed
    DIR/frames/frame_NNNN.png every frame, painting order
    DIR/contact_sheet.png     key frames
    DIR/depth.png             the depth map the process was made with (1 = near), when there is one
    DIR/process.json          what made it: {"engine", "source", "medium", "frames", "seed", ...}
"""

from __future__ import annotations

import json
import pathlib
from dataclasses import dataclass
from typing import Callable

import numpy as np
from PIL import Image

from paintproc_jax.errors import PaintprocError
from paintproc_jax.io.atomic import staged_dir
from paintproc_jax.io.images import resize_image, save_png
from paintproc_jax.io.video import mp4_available, save_contact_sheet, write_frames, write_gif, write_mp4

PROCESS_JSON = "process.json"


def write_process_dir(
    target,
    frames: np.ndarray,
    meta: dict,
    *,
    depth: np.ndarray | None = None,
    fps: float = 12.0,
    mp4: bool = True,
    extra: Callable[[pathlib.Path], list[str]] | None = None,
) -> list[str]:
    """Writes frames [T, H, W, 3] in [0, 1] (painting order) and `meta` as a process folder, staged
    and moved into place whole (an interrupted write leaves no partial folder). `extra(tmp)` may
    add engine-specific files. Returns the names written."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) < 2:
        raise ValueError(f"frames must be [T >= 2, H, W, 3], got shape {frames.shape}")
    written = []
    with staged_dir(target) as tmp:
        write_gif(tmp / "process.gif", frames, fps=fps)
        written.append("process.gif")
        if mp4 and mp4_available():
            write_mp4(tmp / "process.mp4", frames, fps=fps)
            written.append("process.mp4")
        write_frames(tmp / "frames", frames)
        written.append(f"frames/ ({len(frames)} PNGs)")
        save_contact_sheet(tmp / "contact_sheet.png", frames, labels=True)
        written.append("contact_sheet.png")
        if depth is not None:
            save_png(tmp / "depth.png", depth)
            written.append("depth.png")
        if extra is not None:
            written += extra(tmp)
        meta = {**meta, "frames": int(len(frames)), "height": int(frames.shape[1]), "width": int(frames.shape[2])}
        (tmp / PROCESS_JSON).write_text(json.dumps(meta, indent=1, default=str))
        written.append(PROCESS_JSON)
    return written


@dataclass(frozen=True)
class ProcessDir:
    """A process read back: frames [T, H, W, 3] float32 in [0, 1] (painting order), its meta,
    depth [H, W] in [0, 1] (1 = near) or None."""

    path: pathlib.Path
    frames: np.ndarray
    meta: dict
    depth: np.ndarray | None


def is_process_dir(path) -> bool:
    path = pathlib.Path(path)
    return (path / "frames").is_dir() and any((path / "frames").glob("frame_*.png"))


def read_png(path: pathlib.Path) -> np.ndarray:
    """One frame [H, W, 3] float32 in [0, 1]; an unreadable file is a `PaintprocError` naming it."""
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"), np.float32) / 255.0
    except (OSError, ValueError) as e:
        raise PaintprocError(f"cannot read frame {path}: {e}") from None


def read_process_dir(path) -> ProcessDir:
    """Reads a process folder; frames are all `frames/frame_*.png` in name order."""
    path = pathlib.Path(path)
    names = sorted((path / "frames").glob("frame_*.png"))
    if len(names) < 2:
        raise PaintprocError(f"{path} is not a process folder: it needs frames/frame_*.png (at least 2)")
    frames = np.stack([read_png(n) for n in names])  # sizes must agree; np.stack says so otherwise
    meta = {}
    if (path / PROCESS_JSON).exists():
        try:
            meta = json.loads((path / PROCESS_JSON).read_text())
        except json.JSONDecodeError as e:
            raise PaintprocError(f"{path / PROCESS_JSON} is not valid JSON ({e})") from None
    depth = None
    if (path / "depth.png").exists():
        with Image.open(path / "depth.png") as im:  # 8-bit, as save_png writes it
            depth = np.asarray(im.convert("L"), np.float32) / 255.0
        if depth.shape != frames.shape[1:3]:
            depth = resize_image(depth, frames.shape[1:3], Image.Resampling.BILINEAR)
    return ProcessDir(path, frames, meta, depth)
