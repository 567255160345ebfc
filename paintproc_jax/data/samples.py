"""A folder of sample photos (JPEG) made from scikit-image's bundled images, for tests, benchmarks
and previews: nothing is downloaded. Needs scikit-image (the `test` extra)."""

from __future__ import annotations

import pathlib

import numpy as np
from PIL import Image

from paintproc_jax.errors import PaintprocError

# Colour photos shipped inside scikit-image (no download).
_SKIMAGE_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field")


def sample_photos() -> list[np.ndarray]:
    """scikit-image's bundled colour photos, uint8 [H, W, 3]."""
    try:
        from skimage import data
    except ImportError:
        raise PaintprocError("sample images need scikit-image: pip install -e '.[test]'") from None
    return [np.asarray(getattr(data, name)())[..., :3] for name in _SKIMAGE_PHOTOS]


def write_sample_folder(directory, count: int = 32, *, seed: int = 0, min_side: int = 160, max_side: int = 480, quality: int = 90) -> list[pathlib.Path]:
    """Writes `count` JPEGs (random crops of the sample photos, random sizes and aspects) into `directory`."""
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    photos = sample_photos()
    paths = []
    for i in range(count):
        photo = photos[i % len(photos)]
        h, w = photo.shape[:2]
        ch = int(rng.integers(min(h, 96), h + 1))
        cw = int(np.clip(ch * rng.uniform(0.75, 1.33), min(w, 96), w))
        y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        im = Image.fromarray(np.ascontiguousarray(photo[y : y + ch, x : x + cw]))
        side = int(rng.integers(min_side, max_side + 1))
        scale = side / max(ch, cw)
        im = im.resize((max(1, round(cw * scale)), max(1, round(ch * scale))), Image.Resampling.LANCZOS)
        path = directory / f"sample_{i:04d}.jpg"
        im.save(path, quality=quality)
        paths.append(path)
    return paths
