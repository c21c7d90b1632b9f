"""Replay-fidelity model variants: what a calibrated scenario alone cannot express.

Used by ``benchmarks/replay_fidelity.py`` to test hypotheses on why a replay of a real log
misses its service level (docs/real-data.md, section 6):

- :func:`slot_capacity`: busy-when-queued capacity per slot of week at a resolution finer
  than the hour (15 or 30 minutes), optionally reading congestion from one class of calls
  only (unidentified callers, whose waits are pure queueing in the bank's log);
- :func:`routing_delay`: Kaplan–Meier curve of the delay before an identified caller can be
  routed, read from hours in which every unidentified caller was answered at once;
- :func:`delay_model`: the same delay per type, as a :class:`~assign.sim.scenario.RoutingDelay`
  for :class:`~assign.sim.source.ScenarioSource` (``routing_delay=``; with ``slot_agents=``
  for slot staffing) and for ``assign calibrate --routing-delay``;
- :func:`slot_seen`: agents seen serving per slot of week (no averaging within the hour);
- :func:`roster_seen`: agents seen serving per dated slot of a period, times an availability
  share: the replayed period's own roster proxy (``ScenarioSource(roster=...)``);
- :func:`post_call_gap`: the log's median time from an agent's end of call to its next
  answer when a caller was waiting (after-call work, ringing).

The engine holds a delayed contact until ``arrival + delay`` (``ContactStream.routable_after_s``):
its wait, service level and patience run from arrival, as the log counts them.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from assign.constants import DAY_S
from assign.errors import InputError
from assign.history import epoch_seconds
from assign.sim.calibrate import (
    _occupancy_seconds,
    kaplan_meier,
    queue_population,
)
from assign.sim.source import Roster, RoutingDelay

_DAY_S = int(DAY_S)  # whole seconds: slots are integer-indexed


def identified(history: pd.DataFrame) -> np.ndarray:
    """Callers the voice unit identified (a customer id): the bank's priority 1 and 2."""
    return history["customer_id"].notna().to_numpy()


