"""New-hire work floor (assign.learn.floor): the dual-ascent controller, its wiring into the model
scorer and the learning policy, and its r = 0 regression against the plain policy."""
from __future__ import annotations

import numpy as np
import pytest

from assign.errors import InputError
from assign.learn import WorkFloor

TENURE = np.array([90.0, 90.0, 0.3])  # two tenured agents and one hire
ALL_ON = np.ones(3, bool)


def test_bad_settings_are_named_together():
    with pytest.raises(InputError) as e:
        WorkFloor(ratio=-0.1, days=0.0, eta=0.0, lambda_max=2.0, half_life_s=-1.0, per_hire="yes")
    for name in ("ratio", "days", "eta", "lambda_max", "half_life_s", "per_hire"):
        assert f"work_floor.{name}" in str(e.value)


def _run(ctrl, *, minutes: int, hire_rate, t0: float = 0.0, acc=None):
    """Each minute: the tenured agents take 10 contacts an hour each; the hire ``hire_rate(lambda)``
    an hour (fractions carried over: a deterministic stream). Returns the hire's contacts and
    its multiplier after each minute."""
    acc = [0.0] if acc is None else acc
    got, lams = [], []
    for k in range(minutes):
        ctrl.step(t_s=t0 + 60.0 * k, staffed=ALL_ON, tenure_days=TENURE)
        lam = float(ctrl.terms(["h"])[0])
        acc[0] += hire_rate(lam) / 60.0
        n = int(acc[0])
        acc[0] -= n
        rows = [0, 1] if k % 6 == 0 else []  # 10 an hour each, exactly
        ctrl.record(np.array(rows + [2] * n, np.int64))
        got.append(n)
        lams.append(lam)
    return np.array(got), np.array(lams)


@pytest.mark.parametrize("per_hire", [False, True])
def test_multiplier_rises_under_the_floor_and_the_ratio_converges_to_it(per_hire):
    floor = WorkFloor(ratio=0.85, days=1.0, per_hire=per_hire, lambda_max=1.0)
    ctrl = floor.controller(agent_ids=["a", "b", "h"])
    # the hire's rate responds to the bonus: 4 an hour plain, +30 an hour per unit of lambda
    got, lams = _run(ctrl, minutes=12 * 60, hire_rate=lambda lam: 4.0 + 30.0 * lam)
    assert np.all(np.diff(lams[:15]) > 0)  # under the floor: it rises
    late = got[-4 * 60:].sum() / 4.0  # the hire's contacts an hour over the last 4 hours
    assert late / 10.0 == pytest.approx(0.85, abs=0.03)
    assert lams[-1] == pytest.approx((8.5 - 4.0) / 30.0, abs=0.03)  # the price that meets the floor


def test_multiplier_falls_to_zero_above_the_floor_and_is_capped():
    ctrl = WorkFloor(ratio=0.85, days=1.0, lambda_max=0.15).controller(agent_ids=["a", "b", "h"])
    acc = [0.0]
    _, lams = _run(ctrl, minutes=180, hire_rate=lambda lam: 0.0, acc=acc)  # starved: up to the cap, not past
    assert lams.max() == pytest.approx(0.15) and lams[-1] == pytest.approx(0.15)
    _, lams = _run(ctrl, minutes=240, hire_rate=lambda lam: 20.0, t0=180 * 60.0, acc=acc)  # twice the tenured
    assert lams[60] < 0.15 and np.all(lams[-60:] == 0.0)  # falls, then sits at 0: the plain policy


def test_bonus_reaches_only_hires_within_days_and_agents_on_shift_only_move_it():
    ctrl = WorkFloor(ratio=0.85, days=2.0).controller(agent_ids=["a", "b", "h1", "h2", "future"])
    tenure = np.array([90.0, 90.0, 0.5, 2.5, -1.0])  # h2 is past the floor's 2 days; "future" not yet hired
    for k in range(120):
        ctrl.step(t_s=60.0 * k, staffed=np.ones(5, bool), tenure_days=tenure)
        ctrl.record(np.array([0, 1], np.int64))
    lam = ctrl.terms(["a", "b", "h1", "h2", "future", "stranger"])
    assert lam[2] > 0 and np.all(lam[[0, 1, 3, 4, 5]] == 0)
    aged = tenure + 2.0  # two days later h1 is tenured too
    ctrl.step(t_s=120 * 60.0, staffed=np.ones(5, bool), tenure_days=aged)
    assert np.all(ctrl.terms(["h1", "h2"]) == 0)
    # per hire: a hire off shift keeps its multiplier (its rate is not moving)
    ctrl = WorkFloor(ratio=0.85, days=2.0, per_hire=True).controller(agent_ids=["a", "b", "h1", "h2", "future"])
    on = np.array([True, True, True, False, False])
    for k in range(120):
        ctrl.step(t_s=60.0 * k, staffed=on, tenure_days=np.array([90.0, 90.0, 0.5, 0.5, -1.0]))
        ctrl.record(np.array([0, 1], np.int64))
    assert ctrl.terms(["h1"])[0] > 0 and ctrl.terms(["h2"])[0] == 0


