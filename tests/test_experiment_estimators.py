"""Estimators against scipy/statsmodels on the same data, degenerate inputs, invalid inputs."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from assign.errors import InputError
from assign.experiment import estimators as est

sm = pytest.importorskip("statsmodels.api")
from statsmodels.stats.multitest import multipletests  # noqa: E402 - after importorskip
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest  # noqa: E402


@pytest.mark.parametrize("seed,n_t,n_c,shift", [(0, 50, 70, 0.0), (1, 400, 300, 0.3), (2, 5, 9, 1.0)])
def test_welch_matches_scipy(seed, n_t, n_c, shift):
    rng = np.random.default_rng(seed)
    y_t = rng.normal(10 + shift, 2.0, n_t)
    y_c = rng.gamma(4.0, 2.5, n_c)
    e = est.welch(y_t, y_c)
    ref = stats.ttest_ind(y_t, y_c, equal_var=False)
    assert e.p_value == pytest.approx(ref.pvalue, rel=1e-10)
    assert e.diff / e.se == pytest.approx(ref.statistic, rel=1e-12)
    assert e.df == pytest.approx(ref.df, rel=1e-12)
    ci = ref.confidence_interval(0.95)
    assert (e.ci_low, e.ci_high) == (pytest.approx(ci.low, rel=1e-10), pytest.approx(ci.high, rel=1e-10))


@pytest.mark.parametrize("x_t,n_t,x_c,n_c", [(120, 1000, 100, 1000), (7, 30, 19, 41), (4990, 5000, 4970, 5100)])
def test_two_proportion_matches_statsmodels(x_t, n_t, x_c, n_c):
    e = est.two_proportion(x_t, n_t, x_c, n_c)
    z, p = proportions_ztest([x_t, x_c], [n_t, n_c])
    assert e.extras["z"] == pytest.approx(z, rel=1e-12)
    assert e.p_value == pytest.approx(p, rel=1e-10)
    lo, hi = confint_proportions_2indep(x_t, n_t, x_c, n_c, method="wald", compare="diff")
    assert (e.ci_low, e.ci_high) == (pytest.approx(lo, rel=1e-10), pytest.approx(hi, rel=1e-10))


def _clustered(seed, G=30, n=600, covariate=False):
    rng = np.random.default_rng(seed)
    g = rng.integers(0, G, n)
    t = (g % 2 == 0) if seed % 2 == 0 else rng.random(n) < 0.5  # nested and not nested
    u = rng.normal(0, 1, G)[g]
    x = rng.normal(0, 1, n) + 0.5 * u
    y = 1.0 + 0.3 * t + u + (0.8 * x if covariate else 0) + rng.normal(0, 1, n)
    return y, t, g, x


@pytest.mark.parametrize("seed,covariate", [(0, False), (1, False), (2, True), (3, True)])
def test_cluster_ols_matches_statsmodels(seed, covariate):
    y, t, g, x = _clustered(seed, covariate=covariate)
    e = est.cluster_diff(y, t, g, covariate=x if covariate else None)
    cols = [np.ones_like(y), t.astype(float)] + ([x - x.mean()] if covariate else [])
    ref = sm.OLS(y, np.column_stack(cols)).fit(cov_type="cluster", cov_kwds={"groups": g}, use_t=True)
    assert e.diff == pytest.approx(ref.params[1], rel=1e-10)
    assert e.se == pytest.approx(ref.bse[1], rel=1e-10)
    assert e.p_value == pytest.approx(ref.pvalues[1], rel=1e-8)
    lo, hi = ref.conf_int(0.05)[1]
    assert (e.ci_low, e.ci_high) == (pytest.approx(lo, rel=1e-9), pytest.approx(hi, rel=1e-9))


@pytest.mark.parametrize("seed", [0, 1])
def test_ratio_clustered_equals_weighted_least_squares_sandwich(seed):
    rng = np.random.default_rng(seed)
    n, G = 500, 40
    den = rng.integers(1, 6, n).astype(float)
    g = rng.integers(0, G, n)
    t = rng.random(n) < 0.5
    num = den * (3 + 0.4 * t + rng.normal(0, 1, G)[g]) + rng.normal(0, 2, n)
    e = est.ratio(num, den, t, groups=g)
    X = np.column_stack([np.ones(n), t.astype(float)])
    ref = sm.WLS(num / den, X, weights=den).fit(cov_type="cluster", cov_kwds={"groups": g}, use_t=True)
    assert e.diff == pytest.approx(ref.params[1], rel=1e-10)
    assert e.se == pytest.approx(ref.bse[1], rel=1e-9)
    assert e.p_value == pytest.approx(ref.pvalues[1], rel=1e-7)


def test_ratio_iid_delta_method_matches_gradient_formula_and_simulation():
    rng = np.random.default_rng(3)
    n = 3000
    t = rng.random(n) < 0.5
    den = rng.poisson(3, n) + 1.0
    num = den * rng.gamma(2, 100, n) / 2
    e = est.ratio(num, den, t)
    # reference: gradient (1/mu_N, -mu_Y/mu_N^2) applied to the sample covariance of (Y, N)
    var = 0.0
    for arm in (t, ~t):
        c = np.cov(num[arm], den[arm])
        mu_y, mu_n = num[arm].mean(), den[arm].mean()
        grad = np.array([1 / mu_n, -mu_y / mu_n**2])
        var += grad @ c @ grad / arm.sum()
    assert e.se == pytest.approx(math.sqrt(var), rel=1e-10)
    # and the delta-method variance is the sampling variance of the ratio (500 resamples)
    boots = []
    for _ in range(500):
        i = rng.integers(0, n, n)
        tt, yy, dd = t[i], num[i], den[i]
        boots.append(yy[tt].sum() / dd[tt].sum() - yy[~tt].sum() / dd[~tt].sum())
    assert np.std(boots) == pytest.approx(e.se, rel=0.1)


def test_cuped_reduces_variance_by_rho_squared_and_is_unbiased():
    rng = np.random.default_rng(4)
    n = 20000
    x = rng.normal(0, 1, n)
    y = 2 + 0.8 * x + rng.normal(0, 0.6, n)
    t = rng.random(n) < 0.5
    y = y + 0.05 * t
    e = est.cuped(y, x, t)
    rho = np.corrcoef(x, y)[0, 1]
    assert e.extras["variance_reduction"] == pytest.approx(rho**2, abs=1e-3)
    plain = est.welch(y[t], y[~t])
    assert e.se == pytest.approx(plain.se * math.sqrt(1 - rho**2), rel=0.02)
    assert e.ci_low < 0.05 < e.ci_high


def test_srm_matches_scipy_chisquare():
    r = est.srm([5000, 5100, 4800], [1, 1, 1])
    ref = stats.chisquare([5000, 5100, 4800])
    assert r.chi2 == pytest.approx(ref.statistic) and r.p_value == pytest.approx(ref.pvalue)
    assert not r.mismatch
    assert est.srm([5000, 5400], [0.5, 0.5]).mismatch
    assert not est.srm([3000, 7000], [0.3, 0.7]).mismatch


def test_holm_matches_statsmodels():
    p = np.array([0.01, 0.04, 0.03, 0.2, 0.001, 0.04])
    adj, rej = est.holm(p)
    ref_rej, ref_adj, *_ = multipletests(p, method="holm")
    np.testing.assert_allclose(adj, ref_adj, rtol=1e-12)
    np.testing.assert_array_equal(rej, ref_rej)


def test_confidence_sequence_is_wider_than_fixed_and_its_p_value_larger():
    rng = np.random.default_rng(5)
    y_t, y_c = rng.normal(0.1, 1, 2000), rng.normal(0, 1, 2000)
    fixed = est.welch(y_t, y_c)
    seq = est.confidence_sequence(fixed, n_now=4000, n_planned=4000)
    assert seq.ci_low < fixed.ci_low and seq.ci_high > fixed.ci_high
    assert seq.p_value >= fixed.p_value
    # the CS contains 0 exactly when the always-valid p-value is >= alpha (same boundary)
    for shift in np.linspace(0, 0.3, 13):
        s = est.confidence_sequence(est.welch(y_t + shift, y_c), n_now=4000, n_planned=8000)
        assert (s.ci_low <= 0 <= s.ci_high) == (s.p_value >= 0.05)


def test_confidence_sequence_time_uniform_coverage_under_peeking():
    """A/A with 20 looks: the fixed test rejects at some look far more often than alpha,
    the confidence sequence at most about alpha (200 replications, seeded)."""
    rng = np.random.default_rng(6)
    looks = np.linspace(100, 2000, 20).astype(int)
    fixed_any = seq_any = 0
    for _ in range(200):
        y = rng.normal(0, 1, 4000)
        t = np.tile([True, False], 2000)
        f = s = False
        for k in looks:
            e = est.welch(y[:2 * k][t[:2 * k]], y[:2 * k][~t[:2 * k]])
            f |= e.p_value < 0.05
            s |= est.confidence_sequence(e, n_now=2 * k, n_planned=4000).p_value < 0.05
        fixed_any += f
        seq_any += s
    assert fixed_any / 200 > 0.15
    assert seq_any / 200 <= 0.07


# ---- degenerate data: a flagged result with a reason, never NaN --------------------------
@pytest.mark.parametrize("call,reason", [
    (lambda: est.welch([], [1.0, 2.0], metric="aht"), "arm 'treatment' has 0 rows"),
    (lambda: est.welch([1.0], [1.0, 2.0], metric="aht"), "arm 'treatment' has 1 rows"),
    (lambda: est.welch([3.0, 3.0], [3.0, 3.0, 3.0], metric="aht"), "zero variance in both arms"),
    (lambda: est.two_proportion(0, 100, 0, 120, metric="abandoned"), "the rate is 0 in both arms"),
    (lambda: est.two_proportion(0, 0, 3, 10, metric="abandoned"), "arm 'treatment' has 0 rows"),
    (lambda: est.two_proportion(0, 50, 50, 50, metric="abandoned"), "zero sampling variance"),
    (lambda: est.ratio([1.0, 2.0, 3.0], [0.0, 0.0, 1.0], [True, True, False], metric="aht/answered"),
     "denominator sums to 0 in arm 'treatment'"),
    (lambda: est.cluster_diff([1.0, 2, 3, 4], [True, True, False, False], [1, 1, 2, 3], metric="csat"),
     "arm 'treatment' has 1 clusters"),
    (lambda: est.cuped([1.0, 1, 1, 1], [1.0, 2, 3, 4], [True, True, False, False], metric="csat"),
     "zero variance"),
])
def test_degenerate_inputs_give_a_reason_not_nan(call, reason):
    e = call()
    assert e.degenerate is not None and reason in e.degenerate
    assert e.p_value is None and e.ci_low is None and e.se is None
    for v in e.to_dict().values():
        assert not (isinstance(v, float) and math.isnan(v))


# ---- invalid input: InputError naming every problem ----------------------------------------
@pytest.mark.parametrize("call,message", [
    (lambda: est.welch([1.0, np.nan], [1.0, 2.0], metric="aht"), "aht.treatment: 1 non-finite"),
    (lambda: est.welch(["a", "b"], [1.0, 2.0], metric="aht"), "aht.treatment: not numeric"),
    (lambda: est.two_proportion(11, 10, 3, 10, metric="res"), "res.treatment: need 0 <= successes <= trials"),
    (lambda: est.ratio([1.0, 2.0], [1.0, -1.0], [True, False], metric="r"), "r.denominator: 1 negative"),
    (lambda: est.srm([10]), "counts: need at least 2 arms"),
    (lambda: est.srm([10, -1]), "counts[1]: must be a non-negative integer"),
    (lambda: est.srm([10, 12], [0.5, 0.0]), "weights[1]: must be a finite number > 0"),
    (lambda: est.srm([10, 12], [0.5]), "weights: 1 given for 2 counts"),
    (lambda: est.srm([0, 0]), "counts: all zero"),
    (lambda: est.holm([0.1, 1.2]), "p_values"),
    (lambda: est.confidence_sequence(est.welch([1.0, 2], [3.0, 5]), n_now=4, n_planned=0), "n_planned: must be > 0"),
])
def test_invalid_inputs_raise_input_error(call, message):
    with pytest.raises(InputError) as err:
        call()
    assert message in str(err.value)


def test_srm_reports_every_problem_at_once():
    with pytest.raises(InputError) as err:
        est.srm([10, -1, 2.5], [1, 0, 1, 1])
    assert len(err.value.problems) == 4  # two bad counts, the length, the zero weight
