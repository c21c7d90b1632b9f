"""Eligibility and retrieval: which pairs may be assigned, and which are worth scoring.

Hard rules (:mod:`assign.eligibility`, the one definition): the agent speaks the contact's
language (optional), has proficiency at least the minimum on the contact's intent (a missing
skill is 0, never eligible), and has free capacity on the contact's channel.

Retrieval for large ticks ranks eligible pairs by a cheap value (proficiency plus aging plus
fairness) *net of congestion*. Naive top-K lists fail when good agents are good for everyone:
every contact lists the same few agents and most contacts lose their whole list. So a short,
bounded auction on the cheap values first prices each agent-channel by how contested it is;
then every contact keeps its top-K agents by value minus price, every agent-channel keeps its
top-K contacts by value minus the contact's profit, and the auction's own assignment is kept.
Those are the pairs with the smallest reduced cost, the ones an optimal solution uses.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from assign.eligibility import skilled as is_skilled
from assign.schema import Agents, Contacts
from assign.scorer import Prior

#: Auction bid increment, relative to the spread of cheap values: coarse prices, fast convergence.
AUCTION_EPS = 1e-2


@dataclass(frozen=True, eq=False)
class ContactTerms:
    """What retrieval reads of each contact (rows in canonical order): the codes eligibility
    uses, ``neg_sentiment`` = max(-sentiment, 0), and ``term``, the contact's weighted value
    term (aging)."""

    language: np.ndarray
    intent: np.ndarray
    channel: np.ndarray
    style: np.ndarray
    neg_sentiment: np.ndarray
    term: np.ndarray

    @classmethod
    def of(cls, contacts: Contacts, *, term: np.ndarray) -> ContactTerms:
        return cls(language=contacts.language, intent=contacts.intent, channel=contacts.channel,
                   style=contacts.style, neg_sentiment=np.maximum(-contacts.sentiment, 0.0), term=term)


@dataclass(frozen=True, eq=False)
class AgentTerms:
    """What retrieval reads of each agent (rows in canonical order): language and skill
    tables, style, sentiment handling, ``free`` (n_agents, n_channels) and ``term``, the
    agent's weighted value term (fairness)."""

    speaks: np.ndarray
    skill: np.ndarray
    style: np.ndarray
    sentiment_handling: np.ndarray
    free: np.ndarray
    term: np.ndarray

    @classmethod
    def of(cls, agents: Agents, *, term: np.ndarray) -> AgentTerms:
        return cls(speaks=agents.speaks, skill=agents.skill, style=agents.style,
                   sentiment_handling=agents.sentiment_handling, free=agents.free, term=term)


@dataclass(frozen=True, eq=False)
class Candidates:
    """Candidate pairs in canonical order (contact row, then agent row) and per-contact flags."""

    contact: np.ndarray
    agent: np.ndarray
    cheap: np.ndarray
    skilled: np.ndarray   # per contact: some agent passes language and skill (capacity aside)
    n_eligible: int       # eligible pairs before pruning
    pruned: bool


