"""Point-in-time agent performance: what was known about an agent when a contact arrived.

A served contact's outcome counts for later contacts only once it is known: at
``arrival + wait + handle + label_delay`` (``label_delay`` is 72 h when "resolved" means "not
repeated within 72 h"). Statistics are expanding (everything known so far), smoothed towards
the prior with ``smoothing`` pseudo-counts; an agent with no known outcome gets NaN (cold
start), which the trees route down their learned default branch.

:func:`point_in_time` gives the per-row values for training; :class:`AgentState` holds the
totals at the end of a history, the values the scorer serves at tick time.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit


@njit(cache=True)
def _pit(t, agent, intent, known_at, resolved, csat, hratio, n_agents, n_intents, prior_rate, prior_csat, m):
    """Columns of ``out``: rate, log_n, intent_rate, intent_log_n, handle_ratio, csat (see
    :class:`PointInTime`); then the end-of-history totals in :class:`AgentState` order."""
    n = len(t)
    order = np.argsort(known_at)  # NaN (never known) sorts last
    # accumulators: resolution per agent, per agent x intent, handle ratio, csat
    nr = np.zeros(n_agents)
    sr = np.zeros(n_agents)
    nai = np.zeros((n_agents, n_intents))
    sai = np.zeros((n_agents, n_intents))
    nh = np.zeros(n_agents)
    sh = np.zeros(n_agents)
    nc = np.zeros(n_agents)
    sc = np.zeros(n_agents)
    out = np.full((n, 6), np.nan)
    ptr = 0
    row_order = np.argsort(t, kind="mergesort")
    for q in range(n):
        i = row_order[q]
        while ptr < n and known_at[order[ptr]] < t[i]:
            e = order[ptr]
            a = agent[e]
            if a >= 0:
                if not np.isnan(resolved[e]):
                    nr[a] += 1.0
                    sr[a] += resolved[e]
                    if intent[e] >= 0:
                        nai[a, intent[e]] += 1.0
                        sai[a, intent[e]] += resolved[e]
                if not np.isnan(hratio[e]):
                    nh[a] += 1.0
                    sh[a] += hratio[e]
                if not np.isnan(csat[e]):
                    nc[a] += 1.0
                    sc[a] += csat[e]
            ptr += 1
        a = agent[i]
        if a < 0:
            continue
        if nr[a] > 0:
            out[i, 0] = (sr[a] + m * prior_rate) / (nr[a] + m)
        out[i, 1] = np.log1p(nr[a])
        if intent[i] >= 0:
            if nai[a, intent[i]] > 0:
                out[i, 2] = (sai[a, intent[i]] + m * out[i, 0]) / (nai[a, intent[i]] + m) if nr[a] > 0 else np.nan
            out[i, 3] = np.log1p(nai[a, intent[i]])
        if nh[a] > 0:
            out[i, 4] = sh[a] / (nh[a] + m)
        if nc[a] > 0:
            out[i, 5] = (sc[a] + m * prior_csat) / (nc[a] + m)
    return out, nr, sr, nai, sai, nh, sh, nc, sc


@dataclass(frozen=True, eq=False)
class PointInTime:
    """Per history row, the agent's performance known strictly before the row's time (NaN
    when unknown): resolution ``rate`` and ``log_n`` (log1p of outcomes counted), the same
    on the row's intent (``intent_rate``, ``intent_log_n``), ``handle_ratio`` (mean log
    handle time over the intent/channel norm) and ``csat``."""

    rate: np.ndarray
    log_n: np.ndarray
    intent_rate: np.ndarray
    intent_log_n: np.ndarray
    handle_ratio: np.ndarray
    csat: np.ndarray

    def astype(self, dtype: type) -> PointInTime:
        return PointInTime(**{k: getattr(self, k).astype(dtype) for k in _PIT_FIELDS})


_PIT_FIELDS = ("rate", "log_n", "intent_rate", "intent_log_n", "handle_ratio", "csat")


@dataclass(frozen=True, eq=False)
class AgentState:
    """Totals per agent (and agent x intent) of the outcomes known at the end of a history:
    how many outcomes of each kind were counted (``n_*``) and their sums (``sum_*``)."""

    agent_ids: tuple[str, ...]
    n_resolution: np.ndarray              # (n_agents,) contacts with a known resolution
    sum_resolved: np.ndarray              # (n_agents,) of them resolved
    n_resolution_by_intent: np.ndarray    # (n_agents, n_intents)
    sum_resolved_by_intent: np.ndarray    # (n_agents, n_intents)
    n_handle: np.ndarray                  # (n_agents,) contacts with a handle time
    sum_handle_ratio: np.ndarray          # (n_agents,) sum of their log handle-time ratios
    n_csat: np.ndarray                    # (n_agents,) surveyed contacts
    sum_csat: np.ndarray                  # (n_agents,) sum of their CSAT

    def agent_features(self, codes: np.ndarray, *, prior_rate: float, prior_csat: float,
                       m: float) -> dict[str, np.ndarray]:
        """rate, log_n, handle_ratio, csat for agent codes (-1 = unknown agent -> NaN)."""
        ok = codes >= 0
        c = np.where(ok, codes, 0)
        nr, sr, nh, sh = self.n_resolution[c], self.sum_resolved[c], self.n_handle[c], self.sum_handle_ratio[c]
        nc, sc = self.n_csat[c], self.sum_csat[c]
        with np.errstate(invalid="ignore", divide="ignore"):
            rate = np.where(ok & (nr > 0), (sr + m * prior_rate) / (nr + m), np.nan)
            log_n = np.where(ok, np.log1p(nr), np.nan)
            hr = np.where(ok & (nh > 0), sh / (nh + m), np.nan)
            cs = np.where(ok & (nc > 0), (sc + m * prior_csat) / (nc + m), np.nan)
        return dict(rate=rate, log_n=log_n, handle_ratio=hr, csat=cs)

    def pair_features(self, codes: np.ndarray, intents: np.ndarray, agent_rate: np.ndarray, *,
                      m: float) -> tuple[np.ndarray, np.ndarray]:
        """(agent x intent rate, its log count) for pairs; NaN where agent or intent unknown."""
        ok = (codes >= 0) & (intents >= 0)
        c = np.where(ok, codes, 0)
        k = np.where(ok, intents, 0)
        n, s = self.n_resolution_by_intent[c, k], self.sum_resolved_by_intent[c, k]
        with np.errstate(invalid="ignore", divide="ignore"):
            rate = np.where(ok & (n > 0), (s + m * agent_rate) / (n + m), np.nan)
        return rate, np.where(ok, np.log1p(n), np.nan)

    def with_empty_agent(self, agent_id: str) -> AgentState:
        """This state with one more agent, ``agent_id``, that has no outcome counted (every count
        and sum 0): how an agent with no history yet reads (its rates missing, its counts 0, as a
        training row of an agent's first contact gets them from :func:`point_in_time`)."""
        grow = lambda x: np.concatenate([x, np.zeros((1, *x.shape[1:]), x.dtype)])
        return AgentState(agent_ids=(*self.agent_ids, agent_id),
                          **{k: grow(getattr(self, k)) for k in _STATE_FIELDS})

    def save(self, path) -> None:
        np.savez(path, agent_ids=np.array(self.agent_ids, dtype=str),
                 **{k: getattr(self, k) for k in _STATE_FIELDS})

    @classmethod
    def load(cls, path) -> AgentState:
        """Read :meth:`save`'s file (also the short keys ``nr, sr, ...`` of older model dirs)."""
        z = np.load(path, allow_pickle=False)
        keys = _STATE_FIELDS if _STATE_FIELDS[0] in z.files else _LEGACY_KEYS
        return cls(agent_ids=tuple(str(x) for x in z["agent_ids"]),
                   **{k: z[old] for k, old in zip(_STATE_FIELDS, keys)})


_STATE_FIELDS = ("n_resolution", "sum_resolved", "n_resolution_by_intent", "sum_resolved_by_intent", "n_handle",
                 "sum_handle_ratio", "n_csat", "sum_csat")
_LEGACY_KEYS = ("nr", "sr", "nai", "sai", "nh", "sh", "nc", "sc")


def point_in_time(*, t: np.ndarray, agent: np.ndarray, intent: np.ndarray, known_at: np.ndarray,
                  resolved: np.ndarray, csat: np.ndarray, handle_ratio: np.ndarray, n_agents: int,
                  n_intents: int, prior_rate: float, prior_csat: float, smoothing: float,
                  agent_ids: tuple[str, ...]) -> tuple[PointInTime, AgentState]:
    """Per-row :class:`PointInTime` statistics from outcomes known strictly before each
    row's time ``t``, and the final :class:`AgentState`."""
    out, *totals = _pit(
        np.ascontiguousarray(t, np.float64), np.ascontiguousarray(agent, np.int64),
        np.ascontiguousarray(intent, np.int64), np.ascontiguousarray(known_at, np.float64),
        np.ascontiguousarray(resolved, np.float64), np.ascontiguousarray(csat, np.float64),
        np.ascontiguousarray(handle_ratio, np.float64), int(max(n_agents, 1)), int(max(n_intents, 1)),
        float(prior_rate), float(prior_csat), float(smoothing))
    pit = PointInTime(**{k: out[:, j] for j, k in enumerate(_PIT_FIELDS)})  # the kernel's column order
    return pit, AgentState(agent_ids=tuple(agent_ids), **dict(zip(_STATE_FIELDS, totals)))


@njit(cache=True)
def _recent(ts, cs, window_s):
    n = len(ts)
    res = np.zeros(n)
    start = 0
    for q in range(n):  # two pointers over each customer's sorted times
        if q > 0 and cs[q] != cs[q - 1]:
            start = q
        while ts[start] < ts[q] - window_s:
            start += 1
        res[q] = q - start
    return res


def recent_counts(*, t: np.ndarray, customer: np.ndarray, window_s: float) -> np.ndarray:
    """For each row, how many earlier rows of the same customer arrived within ``window_s``
    before it (NaN when the customer is unknown: code -1)."""
    n = len(t)
    out = np.full(n, np.nan)
    if n == 0:
        return out
    order = np.lexsort((t, customer))
    out[order] = _recent(np.ascontiguousarray(t[order], np.float64),
                         np.ascontiguousarray(customer[order], np.int64), float(window_s))
    out[customer < 0] = np.nan
    return out
