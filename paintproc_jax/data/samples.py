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
        from skimage import data  # lazy: scikit-image is optional (the test extra)
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


# The CPU reference run's photos (`tools/make_photos.py`): trained on, and held out (never trained on,
# never tuned on; the eval and the behaviour test of the shipped model use them).
TRAIN_PHOTOS = ("astronaut", "coffee", "chelsea", "immunohistochemistry", "retina", "motorcycle", "china", "flower")
HELDOUT_PHOTOS = ("rocket", "grace_hopper", "hubble_deep_field")


def named_photo(name: str) -> np.ndarray:
    """One photo that an installed package ships, uint8 [H, W, 3]: scikit-image's bundled photos,
    matplotlib's grace_hopper, scikit-learn's china and flower."""
    if name == "grace_hopper":
        import matplotlib.cbook  # lazy: matplotlib only for this one photo

        with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
            return np.asarray(Image.open(f).convert("RGB"))
    if name in ("china", "flower"):
        try:
            from sklearn.datasets import load_sample_image  # lazy: scikit-learn is optional (the test extra)
        except ImportError:
            raise PaintprocError("the china/flower photos need scikit-learn: pip install -e '.[test]'") from None
        return np.asarray(load_sample_image(f"{name}.jpg"))[..., :3]
    try:
        from skimage import data  # lazy: scikit-image is optional (the test extra)
    except ImportError:
        raise PaintprocError("sample images need scikit-image: pip install -e '.[test]'") from None
    if name == "motorcycle":
        return np.asarray(data.stereo_motorcycle()[0])[..., :3]
    return np.asarray(getattr(data, name)())[..., :3]


def heldout_crops(photo: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """A held-out photo as eval images: the whole photo and two fixed square crops (left/top, right/bottom)."""
    h, w = photo.shape[:2]
    s = min(h, w) * 3 // 4
    return [("full", photo), ("crop_a", photo[:s, :s]), ("crop_b", photo[h - s :, w - s :])]


def write_photo_splits(directory, *, max_side: int = 512) -> dict[str, list[pathlib.Path]]:
    """DIR/train/<name>.png (TRAIN_PHOTOS) and DIR/heldout/<name>_<crop>.png (HELDOUT_PHOTOS, `heldout_crops`),
    each resized to at most `max_side` pixels. Returns the paths per split."""
    directory = pathlib.Path(directory)
    out = {"train": [], "heldout": []}
    for split, names in (("train", TRAIN_PHOTOS), ("heldout", HELDOUT_PHOTOS)):
        (directory / split).mkdir(parents=True, exist_ok=True)
        for name in names:
            photo = named_photo(name)
            items = [(name, photo)] if split == "train" else [(f"{name}_{c}", im) for c, im in heldout_crops(photo)]
            for stem, im in items:
                im = Image.fromarray(np.ascontiguousarray(im))
                scale = min(1.0, max_side / max(im.size))
                if scale < 1.0:
                    im = im.resize((round(im.size[0] * scale), round(im.size[1] * scale)), Image.Resampling.LANCZOS)
                path = directory / split / f"{stem}.png"
                im.save(path)
                out[split].append(path)
    return out
