"""The CLI's progress bars: draws what library calls report through their ``progress=``
callback (:mod:`assign.progress`) as tqdm bars on stderr, one per stage; off when stderr is
not a terminal or with ``--quiet``."""
from __future__ import annotations

import sys
from typing import Self

import click


def quiet_option(fn):
    """The ``--quiet`` flag of commands with progress bars."""
    return click.option("--quiet", is_flag=True, help="No progress bars on stderr.")(fn)


class Bars:
    """A :class:`assign.progress.Progress` that draws tqdm bars; use as a context manager."""

    def __init__(self, *, quiet: bool = False) -> None:
        self.enabled = not quiet and sys.stderr.isatty()
        self._bar = None
        self._stage = None

    def __call__(self, *, stage: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        from tqdm import tqdm

        if stage != self._stage:
            self.close()
            self._stage = stage
            self._bar = tqdm(total=total, desc=stage, unit="step", file=sys.stderr, leave=True)
        self._bar.n = done
        self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
