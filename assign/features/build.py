"""Feature matrices for training rows (a history) and tick rows (a Snapshot + candidate pairs).

Both paths fill the same :class:`ContactTable` / :class:`AgentTable` / :class:`PairInputs`
and call the one kernel :func:`assign.features.crosses.assemble`, so training and serving
cannot drift apart. Time features use the contact's arrival in UTC seconds since the epoch
in both paths (tick: ``snapshot.at - waited_s``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from assign.constants import DAY_S, HOUR_S, REPEAT_WINDOW_S
from assign.features.crosses import AgentTable, ContactTable, PairInputs, assemble
from assign.features.rolling import AgentState, point_in_time, recent_counts
from assign.features.spec import FeatureSpec
from assign.history import epoch_seconds
from assign.schema import CHANNELS, Snapshot

RECENT_WINDOW_S = REPEAT_WINDOW_S  # contacts in the repeat window before this one
F32 = np.float32


def _hour_weekday(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    day = np.floor(t / DAY_S)
    hour = np.floor((t - day * DAY_S) / HOUR_S)
    return hour.astype(F32), ((day + 3) % 7).astype(F32)  # 1970-01-01 was a Thursday


def _per_unique(values, fn, *, missing, dtype) -> np.ndarray:
    """``fn(v)`` for every value, computed once per distinct value (a Python loop over 600k
    arrow strings took most of the feature time); ``missing`` where the value is NA."""
    codes, uniques = pd.factorize(pd.Series(values), use_na_sentinel=True)
    lut = [fn(u) for u in uniques]
    lut.append(missing)  # code -1 (NA) picks the last entry
    return np.asarray(lut, dtype=dtype)[codes]


def _codes(values: pd.Series, vocab: tuple[str, ...]) -> np.ndarray:
    m = {k: n for n, k in enumerate(vocab)}
    return _per_unique(values, lambda v: m.get(v, -1) if isinstance(v, str) else -1, missing=-1, dtype=np.int32)


def _f32(s: pd.Series) -> np.ndarray:
    return pd.to_numeric(s, errors="coerce").astype("float64").to_numpy(dtype=np.float64, na_value=np.nan).astype(F32)


def _priority(tiers) -> np.ndarray:
    return _per_unique(tiers, lambda v: float(v == "priority") if isinstance(v, str) else np.nan,
                       missing=np.nan, dtype=F32)


def arrival_seconds(history: pd.DataFrame) -> np.ndarray:
    return epoch_seconds(history["arrival_at"])


def handle_key(channel: str, intent: str) -> str:
    return f"{channel}|{intent}"


def fit_spec(history: pd.DataFrame, *, label_delay_s: float = 0.0, smoothing: float = 20.0) -> FeatureSpec:
    """Vocabularies and priors learnt from a (training) history."""
    strs = lambda s: sorted({v for v in s.unique() if isinstance(v, str) and v})
    langs = set(strs(history["language"]))
    for v in history["agent_languages"].unique():
        if isinstance(v, str):
            langs.update(x for x in v.split(";") if x)
    res = history["resolved"].astype("float64")
    cs = history["csat"].astype("float64")
    served = history[history["handle_s"].astype("float64") > 0]
    lh = np.log(served["handle_s"].astype("float64"))
    means = lh.groupby([served["channel"].astype(str), served["intent"].astype(str)]).mean()
    return FeatureSpec(
        intents=tuple(strs(history["intent"])), languages=tuple(sorted(langs)),
        styles=tuple(sorted(set(strs(history["style"])) | set(strs(history["agent_style"])))),
        prior_rate=float(res.mean()) if res.notna().any() else 0.5,
        prior_csat=float(cs.mean()) if cs.notna().any() else 3.0,
        smoothing=float(smoothing), label_delay_s=float(label_delay_s),
        handle_log_mean={handle_key(c, i): float(v) for (c, i), v in means.items()},
    )


def _speaks(agent_languages: pd.Series, languages: tuple[str, ...]) -> np.ndarray:
    """One row per history row: 1 where the serving agent speaks the language, NaN rows
    where no agent served (``;``-separated codes, unknown codes ignored)."""
    width = max(len(languages), 1)
    li = {k: n for n, k in enumerate(languages)}
    codes, uniques = pd.factorize(agent_languages, use_na_sentinel=True)
    lut = np.zeros((len(uniques) + 1, width), dtype=F32)
    for u, v in enumerate(uniques):
        if isinstance(v, str):
            for x in v.split(";"):
                if x in li:
                    lut[u, li[x]] = 1.0
        else:
            lut[u, :] = np.nan
    lut[-1, :] = np.nan  # code -1: NA
    return lut[codes]


def _handle_base(history: pd.DataFrame, spec: FeatureSpec) -> np.ndarray:
    """The spec's mean log handle time of each row's channel|intent (NaN when unseen)."""
    cc, uc = pd.factorize(history["channel"].astype(str), use_na_sentinel=False)
    ic, ui = pd.factorize(history["intent"].astype(str), use_na_sentinel=False)
    lut = np.array([[spec.handle_log_mean.get(handle_key(a, b), np.nan) for b in ui] for a in uc], dtype=np.float64)
    return lut[cc, ic] if len(cc) else np.zeros(0)


@dataclass(frozen=True, eq=False)
class TrainingFeatures:
    X: np.ndarray             # float32 (n_rows, n_features), rows in the history's order
    state: AgentState         # totals at the end of the history (what the scorer serves)
    customer_times: pd.DataFrame  # customer_id, t: arrivals of the last 72 h (for cust_recent)


def history_features(history: pd.DataFrame, spec: FeatureSpec) -> TrainingFeatures:
    """Features of every history row paired with the agent who served it (NaN agent
    features for abandoned rows), agent performance point in time."""
    n = len(history)
    t = arrival_seconds(history)
    hour, weekday = _hour_weekday(t)
    cust_codes, _ = pd.factorize(history["customer_id"], use_na_sentinel=True)
    recent = recent_counts(t=t, customer=cust_codes.astype(np.int64), window_s=RECENT_WINDOW_S).astype(F32)
    channel = _codes(history["channel"], CHANNELS)
    intent = _codes(history["intent"], spec.intents)
    c = ContactTable(channel=channel, intent=intent, complexity=_f32(history["complexity"]),
                     urgency=_f32(history["urgency"]), sentiment=_f32(history["sentiment"]),
                     priority=_priority(history["customer_tier"]), hour=hour, weekday=weekday,
                     cust_recent=recent, language=_codes(history["language"], spec.languages),
                     style=_codes(history["style"], spec.styles))
    # agents as they were when serving each row
    speaks = _speaks(history["agent_languages"], spec.languages)
    agent_codes, agent_vocab = pd.factorize(history["agent_id"], use_na_sentinel=True)
    handle = history["handle_s"].astype("float64").to_numpy(na_value=np.nan)
    wait = history["wait_s"].astype("float64").to_numpy(na_value=np.nan)
    base = _handle_base(history, spec)
    with np.errstate(invalid="ignore", divide="ignore"):
        hratio = np.where(handle > 0, np.log(np.where(handle > 0, handle, 1.0)) - base, np.nan)
    known_at = t + np.nan_to_num(wait) + handle + spec.label_delay_s
    pit, state = point_in_time(
        t=t, agent=agent_codes, intent=intent, known_at=known_at,
        resolved=history["resolved"].astype("float64").to_numpy(na_value=np.nan),
        csat=history["csat"].astype("float64").to_numpy(na_value=np.nan), handle_ratio=hratio,
        n_agents=len(agent_vocab), n_intents=len(spec.intents), prior_rate=spec.prior_rate,
        prior_csat=spec.prior_csat, smoothing=spec.smoothing, agent_ids=tuple(str(x) for x in agent_vocab))
    pit = pit.astype(F32)
    a = AgentTable(log_tenure=np.log1p(_f32(history["agent_tenure_days"])),
                   handling=_f32(history["agent_sentiment_handling"]), speaks=speaks,
                   style=_codes(history["agent_style"], spec.styles), rate=pit.rate, log_n=pit.log_n,
                   handle_ratio=pit.handle_ratio, csat=pit.csat)
    idx = np.arange(n, dtype=np.int64)
    p = PairInputs(contact_idx=idx, agent_idx=idx, proficiency=_f32(history["agent_proficiency"]),
                   load=_f32(history["agent_load"]), ai_rate=pit.intent_rate, ai_log_n=pit.intent_log_n)
    last = t >= (t.max() - RECENT_WINDOW_S if n else 0.0)
    ct = pd.DataFrame({"customer_id": history["customer_id"][last].astype(object), "t": t[last]}).dropna()
    return TrainingFeatures(X=assemble(c, a, p), state=state, customer_times=ct.sort_values("t", kind="stable"))


def _times_by_customer(customer_times: pd.DataFrame) -> dict[str, np.ndarray]:
    """Customer id (as text) -> its arrival times, sorted: one sort, then slices (a model
    load, and so a hot swap, spends no time in a per-row Python loop)."""
    t = customer_times["t"].to_numpy(dtype=np.float64)
    if not len(t):
        return {}
    codes, uniques = pd.factorize(customer_times["customer_id"].astype(object).map(str), sort=False)
    order = np.lexsort((t, codes))
    codes, t = codes[order], t[order]
    starts = np.flatnonzero(np.concatenate(([True], codes[1:] != codes[:-1])))
    ends = np.append(starts[1:], len(codes))
    names = np.asarray(uniques, dtype=object)[codes[starts]].tolist()
    keys = [str(k) for k in names]
    return {k: t[s:e] for k, s, e in zip(keys, starts.tolist(), ends.tolist())}


class TickFeaturizer:
    """Builds tick rows for a model: its spec, the agent state and the recent customer
    arrivals it was trained with. Vocab maps are cached per snapshot vocabulary; safe to use
    from several threads (caches only ever gain entries that are equal for equal keys)."""

    def __init__(self, *, spec: FeatureSpec, state: AgentState, customer_times: pd.DataFrame) -> None:
        self.spec = spec
        self.state = state
        self._agent_code = {a: k for k, a in enumerate(state.agent_ids)}
        self._intent_code = {k: n for n, k in enumerate(spec.intents)}
        self._cust = _times_by_customer(customer_times)
        self._vocab_cache: dict[tuple, np.ndarray] = {}

    def _intent_map(self, intents: tuple[str, ...]) -> np.ndarray:
        m = self._vocab_cache.get(intents)
        if m is None:
            m = np.array([self._intent_code.get(k, -1) for k in intents], dtype=np.int32)
            self._vocab_cache[intents] = m
        return m

    def features(self, snapshot: Snapshot, *, contact_idx: np.ndarray, agent_idx: np.ndarray) -> np.ndarray:
        ci = np.ascontiguousarray(contact_idx, dtype=np.int64)
        ai = np.ascontiguousarray(agent_idx, dtype=np.int64)
        sc, sa = snapshot.contacts, snapshot.agents
        at = snapshot.at.timestamp()
        t = at - sc.waited_s
        hour, weekday = _hour_weekday(t)
        recent = np.full(len(sc), np.nan, dtype=F32)
        for i in np.unique(ci):  # only the contacts being scored
            cid = sc.customer_id[i]
            if cid is not None:
                ts = self._cust.get(str(cid))
                recent[i] = 0.0 if ts is None else (
                    np.searchsorted(ts, t[i], "left") - np.searchsorted(ts, t[i] - RECENT_WINDOW_S, "left"))
        imap = self._intent_map(snapshot.intents)
        intent_model = imap[sc.intent] if len(imap) else np.full(len(sc), -1, np.int32)
        c = ContactTable(channel=sc.channel, intent=intent_model, complexity=sc.complexity.astype(F32),
                         urgency=sc.urgency.astype(F32), sentiment=sc.sentiment.astype(F32),
                         priority=_priority(sc.customer_tier), hour=hour, weekday=weekday, cust_recent=recent,
                         language=sc.language, style=sc.style)
        codes = np.fromiter((self._agent_code.get(a, -1) for a in sa.ids), dtype=np.int64, count=len(sa))
        m = self.spec.smoothing
        af = self.state.agent_features(codes, prior_rate=self.spec.prior_rate, prior_csat=self.spec.prior_csat, m=m)
        a = AgentTable(log_tenure=np.log1p(sa.tenure_days).astype(F32), handling=sa.sentiment_handling.astype(F32),
                       speaks=sa.speaks.astype(F32), style=sa.style, rate=af["rate"].astype(F32),
                       log_n=af["log_n"].astype(F32), handle_ratio=af["handle_ratio"].astype(F32),
                       csat=af["csat"].astype(F32))
        ai_rate, ai_n = self.state.pair_features(codes[ai], intent_model[ci], af["rate"][ai], m=m)
        p = PairInputs(contact_idx=ci, agent_idx=ai, proficiency=sa.skill[ai, sc.intent[ci]].astype(F32),
                       load=sa.load[ai, sc.channel[ci]].astype(F32), ai_rate=ai_rate.astype(F32),
                       ai_log_n=ai_n.astype(F32))
        return assemble(c, a, p)
