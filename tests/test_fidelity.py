"""Replay-fidelity variants: slot capacity, routing delay, slot shifts (hand-checked cases)."""
import numpy as np
import pandas as pd
import pytest

from assign.errors import InputError
from assign.history import conform_history
from assign.sim.calibrate import CapacityModel, calibrate
from assign.sim.fidelity import routing_delay, slot_capacity
from assign.sim.scenario import parse_scenario
from assign.sim.source import ScenarioSource

T = pd.Timestamp


def _hist(rows) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=["arrival_at", "wait_s", "abandoned", "handle_s", "agent_id", "customer_id"])
    df["arrival_at"] = pd.to_datetime(df["arrival_at"], utc=True)
    df["contact_id"] = [f"c{i}" for i in range(len(df))]
    df["channel"], df["intent"] = "voice", "PS"
    df["answered_at"] = df["arrival_at"] + pd.to_timedelta(df["wait_s"], unit="s")
    df.loc[df["abandoned"], "answered_at"] = pd.NaT
    return conform_history(df)


def _congested_monday() -> pd.DataFrame:
    return _hist([
        ("1999-01-04 09:00:00", 0, False, 600, "X", None),   # X and Y serve 9:00-9:10
        ("1999-01-04 09:00:00", 0, False, 600, "Y", None),
        ("1999-01-04 09:01:00", 540, False, 300, "X", None),  # queued 9:01-9:10 while 2 serve
        ("1999-01-04 09:11:00", 0, False, 120, "Y", None),    # 9:11-9:13: three in service, no queue
        ("1999-01-04 09:11:00", 0, False, 120, "Z", None),
        ("1999-01-04 09:20:00", 0, False, 60, "Y", None),     # no queue: the most in service, 1
    ])


def test_slot_capacity_by_hand_and_equal_to_calibrate_hourly():
    h = _congested_monday()
    quarter = slot_capacity(h, slot_s=900, floor=0)
    assert len(quarter) == 7 * 96
    assert quarter[36] == 2 and quarter[37] == 1 and quarter.sum() == 3  # 9:00-9:15 and 9:15-9:30
    hourly = slot_capacity(h, slot_s=3600, floor=0)
    cal = calibrate(h, name="t", capacity=CapacityModel(kind="busy-when-queued", floor=0))
    np.testing.assert_array_equal(hourly, cal.staffing["agents"].to_numpy())
    assert hourly[9] == 2
    only_anon = slot_capacity(h, slot_s=900, floor=0, congestion=np.zeros(len(h), bool))
    assert only_anon[36] == 3 and only_anon[37] == 1  # no congestion marked: the most in service at once
    assert slot_capacity(h, slot_s=900, floor=0, share=2.0)[36] == 4
    with pytest.raises(InputError, match="slot_s"):
        slot_capacity(h, slot_s=700)


def test_routing_delay_km_over_quiet_hours_only():
    h = _hist([
        *[(f"1999-01-04 10:{m:02d}:00", 0, False, 60, "X", None) for m in (0, 10, 20)],  # quiet hour
        ("1999-01-04 10:30:00", 10, False, 60, "X", "a"),
        ("1999-01-04 10:40:00", 30, False, 60, "X", "b"),
        ("1999-01-04 10:50:00", 20, True, None, None, "c"),   # hung up: censored at 20
        *[(f"1999-01-04 11:{m:02d}:00", w, False, 60, "X", None) for m, w in ((0, 0), (10, 5), (20, 0))],
        ("1999-01-04 11:30:00", 99, False, 60, "X", "d"),     # congested hour: not used
    ])
    t, s, n = routing_delay(h)
    assert n == 3
    np.testing.assert_allclose(t, [10, 30])
    np.testing.assert_allclose(s, [2 / 3, 0.0])
    with pytest.raises(InputError, match="routing delay"):
        routing_delay(h.iloc[-4:])  # no quiet hour
    with pytest.raises(InputError, match="routing delay"):
        routing_delay(h.drop(index=[3, 4]))  # the only identified caller left hung up


