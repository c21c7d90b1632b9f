"""Calibrate a simulator scenario from a contact history (``assign calibrate``).

Writes the scenario directory format ``assign.scenario/1`` (read by :mod:`assign.sim`):
arrival rates per type and hour of week, empirical handle times per type (and per
type × agent where a cell has enough calls), Kaplan–Meier patience per type (abandonment
is the event, a served call is censored at its wait), and staffing per hour of week
inferred from the agents seen serving.

The queue population is the calls that reached the queue: every served call plus the
abandoned calls that entered the queue (``entered_queue``, when the history has it).
Calls that hung up in the voice unit before queueing never waited for an agent and are
left out of arrivals and patience (counted in ``calibration.json``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from assign.constants import DAY_S, HOURS_PER_WEEK
from assign.errors import InputError
from assign.history import epoch_seconds
from assign.validate import Problems

SCHEMA = "assign.scenario/1"
_NEEDED = ("arrival_at", "intent", "wait_s", "abandoned", "handle_s", "agent_id")


def kaplan_meier(times: np.ndarray, events: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Kaplan–Meier estimate of the survival function of right-censored data.

    Returns the distinct event times and the survival just after each (a step function,
    1 before the first time). At a tied time, censored observations count as still at
    risk (the usual convention: the event happens first).

    >>> t, s = kaplan_meier(np.array([1., 2., 2., 3.]), np.array([True, True, False, True]))
    >>> [round(float(x), 4) for x in s]
    [0.75, 0.5, 0.0]
    """
    times = np.asarray(times, dtype=float)
    events = np.asarray(events, dtype=bool)
    if times.shape != events.shape:
        raise InputError([f"kaplan_meier: times {times.shape} and events {events.shape} differ in shape"])
    if np.any(~np.isfinite(times)) or np.any(times < 0):
        raise InputError(["kaplan_meier: times must be finite and >= 0"])
    uniq, inv = np.unique(times, return_inverse=True)
    n_total = np.bincount(inv, minlength=len(uniq))
    d = np.bincount(inv, weights=events.astype(float), minlength=len(uniq))
    at_risk = len(times) - np.concatenate([[0], np.cumsum(n_total)[:-1]])
    has_event = d > 0
    surv = np.cumprod(1.0 - d[has_event] / at_risk[has_event])
    return uniq[has_event], surv


def queue_population(history: pd.DataFrame) -> np.ndarray:
    """Boolean mask of the calls that reached the queue (see the module doc)."""
    served = ~history["abandoned"].astype("boolean").fillna(False).to_numpy(dtype=bool)
    if "entered_queue" in history:
        return served | history["entered_queue"].astype("boolean").fillna(True).to_numpy(dtype=bool)
    return np.ones(len(history), dtype=bool)


def observed_kpis(history: pd.DataFrame, *, sl_threshold_s: float = 20.0) -> dict[str, float]:
    """The logged KPIs of the queue population, with the simulator's own definitions
    (:func:`assign.sim.kpis.kpis_of`), to set next to a replay of the same stream."""
    from assign.sim.engine import ABANDONED, SERVED
    from assign.sim.kpis import kpis_of

    h = history[queue_population(history)]
    served = ~h["abandoned"].astype("boolean").fillna(False).to_numpy(dtype=bool)
    nan = np.full(len(h), np.nan)
    k = kpis_of(status=np.where(served, SERVED, ABANDONED), wait_s=h["wait_s"].to_numpy(dtype=float),
                handle_s=h["handle_s"].to_numpy(dtype=float), resolved=nan, csat=nan, truth_p=nan,
                sl_threshold_s=sl_threshold_s)
    return {key: v for key, v in k.items() if np.isfinite(v)}


