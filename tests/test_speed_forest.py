"""The packed numba forest against xgboost: equal predictions (1e-6) on the benchmark's pairs."""
from __future__ import annotations

import numpy as np
import pytest
import xgboost as xgb

from assign.errors import ModelError
from assign.model import ModelDir, TrainParams, XGBScorer, train
from assign.model import packed as packed_mod
from assign.model.packed import pack_boosters
from assign.world.centre import generate_history
from benchmarks.scoring import pairs, workload

PARAMS = TrainParams(max_rounds=40, early_stopping=10, max_depth=5, nthread=1)


@pytest.fixture(scope="module")
def bench():
    """The scoring benchmark's centre (seed 7, 200 agents), a model trained on a day of it,
    and the benchmark's pairs: 300 waiting contacts with their 16 most proficient agents."""
    world, snap = workload(seed=7, n_contacts=300, n_agents=200)
    return world, snap


@pytest.fixture(scope="module")
def model_dir(bench, tmp_path_factory):
    out = tmp_path_factory.mktemp("speed-model")
    train(generate_history(bench[0], days=1, seed=8), out=out, params=PARAMS)
    return out


def _close(got: np.ndarray, want: np.ndarray) -> None:
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_packed_equals_booster_predict_on_benchmark_pairs(bench, model_dir) -> None:
    _, snap = bench
    scorer = XGBScorer.load(model_dir)
    ci, ai = pairs(snap, 16, np.random.default_rng(7))
    X = scorer.features(snap, contact_idx=ci, agent_idx=ai)
    assert scorer.model.packed is not None and scorer.model.packed.depth == 5
    got = scorer.model.packed.predict(X)
    names = list(scorer.model.spec.names)
    for n, b in scorer.model.boosters.items():
        _close(got[n], b.predict(xgb.DMatrix(X, feature_names=names)))
    auto = scorer.model.predict_matrix(X)  # the default backend is the packed one at this size
    for n, b in scorer.model.boosters.items():
        _close(auto[n], b.inplace_predict(X))


def test_packed_follows_default_direction_of_missing_values(bench, model_dir) -> None:
    _, snap = bench
    m = ModelDir.load(model_dir)
    ci, ai = pairs(snap, 16, np.random.default_rng(3))
    X = XGBScorer(model=m).features(snap, contact_idx=ci, agent_idx=ai)
    X[np.random.default_rng(1).random(X.shape) < 0.2] = np.nan
    X[:70] = np.nan  # a whole block of missing rows, and blocks that mix both
    got = m.predict_matrix(X, backend="packed")
    for n, b in m.boosters.items():
        _close(got[n], b.inplace_predict(X))


@pytest.mark.parametrize("objective", ["binary:logistic", "reg:squarederror"])
def test_packed_irregular_trees(objective) -> None:
    """Leaves at every depth (padded to a perfect tree), several boosters in one forest."""
    rng = np.random.default_rng(5)
    X = rng.normal(size=(3000, 6)).astype(np.float32)
    X[rng.random(X.shape) < 0.1] = np.nan
    y = (np.nan_to_num(X[:, 0]) + np.nan_to_num(X[:, 1]) ** 2 + rng.normal(size=3000) > 1).astype(float)
    params = {"objective": objective, "max_depth": 7, "min_child_weight": 30, "eta": 0.3, "nthread": 1}
    boosters = {k: xgb.train({**params, "seed": k}, xgb.DMatrix(X[k::2], label=y[k::2]), num_boost_round=25)
                for k in (0, 1)}
    pf = pack_boosters({str(k): b for k, b in boosters.items()}, n_features=6)
    assert pf.depth == 7 and pf.n_trees == 50
    got = pf.predict(X)
    for k, b in boosters.items():
        _close(got[str(k)], b.inplace_predict(X))


def test_too_deep_trees_fall_back_to_xgboost(model_dir, monkeypatch) -> None:
    monkeypatch.setattr(packed_mod, "MAX_DEPTH", 2)
    m = ModelDir.load(model_dir)
    assert m.packed is None
    with pytest.raises(ModelError, match="could not be packed"):
        m.predict_matrix(np.zeros((2, len(m.spec.names)), np.float32), backend="packed")
    assert set(m.predict_matrix(np.zeros((2, len(m.spec.names)), np.float32))) == set(m.boosters)


def test_packed_rejects_wrong_matrix(model_dir) -> None:
    m = ModelDir.load(model_dir)
    with pytest.raises(ModelError, match="float32 rows"):
        m.packed.margins(np.zeros((3, 2), np.float32))


@pytest.mark.parametrize("threads", [2, 3, 7])
def test_packed_on_several_threads_gives_the_same_bits(bench, model_dir, threads, monkeypatch) -> None:
    """Rows cut into ranges over threads (assign.parallel): every row's margins are the same
    float32 bits as one thread's, with missing values in some blocks; and equal xgboost's."""
    _, snap = bench
    m = ModelDir.load(model_dir)
    ci, ai = pairs(snap, 16, np.random.default_rng(5))
    X = XGBScorer(model=m).features(snap, contact_idx=ci, agent_idx=ai)
    X[np.random.default_rng(2).random(X.shape) < 0.05] = np.nan
    monkeypatch.setattr(packed_mod, "MIN_ROWS_PER_THREAD", 100)  # 4,800 rows: split even at 7 threads
    one = m.packed.margins(X, threads=1)
    many = m.packed.margins(X, threads=threads)
    assert np.array_equal(one, many)
    from assign import parallel

    with parallel.traced() as trace:  # the split really happened
        m.packed.margins(X, threads=threads)
    assert len(trace) == 1 and trace[0][0] == threads and len(trace[0][1]) > 1
    for n, b in m.boosters.items():
        _close(m.packed.finish(many)[n], b.inplace_predict(X))
