"""Guardrail rollback: false alarms and detection, ``python -m benchmarks.rollout_guardrails``.

A 12-agent overloaded synthetic centre, split rollouts with a 30% challenger share and the
default guardrails (abandonment margin 0.02, service level margin 0.05). Null: the challenger
is the champion's own policy (``fcfs`` vs ``fcfs``), so any rollback is a false alarm.
Harm: the challenger answers nothing, so its contacts abandon; the figure is the simulated
time to the rollback.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def run(*, seeds: int, days: float) -> dict:
    from tqdm import tqdm

    from assign.deploy.rollout import Guardrail, RolloutPolicy
    from assign.sim.engine import SimConfig, simulate
    from assign.sim.policies import Policy, make_policy
    from assign.sim.worldsource import WorldSource
    from assign.world.centre import generate_world

    class Hold(Policy):
        name = "hold"

        def assign(self, view):
            return np.zeros(0, np.int64), np.zeros(0, np.int64)

    src = WorldSource(generate_world(seed=22, n_agents=12, n_intents=4, n_customers=2000))
    guards = (Guardrail(name="abandonment", margin=0.02), Guardrail(name="service_level", margin=0.05))
    null, harm = [], []
    for seed in tqdm(range(100, 100 + seeds), desc="seeds"):
        for challenger, out in ((make_policy("fcfs"), null), (Hold(), harm)):
            p = RolloutPolicy(champion=make_policy("fcfs"), challenger=challenger, mode="split", share=0.3,
                              guardrails=guards, salt=f"g{seed}")
            simulate(source=src, policy=p, seed=seed, config=SimConfig(days=days))
            out.append(p.rolled_back_at_s)
    hours = np.array([np.nan if x is None else x / 3600.0 for x in harm])
    return {"benchmark": "rollout_guardrails", "seeds": seeds, "days": days,
            "null_rollbacks": int(sum(x is not None for x in null)),
            "false_alarms_per_simulated_day": sum(x is not None for x in null) / (seeds * days),
            "harm_rolled_back": int(np.isfinite(hours).sum()),
            "harm_hours_to_rollback": {"median": float(np.nanmedian(hours)), "max": float(np.nanmax(hours))}
            if np.isfinite(hours).any() else None}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--days", type=float, default=2.0)
    ap.add_argument("--json", dest="json_out")
    args = ap.parse_args(argv)
    res = run(seeds=args.seeds, days=args.days)
    text = json.dumps(res, indent=1)
    if args.json_out:
        Path(args.json_out).write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
