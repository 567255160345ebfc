"""Frame sequences out: animated GIF (Pillow), MP4 (imageio + ffmpeg), PNG frames, contact sheet.

Frames are `[T, H, W, 3]`, float in [0, 1] or uint8. Every file is written atomically.
"""

from __future__ import annotations

import math
import os
import pathlib
import warnings

import imageio.v2 as imageio
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from paintproc_jax.errors import PaintprocError
from paintproc_jax.io.atomic import atomic_path
from paintproc_jax.io.images import save_png, to_uint8


def _frames_uint8(frames) -> np.ndarray:
    """[T, H, W, 3] or [T, H, W] float/uint8 -> [T, H, W, 3] uint8."""
    frames = to_uint8(frames)
    if frames.ndim == 3:
        frames = np.repeat(frames[..., None], 3, axis=-1)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] == 0:
        raise ValueError(f"frames must be a non-empty [T, H, W, 3] array, got {frames.shape}")
    return frames


def write_gif(path, frames, fps: float = 12, hold_last_s: float = 1.5) -> pathlib.Path:
    """Looping animated GIF; the last frame stays up `hold_last_s` seconds longer.

    Each frame gets its own adaptive 256-colour palette (fast octree: ~20x faster than median
    cut, smaller files, similar error on photos).
    """
    frames = _frames_uint8(frames)  # [T, H, W, 3]
    images = [Image.fromarray(f).quantize(colors=256, method=Image.Quantize.FASTOCTREE) for f in frames]
    step_ms = 1000.0 / fps
    durations = [int(round(step_ms))] * len(images)
    durations[-1] = int(round(step_ms + 1000.0 * hold_last_s))
    path = pathlib.Path(path)
    with atomic_path(path) as tmp:
        images[0].save(
            tmp, format="GIF", save_all=True, append_images=images[1:], duration=durations, loop=0, optimize=False
        )
    return path


def mp4_available() -> bool:
    """True when imageio-ffmpeg is installed and its ffmpeg executable exists."""
    try:
        import imageio_ffmpeg  # lazy: optional (the video extra); its absence means no MP4

        return os.path.isfile(imageio_ffmpeg.get_ffmpeg_exe())
    except Exception:  # not installed, or no binary for this platform
        return False


def write_mp4(path, frames, fps: float = 12, hold_last_s: float = 1.5) -> pathlib.Path:
    """H.264 MP4 (yuv420p, plays everywhere); the last frame is repeated for `hold_last_s` s.

    yuv420p needs even sizes, so odd heights/widths are padded by repeating the edge pixels.
    """
    path = pathlib.Path(path)
    if not mp4_available():
        raise PaintprocError(f"cannot write {path}: MP4 needs ffmpeg (pip install imageio-ffmpeg), or write a .gif")
    frames = _frames_uint8(frames)  # [T, H, W, 3]
    _, h, w, _ = frames.shape
    frames = np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")  # [T, H+h%2, W+w%2, 3]
    hold = int(round(hold_last_s * fps))
    with atomic_path(path) as tmp, warnings.catch_warnings():  # the temp name keeps .mp4 for ffmpeg
        # imageio starts ffmpeg with fork+exec; Python warns about fork in a threaded (JAX) process,
        # which is harmless here because the child execs immediately.
        warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)
        writer = imageio.get_writer(
            tmp,
            format="FFMPEG",
            mode="I",
            fps=fps,
            codec="libx264",
            pixelformat="yuv420p",
            macro_block_size=1,  # we already padded to even sizes; do not let imageio resize
            ffmpeg_log_level="error",
            output_params=["-movflags", "+faststart"],
        )
        try:
            for frame in frames:
                writer.append_data(frame)
            for _ in range(hold):
                writer.append_data(frames[-1])
        finally:
            writer.close()
    return path


def write_frames(directory, frames) -> list[pathlib.Path]:
    """Writes frame_0000.png, frame_0001.png, ... into `directory`; returns their paths."""
    frames = _frames_uint8(frames)
    directory = pathlib.Path(directory)
    digits = max(4, len(str(len(frames) - 1)))
    return [save_png(directory / f"frame_{i:0{digits}d}.png", f) for i, f in enumerate(frames)]


def key_frame_indices(num_frames: int, num: int = 8) -> np.ndarray:
    """`num` frame indices evenly spaced over [0, num_frames - 1], always with first and last."""
    num = max(1, min(num, num_frames))
    if num == 1:
        return np.array([num_frames - 1])
    return np.unique(np.round(np.linspace(0, num_frames - 1, num)).astype(int))


def contact_sheet(frames, num: int = 8, cols: int = 4, pad: int = 4, labels=None) -> np.ndarray:
    """Key frames tiled on white: uint8 [rows * (H + label) + pad, cols * (W + pad) + pad, 3].

    `labels`: None (no text), True (normalised time "t=0.00" ... "t=1.00"), or one string per
    input frame (only the chosen key frames' labels are drawn).
    """
    frames = _frames_uint8(frames)  # [T, H, W, 3]
    t, h, w, _ = frames.shape
    idx = key_frame_indices(t, num)
    if labels is True:
        labels = [f"t={i / max(t - 1, 1):.2f}" for i in range(t)]
    elif labels is not None and len(labels) != t:
        raise ValueError(f"labels must have one string per frame ({t}), got {len(labels)}")
    font = ImageFont.load_default()
    label_h = 0
    if labels is not None:
        box = ImageDraw.Draw(Image.new("RGB", (1, 1))).textbbox((0, 0), "t=0.00Ag", font=font)
        label_h = box[3] + 2
    cols = max(1, min(cols, len(idx)))
    rows = math.ceil(len(idx) / cols)
    sheet = Image.new("RGB", (cols * (w + pad) + pad, rows * (h + label_h + pad) + pad), "white")
    draw = ImageDraw.Draw(sheet)
    for k, i in enumerate(idx):
        x0 = pad + (k % cols) * (w + pad)
        y0 = pad + (k // cols) * (h + label_h + pad)
        sheet.paste(Image.fromarray(frames[i]), (x0, y0))
        if labels is not None:
            draw.text((x0, y0 + h + 1), str(labels[i]), fill=(0, 0, 0), font=font)
    return np.asarray(sheet)  # [H', W', 3] uint8


def save_contact_sheet(path, frames, num: int = 8, cols: int = 4, pad: int = 4, labels=None) -> pathlib.Path:
    """`contact_sheet` written as a PNG (atomic)."""
    return save_png(path, contact_sheet(frames, num=num, cols=cols, pad=pad, labels=labels))
