"""Pair propensities of the perturbed matching against the solver's own empirical choices."""
from __future__ import annotations

import numpy as np
import pytest

import assign.ope.propensity as prop
from assign.solve import SOLVERS, Problem


def _instance(seed: int) -> Problem:
    """4 contacts sharing 3 agent-channels of one slot each: one contact stays queued, and who
    gets whom depends on the whole window."""
    rng = np.random.default_rng(seed)
    contact = np.array([0, 0, 1, 1, 2, 2, 3])
    resource = np.array([0, 1, 0, 2, 1, 2, 2])
    return Problem(n_contacts=4, contact=contact, resource=resource, value=rng.uniform(0, 0.4, 7),
                   capacity=np.array([1, 1, 1]))


def _empirical(problem: Problem, *, temperature: float, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    counts = np.zeros(problem.n_arcs)
    for _ in range(n):
        counts[SOLVERS["flow"](prop.perturb(problem, temperature=temperature, rng=rng)).arcs] += 1
    return counts / n


def _close(est: np.ndarray, emp: np.ndarray, n_emp: int, n_est: int) -> None:
    p = np.clip((est + emp) / 2, 1e-3, 1 - 1e-3)
    se = np.sqrt(p * (1 - p) / n_emp + p * (1 - p) / n_est)
    assert np.all(np.abs(est - emp) <= 4.5 * se + 1e-9), (est, emp)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_enumerated_propensities_match_the_solver(seed):
    problem = _instance(seed)
    emp = _empirical(problem, temperature=0.1, n=3000, seed=100 + seed)
    est = prop.arc_propensities(problem, temperature=0.1, n_draws=20000, rng=np.random.default_rng(seed))
    _close(est, emp, 3000, 20000)
    # every contact's propensities sum to its chance of being served (here 3 of 4 served)
    assert est.sum() == pytest.approx(3.0)
    assert (est > 0).all()


@pytest.mark.slow
def test_resolve_fallback_matches_the_solver(monkeypatch):
    problem = _instance(2)
    monkeypatch.setattr(prop, "MAX_MATCHINGS", 0)  # force re-solving draw by draw
    est = prop.arc_propensities(problem, temperature=0.1, n_draws=2000, rng=np.random.default_rng(7))
    emp = _empirical(problem, temperature=0.1, n=2000, seed=8)
    _close(est, emp, 2000, 2000)


def test_single_contact_is_softmax():
    v = np.array([0.5, 0.3, 0.45])
    problem = Problem(n_contacts=1, contact=[0, 0, 0], resource=[0, 1, 2], value=v, capacity=[1, 1, 1])
    est = prop.arc_propensities(problem, temperature=0.1, n_draws=10, rng=np.random.default_rng(0))
    soft = np.exp(v / 0.1) / np.exp(v / 0.1).sum()
    np.testing.assert_allclose(est, soft, rtol=1e-12)
    _close(est, _empirical(problem, temperature=0.1, n=3000, seed=1), 3000, 10**9)


def test_components_split_independent_parts():
    problem = Problem(n_contacts=4, contact=[0, 1, 1, 2, 3], resource=[0, 0, 1, 2, 2], value=np.zeros(5),
                      capacity=[1, 1, 1])
    lab = prop.components(problem)
    assert lab[0] == lab[1] == lab[2] and lab[3] == lab[4] and lab[0] != lab[3]


def test_zero_temperature_is_the_solver():
    problem = _instance(3)
    est = prop.arc_propensities(problem, temperature=0.0, n_draws=10, rng=np.random.default_rng(0))
    best = np.zeros(problem.n_arcs)
    best[SOLVERS["flow"](problem).arcs] = 1.0
    np.testing.assert_array_equal(est, best)
