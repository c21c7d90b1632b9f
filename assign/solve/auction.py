"""ε-scaling forward/reverse auction (Bertsekas) on the sparse candidate graph: an exact solver.

The capacitated problem becomes an asymmetric assignment. Persons are the contacts; objects
are the resources' slots (a resource with capacity ``c`` reached by ``h`` contacts gets
``min(c, h)`` slots, each with its own price) plus one private "unassigned" object per
contact. Every contact holds exactly one object, so leaving a contact unassigned is a choice
like any other. An arc's integer benefit is ``a = M + S - cost`` with ``cost`` the flow's
integer cost in ``[0, S]`` (:func:`assign.solve.flow.integer_costs`) and ``M = n * S + 1``:
one more contact served outweighs any change in value, so the largest-benefit assignment is
the flow's lexicographic optimum (serve the most contacts, then the most value). Benefits
are multiplied by ``n + 1`` and the last phase runs at ε = 1: an assignment within ``n · ε``
of the optimum is then optimal for the integer benefits.

Each ε phase runs a forward auction (contacts bid, Gauss-Seidel, in a FIFO queue), then a
reverse auction (Bertsekas & Castañon, 1992): with λ the lowest price of an assigned
object, every unassigned object priced above λ either draws a contact from its current
object or drops its price to λ. At the end ε-complementary slackness holds with every
unassigned object priced ≤ λ ≤ every assigned one, which is what makes the asymmetric
problem's answer optimal, not only the symmetric one's.

Deterministic: a fixed order of bids; ties go to the first arc in (contact, resource)
order and to the lower slot, so the same problem gives the same answer every time. Where
the optimum is unique it is OR-Tools' answer too; among tied optima the two may differ.
Integer costs are as fine as the int64 budget allows (``(n+1)² · S`` below 2**58); the
same resolution check as the flow's refuses values that need a finer scale, and a price
passing 2**62 aborts the solve with :class:`SolverError`, so the router falls back to the
flow.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from assign.errors import SolverError
from assign.solve.flow import MAX_SCALE, MIN_SCALE, integer_costs, resolution_problem
from assign.solve.problem import Problem, Solution

_BUDGET = 2**58
_PRICE_LIMIT = 2**61
_INF = 2**62
#: Each ε phase divides ε by this factor.
THETA = 8
_NEG = -(2**63) + 1
#: Arcs per contact kept in its bid cache (the best at the last full scan).
K_CACHE = 4
#: A phase that bids more than this many times per arc gives up (the router falls back to the flow).
MAX_BIDS_PER_ARC = 1000
#: Forward and reverse bids of each phase of the last solve in this process (for benchmarks).
LAST_STATS: list[tuple[int, int]] = []


def auction_scale(n_contacts: int) -> int:
    """The value scale S: benefits ``((n+1) · S + 1) · (n + 1)`` stay below 2**58."""
    scale = min(MAX_SCALE, _BUDGET // ((n_contacts + 2) ** 2))
    if scale < MIN_SCALE:
        raise SolverError(f"cost range: {n_contacts} contacts leave the auction a value scale of {scale}, "
                          f"below the minimum {MIN_SCALE}")
    return int(scale)


@njit(cache=True)
def _slots_of(r, slot_ptr, price):
    """The cheapest slot of resource r (lowest index on ties), its price and the second-lowest price."""
    s1, p1, p2 = -1, _INF, _INF
    for s in range(slot_ptr[r], slot_ptr[r + 1]):
        p = price[s]
        if p < p1:
            p2, p1, s1 = p1, p, s
        elif p < p2:
            p2 = p
    return s1, p1, p2


@njit(cache=True)
def _refresh(r, slot_ptr, price, rbest):
    """Store resource r's cheapest slot, its price and the second-lowest price in ``rbest[r]``."""
    rbest[r, 0], rbest[r, 1], rbest[r, 2] = _slots_of(r, slot_ptr, price)


@njit(cache=True)
def _rescan(i, ptr, res, ben, rbest, price, cache, clen, thr, vals):
    """Refill contact i's cache with its K arcs of highest value at the current prices (ties:
    arc order); ``thr[i]`` gets the best value left out. In a forward phase prices only rise,
    so no arc outside the cache can ever be worth more than ``thr[i]`` until the next rescan."""
    k_max = cache.shape[1]
    cnt, out = 0, _NEG
    for t in range(ptr[i], ptr[i + 1]):
        v = ben[t] - rbest[res[t], 1]
        if cnt < k_max:
            j = cnt
            cnt += 1
        elif v > vals[k_max - 1]:
            out = max(out, vals[k_max - 1])
            j = k_max - 1
        else:
            out = max(out, v)
            continue
        while j > 0 and vals[j - 1] < v:
            vals[j], cache[i, j] = vals[j - 1], cache[i, j - 1]
            j -= 1
        vals[j], cache[i, j] = v, t
    clen[i], thr[i] = cnt, out


