"""The rule that sets the monitor's alarm threshold from a driftless calibration run
(benchmarks.monitor_threshold), against its rank argument and the day test it recomputes."""
from __future__ import annotations

import numpy as np
import pytest

from assign.deploy.drift import day_sums, day_test, day_test_from_sums
from benchmarks.monitor_threshold import GRID, choose_alpha, rate


def test_alpha_is_the_largest_grid_value_below_the_allowed_calibration_alarms():
    stat = np.r_[0.0091, 0.02, np.linspace(0.05, 1, 133)]          # N = 135: k + 1 = 1
    a, bound = choose_alpha(stat, per_week=0.1)
    assert a == 0.005 and bound == pytest.approx(7 / 136)
    stat = np.r_[0.0004, 0.0091, np.linspace(0.05, 1, 298)]        # N = 300: k + 1 = 2
    a, bound = choose_alpha(stat, per_week=0.1)
    assert a == 0.005 and bound == pytest.approx(7 * 2 / 301)
    assert choose_alpha(np.full(50, 0.9), per_week=0.1)[0] == 0.01 == GRID[0]  # never above 0.01


def test_a_new_null_check_alarms_at_most_k_plus_one_in_n_plus_one():
    """Exchangeable checks: calibrate on N, test the (N + 1)-th; the alarm rate stays under
    the rank bound (k + 1) / (N + 1), whatever the statistic's distribution."""
    rng = np.random.default_rng(3)
    n, sims, hits = 139, 3000, 0
    for _ in range(sims):
        x = rng.beta(0.3, 2.0, n + 1) * 0.05  # skewed, many small values
        a, _ = choose_alpha(x[:n], per_week=0.1)
        hits += x[n] < a
    bound = 1 / (n + 1)
    assert hits / sims <= bound + 3 * np.sqrt(bound / sims), hits / sims


def test_rate_interval_is_clopper_pearson():
    from scipy import stats

    r = rate(0, 210)
    assert r["per_week_ci95"][0] == 0 and r["per_week_ci95"][1] == pytest.approx(7 * (1 - 0.025 ** (1 / 210)))
    r = rate(3, 135)
    assert r["per_week"] == pytest.approx(7 * 3 / 135)
    assert r["per_week_ci95"][0] == pytest.approx(7 * stats.beta.ppf(0.025, 3, 133))


def test_the_test_from_day_sums_is_the_day_test():
    rng = np.random.default_rng(4)
    day = np.repeat(np.arange(9), 200)
    ref = rng.normal(0, 1, day.size) + rng.normal(0, 0.1, 9)[day]
    rec = rng.normal(0.2, 1, 300)
    rec_day = np.r_[np.zeros(250, int), np.ones(50, int)]
    n, s, q = day_sums(ref, day, 9)
    rn, rs, _ = day_sums(rec, rec_day, 2)
    for disp in (False, True):
        a = day_test(ref, day, rec, rec_day, dispersion=disp)
        b = day_test_from_sums(n_d=n, s_d=s, q_d=q, n_j=rn, s_j=rs, dispersion=disp)
        assert a == b
