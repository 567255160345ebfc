"""Self-supervised training data: reverse-painting clips made on the fly from any images.

- `config`: the `data` config section (ml_collections) and its validation.
- `sources`: image folders, TFDS datasets, program datasets (ArrayRecord) — random access.
- `examples`: the NumPy worker transform (decode, augment, depth, stroke plan, frame schedule).
- `pipeline`: the grain pipeline, per-process sharding, global arrays, checkpointable iterator.
- `clips`: the jitted batch renderer (programs -> clips), run on device inside the train step.
- `records`: (image, depth, fitted program) <-> bytes, for `tools/make_dataset.py` shards.

Modules other than `clips` and `pipeline` import no JAX, so grain workers stay NumPy-only.
"""
