"""Budgeted Thompson exploration: the budget holds, propensities match frequencies."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from assign.learn import Explore, LearnScorer, LiveEstimates, MemorySink
from assign.router import Router
from assign.workload import synthetic_snapshot


def _live(snap, rng, n_per_agent=(0, 3, 30)) -> LiveEstimates:
    """Uneven evidence: some agents new, some barely known, some well known."""
    live = LiveEstimates(intents=snap.intents)
    rows = []
    for j, a in enumerate(snap.agents.ids):
        n = n_per_agent[j % len(n_per_agent)]
        for k in range(n):
            rows.append((f"{a}-{k}", a, snap.intents[rng.integers(len(snap.intents))], float(rng.random() < 0.6)))
    if rows:
        live.observe(pd.DataFrame(rows, columns=["decision_id", "agent_id", "intent", "resolved"]).assign(
            csat=np.nan, handle_s=np.nan, known_at=pd.Timestamp(snap.at)))
    return live


@pytest.mark.parametrize("budget", [0.005, 0.05])
def test_drawn_assignment_stays_within_budget_of_exact(budget):
    snap = synthetic_snapshot(n_contacts=40, n_agents=15, seed=8)
    live = _live(snap, np.random.default_rng(0))
    exact = Router(scorer=LearnScorer(live=live), live=live).tick(snap)
    router = Router(scorer=LearnScorer(live=live), live=live, explore=Explore(budget=budget, seed=3))
    explored = 0
    for _ in range(60):
        r = router.tick(snap)
        assert len(r.assignments) == len(exact.assignments)
        assert r.objective >= exact.objective * (1 - budget) - 1e-9
        assert r.objective <= exact.objective + 1e-9
        explored += sum(d.explored for d in r.decisions)
    assert explored > 0  # it does explore


def test_explore_off_is_the_exact_tick():
    snap = synthetic_snapshot(n_contacts=20, n_agents=8, seed=1)
    live = _live(snap, np.random.default_rng(1))
    a = Router(scorer=LearnScorer(live=live), live=live).tick(snap)
    b = Router(scorer=LearnScorer(live=live)).tick(snap)
    assert [(x.contact_id, x.agent_id) for x in a.assignments] == [(x.contact_id, x.agent_id) for x in b.assignments]


@pytest.mark.slow
def test_propensity_estimate_matches_empirical_assignment_frequency():
    """A small window where contacts compete for agents (more candidates than contacts): the
    logged propensity of every pair against its frequency over many independent exploring ticks."""
    snap = synthetic_snapshot(n_contacts=8, n_agents=4, seed=3)
    live = _live(snap, np.random.default_rng(2), n_per_agent=(0, 4, 2, 0))
    assert Router().tick(snap).n_candidates > 2 * len(Router().tick(snap).assignments)
    ex = Explore(budget=0.3, seed=5, n_propensity_draws=1500)
    sink = MemorySink()
    logged = Router(scorer=LearnScorer(live=live), live=live, explore=ex, sink=sink)
    n_ticks = 800
    rng = np.random.default_rng(9)
    counts: dict[tuple[str, str], int] = {}
    emp = Router(scorer=LearnScorer(live=live), live=live, explore=Explore(budget=0.3, seed=int(rng.integers(1e9))))
    for _ in range(n_ticks):
        for x in emp.tick(snap).assignments:
            counts[(x.contact_id, x.agent_id)] = counts.get((x.contact_id, x.agent_id), 0) + 1
    checked = 0
    for _ in range(3):  # several logged ticks: several logged pairs
        logged.tick(snap)
    logged.flush()
    dec = sink.decision_frame()
    assert dec["propensity"].notna().all() and (dec["propensity"] > 0).all()
    for c, a, p in zip(dec["contact_id"], dec["agent_id"], dec["propensity"]):
        f = counts.get((c, a), 0) / n_ticks
        se = np.sqrt(f * (1 - f) / n_ticks + p * (1 - p) / ex.n_propensity_draws) + 1e-3
        assert abs(p - f) < 4 * se, (c, a, p, f)
        checked += 1
    assert checked >= 3 and 0.02 < dec["propensity"].min() < 0.98  # a pair that is genuinely random


def test_shrink_starts_from_the_step_that_last_passed():
    from assign.learn.explore import Drawn, StepHint, start_steps

    shrink = (1.0, 0.5, 0.25, 0.125)
    assert start_steps(shrink, 0.25) == (0.25, 0.125) and start_steps(shrink, 0.01) == (0.125,)
    hint = StepHint(shrink, patience=2)
    arcs = np.zeros(0, np.int64)
    hint.update(Drawn(arcs=arcs, exact=arcs, lam=0.25, steps=shrink))
    assert hint.value == 0.25
    for _ in range(2):  # two ticks that pass at once: one step up
        hint.update(Drawn(arcs=arcs, exact=arcs, lam=0.25, steps=(0.25, 0.125)))
    assert hint.value == 0.5
    hint.update(Drawn(arcs=arcs, exact=arcs, lam=0.0, steps=(0.5, 0.25, 0.125)))
    assert hint.value == 0.125


def test_top_k_reduction_keeps_each_contacts_best_arcs_and_the_exact_ones():
    """The draw's reduced graph: each contact's k best arcs (brute force by sorting), plus the
    exact arcs; it serves as many contacts as the full graph; k large = the full solve."""
    from assign.learn.explore import _top_k_per_contact, top_k_solver
    from assign.solve import SOLVERS, Problem

    rng = np.random.default_rng(5)
    n_c, n_r = 60, 12
    pairs = sorted({(int(c), int(r)) for c, r in zip(rng.integers(0, n_c, 500), rng.integers(0, n_r, 500))})
    contact, resource = (np.array(x) for x in zip(*pairs))
    value = np.round(rng.random(len(pairs)), 2)  # ties on purpose
    p = Problem(n_contacts=n_c, contact=contact, resource=resource, value=value, capacity=np.full(n_r, 2))
    for k in (1, 2, 3):
        want = np.zeros(len(pairs), bool)
        for c in np.unique(contact):
            idx = np.flatnonzero(contact == c)
            want[idx[np.lexsort((idx, -value[idx]))[:k]]] = True
        np.testing.assert_array_equal(_top_k_per_contact(contact, value, k), want)
    full = SOLVERS["flow"](p).arcs
    drawn = Problem(n_contacts=n_c, contact=contact, resource=resource, value=rng.random(len(pairs)),
                    capacity=p.capacity)
    reduced = top_k_solver(lambda q: SOLVERS["flow"](q).arcs, exact=full, k=1)(drawn)
    assert len(reduced) == len(full) and np.isin(reduced, np.arange(len(pairs))).all()
    np.testing.assert_array_equal(top_k_solver(lambda q: SOLVERS["flow"](q).arcs, exact=full, k=10**6)(drawn),
                                  SOLVERS["flow"](drawn).arcs)


def test_unique_codes_equal_numpy_unique():
    from assign.learn.scorer import _unique_codes

    rng = np.random.default_rng(3)
    for size, n in ((1, 5), (50, 0), (300, 1000), (10_000, 37)):
        codes = rng.integers(0, size, n)
        keys, inv = _unique_codes(codes, size=size)
        want_keys, want_inv = np.unique(codes, return_inverse=True)
        assert np.array_equal(keys, want_keys) and np.array_equal(inv, want_inv)
