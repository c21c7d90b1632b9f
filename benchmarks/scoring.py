"""Scoring throughput: features + prediction for candidate pairs, against xgboost.

Workload: a synthetic centre (seeded), a model trained on its history (or ``--model DIR``),
a snapshot of 1000 waiting contacts and the centre's agents; pairs are each contact with 16
agents (16,000 pairs) and with 100 agents (100,000 pairs), skilled agents first, plus a small
tick (50 contacts x 16). Measured in
the same run on the same rows:

- ``scorer``: ``XGBScorer.score_pairs`` (features + the default backend: the packed numba
  forest below 32,768 pairs, xgboost ``inplace_predict`` with two threads from there; + value),
- ``packed_forest``: the packed numba forest alone (every target in one pass, one thread),
- ``numba_forests``: the numba traversal of the same trees (the alternative backend),
- ``features``: the feature matrix alone,
- ``xgb_inplace``: ``Booster.inplace_predict`` of every target on that matrix (nthread=2),
- ``xgb_inplace_1thread``: the same with one thread,
- ``xgb_total``: features + ``inplace_predict``,

Run: ``python -m benchmarks.scoring [--json OUT] [--quick] [--model DIR]``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import timedelta

import numpy as np


def _timeit(fn, repeats: int) -> np.ndarray:
    for _ in range(3):  # xgboost's first calls allocate; numba's first call may load the cache
        fn()
    out = np.empty(repeats)
    for k in range(repeats):
        t0 = time.perf_counter()
        fn()
        out[k] = (time.perf_counter() - t0) * 1e3
    return out


def _stats(ms: np.ndarray, pairs: int) -> dict:
    p50 = float(np.percentile(ms, 50))
    return dict(p50_ms=round(p50, 3), p99_ms=round(float(np.percentile(ms, 99)), 3),
                pairs_per_s=round(pairs / (p50 / 1e3)), repeats=len(ms))


def _xgb_total(scorer, boosters, snap, ci, ai) -> list:
    X = scorer.features(snap, contact_idx=ci, agent_idx=ai)
    return [b.inplace_predict(X) for b in boosters.values()]


def workload(*, seed: int, n_contacts: int = 1000, n_agents: int = 200):
    """A world, its snapshot of ``n_contacts`` waiting contacts and all agents on shift."""
    from assign.schema import Snapshot
    from assign.world.centre import generate_world

    world = generate_world(n_agents=n_agents, seed=seed)
    rng = np.random.default_rng(seed)
    t = 10.5 * 3600.0  # Monday 10:30, a peak
    arr = world.sample_arrivals(rng=rng, start_s=t - 3600.0, end_s=t)
    arr = arr.iloc[rng.permutation(len(arr))[:n_contacts]].sort_values("arrival_s").reset_index(drop=True)
    contacts = world.contacts_block(arr)
    contacts = type(contacts)(**{**contacts.__dict__, "waited_s": t - arr["arrival_s"].to_numpy()})
    snap = Snapshot(snapshot_id="bench", at=world.start + timedelta(seconds=t), intents=world.intents,
                    languages=world.languages, styles=world.styles, contacts=contacts,
                    agents=world.agents_block(t_s=t))
    return world, snap


def pairs(snap, k: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Each contact with its ``k`` most proficient agents (random tie-break)."""
    prof = snap.contact_proficiency() + 1e-3 * rng.random((snap.n_contacts, snap.n_agents))
    top = np.argsort(-prof, axis=1)[:, :k]
    return np.repeat(np.arange(snap.n_contacts), k), top.ravel()



