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

from assign.constants import HOURS_PER_WEEK
from assign.errors import InputError
from assign.history import epoch_seconds

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

    def write(self, out_dir: str | Path) -> Path:
        """Write ``scenario.json``, the four CSV tables and ``calibration.json`` (counts
        and method notes) into ``out_dir``; returns the scenario.json path."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        self.arrivals.to_csv(out / "arrivals.csv", index=False)
        self.handle.to_csv(out / "handle.csv", index=False)
        self.patience.to_csv(out / "patience.csv", index=False)
        self.staffing.to_csv(out / "staffing.csv", index=False)
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


def calibrate(history: pd.DataFrame, *, name: str, min_cell: int = 30, credit_s: float = 90.0,
              staffing_slot_s: int = 900, staffing_floor: float = 1.0) -> Calibration:
    """Fit every table of the scenario from ``history`` (the history contract).

    ``min_cell``: a type × agent cell gets its own handle-time rows only with at least this
    many served calls; the type-wide rows (empty agent) are always written.
    ``staffing_slot_s``: slot length (a divisor of 3600) in which distinct serving agents are
    counted; shorter slots count fewer idle-looking agents as present (see docs/real-data.md).
    ``staffing_floor``: the least staffing of an hour of week in which any call was served.
    """
    _check(history)
    bad = [f"min_cell must be >= 1, got {min_cell}"] if min_cell < 1 else []
    if not (isinstance(staffing_slot_s, int) and 0 < staffing_slot_s <= 3600 and 3600 % staffing_slot_s == 0):
        bad.append(f"staffing_slot_s must be a whole divisor of 3600, got {staffing_slot_s!r}")
    if not staffing_floor >= 0:
        bad.append(f"staffing_floor must be >= 0, got {staffing_floor!r}")
    if bad:
        raise InputError(bad)
    arrival = pd.to_datetime(history["arrival_at"], utc=True)
    served = ~history["abandoned"].astype("boolean").fillna(False).to_numpy(dtype=bool)
    inq = queue_population(history)
    types = sorted(history["intent"].astype(str).unique())
    intent = history["intent"].astype(str).to_numpy()

    # Arrivals: calls per (type, hour of week) / days of that weekday present in the log.
    dates = arrival.dt.normalize()
    present = pd.DatetimeIndex(dates.unique()).sort_values()
    days_per_weekday = np.bincount(present.day_of_week, minlength=7)
    how = hour_of_week(arrival)
    grid = pd.MultiIndex.from_product([types, range(HOURS_PER_WEEK)], names=["type", "hour_of_week"])
    counts = pd.Series(1, index=pd.MultiIndex.from_arrays([intent[inq], how[inq]])).groupby(level=[0, 1]).sum()
    counts = counts.reindex(grid, fill_value=0)
    occ = days_per_weekday[np.arange(HOURS_PER_WEEK) // 24]
    rate = counts.to_numpy().reshape(len(types), HOURS_PER_WEEK) / np.where(occ > 0, occ, np.nan)
    arrivals = pd.DataFrame({"type": grid.get_level_values(0), "hour_of_week": grid.get_level_values(1),
                             "rate_per_hour": np.nan_to_num(rate.ravel(), nan=0.0)})

    # Service: observed handle times to resample, per type and per well-filled type × agent.
    h = history["handle_s"].to_numpy(dtype=float)
    ok = served & np.isfinite(h)
    agent = history["agent_id"].astype("string").fillna("").to_numpy(dtype=object)
    base = pd.DataFrame({"type": intent[ok], "agent": "", "handle_s": h[ok]})
    cells = pd.DataFrame({"type": intent[ok], "agent": agent[ok], "handle_s": h[ok]})
    cells = cells[cells["agent"] != ""]
    size = cells.groupby(["type", "agent"])["handle_s"].transform("size")
    cells = cells[size >= min_cell]
    # A type with no served call has no sample of its own: it borrows every type's pooled
    # sample (listed in calibration.json), so a simulator can still serve it.
    no_sample = [t for t in types if not (base["type"] == t).any()]
    pooled = [base.assign(type=t) for t in no_sample if len(base)]
    handle = pd.concat([base, *pooled, cells], ignore_index=True).sort_values(
        ["type", "agent", "handle_s"], kind="stable").reset_index(drop=True)

    # Patience: Kaplan–Meier per type on the queue population.
    wait = history["wait_s"].to_numpy(dtype=float)
    rows = []
    for t in types:
        m = inq & (intent == t) & np.isfinite(wait)
        tt, ss = kaplan_meier(wait[m], ~served[m])
        if not len(tt):  # nobody of this type abandoned: one point, never abandons
            tt, ss = np.zeros(1), np.ones(1)
        rows.append(pd.DataFrame({"type": t, "t_s": tt, "survival": ss}))
    patience = pd.concat(rows, ignore_index=True)

    staffing, staff_note = _staffing(history, served=served, present=present, slot_s=staffing_slot_s,
                                     floor=staffing_floor)

    tier = history["customer_tier"].astype("string") if "customer_tier" in history else None
    prio_share = float((tier[inq] == "priority").mean()) if tier is not None else 0.0
    shares = pd.Series(intent[inq]).value_counts(normalize=True).reindex(types, fill_value=0.0)
    # Most hours of work first: a simulator that staffs k agents takes the first k names,
    # so the names (and their own handle-time samples) on shift are the ones present most.
    # (Ordering by call count instead would favour the fast agents and bias handle times.)
    worked = served & (agent != "")
    work = pd.Series(np.nan_to_num(h[worked])).groupby(agent[worked]).sum()
    agents = sorted(work.index, key=lambda a: (-float(work[a]), a))
    start = present[0]
    days = float((present[-1] - present[0]).days + 1)
    scenario = {
        "schema": SCHEMA, "name": name, "start": start.isoformat(), "days": days,
        "types": [{"name": t, "share": float(shares[t])} for t in types],
        "arrivals": {"kind": "hour_of_week", "table": "arrivals.csv"},
        "service": {"kind": "empirical", "table": "handle.csv"},
        "patience": {"kind": "empirical", "table": "patience.csv"},
        "staffing": {"kind": "hour_of_week", "table": "staffing.csv"},
        "agents": agents,
        "priority": {"share": prio_share, "credit_s": float(credit_s)},
        "policy": "fcfs",
    }
    all_days = pd.date_range(present[0], present[-1], freq="D")
    summary = {
        "rows": int(len(history)), "queue_population": int(inq.sum()),
        "left_out_abandoned_before_queue": int((~inq).sum()),
        "served": int(served.sum()), "abandoned_in_queue": int((inq & ~served).sum()),
        "served_without_handle_time": int((served & ~np.isfinite(h)).sum()),
        "days_present": int(len(present)),
        "days_missing": [d.date().isoformat() for d in all_days.difference(present)],
        "days_present_per_weekday_mon_first": days_per_weekday.tolist(),
        "handle_types_with_pooled_sample": no_sample,
        "patience_types_without_abandonment": [t for t in types if not (inq & (intent == t) & ~served).any()],
        "handle_cells_type_x_agent": int(cells.groupby(["type", "agent"]).ngroups),
        "min_cell": min_cell, "staffing_method": staff_note,
        "arrival_method": "calls reaching the queue per (type, hour of week) divided by the number "
                          "of days of that weekday present in the log (days with no record are "
                          "treated as missing, not as zero-arrival days)",
    }
    return Calibration(scenario, arrivals, handle, patience, staffing, summary)


def _staffing(history: pd.DataFrame, *, served: np.ndarray, present: pd.DatetimeIndex,
              slot_s: int, floor: float) -> tuple[pd.DataFrame, str]:
    """Agents per hour of week: the number of distinct agents seen serving in each slot of
    ``slot_s`` seconds, averaged over the slots of the hour and the days present."""
    note = (f"mean over the days present and the {3600 // slot_s} slot(s) of {slot_s} s in each clock hour "
            "of the number of distinct agents whose service interval [answered_at, answered_at + handle_s] "
            "overlaps the slot; agents logged in but idle for a whole slot are invisible, an agent serving "
            f"one call in a slot counts as present for all of it; an hour of week with any call served "
            "gets at least {floor:g} agent(s)")
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
    # An hour of week in which calls were served has somebody on duty: at least one agent
    # (a mean like 0.3 at night would otherwise round to an empty centre).
    agents = np.where(total > 0, np.maximum(agents, floor), agents)
    return pd.DataFrame({"hour_of_week": np.arange(HOURS_PER_WEEK), "agents": np.round(agents, 3)}), note


GAP_KPIS = ("abandonment_rate", "mean_wait_s", "service_level")


def _status(history: pd.DataFrame) -> np.ndarray:
    from assign.sim.engine import ABANDONED, SERVED, UNSERVED

    if "status" in history:  # a simulator log: served | abandoned | unserved
        names = history["status"].astype(str).to_numpy()
        return np.select([names == "served", names == "abandoned"], [SERVED, ABANDONED], UNSERVED)
    served = ~history["abandoned"].astype("boolean").fillna(False).to_numpy(dtype=bool)
    return np.where(served, SERVED, ABANDONED)


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
