"""Staffing per hour of week for a service-level target (``assign staff``), and the what-if
knobs of ``assign simulate`` (scale staffing and arrivals, per-hour overrides).

Staffing: Erlang A (M/M/n+M) gives the first guess of each hour from that hour's arrival
rate, the scenario's mean handle time and a patience rate read from its survival curves;
then the scenario itself (its empirical handle times and patience, hours carrying queues
into the next) is simulated, and every hour whose pooled simulated service level (or
abandonment) misses the target gets one more agent, until every staffed hour meets it or
the round limit is reached. Knobs act on the scenario before the source is built, so the
engine is unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from assign.constants import DAY_S
from assign.sim.erlang import erlang_a
from assign.sim.scenario import HOURS_PER_WEEK, MAX_AGENTS, Arrivals, Scenario, Staffing
from assign.validate import Problems

_WEEK_S = HOURS_PER_WEEK * 3600.0


# --------------------------------------------------------------------------- what-if knobs

def what_if(scenario: Scenario, *, staffing_scale: float = 1.0, arrival_scale: float = 1.0,
            overrides: pd.DataFrame | None = None) -> Scenario:
    """The scenario with staffing and arrival rates scaled, then per-hour overrides applied.

    ``overrides``: rows ``hour_of_week`` (0..167) with ``agents`` (whole agents on shift)
    and/or ``arrival_scale`` (multiplies that hour's rates, after the global scale). Scaled
    staffing is rounded to the nearest whole agent (the simulator staffs whole agents); slot
    staffing (``staffing.slots``) is scaled alike, and an hour's override sets its slots.
    """
    p = Problems()
    p.number("--staffing-scale", staffing_scale, lo=0, hi=100)
    p.number("--arrival-scale", arrival_scale, lo=0, hi=100)
    st = scenario.staffing
    agents = np.round(st.agents * staffing_scale).astype(np.int64)
    slots = None if st.slots is None else np.round(st.slots * staffing_scale).astype(np.int64)
    rate = scenario.arrivals.rate * arrival_scale
    if overrides is not None:
        _apply_overrides(p, overrides, agents, rate, slots)
    most = max(int(agents.max(initial=0)), 0 if slots is None else int(slots.max(initial=0)))
    if most > MAX_AGENTS:
        p.add("staffing", f"{most} agents in one hour is above the limit {MAX_AGENTS}")
    p.raise_if_any(what="what-if")
    names = _names(scenario, most)
    return replace(scenario, staffing=replace(st, kind="hour_of_week", agents=agents, slots=slots),
                   arrivals=Arrivals(kind="hour_of_week", rate=rate), agent_names=names)


def _apply_overrides(p: Problems, df: pd.DataFrame, agents: np.ndarray, rate: np.ndarray,
                     slots: np.ndarray | None = None) -> None:
    """Per-hour overrides in place; an hour's ``agents`` also sets each of its slots (slot staffing)."""
    if "hour_of_week" not in df or not ({"agents", "arrival_scale"} & set(df.columns)):
        p.add("overrides", "expected columns hour_of_week and agents and/or arrival_scale")
        return
    seen = set()
    for i, row in enumerate(df.to_dict("records")):
        where = f"overrides row {i + 2}"
        h = p.number(f"{where}.hour_of_week", _num(row["hour_of_week"]), lo=0, hi=HOURS_PER_WEEK - 1, integer=True)
        if h is None:
            continue
        if h in seen:
            p.add(where, f"hour_of_week {int(h)} given twice")
        seen.add(h)
        if "agents" in row and not pd.isna(row["agents"]):
            a = p.number(f"{where}.agents", _num(row["agents"]), lo=0, hi=MAX_AGENTS, integer=True)
            if a is not None:
                agents[int(h)] = int(a)
                if slots is not None:
                    per = len(slots) // HOURS_PER_WEEK
                    slots[int(h) * per:(int(h) + 1) * per] = int(a)
        if "arrival_scale" in row and not pd.isna(row["arrival_scale"]):
            s = p.number(f"{where}.arrival_scale", _num(row["arrival_scale"]), lo=0, hi=100)
            if s is not None:
                rate[:, int(h)] *= s


def _num(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return x


def _names(scenario: Scenario, n: int) -> tuple[str, ...]:
    """The scenario's agent names, extended with generated ones when more are staffed."""
    names = list(scenario.agent_names)
    taken = set(names)
    k = 0
    while len(names) < n:
        cand = f"extra-{k:04d}"
        k += 1
        if cand not in taken:
            names.append(cand)
    return tuple(names)


# --------------------------------------------------------------------------- staffing

@dataclass(frozen=True)
class StaffingPlan:
    """``table``: per hour of week the arrival rate, the Erlang A guess and its predicted
    service level and abandonment, the final agents and their simulated service level and
    abandonment (pooled over the replications); ``rounds``: correction rounds run;
    ``met``: every staffed hour meets the targets in simulation."""

    table: pd.DataFrame
    rounds: int
    met: bool
    settings: dict


def mean_patience_s(scenario: Scenario) -> float:
    """Mean patience of an exponential fit: for curves, abandonments / exposure over the
    observed range, (1 - S(T)) / integral_0^T S(t) dt, pooled over types by share."""
    pt = scenario.patience
    if pt is None:
        return float("inf")
    if pt.kind == "exponential":
        return float(pt.mean_s)
    rates = []
    for t, share in zip(scenario.types, scenario.shares):
        ts, surv = pt.curves[t]
        x = np.concatenate([[0.0], ts])
        s = np.concatenate([[1.0], surv])
        exposure = float(np.sum(s[:-1] * np.diff(x)))
        rates.append(share * ((1 - s[-1]) / exposure if exposure > 0 else 0.0))
    rate = float(np.sum(rates))
    return 1.0 / rate if rate > 0 else float("inf")


def mean_service_s(scenario: Scenario) -> float:
    """Mean handle time over types by share (type-wide samples of an empirical service)."""
    sv = scenario.service
    if sv.kind != "empirical":
        return float(sv.mean_s)
    return float(sum(sh * sv.samples[(t, "")].mean() for t, sh in zip(scenario.types, scenario.shares)))


def erlang_a_guess(*, rate_per_hour: np.ndarray, service_s: float, patience_s: float, target_sl: float,
                   target_s: float, max_abandon: float | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fewest agents per hour meeting the targets under Erlang A; predicted SL and abandonment."""
    n_out = np.zeros(len(rate_per_hour), dtype=np.int64)
    sl_out = np.full(len(rate_per_hour), np.nan)
    ab_out = np.full(len(rate_per_hour), np.nan)
    patience = min(patience_s, 1e7)
    for h, r in enumerate(rate_per_hour):
        if r <= 0:
            continue
        n = max(1, int(np.floor(r * service_s / 3600.0 * 0.5)))
        while n <= MAX_AGENTS:
            e = erlang_a(agents=n, arrival_rate_per_s=r / 3600.0, mean_service_s=service_s,
                         mean_patience_s=patience, threshold_s=target_s)
            if e.service_level >= target_sl and (max_abandon is None or e.p_abandon <= max_abandon):
                break
            n += 1
        n_out[h], sl_out[h], ab_out[h] = n, e.service_level, e.p_abandon
    return n_out, sl_out, ab_out


def plan_staffing(scenario: Scenario, *, target_sl: float, target_s: float, max_abandon: float | None = None,
                  weeks: int = 2, seeds: int = 2, max_rounds: int = 12, progress=None) -> StaffingPlan:
    """Erlang A first guess per hour of week, then corrected by simulating the scenario
    (``weeks`` x ``seeds`` replications pooled per hour of week) until every hour with
    arrivals meets ``target_sl`` within ``target_s`` (and ``max_abandon``)."""
    p = Problems()
    p.number("--target-sl", target_sl, lo=0, lo_open=True, hi=1)
    p.number("--target-s", target_s, lo=0, lo_open=True, hi=DAY_S)
    p.number("--max-abandon", max_abandon, lo=0, hi=1, optional=True)
    p.number("--weeks", weeks, lo=1, hi=52, integer=True)
    p.number("--seeds", seeds, lo=1, hi=100, integer=True)
    p.number("--max-rounds", max_rounds, lo=0, hi=100, integer=True)
    p.raise_if_any(what="option")
    rate = scenario.arrivals.rate.sum(axis=0)
    service, patience = mean_service_s(scenario), mean_patience_s(scenario)
    guess, sl_a, ab_a = erlang_a_guess(rate_per_hour=rate, service_s=service, patience_s=patience,
                                       target_sl=target_sl, target_s=target_s, max_abandon=max_abandon)
    agents = guess.copy()
    staffed = rate > 0
    rounds = 0
    while True:
        sl, ab, offered = _simulate_hours(scenario, agents, target_s=target_s, weeks=weeks, seeds=seeds)
        miss = staffed & ((sl < target_sl) | ((ab > max_abandon) if max_abandon is not None else False))
        if progress:
            progress(f"round {rounds}: {int(agents.sum())} agent-hours/week, {int(miss.sum())} hour(s) below target")
        if not miss.any() or rounds >= max_rounds:
            break
        agents = agents + miss.astype(np.int64)
        rounds += 1
    table = pd.DataFrame({"hour_of_week": np.arange(HOURS_PER_WEEK), "arrivals_per_hour": np.round(rate, 4),
                          "erlang_a_agents": guess, "erlang_a_service_level": sl_a, "erlang_a_abandonment": ab_a,
                          "agents": agents, "simulated_offered": offered, "simulated_service_level": sl,
                          "simulated_abandonment": ab})
    settings = {"target_sl": target_sl, "target_s": target_s, "max_abandon": max_abandon, "weeks": weeks,
                "seeds": seeds, "mean_service_s": service, "mean_patience_s": patience}
    return StaffingPlan(table=table, rounds=rounds, met=not miss.any(), settings=settings)


def _simulate_hours(scenario: Scenario, agents: np.ndarray, *, target_s: float, weeks: int,
                    seeds: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Service level, abandonment and offered calls per hour of week, pooled over runs."""
    from assign.sim.engine import ABANDONED, SERVED, SimConfig, simulate
    from assign.sim.policies import FCFS
    from assign.sim.source import ScenarioSource

    sc = replace(scenario, staffing=Staffing(kind="hour_of_week", agents=agents),
                 agent_names=_names(scenario, int(agents.max(initial=0))))
    src = ScenarioSource(sc)
    cfg = SimConfig(days=7.0 * weeks, sl_threshold_s=target_s)
    offered = np.zeros(HOURS_PER_WEEK)
    good = np.zeros(HOURS_PER_WEEK)
    aband = np.zeros(HOURS_PER_WEEK)
    for seed in range(seeds):
        run = simulate(source=src, policy=FCFS(), seed=seed, config=cfg)
        how = sc.hour_of_week(run.stream.arrival_s)
        offered += np.bincount(how, minlength=HOURS_PER_WEEK)
        good += np.bincount(how, weights=((run.status == SERVED) & (run.wait_s <= target_s)).astype(float),
                            minlength=HOURS_PER_WEEK)
        aband += np.bincount(how, weights=(run.status == ABANDONED).astype(float), minlength=HOURS_PER_WEEK)
    with np.errstate(invalid="ignore", divide="ignore"):
        return good / offered, aband / offered, offered


def plot_staffing(plan: StaffingPlan, path: str) -> None:
    """Two panels over the week: agents (Erlang A guess, final) and service level (Erlang A
    prediction, simulated with the final staffing, the target)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = plan.table
    x = t["hour_of_week"].to_numpy()
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(13, 5.6), sharex=True)
    a1.step(x, t["erlang_a_agents"], where="post", label="Erlang A first guess", color="C0")
    a1.step(x, t["agents"], where="post", label="after simulation check", color="C1")
    a1.set_ylabel("agents on shift")
    a1.legend(fontsize=8)
    a2.plot(x, t["erlang_a_service_level"], ".", color="C0", label="Erlang A prediction (first guess)")
    a2.plot(x, t["simulated_service_level"], ".", color="C1", label="simulated, final staffing")
    a2.axhline(plan.settings["target_sl"], color="k", lw=0.8, ls="--", label="target")
    a2.set_ylabel(f"service level ({plan.settings['target_s']:g} s)")
    a2.set_xlabel("hour of week (0 = Monday 00h)")
    a2.set_xticks(range(0, HOURS_PER_WEEK + 1, 24))
    a2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
