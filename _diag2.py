import numpy as np, sys
from assign.sim.engine import SimConfig, simulate
from assign.sim.policies import make_policy
from assign.world.drift import DriftSchedule, DriftSource, drifting_world
from assign.sim.kpis import summarise
for occ in (0.88, 0.5, 0.3, 0.15):
    dw = drifting_world(seed=2026, n_agents=20, n_intents=5, schedule=DriftSchedule.off(weeks=1), occupancy=occ)
    src = DriftSource(dw)
    run = simulate(source=src, policy=make_policy("fcfs"), seed=100, config=SimConfig(days=1, window_s=0.0))
    s = summarise(run)
    ch = run.stream.block.channel; ab = run.status == 3
    it = run.stream.block.intent; lang = run.stream.block.language
    print(occ, "aband", round(ab.mean(),3), "occ", round(s.kpis["occupancy"],3), "by chan", [round(ab[ch==c].mean(),3) for c in range(3)],
          "by intent", [round(ab[it==i].mean(),3) for i in range(5)], "by lang", [round(ab[lang==l].mean(),3) for l in range(4)],
          "mean wait of served", round(run.wait_s[run.status==2].mean(),1))
