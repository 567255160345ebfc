"""Sweeps are data: `configs/*.py:get_sweep(arg)` returns a list of override dicts `{"dotted.key": value}`.

`product` builds such lists; `expand` checks one config's sweep and turns each dict into a
`tools/train.py` command line (`tools/sweep.py` prints or runs them).

Run names: one `KEY-VALUE` part per override, in the override's order, joined by `_`. KEY is the
shortest dotted suffix of the key that no other key in the sweep shares (`model.depth_fusion` ->
`depth_fusion`; `sample.guidance.ref` -> `guidance.ref` when `model.ref` is swept too); VALUE is the
command-line value with every run of characters outside `[A-Za-z0-9._+-]` turned into `+`
(`(0.5, 1.0)` -> `0.5+1.0`). An empty override dict is `base`. Names longer than 100 characters keep
90 and add `-` and an 8-hex hash of the overrides; a name equal to an earlier one (ignoring case, for
case-insensitive file systems) gets `-2`, `-3`, ... Identical override dicts are an error.
"""

from __future__ import annotations

import hashlib
import importlib.util
import itertools
import json
import os
import re
import shlex
import warnings
from typing import Any

from absl import flags
from ml_collections import ConfigDict
from ml_collections.config_flags import config_flags, config_path

MAX_NAME = 100


class SweepError(Exception):
    """A sweep that cannot be expanded or run: bad config file, key, value or sweep.json."""


def load_sweep(spec: str):
    """Loads `PATH[:ARG]` like config_flags does; returns (get_config(arg), get_sweep(arg))."""
    path, has_arg, arg = spec.partition(":")
    args = (arg,) if has_arg else ()
    if not os.path.isfile(path):
        raise SweepError(f"config file {path!r} not found")
    mod_spec = importlib.util.spec_from_file_location(f"sweep_config_{abs(hash(path))}", path)
    mod = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(mod)
    if not callable(getattr(mod, "get_sweep", None)):
        raise SweepError(f"{path} has no get_sweep(arg=None); add one returning a list of override dicts")
    try:
        config = mod.get_config(*args)
        sweep = mod.get_sweep(*args)
    except ValueError as e:  # e.g. an unknown variant ARG
        raise SweepError(f"{spec}: {e}") from None
    if not isinstance(sweep, (list, tuple)) or not all(isinstance(o, dict) for o in sweep):
        raise SweepError(f"{spec}: get_sweep() must return a list of dicts, got {type(sweep).__name__}")
    if not sweep:
        raise SweepError(f"{spec}: get_sweep() returned no runs")
    return config, list(sweep)


def _check_key(config, key: str, where: str) -> None:
    """Raises SweepError unless the dotted `key` names an existing field of `config`."""
    if not isinstance(key, str) or not key or any(not p for p in key.split(".")):
        raise SweepError(f"{where}: bad override key {key!r}; use a dotted path such as 'model.depth_fusion'")
    node, parts = config, key.split(".")
    for i, part in enumerate(parts):
        if not isinstance(node, ConfigDict):
            raise SweepError(f"{where}: unknown key {key!r}: {'.'.join(parts[:i])!r} is a value, not a section")
        if part not in node:
            at = ".".join(parts[:i]) or "the config"
            raise SweepError(f"{where}: unknown key {key!r}: no {part!r} in {at} (it has: {', '.join(sorted(node.keys()))})")
        node = node[part]


