"""Population model + hierarchical agent effects (assign.learn.population, .effects, .modelscorer)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from assign.learn.effects import LOGIT_EDGES, EffectEstimates, fit_effects, fit_views, fold_effects, resolution_view
from assign.learn.policy import LearnPolicy
from assign.learn.population import fit_linear, fit_logistic


def _events(rng, n, agents, t0="2026-01-05"):
    m = rng.normal(0.5, 0.8, n)
    a = rng.choice(agents, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-m))).astype(float)
    y[rng.random(n) < 0.3] = np.nan
    c = np.where(rng.random(n) < 0.5, rng.integers(1, 6, n).astype(float), np.nan)
    c[np.isnan(y) & np.isnan(c)] = 3.0  # every event carries an outcome
    return pd.DataFrame({"decision_id": np.arange(n).astype(str),
                         "known_at": pd.Timestamp(t0, tz="UTC") + pd.to_timedelta(rng.uniform(0, 5 * 86400, n), "s"),
                         "agent_id": a, "intent": "x", "resolved": y, "csat": c, "handle_s": np.nan,
                         "pred_margin": m, "pred_csat": rng.normal(3.5, 0.3, n)})


def test_logistic_fit_matches_statsmodels():
    sm = pytest.importorskip("statsmodels.api")
    rng = np.random.default_rng(0)
    D = np.hstack([np.ones((3000, 1)), rng.normal(size=(3000, 3))])
    y = (rng.random(3000) < 1 / (1 + np.exp(-(D @ [0.3, 1.0, -0.5, 0.2])))).astype(float)
    ref = sm.Logit(y, D).fit(disp=0).params
    assert np.allclose(fit_logistic(D, y, ridge=0.0), ref, atol=1e-6)
    ols = sm.OLS(D @ [1, 2, 3, 4] + rng.normal(size=3000), D).fit().params
    assert np.allclose(fit_linear(D, D @ [1, 2, 3, 4] + rng.normal(size=3000) * 0, ridge=0.0), [1, 2, 3, 4])
    assert np.allclose(ols, [1, 2, 3, 4], atol=0.1)


@pytest.mark.parametrize("half_life_d", [0.5, 3.0, float("inf")])
def test_live_totals_equal_a_batch_recomputation(half_life_d):
    rng = np.random.default_rng(1)
    ev = _events(rng, 800, ["a", "b", "c", "d"])
    hl = half_life_d * 86400
    live = EffectEstimates(half_life_s=hl)
    for part in np.array_split(rng.permutation(len(ev)), 10):
        live.observe(ev.iloc[part].reset_index(drop=True))
    v = live.current()
    t = ev["known_at"].max()
    age = (t - ev["known_at"]).dt.total_seconds().to_numpy()
    w = np.exp2(-age / hl) if np.isfinite(hl) else np.ones(len(ev))
    y, c, ch = ev["resolved"].to_numpy(), ev["csat"].to_numpy(), ev["pred_csat"].to_numpy()
    got = v.totals(["a", "b", "c", "d", "new"])
    margin = ev["pred_margin"].to_numpy()
    for k, a in enumerate(["a", "b", "c", "d"]):
        m = (ev["agent_id"] == a).to_numpy()
        r, s = m & np.isfinite(y), m & np.isfinite(c)
        for b in (0, 10, 16, 20, len(LOGIT_EDGES)):  # bin b: edges[b-1] < margin <= edges[b]
            lo = LOGIT_EDGES[b - 1] if b > 0 else -np.inf
            hi = LOGIT_EDGES[b] if b < len(LOGIT_EDGES) else np.inf
            inb = r & (margin > lo) & (margin <= hi)
            assert got["nb"][k, b] == pytest.approx(w[inb].sum(), rel=1e-9, abs=1e-12)
            assert got["sb"][k, b] == pytest.approx((w * y)[inb].sum(), rel=1e-9, abs=1e-12)
            assert got["mb"][k, b] == pytest.approx((w * margin)[inb].sum(), rel=1e-9, abs=1e-12)
        assert got["nb"][k].sum() == pytest.approx(w[r].sum(), rel=1e-9)
        assert got["n"][k] == pytest.approx(w[s].sum(), rel=1e-9)
        assert got["e"][k] == pytest.approx((w * (c - ch))[s].sum(), rel=1e-9, abs=1e-9)
        assert got["q"][k] == pytest.approx((w * (c - ch) ** 2)[s].sum(), rel=1e-9)
    assert all(np.all(got[k][4] == 0) for k in got)  # an agent never seen: zeros


def test_resolution_view_is_the_maximum_likelihood_offset():
    sm = pytest.importorskip("statsmodels.api")
    rng = np.random.default_rng(5)
    centres = (LOGIT_EDGES[:-1] + LOGIT_EDGES[1:]) / 2
    m = rng.choice(centres[19:24], 400)  # logits at a few values (p 0.7-0.85): binning is exact
    y = (rng.random(400) < 1 / (1 + np.exp(-(m - 1.1)))).astype(float)  # a new hire: 1.1 below the model
    b = np.searchsorted(LOGIT_EDGES, m)
    nb, sb, mb = (np.bincount(b, v, len(LOGIT_EDGES) + 1)[None] for v in (np.ones(400), y, m))
    theta, info = resolution_view(nb, sb, mb)
    fit = sm.GLM(y, np.ones((400, 1)), family=sm.families.Binomial(), offset=m).fit()
    assert theta[0] == pytest.approx(fit.params[0], abs=2e-3)
    assert 1 / info[0] == pytest.approx(fit.bse[0] ** 2, rel=0.02)
    one_step = (y - 1 / (1 + np.exp(-m))).sum() / (np.exp(-m) / (1 + np.exp(-m)) ** 2).sum()
    assert one_step < fit.params[0] - 0.15  # the linearised estimate this replaces overshoots
    theta, info = resolution_view(np.zeros((1, len(LOGIT_EDGES) + 1)), np.zeros((1, len(LOGIT_EDGES) + 1)),
                                  np.zeros((1, len(LOGIT_EDGES) + 1)))
    assert theta[0] == 0 and info[0] == 0  # no resolutions: no view


def test_fold_does_not_change_the_old_version():
    rng = np.random.default_rng(2)
    live = EffectEstimates()
    v1 = live.observe(_events(rng, 100, ["a", "b"]))
    before = v1.nb.copy()
    fold_effects(v1, _events(rng, 100, ["a", "c"], t0="2026-01-12"), half_life_s=86400.0)
    assert np.array_equal(v1.nb, before) and v1.agent_ids == ("a", "b")


def _gaussian_posterior(y, noise, mu, prior):
    """By-hand 2-d Gaussian update: prior N(mu, prior), observed components y with diag noise."""
    P = np.linalg.inv(prior)
    L = np.diag([0 if not np.isfinite(x) else 1 / x for x in noise])
    C = np.linalg.inv(P + L)
    return C @ (P @ mu + L @ np.nan_to_num(np.where(np.isfinite(noise), y, 0))), C


def test_effects_equal_a_by_hand_gaussian_update_and_recover_the_covariance():
    rng = np.random.default_rng(3)
    n_ag = 400
    S = np.array([[0.2, 0.12], [0.12, 0.1]])
    true = rng.multivariate_normal([0, 0], S, n_ag)
    w = rng.uniform(10, 80, n_ag)  # sum p(1-p)
    n = rng.uniform(50, 400, n_ag)  # CSAT count
    s2 = 0.9
    th = true[:, 0] + rng.normal(size=n_ag) / np.sqrt(w)
    ph = true[:, 1] + rng.normal(size=n_ag) * np.sqrt(s2 / n)
    w[:40] = 0.0  # CSAT only (new hires before their first resolution)
    n[40:70] = 0.0  # resolution only
    s2c = s2
    views = np.stack([th, ph], 1)
    noise = np.stack([np.where(w > 0, 1 / np.maximum(w, 1e-300), np.inf), np.where(n > 0, s2 / np.maximum(n, 1e-300),
                                                                                   np.inf)], 1)
    cohort = np.zeros(n_ag, np.int64)
    eff = fit_views(views, noise, cohort=cohort, n_obs=w + n)
    assert np.allclose(eff.sigma, S, atol=0.04)
    prior = eff.sigma + 0.0
    # cohort mean by hand: N(0, sigma) prior, each agent N(mu, sigma + noise)
    P, rhs = np.linalg.inv(eff.sigma), np.zeros(2)
    for k in range(n_ag):
        idx = [c for c, m in enumerate((w[k], n[k])) if m > 0]  # the views it has; the other marginalised out
        Pk = np.zeros((2, 2))
        Pk[np.ix_(idx, idx)] = np.linalg.inv((eff.sigma + np.diag([1 / max(w[k], 1e-300), s2c / max(n[k], 1e-300)]))
                                             [np.ix_(idx, idx)])
        P, rhs = P + Pk, rhs + Pk @ [th[k], ph[k]]
    mu, V = np.linalg.solve(P, rhs), np.linalg.inv(P)
    assert np.allclose(eff.cohort_mean[0], mu)
    for k in (0, 7, 45, 123):
        noise = np.array([1 / w[k] if w[k] > 0 else np.inf, s2c / n[k] if n[k] > 0 else np.inf])
        m, C = _gaussian_posterior(np.array([th[k], ph[k]]), noise, mu, prior + V)
        assert eff.mean[k] == pytest.approx(m[0]) and eff.var[k] == pytest.approx(C[0, 0])
    # shrinkage helps: the posterior means are nearer the truth than the raw resolution views
    r = w > 0
    assert np.mean((eff.mean - true[:, 0])[r] ** 2) < 0.8 * np.mean((th - true[:, 0])[r] ** 2)


def test_new_agent_sits_at_its_cohort_and_csat_alone_moves_it_along_the_fitted_correlation():
    rng = np.random.default_rng(4)
    k = 60
    true = rng.multivariate_normal([0, 0], [[0.2, 0.12], [0.12, 0.1]], k)
    w, n = np.full(k, 150.0), np.full(k, 300.0)
    th, ph = true[:, 0] + rng.normal(size=k) / np.sqrt(w), true[:, 1] + rng.normal(size=k) * np.sqrt(1 / n)
    views = np.stack([np.r_[th, 0, 0], np.r_[ph, 0, -0.6]], 1)
    noise = np.stack([np.r_[1 / w, np.inf, np.inf], np.r_[1 / n, np.inf, 1 / 200]], 1)
    eff = fit_views(views, noise, cohort=np.r_[np.zeros(k, np.int64), 1, 2], n_obs=np.r_[w + n, 0, 200])
    assert eff.n_obs[k] == 0 and eff.mean[k] == pytest.approx(eff.cohort_mean[1, 0])
    assert eff.var[k] > eff.sigma[0, 0]  # the cohort mean's own uncertainty on top
    assert eff.mean[k + 1] < -0.3  # CSAT 0.6 below the model, no resolution yet: well below the centre
    assert eff.var[k + 1] < eff.var[k]


@pytest.fixture(scope="module")
def warm():
    from dataclasses import replace

    from assign.world.centre import generate_history, generate_world, hire_days

    world = generate_world(seed=5, n_agents=16, n_intents=6, n_customers=2000, new_hires=0.25)
    tenured = replace(world, agents=world.agents[hire_days(world.agents) == 0].reset_index(drop=True))
    return world, generate_history(tenured, days=4, seed=7)


def test_population_model_tracks_the_truth_without_agent_identity(warm):
    from assign.learn.population import PopulationModel

    _, hist = warm
    model = PopulationModel.fit(hist)
    served = hist[hist["agent_id"].notna()]
    pred = model.history_predictions(hist)
    truth = served["truth_p_resolved"].to_numpy(float)
    p = 1 / (1 + np.exp(-pred["pred_margin"].to_numpy()))
    assert np.corrcoef(p, truth)[0, 1] > 0.7  # the pair features carry most of the truth's variation
    assert abs(p.mean() - served["resolved"].astype(float).mean()) < 0.01


def test_ml_learn_with_a_warm_history_learns_agent_effects_and_gives_hires_work(warm):
    from assign.learn import Explore
    from assign.learn.effects import tenure_band
    from assign.sim.engine import SimConfig, simulate
    from assign.sim.worldsource import WorldSource
    from assign.world.centre import hire_days

    world, hist = warm
    src = WorldSource(world)
    pol = _Keep(name="ml-learn", explore=Explore(), warm_history=hist, warm_shift=-pd.Timedelta(days=4),
                      label_delay_s=6 * 3600.0)
    run = simulate(source=src, policy=pol, seed=1, config=SimConfig(days=2, window_s=30.0))
    hires = np.flatnonzero(hire_days(world.agents) == 1)
    assert (run.agent_handled[hires] > 0).all()  # the hires get work on day 2

    ids = np.asarray(src.agents.ids).astype(str)
    eff = fit_effects(pol.live.current().totals(ids), cohort=tenure_band(src.agents.tenure_days))
    assert (eff.n_obs[hires] > 0).all()  # their outcomes (CSAT, then resolution) arrived
    tenured = np.setdiff1d(np.arange(len(ids)), hires)
    assert np.corrcoef(eff.mean[tenured], world.agents["ability"].to_numpy()[tenured])[0, 1] > 0.6
    # Thompson draws on a real window: one logit effect per agent, shared by its pairs, N(mean, var)
    snap = pol.last
    ci = np.repeat(np.arange(snap.n_contacts), snap.n_agents)
    ai = np.tile(np.arange(snap.n_agents), snap.n_contacts)
    m, _ = pol.scorer.margins(snap, contact_idx=ci, agent_idx=ai)
    eff, rows = pol.scorer.effects(snap)
    links = pol.scorer.links  # the hyperparameters fitted once on the warm history (docs/learn.md 5.7)
    assert links is not None and np.array_equal(eff.sigma, links.sigma)
    assert not links.known[0] and np.all(links.mu[0] == 0)  # no earlier cohort here: the hires' band is empty
    d = pol.scorer.posterior_draw(snap, contact_idx=ci, agent_idx=ai, rng=np.random.default_rng(0), n_draws=4000)
    theta = np.log(d / (1 - d)) - m[None]
    first = np.array([np.flatnonzero(ai == a)[0] for a in range(snap.n_agents)])
    assert np.allclose(theta, theta[:, first][:, ai], atol=1e-6)
    se = np.sqrt(eff.var[rows] / 4000)
    assert (np.abs(theta[:, first].mean(axis=0) - eff.mean[rows]) < 4.5 * se).all()
    assert np.allclose(theta[:, first].var(axis=0), eff.var[rows], rtol=0.15)
    score = pol.scorer.score_pairs(snap, contact_idx=ci, agent_idx=ai)
    assert np.allclose(score, 1 / (1 + np.exp(-(m + eff.mean[rows][ai]))))


class _Keep(LearnPolicy):
    """ml-learn that keeps its last non-empty window's snapshot."""

    def assign(self, view):
        w, agents = view.routable()
        if len(w):
            self.last = view.snapshot(w, agents)
        return super().assign(view)


