"""The discrete-event engine: exact in time, seeded, one replication per call.

Events: arrivals (pre-drawn, in time order), departures (a heap), shift changes (a sorted
plan) and routing ticks. With ``window_s == 0`` the policy is asked after every event that
can create a match (an arrival, a freed slot, an agent coming on shift); with ``window_s >
0`` it is asked at the multiples of ``window_s`` while contacts wait and capacity is free
(micro-batches, as the production router runs). Abandonment is exact: a contact whose
patience ends before it is routed leaves at ``arrival + patience``; the queue is purged of
such contacts before every routing decision, which is equivalent because nothing between
two decisions depends on them.

Agents serve up to ``capacity[agent, channel]`` contacts at once; an agent going off shift
finishes what it holds and takes nothing new. Outcomes (handle time, resolution, CSAT) come
from the source at the moment of assignment, from per-contact uniforms drawn up front, so a
policy's choice changes outcomes only through the agent chosen (common random numbers).
"""
from __future__ import annotations

import heapq
import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from assign.config import RouterConfig
from assign.errors import AssignError
from assign.schema import Agents, Contacts, Snapshot
from assign.sim.source import ContactStream, Source, at_time, stream_rng, STREAM_POLICY

if TYPE_CHECKING:
    from assign.sim.policies import Policy

WAITING, SERVED, ABANDONED, UNSERVED, PENDING = 1, 2, 3, 4, 0
STATUS_NAMES = {SERVED: "served", ABANDONED: "abandoned", UNSERVED: "unserved", PENDING: "pending", WAITING: "waiting"}
_DEFAULT_ROUTER = RouterConfig()


@dataclass(frozen=True, kw_only=True)
class SimConfig:
    """Run settings. ``days`` of arrivals, then up to ``drain_s`` to serve who is still there
    (contacts left waiting after that are ``unserved``). Eligibility rules match the
    router's defaults so that every policy works on the same feasible pairs."""

    days: float = 1.0
    window_s: float = 0.0
    drain_s: float = 4 * 3600.0
    min_proficiency: float = _DEFAULT_ROUTER.min_proficiency
    require_language: bool = _DEFAULT_ROUTER.require_language
    sl_threshold_s: float = 20.0

    def __post_init__(self) -> None:
        problems = []
        if not (isinstance(self.days, (int, float)) and self.days > 0):
            problems.append(f"days must be > 0, got {self.days!r}")
        if not (isinstance(self.window_s, (int, float)) and self.window_s >= 0):
            problems.append(f"window_s must be >= 0, got {self.window_s!r}")
        if not (isinstance(self.drain_s, (int, float)) and self.drain_s >= 0):
            problems.append(f"drain_s must be >= 0, got {self.drain_s!r}")
        if not self.sl_threshold_s > 0:
            problems.append(f"sl_threshold_s must be > 0, got {self.sl_threshold_s!r}")
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def horizon_s(self) -> float:
        return self.days * 86400.0


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


class View:
    """What a policy sees when asked to route: the time, the waiting contacts (global rows,
    queue order: arrival minus priority credit, ties by arrival), free capacity per agent
    and channel, and helpers. Policies must not assign more than ``free`` allows."""

    __slots__ = ("t", "waiting", "free", "engine")

    def __init__(self, t: float, waiting: np.ndarray, free: np.ndarray, engine: "Engine") -> None:
        self.t, self.waiting, self.free, self.engine = t, waiting, free, engine

    @property
    def stream(self) -> ContactStream:
        return self.engine.stream

    @property
    def agents(self) -> Agents:
        return self.engine.source.agents

    @property
    def idle_key(self) -> np.ndarray:
        """Smaller = longer idle: fewer contacts held first, then earliest last change."""
        e = self.engine
        return e.load.sum(axis=1) * 1e12 + e.last_change

    def static_eligible(self, contact_rows: np.ndarray) -> np.ndarray:
        """(len(rows), n_agents) language/skill/channel eligibility, capacity aside."""
        return self.engine.elig_g[self.engine.group[contact_rows]]

    def eligible(self, contact_rows: np.ndarray, free: np.ndarray | None = None) -> np.ndarray:
        """(len(rows), n_agents) eligibility with free capacity on the contact's channel."""
        free = self.free if free is None else free
        ch = self.stream.block.channel[contact_rows]
        return self.static_eligible(contact_rows) & (free[:, ch].T > 0)

    def snapshot(self, contact_rows: np.ndarray, agent_rows: np.ndarray) -> Snapshot:
        """The router's snapshot of these contacts and agents now; ``meta`` keeps the global
        rows (``contact_rows``, ``agent_rows``) for scorers that need them (the oracle)."""
        e, c, a = self.engine, self.stream.block, self.engine.source.agents
        cr, ar = contact_rows, agent_rows
        contacts = Contacts(ids=c.ids[cr], channel=c.channel[cr], intent=c.intent[cr], language=c.language[cr],
                            complexity=c.complexity[cr], urgency=c.urgency[cr], sentiment=c.sentiment[cr],
                            waited_s=self.t - self.stream.arrival_s[cr], style=c.style[cr],
                            customer_id=c.customer_id[cr], customer_tier=c.customer_tier[cr])
        cap = np.where(e.on[ar, None], a.capacity[ar], e.load[ar])  # off-shift: no free slot
        agents = Agents(ids=a.ids[ar], speaks=a.speaks[ar], skill=a.skill[ar], tenure_days=a.tenure_days[ar],
                        sentiment_handling=a.sentiment_handling[ar], style=a.style[ar], capacity=cap,
                        load=e.load[ar], idle_s=self.t - e.last_change[ar])
        s = e.source
        return Snapshot(snapshot_id=f"t{self.t:.3f}", at=at_time(s.start, self.t), intents=s.intents,
                        languages=s.languages, styles=s.styles, contacts=contacts, agents=agents,
                        meta={"contact_rows": cr, "agent_rows": ar, "t_s": self.t})


