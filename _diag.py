import numpy as np
from assign.sim.engine import SimConfig, simulate
from assign.sim.policies import make_policy
from assign.world.drift import DriftSchedule, DriftSource, drifting_world
from assign.sim.kpis import summarise
dw = drifting_world(seed=2026, n_agents=20, n_intents=5, schedule=DriftSchedule.off(weeks=1), occupancy=0.88)
src = DriftSource(dw)
run = simulate(source=src, policy=make_policy("fcfs"), seed=100, config=SimConfig(days=1, window_s=0.0))
s = summarise(run)
bh = s.by_hour
print("offered", bh["offered"].astype(int))
print("aband  ", bh["abandoned"].astype(int))
print(s.by_intent.keys())
for k,v in s.by_intent.items(): print(k, {a:round(b,3) for a,b in v.items() if a in ("offered","abandonment_rate")})
print([f.name for f in __import__("dataclasses").fields(run)])
print("occ", s.kpis["occupancy"], "aband", s.kpis["abandonment_rate"])
a = dw.base.agents
print(a.columns.tolist())
import numpy as np
arr = src.agents
print("skill>=min per intent:", (arr.skill >= SimConfig().min_proficiency).sum(axis=0), "min", SimConfig().min_proficiency)
print("capacity", arr.capacity[:5], "speaks", arr.speaks.sum(axis=0))
st = run.stream
ch = st.block.channel
for c in range(3): print("chan", c, (ch==c).sum(), ((run.status==run.status.max()) & (ch==c)).sum())
print(np.unique(run.status, return_counts=True))
lang = st.block.language
ab = s.kpis
