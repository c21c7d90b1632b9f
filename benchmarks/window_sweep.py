"""The batch-window sweep of issue 14 (docs/simulation.md): what a fast tick buys.

    python -m benchmarks.window_sweep --world DATA --model MODEL [--seeds 5] [--days 1] [--workers 2]
                                      [--rows OUT.jsonl] [--json OUT.json] [--plot OUT.png]

On one centre (``--world``: ``assign generate --agents 200 --days 14 --seed 7``) with its
XGBoost model, each seed runs ``fcfs`` (event-driven), ``oracle`` (5 s windows: the ceiling of
docs/simulation.md), and ``ml-batch`` with windows 0 (every event), 0.5, 1, 2, 3 and 5 s, and the
adaptive rule (:class:`assign.sim.adaptive.AdaptiveBatch`, engine window 0.5 s, holds of 2 and
5 s); the oracle at the same windows and holds gives each setting's ceiling (what a perfect
model would keep), which separates the cost of the window from the cost of the model's error.
Every setting sees the same seeds (common random numbers). Per setting: the share of the
oracle's resolution uplift over fcfs (delta-method 95% CI), and service level and abandonment
as paired differences against fcfs (95% CI). Runs are appended to ``--rows`` as
they finish (a JSON line each) and a rerun skips the runs already there, so a long sweep can
be resumed; ``--report-only`` builds the table from the rows.
"""
from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

WINDOWS = (0.0, 0.5, 1.0, 2.0, 3.0, 5.0)
HOLDS = (2.0, 5.0)
KPIS = ("resolution_rate", "service_level", "abandonment_rate", "mean_wait_s", "csat")


def settings() -> list[str]:
    """fcfs and the reference oracle first; then ml-batch at each window and adaptive hold, and
    the oracle at the same settings (what a perfect model would keep: the ceiling of each)."""
    return (["fcfs", "oracle-w5"] + [f"ml-batch-w{w:g}" for w in WINDOWS]
            + [f"ml-batch-adaptive{h:g}" for h in HOLDS]
            + [f"oracle-w{w:g}" for w in WINDOWS if w != 5.0] + [f"oracle-adaptive{h:g}" for h in HOLDS])


def _policy(label: str, *, model: str):
    """The policy and engine window a setting label names."""
    from assign.sim.adaptive import AdaptiveBatch
    from assign.sim.runner import PolicySpec

    if label == "fcfs":
        return PolicySpec(name="fcfs").build(), 0.0
    name, _, rest = label.partition("-")
    if name == "ml":
        name, rest = "ml-batch", rest[len("batch-"):]
    inner = PolicySpec(name=name, model_dir=model if name == "ml-batch" else None).build()
    if rest.startswith("w"):
        return inner, float(rest[1:])
    return AdaptiveBatch(inner=inner, hold_s=float(rest[len("adaptive"):])), 0.5


def run_one(label: str, *, seed: int, world: str, model: str, days: float) -> dict:
    """One replication of one setting: its KPIs and wall time."""
    import time

    from assign.sim.engine import SimConfig, simulate
    from assign.sim.kpis import summarise
    from assign.sim.worldsource import WorldSource
    from assign.world.centre import World

    src = WorldSource(World.load(world))
    pol, window = _policy(label, model=model)
    t0 = time.perf_counter()
    run = simulate(source=src, policy=pol, seed=seed, config=SimConfig(days=days, window_s=window))
    k = summarise(run).kpis
    return {"label": label, "seed": seed, "days": days, "window_s": window, "wall_s": time.perf_counter() - t0,
            "decisions": int(run.n_decisions), **{n: float(k[n]) for n in KPIS}, "offered": int(run.n_contacts)}


def _interval(x: np.ndarray) -> tuple[float, float]:
    from scipy import stats

    if len(x) < 2:
        return float(x.mean()), float("nan")
    return float(x.mean()), float(stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x)))


