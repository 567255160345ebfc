"""When periodic work is due (`Every`) and how long training and the work around it took (`StepClock`)."""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections import defaultdict

import jax


@dataclasses.dataclass(frozen=True)
class Every:
    """`due(step)`: every `every` steps (0 = never) and at the steps in `also` (e.g. the last one)."""

    every: int = 0
    also: tuple[int, ...] = ()

    def __call__(self, step: int) -> bool:
        return (self.every > 0 and step % self.every == 0) or step in self.also


class StepClock:
    """Wall time of training steps only, and of named sections around them.

    `section(name)` is work that is not a training step (compile, checkpoint, sample, logging): the
    training clock pauses for it, after waiting for `wait` (the step's outputs), so the device time
    of the step in flight still counts as training. `part(name)` times a part of the steps (data).
    `take()` returns the training seconds since the previous `take` (step time, MFU)."""

    def __init__(self, now=time.perf_counter):
        self._now = now
        self._since = None  # start of the current stretch of training; None while paused
        self._window = 0.0
        self.totals = defaultdict(float)

    def start(self) -> None:
        self._since = self._now()

    def _stop(self) -> float:
        now = self._now()
        if self._since is not None:
            self._window += now - self._since
            self.totals["train"] += now - self._since
        return now

    @contextlib.contextmanager
    def section(self, name: str, wait=None):
        if wait is not None:
            jax.block_until_ready(wait)
        running = self._since is not None
        t0 = self._stop()
        self._since = None
        try:
            yield
        finally:
            t1 = self._now()
            self.totals[name] += t1 - t0
            self._since = t1 if running else None

    @contextlib.contextmanager
    def part(self, name: str):
        t0 = self._now()
        try:
            yield
        finally:
            self.totals[name] += self._now() - t0

    def take(self, wait=None) -> float:
        if wait is not None:
            jax.block_until_ready(wait)
        now = self._stop()
        if self._since is not None:
            self._since = now
        seconds, self._window = self._window, 0.0
        return seconds

    def seconds(self) -> dict[str, float]:
        return dict(self.totals)

    def summary(self) -> str:
        return ", ".join(f"{k} {v:.1f} s" for k, v in sorted(self.totals.items(), key=lambda kv: -kv[1]))
