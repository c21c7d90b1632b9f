"""The engine's pre-routing delay (``ContactStream.routable_after_s``) and its calibration.

Hand-checked cases: no contact starts service before arrival + delay; waits, service level
and patience count from arrival; a caller whose patience ends during the delay abandons; a
stream without delays runs exactly as before; the delay model read from a calibration
window does not depend on anything after it.
"""
import json

import numpy as np
import pandas as pd
import pytest

from assign.errors import InputError
from assign.history import conform_history
from assign.sim.calibrate import calibrate
from assign.sim.engine import ABANDONED, SERVED, UNSERVED, SimConfig, simulate
from assign.sim.fidelity import delay_model, post_call_gap, replay_kpis, slot_seen
from assign.sim.policies import FCFS
from assign.sim.scenario import load_scenario, parse_scenario, write_scenario
from assign.sim.source import RoutingDelay, ScenarioSource

START = pd.Timestamp("2026-01-05", tz="UTC")  # the scenario's default start (a Monday)


def _hist(rows) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=["arrival_at", "wait_s", "abandoned", "handle_s", "agent_id", "customer_id"])
    df["arrival_at"] = pd.to_datetime(df["arrival_at"], utc=True)
    df["contact_id"] = [f"c{i:03d}" for i in range(len(df))]
    df["channel"], df["intent"] = "voice", "PS"
    df["answered_at"] = df["arrival_at"] + pd.to_timedelta(df["wait_s"], unit="s")
    df.loc[df["abandoned"], "answered_at"] = pd.NaT
    return conform_history(df)


def _scenario(agents: int, *, patience_mean_s: float | None = None, service_mean_s: float = 30.0):
    return parse_scenario({
        "schema": "assign.scenario/1", "days": 1, "types": [{"name": "PS", "share": 1}],
        "arrivals": {"kind": "constant", "rate_per_hour": 1},
        "service": {"kind": "exponential", "mean_s": service_mean_s},
        "patience": None if patience_mean_s is None else {"kind": "exponential", "mean_s": patience_mean_s},
        "staffing": {"kind": "constant", "agents": agents}})


def _fixed(delay_s: float) -> RoutingDelay:
    """Every identified caller waits exactly ``delay_s`` before it can be routed."""
    curve = (np.array([delay_s]), np.array([0.0]))
    return RoutingDelay(curves={}, pooled=curve)


def _every(minutes: float, n: int, *, every_other_identified: bool = True):
    return _hist([(START + pd.Timedelta(minutes=minutes * i), 0, False, 30, "X",
                   (f"id{i}" if i % 2 == 0 else None) if every_other_identified else f"id{i}") for i in range(n)])


def _run(src, *, days=0.5, seed=3):
    return simulate(source=src, policy=FCFS(), seed=seed, config=SimConfig(days=days))


def test_no_service_before_arrival_plus_delay_and_waits_count_from_arrival():
    src = ScenarioSource(_scenario(5), replay=_every(10, 40), routing_delay=_fixed(25.0))
    run = _run(src)
    d = run.stream.routable_after_s
    ident = np.array([c is not None for c in run.stream.block.customer_id])
    np.testing.assert_array_equal(d, np.where(ident, 25.0, 0.0))
    assert np.all(run.status == SERVED)
    start = run.stream.arrival_s + run.wait_s
    assert np.all(start >= run.stream.arrival_s + d - 1e-9)
    # agents are free: served the moment they are routable; the wait (from arrival) is the delay
    np.testing.assert_allclose(run.wait_s, d)
    k = replay_kpis(run)
    assert k["service_level"] == pytest.approx(0.5)   # identified callers wait 25 s > 20 s
    assert k["asa_s"] == pytest.approx(25 * 20 / 40)


