"""The tick at 1 and 2 threads, interleaved, with the lower bounds measured in the same run.

    python -m benchmarks.tick_threads [--quick] [--xgb-model DIR] [--only PREFIX ...] [--json OUT]

For each case, ``RouterConfig(threads=1)`` and ``threads=2`` tick the same snapshots in
alternation (wall p50/p99, process CPU, stages) and must give the same assignments and
objective. Because the 2-core machine is shared, wall time may not show a second thread, so
each case also reports the 2-thread tick's critical path: the tick run under
:func:`assign.parallel.traced` (every split kernel's ranges one after another, timed per
range), minus what the ranges would overlap on a free core (threads claiming them in order): what the
tick costs when a second core is free, without the hand-off. Lower bounds in the same run:
OR-Tools' min-cost flow alone on the tick's own candidate graph, the numba auction alone,
and (xgb cases) the packed forest alone on the tick's pairs at 1 and 2 threads; and the
flow's two largest parts solved one after the other and on two threads at once (OR-Tools
holds the GIL: the reason the flow stays on one thread).
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from assign import parallel
from assign import router as router_mod
from assign.config import RouterConfig
from assign.router import Router
from assign.solve import solve_flow
from assign.solve.auction import solve_auction

STAGES = ("retrieve", "score", "solve")


def _pct(xs, q) -> float:
    return float(np.percentile(xs, q)) if len(xs) else float("nan")


def _overlap(trace) -> float:
    """Seconds that split kernels' ranges would overlap on free cores: their serial sum less
    the makespan of the threads claiming them in order (:func:`assign.parallel.makespan`)."""
    return sum(sum(spent) - parallel.makespan(spent, n) for n, spent in trace)


class _StageClock(router_mod._Clock):
    """The router's stage clock, also recording each stage's critical path (``crit_STAGE``):
    the calling thread's CPU in the stage, less what split kernels' ranges
    would overlap on a second core (the tick runs under :func:`assign.parallel.traced`)."""

    def __init__(self, t0: float, out: dict[str, float]) -> None:
        super().__init__(t0, out)
        self.cpu, self.seen = time.thread_time(), 0

    def lap(self, name: str) -> None:
        super().lap(name)
        now, trace = time.thread_time(), parallel._TRACE.get() or []
        overlap = _overlap(trace[self.seen:])
        self.out[f"crit_{name}"] = (now - self.cpu - overlap) * 1e3
        self.cpu, self.seen = now, len(trace)


def _critical(engine: Router, snap) -> dict[str, float]:
    """One tick with its split kernels serialised: the whole tick's CPU less what the
    non-longest ranges would overlap on a second core (``total``), and per stage."""
    saved, router_mod._Clock = router_mod._Clock, _StageClock
    try:
        with parallel.traced() as trace:
            c0 = time.process_time()
            tm = engine.tick(snap).timings_ms
            cpu = time.process_time() - c0
    finally:
        router_mod._Clock = saved
    overlap = _overlap(trace)
    return {"total": (cpu - overlap) * 1e3, **{s: tm.get(f"crit_{s}", 0.0) for s in STAGES}}


def _cpu_ms(fn, repeats: int) -> float:
    xs = []
    for _ in range(repeats):
        c0 = time.process_time()
        fn()
        xs.append((time.process_time() - c0) * 1e3)
    return float(np.median(xs))


def _flow_parts_on_threads(problem, repeats: int) -> dict:
    """Why the flow stays on one thread: the graph's two largest parts (connected components)
    solved one after the other, then at once on two threads (wall ms, p50). Equal times mean
    OR-Tools holds the GIL while it solves."""
    from concurrent.futures import ThreadPoolExecutor

    from assign.solve.flow import _solve_arrays, _split

    order, ptr, local_c, local_r, n_c, r_ids, r_ptr = _split(problem.contact, problem.resource,
                                                             problem.n_contacts, problem.n_resources)
    if len(ptr) < 3:
        return {}
    big = np.argsort(-np.diff(ptr), kind="stable")[:2]

    def part(p: int) -> None:
        sl = slice(ptr[p], ptr[p + 1])
        _solve_arrays(int(n_c[p]), local_c[sl], local_r[sl], problem.capacity[r_ids[r_ptr[p]:r_ptr[p + 1]]],
                      problem.value[order[sl]])

    seq, both = [], []
    with ThreadPoolExecutor(1) as pool:
        for _ in range(repeats):
            t0 = time.perf_counter()
            part(big[0])
            part(big[1])
            seq.append((time.perf_counter() - t0) * 1e3)
            t0 = time.perf_counter()
            f = pool.submit(part, big[1])
            part(big[0])
            f.result()
            both.append((time.perf_counter() - t0) * 1e3)
    return {"flow_two_parts_sequential_ms": float(np.median(seq)),
            "flow_two_parts_two_threads_ms": float(np.median(both))}


def _bounds(engine: Router, snaps: list, *, forest, repeats: int) -> dict:
    """The stages that no thread count shortens, alone on the tick's own inputs (CPU ms, p50)."""
    flow, auction, f1, f2, f2_crit = [], [], [], [], []
    for snap in snaps:
        tp = engine.problem(snap)
        flow.append(_cpu_ms(lambda tp=tp: solve_flow(tp.problem), repeats))
        auction.append(_cpu_ms(lambda tp=tp: solve_auction(tp.problem), repeats))
        if forest is not None:
            scorer = engine.scorer
            X = scorer.features(snap, contact_idx=tp.c_order[tp.rows], agent_idx=tp.a_order[tp.cols])
            f1.append(_cpu_ms(lambda X=X: forest.margins(X, threads=1), repeats))
            w2 = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                forest.margins(X, threads=2)
                w2.append((time.perf_counter() - t0) * 1e3)
            f2.append(float(np.median(w2)))
            with parallel.traced() as trace:
                forest.margins(X, threads=2)
            f2_crit.append(parallel.makespan(trace[0][1], trace[0][0]) * 1e3)
    first = engine.problem(snaps[0]).problem
    out = {"flow_alone_cpu_ms": float(np.median(flow)), "auction_alone_cpu_ms": float(np.median(auction)),
           "arcs": int(len(first.contact)), **_flow_parts_on_threads(first, max(repeats, 3))}
    if forest is not None:
        out.update(forest_1thread_cpu_ms=float(np.median(f1)), forest_2threads_wall_ms=float(np.median(f2)),
                   forest_2threads_critical_ms=float(np.median(f2_crit)))
    return out