def test_rates_are_forgotten_contacts_per_staffed_hour():
    ctrl = WorkFloor(ratio=0.5, half_life_s=3600.0).controller(agent_ids=["a"])
    ctrl.step(t_s=0.0, staffed=np.ones(1, bool), tenure_days=np.array([90.0]))
    ctrl.record(np.array([0] * 6, np.int64))
    ctrl.step(t_s=3600.0, staffed=np.ones(1, bool), tenure_days=np.array([90.0]))
    # 6 contacts forgotten over an hour (x 0.5), staffed time: integral of 0.5 ** (s / 3600) over the hour
    staffed_h = (1 - 0.5) / np.log(2.0)
    assert ctrl.rates()[0] == pytest.approx(3.0 / staffed_h)


@pytest.fixture(scope="module")
def world_run():
    """A small world with hires on day 2, the learning policy's inputs (model scorer)."""
    import pandas as pd

    from assign.sim.worldsource import WorldSource
    from assign.world.centre import generate_history, generate_world, history_world

    world = generate_world(seed=11, n_agents=14, n_intents=4, n_customers=700, new_hires=0.25)
    hist = generate_history(history_world(world, days=3), days=3, seed=11)
    return WorldSource(world), hist, -pd.Timedelta(days=3)


def _simulate(world_run, floor):
    from assign.learn import Explore
    from assign.learn.policy import LearnPolicy
    from assign.sim.engine import SimConfig, simulate

    src, hist, shift = world_run
    pol = LearnPolicy(name="ml-learn", explore=Explore(), warm_history=hist, warm_shift=shift, work_floor=floor)
    run = simulate(source=src, policy=pol, seed=4, config=SimConfig(days=1.6, window_s=60.0))
    return run, pol


@pytest.fixture(scope="module")
def plain_run(world_run):
    return _simulate(world_run, None)[0]


def test_ratio_zero_is_exactly_the_plain_policy_and_a_floor_changes_it(world_run, plain_run):
    plain = plain_run
    zero, _ = _simulate(world_run, WorkFloor(ratio=0.0))
    assert np.array_equal(plain.agent, zero.agent) and np.array_equal(plain.status, zero.status)
    floored, pol = _simulate(world_run, WorkFloor(ratio=1.2, days=1.0, lambda_max=0.3))
    assert not np.array_equal(plain.agent, floored.agent)
    hires = np.flatnonzero(world_run[0].world.arrays.tenure_days < 0)
    assert pol.floor.lam[hires].max() > 0  # the hires, under a floor of 1.2, were priced in
    day2 = np.floor(plain.stream.arrival_s / 86400.0) == 1
    n_plain, n_floor = (np.isin(r.agent[day2 & (r.agent >= 0)], hires).sum() for r in (plain, floored))
    assert n_floor > n_plain  # and got more of the day's work


