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
from numba import njit

from assign.buckets import bucket
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


@njit(cache=True)
def _find(parent, v):
    while parent[v] != v:
        parent[v] = parent[parent[v]]
        v = parent[v]
    return v


@njit(cache=True)
def _split(contact, resource, n, n_res):
    """The connected components of the contact-resource graph, in order of their first arc:
    the arcs of part p are ``order[ptr[p]:ptr[p+1]]`` (ascending), with their contacts and
    resources renumbered ``0..`` in ascending id order within the part (``local_c``,
    ``local_r``, aligned with ``order``); ``n_c[p]`` contacts and the resources
    ``r_ids[r_ptr[p]:r_ptr[p+1]]`` (ascending). What ``np.unique`` per part would give."""
    n_arcs = len(contact)
    parent = np.arange(n + n_res)
    for a in range(n_arcs):
        x, y = _find(parent, contact[a]), _find(parent, n + resource[a])
        if x != y:
            parent[max(x, y)] = min(x, y)
    part_of_root = np.full(n + n_res, -1, dtype=np.int64)
    arc_part = np.empty(n_arcs, dtype=np.int64)
    n_parts = 0
    for a in range(n_arcs):  # parts numbered in order of their first arc
        root = _find(parent, contact[a])
        if part_of_root[root] < 0:
            part_of_root[root] = n_parts
            n_parts += 1
        arc_part[a] = part_of_root[root]
    ptr, order = bucket(arc_part, n_parts)
    # local numbers: ascending id within the part, only nodes that have an arc
    c_local = np.full(n, -1, dtype=np.int64)
    r_local = np.full(n_res, -1, dtype=np.int64)
    for a in range(n_arcs):
        c_local[contact[a]] = 0
        r_local[resource[a]] = 0
    n_c = np.zeros(n_parts, dtype=np.int64)
    n_r = np.zeros(n_parts, dtype=np.int64)
    for i in range(n):
        if c_local[i] == 0:
            p = part_of_root[_find(parent, i)]
            c_local[i] = n_c[p]
            n_c[p] += 1
    r_ptr = np.zeros(n_parts + 1, dtype=np.int64)
    for r in range(n_res):
        if r_local[r] == 0:
            p = part_of_root[_find(parent, n + r)]
            r_local[r] = n_r[p]
            n_r[p] += 1
    for p in range(n_parts):
        r_ptr[p + 1] = r_ptr[p] + n_r[p]
    r_ids = np.empty(r_ptr[n_parts], dtype=np.int64)
    for r in range(n_res):
        if r_local[r] >= 0:
            r_ids[r_ptr[part_of_root[_find(parent, n + r)]] + r_local[r]] = r
    local_c = np.empty(n_arcs, dtype=np.int64)
    local_r = np.empty(n_arcs, dtype=np.int64)
    for x in range(n_arcs):
        local_c[x] = c_local[contact[order[x]]]
        local_r[x] = r_local[resource[order[x]]]
    return order, ptr, local_c, local_r, n_c, r_ids, r_ptr


def components(problem: Problem) -> list[np.ndarray]:
    """The arcs of each connected component of the contact-resource graph (ascending arc
    indices; components in order of their first arc)."""
    order, ptr, *_ = _split(problem.contact, problem.resource, problem.n_contacts, problem.n_resources)
    return [order[ptr[p]:ptr[p + 1]] for p in range(len(ptr) - 1)]


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
        order, ptr, local_c, local_r, n_c, r_ids, r_ptr = _split(problem.contact, problem.resource,
                                                                 problem.n_contacts, problem.n_resources)
        if len(ptr) > 2:
            arcs = []
            for p in range(len(ptr) - 1):
                part = order[ptr[p]:ptr[p + 1]]
                chosen = _solve_arrays(int(n_c[p]), local_c[ptr[p]:ptr[p + 1]], local_r[ptr[p]:ptr[p + 1]],
                                       problem.capacity[r_ids[r_ptr[p]:r_ptr[p + 1]]], problem.value[part])
                arcs.append(part[chosen])
            return Solution(arcs=np.sort(np.concatenate(arcs)), solver="flow", optimal=True)
    return _solve_one(problem)


def _solve_one(problem: Problem) -> Solution:
    """One min-cost flow on the whole graph."""
    if problem.n_contacts == 0 or problem.n_arcs == 0:
        return Solution(arcs=np.zeros(0, dtype=np.int64), solver="flow", optimal=True)
    used, res = np.unique(problem.resource, return_inverse=True)
    arcs = _solve_arrays(problem.n_contacts, problem.contact, res, problem.capacity[used], problem.value)
    return Solution(arcs=arcs, solver="flow", optimal=True)


def _solve_arrays(n: int, contact: np.ndarray, res: np.ndarray, cap: np.ndarray, value: np.ndarray) -> np.ndarray:
    """The chosen arcs of one min-cost flow: ``n`` contacts, resources ``0..len(cap)-1`` (every
    one with an arc), arc k from ``contact[k]`` to ``res[k]`` worth ``value[k]``."""
    try:
        from ortools.graph.python import min_cost_flow
    except ImportError as err:  # pragma: no cover - ortools is a core dependency
        raise SolverError(f"OR-Tools is not available: {err}") from err

    m, n_arcs = len(cap), len(contact)
    sink, source = n + m, n + m + 1
    scale = cost_scale(n_contacts=n, n_nodes=n + m + 2)
    arc_cost, max_error = integer_costs(value, scale)
    n_served = int(min(n, cap.sum()))
    why = resolution_problem(value, scale=scale, max_error=max_error, n_served=n_served)
    if why:
        raise SolverError(why)

    # arcs in this order: contact arcs first, so arc k of the problem is arc k of the graph
    tails = np.concatenate([contact, n + np.arange(m), np.full(n, source)])
    heads = np.concatenate([n + res, np.full(m, sink), np.arange(n)])
    caps = np.concatenate([np.ones(n_arcs, dtype=np.int64), cap, np.ones(n, dtype=np.int64)])
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
    flows = smcf.flows(np.arange(n_arcs, dtype=np.int32))
    return np.flatnonzero(flows > 0).astype(np.int64)