def format_value(value) -> str:
    """The `--config.KEY=` text that config_flags parses back to `value`."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return value
    if isinstance(value, tuple):
        return repr(value)
    if isinstance(value, ConfigDict):
        return repr(value.to_dict())
    raise SweepError(f"cannot put a {type(value).__name__} on the command line: {value!r}")


def _check_run(config, overrides: dict, spec: str, where: str) -> dict:
    """Validates one run's overrides; returns them with the field's types (lists -> tuples, ints -> floats)."""
    c = config.copy_and_resolve_references()
    c.unlock()
    for key, value in overrides.items():
        _check_key(c, key, where)
        old = config_path.get_value(key, config)
        if isinstance(value, bool) != isinstance(old, bool) and old is not None:
            raise SweepError(f"{where}: {key}={value!r} does not fit the field's type {type(old).__name__} (now {old!r})")
        try:
            config_path.set_value(key, c, value)
        except (TypeError, ValueError) as e:
            raise SweepError(f"{where}: {key}={value!r} does not fit the field ({type(old).__name__}, now {old!r}): {e}") from None
    typed = {k: config_path.get_value(k, c) for k in overrides}
    _round_trip(spec, typed, where)
    return typed


def _round_trip(spec: str, typed: dict, where: str) -> None:
    """Parses the `--config.KEY=VALUE` flags with config_flags (as train.py will) and compares the values."""
    argv = ["train", f"--config={spec}"] + [f"--config.{k}={format_value(v)}" for k, v in typed.items()]
    fv = flags.FlagValues()
    holder = config_flags.DEFINE_config_file("config", flag_values=fv, sys_argv=argv, lock_config=True)
    try:
        with warnings.catch_warnings():  # config_flags loads the file with the deprecated load_module()
            warnings.simplefilter("ignore", DeprecationWarning)
            fv(argv)
        parsed = holder.value
    except Exception as e:  # absl/ml_collections raise several error types here
        raise SweepError(f"{where}: config_flags does not accept {argv[2:]}: {e}") from None
    for key, want in typed.items():
        got = config_path.get_value(key, parsed)
        if isinstance(got, ConfigDict):
            got, want = got.to_dict(), want.to_dict()
        if got != want or type(got) is not type(want):
            raise SweepError(f"{where}: --config.{key}={format_value(want)} parses back as {got!r}, not {want!r}")


def _slug(text: str) -> str:
    """`text` with every run of characters unsafe in a file name (or shell word) turned into `+`."""
    return re.sub(r"[^A-Za-z0-9._+-]+", "+", text).strip("+")


def run_names(sweep: list[dict]) -> list[str]:
    """Readable, filesystem-safe, unique run names (rule in the module docstring)."""
    keys = list(dict.fromkeys(k for o in sweep for k in o))
    short = {}
    for key in keys:
        parts = key.split(".")
        n = 1
        while n < len(parts) and any(k != key and k.split(".")[-n:] == parts[-n:] for k in keys):
            n += 1
        short[key] = ".".join(parts[-n:])
    bases = []
    for o in sweep:
        name = "_".join(f"{short[k]}-{_slug(format_value(v))}" for k, v in o.items()) or "base"
        if len(name) > MAX_NAME:
            digest = hashlib.sha1(json.dumps(_jsonable(o), sort_keys=True).encode()).hexdigest()[:8]
            name = f"{name[:MAX_NAME - 10].rstrip('_-+.')}-{digest}"
        bases.append(name)
    taken, seen, names = {b.lower() for b in bases}, set(), []
    for base in bases:
        name, i = base, 2
        while name.lower() in seen or (name != base and name.lower() in taken):
            name, i = f"{base}-{i}", i + 1
        seen.add(name.lower())
        names.append(name)
    return names


def _jsonable(overrides: dict) -> dict:
    """The overrides as sweep.json stores them (tuples as lists), to compare runs."""
    return json.loads(json.dumps({k: v.to_dict() if isinstance(v, ConfigDict) else v for k, v in overrides.items()}))


def expand(spec: str, workdir_root: str, train_cmd: str = "python tools/train.py", extra: tuple = ()) -> list[dict]:
    """Validates `get_sweep()` of `spec` and returns one {name, overrides, command} per run, in order."""
    config, sweep = load_sweep(spec)
    typed = [_check_run(config, o, spec, f"{spec} get_sweep() run {i} {o!r}") for i, o in enumerate(sweep)]
    for i, o in enumerate(typed):
        for j in range(i):
            if _jsonable(typed[j]) == _jsonable(o):
                raise SweepError(f"{spec} get_sweep(): runs {j} and {i} have the same overrides {sweep[i]!r}")
    for flag in extra:
        key = flag.lstrip("-").split("=", 1)[0]
        if key in ("workdir", "config") or (key.startswith("config.") and any(key[7:] in o for o in typed)):
            raise SweepError(f"extra train flag {flag!r} conflicts with the sweep, which sets --config, --workdir and the swept keys")
    prefix = shlex.split(train_cmd)
    runs = []
    for name, o in zip(run_names(typed), typed):
        cmd = prefix + ["--config", spec, "--workdir", os.path.join(workdir_root, name)]
        cmd += [f"--config.{k}={format_value(v)}" for k, v in o.items()] + list(extra)
        runs.append({"name": name, "overrides": _jsonable(o), "command": cmd})
    return runs


def product(*axes_dicts: dict[str, Any], **axes: Any) -> list[dict[str, Any]]:
    """Cartesian product of axes `{dotted.key: values}`; the first axis varies slowest.

    Dotted keys are not valid keyword names, so pass them as dicts or unpacked:
        product({"model.depth_fusion": (True, False)}, {"train.optim.lr": (1e-4, 3e-4)})
        product(**{"model.depth_fusion": (True, False), "train.optim.lr": (1e-4, 3e-4)})
    Each axis is a list or tuple of values (a tuple-valued field's axis is a list of tuples).
    """
    merged: dict[str, Any] = {}
    for d in (*axes_dicts, axes):
        for key, values in d.items():
            if key in merged:
                raise ValueError(f"sweep axis {key!r} given twice")
            if not isinstance(values, (list, tuple)) or not values:
                raise ValueError(f"sweep axis {key!r} needs a non-empty list or tuple of values, got {values!r}")
            merged[key] = values
    keys = list(merged)
    return [dict(zip(keys, combo)) for combo in itertools.product(*merged.values())]
