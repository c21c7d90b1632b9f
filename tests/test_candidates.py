"""Retrieval through (intent, language, channel) groups against brute force on the full grid."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from numba import njit

from assign import candidates as C
from assign.config import RouterConfig
from assign.eligibility import eligible
from assign.router import Router
from assign.solve import value as pair_value
from assign.workload import synthetic_snapshot


def _inputs(n: int, m: int, seed: int):
    snap = synthetic_snapshot(n_contacts=n, n_agents=m, seed=seed)  # ids already in order
    c, a, cfg = snap.contacts, snap.agents, RouterConfig()
    contacts = C.ContactTerms.of(c, term=cfg.w_aging * pair_value.aging(urgency=c.urgency, waited_s=c.waited_s,
                                                                         config=cfg))
    agents = C.AgentTerms.of(a, term=cfg.w_fairness * pair_value.fairness(idle_s=a.idle_s, config=cfg))
    return snap, contacts, agents, Router().scorer.prior(snap)


def _grid(snap, contacts, agents, prior):
    """Every pair's eligibility and cheap value, on the full grid (numpy)."""
    c, a = snap.contacts, snap.agents
    ci, ai = np.repeat(np.arange(snap.n_contacts), snap.n_agents), np.tile(np.arange(snap.n_agents), snap.n_contacts)
    ok = eligible(a.skill[ai, c.intent[ci]], a.speaks[ai, c.language[ci]], a.free[ai, c.channel[ci]].astype(np.int64),
                  0.2, True)
    cheap = C._pair_cheap(ci, ai, prior=prior, contacts=contacts, agents=agents, w_score=1.0)
    return ci[ok], ai[ok], cheap[ok]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_unpruned_pairs_are_exactly_the_eligible_grid(seed):
    snap, contacts, agents, prior = _inputs(70, 40, seed)
    got = C.find_candidates(contacts=contacts, agents=agents, prior=prior, min_proficiency=0.2, require_language=True,
                            w_score=1.0, top_k=4, prune=False)
    ci, ai, cheap = _grid(snap, contacts, agents, prior)
    assert np.array_equal(got.contact, ci) and np.array_equal(got.agent, ai)
    assert np.allclose(got.cheap, cheap, rtol=0, atol=1e-12)
    assert got.n_eligible == len(ci)


@dataclass(frozen=True)
class _Terms:
    """Retrieval's per-group and per-pair terms for a test's inputs (what ``find_candidates`` builds)."""
    gid: np.ndarray
    ptr: np.ndarray
    base: np.ndarray
    mf: np.ndarray
    style: np.ndarray
    res: np.ndarray
    agent_of: np.ndarray
    cw: np.ndarray
    c_style: np.ndarray
    c_up: np.ndarray
    style_w: float
    n_ch: int


def _scan_terms(contacts, agents, prior) -> _Terms:
    gid, ptr, members, _, g_intent, g_chan = C._groups(
        contacts.language.astype(np.int64), contacts.intent.astype(np.int64), contacts.channel.astype(np.int64),
        np.ascontiguousarray(agents.speaks.T), np.ascontiguousarray(agents.skill.T),
        np.ascontiguousarray(agents.free.T.astype(np.int64)), 0.2, True)
    n_ch = agents.free.shape[1]
    base, sent, style, res, agent_of = C._member_terms(
        ptr, members, g_intent, g_chan, np.ascontiguousarray(prior.agent_intent.T), agents.term,
        agents.sentiment_handling, agents.style.astype(np.int64), 1.0, n_ch)
    cw, mf = C._pair_factors(prior, contacts=contacts, ptr=ptr, g_intent=g_intent, agent_of=agent_of, sent=sent,
                             w_score=1.0)
    return _Terms(gid=gid, ptr=ptr, base=base, mf=mf, style=style, res=res, agent_of=agent_of, cw=cw,
                  c_style=contacts.style.astype(np.int64), c_up=C._pair_bound(cw, mf) + prior.style_bonus,
                  style_w=prior.style_bonus, n_ch=n_ch)


def _with_contact_part(prior, snap, rank: int, seed: int):
    """The prior plus a random low-rank contact part (as the XGBoost prior fits one)."""
    if not rank:
        return prior
    rng = np.random.default_rng(seed + 100)
    return C.Prior(agent_intent=prior.agent_intent, style_bonus=prior.style_bonus,
                   sentiment_coef=prior.sentiment_coef, contact_weight=rng.random((snap.n_contacts, rank)),
                   contact_tables=rng.normal(0.0, 0.2, (rank, *prior.agent_intent.shape)))


