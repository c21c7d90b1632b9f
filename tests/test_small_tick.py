"""The small-tick fast path (RouterConfig.small_tick: assign.smalltick, the flow's certified
shortcut, Router.tick_rows) changes no answer: the same pairs as retrieval, the same tick
results as the general path on many small snapshots (ties included), the same simulated day."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from assign.candidates import AgentTerms, ContactTerms, find_candidates
from assign.config import RouterConfig
from assign.router import Router
from assign.schema import Snapshot
from assign.scorer import Prior
from assign.sim.engine import SimConfig, simulate
from assign.sim.policies import RouterPolicy
from assign.sim.worldsource import WorldSource
from assign.smalltick import all_eligible
from assign.workload import synthetic_snapshot
from assign.world.centre import generate_world

GENERAL = RouterConfig(small_tick=False)


def _tied(snap: Snapshot, rng: np.random.Generator) -> Snapshot:
    """Copies of one agent under other ids (equal skills, load, idle time): exact ties."""
    a = snap.agents
    src = int(rng.integers(len(a)))
    rows = np.arange(len(a))
    rows[rng.random(len(a)) < 0.5] = src
    ids = np.array([f"{i}" for i in a.ids], dtype=object)
    agents = dataclasses.replace(a, ids=ids, speaks=a.speaks[rows], skill=a.skill[rows],
                                 tenure_days=a.tenure_days[rows], sentiment_handling=a.sentiment_handling[rows],
                                 style=a.style[rows], capacity=a.capacity[rows], load=a.load[rows],
                                 idle_s=a.idle_s[rows])
    return dataclasses.replace(snap, agents=agents)


def _snapshots(n: int, seed: int) -> list[Snapshot]:
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        snap = synthetic_snapshot(n_contacts=int(rng.integers(1, 25)), n_agents=int(rng.integers(1, 30)),
                                  seed=seed * 1000 + k, n_intents=int(rng.integers(1, 8)))
        out.append(_tied(snap, rng) if k % 3 == 0 else snap)
    return out


def test_all_eligible_is_retrieval_without_pruning():
    for snap in _snapshots(120, seed=1):
        o = snap.in_id_order()
        c, a = o.contacts, o.agents
        ref = find_candidates(contacts=ContactTerms.of(c, term=np.zeros(len(c))),
                              agents=AgentTerms.of(a, term=np.zeros(len(a))), prior=Prior(agent_intent=a.skill),
                              min_proficiency=0.2, require_language=True, w_score=1.0, top_k=16, prune=False)
        ours = all_eligible(contacts=c, agents=a, free=a.free, min_proficiency=0.2, require_language=True)
        np.testing.assert_array_equal(ours.contact, ref.contact)
        np.testing.assert_array_equal(ours.agent, ref.agent)
        np.testing.assert_array_equal(ours.skilled, ref.skilled)
        assert ours.n_eligible == ref.n_eligible


def test_fast_and_general_ticks_agree_on_many_small_snapshots():
    fast, general = Router(), Router(config=GENERAL)
    for snap in _snapshots(240, seed=2):
        a, b = fast.tick(snap), general.tick(snap)
        assert a.assignments == b.assignments and a.unassigned == b.unassigned
        assert a.objective == b.objective and a.solver == b.solver and a.n_candidates == b.n_candidates
        ci, ai = fast.tick_rows(snap)
        np.testing.assert_array_equal(ci, a.contact_index)
        np.testing.assert_array_equal(ai, a.agent_index)


def test_the_general_path_is_really_switched_off(monkeypatch):
    import assign.router as router_mod
    import assign.solve.small as small

    def boom(*args, **kwargs):
        raise AssertionError("the fast path ran")

    monkeypatch.setattr(router_mod, "all_eligible", boom)
    monkeypatch.setattr(small, "solve_certified", boom)
    snap = synthetic_snapshot(n_contacts=8, n_agents=6, seed=3)
    Router(config=GENERAL).tick(snap)
    with pytest.raises(AssertionError, match="fast path"):
        Router().tick(snap)


@pytest.mark.parametrize("seed", [4, 5])
def test_a_simulated_ml_batch_run_is_identical_with_and_without_the_fast_path(seed):
    src = WorldSource(generate_world(seed=21, n_agents=24, n_intents=6, n_customers=2000))
    runs = [simulate(source=src, policy=RouterPolicy(config=cfg), seed=seed, config=SimConfig(days=0.2, window_s=2.0))
            for cfg in (RouterConfig(), GENERAL)]
    fast, general = runs
    assert fast.n_decisions == general.n_decisions > 100
    for name in ("status", "agent", "wait_s", "handle_s", "resolved", "csat"):
        np.testing.assert_array_equal(getattr(fast, name), getattr(general, name), err_msg=name)


def test_customer_lookups_one_at_a_time_equal_the_column_lookup():
    import pandas as pd

    from assign.features.build import SMALL_LOOKUP, CustomerSegments

    rng = np.random.default_rng(6)
    known = [f"u{k:05d}" for k in range(300)] + ["é-unicode", "x" * 40, "12"]
    seg = CustomerSegments(keys=pd.Index(known, dtype=object), starts=np.arange(len(known)),
                           ends=np.arange(len(known)) + 1)
    pool = known + [None, "u99999", "x" * 41, "", 12, "u0000", "é"]
    ids = [pool[k] for k in rng.integers(0, len(pool), 400)]
    column = seg.codes(ids)  # more than SMALL_LOOKUP ids: the whole-column path
    assert len(ids) > SMALL_LOOKUP and (column >= 0).sum() > 100 and (column == -1).any() and (column == -2).any()
    one_by_one = np.concatenate([seg.codes(ids[k:k + 8]) for k in range(0, len(ids), 8)])
    np.testing.assert_array_equal(one_by_one, column)
    assert seg.codes([12])[0] == seg.codes(["12"])[0] >= 0  # ids as text, as the column path reads them