def _time_stages(*, scorer, boosters, serial, snap, ci, ai, X, reps: int) -> dict:
    """Per-stage timing statistics of scoring ``len(ci)`` pairs, each stage ``reps`` times."""
    n = len(ci)
    return {
        "scorer": _stats(_timeit(lambda: scorer.score_pairs(snap, contact_idx=ci, agent_idx=ai), reps), n),
        "features": _stats(_timeit(lambda: scorer.features(snap, contact_idx=ci, agent_idx=ai), reps), n),
        "packed_forest": _stats(_timeit(lambda: scorer.model.packed.margins(X), reps), n),
        "numba_forests": _stats(_timeit(lambda: scorer.model.predict_matrix(X, backend="numba"), reps), n),
        "xgb_inplace": _stats(_timeit(lambda: [b.inplace_predict(X) for b in boosters.values()], reps), n),
        "xgb_total": _stats(_timeit(lambda: _xgb_total(scorer, boosters, snap, ci, ai), reps), n),
        "xgb_inplace_1thread": _stats(_timeit(lambda: [b.inplace_predict(X) for b in serial.values()], reps), n),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", dest="json_out", default=None, help="write results as JSON here")
    ap.add_argument("--quick", action="store_true", help="fewer repeats and a smaller training history")
    ap.add_argument("--model", default=None, help="use this model dir instead of training one")
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args(argv)
    from assign.model.train import train
    from assign.world.centre import generate_history

    world, snap = workload(seed=a.seed)
    if a.model is not None:
        res = run(a, snap=snap, model_dir=a.model)
    else:  # a model trained for this run only, in a directory removed afterwards
        with tempfile.TemporaryDirectory(prefix="assign-bench-model-") as model_dir:
            days = 3 if a.quick else 7
            print(f"training a model on {days} days of the standard centre (seed {a.seed})...", file=sys.stderr)
            train(generate_history(world, days=days, seed=a.seed + 1), out=model_dir)
            res = run(a, snap=snap, model_dir=model_dir)
            res["model"]["dir"] = f"temporary, trained on {days} days (seed {a.seed}), removed after the run"
    txt = json.dumps(res, indent=1)
    print(txt)
    if a.json_out:
        with open(a.json_out, "w") as f:
            f.write(txt)
    return 0


def run(a: argparse.Namespace, *, snap, model_dir: str) -> dict:
    """Time every case on the model in ``model_dir``; returns the JSON-ready results."""
    import xgboost as xgb

    from assign.model.scorer import XGBScorer

    scorer = XGBScorer.load(model_dir)
    scorer.warm_up()
    boosters = scorer.model.boosters  # nthread=2
    serial = scorer.model.boosters_serial
    rng = np.random.default_rng(a.seed)
    res = dict(benchmark="scoring", load_average_before=os.getloadavg(),
               machine=dict(cpus=os.cpu_count(), platform=platform.platform(),
                                                 python=platform.python_version(), xgboost=xgb.__version__),
               model=dict(dir=str(model_dir), trees={n: f.n_trees for n, f in scorer.model.forests.items()},
                          max_depth=scorer.model.metadata["params"]["max_depth"]), cases={})
    for n_c, k in ((50, 16), (1000, 16), (1000, 100)):
        ci, ai = pairs(snap, k, rng)
        keep = ci < n_c
        ci, ai = ci[keep], ai[keep]
        n = len(ci)
        reps = (20 if a.quick else 100) if n <= 20_000 else (5 if a.quick else 30)
        X = scorer.features(snap, contact_idx=ci, agent_idx=ai)
        case = _time_stages(scorer=scorer, boosters=boosters, serial=serial, snap=snap, ci=ci, ai=ai, X=X,
                            reps=reps)
        diff = max(float(np.max(np.abs(scorer.model.forests[t].predict(X) - b.inplace_predict(X))
                                / np.maximum(1.0, np.abs(b.inplace_predict(X))))) for t, b in boosters.items())
        case["max_rel_diff_vs_xgboost"] = diff
        res["cases"][f"{n_c}x{k}"] = dict(pairs=n, **case)
    res["load_average_after"] = os.getloadavg()
    return res


if __name__ == "__main__":
    sys.exit(main())
