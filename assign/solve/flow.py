"""OR-Tools min-cost flow on the sparse candidate graph: the primary, exact solver.

source supply -> contacts (1 each) -> resources (arc capacity 1) -> sink (free capacity),
plus an "unassigned" arc per contact straight to the sink so the flow is always feasible.
Costs are integers: values are shifted to >= 0 and scaled by ``S``; the unassigned arc costs
``U = (n + 1) * S``, more than any difference in total value, which makes serving one more
contact always worth more than any re-shuffle (the work-conserving objective). ``S`` is
chosen so that OR-Tools' internal cost scaling cannot overflow int64; the range is checked
explicitly because an overflowing total can still come back as OPTIMAL.
"""
from __future__ import annotations

import numpy as np

from assign.errors import SolverError
from assign.solve.problem import Problem, Solution

_INT_BUDGET = 2**60
MAX_SCALE = 10**12
MIN_SCALE = 10**4


def cost_scale(*, n_contacts: int, n_nodes: int) -> int:
    """The value scale S: as fine as the int64 budget allows, capped at 1e12.

    OR-Tools multiplies costs by (number of nodes + 1) inside its cost-scaling algorithm, and
    the largest cost is U = (n + 1) * S, so S * (n + 1) * (nodes + 1) must stay below 2**60.
    """
    bound = _INT_BUDGET // ((n_contacts + 1) * (n_nodes + 1) + 1)
    scale = min(MAX_SCALE, bound)
    if scale < MIN_SCALE:
        raise SolverError(
            f"cost range: {n_contacts} contacts on {n_nodes} nodes leave a value scale of {scale}, "
            f"below the minimum {MIN_SCALE}; the problem is too large for exact integer costs")
    return int(scale)


def solve_flow(problem: Problem) -> Solution:
    """Solve exactly with ``ortools.graph.python.min_cost_flow.SimpleMinCostFlow``."""
    try:
        from ortools.graph.python import min_cost_flow
    except ImportError as err:  # pragma: no cover - ortools is a core dependency
        raise SolverError(f"OR-Tools is not available: {err}") from err

    n, m = problem.n_contacts, problem.n_resources
    if n == 0 or problem.n_arcs == 0:
        return Solution(arcs=np.zeros(0, dtype=np.int64), solver="flow", optimal=True)
    sink = n + m
    n_nodes = n + m + 1
    scale = cost_scale(n_contacts=n, n_nodes=n_nodes)
    v = problem.value
    vmin, vrange = float(v.min()), float(v.max() - v.min())
    rel = (v - vmin) / vrange if vrange > 0 else np.zeros_like(v)
    arc_cost = np.rint((1.0 - rel) * scale).astype(np.int64)  # in [0, S]
    unassigned_cost = (n + 1) * scale

    used_res = np.unique(problem.resource)
    tails = np.concatenate([problem.contact, n + used_res, np.arange(n)])
    heads = np.concatenate([n + problem.resource, np.full(len(used_res), sink), np.full(n, sink)])
    caps = np.concatenate([np.ones(problem.n_arcs, dtype=np.int64), problem.capacity[used_res],
                           np.ones(n, dtype=np.int64)])
    costs = np.concatenate([arc_cost, np.zeros(len(used_res), dtype=np.int64),
                            np.full(n, unassigned_cost, dtype=np.int64)])
    total_bound = n * unassigned_cost
    if total_bound >= _INT_BUDGET:
        raise SolverError(f"cost range: total cost bound {total_bound} exceeds 2**60")

    smcf = min_cost_flow.SimpleMinCostFlow()
    smcf.add_arcs_with_capacity_and_unit_cost(tails.astype(np.int32), heads.astype(np.int32),
                                              caps, costs)
    supplies = np.zeros(n_nodes, dtype=np.int64)
    supplies[:n] = 1
    supplies[sink] = -n
    smcf.set_nodes_supplies(np.arange(n_nodes, dtype=np.int32), supplies)
    status = smcf.solve()
    if status != smcf.OPTIMAL:
        raise SolverError(f"min-cost flow ended with status {status!r}, not OPTIMAL")
    cost = smcf.optimal_cost()
    if not 0 <= cost <= total_bound:
        raise SolverError(f"min-cost flow reported cost {cost} outside [0, {total_bound}]: overflow")
    flows = smcf.flows(np.arange(problem.n_arcs, dtype=np.int32))
    arcs = np.flatnonzero(flows > 0).astype(np.int64)
    return Solution(arcs=arcs, solver="flow", optimal=True)
