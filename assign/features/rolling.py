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
def _fold_centre(centre, k, y, t, half_life_s):
    """Fold outcome ``y`` known at ``t`` into the decayed centre totals of row ``k`` of
    ``centre`` (columns: decayed sum, decayed count, time of the last fold)."""
    if not np.isnan(centre[k, 2]):
        f = np.exp2(-(t - centre[k, 2]) / half_life_s)
        centre[k, 0] *= f
        centre[k, 1] *= f
    centre[k, 0] += y
    centre[k, 1] += 1.0
    centre[k, 2] = t


@njit(cache=True)
def _fold(e, a, intent, known_at, resolved, csat, hratio, acc, nai, sai, rai, centre, prior_rate, m, half_life_s):
    """Fold outcome row ``e`` (served by agent ``a``) into the accumulators (see :func:`_pit`)."""
    if not np.isnan(resolved[e]):
        y = resolved[e]
        k = intent[e]
        # the residual against the centre's rate on the outcome's intent (overall: row -1) known just before it
        c = centre[k if k >= 0 else centre.shape[0] - 1]
        r = y - (c[0] + m * prior_rate) / (c[1] + m)
        acc[a, 0] += 1.0
        acc[a, 1] += y
        acc[a, 6] += r
        if k >= 0:
            nai[a, k] += 1.0
            sai[a, k] += y
            rai[a, k] += r
            _fold_centre(centre, k, y, known_at[e], half_life_s)
        _fold_centre(centre, centre.shape[0] - 1, y, known_at[e], half_life_s)
    if not np.isnan(hratio[e]):
        acc[a, 2] += 1.0
        acc[a, 3] += hratio[e]
    if not np.isnan(csat[e]):
        acc[a, 4] += 1.0
        acc[a, 5] += csat[e]


@njit(cache=True)
def _pit(t, agent, intent, known_at, resolved, csat, hratio, n_agents, n_intents, prior_rate, prior_csat, m,
         relative, half_life_s):
    """Columns of ``out``: rate, log_n, intent_rate, intent_log_n, handle_ratio, csat (see
    :class:`PointInTime`); then the end-of-history totals: per agent (``acc`` columns: resolution
    count and sum, handle-ratio count and sum, CSAT count and sum, residual sum), per agent x
    intent (count, sum, residual sum) and the centre's decayed totals (one row per intent, the
    last row over every intent). ``relative``: rates are the centre's rate plus the agent's
    smoothed mean residual (:func:`point_in_time`)."""
    n = len(t)
    order = np.argsort(known_at)  # NaN (never known) sorts last
    acc = np.zeros((n_agents, 7))
    nai = np.zeros((n_agents, n_intents))
    sai = np.zeros((n_agents, n_intents))
    rai = np.zeros((n_agents, n_intents))
    centre = np.zeros((n_intents + 1, 3))
    centre[:, 2] = np.nan
    out = np.full((n, 6), np.nan)
    ptr = 0
    row_order = np.argsort(t, kind="mergesort")
    for q in range(n):
        i = row_order[q]
        while ptr < n and known_at[order[ptr]] < t[i]:
            e = order[ptr]
            if agent[e] >= 0:
                _fold(e, agent[e], intent, known_at, resolved, csat, hratio, acc, nai, sai, rai, centre, prior_rate,
                      m, half_life_s)
            ptr += 1
        a = agent[i]
        if a < 0:
            continue
        nr = acc[a, 0]
        if nr > 0:
            if relative:
                big = centre[n_intents]
                out[i, 0] = (big[0] + m * prior_rate) / (big[1] + m) + acc[a, 6] / (nr + m)
            else:
                out[i, 0] = (acc[a, 1] + m * prior_rate) / (nr + m)
        out[i, 1] = np.log1p(nr)
        k = intent[i]
        if k >= 0:
            if nai[a, k] > 0 and nr > 0:
                s = sai[a, k]
                if relative:
                    s = _relative_sum(rai[a, k], nai[a, k], centre[k], centre[n_intents], prior_rate, m)
                out[i, 2] = (s + m * out[i, 0]) / (nai[a, k] + m)
            out[i, 3] = np.log1p(nai[a, k])
        if acc[a, 2] > 0:
            out[i, 4] = acc[a, 3] / (acc[a, 2] + m)
        if acc[a, 4] > 0:
            out[i, 5] = (acc[a, 5] + m * prior_csat) / (acc[a, 4] + m)
    return out, acc, nai, sai, rai, centre


