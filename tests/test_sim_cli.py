"""``assign simulate`` end to end: world and scenario sources, replay, report files, logs,
and bad options reported together with exit code 2."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from assign.cli import main
from assign.history import conform_history
from assign.sim.scenario import mmc_scenario, write_scenario
from assign.world.centre import generate_world


@pytest.fixture(scope="module")
def world_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("gen")
    generate_world(seed=5, n_agents=20, n_intents=6, n_customers=2000).save(d / "world")
    return d


def _run(args):
    res = CliRunner().invoke(main, args, catch_exceptions=False)
    return res


def test_world_report_with_ml_batch_and_oracle(world_dir, tmp_path):
    out = tmp_path / "rep"
    res = _run(["simulate", "--world", str(world_dir), "--policy", "fcfs", "--policy", "ml-batch", "--policy",
                "oracle", "--seeds", "2", "--days", "0.3", "--window-s", "5", "--out", str(out), "--json", "--logs"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert {r["policy"] for r in doc["kpis"]} == {"fcfs", "ml-batch", "oracle"}
    assert doc["headline"] is not None and "uplift_share" in doc["headline"]
    for f in ("report.md", "report.html", "kpis.csv", "runs.csv", "kpis.png", "waits.png",
              "service_level_by_hour.png", "work_per_agent.png"):
        assert (out / f).is_file(), f
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == len(list(out.glob("*.png"))) == 5  # + differences.png
    assert "<img alt" in html and 'src="kpis.png"' not in html
    kp = pd.read_csv(out / "kpis.csv")
    assert len(kp[kp.kpi == "resolution_rate"]) == 3 and kp["n"].max() == 2
    log = pd.read_parquet(out / "logs" / "oracle_seed1.parquet")
    conform_history(log)
    assert (log["policy"] == "oracle").all() and log["truth_p_resolved"].notna().any()


def test_scenario_replay_reports_observed_vs_simulated(tmp_path):
    sc = mmc_scenario(arrival_rate_per_hour=60, mean_service_s=120, agents=3, patience_mean_s=90)
    write_scenario(sc, tmp_path / "sc")
    rng = np.random.default_rng(0)
    n = 400
    t = np.sort(rng.uniform(0, 8 * 3600, n))
    hist = pd.DataFrame({"contact_id": [f"r{i}" for i in range(n)],
                         "arrival_at": pd.Timestamp(sc.start) + pd.to_timedelta(t, unit="s"),
                         "channel": "voice", "intent": "call", "wait_s": rng.exponential(20, n),
                         "abandoned": rng.random(n) < 0.1})
    hist.to_parquet(tmp_path / "h.parquet")
    res = _run(["simulate", "--scenario", str(tmp_path / "sc"), "--replay", str(tmp_path / "h.parquet"),
                "--seeds", "3", "--json", "--out", str(tmp_path / "rep")])  # the scenario's own policy
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    offered = next(r["mean"] for r in doc["kpis"] if r["kpi"] == "offered")
    assert offered == n  # the replayed stream, every contact once
    rows = {r["kpi"]: r for r in doc["observed_vs_simulated"]}
    assert rows["abandonment_rate"]["observed"] == pytest.approx(hist["abandoned"].mean(), abs=1e-4)
    assert set(rows) == {"abandonment_rate", "asa_s", "service_level"}
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "Observed (history) vs simulated" in md and "outcomes are a model" in md


def test_bad_options_are_all_reported(tmp_path):
    res = CliRunner().invoke(main, ["simulate", "--policy", "best", "--seeds", "0", "--window-s", "-1"])
    assert res.exit_code == 2
    for needle in ("--world / --scenario", "--policy best", "--seeds", "--window-s"):
        assert needle in res.output, needle


def test_bad_scenario_exits_2_with_its_problems(tmp_path):
    (tmp_path / "scenario.json").write_text(json.dumps({"schema": "assign.scenario/1", "types": []}))
    res = CliRunner().invoke(main, ["simulate", "--scenario", str(tmp_path), "--policy", "fcfs"])
    assert res.exit_code == 2
    assert "types" in res.output and "arrivals" in res.output and "staffing" in res.output


def test_replay_with_unknown_types_names_rows(tmp_path):
    write_scenario(mmc_scenario(arrival_rate_per_hour=60, mean_service_s=60, agents=2), tmp_path / "sc")
    pd.DataFrame({"contact_id": ["a", "b"], "arrival_at": ["2026-01-05T00:00:01Z", "2026-01-05T00:00:02Z"],
                  "channel": "voice", "intent": ["call", "mortgage"], "wait_s": [0.0, 1.0],
                  "abandoned": [False, False]}).to_csv(tmp_path / "h.csv", index=False)
    res = CliRunner().invoke(main, ["simulate", "--scenario", str(tmp_path / "sc"), "--replay",
                                    str(tmp_path / "h.csv"), "--policy", "fcfs"])
    assert res.exit_code == 2 and "history row 1: intent 'mortgage'" in res.output


@pytest.mark.parametrize("args, message", [
    (["--sl-threshold-s", "0"], "config.sl_threshold_s: 0.0 must be above 0"),
    (["--window-s", "0.0001"], "below the minimum window 0.01 s"),
])
def test_bad_simulation_settings_exit_2_naming_the_field(world_dir, args, message):
    res = _run(["simulate", "--world", str(world_dir), "--policy", "fcfs", "--seeds", "1", "--days", "0.1", *args])
    assert res.exit_code == 2, res.output
    assert message in res.output
