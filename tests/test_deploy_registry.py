"""The directory registry: immutable versions, aliases, the append-only audit log, routed_by."""
from __future__ import annotations

import json

import pytest

from assign.deploy import DirRegistry, open_registry
from assign.errors import InputError


def _fake_model(path, tag: str):
    path.mkdir()
    (path / "metadata.json").write_text(json.dumps({"schema": "assign.model/1", "data": {"data_hash": tag},
                                                    "metrics": {"resolved": {"log_loss": 0.5}}}))
    (path / "booster.json").write_text(tag)
    return path


def test_versions_are_immutable_copies_with_their_records(tmp_path) -> None:
    reg = open_registry(tmp_path / "reg")
    assert isinstance(reg, DirRegistry) and reg.versions() == [] and reg.resolve("champion") is None
    src = _fake_model(tmp_path / "m1", "aaa")
    v1 = reg.register(src, note="first", training_window=("2026-01-01", "2026-01-29T00:00:00Z"),
                      metrics={"resolved": {"log_loss": 0.4}}, at="2026-01-29T01:00:00Z")
    v2 = reg.register(_fake_model(tmp_path / "m2", "bbb"))
    assert (v1, v2) == ("v0001", "v0002")
    (src / "booster.json").write_text("changed after registration")
    assert (reg.path(v1) / "booster.json").read_text() == "aaa"  # a copy, not a link
    assert not (reg.path(v1) / "booster.json").stat().st_mode & 0o222  # read-only (root could still write)
    rec = reg.versions()[0]
    assert rec["note"] == "first" and rec["data_hash"] == "aaa" and rec["metrics"] == {"resolved": {"log_loss": 0.4}}
    assert rec["training_window"] == ["2026-01-01T00:00:00+00:00", "2026-01-29T00:00:00+00:00"]
    assert reg.versions()[1]["metrics"] == {"resolved": {"log_loss": 0.5}}  # from the model's metadata
    assert [e["event"] for e in reg.audit()] == ["register", "register"]


def test_aliases_move_with_previous_and_the_log_answers_routed_by(tmp_path) -> None:
    reg = open_registry(tmp_path / "reg")
    v1, v2, v3 = (reg.register(_fake_model(tmp_path / f"m{i}", str(i))) for i in range(3))
    reg.set_alias("champion", v1, reason="no champion", at="2026-01-14T08:00:00Z")
    reg.set_alias("champion", v2, reason="better", at="2026-01-14T10:30:00Z")
    reg.set_alias("champion", v3, reason="better again", at="2026-01-14T10:32:00Z")
    assert reg.aliases() == {"champion": v3, "previous": v2}
    assert reg.path("previous") == reg.path(v2)
    assert reg.routed_by(at="2026-01-14T07:59:59Z") is None
    assert reg.routed_by(at="2026-01-14T10:31:00Z") == v2
    assert reg.routed_by(at="2026-01-15") == v3
    assert reg.routed_by(at="2026-01-14T10:31:00Z", alias="previous") == v1
    moves = [(e["alias"], e["from"], e["to"], e["reason"]) for e in reg.audit() if e["event"] == "alias"]
    assert moves[-2:] == [("previous", v1, v2, "replaced as champion: better again"),
                          ("champion", v2, v3, "better again")]
    # the log is append-only: a fresh handle reads the same lines, earlier lines unchanged
    lines = (tmp_path / "reg" / "audit.jsonl").read_text().splitlines()
    reg.set_alias("challenger", v1, reason="test")
    assert (tmp_path / "reg" / "audit.jsonl").read_text().splitlines()[: len(lines)] == lines
    assert DirRegistry(tmp_path / "reg").aliases()["challenger"] == v1


def test_bad_alias_changes_name_every_problem(tmp_path) -> None:
    reg = open_registry(tmp_path / "reg")
    with pytest.raises(InputError) as err:
        reg.set_alias("best", "v0009", reason=" ")
    assert len(err.value.problems) == 3
    assert "'best'" in str(err.value) and "'v0009'" in str(err.value) and "reason" in str(err.value)
    with pytest.raises(InputError, match="not a model directory"):
        reg.register(tmp_path)
    with pytest.raises(InputError, match="neither a version nor a set alias"):
        reg.path("champion")
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("x")
    with pytest.raises(InputError, match="not a registry"):
        open_registry(other)
