"""A synthetic history: arrivals routed by a logging policy, outcomes drawn from the truth.

Capacity model (simple on purpose; the simulator owns the full queue): contacts are served
first come, first served. Each agent has ``capacity`` slots per channel; a contact takes the
earliest slot that frees among agents on shift who speak its language (any agent of the
channel when none does), and abandons when that is later than its patience. Among the agents
free at that moment the logging policy picks one by a softmax on proficiency mixed with a
uniform draw (``beta``, ``epsilon``); the probability of the logged choice is ``propensity``.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from numba import njit
from tqdm import tqdm

from assign.constants import DAY_S, HOUR_S
from assign.history import conform_history, epoch_seconds, repeat_within
from assign.schema import CHANNELS
from assign.world.centre import CHANNEL_HANDLE_S, World, working_on
from assign.world.truth import truth_one

MAX_SLOTS = 4


@njit(cache=True)
def _on_shift(j, t, shift_start, shift_len, off, start_wd):
    day = math.floor(t / DAY_S)
    hour = (t - day * DAY_S) / HOUR_S
    since = (hour - shift_start[j]) % 24.0
    d = day if hour >= shift_start[j] else day - 1
    wd = (start_wd + d) % 7
    return since < shift_len[j] and not off[j, wd]


@njit(cache=True)
def _first_staffed(t, deadline, c, capacity, shift_start, shift_len, off, start_wd):
    """The first time from ``t`` (in 15-minute steps) when some agent of channel ``c`` is on
    shift; -1.0 when none is before ``deadline``."""
    t_look = t
    while t_look <= deadline:
        for j in range(capacity.shape[0]):
            if capacity[j, c] > 0 and _on_shift(j, t_look, shift_start, shift_len, off, start_wd):
                return t_look
        t_look += 900.0
    return -1.0


@njit(cache=True)
def _eligible_free_at(t_look, c, lang, it, capacity, speaks, skill, shift_start, shift_len, off, start_wd,
                      busy, elig, free_at):
    """Skills-based eligibility at ``t_look`` (skilled agents who speak the language; relaxed
    to any agent speaking it, then to any agent of the channel, when nobody qualifies) into
    ``elig``, each eligible agent's earliest free slot into ``free_at``; returns the earliest."""
    n_a = capacity.shape[0]
    level = 0
    for j in range(n_a):
        elig[j] = capacity[j, c] > 0 and _on_shift(j, t_look, shift_start, shift_len, off, start_wd)
        if elig[j] and speaks[j, lang]:
            if skill[j, it] > 0.0:
                level = 2
            elif level < 1:
                level = 1
    best = np.inf
    for j in range(n_a):
        if elig[j] and level >= 1 and not speaks[j, lang]:
            elig[j] = False
        if elig[j] and level == 2 and skill[j, it] <= 0.0:
            elig[j] = False
        free_at[j] = np.inf
        if elig[j]:
            for s in range(capacity[j, c]):
                if busy[j, c, s] < free_at[j]:
                    free_at[j] = busy[j, c, s]
            if free_at[j] < best:
                best = free_at[j]
    return best


@njit(cache=True)
def _choose(t0, it, u, skill, elig, free_at, beta, epsilon, w):
    """The logging policy's draw among the eligible agents free at ``t0``: softmax on
    proficiency mixed with uniform (``epsilon``). Returns (agent, its probability)."""
    tot = 0.0
    k = 0
    for j in range(len(w)):
        w[j] = 0.0
        if elig[j] and free_at[j] <= t0:
            w[j] = math.exp(beta * skill[j, it])
            tot += w[j]
            k += 1
    tot2 = 0.0
    for j in range(len(w)):
        if w[j] > 0.0:
            w[j] = (1.0 - epsilon) * w[j] / tot + epsilon / k
            tot2 += w[j]
    target = u * tot2
    acc = 0.0
    pick = -1
    for j in range(len(w)):
        if w[j] > 0.0:
            acc += w[j]
            pick = j
            if target < acc:
                break
    return pick, w[pick] / tot2


