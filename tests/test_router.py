"""The routing tick end to end: reasons, external values, fallbacks, determinism, threads."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
from references import milp_reference

from assign.config import RouterConfig
from assign.errors import InputError, SnapshotError
from assign.router import Router
from assign.schema import parse_snapshot
from assign.scorer import Scorer, SkillScorer
from assign.workload import synthetic_snapshot


@pytest.fixture(scope="module")
def router() -> Router:
    return Router()


def _random_values(snap, rng, *, density=0.3) -> pd.DataFrame:
    rows = [(cid, aid, float(rng.normal())) for cid in snap.contacts.ids for aid in snap.agents.ids
            if rng.random() < density]
    return pd.DataFrame(rows, columns=["contact_id", "agent_id", "value"])


def test_external_values_match_an_independent_optimum(router):
    rng = np.random.default_rng(3)
    for seed in range(12):
        snap = synthetic_snapshot(n_contacts=int(rng.integers(5, 40)), n_agents=int(rng.integers(2, 15)), seed=seed)
        values = _random_values(snap, rng, density=float(rng.uniform(0.05, 0.5)))
        result = router.tick(snap, values=values)
        # independent reference on the same pairs: capacity = free slots on the contact's channel
        tp = router.problem(snap, values=values)
        served, total = milp_reference(tp.problem)
        assert len(result.assignments) == served
        assert result.objective == pytest.approx(total, abs=1e-6)
        chosen = {(a.contact_id, a.agent_id): a.value for a in result.assignments}
        given = {(c, a): v for c, a, v in values.itertuples(index=False)}
        assert all(given[k] == v for k, v in chosen.items())  # exactly the given values, only listed pairs


def test_each_unassigned_contact_gets_its_reason():
    doc = {
        "snapshot_id": "reasons",
        "contacts": [
            {"contact_id": "c1", "channel": "voice", "intent": "billing", "language": "en", "waited_s": 50},
            {"contact_id": "c2", "channel": "voice", "intent": "billing", "language": "en", "waited_s": 5},
            {"contact_id": "c3", "channel": "voice", "intent": "billing", "language": "fi"},
            {"contact_id": "c4", "channel": "chat", "intent": "billing", "language": "en"},
            {"contact_id": "c5", "channel": "voice", "intent": "loans", "language": "en"},
        ],
        "agents": [
            {"agent_id": "a1", "languages": ["en"], "skills": {"billing": 0.9, "loans": 0.25},
             "capacity": {"voice": 1, "chat": 1}, "load": {"chat": 1}},
        ],
    }
    res = Router().tick(parse_snapshot(doc))
    assert [(a.contact_id, a.agent_id) for a in res.assignments] == [("c1", "a1")]  # longer wait wins
    reasons = {u.contact_id: u.reason for u in res.unassigned}
    assert reasons == {"c2": "no_capacity", "c3": "no_eligible_agent", "c4": "no_capacity", "c5": "no_capacity"}
    doc["agents"][0]["capacity"]["voice"] = 3
    res = Router(config=RouterConfig(threshold=0.4)).tick(parse_snapshot(doc))
    reasons = {u.contact_id: u.reason for u in res.unassigned}
    assert reasons["c5"] == "below_threshold"  # eligible, room left, but worth too little
    assert {a.contact_id for a in res.assignments} == {"c1", "c2"}


def test_work_conserving_serves_everyone_capacity_allows(router):
    snap = synthetic_snapshot(n_contacts=30, n_agents=60, seed=4, load_share=0.0)
    res = router.tick(snap)
    assert not [u for u in res.unassigned if u.reason == "no_capacity"]


def test_empty_queue_and_no_agents_are_no_op_ticks(router, snapshot_doc):
    snapshot_doc["contacts"] = []
    res = router.tick(parse_snapshot(snapshot_doc))
    assert res.assignments == () and res.unassigned == () and res.objective == 0.0 and not res.fallback
    snap = synthetic_snapshot(n_contacts=4, n_agents=0, seed=1)
    res = router.tick(snap)
    assert [u.reason for u in res.unassigned] == ["no_eligible_agent"] * 4


def test_input_order_does_not_change_the_answer(router):
    snap = synthetic_snapshot(n_contacts=80, n_agents=40, seed=9)
    doc = snap.to_dict()
    rng = np.random.default_rng(0)
    base = {(a.contact_id, a.agent_id) for a in router.tick(snap).assignments}
    for _ in range(3):
        rng.shuffle(doc["contacts"])
        rng.shuffle(doc["agents"])
        again = {(a.contact_id, a.agent_id) for a in router.tick(parse_snapshot(doc)).assignments}
        assert again == base


def test_safe_from_several_threads(router):
    snaps = [synthetic_snapshot(n_contacts=60, n_agents=30, seed=s) for s in range(6)]
    expected = [router.tick(s).to_dict()["assignments"] for s in snaps]
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(lambda s: router.tick(s).to_dict()["assignments"], snaps * 3))
    assert got == expected * 3


def test_pruning_loses_little_and_serves_the_same(router):
    pruned = Router(config=RouterConfig(prune_min_pairs=0, top_k=8))
    full = Router(config=RouterConfig(prune_min_pairs=10**12))
    for seed in range(3):
        snap = synthetic_snapshot(n_contacts=300, n_agents=300, seed=seed)
        a, b = pruned.tick(snap), full.tick(snap)
        assert len(a.assignments) == len(b.assignments)
        assert (b.objective - a.objective) / b.objective < 0.005
        assert a.n_candidates == b.n_candidates  # eligible pairs are counted before pruning


class _Broken(Scorer):
    name = "broken"

    def score_pairs(self, snapshot, *, contact_idx, agent_idx):
        return np.full(len(contact_idx), np.nan)


def test_a_failing_scorer_still_answers_flagged():
    snap = synthetic_snapshot(n_contacts=20, n_agents=10, seed=2)
    res = Router(scorer=_Broken()).tick(snap)
    assert res.fallback and "scorer broken failed" in res.fallback_reason
    assert len(res.assignments) == len(Router().tick(snap).assignments)


def test_a_nearly_spent_budget_switches_to_greedy(router):
    snap = synthetic_snapshot(n_contacts=200, n_agents=100, seed=2)
    res = router.tick(snap, budget_ms=1e-3)
    assert res.solver == "greedy" and res.fallback and "time budget" in res.fallback_reason
    relaxed = router.tick(snap, budget_ms=60_000)
    assert relaxed.solver == "flow" and not relaxed.fallback
    assert relaxed.objective >= res.objective - 1e-9 or len(relaxed.assignments) > len(res.assignments)


def test_a_failing_solver_falls_back_to_the_exact_alternative(monkeypatch):
    import assign.router as router_mod
    from assign.errors import SolverError

    def boom(problem):
        raise SolverError("simulated failure")

    monkeypatch.setitem(router_mod.SOLVERS, "flow", boom)
    res = Router().tick(synthetic_snapshot(n_contacts=20, n_agents=10, seed=2))
    assert res.solver == "hungarian" and res.fallback and "simulated failure" in res.fallback_reason


def test_bad_values_report_every_problem(router):
    snap = synthetic_snapshot(n_contacts=3, n_agents=2, seed=1)
    c, a = snap.contacts.ids, snap.agents.ids
    values = pd.DataFrame({"contact_id": [c[0], "nope", c[1], c[0]], "agent_id": [a[0], a[0], "ghost", a[0]],
                           "value": [1.0, 2.0, float("nan"), 3.0]})
    with pytest.raises(SnapshotError) as err:
        router.tick(snap, values=values)
    assert err.value.problems == (
        "values[1].contact_id: unknown contact 'nope'",
        "values[2].agent_id: unknown agent 'ghost'",
        "values[2].value: must be finite, got nan",
        f"values[3]: duplicate pair ('{c[0]}', '{a[0]}') (first at values[0])",
    )


def test_explain_lists_runner_ups_with_reasons(router):
    snap = synthetic_snapshot(n_contacts=30, n_agents=12, seed=5)
    res = router.tick(snap, explain=True)
    for asg in res.assignments:
        alts = res.explanations[asg.contact_id]
        assert all(alt.agent_id != asg.agent_id for alt in alts)
        assert all(alt.why_not for alt in alts)
        # an alternative with room and a higher value would contradict optimality
        assert all(alt.value <= asg.value + 1e-12 or alt.why_not.startswith("agent full") for alt in alts)


def test_value_parts_add_up(router):
    cfg = router.config
    res = router.tick(synthetic_snapshot(n_contacts=40, n_agents=20, seed=8))
    for a in res.assignments:
        assert a.value == pytest.approx(cfg.w_score * a.score + cfg.w_aging * a.aging + cfg.w_fairness * a.fairness)


def test_config_errors_name_the_field():
    with pytest.raises(InputError, match="config.top_k: 0 is below the minimum 1"):
        RouterConfig(top_k=0)
    with pytest.raises(InputError, match="config.service_level_s: -5 must be above 0"):
        RouterConfig(service_level_s=-5)
    with pytest.raises(InputError) as err:  # every problem at once, NaN included
        RouterConfig(threshold=float("nan"), top_k=0, solver="simplex")
    assert len(err.value.problems) == 3
    with pytest.raises(ValueError, match="w_tenure must be >= 0"):
        SkillScorer(w_tenure=-1)


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10**6), n=st.integers(0, 40), m=st.integers(0, 20),
       prune=st.booleans(), min_prof=st.sampled_from([0.0, 0.2, 0.5]))
def test_every_tick_respects_eligibility_and_capacity(seed, n, m, prune, min_prof):
    snap = synthetic_snapshot(n_contacts=n, n_agents=m, seed=seed)
    router = Router(config=RouterConfig(min_proficiency=min_prof, prune_min_pairs=0 if prune else 10**12, top_k=3))
    res = router.tick(snap)
    c, a = snap.contacts, snap.agents
    ci, ai = res.contact_index, res.agent_index
    assert len(set(ci.tolist())) == len(ci)  # no contact twice
    prof = a.skill[ai, c.intent[ci]]
    assert (prof > 0).all() and (prof >= min_prof).all()
    assert a.speaks[ai, c.language[ci]].all()
    used = np.zeros_like(a.capacity)
    np.add.at(used, (ai, c.channel[ci]), 1)
    assert (used <= a.free).all()
    assert len(res.assignments) + len(res.unassigned) == n
    again = router.tick(snap)
    assert again.to_dict()["assignments"] == res.to_dict()["assignments"]
