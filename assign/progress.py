"""Progress of long library calls, reported through a callback so that library code never
prints: the caller (the CLI) decides whether and how to draw it.

A progress callback is called as ``progress(stage=..., done=..., total=...)`` each time a step
of a named stage completes (``done`` of ``total``); a new ``stage`` name starts a new bar.

>>> seen = []
>>> report = lambda **kw: seen.append((kw["stage"], kw["done"], kw["total"]))
>>> steps = Steps(report, stage="features", total=2)
>>> steps.advance(); steps.advance()
>>> seen
[('features', 0, 2), ('features', 1, 2), ('features', 2, 2)]
"""
from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """What a long call accepts as ``progress=``."""

    def __call__(self, *, stage: str, done: int, total: int) -> None: ...


class Steps:
    """A counter over one stage's ``total`` steps that reports to ``progress`` (if any);
    reports ``done=0`` at once so that the stage shows before its first step ends."""

    def __init__(self, progress: Progress | None, *, stage: str, total: int) -> None:
        self.progress, self.stage, self.total, self.done = progress, stage, int(total), 0
        self._report()

    def advance(self) -> None:
        self.done += 1
        self._report()

    def _report(self) -> None:
        if self.progress is not None:
            self.progress(stage=self.stage, done=self.done, total=self.total)
