"""The engine against the Erlang C closed form on an M/M/c queue.

M/M/2 at load 0.5, two independent replications of ~500,000 arrivals each (run on two Dask
workers), pooled. A single replication's relative error of the mean wait has a standard deviation of
about 1.0% (P(wait): 0.4%), measured over 9 seeds with ``python -m benchmarks.simulate
--erlang``; pooling two gives ~0.7%, so the 3% bound is over four standard deviations wide.
"""
from __future__ import annotations

import numpy as np

from assign.sim.engine import SimConfig
from assign.sim.erlang import erlang_c, mmc_mean_wait_s
from assign.sim.policies import FCFS
from assign.sim.runner import replicate
from assign.sim.scenario import mmc_scenario
from assign.sim.source import ScenarioSource

AGENTS, RHO, MEAN_S, CONTACTS = 2, 0.5, 60.0, 500_000


def test_mmc_matches_erlang_c_within_3_percent():
    lam = RHO * AGENTS / MEAN_S
    days = CONTACTS / (lam * 86400.0)
    src = ScenarioSource(mmc_scenario(arrival_rate_per_hour=lam * 3600.0, mean_service_s=MEAN_S,
                                      agents=AGENTS, days=days))
    runs = replicate(source=src, policies=[FCFS()], seeds=[2026, 2027], config=SimConfig(days=days), workers=2)
    n = np.array([r.kpis["offered"] for r in runs])
    assert n.sum() > 0.99 * 2 * CONTACTS
    assert all(r.kpis["unserved_rate"] == 0 and r.kpis["abandonment_rate"] == 0 for r in runs)
    p_wait = np.average([r.kpis["p_wait"] for r in runs], weights=n)
    mean_wait = np.average([r.kpis["asa_s"] for r in runs], weights=n)
    pw0 = erlang_c(agents=AGENTS, offered_erlangs=lam * MEAN_S)
    w0 = mmc_mean_wait_s(agents=AGENTS, arrival_rate_per_s=lam, mean_service_s=MEAN_S)
    assert abs(p_wait / pw0 - 1) < 0.03, (p_wait, pw0)
    assert abs(mean_wait / w0 - 1) < 0.03, (mean_wait, w0)