def test_covariance_is_estimated_within_cohorts():
    """Cohorts with different means (new hires against tenured agents): the moments around each
    cohort's mean recover the agents' covariance; around the grand mean they would not."""
    rng = np.random.default_rng(8)
    S = np.array([[0.2, 0.12], [0.12, 0.1]])
    means = np.array([[-0.9, -0.5], [0.0, 0.0], [0.2, 0.1]])
    cohort = np.repeat([0, 1, 2], [150, 300, 150])
    true = means[cohort] + rng.multivariate_normal([0, 0], S, len(cohort))
    w, n = rng.uniform(20, 200, len(cohort)), rng.uniform(50, 400, len(cohort))
    views = true + rng.normal(size=true.shape) * np.sqrt(np.stack([1 / w, 0.9 / n], 1))
    noise = np.stack([1 / w, 0.9 / n], 1)
    noise[:30, 0] = np.inf  # some without a resolution view
    eff = fit_views(views, noise, cohort=cohort, n_obs=w + n)
    assert np.allclose(eff.sigma, S, atol=0.04)
    grand = np.var(views[:, 0]) - np.mean(1 / w)
    assert grand > S[0, 0] + 0.08
    # by hand, cohort by cohort
    ss, nz, df = 0.0, 0.0, 0
    for c in range(3):
        k = (cohort == c) & np.isfinite(noise[:, 0])
        ss += np.sum((views[k, 0] - views[k, 0].mean()) ** 2)
        nz += (1 - 1 / k.sum()) * noise[k, 0].sum()
        df += k.sum() - 1
    assert eff.sigma[0, 0] == pytest.approx((ss - nz) / df)
    both = np.isfinite(noise).all(axis=1)
    cross = sum(np.sum((views[k, 0] - views[k, 0].mean()) * (views[k, 1] - views[k, 1].mean()))
                for k in [(cohort == c) & both for c in range(3)])
    assert eff.sigma[0, 1] == pytest.approx(cross / (both.sum() - 3))


