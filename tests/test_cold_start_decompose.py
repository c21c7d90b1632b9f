"""The new-hire error decomposition's pieces (benchmarks.cold_start_decompose)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmarks.cold_start_bound import contacts_to
from benchmarks.cold_start_decompose import counterfactual, parts, solve_offset


def test_solve_offset_matches_brentq():
    optimize = pytest.importorskip("scipy.optimize")
    rng = np.random.default_rng(0)
    m = rng.normal(0.8, 0.7, 50)
    for target in (0.3, 0.62, 0.9):
        ref = optimize.brentq(lambda x: np.mean(1 / (1 + np.exp(-(m + x)))) - target, -20, 20, xtol=1e-12)
        assert solve_offset(m, target) == pytest.approx(ref, abs=1e-9)


def test_parts_sum_to_the_error_and_vanish_for_an_exact_estimate():
    rng = np.random.default_rng(1)
    m = rng.normal(0.8, 0.7, 80)
    p = parts(m, e=-0.4, mu=-0.3, e_star=-0.7, ebar=-0.5, truth_sofar=0.61, truth_run=0.6)
    assert p["error"] == pytest.approx(p["truth"] + p["centre"] + p["individual"], abs=1e-12)
    star = solve_offset(m, 0.61)
    q = parts(m, e=star, mu=-0.2, e_star=star, ebar=-0.2, truth_sofar=0.61, truth_run=0.61)
    assert max(abs(q[k]) for k in ("error", "truth", "centre", "individual")) < 1e-9
    assert p["centre"] > 0 and p["individual"] > 0  # hires' mean estimated too high; this hire's deviation too
    r = parts(m, e=-0.9, mu=-0.6, e_star=-0.7, ebar=-0.5, truth_sofar=0.61, truth_run=0.6)
    assert r["centre"] < 0 and r["individual"] < 0 and r["truth"] == pytest.approx(p["truth"])


def test_counterfactual_as_run_is_the_benchmark_rule():
    rng = np.random.default_rng(2)
    rows = []
    for a in range(7):
        h = np.arange(1, 60, 3)
        c, i = rng.normal(0, 0.02, len(h)), rng.normal(0, 0.05, len(h)) / np.sqrt(h / 5)
        rows.append(pd.DataFrame({"seed": 0, "agent": a, "handled": h, "truth": 0.0, "centre": c, "individual": i,
                                  "error": c + i}))
    res = pd.concat(rows, ignore_index=True)
    got = counterfactual(res)
    ref = [contacts_to(t["handled"].to_numpy(), t["error"].to_numpy()) for _, t in res.groupby("agent")]
    v = np.where(np.isfinite(ref), ref, np.inf)
    assert got["as_run"]["reached"] == f"{int(np.isfinite(ref).sum())}/7"
    if np.isfinite(ref).sum() * 2 > 7:
        assert got["as_run"]["median"] == float(np.median(v))
    no_c = [contacts_to(t["handled"].to_numpy(), t["individual"].to_numpy()) for _, t in res.groupby("agent")]
    assert got["without_centre"]["reached"] == f"{int(np.isfinite(no_c).sum())}/7"
