"""Tree inference alone: the packed numba forest against xgboost ``inplace_predict``, interleaved.

    python -m benchmarks.forest --model DIR [--quick] [--json OUT]

Rows are the scoring benchmark's pairs (``benchmarks.scoring.workload``: a Monday peak of the
model's centre, each contact with its most proficient agents) at the tick's batch sizes. Each
repeat times every method once on the same matrix, in turn, so a busy machine slows them
alike; the report gives each method's p50 and the median of the per-repeat ratios
xgboost / packed. Every target is predicted (one packed pass; one xgboost call per target).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np


def _ms(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1e3


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="a model dir (`assign train`)")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", dest="json_out")
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args(argv)
    from assign.model import XGBScorer
    from benchmarks.scoring import pairs, workload

    scorer = XGBScorer.load(a.model)
    m = scorer.model
    _, snap = workload(seed=a.seed, n_contacts=1000, n_agents=len(m.state.agent_ids) or 200)
    rng = np.random.default_rng(a.seed)
    methods = {
        "packed": lambda X: m.packed.predict(X),
        "xgb_inplace_1thread": lambda X: [b.inplace_predict(X) for b in m.boosters_serial.values()],
        "xgb_inplace_2threads": lambda X: [b.inplace_predict(X) for b in m.boosters.values()],
    }
    res = {"benchmark": "forest", "cpus": os.cpu_count(), "load_average_before": os.getloadavg(),
           "trees": m.packed.n_trees, "depth": m.packed.depth, "cases": []}
    for k, n_c in ((16, 50), (20, 1000), (100, 1000)):
        ci, ai = pairs(snap, k, rng)
        X = scorer.features(snap, contact_idx=ci[ci < n_c], agent_idx=ai[ci < n_c])
        diff = max(float(np.max(np.abs(m.packed.predict(X)[t] - b.inplace_predict(X)) /
                                np.maximum(1.0, np.abs(b.inplace_predict(X))))) for t, b in m.boosters.items())
        reps = (10 if a.quick else 50) if len(X) > 50_000 else (30 if a.quick else 200)
        for fn in methods.values():
            fn(X)
        t = {name: [] for name in methods}
        for _ in range(reps):
            for name, fn in methods.items():
                t[name].append(_ms(lambda fn=fn, X=X: fn(X)))
        p50 = {name: float(np.median(v)) for name, v in t.items()}
        ratio = {
            name: float(np.median(np.array(v) / np.array(t["packed"]))) for name, v in t.items() if name != "packed"
        }
        res["cases"].append(
            {"rows": len(X), "repeats": reps, "p50_ms": p50, "ratio_vs_packed_median": ratio, "max_rel_diff": diff}
        )
        print(f"  {len(X)} rows: {p50} ratios {ratio}", file=sys.stderr, flush=True)
    res["load_average_after"] = os.getloadavg()
    txt = json.dumps(res, indent=1)
    print(txt)
    if a.json_out:
        with open(a.json_out, "w") as f:
            f.write(txt)
    return 0


if __name__ == "__main__":
    sys.exit(main())
