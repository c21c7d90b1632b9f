"""Live agent estimates: outcome totals per agent and agent x intent, updated while ticks run.

Copy-on-write: :meth:`LiveEstimates.observe` builds a new immutable :class:`LiveVersion`
from the current one and swaps one reference under a lock; :meth:`LiveEstimates.current`
returns a reference, so a reader holds one whole version however many updates follow
(a tick pins the version it started with, ``Router`` does this).

Exponential forgetting, because agents improve with tenure: an outcome known at time
``t_i`` weighs ``2 ** (-(T - t_i) / half_life_s)`` at the version's time ``T`` (the latest
``known_at`` observed). Totals are kept decayed to ``T``, so a later batch first decays
them by ``2 ** (-(T_new - T) / half_life_s)``; the result equals the batch sum over all
outcomes at ``T_new`` whatever the batching (``tests/test_learn_live.py`` checks this).
``half_life_s=inf`` keeps plain counts. The totals are an :class:`AgentState`, so the
scorer's features go through the one feature code path.
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np
import pandas as pd

from assign.features.rolling import AgentState
from assign.history import epoch_seconds
from assign.learn.logs import check_outcomes


@dataclass(frozen=True, eq=False)
class LiveVersion:
    """One consistent version: ``state`` holds the decayed totals at time ``t_s`` (epoch
    seconds; -inf before any outcome); ``version`` counts the updates."""

    version: int
    t_s: float
    state: AgentState
    intents: tuple[str, ...]

    def agent_codes(self, agent_ids) -> np.ndarray:
        """Row of each agent id in ``state`` (-1: never seen)."""
        index = {a: k for k, a in enumerate(self.state.agent_ids)}
        return np.fromiter((index.get(a, -1) for a in agent_ids), dtype=np.int64, count=len(agent_ids))


class LiveEstimates:
    """The live object. ``base`` (e.g. the model's end-of-training :class:`AgentState`)
    counts as known at ``base_t_s``; agents and intents first seen in outcomes are added."""

    def __init__(self, *, intents: tuple[str, ...], base: AgentState | None = None, base_t_s: float = -math.inf,
                 half_life_s: float = math.inf) -> None:
        if not half_life_s > 0:
            raise ValueError(f"half_life_s must be > 0, got {half_life_s}")
        self.half_life_s = float(half_life_s)
        if base is None:
            base = empty_state((), len(intents))
        if base.n_resolution_by_intent.shape[1] != len(intents):
            raise ValueError(f"base state has {base.n_resolution_by_intent.shape[1]} intents, "
                             f"intents names {len(intents)}")
        self._v = LiveVersion(version=0, t_s=float(base_t_s), state=base, intents=tuple(intents))
        self._lock = threading.Lock()

    def current(self) -> LiveVersion:
        """The latest version (an immutable object: hold it for a whole tick)."""
        return self._v

    def observe(self, outcomes: pd.DataFrame, *, checked: bool = False) -> LiveVersion:
        """Fold a batch of outcome events (``assign.learn.logs`` columns) in; returns the
        new version. Bad rows raise :class:`~assign.errors.InputError` before anything changes
        (``checked``: the frame already went through ``check_outcomes``)."""
        ev = outcomes if checked else check_outcomes(outcomes)
        if not len(ev):
            return self._v
        with self._lock:
            self._v = fold(self._v, ev, half_life_s=self.half_life_s)
            return self._v


def empty_state(agent_ids: tuple[str, ...], n_intents: int) -> AgentState:
    n = len(agent_ids)
    z = lambda *s: np.zeros(s)
    return AgentState(agent_ids=tuple(agent_ids), n_resolution=z(n), sum_resolved=z(n),
                      n_resolution_by_intent=z(n, n_intents), sum_resolved_by_intent=z(n, n_intents),
                      n_handle=z(n), sum_handle_ratio=z(n), n_csat=z(n), sum_csat=z(n))


def _grow(state: AgentState, agent_ids: tuple[str, ...]) -> AgentState:
    """``state`` with rows of zeros for ``agent_ids`` not in it yet (new hires)."""
    known = set(state.agent_ids)
    new = tuple(dict.fromkeys(a for a in agent_ids if a not in known))
    if not new:
        return state
    pad = empty_state(new, state.n_resolution_by_intent.shape[1])
    return AgentState(agent_ids=state.agent_ids + new, **{
        k: np.concatenate([getattr(state, k), getattr(pad, k)]) for k in _FIELDS})


_FIELDS = ("n_resolution", "sum_resolved", "n_resolution_by_intent", "sum_resolved_by_intent", "n_handle",
           "sum_handle_ratio", "n_csat", "sum_csat")


def fold(v: LiveVersion, ev: pd.DataFrame, *, half_life_s: float) -> LiveVersion:
    """A new version: ``v``'s totals decayed to the batch's time plus the batch's outcomes,
    each weighted by its own age. Intents not in ``v.intents`` are ignored for the agent x
    intent totals (they still count for the agent). ``handle_ratio`` is read when present."""
    t = epoch_seconds(ev["known_at"])
    t_new = max(v.t_s, float(t.max()))
    state = _grow(v.state, tuple(str(a) for a in ev["agent_id"]))
    forget = math.isfinite(half_life_s) and math.isfinite(v.t_s)
    decay = 2.0 ** (-(t_new - v.t_s) / half_life_s) if forget else 1.0
    w = np.ones(len(t)) if not math.isfinite(half_life_s) else np.exp2(-(t_new - t) / half_life_s)
    codes = {a: k for k, a in enumerate(state.agent_ids)}
    a = np.fromiter((codes[str(x)] for x in ev["agent_id"]), dtype=np.int64, count=len(ev))
    imap = {k: n for n, k in enumerate(v.intents)}
    i = np.fromiter((imap.get(str(x), -1) for x in ev["intent"]), dtype=np.int64, count=len(ev))
    out = {k: getattr(state, k) * decay for k in _FIELDS}
    n_a = len(state.agent_ids)
    res = ev["resolved"].to_numpy(np.float64)
    ok = np.isfinite(res)
    out["n_resolution"] += np.bincount(a[ok], w[ok], n_a)
    out["sum_resolved"] += np.bincount(a[ok], (w * res)[ok], n_a)
    ki = ok & (i >= 0)
    np.add.at(out["n_resolution_by_intent"], (a[ki], i[ki]), w[ki])
    np.add.at(out["sum_resolved_by_intent"], (a[ki], i[ki]), (w * res)[ki])
    cs = ev["csat"].to_numpy(np.float64)
    ok = np.isfinite(cs)
    out["n_csat"] += np.bincount(a[ok], w[ok], n_a)
    out["sum_csat"] += np.bincount(a[ok], (w * cs)[ok], n_a)
    if "handle_ratio" in ev.columns:
        hr = pd.to_numeric(ev["handle_ratio"], errors="coerce").to_numpy(np.float64)
        ok = np.isfinite(hr)
        out["n_handle"] += np.bincount(a[ok], w[ok], n_a)
        out["sum_handle_ratio"] += np.bincount(a[ok], (w * hr)[ok], n_a)
    return LiveVersion(version=v.version + 1, t_s=t_new, state=AgentState(agent_ids=state.agent_ids, **out),
                       intents=v.intents)
