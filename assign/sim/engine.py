"""The discrete-event engine: exact in time, seeded, one replication per call.

Events: arrivals (pre-drawn, in time order), departures (a heap), shift changes (a sorted
plan) and routing ticks. The loop in :meth:`Engine.run` takes the next event and lets its
handler update the state (:class:`SimState`); a handler that frees capacity or queues a
contact calls :meth:`Engine._changed`, which decides when the policy is asked. With
``window_s == 0`` the policy is asked after every event that can create a match (an
arrival, a freed slot, an agent coming on shift); with ``window_s > 0`` it is asked at the
multiples of ``window_s`` while contacts wait and capacity is free (micro-batches, as the
production router runs). At equal times events are handled in the order departure, shift
change, arrival, routing tick. Abandonment is exact: a contact whose patience ends before
it is routed leaves at ``arrival + patience``; the queue is purged of such contacts before
every routing decision, which is equivalent because nothing between two decisions depends
on them. A contact with a pre-routing delay (``ContactStream.routable_after_s``) is
*delayed* from its arrival until ``arrival + delay`` (a heap of routable times): its wait and
patience run from arrival, no policy sees it meanwhile, and one whose patience ends first is
abandoned (the "routable" event, ordered after arrivals at equal times, settles it).

Agents serve up to ``capacity[agent, channel]`` contacts at once; an agent going off shift
finishes what it holds and takes nothing new. Outcomes (handle time, resolution, CSAT) come
from the source at the moment of assignment, from per-contact uniforms drawn up front, so a
policy's choice changes outcomes only through the agent chosen (common random numbers).
"""
from __future__ import annotations

import heapq
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from assign.config import RouterConfig
from assign.constants import DAY_S
from assign.eligibility import skilled
from assign.errors import AssignError
from assign.schema import CHANNELS
from assign.sim.source import STREAM_POLICY, ContactStream, Outcomes, Source, stream_rng
from assign.sim.view import RunInfo, StaticEligibility, View
from assign.validate import Problems

if TYPE_CHECKING:
    from assign.sim.policies import Policy

WAITING, SERVED, ABANDONED, UNSERVED, PENDING, DELAYED = 1, 2, 3, 4, 0, 5
STATUS_NAMES = {SERVED: "served", ABANDONED: "abandoned", UNSERVED: "unserved", PENDING: "pending", WAITING: "waiting",
                DELAYED: "delayed"}
#: The shortest routing window: below it a day needs millions of ticks (use 0, event-driven).
MIN_WINDOW_S = 0.01
_DEFAULT_ROUTER = RouterConfig()
_INF = math.inf


@dataclass(frozen=True, kw_only=True)
class SimConfig:
    """Run settings. ``days`` of arrivals, then up to ``drain_s`` to serve who is still there
    (contacts left waiting after that are ``unserved``). ``window_s`` is 0 (event-driven) or
    at least :data:`MIN_WINDOW_S`. Eligibility rules match the router's defaults so that every
    policy works on the same feasible pairs. Bad values raise
    :class:`~assign.errors.InputError` naming every one."""

    days: float = 1.0
    window_s: float = 0.0
    drain_s: float = 4 * 3600.0
    min_proficiency: float = _DEFAULT_ROUTER.min_proficiency
    require_language: bool = _DEFAULT_ROUTER.require_language
    sl_threshold_s: float = 20.0

    def __post_init__(self) -> None:
        p = Problems()
        p.number("config.days", self.days, lo=0, lo_open=True)
        w = p.number("config.window_s", self.window_s, lo=0)
        if w is not None and 0 < w < MIN_WINDOW_S:
            p.add("config.window_s", f"{self.window_s!r} is below the minimum window {MIN_WINDOW_S:g} s "
                                     "(use 0 for event-driven routing)")
        p.number("config.drain_s", self.drain_s, lo=0)
        p.number("config.min_proficiency", self.min_proficiency, lo=0)
        if not isinstance(self.require_language, bool):
            p.add("config.require_language", f"expected true or false, got {self.require_language!r}")
        p.number("config.sl_threshold_s", self.sl_threshold_s, lo=0, lo_open=True)
        p.raise_if_any(what="simulation configuration")

    @property
    def horizon_s(self) -> float:
        return self.days * DAY_S


def _nz(a: np.ndarray) -> bool:
    """``a.any()`` for the engine's small per-event arrays, without the ufunc reduction's
    per-call cost (``count_nonzero`` is a C loop; a decision asks this several times)."""
    return np.count_nonzero(a) > 0


