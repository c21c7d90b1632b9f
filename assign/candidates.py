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

Eligibility depends on a contact only through its (intent, language, channel) group, so it is
decided once per group; retrieval reads every pair through its group (the agent-side part of
its cheap value precomputed per group member, the contact-side part per contact) and keeps
only the pruned pairs: memory grows with contacts + agents, not with their product (a
10,000 x 10,000 tick has 23M eligible pairs).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numba import njit

from assign import parallel
from assign.buckets import bucket
from assign.eligibility import skilled as is_skilled
from assign.schema import Agents, Contacts
from assign.scorer import Prior

#: Auction bid increment, relative to the spread of cheap values: coarse prices, fast convergence.
AUCTION_EPS = 1e-2
#: Ticks whose prior has a low-rank contact part (several multiply-adds a pair) and at most
#: this many eligible pairs compute every pair's cheap value once (16 bytes a pair) and scan
#: those, with an exact suffix bound; others compute values inside the group scans (memory
#: O(n + m)). Measured in docs/speed.md (fourth session): 1.6x on xgb-1000x1000's retrieval,
#: no gain without a contact part.
MATERIALISE_MAX_PAIRS = 2_000_000
#: Contacts (and resources) a thread must get before the top-K selection splits its scans over
#: threads (:mod:`assign.parallel`): below, the hand-off costs more than the scan.
MIN_CONTACTS_PER_THREAD = 256


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
    """Candidate pairs in canonical order (contact row, then agent row) and per-contact flags;
    ``cheap``, each pair's cheap value, is computed on first use (a tick does not read it)."""

    contact: np.ndarray
    agent: np.ndarray
    skilled: np.ndarray   # per contact: some agent passes language and skill (capacity aside)
    n_eligible: int       # eligible pairs before pruning
    pruned: bool
    cheap_of: tuple = ()  # (prior, contacts, agents, w_score): what ``cheap`` is computed from

    @cached_property
    def cheap(self) -> np.ndarray:
        prior, contacts, agents, w_score = self.cheap_of
        return _pair_cheap(self.contact, self.agent, prior=prior, contacts=contacts, agents=agents, w_score=w_score)


@njit(cache=True)
def _groups(c_lang, c_intent, c_chan, speaks_t, skill_t, free_t, min_prof, require_language):
    """Eligibility per (intent, language, channel) group, never per pair: each contact's group
    (``gid``), each group's agents with room in ascending order (``members[ptr[g]:ptr[g+1]]``),
    its intent and channel, and whether any agent passes language and skill (capacity aside)."""
    n, m = len(c_lang), speaks_t.shape[1]
    n_lang, n_chan = speaks_t.shape[0], free_t.shape[0]
    key = (c_intent * n_lang + c_lang) * n_chan + c_chan
    g_of_key = np.full(skill_t.shape[0] * n_lang * n_chan, -1, dtype=np.int64)
    gid = np.empty(n, dtype=np.int64)
    first = np.empty(n, dtype=np.int64)
    n_groups = 0
    for i in range(n):
        if g_of_key[key[i]] < 0:
            g_of_key[key[i]] = n_groups
            first[n_groups] = i
            n_groups += 1
        gid[i] = g_of_key[key[i]]
    ptr = np.zeros(n_groups + 1, dtype=np.int64)
    g_skilled = np.zeros(n_groups, dtype=np.bool_)
    members = np.empty(n_groups * m, dtype=np.int64)
    for g in range(n_groups):
        i = first[g]
        prof, spk, fr = skill_t[c_intent[i]], speaks_t[c_lang[i]], free_t[c_chan[i]]
        used = ptr[g]
        for j in range(m):
            if not is_skilled(prof[j], spk[j], min_prof, require_language):
                continue
            g_skilled[g] = True
            if fr[j] > 0:
                members[used] = j
                used += 1
        ptr[g + 1] = used
    g_intent = c_intent[first[:n_groups]]
    g_chan = c_chan[first[:n_groups]]
    return gid, ptr, members[:ptr[n_groups]].copy(), g_skilled, g_intent, g_chan


@njit(cache=True)
def _all_pairs(gid, ptr, members):
    """Every eligible pair as CSR (agents ascending within a contact): small ticks only."""
    n = len(gid)
    indptr = np.zeros(n + 1, dtype=np.int64)
    for i in range(n):
        indptr[i + 1] = indptr[i] + ptr[gid[i] + 1] - ptr[gid[i]]
    agent = np.empty(indptr[n], dtype=np.int64)
    for i in range(n):
        g = gid[i]
        agent[indptr[i]:indptr[i + 1]] = members[ptr[g]:ptr[g + 1]]
    return indptr, agent


