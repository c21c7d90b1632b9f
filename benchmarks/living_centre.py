"""A living centre: the retraining loop against a frozen model on a centre that drifts for weeks.

    python -m benchmarks.living_centre [--quick] --json OUT [--plot PNG] [--workdir DIR] [--swap-pause-only]

One drifting centre (``--agents`` there on day 0, ``--intents`` intents + one launched later;
:mod:`assign.world.drift`): each week ``--hires`` agents join and as many leave, one intent's
difficulty jumps on day ``--shock-day``, the intent mix shifts and a new intent arrives on
day ``--mix-day``. A ``--pre-days`` history before day 0 (the synthetic logging policy)
trains the first champion (registered in a directory registry). Then, over ``--weeks`` weeks
and ``--seeds`` seeds (traffic and outcome draws; common random numbers across policies),
through the Dask runner (``--workers``):

- ``fcfs`` (event-driven), ``ml-batch`` (the first champion, frozen), ``loop``
  (:class:`assign.deploy.loop.LoopPolicy`: ml-learn on the champion + nightly retrain with
  promotion + hot swap + daily monitor), ``oracle`` (the truth), batch policies on
  ``--window-s`` windows;
- on the same centre without drift (``DriftSchedule.off()``): ``loop`` alone, for the
  monitor's false alarms.

Each week's share of the oracle's uplift over fcfs is :func:`assign.sim.kpis.uplift_share`
on the expected resolution (the truth's probability, mean over served contacts that arrived
that week; ratio of means over seeds, delta-method interval). ``swap_pause_ms`` is
:func:`assign.deploy.swap.measure_swap_pause` on the loop's router (champion and a
challenger swapped back and forth while ticks run): the longest tick that overlapped a swap
over the median tick (a ratio, named as the issue names it), with the swap's in-process steps
(hand-over, warm-up, canary tick) deferred to the gaps between ticks (``HotSwap.load(defer=True)``);
the details add ``between_ticks_ms`` (the longest deferred step: how much later the next tick
started), ``by_step`` (which step of a load the slow ticks overlapped), ``n_preempted`` and
``ratio_unpreempted`` (ticks the OS preempted, and the ratio without them),
``baseline_without_load`` (the same ticks while "swaps" only sleep as long as a load took: the
noise floor) and ``in_thread`` (the same swaps with those steps in the swapping thread).

JSON keys (issue 10, exactly these; intervals, per-seed figures, every retrain decision and
the settings go to ``OUT.details.json``): ``weeks`` ([{week, policy, uplift_share}]),
``promotions`` (every promotion: seed, day, version, reason, figures), ``alarm_delay_days``
(median over seeds of the days from the shock to the loop monitor's first alarm at or after
it; null when no seed alarmed), ``false_alarms_per_week`` (driftless centre: days with an
alarm per simulated week, all seeds), ``swap_pause_ms``.
"""
from __future__ import annotations

import argparse
import functools
import json
import platform
import shutil
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from assign.deploy.loop import FrozenModelPolicy, LoopConfig, LoopPolicy, loop_train_params
from assign.errors import InputError
from assign.sim.engine import SimConfig
from assign.sim.kpis import uplift_share
from assign.sim.policies import make_policy
from assign.sim.runner import replicate
from assign.world.centre import generate_history
from assign.world.drift import DriftingWorld, DriftSchedule, DriftSource, drifting_world

POLICIES = ("fcfs", "ml-batch", "loop", "oracle")
KEYS = ("weeks", "promotions", "alarm_delay_days", "false_alarms_per_week", "swap_pause_ms")
WEEK_KEYS = ("week", "policy", "uplift_share")


