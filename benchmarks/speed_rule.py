"""Issue 14, rule-based side: retrieval and the flow against a baseline revision, interleaved.

    python -m benchmarks.speed_rule --baseline REV [--sizes 1000 2000 5000] [--repeats 5] [--json OUT]
    python -m benchmarks.speed_rule --top-k 4 8 12 16 [--json OUT]

For each n x n specialists snapshot (``scale-NxN``'s workload, seed 5000): the retrieval of
git revision ``REV`` (its ``assign/candidates.py``, loaded from git) against this checkout's,
then the flow on one graph against the flow split into connected components, each pair timed
in alternation in one process (wall and process CPU milliseconds: CPU time is what a shared
machine distorts least). Also the optimum of the flow on each revision's candidate set, so
that a change in what retrieval keeps shows up as a change in the objective.

``--top-k``: instead, the rule-based 1000 x 1000 cases (``benchmarks.tick``'s workloads, two
snapshots each) ticked by one router per ``top_k``, in alternation: process CPU ms per tick
and the largest pruning gap against the dense optimum (``benchmarks.tick.naive_tick``).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import types

import numpy as np


def load_baseline(rev: str) -> types.ModuleType:
    """``assign/candidates.py`` as of git revision ``rev``, as a module."""
    src = subprocess.run(["git", "show", f"{rev}:assign/candidates.py"], capture_output=True, text=True,
                         check=True).stdout
    mod = types.ModuleType("baseline_candidates")
    sys.modules[mod.__name__] = mod
    exec(compile(src.replace("cache=True", "cache=False"), mod.__name__, "exec"), mod.__dict__)
    return mod


def _timed(fns: dict, repeats: int) -> dict:
    """Median wall and CPU ms of each function, called in alternation."""
    wall, cpu = {k: [] for k in fns}, {k: [] for k in fns}
    for _ in range(repeats):
        for k, f in fns.items():
            w, c = time.perf_counter(), time.process_time()
            f()
            wall[k].append((time.perf_counter() - w) * 1e3)
            cpu[k].append((time.process_time() - c) * 1e3)
    return {k: {"wall_ms": float(np.median(wall[k])), "cpu_ms": float(np.median(cpu[k]))} for k in fns}


def run_size(n: int, *, baseline, repeats: int) -> dict:
    import assign.candidates as current
    from assign.router import Router
    from assign.solve import Problem
    from assign.solve import flow as F
    from assign.solve import value as pv
    from assign.workload import synthetic_snapshot

    router = Router()
    cfg = router.config
    snap = synthetic_snapshot(n_contacts=n, n_agents=n, seed=5000, skill_density=0.4)
    c, a = snap.contacts, snap.agents  # synthetic ids are already in id order
    c_term = cfg.w_aging * pv.aging(urgency=c.urgency, waited_s=c.waited_s, config=cfg)
    a_term = cfg.w_fairness * pv.fairness(idle_s=a.idle_s, config=cfg)
    prior = router.scorer.prior(snap)

    def retrieve(mod):
        return mod.find_candidates(contacts=mod.ContactTerms.of(c, term=c_term),
                                   agents=mod.AgentTerms.of(a, term=a_term), prior=prior,
                                   min_proficiency=cfg.min_proficiency,
                                   require_language=cfg.require_language, w_score=cfg.w_score, top_k=cfg.top_k,
                                   prune=True)

    retrieve(baseline), retrieve(current)  # compile
    ret = _timed({"baseline": lambda: retrieve(baseline), "current": lambda: retrieve(current)}, repeats)
    out = {"n": n, "retrieve": ret}
    problems = {}
    for k, mod in (("baseline", baseline), ("current", current)):
        cands = retrieve(mod)
        score = router.scorer.score_pairs(snap, contact_idx=cands.contact, agent_idx=cands.agent)
        val = pv.combine(score=score, aging=(c_term / cfg.w_aging)[cands.contact],
                         fairness=(a_term / cfg.w_fairness)[cands.agent], config=cfg)
        problems[k] = Problem(n_contacts=n, contact=cands.contact, resource=cands.agent * 3 + c.channel[cands.contact],
                              value=val, capacity=a.free.reshape(-1))
        sol = F.solve_flow(problems[k])
        out[f"{k}_kept"] = int(cands.contact.size)
        out[f"{k}_objective"] = problems[k].objective(sol.arcs)
        out[f"{k}_served"] = int(len(sol.arcs))
    p = problems["current"]
    out["flow"] = _timed({"one_graph": lambda: F._solve_one(p), "components": lambda: F.solve_flow(p)}, repeats)
    out["flow_objective_equal"] = bool(abs(p.objective(F._solve_one(p).arcs) - p.objective(F.solve_flow(p).arcs))
                                       <= 1e-9 * max(1.0, abs(out["current_objective"])))
    return out


def top_k_sweep(ks: list[int], *, repeats: int) -> list[dict]:
    """CPU per tick and pruning gap of each ``top_k`` on the rule-based 1000 x 1000 cases."""
    from assign.config import RouterConfig
    from assign.router import Router
    from assign.workload import synthetic_snapshot
    from benchmarks.tick import naive_tick

    routers = {k: Router(config=RouterConfig(top_k=k)) for k in ks}
    rows = []
    for kind, density in (("specialists", 0.4), ("generalists", 0.85)):
        snaps = [synthetic_snapshot(n_contacts=1000, n_agents=1000, seed=1000 + s, skill_density=density)
                 for s in range(2)]
        any_router = next(iter(routers.values()))
        refs = [naive_tick(s, scorer=any_router.scorer, config=any_router.config)[0] for s in snaps]
        cpu, gap = {k: [] for k in ks}, {k: [] for k in ks}
        for rep in range(repeats):
            for k, router in routers.items():
                c0 = time.process_time()
                res = router.tick(snaps[rep % 2])
                cpu[k].append((time.process_time() - c0) * 1e3)
                gap[k].append((refs[rep % 2] - res.objective) / abs(refs[rep % 2]))
        for k in ks:
            rows.append({"case": f"{kind}-1000x1000", "top_k": k, "cpu_p50_ms": float(np.median(cpu[k])),
                         "pruning_gap_max": float(max(gap[k])),
                         "arcs": int(routers[k].problem(snaps[0]).problem.n_arcs)})
            row = rows[-1]
            print(f"{kind} top_k {k}: cpu p50 {row['cpu_p50_ms']:.1f} ms, gap max {row['pruning_gap_max']:.2e}, "
                  f"arcs {row['arcs']}", file=sys.stderr, flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--baseline", help="git revision whose retrieval to compare against")
    ap.add_argument("--top-k", type=int, nargs="+", help="sweep these top_k values instead (see above)")
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 2000, 5000])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", dest="json_out")
    args = ap.parse_args(argv)
    if args.top_k:
        rows = top_k_sweep(args.top_k, repeats=args.repeats)
        if args.json_out:
            with open(args.json_out, "w") as f:
                json.dump({"benchmark": "speed_rule.top_k", "rows": rows}, f, indent=2)
        return 0
    if not args.baseline:
        ap.error("--baseline REV is required (or --top-k)")
    baseline = load_baseline(args.baseline)
    rows = []
    for n in args.sizes:
        rows.append(run_size(n, baseline=baseline, repeats=args.repeats))
        r = rows[-1]
        print(f"{n}x{n}: retrieve wall {r['retrieve']['baseline']['wall_ms']:.1f} -> "
              f"{r['retrieve']['current']['wall_ms']:.1f} ms, cpu {r['retrieve']['baseline']['cpu_ms']:.1f} -> "
              f"{r['retrieve']['current']['cpu_ms']:.1f} ms; flow wall {r['flow']['one_graph']['wall_ms']:.1f} -> "
              f"{r['flow']['components']['wall_ms']:.1f} ms, cpu {r['flow']['one_graph']['cpu_ms']:.1f} -> "
              f"{r['flow']['components']['cpu_ms']:.1f} ms; objective {r['baseline_objective']:.6f} -> "
              f"{r['current_objective']:.6f}", file=sys.stderr, flush=True)
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump({"benchmark": "speed_rule", "baseline": args.baseline, "sizes": rows}, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
