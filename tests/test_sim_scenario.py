"""Scenario files: round trips, validation that reports every problem, and the samplers
(arrivals, patience, staffing) against what the file says."""
from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from assign.errors import InputError
from assign.sim.scenario import HOURS_PER_WEEK, load_scenario, parse_scenario, write_scenario
from assign.sim.source import ScenarioSource, poisson_times


def _full_dir(tmp_path):
    """A scenario directory using every table kind."""
    d = tmp_path / "sc"
    d.mkdir()
    rows = [("a", h, 20.0 + (h % 24)) for h in range(HOURS_PER_WEEK)] + [("b", h, 5.0) for h in range(HOURS_PER_WEEK)]
    pd.DataFrame(rows, columns=["type", "hour_of_week", "rate_per_hour"]).to_csv(d / "arrivals.csv", index=False)
    pd.DataFrame({"type": ["a"] * 4 + ["b"] * 3 + ["a"] * 2, "agent": [""] * 7 + ["x1", "x1"],
                  "handle_s": [100, 120, 80, 90, 300, 310, 290, 10, 12]}).to_csv(d / "handle.csv", index=False)
    pd.DataFrame({"type": ["a", "a", "a", "b", "b"], "t_s": [10, 60, 120, 30, 90],
                  "survival": [0.9, 0.6, 0.5, 0.8, 0.7]}).to_csv(d / "patience.csv", index=False)
    pd.DataFrame({"hour_of_week": range(HOURS_PER_WEEK),
                  "agents": [2 + (h % 24 >= 8) for h in range(HOURS_PER_WEEK)]}).to_csv(d / "staffing.csv", index=False)
    doc = {"schema": "assign.scenario/1", "name": "full", "start": "2026-03-02T00:00:00+00:00", "days": 2,
           "types": [{"name": "a", "share": 0.8}, {"name": "b", "share": 0.2}],
           "arrivals": {"kind": "hour_of_week", "table": "arrivals.csv"},
           "service": {"kind": "empirical", "table": "handle.csv"},
           "patience": {"kind": "empirical", "table": "patience.csv"},
           "staffing": {"kind": "hour_of_week", "table": "staffing.csv"},
           "agents": ["x1", "x2", "x3"], "priority": {"share": 0.1, "credit_s": 90}, "policy": "fcfs"}
    (d / "scenario.json").write_text(json.dumps(doc))
    return d


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_round_trip_keeps_everything(tmp_path, fmt):
    sc = load_scenario(_full_dir(tmp_path))
    f = write_scenario(sc, tmp_path / f"out_{fmt}", fmt=fmt)
    back = load_scenario(f.parent)
    assert back.types == sc.types and back.agent_names == sc.agent_names and back.days == sc.days
    np.testing.assert_allclose(back.arrivals.rate, sc.arrivals.rate)
    np.testing.assert_array_equal(back.staffing.agents, sc.staffing.agents)
    assert back.service.samples.keys() == sc.service.samples.keys()
    for k in sc.service.samples:
        np.testing.assert_allclose(back.service.samples[k], sc.service.samples[k])
    for t in sc.types:
        np.testing.assert_allclose(back.patience.curves[t][1], sc.patience.curves[t][1])
    assert (back.priority_share, back.priority_credit_s) == (0.1, 90.0)


def test_every_problem_is_reported_at_once(tmp_path):
    d = tmp_path / "bad"
    d.mkdir()
    pd.DataFrame({"type": ["a", "zz"], "hour_of_week": [0, 200], "rate_per_hour": [1, -3]}).to_csv(
        d / "arr.csv", index=False)
    doc = {"schema": "assign.scenario/9", "days": -1, "types": [{"name": "a", "share": 1}],
           "arrivals": {"kind": "hour_of_week", "table": "arr.csv"},
           "service": {"kind": "lognormal", "mean_s": 100},
           "patience": {"kind": "weibull"}, "staffing": {"kind": "constant", "agents": 0}}
    (d / "scenario.json").write_text(json.dumps(doc))
    with pytest.raises(InputError) as err:
        load_scenario(d)
    text = str(err.value)
    for needle in ("schema", "days", "arr.csv: unknown type(s) 'zz'", "hour_of_week", "rate_per_hour",
                   "service.cv", "patience.kind", "staffing.agents"):
        assert needle in text, needle
    assert len(err.value.problems) >= 8