def first_champion(dw: DriftingWorld, *, pre_days: int, root: Path, label_delay_h: float,
                   history_rates: str = "absolute") -> tuple[Path, pd.DataFrame]:
    """The pre-period history and a registry whose champion was trained on it (``history_rates``:
    its agents' outcome-history rates, as the loop's retrains)."""
    from assign.deploy.registry import open_registry
    from assign.deploy.retrain import retrain

    pre = generate_history(dw.pre_period(days=pre_days), days=pre_days, seed=dw.base.seed)
    if root.exists():
        shutil.rmtree(root, onerror=_writable)
    root.mkdir(parents=True)
    reg = open_registry(root / "registry")
    start = pd.Timestamp(dw.base.start)
    d = retrain(pre, registry=reg, cutoff=start, window_days=float(pre_days), params=loop_train_params(),
                resolution_delay_h=label_delay_h, at=start, history_rates=history_rates)
    if not d.promoted:
        raise RuntimeError(f"the pre-period champion was not registered: {d.reason}")
    return root / "registry", pre


def run_world(dw: DriftingWorld, *, policies: tuple[str, ...], seeds: list[int], days: int, window_s: float,
              workers: int, root: Path, pre_days: int, loop_cfg: LoopConfig) -> tuple[list, list[dict]]:
    """Every policy on every seed of one centre; returns the run summaries and the loop's events."""
    registry, pre = first_champion(dw, pre_days=pre_days, root=root, label_delay_h=loop_cfg.label_delay_s / 3600,
                                   history_rates=loop_cfg.first_rates())
    from assign.deploy.registry import open_registry

    champion = open_registry(registry).path("champion")
    make = {"fcfs": lambda: make_policy("fcfs"), "oracle": lambda: make_policy("oracle"),
            "ml-batch": lambda: FrozenModelPolicy(model_dir=champion),
            "loop": lambda: LoopPolicy(registry=registry, workdir=root / "runs", pre_history=pre, config=loop_cfg,
                                       record=root / "events")}
    pols = {p: make[p]() for p in policies}
    base = SimConfig(days=days, window_s=window_s)
    configs = {"fcfs": replace(base, window_s=0.0)} if "fcfs" in pols else None
    out = replicate(source=DriftSource(dw), policies=pols, seeds=seeds, config=base, configs=configs,
                    workers=workers, progress=True)
    events = []
    for f in sorted((root / "events").glob("seed*.jsonl")):
        events += [json.loads(line) for line in f.read_text().splitlines() if line]
    return out, events


def weekly(summaries: list, *, weeks: int) -> list[dict]:
    """Per week and policy: the share of the oracle's uplift over fcfs (expected resolution),
    the ratio of means over seeds with its interval, and each seed's own share (the spread)."""
    rows = []
    for w in range(weeks):
        rows += _shares([replace(s, kpis=_days_kpis(s, range(7 * w, 7 * w + 7))) for s in summaries], week=w + 1)
    return rows


def daily(summaries: list, *, days: int) -> list[dict]:
    """The same shares per simulated day (how fast a policy recovers after a change)."""
    rows = []
    for d in range(days):
        rows += _shares([replace(s, kpis=_days_kpis(s, [d])) for s in summaries], day=d)
    return rows


def _shares(summaries: list, **at) -> list[dict]:
    rows = []
    for p in POLICIES:
        iv = uplift_share(summaries, policy=p, baseline="fcfs", ceiling="oracle", kpi="expected_resolution")
        by = {(s.policy, s.seed): s.kpis["expected_resolution"] for s in summaries}
        seeds = sorted(s.seed for s in summaries if s.policy == p)
        gap = [by[("oracle", k)] - by[("fcfs", k)] for k in seeds]
        own = [(by[(p, k)] - by[("fcfs", k)]) / g if g else float("nan") for k, g in zip(seeds, gap)]
        rows.append({**at, "policy": p, "uplift_share": iv.mean, "ci_low": iv.low, "ci_high": iv.high, "seeds": iv.n,
                     "expected_resolution": float(np.mean([by[(p, k)] for k in seeds])),
                     "share_by_seed": [float(x) for x in own], "oracle_gap_by_seed": [float(x) for x in gap]})
    return rows


def _days_kpis(s, days) -> dict:
    """Expected resolution of contacts that arrived on ``days`` (served-weighted days)."""
    days = [s.extra["by_day"][d] for d in days if d in s.extra["by_day"]]
    served = np.array([k["offered"] * (1 - k["abandonment_rate"] - k["unserved_rate"]) for k in days])
    er = np.array([k["expected_resolution"] for k in days])
    ok = np.isfinite(er) & (served > 0)
    return {"expected_resolution": float((er[ok] * served[ok]).sum() / served[ok].sum())}