@dataclass(frozen=True)
class Calibration:
    """A calibrated scenario: the JSON document and its tables."""

    scenario: dict
    arrivals: pd.DataFrame
    handle: pd.DataFrame
    patience: pd.DataFrame
    staffing: pd.DataFrame
    summary: dict = field(default_factory=dict)
    routing_delay: pd.DataFrame | None = None
    staffing_slots: pd.DataFrame | None = None

    def write(self, out_dir: str | Path) -> Path:
        """Write ``scenario.json``, the four CSV tables and ``calibration.json`` (counts
        and method notes) into ``out_dir``; returns the scenario.json path."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        self.arrivals.to_csv(out / "arrivals.csv", index=False)
        self.handle.to_csv(out / "handle.csv", index=False)
        self.patience.to_csv(out / "patience.csv", index=False)
        self.staffing.to_csv(out / "staffing.csv", index=False)
        if self.routing_delay is not None:
            self.routing_delay.to_csv(out / "routing_delay.csv", index=False)
        if self.staffing_slots is not None:
            self.staffing_slots.to_csv(out / "staffing_slots.csv", index=False)
        (out / "calibration.json").write_text(json.dumps(self.summary, indent=2, default=str) + "\n")
        path = out / "scenario.json"
        path.write_text(json.dumps(self.scenario, indent=2) + "\n")
        return path


def hour_of_week(ts: pd.Series) -> np.ndarray:
    """0 = Monday 00h ... 167 = Sunday 23h, on the history's own clock."""
    ts = pd.to_datetime(ts, utc=True)
    return (ts.dt.day_of_week * 24 + ts.dt.hour).to_numpy(dtype=np.int64)


def _check(history: pd.DataFrame) -> None:
    problems = [f"history.{c}: required column is missing" for c in _NEEDED if c not in history]
    if not problems and not len(history):
        problems.append("history: no rows")
    if problems:
        raise InputError(problems, what="history")


CAPACITY_MODELS = ("seen", "busy-when-queued")


@dataclass(frozen=True, kw_only=True)
class CapacityModel:
    """How the staffing the log does not record is inferred (see docs/real-data.md).

    ``kind``: ``seen`` (distinct agents seen serving per ``slot_s`` slot) or
    ``busy-when-queued`` (calls in service while a call waits: the log's own congestion).
    ``share`` scales the inferred agents (a calibrated availability share); ``wrap_up_s`` is
    after-call work added to every handle time in the simulator (agents busy, caller gone).
    ``floor``: the least staffing of an hour of week in which any call was served.
    """

    kind: str = "seen"
    slot_s: int = 900
    floor: float = 1.0
    share: float = 1.0
    wrap_up_s: float = 0.0
    min_queued_s: float = 60.0

    def check(self, p: Problems) -> None:
        p.choice("capacity.kind", self.kind, CAPACITY_MODELS)
        if not (isinstance(self.slot_s, int) and 0 < self.slot_s <= 3600 and 3600 % self.slot_s == 0):
            p.add("staffing_slot_s", f"must be a whole divisor of 3600, got {self.slot_s!r}")
        p.number("staffing_floor", self.floor, lo=0)
        p.number("capacity.share", self.share, lo=0, lo_open=True, hi=100)
        p.number("capacity.wrap_up_s", self.wrap_up_s, lo=0, hi=DAY_S)
        p.number("capacity.min_queued_s", self.min_queued_s, lo=0, hi=3600)


