"""What a routing tick answers: assignments with their value parts, unassigned with reasons."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from functools import cache
from operator import attrgetter
from typing import Any

import numpy as np

#: Why a contact was left in the queue.
NO_ELIGIBLE_AGENT = "no_eligible_agent"
NO_CAPACITY = "no_capacity"
BELOW_THRESHOLD = "below_threshold"
REASONS = (NO_ELIGIBLE_AGENT, NO_CAPACITY, BELOW_THRESHOLD)


@dataclass(frozen=True, kw_only=True)
class Assignment:
    """One contact sent to one agent, with the value that decided it and its parts."""

    contact_id: str
    agent_id: str
    value: float
    score: float
    aging: float
    fairness: float


@dataclass(frozen=True, kw_only=True)
class Unassigned:
    """A contact left queued and the reason (one of :data:`REASONS`)."""

    contact_id: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class Alternative:
    """A candidate the solver did not pick for a contact (``--explain``)."""

    agent_id: str
    value: float
    score: float
    fairness: float
    why_not: str


@dataclass(frozen=True, kw_only=True)
class Decision:
    """An assignment as data (``assign.learn.logs``): its id, the tick, the model version,
    score and value, whether exploration changed it from the exact optimum, and its
    propensity (NaN until the off-path estimate is known; 1.0 when not exploring)."""

    decision_id: str
    window_id: str
    at: Any
    model_version: str
    contact_id: str
    agent_id: str
    intent: str
    score: float
    value: float
    explored: bool
    propensity: float


@dataclass(frozen=True, kw_only=True)
class TickResult:
    """The answer of one tick.

    ``contact_index`` / ``agent_index`` are the rows, in the snapshot, of each assignment (in
    the same order as ``assignments``), for callers that stay in arrays (the simulator).
    ``fallback`` is True when the tick did not run the configured solver to optimality
    (``fallback_reason`` says why); a failed tick still answers.
    """

    snapshot_id: str
    assignments: tuple[Assignment, ...]
    unassigned: tuple[Unassigned, ...]
    objective: float
    solver: str
    fallback: bool
    fallback_reason: str | None
    timings_ms: dict[str, float]
    contact_index: np.ndarray = field(repr=False)
    agent_index: np.ndarray = field(repr=False)
    n_candidates: int = 0
    explanations: dict[str, tuple[Alternative, ...]] | None = field(default=None, repr=False)
    #: Out-of-domain pair counts of a model-scored tick (:func:`assign.model.domain.domain_report`).
    domain: dict[str, int] | None = None
    #: pairs among the candidates scored from the prior alone (the scorer's ``prior_only``)
    n_prior_only: int = 0
    #: one :class:`Decision` per assignment, same order; filled when the router logs or explores
    decisions: tuple[Decision, ...] = field(default=(), repr=False)
    #: the model version that scored this tick (``Router(model_version=)``, swapped by ``assign.deploy``)
    model_version: str = "unversioned"

    def to_dict(self) -> dict[str, Any]:
        """The JSON form printed by ``assign solve``."""
        out: dict[str, Any] = {
            "snapshot_id": self.snapshot_id,
            "assignments": [_plain(a) for a in self.assignments],
            "unassigned": [_plain(u) for u in self.unassigned],
            "objective": self.objective,
            "solver": self.solver,
            "fallback": self.fallback,
            "fallback_reason": self.fallback_reason,
            "n_candidates": self.n_candidates,
            "timings_ms": {k: round(v, 3) for k, v in self.timings_ms.items()},
        }
        if self.model_version != "unversioned":
            out["model_version"] = self.model_version
        if self.domain is not None:
            out["domain"] = dict(self.domain)
        if self.n_prior_only:
            out["n_prior_only"] = self.n_prior_only
        if self.explanations is not None:
            for a in out["assignments"]:
                a["alternatives"] = [_plain(x) for x in self.explanations.get(a["contact_id"], ())]
            for u in out["unassigned"]:
                u["alternatives"] = [_plain(x) for x in self.explanations.get(u["contact_id"], ())]
        return out


_SCALARS = frozenset((str, int, float, bool, type(None)))


@cache
def _getter(cls: type) -> tuple[tuple[str, ...], attrgetter]:
    names = tuple(f.name for f in fields(cls))
    return names, attrgetter(*names)


def _plain(obj: Any) -> dict[str, Any]:
    """``dataclasses.asdict(obj)`` for a record of scalars, without its deep copy (several
    times faster: a tick answer holds hundreds); any other field value takes ``asdict``."""
    names, get = _getter(type(obj))
    values = get(obj) if len(names) > 1 else (get(obj),)
    if not set(map(type, values)) <= _SCALARS:
        return asdict(obj)
    return dict(zip(names, values))
