"""The ε-scaling auction against independent references. Brute force and scipy's MILP: it is
one of ``test_solvers.EXACT``. Here OR-Tools (same served count and objective always; the
same arcs where the optimum is unique), on random and on the router's own candidate graphs;
deterministic on ties."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from references import milp_reference
from test_solvers import random_problem

from assign.config import RouterConfig
from assign.errors import SolverError
from assign.router import Router
from assign.solve import SOLVERS, Problem, solve_auction, solve_flow
from assign.workload import synthetic_snapshot


@st.composite
def problems(draw):
    """Random capacitated graphs; with ``grid`` the values sit on a few levels (many tied optima)."""
    seed = draw(st.integers(0, 2**32 - 1))
    p = random_problem(np.random.default_rng(seed), n=draw(st.integers(0, 40)), m=draw(st.integers(1, 12)),
                       max_deg=draw(st.integers(0, 8)), max_cap=draw(st.integers(1, 4)))
    if draw(st.booleans()):  # ties everywhere
        levels = draw(st.integers(1, 4))
        p = Problem(n_contacts=p.n_contacts, contact=p.contact, resource=p.resource,
                    value=np.floor(np.abs(p.value) * levels), capacity=p.capacity)
    return p


@settings(max_examples=150, deadline=None)
@given(problems())
def test_auction_equals_ortools(p):
    auction, flow = solve_auction(p), solve_flow(p)
    p.check(auction.arcs)
    assert auction.solver == "auction" and auction.optimal
    assert len(auction.arcs) == len(flow.arcs)
    assert p.objective(auction.arcs) == pytest.approx(p.objective(flow.arcs), abs=1e-9)
    np.testing.assert_array_equal(solve_auction(p).arcs, auction.arcs)  # same input, same output


def test_unique_optimum_gives_ortools_arcs():
    """Continuous random values: the optimum is unique (almost surely), so both exact solvers
    must choose the very same arcs."""
    rng = np.random.default_rng(41)
    for _ in range(40):
        p = random_problem(rng, n=int(rng.integers(1, 200)), m=int(rng.integers(1, 80)), max_deg=10, max_cap=3)
        np.testing.assert_array_equal(solve_auction(p).arcs, solve_flow(p).arcs)


def test_duplicates_unsorted_arcs_and_dead_resources():
    # contact 0 has two arcs to resource 0 (the better one must count), arcs out of order,
    # resource 2 has no capacity, contact 3 has no arc at all
    p = Problem(n_contacts=4, contact=[2, 0, 0, 1, 1, 2], resource=[1, 0, 0, 0, 2, 2],
                value=[0.3, 0.1, 0.9, 0.5, 5.0, 7.0], capacity=[1, 1, 0])
    sol = solve_auction(p)
    p.check(sol.arcs)
    assert sorted(sol.arcs.tolist()) == [0, 2]  # contact 0 via its better arc, contact 2 on resource 1
    assert p.objective(sol.arcs) == pytest.approx(milp_reference(p)[1])


def test_ties_break_the_same_way_every_time():
    p = Problem(n_contacts=5, contact=[0, 1, 2, 3, 4, 4], resource=[0, 0, 0, 1, 1, 0], value=[1.0] * 6,
                capacity=[2, 1])
    first = solve_auction(p).arcs
    assert len(first) == 3
    for _ in range(5):
        np.testing.assert_array_equal(solve_auction(p).arcs, first)


def _outlier_problem() -> Problem:
    rng = np.random.default_rng(3)
    n = m = 12
    value = rng.uniform(0, 1, n * m)
    value[0] = 1e12
    return Problem(n_contacts=n, contact=np.repeat(np.arange(n), m), resource=np.tile(np.arange(m), n),
                   value=value, capacity=np.ones(m, int))


def test_values_too_fine_for_integer_costs_are_refused():
    """1e12 on one arc and 0..1 elsewhere: like the flow, the auction refuses."""
    with pytest.raises(SolverError, match="cost range"):
        solve_auction(_outlier_problem())


@pytest.mark.parametrize("density", [0.4, 0.85])
def test_router_candidate_graphs(density):
    """The graphs a tick builds (pruned, shared agent quality, chat capacity up to 3): the
    auction's served count and objective equal OR-Tools' and the MILP's."""
    router = Router()
    for seed in range(2):
        p = router.problem(synthetic_snapshot(n_contacts=300, n_agents=200, seed=900 + seed,
                                              skill_density=density)).problem
        auction, flow = solve_auction(p), solve_flow(p)
        p.check(auction.arcs)
        served, value = milp_reference(p)
        assert len(auction.arcs) == len(flow.arcs) == served
        assert p.objective(auction.arcs) == pytest.approx(value, rel=1e-9)
        assert p.objective(auction.arcs) == pytest.approx(p.objective(flow.arcs), rel=1e-12)


def test_router_with_auction_solver_and_fallback(monkeypatch):
    snap = synthetic_snapshot(n_contacts=120, n_agents=60, seed=3)
    ours = Router(config=RouterConfig(solver="auction")).tick(snap)
    ref = Router().tick(snap)
    assert ours.solver == "auction" and not ours.fallback
    assert len(ours.assignments) == len(ref.assignments)
    assert ours.objective == pytest.approx(ref.objective, rel=1e-12)

    def refuse(problem):
        raise SolverError("cost range: refused for the test")

    router = Router(config=RouterConfig(solver="auction"))
    monkeypatch.setitem(SOLVERS, "auction", refuse)
    res = router.tick(snap)  # the chain: auction -> flow -> hungarian -> greedy
    assert res.solver == "flow" and "solver auction failed" in res.fallback_reason
    assert res.objective == pytest.approx(ref.objective, rel=1e-12)


@pytest.mark.parametrize("name", ["world-ml-batch-w5", "world-oracle-w5"])
def test_seeded_simulation_identical_with_the_auction(name, monkeypatch):
    """Every solve the seeded simulator's router makes goes to the auction: the stored fixture
    (per-contact arrays and KPIs, bit for bit) is reproduced."""
    import json

    import test_sim_regression as reg

    _, kind, factory, seed, window_s = next(c for c in reg._cases() if c[0] == name)
    calls = []

    def auction_as_flow(problem):
        calls.append(problem.n_arcs)
        return solve_auction(problem)

    monkeypatch.setitem(SOLVERS, "flow", auction_as_flow)
    run, kp = reg._run(kind, factory, seed, window_s, {kind: reg._world_source()})
    stored = np.load(reg.FIXTURE, allow_pickle=False)
    for k in reg.ARRAYS:
        np.testing.assert_array_equal(getattr(run, k), stored[f"{name}/{k}"], err_msg=f"{name}: {k}")
    assert reg._same_json(json.loads(json.dumps(kp)), json.loads(str(stored[f"{name}/kpis"])))
    assert len(calls) > 20