def calibrate(history: pd.DataFrame, *, name: str, min_cell: int = 30, credit_s: float = 90.0,
              staffing_slot_s: int = 900, staffing_floor: float = 1.0,
              capacity: CapacityModel | None = None, routing_delay: bool = False,
              slot_minutes: int | None = None) -> Calibration:
    """Fit every table of the scenario from ``history`` (the history contract).

    ``min_cell``: a type × agent cell gets its own handle-time rows only with at least this
    many served calls; the type-wide rows (empty agent) are always written.
    ``staffing_slot_s`` / ``staffing_floor``: shorthands for the ``seen`` capacity model's
    slot and floor (ignored when ``capacity`` is given). ``credit_s``: the priority class's
    virtual waiting credit. ``routing_delay``: also estimate the pre-routing delay of
    identified callers (:func:`assign.sim.fidelity.delay_model`, ``routing_delay.csv``).
    ``slot_minutes``: also write staffing per slot of week of that many minutes
    (``staffing_slots.csv``, by the same capacity model, share and floor), which the simulator
    then follows instead of the hourly table.
    """
    _check(history)
    cap = capacity or CapacityModel(slot_s=staffing_slot_s, floor=staffing_floor)
    p = Problems()
    p.number("min_cell", min_cell, lo=1, integer=True)
    p.number("credit_s", credit_s, lo=0, hi=DAY_S)
    cap.check(p)
    if slot_minutes is not None and (isinstance(slot_minutes, bool) or not isinstance(slot_minutes, int)
                                     or not 0 < slot_minutes <= 60 or 60 % slot_minutes):
        p.add("--slot-minutes", f"must be a whole divisor of 60 (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60), "
              f"got {slot_minutes!r}")
    p.raise_if_any(what="calibration")
    served = ~history["abandoned"].astype("boolean").fillna(False).to_numpy(dtype=bool)
    if not served.any():
        raise InputError([("history: no served call, so no handle time and no staffing can be calibrated "
                          "(a scenario needs both)")], what="history")
    inq = queue_population(history)
    types = sorted(history["intent"].astype(str).unique())
    intent = history["intent"].astype(str).to_numpy()
    arrival = pd.to_datetime(history["arrival_at"], utc=True)
    present = pd.DatetimeIndex(arrival.dt.normalize().unique()).sort_values()
    arrivals = _arrival_table(arrival, intent=intent, inq=inq, types=types, present=present)
    handle, no_sample, cells = _handle_table(history, intent=intent, served=served, types=types, min_cell=min_cell)
    patience = _patience_table(history, intent=intent, served=served, inq=inq, types=types)
    staffing, staff_note = _staffing_table(history, served=served, present=present, cap=cap)
    scenario = _scenario_doc(history, name=name, types=types, intent=intent, inq=inq, served=served,
                             present=present, credit_s=credit_s, wrap_up_s=cap.wrap_up_s)
    all_days = pd.date_range(present[0], present[-1], freq="D")
    h = history["handle_s"].to_numpy(dtype=float)
    summary = {
        "rows": len(history), "queue_population": int(inq.sum()),
        "left_out_abandoned_before_queue": int((~inq).sum()),
        "served": int(served.sum()), "abandoned_in_queue": int((inq & ~served).sum()),
        "served_without_handle_time": int((served & ~np.isfinite(h)).sum()),
        "first_arrival": arrival.min().isoformat(), "last_arrival": arrival.max().isoformat(),
        "days_present": len(present),
        "days_missing": [d.date().isoformat() for d in all_days.difference(present)],
        "days_present_per_weekday_mon_first": np.bincount(present.day_of_week, minlength=7).tolist(),
        "handle_types_with_pooled_sample": no_sample,
        "patience_types_without_abandonment": [t for t in types if not (inq & (intent == t) & ~served).any()],
        "handle_cells_type_x_agent": cells, "min_cell": min_cell,
        "capacity_model": {"kind": cap.kind, "slot_s": cap.slot_s, "floor": cap.floor, "share": cap.share,
                           "wrap_up_s": cap.wrap_up_s, "min_queued_s": cap.min_queued_s},
        "staffing_method": staff_note,
        "arrival_method": "calls reaching the queue per (type, hour of week) divided by the number "
                          "of days of that weekday present in the log (days with no record are "
                          "treated as missing, not as zero-arrival days)",
    }
    delay = _routing_delay_table(history, scenario, summary) if routing_delay else None
    slots = _slot_staffing_table(history, cap, slot_minutes, scenario, summary) if slot_minutes else None
    return Calibration(scenario, arrivals, handle, patience, staffing, summary, delay, slots)


