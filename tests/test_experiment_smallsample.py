"""CR2 + Bell-McCaffrey df, the wild cluster bootstrap, HAC over windows, and switchback
randomisation inference, each against an independent reference: dense N x N matrix algebra
(scipy sqrtm), statsmodels (HC2, cluster CR1 refits, hac-groupsum), closed forms (Welch's
variance, the t test on cluster means with G - 2 df in a balanced design)."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg as sl
import statsmodels.api as sm
from scipy import stats

from assign.experiment import smallsample as ss
from assign.experiment import switchback as sw
from assign.experiment.randomise import Switchback


def _clustered(seed=1, G=9, covariate=True):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(2, 8, G)
    g = np.repeat(np.arange(G), sizes)
    n = g.size
    d = (np.arange(G) % 2 == 0)[g].astype(float)
    cols = [np.ones(n), d] + ([rng.normal(size=n)] if covariate else [])
    y = rng.normal(size=n) + rng.normal(size=G)[g]
    return np.column_stack(cols), y, g


def _dense_cr2(X, y, g, j=1):
    """CR2 and its BM degrees of freedom by the textbook formulas with N x N matrices."""
    n = len(y)
    M = np.linalg.inv(X.T @ X)
    H = X @ M @ X.T
    u = y - H @ y
    meat = np.zeros((X.shape[1],) * 2)
    cols = []
    for k in np.unique(g):
        m = g == k
        A = np.real(sl.sqrtm(np.linalg.inv(np.eye(m.sum()) - H[np.ix_(m, m)])))
        s = X[m].T @ A @ u[m]
        meat += np.outer(s, s)
        cols.append((np.eye(n) - H)[:, m] @ A @ X[m] @ M[:, j])
    V = M @ meat @ M
    Gm = np.array(cols).T
    lam = np.linalg.eigvalsh(Gm.T @ Gm)
    return np.sqrt(V[j, j]), lam.sum() ** 2 / (lam**2).sum()


@pytest.mark.parametrize("seed,covariate", [(1, True), (2, False), (3, True)])
def test_cr2_and_its_df_equal_the_dense_matrix_computation(seed, covariate):
    X, y, g = _clustered(seed, covariate=covariate)
    t = ss.cr2(X, y, g)
    se, df = _dense_cr2(X, y, g)
    assert t.se == pytest.approx(se, rel=1e-10)
    assert t.df == pytest.approx(df, rel=1e-8)
    assert t.p_value == pytest.approx(2 * stats.t.sf(abs(t.beta / se), df), rel=1e-8)


def test_cr2_with_clusters_of_one_is_hc2_and_welch():
    rng = np.random.default_rng(4)
    n = 40
    d = (np.arange(n) < 15).astype(float)
    y = rng.normal(size=n) * (1 + d)
    X = np.column_stack([np.ones(n), d])
    t = ss.cr2(X, y, np.arange(n))
    assert t.se == pytest.approx(sm.OLS(y, X).fit(cov_type="HC2").bse[1], rel=1e-10)
    welch_var = y[d == 1].var(ddof=1) / 15 + y[d == 0].var(ddof=1) / 25  # HC2 = Welch's variance, exactly
    assert t.se == pytest.approx(np.sqrt(welch_var), rel=1e-10)


def test_cr2_balanced_cluster_randomised_is_the_t_test_on_cluster_means_with_g_minus_2_df():
    rng = np.random.default_rng(5)
    G, m = 10, 6
    g = np.repeat(np.arange(G), m)
    d = (np.arange(G) % 2)[g].astype(float)
    y = rng.normal(size=g.size) + rng.normal(size=G)[g]
    t = ss.cr2(np.column_stack([np.ones(g.size), d]), y, g)
    means = np.bincount(g, y) / m
    ref = stats.ttest_ind(means[1::2], means[::2], equal_var=False)
    assert t.se == pytest.approx(np.sqrt(means[1::2].var(ddof=1) / 5 + means[::2].var(ddof=1) / 5), rel=1e-10)
    assert t.df == pytest.approx(G - 2, rel=1e-10)
    assert t.t == pytest.approx(ref.statistic, rel=1e-10)


@pytest.mark.parametrize("covariate", [False, True])
def test_wild_cluster_bootstrap_equals_explicit_refits_over_all_sign_patterns(covariate):
    X, y, g = _clustered(6, G=8, covariate=covariate)
    G = 8
    v = np.array([[1.0 if (b >> i) & 1 else -1.0 for i in range(G)] for b in range(2**G)])
    got = ss.wild_cluster_bootstrap(X, y, g, v=v)
    Xr = np.delete(X, 1, axis=1)
    ur = y - Xr @ np.linalg.lstsq(Xr, y, rcond=None)[0]
    kw = {"groups": g}
    t_star = []
    for row in v:  # refit every bootstrap sample with statsmodels' CR1
        f = sm.OLS(y - ur + row[g] * ur, X).fit(cov_type="cluster", cov_kwds=kw)
        t_star.append(f.params[1] / f.bse[1])
    f0 = sm.OLS(y, X).fit(cov_type="cluster", cov_kwds=kw)
    t0 = f0.params[1] / f0.bse[1]
    assert got.t == pytest.approx(t0, rel=1e-10)
    assert got.p_value == pytest.approx(np.mean(np.abs(t_star) >= abs(t0) - 1e-12), abs=1e-12)
    assert got.crit == pytest.approx(np.quantile(np.abs(t_star), 0.95), rel=1e-9)


def test_wild_bootstrap_weights_and_size_under_the_null():
    rng = np.random.default_rng(7)
    G = 10
    g = np.repeat(np.arange(G), 20)
    d = (np.arange(G) % 2)[g].astype(float)
    X = np.column_stack([np.ones(g.size), d])
    assert "webb" in ss.wild_cluster_bootstrap(X, rng.normal(size=g.size), g, draws=99).method
    rej = [ss.wild_cluster_bootstrap(X, rng.normal(size=g.size) + rng.normal(size=G)[g], g, draws=199,
                                     seed=s).p_value < 0.05 for s in range(300)]
    assert 0.01 <= np.mean(rej) <= 0.10  # 300 nulls: a 5% test lands here with probability > 0.999


def test_hac_over_windows_equals_statsmodels_groupsum():
    rng = np.random.default_rng(8)
    win = np.repeat(np.arange(60), 4)
    d = (rng.random(60) < 0.5)[win].astype(float)
    X = np.column_stack([np.ones(win.size), d])
    y = rng.normal(size=win.size) + np.sin(win / 5)
    h = ss.hac_windows(X, y, win, lags=3)
    f = sm.OLS(y, X).fit(cov_type="hac-groupsum", cov_kwds={"time": win, "maxlags": 3, "use_correction": False})
    assert h.se == pytest.approx(f.bse[1], rel=1e-10)


def _switch_data(seed=0, effect=0.0, n=3000, carry=0.0):
    rng = np.random.default_rng(seed)
    d = Switchback(salt=f"sb-{seed}", window_s=1800, burn_in_s=300)
    sec = np.sort(rng.uniform(0, 86400, n))
    lab = d.label(sec)
    t = lab["arm"].to_numpy() == "treatment"
    k = np.floor(sec / 1800).astype(int)
    prev_t = np.array([d.arm_of_window(i - 1) == "treatment" for i in k])
    y = rng.normal(size=n) + np.sin(sec / 9000) + effect * t + carry * prev_t
    return d, sec, y, t


def test_randomisation_inference_statistic_is_the_labelled_difference_and_interval_shifts_with_effect():
    d, sec, y, t = _switch_data(1)
    post = ~d.label(sec)["burn_in"].to_numpy()
    c = sw.cells_of(y, sec, d)
    arms, switched = sw.assignments(c, d, sw.draw_salts(d.salt, 199))
    r = sw.ri_test(c, arms, switched, treatment="treatment", control="control")
    assert r.diff == pytest.approx(y[post & t].mean() - y[post & ~t].mean(), rel=1e-12)
    c2 = sw.cells_of(y + 0.7 * t, sec, d)  # a constant effect moves the inverted interval by exactly it
    r2 = sw.ri_test(c2, arms, switched, treatment="treatment", control="control")
    assert r2.ci_low - r.ci_low == pytest.approx(0.7, abs=2 * 24 * r.se / 2400)
    assert r2.diff - r.diff == pytest.approx(0.7, rel=1e-12)
    # the re-draws are the design's own hashing with other salts
    other = Switchback(salt=f"{d.salt}|ri5", window_s=1800, burn_in_s=300)
    assert arms[5, 0] == other.arm_of_window(int(c.window[0]))


def test_randomisation_inference_is_exact_under_the_null_and_detects_an_effect_and_carryover():
    rej, carry_rej = [], []
    for s in range(200):
        d, sec, y, _ = _switch_data(100 + s, n=800)
        c = sw.cells_of(y, sec, d)
        arms, switched = sw.assignments(c, d, sw.draw_salts(d.salt, 39))
        rej.append(sw.ri_test(c, arms, switched, treatment="treatment", control="control",
                              interval=False).p_value < 0.05)
        carry_rej.append(sw.carryover_test(c, arms, treatment="treatment", control="control")[1] < 0.05)
    assert np.mean(rej) <= 0.10 and np.mean(carry_rej) <= 0.10  # exact 5% tests; 200 reps
    d, sec, y, _ = _switch_data(3, effect=1.0)
    c = sw.cells_of(y, sec, d)
    arms, switched = sw.assignments(c, d, sw.draw_salts(d.salt, 199))
    assert sw.ri_test(c, arms, switched, treatment="treatment", control="control").p_value < 0.01
    d, sec, y, _ = _switch_data(4, carry=1.5)
    c = sw.cells_of(y, sec, d)
    arms, _ = sw.assignments(c, d, sw.draw_salts(d.salt, 199))
    coef, p, n = sw.carryover_test(c, arms, treatment="treatment", control="control")
    assert p < 0.01 and coef == pytest.approx(1.5, abs=0.5) and n == 47
