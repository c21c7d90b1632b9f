import numpy as np
from assign.sim.engine import SimConfig, simulate
from assign.sim.policies import make_policy
from assign.world.drift import DriftSchedule, DriftSource, drifting_world
for n in (12, 20):
  for occ in (0.5, 0.4):
    dw = drifting_world(seed=2026, n_agents=n, n_intents=5, schedule=DriftSchedule.off(weeks=1), occupancy=occ, monolingual=True)
    run = simulate(source=DriftSource(dw), policy=make_policy("fcfs"), seed=100, config=SimConfig(days=1, window_s=0.0))
    ab = run.status == 3; it = run.stream.block.intent
    print(n, occ, "aband", round(ab.mean(),3), [round(ab[it==i].mean(),3) for i in range(5)], flush=True)
