"""Exception types of the package.

Library code raises these; only ``assign.cli`` turns them into messages and exit codes
(bad input -> exit 2, anything else -> exit 1).
"""
from __future__ import annotations

from collections.abc import Iterable


class AssignError(Exception):
    """Base class of every error the package raises on purpose."""


class InputError(AssignError, ValueError):
    """Bad input: carries every problem found, each prefixed by the path where it is.

    ``problems`` is the full list; ``str(err)`` shows them one per line so a person sees
    all of them at once, not the first only.
    """

    def __init__(self, problems: Iterable[str], *, what: str = "input") -> None:
        self.problems = tuple(problems)
        self.what = what
        n = len(self.problems)
        head = f"invalid {what}: {n} problem{'s' if n != 1 else ''}"
        super().__init__("\n".join([head, *(f"  {p}" for p in self.problems)]))

    def __reduce__(self):
        """Rebuild from the problems when sent between processes (a Dask worker's error would
        otherwise arrive with its message split into one problem per character)."""
        return _rebuild_input_error, (type(self), self.problems, self.what)


def _rebuild_input_error(cls: type[InputError], problems: tuple[str, ...], what: str) -> InputError:
    return cls(problems, what=what)


class SnapshotError(InputError):
    """A queue snapshot (or the pair values handed with it) failed validation."""

    def __init__(self, problems: Iterable[str], *, what: str = "snapshot") -> None:
        super().__init__(problems, what=what)


class ModelError(AssignError):
    """A model directory is missing, corrupt, or does not match the features it is given."""


class SolverError(AssignError):
    """A solver could not produce an assignment (bad status, cost range, missing backend)."""
