"""`assign evaluate` scores the model's held-out period by default and says which rows it scored."""
from __future__ import annotations

import json

import pandas as pd
import pytest
from click.testing import CliRunner

from assign.cli import main


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("eval")
    runner = CliRunner()
    r = runner.invoke(main, ["generate", "--agents", "20", "--days", "2", "--seed", "5", "--out", str(out)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(main, ["train", str(out / "history.parquet"), "--out", str(out / "model"), "--max-depth", "3",
                             "--threads", "1", "--quiet"])
    assert r.exit_code == 0, r.output
    return out


def _evaluate(trained, *args):
    r = CliRunner().invoke(main, ["evaluate", str(trained / "model"), str(trained / "history.parquet"), *args])
    return r


def test_default_is_the_held_out_period(trained) -> None:
    meta = json.loads((trained / "model" / "metadata.json").read_text())
    held = meta["held_out"]
    assert held["rows"] == meta["data"]["rows_test"] and held["of_rows"] == meta["data"]["rows"]
    r = _evaluate(trained, "--json")
    assert r.exit_code == 0, r.output
    res = json.loads(r.output)
    assert res["scored"]["selection"] == "held_out"
    assert pd.Timestamp(res["scored"]["since"]) == pd.Timestamp(held["from"])
    hist = pd.read_parquet(trained / "history.parquet")
    arrivals = pd.to_datetime(hist["arrival_at"], utc=True)
    assert res["scored"]["rows"] == int((arrivals >= pd.Timestamp(held["from"])).sum())
    # the same rows training held out: the metrics training reported (ties at the boundary aside)
    for target in meta["targets"]:
        assert abs(res[target]["rows"] - meta["metrics"][target]["rows"]) <= 2
    assert abs(res["resolved"]["auc"] - meta["metrics"]["resolved"]["auc"]) < 1e-3
    text = _evaluate(trained)
    assert text.exit_code == 0 and "held-out period" in text.output and f"{res['scored']['rows']} of" in text.output


def test_all_rows_and_since_are_explicit(trained) -> None:
    held = json.loads(_evaluate(trained, "--json").output)
    every = json.loads(_evaluate(trained, "--all-rows", "--json").output)
    assert every["scored"]["selection"] == "all" and every["scored"]["since"] is None
    assert every["resolved"]["rows"] > held["resolved"]["rows"]
    r = _evaluate(trained, "--all-rows")
    assert r.exit_code == 0 and "includes the rows the model trained on" in r.output
    r = _evaluate(trained, "--all-rows", "--since", "2026-01-01")
    assert r.exit_code == 2 and "give at most one" in r.output
    r = _evaluate(trained, "--since", "2999-01-01")
    assert r.exit_code == 2 and "no row of" in r.output


def test_an_older_model_without_a_held_out_period_says_so(trained, tmp_path) -> None:
    import shutil

    old = tmp_path / "old"
    shutil.copytree(trained / "model", old)
    meta = json.loads((old / "metadata.json").read_text())
    del meta["held_out"]
    (old / "metadata.json").write_text(json.dumps(meta))
    r = CliRunner().invoke(main, ["evaluate", str(old), str(trained / "history.parquet")])
    assert r.exit_code == 2
    assert "records no held-out period" in r.output and "--all-rows" in r.output and "--since" in r.output
    r = CliRunner().invoke(main, ["evaluate", str(old), str(trained / "history.parquet"), "--all-rows"])
    assert r.exit_code == 0, r.output


def test_progress_is_reported_through_the_callback_and_drawn_only_on_a_terminal(trained, monkeypatch) -> None:
    from assign.cli.progress import Bars
    from assign.model import ModelDir, evaluate, predict_history

    seen = []
    record = lambda **kw: seen.append((kw["stage"], kw["done"], kw["total"]))
    model, hist = ModelDir.load(trained / "model"), pd.read_parquet(trained / "history.parquet")
    evaluate(model, hist, progress=record)
    predict_history(model, hist, progress=record)
    assert seen == [("scoring", 0, 2), ("scoring", 1, 2), ("scoring", 2, 2),
                    ("predicting", 0, 2), ("predicting", 1, 2), ("predicting", 2, 2)]
    r = _evaluate(trained)  # CliRunner's stderr is not a terminal: no bar
    assert "scoring" not in r.output and "step/s" not in r.output
    monkeypatch.setattr("sys.stderr.isatty", lambda: True, raising=False)
    assert Bars().enabled and not Bars(quiet=True).enabled
