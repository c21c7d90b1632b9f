"""Training, the model dir, the numba forest against xgboost, and the scorer."""
from __future__ import annotations

import json
import threading
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from assign.errors import InputError, ModelError
from assign.features import FEATURES, history_features
from assign.model import ModelDir, TrainParams, ValueWeights, XGBScorer, evaluate, predict_history, train
from assign.model.metrics import auc, calibration_error
from assign.schema import Snapshot
from assign.scorer import Scorer
from assign.world.centre import generate_history, generate_world

FAST = TrainParams(max_rounds=60, early_stopping=10, learning_rate=0.3, max_depth=4, nthread=1)


@pytest.fixture(scope="module")
def world():
    return generate_world(n_agents=24, seed=21)


@pytest.fixture(scope="module")
def history(world):
    return generate_history(world, days=3, seed=22)


@pytest.fixture(scope="module")
def model_dir(history, tmp_path_factory):
    out = tmp_path_factory.mktemp("model")
    train(history, out=out, params=FAST)
    return out


def _snapshot(world, n: int = 30, seed: int = 0) -> Snapshot:
    """The first ``n`` contacts arriving in the 15 minutes before 10:00, and the agents then."""
    t = 10 * 3600.0
    arr = world.sample_arrivals(rng=np.random.default_rng(seed), start_s=t - 900, end_s=t).head(n)
    return Snapshot(snapshot_id="s", at=world.start + timedelta(seconds=t), intents=world.intents,
                    languages=world.languages, styles=world.styles, contacts=world.contacts_block(arr),
                    agents=world.agents_block(t_s=t))


def test_metrics_against_references() -> None:
    from scipy.stats import mannwhitneyu

    rng = np.random.default_rng(0)
    y = rng.random(500) < 0.3
    p = np.round(rng.random(500) * 0.5 + 0.3 * y, 2)  # ties on purpose
    u = mannwhitneyu(p[y], p[~y]).statistic
    assert auc(y, p) == pytest.approx(u / (y.sum() * (~y).sum()))
    assert calibration_error(np.array([0, 1, 0, 1.0]), np.array([0.5] * 4), bins=1) == 0.0
    assert calibration_error(np.array([1.0] * 4), np.array([0.25] * 4), bins=2) == pytest.approx(0.75)


def test_model_dir_contents(model_dir, history) -> None:
    for f in ("features.json", "metadata.json", "model_card.md", "state.npz", "customers.parquet",
              "models/resolved.json", "models/csat.json", "models/handle_time.json"):
        assert (model_dir / f).exists(), f
    meta = json.loads((model_dir / "metadata.json").read_text())
    assert meta["targets"] == ["resolved", "csat", "handle_time"]
    assert meta["data"]["rows"] == len(history) and meta["data"]["synthetic"]
    assert meta["xgboost_version"] and len(meta["data"]["data_hash"]) == 16
    m = meta["metrics"]["resolved"]
    for k in ("auc", "log_loss", "calibration_error", "brier"):
        assert k in m and k in m["truth"]
    assert "rmse" in meta["metrics"]["handle_time"] and "rmse" in meta["metrics"]["handle_time"]["truth"]
    # even on this tiny history the model learns real signal, and cannot beat the truth by much
    assert m["auc"] > 0.6 and m["auc"] < m["truth"]["auc"] + 0.02
    card = (model_dir / "model_card.md").read_text()
    assert "Held-out metrics" in card and "truth" in card
    assert not any(n.startswith("truth_") for n in json.loads((model_dir / "features.json").read_text())["names"])


def test_time_ordered_split(model_dir, history) -> None:
    meta = json.loads((model_dir / "metadata.json").read_text())
    d = meta["data"]
    assert d["rows_train"] + d["rows_valid"] + d["rows_test"] == d["rows"]
    tail = history["arrival_at"].sort_values().iloc[-d["rows_test"]]
    assert pd.Timestamp(d["test_from"]) == tail