def next_tick_at(t: float, window_s: float) -> float:
    """The first routing tick at or after ``t``: a multiple of ``window_s``. A multiple less
    than 1e-12 windows before ``t`` counts as ``t``'s own tick (float error of times built by
    adding windows), but never one earlier than ``t`` by more than float noise of ``t``
    itself, so a window far longer than the run does not tick in the past.

    >>> next_tick_at(7.0, 5.0), next_tick_at(10.0, 5.0), next_tick_at(100.0, 1e300)
    (10.0, 10.0, 1e+300)
    """
    k = math.ceil(t / window_s - 1e-12)
    if t - k * window_s > 1e-9 * t:
        k = math.ceil(t / window_s)
    return k * window_s


@dataclass(frozen=True, eq=False)
class RunResult:
    """One replication: per-contact arrays (stream order) and per-agent totals."""

    source: str
    policy: str
    seed: int
    config: SimConfig
    intents: tuple[str, ...]
    agent_ids: np.ndarray
    stream: ContactStream
    status: np.ndarray
    wait_s: np.ndarray
    agent: np.ndarray
    agent_load: np.ndarray
    handle_s: np.ndarray
    resolved: np.ndarray
    csat: np.ndarray
    truth_p_resolved: np.ndarray
    truth_csat: np.ndarray
    truth_handle_s: np.ndarray
    arm: np.ndarray | None
    agent_busy_s: np.ndarray
    agent_staffed_s: np.ndarray
    agent_work_s: np.ndarray
    agent_handled: np.ndarray
    end_s: float
    n_decisions: int
    wall_s: float
    extra: dict = field(default_factory=dict)

    @property
    def n_contacts(self) -> int:
        return len(self.status)


@dataclass(eq=False)
class SimState:
    """Everything that changes during one replication. Per agent (rows) and channel:
    ``load`` (contacts held; ``held`` is its row sum), ``free`` (slots a policy may fill: capacity minus load while on
    shift, else 0), ``on`` (on shift), ``last_change`` (time its load or shift last changed),
    and the time accounts. Per contact (stream rows): ``status`` and the outcome columns.
    ``waiting`` holds the queued contacts' rows in arrival order; ``departures`` is a heap of
    (end time, contact row); ``delayed`` a heap of (routable time, contact row) of contacts in
    their pre-routing delay."""

    load: np.ndarray
    held: np.ndarray
    free: np.ndarray
    on: np.ndarray
    last_change: np.ndarray
    busy_since: np.ndarray
    on_since: np.ndarray
    busy_s: np.ndarray
    staffed_s: np.ndarray
    work_s: np.ndarray
    handled: np.ndarray
    status: np.ndarray
    wait_s: np.ndarray
    agent: np.ndarray
    agent_load: np.ndarray
    handle_s: np.ndarray
    resolved: np.ndarray
    csat: np.ndarray
    truth_p_resolved: np.ndarray
    truth_csat: np.ndarray
    truth_handle_s: np.ndarray
    waiting: list[int] = field(default_factory=list)
    departures: list[tuple[float, int]] = field(default_factory=list)
    delayed: list[tuple[float, int]] = field(default_factory=list)
    n_decisions: int = 0

    @classmethod
    def empty(cls, *, n_contacts: int, capacity: np.ndarray) -> SimState:
        n_a = len(capacity)
        nan = lambda: np.full(n_contacts, np.nan)
        return cls(load=np.zeros_like(capacity), held=np.zeros(n_a, np.int64), free=np.zeros_like(capacity),
                   on=np.zeros(n_a, dtype=bool),
                   last_change=np.zeros(n_a), busy_since=np.zeros(n_a), on_since=np.zeros(n_a),
                   busy_s=np.zeros(n_a), staffed_s=np.zeros(n_a), work_s=np.zeros(n_a),
                   handled=np.zeros(n_a, np.int64), status=np.zeros(n_contacts, dtype=np.int8), wait_s=nan(),
                   agent=np.full(n_contacts, -1, dtype=np.int32), agent_load=nan(), handle_s=nan(),
                   resolved=nan(), csat=nan(), truth_p_resolved=nan(), truth_csat=nan(), truth_handle_s=nan())

    def record(self, rows: list[int], o: Outcomes) -> None:
        """Store the outcomes of the contacts at ``rows`` (one row: scalar stores, faster)."""
        idx = rows[0] if len(rows) == 1 else rows
        k = 0 if len(rows) == 1 else slice(None)
        for column, values in ((self.handle_s, o.handle_s), (self.resolved, o.resolved), (self.csat, o.csat),
                               (self.truth_p_resolved, o.truth_p_resolved), (self.truth_csat, o.truth_csat),
                               (self.truth_handle_s, o.truth_handle_s)):
            column[idx] = values[k]


