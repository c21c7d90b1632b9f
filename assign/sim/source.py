"""What the engine simulates: a *source* gives the agents, their shifts, a stream of contacts
for one replication, and the outcome of any contact-agent pair.

Sources: :class:`ScenarioSource` (a queueing scenario, optionally replaying a real arrival
stream) here, and :class:`assign.sim.worldsource.WorldSource` (the synthetic centre with its
hidden truth). Every random draw a run needs is made up front from seeded streams, one per
purpose, so that two policies run on the same seed see the same contacts, the same patience
and the same per-contact outcome uniforms (common random numbers).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from scipy.special import ndtri

from assign.constants import HOURS_PER_WEEK, WEEK_S
from assign.errors import InputError
from assign.schema import CHANNEL_INDEX, CHANNELS, Agents, Contacts
from assign.sim.scenario import RoutingDelay, Scenario

#: Independent random streams of one replication (SeedSequence spawn keys).
STREAM_ARRIVALS, STREAM_PATIENCE, STREAM_OUTCOMES, STREAM_POLICY, STREAM_DELAY = 0, 1, 2, 3, 4


def stream_rng(seed: int, stream: int) -> np.random.Generator:
    """The generator of one purpose in replication ``seed``: independent across purposes and
    seeds, identical across policies (common random numbers)."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(stream)]))


@dataclass(frozen=True, eq=False)
class ContactStream:
    """The contacts of one replication, in arrival order.

    ``block`` is the schema's :class:`Contacts` (codes index the source's vocabularies);
    ``patience_s`` is inf for a contact who never abandons; ``credit_s`` moves a priority
    contact ahead in queue order; ``u`` holds three outcome uniforms per contact (handle,
    resolution, CSAT) so outcomes do not depend on the order in which a policy serves.
    ``routable_after_s`` (None: 0 for every contact) is a pre-routing delay: the contact
    arrives (its wait and its patience run from ``arrival_s``) but no policy sees it before
    ``arrival_s + routable_after_s``; it may hang up during the delay.
    """

    block: Contacts
    arrival_s: np.ndarray
    patience_s: np.ndarray
    credit_s: np.ndarray
    u: np.ndarray
    routable_after_s: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.arrival_s)


@dataclass(frozen=True, eq=False)
class Outcomes:
    """Outcomes of assigned pairs; NaN where the source has no model for them."""

    handle_s: np.ndarray
    resolved: np.ndarray  # float: 1.0 / 0.0 / NaN
    csat: np.ndarray
    truth_p_resolved: np.ndarray
    truth_csat: np.ndarray
    truth_handle_s: np.ndarray


@dataclass(frozen=True, eq=False)
class Roster:
    """Agents on duty per dated slot: ``agents[i]`` whole agents over
    ``[start + i * slot_s, start + (i + 1) * slot_s)``, on the scenario's clock. A replay of a
    real period takes that period's own roster the way it takes its arrivals; outside the
    roster the scenario's periodic staffing applies."""

    start: datetime
    slot_s: int
    agents: np.ndarray

    def __post_init__(self) -> None:
        a = np.asarray(self.agents)
        problems = []
        if not (isinstance(self.slot_s, (int, np.integer)) and self.slot_s > 0):
            problems.append(f"roster.slot_s: must be a positive whole number of seconds, got {self.slot_s!r}")
        if a.ndim != 1 or not len(a):
            problems.append(f"roster.agents: expected a non-empty 1-d array, got shape {a.shape}")
        elif not np.issubdtype(a.dtype, np.number) or not np.all(np.isfinite(a)) or np.any(a < 0) \
                or np.any(a != np.round(a)):
            problems.append("roster.agents: must be whole numbers >= 0")
        if problems:
            raise InputError(problems, what="roster")
        object.__setattr__(self, "agents", a.astype(np.int64))


@dataclass(frozen=True, eq=False)
class ShiftPlan:
    """Shift changes sorted by time: agent ``agent[k]`` goes on (``on[k]``) or off at ``t_s[k]``."""

    t_s: np.ndarray
    agent: np.ndarray
    on: np.ndarray


