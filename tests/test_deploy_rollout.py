"""Rollout modes in the simulator: shadow leaves decisions to the champion, split uses the
experiment hashing, full routes by the challenger; a guardrail breach rolls back, logged."""
from __future__ import annotations

import json

import numpy as np
import pytest

from assign.deploy import open_registry
from assign.deploy.rollout import Guardrail, RolloutPolicy
from assign.errors import InputError
from assign.experiment import arm_of
from assign.sim.engine import ABANDONED, SERVED, SimConfig, simulate
from assign.sim.policies import Policy, make_policy
from assign.sim.worldsource import WorldSource
from assign.world.centre import generate_world

GUARDS = (Guardrail(name="abandonment", margin=0.02), Guardrail(name="service_level", margin=0.05))
CFG = SimConfig(days=1)


class Hold(Policy):
    """Answers nothing: every contact it routes abandons."""

    name = "hold"

    def assign(self, view):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)


@pytest.fixture(scope="module")
def source():
    return WorldSource(generate_world(seed=22, n_agents=12, n_intents=4, n_customers=2000))


def test_shadow_decides_as_the_champion_and_logs_both(source) -> None:
    plain = simulate(source=source, policy=make_policy("fcfs"), seed=1, config=CFG)
    p = RolloutPolicy(champion=make_policy("fcfs"), challenger=make_policy("skills"), mode="shadow")
    run = simulate(source=source, policy=p, seed=1, config=CFG)
    np.testing.assert_array_equal(run.agent, plain.agent)
    np.testing.assert_array_equal(run.status, plain.status)
    assert len(p.shadow) == run.n_decisions and sum(s["challenger_pairs"] for s in p.shadow) > 0
    assert 0 < sum(s["agree"] for s in p.shadow) < sum(s["champion_pairs"] for s in p.shadow)


def test_split_arms_come_from_the_experiment_hash(source) -> None:
    p = RolloutPolicy(champion=make_policy("fcfs"), challenger=make_policy("fcfs"), mode="split", share=0.3,
                      salt="ro-1", guardrails=GUARDS)
    run = simulate(source=source, policy=p, seed=2, config=CFG)
    ids = run.stream.block.ids
    expect = [arm_of(i, salt="ro-1", arms=("champion", "challenger"), weights=(0.7, 0.3)) for i in ids]
    assert list(run.arm) == expect
    assert 0.25 < np.mean(run.arm == "challenger") < 0.35
    win = RolloutPolicy(champion=make_policy("fcfs"), challenger=make_policy("fcfs"), mode="split",
                        unit="switchback", window_s=7200.0, salt="ro-2")
    run = simulate(source=source, policy=win, seed=2, config=CFG)
    hour = np.floor(run.stream.arrival_s / 7200.0).astype(int)
    assert all(len(set(run.arm[hour == h])) == 1 for h in np.unique(hour))


def test_a_harmful_challenger_is_rolled_back_in_split(source) -> None:
    p = RolloutPolicy(champion=make_policy("fcfs"), challenger=Hold(), mode="split", share=0.3, guardrails=GUARDS)
    run = simulate(source=source, policy=p, seed=3, config=CFG)
    assert p.rolled_back_at_s is not None and p.events[0]["figures"]["guardrail"] in ("abandonment", "service_level")
    late = run.stream.arrival_s > p.rolled_back_at_s
    ch = run.arm == "challenger"
    served = ch & (run.status == SERVED)
    assert (run.stream.arrival_s[served] + run.wait_s[served] >= p.rolled_back_at_s).all()  # none before it
    assert (run.status[ch & late] == ABANDONED).mean() < 0.6    # the champion serves them after it


@pytest.mark.slow
def test_identical_arms_rarely_roll_back(source) -> None:
    """The null: both arms run the same policy; a rollback is a false alarm."""
    rolled = []
    for seed in range(10, 16):
        p = RolloutPolicy(champion=make_policy("fcfs"), challenger=make_policy("fcfs"), mode="split", share=0.3,
                          guardrails=GUARDS, salt=f"null-{seed}")
        simulate(source=source, policy=p, seed=seed, config=CFG)
        rolled.append(p.rolled_back_at_s is not None)
    assert sum(rolled) <= 1


def test_full_rollout_rolls_back_against_the_baseline_and_restores_the_champion(source, tmp_path) -> None:
    base = simulate(source=source, policy=make_policy("fcfs"), seed=4, config=CFG)
    rate = float(np.mean(base.status == ABANDONED))
    reg = open_registry(tmp_path / "reg")
    for k in (1, 2):
        m = tmp_path / f"m{k}"
        m.mkdir()
        (m / "metadata.json").write_text(json.dumps({"schema": "assign.model/1"}))
        reg.register(m)
    reg.set_alias("champion", "v0001", reason="first")
    reg.set_alias("champion", "v0002", reason="promoted")
    p = RolloutPolicy(champion=make_policy("fcfs"), challenger=Hold(), mode="full", registry=reg,
                      versions=("v0001", "v0002"), guardrails=(Guardrail(name="abandonment", margin=0.02,
                                                                          baseline=rate),))
    run = simulate(source=source, policy=p, seed=4, config=CFG)
    assert set(run.arm) == {"challenger"} and p.rolled_back_at_s is not None
    assert reg.resolve("champion") == "v0001"
    events = [e["event"] for e in reg.audit()]
    assert events[-3:] == ["rollback", "alias", "alias"]  # previous, then champion
    rb = next(e for e in reg.audit() if e["event"] == "rollback")
    assert rb["figures"]["challenger"] > rate + 0.02 and rb["champion"] == "v0001"


def test_bad_rollout_options_name_every_problem() -> None:
    with pytest.raises(InputError) as err:
        RolloutPolicy(champion=make_policy("fcfs"), challenger=make_policy("fcfs"), mode="half", share=1.5,
                      unit="day")
    assert len(err.value.problems) == 3
    with pytest.raises(InputError) as err:
        Guardrail(name="csat", margin=-1, baseline=2.0)
    assert len(err.value.problems) == 3