@njit(cache=True)
def _eligible(c_lang, c_intent, c_chan, c_style, c_neg, c_term, speaks_t, skill_t, prior_t, a_style,
              a_sent, style_bonus, sentiment_coef, free_t, a_term, min_prof, require_language, w_score,
              c_weight, extra_t):
    """CSR of eligible (contact, agent) pairs, agents ascending within a contact.

    Eligibility depends only on (intent, language, channel), so each such group's agent list
    is built once and copied to its contacts; only the pair terms are computed per pair.
    ``c_weight`` (n, R) and ``extra_t`` (R, n_intents, n_agents): the prior's low-rank
    contact part (R = 0: none).
    """
    n, m = len(c_lang), len(a_term)
    n_lang, n_chan = speaks_t.shape[0], free_t.shape[0]
    group = (c_intent * n_lang + c_lang) * n_chan + c_chan
    n_groups = skill_t.shape[0] * n_lang * n_chan
    g_start = np.full(n_groups, -1, dtype=np.int64)
    g_len = np.zeros(n_groups, dtype=np.int64)
    g_skilled = np.zeros(n_groups, dtype=np.bool_)
    members = np.empty(0, dtype=np.int64)
    used = 0
    for i in range(n):
        g = group[i]
        if g_start[g] >= 0:
            continue
        prof, spk, fr = skill_t[c_intent[i]], speaks_t[c_lang[i]], free_t[c_chan[i]]
        if used + m > len(members):
            grown = np.empty(max(2 * len(members), used + m), dtype=np.int64)
            grown[:used] = members[:used]
            members = grown
        g_start[g] = used
        for j in range(m):
            if not is_skilled(prof[j], spk[j], min_prof, require_language):
                continue
            g_skilled[g] = True
            if fr[j] > 0:
                members[used] = j
                used += 1
        g_len[g] = used - g_start[g]
    indptr = np.zeros(n + 1, dtype=np.int64)
    skilled = np.zeros(n, dtype=np.bool_)
    for i in range(n):
        indptr[i + 1] = indptr[i] + g_len[group[i]]
        skilled[i] = g_skilled[group[i]]
    agent = np.empty(indptr[n], dtype=np.int64)
    cheap = np.empty(indptr[n], dtype=np.float64)
    n_rank = extra_t.shape[0]
    for i in range(n):
        g, k = group[i], indptr[i]
        pri = prior_t[c_intent[i]]
        cs, neg, ct = c_style[i], c_neg[i] * sentiment_coef, c_term[i]
        for t in range(g_len[g]):
            j = members[g_start[g] + t]
            est = pri[j] + neg * a_sent[j]
            for r in range(n_rank):
                est += c_weight[i, r] * extra_t[r, c_intent[i], j]
            if cs >= 0 and cs == a_style[j]:
                est += style_bonus
            agent[k] = j
            cheap[k] = w_score * est + ct + a_term[j]
            k += 1
    return indptr, agent, cheap, skilled


@njit(cache=True)
def _auction(indptr, res, value, capacity, eps, max_bids):
    """Bounded forward auction with capacities (Bertsekas). Returns resource prices and each
    contact's arc (-1 when it holds none). Used only to price congestion; not to decide."""
    n = len(indptr) - 1
    n_res = len(capacity)
    offset = np.zeros(n_res + 1, dtype=np.int64)
    for r in range(n_res):
        offset[r + 1] = offset[r] + capacity[r]
    holder = np.full(offset[n_res], -1, dtype=np.int64)
    held_bid = np.zeros(offset[n_res], dtype=np.float64)
    n_held = np.zeros(n_res, dtype=np.int64)
    price = np.zeros(n_res, dtype=np.float64)
    arc_of = np.full(n, -1, dtype=np.int64)
    stack = np.empty(n + max_bids + 1, dtype=np.int64)
    top = 0
    for i in range(n - 1, -1, -1):
        if indptr[i + 1] > indptr[i]:
            stack[top] = i
            top += 1
    bids = 0
    while top > 0 and bids < max_bids:
        top -= 1
        i = stack[top]
        best, second, best_k = -1e300, 0.0, -1
        for k in range(indptr[i], indptr[i + 1]):
            net = value[k] - price[res[k]]
            if net > best:
                if best > second:
                    second = best
                best, best_k = net, k
            elif net > second:
                second = net
        if best_k < 0 or best <= 0.0:
            continue  # staying unassigned is worth as much: give up
        r = res[best_k]
        bid = price[r] + best - second + eps
        bids += 1
        if n_held[r] < capacity[r]:
            slot = offset[r] + n_held[r]
            n_held[r] += 1
        else:
            slot, low = -1, 1e300
            for s in range(offset[r], offset[r + 1]):
                if held_bid[s] < low:
                    low, slot = held_bid[s], s
            out = holder[slot]
            arc_of[out] = -1
            stack[top] = out
            top += 1
        holder[slot] = i
        held_bid[slot] = bid
        arc_of[i] = best_k
        if n_held[r] == capacity[r]:
            low = 1e300
            for s in range(offset[r], offset[r + 1]):
                if held_bid[s] < low:
                    low = held_bid[s]
            price[r] = low
    return price, arc_of


@njit(cache=True)
def _insert(buf_val, buf_idx, count, k, val, idx):
    """Keep the k best (value desc, earlier index first) in a small sorted buffer."""
    if count < k:
        pos = count
        count += 1
    elif val > buf_val[k - 1]:
        pos = k - 1
    else:
        return count
    while pos > 0 and buf_val[pos - 1] < val:
        buf_val[pos] = buf_val[pos - 1]
        buf_idx[pos] = buf_idx[pos - 1]
        pos -= 1
    buf_val[pos] = val
    buf_idx[pos] = idx
    return count


