"""The simulated day's fast paths give what the general paths give: per-run feature tables
(bit for bit, every tick), the one-pass routable set, grid eligibility, problem checks, the
id-order shortcut, and whole simulated runs (every per-contact record) new path against old."""
from __future__ import annotations

import numpy as np
import pytest

from assign.features import bound
from assign.model import TrainParams, XGBScorer, train
from assign.scorer import SkillScorer
from assign.sim import view as view_mod
from assign.sim.engine import WAITING, Engine, SimConfig, simulate
from assign.sim.policies import FCFS, RouterPolicy
from assign.sim.worldsource import WorldSource
from assign.solve.problem import InfeasibleAnswer, Problem
from assign.workload import synthetic_snapshot
from assign.world.centre import generate_history, generate_world

RECORDS = ("status", "agent", "wait_s", "agent_load", "handle_s", "resolved", "csat", "truth_p_resolved",
           "agent_busy_s", "agent_work_s", "agent_handled")


@pytest.fixture(scope="module")
def world():
    return generate_world(seed=21, n_agents=24, n_intents=6, n_customers=2000)


@pytest.fixture(scope="module")
def model_dir(world, tmp_path_factory):
    out = tmp_path_factory.mktemp("sim-fast-model")
    train(generate_history(world, days=2, seed=22), out=out,
          params=TrainParams(max_rounds=30, early_stopping=5, max_depth=4, nthread=1))
    return out


def _dense_routable(view) -> tuple[np.ndarray, np.ndarray]:
    """View.routable as it was: the dense eligible-and-free grid."""
    has = view.eligible(view.waiting)
    rows = np.flatnonzero(has.any(axis=1))
    return view.waiting[rows], np.flatnonzero(has[rows].any(axis=0))


def _same_runs(a, b) -> None:
    assert a.n_decisions == b.n_decisions
    for name in RECORDS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


def test_run_table_features_are_the_general_features_bit_for_bit_on_every_tick(world, model_dir, monkeypatch):
    scorer = XGBScorer.load(model_dir)
    checked = {"ticks": 0, "pairs": 0}
    fast = bound.RunTables.features

    def both(self, snapshot, *, contact_idx, agent_idx):
        X, ood = fast(self, snapshot, contact_idx=contact_idx, agent_idx=agent_idx)
        ref = scorer._feat.features(snapshot, contact_idx=contact_idx, agent_idx=agent_idx)
        intent_ok, lang_ok, agent_ok = scorer._feat.known(snapshot)
        assert X.tobytes() == ref.tobytes()
        np.testing.assert_array_equal(ood, ~intent_ok[contact_idx] | ~lang_ok[contact_idx] | ~agent_ok[agent_idx])
        checked["ticks"] += 1
        checked["pairs"] += len(contact_idx)
        return X, ood

    monkeypatch.setattr(bound.RunTables, "features", both)
    simulate(source=WorldSource(world), policy=RouterPolicy(scorer=scorer), seed=3,
             config=SimConfig(days=0.45, window_s=2.0))
    assert scorer._tables is not None
    assert checked["ticks"] > 100 and checked["pairs"] > checked["ticks"]


def test_a_snapshot_from_elsewhere_takes_the_general_path(world, model_dir):
    scorer = XGBScorer.load(model_dir)
    src = WorldSource(world)
    scorer.bind(Engine(source=src, policy=FCFS(), seed=0, config=SimConfig(days=0.05)).info)
    snap = synthetic_snapshot(n_contacts=8, n_agents=5, seed=3)
    assert not scorer._tables.applies(snap)
    ci, ai = np.repeat(np.arange(8), 5), np.tile(np.arange(5), 8)
    plain = XGBScorer.load(model_dir)
    np.testing.assert_array_equal(scorer.score_pairs(snap, contact_idx=ci, agent_idx=ai),
                                  plain.score_pairs(snap, contact_idx=ci, agent_idx=ai))


