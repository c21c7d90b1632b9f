"""Scenario calibration from a history (assign.sim.calibrate, ``assign calibrate``)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from assign.cli import main
from assign.errors import InputError
from assign.history import conform_history
from assign.sim.calibrate import CapacityModel, calibrate, hour_of_week, kaplan_meier, observed_kpis

SAMPLE = Path(__file__).parent / "data" / "anonymous_bank_sample.tsv"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kaplan_meier_matches_statsmodels(seed):
    survfunc = pytest.importorskip("statsmodels.duration.survfunc")
    rng = np.random.default_rng(seed)
    n = 400
    t = rng.integers(0, 30, n).astype(float)  # many ties, events and censorings at one time
    e = rng.random(n) < 0.35
    tt, ss = kaplan_meier(t, e)
    ref = survfunc.SurvfuncRight(t, e.astype(int))
    np.testing.assert_allclose(tt, ref.surv_times)
    np.testing.assert_allclose(ss, ref.surv_prob, rtol=1e-12)


def test_kaplan_meier_closed_form_without_censoring():
    t = np.array([5.0, 1.0, 3.0, 3.0])
    tt, ss = kaplan_meier(t, np.ones(4, bool))  # no censoring: the empirical survival
    np.testing.assert_array_equal(tt, [1, 3, 5])
    np.testing.assert_allclose(ss, [0.75, 0.25, 0.0])
    tt, ss = kaplan_meier(t, np.zeros(4, bool))  # all censored: no step at all
    assert len(tt) == 0 and len(ss) == 0


@pytest.mark.parametrize("times, events, msg", [
    (np.array([1.0, -1.0]), np.array([True, True]), ">= 0"),
    (np.array([1.0, np.nan]), np.array([True, True]), "finite"),
    (np.array([1.0, 2.0]), np.array([True]), "differ in shape"),
])
def test_kaplan_meier_rejects_bad_input(times, events, msg):
    with pytest.raises(InputError, match=msg):
        kaplan_meier(times, events)


def _history() -> pd.DataFrame:
    """Two Mondays (Jan 4, Jan 11 1999) and one Tuesday (Jan 5) present."""
    T = lambda s: pd.Timestamp(s, tz="UTC")
    rows = [  # arrival, type, wait, abandoned, handle, agent, entered_queue, tier
        (T("1999-01-04 09:00"), "A", 600, False, 600, "X", True, "regular"),    # X 9:10-9:20
        (T("1999-01-04 09:01"), "A", 30, True, None, None, True, "priority"),
        (T("1999-01-04 09:02"), "A", 0, True, None, None, False, "regular"),    # VRU hang-up: left out
        (T("1999-01-04 09:40"), "B", 600, False, 900, "Y", True, "regular"),    # Y 9:50-10:05
        (T("1999-01-11 09:20"), "A", 600, False, 600, "X", True, "regular"),    # X 9:30-9:40
        (T("1999-01-11 09:30"), "A", 40, True, None, None, True, "regular"),
        (T("1999-01-05 10:00"), "B", 10, False, 100, "Y", True, "regular"),
        (T("1999-01-05 10:30"), "B", 20, True, None, None, True, "regular"),
        (T("1999-01-05 10:59"), "B", 5, False, 50, None, True, "regular"),      # agent unknown
    ]
    df = pd.DataFrame(rows, columns=["arrival_at", "intent", "wait_s", "abandoned", "handle_s", "agent_id",
                                     "entered_queue", "customer_tier"])
    df["contact_id"] = [f"c{i}" for i in range(len(df))]
    df["channel"] = "voice"
    df["answered_at"] = df["arrival_at"] + pd.to_timedelta(df["wait_s"], unit="s")
    df.loc[df["abandoned"], "answered_at"] = pd.NaT
    return conform_history(df)


def test_tables_by_hand():
    cal = calibrate(_history(), name="t", min_cell=2, staffing_slot_s=3600, staffing_floor=0)
    a = cal.arrivals.set_index(["type", "hour_of_week"])["rate_per_hour"]
    assert a[("A", 9)] == pytest.approx(4 / 2)  # 4 queued type-A calls over 2 Mondays
    assert a[("B", 9)] == pytest.approx(1 / 2)
    assert a[("B", 24 + 10)] == pytest.approx(3 / 1)  # Tuesday 10h, one Tuesday present
    assert a.sum() == pytest.approx(2 + 0.5 + 3)
    assert len(cal.arrivals) == 2 * 168
    st = cal.staffing.set_index("hour_of_week")["agents_estimate"]
    assert st[9] == pytest.approx((2 + 1) / 2)  # Jan 4: X and Y; Jan 11: X
    assert st[10] == pytest.approx((1 + 0) / 2)  # Y's call runs past 10:00 on Jan 4
    assert st[24 + 10] == pytest.approx(1.0)
    assert st.drop([9, 10, 34]).sum() == 0
    h = cal.handle
    assert sorted(h[(h["type"] == "A") & (h["agent"] == "")]["handle_s"]) == [600, 600]
    assert sorted(h[(h["type"] == "A") & (h["agent"] == "X")]["handle_s"]) == [600, 600]
    assert sorted(h[h["agent"] == "Y"]["handle_s"]) == [100, 900]  # Y's two type-B calls
    assert (calibrate(_history(), name="t", min_cell=3).handle["agent"] == "").all()  # cells below min_cell
    assert sorted(h[(h["type"] == "B") & (h["agent"] == "")]["handle_s"]) == [50, 100, 900]
    p = cal.patience[cal.patience["type"] == "A"]
    # queued type A: abandon at 30, 40; censored at 600, 600 -> S = 3/4, then 3/4 * 2/3
    np.testing.assert_allclose(p["t_s"], [30, 40])
    np.testing.assert_allclose(p["survival"], [0.75, 0.5])
    sc = cal.scenario
    assert sc["schema"] == "assign.scenario/1" and sc["policy"] == "fcfs"
    assert sc["agents"] == ["X", "Y"]  # most handle seconds first: X 1200 s, Y 1000 s
    assert sc["priority"] == {"share": pytest.approx(1 / 8), "credit_s": 90.0}
    assert {t["name"]: t["share"] for t in sc["types"]} == {"A": pytest.approx(4 / 8), "B": pytest.approx(4 / 8)}
    assert sc["start"].startswith("1999-01-04T00:00:00") and sc["days"] == 8.0
    assert cal.summary["left_out_abandoned_before_queue"] == 1
    assert cal.summary["days_missing"] == [f"1999-01-{d:02d}" for d in range(6, 11)]


def test_staffing_slots_and_observed_kpis():
    cal = calibrate(_history(), name="t", staffing_slot_s=1800, staffing_floor=0)
    st = cal.staffing.set_index("hour_of_week")["agents_estimate"]
    # hour 9, slots 9:00 and 9:30 on two Mondays: Jan 4 {X}, {Y}; Jan 11 {}, {X} -> 3 / 4
    assert st[9] == pytest.approx(3 / 4)
    assert st[10] == pytest.approx(1 / 4)
    assert st[24 + 10] == pytest.approx(1 / 2)  # Y at 10:00:10-10:01:50; unknown agent not counted
    floored = calibrate(_history(), name="t", staffing_slot_s=1800).staffing.set_index("hour_of_week")[
        "agents_estimate"
    ]
    assert floored[9] == 1.0 and floored[10] == 1.0 and floored[34] == 1.0  # served hours get >= 1 agent
    assert floored.drop([9, 10, 34]).sum() == 0  # no call served: nobody inferred
    with pytest.raises(InputError, match="staffing_slot_s"):
        calibrate(_history(), name="t", staffing_slot_s=7)
    k = observed_kpis(_history(), sl_threshold_s=20)
    assert k["offered"] == 8  # the VRU hang-up is not offered to the queue
    assert k["abandonment_rate"] == pytest.approx(3 / 8)
    assert k["service_level"] == pytest.approx(2 / 8)
    assert k["mean_wait_s"] == pytest.approx((600 + 30 + 600 + 600 + 40 + 10 + 20 + 5) / 8)


def test_hour_of_week_is_monday_based():
    ts = pd.Series(
        pd.to_datetime(["1999-01-04 00:30", "1999-01-10 23:59", "1999-01-06 13:00"], utc=True, format="ISO8601")
    )
    assert hour_of_week(ts).tolist() == [0, 167, 2 * 24 + 13]


def test_missing_columns_named():
    with pytest.raises(InputError) as err:
        calibrate(pd.DataFrame({"arrival_at": []}), name="x")
    assert "history.wait_s" in str(err.value) and "history.intent" in str(err.value)


def test_cli_calibrate_writes_a_loadable_scenario(tmp_path):
    hist = tmp_path / "h.parquet"
    r = CliRunner().invoke(main, ["ingest", "anonymous-bank", str(SAMPLE), "--out", str(hist)])
    assert r.exit_code == 0, r.output
    out = tmp_path / "scn"
    r = CliRunner().invoke(main, ["calibrate", str(hist), "--out", str(out), "--min-cell", "3"])
    assert r.exit_code == 0, r.output
    doc = json.loads((out / "scenario.json").read_text())
    for key in ("arrivals", "service", "patience", "staffing"):
        assert (out / doc[key]["table"]).is_file()
    replay = pd.read_parquet(out / "replay.parquet")
    assert json.loads((out / "observed.json").read_text())["offered"] == len(replay)
    h = pd.read_parquet(hist)
    assert len(replay) == len(h) - int((h["abandoned"] & ~h["entered_queue"]).sum())
    scenario = pytest.importorskip("assign.sim.scenario")
    if not hasattr(scenario, "load_scenario"):
        pytest.skip("assign.sim.scenario has no load_scenario yet")
    sc = scenario.load_scenario(out)
    assert set(sc.types) == set(h["intent"])
    r = CliRunner().invoke(main, ["calibrate", str(tmp_path / "nope.parquet"), "--out", str(out)])
    assert r.exit_code == 2 and "no such file" in r.output


def test_calibrated_sample_replays_in_the_simulator(tmp_path):
    """End to end on the fixture: ingest -> calibrate -> fcfs replay of the same stream."""
    engine = pytest.importorskip("assign.sim.engine")
    source = pytest.importorskip("assign.sim.source")
    scenario = pytest.importorskip("assign.sim.scenario")
    from assign.sim.calibrate import queue_population
    from assign.sim.policies import FCFS
    from assign.world.bank import read_anonymous_bank

    h = read_anonymous_bank(SAMPLE).history
    calibrate(h, name="sample", min_cell=3).write(tmp_path)
    sc = scenario.load_scenario(tmp_path)
    replay = h[queue_population(h)]
    src = source.ScenarioSource(sc, replay=replay)
    run = engine.simulate(source=src, policy=FCFS(), seed=0, config=engine.SimConfig(days=sc.days))
    assert run.n_contacts == len(replay)
    assert set(np.unique(run.status)) <= {engine.SERVED, engine.ABANDONED, engine.UNSERVED}


def test_docstring_examples_run():
    import doctest

    import assign.sim.calibrate as mod

    assert doctest.testmod(mod).failed == 0


def test_replay_gap_by_hour(tmp_path):
    from assign.sim.calibrate import kpis_by_hour, replay_gap

    obs = _history()
    by = kpis_by_hour(obs)
    assert by.loc["all", "offered"] == 8 and by.loc[9, "offered"] == 5  # 9h on both Mondays; VRU hang-up out
    assert by.loc[9, "abandonment_rate"] == pytest.approx(2 / 5)
    sim = obs[obs["entered_queue"].to_numpy(dtype=bool) | ~obs["abandoned"].to_numpy(dtype=bool)].copy()
    sim["status"] = "served"
    sim["wait_s"] = 0.0  # a perfect centre
    sim2 = sim.copy()
    sim2.loc[sim2.index[0], "status"] = "unserved"  # still queued at the end: neither served nor abandoned
    gap = replay_gap(obs, [sim, sim2])
    a = gap.loc["all"]
    assert a["abandonment_rate_sim"] == 0 and a["abandonment_rate_gap"] == pytest.approx(-3 / 8)
    assert a["service_level_sim_max"] == 1.0 and a["service_level_sim_min"] == pytest.approx(7 / 8)
    assert a["service_level_sim"] == pytest.approx((1 + 7 / 8) / 2)
    assert np.isnan(gap.loc[3, "service_level_sim"])  # no call at 3h
    with pytest.raises(InputError, match="no simulated log"):
        replay_gap(obs, [])
    hist, log = tmp_path / "h.parquet", tmp_path / "s.parquet"
    obs.to_parquet(hist)
    sim.to_parquet(log)
    r = CliRunner().invoke(
        main, ["replay-gap", str(hist), str(log), "--plot", str(tmp_path / "g.png"), "--csv", str(tmp_path / "g.csv")]
    )
    assert r.exit_code == 0, r.output
    assert "abandonment_rate" in r.output and (tmp_path / "g.png").stat().st_size > 0


def test_replay_gap_names_a_simulator_log_without_the_kpi_columns(tmp_path):
    obs = _history()
    hist, log = tmp_path / "h.parquet", tmp_path / "s.parquet"
    obs.to_parquet(hist)
    obs.drop(columns=["wait_s"]).to_parquet(log)
    r = CliRunner().invoke(main, ["replay-gap", str(hist), str(log)])
    assert r.exit_code == 2 and f"{log}: missing column(s) wait_s" in r.stderr


# --------------------------------------------------------------------------- --slot-minutes

def test_slot_staffing_by_hand_and_round_trip(tmp_path):
    """30-minute slots of the two Mondays: 9:00 {X} / {} -> 0.5, 9:30 {Y} / {X} -> 1, 10:00
    {Y} / {} -> 0.5; Tuesday 10:00 {Y} -> 1 (the unknown agent is not counted)."""
    from assign.sim.scenario import load_scenario, write_scenario
    from assign.sim.source import ScenarioSource

    cal = calibrate(_history(), name="t", staffing_floor=0, slot_minutes=30)
    doubled = calibrate(_history(), name="t", slot_minutes=30, capacity=CapacityModel(floor=0, share=2.0))
    expect = np.zeros(7 * 48, dtype=np.int64)
    expect[[18, 19, 20, 48 + 20]] = [1, 2, 1, 2]  # x2: 1, 2, 1 on Monday, 2 on Tuesday
    np.testing.assert_array_equal(doubled.staffing_slots["agents"].to_numpy(), expect)
    half_up = cal.staffing_slots.set_index("slot_of_week")["agents"]
    assert half_up[19] == 1 and half_up[48 + 20] == 1 and half_up.drop([19, 68]).sum() == 0  # 0.5 rounds to 0
    assert cal.staffing_slots.loc[19, ["weekday", "time"]].tolist() == ["Mon", "09:30"]
    floored = calibrate(_history(), name="t", slot_minutes=30)  # served slots get >= 1 agent
    assert floored.staffing_slots["agents"].to_numpy()[[18, 19, 20, 68]].tolist() == [1, 1, 1, 1]

    floored.write(tmp_path / "a")
    sc = load_scenario(tmp_path / "a")
    assert sc.staffing.slot_minutes == 30
    np.testing.assert_array_equal(sc.staffing.slots, floored.staffing_slots["agents"].to_numpy())
    np.testing.assert_array_equal(ScenarioSource(sc).slot_agents, sc.staffing.slots)
    write_scenario(sc, tmp_path / "b")
    again = load_scenario(tmp_path / "b")
    np.testing.assert_array_equal(again.staffing.slots, sc.staffing.slots)
    assert again.staffing.slot_minutes == 30
    plan = ScenarioSource(again).shifts(horizon_s=86400)  # the scenario starts on Monday 1999-01-04
    assert plan.t_s[plan.on].tolist() == [9 * 3600.0] and plan.t_s[~plan.on].tolist() == [10.5 * 3600]


def test_slot_staffing_follows_the_capacity_model():
    from assign.sim.fidelity import slot_capacity, slot_seen

    h = _history()
    seen = calibrate(h, name="t", slot_minutes=15, capacity=CapacityModel(share=0.8))
    np.testing.assert_array_equal(seen.staffing_slots["agents"], slot_seen(h, slot_s=900, share=0.8))
    bwq = calibrate(h, name="t", slot_minutes=15, capacity=CapacityModel(kind="busy-when-queued"))
    np.testing.assert_array_equal(bwq.staffing_slots["agents"], slot_capacity(h, slot_s=900))
    assert bwq.scenario["staffing"]["slots"] == {"minutes": 15, "table": "staffing_slots.csv"}
    assert "staffing_slots_method" in bwq.summary
    assert calibrate(h, name="t").staffing_slots is None  # off by default


@pytest.mark.parametrize("bad", [7, 0, -15, 90, 2.5, True])
def test_slot_minutes_must_divide_the_hour(bad):
    with pytest.raises(InputError, match="--slot-minutes"):
        calibrate(_history(), name="t", slot_minutes=bad)


def test_cli_slot_minutes(tmp_path):
    hist = tmp_path / "h.parquet"
    _history().to_parquet(hist)
    r = CliRunner().invoke(main, ["calibrate", str(hist), "--out", str(tmp_path / "bad"), "--slot-minutes", "7"])
    assert r.exit_code == 2 and "--slot-minutes" in r.output and "divisor of 60" in r.output
    assert not (tmp_path / "bad").exists()
    out = tmp_path / "ok"
    r = CliRunner().invoke(main, ["calibrate", str(hist), "--out", str(out), "--slot-minutes", "15"])
    assert r.exit_code == 0, r.output
    slots = pd.read_csv(out / "staffing_slots.csv")
    assert len(slots) == 7 * 96 and list(slots.columns) == ["slot_of_week", "weekday", "time", "agents"]
    r = CliRunner().invoke(main, ["simulate", "--scenario", str(out), "--replay", str(out / "replay.parquet"),
                                  "--policy", "fcfs", "--seeds", "1", "--days", "8", "--json"])
    assert r.exit_code == 0, r.output


def test_bad_slot_table_is_named(tmp_path):
    from assign.sim.scenario import load_scenario

    calibrate(_history(), name="t", slot_minutes=30).write(tmp_path)
    t = pd.read_csv(tmp_path / "staffing_slots.csv")
    t.iloc[:-1].assign(agents=lambda d: d["agents"].where(d.index != 3, 1.5)).to_csv(
        tmp_path / "staffing_slots.csv", index=False)
    with pytest.raises(InputError) as err:
        load_scenario(tmp_path)
    msg = str(err.value)
    assert "staffing_slots.csv row 5: agents must be a whole number" in msg and "each of the 336 slots" in msg
    doc = json.loads((tmp_path / "scenario.json").read_text())
    doc["staffing"]["slots"]["minutes"] = 7
    (tmp_path / "scenario.json").write_text(json.dumps(doc))
    with pytest.raises(InputError, match="staffing.slots.minutes"):
        load_scenario(tmp_path)


def test_what_if_scales_the_slots(tmp_path):
    from assign.sim.scenario import load_scenario
    from assign.sim.staffing import what_if

    calibrate(_history(), name="t", slot_minutes=30).write(tmp_path)
    sc = load_scenario(tmp_path)
    w = what_if(sc, staffing_scale=3.0, overrides=pd.DataFrame({"hour_of_week": [10], "agents": [5]}))
    expect = sc.staffing.slots * 3
    expect[20:22] = 5
    np.testing.assert_array_equal(w.staffing.slots, expect)
    assert w.staffing.slot_minutes == 30 and w.n_agents >= 5