@njit(cache=True)
def _member_terms(ptr, members, g_intent, g_chan, prior_t, a_term, a_sent, a_style, w_score, n_chan):
    """Each group's members ordered by their agent-side cheap value ``w_score * prior + agent
    term`` (``base``, descending; ties by agent), with their sentiment handling, style,
    resource and agent. Scans in this order stop as soon as no later member can matter."""
    base = np.empty(len(members), dtype=np.float64)
    sent = np.empty(len(members), dtype=np.float64)
    style = np.empty(len(members), dtype=np.int64)
    res = np.empty(len(members), dtype=np.int64)
    agent = np.empty(len(members), dtype=np.int64)
    for g in range(len(ptr) - 1):
        pri = prior_t[g_intent[g]]
        seg = members[ptr[g]:ptr[g + 1]]
        b = np.empty(len(seg), dtype=np.float64)
        for x in range(len(seg)):
            b[x] = -(w_score * pri[seg[x]] + a_term[seg[x]])
        order = np.argsort(b, kind="mergesort")
        for x in range(len(seg)):
            t, j = ptr[g] + x, seg[order[x]]
            base[t] = -b[order[x]]
            sent[t] = a_sent[j]
            style[t] = a_style[j]
            res[t] = j * n_chan + g_chan[g]
            agent[t] = j
    return base, sent, style, res, agent


@njit(cache=True, inline="always")
def _cheap(base, mf, style, t, c_term, cw, c_style, style_w):
    """A pair's cheap value: the member's agent-side terms plus the contact's plus the pair
    terms ``sum_r cw[r] * mf[t, r]`` (sentiment handling, the prior's low-rank contact part)."""
    v = base[t] + c_term
    for r in range(len(cw)):
        v += cw[r] * mf[t, r]
    if c_style >= 0 and c_style == style[t]:
        v += style_w
    return v


def _materialise(gid, ptr, base, mf, style, c_term, cw, c_style, style_w, threads=None):
    """Every eligible pair's cheap value, computed once (small grids): contact i's pair with
    member t is ``vals[off[i] + t]``; ``smax`` is the largest value from there to the end of
    the contact's row (members in scan order), the exact bound that stops a scan. Contacts
    in ranges over ``threads`` threads (None: :func:`assign.parallel.threads`): each row is
    written by one call, the same bits."""
    off, total = _row_offsets(gid, ptr)
    vals = np.empty(total, dtype=np.float64)
    smax = np.empty(total, dtype=np.float64)

    def rows(lo: int, hi: int) -> None:
        _materialise_rows(lo, hi, gid, ptr, base, mf, style, c_term, cw, c_style, style_w, off, vals, smax)

    n_threads = parallel.threads() if threads is None else threads
    parallel.run(rows, parallel.ranges(len(gid), parts=n_threads, min_rows=MIN_CONTACTS_PER_THREAD),
                 threads=n_threads)
    return off, vals, smax


@njit(cache=True)
def _row_offsets(gid, ptr):
    """Where each contact's row starts in the materialised values (less its group's first member)."""
    off = np.empty(len(gid), dtype=np.int64)
    total = 0
    for i in range(len(gid)):
        off[i] = total - ptr[gid[i]]
        total += ptr[gid[i] + 1] - ptr[gid[i]]
    return off, total


@njit(cache=True, nogil=True)
def _materialise_rows(lo, hi, gid, ptr, base, mf, style, c_term, cw, c_style, style_w, off, vals, smax):
    """Rows ``lo:hi`` of :func:`_materialise`."""
    for i in range(lo, hi):
        g, o = gid[i], off[i]
        ct, cw_i, cs = c_term[i], cw[i], c_style[i]
        for t in range(ptr[g], ptr[g + 1]):
            vals[o + t] = _cheap(base, mf, style, t, ct, cw_i, cs, style_w)
        run = -np.inf
        for t in range(ptr[g + 1] - 1, ptr[g] - 1, -1):
            run = max(run, vals[o + t])
            smax[o + t] = run


