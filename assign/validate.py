"""One way to check input: collect every problem with its path, then raise once.

Every reader of user input (snapshots, configs, scenarios, histories, experiment logs, CLI
options) uses :class:`Problems` so that a person sees all that is wrong at once, each problem
prefixed by where it is (``contacts[17].language: unknown code 'xx'``), and so that every bad
input surfaces as :class:`~assign.errors.InputError` (the CLI's exit 2).

>>> p = Problems()
>>> p.number("config.top_k", 0, lo=1, integer=True)
>>> p.number("config.w_score", float("nan"))
>>> p.items
['config.top_k: 0 is below the minimum 1', 'config.w_score: must be finite, got nan']
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from assign.errors import InputError


def is_number(x: Any) -> bool:
    """A real number that is not a bool (``True`` is an int to Python, never to a user)."""
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, (bool, np.bool_))


class Problems:
    """Collects problems as ``"path: message"`` strings; :meth:`raise_if_any` raises them all."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def __bool__(self) -> bool:
        return bool(self.items)

    def add(self, path: str, message: str) -> None:
        self.items.append(f"{path}: {message}" if path else message)

    def extend(self, items: Iterable[str]) -> None:
        self.items.extend(items)

    def raise_if_any(self, *, what: str = "input", error: type[InputError] = InputError) -> None:
        if self.items:
            raise error(self.items, what=what)

    def number(self, path: str, x: Any, *, lo: float | None = None, hi: float | None = None,
               lo_open: bool = False, integer: bool = False, optional: bool = False) -> float | None:
        """``x`` as a finite float within [lo, hi] (``lo_open``: strictly above lo), else a
        problem and None. NaN and infinities are always problems: a NaN passes every ``<``
        check, which is how a bad option used to slip through."""
        if x is None and optional:
            return None
        if not is_number(x):
            self.add(path, f"expected a number, got {type(x).__name__} {x!r}")
            return None
        v = float(x)
        if math.isnan(v) or math.isinf(v):
            self.add(path, f"must be finite, got {x!r}")
            return None
        if integer and v != int(v):
            self.add(path, f"expected a whole number, got {x!r}")
            return None
        if lo is not None and (v <= lo if lo_open else v < lo):
            self.add(path, f"{x!r} must be above {lo:g}" if lo_open else f"{x!r} is below the minimum {lo:g}")
            return None
        if hi is not None and v > hi:
            self.add(path, f"{x!r} is above the maximum {hi:g}")
            return None
        return v

    def choice(self, path: str, x: Any, options: Iterable[Any]) -> Any:
        """``x`` if it is one of ``options``, else a problem naming them and None."""
        options = tuple(options)
        if x in options:
            return x
        self.add(path, f"must be one of {', '.join(map(str, options))}, got {x!r}")
        return None