@pytest.mark.parametrize("seed", [1, 2])
def test_an_ml_batch_run_is_identical_on_the_fast_and_the_reference_paths(world, model_dir, monkeypatch, seed):
    """Every per-contact record of a seeded ml-batch run with the XGBoost model: run tables,
    one-pass routable and grid eligibility against the general featurizer, the dense grid
    and the numpy eligibility, in the same test."""
    import assign.router as router_mod
    from assign.smalltick import all_eligible_reference

    src, cfg = WorldSource(world), SimConfig(days=0.2, window_s=2.0)
    fast = simulate(source=src, policy=RouterPolicy(scorer=XGBScorer.load(model_dir)), seed=seed, config=cfg)
    calls = {"routable": 0}

    def dense(view):
        calls["routable"] += 1
        return _dense_routable(view)

    monkeypatch.setattr(view_mod.View, "routable", dense)
    monkeypatch.setattr(router_mod, "all_eligible", all_eligible_reference)
    ref_scorer = XGBScorer.load(model_dir)
    ref_scorer.run_tables = False
    ref = simulate(source=src, policy=RouterPolicy(scorer=ref_scorer), seed=seed, config=cfg)
    assert ref_scorer._tables is None and calls["routable"] == ref.n_decisions > 100
    _same_runs(fast, ref)


def test_routable_equals_the_dense_grid_on_every_decision(world, monkeypatch):
    """Off-shift agents, several channels, long queues: every decision of two windowed runs."""
    fast = view_mod.View.routable
    n = {"calls": 0, "nonempty": 0}

    def both(view):
        w, a = fast(view)
        rw, ra = _dense_routable(view)
        np.testing.assert_array_equal(w, rw)
        np.testing.assert_array_equal(a, ra)
        n["calls"] += 1
        n["nonempty"] += bool(len(w))
        return w, a

    monkeypatch.setattr(view_mod.View, "routable", both)
    for seed in (5, 6):
        simulate(source=WorldSource(world), policy=RouterPolicy(), seed=seed, config=SimConfig(days=0.3, window_s=5.0))
    assert n["calls"] > 200 and 0 < n["nonempty"] < n["calls"]


@pytest.mark.parametrize("window_s", [0.0, 3.0])
def test_the_queue_holds_waiting_contacts_only(world, monkeypatch, window_s):
    """What the engine's queue update relies on: after every decision every queued contact is
    WAITING, each once, in arrival order (fcfs event-driven and windowed, ml-batch windowed)."""
    start = Engine._start
    n = {"starts": 0}

    def checked(self, t, ci, ai, *, new):
        start(self, t, ci, ai, new=new)
        q = self.state.waiting
        assert all(self.state.status[c] == WAITING for c in q)
        assert q == sorted(set(q))
        n["starts"] += 1

    monkeypatch.setattr(Engine, "_start", checked)
    policies = [FCFS()] + ([RouterPolicy()] if window_s else [])
    for pol in policies:
        simulate(source=WorldSource(world), policy=pol, seed=7, config=SimConfig(days=0.4, window_s=window_s))
    assert n["starts"] > 100


def test_grid_eligibility_equals_the_numpy_grid():
    from assign.smalltick import all_eligible, all_eligible_reference

    for seed in range(40):
        s = synthetic_snapshot(n_contacts=1 + seed % 13, n_agents=1 + seed % 9, seed=seed)
        for mp, req in ((0.0, True), (0.3, True), (0.3, False)):
            kw = dict(contacts=s.contacts, agents=s.agents, free=s.agents.free, min_proficiency=mp,
                      require_language=req)
            a, b = all_eligible(**kw), all_eligible_reference(**kw)
            for name in ("contact", "agent", "skilled"):
                np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
            assert a.n_eligible == b.n_eligible


def _check_reference(p: Problem, arcs: np.ndarray) -> str | None:
    """Problem.check as it was (numpy), as the message it raised or None."""
    if len(arcs) and (arcs.min() < 0 or arcs.max() >= p.n_arcs):
        return "out of range"
    if len(np.unique(p.contact[arcs])) != len(arcs):
        return "assigned twice"
    if (np.bincount(p.resource[arcs], minlength=p.n_resources) > p.capacity).any():
        return "over its capacity"
    return None


