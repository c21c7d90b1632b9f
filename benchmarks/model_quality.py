"""Model quality against the known truth, over several seeds.

For each seed: a synthetic centre (``--agents``, default 100), ``--days`` (default 14) of
history, ``assign.model.train`` with its defaults, and the held-out tail's resolution AUC and
calibration error of the model and of the truth (``truth_p_resolved``), plus CSAT and handle
time RMSE. Prints a table and the spread; ``--json`` writes it, ``--plot`` writes a PNG
(reliability curves of model and truth, AUC gap per seed).

Run: ``python -m benchmarks.model_quality [--seeds 1 2 3] [--json OUT] [--plot OUT.png]``.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time

import numpy as np


def run_seed(seed: int, *, agents: int, days: int) -> dict:
    from assign.features import history_features
    from assign.model import ModelDir, train
    from assign.world.centre import generate_history, generate_world

    t0 = time.perf_counter()
    world = generate_world(n_agents=agents, seed=seed)
    hist = generate_history(world, days=days, seed=seed + 1000)
    with tempfile.TemporaryDirectory() as d:
        res = train(hist, out=d)
        m = ModelDir.load(d)
        h = hist.sort_values("arrival_at", kind="stable").reset_index(drop=True)
        X = history_features(h, m.spec).X
        te = np.zeros(len(h), bool)
        te[len(h) - res.metadata["data"]["rows_test"]:] = True
        sel = te & h["resolved"].notna().to_numpy()
        p_model = m.predict_matrix(X[sel])["resolved"]
    r = res.metrics["resolved"]
    return dict(seed=seed, rows=len(hist), test_rows=r["rows"], trees=res.metadata["rounds"],
                auc_model=r["auc"], auc_truth=r["truth"]["auc"], auc_gap=r["truth"]["auc"] - r["auc"],
                ece_model=r["calibration_error"], ece_truth=r["truth"]["calibration_error"],
                logloss_model=r["log_loss"], logloss_truth=r["truth"]["log_loss"],
                csat_rmse_model=res.metrics["csat"]["rmse"], csat_rmse_truth=res.metrics["csat"]["truth"]["rmse"],
                handle_rmse_model=res.metrics["handle_time"]["rmse"],
                handle_rmse_truth=res.metrics["handle_time"]["truth"]["rmse"], seconds=time.perf_counter() - t0,
                _curve=dict(y=h["resolved"].astype(float).to_numpy()[sel], p=p_model,
                            truth=h["truth_p_resolved"].to_numpy()[sel]))


def _plot(rows: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4.2))
    for r in rows:
        c = r["_curve"]
        for key, ls in (("p", "-"), ("truth", ":")):
            order = np.argsort(c[key])
            chunks = np.array_split(order, 20)
            a1.plot([c[key][k].mean() for k in chunks], [c["y"][k].mean() for k in chunks], ls,
                    label=f"seed {r['seed']} {'model' if key == 'p' else 'truth'}")
    a1.plot([0, 1], [0, 1], "k--", lw=0.8)
    a1.set(xlabel="predicted P(resolved)", ylabel="observed rate", title="Reliability on the held-out tail")
    a1.legend(fontsize=7)
    seeds = [str(r["seed"]) for r in rows]
    a2.bar(seeds, [r["auc_gap"] for r in rows])
    a2.axhline(0.01, color="r", ls="--", lw=0.8, label="target 0.01")
    a2.set(xlabel="seed", ylabel="truth AUC - model AUC", title="Resolution AUC gap")
    a2.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--agents", type=int, default=100)
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument("--json", dest="json_out", default=None)
    ap.add_argument("--plot", default=None)
    a = ap.parse_args(argv)
    rows = []
    for s in a.seeds:
        r = run_seed(s, agents=a.agents, days=a.days)
        rows.append(r)
        print(f"seed {s}: AUC model {r['auc_model']:.4f} truth {r['auc_truth']:.4f} gap {r['auc_gap']:.4f}; "
              f"ECE model {r['ece_model']:.4f} truth {r['ece_truth']:.4f}; {r['rows']} rows, {r['seconds']:.0f}s",
              file=sys.stderr)
    keys = ["auc_model", "auc_truth", "auc_gap", "ece_model", "ece_truth", "csat_rmse_model", "csat_rmse_truth",
            "handle_rmse_model", "handle_rmse_truth"]
    summary = {k: dict(mean=float(np.mean([r[k] for r in rows])), min=float(np.min([r[k] for r in rows])),
                       max=float(np.max([r[k] for r in rows]))) for k in keys}
    out = dict(benchmark="model_quality", agents=a.agents, days=a.days,
               runs=[{k: v for k, v in r.items() if not k.startswith("_")} for r in rows], summary=summary)
    txt = json.dumps(out, indent=1)
    print(txt)
    if a.json_out:
        with open(a.json_out, "w") as f:
            f.write(txt)
    if a.plot:
        _plot(rows, a.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
