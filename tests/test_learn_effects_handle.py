"""Handle time as a third view of the agent effect (assign.learn.effects; docs/learn.md 5.2)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from assign.learn.effects import RHO_MAX, EffectEstimates, _positive_definite, fit_effects, fit_views


def _events(rng, n, agents, t0="2026-01-05"):
    m = rng.normal(0.5, 0.8, n)
    kind = rng.integers(0, 3, n)  # each event carries one outcome: resolution, CSAT or handle time
    y = np.where(kind == 0, (rng.random(n) < 1 / (1 + np.exp(-m))).astype(float), np.nan)
    c = np.where(kind == 1, rng.integers(1, 6, n).astype(float), np.nan)
    h = np.where(kind == 2, rng.lognormal(6.0, 0.5, n), np.nan)
    h[(kind == 2) & (rng.random(n) < 0.05)] = 0.0  # a zero handle time has no log: not counted
    return pd.DataFrame({"decision_id": np.arange(n).astype(str),
                         "known_at": pd.Timestamp(t0, tz="UTC") + pd.to_timedelta(rng.uniform(0, 5 * 86400, n), "s"),
                         "agent_id": rng.choice(agents, n), "intent": "x", "resolved": y, "csat": c, "handle_s": h,
                         "pred_margin": m, "pred_csat": rng.normal(3.5, 0.3, n),
                         "pred_log_handle": rng.normal(6.0, 0.2, n)})


@pytest.mark.parametrize("half_life_d", [0.5, float("inf")])
def test_handle_totals_equal_a_batch_recomputation(half_life_d):
    rng = np.random.default_rng(11)
    ev = _events(rng, 900, ["a", "b", "c"])
    hl = half_life_d * 86400
    live = EffectEstimates(half_life_s=hl)
    for part in np.array_split(rng.permutation(len(ev)), 7):
        live.observe(ev.iloc[part].reset_index(drop=True))
    age = (ev["known_at"].max() - ev["known_at"]).dt.total_seconds().to_numpy()
    w = np.exp2(-age / hl) if np.isfinite(hl) else np.ones(len(ev))
    h = ev["handle_s"].to_numpy()
    ok = np.isfinite(h) & (h > 0)
    d = np.log(np.where(ok, h, 1.0)) - ev["pred_log_handle"].to_numpy()
    got = live.current().totals(["a", "b", "c"])
    for k, a in enumerate(["a", "b", "c"]):
        m = ok & (ev["agent_id"] == a).to_numpy()
        assert got["nh"][k] == pytest.approx(w[m].sum(), rel=1e-9)
        assert got["eh"][k] == pytest.approx((w * d)[m].sum(), rel=1e-9, abs=1e-9)
        assert got["qh"][k] == pytest.approx((w * d * d)[m].sum(), rel=1e-9)
    # the batch fit over the live totals is the fit over the same totals folded at once
    batch = EffectEstimates(half_life_s=hl)
    batch.observe(ev)
    a = fit_effects(got, cohort=np.zeros(3, np.int64))
    b = fit_effects(batch.current().totals(["a", "b", "c"]), cohort=np.zeros(3, np.int64))
    assert np.allclose(a.mean, b.mean) and np.allclose(a.var, b.var)


def _conditional(y, noise, mean, prior):
    """Reference posterior of the first component of ``x ~ N(mean, prior)`` given the observed
    ``y_k = x_k + e_k`` (``e_k ~ N(0, noise_k)``; inf: not observed), by conditioning the joint
    Gaussian of (x_0, y_obs): E = m_0 + C_0o (C_oo)^-1 (y_o - m_o), Var = C_00 - C_0o C_oo^-1 C_o0."""
    o = np.flatnonzero(np.isfinite(noise))
    if not len(o):
        return mean[0], prior[0, 0]
    coo = prior[np.ix_(o, o)] + np.diag(noise[o])
    c0o = prior[0, o]
    return mean[0] + c0o @ np.linalg.solve(coo, y[o] - mean[o]), prior[0, 0] - c0o @ np.linalg.solve(coo, c0o)


def test_three_views_equal_the_joint_gaussian_conditional_and_recover_the_covariance():
    rng = np.random.default_rng(12)
    n_ag = 900
    S = np.array([[0.2, 0.12, -0.06], [0.12, 0.1, -0.03], [-0.06, -0.03, 0.03]])
    true = rng.multivariate_normal([0, 0, 0], S, n_ag)
    noise = np.stack([1 / rng.uniform(10, 80, n_ag), 0.9 / rng.uniform(50, 400, n_ag),
                      0.25 / rng.uniform(50, 400, n_ag)], 1)
    views = true + rng.normal(size=true.shape) * np.sqrt(noise)
    noise[:60, 0] = np.inf  # handle + CSAT only (new hires before their first resolution)
    noise[60:90, 1:] = np.inf  # resolution only
    noise[90:110, :2] = np.inf  # handle only
    noise[110:120] = np.inf  # nothing
    eff = fit_views(views, noise, cohort=np.zeros(n_ag, np.int64), n_obs=np.zeros(n_ag))
    assert np.allclose(eff.sigma, S, atol=0.03)
    # cohort mean: N(0, sigma) prior, each agent's observed views N(mu, sigma + noise) marginally
    from scipy.stats import multivariate_normal

    grid_mu = eff.cohort_mean[0]

    def loglik(mu):
        total = multivariate_normal(np.zeros(3), eff.sigma).logpdf(mu)
        for k in range(n_ag):
            o = np.flatnonzero(np.isfinite(noise[k]))
            if len(o):
                cov = eff.sigma[np.ix_(o, o)] + np.diag(noise[k, o])
                total += multivariate_normal(mu[o], cov).logpdf(views[k, o])
        return total

    best = loglik(grid_mu)  # the posterior mode (= mean, Gaussian): any step away lowers it
    for step in np.eye(3) * 1e-3:
        assert loglik(grid_mu + step) < best and loglik(grid_mu - step) < best
    prior = eff.sigma + np.linalg.inv(-_hessian(loglik, grid_mu))  # the cohort mean's covariance added
    for k in (0, 61, 95, 115, 500):
        m, v = _conditional(views[k], noise[k], grid_mu, prior)
        assert eff.mean[k] == pytest.approx(m, abs=1e-6) and eff.var[k] == pytest.approx(v, rel=1e-4)
    # the handle view carries information: handle-only agents move against their handle residual (the
    # fitted covariance is negative), with a smaller variance than an agent without any view
    assert eff.sigma[0, 2] < 0 and np.corrcoef(eff.mean[90:110], views[90:110, 2])[0, 1] < -0.9
    assert (eff.var[90:110] < eff.var[110]).all()


def _hessian(f, x, h=1e-3):
    n = len(x)
    H = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            ei, ej = np.eye(n)[i] * h, np.eye(n)[j] * h
            H[i, j] = (f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej) + f(x - ei - ej)) / (4 * h * h)
    return H


def test_inconsistent_pairwise_correlations_are_lifted_to_positive_definite():
    r = np.array([[1.0, 0.9, 0.9], [0.9, 1.0, -0.9], [0.9, -0.9, 1.0]])  # each pair legal, the whole not
    d = np.array([0.5, 0.3, 0.2])
    s = r * np.outer(d, d)
    got = _positive_definite(s)
    assert np.allclose(np.diag(got), d ** 2)
    assert np.linalg.eigvalsh(s / np.outer(d, d)).min() < 0  # the input is not a covariance
    assert np.linalg.eigvalsh(got / np.outer(d, d)).min() > 0.5 * (1 - RHO_MAX)  # the output is, well away from 0
    fine = np.array([[1.0, 0.5, -0.3], [0.5, 1.0, -0.2], [-0.3, -0.2, 1.0]]) * np.outer(d, d)
    assert np.array_equal(_positive_definite(fine), fine)


def test_without_handle_predictions_the_two_view_fit_is_unchanged():
    """Events without ``pred_log_handle`` leave the handle totals empty, and the resolution effect
    is then exactly the two-view hierarchy's."""
    rng = np.random.default_rng(13)
    ev = _events(rng, 1200, [f"a{k}" for k in range(12)]).drop(columns="pred_log_handle")
    live = EffectEstimates()
    live.observe(ev)
    ids = [f"a{k}" for k in range(12)]
    t = live.current().totals(ids)
    assert not t["nh"].any()
    three = fit_effects(t, cohort=np.zeros(12, np.int64))
    from assign.learn.effects import mean_view, resolution_view

    theta, w = resolution_view(t["nb"], t["sb"], t["mb"])
    y, v = mean_view(t["n"], t["e"], t["q"])
    two = fit_views(np.stack([theta, y], 1), np.stack([np.where(w > 0, 1 / w, np.inf), v], 1),
                    cohort=np.zeros(12, np.int64), n_obs=np.zeros(12))
    assert np.allclose(three.mean, two.mean) and np.allclose(three.var, two.var)
