"""Contract tests: every scorer, every policy and every source through the same checks (the
way river's ``load_stats()`` runs every statistic). A new implementation joins a list below
and inherits every check; the checks use only the declared interface (``Scorer``,
``Policy``, ``Source``, ``View``, ``RunInfo``)."""
from __future__ import annotations

import zlib
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from assign.config import SOLVERS as SOLVER_NAMES
from assign.router import Router
from assign.schema import Snapshot
from assign.scorer import Prior, Scorer, SkillScorer
from assign.sim.engine import SERVED, Engine, SimConfig, simulate
from assign.sim.policies import FCFS, POLICY_NAMES, GCMu, OracleScorer, Policy, Skills, SplitPolicy, make_policy
from assign.sim.scenario import mmc_scenario
from assign.sim.source import ScenarioSource, Source
from assign.sim.worldsource import WorldSource
from assign.solve import SOLVERS
from assign.world.centre import generate_history, generate_world


@pytest.fixture(scope="module")
def world():
    return generate_world(seed=3, n_agents=14, n_intents=5, n_customers=2000)


@pytest.fixture(scope="module")
def sources(world):
    replay = pd.DataFrame({
        "contact_id": [f"r{k}" for k in range(40)],
        "arrival_at": pd.Timestamp("2026-01-05T00:00:00Z") + pd.to_timedelta(np.arange(40) * 90.0, unit="s"),
        "channel": "voice", "intent": "call", "wait_s": 0.0, "abandoned": False})
    sc = mmc_scenario(arrival_rate_per_hour=40, mean_service_s=120, agents=3, patience_mean_s=200)
    return {"world": WorldSource(world), "scenario": ScenarioSource(sc), "replay": ScenarioSource(sc, replay=replay)}


# ---------------------------------------------------------------------- sources

@pytest.mark.parametrize("name", ["world", "scenario", "replay"])
def test_source_contract(sources, name):
    src = sources[name]
    assert isinstance(src, Source) and isinstance(src.name, str)
    n_a, n_i = len(src.agents), len(src.intents)
    horizon = 0.25 * 86400.0
    st = src.contacts(seed=4, horizon_s=horizon)
    again = src.contacts(seed=4, horizon_s=horizon)
    np.testing.assert_array_equal(st.arrival_s, again.arrival_s)  # same seed, same stream
    np.testing.assert_array_equal(st.u, again.u)
    n = len(st)
    assert n > 0 and np.all(np.diff(st.arrival_s) >= 0)
    assert st.arrival_s.min() >= 0 and st.arrival_s.max() < horizon
    assert st.patience_s.shape == st.credit_s.shape == (n,) and st.u.shape == (n, 3)
    assert np.all(st.patience_s > 0) and np.all((st.u >= 0) & (st.u < 1))
    assert np.all((st.block.intent >= 0) & (st.block.intent < n_i))
    plan = src.shifts(horizon_s=horizon)
    assert np.all(np.diff(plan.t_s) >= 0) and np.all((plan.agent >= 0) & (plan.agent < n_a))
    eh = src.expected_handle_s()
    assert eh.shape == (n_a, n_i) and np.all(np.isfinite(eh) & (eh > 0))
    # Outcomes of eligible pairs: shapes, positive handle times; common random numbers.
    ci = np.arange(min(n, 10))
    ai = np.array([int(np.flatnonzero(src.agents.capacity[:, st.block.channel[c]] > 0)[0]) for c in ci])
    o = src.outcomes(stream=st, contact_idx=ci, agent_idx=ai, agent_load=np.zeros(len(ci)), t_s=100.0)
    for arr in (o.handle_s, o.resolved, o.csat, o.truth_p_resolved, o.truth_csat, o.truth_handle_s):
        assert arr.shape == ci.shape
    assert np.all(np.isfinite(o.handle_s) & (o.handle_s > 0))
    o2 = src.outcomes(stream=st, contact_idx=ci[::-1], agent_idx=ai[::-1], agent_load=np.zeros(len(ci)), t_s=100.0)
    np.testing.assert_array_equal(o2.handle_s, o.handle_s[::-1])
    done = src.complete_outcomes(stream=st, contact_idx=ci, truth_p_resolved=o.truth_p_resolved,
                                 truth_csat=o.truth_csat)
    assert done is None or (done[0].shape == ci.shape and done[1].shape == ci.shape)
    q = src.truth_quality(stream=st, contact_idx=ci, agent_idx=ai, agent_load=np.zeros(len(ci)))
    if src.has_truth:
        assert q.shape == ci.shape and np.all((q >= 0) & (q <= 1))
    else:
        assert q is None


# ---------------------------------------------------------------------- scorers

@pytest.fixture(scope="module")
def xgb_scorer(world, tmp_path_factory):
    from assign.model import TrainParams, XGBScorer, train

    out = tmp_path_factory.mktemp("model")
    train(generate_history(world, days=2, seed=5), out=out,
          params=TrainParams(max_rounds=15, early_stopping=5, learning_rate=0.3, max_depth=3, nthread=1))
    return XGBScorer.load(out, nthread=1)


def _snapshot(world) -> Snapshot:
    t = 10 * 3600.0
    arr = world.sample_arrivals(rng=np.random.default_rng(0), start_s=t - 900, end_s=t).head(12)
    return Snapshot(snapshot_id="s", at=world.start + timedelta(seconds=t), intents=world.intents,
                    languages=world.languages, styles=world.styles, contacts=world.contacts_block(arr),
                    agents=world.agents_block(t_s=t))


