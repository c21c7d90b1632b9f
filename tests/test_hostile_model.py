"""Hostile model directories and training input: tampering, corruption and late failures
are ModelError / InputError (exit 2), never a model that loads and scores wrong."""
from __future__ import annotations

import importlib
import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from assign.cli import main
from assign.errors import InputError, ModelError
from assign.model import ModelDir, TrainParams, train
from assign.world.centre import generate_history, generate_world

train_mod = importlib.import_module("assign.model.train")  # the module, not the function of that name
FAST = TrainParams(max_rounds=20, early_stopping=5, max_depth=3, nthread=1)


@pytest.fixture(scope="module")
def history():
    return generate_history(generate_world(n_agents=16, seed=31), days=2, seed=32)


@pytest.fixture(scope="module")
def model_dir(history, tmp_path_factory):
    out = tmp_path_factory.mktemp("hm") / "model"
    train(history, out=out, params=FAST)
    return out


def _copy(model_dir, tmp_path):
    d = tmp_path / "m"
    shutil.copytree(model_dir, d)
    return d


def _edit_json(path, fn):
    doc = json.loads(path.read_text())
    fn(doc)
    path.write_text(json.dumps(doc))


def _replace(path, old, new):
    path.write_text(path.read_text().replace(old, new, 1))


def _truncate(path, n):
    path.write_bytes(path.read_bytes()[:n])


TAMPER = [
    ("intent vocabulary reordered",
     lambda d: _edit_json(d / "features.json", lambda s: s.update(intents=list(reversed(s["intents"])))),
     "features.json: changed since training"),
    ("NaN smoothing prior",
     lambda d: _replace(d / "features.json", '"prior_rate": ', '"prior_rate": NaN, "x": '),
     "features.json: changed since training"),
    ("booster copied over another",
     lambda d: shutil.copy(d / "models" / "csat.json", d / "models" / "handle_time.json"),
     "models/handle_time.json: changed since training"),
    ("truncated booster", lambda d: _truncate(d / "models" / "resolved.json", 100),
     "models/resolved.json: changed since training"),
    ("bad state.npz", lambda d: (d / "state.npz").write_bytes(b"PK\x03\x04junk"), "state.npz: changed since training"),
    ("bad parquet", lambda d: (d / "customers.parquet").write_bytes(b"PAR1"), "customers.parquet: changed"),
    ("truncated metadata", lambda d: (d / "metadata.json").write_text('{"schema": "assign.model/1", "targ'),
     "metadata.json: corrupt or unreadable"),
    ("metadata not an object", lambda d: (d / "metadata.json").write_text("[]"), "not an assign.model/1 metadata"),
    ("objective edited",
     lambda d: _edit_json(d / "metadata.json", lambda m: m["objectives"].update(resolved="reg:squarederror")),
     "booster objective 'binary:logistic' is not the 'reg:squarederror'"),
    ("no digests", lambda d: _edit_json(d / "metadata.json", lambda m: m.pop("files")), "no file digests"),
    ("target path escape", lambda d: _edit_json(d / "metadata.json", lambda m: m.update(targets=["../x"])),
     "targets and objectives are missing or malformed"),
]


@pytest.mark.parametrize(("name", "edit", "message"), TAMPER, ids=[t[0] for t in TAMPER])
def test_tampered_or_corrupt_model_dirs_are_model_errors(model_dir, tmp_path, name, edit, message):
    d = _copy(model_dir, tmp_path)
    edit(d)
    with pytest.raises(ModelError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ModelDir.load(d)


def test_corrupt_model_dir_exits_2_in_every_command(model_dir, tmp_path, history):
    d = _copy(model_dir, tmp_path)
    (d / "models" / "csat.json").write_text("{")
    hist = tmp_path / "h.parquet"
    history.to_parquet(hist)
    r = CliRunner()
    for args in (["evaluate", d, hist], ["predict", d, hist, "--out", tmp_path / "p.parquet"],
                 ["solve", "examples/snapshot.json", "--model", d]):
        res = r.invoke(main, [str(a) for a in args])
        assert res.exit_code == 2, (args, res.output)
        assert "csat.json" in res.stderr
    assert not (tmp_path / "p.parquet").exists()


def test_a_late_training_failure_leaves_the_old_model_whole(model_dir, tmp_path, history, monkeypatch):
    d = _copy(model_dir, tmp_path)
    before = {p.name: p.read_bytes() for p in d.rglob("*") if p.is_file()}

    def boom(meta, spec):
        raise RuntimeError("late failure")

    monkeypatch.setattr(train_mod, "model_card", boom)
    with pytest.raises(RuntimeError):
        train(history, out=d, params=FAST)
    assert {p.name: p.read_bytes() for p in d.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no temp dir left behind
    ModelDir.load(d)


def test_retraining_replaces_the_model_whole(model_dir, tmp_path, history):
    d = _copy(model_dir, tmp_path)
    train(history, out=d, params=FAST, targets=["resolved"])
    assert sorted(p.name for p in (d / "models").iterdir()) == ["resolved.json"]
    assert ModelDir.load(d).metadata["targets"] == ["resolved"]


def test_training_refuses_to_write_into_a_directory_of_other_files(tmp_path, history):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="exists and is not a model directory"):
        train(history, out=tmp_path, params=FAST)
    assert (tmp_path / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("col", ["handle_s", "csat", "complexity"])
def test_infinite_labels_or_features_are_input_errors(history, tmp_path, col):
    h = history.copy()
    h.loc[h.index[3], col] = np.inf
    with pytest.raises(InputError, match=f"history.{col}: 1 infinite value"):
        train(h, out=tmp_path / "m", params=FAST)


def test_evaluate_json_has_no_nan(model_dir, tmp_path, history):
    hist = tmp_path / "h.parquet"
    history.head(60).to_parquet(hist)  # too few rows of some target: metrics may be NaN
    res = CliRunner().invoke(main, ["evaluate", str(model_dir), str(hist), "--json", "--all-rows"])
    assert res.exit_code == 0, res.output
    assert "NaN" not in res.stdout and "Infinity" not in res.stdout
    json.loads(res.stdout)


def test_predict_out_never_overwrites_the_history(model_dir, tmp_path, history):
    hist = tmp_path / "h.parquet"
    history.to_parquet(hist)
    before = hist.read_bytes()
    res = CliRunner().invoke(main, ["predict", str(model_dir), str(hist), "--out", str(hist)])
    assert res.exit_code == 2 and "own input" in res.stderr
    assert hist.read_bytes() == before
