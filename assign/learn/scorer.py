"""A scorer that reads the live estimates through the empirical-Bayes hierarchy.

``score = posterior mean resolution of (agent, intent)`` (:mod:`assign.learn.shrink`) from
the live version the tick pinned (``snapshot.meta[LIVE_KEY]``, set by ``Router``; the
current version otherwise), plus an optional ``base`` scorer's score. The hierarchy is
fitted over a roster (the run's agents in the simulator, ``roster`` otherwise the
snapshot's agents) once per live version and cached. :meth:`posterior_draw` gives a
Thompson draw of the same scores.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from assign.learn.live import LiveEstimates, LiveVersion
from assign.learn.shrink import Posterior, cohorts, fit_posterior
from assign.schema import Snapshot
from assign.scorer import Prior, Scorer

#: Key of the pinned :class:`LiveVersion` in a snapshot's ``meta``.
LIVE_KEY = "live_version"


@dataclass(frozen=True, eq=False)
class Roster:
    """The agents the hierarchy is fitted over: ids, tenure (days) and proficiency."""

    ids: np.ndarray
    tenure_days: np.ndarray
    skill: np.ndarray
    intents: tuple[str, ...]  # the vocabulary of ``skill``'s columns

    @classmethod
    def of(cls, snapshot: Snapshot) -> Roster:
        a = snapshot.agents
        return cls(ids=np.asarray(a.ids), tenure_days=np.asarray(a.tenure_days, float),
                   skill=np.asarray(a.skill, float), intents=tuple(snapshot.intents))


class LearnScorer(Scorer):
    """Posterior-mean resolution of each pair from the live estimates (see module doc)."""

    name = "learn"
    _version_type: type = LiveVersion

    def __init__(self, *, live: LiveEstimates, base: Scorer | None = None, roster: Roster | None = None,
                 n_neighbours: int = 2, csat_proxy: bool = True, intent_parent: bool = False) -> None:
        self.live, self.base, self.roster, self.n_neighbours = live, base, roster, n_neighbours
        self.csat_proxy = csat_proxy  # CSAT moves the cohort and agent parents (assign.learn.proxy)
        self.intent_parent = intent_parent  # agent x intent parents shifted by the intent's rate (assign.learn.shrink)
        self._lock = threading.Lock()
        self._cache: tuple | None = None  # (version id, roster id, posterior, index, version, roster)
        self._snapshot_roster: tuple | None = None  # (agents, intents, roster): one tick's calls share it

    def bind(self, run) -> None:
        a = run.source.agents
        self.roster = Roster(ids=np.asarray(a.ids), tenure_days=np.asarray(a.tenure_days, float),
                             skill=np.asarray(a.skill, float), intents=tuple(run.source.intents))
        self._cache = self._snapshot_roster = None
        if self.base is not None:
            self.base.bind(run)

    def warm_up(self) -> None:
        if self.base is not None:
            self.base.warm_up()

    def version(self, snapshot: Snapshot) -> LiveVersion:
        v = snapshot.meta.get(LIVE_KEY) if snapshot.meta else None
        return v if isinstance(v, self._version_type) else self.live.current()

    def posterior(self, snapshot: Snapshot) -> tuple[Posterior, np.ndarray]:
        """The fitted hierarchy and the row of each snapshot agent in it."""
        v = self.version(snapshot)
        roster = self.roster
        if roster is None or roster.intents != tuple(snapshot.intents):
            roster = self._roster_of(snapshot)
        key = (id(v), id(roster))
        with self._lock:
            cache = self._cache
        if cache is None or cache[0] != key[0] or cache[1] != key[1]:
            post, index = self._fit_version(v, roster)
            cache = (key[0], key[1], post, index, v, roster)  # keep v, roster alive: ids stay unique
            with self._lock:
                self._cache = cache
        post, index = cache[2], cache[3]
        rows = np.fromiter((index.get(a, -1) for a in snapshot.agents.ids), np.int64, len(snapshot.agents.ids))
        if (rows < 0).any():  # an agent outside the roster: fit over the snapshot's agents
            post, index = self._fit_version(v, Roster.of(snapshot))
            rows = np.arange(len(snapshot.agents.ids))
        return post, rows

    def _fit_version(self, v, roster: Roster) -> tuple[Posterior, dict]:
        return _fit(v, roster, self.n_neighbours, self.csat_proxy, intent_parent=self.intent_parent)

    def _roster_of(self, snapshot: Snapshot) -> Roster:
        """The snapshot's own roster, built once per snapshot agents table: the several calls of
        one tick (retrieval, scoring, the draw, the prior-only count) then share one fit."""
        with self._lock:
            held = self._snapshot_roster
        intents = tuple(snapshot.intents)
        if held is not None and held[0] is snapshot.agents and held[1] == intents:
            return held[2]
        roster = Roster.of(snapshot)
        with self._lock:
            self._snapshot_roster = (snapshot.agents, intents, roster)  # holding agents keeps the identity unique
        return roster

    def _base(self, snapshot, contact_idx, agent_idx) -> np.ndarray:
        if self.base is None:
            return 0.0
        return np.asarray(self.base.score_pairs(snapshot, contact_idx=contact_idx, agent_idx=agent_idx), float)

    def score_pairs(self, snapshot: Snapshot, *, contact_idx: np.ndarray, agent_idx: np.ndarray) -> np.ndarray:
        post, rows = self.posterior(snapshot)
        intent = snapshot.contacts.intent[contact_idx]
        return post.mean[rows[agent_idx], intent] + self._base(snapshot, contact_idx, agent_idx)

    def prior(self, snapshot: Snapshot) -> Prior | None:
        """Retrieval's cheap estimate: the posterior means (agent x intent) plus the base
        scorer's prior when it has one (the score itself when there is no base)."""
        post, rows = self.posterior(snapshot)
        mean = post.mean[rows]
        if self.base is None:
            return Prior(agent_intent=mean)
        bp = self.base.prior(snapshot)
        if bp is None:
            return None
        return Prior(agent_intent=bp.agent_intent + mean, style_bonus=bp.style_bonus, sentiment_coef=bp.sentiment_coef)

    def prior_only(self, snapshot: Snapshot, *, contact_idx: np.ndarray, agent_idx: np.ndarray) -> np.ndarray:
        post, rows = self.posterior(snapshot)
        return post.agent_n[rows[agent_idx]] <= 0

    def posterior_draw(self, snapshot: Snapshot, *, contact_idx: np.ndarray, agent_idx: np.ndarray,
                       rng: np.random.Generator, n_draws: int = 1) -> np.ndarray:
        """(n_draws, n_pairs) Thompson draws of the scores: one beta draw per agent x intent
        of the snapshot, shared by that agent's pairs on the intent."""
        post, rows = self.posterior(snapshot)
        intent = snapshot.contacts.intent[contact_idx]
        r = rows[agent_idx]
        keys, inv = _unique_codes(r * post.alpha.shape[1] + intent, size=post.alpha.size)
        kr, ki = keys // post.alpha.shape[1], keys % post.alpha.shape[1]
        theta = rng.beta(post.alpha[kr, ki], post.beta[kr, ki], size=(n_draws, len(keys)))
        return theta[:, inv] + self._base(snapshot, contact_idx, agent_idx)