def _scenario(agents: int, patience_mean_s: float | None):
    return parse_scenario({
        "schema": "assign.scenario/1", "days": 1, "types": [{"name": "PS", "share": 1}],
        "arrivals": {"kind": "constant", "rate_per_hour": 1},
        "service": {"kind": "exponential", "mean_s": 30},
        "patience": None if patience_mean_s is None else {"kind": "exponential", "mean_s": patience_mean_s},
        "staffing": {"kind": "constant", "agents": agents}})


def test_slot_shifts_follow_the_slot_table():
    slots = np.zeros(7 * 96, dtype=np.int64)
    slots[36], slots[37], slots[38] = 2, 4, 1      # Monday 9:00, 9:15, 9:30
    src = ScenarioSource(_scenario(5, None), slot_agents=slots)
    plan = src.shifts(horizon_s=86400)
    on_at = {}
    level = 0
    for t, is_on in zip(plan.t_s, plan.on):
        level += 1 if is_on else -1
        on_at[t] = level
    assert on_at == {9 * 3600.0: 2, 9.25 * 3600: 4, 9.5 * 3600: 1, 9.75 * 3600: 0}
    with pytest.raises(InputError, match="slot_agents"):
        ScenarioSource(_scenario(5, None), slot_agents=np.zeros(100, dtype=np.int64))


# --------------------------------------------------------------------------- replayed roster

def _two_days() -> pd.DataFrame:
    """Monday 1999-01-04 and Tuesday 01-05: agents X, Y, Z serving in hand-picked slots."""
    return _hist([
        ("1999-01-04 09:00:00", 0, False, 600, "X", None),    # X: 9:00-9:10 (slot 36)
        ("1999-01-04 09:05:00", 0, False, 900, "Y", None),    # Y: 9:05-9:20 (slots 36, 37)
        ("1999-01-04 09:10:00", 0, False, 60, "X", None),     # X again in slot 36: counted once
        ("1999-01-04 09:40:00", 30, True, None, None, None),  # abandoned: no agent
        ("1999-01-05 10:00:00", 0, False, 120, "Z", None),    # Tuesday 10:00 (slot 96 + 40)
        ("1999-01-05 23:59:00", 0, False, 180, "Z", None),    # crosses midnight: slots 191 and 192
    ])


def test_roster_seen_by_hand():
    from assign.sim.fidelity import roster_seen

    r = roster_seen(_two_days(), slot_s=900, floor=0)
    assert pd.Timestamp(r.start) == T("1999-01-04", tz="UTC") and r.slot_s == 900
    assert len(r.agents) == 3 * 96  # first day to the end of the day after the last
    expect = np.zeros(3 * 96, dtype=np.int64)
    expect[36], expect[37], expect[96 + 40], expect[191], expect[192] = 2, 1, 1, 1, 1
    np.testing.assert_array_equal(r.agents, expect)
    half = roster_seen(_two_days(), slot_s=900, floor=0, share=0.5)
    assert half.agents[36] == 1 and half.agents[37] == 0  # 0.5 rounds to even: 0, no floor
    assert roster_seen(_two_days(), slot_s=900, floor=1, share=0.5).agents[37] == 1  # floor where seen
    hourly = roster_seen(_two_days(), slot_s=3600, floor=0)
    assert len(hourly.agents) == 72 and hourly.agents[9] == 2
    with pytest.raises(InputError, match="slot_s"):
        roster_seen(_two_days(), slot_s=700)
    with pytest.raises(InputError, match="share"):
        roster_seen(_two_days(), share=0.0)


