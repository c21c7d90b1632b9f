"""A second thread for the tick's row kernels: contiguous row ranges, exact by construction.

Why: every stage of a tick was single-threaded, and the packed forest alone is ~20 ms of the
XGBoost tick on the 2-core machine. Its kernel (like retrieval's top-K selection) is numba
``nogil`` and each row's result depends on that row only, so cutting the rows into contiguous
ranges and running the ranges in threads gives the same bits as one call (every row's sum in
the same tree order). OR-Tools holds the GIL while it solves, so the flow gains nothing here
(measured: ``benchmarks.tick_threads``). Threads here, not numba's ``parallel=True``: the count is per call (the
router's config, read from a context variable), no threading layer (tbb / omp / workqueue)
is involved, and xgboost's own OpenMP pool is left alone.

Oversubscription: a kernel splits only when each thread gets at least ``min_rows`` rows, so
the simulator's small ticks (its processes run one per core) stay on one thread; the count
comes from :class:`assign.config.RouterConfig` ``threads`` (None: up to 2 on the cores this
process may use).
"""
from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from itertools import pairwise

#: The most threads the auto setting takes: the tick's kernels were measured at 1 and 2.
AUTO_MAX = 2
#: Ranges per thread: threads claim them as they become free, so a thread the machine does not
#: schedule in time leaves its share to the others instead of making the caller wait.
CHUNKS_PER_THREAD = 4

_THREADS: ContextVar[int] = ContextVar("assign_threads", default=1)
_TRACE: ContextVar[list | None] = ContextVar("assign_parallel_trace", default=None)
_POOL: ThreadPoolExecutor | None = None
_POOL_SIZE = 0
_LOCK = threading.Lock()
_PREFIX = "assign-rows"


def auto_threads() -> int:
    """The default thread count: the cores this process may run on, at most :data:`AUTO_MAX`."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(AUTO_MAX, cores))


def threads() -> int:
    """Threads the row kernels may use in this context (1 outside :func:`using`)."""
    return _THREADS.get()


@contextmanager
def using(n: int | None) -> Iterator[int]:
    """Within the block, row kernels may use ``n`` threads (None: :func:`auto_threads`)."""
    n = auto_threads() if n is None else max(1, int(n))
    token = _THREADS.set(n)
    try:
        yield n
    finally:
        _THREADS.reset(token)


@contextmanager
def traced() -> Iterator[list[tuple[int, list[float]]]]:
    """For benchmarks on a shared machine: within the block, :func:`run` runs its ranges one
    after another in the calling thread and appends ``(threads, per-range CPU seconds)``
    (``time.thread_time``) to the yielded list, so a split kernel's critical path
    (:func:`makespan`) can be measured when no second core is free to show it in wall time."""
    trace: list[tuple[int, list[float]]] = []
    token = _TRACE.set(trace)
    try:
        yield trace
    finally:
        _TRACE.reset(token)


def makespan(spent: list[float], threads: int) -> float:
    """When the last of ``threads`` threads finishes, each claiming the next range as it
    becomes free (what :func:`run` does), the ranges taking ``spent`` seconds each."""
    free = [0.0] * max(1, threads)
    for t in spent:
        k = free.index(min(free))
        free[k] += t
    return max(free)


def ranges(n_rows: int, *, parts: int, min_rows: int, align: int = 1) -> list[tuple[int, int]]:
    """``n_rows`` cut for ``parts`` threads: one range when a thread would get fewer than
    ``min_rows`` rows, else :data:`CHUNKS_PER_THREAD` contiguous ranges per thread (cuts on
    multiples of ``align``), which :func:`run` hands out as threads become free."""
    t = max(1, min(int(parts), n_rows // max(int(min_rows), 1)))
    if t <= 1:
        return [(0, n_rows)]
    step = -(-n_rows // (t * CHUNKS_PER_THREAD))
    step = -(-step // align) * align
    cuts = list(range(0, n_rows, step)) + [n_rows]
    return [(lo, hi) for lo, hi in pairwise(cuts) if hi > lo]


def _after_fork() -> None:
    """A forked child inherits the pool object but not its threads: start a new one there."""
    global _POOL, _POOL_SIZE, _LOCK
    _POOL, _POOL_SIZE, _LOCK = None, 0, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


def _submit(fn: Callable[[], None], n: int) -> None:
    """``fn`` on ``n`` pool threads (the pool grown if needed; under the lock, so no call
    submits to a pool that another has just replaced and shut down)."""
    global _POOL, _POOL_SIZE
    with _LOCK:
        if _POOL is None or _POOL_SIZE < n:
            old = _POOL
            _POOL, _POOL_SIZE = ThreadPoolExecutor(max_workers=n, thread_name_prefix=_PREFIX), n
            if old is not None:
                old.shutdown(wait=False)  # what it has queued still runs
        for _ in range(n):
            _POOL.submit(fn)


def run(fn: Callable[[int, int], None], parts: list[tuple[int, int]], *, threads: int | None = None) -> None:
    """``fn(lo, hi)`` for every range, on up to ``threads`` threads (None: :func:`threads`):
    the calling thread and pool threads each claim the next unclaimed range until none is
    left, so a pool thread that a busy machine does not schedule in time costs nothing (the
    caller runs its ranges) and the caller waits only for ranges already being run. ``fn``
    must release the GIL to gain anything, and write only its own rows: which thread runs a
    range changes nothing. Re-raises the first error."""
    n_threads = min(_THREADS.get() if threads is None else max(1, int(threads)), len(parts))
    trace = _TRACE.get()
    if trace is not None:
        spent = []
        for lo, hi in parts:
            c0 = time.thread_time()
            fn(lo, hi)
            spent.append(time.thread_time() - c0)
        trace.append((n_threads, spent))
        return
    if n_threads <= 1 or threading.current_thread().name.startswith(_PREFIX):
        for lo, hi in parts:  # one thread; or called from a pool thread: never wait on the pool itself
            fn(lo, hi)
        return
    state = {"next": 0, "done": 0, "error": None}
    cond = threading.Condition()

    def claim_and_run() -> None:
        while True:
            with cond:
                k = state["next"]
                if k >= len(parts) or state["error"] is not None:
                    return
                state["next"] = k + 1
            try:
                fn(*parts[k])
            except BaseException as err:  # handed to the caller
                with cond:
                    state["error"] = state["error"] or err
            with cond:
                state["done"] += 1
                cond.notify_all()

    _submit(claim_and_run, n_threads - 1)
    claim_and_run()
    with cond:  # every claimed range finished (unclaimed ones can no longer be claimed)
        cond.wait_for(lambda: state["done"] == state["next"])
    if state["error"] is not None:
        raise state["error"]