def test_windowed_routing_respects_the_delay_too():
    """Micro-batches (5-s window) under load: still nobody starts before arrival + delay."""
    rep = _hist([(START + pd.Timedelta(seconds=20 * i), 0, False, 30, "X", f"id{i}" if i % 3 else None)
                 for i in range(400)])
    src = ScenarioSource(_scenario(2, patience_mean_s=120.0, service_mean_s=60.0), replay=rep,
                         routing_delay=RoutingDelay(curves={}, pooled=(np.array([10.0, 40.0]), np.array([0.5, 0.0]))))
    run = simulate(source=src, policy=FCFS(), seed=1, config=SimConfig(days=0.2, window_s=5.0))
    d, served = run.stream.routable_after_s, run.status == SERVED
    assert served.sum() > 100 and (run.status == ABANDONED).any() and set(np.unique(d)) == {0.0, 10.0, 40.0}
    start = run.stream.arrival_s + run.wait_s
    assert np.all(start[served] >= run.stream.arrival_s[served] + d[served] - 1e-9)
    ab = run.status == ABANDONED
    np.testing.assert_allclose(run.wait_s[ab], run.stream.patience_s[ab])


def test_delay_under_congestion_respects_queue_order_from_arrival():
    """One agent, 100-s handle times: a delayed caller who arrived first is served before one
    who arrived later without delay but was already routable (order by arrival - credit)."""
    sc = parse_scenario({
        "schema": "assign.scenario/1", "days": 1, "types": [{"name": "PS", "share": 1}],
        "arrivals": {"kind": "constant", "rate_per_hour": 1},
        "service": {"kind": "lognormal", "mean_s": 100.0, "cv": 1e-9},
        "staffing": {"kind": "constant", "agents": 1}})
    rows = [(START, 0, False, 100, "X", None),                       # busy 0..100
            (START + pd.Timedelta(seconds=10), 0, False, 100, "X", "id"),   # routable at 40
            (START + pd.Timedelta(seconds=20), 0, False, 100, "X", None)]   # routable at 20
    src = ScenarioSource(sc, replay=_hist(rows), routing_delay=_fixed(30.0))
    run = _run(src, days=0.1)
    starts = run.stream.arrival_s + run.wait_s
    np.testing.assert_allclose(starts, [0.0, 100.0, 200.0], atol=1e-6)
    np.testing.assert_allclose(run.wait_s, [0.0, 90.0, 180.0], atol=1e-6)


def test_abandonment_during_the_delay():
    """Patience runs from arrival: with exponential patience of mean 20 s and a 25-s delay,
    identified callers whose patience is below 25 s abandon (wait = patience) and are never
    routed; the others are served at 25 s."""
    src = ScenarioSource(_scenario(5, patience_mean_s=20.0), replay=_every(10, 60, every_other_identified=False),
                         routing_delay=_fixed(25.0))
    run = _run(src)
    p = run.stream.patience_s
    early = p <= 25.0
    assert early.any() and (~early).any()
    np.testing.assert_array_equal(run.status[early], ABANDONED)
    np.testing.assert_allclose(run.wait_s[early], p[early])
    np.testing.assert_array_equal(run.status[~early], SERVED)
    np.testing.assert_allclose(run.wait_s[~early], 25.0)
    k = replay_kpis(run)
    assert k["abandonment_rate"] == pytest.approx(early.mean())
    assert np.all(run.agent[early] == -1)


def test_delayed_at_the_end_of_the_run_is_closed_like_the_queue():
    rows = [(START, 0, False, 30, "X", "a")]
    src = ScenarioSource(_scenario(1, patience_mean_s=1e9), replay=_hist(rows), routing_delay=_fixed(5000.0))
    run = simulate(source=src, policy=FCFS(), seed=0, config=SimConfig(days=0.01, drain_s=60.0))
    assert run.status[0] == UNSERVED and run.wait_s[0] == pytest.approx(run.end_s)  # as a queued contact


def test_zero_delay_runs_exactly_as_without():
    """A stream whose delays are all 0 (unidentified callers only) gives the same run."""
    rep = _hist([(START + pd.Timedelta(seconds=37 * i), 0, False, 30, "X", None) for i in range(300)])
    a = _run(ScenarioSource(_scenario(2, patience_mean_s=60.0, service_mean_s=80.0), replay=rep))
    b = _run(ScenarioSource(_scenario(2, patience_mean_s=60.0, service_mean_s=80.0), replay=rep,
                            routing_delay=_fixed(25.0)))
    assert a.stream.routable_after_s is None and not b.stream.routable_after_s.any()
    for col in ("status", "wait_s", "agent", "handle_s"):
        np.testing.assert_array_equal(getattr(a, col), getattr(b, col))
    assert (a.status == ABANDONED).any() and (a.wait_s > 0).any()  # a congested case, not a trivial one


