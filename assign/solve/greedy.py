"""Greedy by value: the last resort when the time budget is about to run out.

Arcs are taken best value first (ties: contact order, then resource order) while the contact
is free and the resource has room. Linear after one sort; not work-conserving in general.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from assign.solve.problem import Problem, Solution


@njit(cache=True)
def _take(order, contact, resource, capacity, n_contacts):
    left = capacity.copy()
    done = np.zeros(n_contacts, dtype=np.bool_)
    chosen = np.empty(len(order), dtype=np.int64)
    n = 0
    for k in order:
        c, r = contact[k], resource[k]
        if not done[c] and left[r] > 0:
            done[c] = True
            left[r] -= 1
            chosen[n] = k
            n += 1
    return chosen[:n]


def solve_greedy(problem: Problem) -> Solution:
    """Assign by descending value; deterministic for a given arc order."""
    if problem.n_arcs == 0:
        return Solution(arcs=np.zeros(0, dtype=np.int64), solver="greedy", optimal=False)
    order = np.lexsort((problem.resource, problem.contact, -problem.value))
    arcs = _take(order.astype(np.int64), problem.contact, problem.resource, problem.capacity,
                 problem.n_contacts)
    return Solution(arcs=np.sort(arcs), solver="greedy", optimal=False)


@njit(cache=True)
def _in_order(contact_order, indptr, arc_sorted, contact, resource, value, capacity):
    left = capacity.copy()
    chosen = np.empty(len(contact_order), dtype=np.int64)
    n = 0
    for c in contact_order:
        best, best_v = -1, -np.inf
        for t in range(indptr[c], indptr[c + 1]):
            k = arc_sorted[t]
            if left[resource[k]] > 0 and value[k] > best_v:
                best, best_v = k, value[k]
        if best >= 0:
            left[resource[best]] -= 1
            chosen[n] = best
            n += 1
    return chosen[:n]


def solve_in_order(problem: Problem, *, contact_order: np.ndarray) -> Solution:
    """One contact at a time, in ``contact_order``, each taking its best arc with room left:
    how per-arrival (non-batch) routers decide. A baseline, not a fallback."""
    arc_sorted = np.argsort(problem.contact, kind="stable")
    indptr = np.searchsorted(problem.contact[arc_sorted], np.arange(problem.n_contacts + 1))
    arcs = _in_order(np.asarray(contact_order, dtype=np.int64), indptr, arc_sorted, problem.contact,
                     problem.resource, problem.value, problem.capacity)
    return Solution(arcs=np.sort(arcs), solver="in_order", optimal=False)