def _scorers(sources, xgb_scorer):
    """Every scorer, bound to a run of the world source where it needs one."""
    src = sources["world"]
    oracle = OracleScorer()
    return {"skill": SkillScorer(), "xgb": xgb_scorer, "oracle": oracle}, src


@pytest.mark.parametrize("name", ["skill", "xgb", "oracle"])
def test_scorer_contract(world, sources, xgb_scorer, name):
    scorers, src = _scorers(sources, xgb_scorer)
    scorer = scorers[name]
    assert isinstance(scorer, Scorer) and isinstance(scorer.name, str) and scorer.name
    scorer.warm_up()
    if name == "oracle":  # the oracle scores simulated contacts: bind it and use a View's snapshot
        eng = Engine(source=src, policy=FCFS(), seed=1, config=SimConfig(days=0.2))
        scorer.bind(eng.info)
        rows = np.arange(12)
        snap = _view_snapshot(eng, rows)
    else:
        scorer.bind(Engine(source=src, policy=FCFS(), seed=1, config=SimConfig(days=0.01)).info)  # a no-op
        snap = _snapshot(world)
    ci = np.repeat(np.arange(snap.n_contacts), snap.n_agents)
    ai = np.tile(np.arange(snap.n_agents), snap.n_contacts)
    s = np.asarray(scorer.score_pairs(snap, contact_idx=ci, agent_idx=ai))
    assert s.shape == ci.shape and s.dtype == np.float64 and np.isfinite(s).all()
    perm = np.random.default_rng(0).permutation(len(ci))  # a pair's score does not depend on the others
    np.testing.assert_allclose(scorer.score_pairs(snap, contact_idx=ci[perm], agent_idx=ai[perm]), s[perm],
                               rtol=1e-12)
    assert len(scorer.score_pairs(snap, contact_idx=ci[:0], agent_idx=ai[:0])) == 0
    prior = scorer.prior(snap)
    assert prior is None or (isinstance(prior, Prior) and prior.agent_intent.shape == snap.agents.skill.shape)
    if name != "oracle":  # the router accepts it and answers without falling back
        res = Router(scorer=scorer).tick(snap)
        assert not res.fallback, res.fallback_reason


def _view_snapshot(eng: Engine, rows: np.ndarray) -> Snapshot:
    from assign.sim.view import View

    s = eng.state
    view = View(t=1000.0, waiting=rows, free=s.free.copy(), source=eng.source, stream=eng.stream, rng=eng.rng,
                state=s, eligibility=eng.eligibility)
    return view.snapshot(rows, np.arange(len(eng.source.agents)))


def test_oracle_refuses_a_source_without_truth(sources):
    from assign.errors import InputError

    with pytest.raises(InputError, match="has no truth"):
        simulate(source=sources["scenario"], policy=make_policy("oracle"), seed=0, config=SimConfig(days=0.01))


def test_router_refuses_an_undeclared_scorer():
    class Duck:
        name = "duck"

        def score_pairs(self, snapshot, *, contact_idx, agent_idx):
            return np.zeros(len(contact_idx))

    with pytest.raises(TypeError, match="Scorer"):
        Router(scorer=Duck())


def test_solver_names_are_defined_once():
    assert tuple(SOLVERS) == SOLVER_NAMES


# ---------------------------------------------------------------------- policies

def _split():
    return SplitPolicy(arms={"a": FCFS(), "b": Skills()},
                       arm_of=lambda c, t: "ab"[zlib.crc32(c.contact_id.encode()) % 2])


POLICIES = {**{n: (lambda n=n: make_policy(n)) for n in POLICY_NAMES}, "split": _split, "gcmu-class": GCMu}


@pytest.mark.parametrize("window_s", [0.0, 30.0])
@pytest.mark.parametrize("name", sorted(POLICIES))
def test_policy_contract(sources, name, window_s):
    """Declared base, deterministic, conserves contacts, respects capacity at every instant
    (the engine also checks each answer), never serves a contact after its patience ran out."""
    policy = POLICIES[name]()
    assert isinstance(policy, Policy) and isinstance(policy.name, str) and policy.name
    srcs = ["world"] if name == "oracle" else ["world", "scenario"]
    for key in srcs:
        src = sources[key]
        cfg = SimConfig(days=0.2, window_s=window_s)
        run = simulate(source=src, policy=policy, seed=2, config=cfg)
        again = simulate(source=src, policy=POLICIES[name](), seed=2, config=cfg)
        np.testing.assert_array_equal(run.agent, again.agent)
        np.testing.assert_array_equal(run.wait_s, again.wait_s)
        served = run.status == SERVED
        assert served.any()
        assert np.all(run.wait_s[served] >= 0) and np.all(run.wait_s[served] <= run.stream.patience_s[served] + 1e-9)
        st = run.stream
        start = st.arrival_s[served] + run.wait_s[served]
        end = start + run.handle_s[served]
        ag, ch = run.agent[served], st.block.channel[served]
        t = np.r_[start, end]
        step = np.r_[np.ones(served.sum(), int), -np.ones(served.sum(), int)]
        order = np.lexsort((step, np.round(t, 6)))  # at equal times (to float noise) the end comes first
        held = np.zeros_like(src.agents.capacity)
        for k in order:
            i = k % served.sum()
            held[ag[i], ch[i]] += step[k]
            assert held[ag[i], ch[i]] <= src.agents.capacity[ag[i], ch[i]]
        labels = policy.arm_labels(run_info(src, st))
        assert labels is None or len(labels) == len(st)


def run_info(src, stream):
    from assign.sim.view import RunInfo

    return RunInfo(source=src, stream=stream, seed=2)
