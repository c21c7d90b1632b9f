"""The assignment problem as the solvers see it: a sparse bipartite graph of candidate arcs.

Contacts (rows 0..n-1) connect to resources (an agent on one channel) with a value per arc;
each resource takes at most its free capacity, each contact at most one arc. Every solver
answers the same question: serve as many contacts as capacity allows (work-conserving) and,
among those, maximise the total value (``greedy`` only approximates it).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from assign.errors import SolverError


@dataclass(frozen=True, eq=False)
class Problem:
    """Candidate arcs ``contact[k] -> resource[k]`` worth ``value[k]``; ``capacity[r]`` slots.

    Arcs must be sorted by (contact, resource) so that every solver sees them in one order:
    the canonical order is what makes ties break the same way every time.
    """

    n_contacts: int
    contact: np.ndarray
    resource: np.ndarray
    value: np.ndarray
    capacity: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "contact", np.ascontiguousarray(self.contact, dtype=np.int64))
        object.__setattr__(self, "resource", np.ascontiguousarray(self.resource, dtype=np.int64))
        object.__setattr__(self, "value", np.ascontiguousarray(self.value, dtype=np.float64))
        object.__setattr__(self, "capacity", np.ascontiguousarray(self.capacity, dtype=np.int64))
        n_arcs = len(self.contact)
        if self.resource.shape != (n_arcs,) or self.value.shape != (n_arcs,):
            raise ValueError("contact, resource and value must have one entry per arc")
        why = _invalid(self.contact, self.resource, self.value, self.capacity, int(self.n_contacts))
        if why:
            raise ValueError(_INVALID[why])

    @property
    def n_arcs(self) -> int:
        return len(self.contact)

    @property
    def n_resources(self) -> int:
        return len(self.capacity)

    def objective(self, arcs: np.ndarray) -> float:
        """Total value of the chosen arcs."""
        return float(self.value[arcs].sum())

    def check(self, arcs: np.ndarray) -> None:
        """Raise :class:`InfeasibleAnswer` when ``arcs`` is not a feasible assignment (used by
        tests and by the router as a guard on every solver's answer). Not an ``assert``:
        ``python -O`` must not remove it."""
        why = _infeasible(np.ascontiguousarray(arcs, dtype=np.int64), self.contact, self.resource, self.capacity,
                          int(self.n_contacts))
        if why:
            raise InfeasibleAnswer(_INFEASIBLE[why])


_INVALID = ("", "arc values must be finite", "arc contact index out of range", "arc resource index out of range",
            "capacities must be >= 0")
_INFEASIBLE = ("", "solver bug: an arc index is out of range", "solver bug: a contact is assigned twice",
               "solver bug: a resource is over its capacity")


@njit(cache=True, nogil=True)
def _invalid(contact, resource, value, capacity, n_contacts):
    """0, or the number of the first of :data:`_INVALID`'s problems (one pass: a simulated day
    builds thousands of tiny problems, where numpy's per-call costs were most of the check)."""
    for k in range(len(value)):
        if not np.isfinite(value[k]):
            return 1
    for k in range(len(contact)):
        if contact[k] < 0 or contact[k] >= n_contacts:
            return 2
    for k in range(len(resource)):
        if resource[k] < 0 or resource[k] >= len(capacity):
            return 3
    for r in range(len(capacity)):
        if capacity[r] < 0:
            return 4
    return 0


@njit(cache=True, nogil=True)
def _infeasible(arcs, contact, resource, capacity, n_contacts):
    """0, or the number of the first of :data:`_INFEASIBLE`'s problems of the answer ``arcs``."""
    for x in arcs:
        if x < 0 or x >= len(contact):
            return 1
    seen = np.zeros(n_contacts, np.bool_)
    for x in arcs:
        if seen[contact[x]]:
            return 2
        seen[contact[x]] = True
    used = np.zeros(len(capacity), np.int64)
    for x in arcs:
        used[resource[x]] += 1
        if used[resource[x]] > capacity[resource[x]]:
            return 3
    return 0


class InfeasibleAnswer(SolverError):
    """A solver returned an infeasible assignment: a bug in that solver, not a routine failure."""


@dataclass(frozen=True, eq=False)
class Solution:
    """Indices of the chosen arcs (sorted), the solver that found them and whether it proved
    them optimal."""

    arcs: np.ndarray
    solver: str
    optimal: bool
