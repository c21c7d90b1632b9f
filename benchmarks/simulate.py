"""Simulator benchmarks (2-core machine figures go in docs/simulation.md).

    python -m benchmarks.simulate [--json OUT] [--quick]
        One simulated day of the standard synthetic centre (200 agents, >= 40,000 contacts)
        under fcfs (window 0) and ml-batch (the Router, 5 s windows; --model DIR gives it the
        XGBoost scorer, else the rule-based SkillScorer):
        wall time and contacts per second. --quick: a quarter day. --baseline: ml-batch again
        with ``RouterConfig(small_tick=False)`` (the general retrieval and the OR-Tools graph on
        every tick) in the same run, for the small-tick fast path's speed-up (same KPIs).
    python -m benchmarks.simulate --erlang [--seeds N]
        The Erlang C validation run of tests/test_sim_erlang.py on N independent seeds: the
        spread of the relative errors of P(wait) and mean wait, to show the test's 3% bound
        is several standard deviations wide, not tuned to one seed.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

#: The Erlang C validation case (shared with the test).
ERLANG_CASE = dict(agents=2, rho=0.5, mean_service_s=60.0, contacts=500_000)


def erlang_run(seed: int, *, agents: int, rho: float, mean_service_s: float, contacts: int) -> dict:
    """One long M/M/c run under fcfs; relative errors against the closed form."""
    from assign.sim.engine import SERVED, SimConfig, simulate
    from assign.sim.erlang import erlang_c, mmc_mean_wait_s
    from assign.sim.policies import FCFS
    from assign.sim.scenario import mmc_scenario
    from assign.sim.source import ScenarioSource

    lam = rho * agents / mean_service_s
    days = contacts / (lam * 86400.0)
    src = ScenarioSource(mmc_scenario(arrival_rate_per_hour=lam * 3600.0, mean_service_s=mean_service_s,
                                      agents=agents, days=days))
    run = simulate(source=src, policy=FCFS(), seed=seed, config=SimConfig(days=days, drain_s=0.0))
    served = run.status == SERVED
    w = run.wait_s[served]
    pw0 = erlang_c(agents=agents, offered_erlangs=lam * mean_service_s)
    w0 = mmc_mean_wait_s(agents=agents, arrival_rate_per_s=lam, mean_service_s=mean_service_s)
    return {"seed": seed, "contacts": int(len(run.status)), "p_wait": float((w > 0).mean()), "p_wait_erlang": pw0,
            "mean_wait_s": float(w.mean()), "mean_wait_erlang_s": w0,
            "p_wait_rel_err": float((w > 0).mean() / pw0 - 1), "mean_wait_rel_err": float(w.mean() / w0 - 1),
            "wall_s": run.wall_s}


def day_run(policy: str, *, days: float, window_s: float, seed: int = 0, model_dir: str | None = None,
            router: tuple[tuple[str, object], ...] = ()) -> dict:
    from assign.sim.engine import SimConfig, simulate
    from assign.sim.kpis import summarise
    from assign.sim.runner import PolicySpec
    from assign.sim.worldsource import WorldSource
    from assign.world.centre import generate_world

    src = WorldSource(generate_world(seed=2026))  # the standard centre: 200 agents, 30 intents
    pol = PolicySpec(name=policy, model_dir=model_dir, router=router).build()
    t0 = time.perf_counter()
    if policy in ("ml-batch", "ml-greedy", "oracle"):
        from assign.sim.engine import Engine

        # load/compile outside the clock
        pol.start(Engine(source=src, policy=pol, seed=seed, config=SimConfig(days=0.01)).info)
    t_load = time.perf_counter() - t0
    c0 = time.process_time()
    run = simulate(source=src, policy=pol, seed=seed, config=SimConfig(days=days, window_s=window_s))
    cpu_s = time.process_time() - c0  # steadier than the wall time on a shared machine
    k = summarise(run).kpis
    return {
        "policy": policy,
        "router": dict(router),
        "scorer": getattr(getattr(pol, "scorer", None), "name", None),
        "window_s": window_s,
        "days": days,
        "contacts": run.n_contacts,
        "decisions": run.n_decisions,
        "wall_s": round(run.wall_s, 3),
        "cpu_s": round(cpu_s, 3),
        "contacts_per_s": round(run.n_contacts / run.wall_s, 1),
        "load_s": round(t_load, 3),
        "resolution_rate": round(k["resolution_rate"], 4),
        "service_level": round(k["service_level"], 4),
        "abandonment_rate": round(k["abandonment_rate"], 4),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.simulate")
    ap.add_argument("--json", default=None, help="write the results as JSON here")
    ap.add_argument("--quick", action="store_true", help="a quarter day instead of one day")
    ap.add_argument("--erlang", action="store_true", help="Erlang C validation spread over seeds")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--model", default=None, help="model directory for ml-batch (default: SkillScorer)")
    ap.add_argument("--baseline", action="store_true",
                    help="also ml-batch with RouterConfig(small_tick=False), in the same run")
    args = ap.parse_args(argv)
    machine = {"cpus": os.cpu_count(), "python": platform.python_version(), "machine": platform.machine()}
    if args.erlang:
        rows = []
        for s in range(args.seeds):
            rows.append(erlang_run(1000 + s, **ERLANG_CASE))
            r = rows[-1]
            print(
                f"seed {r['seed']}: P(wait) err {r['p_wait_rel_err']:+.4f}  mean wait err "
                f"{r['mean_wait_rel_err']:+.4f}  ({r['contacts']} contacts, {r['wall_s']:.1f} s)",
                file=sys.stderr,
            )
        pe = np.array([r["p_wait_rel_err"] for r in rows])
        we = np.array([r["mean_wait_rel_err"] for r in rows])
        out = {
            "case": ERLANG_CASE,
            "machine": machine,
            "runs": rows,
            "p_wait_rel_err": {"mean": pe.mean(), "sd": pe.std(ddof=1), "max_abs": np.abs(pe).max()},
            "mean_wait_rel_err": {"mean": we.mean(), "sd": we.std(ddof=1), "max_abs": np.abs(we).max()},
        }
    else:
        days = 0.25 if args.quick else 1.0
        res = [
            day_run("fcfs", days=days, window_s=0.0),
            day_run("ml-batch", days=days, window_s=5.0, model_dir=args.model),
        ]
        if args.baseline:
            res.append(day_run("ml-batch", days=days, window_s=5.0, model_dir=args.model,
                               router=(("small_tick", False),)))
        out = {"benchmark": "simulate one day of the standard centre", "machine": machine, "results": res}
        for r in res:
            print(
                f"{r['policy']:<9} {r['router'] or ''} scorer {r['scorer']} window {r['window_s']:>4g}s: "
                f"{r['contacts']} contacts in {r['wall_s']:.2f} s (CPU {r['cpu_s']:.2f} s) "
                f"= {r['contacts_per_s']:.0f} contacts/s ({r['decisions']} decisions; load {r['load_s']:.2f} s)"
            )
    text = json.dumps(out, indent=1, default=float)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")
    if args.erlang:
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
