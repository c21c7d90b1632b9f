"""One simulated day in two checkouts, interleaved: the speed-up and the proof that nothing changed.

    python -m benchmarks.simulate_ab --base DIR --model MODEL_DIR [--rounds 3] [--policies ml-batch fcfs]
                                     [--world WORLD_DIR] [--seeds 0 ...] [--json OUT.jsonl] [--plot OUT.png]

Each run is its own process, in the checkout's root (``DIR`` for the base, the current
directory for the new code), one at a time, alternating which tree goes first from round to
round. A run is ``benchmarks.simulate``'s day (the standard centre, or the saved world of
``--world``, e.g. ``assign generate``'s ``data/world``; seed 0, or each of ``--seeds``; ml-batch with the
XGBoost model of ``MODEL_DIR``, 5 s windows, the router loaded outside the clock; fcfs event
driven) and reports wall time (the engine's ``RunResult.wall_s``), CPU time of the run
(``time.process_time``, steadier on a shared machine), the load average, the KPIs and a
SHA-256 fingerprint of every per-contact and per-agent record: base and new must agree on it.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

#: Run in each checkout by ``python -c`` (argv: policy, model dir, days, world dir or "", seed).
ONE_RUN = r'''
import hashlib, json, os, sys, time
sys.path.insert(0, os.getcwd())
import numpy as np
from assign.sim.engine import Engine, SimConfig, simulate
from assign.sim.kpis import summarise
from assign.sim.runner import PolicySpec
from assign.sim.worldsource import WorldSource
from assign.world.centre import World, generate_world
policy, model, days, world, seed = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4], int(sys.argv[5])
src = WorldSource(World.load(world) if world else generate_world(seed=2026))
batched = policy != "fcfs"
pol = PolicySpec(name=policy, model_dir=model if batched else None).build()
if batched:  # load and compile outside the clock, as benchmarks.simulate does
    pol.start(Engine(source=src, policy=pol, seed=0, config=SimConfig(days=0.01)).info)
load = os.getloadavg()[0]
c0 = time.process_time()
run = simulate(source=src, policy=pol, seed=seed, config=SimConfig(days=days, window_s=5.0 if batched else 0.0))
cpu = time.process_time() - c0
h = hashlib.sha256()
for k in ("status", "wait_s", "agent", "agent_load", "handle_s", "resolved", "csat", "truth_p_resolved",
          "truth_csat", "truth_handle_s", "agent_busy_s", "agent_staffed_s", "agent_work_s", "agent_handled"):
    h.update(np.ascontiguousarray(getattr(run, k)).tobytes())
k = summarise(run).kpis
print(json.dumps({"policy": policy, "seed": seed, "days": days, "wall_s": round(run.wall_s, 3), "cpu_s": round(cpu, 3),
                  "decisions": run.n_decisions, "fingerprint": h.hexdigest()[:16], "load_avg": round(load, 2),
                  "resolution_rate": round(k["resolution_rate"], 4), "service_level": round(k["service_level"], 4),
                  "abandonment_rate": round(k["abandonment_rate"], 4)}))
'''


def one(tree: Path, *, policy: str, model: str, days: float, world: str = "", seed: int = 0) -> dict:
    out = subprocess.run([sys.executable, "-c", ONE_RUN, policy, model, str(days), world, str(seed)], cwd=tree,
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def plot(rows: list[dict], path: str) -> None:
    """CPU and wall time per round, base against new, one panel per policy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    policies = sorted({r["policy"] for r in rows})
    fig, axes = plt.subplots(1, len(policies), figsize=(5 * len(policies), 3.6), squeeze=False)
    for ax, pol in zip(axes[0], policies):
        for tree, colour in (("base", "tab:grey"), ("new", "tab:blue")):
            rs = sorted((r for r in rows if r["policy"] == pol and r["tree"] == tree), key=lambda r: r["round"])
            ax.plot([r["round"] for r in rs], [r["cpu_s"] for r in rs], "o-", color=colour, label=f"{tree} CPU")
            ax.plot([r["round"] for r in rs], [r["wall_s"] for r in rs], "s--", color=colour, alpha=0.6,
                    label=f"{tree} wall")
        ax.set_title(f"{pol}: one simulated day")
        ax.set_xticks(sorted({r["round"] for r in rows}))
        ax.set_xlabel("round (interleaved, shared 2-core machine)")
        ax.set_ylabel("seconds")
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.simulate_ab")
    ap.add_argument("--base", required=True, help="checkout of the code to compare against (its root)")
    ap.add_argument("--model", required=True, help="model directory for ml-batch")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--days", type=float, default=1.0)
    ap.add_argument("--policies", nargs="+", default=["ml-batch", "fcfs"])
    ap.add_argument("--world", default="", help="a saved world directory (default: the benchmark's centre)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0], help="traffic seeds, each run in every round")
    ap.add_argument("--json", default=None, help="append one JSON line per run here")
    ap.add_argument("--plot", default=None, help="write the rounds as a PNG here")
    args = ap.parse_args(argv)
    trees = {"base": Path(args.base).resolve(), "new": Path(os.getcwd())}
    world = str(Path(args.world).resolve()) if args.world else ""
    rows = []
    for rnd in range(1, args.rounds + 1):
        order = ("base", "new") if rnd % 2 else ("new", "base")
        for pol in args.policies:
            for seed in args.seeds:
                for tree in order:
                    r = {"tree": tree, "round": rnd, **one(trees[tree], policy=pol, model=args.model, days=args.days,
                                                           world=world, seed=seed)}
                    rows.append(r)
                    print(json.dumps(r), file=sys.stderr)
                    if args.json:
                        with open(args.json, "a") as f:
                            f.write(json.dumps(r) + "\n")
    for pol in args.policies:
        pairs = [(b, n) for b in rows for n in rows if b["policy"] == n["policy"] == pol and b["seed"] == n["seed"]
                 and b["round"] == n["round"] and b["tree"] == "base" and n["tree"] == "new"]
        differ = sorted({b["seed"] for b, n in pairs if b["fingerprint"] != n["fingerprint"]})
        ratios = ", ".join(f"{n['cpu_s'] / b['cpu_s']:.2f}" for b, n in pairs)
        print(f"{pol}: CPU new/base per run {ratios}; records identical: {not differ}"
              + (f" (seeds that differ: {differ})" if differ else ""))
    if args.plot:
        plot(rows, args.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
