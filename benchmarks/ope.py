"""Off-policy evaluation validated against on-policy simulation (docs/ope.md).

    python -m benchmarks.ope [--quick] --json OUT [--reps N] [--workers W] [--progress FILE]
                             [--figures DIR] [--write-log DIR]

A small synthetic centre (16 agents, 30 intents, the first half of a Monday: 00:00-12:00,
about 1,500 contacts; 20 s routing windows), sized for 2 shared cores. For each
replication seed: the exploring router (Gumbel-perturbed values solved exactly, temperature
0.1) routes the day and writes its decision log; each target (fcfs, skills, ml-greedy,
ml-batch, worst-skill) is re-run on the logged windows and every estimator estimates its
resolution value per contact served; the truth is the same target routing the same seed
on-policy (mean true ``p_resolved`` of the contacts it served). Then three (--quick: one) replications
logged by the deterministic router (temperature 0): every estimator must refuse the
targets that differ from it.

OUT holds exactly the issue's keys: ``policies`` (per policy: ``name``, ``true_value`` =
mean over replications of the on-policy truth, ``estimates[est]`` = mean over replications
of the estimate and of its 95% interval bounds), ``relative_error[est]`` (mean over
policies of the mean over replications of |estimate - same-seed truth| / truth),
``coverage[est]`` (share of (policy, replication) intervals holding the same-seed truth),
``rank_correlation[est]`` (Spearman of the mean estimates with the truths). Everything else
(per replication rows, the truth of the target on the logged windows, deterministic logs,
settings, timings) goes to ``OUT`` with ``.details.json``; progress lines to ``--progress``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

TARGETS = ("fcfs", "skills", "ml-greedy", "ml-batch", "worst-skill")
ESTIMATORS = ("dm", "ips", "snips", "dr", "switch-dr")
WORLD = {"seed": 2026, "n_agents": 16}
_CACHE: dict = {}


def _source():
    if "src" not in _CACHE:
        from assign.sim.worldsource import WorldSource
        from assign.world.centre import generate_world

        _CACHE["src"] = WorldSource(generate_world(**WORLD), name="ope-centre")
    return _CACHE["src"]


def one_replication(seed: int, days: float, window_s: float, temperature: float, n_draws: int,
                    n_bootstrap: int, write_log: str | None = None) -> dict:
    """Log one seed, estimate every target, simulate every target's truth."""
    from assign.ope import evaluate, fit_reward_model, make_target, pair_data
    from assign.ope.evaluate import target_pairs
    from assign.ope.reward import LogisticRewardModel
    from assign.ope.simulate import log_replication, on_policy_value, window_value
    from assign.sim.engine import SimConfig

    t0 = time.perf_counter()
    src = _source()
    cfg = SimConfig(days=days, window_s=window_s)
    log = log_replication(source=src, seed=seed, config=cfg, temperature=temperature, n_draws=n_draws)
    if write_log:
        log.write(write_log)
    t_log = time.perf_counter() - t0
    rm = fit_reward_model(log, LogisticRewardModel())
    rows = []
    for name in TARGETS:
        rule = make_target(name)
        data = pair_data(log, rule, reward_model=rm)
        res = evaluate(data, policy=name, estimators=ESTIMATORS, n_bootstrap=n_bootstrap, random_state=seed,
                       reward_model=rm.name)
        wv = window_value(source=src, log=log, pairs=target_pairs(log, rule)) if temperature > 0 else None
        truth = on_policy_value(source=src, rule=rule, seed=seed, config=cfg) if temperature > 0 else None
        rows.append({"seed": seed, "policy": name, "truth": truth, "window_truth": wv,
                     "support_deficiency": res.support_deficiency, "ess": res.ess,
                     "n_target_pairs": res.n_target_pairs, "n_matched": res.n_matched, "switch_tau": res.switch_tau,
                     "estimates": {k: vars(v) for k, v in res.estimates.items()}})
    return {"seed": seed, "temperature": temperature, "n_windows": log.n_windows,
            "n_decisions": len(log.tables["decisions"]), "explored": float(log.tables["decisions"]["explored"].mean()),
            "log_s": t_log, "total_s": time.perf_counter() - t0, "rows": rows}


