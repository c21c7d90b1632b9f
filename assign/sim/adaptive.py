"""An adaptive batch window: batch only while agents are plentiful, route at once when they are scarce.

Why: a fixed window makes every contact wait for the next tick, and, worse, leaves an agent
who just freed idle until the tick while the queue waits for him: throughput lost, so
abandonment rises. The two regimes want different things:

- **scarce** (on some channel, waiting contacts >= free slots): every free slot will be
  used anyway and the queue already offers a choice of contacts; waiting only idles agents.
  Route at once.
- **plentiful** (every channel has more free slots than waiting contacts): agents idle
  regardless, so holding a contact a few seconds costs no throughput, and pooling the
  contacts that arrive meanwhile lets the solver match them jointly. Route when the oldest
  waiting contact has been held ``hold_s`` seconds.

:class:`AdaptiveBatch` wraps a batch policy (``ml-batch``'s :class:`RouterPolicy`) and is run
by the engine with a short window (``SimConfig(window_s=0.5)``): at each tick it either
passes the whole view to the inner policy or holds (assigns nothing).
"""
from __future__ import annotations

import numpy as np

from assign.sim.policies import Policy
from assign.sim.view import RunInfo, View

_EMPTY = (np.zeros(0, np.int64), np.zeros(0, np.int64))


class AdaptiveBatch(Policy):
    """``inner`` at once when agents are scarce on some channel, else once the oldest waiting
    contact has waited ``hold_s`` seconds (see the module docstring)."""

    def __init__(self, *, inner: Policy, hold_s: float, name: str | None = None) -> None:
        if not hold_s >= 0:
            raise ValueError(f"hold_s must be >= 0, got {hold_s!r}")
        self.inner, self.hold_s = inner, float(hold_s)
        self.name = name or f"{inner.name}-adaptive{hold_s:g}"

    def start(self, run: RunInfo) -> None:
        self.inner.start(run)

    def route_now(self, view: View) -> bool:
        """True when the window should be routed now (scarce agents, or a contact held long enough)."""
        w = view.waiting
        if not len(w):
            return False
        if float(view.t - view.stream.arrival_s[w].min()) >= self.hold_s:
            return True
        n_ch = view.free.shape[1]
        waiting = np.bincount(view.stream.block.channel[w], minlength=n_ch)
        return bool(((waiting > 0) & (waiting >= view.free.sum(axis=0))).any())

    def assign(self, view: View) -> tuple[np.ndarray, np.ndarray]:
        return self.inner.assign(view) if self.route_now(view) else _EMPTY