def test_the_answer_check_equals_the_numpy_check():
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(400):
        n_c, n_r = int(rng.integers(1, 6)), int(rng.integers(1, 4))
        k = int(rng.integers(1, 10))
        p = Problem(n_contacts=n_c, contact=np.sort(rng.integers(0, n_c, k)), resource=rng.integers(0, n_r, k),
                    value=rng.random(k), capacity=rng.integers(0, 3, n_r))
        arcs = rng.integers(-1, k + 1, int(rng.integers(0, 4)))
        want = _check_reference(p, arcs)
        seen.add(want)
        if want is None:
            p.check(arcs)
        else:
            with pytest.raises(InfeasibleAnswer, match=want):
                p.check(arcs)
    assert seen == {None, "out of range", "assigned twice", "over its capacity"}


def test_in_id_order_shortcut_gives_the_sorted_order():
    from assign.schema import _id_order

    snap = synthetic_snapshot(n_contacts=12, n_agents=7, seed=1)
    o = snap.in_id_order()
    np.testing.assert_array_equal(o.contact_order, _id_order(snap.contacts.ids))
    np.testing.assert_array_equal(o.agent_order, _id_order(snap.agents.ids))
    assert o.contact_order.dtype == _id_order(snap.contacts.ids).dtype


def test_value_combination_equals_the_numpy_combination_bit_for_bit():
    from assign.model.scorer import ValueWeights

    rng = np.random.default_rng(0)
    w = ValueWeights()
    edges = np.array([0.0, -0.0, 1.0, 5.0, np.inf, -np.inf, np.nan])
    for n in (0, 1, 7, 100):
        for keys in (("resolved", "csat", "handle_time"), ("resolved",), ("csat", "handle_time", "repeat_72h"), ()):
            for _ in range(10):
                p = {k: rng.normal(size=n) * rng.choice([0.5, 3.0, 600.0]) for k in keys}
                for v in p.values():
                    m = rng.random(n) < 0.2
                    v[m] = rng.choice(edges, int(m.sum()))
                with np.errstate(invalid="ignore"):
                    assert w.combine(p, n).tobytes() == w.combine_reference(p, n).tobytes()


def test_taken_rows_equal_the_constructed_blocks():
    from assign.schema import Agents, Contacts

    snap = synthetic_snapshot(n_contacts=9, n_agents=6, seed=4)
    c, a = snap.contacts, snap.agents
    rows, arows = np.array([7, 1, 1, 4]), np.array([5, 0, 2])
    waited = np.arange(4) * 1.5
    got = c.take(rows, waited_s=waited)
    want = Contacts(**{k: getattr(c, k)[rows] for k in ("ids", "channel", "intent", "language", "complexity",
                                                         "urgency", "sentiment", "style", "customer_id",
                                                         "customer_tier")}, waited_s=waited)
    cap, load, idle = a.capacity[arows] + 1, a.load[arows], np.array([1.0, 2.0, 3.0])
    got_a = a.take(arows, capacity=cap, load=load, idle_s=idle)
    want_a = Agents(**{k: getattr(a, k)[arows] for k in ("ids", "speaks", "skill", "tenure_days",
                                                          "sentiment_handling", "style")},
                    capacity=cap, load=load, idle_s=idle)
    for g, w in ((got, want), (got_a, want_a)):
        assert type(g) is type(w) and g.extra is None
        for k, v in vars(w).items():
            if isinstance(v, np.ndarray):
                assert getattr(g, k).dtype == v.dtype and getattr(g, k).flags.c_contiguous, k
                np.testing.assert_array_equal(getattr(g, k), v, err_msg=k)
    with pytest.raises(Exception, match="waited_s"):
        c.take(rows, waited_s=np.zeros(3))


def test_handle_quantiles_kept_per_stream_equal_the_pairwise_ones(world):
    import pickle

    from scipy.special import ndtri

    src = WorldSource(world)
    st = src.contacts(seed=3, horizon_s=6 * 3600.0)
    rows = np.random.default_rng(0).integers(0, len(st), 50)
    assert src._handle_z(st)[rows].tobytes() == ndtri(st.u[rows, 0]).tobytes()
    other = src.contacts(seed=4, horizon_s=3600.0)
    assert len(src._handle_z(other)) == len(other)
    assert pickle.loads(pickle.dumps(src))._z[0] is None


