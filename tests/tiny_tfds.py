"""A tiny TFDS image dataset (ArrayRecord, built without TensorFlow) for pipeline tests."""

import io
import numpy as np
import tensorflow_datasets as tfds
from PIL import Image


class TinyImages(tfds.core.GeneratorBasedBuilder):
    """`tiny_images`: 6 random 40x48 RGB images in one split, "train"."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({"image": tfds.features.Image(shape=(None, None, 3))}))

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(6, 0)}

    def _generate_examples(self, n, seed):
        rng = np.random.default_rng(seed)
        for i in range(n):
            buf = io.BytesIO()
            Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(buf, format="PNG")
            yield i, {"image": buf.getvalue()}