def test_forest_equals_xgboost_with_nan(model_dir, history) -> None:
    m = ModelDir.load(model_dir)
    X = history_features(history, m.spec).X
    X = X[np.random.default_rng(0).permutation(len(X))[:3000]].copy()
    X[np.random.default_rng(1).random(X.shape) < 0.15] = np.nan  # missing values follow the default branch
    for n, b in m.boosters.items():
        want = b.inplace_predict(X)
        got = m.forests[n].predict(X)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * max(1.0, float(np.abs(want).max())))
    a, b = m.predict_matrix(X, backend="numba"), m.predict_matrix(X, backend="xgboost")
    for n in a:
        np.testing.assert_allclose(a[n], b[n], rtol=1e-5, atol=1e-3)


def test_scorer_protocol_values_and_cold_start(model_dir, world) -> None:
    s = XGBScorer.load(model_dir)
    assert isinstance(s, Scorer)
    s.warm_up()
    snap = _snapshot(world)
    ci = np.repeat(np.arange(snap.n_contacts), 4)
    ai = np.tile(np.arange(4), snap.n_contacts)
    v = s.score_pairs(snap, contact_idx=ci, agent_idx=ai)
    assert v.dtype == np.float64 and v.shape == ci.shape and np.isfinite(v).all()
    preds = s.predict_pairs(snap, contact_idx=ci, agent_idx=ai)
    w = ValueWeights()
    want = (preds["resolved"] + w.w_csat * (np.clip(preds["csat"], 1, 5) - 1) / 4
            - w.cost_per_handle_min * np.maximum(preds["handle_time"], 0) / 60)
    np.testing.assert_allclose(v, want)
    # unknown agents and intents: cold start, still finite
    agents = type(snap.agents)(
        **{**snap.agents.__dict__, "ids": np.array([f"z{k}" for k in range(snap.n_agents)], dtype=object)}
    )
    cold = Snapshot(
        snapshot_id="c",
        at=snap.at,
        intents=tuple(f"new_{k}" for k in snap.intents),
        languages=snap.languages,
        styles=snap.styles,
        contacts=snap.contacts,
        agents=agents,
    )
    assert np.isfinite(s.score_pairs(cold, contact_idx=ci, agent_idx=ai)).all()
    only_res = XGBScorer.load(model_dir, weights=ValueWeights(w_csat=0.0, cost_per_handle_min=0.0))
    np.testing.assert_allclose(only_res.score_pairs(snap, contact_idx=ci, agent_idx=ai), preds["resolved"])


def test_scorer_thread_safe(model_dir, world) -> None:
    s = XGBScorer.load(model_dir)
    snap = _snapshot(world)
    ci = np.repeat(np.arange(snap.n_contacts), 8)
    ai = np.tile(np.arange(8), snap.n_contacts)
    want = s.score_pairs(snap, contact_idx=ci, agent_idx=ai)
    out: list[np.ndarray] = []

    def work() -> None:
        for _ in range(5):
            out.append(s.score_pairs(snap, contact_idx=ci, agent_idx=ai))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(out) == 20 and all(np.array_equal(o, want) for o in out)


def test_predict_frame_refuses_shuffled_or_missing(model_dir, history) -> None:
    m = ModelDir.load(model_dir)
    X = history_features(history.head(100), m.spec).X
    frame = pd.DataFrame(X, columns=list(FEATURES))
    assert set(m.predict_frame(frame)) == {"resolved", "csat", "handle_time"}
    with pytest.raises(ModelError, match="shuffled"):
        m.predict_frame(frame[list(reversed(FEATURES))])
    with pytest.raises(ModelError, match="missing"):
        m.predict_frame(frame.drop(columns=["proficiency"]))
    with pytest.raises(ModelError, match="float32 with 23 columns"):
        m.predict_matrix(X[:, ::-1][:, :20].copy())


