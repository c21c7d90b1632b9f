"""The new hires' first-day work ratio against ml-learn's exploration budget (a diagnostic).

    python -m benchmarks.cold_start_budget [--seeds 5 --seed0 100 --budgets 0 0.005 0.02 0.05] --json OUT

On the cold-start benchmark's worlds (:mod:`benchmarks.cold_start`, 2 days: the hires join on
day 2) runs ml-learn with each exploration budget (0: exploration off, i.e. ml-live-prior) and
ml-live (no cohort prior, no exploration), and reports per seed the first-day work ratio (the
benchmark's definition, :func:`benchmarks.cold_start.work_parts`) and the day-2 mean true
resolution, so that what the budget does to the ratio and what it costs can be read side by side.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pandas as pd
from tqdm import tqdm

DAY_S = 86400.0


def seed_ratios(seed: int, *, budgets, days: int = 2, warm_days: int = 14) -> list[dict]:
    from assign.learn.explore import Explore
    from assign.learn.policy import LearnPolicy
    from assign.sim.engine import SERVED, SimConfig, simulate
    from assign.sim.worldsource import WorldSource
    from assign.world.centre import hire_days
    from benchmarks.cold_start import benchmark_world, warm_history, work_parts

    world = benchmark_world(seed, n_agents=30, n_intents=6, new_hires=0.2, past=0.2, warm_days=warm_days)
    src, hist = WorldSource(world), warm_history(world, days=warm_days, seed=seed)
    hires = np.flatnonzero(hire_days(world.agents) == 1)
    out = []
    for name, b in [("ml-live", None)] + [("ml-learn", float(x)) for x in budgets]:
        pol = LearnPolicy(name=name, explore=Explore(budget=b) if b else None, label_delay_s=72 * 3600.0,
                          warm_history=hist, warm_shift=-pd.Timedelta(days=warm_days), cohort_prior=name != "ml-live")
        run = simulate(source=src, policy=pol, seed=seed, config=SimConfig(days=days, window_s=20.0))
        served = run.status == SERVED
        day2 = served & (np.floor(run.stream.arrival_s / DAY_S) == 1)
        out.append({"seed": seed, "policy": name, "budget": b, **work_parts(run, src, hires),
                    "resolution_day2": float(run.truth_p_resolved[day2].mean())})
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", dest="json_out", required=True)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--seed0", type=int, default=100)
    ap.add_argument("--budgets", type=float, nargs="+", default=[0.0, 0.005, 0.02, 0.05])
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    rows = [r for s in tqdm(range(a.seed0, a.seed0 + a.seeds), desc="seeds") for r in seed_ratios(s, budgets=a.budgets)]
    df = pd.DataFrame(rows)
    df["budget"] = df["budget"].fillna(-1.0)  # ml-live
    summ = df.groupby(["policy", "budget"])[["contacts", "busy", "resolution_day2"]].agg(["mean", "std"])
    out = {"summary": {f"{p}|{b}": {f"{c}_{s}": float(v) for (c, s), v in r.items()}
                       for (p, b), r in summ.iterrows()},
           "per_seed": rows, "settings": {"seeds": a.seeds, "seed0": a.seed0, "budgets": a.budgets,
                                          "wall_s": round(time.perf_counter() - t0, 1)}}
    with open(a.json_out, "w") as f:
        json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