def promotions(events: list[dict]) -> list[dict]:
    return [{"seed": e["seed"], "day": round(e["day"], 3), "version": e["version"], "champion_before": e["champion"],
             "reason": e["reason"], "comparison": e["comparison"], "champion_metrics": e["champion_metrics"],
             "challenger_metrics": e["challenger_metrics"], "rows": e["rows"],
             **({"deployed": e["deployed"]} if e.get("refit") is not None else {})}
            for e in events if e["event"] == "retrain" and e["promoted"]]


def shock_followed(events: list[dict], *, shock_day: float, seeds: list[int], after_days: float = 1.0) -> dict:
    """Per seed: days from the shock to the first promotion of a model whose training rows
    hold at least ``after_days`` of post-shock traffic (its training window ends that long
    after the shock; a deployed refit's at the cut-off): when a promoted champion can first reflect the shock."""
    out = {}
    for s in seeds:
        got = [e["day"] - shock_day for e in events if e["seed"] == s and e["event"] == "retrain" and e["promoted"]
               and e["eval_from"] and _day_of(e["cutoff"] if e.get("deployed") else e["eval_from"], e) - shock_day
               >= after_days]
        out[s] = min(got) if got else None
    return out


def _day_of(ts: str, e: dict) -> float:
    """Simulated day of timestamp ``ts``, from an event's own day and cut-off."""
    return e["day"] + (pd.Timestamp(ts) - pd.Timestamp(e["cutoff"])) / pd.Timedelta(days=1)


def alarm_delays(events: list[dict], *, shock_day: float, seeds: list[int]) -> dict[int, float | None]:
    """Per seed: days from the shock to the first (counted) monitor alarm at or after it."""
    out = {}
    for s in seeds:
        after = [e["day"] - shock_day for e in events
                 if e["seed"] == s and e["event"] == "monitor" and e["alarm"] and e["day"] >= shock_day]
        out[s] = min(after) if after else None
    return out


def false_alarms(events: list[dict], *, days: int, seeds: list[int]) -> dict:
    checks = [e for e in events if e["event"] == "monitor"]
    counted = sum(bool(e["alarm"]) for e in checks)
    raw = sum(bool(e["any_alarm"]) for e in checks)
    weeks = len(seeds) * days / 7.0
    return {"per_week": counted / weeks, "checks": len(checks), "alarms": counted, "weeks": weeks,
            "per_week_with_prediction_drift": raw / weeks,
            "alarm_names": sorted({a["name"] for e in checks if e["alarm"] for a in e["alarms"]})}


