"""The ideal new-hire estimator of benchmarks.cold_start_bound against independent references."""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import integrate

from assign.world.truth import COEF_NAMES, DEFAULT_COEF
from benchmarks.cold_start_bound import ABILITY_SD, SPEED_SD, SPEED_SLOPE, contacts_to, ideal_estimates

KC = DEFAULT_COEF[COEF_NAMES.index("csat_res")] + DEFAULT_COEF[COEF_NAMES.index("csat_ability")]
SIG = DEFAULT_COEF[COEF_NAMES.index("ht_sigma")]


def _sig(x):
    return 1 / (1 + np.exp(-x))


def _hire(rng, *, n: int, ability: float, speed: float = 0.0) -> pd.DataFrame:
    """A hire's contacts drawn from the truth's links: resolution logit o + a, CSAT logit zc0 + KC a."""
    o = rng.normal(0.6, 0.8, n)
    zc0 = rng.normal(0.8, 0.5, n)
    tp, q = _sig(o + ability), _sig(zc0 + KC * ability)
    th = rng.uniform(200, 600, n) * np.exp(speed)
    start = np.cumsum(rng.exponential(300, n))
    handle = th * np.exp(SIG * rng.standard_normal(n) - 0.5 * SIG * SIG)
    return pd.DataFrame({"start": start, "end": start + handle, "resolved": (rng.random(n) < tp) * 1.0,
                         "csat": 1.0 + rng.binomial(4, q), "handle": handle, "tp": tp, "tc": 1 + 4 * q, "th": th})


def test_population_constants_are_the_generators():
    from assign.world.centre import generate_world

    ag = generate_world(seed=5, n_agents=1500, n_intents=6).agents
    a, s = ag["ability"].to_numpy(), ag["speed"].to_numpy()
    slope, icpt = np.polyfit(a, s, 1)
    assert abs(a.std() - ABILITY_SD) < 0.03
    assert abs(slope - SPEED_SLOPE) < 0.03 and abs(icpt) < 0.02
    assert abs((s - slope * a - icpt).std() - SPEED_SD) < 0.01


def test_grid_posterior_equals_quadrature():
    """Resolution and CSAT known at once: the estimate after n contacts equals the posterior mean
    of mean_i sigmoid(o_i + a) by numerical integration over the ability."""
    rng = np.random.default_rng(3)
    df = _hire(rng, n=40, ability=-0.5)
    est = ideal_estimates(df, ability=-0.5, speed=0.0, coef=DEFAULT_COEF, label_delay_s=0.0, csat_delay_s=0.0,
                          view="resolution+csat")
    o = np.log(df["tp"] / (1 - df["tp"])).to_numpy() + 0.5
    q0 = (df["tc"].to_numpy() - 1) / 4
    zc = np.log(q0 / (1 - q0)) + KC * 0.5
    y, k = df["resolved"].to_numpy(), df["csat"].to_numpy() - 1
    for n in (1, 2, 10, 40):
        m = slice(0, n - 1)  # at the n-th contact's start: the first n - 1 have ended (times are spaced)
        known = df["end"].to_numpy()[m] <= df["start"].to_numpy()[n - 1]

        def like(a, m=m, known=known):
            p, q = _sig(o[m] + a)[known], _sig(zc[m] + KC * a)[known]
            ll = np.sum(y[m][known] * np.log(p) + (1 - y[m][known]) * np.log(1 - p))
            ll += np.sum(k[m][known] * np.log(q) + (4 - k[m][known]) * np.log(1 - q))
            return np.exp(ll - 0.5 * (a / ABILITY_SD) ** 2)

        z = integrate.quad(like, -2.5, 2.5, limit=200)[0]
        num = integrate.quad(lambda a, n=n: like(a) * _sig(o[:n] + a).mean(), -2.5, 2.5, limit=200)[0]
        assert abs(est[n - 1] - num / z) < 2e-3


def test_outcomes_count_only_once_known():
    rng = np.random.default_rng(4)
    df = _hire(rng, n=60, ability=0.7)
    kw = dict(ability=0.7, speed=0.0, coef=DEFAULT_COEF, csat_delay_s=0.0)
    prior = ideal_estimates(df, view="prior", label_delay_s=0.0, **kw)
    late = ideal_estimates(df, view="resolution", label_delay_s=1e9, **kw)
    now = ideal_estimates(df, view="resolution", label_delay_s=0.0, **kw)
    np.testing.assert_allclose(late, prior)
    assert not np.allclose(now[5:], prior[5:])


def test_ideal_estimator_is_unbiased_and_beats_the_prior():
    """Over hires drawn from the prior, the estimate's mean error is 0 (within 4 SE) and, with
    CSAT and handle time, its squared error is below resolution alone's, below the prior's."""
    rng = np.random.default_rng(5)
    err = {v: [] for v in ("prior", "resolution", "resolution+csat+handle")}
    for _ in range(120):
        a = rng.normal(0, ABILITY_SD)
        s = SPEED_SLOPE * a + rng.normal(0, SPEED_SD)
        df = _hire(rng, n=80, ability=a, speed=s)
        for v in err:
            est = ideal_estimates(df, ability=a, speed=s, coef=DEFAULT_COEF, label_delay_s=0.0, csat_delay_s=0.0,
                                  view=v)
            err[v].append(est[-1] - df["tp"].mean())
    e = {v: np.asarray(x) for v, x in err.items()}
    full = e["resolution+csat+handle"]
    assert abs(full.mean()) < 4 * full.std() / np.sqrt(len(full))
    assert np.mean(full ** 2) < np.mean(e["resolution"] ** 2) < np.mean(e["prior"] ** 2)


