"""Newcomer friction: `demo --save` writes the snapshot the demo solved; `solve --help` shows defaults."""
from __future__ import annotations

import json

from click.testing import CliRunner

from assign.cli import main
from assign.demo import demo_snapshot
from assign.router import Router


def test_demo_save_writes_the_snapshot_it_solved(tmp_path) -> None:
    path = tmp_path / "snapshot.json"
    r = CliRunner().invoke(main, ["demo", "--save", str(path), "--contacts", "40", "--agents", "20", "--seed", "3"])
    assert r.exit_code == 0, r.output
    assert f"assign solve {path} --explain" in r.output
    r = CliRunner().invoke(main, ["solve", str(path), "--explain"])
    assert r.exit_code == 0, r.output
    saved = {(a["contact_id"], a["agent_id"]) for a in json.loads(r.output)["assignments"]}
    direct = Router().tick(demo_snapshot(n_contacts=40, n_agents=20, seed=3))
    assert saved == {(a.contact_id, a.agent_id) for a in direct.assignments} and saved
    r = CliRunner().invoke(main, ["demo"])
    assert r.exit_code == 0 and "assign demo --save snapshot.json" in r.output


def test_solve_help_shows_the_defaults() -> None:
    out = CliRunner().invoke(main, ["solve", "--help"]).output
    assert "[default: 16]" in out and "[default: 0.2]" in out and "no time limit" in out and "[default: json]" in out