def test_model_scorer_adds_the_multiplier_to_scores_and_draws_only(world_run):
    from dataclasses import replace

    from assign.learn import EffectEstimates, ModelScorer, PopulationModel, history_outcomes
    from benchmarks.scoring import workload

    _, snap = workload(seed=3, n_contacts=10, n_agents=12)
    _, hist, _ = world_run
    model = PopulationModel.fit(hist)
    live = EffectEstimates()
    live.observe(history_outcomes(hist).merge(model.history_predictions(hist), left_on="decision_id",
                                              right_on="contact_id").drop(columns="contact_id"))
    ids = np.asarray(snap.agents.ids).astype(str)
    ctrl = WorkFloor(ratio=0.9).controller(agent_ids=ids)
    tenure = np.full(len(ids), 90.0)
    tenure[:2] = 0.1
    snap = replace(snap, agents=replace(snap.agents, tenure_days=tenure))
    for k in range(30):  # agents 0 and 1, hires, get nothing
        ctrl.step(t_s=60.0 * k, staffed=np.ones(len(ids), bool), tenure_days=tenure)
        ctrl.record(np.arange(2, len(ids)))
    ci = np.repeat(np.arange(snap.n_contacts), snap.n_agents)
    ai = np.tile(np.arange(snap.n_agents), snap.n_contacts)
    plain, floored = ModelScorer(model=model, live=live), ModelScorer(model=model, live=live, floor=ctrl)
    bonus = ctrl.terms(ids)[ai]
    assert bonus.max() > 0 and np.all(bonus[ai >= 2] == 0)
    s0, s1 = (s.score_pairs(snap, contact_idx=ci, agent_idx=ai) for s in (plain, floored))
    assert np.allclose(s1 - s0, bonus)
    d0, d1 = (s.posterior_draw(snap, contact_idx=ci, agent_idx=ai, rng=np.random.default_rng(1), n_draws=2)
              for s in (plain, floored))
    assert np.allclose(d1 - d0, bonus[None])


# --- 5.9: the reference of experienced agents, the feed-forward start, the handle-aware bonus ---

def test_new_settings_are_checked():
    with pytest.raises(InputError) as e:
        WorkFloor(ratio=0.8, days=1.0, reference_days=0.5, factor_max=0.0, start=0.5, lambda_max=0.1, handle="y")
    for name in ("reference_days", "factor_max", "start", "handle"):
        assert f"work_floor.{name}" in str(e.value)


def test_one_step_against_a_hand_computation_with_the_reference_and_the_start():
    """Agents: two experienced (90 d), one of an earlier cohort (14 d), one hire (0.2 d). With
    ``reference_days=30`` the earlier cohort is neither priced nor in the reference."""
    f = WorkFloor(ratio=0.8, days=1.0, reference_days=30.0, start=0.04, eta=0.6, lambda_max=0.1, half_life_s=1800.0)
    c = f.controller(agent_ids=["a", "b", "p", "h"])
    tenure = np.array([90.0, 90.0, 14.0, 0.2])
    c.step(t_s=0.0, staffed=np.ones(4, bool), tenure_days=tenure)
    assert c.terms(["a", "b", "p", "h"]).tolist() == [0.0, 0.0, 0.0, 0.04]  # the hire starts at ``start``
    c.record(np.array([0, 0, 1, 1, 2, 2, 2, 2, 3], np.int64))  # the earlier cohort's 4 would lift the reference
    c.step(t_s=600.0, staffed=np.ones(4, bool), tenure_days=tenure + 600.0 / 86400.0)
    decay = 0.5 ** (600.0 / 1800.0)
    staffed = (1.0 - decay) * 1800.0 / np.log(2.0)  # forgotten staffed seconds of each agent
    ref = 4 * decay / (2 * staffed)  # experienced agents only: 4 contacts over 2 agents
    hire = 1 * decay / staffed
    want = np.clip(0.04 + 0.6 * (600.0 / 3600.0) * (0.8 * ref - hire) / ref, 0.0, 0.1)
    assert c.terms(["h"])[0] == pytest.approx(want, rel=1e-12)
    # the old reference (tenure >= days) counts the earlier cohort in: another price
    old = WorkFloor(ratio=0.8, days=1.0, start=0.04, eta=0.6, lambda_max=0.1).controller(agent_ids=["a", "b", "p", "h"])
    old.step(t_s=0.0, staffed=np.ones(4, bool), tenure_days=tenure)
    old.record(np.array([0, 0, 1, 1, 2, 2, 2, 2, 3], np.int64))
    old.step(t_s=600.0, staffed=np.ones(4, bool), tenure_days=tenure + 600.0 / 86400.0)
    ref3 = 8 * decay / (3 * staffed)
    assert old.terms(["h"])[0] == pytest.approx(np.clip(0.04 + 0.1 * (0.8 * ref3 - hire) / ref3, 0, 0.1), rel=1e-12)