@njit(cache=True)
def _top2(i, res, ben, rbest, price, pu, cache, clen):
    """The best and second-best values among contact i's cached arcs (each resource's
    cheapest and second-cheapest slot) and its own unassigned object; the best's slot and arc."""
    best, second, bslot, barc = _NEG, _NEG, -2, -1
    for q in range(clen[i]):
        t = cache[i, q]
        r = res[t]
        s1, p1, p2 = rbest[r, 0], rbest[r, 1], rbest[r, 2]
        v = ben[t] - p1
        if v > best:
            second, best, bslot, barc = best, v, s1, t
        elif v > second:
            second = v
        if p2 < _INF and ben[t] - p2 > second:
            second = ben[t] - p2
    v = -pu[i]
    if v > best:
        second, best, bslot, barc = best, v, -2, -1
    elif v > second:
        second = v
    return best, second, bslot, barc


@njit(cache=True)
def _bid(i, eps, ptr, res, ben, rbest, price, pu, cache, clen, thr, fresh, vals):
    """Contact i's best object (slot index, or -2 for its own unassigned object), its arc and
    the price that object gets: the bid raises it by best - second best + ε. The cache gives
    the exact best and second best whenever the second is at least its threshold."""
    if not fresh[i]:
        _rescan(i, ptr, res, ben, rbest, price, cache, clen, thr, vals)
        fresh[i] = True
    best, second, bslot, barc = _top2(i, res, ben, rbest, price, pu, cache, clen)
    if second < thr[i]:
        _rescan(i, ptr, res, ben, rbest, price, cache, clen, thr, vals)
        best, second, bslot, barc = _top2(i, res, ben, rbest, price, pu, cache, clen)
    inc = eps if second == _NEG else best - second + eps
    old = pu[i] if bslot == -2 else price[bslot]
    return bslot, barc, old + inc


@njit(cache=True)
def _forward(n, eps, ptr, res, ben, rbest, price, pu, owner, hold, harc, max_bids, cache, clen, thr, fresh, vals,
             slot_ptr, slot_res):
    """Bid until every contact holds an object. Returns the number of bids, or -1 when a
    price passes the limit or the bids pass ``max_bids``."""
    ring = np.empty(n + 1, dtype=np.int64)
    head, tail = 0, 0
    for i in range(n):
        if hold[i] == -1:
            ring[tail] = i
            tail += 1
    size = n + 1
    bids = 0
    while head != tail:
        bids += 1
        if bids > max_bids:
            return -1
        i = ring[head]
        head = (head + 1) % size
        s, t, p = _bid(i, eps, ptr, res, ben, rbest, price, pu, cache, clen, thr, fresh, vals)
        if p > _PRICE_LIMIT:
            return -1
        if s == -2:
            pu[i] = p
            hold[i] = -2
            continue
        price[s] = p
        _refresh(slot_res[s], slot_ptr, price, rbest)
        prev = owner[s]
        if prev >= 0:
            hold[prev] = -1
            ring[tail] = prev
            tail = (tail + 1) % size
        owner[s], hold[i], harc[i] = i, s, t
    return bids


@njit(cache=True)
def _profit(i, ben, price, pu, hold, harc):
    return -pu[i] if hold[i] == -2 else ben[harc[i]] - price[hold[i]]