def _slot_staffing_table(history: pd.DataFrame, cap: CapacityModel, minutes: int, scenario: dict,
                         summary: dict) -> pd.DataFrame:
    """Staffing per slot of week (``staffing_slots.csv``), its scenario entry and notes: the
    capacity model per slot, not averaged within the hour (:func:`assign.sim.fidelity.slot_seen`,
    :func:`~assign.sim.fidelity.slot_capacity`)."""
    from assign.sim.fidelity import slot_capacity, slot_seen
    from assign.sim.scenario import slot_table

    slot_s = minutes * 60
    if cap.kind == "seen":
        agents = slot_seen(history, slot_s=slot_s, floor=cap.floor, share=cap.share)
    else:
        agents = slot_capacity(history, slot_s=slot_s, floor=cap.floor, share=cap.share,
                               min_queued_s=cap.min_queued_s)
    scenario["staffing"]["slots"] = {"minutes": minutes, "table": "staffing_slots.csv"}
    summary["staffing_slots_method"] = (
        f"{cap.kind} per {minutes}-minute slot of week: per (day, slot) as the hourly method, mean over the days "
        f"present of that weekday, times the share {cap.share:g}, at least {cap.floor:g} agent(s) where any call "
        "was served, rounded to whole agents; the simulator follows these slots instead of staffing.csv")
    return slot_table(agents)


def _routing_delay_table(history: pd.DataFrame, scenario: dict, summary: dict) -> pd.DataFrame:
    """The routing delay's table (pooled curve: empty type), its scenario entry and notes."""
    from assign.sim.fidelity import delay_model, routing_delay

    d = delay_model(history)
    rows = [(t, x, y) for t, (xs, ys) in [("", d.pooled), *d.curves.items()] for x, y in zip(xs, ys)]
    scenario["routing_delay"] = {"kind": "empirical", "applies_to": "identified", "table": "routing_delay.csv"}
    summary["routing_delay_method"] = (
        "identified callers (a customer id) are routable only after a delay; Kaplan-Meier of their waits "
        "(answered = event, hung up = censored) in the (day, clock hour) cells where at least 3 unidentified "
        "callers were all answered at once; own curve for a type with 30+ such calls, else the pooled one")
    summary["routing_delay_calls"] = routing_delay(history)[2]
    summary["routing_delay_types_with_own_curve"] = sorted(d.curves)
    return pd.DataFrame(rows, columns=["type", "t_s", "survival"])