@njit(cache=True)
def _select(indptr, res, value, price, arc_of, n_res, top_k):
    """Keep each contact's top-K arcs by value - price, each resource's top-K by value - profit,
    and the auction's arcs."""
    n = len(indptr) - 1
    keep = np.zeros(len(res), dtype=np.bool_)
    r_val = np.empty(top_k, dtype=np.float64)
    r_idx = np.empty(top_k, dtype=np.int64)
    s_val = np.empty((n_res, top_k), dtype=np.float64)
    s_idx = np.empty((n_res, top_k), dtype=np.int64)
    s_cnt = np.zeros(n_res, dtype=np.int64)
    for i in range(n):
        cnt = 0
        profit = 0.0
        for k in range(indptr[i], indptr[i + 1]):
            net = value[k] - price[res[k]]
            if net > profit:
                profit = net
            cnt = _insert(r_val, r_idx, cnt, top_k, net, k)
        for t in range(cnt):
            keep[r_idx[t]] = True
        for k in range(indptr[i], indptr[i + 1]):
            r = res[k]
            s_cnt[r] = _insert(s_val[r], s_idx[r], s_cnt[r], top_k, value[k] - profit, k)
        if arc_of[i] >= 0:
            keep[arc_of[i]] = True
    for r in range(n_res):
        for t in range(s_cnt[r]):
            keep[s_idx[r, t]] = True
    return keep


def find_candidates(*, contacts: ContactTerms, agents: AgentTerms, prior: Prior, min_proficiency: float,
                    require_language: bool, w_score: float, top_k: int, prune: bool) -> Candidates:
    """Eligible pairs (all of them, or the pruned set) in row-major order.

    ``agents.skill`` decides eligibility; ``prior`` is the scorer's cheap linear estimate of
    a pair's score (see :class:`assign.scorer.Prior`), rows in the same contact and agent order. The
    cheap value of a pair is ``w_score * prior + contacts.term + agents.term``. A resource is
    one agent on one channel (``agents.free`` is (n_agents, n_channels)).
    """
    c, a = contacts, agents
    n_channels = a.free.shape[1]
    if prior.contact_weight is not None and prior.contact_tables is not None:
        c_weight = np.ascontiguousarray(prior.contact_weight, dtype=np.float64)
        extra_t = np.ascontiguousarray(np.transpose(prior.contact_tables, (0, 2, 1)), dtype=np.float64)
    else:
        c_weight = np.zeros((len(c.language), 0))
        extra_t = np.zeros((0,) + a.skill.T.shape)
    indptr, agent, cheap, skilled = _eligible(
        c.language.astype(np.int64), c.intent.astype(np.int64), c.channel.astype(np.int64),
        c.style.astype(np.int64), c.neg_sentiment.astype(np.float64), c.term.astype(np.float64),
        np.ascontiguousarray(a.speaks.T, dtype=np.bool_), np.ascontiguousarray(a.skill.T, dtype=np.float64),
        np.ascontiguousarray(prior.agent_intent.T, dtype=np.float64), a.style.astype(np.int64),
        a.sentiment_handling.astype(np.float64), float(prior.style_bonus), float(prior.sentiment_coef),
        np.ascontiguousarray(a.free.T.astype(np.int64)), a.term.astype(np.float64),
        float(min_proficiency), bool(require_language), float(w_score), c_weight, extra_t)
    contact = np.repeat(np.arange(len(c.language), dtype=np.int64), np.diff(indptr))
    n_eligible = len(agent)
    if prune and n_eligible:
        res = agent * n_channels + c.channel.astype(np.int64)[contact]
        spread = float(cheap.max() - cheap.min()) or 1.0
        price, arc_of = _auction(indptr, res, cheap, a.free.reshape(-1).astype(np.int64),
                                 AUCTION_EPS * spread, 20 * len(c.language) + 1000)
        keep = _select(indptr, res, cheap, price, arc_of, a.free.size, int(top_k))
        contact, agent, cheap = contact[keep], agent[keep], cheap[keep]
    return Candidates(contact=contact, agent=agent, cheap=cheap, skilled=skilled,
                      n_eligible=int(n_eligible), pruned=bool(prune and n_eligible))