def _window_and_after():
    """Two quiet hours (unidentified callers all answered at once): one in the calibration
    window, one after it, with identified callers whose waits differ."""
    quiet = lambda day, hour, ident_waits: [
        *[(f"1999-01-{day:02d} {hour}:{m:02d}:00", 0, False, 60, "X", None) for m in (0, 10, 20)],
        *[(f"1999-01-{day:02d} {hour}:{30 + 5 * i:02d}:00", w, False, 60, "X", f"c{day}{i}")
          for i, w in enumerate(ident_waits)]]
    return _hist([*quiet(4, 10, [10, 30, 30, 50]), *quiet(25, 10, [200, 300, 400, 500])])


def test_delay_model_comes_from_the_calibration_window_only():
    h = _window_and_after()
    window = h[h["arrival_at"] < pd.Timestamp("1999-01-24", tz="UTC")]
    m = delay_model(window, min_calls=1)
    t, s = m.curves["PS"]
    np.testing.assert_allclose(t, [10, 30, 50])
    np.testing.assert_allclose(s, [0.75, 0.25, 0.0])
    # changing everything after the window changes nothing in the window's model
    later = h.assign(wait_s=np.where(h["arrival_at"] >= pd.Timestamp("1999-01-24", tz="UTC"), 999.0, h["wait_s"]))
    m2 = delay_model(later[later["arrival_at"] < pd.Timestamp("1999-01-24", tz="UTC")], min_calls=1)
    np.testing.assert_array_equal(m2.curves["PS"][0], t)
    # the whole month's model does see the later hour: the cut matters
    assert delay_model(h, min_calls=1).curves["PS"][0].max() == 500
    # a type under min_calls falls back to the pooled curve
    assert delay_model(window, min_calls=5).curves == {}


def test_delay_draws_per_type_and_scale():
    d = RoutingDelay(curves={"A": (np.array([10.0]), np.array([0.0]))}, pooled=(np.array([40.0]), np.array([0.0])),
                     scale=0.5)
    out = d.draw(np.random.default_rng(0), types=("A", "B"), typ=np.array([0, 1, 0, 1]),
                 identified=np.array([True, True, False, True]))
    np.testing.assert_allclose(out, [5.0, 20.0, 0.0, 20.0])


def test_slot_seen_by_hand():
    h = _hist([("1999-01-04 09:00:00", 0, False, 600, "X", None),    # X: 9:00-9:10 (slot 36)
               ("1999-01-04 09:14:00", 0, False, 120, "Y", None),    # Y: 9:14-9:16 (slots 36, 37)
               ("1999-01-04 09:40:00", 0, False, 60, "X", None)])    # X: slot 38
    q = slot_seen(h, slot_s=900, floor=0)
    assert len(q) == 7 * 96 and q[36] == 2 and q[37] == 1 and q[38] == 1 and q.sum() == 4
    assert slot_seen(h, slot_s=900, floor=0, share=0.5)[36] == 1
    with pytest.raises(InputError, match="slot_s"):
        slot_seen(h, slot_s=700)


def test_scenario_carries_the_routing_delay_and_replays_use_it(tmp_path):
    """``calibrate(..., routing_delay=True)`` writes routing_delay.csv from its history only;
    the scenario reads it back; a replay of that scenario delays its identified callers."""
    h = _window_and_after()
    window = h[h["arrival_at"] < pd.Timestamp("1999-01-24", tz="UTC")]
    cal = calibrate(window, name="t", routing_delay=True)
    cal.write(tmp_path / "sc")
    sc = load_scenario(tmp_path / "sc")
    t, s = sc.routing_delay.pooled
    np.testing.assert_allclose(t, [10, 30, 50])           # weeks before the cut only (not 200..500)
    np.testing.assert_allclose(s, [0.75, 0.25, 0.0])
    assert sc.routing_delay.curves == {}                   # 4 calls: under the 30 of a type's own curve
    assert cal.summary["routing_delay_calls"] == 4
    write_scenario(sc, tmp_path / "again")
    np.testing.assert_array_equal(load_scenario(tmp_path / "again").routing_delay.pooled[0], t)
    run = _run(ScenarioSource(sc, replay=window), days=4)
    ident = np.array([c is not None for c in run.stream.block.customer_id])
    assert np.all(run.stream.routable_after_s[ident] >= 10) and not run.stream.routable_after_s[~ident].any()
    assert calibrate(window, name="t").routing_delay is None
    assert "routing_delay" not in calibrate(window, name="t").scenario