def test_model_dir_errors(model_dir, tmp_path) -> None:
    with pytest.raises(ModelError, match="not a model directory"):
        ModelDir.load(tmp_path)
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(model_dir, bad)
    spec = json.loads((bad / "features.json").read_text())
    spec["names"] = list(reversed(spec["names"]))
    (bad / "features.json").write_text(json.dumps(spec))
    with pytest.raises(ModelError, match="features.json: changed since training"):
        ModelDir.load(bad)
    shutil.copytree(model_dir, tmp_path / "nomodel")
    (tmp_path / "nomodel" / "models" / "csat.json").unlink()
    with pytest.raises(ModelError, match="models/csat.json is missing"):
        ModelDir.load(tmp_path / "nomodel")


def test_evaluate_and_predict(model_dir, history) -> None:
    m = ModelDir.load(model_dir)
    since = history["arrival_at"].sort_values().iloc[len(history) // 2]
    res = evaluate(m, history, since=since.floor("us").to_pydatetime())
    assert res["resolved"]["rows"] < (history["agent_id"].notna()).sum()
    assert "truth" in res["resolved"]
    preds = predict_history(m, history)
    assert list(preds.columns) == ["contact_id", "p_resolved", "csat", "handle_s"]
    assert preds.loc[history["abandoned"].to_numpy(bool), "p_resolved"].isna().all()
    assert preds.loc[~history["abandoned"].to_numpy(bool), "p_resolved"].between(0, 1).all()


def test_real_like_history_with_some_targets(history, tmp_path) -> None:
    """A real log: no synthetic-only columns, no resolution or CSAT; train what it has."""
    real = history.drop(
        columns=[
            "truth_p_resolved",
            "truth_csat",
            "truth_handle_s",
            "agent_proficiency",
            "agent_sentiment_handling",
            "agent_style",
            "agent_languages",
            "agent_tenure_days",
            "complexity",
            "sentiment",
            "style",
            "propensity",
        ]
    )
    real["resolved"] = pd.array([None] * len(real), dtype="boolean")
    real["csat"] = np.nan
    res = train(real, out=tmp_path / "m", targets=["handle_time", "repeat_72h"], params=FAST)
    assert set(res.metrics) == {"handle_time", "repeat_72h"} and "truth" not in res.metrics["handle_time"]
    assert res.metadata["label_delay_s"] == 72 * 3600.0 and not res.metadata["data"]["synthetic"]
    s = XGBScorer.load(tmp_path / "m")
    assert set(s.model.boosters) == {"handle_time", "repeat_72h"}
    # default targets: those with labels only
    res2 = train(real, out=tmp_path / "m2", params=FAST)
    assert res2.metadata["targets"] == ["handle_time"] and set(res2.metadata["skipped_targets"]) == {"resolved", "csat"}
    with pytest.raises(InputError, match="target csat: no labelled"):
        train(real, out=tmp_path / "m3", targets=["csat"], params=FAST)


@pytest.mark.parametrize(
    "kw, msg",
    [
        (dict(targets=["speed"]), "unknown target 'speed'"),
        (dict(params=None, drop=["wait_s"]), "wait_s: required column is missing"),
    ],
)
def test_train_refuses_bad_input(history, tmp_path, kw, msg) -> None:
    h = history.drop(columns=kw.pop("drop", []))
    kw.pop("params", None)
    with pytest.raises(InputError, match=msg):
        train(h, out=tmp_path / "m", params=FAST, **kw)
    with pytest.raises(InputError, match="at least 50"):
        train(history.head(10), out=tmp_path / "m", params=FAST)


def test_dask_training_local_cluster(history, tmp_path) -> None:
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0") as cl:
        res = train(history, out=tmp_path / "m", targets=["resolved"], params=FAST, scheduler=cl.scheduler_address)
    assert res.metadata["scheduler"] == cl.scheduler_address
    assert res.metrics["resolved"]["auc"] > 0.6
    XGBScorer.load(tmp_path / "m").warm_up()