@njit(cache=True)
def _reverse(n, eps, ben, slot_ptr, slot_res, rptr, rperson, rarc, price, pu, owner, hold, harc, max_bids, rbest):
    """Reverse auction: every unassigned object priced above λ (the lowest assigned price)
    draws its best contact (at the price its second best leaves, never below λ) or falls to λ."""
    n_slots = len(price)
    lam = _INF
    for s in range(n_slots):
        if owner[s] >= 0 and price[s] < lam:
            lam = price[s]
    for i in range(n):
        if hold[i] == -2 and pu[i] < lam:
            lam = pu[i]
    stack = np.empty(n_slots + n, dtype=np.int64)
    top = 0
    for s in range(n_slots):
        if owner[s] < 0 and price[s] > lam:
            stack[top] = s
            top += 1
    for i in range(n):
        if hold[i] != -2 and pu[i] > lam:
            stack[top] = n_slots + i
            top += 1
    bids = 0
    while top > 0:
        bids += 1
        if bids > max_bids:
            return lam, -1
        top -= 1
        o = stack[top]
        if o >= n_slots:  # contact i's own unassigned object: only i can take it
            i = o - n_slots
            if hold[i] == -2 or pu[i] <= lam:
                continue
            beta = -_profit(i, ben, price, pu, hold, harc)
            pu[i] = lam
            if lam >= beta - eps:
                continue
            s = hold[i]
            owner[s], hold[i] = -1, -2
            if price[s] > lam:
                stack[top] = s
                top += 1
            continue
        s = o
        if owner[s] >= 0 or price[s] <= lam:
            continue
        r = slot_res[s]
        beta, omega, bi, bt = _NEG, _NEG, -1, -1
        for q in range(rptr[r], rptr[r + 1]):
            i, t = rperson[q], rarc[q]
            v = ben[t] - _profit(i, ben, price, pu, hold, harc)
            if v > beta:
                omega, beta, bi, bt = beta, v, i, t
            elif v > omega:
                omega = v
        if bi < 0 or lam >= beta - eps:
            price[s] = lam
            _refresh(r, slot_ptr, price, rbest)
            continue
        price[s] = lam if omega == _NEG else max(lam, omega - eps)
        _refresh(r, slot_ptr, price, rbest)
        old = hold[bi]
        if old == -2:
            if pu[bi] > lam:
                stack[top] = n_slots + bi
                top += 1
        else:
            owner[old] = -1
            if price[old] > lam:
                stack[top] = old
                top += 1
        owner[s], hold[bi], harc[bi] = bi, s, bt
    return lam, bids


