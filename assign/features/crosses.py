"""Pair features: gather contact and agent attributes into rows and compute the crosses.

:func:`assemble` (numba, no fastmath so NaN propagates as missing) and
:func:`assemble_reference` (plain numpy) build the same float32 matrix, column order
:data:`assign.features.spec.FEATURES`; tests prove them equal. Training rows (a contact with
the agent who served it) and tick rows (candidate pairs) both go through here.

Codes of ``c_language``/``c_style`` index the columns of ``a_speaks`` / the values of
``a_style`` (one local vocabulary per call); -1 means unknown. ``a_speaks`` is float32 with NaN
where the agent's languages are unknown.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from assign.features.spec import FEATURES

N_FEATURES = len(FEATURES)


@dataclass(frozen=True, eq=False)
class ContactTable:
    channel: np.ndarray      # int32
    intent: np.ndarray       # int32, code in the model's intents, -1 unknown
    complexity: np.ndarray   # float32 (NaN unknown), same for the rest
    urgency: np.ndarray
    sentiment: np.ndarray
    priority: np.ndarray
    hour: np.ndarray
    weekday: np.ndarray
    cust_recent: np.ndarray
    language: np.ndarray     # int32 local code, -1 unknown
    style: np.ndarray        # int32 local code, -1 unknown


@dataclass(frozen=True, eq=False)
class AgentTable:
    log_tenure: np.ndarray   # float32
    handling: np.ndarray
    speaks: np.ndarray       # (n, n_local_languages) float32 0/1, NaN unknown
    style: np.ndarray        # int32 local code, -1 unknown
    rate: np.ndarray
    log_n: np.ndarray
    handle_ratio: np.ndarray
    csat: np.ndarray


@dataclass(frozen=True, eq=False)
class PairInputs:
    contact_idx: np.ndarray  # int64
    agent_idx: np.ndarray    # int64
    proficiency: np.ndarray  # float32 per pair
    load: np.ndarray
    ai_rate: np.ndarray
    ai_log_n: np.ndarray


@njit(cache=True)
def write_pair(out, k, channel, intent, complexity, urgency, sentiment, priority, hour, weekday, recent,
               log_tenure, handling, load, prof, speaks, c_style, a_style, rate, log_n, ai_rate, ai_log_n,
               handle_ratio, csat):
    """Row ``k`` of ``out`` (float32, FEATURES order) from one pair's inputs: the crosses that
    :func:`_assemble` and the simulator's per-run kernel (:mod:`assign.features.bound`) share, so
    both paths compute every feature with the same float32 operations."""
    nan = np.float32(np.nan)
    out[k, 0] = channel
    out[k, 1] = intent if intent >= 0 else nan
    out[k, 2] = complexity
    out[k, 3] = urgency
    out[k, 4] = sentiment
    out[k, 5] = priority
    out[k, 6] = hour
    out[k, 7] = weekday
    out[k, 8] = recent
    out[k, 9] = log_tenure
    out[k, 10] = handling
    out[k, 11] = load
    out[k, 12] = prof
    out[k, 13] = speaks
    if c_style < 0 or a_style < 0:
        out[k, 14] = nan
    else:
        out[k, 14] = np.float32(1.0) if c_style == a_style else np.float32(0.0)
    out[k, 15] = prof * complexity
    neg = -sentiment
    if neg < 0:
        neg = np.float32(0.0)
    out[k, 16] = neg * handling
    out[k, 17] = rate
    out[k, 18] = log_n
    out[k, 19] = ai_rate
    out[k, 20] = ai_log_n
    out[k, 21] = handle_ratio
    out[k, 22] = csat


@njit(cache=True)
def _assemble(ci, ai, c_channel, c_intent, c_complexity, c_urgency, c_sentiment, c_priority, c_hour,
              c_weekday, c_recent, c_language, c_style, a_log_tenure, a_handling, a_speaks, a_style,
              a_rate, a_log_n, a_handle_ratio, a_csat, prof, load, ai_rate, ai_log_n, out):
    nan = np.float32(np.nan)
    for k in range(len(ci)):
        i = ci[k]
        j = ai[k]
        lang = c_language[i]
        write_pair(out, k, c_channel[i], c_intent[i], c_complexity[i], c_urgency[i], c_sentiment[i], c_priority[i],
                   c_hour[i], c_weekday[i], c_recent[i], a_log_tenure[j], a_handling[j], load[k], prof[k],
                   a_speaks[j, lang] if lang >= 0 else nan, c_style[i], a_style[j], a_rate[j], a_log_n[j],
                   ai_rate[k], ai_log_n[k], a_handle_ratio[j], a_csat[j])


def _args(c: ContactTable, a: AgentTable, p: PairInputs) -> tuple:
    return (p.contact_idx, p.agent_idx, c.channel, c.intent, c.complexity, c.urgency, c.sentiment,
            c.priority, c.hour, c.weekday, c.cust_recent, c.language, c.style, a.log_tenure, a.handling,
            a.speaks, a.style, a.rate, a.log_n, a.handle_ratio, a.csat, p.proficiency, p.load,
            p.ai_rate, p.ai_log_n)


def assemble(c: ContactTable, a: AgentTable, p: PairInputs) -> np.ndarray:
    """The float32 feature matrix of the pairs in ``p`` (numba kernel)."""
    out = np.empty((len(p.contact_idx), N_FEATURES), dtype=np.float32)
    _assemble(*_args(c, a, p), out)
    return out


def assemble_reference(c: ContactTable, a: AgentTable, p: PairInputs) -> np.ndarray:
    """Plain-numpy twin of :func:`assemble`, the reference the tests compare against."""
    i, j = p.contact_idx, p.agent_idx
    f32 = np.float32
    lang = c.language[i]
    speaks = np.where(lang >= 0, a.speaks[j, np.maximum(lang, 0)], np.nan)
    cs, ast = c.style[i], a.style[j]
    style = np.where((cs < 0) | (ast < 0), np.nan, (cs == ast).astype(f32))
    neg = np.maximum(-c.sentiment[i], f32(0.0))
    cols = [c.channel[i], np.where(c.intent[i] >= 0, c.intent[i], np.nan), c.complexity[i], c.urgency[i],
            c.sentiment[i], c.priority[i], c.hour[i], c.weekday[i], c.cust_recent[i], a.log_tenure[j],
            a.handling[j], p.load, p.proficiency, speaks, style, p.proficiency * c.complexity[i],
            neg * a.handling[j], a.rate[j], a.log_n[j], p.ai_rate, p.ai_log_n, a.handle_ratio[j], a.csat[j]]
    return np.column_stack([np.asarray(x, dtype=f32) for x in cols]).astype(f32)
