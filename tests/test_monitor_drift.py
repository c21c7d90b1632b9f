"""The day-level shift test and its helpers, against scipy/statsmodels and under simulated nulls."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from assign.deploy.drift import binomial_residual_z, day_test, holm, hour_centred, midrank_pit


def _days(rng, *, n_days, n_rows, tau, clusters=20, cluster_sd=0.3, mu=0.0, shift=0.0):
    """Rows of ``n_days`` days: a day effect (sd ``tau``), a fresh cluster effect per day (the
    agents on shift), unit noise. Returns (values, day codes)."""
    day = np.repeat(np.arange(n_days), n_rows)
    cluster = rng.normal(0, cluster_sd, (n_days, clusters))[day, rng.integers(0, clusters, n_days * n_rows)]
    vals = mu + shift + rng.normal(0, tau, n_days)[day] + cluster + rng.normal(0, 1, n_days * n_rows)
    return vals, day


def test_one_recent_day_is_the_two_sample_t_test_of_day_means():
    rng = np.random.default_rng(1)
    ref, rd = _days(rng, n_days=12, n_rows=300, tau=0.2)
    rec, _ = _days(rng, n_days=1, n_rows=300, tau=0.2, shift=0.3)
    res = day_test(ref, rd, rec, np.zeros(300, int))
    means = np.array([ref[rd == d].mean() for d in range(12)])
    t = stats.ttest_ind([rec.mean()], means, equal_var=True)
    assert res.tau > 0
    assert res.z == pytest.approx(t.statistic, rel=1e-9)
    assert res.p_value == pytest.approx(t.pvalue, rel=1e-7)
    assert res.df == pytest.approx(11.0)


def test_untestable_without_enough_reference_days():
    rng = np.random.default_rng(2)
    ref, rd = _days(rng, n_days=2, n_rows=50, tau=0.1)
    res = day_test(ref, rd, ref[:10], np.zeros(10, int), min_days=3)
    assert not res.testable and res.p_value == 1.0


def test_constant_reference_flags_any_change_and_passes_none():
    ref, rd = np.zeros(100), np.repeat(np.arange(5), 20)
    assert day_test(ref, rd, np.zeros(10), np.zeros(10, int)).p_value == 1.0
    assert day_test(ref, rd, np.ones(10), np.zeros(10, int)).p_value == 0.0


@pytest.mark.slow
@pytest.mark.parametrize("n_rows", [150, 2000])
def test_false_alarm_rate_is_near_alpha_whatever_the_batch_size(n_rows):
    """400 unchanged batches: the day test rejects at about alpha at both batch sizes, while a
    row-level two-sample KS test on the same data rejects far more often on large batches
    (rows of a day share the day's and the agents' effects)."""
    rng = np.random.default_rng(10 + n_rows)
    alpha, sims = 0.05, 400
    rej = ks_rej = 0
    for _ in range(sims):
        ref, rd = _days(rng, n_days=14, n_rows=n_rows, tau=0.1)
        rec, _ = _days(rng, n_days=1, n_rows=n_rows, tau=0.1)
        rej += day_test(ref, rd, rec, np.zeros(n_rows, int)).p_value < alpha
        ks_rej += stats.ks_2samp(ref, rec).pvalue < alpha
    rate = rej / sims
    assert 0.02 <= rate <= 0.085, rate  # binomial sd at 0.05 over 400 runs: 0.011
    if n_rows == 2000:
        assert ks_rej / sims > 0.3


@pytest.mark.parametrize("dispersion, seed, min_hits", [(False, 5, 90), (True, 15, 85)])
def test_a_shift_of_a_few_day_sds_is_detected(dispersion, seed, min_hits):
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(100):
        ref, rd = _days(rng, n_days=14, n_rows=500, tau=0.05)
        rec, _ = _days(rng, n_days=1, n_rows=500, tau=0.05, shift=0.7)
        hits += day_test(ref, rd, rec, np.zeros(500, int), dispersion=dispersion).p_value < 1e-3
    assert hits >= min_hits


def test_two_recent_days_use_the_day_effect_twice_not_once():
    """The recent mean of two days has day-effect variance tau^2 / 2 (not tau^2, not 0)."""
    rng = np.random.default_rng(6)
    ref, rd = _days(rng, n_days=20, n_rows=200, tau=0.3, cluster_sd=0.0)
    rec, rcd = _days(rng, n_days=2, n_rows=200, tau=0.3, cluster_sd=0.0)
    r = day_test(ref, rd, rec, rcd)
    means = np.array([ref[rd == d].mean() for d in range(20)])
    S2 = means.var(ddof=1)
    sigma2 = sum(((ref[rd == d] - ref[rd == d].mean()) ** 2).sum() for d in range(20)) / (20 * 199)
    tau2 = max(S2 - sigma2 / 200, 0)
    assert r.sd ** 2 == pytest.approx(tau2 / 2 + sigma2 / 400 + S2 / 20, rel=1e-9)


def test_hour_centring_removes_an_hour_of_day_pattern():
    rng = np.random.default_rng(7)
    hour_ref = rng.integers(0, 24, 5000)
    ref = np.sin(hour_ref / 24 * 2 * np.pi) * 3 + rng.normal(0, 1, 5000)
    hour_rec = rng.integers(6, 9, 400)  # a morning-only batch
    rec = np.sin(hour_rec / 24 * 2 * np.pi) * 3 + rng.normal(0, 1, 400)
    _, b = hour_centred(ref, hour_ref, rec, hour_rec)
    assert abs(b.mean()) < 0.2 and abs(rec.mean() - ref.mean()) > 2


def test_midrank_pit_matches_scipy_percentileofscore():
    rng = np.random.default_rng(8)
    ref = np.round(rng.normal(size=300), 1)  # ties
    x = np.r_[np.round(rng.normal(size=50), 1), np.nan, 10.0, -10.0]
    got = midrank_pit(ref, x)
    want = [stats.percentileofscore(ref, v, kind="mean") / 100 for v in x[np.isfinite(x)]]
    assert np.isnan(got[50])
    np.testing.assert_allclose(got[np.isfinite(x)], want, rtol=1e-12)


def test_holm_matches_statsmodels():
    from statsmodels.stats.multitest import multipletests

    p = np.random.default_rng(9).uniform(0, 0.1, 40) ** 2
    np.testing.assert_allclose(holm(p), multipletests(p, method="holm")[1], rtol=1e-12)
    assert len(holm(np.array([]))) == 0


def test_binomial_residual_z_by_hand():
    y = np.array([1, 0, 1, 1, 0], float)
    p = np.array([0.5, 0.5, 0.9, 0.2, 0.4])
    g = np.array([0, 0, 1, 1, 1])
    n, r, z = binomial_residual_z(y, p, g, 3)
    assert n.tolist() == [2, 3, 0]
    assert r[1] == pytest.approx(1 - 0.9 + 1 - 0.2 - 0.4)
    assert z[1] == pytest.approx(r[1] / np.sqrt(0.09 + 0.16 + 0.24))
    assert z[0] == 0.0 and z[2] == 0.0


def test_a_margin_turns_the_test_into_one_on_the_excess_shift():
    from assign.deploy.drift import beyond_margin

    rng = np.random.default_rng(11)
    ref, rd = _days(rng, n_days=14, n_rows=400, tau=0.05)
    rec, _ = _days(rng, n_days=1, n_rows=400, tau=0.05, shift=0.4)
    d = day_test(ref, rd, rec, np.zeros(400, int))
    m = beyond_margin(d, 0.1)
    assert m.p_value == pytest.approx(stats.t.sf((abs(d.recent - d.reference) - 0.1) / d.sd, d.df), rel=1e-12)
    assert d.p_value < m.p_value < 1
    assert beyond_margin(d, 1.0).p_value > 0.5 and beyond_margin(d, 0.0) is d


def test_leave_one_day_out_centring_matches_a_loop_over_days():
    """Each reference row minus its hour's mean over the other days (their overall mean
    where the hour has fewer than 5 rows there); recent rows minus the all-days hour mean."""
    rng = np.random.default_rng(11)
    n = 900
    day, hour = rng.integers(0, 4, n), rng.integers(0, 24, n)
    ref = np.where(rng.random(n) < 0.8, rng.normal(hour / 10, 1.0), np.nan)  # NaN: rows not covered
    rec_hour = rng.integers(0, 24, 50)
    rec = rng.normal(size=50)
    a, b = hour_centred(ref, hour, rec, rec_hour, ref_day=day)
    _, b0 = hour_centred(ref, hour, rec, rec_hour)
    np.testing.assert_allclose(b, b0)
    df = pd.DataFrame(dict(v=ref, d=day, h=hour))
    want = np.full(n, np.nan)
    for i in range(n):
        other = df[(df.d != day[i]) & df.v.notna()]
        cell = other.v[other.h == hour[i]]
        m = cell.mean() if len(cell) >= 5 else other.v.mean()
        want[i] = ref[i] - m
    np.testing.assert_allclose(a, want, rtol=1e-9, atol=1e-12)


def test_leave_one_day_out_scores_match_a_loop_over_days():
    """Each reference day against the others with :func:`day_test` itself, its t quantile
    mapped to a normal score; the dispersion is their mean square, floored at 1."""
    from assign.deploy.drift import day_sums, loo_dispersion, loo_scores

    rng = np.random.default_rng(12)
    ref, rd = _days(rng, n_days=9, n_rows=120, tau=0.2)
    n, s, q = day_sums(ref, rd, 9)
    got = loo_scores(n, s, q)
    want = []
    for d in range(9):
        r = day_test(ref[rd != d], np.searchsorted(np.delete(np.arange(9), d), rd[rd != d]), ref[rd == d],
                     np.zeros(int(n[d]), int))
        want.append(stats.norm.isf(stats.t.sf(r.z, r.df)))
    np.testing.assert_allclose(got, want, rtol=1e-7)
    assert loo_dispersion(n, s, q) == pytest.approx(max(1.0, np.mean(np.square(want))), rel=1e-7)
    assert np.isnan(loo_scores(n[:2], s[:2], q[:2])).all()


@pytest.mark.slow
def test_a_part_day_in_the_reference_no_longer_inflates_false_alarms():
    """12 whole reference days and a part day of 30 rows (the hours before a training
    window's cut-off). Averaged in with weight one, the part day's noisy mean often drives
    the moment estimate of tau^2 to 0, and the plain test rejects unchanged days several
    times more often than its level in the tail; leaving part days out (``min_day_share``)
    brings it back to the level (simulation against the nominal rate)."""
    rng = np.random.default_rng(16)
    sims = 600
    plain, whole = [], []
    for _ in range(sims):
        ref, rd = _days(rng, n_days=12, n_rows=1000, tau=0.06, cluster_sd=0.0)
        part, _ = _days(rng, n_days=1, n_rows=30, tau=0.06, cluster_sd=0.0)
        ref, rd = np.r_[ref, part], np.r_[rd, np.full(30, 12)]
        rec, _ = _days(rng, n_days=1, n_rows=1000, tau=0.06, cluster_sd=0.0)
        plain.append(day_test(ref, rd, rec, np.zeros(1000, int)).p_value)
        whole.append(day_test(ref, rd, rec, np.zeros(1000, int), min_day_share=0.5).p_value)
    plain, whole = np.array(plain), np.array(whole)
    for alpha in (0.01, 0.002):
        assert (whole < alpha).mean() <= alpha + 2.5 * np.sqrt(alpha * (1 - alpha) / sims), alpha
    assert (plain < 0.002).mean() >= 4 * 0.002, (plain < 0.002).mean()


def test_whole_days_leaves_out_part_days_only():
    from assign.deploy.drift import whole_days

    n = np.array([1000, 980, 30, 1010, 300, 5, 990])
    assert whole_days(n, min_day_rows=10, min_day_share=0.5).tolist() == [True, True, False, True, False, False,
                                                                            True]
    assert whole_days(n, min_day_rows=10, min_day_share=0.0).tolist() == [True, True, True, True, True, False, True]


@pytest.mark.slow
def test_the_dispersion_factor_keeps_the_nominal_rate_where_the_model_holds():
    """Under the random-effects model the test with the leave-one-day-out dispersion factor
    rejects at most at its nominal level (the factor only ever widens) and not far below."""
    rng = np.random.default_rng(13)
    alpha, sims = 0.05, 400
    rej = 0
    for _ in range(sims):
        ref, rd = _days(rng, n_days=12, n_rows=300, tau=0.1)
        rec, _ = _days(rng, n_days=1, n_rows=300, tau=0.1)
        rej += day_test(ref, rd, rec, np.zeros(300, int), dispersion=True).p_value < alpha
    assert 0.015 <= rej / sims <= 0.065, rej / sims  # binomial sd at 0.05 over 400: 0.011


def test_bonferroni_over_independent_tests_holds_the_family_level():
    """A check of 40 independent quantities, each a day test at alpha / 40: the chance that
    any rejects on unchanged days is about 1 - (1 - alpha/40)^40 (just under alpha)."""
    rng = np.random.default_rng(14)
    alpha, m, sims = 0.2, 40, 150
    hits = 0
    for _ in range(sims):
        p = []
        for _ in range(m):
            ref, rd = _days(rng, n_days=10, n_rows=60, tau=0.1, clusters=5)
            rec, _ = _days(rng, n_days=1, n_rows=60, tau=0.1, clusters=5)
            p.append(day_test(ref, rd, rec, np.zeros(60, int), dispersion=True).p_value)
        hits += min(p) < alpha / m
    want = 1 - (1 - alpha / m) ** m
    assert hits / sims <= want + 2.5 * np.sqrt(want * (1 - want) / sims), (hits / sims, want)
