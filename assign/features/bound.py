"""Tick features of a simulated run, from tables built once per run: the simulator's feature path.

A simulated day is ~13,000 ticks of a few contacts and agents each, and
:meth:`TickFeaturizer.features <assign.features.build.TickFeaturizer.features>` spends most
of such a tick on fixed per-call costs: customer ids encoded and searched, agent ids looked
up, the priority of each tier string, a dozen small numpy conversions. But a simulated
tick's snapshot (:meth:`assign.sim.view.View.snapshot`) is made of rows of the run's contact
stream and of the source's agents (``meta["stream"]`` is the stream, ``meta["contact_rows"]``
and ``meta["agent_rows"]`` the rows): only the contacts' waiting time, the snapshot's time
and the agents' load change from tick to tick. :class:`RunTables` looks every row up once,
when the scorer is bound to the run, and :func:`_tick_features` (numba) builds a tick's
matrix from those tables and the three per-tick columns, with the same float32 operations
in the same order as the general path, so the matrix is the same bit for bit (tested on
every tick of simulated runs). A snapshot that is not such a view goes the general way.

The two ``log1p`` terms (agent tenure, agent x intent count) are read from tables that
numpy's ``log1p`` filled, as the general path computes them; binding checks that numpy
gives the same bits for each value alone as in the whole table (its SIMD loops could in
principle differ by position) and declines the run otherwise. A view's tenure ages by whole
days (:meth:`assign.sim.source.Source.roster_tenure`), so the tenure table is made per day,
on the day's first tick, with the same check; a day that fails it goes the general way.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numba import njit

from assign.constants import DAY_S, HOUR_S
from assign.features.build import RECENT_WINDOW_S, TickFeaturizer, _priority
from assign.features.crosses import N_FEATURES, write_pair
from assign.schema import Snapshot

if TYPE_CHECKING:
    from assign.sim.view import RunInfo

F32 = np.float32


@njit(cache=True, nogil=True)
def _tick_features(cr, ar, ci, ai, at, waited, load, c_channel, c_intent, c_model_intent, c_complexity,
                   c_urgency, c_sentiment, c_priority, c_language, c_style, c_lo, c_hi, times, window,
                   a_skill, a_speaks, a_style, a_log_tenure, a_handling, a_rate, a_log_n, a_hr, a_csat, a_rate64,
                   a_code, n_by_intent, s_by_intent, log_n_by_intent, m, c_known, a_known, out, ood):
    """Rows of ``out`` (float32, FEATURES order) for the pairs (``ci[k]``, ``ai[k]``) of one tick,
    and ``ood[k]``, the pair out of the model's domain: local contact ``i`` is stream row
    ``cr[i]``, local agent ``j`` source agent ``ar[j]``. The arithmetic follows
    ``TickFeaturizer.features`` step for step; the crosses are ``crosses.write_pair``."""
    nan = np.float32(np.nan)
    n_c = len(cr)
    hour = np.empty(n_c, np.float32)
    weekday = np.empty(n_c, np.float32)
    recent = np.empty(n_c, np.float32)
    for i in range(n_c):
        t = at - waited[i]
        day = np.floor(t / DAY_S)
        hour[i] = np.float32(np.floor((t - day * DAY_S) / HOUR_S))
        weekday[i] = np.float32((day + 3) % 7)
        g = cr[i]
        if c_lo[g] < 0:
            recent[i] = nan
        else:
            seg = times[c_lo[g]:c_hi[g]]
            recent[i] = np.float32(np.searchsorted(seg, t, "left") - np.searchsorted(seg, t - window, "left"))
    for k in range(len(ci)):
        i = ci[k]
        j = ai[k]
        g = cr[i]
        a = ar[j]
        mi = c_model_intent[g]
        prof = np.float32(a_skill[a, c_intent[g]])
        lang = c_language[g]
        code = a_code[a]
        if code >= 0 and mi >= 0:
            n = n_by_intent[code, mi]
            ai_rate = np.float32((s_by_intent[code, mi] + m * a_rate64[a]) / (n + m)) if n > 0 else nan
            ai_log_n = np.float32(log_n_by_intent[code, mi])
        else:
            ai_rate = nan
            ai_log_n = nan
        write_pair(out, k, c_channel[g], mi, c_complexity[g], c_urgency[g], c_sentiment[g], c_priority[g], hour[i],
                   weekday[i], recent[i], a_log_tenure[a], a_handling[a], np.float32(load[j, c_channel[g]]), prof,
                   a_speaks[a, lang] if lang >= 0 else nan, c_style[g], a_style[a], a_rate[a], a_log_n[a],
                   ai_rate, ai_log_n, a_hr[a], a_csat[a])
        ood[k] = not (c_known[g] and a_known[a])


def _log1p_same_alone(values: np.ndarray) -> bool:
    """Whether numpy's ``log1p`` gives each of ``values`` the same bits alone, in short runs and
    in the whole array (the tables below are filled in one call, a tick computes a few)."""
    whole = np.log1p(values)
    alone = np.array([np.log1p(values[k:k + 1])[0] for k in range(len(values))])
    runs = np.concatenate([np.log1p(values[k:k + 7]) for k in range(0, len(values), 7)]) if len(values) else whole
    return whole.tobytes() == alone.tobytes() == runs.tobytes()


@dataclass(frozen=True, eq=False)
class RunTables:
    """Everything a simulated tick's features read that does not change during the run, per
    stream contact (``c_*``) and per source agent (``a_*``), in the kernel's dtypes."""

    stream: Any
    vocab: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]
    contact: tuple[np.ndarray, ...]   # _tick_features' c_* arguments, times and window
    agent: tuple[np.ndarray, ...]     # its a_* arguments and the state's agent x intent tables, m
    c_known: np.ndarray               # per stream contact: intent and language known to the model
    a_known: np.ndarray               # per source agent: known to the model
    source: Any                       # the run's source: its roster's tenure on each day
    by_day: dict                      # day -> ``agent`` with that day's tenure table, None where unsafe

    @classmethod
    def build(cls, featurizer: TickFeaturizer, run: RunInfo) -> RunTables | None:
        """The tables of ``run`` for ``featurizer``'s model, or None where this path cannot
        promise the general path's bits (see the module docstring)."""
        src, st = run.source, run.stream
        f, state = featurizer, featurizer.state
        shell = _shell(src, st.block, src.agents)
        codes = f.agent_codes(shell)
        if not (_log1p_same_alone(np.ascontiguousarray(src.agents.tenure_days, np.float64))
                and _log1p_same_alone(np.unique(state.n_resolution_by_intent))):
            return None
        intent_ok, lang_ok, agent_ok = f.known(shell, agent_codes=codes)
        agent = _agent_tables(f, shell.agents, codes)
        tables = cls(stream=st, vocab=(shell.intents, shell.languages, shell.styles),
                     contact=_contact_tables(f, shell), agent=agent,
                     c_known=intent_ok & lang_ok, a_known=agent_ok, source=src, by_day={0: agent})
        if len(st.block) and len(src.agents):  # compile (or load) the kernel here, never inside a tick
            one = np.zeros(1, np.int64)
            _tick_features(one, one, one, one, 0.0, np.zeros(1), np.zeros((1, src.agents.capacity.shape[1]), np.int32),
                           *tables.contact, *tables.agent, tables.c_known, tables.a_known,
                           np.empty((1, N_FEATURES), F32), np.empty(1, np.bool_))
        return tables

    def applies(self, snapshot: Snapshot) -> bool:
        """Whether ``snapshot`` is a view of this run (its rows index these tables) on a day
        whose tenure table gives the general path's bits."""
        return (snapshot.meta.get("stream") is self.stream
                and (snapshot.intents, snapshot.languages, snapshot.styles) == self.vocab
                and self._agent_on(snapshot) is not None)

    def _agent_on(self, snapshot: Snapshot) -> tuple[np.ndarray, ...] | None:
        """``agent`` with the tenure table of the snapshot's day (made on first use)."""
        t_s = snapshot.meta.get("t_s")
        if t_s is None:
            return None
        day = int(t_s // DAY_S)
        if day not in self.by_day:
            tenure = np.ascontiguousarray(self.source.roster_tenure(day=day), np.float64)
            self.by_day[day] = (self.agent[:3] + (np.log1p(tenure).astype(F32),) + self.agent[4:]
                                if _log1p_same_alone(tenure) else None)
        return self.by_day[day]

    def features(self, snapshot: Snapshot, *, contact_idx: np.ndarray,
                 agent_idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(float32 feature matrix, per pair out of the model's domain) of a view of this run."""
        meta = snapshot.meta
        cr, ar = meta["contact_rows"], meta["agent_rows"]
        ci = np.ascontiguousarray(contact_idx, dtype=np.int64)
        ai = np.ascontiguousarray(agent_idx, dtype=np.int64)
        out = np.empty((len(ci), N_FEATURES), dtype=F32)
        ood = np.empty(len(ci), dtype=np.bool_)
        _tick_features(np.ascontiguousarray(cr, np.int64), np.ascontiguousarray(ar, np.int64), ci, ai,
                       snapshot.at.timestamp(), snapshot.contacts.waited_s, snapshot.agents.load, *self.contact,
                       *self._agent_on(snapshot), self.c_known, self.a_known, out, ood)
        return out, ood


def _contact_tables(f: TickFeaturizer, shell: Snapshot) -> tuple:
    """The kernel's per-contact arguments (``c_*``, the customers' times, the window)."""
    b = shell.contacts
    imap = f._intent_map(shell.intents)
    model_intent = imap[b.intent] if len(imap) else np.full(len(b), -1, np.int32)
    lo, hi = f._cust_seg.bounds(b.customer_id)
    priority = _priority(b.customer_tier)  # the training path's per-distinct-value rule (the tick's, value for value)
    return (b.channel, b.intent, np.ascontiguousarray(model_intent, np.int32), b.complexity.astype(F32),
            b.urgency.astype(F32), b.sentiment.astype(F32), priority, b.language, b.style, lo, hi, f._cust_times,
            float(RECENT_WINDOW_S))


def _agent_tables(f: TickFeaturizer, agents, codes: np.ndarray) -> tuple:
    """The kernel's per-agent arguments (``a_*``), the state's agent x intent tables and m."""
    table = {k: v[codes + 1] for k, v in f._agent_table.items()}
    state = f.state
    f64 = lambda x: np.ascontiguousarray(x, np.float64)
    return (agents.skill, agents.speaks.astype(F32), agents.style, np.log1p(agents.tenure_days).astype(F32),
            agents.sentiment_handling.astype(F32), table["rate"].astype(F32), table["log_n"].astype(F32),
            table["handle_ratio"].astype(F32), table["csat"].astype(F32), f64(table["rate"]), codes,
            f64(state.n_resolution_by_intent), f64(f.pair_sums),
            f64(np.log1p(state.n_resolution_by_intent)), float(f.spec.smoothing))


def _shell(src, block, agents) -> Snapshot:
    """A snapshot holding the whole stream and every agent, only for the featurizer's
    per-row look-ups (agent codes, known vocabularies); never ticked."""
    from dataclasses import replace
    from datetime import UTC, datetime

    ag = replace(agents, load=np.zeros_like(agents.capacity))
    return Snapshot(snapshot_id="run-tables", at=datetime.now(UTC), intents=tuple(src.intents),
                    languages=tuple(src.languages), styles=tuple(src.styles), contacts=block, agents=ag)
