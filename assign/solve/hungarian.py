"""scipy's Hungarian method on the slot-expanded matrix: the exact float fallback of the flow solver.

Every resource becomes as many columns as it can take (its capacity, but never more than the
contacts that can reach it). The most contacts that can be served, ``k``, comes first from an
integer max-flow (``scipy.sparse.csgraph.maximum_flow``, exact); then ``n - k`` dummy columns
(cost 0) let exactly the rest stay unassigned, so every complete assignment serves ``k``
contacts and the solver only has to maximise value: an arc costs ``-value``. No big constant
is added to the costs, so float64 keeps the values' own precision (values spanning 1e-6 to
1e12 stay distinguishable, which integer-scaled flow costs cannot promise). Pairs with no arc
are +inf. Dense: a fallback, bounded by :data:`MAX_CELLS`.
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import maximum_flow

from assign.errors import SolverError
from assign.solve.problem import Problem, Solution

MAX_CELLS = 20_000_000


def max_served(problem: Problem) -> int:
    """The most contacts any feasible assignment serves (integer max-flow, exact)."""
    n, r = problem.n_contacts, problem.n_resources
    src, sink = n + r, n + r + 1
    pairs = np.unique(problem.contact * r + problem.resource)
    cap = np.minimum(problem.capacity, n)
    rows = np.concatenate([np.full(n, src), pairs // r, n + np.arange(r)])
    cols = np.concatenate([np.arange(n), n + pairs % r, np.full(r, sink)])
    caps = np.concatenate([np.ones(n + len(pairs), dtype=np.int64), cap])
    keep = caps > 0
    graph = csr_matrix((caps[keep].astype(np.int32), (rows[keep], cols[keep])), shape=(n + r + 2, n + r + 2))
    return int(maximum_flow(graph, src, sink).flow_value)


def solve_hungarian(problem: Problem) -> Solution:
    """Solve exactly with ``scipy.optimize.linear_sum_assignment`` (dense: fallback only)."""
    n = problem.n_contacts
    if n == 0 or problem.n_arcs == 0:
        return Solution(arcs=np.zeros(0, dtype=np.int64), solver="hungarian", optimal=True)
    reach = np.bincount(problem.resource, minlength=problem.n_resources)
    slots = np.minimum(problem.capacity, reach)
    first_col = np.concatenate([[0], np.cumsum(slots)])
    k = max_served(problem)
    n_cols = int(first_col[-1]) + (n - k)
    if n * n_cols > MAX_CELLS:
        raise SolverError(f"hungarian: {n} x {n_cols} slot matrix exceeds {MAX_CELLS} cells")
    v = problem.value
    cost = np.full((n, n_cols), np.inf)
    cost[:, first_col[-1]:] = 0.0
    arc_of_cell = np.full((n, n_cols), -1, dtype=np.int32 if problem.n_arcs < 2**31 else np.int64)
    # duplicate (contact, resource) arcs: the best one takes the cells (written last)
    by_value = np.argsort(v, kind="stable")
    for s in range(int(slots.max(initial=0))):
        sel = by_value[slots[problem.resource[by_value]] > s]
        rows, cols = problem.contact[sel], first_col[problem.resource[sel]] + s
        cost[rows, cols] = -v[sel]
        arc_of_cell[rows, cols] = sel
    try:
        rows, cols = linear_sum_assignment(cost)
    except ValueError as err:
        raise SolverError(f"hungarian: {err}") from err
    arcs = arc_of_cell[rows, cols].astype(np.int64)
    arcs = np.sort(arcs[arcs >= 0])
    if len(arcs) != k:
        raise SolverError(f"hungarian: served {len(arcs)} contacts, max-flow says {k} can be")
    return Solution(arcs=arcs, solver="hungarian", optimal=True)
