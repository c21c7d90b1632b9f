"""Window mode's clock: one asyncio task ticks every ``window_s`` and answers the waiters.

State changes happen on the event loop thread only; the snapshot is built and solved in a
worker thread (``run_in_executor``), so requests keep being served while a window solves.
A request waiting for its contact's decision awaits a future that the deciding window
resolves; after its timeout it is answered "queued" with its position, and the contact stays
for the next window. On drain: contacts are refused, the window in flight finishes (or one
last window runs at once), and every waiter is answered.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from concurrent.futures import Executor
from datetime import UTC, datetime
from typing import Any

from assign.serve.logs import event
from assign.serve.metrics import Metrics
from assign.serve.window import Decision, WindowInput, WindowState


class Draining(Exception):
    """The service is shutting down and takes no new contacts."""


class WindowRunner:
    """Owns the :class:`WindowState`, the window task and the futures of waiting requests."""

    def __init__(self, *, engine: Any, window_s: float, executor: Executor, metrics: Metrics,
                 log: logging.Logger, log_ticks: bool = True) -> None:
        self.state = WindowState()
        self.engine, self.window_s, self.executor = engine, window_s, executor
        self.metrics, self.log, self.log_ticks = metrics, log, log_ticks
        self.draining = False
        self._waiters: dict[str, list[asyncio.Future]] = defaultdict(list)
        self._arrived: dict[str, float] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None

    # ------------------------------------------------------------------ requests

    async def submit(self, record: dict[str, Any], *, timeout_s: float) -> tuple[Decision, bool]:
        """Add a contact and wait for its decision; (decision, replayed). A contact id already
        waiting or assigned is not added again: its own decision is awaited (idempotent retry)."""
        if self.draining:
            raise Draining()
        added = self.state.add_contact(record, now=time.monotonic())
        if added:
            self._arrived[record["contact_id"]] = time.perf_counter()
            self._gauges()
        return await self.wait(record["contact_id"], timeout_s=timeout_s), not added

    async def wait(self, contact_id: str, *, timeout_s: float) -> Decision | None:
        """The contact's decision, waiting up to ``timeout_s`` for a window to assign it."""
        d = self.state.status(contact_id)
        if d is None or d.status != "queued" or timeout_s <= 0 or self.draining:
            return d
        fut = asyncio.get_running_loop().create_future()
        self._waiters[contact_id].append(fut)
        try:
            await asyncio.wait_for(asyncio.shield(fut), timeout_s)
        except TimeoutError:
            pass
        finally:
            waiters = self._waiters.get(contact_id)
            if waiters is not None and fut in waiters:
                waiters.remove(fut)
                if not waiters:
                    del self._waiters[contact_id]
        return self.state.status(contact_id) if not fut.done() else fut.result()

    def remove(self, contact_id: str) -> str | None:
        """Withdraw or end a contact ("withdrawn" / "ended", None: unknown id); a request still
        waiting for it is answered with that status."""
        what = self.state.remove(contact_id, now=time.monotonic())
        if what is not None:
            self._arrived.pop(contact_id, None)
            self._resolve(contact_id, Decision(contact_id=contact_id, status=what))
            self._gauges()
        return what

    def put_agent(self, record: dict[str, Any], *, logged_in: bool) -> None:
        self.state.put_agent(record, logged_in=logged_in, now=time.monotonic())
        self._gauges()

    # ------------------------------------------------------------------ the clock

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="assign-window")

    async def drain(self) -> None:
        """Stop taking contacts, finish the window in flight (or run one now), answer all."""
        self.draining = True
        self._wake.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_t = loop.time() + self.window_s
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), max(0.0, next_t - loop.time()))
            except TimeoutError:
                pass
            await self._window()
            if self.draining:
                break
            next_t += self.window_s
            if next_t <= loop.time():  # the tick overran its window: start the next one afresh
                next_t = loop.time() + self.window_s
        for cid in list(self._waiters):
            self._resolve(cid, self.state.status(cid))
        event(self.log, "drained", waiting=len(self.state.waiting), assigned=len(self.state.assigned))

    async def _window(self) -> None:
        win = self.state.snapshot(now=time.monotonic(), at=datetime.now(UTC))
        if win is None:
            return
        t0 = time.perf_counter()
        try:
            result, cpu_ms = await asyncio.get_running_loop().run_in_executor(self.executor, self._solve, win)
        except Exception as err:
            self.metrics.error("window_tick")
            event(self.log, "window_failed", level=logging.ERROR, window=win.window,
                  error=f"{type(err).__name__}: {err}")
            return
        made = self.state.apply(result, window=win)
        now = time.perf_counter()
        for d in made:
            arrived = self._arrived.pop(d.contact_id, None)
            if arrived is not None:
                self.metrics.decision_seconds.observe(now - arrived)
            self._resolve(d.contact_id, d)
        self.metrics.observe_tick(result, mode="window")
        self._gauges()
        if self.log_ticks:
            event(self.log, "tick", mode="window", window=win.window, contacts=len(win.contacts),
                  agents=len(win.agents), assigned=len(made), dropped=len(result.assignments) - len(made),
                  waiting=len(self.state.waiting), solver=result.solver, fallback=result.fallback,
                  fallback_reason=result.fallback_reason, ms=round((now - t0) * 1e3, 3), cpu_ms=round(cpu_ms, 3),
                  timings_ms=result.timings_ms)

    def _solve(self, win: WindowInput) -> tuple[Any, float]:
        """Build and solve in the worker thread; also its CPU time (the wall time on a busy
        machine says little about the work)."""
        c0 = time.thread_time()
        result = self.engine.router.tick(win.build(), budget_ms=self.engine.budget_ms)
        return result, (time.thread_time() - c0) * 1e3

    def _resolve(self, contact_id: str, decision: Decision | None) -> None:
        for fut in self._waiters.pop(contact_id, ()):
            if not fut.done():
                fut.set_result(decision)

    def _gauges(self) -> None:
        c = self.state.counts()
        self.metrics.queue_length.set(c["waiting"])
        self.metrics.active.set(c["assigned"])
        self.metrics.agents.set(c["agents_logged_in"])
