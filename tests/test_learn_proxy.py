"""The CSAT proxy: informative only when the data make it so, and it speeds up a new agent's estimate."""
from __future__ import annotations

import numpy as np
import pytest

from assign.learn.proxy import fit_proxy, known_mean_strength
from assign.learn.shrink import RHO_MAX, RHO_MIN, fit_posterior


def _centre(rng, *, n_agents: int, link: float, n_res: int, n_csat: int, noise: float = 0.05):
    """Agents with a latent logit q: resolution ~ Bernoulli(sigmoid(q)), CSAT = 1 + Binomial(4,
    sigmoid(link * q + N(0, noise))): ``link`` 0 makes CSAT unrelated to resolution."""
    q = rng.normal(0.8, 0.6, n_agents)
    theta = 1 / (1 + np.exp(-q))
    n = np.full(n_agents, float(n_res))
    s = rng.binomial(n_res, theta).astype(float)
    zc = link * (q - 0.8) + rng.normal(0, noise, n_agents)
    cs = 1.0 + rng.binomial(4 * n_csat, 1 / (1 + np.exp(-zc))) / n_csat
    return theta, n, s, np.full(n_agents, float(n_csat)), cs * n_csat


@pytest.mark.parametrize("M", [10.0, 80.0])
def test_known_mean_strength_recovers_the_beta_binomial_truth(M):
    rng = np.random.default_rng(8)
    est = []
    for _ in range(15):
        mu = rng.uniform(0.3, 0.9, 800)
        theta = rng.beta(M * mu, M * (1 - mu))
        n = rng.integers(10, 150, 800).astype(float)
        s = rng.binomial(n.astype(int), theta).astype(float)
        est.append(known_mean_strength(s, n, mu, rho_min=RHO_MIN, rho_max=RHO_MAX))
    assert abs(np.median(est) / M - 1) < 0.15


def test_the_slope_is_zero_when_csat_says_nothing_about_resolution():
    """Unrelated CSAT, alike across agents (noise 0.05) or differing (noise 0.6): no slope."""
    rng = np.random.default_rng(1)
    zero = np.zeros(40, np.int64)
    betas = {0.05: [], 0.6: []}
    for noise, out in betas.items():
        for _ in range(20):
            _, n, s, nc, sc = _centre(rng, n_agents=40, link=0.0, n_res=200, n_csat=100, noise=noise)
            out.append(fit_proxy(n_csat=nc, s_csat=sc, c_idx=zero, n_res=n, s_res=s).beta)
    related = []
    for _ in range(20):
        _, n, s, nc, sc = _centre(rng, n_agents=40, link=1.0, n_res=200, n_csat=100)
        related.append(fit_proxy(n_csat=nc, s_csat=sc, c_idx=zero, n_res=n, s_res=s).beta)
    assert np.median(betas[0.05]) == 0.0 and np.median(betas[0.6]) < 0.03
    assert np.median(related) > 0.1


def test_csat_moves_a_new_agent_towards_its_truth_before_any_resolution():
    """40 tenured agents with both outcomes; 20 new ones with 60 CSATs and no resolution yet.
    With the proxy their estimates are nearer their true rates than the cohort prior alone."""
    rng = np.random.default_rng(4)
    err_with, err_without = [], []
    for _ in range(10):
        theta, n, s, nc, sc = _centre(rng, n_agents=60, link=1.0, n_res=300, n_csat=60)
        n[40:], s[40:] = 0.0, 0.0
        n_ai, s_ai = n[:, None] * 1.0, s[:, None] * 1.0
        cohort = np.zeros(60, np.int64)
        skill = np.ones((60, 1))
        with_p = fit_posterior(n_ai=n_ai, s_ai=s_ai, cohort=cohort, skill=skill, n_csat=nc, s_csat=sc)
        without = fit_posterior(n_ai=n_ai, s_ai=s_ai, cohort=cohort, skill=skill)
        err_with.append(np.abs(with_p.agent_mean[40:] - theta[40:]).mean())
        err_without.append(np.abs(without.agent_mean[40:] - theta[40:]).mean())
        assert with_p.strengths["csat_beta"] > 0
    assert np.mean(err_with) < 0.7 * np.mean(err_without)


def test_without_csat_the_hierarchy_is_unchanged():
    rng = np.random.default_rng(3)
    n_ai = rng.integers(1, 40, (12, 3)).astype(float)
    s_ai = np.floor(n_ai * rng.uniform(0.3, 0.9, (12, 3)))
    skill = np.tile(np.eye(3)[[0, 1, 2, 0]], (3, 1)) * 0.5 + 0.3
    coh = np.repeat([0, 1, 2], 4)
    a = fit_posterior(n_ai=n_ai, s_ai=s_ai, cohort=coh, skill=skill)
    b = fit_posterior(n_ai=n_ai, s_ai=s_ai, cohort=coh, skill=skill, n_csat=np.zeros(12), s_csat=np.zeros(12))
    np.testing.assert_array_equal(a.mean, b.mean)
