"""Sizing the living centre: abandonment per policy on the driftless centre, and the cost of a loop run.

    python -m benchmarks.living_centre_sizing --json OUT [--agents 8,12,20] [--windows 30,60,120]
        [--occupancy 0.88] [--monolingual] [--days 2] [--seeds 100,101,102] [--time-loop]

For every (agents, window, occupancy) of the grid: the driftless centre (:meth:`DriftSchedule.off`,
world seed ``--world-seed``, ``--intents`` intents), fcfs (event-driven) and the oracle
(batch, on the window), abandonment and unserved rates (ratio of means over ``--seeds``),
and each run's wall time. ``--time-loop`` also times one loop run (first seed) per setting,
from which the full drift benchmark's CPU time is estimated (docs/living-centre.md, "A
realistic sizing": the rule that picks a setting from these figures, written before they
were measured).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from assign.deploy.loop import LoopConfig
from assign.sim.engine import SimConfig
from assign.sim.runner import replicate
from assign.world.drift import DriftSchedule, DriftSource, drifting_world


def hires_for(agents: int) -> int:
    """Hires (and leavers) per week scaled with the roster: max(1, agents // 6)."""
    return max(1, agents // 6)


def measure(*, agents: int, window_s: float, occupancy: float, monolingual: bool, days: float, seeds: list[int],
            n_intents: int, world_seed: int, time_loop: bool, pre_days: int, workdir: Path) -> dict:
    """fcfs and oracle abandonment on the driftless centre of one setting (and a loop run's wall time)."""
    dw = drifting_world(seed=world_seed, n_agents=agents, n_intents=n_intents, schedule=DriftSchedule.off(weeks=1),
                        occupancy=occupancy, monolingual=monolingual)
    base = SimConfig(days=days, window_s=window_s)
    runs = replicate(source=DriftSource(dw), policies={"fcfs": "fcfs", "oracle": "oracle"}, seeds=seeds,
                     config=base, configs={"fcfs": SimConfig(days=days, window_s=0.0)})
    row = {"agents": agents, "window_s": window_s, "occupancy": occupancy, "monolingual": monolingual, "days": days,
           "seeds": seeds}
    for p in ("fcfs", "oracle"):
        rs = [r for r in runs if r.policy == p]
        off = np.array([r.kpis["offered"] for r in rs], float)
        for k in ("abandonment_rate", "unserved_rate"):
            row[f"{p}_{k}"] = float((np.array([r.kpis[k] for r in rs]) * off).sum() / off.sum())
        row[f"{p}_wall_s"] = float(np.mean([r.wall_s for r in rs]))
        row[f"{p}_offered_per_day"] = float(off.mean() / days)
    if time_loop:
        row.update(_time_loop(dw, window_s=window_s, days=days, seed=seeds[0], pre_days=pre_days,
                              workdir=workdir / f"a{agents}_w{int(window_s)}_o{occupancy:g}"))
    return row


def _time_loop(dw, *, window_s: float, days: float, seed: int, pre_days: int, workdir: Path) -> dict:
    from assign.deploy.loop import LoopPolicy
    from benchmarks.living_centre import first_champion

    cfg = LoopConfig()
    registry, pre = first_champion(dw, pre_days=pre_days, root=workdir, label_delay_h=cfg.label_delay_s / 3600)
    pol = LoopPolicy(registry=registry, workdir=workdir / "runs", pre_history=pre, config=cfg,
                     record=workdir / "events")
    t0 = time.perf_counter()
    r = replicate(source=DriftSource(dw), policies={"loop": pol}, seeds=[seed],
                  config=SimConfig(days=days, window_s=window_s))[0]
    return {"loop_wall_s": time.perf_counter() - t0, "loop_abandonment_rate": float(r.kpis["abandonment_rate"])}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", dest="json_out", required=True)
    ap.add_argument("--agents", default="8,12,20")
    ap.add_argument("--windows", default="30,60,120")
    ap.add_argument("--occupancy", default="0.88", help="offered load over staffed capacity (comma-separated)")
    ap.add_argument("--monolingual", action="store_true", help="every customer and agent speaks the first language")
    ap.add_argument("--days", type=float, default=2.0)
    ap.add_argument("--seeds", default="100,101,102")
    ap.add_argument("--intents", type=int, default=5)
    ap.add_argument("--world-seed", type=int, default=2026)
    ap.add_argument("--pre-days", type=int, default=10)
    ap.add_argument("--time-loop", action="store_true")
    a = ap.parse_args(argv)
    seeds = [int(s) for s in a.seeds.split(",")]
    grid = [(int(n), float(w), float(o)) for o in a.occupancy.split(",") for n in a.agents.split(",")
            for w in a.windows.split(",")]
    work = Path(a.json_out + ".work")
    rows = []
    for n, w, o in tqdm(grid, desc="settings"):
        rows.append(measure(agents=n, window_s=w, occupancy=o, monolingual=a.monolingual, days=a.days, seeds=seeds,
                            n_intents=a.intents,
                            world_seed=a.world_seed, time_loop=a.time_loop, pre_days=a.pre_days, workdir=work))
        Path(a.json_out).write_text(json.dumps({"rows": rows, "settings": vars(a)}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