def report(rows: list[dict]) -> list[dict]:
    """Per setting: uplift share of the oracle's (ratio of mean paired differences, delta
    method), SL and abandonment differences against fcfs, over the seeds every one has."""
    from scipy import stats

    by = {(r["label"], r["seed"]): r for r in rows}
    out = []
    for lab in settings()[2:]:
        seeds = sorted(s for (b, s) in by if b == lab and ("fcfs", s) in by and ("oracle-w5", s) in by)
        if not seeds:
            continue
        get = lambda who, k, seeds=seeds: np.array([by[(who, s)][k] for s in seeds])
        num = get(lab, "resolution_rate") - get("fcfs", "resolution_rate")
        den = get("oracle-w5", "resolution_rate") - get("fcfs", "resolution_rate")
        r = num.mean() / den.mean()
        hw = float("nan")
        if len(seeds) > 1:
            cov = np.cov(num, den, ddof=1)
            var = (cov[0, 0] - 2 * r * cov[0, 1] + r * r * cov[1, 1]) / (len(seeds) * den.mean() ** 2)
            hw = float(stats.t.ppf(0.975, len(seeds) - 1) * np.sqrt(max(var, 0.0)))
        row = {"setting": lab, "seeds": len(seeds), "uplift_share": float(r), "uplift_share_hw": hw,
               "wall_s_mean": float(get(lab, "wall_s").mean())}
        for k in ("service_level", "abandonment_rate", "resolution_rate", "mean_wait_s"):
            m, h = _interval(get(lab, k) - get("fcfs", k))
            row[k] = float(get(lab, k).mean())
            row[f"{k}_vs_fcfs"], row[f"{k}_vs_fcfs_hw"] = m, h
        out.append(row)
    return out


def _plot(table: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    names = [r["setting"].replace("ml-batch-", "") for r in table]
    for ax, (key, title) in zip(axes, [("uplift_share", "share of the oracle's resolution uplift"),
                                       ("service_level_vs_fcfs", "service level − fcfs"),
                                       ("abandonment_rate_vs_fcfs", "abandonment − fcfs")]):
        hw = [r[f"{key}_hw"] if f"{key}_hw" in r else r["uplift_share_hw"] for r in table]
        ax.errorbar(range(len(table)), [r[key] for r in table], yerr=hw, fmt="o", capsize=3)
        ax.axhline(0.95 if key == "uplift_share" else 0.0, color="grey", lw=0.8, ls="--")
        ax.set_xticks(range(len(table)), names, rotation=45, ha="right")
        ax.set_title(title, fontsize=10)
    fig.suptitle("ml-batch (XGBoost) and the oracle by batch window, 95% CI over paired seeds", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.window_sweep", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--world", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--days", type=float, default=1.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rows", default="window_sweep.jsonl")
    ap.add_argument("--json", default=None)
    ap.add_argument("--plot", default=None)
    ap.add_argument("--report-only", action="store_true")
    ap.add_argument("--only", nargs="+", choices=settings()[2:], default=None,
                    help="run just these settings (and fcfs and oracle-w5, the references)")
    args = ap.parse_args(argv)
    from tqdm import tqdm

    rows_path = Path(args.rows)
    rows = [json.loads(x) for x in rows_path.read_text().splitlines() if x.strip()] if rows_path.exists() else []
    done = {(r["label"], r["seed"]) for r in rows}
    # seed by seed, the cheap settings first (window 0 and 0.5 s tick up to 200,000 times a day)
    order = sorted(settings(), key=lambda lab: lab in ("ml-batch-w0", "ml-batch-w0.5", "ml-batch-w1"))
    if args.only:
        order = [lab for lab in order if lab in {"fcfs", "oracle-w5", *args.only}]
    jobs = [(lab, s) for s in range(args.seeds) for lab in order if (lab, s) not in done]
    if jobs and not args.report_only:
        with ProcessPoolExecutor(max_workers=args.workers) as ex, rows_path.open("a") as f:
            futs = {ex.submit(run_one, lab, seed=s, world=args.world, model=args.model, days=args.days): (lab, s)
                    for lab, s in jobs}
            for fut in tqdm(as_completed(futs), total=len(futs), desc="sweep runs", file=sys.stderr):
                row = fut.result()
                rows.append(row)
                f.write(json.dumps(row) + "\n")
                f.flush()
    table = report(rows)
    print(f"{'setting':<24} {'seeds':>5} {'uplift share':>18} {'SL - fcfs':>18} {'aband. - fcfs':>18}")
    for r in table:
        print(f"{r['setting']:<24} {r['seeds']:>5} {r['uplift_share']:>9.3f} ± {r['uplift_share_hw']:<6.3f} "
              f"{r['service_level_vs_fcfs']:>+9.4f} ± {r['service_level_vs_fcfs_hw']:<6.4f} "
              f"{r['abandonment_rate_vs_fcfs']:>+9.4f} ± {r['abandonment_rate_vs_fcfs_hw']:<6.4f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "table": table}, indent=1) + "\n")
    if args.plot and table:
        _plot(table, args.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
