"""A centre that changes over weeks, with its truth known at every moment.

A :class:`DriftSchedule` declares what moves and when (seeded, frozen, nothing implicit):

- **hires and leavers**: at every week boundary ``hires_per_week`` agents join (tenure 0 on
  their first day, so the truth's tenure learning curve moves their resolution up week by
  week) and as many tenured agents leave (they finish the shift they are on);
- **a shock**: from ``shock_day`` one intent's difficulty jumps (its base resolution logit
  moves by ``shock_logit``);
- **an intent-mix shift and a brand-new intent**: from ``mix_day`` the intent shares are
  tilted by a seeded log-normal factor (``mix_sigma``) and an intent that never arrived
  before takes ``new_intent_share`` of the contacts (agents already hold skills for it: the
  launch came with training).
- **earlier cohorts** (``past_hire_weeks``, default 0): the centre hired the same way before the
  run: ``hires_per_week`` of the day-0 agents joined at each of the ``past_hire_weeks`` week
  boundaries before day 0 (tenure 7, 14, ... days on day 0) and as many tenured agents left
  then, so a history of the weeks before the run (:meth:`DriftingWorld.pre_period`) holds
  hires' first weeks.

:func:`drifting_world` draws the centre once (the standard generator, one extra intent kept
silent until ``mix_day``) and :class:`DriftSource` serves it to the simulator: arrivals from
the phase in force at each moment, outcomes and the oracle's truth from the phase in force
when the contact arrived, tenure aged to that moment. ``DriftSchedule.off()`` is the same
world with nothing moving (the driftless control).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta

import numpy as np
import pandas as pd

from assign.constants import DAY_S
from assign.errors import InputError
from assign.sim.source import STREAM_ARRIVALS, STREAM_OUTCOMES, ContactStream, ShiftPlan, stream_rng
from assign.sim.worldsource import WorldSource
from assign.world.centre import Truth, World, draw_tenure, generate_world

#: Seed stream of the schedule's own draws (who is hired, who leaves, the mix tilt).
DRIFT_STREAM = 9_101


@dataclass(frozen=True, kw_only=True)
class DriftSchedule:
    """What changes and when (days from the run's start). See the module doc."""

    weeks: int = 4
    hires_per_week: int = 2
    leavers_per_week: int = 2
    shock_day: float = 9.0
    shock_logit: float = -1.5
    mix_day: float = 14.0
    mix_sigma: float = 0.6
    new_intent_share: float = 0.12
    past_hire_weeks: int = 0

    def __post_init__(self) -> None:
        p = []
        if not isinstance(self.weeks, int) or self.weeks < 1:
            p.append(f"weeks must be a whole number >= 1, got {self.weeks!r}")
        for k in ("hires_per_week", "leavers_per_week", "past_hire_weeks"):
            if not isinstance(getattr(self, k), int) or getattr(self, k) < 0:
                p.append(f"{k} must be a whole number >= 0, got {getattr(self, k)!r}")
        for k in ("shock_day", "mix_day"):
            if not np.isfinite(getattr(self, k)) or getattr(self, k) < 0:
                p.append(f"{k} must be a finite day >= 0, got {getattr(self, k)!r}")
        if not 0 <= self.new_intent_share < 1:
            p.append(f"new_intent_share must be in [0, 1), got {self.new_intent_share!r}")
        if not (np.isfinite(self.shock_logit) and np.isfinite(self.mix_sigma) and self.mix_sigma >= 0):
            p.append("shock_logit and mix_sigma must be finite, mix_sigma >= 0")
        if p:
            raise InputError(p, what="drift schedule")

    @classmethod
    def off(cls, *, weeks: int = 4) -> DriftSchedule:
        """The same centre with nothing moving."""
        return cls(weeks=weeks, hires_per_week=0, leavers_per_week=0, shock_logit=0.0, mix_sigma=0.0,
                   new_intent_share=0.0)

    @property
    def drifts(self) -> bool:
        return bool(self.hires_per_week or self.leavers_per_week or self.shock_logit or self.mix_sigma
                    or self.new_intent_share)


@dataclass(frozen=True, eq=False)
class Phase:
    """The world in force from ``start_day`` on (until the next phase)."""

    start_day: float
    world: World


@dataclass(frozen=True, eq=False)
class DriftingWorld:
    """A centre and its schedule: ``phases`` in time order (the first starts at day 0),
    ``shock_intent`` and ``new_intent`` (names), and per agent ``hire_day`` / ``leave_day``
    (``inf``: stays). ``gone``: the agents who left before day 0 (``leave_day`` < 0; empty
    unless the schedule has ``past_hire_weeks``), seen only in :meth:`pre_period`."""

    schedule: DriftSchedule
    phases: tuple[Phase, ...]
    shock_intent: str
    new_intent: str
    gone: pd.DataFrame | None = None

    @property
    def base(self) -> World:
        return self.phases[0].world

    def phase_of(self, t_s: np.ndarray) -> np.ndarray:
        """Index of the phase in force at each time (seconds from the start)."""
        starts = np.array([p.start_day * DAY_S for p in self.phases])
        return np.searchsorted(starts, np.asarray(t_s, float), side="right") - 1

    def leave_days(self) -> np.ndarray:
        ag = self.base.agents
        return ag["leave_day"].to_numpy(float) if "leave_day" in ag.columns else np.full(len(ag), np.inf)

    def pre_period(self, *, days: int) -> World:
        """The day-0 world moved ``days`` earlier (for a history before the run): the agents
        there on day 0 (``days`` younger, at least 0), intents and difficulty of day 0. With
        earlier cohorts (``past_hire_weeks``), a cohort hired within the ``days`` joins on its
        hire day (``hire_day``, ``tenure_days`` = minus it, as the run's hires) and the agents
        who left before day 0 work until their leave day (``leave_day``, days from the
        period's start)."""
        w = self.base
        ag = w.agents[w.agents["hire_day"].to_numpy() == 0].reset_index(drop=True)
        tenure = ag["tenure_days"].to_numpy(float) - days
        cohort = ag["past_hire"].to_numpy(bool) if "past_hire" in ag.columns else np.zeros(len(ag), bool)
        ag["hire_day"] = np.where(cohort & (tenure < 0), -np.minimum(tenure, 0.0), 0.0).astype(np.int64)
        ag["tenure_days"] = np.where(cohort, tenure, np.maximum(tenure, 0.0))
        ag["leave_day"] = ag["leave_day"].to_numpy(float) + days
        if self.gone is not None:
            gone = self.gone.assign(leave_day=self.gone["leave_day"].to_numpy(float) + days,
                                    tenure_days=np.maximum(self.gone["tenure_days"].to_numpy(float) - days, 0.0))
            ag = pd.concat([ag, gone[gone["leave_day"].to_numpy(float) > 0]], ignore_index=True)
        return replace(w, agents=ag, start=w.start - timedelta(days=int(days)))


def drifting_world(*, seed: int, n_agents: int = 30, n_intents: int = 6,
                   schedule: DriftSchedule | None = None, occupancy: float = 0.88,
                   monolingual: bool = False) -> DriftingWorld:
    """Draw the centre (``n_agents`` there on day 0; hires come on top and as many leave) and
    its phases. The same seed with ``DriftSchedule.off()`` gives the same day-0 centre.
    ``occupancy``: the offered load over the day-0 staffed capacity (``generate_world``'s).
    ``monolingual``: every customer and every agent speaks the first language: a
    small centre cannot staff the other languages' queues (docs/living-centre.md, "A
    realistic sizing"); every other draw is unchanged."""
    s = schedule or DriftSchedule()
    n_hires = s.hires_per_week * (s.weeks - 1)
    n_gone = s.hires_per_week * s.past_hire_weeks  # left before day 0, as the earlier cohorts joined
    total = n_agents + n_hires + n_gone
    world = generate_world(seed=seed, n_agents=total, n_intents=n_intents + 1, n_customers=60 * total,
                           new_hires=(n_hires + n_gone) / total if n_hires + n_gone else 0.0, occupancy=occupancy)
    rng = np.random.default_rng([int(seed), DRIFT_STREAM])
    if monolingual:  # every customer speaks the first language, and so does every agent
        first = world.languages[0]
        agents = world.agents.assign(languages=[[first, *(x for x in ls if x != first)]
                                                for ls in world.agents["languages"]])
        world = replace(world, customers=world.customers.assign(language=first), agents=agents)
    ag = world.agents.copy()
    hired = ag["hire_day"].to_numpy(np.int64) > 0 if "hire_day" in ag.columns else np.zeros(total, bool)
    hire_day = np.zeros(total, np.int64)
    idx = rng.permutation(np.flatnonzero(hired))
    idx, gone = idx[:n_hires], idx[n_hires:]  # gone: still marked hired, so out of ``stay``
    hire_day[idx] = 7 * (1 + np.arange(len(idx)) // max(s.hires_per_week, 1))
    leave_day = np.full(total, np.inf)
    stay = np.flatnonzero(~hired)
    n_leave = min(s.leavers_per_week * (s.weeks - 1), len(stay) - 6)
    out = rng.choice(stay, size=max(n_leave, 0), replace=False)
    leave_day[out] = 7.0 * (1 + np.arange(len(out)) // max(s.leavers_per_week, 1))
    ag["hire_day"] = hire_day
    ag["tenure_days"] = np.where(hire_day > 0, -hire_day.astype(float), ag["tenure_days"].to_numpy(float))
    ag["leave_day"] = leave_day
    ag, gone_agents = _earlier_cohorts(ag, gone=gone, stay=stay, schedule=s, seed=seed)
    new = len(world.intents) - 1  # silent until mix_day
    share0 = world.intent_share.copy()
    share0[new] = 0.0
    share0 /= share0.sum()
    base = replace(world, agents=ag, intent_share=share0)
    shock = int(np.argmax(share0))  # the busiest intent: a shock nobody could miss
    tilt = np.exp(s.mix_sigma * rng.standard_normal(len(share0)))
    share1 = share0 * tilt
    share1[new] = 0.0
    share1 = (1.0 - s.new_intent_share) * share1 / share1.sum()
    share1[new] = s.new_intent_share
    shocked = base.intent_base.copy()
    shocked[shock] += s.shock_logit
    days = sorted({0.0, float(s.shock_day), float(s.mix_day)}) if s.drifts else [0.0]
    phases = tuple(Phase(d, replace(base, intent_base=shocked if d >= s.shock_day else base.intent_base,
                                    intent_share=share1 if d >= s.mix_day else share0)) for d in days)
    return DriftingWorld(schedule=s, phases=phases, shock_intent=world.intents[shock],
                         new_intent=world.intents[new], gone=gone_agents)


#: Seed stream of the earlier cohorts' draw (apart from the schedule's, so a schedule without
#: them draws exactly as before).
COHORT_STREAM = 9_102


def _earlier_cohorts(ag: pd.DataFrame, *, gone: np.ndarray, stay: np.ndarray, schedule: DriftSchedule,
                     seed: int) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """The day-0 roster without the agents who left before day 0 (returned apart, each with its
    negative ``leave_day``), and ``hires_per_week`` of the day-0 agents per earlier week marked
    ``past_hire`` with tenure 7, 14, ... days on day 0."""
    if not schedule.past_hire_weeks:
        return ag, None
    hpw = schedule.hires_per_week
    rng = np.random.default_rng([int(seed), COHORT_STREAM])
    cohort = rng.choice(stay, size=min(hpw * schedule.past_hire_weeks, len(stay)), replace=False)
    tenure = ag["tenure_days"].to_numpy(float).copy()
    tenure[cohort] = 7.0 * (1 + np.arange(len(cohort)) // hpw)
    past = np.zeros(len(ag), bool)
    past[cohort] = True
    tenure[gone] = draw_tenure(rng, n=len(gone))  # tenured when they left (the hire draw marked them new)
    leave = ag["leave_day"].to_numpy(float).copy()
    leave[gone] = -7.0 * (1 + np.arange(len(gone)) // hpw)
    ag = ag.assign(tenure_days=tenure, past_hire=past, leave_day=leave)
    out = np.zeros(len(ag), bool)
    out[gone] = True
    return ag[~out].reset_index(drop=True), ag[out].reset_index(drop=True)


class DriftSource(WorldSource):
    """The drifting centre as a simulation source (see module doc). Agents are the whole
    roster (hires and leavers included); shifts say who works when."""

    def __init__(self, drifting: DriftingWorld, *, name: str = "living") -> None:
        super().__init__(drifting.base, name=name)
        self.drifting = drifting

    def contacts(self, *, seed: int, horizon_s: float) -> ContactStream:
        rng = stream_rng(seed, STREAM_ARRIVALS)
        frames = []
        starts = [p.start_day * DAY_S for p in self.drifting.phases] + [np.inf]
        for k, p in enumerate(self.drifting.phases):
            lo, hi = min(starts[k], horizon_s), min(starts[k + 1], horizon_s)
            if hi > lo:
                frames.append(p.world.sample_arrivals(rng=rng, start_s=lo, end_s=hi))
        df = pd.concat(frames, ignore_index=True) if frames else self.world.sample_arrivals(
            rng=rng, start_s=0.0, end_s=0.0)
        block = self.world.contacts_block(df)
        u = stream_rng(seed, STREAM_OUTCOMES).random((len(df), 3))
        return ContactStream(block=block, arrival_s=df["arrival_s"].to_numpy(float),
                             patience_s=df["patience_s"].to_numpy(float), credit_s=np.zeros(len(df)), u=u)

    def shifts(self, *, horizon_s: float) -> ShiftPlan:
        """The world's shifts, without any shift an agent starts on or after its leave day."""
        plan = super().shifts(horizon_s=horizon_s)
        leave_s = self.drifting.leave_days() * DAY_S
        keep = np.ones(len(plan.t_s), bool)
        on_now = np.zeros(len(leave_s), bool)
        for k in range(len(plan.t_s)):
            a = int(plan.agent[k])
            if plan.on[k]:
                keep[k] = on_now[a] = plan.t_s[k] < leave_s[a]
            else:
                keep[k] = on_now[a]
                on_now[a] = False
        return ShiftPlan(t_s=plan.t_s[keep], agent=plan.agent[keep], on=plan.on[keep])

    def _truth(self, stream: ContactStream, contact_idx, agent_idx, agent_load, t_s):
        """Truth of the phase in force when each contact arrived, tenure aged to that time."""
        ci = np.asarray(contact_idx, np.int64)
        ai = np.asarray(agent_idx, np.int64)
        load = np.broadcast_to(np.asarray(agent_load, float), ci.shape)
        arr = stream.arrival_s[ci]
        phase = self.drifting.phase_of(arr)
        p, cs, ht = np.empty(len(ci)), np.empty(len(ci)), np.empty(len(ci))
        for k in np.unique(phase):
            m = phase == k
            tr = self.drifting.phases[k].world.truth(contacts=stream.block, contact_idx=ci[m], agent_idx=ai[m],
                                                     agent_load=np.ascontiguousarray(load[m]), t_s=arr[m])
            p[m], cs[m], ht[m] = tr.p_resolved, tr.csat_mean, tr.handle_mean_s
        return Truth(p_resolved=p, csat_mean=cs, handle_mean_s=ht)