@njit(cache=True)
def _auction(gid, ptr, base, mf, style, res, c_term, cw, c_style, c_up, style_w, capacity, eps, max_bids,
             mat, off, vals, smax):
    """Bounded forward auction with capacities (Bertsekas) on the cheap values, read through
    the groups. Returns resource prices and each contact's member index (-1 when it holds
    none). Used only to price congestion; not to decide. A bid's scan stops at the first
    member whose best possible net value (``base + c_term + c_up``, prices being >= 0; with
    ``mat``, the materialised row's suffix maximum ``smax``) cannot beat the second best so
    far: the same bid as a full scan, in the members' order."""
    n = len(gid)
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
        if ptr[gid[i] + 1] > ptr[gid[i]]:
            stack[top] = i
            top += 1
    bids = 0
    while top > 0 and bids < max_bids:
        top -= 1
        i = stack[top]
        g = gid[i]
        ct, cw_i, cs, up = c_term[i], cw[i], c_style[i], c_term[i] + c_up[i]
        off_i = off[i] if mat else 0
        best, second, best_t = -1e300, 0.0, -1
        for t in range(ptr[g], ptr[g + 1]):
            if mat:
                if smax[off_i + t] <= second:
                    break
                net = vals[off_i + t] - price[res[t]]
            else:
                if base[t] + up <= second:
                    break
                net = _cheap(base, mf, style, t, ct, cw_i, cs, style_w) - price[res[t]]
            if net > best:
                if best > second:
                    second = best
                best, best_t = net, t
            elif net > second:
                second = net
        if best_t < 0 or best <= 0.0:
            continue  # staying unassigned is worth as much: give up
        r = res[best_t]
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
        arc_of[i] = best_t
        if n_held[r] == capacity[r]:
            low = 1e300
            for s in range(offset[r], offset[r + 1]):
                if held_bid[s] < low:
                    low = held_bid[s]
            price[r] = low
    return price, arc_of


@njit(cache=True)
def _insert(buf_val, buf_idx, count, k, val, idx):
    """Keep the k best (value desc, then smaller index) in a small sorted buffer, whatever
    the order they arrive in."""
    if count < k:
        pos = count
        count += 1
    elif val > buf_val[k - 1] or (val == buf_val[k - 1] and idx < buf_idx[k - 1]):
        pos = k - 1
    else:
        return count
    while pos > 0 and (buf_val[pos - 1] < val or (buf_val[pos - 1] == val and buf_idx[pos - 1] > idx)):
        buf_val[pos] = buf_val[pos - 1]
        buf_idx[pos] = buf_idx[pos - 1]
        pos -= 1
    buf_val[pos] = val
    buf_idx[pos] = idx
    return count


def _select(gid, ptr, base, mf, style, res, agent, c_term, cw, c_style, c_up, style_w, price, arc_of, n_res,
            n_chan, top_k, mat, off, vals, smax, threads=None):
    """The kept pairs as (contact, agent), unsorted and possibly repeated (:func:`_compact`
    sorts them): each contact's top-K agents by value - price, each resource's top-K contacts
    by value - the contact's profit, and the auction's arcs; memory O((contacts + resources) *
    K), whatever the grid. The same pairs as the single-threaded reference selection
    (``tests/test_candidates.py``), on ``threads`` threads (None: :func:`assign.parallel.threads`): contacts cut
    into contiguous ranges for their top-K, then resources cut into ranges for theirs. Each
    contact's and each resource's top-K is the exact top-K whatever the scan order (ties by
    index), so the split changes nothing but the wall time. Both scans read in an order that
    bounds what is left (a group's members by descending ``base``; its contacts by descending
    ``c_term - profit``) and stop once no later one can enter a top-K or raise a profit."""
    n, n_threads = len(gid), parallel.threads() if threads is None else threads
    profit = np.zeros(n, dtype=np.float64)
    kept = np.empty((n, top_k + 1), dtype=np.int64)
    n_kept = np.zeros(n, dtype=np.int64)

    def contacts(lo: int, hi: int) -> None:
        _contact_top_k(lo, hi, gid, ptr, base, mf, style, res, agent, c_term, cw, c_style, c_up, style_w, price,
                       arc_of, top_k, mat, off, vals, smax, profit, kept, n_kept)

    parallel.run(contacts, parallel.ranges(n, parts=n_threads, min_rows=MIN_CONTACTS_PER_THREAD), threads=n_threads)
    order, g_ptr, g_up = _group_orders(gid, len(ptr) - 1, c_term, c_up, profit)
    s_idx = np.empty((n_res, top_k), dtype=np.int64)
    s_cnt = np.zeros(n_res, dtype=np.int64)

    def resources(lo: int, hi: int) -> None:
        _resource_top_k_range(lo, hi, ptr, base, mf, style, res, c_term, cw, c_style, style_w, profit, order,
                              g_ptr, g_up, top_k, mat, off, vals, s_idx, s_cnt)

    parallel.run(resources, parallel.ranges(n_res, parts=n_threads, min_rows=MIN_CONTACTS_PER_THREAD),
                 threads=n_threads)
    return _gather(kept, n_kept, s_idx, s_cnt, n_chan)


