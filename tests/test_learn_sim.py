"""The learning router in the simulator: its logs join, it learns, nothing else changes."""
from __future__ import annotations

import numpy as np
import pytest

from assign.learn import Explore, join_logs, read_partitioned
from assign.learn.policy import LearnPolicy
from assign.sim.engine import SERVED, SimConfig, simulate
from assign.sim.runner import PolicySpec, Task, run_task
from assign.sim.worldsource import WorldSource
from assign.world.centre import generate_world, hire_days


@pytest.fixture(scope="module")
def source():
    return WorldSource(generate_world(seed=5, n_agents=16, n_intents=6, n_customers=2000, new_hires=0.25))


def test_simulated_decision_log_joins_outcome_log_with_nothing_lost(source, tmp_path):
    pol = LearnPolicy(name="ml-learn", explore=Explore(n_propensity_draws=20), label_delay_s=6 * 3600.0,
                      log_decisions=True)
    run = simulate(source=source, policy=pol, seed=3, config=SimConfig(days=0.3, window_s=10.0))
    pol.close(run).write(tmp_path / "logs")
    dec = read_partitioned(tmp_path / "logs" / "decisions")
    out = read_partitioned(tmp_path / "logs" / "outcomes")
    served = np.flatnonzero(run.status == SERVED)
    assert len(dec) == len(served) and dec["decision_id"].is_unique
    joined = join_logs(dec, out)
    assert joined[["resolved", "csat", "handle_s"]].notna().all().all()
    by_contact = joined.set_index("contact_id")
    ids = run.stream.block.ids[served]
    np.testing.assert_array_equal(by_contact.loc[ids, "resolved"].to_numpy(), run.resolved[served])
    np.testing.assert_allclose(by_contact.loc[ids, "handle_s"].to_numpy(), run.handle_s[served])
    np.testing.assert_array_equal(by_contact.loc[ids, "agent_id"].to_numpy(), run.agent_ids[run.agent[served]])
    assert dec["propensity"].between(0, 1, inclusive="right").all()
    # outcomes that became known during the run were folded into the live estimates
    assert pol.live.current().version > 0


def test_simulate_logs_option_writes_learn_logs(source, tmp_path):
    task = Task(label="ml-live", policy=PolicySpec(name="ml-live"), seed=1, config=SimConfig(days=0.2, window_s=10.0),
                log_path=str(tmp_path / "ml-live_seed1.parquet"))
    run_task(source, task)
    assert (tmp_path / "ml-live_seed1.parquet").is_file()
    dec = read_partitioned(tmp_path / "ml-live_seed1" / "decisions")
    assert len(join_logs(dec, read_partitioned(tmp_path / "ml-live_seed1" / "outcomes"))) == len(dec) > 0
    assert (dec["propensity"] == 1.0).all() and not dec["explored"].any()


def test_new_hires_join_on_day_two(source):
    hired = hire_days(source.world.agents) == 1
    assert hired.sum() == 4
    run = simulate(source=source, policy=LearnPolicy(name="ml-live"), seed=2, config=SimConfig(days=2, window_s=30.0))
    served = run.status == SERVED
    start = run.stream.arrival_s[served] + run.wait_s[served]
    by_hire = hired[run.agent[served]]
    assert by_hire.any() and start[by_hire].min() >= 86400.0


