"""Test setup: 8 fake CPU devices for sharding tests, a persistent compilation cache, absl flags."""

import os
import pathlib

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

_CACHE = pathlib.Path(os.environ.get("PAINTPROC_TEST_CACHE", pathlib.Path.home() / ".cache" / "paintproc_jax_tests"))
jax.config.update("jax_compilation_cache_dir", str(_CACHE / "jax"))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)

try:  # grain's multiprocessing reads absl flags; pytest does not parse them.
    from absl import flags

    flags.FLAGS.mark_as_parsed()
except Exception:  # pragma: no cover - absl always present with our deps
    pass


@pytest.hookimpl(optionalhook=True)  # without pytest-xdist (e.g. on the GPU image) the hook is unknown
def pytest_xdist_auto_num_workers(config):
    """`-n auto`: one worker per core, at most 4 (each holds 8 fake devices and its own compiles)."""
    return max(1, min(os.cpu_count() or 1, 4))


@pytest.fixture
def astronaut():
    """scikit-image's astronaut (512x512 RGB, uint8) — a real photo shipped by a dependency."""
    from skimage import data

    return data.astronaut()


@pytest.fixture
def rng():
    return np.random.default_rng(0)