@njit(cache=True, nogil=True)
def _contact_top_k(lo, hi, gid, ptr, base, mf, style, res, agent, c_term, cw, c_style, c_up, style_w, price,
                   arc_of, top_k, mat, off, vals, smax, profit, kept, n_kept):
    """Contacts ``lo:hi`` of the reference selection's first loop: ``profit[i]`` and the agents
    kept for contact ``i`` (its top-K by value - price, then the auction's arc) in ``kept[i]``."""
    r_val = np.empty(top_k, dtype=np.float64)
    r_idx = np.empty(top_k, dtype=np.int64)
    for i in range(lo, hi):
        g = gid[i]
        ct, cw_i, cs, up = c_term[i], cw[i], c_style[i], c_term[i] + c_up[i]
        off_i = off[i] if mat else 0
        cnt = 0
        best = 0.0
        for t in range(ptr[g], ptr[g + 1]):
            bound = smax[off_i + t] if mat else base[t] + up
            if bound <= best and cnt == top_k and bound < r_val[top_k - 1]:
                break
            net = (vals[off_i + t] if mat else _cheap(base, mf, style, t, ct, cw_i, cs, style_w)) - price[res[t]]
            if net > best:
                best = net
            if cnt < top_k or net >= r_val[top_k - 1]:
                cnt = _insert(r_val, r_idx, cnt, top_k, net, t)
        profit[i] = best
        for x in range(cnt):
            kept[i, x] = agent[r_idx[x]]
        if arc_of[i] >= 0:
            kept[i, cnt] = agent[arc_of[i]]
            cnt += 1
        n_kept[i] = cnt


@njit(cache=True)
def _group_orders(gid, n_groups, c_term, c_up, profit):
    """Each group's contacts by descending ``c_term - profit`` (ties: contact order), as
    ``order[g_ptr[g]:g_ptr[g + 1]]``, and the group's largest ``c_up``."""
    g_ptr, by_group = bucket(gid, n_groups)
    key = c_term - profit
    order = np.empty(len(gid), dtype=np.int64)
    g_up = np.full(n_groups, -np.inf)
    for g in range(n_groups):
        mine = by_group[g_ptr[g]:g_ptr[g + 1]]
        order[g_ptr[g]:g_ptr[g + 1]] = mine[np.argsort(-key[mine], kind="mergesort")]
        for i in mine:
            g_up[g] = max(g_up[g], c_up[i])
    return order, g_ptr, g_up


@njit(cache=True, nogil=True)
def _resource_top_k_range(lo, hi, ptr, base, mf, style, res, c_term, cw, c_style, style_w, profit, order, g_ptr,
                          g_up, top_k, mat, off, vals, s_idx, s_cnt):
    """The reference's resource scan for the resources ``lo:hi`` only (their rows of ``s_idx`` and
    ``s_cnt``): every group's members are read, those of other resources skipped."""
    s_val = np.empty((hi - lo, top_k), dtype=np.float64)
    s_min = np.full(hi - lo, -np.inf)
    for g in range(len(ptr) - 1):
        mine = order[g_ptr[g]:g_ptr[g + 1]]
        for t in range(ptr[g], ptr[g + 1]):
            r = res[t]
            if r < lo or r >= hi:
                continue
            q = r - lo
            for i in mine:
                if base[t] + (c_term[i] - profit[i]) + g_up[g] < s_min[q]:
                    break
                v = ((vals[off[i] + t] if mat else _cheap(base, mf, style, t, c_term[i], cw[i], c_style[i], style_w))
                     - profit[i])
                if v >= s_min[q]:
                    s_cnt[r] = _insert(s_val[q], s_idx[r], s_cnt[r], top_k, v, i)
                    if s_cnt[r] == top_k:
                        s_min[q] = s_val[q, top_k - 1]


