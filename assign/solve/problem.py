"""The assignment problem as the solvers see it: a sparse bipartite graph of candidate arcs.

Contacts (rows 0..n-1) connect to resources (an agent on one channel) with a value per arc;
each resource takes at most its free capacity, each contact at most one arc. Every solver
answers the same question: serve as many contacts as capacity allows (work-conserving) and,
among those, maximise the total value (``greedy`` only approximates it).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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
        if n_arcs:
            if not np.isfinite(self.value).all():
                raise ValueError("arc values must be finite")
            if self.contact.min() < 0 or self.contact.max() >= self.n_contacts:
                raise ValueError("arc contact index out of range")
            if self.resource.min() < 0 or self.resource.max() >= len(self.capacity):
                raise ValueError("arc resource index out of range")
        if len(self.capacity) and self.capacity.min() < 0:
            raise ValueError("capacities must be >= 0")

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
        arcs = np.asarray(arcs)
        if len(arcs) and (arcs.min() < 0 or arcs.max() >= self.n_arcs):
            raise InfeasibleAnswer("solver bug: an arc index is out of range")
        if len(np.unique(self.contact[arcs])) != len(arcs):
            raise InfeasibleAnswer("solver bug: a contact is assigned twice")
        used = np.bincount(self.resource[arcs], minlength=self.n_resources)
        if (used > self.capacity).any():
            raise InfeasibleAnswer("solver bug: a resource is over its capacity")


class InfeasibleAnswer(SolverError):
    """A solver returned an infeasible assignment: a bug in that solver, not a routine failure."""


@dataclass(frozen=True, eq=False)
class Solution:
    """Indices of the chosen arcs (sorted), the solver that found them and whether it proved
    them optimal."""

    arcs: np.ndarray
    solver: str
    optimal: bool
