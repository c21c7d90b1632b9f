"""Loading a model directory in a LoadWorker process: the same model as an in-process load, the
same errors, a dead worker reported and replaced; the hot swap through it."""
from __future__ import annotations

import os
import pickle
import shutil
import signal

import numpy as np
import pytest
from test_model import _snapshot

from assign.errors import ModelError
from assign.model import ModelDir, TrainParams, XGBScorer, train
from assign.model.offload import LoadWorker
from assign.world.centre import generate_history, generate_world

FAST = TrainParams(max_rounds=30, early_stopping=8, max_depth=4, nthread=1)


@pytest.fixture(scope="module")
def world():
    return generate_world(n_agents=16, seed=5)


@pytest.fixture(scope="module")
def model_dir(world, tmp_path_factory):
    out = tmp_path_factory.mktemp("model")
    train(generate_history(world, days=2, seed=6), out=out, params=FAST)
    return out


@pytest.fixture(scope="module")
def worker():
    with LoadWorker() as w:
        yield w


def test_a_worker_load_equals_an_in_process_load(world, model_dir, worker) -> None:
    here, there = XGBScorer.load(model_dir), XGBScorer.load(model_dir, worker=worker)
    snap = _snapshot(world, n=40, seed=1)
    ci = np.repeat(np.arange(snap.n_contacts), snap.n_agents)
    ai = np.tile(np.arange(snap.n_agents), snap.n_contacts)
    np.testing.assert_array_equal(there.score_pairs(snap, contact_idx=ci, agent_idx=ai),
                                  here.score_pairs(snap, contact_idx=ci, agent_idx=ai))
    X = here.features(snap, contact_idx=ci, agent_idx=ai)
    for backend in ("xgboost", "numba", "packed"):  # the boosters and lazy parts work after the crossing
        a, b = here.model.predict_matrix(X, backend=backend), there.model.predict_matrix(X, backend=backend)
        assert all(np.array_equal(a[n], b[n]) for n in a)
    assert there.model.packed is not None and there.model.metadata == here.model.metadata
    assert dict(there.model.customers.segments) == dict(here.model.customers.segments)
    assert "boosters_serial" not in pickle.loads(pickle.dumps(here.model)).__dict__  # built on use, not sent


def test_worker_errors_are_the_load_errors(model_dir, worker, tmp_path) -> None:
    with pytest.raises(ModelError, match="not a model directory"):
        LoadWorker().load(tmp_path)  # answered here: no process started for it
    bad = tmp_path / "bad"
    shutil.copytree(model_dir, bad)
    f = bad / "models" / "resolved.json"
    f.chmod(0o644)
    f.write_text(f.read_text().replace("1", "2", 1))
    with pytest.raises(ModelError) as here:
        ModelDir.load(bad)
    with pytest.raises(ModelError) as there:
        worker.load(bad)
    assert str(there.value) == str(here.value) and "changed since training" in str(there.value)


def test_a_dead_or_stuck_worker_is_reported_then_replaced(model_dir, monkeypatch) -> None:
    with LoadWorker() as w:
        w.load(model_dir)
        first = w._proc.pid
        os.kill(first, signal.SIGKILL)  # died between loads: the next load starts a new one
        w._proc.wait()
        assert w.load(model_dir).packed is not None and w._proc.pid != first
        os.kill(w._proc.pid, signal.SIGKILL)  # died under a load: that load fails and says so
        w._proc.wait()
        monkeypatch.setattr(w, "_ensure", lambda: None)
        with pytest.raises(ModelError, match="the load worker died"):
            w.load(model_dir)
        monkeypatch.undo()
        w.timeout_s = 1e-4  # stuck: stopped after the timeout
        with pytest.raises(ModelError, match="took over"):
            w.load(model_dir)
        assert w._proc is None  # a later load starts a new one, as above


def test_hot_swap_through_the_worker(world, model_dir, tmp_path) -> None:
    from assign.deploy import HotSwap
    from assign.router import Router

    snap = _snapshot(world, n=40, seed=1)
    router = Router(model_version="v0")
    hs = HotSwap(router)
    try:
        res = hs.load(model_dir, canary=snap, version="v1")
        assert res.ok, res.reason
        assert hs.worker is not None and hs.worker._proc is not None  # it went through the worker
        assert router.tick(snap).model_version == "v1"
        bad = tmp_path / "bad"
        shutil.copytree(model_dir, bad)
        (bad / "state.npz").chmod(0o644)
        (bad / "state.npz").write_bytes(b"truncated")
        res = hs.load(bad, canary=snap, version="v2")
        assert not res and res.version == "v1" and "state.npz" in res.reason
        assert router.tick(snap).model_version == "v1"
    finally:
        hs.close()
    assert hs.worker._proc is None


def test_a_deferred_hot_swap_through_the_worker_serves_the_same_model(world, model_dir, tmp_path) -> None:
    import threading
    import time

    from assign.deploy import HotSwap
    from assign.model.scorer import ValueWeights
    from assign.router import Router

    snap = _snapshot(world, n=40, seed=1)
    weights = ValueWeights(w_resolved=2.0, w_csat=0.0)
    router, stop = Router(model_version="v0"), threading.Event()

    def loop() -> None:  # a window loop: a tick, deferred work, a pause (the niced worker needs a core)
        while not stop.is_set():
            router.tick(snap)
            router.run_deferred()
            time.sleep(0.01)

    t = threading.Thread(target=loop)
    t.start()
    hs = HotSwap(router, weights=weights, nthread=1)
    bad = tmp_path / "bad"
    shutil.copytree(model_dir, bad)
    (bad / "state.npz").chmod(0o644)
    (bad / "state.npz").write_bytes(b"truncated")
    try:
        res = hs.load(model_dir, canary=snap, version="v1", defer=True, wait_s=60)
        worse = hs.load(bad, canary=snap, version="v2", defer=True, wait_s=60)
    finally:
        stop.set()
        t.join()
        hs.close()
    assert res.ok, res.reason
    assert not worse and worse.version == "v1" and "state.npz" in worse.reason
    ref = Router(scorer=XGBScorer.load(model_dir, weights=weights, nthread=1), model_version="ref").tick(snap)
    got = router.tick(snap)
    assert got.model_version == "v1"
    assert [(a.contact_id, a.agent_id, a.score) for a in got.assignments] == \
        [(a.contact_id, a.agent_id, a.score) for a in ref.assignments]
