"""OR-Tools min-cost flow on the sparse candidate graph: the primary, exact solver.

source -> contacts (capacity 1) -> agent-channel resources (arc capacity 1) -> sink (free
capacity). ``solve_max_flow_with_min_cost`` sends the largest flow the graph admits (serve as
many contacts as capacity allows: the work-conserving objective) at the least cost among
those, so no supply has to match and the problem is feasible by construction; this plays the
role of an "unassigned" arc per contact without the big unassigned cost, which would widen
the cost range (and the solve time) for nothing.

Costs are integers: values are shifted to >= 0 and scaled by ``S``, as fine as the int64
budget allows. OR-Tools multiplies costs by (nodes + 1) inside its cost-scaling algorithm,
and the total over ``n`` units of flow must not overflow either, so the range is checked
explicitly: an overflowing total can still come back as OPTIMAL.
"""
from __future__ import annotations

import numpy as np

from assign.errors import SolverError
from assign.solve.problem import Problem, Solution

_INT_BUDGET = 2**60
MAX_SCALE = 10**12
MIN_SCALE = 10**4


def cost_scale(*, n_contacts: int, n_nodes: int) -> int:
    """The value scale S: ``S * (n + 1) * (nodes + 1)`` stays below 2**60, capped at 1e12."""
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

    n = problem.n_contacts
    if n == 0 or problem.n_arcs == 0:
        return Solution(arcs=np.zeros(0, dtype=np.int64), solver="flow", optimal=True)
    used, res = np.unique(problem.resource, return_inverse=True)
    m = len(used)
    sink, source = n + m, n + m + 1
    scale = cost_scale(n_contacts=n, n_nodes=n + m + 2)
    v = problem.value
    vmin, vrange = float(v.min()), float(v.max() - v.min())
    rel = (v - vmin) / vrange if vrange > 0 else np.zeros_like(v)
    arc_cost = np.rint((1.0 - rel) * scale).astype(np.int64)  # in [0, S]

    # arcs in this order: contact arcs first, so arc k of the problem is arc k of the graph
    tails = np.concatenate([problem.contact, n + np.arange(m), np.full(n, source)])
    heads = np.concatenate([n + res, np.full(m, sink), np.arange(n)])
    caps = np.concatenate([np.ones(problem.n_arcs, dtype=np.int64), problem.capacity[used],
                           np.ones(n, dtype=np.int64)])
    costs = np.concatenate([arc_cost, np.zeros(m + n, dtype=np.int64)])

    smcf = min_cost_flow.SimpleMinCostFlow()
    smcf.add_arcs_with_capacity_and_unit_cost(tails.astype(np.int32), heads.astype(np.int32), caps, costs)
    smcf.set_node_supply(source, n)
    smcf.set_node_supply(sink, -n)
    status = smcf.solve_max_flow_with_min_cost()
    if status != smcf.OPTIMAL:
        raise SolverError(f"min-cost flow ended with status {status!r}, not OPTIMAL")
    cost, bound = smcf.optimal_cost(), n * scale
    if not 0 <= cost <= bound:
        raise SolverError(f"min-cost flow reported cost {cost} outside [0, {bound}]: overflow")
    flows = smcf.flows(np.arange(problem.n_arcs, dtype=np.int32))
    arcs = np.flatnonzero(flows > 0).astype(np.int64)
    return Solution(arcs=arcs, solver="flow", optimal=True)
