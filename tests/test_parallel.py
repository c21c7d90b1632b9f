"""assign.parallel: row ranges, the thread pool, the context's thread count; the router's
tick at 1 and 2 threads gives the same answer."""
from __future__ import annotations

import itertools
import threading

import numpy as np
import pytest

from assign import parallel
from assign.config import RouterConfig
from assign.errors import InputError
from assign.router import Router
from assign.workload import synthetic_snapshot


@pytest.mark.parametrize("n,parts,min_rows,align", [(0, 2, 1, 1), (10, 2, 100, 1), (1000, 2, 10, 64),
                                                    (1001, 3, 10, 1), (5, 8, 1, 1), (129, 2, 64, 64)])
def test_ranges_cover_the_rows_once_in_order(n, parts, min_rows, align) -> None:
    got = parallel.ranges(n, parts=parts, min_rows=min_rows, align=align)
    assert got[0][0] == 0 and got[-1][1] == n
    assert all(a[1] == b[0] for a, b in itertools.pairwise(got))
    assert len(got) <= max(1, parts * parallel.CHUNKS_PER_THREAD)
    if len(got) > 1:
        assert all(hi > lo for lo, hi in got)
        assert all(lo % align == 0 for lo, _ in got)
    if n < 2 * min_rows:
        assert got == [(0, n)]


def test_makespan_of_threads_claiming_in_order() -> None:
    assert parallel.makespan([3.0, 1.0, 1.0, 1.0], 2) == 3.0
    assert parallel.makespan([1.0, 1.0, 1.0, 1.0], 2) == 2.0
    assert parallel.makespan([1.0, 2.0], 1) == 3.0


def test_run_uses_another_thread_and_reraises() -> None:
    seen, out = set(), np.zeros(100)
    gate = threading.Barrier(2, timeout=30)

    def fill(lo, hi):
        out[lo:hi] = np.arange(lo, hi)

    parts = parallel.ranges(100, parts=2, min_rows=10)
    assert len(parts) == 2 * parallel.CHUNKS_PER_THREAD
    parallel.run(fill, parts, threads=2)
    assert np.array_equal(out, np.arange(100))

    def meet(lo, hi):  # both threads must take a range: each waits for the other
        if lo in (0, 50):
            gate.wait()
        seen.add(threading.get_ident())

    seen.clear()
    parallel.run(meet, [(0, 50), (50, 100)], threads=2)
    assert len(seen) == 2

    def bad(lo, hi):
        if lo > 0:
            raise ValueError("a later range")

    with pytest.raises(ValueError, match="a later range"):
        parallel.run(bad, parts, threads=2)


def test_caller_does_not_wait_for_a_pool_thread_that_never_starts() -> None:
    """A pool thread the machine does not schedule: the caller runs every range itself."""
    release = threading.Event()
    parallel.run(lambda lo, hi: None, [(0, 1), (1, 2)], threads=2)  # the pool exists
    parallel._submit(lambda: release.wait(30), parallel._POOL_SIZE)  # occupy every pool thread
    try:
        out = np.zeros(80)

        def fill(lo, hi):
            out[lo:hi] = 1.0

        parallel.run(fill, parallel.ranges(80, parts=2, min_rows=10), threads=2)
        assert out.all()
    finally:
        release.set()


def test_thread_count_is_scoped() -> None:
    assert parallel.threads() == 1
    with parallel.using(3) as n:
        assert n == parallel.threads() == 3
        with parallel.using(None) as auto:
            assert 1 <= auto <= parallel.AUTO_MAX
    assert parallel.threads() == 1


def test_config_threads_validated() -> None:
    for bad in (0, -1, 1.5, "2", 65):
        with pytest.raises(InputError, match="config.threads"):
            RouterConfig(threads=bad)
    assert RouterConfig().threads is None and RouterConfig(threads=2).threads == 2


@pytest.mark.parametrize("density", [0.4, 0.85])
def test_tick_on_two_threads_equals_one(density, monkeypatch) -> None:
    """A pruned tick (the top-K selection split over threads) keeps the same candidates and
    gives the same assignments and objective as one thread."""
    import assign.candidates as C

    monkeypatch.setattr(C, "MIN_CONTACTS_PER_THREAD", 16)
    snap = synthetic_snapshot(n_contacts=300, n_agents=250, seed=11, skill_density=density)
    one, two = (Router(config=RouterConfig(threads=k, prune_min_pairs=1000)) for k in (1, 2))
    p1, p2 = one.problem(snap), two.problem(snap)
    assert np.array_equal(p1.rows, p2.rows) and np.array_equal(p1.cols, p2.cols)
    r1, r2 = one.tick(snap), two.tick(snap)
    assert [(a.contact_id, a.agent_id) for a in r1.assignments] == [(a.contact_id, a.agent_id) for a in r2.assignments]
    assert r1.objective == r2.objective
    with parallel.traced() as trace:
        two.problem(snap)
    assert any(n == 2 and len(spent) > 1 for n, spent in trace)  # the selection did split


def test_a_forked_child_gets_its_own_pool() -> None:
    """The pool's threads do not survive fork: a child that splits rows must not wait on them."""
    import multiprocessing as mp

    parallel.run(lambda lo, hi: None, parallel.ranges(100, parts=2, min_rows=10), threads=2)  # the parent's pool
    ctx = mp.get_context("fork")
    with ctx.Pool(1) as pool:
        assert pool.apply_async(_split_in_child).get(timeout=60) == 4950


def _split_in_child() -> int:
    out = np.zeros(100, dtype=np.int64)

    def fill(lo, hi):
        out[lo:hi] = np.arange(lo, hi)

    parallel.run(fill, parallel.ranges(100, parts=2, min_rows=10), threads=2)
    return int(out.sum())


def test_nested_run_in_a_pool_thread_does_not_wait_on_the_pool() -> None:
    out = np.zeros(40)

    def outer(lo, hi):
        def inner(a, b):
            out[a:b] += 1

        parallel.run(inner, [(0, 10), (10, 20)], threads=2)  # from a pool thread too

    parallel.run(outer, [(0, 20), (20, 40)], threads=2)
    assert np.array_equal(out[:20], np.full(20, 2.0))
