"""The flow's certified shortcut for small problems (assign.solve.small) returns exactly what
OR-Tools returns, or declines. References: OR-Tools itself (the flow without the shortcut)
and exhaustive enumeration of every assignment on tiny instances."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from assign.solve import Problem, solve_flow
from assign.solve import flow as flow_mod
from assign.solve.small import MAX_NODES, solve_certified


def _random_problem(rng: np.random.Generator, *, ties: bool, n_max: int = 8, m_max: int = 6) -> Problem:
    n, m = int(rng.integers(1, n_max + 1)), int(rng.integers(1, m_max + 1))
    dense = rng.random((n, m)) < rng.uniform(0.2, 1.0)
    rows, cols = np.nonzero(dense)
    values = rng.integers(0, 4, len(rows)) / 4.0 if ties else rng.normal(0.5, 0.3, len(rows))
    capacity = rng.integers(0, 4, m)
    return Problem(n_contacts=n, contact=rows, resource=cols, value=values, capacity=capacity)


def _brute_force(p: Problem) -> tuple[int, float, set[tuple[int, ...]]]:
    """(most served, best value at that count, every arc set reaching both up to 1e-12)."""
    best = (-1, -np.inf)
    winners: set[tuple[int, ...]] = set()
    by_contact = [np.flatnonzero(p.contact == c).tolist() + [-1] for c in range(p.n_contacts)]
    res, val, cap = p.resource.tolist(), p.value.tolist(), p.capacity.tolist()
    for pick in itertools.product(*by_contact):
        arcs = [k for k in pick if k >= 0]
        used = [0] * len(cap)
        for k in arcs:
            used[res[k]] += 1
        if any(u > c for u, c in zip(used, cap)):
            continue
        key = (len(arcs), sum(val[k] for k in arcs))
        if key[0] > best[0] or (key[0] == best[0] and key[1] > best[1] + 1e-12):
            best, winners = key, {tuple(sorted(arcs))}
        elif key[0] == best[0] and abs(key[1] - best[1]) <= 1e-12:
            winners.add(tuple(sorted(arcs)))
    return best[0], best[1], winners


@pytest.mark.parametrize("ties", [False, True])
def test_certified_answers_equal_ortools_and_brute_force(ties):
    rng = np.random.default_rng(14 + ties)
    certified = declined = 0
    for _ in range(250):
        p = _random_problem(rng, ties=ties, n_max=5, m_max=4)
        ours = solve_certified(p)
        ref = flow_mod._solve_one(p)  # OR-Tools, no shortcut
        served, value, winners = _brute_force(p)
        assert len(ref.arcs) == served and p.objective(ref.arcs) == pytest.approx(value, abs=1e-9)
        if ours is None:
            declined += 1
            continue
        certified += 1
        np.testing.assert_array_equal(ours.arcs, ref.arcs)
        assert winners == {tuple(ours.arcs.tolist())}  # certified means the optimum is unique
        assert ours.solver == "flow" and ours.optimal
    assert certified > 100  # the shortcut does its job...
    if ties:
        assert declined > 20  # ...and steps aside when optima tie


def test_exact_ties_and_near_ties_are_declined():
    # two agents worth the same to one contact: the flow's choice is its own business
    tie = Problem(n_contacts=1, contact=[0, 0], resource=[0, 1], value=[0.5, 0.5], capacity=[1, 1])
    assert solve_certified(tie) is None
    near = Problem(n_contacts=1, contact=[0, 0], resource=[0, 1], value=[0.5, 0.5 + 1e-13], capacity=[1, 1])
    assert solve_certified(near) is None
    clear = Problem(n_contacts=1, contact=[0, 0], resource=[0, 1], value=[0.5, 0.6], capacity=[1, 1])
    assert solve_certified(clear).arcs.tolist() == [1]
    # two contacts competing for one slot with equal value: either could be served
    swap = Problem(n_contacts=2, contact=[0, 1], resource=[0, 0], value=[0.3, 0.3], capacity=[1])
    assert solve_certified(swap) is None


def test_values_the_flow_would_refuse_are_declined():
    # one outlier: the flow refuses for resolution (and the router uses hungarian); so must we
    p = Problem(n_contacts=3, contact=[0, 1, 2], resource=[0, 0, 1], value=[1e12, 0.25, 0.5], capacity=[1, 1])
    assert solve_certified(p) is None


def test_large_problems_are_left_to_ortools():
    n = MAX_NODES
    p = Problem(n_contacts=n, contact=np.arange(n), resource=np.zeros(n, int), value=np.linspace(0, 1, n),
                capacity=[n])
    assert solve_certified(p) is None


def test_solve_flow_is_the_same_with_and_without_the_shortcut(monkeypatch):
    rng = np.random.default_rng(7)
    problems = [_random_problem(rng, ties=bool(k % 2)) for k in range(200)]
    fast = [solve_flow(p).arcs for p in problems]
    monkeypatch.setattr(flow_mod, "SHORTCUT_MAX_ARCS", 0)
    slow = [solve_flow(p).arcs for p in problems]
    for a, b in zip(fast, slow):
        np.testing.assert_array_equal(a, b)
