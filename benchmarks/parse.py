"""CPU per ``POST /v1/tick`` request without the HTTP layer: the old request path against the new.

    python -m benchmarks.parse [--quick] --json OUT [--contacts 200] [--agents 200]

Each request is the service's work on a 200-contact snapshot body: JSON parse (orjson), id
length check, ``parse_snapshot``, the tick, ``TickResult.to_dict``, JSON write. *old* runs the
field-by-field validator (``parse_snapshot_detailed``, what ``parse_snapshot`` was) and the
``dataclasses.asdict`` answer (the former ``to_dict``, kept here verbatim); *new* runs
``parse_snapshot`` (bulk fast path) and ``to_dict``. Both share the same router, so the tick
stage is the same code in both (its own trims show only against an older checkout). The two
paths alternate request by request in one process, so machine load hits both alike; figures
are CPU time of this thread (``time.thread_time``), which load changes far less than wall time.
``old.parse`` already has the cached field-name canon of :mod:`assign.validate` (a saving of its
own), so the old figure is below what the former code took.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
from tqdm import tqdm

from assign.config import RouterConfig
from assign.result import TickResult
from assign.router import Router
from assign.schema import parse_snapshot, parse_snapshot_detailed
from assign.serve.engine import Engine, ModelInfo
from assign.serve.jsonio import dumps, loads_body
from assign.workload import synthetic_snapshot

STAGES = ("loads", "check_ids", "parse", "tick", "to_dict", "dumps")


def to_dict_asdict(result: TickResult) -> dict:
    """The former ``TickResult.to_dict`` (``dataclasses.asdict`` per record): the baseline."""
    out = {
        "snapshot_id": result.snapshot_id,
        "assignments": [asdict(a) for a in result.assignments],
        "unassigned": [asdict(u) for u in result.unassigned],
        "objective": result.objective, "solver": result.solver, "fallback": result.fallback,
        "fallback_reason": result.fallback_reason, "n_candidates": result.n_candidates,
        "timings_ms": {k: round(v, 3) for k, v in result.timings_ms.items()},
    }
    return out


PATHS = {"old": (parse_snapshot_detailed, to_dict_asdict), "new": (parse_snapshot, TickResult.to_dict)}


def one_request(engine: Engine, body: bytes, path: str) -> tuple[dict[str, float], bytes]:
    """CPU milliseconds of each stage of one request, and the response body."""
    parse, to_dict = PATHS[path]
    ms: dict[str, float] = {}
    t = time.thread_time_ns()

    def lap(name: str) -> None:
        nonlocal t
        now = time.thread_time_ns()
        ms[name] = (now - t) / 1e6
        t = now

    doc = loads_body(body)
    lap("loads")
    engine.check_ids(doc)
    lap("check_ids")
    snapshot = parse(doc)
    lap("parse")
    result = engine.router.tick(snapshot)
    lap("tick")
    out = to_dict(result)
    lap("to_dict")
    data = dumps(out)
    lap("dumps")
    ms["total"] = sum(ms.values())
    return ms, data


def _summary(rows: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    return {k: {"mean_ms": round(float(np.mean([r[k] for r in rows])), 3),
                "p50_ms": round(float(np.median([r[k] for r in rows])), 3),
                "p99_ms": round(float(np.percentile([r[k] for r in rows], 99)), 3)}
            for k in (*STAGES, "total")}


def run(*, quick: bool, n_contacts: int, n_agents: int) -> dict:
    """Interleaved old/new requests over seeded snapshots; per-stage CPU summaries."""
    engine = Engine(router=Router(config=RouterConfig()), model=ModelInfo(scorer="SkillScorer", version="rules"))
    bodies = [dumps(synthetic_snapshot(n_contacts=n_contacts, n_agents=n_agents, seed=100 + k).to_dict())
              for k in range(8 if quick else 24)]
    reps = 5 if quick else 20
    for body in bodies[:2]:  # first calls (imports, caches) count for neither path
        for path in PATHS:
            one_request(engine, body, path)
    gc.collect()
    gc.freeze()  # as the service does once warm (assign.serve.app)
    rows: dict[str, list[dict[str, float]]] = {p: [] for p in PATHS}
    same = True
    for k in tqdm(range(reps * len(bodies)), desc="requests (old+new)", file=sys.stderr):
        body = bodies[k % len(bodies)]
        order = ("old", "new") if k % 2 == 0 else ("new", "old")
        answers = {}
        for path in order:
            ms, data = one_request(engine, body, path)
            rows[path].append(ms)
            answers[path] = json.loads(data)
        for a in answers.values():
            a.pop("timings_ms")
        same &= answers["old"] == answers["new"]
    out = {p: _summary(r) for p, r in rows.items()}
    out["speedup_total_cpu"] = round(out["old"]["total"]["mean_ms"] / out["new"]["total"]["mean_ms"], 2)
    out["answers_identical"] = bool(same)
    out["requests_per_path"] = len(rows["new"])
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="Fewer snapshots and repetitions.")
    ap.add_argument("--json", dest="out", required=True, help="Write the results here.")
    ap.add_argument("--contacts", type=int, default=200)
    ap.add_argument("--agents", type=int, default=200)
    args = ap.parse_args(argv)
    load_before = os.getloadavg()
    out = run(quick=args.quick, n_contacts=args.contacts, n_agents=args.agents)
    out["setup"] = {"contacts": args.contacts, "agents": args.agents, "quick": args.quick, "cpus": os.cpu_count(),
                    "python": platform.python_version(), "machine": platform.machine(),
                    "clock": "time.thread_time (CPU of the benchmark thread)",
                    "loadavg_1min_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)]}
    Path(args.out).write_text(json.dumps(out, indent=1))
    print(json.dumps({p: out[p]["total"] for p in PATHS} | {"speedup": out["speedup_total_cpu"]}))
    return out


if __name__ == "__main__":
    main()