def run_case(name: str, snaps: list, *, scorer=None, repeats: int, bound_repeats: int) -> dict:
    engines = {k: Router(scorer=scorer, config=RouterConfig(threads=k)) for k in (1, 2)}
    same = True
    for snap in snaps:  # warm both, compare answers
        r1, r2 = (engines[k].tick(snap) for k in (1, 2))
        same &= ([(a.contact_id, a.agent_id) for a in r1.assignments]
                 == [(a.contact_id, a.agent_id) for a in r2.assignments]) and r1.objective == r2.objective
    t = {k: {"total": [], "cpu": [], **{s: [] for s in STAGES}} for k in engines}
    crit: dict[str, list[float]] = {k: [] for k in ("total", *STAGES)}
    for r in range(repeats):
        snap = snaps[r % len(snaps)]
        for k, eng in engines.items():
            c0 = time.process_time()
            tm = eng.tick(snap).timings_ms
            t[k]["cpu"].append((time.process_time() - c0) * 1e3)
            t[k]["total"].append(tm["total"])
            for s in STAGES:
                t[k][s].append(tm.get(s, 0.0))
        for k, v in _critical(engines[2], snap).items():
            crit[k].append(v)
    forest = getattr(getattr(scorer, "model", None), "packed", None)
    out = {"name": name, "repeats": repeats, "same_assignments": bool(same),
           **{f"threads{k}": {"p50_ms": _pct(v["total"], 50), "p99_ms": _pct(v["total"], 99),
                              "cpu_p50_ms": _pct(v["cpu"], 50),
                              "stages_p50_ms": {s: _pct(v[s], 50) for s in STAGES}} for k, v in t.items()},
           "threads2_critical_p50_ms": _pct(crit["total"], 50), "threads2_critical_p99_ms": _pct(crit["total"], 99),
           "threads2_critical_stages_p50_ms": {s: _pct(crit[s], 50) for s in STAGES},
           "bounds": _bounds(engines[2], snaps, forest=forest, repeats=bound_repeats)}
    return out


