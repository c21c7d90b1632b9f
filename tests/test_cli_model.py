"""The model commands end to end: generate -> train -> evaluate -> predict, and bad input."""
from __future__ import annotations

import json

import pandas as pd
import pytest
from click.testing import CliRunner

from assign.cli import main


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen")
    r = CliRunner().invoke(main, ["generate", "--agents", "20", "--days", "2", "--seed", "7", "--out", str(out)])
    assert r.exit_code == 0, r.output
    return out


def test_generate_train_evaluate_predict(generated, tmp_path) -> None:
    assert (generated / "world" / "world.json").exists()
    hist = pd.read_parquet(generated / "history.parquet")
    assert len(hist) > 1000 and hist["truth_p_resolved"].notna().any()
    runner = CliRunner()
    model = tmp_path / "model"
    r = runner.invoke(main, ["train", str(generated / "history.parquet"), "--out", str(model), "--max-depth", "4",
                             "--threads", "1"])
    assert r.exit_code == 0, r.output
    assert "resolved: auc" in r.output and "(truth" in r.output
    r = runner.invoke(main, ["evaluate", str(model), str(generated / "history.parquet"), "--json"])
    assert r.exit_code == 0, r.output
    metrics = json.loads(r.output)
    assert {"resolved", "csat", "handle_time"} <= set(metrics) and "truth" in metrics["resolved"]
    r = runner.invoke(main, ["evaluate", str(model), str(generated / "history.parquet"),
                             "--since", str(hist["arrival_at"].max().date())])
    assert r.exit_code == 0 and "resolved: auc" in r.output
    preds = tmp_path / "p.parquet"
    r = runner.invoke(main, ["predict", str(model), str(generated / "history.parquet"), "--out", str(preds)])
    assert r.exit_code == 0, r.output
    assert list(pd.read_parquet(preds).columns) == ["contact_id", "p_resolved", "csat", "handle_s"]


def test_bad_input_exits_2(generated, tmp_path) -> None:
    runner = CliRunner()
    r = runner.invoke(main, ["train", str(tmp_path / "missing.parquet"), "--out", str(tmp_path / "m")])
    assert r.exit_code == 2 and "no such file" in r.output
    bad = tmp_path / "bad.parquet"
    pd.read_parquet(generated / "history.parquet").drop(columns=["wait_s", "arrival_at"]).to_parquet(bad)
    r = runner.invoke(main, ["train", str(bad), "--out", str(tmp_path / "m")])
    assert r.exit_code == 2
    assert "history.arrival_at: required column is missing" in r.output and "history.wait_s" in r.output
    r = runner.invoke(main, ["train", str(generated / "history.parquet"), "--out", str(tmp_path / "m"),
                             "--targets", "resolved,nope"])
    assert r.exit_code == 2 and "unknown target 'nope'" in r.output
    junk = tmp_path / "junk.parquet"
    junk.write_text("not parquet")
    r = runner.invoke(main, ["evaluate", str(tmp_path), str(junk)])
    assert r.exit_code == 2 and "not a model directory" in r.output
    r = runner.invoke(main, ["generate", "--agents", "1", "--seed", "1", "--out", str(tmp_path / "g")])
    assert r.exit_code == 2 and "n_agents" in r.output
