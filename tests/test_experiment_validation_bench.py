"""The validation benchmark's own arithmetic: Wilson intervals against statsmodels, the
day-clustered design effect, and one simulated day through every design (a smoke run)."""
from __future__ import annotations

import numpy as np
import pytest
from statsmodels.stats.proportion import proportion_confint

from benchmarks import experiment_validation as ev


def test_wilson_equals_statsmodels():
    for k, n in ((0, 50), (7, 200), (480, 10_000)):
        assert ev.wilson(k, n) == pytest.approx(proportion_confint(k, n, method="wilson"), rel=1e-9)


def test_design_effect_is_one_for_independent_draws_and_grows_when_days_agree():
    rng = np.random.default_rng(0)
    indep = [list(rng.random(20)) for _ in range(500)]
    s = ev.rate(indep)
    assert s["reps"] == 10_000 and s["design_effect"] < 1.15
    together = [[0.01] * 20 if rng.random() < 0.05 else [0.9] * 20 for _ in range(500)]
    t = ev.rate(together)
    assert t["design_effect"] > 10 and t["fpr_ci"][1] - t["fpr_ci"][0] > 3 * (s["fpr_ci"][1] - s["fpr_ci"][0])


@pytest.mark.slow
def test_one_simulated_day_through_every_design():
    rows = ev.task_days([0], draws=2, full_draws=1)
    aa, power = ev.aggregate_aa(rows)
    keys = {(a["design"], a["metric"], a["method"]) for a in aa}
    assert ("switchback", "resolved", "randomisation inference") in keys
    assert ("agent", "handle_s", "wild cluster bootstrap (WCR)") in keys
    assert all(a["reps"] == (2 if a["chosen_by_readout"] else 1) for a in aa if a["method"] != "carryover test (RI)")
    assert {p["design"] for p in power} == {"contact", "agent", "switchback"}
