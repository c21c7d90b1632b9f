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