class Engine:
    """One replication of ``policy`` on ``source``; use :func:`simulate`."""

    def __init__(self, *, source: Source, policy: "Policy", seed: int, config: SimConfig) -> None:
        self.source, self.policy, self.seed, self.config = source, policy, int(seed), config
        a = source.agents
        self.n_agents = len(a)
        self.stream = source.contacts(seed=self.seed, horizon_s=config.horizon_s)
        c = self.stream.block
        n_l, n_i = len(source.languages), len(source.intents)
        # Routing groups (channel, intent, language) and their static eligibility.
        self.group = (c.channel.astype(np.int64) * n_i + c.intent) * n_l + c.language
        g = np.arange(3 * n_i * n_l)
        g_ch, g_int, g_lang = g // (n_i * n_l), (g // n_l) % n_i, g % n_l
        elig = (a.skill[:, g_int] >= max(config.min_proficiency, 1e-12)) & (a.capacity[:, g_ch] > 0)
        if config.require_language:
            elig &= a.speaks[:, g_lang]
        self.elig_g = np.ascontiguousarray(elig.T)
        self.load = np.zeros_like(a.capacity)
        self.on = np.zeros(self.n_agents, dtype=bool)
        self.free = np.zeros_like(a.capacity)
        self.last_change = np.zeros(self.n_agents)
        self.rng = stream_rng(self.seed, STREAM_POLICY)

    def run(self) -> RunResult:
        t0 = time.perf_counter()
        src, cfg, st = self.source, self.config, self.stream
        n, A = len(st), self.n_agents
        cap = src.agents.capacity
        arrival = st.arrival_s
        deadline = arrival + st.patience_s
        order_key = arrival - st.credit_s
        channel = st.block.channel
        status = np.zeros(n, dtype=np.int8)
        wait = np.full(n, np.nan)
        agent_of = np.full(n, -1, dtype=np.int32)
        agent_load = np.full(n, np.nan)
        out_cols = {k: np.full(n, np.nan) for k in
                    ("handle_s", "resolved", "csat", "truth_p_resolved", "truth_csat", "truth_handle_s")}
        busy_s = np.zeros(A); staffed_s = np.zeros(A); work_s = np.zeros(A); handled = np.zeros(A, np.int64)
        busy_since = np.zeros(A); on_since = np.zeros(A)
        load, free, on, last_change = self.load, self.free, self.on, self.last_change
        plan = src.shifts(horizon_s=cfg.horizon_s + cfg.drain_s)
        sh_t, sh_a, sh_on = plan.t_s, plan.agent, plan.on
        n_sh = len(sh_t)
        heap: list[tuple[float, int]] = []
        waiting: list[int] = []
        policy = self.policy
        policy.start(self)
        window = cfg.window_s
        t_stop = cfg.horizon_s + cfg.drain_s
        INF = math.inf
        i_arr = i_sh = 0
        next_tick, armed = INF, False
        n_decisions = 0
        arm = getattr(policy, "arm_labels", None)
        arms = arm(self) if callable(arm) else None

        def route(t: float, new: int = -1, agent: int = -1) -> bool:
            """Ask the policy; returns True when contacts still wait with capacity free.

            Event-driven decisions (``window_s == 0``) only look at what changed: a ``new``
            contact against every free agent, or one freed ``agent`` against the whole
            queue (every other waiting contact already had its chance at the other free
            agents, which have not gained capacity since)."""
            nonlocal waiting, n_decisions
            if not free.any():
                return False
            if new >= 0:
                w = np.array([new], dtype=np.int64)
                view_free = free.copy()
            else:
                w = np.fromiter(waiting, dtype=np.int64, count=len(waiting))
                gone = deadline[w] <= t
                if gone.any():
                    g = w[gone]
                    status[g] = ABANDONED
                    wait[g] = st.patience_s[g]
                    w = w[~gone]
                    waiting = w.tolist()
                if len(w) == 0:
                    return False
                if agent >= 0:
                    if not free[agent].any():
                        return False
                    view_free = np.zeros_like(free)
                    view_free[agent] = free[agent]
                else:
                    view_free = free.copy()
                if len(w) > 1:
                    w = w[np.argsort(order_key[w], kind="stable")]
            n_decisions += 1
            ci, ai = policy.assign(View(t, w, view_free, self))
            ci = np.asarray(ci, dtype=np.int64); ai = np.asarray(ai, dtype=np.int64)
            if len(ci) == 1:  # the common case, with scalars (same effect as the general path)
                self._check(t, ci, ai, status, channel)
                c, a_ = int(ci[0]), int(ai[0])
                ch_ = int(channel[c])
                status[c] = SERVED
                wait[c] = t - arrival[c]
                agent_of[c] = a_
                held_a = int(load[a_].sum())
                agent_load[c] = held_a
                o = src.outcomes(stream=st, contact_idx=ci, agent_idx=ai, agent_load=np.array([float(held_a)]), t_s=t)
                for name in out_cols:
                    out_cols[name][c] = getattr(o, name)[0]
                if held_a == 0:
                    busy_since[a_] = t
                h_ = float(o.handle_s[0])
                heapq.heappush(heap, (t + h_, c))
                load[a_, ch_] += 1
                work_s[a_] += h_
                handled[a_] += 1
                last_change[a_] = t
                free[a_, ch_] = cap[a_, ch_] - load[a_, ch_] if on[a_] else 0
                if new >= 0:
                    waiting.pop()
                else:
                    waiting.remove(c)
            elif len(ci):
                self._check(t, ci, ai, status, channel)
                ch = channel[ci]
                status[ci] = SERVED
                wait[ci] = t - arrival[ci]
                agent_of[ci] = ai
                held = load.sum(axis=1)
                # The load each contact found: earlier pairs of this decision on the same agent count.
                before = (held[ai] + _cumcount(ai)).astype(float)
                agent_load[ci] = before
                o = src.outcomes(stream=st, contact_idx=ci, agent_idx=ai, agent_load=before, t_s=t)
                for name in out_cols:
                    out_cols[name][ci] = getattr(o, name)
                starts = ai[held[ai] == 0]
                busy_since[starts] = t
                ends = t + o.handle_s
                for k in range(len(ci)):
                    heapq.heappush(heap, (ends[k], int(ci[k])))
                np.add.at(load, (ai, ch), 1)
                np.add.at(work_s, ai, o.handle_s)
                np.add.at(handled, ai, 1)
                last_change[ai] = t
                fa = np.unique(ai) if len(ai) > 1 else ai
                free[fa] = np.where(on[fa, None], cap[fa] - load[fa], 0)
                if new >= 0:
                    waiting.pop()  # the new contact is the last one queued
                else:
                    waiting = [c for c in waiting if status[c] == WAITING]
            return bool(waiting) and bool(free.any())

        t_last = 0.0
        while True:
            ta = arrival[i_arr] if i_arr < n else INF
            ts = sh_t[i_sh] if i_sh < n_sh else INF
            td = heap[0][0] if heap else INF
            tt = next_tick if armed else INF
            t = min(ta, ts, td, tt)
            if t == INF or t > t_stop:
                break
            if i_arr >= n and not heap and not waiting:
                break
            changed = False
            new = agent = -1
            t_last = t
            if td == t:
                _, c = heapq.heappop(heap)
                a_ = agent_of[c]
                load[a_, channel[c]] -= 1
                last_change[a_] = t
                if on[a_]:
                    free[a_, channel[c]] = cap[a_, channel[c]] - load[a_, channel[c]]
                    changed, agent = True, a_
                if not load[a_].any():
                    busy_s[a_] += t - busy_since[a_]
            elif ts == t:
                a_, is_on = sh_a[i_sh], sh_on[i_sh]
                i_sh += 1
                if is_on and not on[a_]:
                    on[a_] = True; on_since[a_] = t
                    free[a_] = cap[a_] - load[a_]
                    if not load[a_].any():
                        last_change[a_] = t
                    changed, agent = True, a_
                elif not is_on and on[a_]:
                    on[a_] = False; staffed_s[a_] += t - on_since[a_]
                    free[a_] = 0
            elif ta == t:
                status[i_arr] = WAITING
                waiting.append(i_arr)
                new = i_arr
                i_arr += 1
                changed = True
            else:  # tick
                armed = route(t)
                next_tick = t + window
                continue
            if changed and waiting:
                if window == 0:
                    route(t, new=new, agent=agent)
                elif not armed:
                    armed, next_tick = True, math.ceil(t / window - 1e-12) * window
        t_end = max(t_last, cfg.horizon_s)
        # Whoever is still queued: abandoned if their patience ran out, else unserved.
        w = np.asarray(waiting, dtype=np.int64)
        if len(w):
            gone = deadline[w] <= t_end
            status[w[gone]] = ABANDONED
            wait[w[gone]] = st.patience_s[w[gone]]
            status[w[~gone]] = UNSERVED
            wait[w[~gone]] = t_end - arrival[w[~gone]]
        status[status == PENDING] = UNSERVED  # arrivals past the stop time (none by construction)
        done = getattr(src, "complete_outcomes", None)
        if callable(done):
            sv = np.flatnonzero(status == SERVED)
            r_, c_ = done(stream=st, contact_idx=sv, truth_p_resolved=out_cols["truth_p_resolved"][sv],
                          truth_csat=out_cols["truth_csat"][sv])
            out_cols["resolved"][sv], out_cols["csat"][sv] = r_, c_
        still = load.any(axis=1)
        busy_s[still] += np.maximum(t_end - busy_since[still], 0)
        staffed_s[on] += np.maximum(t_end - on_since[on], 0)
        return RunResult(
            source=src.name, policy=policy.name, seed=self.seed, config=cfg, intents=src.intents,
            agent_ids=src.agents.ids, stream=st, status=status, wait_s=wait, agent=agent_of,
            agent_load=agent_load, handle_s=out_cols["handle_s"], resolved=out_cols["resolved"],
            csat=out_cols["csat"], truth_p_resolved=out_cols["truth_p_resolved"],
            truth_csat=out_cols["truth_csat"], truth_handle_s=out_cols["truth_handle_s"], arm=arms,
            agent_busy_s=busy_s, agent_staffed_s=staffed_s, agent_work_s=work_s, agent_handled=handled,
            end_s=float(t_end), n_decisions=n_decisions, wall_s=time.perf_counter() - t0)

    def _check(self, t, ci, ai, status, channel) -> None:
        problems = []
        if len(ci) == 1:  # the common case, checked with scalars
            c, a = ci[0], ai[0]
            if status[c] != WAITING or self.free[a, channel[c]] < 1 or not self.elig_g[self.group[c], a]:
                problems.append(f"pair (contact {c}, agent {a}) is not a waiting contact with an eligible free agent")
        elif len(ci) != len(ai):
            problems.append("contact and agent arrays differ in length")
        elif len(np.unique(ci)) != len(ci):
            problems.append("a contact was assigned twice")
        elif (status[ci] != WAITING).any():
            problems.append("a contact that is not waiting was assigned")
        else:
            used = np.zeros_like(self.free)
            np.add.at(used, (ai, channel[ci]), 1)
            if (used > self.free).any():
                problems.append("more contacts assigned to an agent than its free capacity")
            elif not self.elig_g[self.group[ci], ai].all():
                problems.append("an ineligible pair was assigned")
        if problems:
            raise AssignError(f"policy {self.policy.name!r} at t={t:.3f}s: " + "; ".join(problems))


def _cumcount(x: np.ndarray) -> np.ndarray:
    """For each element, how many earlier elements equal it (0, 1, ... per value)."""
    if len(x) < 2:
        return np.zeros(len(x), dtype=np.int64)
    order = np.argsort(x, kind="stable")
    xs = x[order]
    start = np.r_[0, np.flatnonzero(xs[1:] != xs[:-1]) + 1]
    run = np.repeat(start, np.diff(np.r_[start, len(xs)]))
    out = np.empty(len(x), dtype=np.int64)
    out[order] = np.arange(len(xs)) - run
    return out


def simulate(*, source: Source, policy: "Policy", seed: int, config: SimConfig | None = None) -> RunResult:
    """Run one replication of ``policy`` on ``source`` with random streams from ``seed``."""
    return Engine(source=source, policy=policy, seed=seed, config=config or SimConfig()).run()
