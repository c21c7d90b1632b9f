"""The MLflow registry against a local MLflow file store: the same contract as the directory
registry (skipped when mlflow is not installed)."""
from __future__ import annotations

import json

import pytest

from assign.deploy import open_registry

mlflow = pytest.importorskip("mlflow")


@pytest.fixture
def reg(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 keeps its file store behind this switch
    return open_registry(f"file:{tmp_path / 'store'}")


def _model(path, tag: str):
    path.mkdir()
    (path / "metadata.json").write_text(json.dumps({"schema": "assign.model/1", "data": {"data_hash": tag},
                                                    "metrics": {"resolved": {"log_loss": 0.5, "rows": 10}}}))
    (path / "booster.json").write_text(tag)
    return path


def test_mlflow_registry_versions_aliases_audit(reg, tmp_path) -> None:
    from assign.deploy.mlflow_registry import MLflowRegistry

    assert isinstance(reg, MLflowRegistry) and reg.versions() == [] and reg.resolve("champion") is None
    v1 = reg.register(_model(tmp_path / "m1", "aaa"), note="first", training_window=("2026-01-01", "2026-01-29"))
    v2 = reg.register(_model(tmp_path / "m2", "bbb"))
    assert [r["version"] for r in reg.versions()] == [v1, v2] and v1 != v2
    assert reg.versions()[0]["note"] == "first" and reg.versions()[0]["data_hash"] == "aaa"
    assert (reg.path(v2) / "booster.json").read_text() == "bbb"
    reg.set_alias("champion", v1, reason="no champion", at="2026-01-14T08:00:00Z")
    reg.set_alias("champion", v2, reason="better", at="2026-01-14T10:30:00Z")
    assert reg.aliases() == {"champion": v2, "previous": v1}
    assert (reg.path("champion") / "booster.json").read_text() == "bbb"
    assert reg.routed_by(at="2026-01-14T10:29:00Z") == v1 and reg.routed_by(at="2026-01-14T10:31:00Z") == v2
    events = [(e["event"], e.get("alias"), e.get("to")) for e in reg.audit()]
    assert events == [("register", None, None), ("register", None, None), ("alias", "champion", v1),
                      ("alias", "previous", v1), ("alias", "champion", v2)]