@njit(cache=True)
def _gather(kept, n_kept, s_idx, s_cnt, n_chan):
    """The kept pairs as (contact, agent) arrays: the contacts' lists, then the resources'."""
    total = n_kept.sum() + s_cnt.sum()
    out_c = np.empty(total, dtype=np.int64)
    out_a = np.empty(total, dtype=np.int64)
    n_out = 0
    for i in range(len(n_kept)):
        for x in range(n_kept[i]):
            out_c[n_out], out_a[n_out] = i, kept[i, x]
            n_out += 1
    for r in range(len(s_cnt)):
        for x in range(s_cnt[r]):
            out_c[n_out], out_a[n_out] = s_idx[r, x], r // n_chan
            n_out += 1
    return out_c, out_a


def _compact(pc, pa, n, threads=None):
    """Pairs (contact, agent) sorted by contact then agent, repeats removed; each contact's
    row sorted by one call, rows in ranges over ``threads`` threads (None: the context's)."""
    indptr, by_contact = bucket(pc, n)
    agent = pa[by_contact].astype(np.int64)
    keep = np.empty(len(agent), dtype=np.bool_)

    def rows(lo: int, hi: int) -> None:
        _sort_rows(lo, hi, indptr, agent, keep)

    n_threads = parallel.threads() if threads is None else threads
    parallel.run(rows, parallel.ranges(n, parts=n_threads, min_rows=MIN_CONTACTS_PER_THREAD), threads=n_threads)
    contact = np.repeat(np.arange(n, dtype=np.int64), np.diff(indptr))
    return contact[keep], agent[keep]


@njit(cache=True, nogil=True)
def _sort_rows(lo, hi, indptr, agent, keep):
    """Rows ``lo:hi``: each row's agents sorted in place, ``keep`` False on repeats."""
    for i in range(lo, hi):
        a, b = indptr[i], indptr[i + 1]
        agent[a:b] = np.sort(agent[a:b])
        for x in range(a, b):
            keep[x] = x == a or agent[x] != agent[x - 1]


def find_candidates(*, contacts: ContactTerms, agents: AgentTerms, prior: Prior, min_proficiency: float,
                    require_language: bool, w_score: float, top_k: int, prune: bool) -> Candidates:
    """Eligible pairs (all of them, or the pruned set) in row-major order.

    ``agents.skill`` decides eligibility; ``prior`` is the scorer's cheap linear estimate of
    a pair's score (see :class:`assign.scorer.Prior`), rows in the same contact and agent order. The
    cheap value of a pair is ``w_score * prior + contacts.term + agents.term``. A resource is
    one agent on one channel (``agents.free`` is (n_agents, n_channels)). Pruning reads the
    eligible pairs through their (intent, language, channel) groups and never builds the
    full list: memory grows with contacts + agents, not with their product.
    """
    c, a = contacts, agents
    n_channels = a.free.shape[1]
    gid, ptr, members, g_skilled, g_intent, g_chan = _groups(
        c.language.astype(np.int64), c.intent.astype(np.int64), c.channel.astype(np.int64),
        np.ascontiguousarray(a.speaks.T, dtype=np.bool_), np.ascontiguousarray(a.skill.T, dtype=np.float64),
        np.ascontiguousarray(a.free.T.astype(np.int64)), float(min_proficiency), bool(require_language))
    skilled = g_skilled[gid]
    sizes = np.diff(ptr)[gid]
    n_eligible = int(sizes.sum())
    terms = _member_terms(ptr, members, g_intent, g_chan, np.ascontiguousarray(prior.agent_intent.T, dtype=np.float64),
                          a.term.astype(np.float64), a.sentiment_handling.astype(np.float64),
                          a.style.astype(np.int64), float(w_score), n_channels)
    c_term = c.term.astype(np.float64)
    c_style = c.style.astype(np.int64)
    style_w = float(w_score) * float(prior.style_bonus)
    if prune and n_eligible:
        base, sent, style, res, agent_of = terms
        cw, mf = _pair_factors(prior, contacts=c, ptr=ptr, g_intent=g_intent, agent_of=agent_of, sent=sent,
                               w_score=w_score)
        lo, hi = _cheap_range(gid, ptr, base, mf, c_term, cw, style_w)
        c_up = _pair_bound(cw, mf) + max(style_w, 0.0)  # the most the pair terms add
        mat = cw.shape[1] > 1 and n_eligible <= MATERIALISE_MAX_PAIRS  # pays only with a contact part
        off, vals, smax = (_materialise(gid, ptr, base, mf, style, c_term, cw, c_style, style_w) if mat
                           else (np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0)))
        price, arc_of = _auction(gid, ptr, base, mf, style, res, c_term, cw, c_style, c_up, style_w,
                                 a.free.reshape(-1).astype(np.int64), AUCTION_EPS * ((hi - lo) or 1.0),
                                 20 * len(c.language) + 1000, mat, off, vals, smax)
        pc, pa = _select(gid, ptr, base, mf, style, res, agent_of, c_term, cw, c_style, c_up, style_w, price,
                         arc_of, a.free.size, n_channels, int(top_k), mat, off, vals, smax)
        contact, agent = _compact(pc, pa, len(gid))
    else:
        indptr, agent = _all_pairs(gid, ptr, members)
        contact = np.repeat(np.arange(len(gid), dtype=np.int64), np.diff(indptr))
    return Candidates(contact=contact, agent=agent, cheap_of=(prior, c, a, w_score), skilled=skilled,
                      n_eligible=n_eligible, pruned=bool(prune and n_eligible))