def swap_pause(dw: DriftingWorld, *, registry: Path, n_contacts: int = 40) -> dict:
    """The loop's router (learning scorer on the champion) ticking one window of the centre
    while versions are swapped in and out; see the module doc."""
    from assign.deploy.loop import resolution_weights
    from assign.deploy.registry import open_registry
    from assign.deploy.swap import HotSwap, measure_swap_pause
    from assign.learn import LearnScorer, LiveEstimates
    from assign.model.scorer import XGBScorer
    from assign.router import Router
    from assign.schema import Snapshot
    from assign.sim.source import at_time

    reg = open_registry(registry)
    w = dw.base
    arrivals = w.sample_arrivals(rng=np.random.default_rng(0), start_s=9 * 3600.0, end_s=10 * 3600.0)
    snap = Snapshot(snapshot_id="swap-window", at=at_time(w.start, 9 * 3600.0), intents=w.intents,
                    languages=w.languages, styles=w.styles, contacts=w.contacts_block(arrivals.iloc[:n_contacts]),
                    agents=w.agents_block(), meta={})
    live = LiveEstimates(intents=w.intents)
    first = XGBScorer.load(reg.path("champion"), weights=resolution_weights(), nthread=1)
    router = Router(scorer=LearnScorer(live=live, base=first), live=live, model_version=reg.resolve("champion"))
    # loads in a worker process (docs/deploy.md); hand-over, warm-up and canary between ticks
    hs = HotSwap(router, registry=reg, weights=resolution_weights(), nthread=1,
                 wrap=lambda x: LearnScorer(live=live, base=x))
    hs.worker.start()
    versions = [v["version"] for v in reg.versions()]
    out = {}
    for name, defer in (("deferred", True), ("in_thread", False)):
        turn, loads, steps = iter(range(10**6)), [], []

        def one(defer=defer, turn=turn, loads=loads, steps=steps) -> bool:
            r = hs.load(versions[next(turn) % len(versions)], canary=snap, defer=defer)
            loads.append(r.load_ms / 1e3)
            steps.extend([*hs.last_steps, *hs.worker.last_steps])
            return r.ok

        out[name] = measure_swap_pause(router, snap, swap=one, n_swaps=6, min_ticks=60,
                                       steps=lambda steps=steps: steps).to_dict()
        if name == "deferred":  # the noise floor: the same ticks while "swaps" only sleep as long as a load took
            sleep = functools.partial(time.sleep, float(np.mean(loads)))
            out["baseline_without_load"] = measure_swap_pause(router, snap, swap=lambda s=sleep: s() or True,
                                                              n_swaps=6, min_ticks=60).to_dict()
    hs.close()
    return {**out.pop("deferred"), **out}


def plot(out: dict, details: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 3, figsize=(17, 4.2))
    wk = pd.DataFrame(details["weeks"])
    for p in ("ml-batch", "loop", "oracle"):
        s = wk[wk["policy"] == p]
        err = [s["uplift_share"] - s["ci_low"], s["ci_high"] - s["uplift_share"]]
        ax[0].errorbar(s["week"], s["uplift_share"], yerr=err, marker="o", capsize=3, label=p)
    ax[0].axhline(0.9, ls="--", c="grey", lw=1)
    ax[0].axhline(0.0, c="k", lw=0.5)
    ax[0].set(xlabel="week", ylabel="share of oracle uplift over fcfs", xticks=sorted(wk["week"].unique()),
              title="Weekly share of the oracle's uplift (95% CI over seeds)")
    ax[0].legend()
    st = details["settings"]
    dy = pd.DataFrame(details["days"])
    for p in ("ml-batch", "loop"):
        s = dy[dy["policy"] == p]
        ax[2].plot(s["day"], s["uplift_share"], marker=".", label=p)
    ax[2].axhline(0.9, ls="--", c="grey", lw=1)
    ax[2].axvline(st["shock_day"], c="tab:orange", ls="--", label="shock")
    ax[2].axvline(st["mix_day"], c="tab:purple", ls=":", label="mix shift + new intent")
    for d in range(7, 7 * st["weeks"], 7):
        ax[2].axvline(d, c="grey", ls=":", lw=0.8)
    ax[2].set(xlabel="simulated day (dotted grey: hire and leaver)", ylabel="share of oracle uplift over fcfs",
              title="Daily share (ratio of means over seeds)")
    ax[2].legend(fontsize=7)
    for row, evs in enumerate((details["events"]["drift"], details["events"]["nodrift"])):
        for e in evs:
            if e["event"] == "monitor":
                y = row * (st["seeds"] + 1) + e["seed"] - st.get("seed_offset", 0)
                ax[1].scatter(e["day"], y, c="tab:red" if e["alarm"] else "lightgrey", s=14, marker="s")
            elif e["event"] == "retrain" and e["promoted"]:
                y = row * (st["seeds"] + 1) + e["seed"] - st.get("seed_offset", 0)
                ax[1].scatter(e["day"], y, marker="^", c="tab:green", s=28, zorder=3)
    ax[1].axvline(st["shock_day"], c="tab:orange", ls="--", label="shock")
    ax[1].axvline(st["mix_day"], c="tab:purple", ls=":", label="mix shift + new intent")
    ax[1].scatter([], [], c="tab:red", marker="s", label="monitor alarm")
    ax[1].scatter([], [], c="lightgrey", marker="s", label="monitor: no alarm")
    ax[1].scatter([], [], c="tab:green", marker="^", label="promotion")
    n = st["seeds"]
    ax[1].set_yticks([(n - 1) / 2, n + 1 + (n - 1) / 2], ["drift\n(seeds)", "no drift\n(seeds)"])
    ax[1].set(xlabel="simulated day", title="Daily monitor checks and promotions per seed")
    ax[1].legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def swap_pause_only(a: argparse.Namespace, *, work: Path, schedule: DriftSchedule) -> int:
    """``--swap-pause-only``: the swap measurement alone, again (it is the noisiest figure; a
    repeat costs seconds, a full run minutes)."""
    reg = next((r for r in (work / "drift" / "runs" / "seed0" / "registry", work / "nodrift" / "runs" / "seed0" /
                            "registry") if r.exists()), None)
    if reg is None:
        raise SystemExit(f"--swap-pause-only: no registry under {work}/(no)drift/runs/seed0: run the benchmark first")
    pause = swap_pause(centre(a, schedule=schedule), registry=reg)
    Path(a.json_out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.json_out).write_text(json.dumps({"swap_pause_ms": pause["ratio"]}, indent=1))
    Path(details_path(a.json_out)).write_text(json.dumps({"swap_pause": pause, "registry": str(reg),
                                                          "machine": f"{platform.machine()}, shared 2 cores"},
                                                         indent=1, default=str))
    return 0