def static_eligibility(source: Source, stream: ContactStream, config: SimConfig) -> StaticEligibility:
    """Eligibility per routing group (channel, intent, language), by the one rule
    (:mod:`assign.eligibility`) with each agent's capacity as the room."""
    a, c = source.agents, stream.block
    n_l, n_i = len(source.languages), len(source.intents)
    group = (c.channel.astype(np.int64) * n_i + c.intent) * n_l + c.language
    g = np.arange(len(CHANNELS) * n_i * n_l)
    g_ch, g_int, g_lang = g // (n_i * n_l), (g // n_l) % n_i, g % n_l
    ok = skilled(a.skill[:, g_int].astype(np.float64), a.speaks[:, g_lang], float(config.min_proficiency),
                 bool(config.require_language)) & (a.capacity[:, g_ch] > 0)
    return StaticEligibility(group=group, table=np.ascontiguousarray(ok.T))


class Engine:
    """One replication of ``policy`` on ``source``; use :func:`simulate`."""

    def __init__(self, *, source: Source, policy: Policy, seed: int, config: SimConfig) -> None:
        self.source, self.policy, self.seed, self.config = source, policy, int(seed), config
        self.stream = st = source.contacts(seed=self.seed, horizon_s=config.horizon_s)
        self.info = RunInfo(source=source, stream=st, seed=self.seed)
        self.eligibility = static_eligibility(source, st, config)
        self.rng = stream_rng(self.seed, STREAM_POLICY)
        self.capacity = source.agents.capacity
        self.channel = st.block.channel
        self.deadline = st.arrival_s + st.patience_s
        self.order_key = st.arrival_s - st.credit_s
        d = st.routable_after_s
        self.delay = d if d is not None and len(d) and bool((d > 0).any()) else None
        self.plan = source.shifts(horizon_s=config.horizon_s + config.drain_s)
        self.t_stop = config.horizon_s + config.drain_s
        self.state = SimState.empty(n_contacts=len(st), capacity=self.capacity)
        self._next_arrival = self._next_shift = 0
        self._next_tick, self._armed = _INF, False
        self._t_last = 0.0

    # ------------------------------------------------------------------ the loop
    def run(self) -> RunResult:
        t0 = time.perf_counter()
        self.policy.start(self.info)
        arms = self.policy.arm_labels(self.info)
        while (event := self._next_event()) is not None:
            t, handle = event
            self._t_last = t
            handle(t)
        return self._result(arms=arms, wall_s=time.perf_counter() - t0)

    def _next_event(self) -> tuple[float, Callable[[float], None]] | None:
        """The next event's time and handler, or None when the run is over. Ties: the first
        listed wins (departure, shift change, arrival, routable, tick)."""
        s, i_arr, i_sh = self.state, self._next_arrival, self._next_shift
        arrival = self.stream.arrival_s
        t, handle = (s.departures[0][0], self._departure) if s.departures else (_INF, self._departure)
        if i_sh < len(self.plan.t_s) and self.plan.t_s[i_sh] < t:
            t, handle = self.plan.t_s[i_sh], self._shift_change
        if i_arr < len(arrival) and arrival[i_arr] < t:
            t, handle = arrival[i_arr], self._arrival
        if s.delayed and s.delayed[0][0] < t:
            t, handle = s.delayed[0][0], self._routable
        if self._armed and self._next_tick < t:
            t, handle = self._next_tick, self._tick
        if t == _INF or t > self.t_stop or (i_arr >= len(arrival) and not s.departures and not s.waiting
                                            and not s.delayed):
            return None
        return t, handle

    # ------------------------------------------------------------------ events
    def _arrival(self, t: float) -> None:
        c = self._next_arrival
        self._next_arrival += 1
        if self.delay is not None and self.delay[c] > 0:
            self.state.status[c] = DELAYED
            heapq.heappush(self.state.delayed, (t + float(self.delay[c]), c))
            return
        self.state.status[c] = WAITING
        self.state.waiting.append(c)
        self._changed(t, new=c)

    def _routable(self, t: float) -> None:
        """A delayed contact's wait before routing is over: queued now (waiting since its arrival), or
        abandoned if its patience ended during the delay."""
        s = self.state
        _, c = heapq.heappop(s.delayed)
        if self.deadline[c] <= t:
            s.status[c] = ABANDONED
            s.wait_s[c] = self.stream.patience_s[c]
            return
        s.status[c] = WAITING
        s.waiting.append(c)
        self._changed(t, new=c)

    def _departure(self, t: float) -> None:
        s = self.state
        _, c = heapq.heappop(s.departures)
        a, ch = s.agent[c], self.channel[c]
        s.load[a, ch] -= 1
        s.held[a] -= 1
        s.last_change[a] = t
        if s.held[a] == 0:
            s.busy_s[a] += t - s.busy_since[a]
        if s.on[a]:
            s.free[a, ch] = self.capacity[a, ch] - s.load[a, ch]
            self._changed(t, agent=a)

    def _shift_change(self, t: float) -> None:
        s, k = self.state, self._next_shift
        self._next_shift += 1
        a, is_on = self.plan.agent[k], self.plan.on[k]
        if is_on and not s.on[a]:
            s.on[a] = True
            s.on_since[a] = t
            s.free[a] = self.capacity[a] - s.load[a]
            if s.held[a] == 0:
                s.last_change[a] = t
            self._changed(t, agent=a)
        elif not is_on and s.on[a]:
            s.on[a] = False
            s.staffed_s[a] += t - s.on_since[a]
            s.free[a] = 0

    def _tick(self, t: float) -> None:
        self._armed = self._decide(t)
        self._next_tick = t + self.config.window_s

    def _changed(self, t: float, *, new: int = -1, agent: int = -1) -> None:
        """A contact was queued (``new``) or an ``agent`` gained capacity: route now
        (event-driven) or arm the next tick (windowed)."""
        if not self.state.waiting:
            return
        window = self.config.window_s
        if window == 0:
            self._decide(t, new=new, agent=agent)
        elif not self._armed:
            self._armed, self._next_tick = True, next_tick_at(t, window)

    # ------------------------------------------------------------------ decisions
    def _decide(self, t: float, *, new: int = -1, agent: int = -1) -> bool:
        """Ask the policy; returns True when contacts still wait with capacity free.

        Event-driven decisions (``window_s == 0``) only look at what changed: a ``new``
        contact against every free agent, or one freed ``agent`` against the whole queue
        (every other waiting contact already had its chance at the other free agents, which
        have not gained capacity since)."""
        s = self.state
        if not _nz(s.free):
            return False
        if new >= 0:
            w, view_free = np.array([new], dtype=np.int64), s.free.copy()
        else:
            w = self._purge(t)
            if not len(w) or (agent >= 0 and not _nz(s.free[agent])):
                return False
            if agent >= 0:
                view_free = np.zeros_like(s.free)
                view_free[agent] = s.free[agent]
            else:
                view_free = s.free.copy()
            if len(w) > 1:
                w = w[np.argsort(self.order_key[w], kind="stable")]
        s.n_decisions += 1
        view = View(t=t, waiting=w, free=view_free, source=self.source, stream=self.stream, rng=self.rng,
                    state=s, eligibility=self.eligibility)
        ci, ai = self.policy.assign(view)
        ci, ai = np.asarray(ci, dtype=np.int64), np.asarray(ai, dtype=np.int64)
        if len(ci) or len(ai):
            self._check(t, ci, ai)
            self._start(t, ci, ai, new=new)
        return bool(s.waiting) and _nz(s.free)

    def _purge(self, t: float) -> np.ndarray:
        """Mark waiting contacts whose patience ended by ``t`` abandoned; the rest's rows."""
        s = self.state
        w = np.fromiter(s.waiting, dtype=np.int64, count=len(s.waiting))
        gone = self.deadline[w] <= t
        if _nz(gone):
            g = w[gone]
            s.status[g] = ABANDONED
            s.wait_s[g] = self.stream.patience_s[g]
            w = w[~gone]
            s.waiting = w.tolist()
        return w

    def _start(self, t: float, ci: np.ndarray, ai: np.ndarray, *, new: int) -> None:
        """Start the checked pairs (contact rows ``ci``, agent rows ``ai``) at ``t``: state,
        outcomes, departures and time accounts. Pairs of one decision on the same agent see
        the load the earlier ones added. Pairs are few per decision (one, event-driven), so
        the per-pair updates are scalar; the source's outcomes come in one batch."""
        s, cap, arrival = self.state, self.capacity, self.stream.arrival_s
        rows, agents = ci.tolist(), ai.tolist()
        before = []
        for c, a, ch in zip(rows, agents, self.channel[ci].tolist()):
            held = int(s.held[a])
            before.append(float(held))
            if held == 0:
                s.busy_since[a] = t
            s.held[a] = held + 1
            s.load[a, ch] += 1
            s.free[a, ch] = cap[a, ch] - s.load[a, ch] if s.on[a] else 0
            s.handled[a] += 1
            s.last_change[a] = t
            s.status[c] = SERVED
            s.wait_s[c] = t - arrival[c]
            s.agent[c] = a
            s.agent_load[c] = held
        o = self.source.outcomes(stream=self.stream, contact_idx=ci, agent_idx=ai, agent_load=np.array(before), t_s=t)
        s.record(rows, o)
        for c, a, h in zip(rows, agents, o.handle_s.tolist()):
            s.work_s[a] += h
            heapq.heappush(s.departures, (t + h, c))
        if new >= 0:
            s.waiting.pop()  # the new contact is the last one queued
        elif len(rows) == 1:
            s.waiting.remove(rows[0])
        else:  # the queue holds waiting contacts only: drop the ones just started
            started = set(rows)
            s.waiting = [c for c in s.waiting if c not in started]

    def _check(self, t: float, ci: np.ndarray, ai: np.ndarray) -> None:
        """Refuse an answer that breaks capacity or eligibility or assigns twice (scalar
        loops: answers hold few pairs)."""
        s, problems = self.state, []
        rows, agents = ci.tolist(), ai.tolist()
        table, group, status, free = self.eligibility.table, self.eligibility.group, s.status, s.free
        used: dict[tuple[int, int], int] = {}
        if len(rows) != len(agents):
            problems.append("contact and agent arrays differ in length")
        elif len(set(rows)) != len(rows):
            problems.append("a contact was assigned twice")
        for c, a in zip(rows, agents) if not problems else ():
            key = (a, int(self.channel[c]))
            used[key] = n = used.get(key, 0) + 1
            if status[c] != WAITING:
                problems.append(f"contact {c} is not waiting")
            elif n > free[key]:
                problems.append(f"more contacts assigned to agent {a} than its free capacity")
            elif not table[group[c], a]:
                problems.append(f"pair (contact {c}, agent {a}) is not eligible")
            if problems:
                break
        if problems:
            raise AssignError(f"policy {self.policy.name!r} at t={t:.3f}s: " + "; ".join(problems))

    # ------------------------------------------------------------------ the end
    def _result(self, *, arms: np.ndarray | None, wall_s: float) -> RunResult:
        """Close the books at the end time: the queue left, outcomes drawn after the run,
        busy and staffed time of agents still working."""
        s, st, src = self.state, self.stream, self.source
        t_end = max(self._t_last, self.config.horizon_s)
        w = np.asarray(s.waiting + [c for _, c in s.delayed], dtype=np.int64)
        if len(w):  # still queued or delayed: abandoned if their patience ran out, else unserved
            gone = self.deadline[w] <= t_end
            s.status[w[gone]] = ABANDONED
            s.wait_s[w[gone]] = st.patience_s[w[gone]]
            s.status[w[~gone]] = UNSERVED
            s.wait_s[w[~gone]] = t_end - st.arrival_s[w[~gone]]
        s.status[s.status == PENDING] = UNSERVED  # arrivals past the stop time (none by construction)
        sv = np.flatnonzero(s.status == SERVED)
        done = src.complete_outcomes(stream=st, contact_idx=sv, truth_p_resolved=s.truth_p_resolved[sv],
                                     truth_csat=s.truth_csat[sv])
        if done is not None:
            s.resolved[sv], s.csat[sv] = done
        still = s.held > 0
        s.busy_s[still] += np.maximum(t_end - s.busy_since[still], 0)
        s.staffed_s[s.on] += np.maximum(t_end - s.on_since[s.on], 0)
        return RunResult(
            source=src.name, policy=self.policy.name, seed=self.seed, config=self.config, intents=src.intents,
            agent_ids=src.agents.ids, stream=st, status=s.status, wait_s=s.wait_s, agent=s.agent,
            agent_load=s.agent_load, handle_s=s.handle_s, resolved=s.resolved, csat=s.csat,
            truth_p_resolved=s.truth_p_resolved, truth_csat=s.truth_csat, truth_handle_s=s.truth_handle_s,
            arm=arms, agent_busy_s=s.busy_s, agent_staffed_s=s.staffed_s, agent_work_s=s.work_s,
            agent_handled=s.handled, end_s=float(t_end), n_decisions=s.n_decisions, wall_s=wall_s)


def simulate(*, source: Source, policy: Policy, seed: int, config: SimConfig | None = None) -> RunResult:
    """Run one replication of ``policy`` on ``source`` with random streams from ``seed``."""
    return Engine(source=source, policy=policy, seed=seed, config=config or SimConfig()).run()
