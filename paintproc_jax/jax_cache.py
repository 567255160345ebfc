"""The persistent compilation cache every command turns on (`PAINTPROC_CACHE`, default ~/.cache/paintproc_jax)."""

from __future__ import annotations

import os
import pathlib


def setup_jax() -> None:
    """Persistent compilation cache: the second run of a command skips most compile time."""
    import jax  # lazy: the CLI imports this module for every command, --help included, without JAX

    cache = pathlib.Path(os.environ.get("PAINTPROC_CACHE", pathlib.Path.home() / ".cache" / "paintproc_jax")) / "jax"
    jax.config.update("jax_compilation_cache_dir", str(cache))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
