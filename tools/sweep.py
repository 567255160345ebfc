"""Expand a config's `get_sweep()` into `tools/train.py` command lines; print them, or run them in turn.

    python tools/sweep.py --config configs/animatepainter.py[:ARG] --workdir_root DIR [--run] [--keep_going] [-- EXTRA TRAIN FLAGS]

`get_sweep(arg)` (next to `get_config(arg)` in the config file) returns a list of override dicts
`{"dotted.key": value}`. Every key must exist in `get_config(arg)` and every value must fit the
field's type; each formatted `--config.KEY=VALUE` is parsed back with ml_collections' config_flags
(as train.py will) before anything runs. Each run becomes

    python tools/train.py --config CONFIG[:ARG] --workdir DIR/RUN_NAME --config.k1=v1 ... EXTRA TRAIN FLAGS

(`--train_cmd` replaces `python tools/train.py`; run names: see `paintproc_jax/sweeps.py`, e.g.
`depth_fusion-False_lr-0.0003`). Without --run the commands are printed, shell-quoted, after a
`# sweep: N runs ...` header line. With --run they run one after another in this directory (a
leading `python` is this interpreter); the first failure stops the sweep and is its exit code
(with --keep_going the rest still run; the exit code is still the first failure's). DIR/sweep.json
records each run (name, overrides, command, status, exit_code) and is rewritten at every status
change; running again skips the runs it records as "ok" with the same overrides, so an interrupted
sweep resumes where it stopped. Errors in the config or its sweep exit with 2 before anything runs.
"""

from __future__ import annotations

import json
import pathlib
import shlex
import subprocess
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from absl import app, flags  # noqa: E402

from paintproc_jax.sweeps import SweepError, expand  # noqa: E402

_CONFIG = flags.DEFINE_string("config", None, "config file with get_config(arg) and get_sweep(arg): PATH[:ARG]", required=True)
_WORKDIR_ROOT = flags.DEFINE_string("workdir_root", None, "each run trains in WORKDIR_ROOT/RUN_NAME; sweep.json goes here", required=True)
_RUN = flags.DEFINE_bool("run", False, "run the commands one after another instead of printing them")
_KEEP_GOING = flags.DEFINE_bool("keep_going", False, "with --run: go on after a failed run")
_TRAIN_CMD = flags.DEFINE_string("train_cmd", "python tools/train.py", "command prefix of every run (shell words)")


def _write_state(path: pathlib.Path, state: dict) -> None:
    """Replaces sweep.json in one step, so a reader never sees half a file."""
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    tmp.replace(path)


def run_all(spec: str, runs: list[dict], workdir_root: str, keep_going: bool) -> int:
    """Runs the commands in order, keeping DIR/sweep.json current; returns the first failure's exit code or 0."""
    root = pathlib.Path(workdir_root)
    root.mkdir(parents=True, exist_ok=True)
    state_path = root / "sweep.json"
    done = {}
    if state_path.exists():
        try:
            old = json.loads(state_path.read_text())
            done = {r["name"]: r for r in old["runs"] if r.get("status") == "ok"}
        except (ValueError, KeyError, TypeError) as e:
            raise SweepError(f"cannot read {state_path} ({e}); move it away to start the sweep afresh") from None
        if old.get("config") != spec:
            raise SweepError(f"{state_path} is from --config {old.get('config')!r}, not {spec!r}; use another --workdir_root")
    state = {"config": spec, "runs": []}
    for r in runs:
        prev = done.get(r["name"])
        ok = prev is not None and prev.get("overrides") == r["overrides"]
        state["runs"].append({**r, "status": "ok" if ok else "pending", "exit_code": 0 if ok else None, "skipped": ok})
    _write_state(state_path, state)
    first_failure, n = 0, len(runs)
    for i, entry in enumerate(state["runs"]):
        if entry["skipped"]:
            print(f"# sweep [{i + 1}/{n}] {entry['name']}: ok in {state_path}, skipped", flush=True)
            continue
        cmd = list(entry["command"])
        if cmd[0] == "python":  # the interpreter (and venv) running this sweep
            cmd[0] = sys.executable
        entry.update(command=cmd, status="running")
        _write_state(state_path, state)
        print(f"# sweep [{i + 1}/{n}] {entry['name']}: {shlex.join(cmd)}", flush=True)
        start = time.time()
        try:
            code = subprocess.run(cmd).returncode
        except KeyboardInterrupt:
            entry.update(status="interrupted", seconds=round(time.time() - start, 1))
            _write_state(state_path, state)
            _summary(state)
            return 130
        except OSError as e:  # the command itself cannot start
            print(f"sweep: cannot start {cmd[0]!r}: {e}", file=sys.stderr)
            code = 127
        code = 128 - code if code < 0 else code  # killed by a signal
        entry.update(status="ok" if code == 0 else "failed", exit_code=code, seconds=round(time.time() - start, 1))
        _write_state(state_path, state)
        if code and not first_failure:
            first_failure = code
        if code and not keep_going:
            break
    _summary(state)
    return first_failure


def _summary(state: dict) -> None:
    """Prints `sweep: N runs, K failed` (with skipped / not-run / interrupted counts when there are any)."""
    runs = state["runs"]
    failed = sum(r["status"] == "failed" for r in runs)
    extra = [f"{k} {what}" for k, what in (
        (sum(r["skipped"] for r in runs), "already ok"),
        (sum(r["status"] == "pending" for r in runs), "not run"),
        (sum(r["status"] == "interrupted" for r in runs), "interrupted"),
    ) if k]
    print(f"sweep: {len(runs)} runs, {failed} failed" + (f" ({', '.join(extra)})" if extra else ""), flush=True)


def main(argv):
    extra = tuple(argv[1:])
    try:
        runs = expand(_CONFIG.value, _WORKDIR_ROOT.value, _TRAIN_CMD.value, extra)
        if _RUN.value:
            return run_all(_CONFIG.value, runs, _WORKDIR_ROOT.value, _KEEP_GOING.value)
    except SweepError as e:
        print(f"sweep: error: {e}", file=sys.stderr)
        return 2
    print(f"# sweep: {len(runs)} runs of {_CONFIG.value} under {_WORKDIR_ROOT.value}")
    for r in runs:
        print(shlex.join(r["command"]))
    return 0


if __name__ == "__main__":
    app.run(main)