def summarise(reps: list[dict]) -> tuple[dict, dict]:
    """The issue's JSON (exact keys) and the per-policy details."""
    from scipy.stats import spearmanr

    rows = [r for rep in reps for r in rep["rows"]]
    policies, details = [], {}
    rel, cover = {e: [] for e in ESTIMATORS}, {e: [] for e in ESTIMATORS}
    for name in TARGETS:
        rr = [r for r in rows if r["policy"] == name]
        truth = np.array([r["truth"] for r in rr])
        est = {}
        det = {"true_value_sd": float(truth.std(ddof=1)) if len(truth) > 1 else None,
               "window_truth": float(np.mean([r["window_truth"] for r in rr])),
               "support_deficiency": float(np.mean([r["support_deficiency"] for r in rr])),
               "ess_share": float(np.mean([r["ess"] / max(r["n_target_pairs"], 1) for r in rr])),
               "switch_tau": [r["switch_tau"] for r in rr], "per_estimator": {}}
        for e in ESTIMATORS:
            v = np.array([np.nan if r["estimates"][e]["value"] is None else r["estimates"][e]["value"] for r in rr])
            lo = np.array([np.nan if r["estimates"][e]["ci_low"] is None else r["estimates"][e]["ci_low"] for r in rr])
            hi = np.array(
                [np.nan if r["estimates"][e]["ci_high"] is None else r["estimates"][e]["ci_high"] for r in rr]
            )
            est[e] = {"value": float(np.nanmean(v)), "ci_low": float(np.nanmean(lo)), "ci_high": float(np.nanmean(hi))}
            rel_r = np.abs(v - truth) / truth
            cov_r = (lo <= truth) & (truth <= hi)
            rel[e].append(float(np.nanmean(rel_r)))
            cover[e].extend(cov_r.tolist())
            det["per_estimator"][e] = {
                "relative_error": float(np.nanmean(rel_r)),
                "coverage": float(cov_r.mean()),
                "bias": float(np.nanmean(v - truth)),
                "sd": float(np.nanstd(v, ddof=1)) if len(v) > 1 else None,
                "bias_vs_window_truth": float(np.nanmean(v - np.array([r["window_truth"] for r in rr]))),
                "coverage_of_window_truth": float(
                    np.mean([(a <= r["window_truth"] <= b) for a, b, r in zip(lo, hi, rr)])
                ),
                "mean_half_width": float(np.nanmean(hi - lo) / 2),
                "refused": int(np.isnan(v).sum()),
            }
        policies.append({"name": name, "true_value": float(truth.mean()), "estimates": est})
        details[name] = det
    truths = [p["true_value"] for p in policies]
    rank = {e: float(spearmanr([p["estimates"][e]["value"] for p in policies], truths).statistic) for e in ESTIMATORS}
    out = {
        "policies": policies,
        "relative_error": {e: float(np.mean(rel[e])) for e in ESTIMATORS},
        "coverage": {e: float(np.mean(cover[e])) for e in ESTIMATORS},
        "rank_correlation": rank,
    }
    return out, details


def deterministic_summary(reps: list[dict]) -> dict:
    """Per target: how often each estimator refused on the deterministic logs."""
    out = {}
    for name in TARGETS:
        rr = [r for rep in reps for r in rep["rows"] if r["policy"] == name]
        out[name] = {
            "support_deficiency": [r["support_deficiency"] for r in rr],
            "refused": {e: sum(r["estimates"][e]["refused"] is not None for r in rr) for e in ESTIMATORS},
            "replications": len(rr),
            "reason": next((r["estimates"]["dr"]["refused"] for r in rr if r["estimates"]["dr"]["refused"]), None),
        }
    return out


