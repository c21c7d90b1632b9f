"""Replay-fidelity model variants: what a calibrated scenario alone cannot express.

Used by ``benchmarks/replay_fidelity.py`` to test hypotheses on why a replay of a real log
misses its service level (docs/real-data.md, section 6):

- :func:`slot_capacity`: busy-when-queued capacity per slot of week at a resolution finer
  than the hour (15 or 30 minutes), optionally reading congestion from one class of calls
  only (unidentified callers, whose waits are pure queueing in the bank's log);
- :func:`routing_delay`: Kaplan–Meier curve of the delay before an identified caller can be
  routed, read from hours in which every unidentified caller was answered at once;
- :class:`FidelitySource`: a :class:`~assign.sim.source.ScenarioSource` whose shifts follow a
  slot staffing and whose identified callers become routable only after that delay (they can
  hang up during it); :func:`replay_kpis` adds the delay back to the simulated waits.

The engine has no notion of a contact that is queued but not yet routable; the source
models it by moving the contact's arrival to the end of its delay and shortening its
patience, and the KPIs put the delay back (``wait = delay + engine wait``). An engine
field ``routable_after_s`` per contact would do the same in the engine itself.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from assign.constants import DAY_S, WEEK_S
from assign.errors import InputError
from assign.schema import Contacts
from assign.sim.calibrate import (
    _occupancy_seconds,
    kaplan_meier,
    queue_population,
)
from assign.sim.source import ContactStream, ScenarioSource, ShiftPlan, stream_rng

#: Random stream of the routing delays (beside the source's arrival/patience/outcome streams).
STREAM_DELAY = 11
_DAY_S, _WEEK_S = int(DAY_S), int(WEEK_S)  # whole seconds: slots are integer-indexed


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


def routing_delay(history: pd.DataFrame, *, min_unidentified: int = 3) -> tuple[np.ndarray, np.ndarray, int]:
    """Kaplan–Meier curve of an identified caller's delay before it can be answered.

    Read from the (day, clock hour) cells with at least ``min_unidentified`` unidentified
    callers, every one answered at once (no congestion: an agent was free at each of their
    arrivals). There an identified caller's wait is taken as pure delay: answered = event at
    its wait, hung up = censored. Returns (t_s, survival, calls used).
    """
    h = history[queue_population(history)]
    served = ~h["abandoned"].astype(bool).to_numpy()
    ident = identified(h)
    cell = pd.to_datetime(h["arrival_at"], utc=True).dt.floor("h").to_numpy()
    wait = h["wait_s"].to_numpy(dtype=float)
    anon = pd.DataFrame({"cell": cell[~ident], "at_once": (served & (wait == 0))[~ident]})
    g = anon.groupby("cell")["at_once"].agg(["size", "all"])
    quiet = g.index[(g["size"] >= min_unidentified) & g["all"]]
    m = ident & np.isin(cell, quiet) & np.isfinite(wait)
    if not m.any():
        raise InputError([("history: no identified caller in an uncongested hour: the routing delay "
                           "cannot be estimated")], what="history")
    t, s = kaplan_meier(wait[m], served[m])
    if not len(t):
        raise InputError([("history: no identified caller was answered in an uncongested hour: the routing "
                           "delay cannot be estimated")], what="history")
    return t, s, int(m.sum())


class FidelitySource(ScenarioSource):
    """A scenario source with slot staffing (``slot_agents``: agents per slot of week, any
    whole divisor of the hour) and a routing delay for identified callers (``delay``: a
    (t_s, survival) curve, scaled by ``delay_scale``; a draw beyond the curve's last point
    takes its last time). Without both it is the scenario's."""

    def __init__(self, scenario, *, replay: pd.DataFrame | None = None, slot_agents: np.ndarray | None = None,
                 delay: tuple[np.ndarray, np.ndarray] | None = None, delay_scale: float = 1.0) -> None:
        super().__init__(scenario, replay=replay)
        if slot_agents is not None and (_WEEK_S % len(slot_agents) or 3600 % (_WEEK_S // len(slot_agents))):
            raise InputError([(f"slot_agents: {len(slot_agents)} slots do not divide the week into whole "
                               "divisors of the hour")], what="fidelity source")
        self.slot_agents = None if slot_agents is None else np.asarray(slot_agents, dtype=np.int64)
        self.delay = delay
        self.delay_scale = float(delay_scale)
        #: The last stream's bookkeeping (per original contact): delay, order, early hang-ups.
        self.pre: dict | None = None

    def shifts(self, *, horizon_s: float) -> ShiftPlan:
        if self.slot_agents is None:
            return super().shifts(horizon_s=horizon_s)
        st = self.scenario.start
        slot = _WEEK_S // len(self.slot_agents)
        base = st.weekday() * _DAY_S + st.hour * 3600 + st.minute * 60 + st.second
        times, agents, on = [], [], []
        prev, t = 0, -float(base % slot)
        while t < horizon_s:
            k = min(int(self.slot_agents[int((base + t) // slot) % len(self.slot_agents)]), self.scenario.n_agents)
            if k != prev:
                lo, hi = min(k, prev), max(k, prev)
                times += [max(t, 0.0)] * (hi - lo)
                agents += list(range(lo, hi))
                on += [k > prev] * (hi - lo)
            prev, t = k, t + slot
        return ShiftPlan(t_s=np.asarray(times, float), agent=np.asarray(agents, np.int64), on=np.asarray(on, bool))

    def contacts(self, *, seed: int, horizon_s: float) -> ContactStream:
        st = super().contacts(seed=seed, horizon_s=horizon_s)
        n = len(st)
        d = np.zeros(n)
        if self.delay is not None and n:
            t, s = self.delay
            who = np.array([c is not None for c in st.block.customer_id], dtype=bool)
            u = stream_rng(seed, STREAM_DELAY).random(n)
            k = np.searchsorted(-np.asarray(s), -u, side="left")  # inverse of the step survival
            dd = np.asarray(t, float)[np.minimum(k, len(t) - 1)] * self.delay_scale
            d = np.where(who, dd, 0.0)
        early = (d > 0) & (st.patience_s <= d)  # hangs up before it can be routed
        keep = np.flatnonzero(~early)
        order = keep[np.lexsort((keep, st.arrival_s[keep] + d[keep]))]
        self.pre = {"delay": d, "order": order, "early": np.flatnonzero(early), "early_wait": st.patience_s[early],
                    "early_arrival_s": st.arrival_s[early]}
        b = st.block
        block = Contacts(**{f: (v[order] if isinstance(v := getattr(b, f), np.ndarray) else v)
                            for f in b.__dataclass_fields__})
        return ContactStream(block=block, arrival_s=st.arrival_s[order] + d[order],
                             patience_s=st.patience_s[order] - d[order], credit_s=st.credit_s[order], u=st.u[order])


def replay_kpis(source: FidelitySource, run, *, sl_threshold_s: float = 20.0) -> dict[str, float]:
    """KPIs of a run on ``source`` with the routing delays put back into the waits and the
    callers who hung up during their delay counted as abandoned (after their patience)."""
    from assign.sim.engine import ABANDONED
    from assign.sim.kpis import kpis_of

    pre = source.pre
    status = np.concatenate([run.status, np.full(len(pre["early"]), ABANDONED)])
    wait = np.concatenate([run.wait_s + pre["delay"][pre["order"]], pre["early_wait"]])
    handle = np.concatenate([run.handle_s, np.full(len(pre["early"]), np.nan)])
    nan = np.full(len(status), np.nan)
    return kpis_of(status=status, wait_s=wait, handle_s=handle, resolved=nan, csat=nan, truth_p=nan,
                   sl_threshold_s=sl_threshold_s)


def contact_outcomes(source: FidelitySource, run) -> pd.DataFrame:
    """Per offered contact of a run on ``source``: ``arrival_s`` (joined the queue), ``status``
    (engine codes) and ``wait_s`` with the routing delay put back, early hang-ups included."""
    pre = source.pre
    d = pre["delay"][pre["order"]]
    from assign.sim.engine import ABANDONED

    return pd.DataFrame({
        "arrival_s": np.concatenate([run.stream.arrival_s - d, pre["early_arrival_s"]]),
        "status": np.concatenate([run.status, np.full(len(pre["early"]), ABANDONED)]),
        "wait_s": np.concatenate([run.wait_s + d, pre["early_wait"]]),
    })