@pytest.mark.parametrize("doc_patch, message", [
    ({"types": []}, "types: expected a non-empty list"),
    ({"service": {"kind": "empirical", "table": "missing.csv"}}, "does not exist"),
    ({"staffing": {"kind": "constant", "agents": 2.5}}, "whole number"),
    ({"priority": {"share": 2}}, "priority.share: must be <= 1"),
    ({"agents": ["only-one"]}, "staffing needs up to 3 agents"),
])
def test_single_field_errors(doc_patch, message):
    doc = {"schema": "assign.scenario/1", "types": [{"name": "a", "share": 1}],
           "arrivals": {"kind": "constant", "rate_per_hour": 10}, "service": {"kind": "exponential", "mean_s": 60},
           "staffing": {"kind": "constant", "agents": 3}}
    doc.update(doc_patch)
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_scenario(doc)


def test_poisson_arrivals_follow_the_hourly_rates():
    rate = np.zeros((2, HOURS_PER_WEEK))
    rate[0, :] = 50.0
    rate[1, 9::24] = 400.0  # type 1 only in hour 9 of every day
    start = datetime(2026, 1, 5, tzinfo=UTC)
    t, typ = poisson_times(np.random.default_rng(5), rate, start=start, horizon_s=7 * 86400.0)
    assert np.all(np.diff(t) >= 0) and t.min() >= 0 and t.max() < 7 * 86400
    hours = (t // 3600).astype(int) % 24
    assert set(hours[typ == 1]) == {9}
    # Counts are Poisson: 7 x 400 expected for type 1, 7 x 24 x 50 for type 0 (5 sd bounds).
    for k, lam in ((1, 2800.0), (0, 8400.0)):
        assert abs((typ == k).sum() - lam) < 5 * np.sqrt(lam)


def test_start_mid_week_maps_hours_of_week():
    rate = np.zeros((1, HOURS_PER_WEEK))
    rate[0, 24 * 2 + 10] = 3600.0  # Wednesday 10h only
    start = datetime(2026, 1, 7, 9, 30, tzinfo=UTC)  # a Wednesday, 09:30
    t, _ = poisson_times(np.random.default_rng(0), rate, start=start, horizon_s=3 * 3600.0)
    assert t.min() >= 1800 and t.max() < 5400  # 10:00..11:00 is 1800..5400 s after start


def test_empirical_patience_follows_the_survival_curve(tmp_path):
    sc = load_scenario(_full_dir(tmp_path))
    src = ScenarioSource(sc)
    typ = np.zeros(200_000, dtype=np.int64)
    p = src._patience(np.random.default_rng(1), typ)
    ts, surv = sc.patience.curves["a"]
    for x, s in zip(ts, surv):
        assert abs((p > x).mean() - s) < 0.005   # P(T > t_i) = S(t_i) at each step
    assert abs(np.isinf(p).mean() - surv[-1]) < 0.005  # beyond the curve: never abandons
    assert set(np.unique(p[np.isfinite(p)])) <= set(ts)


def test_staffing_plan_matches_the_table(tmp_path):
    sc = load_scenario(_full_dir(tmp_path))
    plan = ScenarioSource(sc).shifts(horizon_s=2 * 86400.0)
    on = np.zeros(sc.n_agents, bool)
    k = 0
    for hour in range(48):
        while k < len(plan.t_s) and plan.t_s[k] <= hour * 3600.0:
            on[plan.agent[k]] = plan.on[k]
            k += 1
        assert on.sum() == sc.staffing.agents[hour % 24], hour


def test_empirical_service_uses_agent_samples(tmp_path):
    sc = load_scenario(_full_dir(tmp_path))
    src = ScenarioSource(sc)
    stream = src.contacts(seed=0, horizon_s=86400.0)
    a_rows = np.flatnonzero(stream.block.intent == 0)[:50]
    by_x1 = src.outcomes(stream=stream, contact_idx=a_rows, agent_idx=np.zeros(50, np.int64),
                         agent_load=np.zeros(50), t_s=0.0).handle_s
    by_x2 = src.outcomes(stream=stream, contact_idx=a_rows, agent_idx=np.ones(50, np.int64),
                         agent_load=np.zeros(50), t_s=0.0).handle_s
    assert set(by_x1) <= {10.0, 12.0} and set(by_x2) <= {80.0, 90.0, 100.0, 120.0}
