"""Shared fixtures: small valid snapshot documents that tests then break on purpose."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture
def snapshot_doc() -> dict:
    """The README's example snapshot (examples/snapshot.json), as a fresh dict."""
    return copy.deepcopy(json.loads((EXAMPLES / "snapshot.json").read_text()))


@pytest.fixture
def promoting_loop_centre(tmp_path, monkeypatch):
    """A small drift-free centre whose registry already holds a first champion, with every later
    retrain forced to promote: for tests of what a loop does at a swap. Returns (world, pre-period
    history, start)."""
    import importlib

    import pandas as pd

    from assign.deploy.loop import loop_train_params
    from assign.deploy.registry import open_registry
    from assign.deploy.retrain import retrain
    from assign.world.centre import generate_history
    from assign.world.drift import DriftSchedule, drifting_world

    dw = drifting_world(seed=5, n_agents=8, n_intents=3, schedule=DriftSchedule.off())
    pre = generate_history(dw.pre_period(days=3), days=3, seed=1)
    start = pd.Timestamp(dw.base.start)
    assert retrain(pre, registry=open_registry(tmp_path / "registry"), cutoff=start, window_days=3.0,
                   params=loop_train_params(), at=start, resolution_delay_h=6.0).promoted
    rt = importlib.import_module("assign.deploy.retrain")
    monkeypatch.setattr(rt, "decide", lambda rule, scored, champion: (True, "promoted by the test"))
    return dw, pre, start


@pytest.fixture
def promoted_loop_run(tmp_path, promoting_loop_centre):
    """``run(config) -> (policy, snapshot, base)``: a loop on :func:`promoting_loop_centre` for 0.7
    days with ``config`` (retrain every 0.6 days, no monitor; its one retrain promotes), checked to
    swap, retrain and swap again; ``snapshot`` and ``base`` (the scorer under the level offsets) are
    those of the first tick after the promotion."""
    from typing import ClassVar

    from assign.constants import DAY_S
    from assign.deploy.loop import LoopPolicy
    from assign.sim.engine import SimConfig, simulate
    from assign.world.drift import DriftSource

    dw, pre, _ = promoting_loop_centre

    class Probe(LoopPolicy):
        snaps: ClassVar[list] = []

        def assign(self, view):
            w, agents = view.routable()
            if len(w) and not self.snaps and view.t > 0.6 * DAY_S:
                self.snaps.append((view.snapshot(w, agents), self.router.scorer.base.base))
            return super().assign(view)

    def run(config):
        Probe.snaps = []
        pol = Probe(registry=tmp_path / "registry", workdir=tmp_path / "runs", pre_history=pre, config=config)
        simulate(source=DriftSource(dw), policy=pol, seed=0, config=SimConfig(days=0.7, window_s=120.0))
        assert [e["event"] for e in pol.events] == ["swap", "retrain", "swap"] and pol.events[2]["ok"]
        snap, base = pol.snaps[0]
        return pol, snap, base

    return run
