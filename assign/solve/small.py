"""The flow's answer for small problems, without building the OR-Tools graph, when it is certain.

Most simulated ticks are tiny (a few contacts, a few agents, ten arcs): OR-Tools solves them
in microseconds, but building its graph, scaling the costs and checking their resolution
cost several times that in Python. For such problems :func:`solve_certified` solves the same
question (serve the most contacts, then the most value) exactly in floats with successive
shortest paths (numba), then *certifies* that the answer is the one the flow must return:

- optimality and uniqueness: two max-cardinality assignments differ by cycles of the
  residual graph, so the least residual cycle cost (Floyd-Warshall on contacts, resources
  and the source; a cycle through the sink enters it from one resource and leaves to
  another) is by how much every other assignment is worse;
- the flow's integer costs cannot change the winner: rounding moves a solution's integer
  cost by at most half a quantum (``range / scale``) per arc, so a margin above
  ``(n + 1)`` quanta (plus float slack) leaves the same unique integer optimum, which is
  what ``solve_max_flow_with_min_cost`` returns;
- the flow would not refuse the values for their resolution (:func:`flow.resolution_problem`;
  checked here with a factor-two reserve).

When any of this fails (ties, near-ties, outliers, a problem above :data:`MAX_NODES`) it
returns None and the caller runs the flow itself, so the answer is the flow's in every case.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from assign.solve.problem import Problem, Solution

#: Largest graph certified here (contacts + used resources + source): Floyd-Warshall is cubic.
MAX_NODES = 64
#: Float slack of the certificate, relative to the largest value magnitude.
FLOAT_SLACK = 1e-9


@njit(cache=True)
def _ssp(contact, resource, value, capacity, n, m):
    """Successive shortest paths (Bellman-Ford labels, float costs ``-value``): each
    contact's chosen arc (-1: unserved) at maximum cardinality and, among those, maximum
    value, and True; False when a path could not be traced (float trouble: not certified)."""
    matched = np.full(n, -1, dtype=np.int64)
    used = np.zeros(m, dtype=np.int64)
    d_c = np.empty(n)
    d_r = np.empty(m)
    pred_r = np.empty(m, dtype=np.int64)
    n_arcs = len(contact)
    while True:
        for c in range(n):
            d_c[c] = 0.0 if matched[c] < 0 else np.inf
        d_r[:] = np.inf
        for _ in range(n + m + 1):
            changed = False
            for k in range(n_arcs):
                c, r = contact[k], resource[k]
                if matched[c] == k:
                    if d_r[r] + value[k] < d_c[c]:
                        d_c[c] = d_r[r] + value[k]
                        changed = True
                elif d_c[c] - value[k] < d_r[r]:
                    d_r[r] = d_c[c] - value[k]
                    pred_r[r] = k
                    changed = True
            if not changed:
                break
        end, best = -1, np.inf
        for r in range(m):
            if used[r] < capacity[r] and d_r[r] < best:
                best, end = d_r[r], r
        if end < 0:
            return matched, True
        used[end] += 1
        r, steps = end, 0
        while True:
            k = pred_r[r]
            c = contact[k]
            old = matched[c]
            matched[c] = k
            if old < 0:
                break
            r = resource[old]
            steps += 1
            if steps > n:
                return matched, False


@njit(cache=True)
def _least_cycle(contact, resource, value, capacity, matched, n, m):
    """The least cost of a cycle in the residual graph of ``matched`` (costs ``-value``):
    every other max-cardinality assignment is worse by at least this much."""
    big = np.inf
    v = n + m + 1  # contacts, resources, the source (last)
    src = n + m
    d = np.full((v, v), big)
    used = np.zeros(m, dtype=np.int64)
    for c in range(n):
        if matched[c] >= 0:
            used[resource[matched[c]]] += 1
            d[c, src] = 0.0  # reverse of source -> c
        else:
            d[src, c] = 0.0
    for k in range(len(contact)):
        c, r = contact[k], n + resource[k]
        if matched[c] == k:
            d[r, c] = min(d[r, c], value[k])
        else:
            d[c, r] = min(d[c, r], -value[k])
    for w in range(v):
        for i in range(v):
            if d[i, w] == big:
                continue
            for j in range(v):
                x = d[i, w] + d[w, j]
                if x < d[i, j]:
                    d[i, j] = x
    least = big
    for i in range(v):
        least = min(least, d[i, i])
    for r1 in range(m):  # r2 -> ... -> r1 -> sink -> r2: r1 has room, r2 gives a slot up
        if used[r1] < capacity[r1]:
            for r2 in range(m):
                if r2 != r1 and used[r2] > 0:
                    least = min(least, d[n + r2, n + r1])
    return least


@njit(cache=True)
def _certify(contact, resource, value, capacity, n, max_nodes, min_scale, max_scale, int_budget, resolution,
             slack):
    """The chosen arcs (sorted) and whether they are certified: see :func:`solve_certified`."""
    none = np.zeros(0, dtype=np.int64)
    m_all = len(capacity)
    new_id = np.full(m_all, -1, dtype=np.int64)
    m = 0
    for r in np.sort(resource):  # used resources renumbered in ascending order, as the flow does
        if new_id[r] < 0:
            new_id[r] = m
            m += 1
    if n + m + 1 > max_nodes:
        return none, False
    res = np.empty(len(resource), dtype=np.int64)
    for k in range(len(resource)):
        res[k] = new_id[resource[k]]
    cap = np.empty(m, dtype=np.int64)
    for r in range(m_all):
        if new_id[r] >= 0:
            cap[new_id[r]] = min(capacity[r], n)
    vmax, vmin = value.max(), value.min()
    vrange = vmax - vmin
    scale = min(max_scale, int_budget // ((n + 1) * (n + m + 3) + 1))  # flow.cost_scale, n + m + 2 nodes
    if scale < min_scale:
        return none, False
    if vrange > 0:  # the flow's resolution check (flow.resolution_problem), with a factor-two reserve
        spread = np.median(np.abs(value - np.median(value)))
        if spread == 0.0:
            spread = vrange
        if vrange / scale > 0.5 * resolution * spread:
            return none, False
    matched, traced = _ssp(contact, res, value, cap, n, m)
    if not traced:
        return none, False
    margin = _least_cycle(contact, res, value, cap, matched, n, m)
    need = (n + 1) * vrange / scale + slack * max(1.0, abs(vmax), abs(vmin))
    if not margin > need:
        return none, False
    return np.sort(matched[matched >= 0]), True


def solve_certified(problem: Problem) -> Solution | None:
    """The flow's answer when it is certain (see the module docstring), else None."""
    from assign.solve import flow

    n = problem.n_contacts
    if n == 0 or problem.n_arcs == 0:
        return Solution(arcs=np.zeros(0, dtype=np.int64), solver="flow", optimal=True)
    if n + 1 >= MAX_NODES:
        return None
    arcs, ok = _certify(problem.contact, problem.resource, problem.value, problem.capacity, n, MAX_NODES,
                        flow.MIN_SCALE, flow.MAX_SCALE, flow._INT_BUDGET, flow.RESOLUTION, FLOAT_SLACK)
    return Solution(arcs=arcs, solver="flow", optimal=True) if ok else None
