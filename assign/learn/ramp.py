"""New-hire ramp ("nesting"): a bounded value bonus for agents in their first days.

A router that maximises resolution gives a new hire work only when every better agent is
busy: with a resolution logit 0.9 below its tenured colleagues on its first day, a hire
loses almost every tie, sits idle when there is slack, and learns nothing. Centres protect
new agents with a nesting period; here that is a value term. An agent of tenure ``t`` days
gets ``bonus * max(0, 1 - t / days)`` added to the value of each of its pairs (in
resolution-probability units, the scorer's), so the exact solve hands it a contact whenever
it costs at most that much resolution on that contact against the best alternative. The
cost is bounded per contact by ``bonus`` and falls where it is smallest: on simple contacts
that every agent resolves (where the hire's logit penalty costs the fewest points), which are
also the shortest. It is a choice of value, not a belief: the estimates the router learns
(and logs as ``estimate``) are unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from assign.validate import Problems


@dataclass(frozen=True, kw_only=True)
class Ramp:
    """``bonus`` (resolution points per contact, at tenure 0) decaying linearly to 0 at
    ``days`` of tenure. Off by default in the policies (no ``Ramp``): the rule that set the
    default and the measured trade-off are in ``docs/learn.md`` (3.2).

    >>> Ramp(bonus=0.1, days=2).terms(np.array([0.0, 1.0, 2.0, 30.0])).round(3).tolist()
    [0.1, 0.05, 0.0, 0.0]
    """

    bonus: float
    days: float = 3.0

    def __post_init__(self) -> None:
        p = Problems()
        p.number("ramp.bonus", self.bonus, lo=0, hi=1)
        p.number("ramp.days", self.days, lo=0, lo_open=True)
        p.raise_if_any(what="ramp")

    def terms(self, tenure_days: np.ndarray) -> np.ndarray:
        """Each agent's value bonus (tenure below 0, not yet working, counts as 0)."""
        t = np.maximum(np.asarray(tenure_days, np.float64), 0.0)
        return self.bonus * np.clip(1.0 - t / self.days, 0.0, 1.0)
