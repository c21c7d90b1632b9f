"""The adaptive batch window (assign.sim.adaptive): when it routes, and that holding 0 s is the
inner policy itself."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from assign.sim.adaptive import AdaptiveBatch
from assign.sim.policies import Policy


class _Everything(Policy):
    name = "everything"

    def assign(self, view):
        return np.asarray(view.waiting), np.zeros(len(view.waiting), np.int64)


def _view(*, t, arrivals, channels, free):
    n = len(arrivals)
    stream = SimpleNamespace(arrival_s=np.asarray(arrivals, float),
                             block=SimpleNamespace(channel=np.asarray(channels, np.int64)))
    return SimpleNamespace(t=t, waiting=np.arange(n), stream=stream, free=np.asarray(free, np.int64))


def test_holds_plentiful_channels_and_routes_scarce_or_due_ones() -> None:
    pol = AdaptiveBatch(inner=_Everything(), hold_s=2.0)
    free = [[1, 0, 0], [1, 2, 0]]  # 2 voice slots, 2 chat slots, no email slot
    plentiful = _view(t=10.0, arrivals=[9.5], channels=[0], free=free)
    assert not pol.route_now(plentiful).any() and len(pol.assign(plentiful)[0]) == 0
    due = _view(t=10.0, arrivals=[7.9, 9.9], channels=[0, 0], free=free)  # one voice contact is due
    assert pol.route_now(due).all() and len(pol.assign(due)[0]) == 2
    scarce = _view(t=10.0, arrivals=[9.5, 9.6, 9.7], channels=[1, 1, 0], free=free)  # 2 chat waiting, 2 slots
    np.testing.assert_array_equal(pol.route_now(scarce), [True, True, False])
    email = _view(t=10.0, arrivals=[9.5, 9.5], channels=[2, 0], free=free)  # email: no slot at all
    np.testing.assert_array_equal(pol.route_now(email), [True, False])
    assert not pol.route_now(_view(t=10.0, arrivals=[], channels=[], free=free)).any()
    with pytest.raises(ValueError, match="hold_s"):
        AdaptiveBatch(inner=_Everything(), hold_s=float("nan"))


def test_hold_zero_is_the_inner_policy() -> None:
    from assign.sim.engine import SimConfig, simulate
    from assign.sim.kpis import summarise
    from assign.sim.policies import make_policy
    from assign.sim.worldsource import WorldSource
    from assign.world.centre import generate_world

    src = WorldSource(generate_world(seed=21, n_agents=30, n_intents=6, n_customers=3000))
    cfg = SimConfig(days=0.1, window_s=0.5)
    plain = simulate(source=src, policy=make_policy("ml-batch"), seed=3, config=cfg)
    wrapped = simulate(source=src, policy=AdaptiveBatch(inner=make_policy("ml-batch"), hold_s=0.0), seed=3,
                       config=cfg)
    np.testing.assert_array_equal(plain.agent, wrapped.agent)
    assert summarise(plain).kpis == summarise(wrapped).kpis
