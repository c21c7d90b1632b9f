import time, numpy as np
from pathlib import Path
from assign.deploy.loop import LoopConfig, LoopPolicy
from assign.sim.engine import SimConfig, simulate
from assign.world.drift import DriftSchedule, DriftSource, drifting_world
from benchmarks.living_centre import first_champion
dw = drifting_world(seed=2026, n_agents=20, n_intents=5, schedule=DriftSchedule(weeks=1, hires_per_week=3, leavers_per_week=3, shock_day=0.5, mix_day=5), occupancy=0.5, monolingual=True)
root = Path("/tmp/loop4/smoke")
cfg = LoopConfig(level_half_life_h=12.0)
reg, pre = first_champion(dw, pre_days=4, root=root, label_delay_h=6)
pol = LoopPolicy(registry=reg, workdir=root/"runs", pre_history=pre, config=cfg)
t0 = time.perf_counter()
run = simulate(source=DriftSource(dw), policy=pol, seed=10, config=SimConfig(days=1.6, window_s=30.0))
print("wall", time.perf_counter()-t0, "folds", len(pol.level_folds), "n outcomes", sum(len(f[1]) for f in pol.level_folds))
print(dict(zip(pol.levels.intents, np.round(pol.levels.values, 3))), dw.shock_intent)
print([e["event"] for e in pol.events])