def centre(a: argparse.Namespace, *, schedule: DriftSchedule) -> DriftingWorld:
    """The centre the command line describes, on ``schedule``."""
    return drifting_world(seed=a.world_seed, n_agents=a.agents, n_intents=a.intents, schedule=schedule,
                          occupancy=a.occupancy, monolingual=a.monolingual)


def details_path(json_out: str) -> str:
    return json_out[:-5] + ".details.json" if json_out.endswith(".json") else json_out + ".details.json"


def _writable(func, path, _exc) -> None:
    import os
    import stat

    os.chmod(Path(path).parent, stat.S_IRWXU)
    os.chmod(path, stat.S_IRWXU)
    func(path)


def _parser() -> argparse.ArgumentParser:
    """The benchmark's command line (``python -m benchmarks.living_centre --help``)."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="1 seed, 1 week (shock on day 3, mix shift on day 5), 8 agents: a minute or two")
    ap.add_argument("--json", dest="json_out", required=True)
    ap.add_argument("--plot", default=None, help="PNG: weekly uplift shares and the alarm timeline")
    ap.add_argument("--workdir", default=None, help="registries and run logs (default: OUT's name + .work)")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--seed-offset", type=int, default=0,
                    help="first seed (offset .. offset + seeds - 1; 10: the tuning seeds, docs/living-centre.md)")
    ap.add_argument("--occupancy", type=float, default=0.88, help="offered load over the day-0 staffed capacity")
    ap.add_argument("--monolingual", action="store_true",
                    help="every customer and agent speaks the first language (drifting_world(monolingual=True))")
    ap.add_argument("--weeks", type=int, default=4)
    ap.add_argument("--agents", type=int, default=12)
    ap.add_argument("--intents", type=int, default=6)
    ap.add_argument("--hires", type=int, default=2, help="agents hired (and leaving) per week")
    ap.add_argument("--shock-day", type=float, default=9.0)
    ap.add_argument("--mix-day", type=float, default=14.0)
    ap.add_argument("--pre-days", type=int, default=14)
    ap.add_argument("--window-s", type=float, default=120.0)
    ap.add_argument("--label-delay-h", type=float, default=6.0)
    ap.add_argument("--world-seed", type=int, default=2026)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--eval-days", type=float, default=2.0,
                    help="loop: evaluate challengers on the last N days of matured rows (default 2, loop10; "
                         "0: the window's newest 20%%, the design before)")
    ap.add_argument("--level-free-promotion", action="store_true",
                    help="loop: compare champion and challenger with each intent's level refitted on the evaluation "
                         "rows (PromotionRule.level_free; slope28b, opt-in)")
    ap.add_argument("--alarm-window-days", type=float, default=None,
                    help="loop: a counted monitor alarm starts a retrain on this short window (default: none)")
    ap.add_argument("--alarm-half-life-days", type=float, default=1.0, help="loop: that retrain's recency half-life")
    ap.add_argument("--live-half-life-days", type=float, default=30.0, help="loop: the live estimates' half-life")
    ap.add_argument("--level-half-life-h", type=float, default=12.0,
                    help="loop: online per-intent level recalibration, half-life in hours (0: off, the design "
                         "before loop4)")
    ap.add_argument("--level-prior-n", type=float, default=20.0, help="loop: the recalibration's pseudo-outcomes")
    ap.add_argument("--level-scale", choices=("probability", "logit"), default="probability",
                    help="loop: the scale the level offsets move the champion's score on (slope28: logit, opt-in)")
    ap.add_argument("--compare-as-routed", action="store_true",
                    help="loop: score the champion with its level offsets at a retrain (loop11, opt-in)")
    ap.add_argument("--level-rebase-on-swap", action="store_true",
                    help="loop: at a swap, rebase the level offsets onto the new champion (loop13)")
    ap.add_argument("--live-residual", action="store_true",
                    help="loop: the live part learns the outcomes' residuals on the base score it routed with, "
                         "shrunk, added to the base (loop14, opt-in); default: the absolute posterior mean")
    ap.add_argument("--live-hybrid", action="store_true",
                    help="loop: the live residual for the agents the champion knows, the mean of the champion's "
                         "score and the absolute posterior mean for those it does not (hires; hybrid17, opt-in)")
    ap.add_argument("--residual-centred", action="store_true",
                    help="loop, with --live-residual or --live-hybrid: each hourly batch's residuals centred per "
                         "intent before they are folded (hybrid18, opt-in)")
    ap.add_argument("--hybrid-new-intents", action="store_true",
                    help="loop, with --live-hybrid: pairs on an intent the champion has no rows of scored as the "
                         "hires' are, in the absolute form (hybrid19, opt-in)")
    ap.add_argument("--hybrid-hires-window", action="store_true",
                    help="loop, with --live-hybrid: an agent whose tenure is under the retrain window stays in the "
                         "hires' absolute form after a champion trained on its rows is promoted (hybrid23, opt-in)")
    ap.add_argument("--residual-half-life-days", type=float, default=None,
                    help="loop, with --live-residual or --live-hybrid: the residual totals' memory in days "
                         "(default: --live-half-life-days; hybrid20, opt-in)")
    ap.add_argument("--live-intent-parent", action="store_true",
                    help="loop: the absolute live estimates shrink each agent x intent towards the agent's rate "
                         "shifted by the intent's centre rate (slope33, opt-in)")
    ap.add_argument("--residual-band-days", type=float, nargs="+", default=None, metavar="DAYS",
                    help="loop, with --live-residual or --live-hybrid: tenure bounds (days) of the bands whose "
                         "residual strengths are fitted apart, e.g. 30: the first month apart (slope31, opt-in)")
    ap.add_argument("--residual-reset-on-swap", action="store_true",
                    help="loop, with --live-residual or --live-hybrid: empty the residual totals when a promoted "
                         "champion is swapped in (hybrid20, opt-in)")
    ap.add_argument("--residual-rebuild-on-swap", action="store_true",
                    help="loop, with --live-residual or --live-hybrid: at a swap, the residual totals folded again "
                         "against the new champion's predictions (rebuild26, opt-in)")
    ap.add_argument("--refit-full-window", action="store_true",
                    help="loop: a promoted challenger is refitted on its whole window, evaluation rows included, "
                         "and that refit deployed; a refit champion is compared through its recipe (refit15, opt-in)")
    ap.add_argument("--blend-previous", action="store_true",
                    help="loop: after a promotion, route with the mean of the new and the previous champion's "
                         "scores (loop15, opt-in)")
    ap.add_argument("--ood-scored", choices=("mean", "model", "hire"), default="model",
                    help="loop: how the champion scores a new intent's or a hire's pairs: its own prediction "
                         "(default, loop12), the same with a hire read as an agent with no history (hire, loop13), "
                         "or the tick's mean (the design before)")
    ap.add_argument("--monitor-no-waiting", action="store_true",
                    help="loop: leave contacts still waiting out of the monitor's window (the design before loop11)")
    ap.add_argument("--monitor-window-reference", action="store_true",
                    help="loop: the champion's calibration reference is its window only, not grown with the "
                         "traffic it routed since (the design before mon11)")
    ap.add_argument("--past-hire-weeks", type=int, default=0,
                    help="the drifting centre hired --hires agents (and lost as many) at each of this many week "
                         "boundaries before day 0 too, so the pre-period holds hires' first weeks (past25; default "
                         "0: no hire in the pre-period, the design before)")
    ap.add_argument("--worlds", default="drift,nodrift",
                    help="which centres to run (drift: weeks, promotions, alarm delay, swap pause; nodrift: false "
                         "alarms); a key whose centre did not run is null")
    ap.add_argument("--relative-rates", action="store_true",
                    help="loop (and the first champion, so ml-batch too): models fitted on agent outcome rates "
                         "relative to the centre's on each intent (FeatureSpec.history_rates; relrate15)")
    ap.add_argument("--relative-rates-retrains", action="store_true",
                    help="loop: the nightly retrains' challengers fitted on relative agent outcome rates, the first "
                         "champion (so ml-batch and the loop up to its first promotion) on absolute ones (relrate16)")
    ap.add_argument("--swap-pause-only", action="store_true",
                    help="only measure swap_pause_ms again, on the registry an earlier run with the same settings "
                         "left in --workdir (drift centre's seed 0); writes OUT with that key alone")
    return ap


def _loop_config(a: argparse.Namespace) -> LoopConfig:
    """The loop's settings from the parsed command line."""
    from assign.deploy.retrain import PromotionRule

    return LoopConfig(label_delay_s=a.label_delay_h * 3600.0, rule=PromotionRule(eval_days=a.eval_days or None,
                                                                                  level_free=a.level_free_promotion),
                      alarm_window_days=a.alarm_window_days, alarm_half_life_days=a.alarm_half_life_days,
                      live_half_life_days=a.live_half_life_days, level_half_life_h=a.level_half_life_h or None,
                      level_prior_n=a.level_prior_n, level_scale=a.level_scale, compare_as_routed=a.compare_as_routed,
                      ood_scored=a.ood_scored,
                      level_rebase_on_swap=a.level_rebase_on_swap, live_residual=a.live_residual,
                      live_hybrid=a.live_hybrid, residual_centred=a.residual_centred,
                      hybrid_new_intents=a.hybrid_new_intents, hybrid_hires_window=a.hybrid_hires_window,
                      residual_half_life_days=a.residual_half_life_days,
                      residual_reset_on_swap=a.residual_reset_on_swap,
                      residual_rebuild_on_swap=a.residual_rebuild_on_swap,
                      residual_band_days=None if a.residual_band_days is None else tuple(a.residual_band_days),
                      live_intent_parent=a.live_intent_parent, blend_previous=a.blend_previous,
                      monitor_waiting=not a.monitor_no_waiting,
                      monitor_reference_grows=not a.monitor_window_reference, refit_full_window=a.refit_full_window,
                      history_rates="relative" if a.relative_rates or a.relative_rates_retrains else "absolute",
                      first_history_rates="absolute" if a.relative_rates_retrains else None)


