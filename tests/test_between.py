"""Work deferred to the gaps between ticks: one step per call, oldest job first, results and
errors reach the future, a job cancelled before its first step never runs."""
from __future__ import annotations

import pytest

from assign.between import BetweenTicks


def _job(log: list, name: str, n: int, *, fail: bool = False):
    for i in range(n):
        log.append((name, i))
        if i < n - 1:
            yield
    if fail:
        raise ValueError(f"{name} broke")
    return f"{name} done"


def test_one_step_per_call_oldest_job_first() -> None:
    q, log = BetweenTicks(), []
    a, b = q.submit(_job(log, "a", 3)), q.submit(_job(log, "b", 2))
    assert len(q) == 2
    ran = [q.run() for _ in range(6)]
    assert log == [("a", 0), ("a", 1), ("a", 2), ("b", 0), ("b", 1)]
    assert ran == [True] * 5 + [False] and len(q) == 0
    assert a.result(timeout=0) == "a done" and b.result(timeout=0) == "b done"


def test_a_failing_job_fails_its_future_only() -> None:
    q, log = BetweenTicks(), []
    bad, good = q.submit(_job(log, "bad", 1, fail=True)), q.submit(_job(log, "good", 1))
    while q.run():
        pass
    with pytest.raises(ValueError, match="bad broke"):
        bad.result(timeout=0)
    assert good.result(timeout=0) == "good done"


def test_a_job_cancelled_before_it_starts_never_runs() -> None:
    q, log = BetweenTicks(), []
    fut = q.submit(_job(log, "gone", 2))
    assert fut.cancel()
    assert not q.run() and log == [] and len(q) == 0
    assert not q.run()