def slot_capacity(history: pd.DataFrame, *, slot_s: int = 3600, min_queued_s: float = 60.0, floor: float = 1.0,
                  share: float = 1.0, congestion: np.ndarray | None = None) -> np.ndarray:
    """Available agents per slot of week (``7 * 86400 / slot_s`` values, Monday 00:00 first).

    Per (day, slot): the mean number of calls in service over the seconds in which a call
    waited, when the slot holds at least ``min_queued_s * slot_s / 3600`` such seconds;
    otherwise the most calls in service at once. Then the mean over the days present of that
    weekday, times ``share``, at least ``floor`` where any call was served, rounded to whole
    agents. ``congestion``: a mask of the calls whose waiting marks congestion (default: every
    call that reached the queue). With ``slot_s=3600`` and no mask this is
    ``assign calibrate --capacity busy-when-queued``'s estimate.
    """
    if not (isinstance(slot_s, int) and 0 < slot_s <= 3600 and 3600 % slot_s == 0):
        raise InputError([f"slot_s: must be a whole divisor of 3600, got {slot_s!r}"], what="capacity")
    arrival = pd.to_datetime(history["arrival_at"], utc=True)
    present = pd.DatetimeIndex(arrival.dt.normalize().unique()).sort_values()
    origin = int(pd.Timestamp(present[0]).timestamp())
    n_s = (int((present[-1] - present[0]).days) + 2) * _DAY_S
    busy, queue = _occupancy_seconds(history, origin=origin, n_s=n_s)
    if congestion is not None:
        only = history.assign(entered_queue=congestion & queue_population(history),
                              abandoned=history["abandoned"].astype(bool) | ~congestion)
        _, queue = _occupancy_seconds(only, origin=origin, n_s=n_s)
    per_day = _DAY_S // slot_s
    b = busy.reshape(-1, slot_s)
    q = queue.reshape(-1, slot_s) > 0
    q_s = q.sum(axis=1)
    mean_q = np.where(q_s > 0, (b * q).sum(axis=1) / np.maximum(q_s, 1), 0.0)
    per_slot = np.where(q_s >= min_queued_s * slot_s / 3600.0, mean_q, b.max(axis=1))
    day = pd.DatetimeIndex(present[0] + pd.to_timedelta(np.arange(len(b)) // per_day, unit="D"))
    keep = day.isin(present)
    n_week = 7 * per_day
    sow = (day.day_of_week.to_numpy() * per_day + np.arange(len(b)) % per_day)[keep]
    total = np.bincount(sow, weights=per_slot[keep], minlength=n_week)
    served_any = np.bincount(sow, weights=b.max(axis=1)[keep], minlength=n_week) > 0
    occ = np.bincount(present.day_of_week, minlength=7)[np.arange(n_week) // per_day]
    agents = np.where(occ > 0, total / np.maximum(occ, 1), 0.0) * share
    return np.where(served_any, np.maximum(np.round(agents), np.ceil(floor)), np.round(agents)).astype(np.int64)


def slot_seen(history: pd.DataFrame, *, slot_s: int = 900, floor: float = 1.0, share: float = 1.0) -> np.ndarray:
    """Agents seen serving per slot of week (``7 * 86400 / slot_s`` values, Monday 00:00 first):
    per (day, slot) the distinct agents whose service interval overlaps the slot (as
    ``assign calibrate``'s ``seen`` model, without averaging the slots of an hour), then the
    mean over the days present of that weekday, times ``share`` (an availability share), at
    least ``floor`` where any call was served, rounded to whole agents."""
    _check_slot(slot_s)
    per = _seen_per_slot(history, slot_s=slot_s)
    present = pd.DatetimeIndex(pd.to_datetime(history["arrival_at"], utc=True).dt.normalize().unique())
    ts = pd.to_datetime(per.index.to_numpy() * slot_s, unit="s", utc=True)
    keep = ts.normalize().isin(present)
    per_day = _DAY_S // slot_s
    sow = (ts.day_of_week * per_day + (ts.hour * 3600 + ts.minute * 60) // slot_s).to_numpy()[keep]
    total = np.bincount(sow, weights=per.to_numpy()[keep], minlength=7 * per_day)
    occ = np.bincount(present.day_of_week, minlength=7)[np.arange(7 * per_day) // per_day]
    agents = np.where(occ > 0, total / np.maximum(occ, 1), 0.0) * share
    return np.where(total > 0, np.maximum(np.round(agents), np.ceil(floor)), 0).astype(np.int64)


def _seen_per_slot(history: pd.DataFrame, *, slot_s: int) -> pd.Series:
    """Distinct agents whose service interval [answered, answered + handle) overlaps each
    absolute slot (index: slot number since 1970 in ``slot_s`` units), served calls with an agent."""
    served = ~history["abandoned"].astype(bool).to_numpy() & history["agent_id"].notna().to_numpy()
    h = history[served]
    arrival = pd.to_datetime(h["arrival_at"], utc=True)
    start = pd.to_datetime(h["answered_at"], utc=True) if "answered_at" in h else arrival
    start = start.where(start.notna(), arrival + pd.to_timedelta(h["wait_s"], unit="s"))
    s0 = np.floor(epoch_seconds(start)).astype(np.int64)
    e = s0 + np.nan_to_num(h["handle_s"].to_numpy(dtype=float)).astype(np.int64)
    first, last = s0 // slot_s, np.maximum(s0, e - 1) // slot_s
    span = last - first + 1
    slots = np.repeat(first, span) + (np.arange(span.sum()) - np.repeat(np.cumsum(span) - span, span))
    per = pd.DataFrame({"slot": slots, "agent": np.repeat(h["agent_id"].astype(str).to_numpy(), span)})
    return per.drop_duplicates().groupby("slot").size()


def _check_slot(slot_s) -> None:
    if not (isinstance(slot_s, int) and 0 < slot_s <= 3600 and 3600 % slot_s == 0):
        raise InputError([f"slot_s: must be a whole divisor of 3600, got {slot_s!r}"], what="capacity")


def roster_seen(history: pd.DataFrame, *, slot_s: int = 900, floor: float = 1.0, share: float = 1.0) -> Roster:
    """The dated roster proxy of ``history``'s own period, for a replay of that period
    (``ScenarioSource(roster=...)``): per slot from the first day present 00:00 to the end
    of the day after the last (service crossing midnight), the distinct agents seen serving
    in that slot (:func:`slot_seen`'s count, not averaged over weekdays) times ``share`` (an
    availability share, to be fitted on a calibration window), at least ``floor`` where any
    agent was seen, rounded to whole agents. Agents seen serving are partly endogenous to
    load: an agent on duty but idle for a whole slot is invisible."""
    _check_slot(slot_s)
    if not (np.isfinite(share) and share > 0):
        raise InputError([f"share: must be a finite number above 0, got {share!r}"], what="roster")
    arrival = pd.to_datetime(history["arrival_at"], utc=True)
    if not len(arrival) or arrival.isna().all():
        raise InputError(["history: no arrival, so no roster"], what="roster")
    first = arrival.min().normalize()
    n = int((arrival.max().normalize() - first).days + 2) * (_DAY_S // slot_s)
    per = _seen_per_slot(history, slot_s=slot_s)
    idx = per.index.to_numpy(np.int64) - int(first.timestamp()) // slot_s
    inside = (idx >= 0) & (idx < n)
    count = np.zeros(n)
    count[idx[inside]] = per.to_numpy()[inside]
    agents = np.where(count > 0, np.maximum(np.round(count * share), np.ceil(floor)), 0)
    return Roster(start=first.to_pydatetime(), slot_s=slot_s, agents=agents.astype(np.int64))


def post_call_gap(history: pd.DataFrame) -> tuple[float, int]:
    """Median seconds from an agent's end of call to its next answer, over the calls that were
    waiting when that agent became free (the log's own measure of the time an agent is not
    available between calls: after-call work, ringing). Returns (median gap, calls used)."""
    need = [c for c in ("answered_at", "ended_at", "agent_id") if c not in history]
    if need:
        raise InputError([f"history.{c}: required for the post-call gap" for c in need], what="history")
    served = ~history["abandoned"].astype(bool).to_numpy()
    h = history[served & history["agent_id"].notna().to_numpy() & history["answered_at"].notna().to_numpy()
                & history["ended_at"].notna().to_numpy()]
    ans, end = epoch_seconds(h["answered_at"]), epoch_seconds(h["ended_at"])
    arr = epoch_seconds(h["arrival_at"])
    order = np.lexsort((ans, h["agent_id"].astype(str).to_numpy()))
    agent = h["agent_id"].astype(str).to_numpy()[order]
    ans, end, arr = ans[order], end[order], arr[order]
    same = np.r_[False, agent[1:] == agent[:-1]]
    prev_end = np.r_[np.nan, end[:-1]]
    freed_while_waiting = same & (prev_end > arr) & (prev_end <= ans)
    if not freed_while_waiting.any():
        raise InputError(["history: no call was waiting when its agent became free: no post-call gap"],
                         what="history")
    gap = (ans - prev_end)[freed_while_waiting]
    return float(np.median(gap)), int(freed_while_waiting.sum())


def _quiet_identified(h: pd.DataFrame, *, min_unidentified: int) -> np.ndarray:
    """Mask of the identified callers of ``h`` (the queue population) arriving in a (day,
    clock hour) cell with at least ``min_unidentified`` unidentified callers, every one of
    them answered at once."""
    served = ~h["abandoned"].astype(bool).to_numpy()
    ident = identified(h)
    cell = pd.to_datetime(h["arrival_at"], utc=True).dt.floor("h").to_numpy()
    wait = h["wait_s"].to_numpy(dtype=float)
    anon = pd.DataFrame({"cell": cell[~ident], "at_once": (served & (wait == 0))[~ident]})
    g = anon.groupby("cell")["at_once"].agg(["size", "all"])
    quiet = g.index[(g["size"] >= min_unidentified) & g["all"]]
    return ident & np.isin(cell, quiet) & np.isfinite(wait)


def routing_delay(history: pd.DataFrame, *, min_unidentified: int = 3) -> tuple[np.ndarray, np.ndarray, int]:
    """Kaplan–Meier curve of an identified caller's delay before it can be answered.

    Read from the (day, clock hour) cells with at least ``min_unidentified`` unidentified
    callers, every one answered at once (no congestion: an agent was free at each of their
    arrivals). There an identified caller's wait is taken as pure delay: answered = event at
    its wait, hung up = censored. Returns (t_s, survival, calls used).
    """
    h = history[queue_population(history)]
    served = ~h["abandoned"].astype(bool).to_numpy()
    wait = h["wait_s"].to_numpy(dtype=float)
    m = _quiet_identified(h, min_unidentified=min_unidentified)
    if not m.any():
        raise InputError([("history: no identified caller in an uncongested hour: the routing delay "
                           "cannot be estimated")], what="history")
    t, s = kaplan_meier(wait[m], served[m])
    if not len(t):
        raise InputError([("history: no identified caller was answered in an uncongested hour: the routing "
                           "delay cannot be estimated")], what="history")
    return t, s, int(m.sum())


def delay_model(history: pd.DataFrame, *, min_calls: int = 30, min_unidentified: int = 3,
                scale: float = 1.0) -> RoutingDelay:
    """The routing delay of identified callers per type, for :class:`ScenarioSource`.

    The cells and the reading are :func:`routing_delay`'s; a type with at least ``min_calls``
    identified calls in those cells gets its own Kaplan–Meier curve, the others the pooled
    one (the bank's TT callbacks are answered at once, NE stock-exchange callers wait
    longest). Estimated from ``history`` alone: pass the calibration window only."""
    t, s, _ = routing_delay(history, min_unidentified=min_unidentified)
    h = history[queue_population(history)]
    cells = _quiet_identified(h, min_unidentified=min_unidentified)
    served = ~h["abandoned"].astype(bool).to_numpy()
    wait, intent = h["wait_s"].to_numpy(dtype=float), h["intent"].astype(str).to_numpy()
    curves = {}
    for name in sorted(set(intent[cells])):
        m = cells & (intent == name)
        if m.sum() >= min_calls and (m & served).any():
            curves[name] = kaplan_meier(wait[m], served[m])
    return RoutingDelay(curves=curves, pooled=(t, s), scale=scale)


def replay_kpis(run, *, sl_threshold_s: float = 20.0) -> dict[str, float]:
    """KPIs of a replay run (waits from arrival, pre-routing delay included, as the log counts
    them; callers who hung up during their delay are abandoned)."""
    from assign.sim.kpis import kpis_of

    nan = np.full(len(run.status), np.nan)
    return kpis_of(status=run.status, wait_s=run.wait_s, handle_s=run.handle_s, resolved=nan, csat=nan, truth_p=nan,
                   sl_threshold_s=sl_threshold_s)


def contact_outcomes(run) -> pd.DataFrame:
    """Per offered contact of a run: ``arrival_s`` (joined the queue), ``status`` (engine
    codes) and ``wait_s`` (from arrival)."""
    return pd.DataFrame({"arrival_s": run.stream.arrival_s, "status": run.status, "wait_s": run.wait_s})