@njit(cache=True)
def _relative_sum(r, n, c_intent, c_all, prior_rate, m):
    """The agent x intent sum that, in the absolute formula ``(s + m * agent_rate) / (n + m)``
    with the relative agent rate ``C + r_a``, gives ``C_k + (r + m * r_a) / (n + m)``: the
    intent's centre rate plus the agent's smoothed mean residual on it, shrunk towards its
    overall one (``AgentState.pair_sums`` computes the same, element-wise)."""
    ck = (c_intent[0] + m * prior_rate) / (c_intent[1] + m)
    c = (c_all[0] + m * prior_rate) / (c_all[1] + m)
    return r + (n + m) * ck - m * c


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
    how many outcomes of each kind were counted (``n_*``) and their sums (``sum_*``).

    Relative rates (``FeatureSpec.history_rates`` "relative") also need each agent's residual
    sums (``sum_residual*``: resolved minus the centre's rate on the outcome's intent known
    just before it) and the centre's rates at the end of the history (``centre_rate_by_intent``,
    ``centre_rate`` over every intent, shape ``(1,)``); None in a state of absolute rates."""

    agent_ids: tuple[str, ...]
    n_resolution: np.ndarray              # (n_agents,) contacts with a known resolution
    sum_resolved: np.ndarray              # (n_agents,) of them resolved
    n_resolution_by_intent: np.ndarray    # (n_agents, n_intents)
    sum_resolved_by_intent: np.ndarray    # (n_agents, n_intents)
    n_handle: np.ndarray                  # (n_agents,) contacts with a handle time
    sum_handle_ratio: np.ndarray          # (n_agents,) sum of their log handle-time ratios
    n_csat: np.ndarray                    # (n_agents,) surveyed contacts
    sum_csat: np.ndarray                  # (n_agents,) sum of their CSAT
    sum_residual: np.ndarray | None = None            # (n_agents,)
    sum_residual_by_intent: np.ndarray | None = None  # (n_agents, n_intents)
    centre_rate_by_intent: np.ndarray | None = None   # (n_intents,)
    centre_rate: np.ndarray | None = None             # (1,)

    @property
    def relative(self) -> bool:
        """Whether the state holds what relative rates need."""
        return self.centre_rate is not None

    def _need_relative(self) -> None:
        if not self.relative:
            raise ValueError("relative rates need a state built with history_rates='relative' (residual sums "
                             "and centre rates); this one holds absolute totals only")

    def agent_features(self, codes: np.ndarray, *, prior_rate: float, prior_csat: float,
                       m: float, relative: bool = False) -> dict[str, np.ndarray]:
        """rate, log_n, handle_ratio, csat for agent codes (-1 = unknown agent -> NaN);
        ``relative``: rate = the centre's rate + the agent's smoothed mean residual."""
        ok = codes >= 0
        c = np.where(ok, codes, 0)
        nr, sr, nh, sh = self.n_resolution[c], self.sum_resolved[c], self.n_handle[c], self.sum_handle_ratio[c]
        nc, sc = self.n_csat[c], self.sum_csat[c]
        if relative:
            self._need_relative()
        with np.errstate(invalid="ignore", divide="ignore"):
            if relative:
                rate = np.where(ok & (nr > 0), self.centre_rate[0] + self.sum_residual[c] / (nr + m), np.nan)
            else:
                rate = np.where(ok & (nr > 0), (sr + m * prior_rate) / (nr + m), np.nan)
            log_n = np.where(ok, np.log1p(nr), np.nan)
            hr = np.where(ok & (nh > 0), sh / (nh + m), np.nan)
            cs = np.where(ok & (nc > 0), (sc + m * prior_csat) / (nc + m), np.nan)
        return dict(rate=rate, log_n=log_n, handle_ratio=hr, csat=cs)

    def pair_sums(self, *, m: float, relative: bool = False) -> np.ndarray:
        """(n_agents, n_intents): the sums ``s`` of the agent x intent rate ``(s + m * agent_rate) / (n + m)``:
        absolute: resolved outcomes; relative: ``residuals + (n + m) * C_k - m * C``, so that with the
        relative agent rate ``C + r_a`` the rate is ``C_k + (residuals + m * r_a) / (n + m)``."""
        if not relative:
            return self.sum_resolved_by_intent
        self._need_relative()
        n = self.n_resolution_by_intent
        return self.sum_residual_by_intent + (n + m) * self.centre_rate_by_intent[None, :] - m * self.centre_rate[0]

    def pair_features(self, codes: np.ndarray, intents: np.ndarray, agent_rate: np.ndarray, *,
                      m: float, relative: bool = False,
                      sums: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(agent x intent rate, its log count) for pairs; NaN where agent or intent unknown
        (``sums``: :meth:`pair_sums` when already computed)."""
        ok = (codes >= 0) & (intents >= 0)
        c = np.where(ok, codes, 0)
        k = np.where(ok, intents, 0)
        table = self.pair_sums(m=m, relative=relative) if sums is None else sums
        n, s = self.n_resolution_by_intent[c, k], table[c, k]
        with np.errstate(invalid="ignore", divide="ignore"):
            rate = np.where(ok & (n > 0), (s + m * agent_rate) / (n + m), np.nan)
        return rate, np.where(ok, np.log1p(n), np.nan)

    def with_empty_agent(self, agent_id: str) -> AgentState:
        """This state with one more agent, ``agent_id``, that has no outcome counted (every count
        and sum 0): how an agent with no history yet reads (its rates missing, its counts 0, as a
        training row of an agent's first contact gets them from :func:`point_in_time`)."""
        grow = lambda x: np.concatenate([x, np.zeros((1, *x.shape[1:]), x.dtype)])
        extra = {k: getattr(self, k) for k in _CENTRE_FIELDS}
        extra.update({k: grow(getattr(self, k)) for k in _RESIDUAL_FIELDS if getattr(self, k) is not None})
        return AgentState(agent_ids=(*self.agent_ids, agent_id),
                          **{k: grow(getattr(self, k)) for k in _STATE_FIELDS}, **extra)

    def save(self, path) -> None:
        rel = {k: getattr(self, k) for k in _RELATIVE_FIELDS if getattr(self, k) is not None}
        np.savez(path, agent_ids=np.array(self.agent_ids, dtype=str),
                 **{k: getattr(self, k) for k in _STATE_FIELDS}, **rel)

    @classmethod
    def load(cls, path) -> AgentState:
        """Read :meth:`save`'s file (also the short keys ``nr, sr, ...`` of older model dirs, and
        files without the relative-rate fields)."""
        z = np.load(path, allow_pickle=False)
        keys = _STATE_FIELDS if _STATE_FIELDS[0] in z.files else _LEGACY_KEYS
        rel = {k: z[k] for k in _RELATIVE_FIELDS if k in z.files}
        return cls(agent_ids=tuple(str(x) for x in z["agent_ids"]),
                   **{k: z[old] for k, old in zip(_STATE_FIELDS, keys)}, **rel)