def test_start_at_the_cap_is_a_price_that_only_falls_where_hires_meet_the_floor():
    f = WorkFloor(ratio=0.85, days=1.0, start=0.05, lambda_max=0.05)
    c = f.controller(agent_ids=["a", "b", "h"])
    _, lams = _run(c, minutes=120, hire_rate=lambda lam: 0.0)  # starved: the price stays at the cap
    assert np.all(lams == 0.05)
    c = f.controller(agent_ids=["a", "b", "h"])
    _, lams = _run(c, minutes=240, hire_rate=lambda lam: 20.0)  # twice the tenured rate: it falls to 0
    assert lams[0] == 0.05 and np.all(lams[-60:] == 0.0)


def test_pair_factor_is_the_capped_shortness_with_handle_and_one_without():
    s = np.array([0.2, 1.0, 1.7, 5.0])
    assert WorkFloor(ratio=0.8, handle=True, factor_max=2.0).pair_factor(s).tolist() == [0.2, 1.0, 1.7, 2.0]
    assert WorkFloor(ratio=0.8).pair_factor(s).tolist() == [1.0] * 4


def test_priced_floor_off_is_the_plain_policy_and_on_gives_hires_short_contacts(world_run, plain_run):
    """5.9's settings with ratio 0 are exactly the plain policy (seeded); on, the hires get more
    of their first day's contacts (the policy fits the handle proxy on its warm history)."""
    from dataclasses import replace

    from assign.learn.floor import PRICED

    off, _ = _simulate(world_run, replace(PRICED, ratio=0.0))
    assert np.array_equal(plain_run.agent, off.agent) and np.array_equal(plain_run.status, off.status)
    on, pol = _simulate(world_run, replace(PRICED, ratio=1.2))
    assert pol.scorer.handle is not None
    hires = np.flatnonzero(world_run[0].world.arrays.tenure_days < 0)
    day2 = np.floor(plain_run.stream.arrival_s / 86400.0) == 1
    n_plain, n_on = (np.isin(r.agent[day2 & (r.agent >= 0)], hires).sum() for r in (plain_run, on))
    assert n_on > n_plain


def test_model_scorer_scales_the_price_by_the_pairs_shortness(world_run):
    from dataclasses import replace

    from assign.learn import EffectEstimates, ModelScorer, PopulationModel, history_outcomes
    from assign.learn.handle import HandleModel
    from benchmarks.scoring import workload

    _, snap = workload(seed=3, n_contacts=10, n_agents=12)
    _, hist, _ = world_run
    model = PopulationModel.fit(hist)
    handle = HandleModel.fit(hist, spec=model.spec)
    live = EffectEstimates()
    live.observe(history_outcomes(hist).merge(model.history_predictions(hist), left_on="decision_id",
                                              right_on="contact_id").drop(columns="contact_id"))
    ids = np.asarray(snap.agents.ids).astype(str)
    tenure = np.full(len(ids), 90.0)
    tenure[:2] = 0.1
    snap = replace(snap, agents=replace(snap.agents, tenure_days=tenure))
    ctrl = WorkFloor(ratio=0.9, start=0.1, lambda_max=0.1, handle=True, factor_max=1.5).controller(agent_ids=ids)
    ctrl.step(t_s=0.0, staffed=np.ones(len(ids), bool), tenure_days=tenure)
    ci = np.repeat(np.arange(snap.n_contacts), snap.n_agents)
    ai = np.tile(np.arange(snap.n_agents), snap.n_contacts)
    with pytest.raises(ValueError, match="handle model"):
        ModelScorer(model=model, live=live, floor=ctrl)
    plain, priced = ModelScorer(model=model, live=live), ModelScorer(model=model, live=live, floor=ctrl, handle=handle)
    X = model.featurizer.features(snap, contact_idx=ci, agent_idx=ai)
    want = np.where(ai < 2, 0.1 * np.minimum(np.exp(handle.ref - handle.predict_rows(X)), 1.5), 0.0)
    assert want[ai < 2].min() < want[ai < 2].max() <= 0.15 + 1e-12  # the price varies with the pair, capped
    s0, s1 = (s.score_pairs(snap, contact_idx=ci, agent_idx=ai) for s in (plain, priced))
    np.testing.assert_allclose(s1 - s0, want, atol=1e-12)
    d0, d1 = (s.posterior_draw(snap, contact_idx=ci, agent_idx=ai, rng=np.random.default_rng(1), n_draws=2)
              for s in (plain, priced))
    np.testing.assert_allclose(d1 - d0, want[None].repeat(2, 0), atol=1e-12)