def _unique_codes(codes: np.ndarray, *, size: int) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(codes, return_inverse=True)`` for codes in ``[0, size)``, by a table instead
    of a sort (the draw runs on the exploring tick's path)."""
    seen = np.zeros(size, dtype=bool)
    seen[codes] = True
    keys = np.flatnonzero(seen)
    slot = np.cumsum(seen) - 1
    return keys, slot[codes]


def _fit(v: LiveVersion, roster: Roster, n_neighbours: int, csat_proxy: bool, *,
         intent_parent: bool = False) -> tuple[Posterior, dict]:
    """The hierarchy over the roster, in the roster's intent vocabulary: its agents' totals in
    ``v`` (zeros for new agents; intents the live object never saw are new intents), with
    their CSAT totals as the proxy when ``csat_proxy`` and the intent-shifted parents when
    ``intent_parent`` (:func:`~assign.learn.shrink.fit_posterior`)."""
    codes = v.agent_codes(roster.ids)
    st = v.state
    live_col = {k: n for n, k in enumerate(v.intents)}
    cols = np.array([live_col.get(k, -1) for k in roster.intents], dtype=np.int64)
    n_ai = np.zeros((len(roster.ids), len(roster.intents)))
    s_ai = np.zeros_like(n_ai)
    ok, known = codes >= 0, cols >= 0
    n_ai[np.ix_(ok, known)] = st.n_resolution_by_intent[np.ix_(codes[ok], cols[known])]
    s_ai[np.ix_(ok, known)] = st.sum_resolved_by_intent[np.ix_(codes[ok], cols[known])]
    skill = roster.skill
    csat = {}
    if csat_proxy:
        n_cs, s_cs = np.zeros(len(roster.ids)), np.zeros(len(roster.ids))
        n_cs[ok], s_cs[ok] = st.n_csat[codes[ok]], st.sum_csat[codes[ok]]
        csat = {"n_csat": n_cs, "s_csat": s_cs}
    post = fit_posterior(n_ai=n_ai, s_ai=s_ai, cohort=cohorts(tenure_days=roster.tenure_days, skill=skill),
                         skill=skill, n_neighbours=n_neighbours, intent_parent=intent_parent, **csat)
    return post, {str(a): k for k, a in enumerate(roster.ids)}