def incremental_case(scorer, *, quick: bool) -> dict:
    """``incremental-1000x1000``'s stream (benchmarks.tick_speed): each window ticked by cached
    scorers at 1 and 2 threads, a third (2 threads) under the trace for the critical path, and
    a from-scratch router for the same-assignments check; lower bounds on each window."""
    from assign.model.cache import CachedScorer
    from assign.world.centre import generate_world
    from benchmarks.tick_speed import _next_window, peak_snapshot

    world = generate_world(n_agents=1000, seed=7)
    n_ticks = 15 if quick else 40
    snap, pool = peak_snapshot(world, seed=300, n_contacts=1000, pool=100 * (n_ticks + 1))
    engines = {k: Router(scorer=CachedScorer(inner=scorer), config=RouterConfig(threads=k)) for k in (1, 2)}
    traced_engine = Router(scorer=CachedScorer(inner=scorer), config=RouterConfig(threads=2))
    scratch = Router(scorer=scorer, config=RouterConfig(threads=1))
    rng = np.random.default_rng(300)
    t = {k: {"total": [], "cpu": [], **{s: [] for s in STAGES}} for k in engines}
    crit: dict[str, list[float]] = {k: [] for k in ("total", *STAGES)}
    same, used, windows, changed, prev = True, 0, [], [], {}
    for k in range(n_ticks + 1):
        res = {}
        for name, eng in engines.items():
            c0 = time.process_time()
            r = eng.tick(snap)
            cpu = (time.process_time() - c0) * 1e3
            res[name] = r
            if k > 0:
                t[name]["cpu"].append(cpu)
                t[name]["total"].append(r.timings_ms["total"])
                for s in STAGES:
                    t[name][s].append(r.timings_ms.get(s, 0.0))
        c = _critical(traced_engine, snap)
        if k > 0:
            for q, v in c.items():
                crit[q].append(v)
            windows.append(snap)
        cands = _candidate_lists(scratch, snap)
        if k > 0:  # could retrieval be reused for the contacts that did not change? (it cannot)
            kept = [cid for cid in cands if cid in prev]
            changed.append(sum(cands[cid] != prev[cid] for cid in kept) / max(len(kept), 1))
        prev = cands
        want = [(a.contact_id, a.agent_id) for a in scratch.tick(snap).assignments]
        same &= all([(a.contact_id, a.agent_id) for a in r.assignments] == want for r in res.values())
        snap, used = _next_window(snap, pool, used, rng)
    return {"name": "incremental-1000x1000", "repeats": n_ticks, "same_assignments": bool(same),
            "kept_contacts_with_other_candidates_p50": _pct(changed, 50),
            **{f"threads{k}": {"p50_ms": _pct(v["total"], 50), "p99_ms": _pct(v["total"], 99),
                               "cpu_p50_ms": _pct(v["cpu"], 50),
                               "stages_p50_ms": {s: _pct(v[s], 50) for s in STAGES}} for k, v in t.items()},
            "threads2_critical_p50_ms": _pct(crit["total"], 50), "threads2_critical_p99_ms": _pct(crit["total"], 99),
            "threads2_critical_stages_p50_ms": {s: _pct(crit[s], 50) for s in STAGES},
            "bounds": _bounds(engines[2], windows[::max(1, len(windows) // 4)], forest=None, repeats=3)}


def _candidate_lists(engine: Router, snap) -> dict[str, frozenset]:
    """Each contact's retrieved agents (ids), from the engine's tick problem."""
    tp = engine.problem(snap)
    c_ids, a_ids = snap.contacts.ids[tp.c_order[tp.rows]], snap.agents.ids[tp.a_order[tp.cols]]
    out: dict[str, set] = {}
    for c, a in zip(c_ids.tolist(), a_ids.tolist()):
        out.setdefault(c, set()).add(a)
    return {c: frozenset(v) for c, v in out.items()}


def _xgb_snaps(model_dir: str | None, quick: bool):
    from benchmarks.tick_speed import peak_snapshot, xgb_world

    world, scorer = xgb_world(quick=quick, model_dir=model_dir)
    scorer.fit_prior(peak_snapshot(world, seed=100, n_contacts=1000))
    return scorer, [peak_snapshot(world, seed=200 + s, n_contacts=1000) for s in range(2 if quick else 4)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--xgb-model", help="model dir for xgb-1000x1000 (default: train one in a temp dir)")
    ap.add_argument("--only", nargs="+", metavar="PREFIX")
    ap.add_argument("--json", dest="json_out")
    args = ap.parse_args(argv)
    from assign.workload import synthetic_snapshot

    repeats, bound_repeats = (20, 3) if args.quick else (60, 5)
    want = lambda name: not args.only or name.startswith(tuple(args.only))
    cases = []
    for kind, density in (("specialists", 0.4), ("generalists", 0.85)):
        name = f"{kind}-1000x1000"
        if want(name):
            snaps = [synthetic_snapshot(n_contacts=1000, n_agents=1000, seed=1000 + s, skill_density=density)
                     for s in range(3)]
            cases.append(run_case(name, snaps, repeats=repeats, bound_repeats=bound_repeats))
            print(f"  {name} done", file=sys.stderr, flush=True)
    if want("scale-10000x10000"):
        snaps = [synthetic_snapshot(n_contacts=10_000, n_agents=10_000, seed=5000 + s, skill_density=0.4)
                 for s in range(2)]
        cases.append(run_case("scale-10000x10000", snaps, repeats=3 if args.quick else 6, bound_repeats=1))
        print("  scale-10000x10000 done", file=sys.stderr, flush=True)
    if want("xgb-1000x1000") or want("incremental-1000x1000"):
        scorer, snaps = _xgb_snaps(args.xgb_model, args.quick)
        cases.append(run_case("xgb-1000x1000", snaps, scorer=scorer, repeats=repeats, bound_repeats=bound_repeats))
        print("  xgb-1000x1000 done", file=sys.stderr, flush=True)
        if want("incremental-1000x1000"):
            cases.append(incremental_case(scorer, quick=args.quick))
            print("  incremental-1000x1000 done", file=sys.stderr, flush=True)
    print(f"{'case':<22} {'p50 1t':>7} {'p50 2t':>7} {'cpu 1t':>7} {'cpu 2t':>7} {'crit 2t':>8} "
          f"{'flow':>6} {'auction':>8} {'forest 1t':>9} {'forest crit':>11} same  crit stages")
    for c in cases:
        b = c["bounds"]
        print(f"{c['name']:<22} {c['threads1']['p50_ms']:>7.1f} {c['threads2']['p50_ms']:>7.1f} "
              f"{c['threads1']['cpu_p50_ms']:>7.1f} {c['threads2']['cpu_p50_ms']:>7.1f} "
              f"{c['threads2_critical_p50_ms']:>8.1f} {b['flow_alone_cpu_ms']:>6.1f} {b['auction_alone_cpu_ms']:>8.1f} "
              f"{b.get('forest_1thread_cpu_ms', float('nan')):>9.1f} "
              f"{b.get('forest_2threads_critical_ms', float('nan')):>11.1f} {c['same_assignments']!s:>5} "
              + " ".join(f"{k} {v:.1f}" for k, v in c["threads2_critical_stages_p50_ms"].items()))
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump({"benchmark": "tick_threads", "quick": args.quick, "cases": cases}, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