def test_cli_generate_new_hires_and_simulate_learn_logs(tmp_path):
    from click.testing import CliRunner

    from assign.cli import main
    from assign.world.centre import World

    res = CliRunner().invoke(main, ["generate", "--agents", "12", "--intents", "4", "--days", "1", "--seed", "3",
                                    "--new-hires", "0.25", "--out", str(tmp_path / "w")], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    world = World.load(tmp_path / "w" / "world")
    assert (hire_days(world.agents) == 1).sum() == 3
    hist = __import__("pandas").read_parquet(tmp_path / "w" / "history.parquet")
    assert not set(world.agents["agent_id"][hire_days(world.agents) == 1]) & set(hist["agent_id"].dropna())
    res = CliRunner().invoke(main, ["simulate", "--world", str(tmp_path / "w"), "--policy", "ml-live", "--seeds", "1",
                                    "--days", "0.2", "--batch-window-s", "20", "--out", str(tmp_path / "r"), "--logs"],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    dec = read_partitioned(tmp_path / "r" / "logs" / "ml-live_seed0" / "decisions")
    assert len(dec) > 0
    bad = CliRunner().invoke(main, ["generate", "--agents", "12", "--days", "1", "--seed", "3", "--new-hires", "1.5",
                                    "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "new_hires" in bad.output


def test_cold_start_benchmark_json_has_exactly_the_issue_keys():
    from benchmarks.cold_start import details_path, split

    out = {"days": [{"day": 1, "policy": "fcfs", "uplift_share": 0.0, "sd": 0.0, "resolution": 0.7}],
           "new_hire_contacts_to_003": 10.0, "new_hire_work_ratio": 1.0, "exploration_cost": 0.1,
           "tick_overhead": 1.5, "tick_ms": {}, "settings": {}}
    main, details = split(out)
    assert set(main) == {"days", "new_hire_contacts_to_003", "new_hire_work_ratio", "exploration_cost",
                         "tick_overhead"}
    assert set(main["days"][0]) == {"day", "policy", "uplift_share"} and details["days"][0]["sd"] == 0.0
    assert details_path("x/out.json") == "x/out.details.json"


def test_work_ratio_is_contacts_per_staffed_hour_against_agents_neither_new_nor_past_hires(monkeypatch):
    from types import SimpleNamespace

    import pandas as pd

    import benchmarks.cold_start as cs

    rng = np.random.default_rng(0)
    n_ag, n = 8, 400
    staffed = rng.uniform(4, 10, n_ag) * 3600.0
    staffed[5] = 0.0  # off that day: left out
    monkeypatch.setattr(cs, "_staffed_day_s", lambda source, day: staffed)
    agents = pd.DataFrame({"past_hire": [False, False, True, False, False, False, True, False]})
    source = SimpleNamespace(world=SimpleNamespace(agents=agents))
    run = SimpleNamespace(status=np.where(rng.random(n) < 0.9, SERVED, 0), agent=rng.integers(0, n_ag, n),
                          stream=SimpleNamespace(arrival_s=rng.uniform(0, 3 * 86400.0, n)),
                          wait_s=rng.uniform(0, 600, n), handle_s=rng.uniform(100, 900, n))
    hires = np.array([0, 3])
    for busy in (False, True):
        tot = {"hire": [0.0, 0.0], "ten": [0.0, 0.0]}
        for a in range(n_ag):
            if staffed[a] == 0 or agents["past_hire"][a]:
                continue
            k = "hire" if a in hires else "ten"
            for i in range(n):
                day = (run.stream.arrival_s[i] + run.wait_s[i]) // 86400.0
                if run.status[i] == SERVED and run.agent[i] == a and day == 1:
                    tot[k][0] += run.handle_s[i] if busy else 1.0
            tot[k][1] += staffed[a] / 3600.0
        want = (tot["hire"][0] / tot["hire"][1]) / (tot["ten"][0] / tot["ten"][1])
        assert cs.work_ratio(run, source, hires, busy=busy) == pytest.approx(want)


def test_work_parts_decompose_the_work_ratio(monkeypatch):
    """contacts ratio = busy ratio / handle ratio; occupancies are handle seconds per staffed second."""
    from types import SimpleNamespace

    import pandas as pd

    import benchmarks.cold_start as cs

    rng = np.random.default_rng(1)
    n_ag, n = 6, 300
    staffed = rng.uniform(4, 10, n_ag) * 3600.0
    monkeypatch.setattr(cs, "_staffed_day_s", lambda source, day: staffed)
    source = SimpleNamespace(world=SimpleNamespace(agents=pd.DataFrame({"past_hire": [False] * 5 + [True]})))
    run = SimpleNamespace(status=np.full(n, SERVED), agent=rng.integers(0, n_ag, n),
                          stream=SimpleNamespace(arrival_s=rng.uniform(86400.0, 2 * 86400.0 - 700, n)),
                          wait_s=rng.uniform(0, 600, n), handle_s=rng.uniform(100, 900, n))
    hires = np.array([1, 2])
    p = cs.work_parts(run, source, hires)
    assert p["contacts"] == pytest.approx(cs.work_ratio(run, source, hires))
    assert p["busy"] == pytest.approx(cs.work_ratio(run, source, hires, busy=True))
    assert p["contacts"] == pytest.approx(p["busy"] / p["handle"])
    ten = np.isin(run.agent, [0, 3, 4])
    assert p["occupancy_tenured"] == pytest.approx(run.handle_s[ten].sum() / staffed[[0, 3, 4]].sum())
    hire = np.isin(run.agent, hires)
    assert p["handle"] == pytest.approx(run.handle_s[hire].mean() / run.handle_s[ten].mean())


def test_hire_errors_against_the_run_and_against_the_contacts_so_far():
    from types import SimpleNamespace

    import benchmarks.cold_start as cs

    tp = np.array([0.9, 0.5, 0.7, 0.7])  # the hire's contacts in start order (stream order shuffled)
    order = np.array([2, 0, 3, 1])
    run = SimpleNamespace(status=np.full(4, SERVED), agent=np.zeros(4, np.int64), truth_p_resolved=tp[order],
                          stream=SimpleNamespace(arrival_s=np.array([20.0, 0.0, 30.0, 10.0])), wait_s=np.zeros(4))
    # estimates after 1, 2, 3, 4 contacts: exactly the running mean of the truth
    pol = SimpleNamespace(hires=np.array([0]), trace=[(0, 1, 0.9), (0, 2, 0.7), (0, 3, 0.7), (0, 4, 0.7)])
    trace, to_run, to_same = cs.hire_errors(run, pol)
    np.testing.assert_allclose(trace["error_same"], 0.0, atol=1e-12)
    np.testing.assert_allclose(trace["error"], [0.2, 0.0, 0.0, 0.0], atol=1e-12)
    assert to_same == [1.0] and to_run == [2.0]


def test_cold_start_work_floor_flags():
    """``--work-floor 0`` (the default) is no floor; 5.9's flags give its registered settings; 5.6's
    flags alone give 5.6's floor."""
    from assign.learn import WorkFloor
    from assign.learn.floor import PRICED
    from benchmarks.cold_start import _floor, parser

    assert _floor(parser().parse_args(["--json", "x.json"])) is None
    assert _floor(parser().parse_args(["--json", "x.json", "--work-floor", "0"])) is None
    priced = parser().parse_args(["--json", "x.json", "--work-floor", "0.8", "--work-floor-days", "1",
                                  "--work-floor-reference-days", "30", "--work-floor-cap", "0.065",
                                  "--work-floor-start", "0.065", "--work-floor-handle", "--work-floor-clip-gap"])
    assert _floor(priced) == PRICED
    old = parser().parse_args(["--json", "x.json", "--work-floor", "0.85", "--work-floor-days", "1"])
    assert _floor(old) == WorkFloor(ratio=0.85, days=1.0)
