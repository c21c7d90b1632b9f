import numpy as np
from assign.sim.engine import SimConfig, simulate
from assign.sim.policies import make_policy
from assign.world.drift import DriftSchedule, DriftSource, drifting_world
from assign.sim.kpis import summarise
for occ in (0.88,):
    dw = drifting_world(seed=2026, n_agents=20, n_intents=5, schedule=DriftSchedule.off(weeks=1), occupancy=occ, monolingual=True)
    src = DriftSource(dw)
    run = simulate(source=src, policy=make_policy("fcfs"), seed=100, config=SimConfig(days=1, window_s=0.0))
    s = summarise(run)
    ch = run.stream.block.channel; ab = run.status == 3
    it = run.stream.block.intent
    hr = (run.stream.arrival_s // 3600).astype(int) % 24
    print(occ, "aband", round(ab.mean(),3), "occ", round(s.kpis["occupancy"],3), "by chan", [round(ab[ch==c].mean(),3) for c in range(3)],
          "by intent", [round(ab[it==i].mean(),3) for i in range(5)])
    print("by hour", [round(ab[hr==h].mean(),2) for h in range(24)])
    A = src.agents
    print("skilled per intent", (A.skill >= 0.2).sum(0), "share", np.round(dw.base.intent_share,2))
    print("cap voice/chat/email", (A.capacity>0).sum(0))
    print("patience mean ab", run.stream.patience_s[ab & (ch==0)].mean(), "wait served voice", np.median(run.wait_s[(run.status==2)&(ch==0)]))
