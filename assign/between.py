"""Work that must run on a ticking thread, but between two ticks, never during one.

Why (issue 10, the hot swap): work done in another thread of the routing process (unpickling
a model, warming it up, a canary tick) competes with the ticks for the interpreter lock; on
ticks of a millisecond or two, a few milliseconds of it make the tick that overlaps it 3-5x
longer. Run on the ticking thread between ticks, the same work lengthens no tick: it delays
the start of the next one by the step's duration instead (the tick loop measures and reports
that delay: :func:`assign.deploy.measure_swap_pause`).

A job is a generator: each ``yield`` ends a step, so the tick loop can run a tick before the
next step (a long job never holds the loop for more than its longest step).
:meth:`BetweenTicks.run` runs one step; the job's return value is its future's result.
"""
from __future__ import annotations

import threading
from collections import deque
from collections.abc import Generator
from concurrent.futures import Future
from typing import Any


class BetweenTicks:
    """A queue of stepwise jobs (module doc), run oldest first by whoever calls :meth:`run`
    (the tick loop, between ticks: ``Router.run_deferred``); thread-safe, one step at a time."""

    def __init__(self) -> None:
        self._jobs: deque[tuple[Generator[None, None, Any], Future]] = deque()
        self._lock = threading.Lock()      # the queue
        self._running = threading.Lock()   # one step at a time, whichever thread ticks

    def __len__(self) -> int:
        return len(self._jobs)

    def submit(self, job: Generator[None, None, Any]) -> Future:
        """Queue ``job``; its future ends with what the job returns or raises. Cancelling the
        future before its first step drops the job."""
        fut: Future = Future()
        with self._lock:
            self._jobs.append((job, fut))
        return fut

    def run(self) -> bool:
        """Run one step of the oldest job on this thread; False when there was nothing to run
        (or another thread is running a step)."""
        if not self._jobs or not self._running.acquire(blocking=False):
            return False
        try:
            with self._lock:
                if not self._jobs:
                    return False
                job, fut = self._jobs[0]
            if not fut.running() and not fut.set_running_or_notify_cancel():
                self._drop(job)  # cancelled before it started
                job.close()
                return False
            try:
                next(job)
                return True
            except StopIteration as stop:
                self._drop(job)
                fut.set_result(stop.value)
            except Exception as err:  # the job's own failure goes to whoever waits on it
                self._drop(job)
                fut.set_exception(err)
            return True
        finally:
            self._running.release()

    def _drop(self, job: Generator[None, None, Any]) -> None:
        with self._lock:
            if self._jobs and self._jobs[0][0] is job:
                self._jobs.popleft()
