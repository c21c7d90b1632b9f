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
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from itertools import pairwise

#: The most threads the auto setting takes: the tick's kernels were measured at 1 and 2.
AUTO_MAX = 2

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
def traced() -> Iterator[list[list[float]]]:
    """For benchmarks on a shared machine: within the block, :func:`run` runs its ranges one
    after another in the calling thread and appends each call's per-range CPU seconds
    (``time.thread_time``) to the yielded list, so the critical path of a split kernel (its
    longest range) can be measured when no second core is free to show it in wall time."""
    trace: list[list[float]] = []
    token = _TRACE.set(trace)
    try:
        yield trace
    finally:
        _TRACE.reset(token)


def ranges(n_rows: int, *, parts: int, min_rows: int, align: int = 1) -> list[tuple[int, int]]:
    """``n_rows`` cut into at most ``parts`` contiguous ranges of at least ``min_rows`` rows
    (cuts on multiples of ``align``); one range when the rows are too few to share."""
    parts = max(1, min(int(parts), n_rows // max(int(min_rows), 1)))
    if parts <= 1:
        return [(0, n_rows)]
    step = -(-n_rows // parts)
    step = -(-step // align) * align
    cuts = list(range(0, n_rows, step)) + [n_rows]
    return [(lo, hi) for lo, hi in pairwise(cuts) if hi > lo]


def _after_fork() -> None:
    """A forked child inherits the pool object but not its threads: start a new one there."""
    global _POOL, _POOL_SIZE, _LOCK
    _POOL, _POOL_SIZE, _LOCK = None, 0, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


def _submit(fn: Callable[[int, int], None], parts: list[tuple[int, int]]) -> list[Future]:
    """``fn`` on each range in the shared pool, grown to ``len(parts)`` threads if needed; under
    the lock, so no call submits to a pool that another has just replaced and shut down."""
    global _POOL, _POOL_SIZE
    with _LOCK:
        if _POOL is None or _POOL_SIZE < len(parts):
            old = _POOL
            _POOL, _POOL_SIZE = ThreadPoolExecutor(max_workers=len(parts), thread_name_prefix=_PREFIX), len(parts)
            if old is not None:
                old.shutdown(wait=False)  # its queued ranges still run
        return [_POOL.submit(fn, lo, hi) for lo, hi in parts]


def run(fn: Callable[[int, int], None], parts: list[tuple[int, int]]) -> None:
    """``fn(lo, hi)`` for every range: the first in the calling thread, the others in a shared
    pool (``fn`` must release the GIL to gain anything); waits for all, re-raises the first error."""
    trace = _TRACE.get()
    if trace is not None:
        spent = []
        for lo, hi in parts:
            c0 = time.thread_time()
            fn(lo, hi)
            spent.append(time.thread_time() - c0)
        trace.append(spent)
        return
    if len(parts) == 1 or threading.current_thread().name.startswith(_PREFIX):
        for lo, hi in parts:  # one range; or called from a pool thread: never wait on the pool itself
            fn(lo, hi)
        return
    futures = _submit(fn, parts[1:])
    try:
        fn(*parts[0])
    finally:
        for f in futures:
            f.result()

