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
class AgentState:
    """Totals per agent (and agent x intent) of the outcomes known at the end of a history."""

    agent_ids: tuple[str, ...]
    nr: np.ndarray
    sr: np.ndarray
    nai: np.ndarray
    sai: np.ndarray
    nh: np.ndarray
    sh: np.ndarray
    nc: np.ndarray
    sc: np.ndarray

    def agent_features(self, codes: np.ndarray, *, prior_rate: float, prior_csat: float, m: float) -> dict[str, np.ndarray]:
        """rate, log_n, handle_ratio, csat for agent codes (-1 = unknown agent -> NaN)."""
        ok = codes >= 0
        c = np.where(ok, codes, 0)
        nr, sr, nh, sh, nc, sc = self.nr[c], self.sr[c], self.nh[c], self.sh[c], self.nc[c], self.sc[c]
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
        n, s = self.nai[c, k], self.sai[c, k]
        with np.errstate(invalid="ignore", divide="ignore"):
            rate = np.where(ok & (n > 0), (s + m * agent_rate) / (n + m), np.nan)
        return rate, np.where(ok, np.log1p(n), np.nan)

    def save(self, path) -> None:
        np.savez(path, agent_ids=np.array(self.agent_ids, dtype=str), nr=self.nr, sr=self.sr, nai=self.nai,
                 sai=self.sai, nh=self.nh, sh=self.sh, nc=self.nc, sc=self.sc)

    @classmethod
    def load(cls, path) -> "AgentState":
        z = np.load(path, allow_pickle=False)
        return cls(agent_ids=tuple(str(x) for x in z["agent_ids"]),
                   **{k: z[k] for k in ("nr", "sr", "nai", "sai", "nh", "sh", "nc", "sc")})


def point_in_time(*, t: np.ndarray, agent: np.ndarray, intent: np.ndarray, known_at: np.ndarray,
                  resolved: np.ndarray, csat: np.ndarray, handle_ratio: np.ndarray, n_agents: int,
                  n_intents: int, prior_rate: float, prior_csat: float, smoothing: float,
                  agent_ids: tuple[str, ...]) -> tuple[np.ndarray, AgentState]:
    """Per-row (rate, log_n, ai_rate, ai_log_n, handle_ratio, csat) from outcomes known
    strictly before each row's time ``t``, and the final :class:`AgentState`."""
    out, nr, sr, nai, sai, nh, sh, nc, sc = _pit(
        np.ascontiguousarray(t, np.float64), np.ascontiguousarray(agent, np.int64),
        np.ascontiguousarray(intent, np.int64), np.ascontiguousarray(known_at, np.float64),
        np.ascontiguousarray(resolved, np.float64), np.ascontiguousarray(csat, np.float64),
        np.ascontiguousarray(handle_ratio, np.float64), int(max(n_agents, 1)), int(max(n_intents, 1)),
        float(prior_rate), float(prior_csat), float(smoothing))
    return out, AgentState(agent_ids=tuple(agent_ids), nr=nr, sr=sr, nai=nai, sai=sai, nh=nh, sh=sh, nc=nc, sc=sc)


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