@pytest.mark.parametrize("seed,top_k,rank", [(0, 3, 0), (1, 5, 0), (2, 8, 0), (3, 4, 2), (4, 6, 1)])
def test_top_k_scans_that_stop_early_keep_what_full_scans_keep(seed, top_k, rank):
    """At zero prices (no auction), the kept pairs are each contact's top-K agents by cheap
    value and each resource's top-K contacts by cheap value minus the contact's best: the
    brute-force sets on the full grid (random values: no ties), with and without the
    prior's low-rank contact part."""
    snap, contacts, agents, prior = _inputs(90, 50, seed)
    prior = _with_contact_part(prior, snap, rank, seed)
    k = _scan_terms(contacts, agents, prior)
    gid, ptr, base, mf, style, res, agent_of, n_ch = k.gid, k.ptr, k.base, k.mf, k.style, k.res, k.agent_of, k.n_ch
    cw, style_w, c_up, c_style = k.cw, k.style_w, k.c_up, k.c_style
    got_by_mode = []
    for mat in (False, True):  # values computed in the scans, or materialised once (same answer)
        off, vals, smax = (C._materialise(gid, ptr, base, mf, style, contacts.term, cw, c_style, style_w) if mat
                           else (np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0)))
        pc, pa = C._select(gid, ptr, base, mf, style, res, agent_of, contacts.term, cw, c_style, c_up, style_w,
                           np.zeros(agents.free.size), np.full(snap.n_contacts, -1), agents.free.size, n_ch, top_k,
                           mat, off, vals, smax)
        got_by_mode.append(set(zip(pc.tolist(), pa.tolist())))
    got = got_by_mode[0]
    assert got_by_mode[1] == got
    ci, ai, cheap = _grid(snap, contacts, agents, prior)
    want = set()
    profit = np.zeros(snap.n_contacts)
    for i in range(snap.n_contacts):
        mine = np.flatnonzero(ci == i)
        profit[i] = max(0.0, cheap[mine].max(initial=0.0))
        want |= {(i, int(ai[x])) for x in mine[np.argsort(-cheap[mine], kind="stable")[:top_k]]}
    r = ai * n_ch + snap.contacts.channel[ci]
    for res_id in np.unique(r):
        mine = np.flatnonzero(r == res_id)
        best = mine[np.argsort(-(cheap[mine] - profit[ci[mine]]), kind="stable")[:top_k]]
        want |= {(int(ci[x]), int(ai[x])) for x in best}
    assert got == want


@pytest.mark.parametrize("seed,rank", [(5, 2), (6, 1), (7, 3)])
def test_materialised_grid_gives_the_same_candidates(seed, rank, monkeypatch):
    """Materialising every eligible pair's cheap value (small grids with a contact part) changes
    only how the scans read values: the auction and both top-K selections keep exactly the
    pairs the group scans keep; and the materialised values are the grid's cheap values."""
    snap, contacts, agents, prior = _inputs(160, 90, seed)
    prior = _with_contact_part(prior, snap, rank, seed)
    kw = dict(contacts=contacts, agents=agents, prior=prior, min_proficiency=0.2, require_language=True,
              w_score=1.0, top_k=5, prune=True)
    monkeypatch.setattr(C, "MATERIALISE_MAX_PAIRS", 0)
    scans = C.find_candidates(**kw)
    monkeypatch.setattr(C, "MATERIALISE_MAX_PAIRS", 10**9)
    grid = C.find_candidates(**kw)
    assert np.array_equal(scans.contact, grid.contact) and np.array_equal(scans.agent, grid.agent)
    assert np.array_equal(scans.cheap, grid.cheap)

    k = _scan_terms(contacts, agents, prior)
    gid, ptr, agent_of = k.gid, k.ptr, k.agent_of
    off, vals, smax = C._materialise(gid, ptr, k.base, k.mf, k.style, contacts.term, k.cw, k.c_style, k.style_w)
    for i in range(snap.n_contacts):
        t = np.arange(ptr[gid[i]], ptr[gid[i] + 1])
        want = C._pair_cheap(np.full(len(t), i), agent_of[t], prior=prior, contacts=contacts, agents=agents,
                             w_score=1.0)
        np.testing.assert_allclose(vals[off[i] + t], want, rtol=0, atol=1e-12)
        np.testing.assert_array_equal(smax[off[i] + t], np.maximum.accumulate(vals[off[i] + t][::-1])[::-1])


@njit
def _resource_top_k(gid, ptr, base, mf, style, res, c_term, cw, c_style, c_up, style_w, profit, n_res, top_k,
                    mat, off, vals):
    """Each resource's top-K contacts by value - profit (``s_idx[r, :s_cnt[r]]``): every member
    reads its group's contacts by descending ``c_term - profit`` and stops once none can enter."""
    n, n_groups = len(gid), len(ptr) - 1
    # contacts of each group, by descending c_term - profit (ties: contact order)
    c_ptr, by_group = C.bucket(gid, n_groups)
    key = np.empty(n, dtype=np.float64)
    for i in range(n):
        key[i] = c_term[i] - profit[i]
    s_val = np.empty((n_res, top_k), dtype=np.float64)
    s_idx = np.empty((n_res, top_k), dtype=np.int64)
    s_cnt = np.zeros(n_res, dtype=np.int64)
    s_min = np.full(n_res, -np.inf)  # a resource's K-th best so far (-inf until it has K)
    for g in range(n_groups):
        mine = by_group[c_ptr[g]:c_ptr[g + 1]]
        order = mine[np.argsort(-key[mine], kind="mergesort")]
        g_up = -np.inf
        for i in order:
            g_up = max(g_up, c_up[i])
        for t in range(ptr[g], ptr[g + 1]):
            r = res[t]
            for i in order:
                if base[t] + key[i] + g_up < s_min[r]:
                    break
                v = ((vals[off[i] + t] if mat else C._cheap(base, mf, style, t, c_term[i], cw[i], c_style[i], style_w))
                     - profit[i])
                if v >= s_min[r]:
                    s_cnt[r] = C._insert(s_val[r], s_idx[r], s_cnt[r], top_k, v, i)
                    if s_cnt[r] == top_k:
                        s_min[r] = s_val[r, top_k - 1]
    return s_idx, s_cnt