def _links_world(rng, n_ag=600):
    """Agents in cohorts 0, 2 and 3 (none in 1) with different means; some have one view only."""
    S = np.array([[0.16, 0.09], [0.09, 0.07]])
    mus = {0: [-0.6, -0.4], 2: [0.1, 0.05], 3: [0.2, 0.1]}
    cohort = rng.choice([0, 2, 3], n_ag)
    true = np.array([mus[c] for c in cohort]) + rng.multivariate_normal([0, 0], S, n_ag)
    w, n = rng.uniform(20, 200, n_ag), rng.uniform(50, 400, n_ag)
    w[:50], n[50:80] = 0.0, 0.0
    y = np.stack([true[:, 0] + rng.normal(size=n_ag) / np.sqrt(np.maximum(w, 1e-9)),
                  true[:, 1] + rng.normal(size=n_ag) * np.sqrt(0.8 / np.maximum(n, 1e-9))], 1)
    noise = np.stack([np.where(w > 0, 1 / np.maximum(w, 1e-300), np.inf),
                      np.where(n > 0, 0.8 / np.maximum(n, 1e-300), np.inf)], 1)
    return S, mus, cohort, y, noise


def test_warm_links_maximise_the_marginal_likelihood_and_recover_the_truth():
    """fit_warm_links against an independent marginal likelihood (scipy's normal densities): no
    small move of any parameter raises it, and the bands' means and Sigma are recovered."""
    from scipy.stats import multivariate_normal, norm

    from assign.learn.effects import fit_warm_links

    rng = np.random.default_rng(11)
    S, mus, cohort, y, noise = _links_world(rng)
    links = fit_warm_links(y, noise, cohort=cohort, n_codes=4)
    assert links.known.tolist() == [True, False, True, True] and np.all(links.mu[1] == 0)
    for c, m in mus.items():
        np.testing.assert_allclose(links.mu[c], m, atol=0.06)
    np.testing.assert_allclose(links.sigma, S, atol=0.03)

    def loglik(mu, sig):
        out = 0.0
        for k in range(len(y)):
            has = np.isfinite(noise[k])
            cov = sig + np.diag(np.where(has, noise[k], 0.0))
            m = mu[cohort[k]]
            if has.all():
                out += multivariate_normal(m, cov).logpdf(y[k])
            else:
                j = int(np.flatnonzero(has)[0])
                out += norm(m[j], np.sqrt(cov[j, j])).logpdf(y[k, j])
        return out

    best = loglik(links.mu, links.sigma)
    for d in (1e-3, -1e-3):
        for c in (0, 2, 3):
            for j in (0, 1):
                mu = links.mu.copy()
                mu[c, j] += d
                assert loglik(mu, links.sigma) <= best + 1e-6
        for i, j in ((0, 0), (1, 1), (0, 1)):
            sig = links.sigma.copy()
            sig[i, j] += d
            sig[j, i] = sig[i, j]
            assert loglik(links.mu, sig) <= best + 1e-6


def test_fit_views_with_warm_links_is_the_gaussian_update_around_them():
    """With fixed links, an agent of a known band: the by-hand 2-d update of N(mu_band, Sigma)
    (no cohort-mean uncertainty); of a band the warm history had no agent of: N(0, 2 Sigma)."""
    from assign.learn.effects import WarmLinks

    rng = np.random.default_rng(12)
    S, _, cohort, y, noise = _links_world(rng, n_ag=120)
    cohort[:3] = 1
    links = WarmLinks(mu=np.array([[-0.6, -0.4], [0.0, 0.0], [0.1, 0.05], [0.2, 0.1]]),
                      known=np.array([True, False, True, True]), sigma=S)
    eff = fit_views(y, noise, cohort=cohort, n_obs=np.ones(len(y)), links=links)
    assert np.array_equal(eff.sigma, S)
    for k in (0, 1, 2, 10, 60, 100, 119):
        prior = 2 * S if cohort[k] == 1 else S
        m, C = _gaussian_posterior(y[k], noise[k], links.mu[cohort[k]], prior)
        assert eff.mean[k] == pytest.approx(m[0]) and eff.var[k] == pytest.approx(C[0, 0])