def figures(out: dict, details: dict, reps: list[dict], fig_dir: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig_dir.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(1, 2, figsize=(12, 4.5))
    pol = out["policies"]
    x = np.arange(len(pol))
    for k, e in enumerate(ESTIMATORS):
        v = np.array([p["estimates"][e]["value"] for p in pol])
        lo = np.array([p["estimates"][e]["ci_low"] for p in pol])
        hi = np.array([p["estimates"][e]["ci_high"] for p in pol])
        ax[0].errorbar(x + (k - 2) * 0.12, v, yerr=[v - lo, hi - v], fmt="o", ms=4, capsize=2, label=e)
    ax[0].scatter(x, [p["true_value"] for p in pol], marker="_", s=900, c="k", label="truth (on-policy)", zorder=5)
    ax[0].set_xticks(x, [p["name"] for p in pol])
    ax[0].set_ylabel("resolution per contact served")
    ax[0].set_title("Mean estimate, mean 95% interval of one log, truth")
    ax[0].legend(fontsize=8)
    rows = [r for rep in reps for r in rep["rows"]]
    data = [[(r["estimates"][e]["value"] - r["truth"]) / r["truth"] for r in rows] for e in ESTIMATORS]
    ax[1].boxplot(data, tick_labels=list(ESTIMATORS))
    ax[1].axhline(0, c="k", lw=0.8)
    ax[1].set_ylabel("(estimate - same-seed truth) / truth")
    ax[1].set_title(f"Per replication, all policies ({len(reps)} logs)")
    fig.tight_layout()
    p = fig_dir / "ope-validation.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    return [str(p)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="4 + 1 deterministic replications (CI)")
    ap.add_argument("--json", dest="json_out", required=True)
    ap.add_argument("--reps", type=int, default=None, help="replications (default 50; --quick 4)")
    ap.add_argument("--days", type=float, default=None, help="days per replication (default 0.5)")
    ap.add_argument("--window-s", type=float, default=20.0)
    ap.add_argument("--temperature", type=float, default=0.1)
    ap.add_argument("--n-draws", type=int, default=2000)
    ap.add_argument("--n-bootstrap", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--progress", default=None, help="progress file [default: OUT.progress]")
    ap.add_argument("--figures", default=None, help="directory for the PNG [default: next to OUT]")
    ap.add_argument("--write-log", default=None, help="also write the first replication's log here")
    a = ap.parse_args(argv)
    reps_n = a.reps or (4 if a.quick else 50)
    days = a.days or 0.5
    prog = Path(a.progress or a.json_out + ".progress")
    prog.parent.mkdir(parents=True, exist_ok=True)
    prog.write_text("")
    t0 = time.perf_counter()

    def note(msg: str) -> None:
        with prog.open("a") as f:
            f.write(f"[{time.perf_counter() - t0:7.1f}s] {msg}\n")

    jobs = [
        (s, days, a.window_s, a.temperature, a.n_draws, a.n_bootstrap, a.write_log if s == 0 else None)
        for s in range(reps_n)
    ]
    jobs += [(10_000 + s, days, a.window_s, 0.0, a.n_draws, a.n_bootstrap, None) for s in range(1 if a.quick else 3)]
    results = []
    with ProcessPoolExecutor(max_workers=max(1, a.workers)) as ex:
        futs = [ex.submit(one_replication, *j) for j in jobs]
        for k, f in enumerate(futs):
            r = f.result()
            results.append(r)
            note(
                f"{k + 1}/{len(jobs)} seed {r['seed']} T={r['temperature']:g}: {r['n_windows']} windows, "
                f"{r['n_decisions']} decisions, {r['total_s']:.1f}s"
            )
    explore = [r for r in results if r["temperature"] > 0]
    det = [r for r in results if r["temperature"] == 0]
    out, details = summarise(explore)
    Path(a.json_out).write_text(json.dumps(out, indent=1))
    fig_dir = Path(a.figures) if a.figures else Path(a.json_out).parent
    figs = figures(out, details, explore, fig_dir)
    extra = {
        "settings": {
            "world": WORLD,
            "days": days,
            "window_s": a.window_s,
            "temperature": a.temperature,
            "n_draws": a.n_draws,
            "n_bootstrap": a.n_bootstrap,
            "replications": reps_n,
            "reward_model": "logistic, cross-fitted on the log",
            "scorer": "SkillScorer",
        },
        "per_policy": details,
        "deterministic_logs": deterministic_summary(det),
        "logs": [
            {k: r[k] for k in ("seed", "n_windows", "n_decisions", "explored", "log_s", "total_s")} for r in results
        ],
        "replications": [row for r in explore for row in r["rows"]],
        "figures": figs,
        "wall_s": time.perf_counter() - t0,
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus (shared)",
    }
    Path(a.json_out + ".details.json").write_text(json.dumps(extra, indent=1, default=str))
    note(f"done in {time.perf_counter() - t0:.0f}s: {a.json_out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