@njit
def _select_serial(gid, ptr, base, mf, style, res, agent, c_term, cw, c_style, c_up, style_w, price, arc_of, n_res,
                   n_chan, top_k, mat, off, vals, smax):
    """The single-threaded selection that :func:`assign.candidates._select` replaced: its reference
    (its contact side is the library's kernel over one unsplit range; its resource side scans
    every resource in one pass, where the library cuts resources into ranges).

    The kept pairs as (contact, agent), unsorted and possibly repeated: each contact's top-K
    agents by value - price, each resource's top-K contacts by value - the contact's profit,
    and the auction's arcs. Memory O((contacts + resources) * K), whatever the grid.

    Both scans run in an order that bounds what is left: a contact reads its group's members
    by descending ``base`` and stops once no later one can enter its top-K or raise its
    profit; each member reads its group's contacts by descending ``c_term - profit`` and stops
    once no later one can enter its resource's top-K. Ties keep the smaller index (member
    position, contact row), in whatever order the scans meet them."""
    n = len(gid)
    profit = np.zeros(n, dtype=np.float64)
    kept = np.empty((n, top_k + 1), dtype=np.int64)
    n_kept = np.zeros(n, dtype=np.int64)
    C._contact_top_k(0, n, gid, ptr, base, mf, style, res, agent, c_term, cw, c_style, c_up, style_w, price, arc_of,
                     top_k, mat, off, vals, smax, profit, kept, n_kept)
    out_c = np.empty(n * (top_k + 1) + n_res * top_k, dtype=np.int64)
    out_a = np.empty(len(out_c), dtype=np.int64)
    n_out = 0
    for i in range(n):
        for x in range(n_kept[i]):
            out_c[n_out], out_a[n_out] = i, kept[i, x]
            n_out += 1
    s_idx, s_cnt = _resource_top_k(gid, ptr, base, mf, style, res, c_term, cw, c_style, c_up, style_w, profit,
                                   n_res, top_k, mat, off, vals)
    for r in range(n_res):
        for x in range(s_cnt[r]):
            out_c[n_out], out_a[n_out] = s_idx[r, x], r // n_chan
            n_out += 1
    return out_c[:n_out], out_a[:n_out]


@pytest.mark.parametrize("seed,top_k,rank", [(8, 3, 0), (9, 6, 2), (10, 4, 1)])
def test_split_selection_keeps_what_the_serial_one_keeps(seed, top_k, rank, monkeypatch):
    """_select on 1, 2 and 3 threads (contacts, then resources, cut into ranges) keeps exactly
    the pairs of the single-threaded reference _select_serial, at the auction's prices, with
    values computed in the scans and materialised."""
    snap, contacts, agents, prior = _inputs(200, 120, seed)
    prior = _with_contact_part(prior, snap, rank, seed)
    monkeypatch.setattr(C, "MIN_CONTACTS_PER_THREAD", 8)
    k = _scan_terms(contacts, agents, prior)
    gid, ptr, base, mf, style, res, agent_of, n_ch = k.gid, k.ptr, k.base, k.mf, k.style, k.res, k.agent_of, k.n_ch
    cw, style_w, c_up, c_style = k.cw, k.style_w, k.c_up, k.c_style
    cap = agents.free.reshape(-1).astype(np.int64)
    for mat in (False, True):
        off, vals, smax = (C._materialise(gid, ptr, base, mf, style, contacts.term, cw, c_style, style_w) if mat
                           else (np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0)))
        price, arc_of = C._auction(gid, ptr, base, mf, style, res, contacts.term, cw, c_style, c_up, style_w, cap,
                                   0.01, 20 * snap.n_contacts + 1000, mat, off, vals, smax)
        if mat:  # the materialised rows written by 1 or 3 threads: the same bits
            again = C._materialise(gid, ptr, base, mf, style, contacts.term, cw, c_style, style_w, threads=3)
            assert all(np.array_equal(x, y) for x, y in zip((off, vals, smax), again))
        args = (gid, ptr, base, mf, style, res, agent_of, contacts.term, cw, c_style, c_up, style_w, price, arc_of,
                agents.free.size, n_ch, top_k, mat, off, vals, smax)
        pc, pa = _select_serial(*args)
        pairs = np.unique(pc * agents.free.shape[0] + pa)  # reference compaction: sorted, unique
        want = (pairs // agents.free.shape[0], pairs % agents.free.shape[0])
        for threads in (1, 2, 3):
            got = C._compact(*C._select(*args, threads=threads), snap.n_contacts, threads=threads)
            assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
