"""`assign staff` and the what-if knobs of `assign simulate`."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from assign.cli import main
from assign.errors import InputError
from assign.sim.scenario import mmc_scenario, write_scenario
from assign.sim.staffing import what_if


def test_what_if_scales_and_overrides():
    sc = mmc_scenario(arrival_rate_per_hour=100, mean_service_s=60, agents=4)
    ov = pd.DataFrame({"hour_of_week": [3, 5], "agents": [9, np.nan], "arrival_scale": [np.nan, 0.5]})
    w = what_if(sc, staffing_scale=1.5, arrival_scale=2.0, overrides=ov)
    assert w.staffing.agents[0] == 6 and w.staffing.agents[3] == 9
    assert w.arrivals.rate.sum(axis=0)[0] == pytest.approx(200) and w.arrivals.rate.sum(axis=0)[5] == pytest.approx(100)
    assert w.n_agents >= 9
    with pytest.raises(InputError, match="hour_of_week"):
        what_if(sc, overrides=pd.DataFrame({"hour_of_week": [200], "agents": [1]}))


def test_cli_staff_meets_the_target_in_every_hour(tmp_path):
    sc = mmc_scenario(arrival_rate_per_hour=120, mean_service_s=120, agents=3, patience_mean_s=90, days=7)
    write_scenario(sc, tmp_path / "sc")
    r = CliRunner().invoke(main, ["staff", "--scenario", str(tmp_path / "sc"), "--target-sl", "0.8", "--target-s",
                                  "20", "--weeks", "1", "--seeds", "1", "--out", str(tmp_path / "o"), "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["met_in_every_staffed_hour"] and doc["lowest_simulated_service_level"] >= 0.8
    plan = pd.read_csv(tmp_path / "o" / "staffing-plan.csv")
    assert (plan["erlang_a_agents"] >= 5).all()  # 4 erlangs offered: Erlang A needs more than 4 for 80/20
    assert (tmp_path / "o" / "staffing.png").stat().st_size > 0
