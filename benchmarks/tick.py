"""Tick latency: the engine against a naive pipeline, on seeded realistic workloads.

    python -m benchmarks.tick [--quick] [--json OUT]

Cases are contacts x agents (chat capacity up to 3, a shared agent-quality component), on two
kinds of centre: specialists (each agent skilled in ~40% of intents) and generalists (~85%).
For each case it times repeated ticks of the engine (eligibility, auction-priced top-K
retrieval, scoring of the candidates, min-cost flow on them) and, in the same run, the naive
pipeline (every pair scored, eligibility masked, min-cost flow on every eligible pair), and
reports the objective the pruning lost against the naive pipeline's optimum.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time

import numpy as np

from assign.config import RouterConfig
from assign.eligibility import eligible
from assign.router import Router
from assign.schema import CHANNELS
from assign.solve import Problem, solve_flow
from assign.solve import value as pair_value
from assign.workload import synthetic_snapshot

CASES = (("specialists", 50, 200, 0.4), ("specialists", 200, 1000, 0.4), ("specialists", 1000, 1000, 0.4),
         ("generalists", 1000, 1000, 0.85))
STAGES = ("retrieve", "score", "solve")


def _percentiles(xs: list[float]) -> tuple[float, float]:
    return float(np.percentile(xs, 50)), float(np.percentile(xs, 99))


def naive_tick(snapshot, *, scorer, config: RouterConfig) -> tuple[float, int, float]:
    """Every pair scored, ineligible ones masked, min-cost flow on all eligible pairs.
    Returns (objective, served, milliseconds)."""
    t0 = time.perf_counter()
    c, a = snapshot.contacts, snapshot.agents
    n, m = snapshot.n_contacts, snapshot.n_agents
    ci, ai = np.repeat(np.arange(n), m), np.tile(np.arange(m), n)
    score = scorer.score_pairs(snapshot, contact_idx=ci, agent_idx=ai)
    prof = a.skill[ai, c.intent[ci]]
    ok = eligible(prof.astype(np.float64), a.speaks[ai, c.language[ci]], a.free[ai, c.channel[ci]].astype(np.int64),
                  float(config.min_proficiency), bool(config.require_language))
    val = pair_value.combine(score=score, aging=pair_value.aging(urgency=c.urgency, waited_s=c.waited_s,
                                                                 config=config)[ci],
                             fairness=pair_value.fairness(idle_s=a.idle_s, config=config)[ai], config=config)
    problem = Problem(n_contacts=n, contact=ci[ok], resource=ai[ok] * len(CHANNELS) + c.channel[ci[ok]],
                      value=val[ok], capacity=a.free.reshape(-1))
    sol = solve_flow(problem)
    return problem.objective(sol.arcs), len(sol.arcs), (time.perf_counter() - t0) * 1e3


def run_case(*, name: str, snaps: list, repeats: int, naive_repeats: int, engine: Router) -> dict:
    n_snapshots = len(snaps)
    n_contacts, n_agents = snaps[0].n_contacts, snaps[0].n_agents
    times: list[float] = []
    cpu: list[float] = []  # process CPU per tick: on a shared machine, closer to the quiet time than the wall clock
    stages: dict[str, list[float]] = {k: [] for k in STAGES}
    for r in range(repeats):
        c0 = time.process_time()
        res = engine.tick(snaps[r % n_snapshots])
        cpu.append((time.process_time() - c0) * 1e3)
        times.append(res.timings_ms["total"])
        for k in STAGES:
            stages[k].append(res.timings_ms.get(k, 0.0))
    naive_times, gaps, served_gaps = [], [], []
    for snap in snaps:
        ours = engine.tick(snap)
        for _ in range(naive_repeats):
            ref_obj, ref_served, ms = naive_tick(snap, scorer=engine.scorer, config=engine.config)
            naive_times.append(ms)
        gaps.append((ref_obj - ours.objective) / abs(ref_obj) if ref_obj else 0.0)
        served_gaps.append(ref_served - len(ours.assignments))
    p50, p99 = _percentiles(times)
    return {
        "name": name, "contacts": n_contacts, "agents": n_agents, "scorer": engine.scorer.name,
        "repeats": repeats, "p50_ms": p50, "p99_ms": p99, "cpu_p50_ms": _percentiles(cpu)[0],
        "cpu_p99_ms": _percentiles(cpu)[1],
        "stages_p50_ms": {k: _percentiles(v)[0] for k, v in stages.items()},
        "stages_p99_ms": {k: _percentiles(v)[1] for k, v in stages.items()},
        "naive_p50_ms": _percentiles(naive_times)[0], "speedup_p50": _percentiles(naive_times)[0] / p50,
        "pruning_gap": float(np.mean(gaps)), "pruning_gap_max": float(np.max(gaps)),
        "served_lost_max": int(max(served_gaps)), "candidates_pruned": int(ours.n_candidates),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer repeats: under a minute")
    ap.add_argument("--json", dest="json_out", help="write the results here")
    ap.add_argument("--model", help="also run the XGBoost scorer of this model dir (trained on the standard "
                                    "centre of `assign generate --seed 7`) on a snapshot of that centre: "
                                    "1000 contacts waiting at Monday 10:30, its 200 agents")
    ap.add_argument("--only", nargs="+", metavar="PREFIX", help="run only the cases whose names start so")
    ap.add_argument("--xgb-model", help="model dir for xgb-1000x1000 (default: train one in a temp dir)")
    args = ap.parse_args(argv)
    repeats, n_snapshots, naive_repeats = (30, 3, 1) if args.quick else (200, 10, 3)
    engine = Router()
    cases = []
    t0 = time.perf_counter()
    for kind, n, m, density in CASES:
        if args.only and not f"{kind}-{n}x{m}".startswith(tuple(args.only)):
            continue
        snaps = [synthetic_snapshot(n_contacts=n, n_agents=m, seed=1000 + s, skill_density=density)
                 for s in range(n_snapshots)]
        cases.append(run_case(name=f"{kind}-{n}x{m}", snaps=snaps, repeats=repeats,
                              naive_repeats=naive_repeats, engine=engine))
        print(f"  {cases[-1]['name']} done", file=sys.stderr, flush=True)
    if args.model:
        from assign.model import XGBScorer
        from benchmarks.scoring import workload

        snaps = [workload(seed=7)[1]]  # the centre the model is meant for: `assign generate --seed 7`
        cases.append(run_case(name="xgb-world-1000x200", snaps=snaps, repeats=max(repeats // 4, 10),
                              naive_repeats=1, engine=Router(scorer=XGBScorer.load(args.model))))
    cases += speed_cases(args)  # issue 14: benchmarks/tick_speed.py
    out = {"benchmark": "tick", "machine": {"cpus": _cpus(), "platform": platform.platform(),
                                           "python": platform.python_version()},
           "quick": args.quick, "wall_s": time.perf_counter() - t0, "cases": cases}
    print(f"{'case':<26} {'p50 ms':>8} {'p99 ms':>8} {'retrieve':>9} {'score':>7} {'solve':>7} "
          f"{'naive p50':>10} {'speedup':>8} {'gap %':>8} {'gap max %':>10}")
    for c in cases:
        st = c["stages_p50_ms"]
        f = lambda v, w, k=1.0, d=1: f"{k * v:>{w}.{d}f}" if v is not None else f"{'-':>{w}}"
        print(f"{c['name']:<26} {c['p50_ms']:>8.1f} {c['p99_ms']:>8.1f} {st['retrieve']:>9.1f} {st['score']:>7.1f} "
              f"{st['solve']:>7.1f} {f(c['naive_p50_ms'], 10)} {f(c['speedup_p50'], 7)}x "
              f"{f(c['pruning_gap'], 8, 100, 3)} {f(c['pruning_gap_max'], 10, 100, 3)}")
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(out, f, indent=2)
    return 0


def speed_cases(args) -> list[dict]:
    """Issue 14's cases (benchmarks/tick_speed.py), those ``--only`` selects."""
    from benchmarks import tick_speed as ts

    want = lambda name: not args.only or name.startswith(tuple(args.only))
    out = []
    for n in (2000, 5000, 10_000):
        if want(f"scale-{n}x{n}"):
            out.append(ts.scale_case(n=n, quick=args.quick))
            print(f"  {out[-1]['name']} done", file=sys.stderr, flush=True)
    if want("xgb-1000x1000") or want("incremental-1000x1000"):
        case, (world, scorer) = ts.xgb_case(quick=args.quick, model_dir=args.xgb_model)
        if want("xgb-1000x1000"):
            out.append(case)
            print("  xgb-1000x1000 done", file=sys.stderr, flush=True)
        if want("incremental-1000x1000"):
            out.append(ts.incremental_case(quick=args.quick, world=world, scorer=scorer))
            print("  incremental-1000x1000 done", file=sys.stderr, flush=True)
    return out


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 0


if __name__ == "__main__":
    raise SystemExit(main())
