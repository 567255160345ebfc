"""Experiment configs from explicit settings: the section defaults plus an experiment's overrides.

Every experiment's values live in its `configs/*.py` file (a table of variants and a `get_config(arg)`
that passes one to `assemble`); this module holds no experiment value. `assemble` starts each section
from its defaults (`data/config.py`, `models/config.py`, `diffusion/objective.py`, `train/config.py`),
applies exactly the overrides it is given, and checks that the sections agree
(`consistency.check_consistent`: clip length = 1 + model frames, image size, depth layers, tubelet).
"""

from __future__ import annotations

import copy
import importlib.util
import pathlib

import ml_collections

from paintproc_jax.consistency import check_consistent
from paintproc_jax.data.config import default_config as data_config
from paintproc_jax.diffusion.objective import default_config as diffusion_config
from paintproc_jax.models.config import MODEL_SIZES  # noqa: F401 - re-exported (it lives beside ModelSpec)
from paintproc_jax.models.config import default_config as model_config
from paintproc_jax.train.config import default_config as train_config

# The repository's experiment configs (a checkout: they are not part of the installed package).
CONFIGS_DIR = pathlib.Path(__file__).resolve().parents[1] / "configs"


def assemble(
    *, model_size: str, data: dict, model: dict, diffusion: dict, sample: dict, mesh: dict, train: dict,
    total_steps: int,
) -> ml_collections.ConfigDict:
    """The full config of one experiment: `data`, `model`, `diffusion`, `sample`, `mesh`, `train`,
    `total_steps` and `model_size`.

    `data`, `diffusion` and `train` (with its `optim` sub-dict) override their sections' defaults;
    `model` overrides `MODEL_SIZES[model_size]` over the model section's defaults; `sample` and
    `mesh` are the whole sections (they have no defaults elsewhere). Nothing else is set.
    """
    if model_size not in MODEL_SIZES:
        raise ValueError(f"unknown model size {model_size!r}; sizes: {sorted(MODEL_SIZES)}")
    data, model, diffusion, sample, mesh, train = copy.deepcopy((data, model, diffusion, sample, mesh, train))
    optim = train.pop("optim", {})
    c = ml_collections.ConfigDict()
    c.data = data_config()
    c.data.update(data)
    c.model = model_config()
    c.model.update(MODEL_SIZES[model_size])
    c.model.update(model)
    c.diffusion = diffusion_config()
    c.diffusion.update(diffusion)
    c.sample = ml_collections.ConfigDict(sample)
    c.mesh = ml_collections.ConfigDict(mesh)
    c.train = train_config()
    c.train.update(train)
    c.train.optim.update(optim)
    c.total_steps = total_steps
    c.model_size = model_size
    check_consistent(c)
    return c


def load_config_module(path):
    """A config file (`configs/tiny.py`, ...) as a module, loaded as `config_flags` loads it."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} not found (the experiment configs are in a checkout's configs/)")
    spec = importlib.util.spec_from_file_location(f"paintproc_config_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_config_file(path, arg: str | None = None) -> ml_collections.ConfigDict:
    """`get_config(arg)` of a config file."""
    return load_config_module(path).get_config(arg)


def tiny_config(style: str = "animatepainter") -> ml_collections.ConfigDict:
    """`configs/tiny.py:STYLE`, the CPU-tiny experiment (tests use it; its values are in that file)."""
    return load_config_file(CONFIGS_DIR / "tiny.py", style)


def cpu_config(style: str = "animatepainter") -> ml_collections.ConfigDict:
    """`configs/STYLE.py:cpu`, the CPU reference run (its values are in that file)."""
    return load_config_file(CONFIGS_DIR / f"{style}.py", "cpu")
