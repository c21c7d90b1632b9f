"""Learning while routing in a centre that hires: policies side by side on common random numbers.

    python -m benchmarks.cold_start [--quick] --json OUT [--plot PNG]

Each seed draws a small world (``--agents`` agents, ``--intents`` intents) where
``--new-hires`` of the agents join at the start of day 2 with tenure 0 and ``--past-hires``
were hired ``--warm-days`` before the run (an earlier cohort: its first days are in the
history, so the new hires' tenure band has data), and runs ``fcfs``,
``ml-batch`` (the population model + agent effects frozen at the warm start: the model trained
once), ``ml-live`` (the issue's "live estimates but no exploration": live agent effects with
forgetting, without the cohort level of the prior: a new hire starts at the centre and moves
with its own outcomes), ``ml-learn`` (live estimates + hierarchical cold-start prior + budgeted
Thompson exploration; the new-hire ramp with ``--ramp-bonus`` > 0, off by default) and ``oracle``
(the truth) on the same contacts and outcome draws; and, reported in the details and the plot
only, ``ml-live-prior`` (live estimates + the cold-start prior, no exploration, no ramp).
The learning policies start from ``--warm-days`` (14) days of the tenured agents' history
(the world's history generator; the new hires are not in it) and read CSAT as an early proxy
of resolution (``--no-csat-proxy``: an ablation without it). Resolution is the mean of the
world's true expected resolution over the contacts served
that day (common random numbers; lower variance than the drawn outcome). Outcomes reach the learning policies
``--label-delay-h`` after wrap-up (72 h: the repeat window).

JSON keys (issue 9, exactly these; spreads, per-seed figures and settings go to
``OUT.details.json``): ``days`` ([{day, policy, uplift_share}]: mean over seeds of the
policy's share of the oracle's resolution uplift over fcfs that day, with ``sd`` over
seeds), ``new_hire_contacts_to_003`` (median over new hires of ml-learn of the contacts
handled until the agent's estimated resolution rate is within +-0.03 of its truth, the mean
true expected resolution of its contacts, and stays so; null if fewer than half get there),
``new_hire_work_ratio`` (new hires' contacts per staffed hour on their first day / tenured
agents', neither new nor earlier hires, ml-learn; the details add the busy-time ratio),
``exploration_cost`` (resolution points of ml-live minus ml-learn, days 2+; the details add
ml-live-prior minus ml-learn: exploration + ramp on the same prior), ``tick_overhead`` (p99 of
an exploring 1000 x 1000 tick / a plain tick's, same run).

``--work-floor R --work-floor-days D``: ml-learn with the new-hire work floor
(:mod:`assign.learn.floor`; off by default, ``docs/learn.md`` 5.6), and ``ml-learn-no-floor``
(ml-learn as without the flag) run as its paired control; the details add
``work_floor_cost_vs_ml_learn_no_floor`` (points, days 2+), ``work_floor_cost_by_day`` and
``exploration_cost_without_floor`` (ml-live - ml-learn-no-floor). The priced floor of ``docs/learn.md`` 5.9
(opt-in; its rule failed on day 2 by 0.001 against ml-live): ``--work-floor 0.8 --work-floor-reference-days 30
--work-floor-cap 0.065 --work-floor-start 0.065 --work-floor-handle --work-floor-clip-gap``.
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial

import numpy as np
import pandas as pd
from tqdm import tqdm

from assign.constants import DAY_S
from assign.learn import EffectEstimates, Explore, LearnScorer, LiveEstimates, ModelScorer, PopulationModel, WorkFloor
from assign.learn.policy import LearnPolicy
from assign.learn.ramp import Ramp
from assign.learn.warm import history_outcomes
from assign.router import Router
from assign.sim.engine import SERVED, SimConfig, simulate
from assign.sim.policies import make_policy
from assign.sim.worldsource import WorldSource
from assign.world.centre import generate_history, generate_world, hire_days, history_world, past_hires

POLICIES = ("fcfs", "ml-batch", "ml-live", "ml-learn", "oracle")
#: Run and reported in the details and the plot, not in the issue's JSON: ml-learn without exploration
#: (live estimates + cold-start prior), the ``ml-live`` of earlier runs.
EXTRA_POLICIES = ("ml-live-prior",)
RUN_POLICIES = POLICIES + EXTRA_POLICIES
#: With ``--work-floor``: ml-learn without the floor (the control, paired; details and plot only).
FLOOR_CONTROL = "ml-learn-no-floor"
LEARNING = ("ml-batch", "ml-live", "ml-live-prior", "ml-learn", FLOOR_CONTROL)


class _Tracked(LearnPolicy):
    """ml-learn that records, after each batch of outcomes, the new hires' estimates and
    how many contacts each had handled by then."""

    def start(self, run) -> None:
        super().start(run)
        self.hires = np.flatnonzero(hire_days(run.source.world.agents) == 1)
        self.handled = np.zeros(run.n_agents, np.int64)
        self.trace: list[tuple[int, int, float]] = []  # (agent, contacts handled, estimate)

        self.margins = {int(a): [] for a in self.hires}  # population logits of each hire's served contacts

    def assign(self, view):
        ci, ai = super().assign(view)
        np.add.at(self.handled, ai, 1)
        for e in self._started[len(self._started) - len(ci):]:
            if e[2] in self.margins:
                self.margins[e[2]].append(e[4])
        return ci, ai

    def observed(self, view) -> None:
        snap = view.snapshot(view.waiting[:0], self.hires)
        if self.model is None:  # the posterior-mean scorer: the agent level of the hierarchy
            post, rows = self.scorer.posterior(snap)
            est = [float(post.agent_mean[r]) for r in rows]
        else:  # the model + effect's rate over the contacts the hire served so far
            est = [self.scorer.estimate(snap, margins=np.asarray(self.margins[int(a)]), agent_row=k)
                   for k, a in enumerate(self.hires)]
        self.trace += [(int(a), int(self.handled[a]), e) for a, e in zip(self.hires, est) if np.isfinite(e)]


@dataclass
class SeedResult:
    per_day: pd.DataFrame           # day, policy, resolution
    contacts_to_003: list[float]
    work_ratio: float
    trace: pd.DataFrame
    work_ratios: dict  # every policy's (fcfs: the quality-blind reference)
    busy_ratios: dict  # every policy's handle seconds per staffed hour, hires / tenured (diagnostic)
    contacts_to_003_same: list[float] = None  # against the truth on the contacts served so far
    work_parts: dict = None  # every policy's work_parts (the ratio's decomposition)


def _staffed_day_s(source: WorldSource, day: int) -> np.ndarray:
    """Seconds each agent is on shift during day ``day`` (0-based)."""
    plan = source.shifts(horizon_s=(day + 2) * DAY_S)
    out = np.zeros(len(source.agents.ids))
    on_since = {}
    lo, hi = day * DAY_S, (day + 1) * DAY_S
    for t, a, on in zip(plan.t_s, plan.agent, plan.on):
        if on:
            on_since[a] = t
        elif a in on_since:
            out[a] += max(0.0, min(t, hi) - max(on_since.pop(a), lo))
    for a, t in on_since.items():
        out[a] += max(0.0, hi - max(t, lo))
    return out


def warm_history(world, *, days: int, seed: int) -> pd.DataFrame | None:
    """A ``days``-day history of the agents working on day 1 (the new hires are not in it; a
    past cohort hired ``days`` before the start is, from its first day), each at its tenure of
    then: what the centre knows before day 1 (shift it by ``-days`` to end at the run's start)."""
    if days <= 0:
        return None
    return generate_history(history_world(world, days=days), days=days, seed=20_000 + seed)


def _policy(name: str, *, hist, shift, label_delay_h: float, rule_scorer: bool, csat_proxy: bool,
            ramp: Ramp | None = None, work_floor: WorkFloor | None = None):
    """The benchmark's policies on the population model + agent effects (or with ``rule_scorer``
    the rule-based score + posterior mean, and the rule-based ml-batch). ``ml-batch``: the model
    frozen at the warm start. ``ml-live`` (the issue's "live estimates, no exploration"): live
    effects without the cohort level (a new hire starts at the centre, what the frozen model
    gives it, and moves with its own outcomes only). ``ml-live-prior``: live effects + the
    hierarchical cold-start prior, no exploration. ``ml-learn``: + budgeted exploration + the
    new-hire ``ramp`` and ``work_floor``; ``ml-learn-no-floor``: ml-learn without the floor."""
    if name not in LEARNING or (rule_scorer and name == "ml-batch"):
        return make_policy(name)
    cls = _Tracked if name == "ml-learn" else LearnPolicy
    warm = {"warm_outcomes": history_outcomes(hist, shift=shift)} if rule_scorer and hist is not None else \
        {"warm_history": hist, "warm_shift": shift}
    learn = name in ("ml-learn", FLOOR_CONTROL)
    return cls(name=name, explore=Explore() if learn else None, label_delay_s=label_delay_h * 3600,
               csat_proxy=csat_proxy, frozen=name == "ml-batch", cohort_prior=name != "ml-live",
               ramp=ramp if learn else None, work_floor=work_floor if name == "ml-learn" else None, **warm)


def _day2_sums(run, source: WorldSource, hires: np.ndarray) -> dict[str, np.ndarray]:
    """Day 2 (the hires' first day): per group (0 hires, 1 tenured: neither new nor past hires;
    agents on shift that day) the contacts started, their handle seconds and the staffed hours."""
    staffed = _staffed_day_s(source, 1) / 3600.0
    served = run.status == SERVED
    start_day = np.floor((run.stream.arrival_s + np.nan_to_num(run.wait_s)) / DAY_S)
    m = served & (start_day == 1)
    n = np.bincount(run.agent[m], minlength=len(staffed)).astype(float)
    h = np.bincount(run.agent[m], weights=run.handle_s[m], minlength=len(staffed))
    is_hire = np.zeros(len(staffed), bool)
    is_hire[hires] = True
    ok = staffed > 0
    groups = (is_hire & ok, ~is_hire & ~past_hires(source.world.agents) & ok)
    return {k: np.array([v[g].sum() for g in groups]) for k, v in (("contacts", n), ("handle_s", h),
                                                                   ("staffed_h", staffed))}


def work_ratio(run, source: WorldSource, hires: np.ndarray, *, busy: bool = False) -> float:
    """New hires' served contacts per staffed hour on their first day (day 2) / tenured agents'
    (the agents neither new nor past hires). ``busy``: handle seconds per staffed hour instead of
    contacts (a diagnostic: how much of their time the router fills, whatever their speed)."""
    s = _day2_sums(run, source, hires)
    rate = s["handle_s" if busy else "contacts"] / s["staffed_h"]
    return float(rate[0] / rate[1])


def work_parts(run, source: WorldSource, hires: np.ndarray) -> dict[str, float]:
    """The work ratio's parts, day 2: ``contacts`` (the issue's ratio) = ``busy`` (handle seconds
    per staffed hour, hires / tenured) / ``handle`` (mean handle seconds per contact, hires /
    tenured); and each group's occupancy (handle seconds per staffed second; a chat agent's
    overlapping contacts each count, so it can pass 1)."""
    s = _day2_sums(run, source, hires)
    occ = s["handle_s"] / (s["staffed_h"] * 3600.0)
    per = s["handle_s"] / s["contacts"]
    return {"contacts": float(s["contacts"][0] / s["staffed_h"][0] / (s["contacts"][1] / s["staffed_h"][1])),
            "busy": float(occ[0] / occ[1]), "handle": float(per[0] / per[1]),
            "occupancy_hires": float(occ[0]), "occupancy_tenured": float(occ[1])}


def hire_errors(run, pol: _Tracked) -> tuple[pd.DataFrame, list[float], list[float]]:
    """The hires' estimate trace with its error against the truth (``error``: the issue's
    figure, against the mean true expected resolution of all the contacts the hire served over
    the run; ``error_same``: against the mean over the contacts it had served by then, the set the
    estimate is computed on), and per hire the contacts it had handled when each error entered
    +-0.03 for good (NaN: never)."""
    served = run.status == SERVED
    start = run.stream.arrival_s + np.nan_to_num(run.wait_s)
    truth, sofar = {}, {}
    for a in pol.hires:
        m = np.flatnonzero(served & (run.agent == a))
        tp = run.truth_p_resolved[m[np.argsort(start[m], kind="stable")]]
        truth[a] = float(tp.mean()) if len(tp) else np.nan
        sofar[a] = np.cumsum(tp) / np.arange(1, len(tp) + 1)
    trace = pd.DataFrame(pol.trace, columns=["agent", "handled", "estimate"])
    trace["error"] = trace["estimate"] - trace["agent"].map(truth)
    ref = [sofar[a][min(max(h, 1), len(sofar[a])) - 1] if len(sofar[a]) else np.nan
           for a, h in zip(trace["agent"], trace["handled"])]
    trace["error_same"] = trace["estimate"] - np.asarray(ref, float)
    to_003, to_same = [], []
    for a in pol.hires:
        t = trace[trace["agent"] == a].sort_values("handled", kind="stable")
        for col, out in (("error", to_003), ("error_same", to_same)):
            bad = np.flatnonzero(~(np.abs(t[col].to_numpy()) <= 0.03))
            last_bad = bad[-1] if len(bad) else -1
            out.append(float(t["handled"].iloc[last_bad + 1]) if last_bad + 1 < len(t) else np.nan)
    return trace, to_003, to_same


def benchmark_world(seed: int, *, n_agents: int, n_intents: int, new_hires: float, past: float, warm_days: int):
    """The world of benchmark seed ``seed`` (world seed ``1000 + seed``)."""
    return generate_world(seed=1000 + seed, n_agents=n_agents, n_intents=n_intents, new_hires=new_hires,
                          n_customers=50 * n_agents, past_hires=past, past_hire_days=float(warm_days))


def day_resolution(run, *, days: int) -> list[float]:
    """Per day (1..``days``, by arrival) the mean true expected resolution of the contacts served."""
    served = run.status == SERVED
    day = np.floor(run.stream.arrival_s / DAY_S).astype(int)
    return [float(run.truth_p_resolved[(day == d) & served].mean()) for d in range(days)]


def run_seed(seed: int, *, days: int, n_agents: int, n_intents: int, new_hires: float, window_s: float,
             label_delay_h: float, warm_days: int = 14, csat_proxy: bool = True,
             rule_scorer: bool = False, ramp: Ramp | None = None, past: float = 0.0,
             work_floor: WorkFloor | None = None) -> SeedResult:
    world = benchmark_world(seed, n_agents=n_agents, n_intents=n_intents, new_hires=new_hires, past=past,
                            warm_days=warm_days)
    src = WorldSource(world)
    hist = warm_history(world, days=warm_days, seed=seed)
    shift = -pd.Timedelta(days=warm_days)
    rows, runs = [], {}
    for name in RUN_POLICIES + ((FLOOR_CONTROL,) if work_floor is not None else ()):
        pol = _policy(name, hist=hist, shift=shift, label_delay_h=label_delay_h, rule_scorer=rule_scorer,
                      csat_proxy=csat_proxy, ramp=ramp, work_floor=work_floor)
        cfg = SimConfig(days=days, window_s=0.0 if name == "fcfs" else window_s)
        run = simulate(source=src, policy=pol, seed=seed, config=cfg)
        runs[name] = (run, pol)
        rows += [(d, name, r) for d, r in enumerate(day_resolution(run, days=days), 1)]
    run, pol = runs["ml-learn"]
    hires = pol.hires
    trace, to_003, to_same = hire_errors(run, pol)
    parts = {name: work_parts(r, src, hires) for name, (r, _) in runs.items()}
    return SeedResult(per_day=pd.DataFrame(rows, columns=["day", "policy", "resolution"]), contacts_to_003=to_003,
                      work_ratio=parts["ml-learn"]["contacts"], trace=trace.assign(seed=seed),
                      work_ratios={k: v["contacts"] for k, v in parts.items()},
                      busy_ratios={k: v["busy"] for k, v in parts.items()}, contacts_to_003_same=to_same,
                      work_parts=parts)


def tick_overhead(*, repeats: int, scorer: str = "posterior") -> dict[str, float]:
    """p50/p99 of an exploring 1000 x 1000 tick and a plain one (same scorer, same live state).
    ``scorer``: ``posterior`` (the posterior-mean scorer on a synthetic snapshot) or ``model``
    (ml-learn's population model + agent effects, warm-started from 2 days of a 1000-agent
    world's history and ticking that world's peak)."""
    if scorer == "model":
        from benchmarks.scoring import workload

        world, snap = workload(seed=7, n_contacts=1000, n_agents=1000)
        history = generate_history(world, days=2, seed=7)
        model = PopulationModel.fit(history)
        live = EffectEstimates()
        live.observe(history_outcomes(history).merge(model.history_predictions(history), left_on="decision_id",
                                                    right_on="contact_id").drop(columns="contact_id"))
        make = partial(ModelScorer, model=model, live=live)
    else:
        from assign.workload import synthetic_snapshot

        snap = synthetic_snapshot(n_contacts=1000, n_agents=1000, seed=0)
        rng = np.random.default_rng(0)
        live = LiveEstimates(intents=snap.intents)
        n = 20_000
        live.observe(pd.DataFrame({"decision_id": np.arange(n).astype(str),
                                   "agent_id": rng.choice(snap.agents.ids, n), "intent": rng.choice(snap.intents, n),
                                   "resolved": (rng.random(n) < 0.7) * 1.0, "csat": np.nan, "handle_s": np.nan,
                                   "known_at": pd.Timestamp(snap.at)}))
        make = partial(LearnScorer, live=live)
    plain = Router(scorer=make(), live=live)
    explore = Router(scorer=make(), live=live, explore=Explore())
    times: dict[str, list[float]] = {"plain": [], "explore": []}
    for _ in range(repeats):  # interleaved: the same machine load for both
        for name, r in (("plain", plain), ("explore", explore)):
            t0 = time.perf_counter()
            r.tick(snap)
            times[name].append((time.perf_counter() - t0) * 1e3)
    p = {k: (float(np.percentile(v, 50)), float(np.percentile(v, 99))) for k, v in times.items()}
    return {"plain_p50_ms": p["plain"][0], "plain_p99_ms": p["plain"][1], "explore_p50_ms": p["explore"][0],
            "explore_p99_ms": p["explore"][1], "ratio_p99": p["explore"][1] / p["plain"][1]}


def summarise(results: list[SeedResult], *, days: int) -> dict:
    per = pd.concat([r.per_day.assign(seed=k) for k, r in enumerate(results)])
    wide = per.pivot_table(index=["seed", "day"], columns="policy", values="resolution")
    gap = wide["oracle"] - wide["fcfs"]
    pols = [p for p in RUN_POLICIES + (FLOOR_CONTROL,) if p in wide.columns]
    out_days = []
    for d in range(1, days + 1):
        for p in pols:
            share = ((wide[p] - wide["fcfs"]) / gap).xs(d, level="day")
            out_days.append({"day": d, "policy": p, "uplift_share": float(share.mean()), "sd": float(share.std(ddof=1))
                             if len(share) > 1 else None, "resolution": float(wide[p].xs(d, level="day").mean()),
                             "by_seed": [round(float(x), 4) for x in share.to_numpy()]})
    later = wide[wide.index.get_level_values("day") >= 2]
    cost = float(((later["ml-live"] - later["ml-learn"]) * 100).mean())
    cost_prior = float(((later["ml-live-prior"] - later["ml-learn"]) * 100).mean())
    floor = {} if FLOOR_CONTROL not in pols else {  # the work floor's own cost, paired on the same seeds
        "work_floor_cost_vs_ml_learn_no_floor": float(((later[FLOOR_CONTROL] - later["ml-learn"]) * 100).mean()),
        "work_floor_cost_by_day": {str(d): float(((g[FLOOR_CONTROL] - g["ml-learn"]) * 100).mean())
                                   for d, g in later.groupby(level="day")},
        "exploration_cost_without_floor": float(((later["ml-live"] - later[FLOOR_CONTROL]) * 100).mean())}
    to = [x for r in results for x in r.contacts_to_003]
    reached = [x for x in to if np.isfinite(x)]
    # a hire that never got there counts as +inf; the median is defined when most got there
    median = float(np.median(np.where(np.isfinite(to), to, np.inf))) if len(reached) * 2 > len(to) else None
    return {"days": out_days, "new_hire_contacts_to_003": median,
            "new_hire_contacts_to_003_reached": f"{len(reached)}/{len(to)}",
            "new_hire_contacts_to_003_by_seed": [_median_or_none(r.contacts_to_003) for r in results],
            "new_hire_work_ratio": float(np.mean([r.work_ratio for r in results])),
            "new_hire_work_ratio_by_seed": [r.work_ratio for r in results],
            "new_hire_work_ratio_by_policy": {p: float(np.mean([r.work_ratios[p] for r in results]))
                                              for p in pols},
            "new_hire_work_ratio_by_policy_seed": {p: [r.work_ratios[p] for r in results] for p in pols},
            "new_hire_busy_ratio_by_policy": {p: float(np.mean([r.busy_ratios[p] for r in results]))
                                              for p in pols},
            "new_hire_busy_ratio_by_policy_seed": {p: [r.busy_ratios[p] for r in results] for p in pols},
            "exploration_cost": cost, "exploration_and_ramp_cost_vs_ml_live_prior": cost_prior, **floor,
            "new_hire_contacts_to_003_per_hire": [None if not np.isfinite(x) else x for x in to],
            **_same_contacts(results),
            "new_hire_work_parts_by_policy": {p: {k: float(np.mean([r.work_parts[p][k] for r in results]))
                                                  for k in results[0].work_parts[p]} for p in pols},
            "new_hire_error_at": error_at(pd.concat([r.trace for r in results]), (1, 50, 150, 300, 600))}


def _same_contacts(results: list[SeedResult]) -> dict:
    """Contacts to +-0.03 against the truth on the contacts served so far (the details)."""
    to = [x for r in results for x in r.contacts_to_003_same]
    return {"new_hire_contacts_to_003_same_contacts": _median_or_none(to),
            "new_hire_contacts_to_003_same_contacts_reached": f"{int(np.isfinite(to).sum())}/{len(to)}",
            "new_hire_contacts_to_003_same_contacts_per_hire": [None if not np.isfinite(x) else x for x in to]}


def error_at(trace: pd.DataFrame, counts) -> dict:
    """Per count n: the distribution over hires of (estimate - truth) at the first estimate
    after the hire had handled n contacts (hires that never got there left out)."""
    out = {}
    for n in counts:
        t = trace[trace["handled"] >= n].sort_values("handled", kind="stable")
        e = t.groupby(["seed", "agent"])["error"].first().to_numpy()
        out[str(n)] = None if not len(e) else {
            "hires": len(e), "mean": float(e.mean()), "median_abs": float(np.median(np.abs(e))),
            "share_within_003": float(np.mean(np.abs(e) <= 0.03)),
            "q10": float(np.quantile(e, 0.1)), "q90": float(np.quantile(e, 0.9))}
    return out


def _median_or_none(to: list[float]) -> float | None:
    """Median contacts to +-0.03 (never reached = +inf); None when fewer than half get there."""
    reached = np.isfinite(to)
    return float(np.median(np.where(reached, to, np.inf))) if reached.sum() * 2 > len(to) else None


def plot(results: list[SeedResult], summary: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(11, 4))
    tr = pd.concat([r.trace for r in results])
    tr = tr[tr["handled"] >= 1]
    if len(tr):
        bins = np.unique(np.r_[0, np.geomspace(1, max(tr["handled"].max(), 2), 12).astype(int)])
        tr["bin"] = pd.cut(tr["handled"], bins, include_lowest=True)
        g = tr.groupby("bin", observed=True)["error"].agg(lambda e: np.median(np.abs(e)))
        ax[0].plot([b.right for b in g.index], g.to_numpy(), marker="o")
    ax[0].axhline(0.03, ls="--", c="grey")
    ax[0].set(xscale="log", xlabel="contacts handled by the new hire", ylabel="|estimate - truth| (median)",
              title="New hires: estimated resolution rate error (ml-learn)")
    d = pd.DataFrame(summary["days"])
    for p in d["policy"].unique():
        s = d[d["policy"] == p]
        ax[1].errorbar(s["day"], s["uplift_share"], yerr=s["sd"], label=p, capsize=3)
    ax[1].set(xlabel="day", ylabel="share of oracle uplift over fcfs",
              title="Uplift share per day (mean, sd over seeds)")
    ax[1].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def plot_work(details: dict, path: str) -> None:
    """The first-day work ratio's parts per policy (``new_hire_work_parts_by_policy``): contacts per
    staffed hour (the issue's ratio, band 0.75-1.25), handle seconds per staffed hour, handle
    seconds per contact; each hires / tenured."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    parts = details["new_hire_work_parts_by_policy"]
    pols = [p for p in ("fcfs", "ml-batch", "ml-live", "ml-live-prior", FLOOR_CONTROL, "ml-learn", "oracle")
            if p in parts]
    fig, ax = plt.subplots(figsize=(10, 3.8))
    x = np.arange(len(pols))
    for k, (key, label) in enumerate((("contacts", "contacts / staffed h (issue)"),
                                      ("busy", "handle s / staffed h"), ("handle", "handle s / contact"))):
        ax.bar(x + (k - 1) * 0.27, [parts[p][key] for p in pols], 0.27, label=label)
    ax.axhspan(0.75, 1.25, color="grey", alpha=0.15, lw=0)
    ax.axhline(1.0, c="grey", lw=0.8)
    ax.set(xticks=x, xticklabels=pols, ylabel="new hires / tenured, day 2",
           title="New hires' first day: work ratio and its parts (mean over seeds)")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=110)


KEYS = ("days", "new_hire_contacts_to_003", "new_hire_work_ratio", "exploration_cost", "tick_overhead")
DAY_KEYS = ("day", "policy", "uplift_share")


def split(out: dict) -> tuple[dict, dict]:
    """The issue's JSON (exactly its keys) and the details (spreads, per seed, settings)."""
    main_out = {k: out[k] for k in KEYS}
    main_out["days"] = [{k: d[k] for k in DAY_KEYS} for d in out["days"] if d["policy"] in POLICIES]
    details = {k: v for k, v in out.items() if k not in KEYS}
    details["days"] = out["days"]
    return main_out, details


def details_path(json_out: str) -> str:
    """``OUT.details.json`` next to ``OUT`` (``x.json`` -> ``x.details.json``)."""
    return json_out[:-5] + ".details.json" if json_out.endswith(".json") else json_out + ".details.json"


def _floor(a) -> WorkFloor | None:
    """ml-learn's work floor from the command line (None with ``--work-floor 0``: off)."""
    if a.work_floor <= 0:
        return None
    return WorkFloor(ratio=a.work_floor, days=a.work_floor_days, reference_days=a.work_floor_reference_days,
                     lambda_max=a.work_floor_cap, start=a.work_floor_start, handle=a.work_floor_handle,
                     clip_gap=a.work_floor_clip_gap)


def parser() -> argparse.ArgumentParser:
    """The benchmark's command line."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="2 seeds x 3 days, small ticks: a few minutes")
    ap.add_argument("--json", dest="json_out", required=True, help="write the results here")
    ap.add_argument("--plot", default=None, help="PNG of the new-hire error curve and the uplift shares")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--days", type=int, default=5)
    ap.add_argument("--agents", type=int, default=30)
    ap.add_argument("--intents", type=int, default=6)
    ap.add_argument("--new-hires", type=float, default=0.2)
    ap.add_argument("--past-hires", type=float, default=0.2,
                    help="share of agents hired --warm-days before the run (an earlier cohort; 0: none)")
    ap.add_argument("--seed0", type=int, default=0, help="first seed (tuning runs use seeds apart from 0-4)")
    ap.add_argument("--window-s", type=float, default=20.0)
    ap.add_argument("--label-delay-h", type=float, default=72.0)
    ap.add_argument("--tick-repeats", type=int, default=30)
    ap.add_argument("--jobs", type=int, default=1, help="seeds run in this many processes")
    ap.add_argument("--warm-days", type=int, default=14,
                    help="days of tenured-agent history the learning policies start from (0: none)")
    ap.add_argument("--no-csat-proxy", action="store_true",
                    help="ablation (with --rule-scorer): resolution outcomes only")
    ap.add_argument("--ramp-bonus", type=float, default=0.0,
                    help="ml-learn's new-hire ramp: value bonus at tenure 0 (default 0: off, docs/learn.md 3.2)")
    ap.add_argument("--ramp-days", type=float, default=3.0, help="tenure (days) where the ramp ends")
    ap.add_argument("--work-floor", type=float, default=0.0,
                    help="ml-learn's new-hire work floor: ratio r of the hires' contacts per staffed hour to the "
                         "tenured agents' (0: off; docs/learn.md 5.6); adds ml-learn-no-floor, the control")
    ap.add_argument("--work-floor-days", type=float, default=1.0, help="tenure (days) the work floor protects")
    ap.add_argument("--work-floor-reference-days", type=float, default=None,
                    help="tenure (days) of the floor's reference agents (default: --work-floor-days; learn.md 5.9)")
    ap.add_argument("--work-floor-cap", type=float, default=0.15, help="the floor's multiplier cap (lambda_max)")
    ap.add_argument("--work-floor-start", type=float, default=0.0,
                    help="the multiplier a hire starts from (feed-forward; = the cap: a fixed price that only falls)")
    ap.add_argument("--work-floor-handle", action="store_true",
                    help="price the floor per unit of the hire's time (handle-time proxy, assign.learn.handle)")
    ap.add_argument("--work-floor-clip-gap", action="store_true",
                    help="bound the floor's relative surplus per step at the ratio (needed with a start above 0)")
    ap.add_argument("--rule-scorer", action="store_true",
                    help="the previous design: rule-based score + posterior mean, rule-based ml-batch")
    return ap


def main(argv: list[str] | None = None) -> int:
    a = parser().parse_args(argv)
    seeds, days, reps = (2, 3, 8) if a.quick else (a.seeds, a.days, a.tick_repeats)
    t0 = time.perf_counter()
    job = partial(run_seed, days=days, n_agents=a.agents, n_intents=a.intents, new_hires=a.new_hires,
                  window_s=a.window_s, label_delay_h=a.label_delay_h, warm_days=a.warm_days,
                  csat_proxy=not a.no_csat_proxy, rule_scorer=a.rule_scorer,
                  ramp=Ramp(bonus=a.ramp_bonus, days=a.ramp_days) if a.ramp_bonus > 0 else None, past=a.past_hires,
                  work_floor=_floor(a))
    if a.jobs > 1:  # seeds in separate processes; the same results as one process (each seed is seeded)
        with ProcessPoolExecutor(a.jobs) as pool:
            results = list(tqdm(pool.map(job, range(a.seed0, a.seed0 + seeds)), total=seeds, desc="seeds"))
    else:
        results = [job(s) for s in tqdm(range(a.seed0, a.seed0 + seeds), desc="seeds")]
    out = summarise(results, days=days)
    tick = tick_overhead(repeats=reps)
    out["tick_overhead"] = tick["ratio_p99"]
    out["tick_ms"] = tick
    out["tick_ms_model_scorer"] = tick_overhead(repeats=reps, scorer="model")
    out["settings"] = {"seeds": seeds, "days": days, "agents": a.agents, "intents": a.intents,
                       "new_hires": a.new_hires, "past_hires": a.past_hires, "seed0": a.seed0,
                       "window_s": a.window_s, "label_delay_h": a.label_delay_h,
                       "warm_days": a.warm_days, "csat_proxy": not a.no_csat_proxy,
                       "ramp": {"bonus": a.ramp_bonus, "days": a.ramp_days},
                       "work_floor": None if a.work_floor <= 0 else _floor(a).__dict__,
                       "scorer": "rules" if a.rule_scorer else "population model + agent effects",
                       "tick_repeats": reps, "machine": f"{platform.machine()}, shared 2 cores",
                       "wall_s": round(time.perf_counter() - t0, 1)}
    main_out, details = split(out)
    with open(a.json_out, "w") as f:
        json.dump(main_out, f, indent=1)
    with open(details_path(a.json_out), "w") as f:
        json.dump(details, f, indent=1)
    if a.plot:
        plot(results, out, a.plot)
        plot_work(details, a.plot[:-4] + "-work.png" if a.plot.endswith(".png") else a.plot + "-work.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