@njit(cache=True)
def _auction(n, ptr, res, ben, slot_ptr, slot_res, rptr, rperson, rarc, eps0, theta, max_bids, stats, k_cache):
    """ε-scaling from ``eps0`` down to 1, a forward then a reverse auction per phase. Returns
    each contact's arc (-1: unassigned) and whether the prices stayed in range; ``stats[k]``
    gets phase k's forward and reverse bids."""
    n_slots = slot_ptr[-1]
    price = np.zeros(n_slots, dtype=np.int64)
    pu = np.zeros(n, dtype=np.int64)
    owner = np.full(n_slots, -1, dtype=np.int64)
    hold = np.full(n, -1, dtype=np.int64)
    harc = np.full(n, -1, dtype=np.int64)
    cache = np.empty((n, k_cache), dtype=np.int64)
    clen = np.zeros(n, dtype=np.int64)
    thr = np.zeros(n, dtype=np.int64)
    fresh = np.zeros(n, dtype=np.bool_)
    vals = np.empty(k_cache, dtype=np.int64)
    n_res = len(slot_ptr) - 1
    rbest = np.empty((n_res, 3), dtype=np.int64)
    for r in range(n_res):
        _refresh(r, slot_ptr, price, rbest)
    eps = max(eps0, 1)
    phase = 0
    while True:
        fresh[:] = False
        owner[:] = -1
        hold[:] = -1
        fwd = _forward(n, eps, ptr, res, ben, rbest, price, pu, owner, hold, harc, max_bids, cache, clen, thr,
                       fresh, vals, slot_ptr, slot_res)
        if fwd < 0:
            return harc, False
        lam, rev = _reverse(n, eps, ben, slot_ptr, slot_res, rptr, rperson, rarc, price, pu, owner, hold, harc,
                            max_bids, rbest)
        if rev < 0:
            return harc, False
        if phase < len(stats):
            stats[phase, 0], stats[phase, 1] = fwd, rev
        phase += 1
        if eps == 1:
            break
        # p <- max(0, p - λ) keeps ε-CS and the λ conditions (with λ = 0) and stops the
        # prices drifting upward from phase to phase
        for s in range(n_slots):
            price[s] = max(0, price[s] - lam)
        for i in range(n):
            pu[i] = max(0, pu[i] - lam)
        for r in range(n_res):
            _refresh(r, slot_ptr, price, rbest)
        eps = max(1, eps // theta)
    for i in range(n):
        if hold[i] < 0:
            harc[i] = -1
    return harc, True


@njit(cache=True)
def _build(n, order, contact, resource, arc_ben, capacity):
    """From arcs in (contact, resource) order: one arc per contact and resource (the best,
    then the first), contact-major; the slots of every resource that some arc reaches
    (``min(capacity, reach)``, resources renumbered in index order); the resource-major
    transpose (contacts ascending)."""
    keep = np.empty(len(order), dtype=np.int64)
    m = 0
    for q in range(len(order)):
        k = order[q]
        if capacity[resource[k]] <= 0:
            continue
        if m > 0 and contact[keep[m - 1]] == contact[k] and resource[keep[m - 1]] == resource[k]:
            if arc_ben[k] > arc_ben[keep[m - 1]]:
                keep[m - 1] = k
            continue
        keep[m] = k
        m += 1
    keep = keep[:m]
    reach = np.zeros(len(capacity), dtype=np.int64)
    ptr = np.zeros(n + 1, dtype=np.int64)
    for k in keep:
        reach[resource[k]] += 1
        ptr[contact[k] + 1] += 1
    for i in range(n):
        ptr[i + 1] += ptr[i]
    rid = np.full(len(capacity), -1, dtype=np.int64)
    n_used = 0
    for r in range(len(capacity)):
        if reach[r] > 0:
            rid[r] = n_used
            n_used += 1
    slot_ptr = np.zeros(n_used + 1, dtype=np.int64)
    rptr = np.zeros(n_used + 1, dtype=np.int64)
    for r in range(len(capacity)):
        if reach[r] > 0:
            slot_ptr[rid[r] + 1] = min(capacity[r], reach[r])
            rptr[rid[r] + 1] = reach[r]
    for j in range(n_used):
        slot_ptr[j + 1] += slot_ptr[j]
        rptr[j + 1] += rptr[j]
    slot_res = np.empty(slot_ptr[n_used], dtype=np.int64)
    for j in range(n_used):
        slot_res[slot_ptr[j]:slot_ptr[j + 1]] = j
    res = np.empty(m, dtype=np.int64)
    ben = np.empty(m, dtype=np.int64)
    fill = rptr[:-1].copy()
    rperson = np.empty(m, dtype=np.int64)
    rarc = np.empty(m, dtype=np.int64)
    for t in range(m):
        k = keep[t]
        res[t], ben[t] = rid[resource[k]], arc_ben[k]
        q = fill[res[t]]
        rperson[q], rarc[q] = contact[k], t
        fill[res[t]] += 1
    return keep, ptr, res, ben, slot_ptr, slot_res, rptr, rperson, rarc


@njit(cache=True)
def _is_sorted(contact, resource):
    for k in range(1, len(contact)):
        if contact[k] < contact[k - 1] or (contact[k] == contact[k - 1] and resource[k] < resource[k - 1]):
            return False
    return True


def _graph(problem: Problem, arc_ben: np.ndarray):
    """:func:`_build` on the problem's arcs ((contact, resource) order, as :class:`Problem` asks;
    sorted here when they are not)."""
    if _is_sorted(problem.contact, problem.resource):
        order = np.arange(problem.n_arcs, dtype=np.int64)
    else:
        order = np.lexsort((problem.resource, problem.contact)).astype(np.int64)
    return _build(problem.n_contacts, order, problem.contact, problem.resource, arc_ben, problem.capacity)


def solve_auction(problem: Problem) -> Solution:
    """Solve exactly with the ε-scaling forward/reverse auction; raises :class:`SolverError`
    when integer costs cannot represent the values finely enough or the prices overflow."""
    n = problem.n_contacts
    if n == 0 or problem.n_arcs == 0:
        return Solution(arcs=np.zeros(0, dtype=np.int64), solver="auction", optimal=True)
    scale = auction_scale(n)
    cost, max_error = integer_costs(problem.value, scale)
    used = np.unique(problem.resource)
    n_served = int(min(n, problem.capacity[used].sum()))
    why = resolution_problem(problem.value, scale=scale, max_error=max_error, n_served=n_served)
    if why:
        raise SolverError(why)
    big = n * scale + 1
    ben = (big + scale - cost) * (n + 1)
    order, ptr, res, ben_sorted, slot_ptr, slot_res, rptr, rperson, rarc = _graph(problem, ben)
    eps0 = scale * (n + 1) // THETA
    max_bids = MAX_BIDS_PER_ARC * (len(order) + n)
    stats = np.zeros((64, 2), dtype=np.int64)
    harc, ok = _auction(n, ptr, res, ben_sorted, slot_ptr, slot_res, rptr, rperson, rarc, eps0, THETA, max_bids,
                        stats, K_CACHE)
    LAST_STATS[:] = [tuple(x) for x in stats if x.any()]
    if not ok:
        raise SolverError(f"auction: a price passed 2**61 or a phase passed {max_bids} bids; "
                          f"the problem needs the flow")
    chosen = harc[harc >= 0]
    return Solution(arcs=np.sort(order[chosen]).astype(np.int64), solver="auction", optimal=True)
