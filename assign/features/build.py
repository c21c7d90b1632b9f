"""Feature matrices for training rows (a history) and tick rows (a Snapshot + candidate pairs).

Both paths fill the same :class:`ContactTable` / :class:`AgentTable` / :class:`PairInputs`
and call the one kernel :func:`assign.features.crosses.assemble`, so training and serving
cannot drift apart. Time features use the contact's arrival in UTC seconds since the epoch
in both paths (tick: ``snapshot.at - waited_s``).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numba import njit

from assign.constants import DAY_S, HOUR_S, REPEAT_WINDOW_S
from assign.errors import InputError
from assign.features.crosses import AgentTable, ContactTable, PairInputs, assemble
from assign.features.rolling import CENTRE_HALF_LIFE_S, HISTORY_RATES, AgentState, point_in_time, recent_counts
from assign.features.spec import FeatureSpec
from assign.history import epoch_seconds
from assign.schema import CHANNELS, Snapshot

RECENT_WINDOW_S = REPEAT_WINDOW_S  # contacts in the repeat window before this one
#: Up to this many ids, customer look-ups search one id at a time (cheaper than encoding a column).
SMALL_LOOKUP = 32
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


def fit_spec(history: pd.DataFrame, *, label_delay_s: float = 0.0, smoothing: float = 20.0,
             history_rates: str = "absolute", centre_half_life_s: float = CENTRE_HALF_LIFE_S) -> FeatureSpec:
    """Vocabularies and priors learnt from a (training) history (``history_rates``,
    ``centre_half_life_s``: see :class:`FeatureSpec`)."""
    bad = [f"history_rates: must be one of {', '.join(HISTORY_RATES)}, got {history_rates!r}"] * (
        history_rates not in HISTORY_RATES)
    bad += [f"centre_half_life_s: must be > 0, got {centre_half_life_s}"] * (not centre_half_life_s > 0)
    if bad:
        raise InputError(bad, what="feature options")
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
        history_rates=history_rates, centre_half_life_s=float(centre_half_life_s),
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
        prior_csat=spec.prior_csat, smoothing=spec.smoothing, agent_ids=tuple(str(x) for x in agent_vocab),
        history_rates=spec.history_rates, centre_half_life_s=spec.centre_half_life_s)
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


class CustomerSegments(Mapping):
    """Customer id (text) -> ``(start, end)`` of its arrivals in the sorted times array.

    Arrays only, no Python object per customer: the ids as sorted UTF-8 bytes (each with a
    ``0x01`` terminator, so that numpy's fixed-width bytes, which drop trailing NULs, keep
    every id distinct) and two int arrays. A model load then creates no ~100k dict entries
    (their allocation set off full garbage collections that held the GIL for tens of ms
    and stalled the ticks running alongside), and a loaded model crosses from a loader
    process (:mod:`assign.model.offload`) as a few buffers that unpickle in a memcpy, with
    nothing to rebuild on the ticking process (issue 10). A tick looks its few hundred ids
    up with one binary search."""

    def __init__(self, *, keys, starts: np.ndarray, ends: np.ndarray) -> None:
        enc = _encode_ids(keys)
        order = np.argsort(enc, kind="stable")
        self._keys = enc[order]
        self.starts, self.ends = np.asarray(starts, np.int64)[order], np.asarray(ends, np.int64)[order]

    def codes(self, ids) -> np.ndarray:
        """Per id its row in :attr:`starts` / :attr:`ends`; -2 for no id (None), -1 for an unknown one."""
        ids = list(ids)
        if len(ids) <= SMALL_LOOKUP:
            return self._codes_small(ids)
        out = np.full(len(ids), -1, np.int64)
        given = [k for k, i in enumerate(ids) if i is not None]
        out[[k for k, i in enumerate(ids) if i is None]] = -2
        if not given or not len(self._keys):
            return out
        q = _encode_ids([ids[k] for k in given])
        fits = np.char.str_len(q) <= self._keys.dtype.itemsize  # a longer id is no key: never truncate it
        qf = q[fits].astype(self._keys.dtype)
        pos = np.minimum(np.searchsorted(self._keys, qf), len(self._keys) - 1)
        out[np.asarray(given, np.int64)[fits]] = np.where(self._keys[pos] == qf, pos, -1)
        return out

    def _codes_small(self, ids: list) -> np.ndarray:
        """:meth:`codes` for a few ids (a simulated tick's): the same keys and comparisons,
        without the column path's per-call fixed costs (``np.char``, several masks)."""
        keys, out = self._keys, np.full(len(ids), -1, np.int64)
        width, at, qs = keys.dtype.itemsize, [], []
        for k, i in enumerate(ids):
            if i is None:
                out[k] = -2
                continue
            q = str(i).encode() + b"\x01"
            if len(q) <= width:  # a longer id is no key: never truncate it
                at.append(k)
                qs.append(q)
        if qs and len(keys):
            q = np.array(qs, dtype=keys.dtype)
            pos = np.minimum(keys.searchsorted(q), len(keys) - 1)
            out[at] = np.where(keys[pos] == q, pos, -1)
        return out

    def __getitem__(self, key: str) -> tuple[int, int]:
        k = int(self.codes([key])[0])
        if k < 0:
            raise KeyError(key)
        return int(self.starts[k]), int(self.ends[k])

    def __iter__(self):
        return (k[:-1].decode() for k in self._keys.tolist())

    def __len__(self) -> int:
        return len(self._keys)

    def bounds(self, customer_ids) -> tuple[np.ndarray, np.ndarray]:
        """Per id: ``(lo, hi)``; ``(-1, -1)`` for no id (None), ``(0, 0)`` for an unknown one."""
        k = self.codes(customer_ids)
        known, none = k >= 0, k == -2
        lo, hi = np.zeros(len(k), np.int64), np.zeros(len(k), np.int64)
        lo[known], hi[known] = self.starts[k[known]], self.ends[k[known]]
        lo[none], hi[none] = -1, -1
        return lo, hi


def _encode_ids(ids) -> np.ndarray:
    """Ids as text -> fixed-width UTF-8 bytes, each ending in ``0x01`` (see :class:`CustomerSegments`)."""
    enc = [str(i).encode() + b"\x01" for i in ids]
    return np.array(enc, dtype="S") if enc else np.zeros(0, "S1")


def _times_by_customer(customer_times: pd.DataFrame) -> tuple[np.ndarray, CustomerSegments]:
    """Every customer's arrival times, sorted, in one array, and customer id (as text) -> its
    ``(start, end)`` slice: one sort, no per-row Python loop and no per-customer Python
    object but the id itself (a model load, and so a hot swap, stays short)."""
    t = customer_times["t"].to_numpy(dtype=np.float64)
    if not len(t):
        none = np.zeros(0, np.int64)
        return np.zeros(0), CustomerSegments(keys=pd.Index([], dtype=object), starts=none, ends=none)
    ids = customer_times["customer_id"]
    if not (pd.api.types.is_string_dtype(ids.dtype) and ids.dtype != object and not ids.isna().any()):
        ids = ids.astype(object).map(str)  # ids as text; a text column needs no per-row Python pass
    codes, uniques = pd.factorize(ids, sort=False)
    order = np.lexsort((t, codes))
    codes, t = codes[order], t[order]
    starts = np.flatnonzero(np.concatenate(([True], codes[1:] != codes[:-1])))
    ends = np.append(starts[1:], len(codes))
    return t, CustomerSegments(keys=pd.Index(uniques).take(codes[starts]), starts=starts, ends=ends)


@dataclass(frozen=True, eq=False)
class CustomerTimes:
    """The customers' recent arrivals as a tick reads them: ``times`` (each customer's arrivals
    sorted, one customer after another) and ``segments`` (customer id -> its slice). Arrays
    only (see :class:`CustomerSegments`)."""

    times: np.ndarray
    segments: CustomerSegments

    @classmethod
    def from_frame(cls, customer_times: pd.DataFrame) -> CustomerTimes:
        """From ``customer_id``, ``t`` rows (``TrainingFeatures.customer_times``, customers.parquet)."""
        times, segments = _times_by_customer(customer_times)
        return cls(times=times, segments=segments)

    def frame(self) -> pd.DataFrame:
        """Back to ``customer_id``, ``t`` rows, grouped by customer (for references and reports)."""
        seg = self.segments
        order = np.argsort(seg.starts, kind="stable")
        ids = np.array(list(seg), dtype=object)[order]
        return pd.DataFrame({"customer_id": np.repeat(ids, (seg.ends - seg.starts)[order]), "t": self.times})


@njit(cache=True)
def _recent(lo, hi, times, t, window):
    """Per contact: ``times[lo:hi]`` (one customer's sorted arrivals) in ``[t - window, t)``;
    NaN where ``lo < 0`` (no customer id). 0 for a customer without arrivals (lo == hi)."""
    out = np.empty(len(lo), dtype=np.float32)
    for i in range(len(lo)):
        if lo[i] < 0:
            out[i] = np.nan
            continue
        seg = times[lo[i]:hi[i]]
        out[i] = np.searchsorted(seg, t[i], "left") - np.searchsorted(seg, t[i] - window, "left")
    return out


#: How a tick reads an agent its model's state does not hold (:class:`TickFeaturizer`).
UNKNOWN_AGENT = ("missing", "new")


class TickFeaturizer:
    """Builds tick rows for a model: its spec, the agent state and the recent customer
    arrivals it was trained with. Vocab maps are cached per snapshot vocabulary; safe to use
    from several threads (caches only ever gain entries that are equal for equal keys).

    Per tick only per-row look-ups stay in Python (customer and agent ids to their codes);
    the agent state's features are computed once for every known agent at construction and
    the customers' recent arrivals are one sorted array with a segment per customer."""

    def __init__(self, *, spec: FeatureSpec, state: AgentState,
                 customer_times: pd.DataFrame | CustomerTimes, unknown_agent: str = "missing") -> None:
        if unknown_agent not in UNKNOWN_AGENT:
            raise InputError([f"unknown_agent: must be one of {', '.join(UNKNOWN_AGENT)}, got {unknown_agent!r}"],
                             what="tick featurizer")
        self.spec = spec
        self.unknown_agent = unknown_agent
        self._agent_code = {a: k for k, a in enumerate(state.agent_ids)}
        self._n_known = len(state.agent_ids)
        #: "new": an agent the state does not hold reads as one more agent with no outcome counted
        #: (code ``_n_known``: counts 0, rates missing); "missing": code -1, every history feature NaN
        self._unknown_code = self._n_known if unknown_agent == "new" else -1
        self.state = state.with_empty_agent("\x00unknown") if unknown_agent == "new" else state
        self._intent_code = {k: n for n, k in enumerate(spec.intents)}
        ct = customer_times if isinstance(customer_times, CustomerTimes) else CustomerTimes.from_frame(customer_times)
        self._cust_times, self._cust_seg = ct.times, ct.segments
        codes = np.arange(-1, len(self.state.agent_ids), dtype=np.int64)  # row 0: code -1
        self._agent_table = self.state.agent_features(codes, prior_rate=spec.prior_rate, prior_csat=spec.prior_csat,
                                                      m=spec.smoothing, relative=spec.relative_rates)
        #: the agent x intent sums of the pair rate (:meth:`AgentState.pair_sums`), once per state
        self.pair_sums = self.state.pair_sums(m=spec.smoothing, relative=spec.relative_rates)
        self._vocab_cache: dict[tuple, np.ndarray] = {}
        self._lang_cache: dict[tuple, np.ndarray] = {}

    def _intent_map(self, intents: tuple[str, ...]) -> np.ndarray:
        m = self._vocab_cache.get(intents)
        if m is None:
            m = np.array([self._intent_code.get(k, -1) for k in intents], dtype=np.int32)
            self._vocab_cache[intents] = m
        return m

    def agent_codes(self, snapshot: Snapshot, *, rows: np.ndarray | None = None) -> np.ndarray:
        """Each agent's row in the model's agent state, -1 for an agent the model never saw (with
        ``unknown_agent`` "new": the row of the state's added agent with no history);
        with ``rows``, only those agents are looked up (the others read -1: callers must only
        use the codes of ``rows``, as :meth:`features` does with the agents of its pairs)."""
        get, ids, unknown = self._agent_code.get, snapshot.agents.ids, self._unknown_code
        if rows is None:
            return np.fromiter((get(a, unknown) for a in ids), dtype=np.int64, count=snapshot.n_agents)
        out = np.full(snapshot.n_agents, -1, dtype=np.int64)
        out[rows] = np.fromiter((get(a, unknown) for a in ids[rows]), dtype=np.int64, count=len(rows))
        return out

    def known(self, snapshot: Snapshot, *, agent_codes: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
        """Per contact: intent known, language known; per agent: agent known (as
        :func:`assign.model.domain.out_of_domain`, from the cached maps)."""
        langs = self._lang_cache.get(snapshot.languages)
        if langs is None:
            known = set(self.spec.languages)
            langs = np.array([x in known for x in snapshot.languages], dtype=bool)
            self._lang_cache[snapshot.languages] = langs
        c = snapshot.contacts
        codes = self.agent_codes(snapshot) if agent_codes is None else agent_codes
        imap = self._intent_map(snapshot.intents)
        intent_ok = imap[c.intent] >= 0 if len(imap) else np.zeros(len(c), bool)
        return intent_ok, langs[c.language.astype(np.int64)], (codes >= 0) & (codes < self._n_known)

    def _recent(self, snapshot: Snapshot, t: np.ndarray) -> np.ndarray:
        lo, hi = self._cust_seg.bounds(snapshot.contacts.customer_id)
        return _recent(lo, hi, self._cust_times, np.asarray(t, np.float64), float(RECENT_WINDOW_S))

    def features(self, snapshot: Snapshot, *, contact_idx: np.ndarray, agent_idx: np.ndarray,
                 agent_codes: np.ndarray | None = None) -> np.ndarray:
        ci = np.ascontiguousarray(contact_idx, dtype=np.int64)
        ai = np.ascontiguousarray(agent_idx, dtype=np.int64)
        sc, sa = snapshot.contacts, snapshot.agents
        at = snapshot.at.timestamp()
        t = at - sc.waited_s
        hour, weekday = _hour_weekday(t)
        imap = self._intent_map(snapshot.intents)
        intent_model = imap[sc.intent] if len(imap) else np.full(len(sc), -1, np.int32)
        nan = np.float32(np.nan)
        priority = np.array([(np.float32(v == "priority") if isinstance(v, str) else nan) for v in sc.customer_tier],
                            dtype=F32)
        c = ContactTable(channel=sc.channel, intent=intent_model, complexity=sc.complexity.astype(F32),
                         urgency=sc.urgency.astype(F32), sentiment=sc.sentiment.astype(F32),
                         priority=priority, hour=hour, weekday=weekday, cust_recent=self._recent(snapshot, t),
                         language=sc.language, style=sc.style)
        codes = self.agent_codes(snapshot) if agent_codes is None else agent_codes
        af = {k: v[codes + 1] for k, v in self._agent_table.items()}
        a = AgentTable(log_tenure=np.log1p(sa.tenure_days).astype(F32), handling=sa.sentiment_handling.astype(F32),
                       speaks=sa.speaks.astype(F32), style=sa.style, rate=af["rate"].astype(F32),
                       log_n=af["log_n"].astype(F32), handle_ratio=af["handle_ratio"].astype(F32),
                       csat=af["csat"].astype(F32))
        ai_rate, ai_n = self.state.pair_features(codes[ai], intent_model[ci], af["rate"][ai], m=self.spec.smoothing,
                                                 sums=self.pair_sums)
        p = PairInputs(contact_idx=ci, agent_idx=ai, proficiency=sa.skill[ai, sc.intent[ci]].astype(F32),
                       load=sa.load[ai, sc.channel[ci]].astype(F32), ai_rate=ai_rate.astype(F32),
                       ai_log_n=ai_n.astype(F32))
        return assemble(c, a, p)
