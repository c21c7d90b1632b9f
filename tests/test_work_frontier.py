"""The priced oracle of benchmarks.work_frontier: b = 0 is the plain oracle, the price lands on the first-day
hires only, a price moves work to them, and bad settings are named."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from assign.constants import DAY_S
from assign.errors import InputError
from assign.sim.engine import SimConfig, simulate
from assign.sim.policies import make_policy
from assign.sim.worldsource import WorldSource
from assign.world.centre import generate_world, hire_days
from benchmarks.cold_start import work_parts
from benchmarks.work_frontier import PricedOracle, PricedOracleScorer, shares

CFG = SimConfig(days=2, window_s=60.0)


@pytest.fixture(scope="module")
def small():
    world = generate_world(seed=11, n_agents=12, n_intents=3, new_hires=0.25)
    src = WorldSource(world)
    runs = {name: simulate(source=src, policy=pol, seed=3, config=CFG)
            for name, pol in (("oracle", make_policy("oracle")), ("b0", PricedOracle(bonus=0.0)),
                              ("b5", PricedOracle(bonus=0.5)))}
    return src, np.flatnonzero(hire_days(world.agents) == 1), runs


def test_zero_price_is_the_plain_oracle(small):
    _, _, runs = small
    a, b = runs["oracle"], runs["b0"]
    assert np.array_equal(a.status, b.status)
    assert np.array_equal(a.agent, b.agent)
    assert np.array_equal(np.nan_to_num(a.wait_s, nan=-1), np.nan_to_num(b.wait_s, nan=-1))


def test_a_price_moves_work_to_the_hires(small):
    src, hires, runs = small
    assert len(hires) >= 2
    plain, priced = (work_parts(runs[k], src, hires)["contacts"] for k in ("b0", "b5"))
    assert priced > plain + 0.05


class _Run:
    def __init__(self, src):
        self.source = src


def test_the_price_lands_on_first_day_hires_only(small, monkeypatch):
    src, hires, _ = small
    sc = PricedOracleScorer(bonus=0.1, days=1.0)
    sc.bind(_Run(src))
    n = len(src.agents.ids)
    monkeypatch.setattr("assign.sim.policies.OracleScorer.score_pairs", lambda self, snap, **k: np.zeros(n))
    snap = type("S", (), {"meta": {"agent_rows": np.arange(n)}})()
    tenure0 = np.asarray(src.world.arrays.tenure_days, float)
    for t_s in (0.5 * DAY_S, 1.5 * DAY_S, 2.5 * DAY_S):  # before joining, the first day, the second day
        sc.t_s = t_s
        got = sc.score_pairs(snap, contact_idx=np.zeros(n, int), agent_idx=np.arange(n))
        ten = tenure0 + t_s / DAY_S
        np.testing.assert_allclose(got, 0.1 * ((ten >= 0) & (ten < 1)))
    sc.t_s = 1.5 * DAY_S
    assert np.flatnonzero(sc.score_pairs(snap, contact_idx=np.zeros(n, int), agent_idx=np.arange(n))).tolist() \
        == sorted(hires.tolist())


def test_bad_settings_are_named_together():
    with pytest.raises(InputError) as e:
        PricedOracleScorer(bonus=-0.1, days=0.0)
    assert "priced_oracle.bonus" in str(e.value) and "priced_oracle.days" in str(e.value)


def test_shares_against_the_same_seeds_references():
    df = pd.DataFrame({"seed": [0, 0, 0, 1, 1, 1], "policy": ["fcfs", "oracle+0", "x"] * 2,
                       "resolution_day2": [0.70, 0.80, 0.78, 0.60, 0.64, 0.61]})
    np.testing.assert_allclose(shares(df)["share"], [0, 1, 0.8, 0, 1, 0.25])


def test_summary_pairs_each_policy_with_ml_live_on_the_same_seeds():
    from benchmarks.work_frontier import summary

    df = pd.DataFrame({"seed": [0] * 3 + [1] * 3, "policy": ["fcfs", "oracle+0", "ml-live"] * 2,
                       "family": ["fcfs", "oracle+b", "ml-live"] * 2, "b": [np.nan, 0.0, np.nan] * 2,
                       "ratio": [0.8, 0.6, 0.7, 0.9, 0.5, 0.8],
                       "resolution_day2": [0.70, 0.80, 0.78, 0.60, 0.64, 0.61]})
    t = summary(df).set_index("policy")
    assert t.loc["oracle+0", "d_share_vs_ml-live"] == pytest.approx(((1 - 0.8) + (1 - 0.25)) / 2)
    assert t.loc["oracle+0", "d_ratio_vs_ml-live"] == pytest.approx(-0.2)
    assert t.loc["oracle+0", "d_share_vs_ml-live_sd"] == pytest.approx(np.std([0.2, 0.75], ddof=1))


def test_day_resolution_is_the_mean_over_served_contacts_by_arrival_day():
    from types import SimpleNamespace

    from benchmarks.cold_start import SERVED, day_resolution

    run = SimpleNamespace(status=np.array([SERVED, SERVED, SERVED + 1, SERVED]),
                          stream=SimpleNamespace(arrival_s=np.array([10.0, DAY_S - 1, DAY_S + 5, DAY_S + 9])),
                          truth_p_resolved=np.array([0.6, 0.8, 0.1, 0.5]))
    assert day_resolution(run, days=2) == pytest.approx([0.7, 0.5])