@njit(cache=True)
def _route(arrival, channel, intent, language, style, complexity, sentiment, patience,
           u_choice, u_res, u_csat, z_handle,
           capacity, speaks, skill, a_style, tenure, handling, ability, speed,
           shift_start, shift_len, off, start_wd,
           coef, intent_base, intent_handle, channel_handle, beta, epsilon, busy):
    """First come, first served through the logging policy; outcomes from the truth."""
    n = len(arrival)
    n_a = capacity.shape[0]
    agent = np.full(n, -1, np.int64)
    wait = np.zeros(n)
    load_out = np.zeros(n)
    prop = np.full(n, np.nan)
    p_res = np.full(n, np.nan)
    csat_m = np.full(n, np.nan)
    ht_m = np.full(n, np.nan)
    resolved = np.zeros(n, np.bool_)
    csat = np.full(n, np.nan)
    handle = np.full(n, np.nan)
    free_at = np.empty(n_a)
    elig = np.zeros(n_a, np.bool_)
    w = np.zeros(n_a)
    sigma = coef[23]
    for i in range(n):
        t, c, lang = arrival[i], channel[i], language[i]
        t_look = _first_staffed(t, t + patience[i], c, capacity, shift_start, shift_len, off, start_wd)
        if t_look < 0.0:
            wait[i] = patience[i]
            continue
        best = _eligible_free_at(t_look, c, lang, intent[i], capacity, speaks, skill, shift_start, shift_len, off,
                                 start_wd, busy, elig, free_at)
        t0 = max(t_look, best)
        if t0 > t + patience[i]:
            wait[i] = patience[i]
            continue
        j, prop[i] = _choose(t0, intent[i], u_choice[i], skill, elig, free_at, beta, epsilon, w)
        slot = 0
        ld = 0
        for s in range(capacity[j, c]):
            if busy[j, c, s] > t0:
                ld += 1
            if busy[j, c, s] < busy[j, c, slot]:
                slot = s
        sm = 1.0 if (style[i] >= 0 and style[i] == a_style[j]) else 0.0
        p, cs, hm = truth_one(coef, intent_base, intent_handle, channel_handle, intent[i], c,
                              complexity[i], sentiment[i], speaks[j, lang], sm, skill[j, intent[i]],
                              tenure[j] + t0 / DAY_S, handling[j], ability[j], speed[j], float(ld))
        agent[i] = j
        wait[i] = t0 - t
        load_out[i] = ld
        p_res[i] = p
        csat_m[i] = cs
        ht_m[i] = hm
        resolved[i] = u_res[i] < p
        q = (cs - 1.0) / 4.0
        score = 1.0
        for r in range(4):
            if u_csat[i, r] < q:
                score += 1.0
        csat[i] = score
        handle[i] = hm * math.exp(sigma * z_handle[i] - 0.5 * sigma * sigma)
        busy[j, c, slot] = t0 + handle[i]
    return agent, wait, load_out, prop, p_res, csat_m, ht_m, resolved, csat, handle


def generate_history(world: World, *, days: int, seed: int, progress: bool = False,
                     beta: float = 4.0, epsilon: float = 0.1, survey_rate: float = 0.35) -> pd.DataFrame:
    """Route ``days`` days of arrivals through the logging policy; returns a history that
    passes :func:`assign.history.conform_history`, ``truth_*`` columns filled."""
    if not isinstance(days, (int, np.integer)) or days < 1:
        from assign.errors import InputError

        raise InputError([f"days must be a whole number >= 1, got {days!r}"], what="history parameters")
    rng = np.random.default_rng(seed)
    a = world.arrays
    n_a = world.n_agents
    busy = np.zeros((n_a, len(CHANNELS), MAX_SLOTS))
    frames = []
    ag_ids = world.agents["agent_id"].to_numpy(object)
    ag_langs = np.array([";".join(x) for x in world.agents["languages"]], dtype=object)
    ag_style = world.agents["style"].to_numpy(object)
    for d in tqdm(range(days), desc="simulating days", unit="day", disable=not progress):
        on = working_on(world.agents, day=d)  # hires from their hire day, leavers until their leave day
        capacity = a.capacity if on.all() else np.where(on[:, None], a.capacity, 0)
        arr = world.sample_arrivals(rng=rng, start_s=d * DAY_S, end_s=(d + 1) * DAY_S)
        cs = world.contacts_block(arr)
        n = len(arr)
        out = _route(arr["arrival_s"].to_numpy(float), cs.channel, cs.intent, cs.language, cs.style,
                     cs.complexity, cs.sentiment, arr["patience_s"].to_numpy(float),
                     rng.random(n), rng.random(n), rng.random((n, 4)), rng.standard_normal(n),
                     capacity, a.speaks, a.skill, a.style, a.tenure_days, a.sentiment_handling,
                     a.ability, a.speed, a.shift_start_h, a.shift_len_h, a.off,
                     world.start.weekday(), world.coef, world.intent_base, world.intent_handle,
                     np.asarray(CHANNEL_HANDLE_S), float(beta), float(epsilon), busy)
        agent, wait, load, prop, p_res, csat_m, ht_m, resolved, csat, handle = out
        served = agent >= 0
        j = np.where(served, agent, 0)
        surveyed = rng.random(n) < survey_rate
        df = pd.DataFrame({
            "contact_id": arr["contact_id"],
            "arrival_at": pd.Timestamp(world.start) + pd.to_timedelta(arr["arrival_s"].to_numpy(), unit="s"),
            "channel": arr["channel"], "intent": arr["intent"], "language": arr["language"],
            "complexity": arr["complexity"], "urgency": arr["urgency"], "sentiment": arr["sentiment"],
            "style": arr["style"], "customer_id": arr["customer_id"], "customer_tier": arr["customer_tier"],
            "agent_id": np.where(served, ag_ids[j], None),
            "agent_tenure_days": np.where(served, a.tenure_days[j] + arr["arrival_s"].to_numpy() / DAY_S, np.nan),
            "agent_proficiency": np.where(served, a.skill[j, cs.intent], np.nan),
            "agent_sentiment_handling": np.where(served, a.sentiment_handling[j], np.nan),
            "agent_style": np.where(served, ag_style[j], None),
            "agent_languages": np.where(served, ag_langs[j], None),
            "agent_load": np.where(served, load, np.nan),
            "wait_s": wait,
            "abandoned": ~served,
            "handle_s": np.where(served, handle, np.nan),
            "resolved": pd.array(np.where(served, resolved, None), dtype="boolean"),
            "csat": np.where(served & surveyed, csat, np.nan),
            "propensity": prop,
            "truth_p_resolved": p_res, "truth_csat": csat_m, "truth_handle_s": ht_m,
        })
        frames.append(df)
    hist = pd.concat(frames, ignore_index=True)
    hist["repeat_72h"] = repeat_within(hist["customer_id"], epoch_seconds(hist["arrival_at"]))
    return conform_history(hist)
