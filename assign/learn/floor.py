"""New-hire work floor: a feedback control that guarantees hires a share of the work.

A router that maximises resolution gives a new hire work only when every better agent is
busy (``docs/learn.md`` 3.2, 5.5). The fixed ramp (:mod:`assign.learn.ramp`) pays one bonus
whatever the centre needs: too much where hires get work anyway, too little where they do
not. The floor states the goal as a constraint and lets the router find the price:

    rate_hires >= ratio * rate_tenured     (per_hire: rate_i >= ratio * rate_tenured for each hire i)

where ``rate`` is contacts per staffed hour (the router's own assignments over the time the
agent was on shift, both with exponential forgetting, half-life ``half_life_s``) and
``rate_hires`` and ``rate_tenured`` are pooled over the hires (tenure in [0, days)) and over
the agents past ``days`` of tenure. Lagrangian relaxation: the constraint leaves the solve and
enters its objective priced by a multiplier ``lambda >= 0``, added to the value of each hire's
pair (resolution-probability units, where the ramp's bonus goes), so the exact flow hands a
hire a contact where that costs the least resolution; the multiplier follows projected dual
ascent (a subgradient step on the constraint's violation), each decision:

    lambda <- clip(lambda + eta * dt_h * (ratio * rate_tenured - rate_hires) / rate_tenured, 0, lambda_max)

(``dt_h``: hours since the previous decision, so the step does not depend on the tick rate;
``rate_scale`` = ``rate_tenured``: the shortfall is relative). A hire under its floor sees its
multiplier rise until it gets work; above it, the multiplier falls back to 0, the plain policy.

One shared multiplier by default (``per_hire=False``: the constraint on the hires' pooled
rate, the issue's measure), not one per hire. A per-hire floor guarantees each hire, but a
hire that cannot reach the floor (its eligible contacts are too few, or take too long) drives
its own multiplier to ``lambda_max`` and keeps it there, and the others are pushed past what
the pooled ratio needs: on a development seed (200, ``docs/learn.md`` 5.6) it pinned 3 of 6
hires at the cap all day and raised the pooled ratio to 0.81 where 0.75 was the goal. A shared
multiplier is the least-cost way to the pooled ratio (the flow gives the extra work to the
hires that lose least resolution), and starves no hire more than the plain policy does: every
hire gets the same bonus. ``per_hire=True``: each hire its own multiplier on its own rate.
A choice of value, not a belief: the estimates the router learns are unchanged.

Refinements (``docs/learn.md`` 5.9), all off by default (5.6's floor); :data:`PRICED` holds 5.9's settings:

- ``reference_days``: the tenured reference is the agents with tenure >= ``reference_days``
  (default: ``days``, every agent past the protected days). With an earlier cohort a few weeks
  old, ``days`` counts that slower cohort as tenured, so the controller's ratio is not the one
  the benchmark measures; a reference of 30 days (the cold-start prior's first tenure band)
  compares the hires with the experienced agents only.
- ``handle=True``: the multiplier is a price per unit of the hire's time, not per contact. A
  hire's pair gets ``lambda * min(shortness, factor_max)``, where ``shortness`` = the pair's
  expected contacts per unit of time against a typical contact's, from a handle-time proxy
  on router-visible features (:class:`assign.learn.handle.HandleModel`). The ratio counts
  contacts, and a hire busy with a long contact takes no other: a short contact buys more of
  the floor per unit of time, and short contacts (simple ones) are where a hire loses least
  resolution. The floor then nests hires on short contacts instead of filling their time
  (measured, it shortened them little: handle per contact 1.49-1.51x against 1.53-1.54x).
- ``start``: the multiplier a hire starts from (feed-forward) instead of 0; with ``start =
  lambda_max`` the floor is a fixed price that only falls where the hires already meet the
  floor. ``clip_gap``: the step's relative shortfall is bounded below at ``-ratio`` (as it is
  above at ``ratio``): in a hire's first minutes on shift one contact over seconds of staffed
  time reads as a huge surplus and would drop a started price to 0 in one step.
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np

from assign.validate import Problems, is_number


@dataclass(frozen=True, kw_only=True)
class WorkFloor:
    """Settings of the floor (see module doc): ``ratio`` r (0: off, exactly the plain policy),
    ``days`` D of tenure it protects, ``eta`` (multiplier step per hour per unit of relative
    shortfall), ``lambda_max`` (resolution points per contact), ``half_life_s`` of the rates;
    ``reference_days`` (None: ``days``) the tenure of the reference agents, ``handle`` the
    handle-aware bonus capped at ``factor_max`` times the multiplier, ``start`` the multiplier a
    hire starts from (feed-forward; 0: from nothing), ``clip_gap`` bounds the relative surplus a
    step reads at ``ratio`` (module doc).

    >>> f = WorkFloor(ratio=0.85, days=1.0)
    >>> c = f.controller(agent_ids=["a", "b", "h"])
    >>> for k in range(60):  # the hire "h" gets nothing while "a" and "b" work
    ...     c.step(t_s=60.0 * k, staffed=np.ones(3, bool), tenure_days=np.array([90.0, 90.0, 0.2]))
    ...     c.record(np.array([0, 1]))
    >>> bool(c.terms(["a", "h"])[0] == 0.0 and c.terms(["a", "h"])[1] == 0.15)
    True
    """

    ratio: float
    days: float = 1.0
    eta: float = 0.6
    lambda_max: float = 0.15
    half_life_s: float = 1800.0
    per_hire: bool = False
    reference_days: float | None = None
    handle: bool = False
    factor_max: float = 2.0
    start: float = 0.0
    clip_gap: bool = False

    def __post_init__(self) -> None:
        p = Problems()
        p.number("work_floor.ratio", self.ratio, lo=0, hi=2)
        p.number("work_floor.days", self.days, lo=0, lo_open=True)
        p.number("work_floor.eta", self.eta, lo=0, lo_open=True)
        p.number("work_floor.lambda_max", self.lambda_max, lo=0, hi=1)
        p.number("work_floor.half_life_s", self.half_life_s, lo=0, lo_open=True)
        p.number("work_floor.reference_days", self.reference_days, lo=0, optional=True)
        p.number("work_floor.factor_max", self.factor_max, lo=0, lo_open=True)
        p.number("work_floor.start", self.start, lo=0, hi=self.lambda_max if is_number(self.lambda_max) else 1)
        for name in ("per_hire", "handle", "clip_gap"):
            if not isinstance(getattr(self, name), bool):
                p.add(f"work_floor.{name}", f"must be True or False, got {getattr(self, name)!r}")
        if (isinstance(self.reference_days, (int, float)) and is_number(self.days)
                and self.reference_days < self.days):
            p.add("work_floor.reference_days", f"must be >= days ({self.days}), got {self.reference_days}")
        p.raise_if_any(what="work floor")

    @property
    def reference(self) -> float:
        """Tenure (days) from which an agent is in the tenured reference."""
        return self.days if self.reference_days is None else float(self.reference_days)

    def pair_factor(self, shortness: np.ndarray) -> np.ndarray:
        """Each hire pair's multiple of the multiplier: ``min(shortness, factor_max)`` with
        ``handle``, else 1 (``shortness``: :meth:`assign.learn.handle.HandleModel.shortness`)."""
        s = np.asarray(shortness, np.float64)
        return np.minimum(s, self.factor_max) if self.handle else np.ones_like(s)

    def controller(self, *, agent_ids) -> FloorController:
        """A fresh controller (all multipliers 0) over these agents."""
        return FloorController(floor=self, agent_ids=agent_ids)


#: The priced floor registered in ``docs/learn.md`` 5.9: a fixed price of 0.065 per unit of a hire's
#: time on its first day, lowered only where the hires already work 0.8 times the experienced agents'
#: (tenure >= 30 days) contacts per staffed hour.
PRICED = WorkFloor(ratio=0.8, days=1.0, reference_days=30.0, lambda_max=0.065, start=0.065, handle=True,
                   clip_gap=True)


class FloorController:
    """The floor's state over one roster: per agent the forgotten contacts and staffed
    seconds, and the multipliers. Call :meth:`step` before each decision (the time, who is on
    shift, each agent's tenure now) and :meth:`record` with the rows it assigned; a tick reads
    :meth:`terms`, one consistent vector (replaced whole by ``step``)."""

    def __init__(self, *, floor: WorkFloor, agent_ids) -> None:
        self.floor = floor
        self.ids = np.asarray(agent_ids).astype(str)
        self._row = {a: k for k, a in enumerate(self.ids)}
        n = len(self.ids)
        self.contacts, self.staffed_s = np.zeros(n), np.zeros(n)
        self.lam = np.zeros(n)  # replaced whole, never written in place: a tick's read is consistent
        self._hire = np.zeros(n, bool)
        self._t: float | None = None
        self._lock = threading.Lock()

    def step(self, *, t_s: float, staffed: np.ndarray, tenure_days: np.ndarray) -> None:
        """Advance to ``t_s``: forget, add the staffed time since the last step (agents on shift
        now), then one projected dual-ascent step for the hires on shift."""
        f = self.floor
        staffed = np.asarray(staffed, bool)
        t = np.asarray(tenure_days, float)
        hire = (t >= 0) & (t < f.days) if f.ratio > 0 else np.zeros(len(t), bool)
        with self._lock:
            dt = 0.0 if self._t is None else max(float(t_s) - self._t, 0.0)
            self._t = float(t_s)
            decay = 0.5 ** (dt / f.half_life_s)
            self.contacts = self.contacts * decay
            # exact integral of the forgotten staffed time over the interval
            self.staffed_s = self.staffed_s * decay + staffed * (1.0 - decay) * f.half_life_s / math.log(2.0)
            lam = np.where(hire, np.where(self._hire, self.lam, f.start), 0.0)  # a new hire starts at ``start``
            ten = ~hire & (t >= f.reference)
            ten_s = self.staffed_s[ten].sum()
            if dt > 0 and ten_s > 0 and self.contacts[ten].sum() > 0:
                ref = self.contacts[ten].sum() / ten_s
                on = hire & staffed & (self.staffed_s > 0)
                lo = -f.ratio if f.clip_gap else -np.inf
                if f.per_hire:
                    gap = np.maximum(f.ratio - self.contacts[on] / self.staffed_s[on] / ref, lo)
                    lam[on] = np.clip(lam[on] + f.eta * dt / 3600.0 * gap, 0.0, f.lambda_max)
                elif on.any():
                    gap = max(f.ratio - self.contacts[hire].sum() / self.staffed_s[hire].sum() / ref, lo)
                    shared = np.clip(lam[hire].max() + f.eta * dt / 3600.0 * gap, 0.0, f.lambda_max)
                    lam[hire] = shared
            self.lam, self._hire = lam, hire

    def record(self, rows: np.ndarray) -> None:
        """Count the contacts a decision assigned (roster rows, one per contact)."""
        rows = np.asarray(rows, np.int64)
        with self._lock:
            self.contacts = self.contacts + np.bincount(rows, minlength=len(self.ids))

    def terms(self, agent_ids) -> np.ndarray:
        """Each agent's value term now (0 for agents off the roster or not hires)."""
        lam = self.lam
        return np.array([lam[self._row[a]] if a in self._row else 0.0 for a in np.asarray(agent_ids).astype(str)],
                        float)

    def rates(self) -> np.ndarray:
        """Each agent's forgotten contacts per staffed hour (NaN before any staffed time)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.staffed_s > 0, self.contacts / self.staffed_s * 3600.0, np.nan)
