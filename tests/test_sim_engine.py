"""The engine: reproducibility, common random numbers, conservation, capacity and shifts,
windows, abandonment, policy checks, split runs, and the history log."""
from __future__ import annotations

import zlib

import numpy as np
import pytest

from assign.errors import AssignError
from assign.history import conform_history
from assign.sim.engine import ABANDONED, SERVED, UNSERVED, SimConfig, simulate
from assign.sim.kpis import summarise
from assign.sim.log import to_history
from assign.sim.policies import FCFS, POLICY_NAMES, Policy, Skills, SplitPolicy, make_policy
from assign.sim.scenario import mmc_scenario
from assign.sim.source import ScenarioSource
from assign.sim.worldsource import WorldSource
from assign.world.centre import generate_world


@pytest.fixture(scope="module")
def world_source():
    return WorldSource(generate_world(seed=11, n_agents=24, n_intents=8, n_customers=3000))


CFG = SimConfig(days=0.25)


def _fields(run):
    return (run.status, run.wait_s, run.agent, run.handle_s, run.resolved, run.csat)


def test_same_seed_same_run_and_different_seed_differs(world_source):
    a = simulate(source=world_source, policy=make_policy("fcfs"), seed=4, config=CFG)
    b = simulate(source=world_source, policy=make_policy("fcfs"), seed=4, config=CFG)
    for x, y in zip(_fields(a), _fields(b)):
        np.testing.assert_array_equal(x, y)
    c = simulate(source=world_source, policy=make_policy("fcfs"), seed=5, config=CFG)
    assert len(c.status) != len(a.status) or not np.array_equal(c.stream.arrival_s, a.stream.arrival_s)


