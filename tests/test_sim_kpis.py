"""KPI arithmetic against references: Gini, t-intervals (scipy), paired differences, the
uplift share, and the Erlang C closed form against its textbook sum."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from assign.sim.erlang import erlang_c, mmc_mean_wait_s, mmc_service_level
from assign.sim.kpis import RunSummary, gini, interval, paired_differences, uplift_share


def test_gini_reference_values():
    assert gini(np.ones(10)) == pytest.approx(0.0)
    assert gini(np.r_[np.zeros(9), 1.0]) == pytest.approx(0.9)
    x = np.random.default_rng(0).exponential(size=20_000)
    assert gini(x) == pytest.approx(0.5, abs=0.01)  # exponential: Gini = 1/2
    assert math.isnan(gini(np.zeros(3)))


def test_interval_matches_scipy():
    x = np.random.default_rng(1).normal(3, 2, 12)
    lo, hi = stats.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=stats.sem(x))
    iv = interval(x)
    assert iv.low == pytest.approx(lo) and iv.high == pytest.approx(hi) and iv.n == 12
    assert math.isnan(interval(np.array([1.0])).half_width)


def _summary(policy, seed, **kpis):
    from assign.sim.kpis import KPI_NAMES

    k = {name: float("nan") for name in KPI_NAMES}
    k.update(kpis)
    return RunSummary(policy=policy, seed=seed, kpis=k, by_intent={}, by_hour={}, wait_hist=np.zeros(1),
                      agent_work_s=np.zeros(1), agent_handled=np.zeros(1), agent_ids=("a",), n_decisions=0, wall_s=0)


def test_paired_differences_pair_on_seed():
    rng = np.random.default_rng(2)
    base = rng.normal(0.7, 0.05, 10)  # seed-to-seed noise shared by both policies
    runs = [_summary("fcfs", s, resolution_rate=base[s]) for s in range(10)]
    runs += [_summary("new", s, resolution_rate=base[s] + 0.01 + rng.normal(0, 0.001)) for s in range(10)]
    d = paired_differences(runs, baseline="fcfs")
    row = d[(d.policy == "new") & (d.kpi == "resolution_rate")].iloc[0]
    assert row["diff"] == pytest.approx(0.01, abs=0.002)
    # Pairing removes the shared noise: the interval is far narrower than the unpaired one.
    assert row["ci_high"] - row["ci_low"] < 0.005
    ttest = stats.ttest_rel([r.kpis["resolution_rate"] for r in runs[10:]], base)
    assert ttest.pvalue < 1e-6


def test_uplift_share_is_ratio_of_mean_uplifts():
    runs = []
    for s in range(8):
        runs += [_summary("fcfs", s, resolution_rate=0.70 + 0.01 * s),
                 _summary("ml-batch", s, resolution_rate=0.73 + 0.01 * s + 0.001 * (s % 2)),
                 _summary("oracle", s, resolution_rate=0.76 + 0.01 * s)]
    iv = uplift_share(runs, policy="ml-batch", baseline="fcfs", ceiling="oracle")
    assert iv.mean == pytest.approx((0.03 + 0.0005) / 0.06)
    assert iv.low < iv.mean < iv.high


def _erlang_c_textbook(c, a):
    top = a ** c / math.factorial(c) * c / (c - a)
    return top / (sum(a ** k / math.factorial(k) for k in range(c)) + top)


@pytest.mark.parametrize("c, a", [(1, 0.5), (2, 1.0), (5, 4.0), (20, 17.5), (50, 45.0)])
def test_erlang_c_matches_the_textbook_sum(c, a):
    assert erlang_c(agents=c, offered_erlangs=a) == pytest.approx(_erlang_c_textbook(c, a), rel=1e-10)


def test_erlang_mm1_special_case_and_errors():
    # M/M/1: P(wait) = rho, mean wait = rho / (mu - lambda)
    assert erlang_c(agents=1, offered_erlangs=0.6) == pytest.approx(0.6)
    assert mmc_mean_wait_s(agents=1, arrival_rate_per_s=0.6, mean_service_s=1.0) == pytest.approx(1.5)
    assert mmc_service_level(agents=1, arrival_rate_per_s=0.6, mean_service_s=1.0, threshold_s=0) == pytest.approx(0.4)
    with pytest.raises(ValueError, match="unstable"):
        erlang_c(agents=2, offered_erlangs=2.0)