_STATE_FIELDS = ("n_resolution", "sum_resolved", "n_resolution_by_intent", "sum_resolved_by_intent", "n_handle",
                 "sum_handle_ratio", "n_csat", "sum_csat")
_LEGACY_KEYS = ("nr", "sr", "nai", "sai", "nh", "sh", "nc", "sc")
_RESIDUAL_FIELDS = ("sum_residual", "sum_residual_by_intent")
_CENTRE_FIELDS = ("centre_rate_by_intent", "centre_rate")
_RELATIVE_FIELDS = (*_RESIDUAL_FIELDS, *_CENTRE_FIELDS)
HISTORY_RATES = ("absolute", "relative")
#: Half-life of the centre's per-intent rate in relative mode (relrate15: at 1 day, the lag after a shock
#: still left ~40% of the absolute rates' confound four days on; docs/living-centre.md, "relrate15").
CENTRE_HALF_LIFE_S = 6 * 3600.0


def point_in_time(*, t: np.ndarray, agent: np.ndarray, intent: np.ndarray, known_at: np.ndarray,
                  resolved: np.ndarray, csat: np.ndarray, handle_ratio: np.ndarray, n_agents: int,
                  n_intents: int, prior_rate: float, prior_csat: float, smoothing: float,
                  agent_ids: tuple[str, ...], history_rates: str = "absolute",
                  centre_half_life_s: float = CENTRE_HALF_LIFE_S) -> tuple[PointInTime, AgentState]:
    """Per-row :class:`PointInTime` statistics from outcomes known strictly before each
    row's time ``t``, and the final :class:`AgentState`.

    ``history_rates`` "relative": each known resolution folds in as a residual against the
    centre's resolution rate on its intent as known just before it (per intent, a mean of the
    centre's outcomes forgotten with half-life ``centre_half_life_s`` of known-at time, smoothed
    towards ``prior_rate`` by ``smoothing`` pseudo-outcomes); ``rate`` is then the centre's
    overall rate plus the agent's smoothed mean residual, ``intent_rate`` the intent's centre
    rate plus the agent's smoothed mean residual on it (shrunk towards its overall one). A change
    that moves every agent alike on an intent then leaves the agents' order as it was."""
    if history_rates not in HISTORY_RATES:
        raise ValueError(f"history_rates must be one of {HISTORY_RATES}, got {history_rates!r}")
    if not centre_half_life_s > 0:
        raise ValueError(f"centre_half_life_s must be > 0, got {centre_half_life_s}")
    n_i = int(max(n_intents, 1))
    out, acc, nai, sai, rai, centre = _pit(
        np.ascontiguousarray(t, np.float64), np.ascontiguousarray(agent, np.int64),
        np.ascontiguousarray(intent, np.int64), np.ascontiguousarray(known_at, np.float64),
        np.ascontiguousarray(resolved, np.float64), np.ascontiguousarray(csat, np.float64),
        np.ascontiguousarray(handle_ratio, np.float64), int(max(n_agents, 1)), n_i,
        float(prior_rate), float(prior_csat), float(smoothing), history_rates == "relative", float(centre_half_life_s))
    pit = PointInTime(**{k: out[:, j] for j, k in enumerate(_PIT_FIELDS)})  # the kernel's column order
    totals = dict(n_resolution=acc[:, 0], sum_resolved=acc[:, 1], n_resolution_by_intent=nai,
                  sum_resolved_by_intent=sai, n_handle=acc[:, 2], sum_handle_ratio=acc[:, 3], n_csat=acc[:, 4],
                  sum_csat=acc[:, 5])
    if history_rates == "relative":
        m = float(smoothing)
        rates = (centre[:, 0] + m * float(prior_rate)) / (centre[:, 1] + m)
        totals.update(sum_residual=acc[:, 6], sum_residual_by_intent=rai, centre_rate_by_intent=rates[:n_i],
                      centre_rate=rates[n_i:])
    return pit, AgentState(agent_ids=tuple(agent_ids), **{k: np.ascontiguousarray(v) for k, v in totals.items()})


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