def test_roster_of_a_one_week_history_is_slot_seen_times_the_share():
    """Over a week holding each weekday once, the dated roster is slot_seen of the same
    history (its weekday means are that one day's counts), slot for slot, for any share."""
    from assign.sim.fidelity import roster_seen, slot_seen

    rng = np.random.default_rng(7)
    n = 400
    arrive = T("1999-01-17", tz="UTC") + pd.to_timedelta(rng.uniform(0, 7 * 86400 - 4000, n), unit="s")
    h = _hist([(a, 0, bool(rng.random() < 0.1), float(rng.integers(30, 900)), f"A{rng.integers(12)}", None)
               for a in sorted(arrive)])
    h.loc[h["abandoned"], ["handle_s", "agent_id"]] = [np.nan, None]
    for share in (1.0, 0.85):
        r = roster_seen(h, slot_s=900, share=share)
        week = slot_seen(h, slot_s=900, share=share)
        t = pd.DatetimeIndex(pd.Timestamp(r.start) + pd.to_timedelta(np.arange(7 * 96) * 900, unit="s"))
        sow = t.day_of_week * 96 + t.hour * 4 + t.minute // 15
        np.testing.assert_array_equal(r.agents[:7 * 96], week[sow])
        assert r.agents.sum() > 0


def test_roster_overrides_the_periodic_staffing_over_its_span():
    """The scenario (5 agents at all hours, starting Monday 2026-01-05) with a roster for
    Tuesday 9:00-9:45: 2, 0, 3 agents; before and after it the periodic 5."""
    from assign.sim.source import Roster

    sc = _scenario(5, None)
    start = pd.Timestamp(sc.start)
    r = Roster(start=(start + pd.Timedelta(days=1, hours=9)).to_pydatetime(), slot_s=900,
               agents=np.array([2, 0, 3]))
    plan = ScenarioSource(sc, roster=r).shifts(horizon_s=3 * 86400)
    level, at = 0, {}
    for t, is_on in zip(plan.t_s, plan.on):
        level += 1 if is_on else -1
        at[t] = level
    day = 86400.0
    assert at == {0.0: 5, day + 9 * 3600: 2, day + 9.25 * 3600: 0, day + 9.5 * 3600: 3, day + 9.75 * 3600: 5}
    capped = ScenarioSource(sc, roster=Roster(start=start.to_pydatetime(), slot_s=3600, agents=np.array([9])))
    assert max(np.cumsum(np.where(capped.shifts(horizon_s=day).on, 1, -1))) == 5  # at most the scenario's agents
    with pytest.raises(InputError, match="roster.agents"):
        Roster(start=start.to_pydatetime(), slot_s=900, agents=np.array([1.5, -1]))
    with pytest.raises(InputError, match="roster.slot_s"):
        Roster(start=start.to_pydatetime(), slot_s=0, agents=np.array([1]))


def test_replay_with_its_own_roster_is_deterministic_per_seed():
    """A history replayed with its own roster: same seed, same run; nobody on the roster in a
    slot means its callers wait; the roster is read from the replayed rows only."""
    from assign.sim.engine import SimConfig, simulate
    from assign.sim.fidelity import replay_kpis, roster_seen
    from assign.sim.policies import FCFS

    h = _two_days()
    sc = parse_scenario({
        "schema": "assign.scenario/1", "start": "1999-01-04T00:00:00+00:00", "days": 2,
        "types": [{"name": "PS", "share": 1}], "arrivals": {"kind": "constant", "rate_per_hour": 1},
        "service": {"kind": "exponential", "mean_s": 60},
        "patience": {"kind": "exponential", "mean_s": 600}, "staffing": {"kind": "constant", "agents": 3}})
    roster = roster_seen(h, slot_s=900)

    def run(seed: int):
        src = ScenarioSource(sc, replay=h, roster=roster)
        return simulate(source=src, policy=FCFS(), seed=seed, config=SimConfig(days=3))

    a, b, c = run(1), run(1), run(2)
    np.testing.assert_array_equal(a.wait_s, b.wait_s)
    np.testing.assert_array_equal(a.handle_s, b.handle_s)
    assert pd.Series(replay_kpis(a)).equals(pd.Series(replay_kpis(b)))
    assert not np.array_equal(a.handle_s, c.handle_s, equal_nan=True)
    # 9:40 Monday: nobody was seen serving in that slot, so the replayed caller cannot be answered at once
    i = int(np.flatnonzero(np.isclose(a.stream.arrival_s, 9 * 3600 + 40 * 60))[0])
    assert a.wait_s[i] > 0