def test_a_pickled_scorer_carries_no_run_tables(world, model_dir):
    import pickle

    scorer = XGBScorer.load(model_dir)
    scorer.bind(Engine(source=WorldSource(world), policy=FCFS(), seed=0, config=SimConfig(days=0.05)).info)
    assert scorer._tables is not None
    assert pickle.loads(pickle.dumps(scorer))._tables is None


@pytest.fixture(scope="module")
def hiring_world():
    """A small centre where a quarter of the agents join on day 2 (tenure -1 at the start)."""
    return generate_world(seed=23, n_agents=12, n_intents=4, n_customers=1500, new_hires=0.25)


def test_a_views_tenure_ages_by_whole_days_from_the_roster(hiring_world):
    """A tick's snapshot holds each agent's tenure aged to the tick's day (Source.roster_tenure):
    on day 0 the roster's own values bit for bit (a run's first day is unchanged), a hire 0 until its
    first day and the days since it joined after; every day's view of an agent agrees."""
    src = WorldSource(hiring_world)
    start = src.tenure_at_start()
    hires = np.flatnonzero(start < 0)
    assert len(hires) == 3 and (start[hires] == -1.0).all()
    assert src.roster_tenure(day=0).tobytes() == np.asarray(src.agents.tenure_days, float).tobytes()
    seen: dict[int, dict[int, float]] = {}
    snapshot = view_mod.View.snapshot

    def spy(self, contact_rows, agent_rows):
        snap = snapshot(self, contact_rows, agent_rows)
        day = seen.setdefault(int(self.t // 86400.0), {})
        for a, ten in zip(np.asarray(agent_rows).tolist(), snap.agents.tenure_days.tolist(), strict=True):
            assert day.setdefault(a, ten) == ten
        return snap

    mp = pytest.MonkeyPatch()
    mp.setattr(view_mod.View, "snapshot", spy)
    try:
        simulate(source=src, policy=RouterPolicy(scorer=SkillScorer()), seed=4,
                 config=SimConfig(days=3.3, window_s=60.0))
    finally:
        mp.undo()
    assert set(seen) == {0, 1, 2, 3}
    for d, by_agent in seen.items():
        for a, ten in by_agent.items():
            assert ten == max(start[a] + d, 0.0), (d, a)
    assert {seen[d].get(h) for d in (1, 2) for h in hires} - {None} == {0.0, 1.0}  # its first day, its second


@pytest.mark.slow
def test_run_tables_follow_the_tenure_of_every_day_bit_for_bit(hiring_world, tmp_path, monkeypatch):
    """Over a run of several days, with hires joining on day 2, the per-run tables' features are
    the general featurizer's bit for bit on every tick: the tenure table is remade per day."""
    out = tmp_path / "model"
    train(generate_history(hiring_world, days=2, seed=24), out=out,
          params=TrainParams(max_rounds=20, early_stopping=5, max_depth=3, nthread=1))
    scorer = XGBScorer.load(out)
    fast, days = bound.RunTables.features, set()

    def both(self, snapshot, *, contact_idx, agent_idx):
        X, ood = fast(self, snapshot, contact_idx=contact_idx, agent_idx=agent_idx)
        assert X.tobytes() == scorer._feat.features(snapshot, contact_idx=contact_idx, agent_idx=agent_idx).tobytes()
        days.add(int(snapshot.meta["t_s"] // 86400.0))
        return X, ood

    monkeypatch.setattr(bound.RunTables, "features", both)
    simulate(source=WorldSource(hiring_world), policy=RouterPolicy(scorer=scorer), seed=5,
             config=SimConfig(days=3.2, window_s=120.0))
    assert scorer._tables is not None and days == {0, 1, 2, 3}
    assert sorted(k for k, v in scorer._tables.by_day.items() if v is not None) == [0, 1, 2, 3]