def _pair_factors(prior: Prior, *, contacts: ContactTerms, ptr: np.ndarray, g_intent: np.ndarray,
                  agent_of: np.ndarray, sent: np.ndarray, w_score: float) -> tuple[np.ndarray, np.ndarray]:
    """The pair terms of the cheap value as contact weights ``cw`` (n, R) times member factors
    ``mf`` (members, R): column 0 is sentiment handling, the others the prior's low-rank
    contact part (``contact_weight`` x ``contact_tables`` at the member's agent and intent)."""
    cw = [float(w_score) * float(prior.sentiment_coef) * contacts.neg_sentiment.astype(np.float64)]
    mf = [sent]
    if prior.contact_weight is not None and prior.contact_tables is not None:
        m_intent = np.repeat(g_intent, np.diff(ptr))
        for r in range(prior.contact_weight.shape[1]):
            cw.append(float(w_score) * prior.contact_weight[:, r].astype(np.float64))
            mf.append(prior.contact_tables[r][agent_of, m_intent].astype(np.float64))
    return np.ascontiguousarray(np.column_stack(cw)), np.ascontiguousarray(np.column_stack(mf))


def _pair_bound(cw: np.ndarray, mf: np.ndarray) -> np.ndarray:
    """Per contact, the most its pair terms can add over any member (``mf`` column ranges)."""
    lo, hi = mf.min(axis=0), mf.max(axis=0)
    return np.maximum(cw * lo, cw * hi).sum(axis=1)


@njit(cache=True)
def _cheap_range(gid, ptr, base, mf, c_term, cw, style_w):
    """Bounds on the eligible pairs' cheap values (the auction's step scales with their
    spread): each group's member extremes plus each contact's own terms."""
    lo, hi = 1e300, -1e300
    g_lo = np.full(len(ptr) - 1, 1e300)
    g_hi = np.full(len(ptr) - 1, -1e300)
    for g in range(len(ptr) - 1):
        for t in range(ptr[g], ptr[g + 1]):
            g_lo[g] = min(g_lo[g], base[t])
            g_hi[g] = max(g_hi[g], base[t])
    n_r = mf.shape[1]
    f_lo = np.empty(n_r)
    f_hi = np.empty(n_r)
    for r in range(n_r):
        f_lo[r], f_hi[r] = mf[:, r].min(), mf[:, r].max()
    for i in range(len(gid)):
        g = gid[i]
        if ptr[g + 1] > ptr[g]:
            down, up = 0.0, 0.0
            for r in range(n_r):
                down += min(cw[i, r] * f_lo[r], cw[i, r] * f_hi[r])
                up += max(cw[i, r] * f_lo[r], cw[i, r] * f_hi[r])
            lo = min(lo, g_lo[g] + c_term[i] + down)
            hi = max(hi, g_hi[g] + c_term[i] + up + max(style_w, 0.0))
    return lo, hi


def _pair_cheap(contact: np.ndarray, agent: np.ndarray, *, prior: Prior, contacts: ContactTerms,
                agents: AgentTerms, w_score: float) -> np.ndarray:
    """The cheap value of the given pairs (numpy)."""
    c, a = contacts, agents
    cs = c.style[contact]
    intent = c.intent[contact]
    est = (prior.agent_intent[agent, intent] + prior.sentiment_coef * c.neg_sentiment[contact]
           * a.sentiment_handling[agent] + prior.style_bonus * ((cs >= 0) & (cs == a.style[agent])))
    if prior.contact_weight is not None and prior.contact_tables is not None:
        for r in range(prior.contact_weight.shape[1]):
            est = est + prior.contact_weight[contact, r] * prior.contact_tables[r][agent, intent]
    return w_score * est + c.term[contact] + a.term[agent]
