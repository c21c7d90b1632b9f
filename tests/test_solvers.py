"""Solvers against references: brute force on tiny instances, scipy's MILP (HiGHS) on random
capacitated ones; properties of every answer with hypothesis."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from references import brute_force, milp_reference

from assign.errors import SolverError
from assign.solve import Problem, solve_auction, solve_flow, solve_greedy, solve_hungarian
from assign.solve.flow import cost_scale
from assign.solve.greedy import solve_in_order

EXACT = [solve_flow, solve_hungarian, solve_auction]


def random_problem(rng: np.random.Generator, *, n: int, m: int, max_deg: int, max_cap: int = 3) -> Problem:
    contact, resource = [], []
    for i in range(n):
        k = int(rng.integers(0, min(m, max_deg) + 1))  # some contacts have no arc at all
        for r in np.sort(rng.choice(m, k, replace=False)):
            contact.append(i)
            resource.append(int(r))
    return Problem(n_contacts=n, contact=contact, resource=resource,
                   value=rng.normal(size=len(contact)), capacity=rng.integers(0, max_cap + 1, m))


@pytest.mark.parametrize("solver", EXACT, ids=lambda f: f.__name__)
def test_exact_solvers_match_brute_force(solver):
    rng = np.random.default_rng(11)
    for _ in range(60):
        p = random_problem(rng, n=int(rng.integers(1, 6)), m=int(rng.integers(1, 4)), max_deg=3, max_cap=2)
        sol = solver(p)
        p.check(sol.arcs)
        served, value = brute_force(p)
        assert len(sol.arcs) == served
        assert p.objective(sol.arcs) == pytest.approx(value, abs=1e-9)


@pytest.mark.parametrize("solver", EXACT, ids=lambda f: f.__name__)
def test_exact_solvers_match_milp_on_capacitated_instances(solver):
    rng = np.random.default_rng(5)
    for _ in range(25):
        p = random_problem(rng, n=int(rng.integers(5, 80)), m=int(rng.integers(2, 40)), max_deg=8)
        sol = solver(p)
        p.check(sol.arcs)
        served, value = milp_reference(p)
        assert len(sol.arcs) == served
        assert p.objective(sol.arcs) == pytest.approx(value, abs=1e-6)


@st.composite
def problems(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    n = draw(st.integers(0, 25))
    m = draw(st.integers(1, 10))
    return random_problem(np.random.default_rng(seed), n=n, m=m, max_deg=draw(st.integers(0, 6)))


@settings(max_examples=60, deadline=None)
@given(problems())
def test_properties_of_every_solver(p):
    flow, hung, greedy = solve_flow(p), solve_hungarian(p), solve_greedy(p)
    for sol in (flow, hung, greedy):
        p.check(sol.arcs)  # no contact twice, capacities respected, only candidate arcs
    assert len(flow.arcs) == len(hung.arcs) >= len(greedy.arcs)  # served count maximal
    assert p.objective(flow.arcs) == pytest.approx(p.objective(hung.arcs), abs=1e-9)
    if len(flow.arcs) == len(greedy.arcs):  # at equal count, never below greedy
        assert p.objective(flow.arcs) >= p.objective(greedy.arcs) - 1e-9
    again = solve_flow(p)
    np.testing.assert_array_equal(again.arcs, flow.arcs)  # same input, same output


def test_greedy_takes_best_value_first_and_in_order_follows_the_order():
    # one resource with one slot; contact 1 has the higher value
    p = Problem(n_contacts=2, contact=[0, 1], resource=[0, 0], value=[0.5, 0.9], capacity=[1])
    assert list(solve_greedy(p).arcs) == [1]
    assert list(solve_in_order(p, contact_order=np.array([0, 1])).arcs) == [0]


def test_ties_break_the_same_way_every_time():
    p = Problem(n_contacts=3, contact=[0, 1, 2], resource=[0, 0, 0], value=[1.0, 1.0, 1.0], capacity=[2])
    first = solve_flow(p).arcs
    for _ in range(5):
        np.testing.assert_array_equal(solve_flow(p).arcs, first)


def test_cost_range_is_checked():
    with pytest.raises(SolverError, match="cost range"):
        cost_scale(n_contacts=10**8, n_nodes=10**8)


def test_problem_rejects_bad_arcs():
    with pytest.raises(ValueError, match="finite"):
        Problem(n_contacts=1, contact=[0], resource=[0], value=[np.nan], capacity=[1])
    with pytest.raises(ValueError, match="resource index"):
        Problem(n_contacts=1, contact=[0], resource=[3], value=[1.0], capacity=[1])


def test_hungarian_refuses_matrices_too_large():
    import assign.solve.hungarian as h

    p = Problem(n_contacts=3, contact=[0, 1, 2], resource=[0, 0, 0], value=[1.0, 2.0, 3.0], capacity=[3])
    old = h.MAX_CELLS
    h.MAX_CELLS = 5
    try:
        with pytest.raises(SolverError, match="exceeds"):
            solve_hungarian(p)
    finally:
        h.MAX_CELLS = old


def test_flow_split_into_components_matches_milp(monkeypatch):
    """Large graphs are solved one connected component at a time: forced on small ones here,
    the answers must still be the MILP optimum, and the parts must partition the arcs."""
    from assign.solve import flow

    monkeypatch.setattr(flow, "SPLIT_MIN_ARCS", 0)
    rng = np.random.default_rng(23)
    n_split = 0
    for _ in range(25):
        p = random_problem(rng, n=int(rng.integers(5, 60)), m=int(rng.integers(4, 40)), max_deg=3)
        parts = flow.components(p) if p.n_arcs else []
        if p.n_arcs:
            assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(p.n_arcs))
            for part in parts:  # no contact and no resource in two parts
                others = np.setdiff1d(np.arange(p.n_arcs), part)
                assert not np.intersect1d(p.contact[part], p.contact[others]).size
                assert not np.intersect1d(p.resource[part], p.resource[others]).size
        n_split += len(parts) > 1
        sol = solve_flow(p)
        p.check(sol.arcs)
        served, value = milp_reference(p)
        assert len(sol.arcs) == served
        assert p.objective(sol.arcs) == pytest.approx(value, abs=1e-6)
    assert n_split >= 10  # the split path really ran


def test_flow_split_gives_the_per_part_solves_of_scipy_components(monkeypatch):
    """The numba split (union-find, parts renumbered in id order) feeds OR-Tools exactly what
    the earlier implementation did (scipy's connected components, ``np.unique`` per part): the
    same parts and the same chosen arcs."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    from assign.solve import flow

    monkeypatch.setattr(flow, "SPLIT_MIN_ARCS", 0)
    rng = np.random.default_rng(29)
    n_split = 0
    for _ in range(20):
        p = random_problem(rng, n=int(rng.integers(5, 80)), m=int(rng.integers(4, 50)), max_deg=3)
        if not p.n_arcs:
            continue
        n = p.n_contacts
        graph = csr_matrix((np.ones(p.n_arcs), (p.contact, n + p.resource)), shape=(n + p.n_resources,) * 2)
        _, labels = connected_components(graph, directed=False)
        want = sorted((np.flatnonzero(labels[p.contact] == lab) for lab in np.unique(labels[p.contact])),
                      key=lambda part: int(part[0]))
        got = flow.components(p)
        assert len(got) == len(want) and all(np.array_equal(a, b) for a, b in zip(got, want))
        n_split += len(want) > 1
        chosen = []
        for part in want:
            cs, rs = np.unique(p.contact[part]), np.unique(p.resource[part])
            sub = Problem(n_contacts=len(cs), contact=np.searchsorted(cs, p.contact[part]),
                          resource=np.searchsorted(rs, p.resource[part]), value=p.value[part],
                          capacity=p.capacity[rs])
            chosen.append(part[flow._solve_one(sub).arcs])
        np.testing.assert_array_equal(solve_flow(p).arcs, np.sort(np.concatenate(chosen)))
    assert n_split >= 10  # the split path really ran
