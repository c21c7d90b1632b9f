"""What a policy sees: :class:`RunInfo` when a replication starts, a :class:`View` at each
decision. These are the only ways in; a policy never reaches the engine's state.

A View is cheap (built per decision) and read-only by contract, except ``free``, which is
the policy's own copy: a policy may decrement it as it assigns.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
from numba import njit

from assign.constants import DAY_S
from assign.schema import Snapshot
from assign.sim.source import ContactStream, Source, at_time

if TYPE_CHECKING:
    from assign.sim.engine import SimState


@njit(cache=True, nogil=True)
def _routable(waiting, group, table, channel, free):
    """Per waiting contact, whether a free agent on its channel is eligible for it; per agent,
    whether it is such an agent for some waiting contact (:meth:`View.routable`: the same as
    the dense ``static_eligible & free`` grid, visiting only the agents with a free slot)."""
    n_a, n_ch = free.shape
    by_ch = np.empty((n_ch, n_a), np.int64)  # the agents with a free slot on each channel
    n_by = np.zeros(n_ch, np.int64)
    for a in range(n_a):
        for ch in range(n_ch):
            if free[a, ch] > 0:
                by_ch[ch, n_by[ch]] = a
                n_by[ch] += 1
    c_ok = np.zeros(len(waiting), np.bool_)
    a_ok = np.zeros(n_a, np.bool_)
    for i in range(len(waiting)):
        c = waiting[i]
        ch, g = channel[c], group[c]
        for q in range(n_by[ch]):
            a = by_ch[ch, q]
            if table[g, a]:
                c_ok[i] = True
                a_ok[a] = True
    return c_ok, a_ok


@dataclass(frozen=True, eq=False)
class RunInfo:
    """One replication, as policies and scorers may know it when it starts: the source (its
    agents, vocabularies, truth if it has one), the contacts that will arrive (in arrival
    order; global contact rows index it) and the seed."""

    source: Source
    stream: ContactStream
    seed: int

    @property
    def n_agents(self) -> int:
        return len(self.source.agents)


@dataclass(frozen=True, eq=False)
class StaticEligibility:
    """Language/skill/channel eligibility of every routing group (channel, intent, language)
    against every agent, capacity aside: ``table[group[contact], agent]``."""

    group: np.ndarray   # (n_contacts,) routing group of each contact
    table: np.ndarray   # (n_groups, n_agents) bool


class View:
    """A policy's view of one decision: the time ``t``; ``waiting``, the waiting contacts'
    global rows in queue order (arrival minus priority credit, ties by arrival); ``free``,
    free capacity per agent and channel (the policy's copy); the run's ``stream`` and
    ``agents``; ``rng``, the run's policy random stream. Policies must not assign more than
    ``free`` allows; the engine checks every answer."""

    __slots__ = ("_added", "_elig", "_source", "_state", "agents", "free", "rng", "stream", "t", "waiting")

    def __init__(self, *, t: float, waiting: np.ndarray, free: np.ndarray, source: Source, stream: ContactStream,
                 rng: np.random.Generator, state: SimState, eligibility: StaticEligibility,
                 added: np.ndarray | None = None) -> None:
        self.t, self.waiting, self.free = t, waiting, free
        self.stream, self.agents, self.rng = stream, source.agents, rng
        self._source, self._state, self._elig, self._added = source, state, eligibility, added

    def narrowed(self, *, waiting: np.ndarray, free: np.ndarray, added: np.ndarray | None = None) -> View:
        """The same decision restricted to ``waiting`` and ``free``; ``added`` (agent, channel)
        counts contacts that earlier parts of this decision started, so idle order and
        snapshot load count them as one policy walking the whole queue would."""
        if added is not None and self._added is not None:
            added = added + self._added
        elif added is None:
            added = self._added
        return View(t=self.t, waiting=waiting, free=free, source=self._source, stream=self.stream, rng=self.rng,
                    state=self._state, eligibility=self._elig, added=added)

    @property
    def idle_key(self) -> np.ndarray:
        """Per agent; smaller = longer idle: fewer contacts held first, then earliest last change."""
        s = self._state
        key = s.held * 1e12 + s.last_change
        return key if self._added is None else key + self._added.sum(axis=1) * 1e12

    def expected_handle_s(self) -> np.ndarray:
        """(n_agents, n_intents) expected handle time: the source's service-rate estimate."""
        return self._source.expected_handle_s()

    def outcomes_of(self, contact_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(handle_s, resolved, csat) of contacts already started, the values the run will
        report (resolution and CSAT drawn as the source completes them). For learning
        policies: a policy may read only contacts it started, and must use each outcome only
        from the time it would be known (``assign.learn.policy`` does the bookkeeping)."""
        s, rows = self._state, np.asarray(contact_rows, np.int64)
        res, csat = s.resolved[rows], s.csat[rows]
        done = self._source.complete_outcomes(stream=self.stream, contact_idx=rows,
                                              truth_p_resolved=s.truth_p_resolved[rows], truth_csat=s.truth_csat[rows])
        if done is not None:
            res, csat = done
        return s.handle_s[rows].copy(), np.asarray(res, float), np.asarray(csat, float)

    def static_eligible(self, contact_rows: np.ndarray | int) -> np.ndarray:
        """(len(rows), n_agents) language/skill/channel eligibility, capacity aside; (n_agents,)
        for one row given as an int."""
        return self._elig.table[self._elig.group[contact_rows]]

    def eligible(self, contact_rows: np.ndarray, free: np.ndarray | None = None) -> np.ndarray:
        """(len(rows), n_agents) eligibility with free capacity on the contact's channel."""
        free = self.free if free is None else free
        ch = self.stream.block.channel[contact_rows]
        return self.static_eligible(contact_rows) & (free[:, ch].T > 0)

    def routable(self) -> tuple[np.ndarray, np.ndarray]:
        """(contact rows, agent rows): the waiting contacts that have an eligible free agent, and
        the agents eligible and free for at least one of them: what a batch router's snapshot of
        this decision holds (both empty when nothing can be routed)."""
        w = self.waiting
        c_ok, a_ok = _routable(np.ascontiguousarray(w, np.int64), self._elig.group, self._elig.table,
                               self.stream.block.channel, np.ascontiguousarray(self.free))
        return w[c_ok], np.flatnonzero(a_ok)

    def snapshot(self, contact_rows: np.ndarray, agent_rows: np.ndarray) -> Snapshot:
        """The router's snapshot of these contacts and agents now; ``meta`` keeps the global
        rows (``contact_rows``, ``agent_rows``) for scorers that need them (the oracle) and the
        run's ``stream`` they index: a scorer bound to the run may read every column but
        ``waited_s`` and the agents' load, capacity and idle time from the rows
        (:mod:`assign.features.bound`), so a snapshot carrying ``stream`` must keep them as built here.
        The agents' tenure is the source's roster aged to the snapshot's day (:meth:`Source.roster_tenure`)."""
        s, c, a, src = self._state, self.stream.block, self.agents, self._source
        cr, ar = contact_rows, agent_rows
        contacts = c.take(cr, waited_s=self.t - self.stream.arrival_s[cr])
        load = s.load[ar]
        cap = np.where(s.on[ar, None], a.capacity[ar], load)  # off-shift: no free slot
        day = int(self.t // DAY_S)  # tenure aged by whole days (Source.roster_tenure); day 0 is the roster's
        tenure = None if day == 0 else src.roster_tenure(day=day)[ar]
        agents = a.take(ar, capacity=cap, load=load, idle_s=self.t - s.last_change[ar], tenure_days=tenure)
        snap = Snapshot(snapshot_id=f"t{self.t:.3f}", at=at_time(src.start, self.t), intents=src.intents,
                        languages=src.languages, styles=src.styles, contacts=contacts, agents=agents,
                        meta={"contact_rows": cr, "agent_rows": ar, "t_s": self.t, "stream": self.stream})
        add = None if self._added is None else self._added[ar]
        if add is None or not add.any():
            return snap
        return replace(snap, agents=replace(snap.agents, load=snap.agents.load + add))
