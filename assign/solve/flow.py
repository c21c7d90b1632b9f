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

Rounding to integers can change the answer. With ``e_k`` the rounding error of arc k (in
units of the quantum ``q = range / S``), the flow's answer is within ``2 * n * max|e| * q`` of
the true optimum. :func:`resolution_problem` compares that bound with the resolution the
values need (:data:`RESOLUTION` of their typical spread, never below float64 precision of
the largest); when the bound is coarser, the flow refuses with :class:`SolverError` so that
the router falls back to the exact float solver (``hungarian``) with the reason recorded.
This is what keeps one outlier (1e12 among values in 0..1) or a huge tick from silently
turning every other choice arbitrary.

Large graphs are solved one connected component at a time (:data:`SPLIT_MIN_ARCS`): a
contact only reaches resources of its own channel, so a tick falls apart into one
independent problem per channel at least, and OR-Tools' cost scaling does less work on
the parts than on their union. Each part is an exact solve of its own arcs, so the union
is optimal; arcs keep their order inside each part.
"""
from __future__ import annotations

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from assign.errors import SolverError
from assign.solve.problem import Problem, Solution

_INT_BUDGET = 2**60
MAX_SCALE = 10**15
MIN_SCALE = 10**4
#: Differences smaller than this share of the values' typical spread may be treated as ties.
RESOLUTION = 1e-8
#: Graphs with at least this many arcs are solved one connected component at a time.
SPLIT_MIN_ARCS = 20_000
#: Graphs with at most this many arcs first try the certified shortcut (:mod:`assign.solve.small`); 0: off.
SHORTCUT_MAX_ARCS = 2_000


def cost_scale(*, n_contacts: int, n_nodes: int) -> int:
    """The value scale S: ``S * (n + 1) * (nodes + 1)`` stays below 2**60, capped at 1e15."""
    bound = _INT_BUDGET // ((n_contacts + 1) * (n_nodes + 1) + 1)
    scale = min(MAX_SCALE, bound)
    if scale < MIN_SCALE:
        raise SolverError(
            f"cost range: {n_contacts} contacts on {n_nodes} nodes leave a value scale of {scale}, "
            f"below the minimum {MIN_SCALE}; the problem is too large for exact integer costs")
    return int(scale)


def integer_costs(value: np.ndarray, scale: int) -> tuple[np.ndarray, float]:
    """Arc costs in [0, S] (best value -> 0) and the largest rounding error, in quanta."""
    vmin, vmax = float(value.min()), float(value.max())
    vrange = vmax - vmin
    if not np.isfinite(vrange):
        raise SolverError(f"cost range: values {vmin:g}..{vmax:g} span more than a float can hold")
    if vrange <= 0:
        return np.zeros(len(value), dtype=np.int64), 0.0
    exact = (vmax - value) / vrange * scale
    cost = np.rint(exact)
    return cost.astype(np.int64), float(np.abs(exact - cost).max())


def resolution_problem(value: np.ndarray, *, scale: int, max_error: float, n_served: int) -> str | None:
    """Why integer costs at ``scale`` cannot give the exact optimum for ``value``, or None.

    The resolution needed is :data:`RESOLUTION` times the values' typical spread (the median
    distance from the median: an outlier does not widen it), but never finer than float64
    can tell apart at the largest magnitude. The flow's worst-case loss must stay below it."""
    if max_error == 0.0 or len(value) < 2:
        return None
    vrange = float(value.max() - value.min())
    med = float(np.median(value))
    spread = float(np.median(np.abs(value - med)))
    if spread == 0.0:
        spread = vrange
    floor = 4 * np.finfo(np.float64).eps * max(abs(float(value.max())), abs(float(value.min())))
    need = max(RESOLUTION * spread, floor)
    loss = 2.0 * max(n_served, 1) * max_error * vrange / scale
    if loss <= need * max(n_served, 1):
        return None
    return (f"cost range: values {float(value.min()):.6g}..{float(value.max()):.6g} at integer scale {scale} "
            f"may lose up to {loss:.3g} of value, above the resolution {need * max(n_served, 1):.3g} "
            f"they need; an exact float solver is required")


def components(problem: Problem) -> list[np.ndarray]:
    """The arcs of each connected component of the contact-resource graph (ascending arc
    indices; components in order of their first arc)."""
    n = problem.n_contacts
    graph = csr_matrix((np.ones(problem.n_arcs, dtype=np.int8), (problem.contact, n + problem.resource)),
                       shape=(n + problem.n_resources,) * 2)
    _, labels = connected_components(graph, directed=False)
    arc_label = labels[problem.contact]
    order = np.argsort(arc_label, kind="stable")
    cuts = np.flatnonzero(np.diff(arc_label[order])) + 1
    parts = np.split(order, cuts)
    return sorted(parts, key=lambda part: int(part[0]))


def _part(problem: Problem, arcs: np.ndarray) -> Problem:
    """The sub-problem on ``arcs`` with its contacts and resources renumbered in order."""
    cs, rs = np.unique(problem.contact[arcs]), np.unique(problem.resource[arcs])
    return Problem(n_contacts=len(cs), contact=np.searchsorted(cs, problem.contact[arcs]),
                   resource=np.searchsorted(rs, problem.resource[arcs]), value=problem.value[arcs],
                   capacity=problem.capacity[rs])


def solve_flow(problem: Problem, *, shortcut: bool = True) -> Solution:
    """Solve exactly with ``ortools.graph.python.min_cost_flow.SimpleMinCostFlow``, one
    connected component at a time on large graphs; raises :class:`SolverError` when integer
    costs cannot represent the values finely enough. Small problems whose answer is certain
    skip the graph (:func:`assign.solve.small.solve_certified`: the same answer; ``shortcut``
    False: never)."""
    if shortcut and problem.n_arcs <= SHORTCUT_MAX_ARCS:
        from assign.solve.small import solve_certified

        sol = solve_certified(problem)
        if sol is not None:
            return sol
    if problem.n_arcs >= SPLIT_MIN_ARCS:
        parts = components(problem)
        if len(parts) > 1:
            arcs = [part[_solve_one(_part(problem, part)).arcs] for part in parts]
            return Solution(arcs=np.sort(np.concatenate(arcs)), solver="flow", optimal=True)
    return _solve_one(problem)


def _solve_one(problem: Problem) -> Solution:
    """One min-cost flow on the whole graph."""
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
    arc_cost, max_error = integer_costs(problem.value, scale)
    n_served = int(min(n, problem.capacity[used].sum()))
    why = resolution_problem(problem.value, scale=scale, max_error=max_error, n_served=n_served)
    if why:
        raise SolverError(why)

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