def main(argv: list[str] | None = None) -> int:
    ap = _parser()
    a = ap.parse_args(argv)
    if a.relative_rates and a.relative_rates_retrains:
        ap.error("--relative-rates and --relative-rates-retrains exclude each other (all models relative, or the "
                 "retrains only)")
    try:
        cfg = _loop_config(a)  # LoopConfig checks how its live-part switches combine
    except InputError as e:
        ap.error(str(e))
    if a.quick:
        a.seeds, a.weeks, a.agents, a.intents, a.pre_days, a.window_s = 1, 1, 8, 4, 4, 300.0
        a.shock_day, a.mix_day = 3.0, 5.0
    seeds = list(range(a.seed_offset, a.seed_offset + a.seeds))
    days = 7 * a.weeks
    try:
        schedule = DriftSchedule(weeks=a.weeks, hires_per_week=a.hires, leavers_per_week=a.hires,
                                 shock_day=a.shock_day, mix_day=a.mix_day, past_hire_weeks=a.past_hire_weeks)
    except InputError as e:
        ap.error(str(e))
    work = Path(a.workdir or (a.json_out[:-5] if a.json_out.endswith(".json") else a.json_out) + ".work")
    if a.swap_pause_only:
        return swap_pause_only(a, work=work, schedule=schedule)
    t0 = time.perf_counter()
    drift = centre(a, schedule=schedule)
    still = centre(a, schedule=DriftSchedule.off(weeks=a.weeks))
    common = dict(seeds=seeds, days=days, window_s=a.window_s, workers=a.workers, pre_days=a.pre_days, loop_cfg=cfg)
    worlds = set(a.worlds.split(","))
    summaries, ev_drift, ev_still = [], [], []
    if "drift" in worlds:
        summaries, ev_drift = run_world(drift, policies=POLICIES, root=work / "drift", **common)
    if "nodrift" in worlds:
        _, ev_still = run_world(still, policies=("loop",), root=work / "nodrift", **common)
    weeks = weekly(summaries, weeks=a.weeks) if summaries else []
    delays = alarm_delays(ev_drift, shock_day=a.shock_day, seeds=seeds)
    got = [d for d in delays.values() if d is not None]
    fa = false_alarms(ev_still, days=days, seeds=seeds) if "nodrift" in worlds else None
    ran = ("drift", drift) if ev_drift else ("nodrift", still) if ev_still else None
    pause = swap_pause(ran[1], registry=work / ran[0] / "runs" / f"seed{seeds[0]}" / "registry") if ran else None
    out = {"weeks": [{k: w[k] for k in WEEK_KEYS} for w in weeks], "promotions": promotions(ev_drift),
           "alarm_delay_days": float(np.median(got)) if len(got) * 2 > len(seeds) else None,
           "false_alarms_per_week": fa["per_week"] if fa else None, "swap_pause_ms": pause["ratio"] if pause else None}
    details = {"weeks": weeks, "days": daily(summaries, days=days) if summaries else [],
               "shock_followed_by_seed": shock_followed(ev_drift, shock_day=a.shock_day, seeds=seeds),
               "alarm_delay_by_seed": delays, "false_alarms": fa, "swap_pause": pause,
               "retrains": {"drift": [e for e in ev_drift if e["event"] == "retrain"],
                            "nodrift": [e for e in ev_still if e["event"] == "retrain"]},
               "promotions_nodrift": promotions(ev_still),
               "events": {"drift": ev_drift, "nodrift": ev_still},
               "world": {"shock_intent": drift.shock_intent, "new_intent": drift.new_intent,
                         "agents_total": int(len(drift.base.agents))},
               "settings": {"seeds": a.seeds, "seed_offset": a.seed_offset, "occupancy": a.occupancy,
                            "monolingual": a.monolingual, "weeks": a.weeks, "agents": a.agents, "intents": a.intents,
                            "hires_per_week": a.hires, "past_hire_weeks": a.past_hire_weeks,
                            "shock_day": a.shock_day, "mix_day": a.mix_day,
                            "pre_days": a.pre_days, "window_s": a.window_s, "label_delay_h": a.label_delay_h,
                            "world_seed": a.world_seed, "workers": a.workers, "quick": a.quick, "worlds": a.worlds,
                            "loop": {k: v for k, v in cfg.__dict__.items() if not k.startswith("_")},
                            "machine": f"{platform.machine()}, shared 2 cores",
                            "wall_s": round(time.perf_counter() - t0, 1)}}
    Path(a.json_out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.json_out).write_text(json.dumps(out, indent=1, default=str))
    Path(details_path(a.json_out)).write_text(json.dumps(details, indent=1, default=str))
    if a.plot and summaries:
        plot(out, details, a.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
