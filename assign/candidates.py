"""Eligibility and retrieval: which pairs may be assigned, and which are worth scoring.

Hard rules: the agent speaks the contact's language (optional), has proficiency at least the
minimum on the contact's intent (a missing skill is 0, never eligible), and has free capacity
on the contact's channel.

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
#: Auction bid increment, relative to the spread of cheap values: coarse prices, fast convergence.
AUCTION_EPS = 1e-2


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
def _eligible(c_lang, c_intent, c_chan, c_term, speaks_t, skill_t, free_t, a_term,
              min_prof, require_language, w_score):
    """CSR of eligible (contact, agent) pairs, agents ascending within a contact."""
    n, m = len(c_lang), len(a_term)
    cap = 1024
    agent = np.empty(cap, dtype=np.int64)
    cheap = np.empty(cap, dtype=np.float64)
    indptr = np.zeros(n + 1, dtype=np.int64)
    skilled = np.zeros(n, dtype=np.bool_)
    k = 0
    for i in range(n):
        prof = skill_t[c_intent[i]]
        spk = speaks_t[c_lang[i]]
        fr = free_t[c_chan[i]]
        for j in range(m):
            p = prof[j]
            if p <= 0.0 or p < min_prof:
                continue
            if require_language and not spk[j]:
                continue
            skilled[i] = True
            if fr[j] <= 0:
                continue
            if k == cap:
                cap *= 2
                agent2 = np.empty(cap, dtype=np.int64)
                cheap2 = np.empty(cap, dtype=np.float64)
                agent2[:k] = agent[:k]
                cheap2[:k] = cheap[:k]
                agent, cheap = agent2, cheap2
            agent[k] = j
            cheap[k] = w_score * p + c_term[i] + a_term[j]
            k += 1
        indptr[i + 1] = k
    return indptr, agent[:k].copy(), cheap[:k].copy(), skilled


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


def find_candidates(*, c_lang: np.ndarray, c_intent: np.ndarray, c_chan: np.ndarray, c_term: np.ndarray,
                    speaks: np.ndarray, skill: np.ndarray, free: np.ndarray, a_term: np.ndarray,
                    min_proficiency: float, require_language: bool, w_score: float, top_k: int,
                    prune: bool, n_channels: int = 3) -> Candidates:
    """Eligible pairs (all of them, or the pruned set) in row-major order.

    ``c_term`` / ``a_term`` are the per-contact and per-agent value terms (aging, fairness)
    already weighted; the cheap value of a pair is ``w_score * proficiency + c_term + a_term``.
    ``free`` is (n_agents, n_channels); a resource is one agent on one channel.
    """
    indptr, agent, cheap, skilled = _eligible(
        c_lang.astype(np.int64), c_intent.astype(np.int64), c_chan.astype(np.int64),
        c_term.astype(np.float64), np.ascontiguousarray(speaks.T), np.ascontiguousarray(skill.T),
        np.ascontiguousarray(free.T.astype(np.int64)), a_term.astype(np.float64),
        float(min_proficiency), bool(require_language), float(w_score))
    contact = np.repeat(np.arange(len(c_lang), dtype=np.int64), np.diff(indptr))
    n_eligible = len(agent)
    if prune and n_eligible:
        res = agent * n_channels + c_chan.astype(np.int64)[contact]
        spread = float(cheap.max() - cheap.min()) or 1.0
        price, arc_of = _auction(indptr, res, cheap, free.reshape(-1).astype(np.int64),
                                 AUCTION_EPS * spread, 20 * len(c_lang) + 1000)
        keep = _select(indptr, res, cheap, price, arc_of, free.size, int(top_k))
        contact, agent, cheap = contact[keep], agent[keep], cheap[keep]
    return Candidates(contact=contact, agent=agent, cheap=cheap, skilled=skilled,
                      n_eligible=int(n_eligible), pruned=bool(prune and n_eligible))