def test_bad_routing_delay_table_names_every_problem(tmp_path):
    write_scenario(_scenario(2), tmp_path)
    doc = json.loads((tmp_path / "scenario.json").read_text())
    doc["routing_delay"] = {"kind": "empirical", "table": "routing_delay.csv", "applies_to": "everyone"}
    (tmp_path / "scenario.json").write_text(json.dumps(doc))
    pd.DataFrame({"type": ["PS", "PS", "XX"], "t_s": [10, 5, 1], "survival": [0.5, 0.9, 0.0]}).to_csv(
        tmp_path / "routing_delay.csv", index=False)
    with pytest.raises(InputError) as err:
        load_scenario(tmp_path)
    msg = str(err.value)
    assert "applies_to" in msg and "'XX'" in msg and "no pooled curve" in msg


def test_post_call_gap_by_hand():
    """Agent X ends a call at 9:05:00; the caller waiting since 9:04:00 is answered at 9:05:07
    (gap 7 s); the one waiting since 9:06:00 at 9:07:03 after X ended at 9:07:00 (gap 3 s);
    an answer to a caller who arrived after the agent was free does not count."""
    h = _hist([("1999-01-04 09:00:00", 0, False, 300, "X", None),     # 9:00:00-9:05:00
               ("1999-01-04 09:04:00", 67, False, 113, "X", None),    # answered 9:05:07, ends 9:07:00
               ("1999-01-04 09:06:00", 63, False, 60, "X", "a"),      # answered 9:07:03
               ("1999-01-04 09:30:00", 0, False, 60, "X", None)])     # agent idle before: not a gap
    h["ended_at"] = h["answered_at"] + pd.to_timedelta(h["handle_s"], unit="s")
    assert post_call_gap(h) == (5.0, 2)
    with pytest.raises(InputError, match="ended_at"):
        post_call_gap(h.drop(columns=["ended_at"]))


def test_benchmark_builds_the_delay_from_its_window_only(tmp_path):
    """``benchmarks.replay_fidelity.build`` gets the calibration window; its routing delay is
    that window's, whatever comes after the cut."""
    from benchmarks.replay_fidelity import Candidate, build

    h = _window_and_after()
    cut = pd.Timestamp("1999-01-24", tz="UTC")
    cand = Candidate("t", slot_s=900, congestion="unidentified", delay="type")
    kw = build(cand, h[h["arrival_at"] < cut], share=1.0, scale=1.0, out=tmp_path)
    np.testing.assert_allclose(kw["routing_delay"].pooled[0], [10, 30, 50])
    assert len(kw["slot_agents"]) == 7 * 96


def test_benchmark_replayed_roster_comes_from_the_replayed_rows(tmp_path, monkeypatch):
    """A ``roster="replayed"`` candidate builds no weekday staffing from the window; its replay
    gets the roster of the rows it replays (times the share), not of the calibration window."""
    import benchmarks.replay_fidelity as bench

    h = _window_and_after()
    h["ended_at"] = h["answered_at"] + pd.to_timedelta(h["handle_s"], unit="s")
    cut = pd.Timestamp("1999-01-24", tz="UTC")
    cand = bench.Candidate("t", slot_s=900, capacity="seen", delay="type", wrap_up=False, roster="replayed")
    kw = bench.build(cand, h[h["arrival_at"] < cut], share=0.5, scale=1.0, out=tmp_path)
    assert "slot_agents" not in kw
    seen = []
    real = bench.roster_seen

    def spy(history, **k):
        seen.append((history["arrival_at"].min(), k["share"]))
        return real(history, **k)

    monkeypatch.setattr(bench, "roster_seen", spy)
    later = h[h["arrival_at"] >= cut]
    sim, _ = bench.replay(cand, tmp_path, kw, later, seeds=[0])
    assert seen == [(later["arrival_at"].min(), 0.5)] and sim["service_level"] >= 0
