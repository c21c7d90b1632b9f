"""The sizing benchmark's abandonment figures are the runs' own: the ratio of means over seeds
recomputed from independent simulator runs of the same driftless centre."""
from __future__ import annotations

import json

import numpy as np
import pytest


@pytest.mark.slow
def test_sizing_rows_are_the_runs_abandonment(tmp_path):
    from assign.sim.engine import ABANDONED, SimConfig, simulate
    from assign.sim.policies import make_policy
    from assign.world.drift import DriftSchedule, DriftSource, drifting_world
    from benchmarks import living_centre_sizing as sz

    out = tmp_path / "sz.json"
    assert sz.main(["--json", str(out), "--agents", "8", "--windows", "60", "--occupancy", "0.6", "--monolingual",
                    "--days", "0.25", "--seeds", "1,2"]) == 0
    (row,) = json.loads(out.read_text())["rows"]
    assert (row["agents"], row["window_s"], row["occupancy"], row["monolingual"]) == (8, 60.0, 0.6, True)
    dw = drifting_world(seed=2026, n_agents=8, n_intents=5, schedule=DriftSchedule.off(weeks=1), occupancy=0.6,
                        monolingual=True)
    for policy, window in (("fcfs", 0.0), ("oracle", 60.0)):
        runs = [simulate(source=DriftSource(dw), policy=make_policy(policy), seed=s,
                         config=SimConfig(days=0.25, window_s=window)) for s in (1, 2)]
        abandoned = sum(int((r.status == ABANDONED).sum()) for r in runs)
        offered = sum(len(r.status) for r in runs)
        assert row[f"{policy}_abandonment_rate"] == pytest.approx(abandoned / offered, rel=1e-12)
    assert 0 < row["fcfs_abandonment_rate"] < 1 and np.isfinite(row["oracle_abandonment_rate"])
    assert sz.hires_for(8) == 1 and sz.hires_for(12) == 2 and sz.hires_for(20) == 3