def _arrival_table(arrival: pd.Series, *, intent: np.ndarray, inq: np.ndarray, types: list[str],
                   present: pd.DatetimeIndex) -> pd.DataFrame:
    """Calls per (type, hour of week) / days of that weekday present in the log."""
    days_per_weekday = np.bincount(present.day_of_week, minlength=7)
    how = hour_of_week(arrival)
    grid = pd.MultiIndex.from_product([types, range(HOURS_PER_WEEK)], names=["type", "hour_of_week"])
    counts = pd.Series(1, index=pd.MultiIndex.from_arrays([intent[inq], how[inq]])).groupby(level=[0, 1]).sum()
    counts = counts.reindex(grid, fill_value=0)
    occ = days_per_weekday[np.arange(HOURS_PER_WEEK) // 24]
    rate = counts.to_numpy().reshape(len(types), HOURS_PER_WEEK) / np.where(occ > 0, occ, np.nan)
    return pd.DataFrame({"type": grid.get_level_values(0), "hour_of_week": grid.get_level_values(1),
                         "rate_per_hour": np.nan_to_num(rate.ravel(), nan=0.0)})


def _handle_table(history: pd.DataFrame, *, intent: np.ndarray, served: np.ndarray, types: list[str],
                  min_cell: int) -> tuple[pd.DataFrame, list[str], int]:
    """Observed handle times to resample, per type and per well-filled type × agent cell.
    A type with no served call borrows every type's pooled sample (listed in the summary)."""
    h = history["handle_s"].to_numpy(dtype=float)
    ok = served & np.isfinite(h)
    if not ok.any():
        raise InputError(["history.handle_s: no served call has a handle time"], what="history")
    agent = history["agent_id"].astype("string").fillna("").to_numpy(dtype=object)
    base = pd.DataFrame({"type": intent[ok], "agent": "", "handle_s": h[ok]})
    cells = pd.DataFrame({"type": intent[ok], "agent": agent[ok], "handle_s": h[ok]})
    cells = cells[cells["agent"] != ""]
    cells = cells[cells.groupby(["type", "agent"])["handle_s"].transform("size") >= min_cell]
    no_sample = [t for t in types if not (base["type"] == t).any()]
    pooled = [base.assign(type=t) for t in no_sample]
    handle = pd.concat([base, *pooled, cells], ignore_index=True).sort_values(
        ["type", "agent", "handle_s"], kind="stable").reset_index(drop=True)
    return handle, no_sample, int(cells.groupby(["type", "agent"]).ngroups)


def _patience_table(history: pd.DataFrame, *, intent: np.ndarray, served: np.ndarray, inq: np.ndarray,
                    types: list[str]) -> pd.DataFrame:
    """Kaplan–Meier patience per type on the queue population."""
    wait = history["wait_s"].to_numpy(dtype=float)
    rows = []
    for t in types:
        m = inq & (intent == t) & np.isfinite(wait)
        tt, ss = kaplan_meier(wait[m], ~served[m])
        if not len(tt):  # nobody of this type abandoned: one point, never abandons
            tt, ss = np.zeros(1), np.ones(1)
        rows.append(pd.DataFrame({"type": t, "t_s": tt, "survival": ss}))
    return pd.concat(rows, ignore_index=True)


def _scenario_doc(history: pd.DataFrame, *, name: str, types: list[str], intent: np.ndarray, inq: np.ndarray,
                  served: np.ndarray, present: pd.DatetimeIndex, credit_s: float, wrap_up_s: float) -> dict:
    """The scenario.json document. Agents are listed most hours of work first: a simulator
    that staffs k agents takes the first k names, so the names (and their own handle-time
    samples) on shift are the ones present most (ordering by call count would favour the
    fast agents and bias handle times)."""
    tier = history["customer_tier"].astype("string") if "customer_tier" in history else None
    prio_share = float((tier[inq] == "priority").fillna(False).mean()) if tier is not None else 0.0
    shares = pd.Series(intent[inq]).value_counts(normalize=True).reindex(types, fill_value=0.0)
    agent = history["agent_id"].astype("string").fillna("").to_numpy(dtype=object)
    worked = served & (agent != "")
    work = pd.Series(np.nan_to_num(history["handle_s"].to_numpy(dtype=float)[worked])).groupby(agent[worked]).sum()
    agents = sorted(work.index, key=lambda a: (-float(work[a]), a))
    service: dict = {"kind": "empirical", "table": "handle.csv"}
    if wrap_up_s > 0:
        service["wrap_up_s"] = float(wrap_up_s)
    return {
        "schema": SCHEMA, "name": name, "start": present[0].isoformat(),
        "days": float((present[-1] - present[0]).days + 1),
        "types": [{"name": t, "share": float(shares[t])} for t in types],
        "arrivals": {"kind": "hour_of_week", "table": "arrivals.csv"},
        "service": service,
        "patience": {"kind": "empirical", "table": "patience.csv"},
        "staffing": {"kind": "hour_of_week", "table": "staffing.csv"},
        "agents": agents,
        "priority": {"share": prio_share, "credit_s": float(credit_s)},
        "policy": "fcfs",
    }


def _staffing_table(history: pd.DataFrame, *, served: np.ndarray, present: pd.DatetimeIndex,
                    cap: CapacityModel) -> tuple[pd.DataFrame, str]:
    """Agents per hour of week by the capacity model: ``agents_estimate`` (a mean, fractional)
    and ``agents`` (whole agents, rounded to nearest: the simulator staffs whole agents)."""
    if cap.kind == "seen":
        est, note = _staffing_seen(history, served=served, present=present, slot_s=cap.slot_s, floor=cap.floor)
    else:
        est, _ = _staffing_busy_when_queued(history, present=present, min_queued_s=cap.min_queued_s,
                                            floor=cap.floor)
        note = ("busy-when-queued: per (day, clock hour) with at least "
                f"{cap.min_queued_s:g} s of queue, the mean number of calls in service while a call waited "
                "(a work-conserving queue leaves no available agent idle, so this is the available capacity); "
                "other hours: the most calls in service at once; mean over the days present of each weekday")
    if cap.share != 1.0:
        est = est * cap.share
        note += f"; scaled by the availability share {cap.share:g}"
    if cap.wrap_up_s > 0:
        note += f"; after-call work of {cap.wrap_up_s:g} s added to every simulated handle time"
    served_any = est > 0
    whole = np.round(est).astype(np.int64)
    whole = np.where(served_any & (cap.floor > 0), np.maximum(whole, int(np.ceil(cap.floor))), whole)
    table = pd.DataFrame({"hour_of_week": np.arange(HOURS_PER_WEEK), "agents": whole,
                          "agents_estimate": np.round(est, 3)})
    return table, note + "; agents = agents_estimate rounded to whole agents"


def _occupancy_seconds(history: pd.DataFrame, *, origin: int, n_s: int) -> tuple[np.ndarray, np.ndarray]:
    """Per second since ``origin``: calls in service and calls waiting in the queue, from the log.

    In service: served calls with a handle time, over [answered_at, answered_at + handle_s);
    waiting: calls that reached the queue, over [arrival_at, arrival_at + wait_s).
    """
    served = ~history["abandoned"].astype("boolean").fillna(False).to_numpy(dtype=bool)
    arrival = _whole_seconds(history["arrival_at"])
    wait = np.nan_to_num(history["wait_s"].to_numpy(dtype=float)).astype(np.int64)
    if "answered_at" in history:
        ans = pd.to_datetime(history["answered_at"], utc=True)
        ans_s = np.where(ans.notna().to_numpy(), _whole_seconds(ans.fillna(pd.Timestamp(0, tz="UTC"))), arrival + wait)
    else:
        ans_s = arrival + wait
    handle = history["handle_s"].to_numpy(dtype=float)
    busy_m = served & np.isfinite(handle)

    def level(start: np.ndarray, end: np.ndarray) -> np.ndarray:
        d = np.zeros(n_s + 1, dtype=np.int64)
        np.add.at(d, np.clip(start - origin, 0, n_s), 1)
        np.add.at(d, np.clip(end - origin, 0, n_s), -1)
        return np.cumsum(d)[:n_s]

    busy = level(ans_s[busy_m], ans_s[busy_m] + handle[busy_m].astype(np.int64))
    inq = queue_population(history)
    queue = level(arrival[inq], arrival[inq] + wait[inq])
    return busy, queue


def _staffing_busy_when_queued(history: pd.DataFrame, *, present: pd.DatetimeIndex, min_queued_s: float,
                               floor: float) -> tuple[np.ndarray, np.ndarray]:
    """Agents available per hour of week, read from the log's own congestion: while a call
    waits in a work-conserving queue every available agent is serving, so the number of
    calls in service then *is* the available capacity (breaks, after-call work and other
    duties included). Per (day, hour) with at least ``min_queued_s`` seconds of queue: the
    mean number in service over those seconds; other hours (no congestion, capacity not
    identified from below) take the most calls in service at once in the hour. Returns
    (agents per hour of week, queued seconds per hour of week)."""
    origin = int(pd.Timestamp(present[0]).timestamp())
    n_days = int((present[-1] - present[0]).days) + 2  # calls ending after midnight of the last day
    busy, queue = _occupancy_seconds(history, origin=origin, n_s=n_days * int(DAY_S))
    hours = n_days * 24
    b = busy.reshape(hours, 3600)
    q = queue.reshape(hours, 3600) > 0
    q_s = q.sum(axis=1)
    mean_when_q = np.where(q_s > 0, (b * q).sum(axis=1) / np.maximum(q_s, 1), 0.0)
    per_hour = np.where(q_s >= min_queued_s, mean_when_q, b.max(axis=1))
    day = present[0] + pd.to_timedelta(np.arange(hours) // 24, unit="D")
    keep = pd.DatetimeIndex(day).isin(present)
    how = (pd.DatetimeIndex(day).day_of_week.to_numpy() * 24 + np.arange(hours) % 24)[keep]
    total = np.bincount(how, weights=per_hour[keep], minlength=HOURS_PER_WEEK)
    queued = np.bincount(how, weights=q_s[keep], minlength=HOURS_PER_WEEK)
    served_any = np.bincount(how, weights=b.max(axis=1)[keep], minlength=HOURS_PER_WEEK) > 0
    occ = np.bincount(present.day_of_week, minlength=7)[np.arange(HOURS_PER_WEEK) // 24]
    agents = np.where(occ > 0, total / np.maximum(occ, 1), 0.0)
    return np.where(served_any, np.maximum(agents, floor), agents), queued


def _staffing_seen(history: pd.DataFrame, *, served: np.ndarray, present: pd.DatetimeIndex,
                   slot_s: int, floor: float) -> tuple[np.ndarray, str]:
    """Agents per hour of week: the number of distinct agents seen serving in each slot of
    ``slot_s`` seconds, averaged over the slots of the hour and the days present."""
    note = (f"seen: mean over the days present and the {3600 // slot_s} slot(s) of {slot_s} s in each clock "
            "hour of the number of distinct agents whose service interval [answered_at, answered_at + handle_s] "
            "overlaps the slot; agents logged in but idle for a whole slot are invisible, an agent serving "
            "one call in a slot counts as present for all of it; an hour of week with any call served "
            f"gets at least {floor:g} agent(s)")
    has_agent = history["agent_id"].notna().to_numpy()
    m = served & has_agent
    arrival = pd.to_datetime(history["arrival_at"], utc=True)
    if "answered_at" in history:
        start = pd.to_datetime(history["answered_at"], utc=True)
        start = start.where(start.notna(), arrival + pd.to_timedelta(history["wait_s"], unit="s"))
    else:
        start = arrival + pd.to_timedelta(history["wait_s"], unit="s")
    hsec = history["handle_s"].fillna(0).to_numpy(dtype=float)
    s = np.floor(epoch_seconds(start)).astype(np.int64)[m]  # whole seconds
    e = s + hsec[m].astype(np.int64)
    first, last = s // slot_s, np.maximum(s, e - 1) // slot_s
    span = (last - first + 1).astype(np.int64)
    slots = np.repeat(first, span) + (np.arange(span.sum()) - np.repeat(np.cumsum(span) - span, span))
    names = np.repeat(history["agent_id"].astype(str).to_numpy()[m], span)
    per_slot = pd.DataFrame({"slot": slots, "agent": names}).drop_duplicates().groupby("slot").size()
    sts = pd.to_datetime(per_slot.index.to_numpy() * slot_s, unit="s", utc=True)
    how = (sts.day_of_week * 24 + sts.hour).to_numpy()
    on_present = sts.normalize().isin(present)
    total = np.bincount(how[on_present], weights=per_slot.to_numpy()[on_present], minlength=HOURS_PER_WEEK)
    days_per_weekday = np.bincount(present.day_of_week, minlength=7)
    occ = days_per_weekday[np.arange(HOURS_PER_WEEK) // 24] * (3600 // slot_s)
    agents = np.where(occ > 0, total / np.maximum(occ, 1), 0.0)
    # An hour of week in which calls were served has somebody on duty: at least the floor
    # (a mean like 0.3 at night would otherwise round to an empty centre).
    return np.where(total > 0, np.maximum(agents, floor), agents), note


GAP_KPIS = ("abandonment_rate", "mean_wait_s", "service_level")


def _status(history: pd.DataFrame) -> np.ndarray:
    from assign.sim.engine import ABANDONED, SERVED, UNSERVED

    if "status" in history:  # a simulator log: served | abandoned | unserved
        names = history["status"].astype(str).to_numpy()
        return np.select([names == "served", names == "abandoned"], [SERVED, ABANDONED], UNSERVED)
    served = ~history["abandoned"].astype("boolean").fillna(False).to_numpy(dtype=bool)
    return np.where(served, SERVED, ABANDONED)


#: Columns :func:`kpis_by_hour` reads from a history or a simulator log.
KPI_COLUMNS = ("arrival_at", "wait_s", "abandoned")


def check_kpi_columns(frame: pd.DataFrame, *, where: str) -> None:
    """InputError naming ``where`` when ``frame`` lacks a column :func:`kpis_by_hour` needs."""
    missing = [c for c in KPI_COLUMNS if c not in frame.columns]
    if missing:
        raise InputError([f"{where}: missing column(s) {', '.join(missing)}"], what="simulator log")


def kpis_by_hour(history: pd.DataFrame, *, sl_threshold_s: float = 20.0) -> pd.DataFrame:
    """KPIs of the queue population per hour of day of arrival (rows 0..23) and overall
    (row ``"all"``), with the simulator's definitions; works on a logged history and on a
    simulator log (``assign simulate --logs``) alike."""
    from assign.sim.kpis import kpis_of

    h = history[queue_population(history)]
    status = _status(h)
    wait = h["wait_s"].to_numpy(dtype=float)
    hour = pd.to_datetime(h["arrival_at"], utc=True).dt.hour.to_numpy()
    nan = np.full(len(h), np.nan)
    rows = {}
    for key, m in [*((k, hour == k) for k in range(24)), ("all", np.ones(len(h), bool))]:
        k = kpis_of(status=status[m], wait_s=wait[m], handle_s=nan[m], resolved=nan[m], csat=nan[m],
                    truth_p=nan[m], sl_threshold_s=sl_threshold_s)
        rows[key] = {"offered": k["offered"], **{g: k[g] for g in GAP_KPIS}}
    return pd.DataFrame.from_dict(rows, orient="index")


def replay_gap(observed: pd.DataFrame, simulated: list[pd.DataFrame], *, sl_threshold_s: float = 20.0) -> pd.DataFrame:
    """Observed vs simulated KPIs per hour of day: ``<kpi>_obs``, ``<kpi>_sim`` (mean over
    the simulated logs), ``<kpi>_sim_min`` / ``_sim_max`` and ``<kpi>_gap`` (sim - obs)."""
    if not simulated:
        raise InputError(["replay_gap: no simulated log given"])
    obs = kpis_by_hour(observed, sl_threshold_s=sl_threshold_s)
    sims = [kpis_by_hour(s, sl_threshold_s=sl_threshold_s) for s in simulated]
    out = pd.DataFrame({"offered_obs": obs["offered"]}, index=obs.index)
    for g in GAP_KPIS:
        runs = pd.concat([s[g].astype(float) for s in sims], axis=1)  # NaN where an hour had no call
        out[f"{g}_obs"] = obs[g]
        out[f"{g}_sim"] = runs.mean(axis=1)
        out[f"{g}_sim_min"] = runs.min(axis=1)
        out[f"{g}_sim_max"] = runs.max(axis=1)
        out[f"{g}_gap"] = out[f"{g}_sim"] - out[f"{g}_obs"]
    out.index.name = "hour"
    return out


def plot_replay_gap(gap: pd.DataFrame, path: str | Path, *, title: str = "replay vs log") -> None:
    """Three panels by hour of day: observed and simulated (mean, min-max band over runs)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hours = gap.drop(index="all", errors="ignore")
    x = hours.index.astype(int).to_numpy()
    labels = {"abandonment_rate": "abandonment rate", "mean_wait_s": "mean wait (s)",
              "service_level": "service level"}
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    for ax, g in zip(axes, GAP_KPIS):
        ax.plot(x, hours[f"{g}_obs"], "k.-", label="observed")
        ax.plot(x, hours[f"{g}_sim"], "C1.-", label="simulated")
        ax.fill_between(x, hours[f"{g}_sim_min"].astype(float), hours[f"{g}_sim_max"].astype(float),
                        color="C1", alpha=0.25, linewidth=0)
        ax.set_xlabel("hour of day (arrival)")
        ax.set_title(labels[g])
        ax.set_xlim(0, 23)
        if g == "mean_wait_s":
            ax.set_yscale("symlog", linthresh=10)
            ax.set_ylim(bottom=0)
    axes[0].legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _whole_seconds(ts: pd.Series) -> np.ndarray:
    """Whole seconds since 1970 of a datetime column (floored)."""
    return np.floor(epoch_seconds(ts)).astype(np.int64)