class Source(ABC):
    """What the engine needs from a simulated centre. Subclasses set the attributes below
    and implement the four abstract methods; the optional hooks have documented defaults.

    ``complete_outcomes`` draws outcomes that nothing during the run depends on, in one batch
    after it (default: none, the outcomes given at assignment are final). ``truth_quality``
    is the true expected resolution of pairs, for the oracle; a source with a hidden truth
    sets ``has_truth = True`` and overrides it (default: no truth).
    """

    name: str
    start: datetime
    intents: tuple[str, ...]
    languages: tuple[str, ...]
    styles: tuple[str, ...]
    agents: Agents
    has_truth: bool = False

    @abstractmethod
    def contacts(self, *, seed: int, horizon_s: float) -> ContactStream:
        """The contacts arriving in [0, horizon_s) of replication ``seed``, in arrival order."""

    @abstractmethod
    def shifts(self, *, horizon_s: float) -> ShiftPlan:
        """Agents going on and off shift up to ``horizon_s``."""

    @abstractmethod
    def outcomes(self, *, stream: ContactStream, contact_idx: np.ndarray, agent_idx: np.ndarray,
                 agent_load: np.ndarray, t_s: float) -> Outcomes:
        """Outcomes of pairs started at ``t_s`` (``agent_load``: contacts the agent already held)."""

    @abstractmethod
    def expected_handle_s(self) -> np.ndarray:
        """(n_agents, n_intents) expected handle time: the service rates the gcµ rule uses."""

    def tenure_at_start(self) -> np.ndarray:
        """Each agent's tenure (days) at the run's start, which the run ages with its clock: an
        agent who joins later holds minus the days until it joins (the roster holds 0 for it).
        Default: the roster's own."""
        return np.asarray(self.agents.tenure_days, float)

    def roster_tenure(self, *, day: int) -> np.ndarray:
        """Each agent's tenure as a tick sees it on day ``day`` (0-based) of the run: aged by whole
        days, as a roster refreshed nightly from the HR system gives it, 0 until an agent joins.
        On day 0 it is the roster's own, bit for bit, so a run's first day is unchanged by aging
        (a one-day run's drain past midnight is day 1)."""
        return np.maximum(self.tenure_at_start() + float(day), 0.0)

    def complete_outcomes(self, *, stream: ContactStream, contact_idx: np.ndarray, truth_p_resolved: np.ndarray,
                          truth_csat: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """(resolved, csat) of the served contacts ``contact_idx``, drawn after the run; None
        (the default) when the outcomes recorded at assignment are final."""
        return None

    def truth_quality(self, *, stream: ContactStream, contact_idx: np.ndarray, agent_idx: np.ndarray,
                      agent_load: np.ndarray, t_s: float = 0.0) -> np.ndarray | None:
        """True expected resolution of pairs; None (the default) for a source without truth."""
        return None


def poisson_times(rng: np.random.Generator, rate_per_hour: np.ndarray, *, start: datetime,
                  horizon_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Non-homogeneous Poisson arrivals, piecewise constant per hour of week, exact in time.

    ``rate_per_hour`` is (n_types, 168). Returns (times, type codes), sorted by time.
    """
    base_s = (start.weekday() * 24 + start.hour) * 3600.0 + start.minute * 60 + start.second
    edges = np.arange(-(base_s % 3600.0), horizon_s + 3600.0, 3600.0)
    lo = np.maximum(edges[:-1], 0.0)
    hi = np.minimum(edges[1:], horizon_s)
    keep = hi > lo
    lo, hi = lo[keep], hi[keep]
    how = (np.floor((base_s + lo) / 3600.0).astype(np.int64)) % HOURS_PER_WEEK
    lam = rate_per_hour[:, how] * (hi - lo)[None, :] / 3600.0   # (types, segments)
    counts = rng.poisson(lam)
    typ = np.repeat(np.repeat(np.arange(lam.shape[0]), lam.shape[1]), counts.ravel())
    seg = np.repeat(np.tile(np.arange(lam.shape[1]), lam.shape[0]), counts.ravel())
    t = lo[seg] + rng.random(len(seg)) * (hi - lo)[seg]
    order = np.lexsort((typ, t))
    return t[order], typ[order]


class ScenarioSource(Source):
    """A queueing scenario: one routing group per type, identical agents (all skilled in every
    type, one voice contact at a time), handle times and patience from the scenario's
    distributions. With ``replay`` (a history DataFrame in the contract) the arrival stream
    is the logged one (times and types); patience and handle times are still drawn from the
    scenario's distributions, and there is no resolution or CSAT model (those KPIs are NaN).

    Two options model what a log does not record: ``slot_agents``, agents on shift per slot
    of week (Monday 00:00 first; any whole divisor of the hour as the slot) instead of the
    scenario's hourly staffing (default: the scenario's ``staffing.slots``, if any);
    ``routing_delay``, a pre-routing delay of identified callers
    (:class:`~assign.sim.scenario.RoutingDelay`, default: the scenario's own, if any), drawn
    per contact into ``ContactStream.routable_after_s``: their waits and patience still run
    from arrival. Only a replay has identified callers (a customer id). ``roster``
    (:class:`Roster`): agents on duty per dated slot, overriding the periodic staffing over
    its span (a replayed period's own roster, as its arrivals are its own).
    """

    def __init__(self, scenario: Scenario, *, replay: pd.DataFrame | None = None,
                 slot_agents: np.ndarray | None = None, routing_delay: RoutingDelay | None = None,
                 roster: Roster | None = None) -> None:
        if slot_agents is not None and (int(WEEK_S) % len(slot_agents) or 3600 % (int(WEEK_S) // len(slot_agents))):
            raise InputError([(f"slot_agents: {len(slot_agents)} slots do not divide the week into slots "
                               "that are whole divisors of the hour")], what="scenario source")
        if slot_agents is None:
            slot_agents = scenario.staffing.slots  # the scenario's own slot staffing, if any
        self.slot_agents = None if slot_agents is None else np.asarray(slot_agents, dtype=np.int64)
        self.routing_delay = routing_delay if routing_delay is not None else scenario.routing_delay
        self.roster = roster
        self.scenario = scenario
        self.name = scenario.name
        self.start = scenario.start
        self.intents = scenario.types
        self.languages = ("en",)
        self.styles: tuple[str, ...] = ()
        n = scenario.n_agents
        cap = np.zeros((n, len(CHANNELS)), dtype=np.int32)
        cap[:, CHANNEL_INDEX["voice"]] = 1
        self.agents = Agents(ids=list(scenario.agent_names), speaks=np.ones((n, 1), bool),
                             skill=np.ones((n, len(self.intents))), tenure_days=np.zeros(n),
                             sentiment_handling=np.full(n, 0.5), style=np.full(n, -1), capacity=cap,
                             load=np.zeros_like(cap), idle_s=np.zeros(n))
        self._replay = None if replay is None else self._prepare_replay(replay)
        sv = scenario.service
        # Per (type, agent) sample tables for empirical service, as dense lookups.
        if sv.kind == "empirical":
            self._sample_of = np.full((len(self.intents), n), -1, dtype=np.int64)
            self._samples: list[np.ndarray] = []
            agent_pos = {a: j for j, a in enumerate(scenario.agent_names)}
            for ti, tname in enumerate(self.intents):
                self._samples.append(sv.samples[(tname, "")])
                self._sample_of[ti, :] = len(self._samples) - 1
            for (tname, aname), v in sv.samples.items():
                if aname and aname in agent_pos:
                    self._samples.append(v)
                    self._sample_of[self.intents.index(tname), agent_pos[aname]] = len(self._samples) - 1

    # -- replay ------------------------------------------------------------------------
    def _prepare_replay(self, df: pd.DataFrame) -> pd.DataFrame:
        from assign.history import conform_history

        h = conform_history(df)
        problems = []
        t = h["arrival_at"]
        bad_t = np.flatnonzero(t.isna().to_numpy())
        for i in bad_t[:20]:
            problems.append(f"history row {i}: arrival_at is missing")
        known = set(self.intents)
        bad = np.flatnonzero(~h["intent"].isin(known).to_numpy())
        for i in bad[:20]:
            problems.append(f"history row {i}: intent {h['intent'].iloc[i]!r} is not a type of scenario "
                            f"{self.name!r} ({', '.join(self.intents)})")
        if len(bad) > 20:
            problems.append(f"history: {len(bad) - 20} more rows with unknown intents")
        if problems:
            raise InputError(problems, what="replay history")
        start = pd.Timestamp(self.start)
        if start.tzinfo is None:
            start = start.tz_localize("UTC")
        h = h.assign(_t=(t - start).dt.total_seconds()).sort_values(["_t", "contact_id"], kind="stable")
        #: History rows that arrived before the scenario's start are not replayed (counted).
        self.replay_before_start = int((h["_t"] < 0).sum())
        return h.reset_index(drop=True)

    def replay_outside(self, horizon_s: float) -> int:
        """How many history rows fall outside [0, horizon_s) and so are not replayed."""
        if self._replay is None:
            return 0
        t = self._replay["_t"].to_numpy(float)
        return int(((t < 0) | (t >= horizon_s)).sum())

    @property
    def replay_span_s(self) -> float | None:
        """Seconds from the scenario start to the last replayed arrival (None without replay)."""
        if self._replay is None or not len(self._replay):
            return None
        return float(self._replay["_t"].max())

    # -- Source protocol -------------------------------------------------------------------
    def contacts(self, *, seed: int, horizon_s: float) -> ContactStream:
        sc = self.scenario
        rng_a = stream_rng(seed, STREAM_ARRIVALS)
        if self._replay is not None:
            h = self._replay[(self._replay["_t"] >= 0) & (self._replay["_t"] < horizon_s)]
            t = h["_t"].to_numpy(dtype=float)
            typ = np.array([self.intents.index(x) for x in h["intent"]], dtype=np.int64).reshape(len(h))
            ids = h["contact_id"].astype(str).to_numpy()
            tier = h["customer_tier"].astype(object).where(h["customer_tier"].notna(), None).to_numpy()
            cust = h["customer_id"].astype(object).where(h["customer_id"].notna(), None).to_numpy()
            priority = np.array([x == "priority" for x in tier], dtype=bool)
        else:
            t, typ = poisson_times(rng_a, sc.arrivals.rate, start=self.start, horizon_s=horizon_s)
            ids = np.array([f"c{seed}-{i:07d}" for i in range(len(t))], dtype=object)
            priority = rng_a.random(len(t)) < sc.priority_share if sc.priority_share > 0 else np.zeros(len(t), bool)
            tier = (
                np.where(priority, "priority", "regular").astype(object)
                if sc.priority_share > 0
                else np.full(len(t), None)
            )
            cust = np.full(len(t), None)
        n = len(t)
        rng_p = stream_rng(seed, STREAM_PATIENCE)
        patience = self._patience(rng_p, typ)
        u = stream_rng(seed, STREAM_OUTCOMES).random((n, 3))
        credit = np.where(priority, sc.priority_credit_s, 0.0)
        delay = None
        if self.routing_delay is not None:
            known = np.array([c is not None for c in cust], dtype=bool)
            delay = self.routing_delay.draw(stream_rng(seed, STREAM_DELAY), types=self.intents, typ=typ,
                                            identified=known)
        block = Contacts(
            ids=ids,
            channel=np.full(n, CHANNEL_INDEX["voice"]),
            intent=typ,
            language=np.zeros(n),
            complexity=np.full(n, 0.5),
            urgency=np.where(priority, 1.0, 0.5),
            sentiment=np.zeros(n),
            waited_s=np.zeros(n),
            style=np.full(n, -1),
            customer_id=cust,
            customer_tier=tier,
        )
        return ContactStream(block=block, arrival_s=t, patience_s=patience, credit_s=credit, u=u,
                             routable_after_s=delay)

    def _patience(self, rng: np.random.Generator, typ: np.ndarray) -> np.ndarray:
        pt = self.scenario.patience
        n = len(typ)
        if pt is None:
            return np.full(n, np.inf)
        u = rng.random(n)
        if pt.kind == "exponential":
            return -pt.mean_s * np.log1p(-u)
        out = np.full(n, np.inf)
        for ti, tname in enumerate(self.intents):
            m = typ == ti
            ts, surv = pt.curves[tname]
            # Inverse of a right-continuous step survival: the first t with S(t) <= u;
            # beyond the curve's last point the contact never abandons.
            k = np.searchsorted(-surv, -u[m], side="left")
            out[m] = np.where(k < len(ts), ts[np.minimum(k, len(ts) - 1)], np.inf)
        return out

    def shifts(self, *, horizon_s: float) -> ShiftPlan:
        plan = self._periodic_shifts(horizon_s=horizon_s)
        return plan if self.roster is None else self._with_roster(plan, horizon_s=horizon_s)

    def _with_roster(self, plan: ShiftPlan, *, horizon_s: float) -> ShiftPlan:
        """``plan`` (the periodic staffing) with the roster's levels over the roster's span."""
        r = self.roster
        t0 = (_utc(r.start) - _utc(self.start)).total_seconds()
        end = t0 + len(r.agents) * r.slot_s
        bt = plan.t_s
        bl = np.cumsum(np.where(plan.on, 1, -1))  # agents on after each change (the first k are on)
        at_end = np.searchsorted(bt, end, side="right") - 1
        keep = (bt < t0) | (bt >= end)
        times = np.r_[bt[keep], t0 + np.arange(len(r.agents)) * float(r.slot_s), end]
        levels = np.r_[bl[keep], r.agents, bl[at_end] if at_end >= 0 else 0]
        order = np.argsort(times, kind="stable")
        times, levels = times[order], np.minimum(levels[order], self.scenario.n_agents)
        inside = times < horizon_s
        return _plan_of_levels(np.maximum(times[inside], 0.0), levels[inside])

    def _periodic_shifts(self, *, horizon_s: float) -> ShiftPlan:
        if self.slot_agents is not None:
            return self._slot_shifts(horizon_s=horizon_s)
        sc = self.scenario
        base = sc.start.weekday() * 24 * 3600.0 + sc.start.hour * 3600.0 + sc.start.minute * 60 + sc.start.second
        first = -(base % 3600.0)
        times, agents, on = [], [], []
        prev = 0
        t = first
        while t < horizon_s:
            k = int(sc.staffing.agents[int(np.floor((base + t) / 3600.0 + 1e-9)) % HOURS_PER_WEEK])
            k = min(k, sc.n_agents)
            tt = max(t, 0.0)
            if k > prev:
                times += [tt] * (k - prev)
                agents += list(range(prev, k))
                on += [True] * (k - prev)
            elif k < prev:
                times += [tt] * (prev - k)
                agents += list(range(k, prev))
                on += [False] * (prev - k)
            prev = k
            t += 3600.0
        return ShiftPlan(t_s=np.asarray(times, float), agent=np.asarray(agents, np.int64), on=np.asarray(on, bool))

    def _slot_shifts(self, *, horizon_s: float) -> ShiftPlan:
        """Shifts following ``slot_agents`` (the first k agents on in a slot staffed with k)."""
        st, n_slot = self.scenario.start, len(self.slot_agents)
        slot = int(WEEK_S) // n_slot
        base = st.weekday() * 86400 + st.hour * 3600 + st.minute * 60 + st.second
        times, agents, on = [], [], []
        prev, t = 0, -float(base % slot)
        while t < horizon_s:
            k = min(int(self.slot_agents[int((base + t) // slot) % n_slot]), self.scenario.n_agents)
            if k != prev:
                lo, hi = min(k, prev), max(k, prev)
                times += [max(t, 0.0)] * (hi - lo)
                agents += list(range(lo, hi))
                on += [k > prev] * (hi - lo)
            prev, t = k, t + slot
        return ShiftPlan(t_s=np.asarray(times, float), agent=np.asarray(agents, np.int64), on=np.asarray(on, bool))

    def outcomes(
        self,
        *,
        stream: ContactStream,
        contact_idx: np.ndarray,
        agent_idx: np.ndarray,
        agent_load: np.ndarray,
        t_s: float = 0.0,
    ) -> Outcomes:
        u = stream.u[contact_idx, 0]
        sv = self.scenario.service
        if sv.kind == "exponential":
            h = -sv.mean_s * np.log1p(-u)
        elif sv.kind == "lognormal":
            s2 = np.log1p(sv.cv**2)
            h = np.exp(np.log(sv.mean_s) - s2 / 2 + np.sqrt(s2) * ndtri(u))
        else:
            typ = stream.block.intent[contact_idx]
            h = np.empty(len(contact_idx))
            which = self._sample_of[typ, agent_idx]
            for k, (w, uu) in enumerate(zip(which, u)):
                s = self._samples[w]
                h[k] = s[min(int(uu * len(s)), len(s) - 1)]
        nan = np.full(len(h), np.nan)
        return Outcomes(handle_s=h, resolved=nan, csat=nan, truth_p_resolved=nan, truth_csat=nan, truth_handle_s=nan)

    def expected_handle_s(self) -> np.ndarray:
        sv = self.scenario.service
        n_t, n_a = len(self.intents), self.scenario.n_agents
        if sv.kind in ("exponential", "lognormal"):
            return np.full((n_a, n_t), sv.mean_s)
        means = np.array([s.mean() for s in self._samples])
        return means[self._sample_of].T


def _utc(t: datetime) -> pd.Timestamp:
    ts = pd.Timestamp(t)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts


def _plan_of_levels(times: np.ndarray, levels: np.ndarray) -> ShiftPlan:
    """Shift changes taking the agents on duty to ``levels[i]`` at ``times[i]`` (sorted; the
    first k agents are the ones on)."""
    out_t, out_a, out_on = [], [], []
    prev = 0
    for t, k in zip(times.tolist(), levels.tolist()):
        if k != prev:
            lo, hi = min(k, prev), max(k, prev)
            out_t += [t] * (hi - lo)
            out_a += list(range(lo, hi))
            out_on += [k > prev] * (hi - lo)
        prev = k
    return ShiftPlan(t_s=np.asarray(out_t, float), agent=np.asarray(out_a, np.int64), on=np.asarray(out_on, bool))


def at_time(start: datetime, t_s: float) -> datetime:
    return start + timedelta(seconds=float(t_s))
