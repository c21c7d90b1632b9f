"""Decision and outcome logs: written by the router through a sink, partitioned by day,
joined on decision_id with nothing lost."""
from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from assign.errors import InputError
from assign.learn import MemorySink, ParquetSink, join_logs, read_partitioned
from assign.learn.logs import check_outcomes
from assign.router import Router
from assign.workload import synthetic_snapshot


def _events(decisions: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Three separate outcome events per decision: handle at wrap-up, CSAT on a survey
    (answered for about half), resolution 72 h later (crossing day boundaries)."""
    at = pd.to_datetime(decisions["at"], utc=True)
    base = dict(decision_id=decisions["decision_id"], agent_id=decisions["agent_id"], intent=decisions["intent"])
    handle = pd.DataFrame({**base, "known_at": at + pd.to_timedelta(rng.uniform(60, 900, len(at)), unit="s"),
                           "resolved": np.nan, "csat": np.nan, "handle_s": rng.uniform(60, 900, len(at))})
    asked = rng.random(len(at)) < 0.5
    csat = pd.DataFrame({**base, "known_at": at + timedelta(hours=2), "resolved": np.nan,
                         "csat": rng.integers(1, 6, len(at)).astype(float), "handle_s": np.nan})[asked]
    res = pd.DataFrame({**base, "known_at": at + timedelta(hours=72), "resolved": (rng.random(len(at)) < 0.7) * 1.0,
                        "csat": np.nan, "handle_s": np.nan})
    return pd.concat([res, handle, csat], ignore_index=True).sample(frac=1.0, random_state=1)


@pytest.mark.parametrize("sink_kind", ["memory", "parquet"])
def test_decision_log_joins_outcome_log_with_nothing_lost(tmp_path, sink_kind):
    sink = MemorySink() if sink_kind == "memory" else ParquetSink(tmp_path / "logs")
    router = Router(sink=sink, model_version="m1")
    snaps = []
    for k in range(4):  # ticks on two days
        s = synthetic_snapshot(n_contacts=25, n_agents=10, seed=k)
        snaps.append(replace(s, snapshot_id=f"tick{k}", at=s.at + timedelta(hours=20 * k)))
    results = [router.tick(s) for s in snaps]
    n_assigned = sum(len(r.assignments) for r in results)
    for r in results:  # every assignment carries its decision
        assert [(d.contact_id, d.agent_id) for d in r.decisions] == [(a.contact_id, a.agent_id)
                                                                    for a in r.assignments]
        assert all(d.propensity == 1.0 and not d.explored and d.model_version == "m1" for d in r.decisions)
    dec = pd.concat([pd.DataFrame([vars(d) for d in r.decisions]) for r in results], ignore_index=True)
    events = _events(dec, np.random.default_rng(0))
    router.observe(events)
    if sink_kind == "memory":
        sink.write(tmp_path / "logs")
    d_log = read_partitioned(tmp_path / "logs" / "decisions")
    o_log = read_partitioned(tmp_path / "logs" / "outcomes")
    days = sorted(p.name for p in (tmp_path / "logs" / "outcomes").iterdir())
    assert len(days) >= 4 and all(d.startswith("day=") for d in days)
    assert len(d_log) == n_assigned and len(o_log) == len(events)
    joined = join_logs(d_log, o_log)
    assert len(joined) == n_assigned
    assert joined["resolved"].notna().all() and joined["handle_s"].notna().all()
    # every event's value is where the join put it
    for col in ("resolved", "csat", "handle_s"):
        ev = events[events[col].notna()].set_index("decision_id")[col]
        got = joined.set_index("decision_id")[col].loc[ev.index]
        np.testing.assert_array_equal(got.to_numpy(), ev.to_numpy())
    assert joined["csat"].notna().sum() == events["csat"].notna().sum()
    # the OPE decisions table's columns are all there
    from assign.ope.logs import TABLES
    assert set(TABLES["decisions"]) <= set(d_log.columns)
    assert set(TABLES["outcomes"]) <= set(joined.columns)


def test_bad_outcomes_name_every_problem():
    bad = pd.DataFrame({"decision_id": ["a", None], "known_at": ["2026-01-01", None], "agent_id": ["x", "y"],
                        "intent": ["i", "i"], "resolved": [2.0, np.nan], "csat": [np.nan, np.nan],
                        "handle_s": [np.nan, np.nan]})
    with pytest.raises(InputError) as err:
        check_outcomes(bad)
    msg = str(err.value)
    assert "decision_id: null at rows [1]" in msg and "known_at: null" in msg
    assert "carry no outcome" in msg and "resolved: not 0/1 at rows [0]" in msg
    with pytest.raises(InputError, match="missing column 'known_at'"):
        check_outcomes(bad.drop(columns="known_at"))


def test_plain_router_result_unchanged_without_learning():
    s = synthetic_snapshot(n_contacts=30, n_agents=12, seed=5)
    plain = Router().tick(s)
    logged = Router(sink=MemorySink()).tick(s)
    assert plain.decisions == () and plain.n_prior_only == 0
    assert [(a.contact_id, a.agent_id, a.value) for a in plain.assignments] == \
        [(a.contact_id, a.agent_id, a.value) for a in logged.assignments]