@pytest.mark.parametrize("policy", POLICY_NAMES)
def test_every_policy_conserves_contacts_and_respects_capacity(world_source, policy):
    cfg = SimConfig(days=0.5, window_s=5.0 if policy in ("ml-batch", "oracle", "ml-live", "ml-learn") else 0.0)
    run = simulate(source=world_source, policy=make_policy(policy), seed=1, config=cfg)
    st = run.stream
    assert set(np.unique(run.status)) <= {SERVED, ABANDONED, UNSERVED}
    served = run.status == SERVED
    assert served.mean() > 0.4  # the small world has thin night coverage
    assert np.all(run.wait_s[served] >= 0)
    ab = run.status == ABANDONED
    np.testing.assert_allclose(run.wait_s[ab], st.patience_s[ab])  # abandonment is exact in time
    assert np.all(run.wait_s[served] <= st.patience_s[served] + 1e-9)  # nobody served after giving up
    # At no instant does an agent hold more than its capacity on a channel.
    src = world_source
    start = st.arrival_s[served] + run.wait_s[served]
    end = start + run.handle_s[served]
    ag, ch = run.agent[served], st.block.channel[served]
    ev_t = np.r_[start, end]
    ev_d = np.r_[np.ones(len(start)), -np.ones(len(end))]
    key = np.r_[ag * 3 + ch, ag * 3 + ch]
    order = np.lexsort((ev_d, np.round(ev_t, 6)))  # ends before starts at equal times (to float rounding)
    level = {}
    for k in order:
        level[key[k]] = level.get(key[k], 0) + ev_d[k]
        assert level[key[k]] <= src.agents.capacity[key[k] // 3, key[k] % 3]
    # Served only by eligible agents (language and minimum skill) who were on shift.
    a = src.agents
    assert np.all(a.speaks[ag, st.block.language[served]])
    assert np.all(a.skill[ag, st.block.intent[served]] >= cfg.min_proficiency)
    for t, j in list(zip(start, ag))[::50]:
        assert src.world.on_shift(t)[j]
    if cfg.window_s:
        ticks = start / cfg.window_s
        np.testing.assert_allclose(ticks, np.round(ticks), atol=1e-6)


def test_common_random_numbers_across_policies(world_source):
    a = simulate(source=world_source, policy=make_policy("fcfs"), seed=2, config=CFG)
    b = simulate(source=world_source, policy=make_policy("skills"), seed=2, config=CFG)
    np.testing.assert_array_equal(a.stream.arrival_s, b.stream.arrival_s)
    np.testing.assert_array_equal(a.stream.patience_s, b.stream.patience_s)
    # Same contact, same agent -> same handle time and outcome, whoever routed it.
    both = (a.status == SERVED) & (b.status == SERVED) & (a.agent == b.agent)
    both &= np.isclose(a.agent_load, b.agent_load)
    assert both.sum() > 20
    np.testing.assert_array_equal(a.resolved[both], b.resolved[both])
    np.testing.assert_array_equal(a.csat[both], b.csat[both])


def test_outcome_draws_have_the_truth_as_expectation(world_source):
    run = simulate(source=world_source, policy=make_policy("fcfs"), seed=3, config=SimConfig(days=1.0))
    s = run.status == SERVED
    n = s.sum()
    p = run.truth_p_resolved[s]
    assert abs(run.resolved[s].mean() - p.mean()) < 4 * np.sqrt((p * (1 - p)).sum()) / n
    assert abs(run.csat[s].mean() - run.truth_csat[s].mean()) < 4 * run.csat[s].std() / np.sqrt(n)
    ratio = run.handle_s[s] / run.truth_handle_s[s]
    assert abs(ratio.mean() - 1) < 4 * ratio.std() / np.sqrt(n)


def test_shift_plan_matches_world_on_shift(world_source):
    plan = world_source.shifts(horizon_s=3 * 86400.0)
    on = np.zeros(world_source.world.n_agents, bool)
    k = 0
    for t in np.linspace(0, 3 * 86400.0 - 1, 173) + 0.5:
        while k < len(plan.t_s) and plan.t_s[k] <= t:
            on[plan.agent[k]] = plan.on[k]
            k += 1
        np.testing.assert_array_equal(on, world_source.world.on_shift(t))


def test_impatient_overloaded_queue_abandons_at_the_erlang_a_rate():
    # M/M/1+M heavily overloaded: almost everyone waits; abandonment ~ 1 - mu/lambda.
    src = ScenarioSource(mmc_scenario(arrival_rate_per_hour=360, mean_service_s=30, agents=1,
                                      patience_mean_s=30, days=2))
    run = simulate(source=src, policy=FCFS(), seed=0, config=SimConfig(days=2))
    ab = (run.status == ABANDONED).mean()
    # Throughput = served rate <= mu; offered 3x capacity, so at least ~2/3 abandon.
    assert 0.6 < ab < 0.75
    assert summarise(run).kpis["occupancy"] > 0.95


class _Greedy(Policy):
    """A broken policy: gives every waiting contact to agent 0."""

    name = "broken"

    def assign(self, view):
        return view.waiting, np.zeros(len(view.waiting), np.int64)


def test_engine_refuses_an_over_assigning_policy():
    src = ScenarioSource(mmc_scenario(arrival_rate_per_hour=3600, mean_service_s=100, agents=2))
    with pytest.raises(AssignError, match="broken"):
        simulate(source=src, policy=_Greedy(), seed=0, config=SimConfig(days=0.01, window_s=10))


def test_split_policy_labels_contacts_and_switchback_by_time(world_source):
    split = SplitPolicy(arms={"control": FCFS(), "treatment": Skills()},
                        arm_of=lambda c, t: "treatment" if zlib.crc32(c.contact_id.encode()) % 2 else "control")
    run = simulate(source=world_source, policy=split, seed=6, config=CFG)
    assert set(run.arm) == {"control", "treatment"}
    share = (run.arm == "treatment").mean()
    assert 0.4 < share < 0.6
    assert set(summarise(run).extra["by_arm"]) == {"control", "treatment"}
    sw = SplitPolicy(arms={"a": FCFS(), "b": Skills()}, arm_of=lambda c, t: "ab"[int(t // 3600) % 2])
    run2 = simulate(source=world_source, policy=sw, seed=6, config=CFG)
    hour = (run2.stream.arrival_s // 3600).astype(int)
    assert np.all((run2.arm == "b") == (hour % 2 == 1))
    log = to_history(run2, source=world_source)
    assert "arm" in log and list(log["arm"]) == list(run2.arm)
    with pytest.raises(ValueError, match="not one of"):
        simulate(source=world_source, policy=SplitPolicy(arms={"a": FCFS()}, arm_of=lambda c, t: "zz"),
                 seed=1, config=CFG)


def test_history_log_follows_the_contract(world_source):
    run = simulate(source=world_source, policy=make_policy("skills"), seed=8, config=CFG)
    log = to_history(run, source=world_source)
    again = conform_history(log)
    assert len(again) == run.n_contacts
    served = log["status"] == "served"
    assert log.loc[served, "agent_id"].notna().all() and log.loc[~served, "agent_id"].isna().all()
    assert (log["abandoned"] == (log["status"] == "abandoned")).all()
    assert log.loc[served, "truth_p_resolved"].between(0, 1).all()
    assert log.loc[served, "resolved"].notna().all()
    rep = log["repeat_72h"]
    assert rep.notna().any()


def test_sim_config_reports_every_bad_field_at_once():
    from assign.errors import InputError

    with pytest.raises(InputError) as err:
        SimConfig(days=0, window_s=0.001, drain_s=float("nan"), sl_threshold_s=0)
    text = str(err.value)
    for field in ("config.days", "config.window_s", "config.drain_s", "config.sl_threshold_s"):
        assert field in text


def test_a_window_longer_than_the_run_never_routes_in_the_past():
    """A window of 1e300 s used to tick at t=0 (an absolute epsilon), reporting perfect KPIs."""
    src = ScenarioSource(mmc_scenario(arrival_rate_per_hour=60, mean_service_s=60, agents=2))
    run = simulate(source=src, policy=FCFS(), seed=0, config=SimConfig(days=0.05, window_s=1e300, drain_s=0))
    assert run.n_contacts > 0 and not (run.status == SERVED).any()
    assert np.all(run.wait_s >= 0)
