"""scipy's Hungarian method on the slot-expanded matrix: the exact fallback of the flow solver.

Every resource becomes as many columns as it can take (its capacity, but never more than the
contacts that can reach it); ``n`` dummy columns let any contact stay unassigned. An arc costs
``-(BIG + value - min)``, with ``BIG`` above any difference in total value, so serving one
more contact always wins (work-conserving), then value decides. Pairs with no arc are +inf.
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from assign.errors import SolverError
from assign.solve.problem import Problem, Solution

MAX_CELLS = 40_000_000


def solve_hungarian(problem: Problem) -> Solution:
    """Solve exactly with ``scipy.optimize.linear_sum_assignment`` (dense: fallback only)."""
    n = problem.n_contacts
    if n == 0 or problem.n_arcs == 0:
        return Solution(arcs=np.zeros(0, dtype=np.int64), solver="hungarian", optimal=True)
    reach = np.bincount(problem.resource, minlength=problem.n_resources)
    slots = np.minimum(problem.capacity, reach)
    first_col = np.concatenate([[0], np.cumsum(slots)])
    n_cols = int(first_col[-1]) + n
    if n * n_cols > MAX_CELLS:
        raise SolverError(f"hungarian: {n} x {n_cols} slot matrix exceeds {MAX_CELLS} cells")
    v = problem.value
    big = n * float(v.max() - v.min()) + 1.0
    cost = np.full((n, n_cols), np.inf)
    cost[:, first_col[-1]:] = 0.0
    arc_of_cell = np.full((n, n_cols), -1, dtype=np.int64)
    for k in range(int(slots.max(initial=0))):
        ok = slots[problem.resource] > k
        rows, cols = problem.contact[ok], first_col[problem.resource[ok]] + k
        cost[rows, cols] = -(big + v[ok] - v.min())
        arc_of_cell[rows, cols] = np.flatnonzero(ok)
    try:
        rows, cols = linear_sum_assignment(cost)
    except ValueError as err:
        raise SolverError(f"hungarian: {err}") from err
    arcs = arc_of_cell[rows, cols]
    return Solution(arcs=np.sort(arcs[arcs >= 0]), solver="hungarian", optimal=True)