def test_contacts_to_is_the_benchmarks_rule():
    h = np.array([1, 2, 3, 4, 5])
    assert contacts_to(h, np.array([0.1, 0.0, 0.05, 0.01, 0.0])) == 4
    assert contacts_to(h, np.array([0.0, 0.0, 0.0, 0.0, 0.0])) == 1
    assert np.isnan(contacts_to(h, np.array([0.0, 0.0, 0.0, 0.0, -0.04])))


def test_learned_estimator_with_the_true_links_is_the_ideal():
    """The learnable-links estimator given the world's links (true logits at ability 0, true CSAT
    logits, prior N(0, 0.45^2), phi = k a exactly) equals the ideal estimator, delays included."""
    from benchmarks.cold_start_links import Links, learned_estimates

    rng = np.random.default_rng(6)
    df = _hire(rng, n=120, ability=-0.4)
    o = np.log(df["tp"] / (1 - df["tp"])).to_numpy() + 0.4
    q0 = (df["tc"].to_numpy() - 1) / 4
    zc = np.log(q0 / (1 - q0)) + KC * 0.4
    s2 = ABILITY_SD ** 2
    links = Links(mu=np.zeros(2), sigma=np.array([[s2, KC * s2], [KC * s2, KC * KC * s2]]))
    kw = dict(label_delay_s=3000.0, csat_delay_s=600.0)
    got = learned_estimates(df, m=o, z=zc, links=links, **kw)
    want = ideal_estimates(df, ability=-0.4, speed=0.0, coef=DEFAULT_COEF, view="resolution+csat", **kw)
    np.testing.assert_allclose(got, want, atol=1e-9)
    res_only = learned_estimates(df, m=o, z=zc, links=links, use_csat=False, **kw)
    np.testing.assert_allclose(res_only, ideal_estimates(df, ability=-0.4, speed=0.0, coef=DEFAULT_COEF,
                                                         view="resolution", **kw), atol=1e-9)


def test_learned_estimator_with_csat_noise_equals_quadrature():
    """With phi | a ~ N(mu_phi + b (a - mu_a), s_u^2), s_u > 0: the estimate equals the posterior
    mean by 2-d numerical integration over (a, phi)."""
    from scipy.stats import multivariate_normal

    from benchmarks.cold_start_links import Links, learned_estimates

    rng = np.random.default_rng(7)
    df = _hire(rng, n=30, ability=0.3)
    m, z = rng.normal(0.5, 0.7, 30), rng.normal(0.9, 0.6, 30)
    mu, sig = np.array([-0.5, -0.3]), np.array([[0.16, 0.10], [0.10, 0.12]])
    got = learned_estimates(df, m=m, z=z, links=Links(mu=mu, sigma=sig), label_delay_s=0.0, csat_delay_s=0.0)
    a, p = np.meshgrid(np.linspace(-3.5, 2.5, 1201), np.linspace(-3.5, 2.5, 1201), indexing="ij")
    lp = multivariate_normal(mu, sig).logpdf(np.stack([a, p], -1))
    y, k = df["resolved"].to_numpy(), df["csat"].to_numpy() - 1
    for n in (1, 5, 30):
        known = df["end"].to_numpy()[:n - 1] <= df["start"].to_numpy()[n - 1]
        ll = lp.copy()
        for i in np.flatnonzero(known):
            pr, q = _sig(m[i] + a), _sig(z[i] + p)
            ll += y[i] * np.log(pr) + (1 - y[i]) * np.log(1 - pr) + k[i] * np.log(q) + (4 - k[i]) * np.log(1 - q)
        w = np.exp(ll - ll.max())
        rate = np.mean([_sig(m[i] + a) for i in range(n)], axis=0)
        assert abs(got[n - 1] - (w * rate).sum() / w.sum()) < 1e-3


def test_fit_links_recovers_known_links():
    """300 agents in two groups, (a, phi) ~ N(mu_g, Sigma), outcomes drawn from the estimator's
    model: the maximum marginal likelihood recovers the group means and Sigma."""
    from benchmarks.cold_start_links import agent_logliks, fit_links

    rng = np.random.default_rng(8)
    mu = np.array([[0.0, 0.0], [-0.7, -0.5]])
    sig = np.array([[0.16, 0.11], [0.11, 0.10]])
    group = (np.arange(300) % 3 == 0).astype(int)
    eff = mu[group] + rng.multivariate_normal(np.zeros(2), sig, 300)
    n = 150
    agent = np.repeat(np.arange(300), n)
    m, z = rng.normal(0.6, 0.8, len(agent)), rng.normal(0.8, 0.5, len(agent))
    y = (rng.random(len(agent)) < _sig(m + eff[agent, 0])) * 1.0
    c = 1.0 + rng.binomial(4, _sig(z + eff[agent, 1]))
    c[rng.random(len(agent)) < 0.6] = np.nan  # CSAT surveyed for some contacts only
    R, C = agent_logliks(agent, resolved=y, m=m, csat=c, z=z, agents=np.arange(300))
    got_mu, got_sig = fit_links(R, C, group=group, n_groups=2)
    np.testing.assert_allclose(got_mu, mu, atol=0.08)
    np.testing.assert_allclose(got_sig, sig, atol=0.04)
    rho = got_sig[0, 1] / np.sqrt(got_sig[0, 0] * got_sig[1, 1])
    assert abs(rho - 0.11 / np.sqrt(0.016)) < 0.12
