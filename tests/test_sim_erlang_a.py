"""Erlang A (M/M/n+M) closed forms: against Erlang C, an independent linear solve of the
birth-death chain, and the simulator on a loaded and an overloaded case."""
from __future__ import annotations

import numpy as np
import pytest

from assign.sim.engine import SimConfig, simulate
from assign.sim.erlang import erlang_a, erlang_c, mmc_mean_wait_s, mmc_service_level
from assign.sim.kpis import summarise
from assign.sim.policies import FCFS
from assign.sim.scenario import mmc_scenario
from assign.sim.source import ScenarioSource


def test_erlang_a_with_endless_patience_is_erlang_c():
    e = erlang_a(agents=20, arrival_rate_per_s=0.1, mean_service_s=180, mean_patience_s=1e8)
    assert e.p_wait == pytest.approx(erlang_c(agents=20, offered_erlangs=18), rel=1e-4)
    assert e.service_level == pytest.approx(
        mmc_service_level(agents=20, arrival_rate_per_s=0.1, mean_service_s=180, threshold_s=20), rel=1e-4)
    assert e.asa_s == pytest.approx(mmc_mean_wait_s(agents=20, arrival_rate_per_s=0.1, mean_service_s=180), rel=1e-3)
    assert e.p_abandon < 1e-5


@pytest.mark.parametrize("n, lam, svc, pat", [(3, 0.05, 60.0, 30.0), (5, 0.2, 40.0, 15.0)])
def test_erlang_a_matches_a_linear_solve_of_the_chain(n, lam, svc, pat):
    mu, theta, k_max = 1 / svc, 1 / pat, 400
    q = np.zeros((k_max + 1, k_max + 1))
    for k in range(k_max + 1):
        if k < k_max:
            q[k, k + 1] = lam
        if k > 0:
            q[k, k - 1] = min(k, n) * mu + max(k - n, 0) * theta
        q[k, k] = -q[k].sum()
    a = np.vstack([q.T, np.ones(k_max + 1)])
    pi = np.linalg.lstsq(a, np.r_[np.zeros(k_max + 1), 1.0], rcond=None)[0]
    ks = np.arange(k_max + 1)
    e = erlang_a(agents=n, arrival_rate_per_s=lam, mean_service_s=svc, mean_patience_s=pat)
    assert e.p_wait == pytest.approx(pi[n:].sum(), rel=1e-8)
    assert e.p_abandon == pytest.approx(theta * (np.maximum(ks - n, 0) * pi).sum() / lam, rel=1e-8)
    assert 0 < e.service_level < 1 - e.p_abandon


@pytest.mark.slow
@pytest.mark.parametrize("agents", [18, 14])  # offered load 18 erlangs: loaded (rho = 1), overloaded (1.29)
def test_erlang_a_matches_the_simulator(agents):
    """About 34,000 simulated arrivals per case (4 days x 1 seed). The tolerances are several
    standard errors wide: the abandonment share (0.10-0.23) has a binomial-with-correlation
    standard error below 0.005 here, the service level about 0.008."""
    lam_h, svc, pat = 360.0, 180.0, 120.0
    sc = mmc_scenario(arrival_rate_per_hour=lam_h, mean_service_s=svc, agents=agents, days=4, patience_mean_s=pat)
    k = summarise(simulate(source=ScenarioSource(sc), policy=FCFS(), seed=11, config=SimConfig(days=4))).kpis
    e = erlang_a(agents=agents, arrival_rate_per_s=lam_h / 3600, mean_service_s=svc, mean_patience_s=pat)
    assert k["abandonment_rate"] == pytest.approx(e.p_abandon, rel=0.08)
    assert k["service_level"] == pytest.approx(e.service_level, abs=0.03)
    assert k["asa_s"] == pytest.approx(e.asa_s, rel=0.08)
    assert k["mean_wait_s"] == pytest.approx(e.mean_wait_s, rel=0.08)
