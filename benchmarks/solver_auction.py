"""The ε-scaling auction against OR-Tools' min-cost flow on the candidate graphs the tick builds.

    python -m benchmarks.solver_auction [--cases NAME...] [--repeats N] [--xgb-model DIR] [--json OUT]

Cases: ``specialists-1000x1000`` and ``generalists-1000x1000`` (the rule-based tick's graphs,
as in ``benchmarks.tick``), ``scale-2000x2000`` / ``5000`` / ``10000`` (as in
``benchmarks.tick_speed.scale_case``) and ``xgb-1000x1000`` (a peak of the 1000-agent centre
with the XGBoost model; trained on one day when ``--xgb-model`` is not given). For each
graph both solvers run alternately in one process; the figures are process CPU time per
solve (on a shared machine closer to the quiet time than the wall clock) and the median of
the per-repeat ratios flow / auction. Each solve's answer is checked: served count and
objective equal, and whether the arcs are the same.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time

import numpy as np
from tqdm import tqdm

from assign.solve import auction as auction_mod
from assign.solve import solve_auction, solve_flow

RULE = {"specialists-1000x1000": (1000, 0.4, 1000), "generalists-1000x1000": (1000, 0.85, 1000),
        "scale-2000x2000": (2000, 0.4, 5000), "scale-5000x5000": (5000, 0.4, 5000),
        "scale-10000x10000": (10_000, 0.4, 5000)}


def rule_problems(name: str, n_snapshots: int) -> list:
    from assign.router import Router
    from assign.workload import synthetic_snapshot

    n, density, seed = RULE[name]
    router = Router()
    return [router.problem(synthetic_snapshot(n_contacts=n, n_agents=n, seed=seed + s, skill_density=density)).problem
            for s in range(n_snapshots)]


def xgb_problems(model_dir: str | None, n_snapshots: int) -> list:
    from assign.model import XGBScorer
    from assign.router import Router
    from assign.world.centre import generate_world
    from benchmarks.tick_speed import _train_model, peak_snapshot

    world = generate_world(n_agents=1000, seed=7)
    with tempfile.TemporaryDirectory(prefix="assign-bench-auction-") as tmp:
        if model_dir is None:
            model_dir = tmp
            _train_model(world, days=1, out=tmp)
        scorer = XGBScorer.load(model_dir)
    scorer.fit_prior(peak_snapshot(world, seed=100, n_contacts=1000))
    router = Router(scorer=scorer)
    return [router.problem(peak_snapshot(world, seed=200 + s, n_contacts=1000)).problem for s in range(n_snapshots)]


def compare(name: str, problems: list, repeats: int) -> dict:
    """Alternate the two solvers on each problem; CPU ms, ratios and agreement."""
    cpu = {"flow": [], "auction": []}
    ratios, same_arcs, agree, bids, diffs = [], [], [], [], []
    for r in tqdm(range(repeats), desc=name, file=sys.stderr):
        p = problems[r % len(problems)]
        out = {}
        for solver, fn in (("flow", solve_flow), ("auction", solve_auction)) if r % 2 else (
                ("auction", solve_auction), ("flow", solve_flow)):
            c0 = time.process_time()
            out[solver] = fn(p)
            cpu[solver].append((time.process_time() - c0) * 1e3)
        ratios.append(cpu["flow"][-1] / cpu["auction"][-1])
        a, f = out["auction"].arcs, out["flow"].arcs
        same_arcs.append(bool(np.array_equal(a, f)))
        obj_a, obj_f = p.objective(a), p.objective(f)
        agree.append(len(a) == len(f) and abs(obj_a - obj_f) <= 1e-9 * max(1.0, abs(obj_f)))
        diffs.append(obj_a - obj_f)
        bids.append(np.array(auction_mod.LAST_STATS).sum(axis=0).tolist())
    p0 = problems[0]
    return {"name": name, "arcs": int(p0.n_arcs), "contacts": int(p0.n_contacts), "repeats": repeats,
            "flow_cpu_p50_ms": float(np.median(cpu["flow"])), "auction_cpu_p50_ms": float(np.median(cpu["auction"])),
            "flow_over_auction_p50": float(np.median(ratios)), "objective_equal": all(agree),
            "objective_diff_max": float(np.max(np.abs(diffs))), "objective_last": float(obj_a),
            "same_arcs_share": float(np.mean(same_arcs)), "auction_bids_p50": np.median(bids, axis=0).tolist()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", nargs="+", default=[*RULE, "xgb-1000x1000"], help="case names")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--snapshots", type=int, default=2)
    ap.add_argument("--xgb-model", help="model dir for xgb-1000x1000 (default: train one on one day)")
    ap.add_argument("--json", dest="json_out")
    args = ap.parse_args(argv)
    unknown = [c for c in args.cases if c not in RULE and c != "xgb-1000x1000"]
    if unknown:
        ap.error(f"unknown cases: {unknown}; known: {[*RULE, 'xgb-1000x1000']}")
    results = []
    for name in args.cases:
        problems = (xgb_problems(args.xgb_model, args.snapshots) if name == "xgb-1000x1000"
                    else rule_problems(name, args.snapshots))
        results.append(compare(name, problems, max(2, args.repeats if not name.startswith("scale-1") else 2)))
        c = results[-1]
        print(f"{name:<24} arcs {c['arcs']:>7} flow {c['flow_cpu_p50_ms']:8.1f} ms  auction "
              f"{c['auction_cpu_p50_ms']:8.1f} ms  flow/auction {c['flow_over_auction_p50']:.2f}  "
              f"objective equal {c['objective_equal']} (max diff {c['objective_diff_max']:.1e})  "
              f"same arcs {c['same_arcs_share']:.0%}", flush=True)
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump({"benchmark": "solver_auction", "cases": results}, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
