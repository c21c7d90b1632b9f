"""An adaptive batch window: batch only while agents are plentiful, route at once when they are scarce.

Why: a fixed window makes every contact wait for the next tick, and, worse, leaves an agent
who just freed idle until the tick while the queue waits for him: throughput lost, so
abandonment rises. The two regimes want different things:

- **scarce** (on a channel, waiting contacts >= free slots): every free slot will be used
  anyway and the queue already offers a choice of contacts; waiting only idles agents.
  Route that channel's contacts at once.
- **plentiful** (a channel with more free slots than waiting contacts): agents idle
  regardless, so holding a contact a few seconds costs no throughput, and pooling the
  contacts that arrive meanwhile lets the solver match them jointly. Route that channel's
  contacts when its oldest waiting contact has been held ``hold_s`` seconds.

The rule is per channel: a first version decided for the whole window and routed at every
tick, because one channel (email) is nearly always scarce.

:class:`AdaptiveBatch` wraps a batch policy (``ml-batch``'s :class:`RouterPolicy`) and is run
by the engine with a short window (``SimConfig(window_s=0.5)``): at each tick it either
passes the inner policy the contacts of the channels to route now (a narrowed view) or
holds (assigns nothing).
"""
from __future__ import annotations

import numpy as np

from assign.sim.policies import Policy
from assign.sim.view import RunInfo, View

_EMPTY = (np.zeros(0, np.int64), np.zeros(0, np.int64))


class AdaptiveBatch(Policy):
    """``inner`` on the waiting contacts of every channel where agents are scarce or a contact
    has waited ``hold_s``; the other channels' contacts are held (see the module docstring)."""

    def __init__(self, *, inner: Policy, hold_s: float, name: str | None = None) -> None:
        if not hold_s >= 0:
            raise ValueError(f"hold_s must be >= 0, got {hold_s!r}")
        self.inner, self.hold_s = inner, float(hold_s)
        self.name = name or f"{inner.name}-adaptive{hold_s:g}"

    def start(self, run: RunInfo) -> None:
        self.inner.start(run)

    def route_now(self, view: View) -> np.ndarray:
        """Per waiting contact: route it now (its channel is scarce, or some contact of its
        channel has waited ``hold_s``)."""
        w = view.waiting
        ch = view.stream.block.channel[w].astype(np.int64)
        n_ch = view.free.shape[1]
        waiting = np.bincount(ch, minlength=n_ch)
        due = np.bincount(ch, weights=(view.t - view.stream.arrival_s[w]) >= self.hold_s, minlength=n_ch) > 0
        go = ((waiting > 0) & (waiting >= view.free.sum(axis=0))) | due
        return go[ch]

    def assign(self, view: View) -> tuple[np.ndarray, np.ndarray]:
        now = self.route_now(view)
        if not now.any():
            return _EMPTY
        if now.all():
            return self.inner.assign(view)
        return self.inner.assign(view.narrowed(waiting=view.waiting[now], free=view.free))
