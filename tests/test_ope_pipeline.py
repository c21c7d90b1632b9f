"""Decision logs from the simulator, target rules, the whole estimate, and ``assign ope``."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from assign.cli import main
from assign.errors import InputError
from assign.ope import (
    SnapshotPolicy,
    evaluate,
    fit_reward_model,
    make_target,
    pair_data,
    read_log,
)
from assign.ope.reward import LogisticRewardModel
from assign.ope.simulate import log_replication
from assign.sim.engine import SimConfig, simulate
from assign.sim.policies import make_policy
from assign.sim.worldsource import WorldSource
from assign.world.centre import generate_world

CFG = SimConfig(days=0.3, window_s=20.0)


@pytest.fixture(scope="module")
def source():
    return WorldSource(generate_world(seed=5, n_agents=10, n_intents=6))


@pytest.fixture(scope="module")
def logs(source, tmp_path_factory):
    """An exploring log and a deterministic one, written to disk."""
    root = tmp_path_factory.mktemp("ope")
    explore = log_replication(source=source, seed=1, config=CFG, temperature=0.1, n_draws=300)
    fixed = log_replication(source=source, seed=1, config=CFG, temperature=0.0)
    return explore.write(root / "explore"), fixed.write(root / "fixed")


def test_log_round_trip_rebuilds_windows(logs):
    log = read_log(logs[0])
    assert log.n_windows > 50
    d, pairs = log.tables["decisions"], log.tables["pairs"]
    # the logged propensity is the pairs table's, and a contact's propensities sum to <= 1
    m = d.merge(pairs, on=["window_id", "contact_id", "agent_id"], suffixes=("", "_pairs"))
    assert len(m) == len(d) and np.allclose(m["propensity"], m["propensity_pairs"])
    assert (pairs.groupby(["window_id", "contact_id"])["propensity"].sum() <= 1 + 1e-9).all()
    assert d["explored"].any() and not d["explored"].all()
    snap = log.snapshot(3)
    w = log.tables["windows"].iloc[3]
    wc = log.tables["window_contacts"].query(f"window_id == {w.window_id}")
    assert list(snap.contacts.ids) == list(wc.sort_values("queue_pos")["contact_id"])
    assert (snap.agents.free.sum(axis=1) > 0).all()


def test_bad_log_names_every_problem(logs, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(logs[0], bad)
    d = pd.read_parquet(bad / "decisions.parquet").drop(columns=["score"])
    d.loc[0, "agent_id"] = "nobody"
    d.loc[1, "propensity"] = 1.5
    d.to_parquet(bad / "decisions.parquet")
    (bad / "pairs.parquet").unlink()
    with pytest.raises(InputError) as err:
        read_log(bad)
    assert "pairs.parquet: missing" in str(err.value)
    pd.read_parquet(logs[0] / "pairs.parquet").to_parquet(bad / "pairs.parquet")
    with pytest.raises(InputError) as err:
        read_log(bad)
    assert "decisions: missing columns score" in str(err.value)
    d["score"] = 0.0
    d.to_parquet(bad / "decisions.parquet")
    with pytest.raises(InputError) as err:
        read_log(bad)
    msg = str(err.value)
    assert "decisions.agent_id: 1 rows name unknown agents" in msg and "decisions.propensity: 1 values" in msg


@pytest.mark.parametrize("name", ["fcfs", "skills", "ml-greedy", "ml-batch"])
def test_rules_are_the_simulator_policies(source, name):
    a = simulate(source=source, policy=make_policy(name), seed=2, config=CFG)
    b = simulate(source=source, policy=SnapshotPolicy(make_target(name)), seed=2, config=CFG)
    np.testing.assert_array_equal(a.agent, b.agent)
    np.testing.assert_array_equal(a.status, b.status)


def test_deterministic_logs_support_only_the_logger(logs):
    log = read_log(logs[1])
    rm = fit_reward_model(log, LogisticRewardModel())
    own = evaluate(pair_data(log, make_target("ml-batch"), reward_model=rm), policy="ml-batch", n_bootstrap=100)
    # the logger itself: every pair matched with propensity 1, IPS = the logged mean
    res = log.tables["outcomes"]["resolved"].astype(float)
    assert own.support_deficiency == 0 and own.n_matched == own.n_target_pairs
    assert own.estimates["ips"].value == pytest.approx(res.mean())
    other = evaluate(pair_data(log, make_target("worst-skill"), reward_model=rm), policy="worst-skill")
    assert other.support_deficiency > 0.05
    assert all(e.value is None and "missing support" in e.refused for e in other.estimates.values())


def test_exploring_log_estimates(logs):
    log = read_log(logs[0])
    rm = fit_reward_model(log, LogisticRewardModel())
    r = evaluate(pair_data(log, make_target("skills"), reward_model=rm), policy="skills", n_bootstrap=200)
    assert r.support_deficiency <= 0.05 and 0 < r.ess <= r.n_target_pairs
    for e in r.estimates.values():  # IPS and DR are not bounded by 1 on one small log
        assert e.value is not None and np.isfinite(e.value) and e.ci_low <= e.value <= e.ci_high
    assert 0 < r.estimates["dm"].value < 1 and 0 < r.estimates["snips"].value <= 1


def test_cli(logs, tmp_path):
    run = CliRunner().invoke(main, ["ope", str(logs[0]), "--policy", "fcfs", "--policy", "worst-skill",
                                    "--estimator", "dr", "--estimator", "ips", "--n-bootstrap", "100", "--json"])
    assert run.exit_code == 0, run.output
    doc = json.loads(run.output)
    assert "simulator or an experiment" in doc["scope"]
    assert [p["policy"] for p in doc["policies"]] == ["fcfs", "worst-skill"]
    assert set(doc["policies"][0]["estimates"]) == {"dr", "ips"}
    run = CliRunner().invoke(main, ["ope", str(logs[1]), "--policy", "fcfs", "--out", str(tmp_path / "rep")])
    assert run.exit_code == 0, run.output
    assert "refused" in (tmp_path / "rep" / "report.md").read_text()
    assert (tmp_path / "rep" / "ope.png").stat().st_size > 0 and (tmp_path / "rep" / "report.html").is_file()
    bad = CliRunner().invoke(main, ["ope", str(tmp_path / "nope"), "--policy", "oracle", "--estimator", "x"])
    assert bad.exit_code == 2
    assert "--policy oracle: unknown" in bad.output and "--estimator x: unknown" in bad.output
    missing = CliRunner().invoke(main, ["ope", str(tmp_path / "nope"), "--policy", "fcfs"])
    assert missing.exit_code == 2 and "no such log directory" in missing.output
