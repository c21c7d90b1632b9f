"""``assign solve`` and ``assign demo`` through click's CliRunner: outputs and exit codes."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from references import milp_reference

from assign.cli import main
from assign.io import write_snapshot_tables
from assign.router import Router
from assign.schema import parse_snapshot
from assign.workload import synthetic_snapshot


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def _write(tmp_path, doc, name="snap.json"):
    p = tmp_path / name
    p.write_text(json.dumps(doc))
    return p


def test_solve_prints_the_documented_json(runner, tmp_path, snapshot_doc):
    res = runner.invoke(main, ["solve", str(_write(tmp_path, snapshot_doc))])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert set(out) >= {"snapshot_id", "assignments", "unassigned", "objective", "solver", "timings_ms"}
    assert out["snapshot_id"] == "example-0001" and out["solver"] == "flow"
    assert len(out["assignments"]) + len(out["unassigned"]) == len(snapshot_doc["contacts"])
    assert {"contact_id", "agent_id", "value"} <= set(out["assignments"][0])
    assert out["objective"] == pytest.approx(sum(a["value"] for a in out["assignments"]))


def test_tables_give_the_same_answer_as_json(runner, tmp_path, snapshot_doc):
    write_snapshot_tables(parse_snapshot(snapshot_doc), tmp_path / "tables", fmt="csv")
    a = json.loads(runner.invoke(main, ["solve", str(_write(tmp_path, snapshot_doc))]).stdout)
    b = json.loads(runner.invoke(main, ["solve", str(tmp_path / "tables")]).stdout)
    assert a["assignments"] == b["assignments"] and a["unassigned"] == b["unassigned"]


def test_external_values_match_an_independent_optimum_from_the_cli(runner, tmp_path):
    rng = np.random.default_rng(21)
    router = Router()
    for seed in range(8):
        snap = synthetic_snapshot(n_contacts=int(rng.integers(5, 30)), n_agents=int(rng.integers(2, 12)), seed=seed)
        rows = [(c, a, float(rng.uniform(-1, 2))) for c in snap.contacts.ids for a in snap.agents.ids
                if rng.random() < 0.3]
        values = pd.DataFrame(rows, columns=["contact_id", "agent_id", "value"])
        vpath = tmp_path / f"values{seed}.csv"
        values.to_csv(vpath, index=False)
        spath = _write(tmp_path, snap.to_dict(), f"snap{seed}.json")
        res = runner.invoke(main, ["solve", str(spath), "--values", str(vpath)])
        assert res.exit_code == 0, res.output
        out = json.loads(res.stdout)
        served, total = milp_reference(router.problem(snap, values=values).problem)
        assert len(out["assignments"]) == served
        assert out["objective"] == pytest.approx(total, abs=1e-6)


def test_bad_snapshot_exits_2_and_names_every_problem(runner, tmp_path, snapshot_doc):
    snapshot_doc["contacts"][1]["language"] = "xx"
    snapshot_doc["agents"][0]["load"] = {"chat": 9}
    snapshot_doc["contacts"][2]["urgency"] = float("nan")
    res = runner.invoke(main, ["solve", str(_write(tmp_path, snapshot_doc))])
    assert res.exit_code == 2
    assert "invalid snapshot: 3 problems" in res.stderr
    assert "contacts[1].language: unknown code 'xx'" in res.stderr
    assert "agents[0].load.chat: 9 exceeds capacity" in res.stderr
    assert "contacts[2].urgency: must be finite" in res.stderr
    assert res.stdout == ""


@pytest.mark.parametrize(("content", "message"), [
    ("{not json", "not valid JSON"),
    (None, "no such file or directory"),
])
def test_unreadable_snapshot_exits_2(runner, tmp_path, content, message):
    path = tmp_path / "s.json"
    if content is not None:
        path.write_text(content)
    res = runner.invoke(main, ["solve", str(path)])
    assert res.exit_code == 2 and message in res.stderr


def test_empty_queue_exits_0_with_no_assignments(runner, tmp_path, snapshot_doc):
    snapshot_doc["contacts"] = []
    res = runner.invoke(main, ["solve", str(_write(tmp_path, snapshot_doc))])
    assert res.exit_code == 0
    out = json.loads(res.stdout)
    assert out["assignments"] == [] and out["unassigned"] == [] and out["objective"] == 0.0


def test_formats_and_out_file(runner, tmp_path, snapshot_doc):
    snap = _write(tmp_path, snapshot_doc)
    res = runner.invoke(main, ["solve", str(snap), "--format", "csv"])
    assert res.exit_code == 0 and res.stdout.splitlines()[0].startswith("contact_id,agent_id,value")
    out = tmp_path / "r.parquet"
    res = runner.invoke(main, ["solve", str(snap), "--format", "parquet", "--out", str(out)])
    assert res.exit_code == 0
    table = pd.read_parquet(out)
    assert len(table) == len(snapshot_doc["contacts"]) and table["contact_id"].is_monotonic_increasing
    res = runner.invoke(main, ["solve", str(snap), "--format", "parquet"])
    assert res.exit_code == 2 and "--format parquet needs --out" in res.stderr


def test_explain_adds_alternatives(runner, tmp_path, snapshot_doc):
    res = runner.invoke(main, ["solve", str(_write(tmp_path, snapshot_doc)), "--explain"])
    out = json.loads(res.stdout)
    assert all("alternatives" in a for a in out["assignments"])
    assert any(a["alternatives"] for a in out["assignments"] + out["unassigned"])


def test_bad_option_values_exit_2(runner, tmp_path, snapshot_doc):
    snap = str(_write(tmp_path, snapshot_doc))
    assert runner.invoke(main, ["solve", snap, "--budget-ms", "-5"]).exit_code == 2
    res = runner.invoke(main, ["solve", snap, "--top-k", "0"])
    assert res.exit_code == 2 and "config.top_k: 0 is below the minimum 1" in res.stderr


def test_demo_prints_a_solved_tick(runner):
    res = runner.invoke(main, ["demo", "--contacts", "30", "--agents", "15", "--seed", "3"])
    assert res.exit_code == 0, res.output
    assert "served" in res.stdout and "one contact at a time" in res.stdout
