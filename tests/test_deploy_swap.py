"""The hot swap: ticks in several threads during repeated swaps never fail or mix versions;
a failed load keeps the old version and says why; decisions carry the version."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from assign.deploy import HotSwap, measure_swap_pause
from assign.learn.logs import MemorySink
from assign.router import Router
from assign.scorer import Prior, Scorer
from assign.workload import synthetic_snapshot


class Const(Scorer):
    """Scores every pair ``k`` (so a tick's scores name the version); slow enough to overlap swaps.
    The retrieval prior carries ``k`` too, so a tick mixing prior and scores of two versions
    would show."""

    def __init__(self, k: float, *, delay_s: float = 0.0) -> None:
        self.k, self.delay_s, self.name = float(k), delay_s, f"const{k:g}"

    def score_pairs(self, snapshot, *, contact_idx, agent_idx):
        if self.delay_s:
            time.sleep(self.delay_s)
        return np.full(len(contact_idx), self.k)

    def prior(self, snapshot):
        return Prior(agent_intent=np.full(snapshot.agents.skill.shape, self.k))


class Broken(Const):
    def score_pairs(self, snapshot, *, contact_idx, agent_idx):
        return np.full(len(contact_idx), np.nan)


class Failing(Const):
    def warm_up(self) -> None:
        raise RuntimeError("model file truncated")


SNAP = synthetic_snapshot(n_contacts=40, n_agents=20, seed=3)


def test_ticks_in_threads_during_swaps_never_fail_nor_mix() -> None:
    router = Router(scorer=Const(1, delay_s=0.002), model_version="v1")
    swap = HotSwap(router)
    results, errors, stop = [], [], threading.Event()

    def ticker() -> None:
        while not stop.is_set():
            try:
                results.append(router.tick(SNAP))
            except Exception as err:
                errors.append(err)

    threads = [threading.Thread(target=ticker) for _ in range(3)]
    for t in threads:
        t.start()
    outcomes = []
    for i in range(2, 22):
        outcomes.append(swap.load(Const(i, delay_s=0.002), canary=SNAP, version=f"v{i}"))
        time.sleep(0.005)
    stop.set()
    for t in threads:
        t.join()
    assert not errors
    assert all(o.ok for o in outcomes) and router.model_version == "v21"
    versions = set()
    for r in results:
        assert not r.fallback
        k = {a.score for a in r.assignments}
        assert len(k) == 1, "a tick mixed scorers"
        assert r.model_version == f"v{int(k.pop()):d}", "a tick reported another version than it scored with"
        versions.add(r.model_version)
    assert len(versions) >= 3  # the ticks really ran across swaps


def test_failed_loads_keep_the_old_version_and_say_why(tmp_path) -> None:
    router = Router(scorer=Const(1), model_version="v1")
    swap = HotSwap(router)
    bad = swap.load(Broken(2), canary=SNAP, version="v2")
    assert not bad and bad.version == "v1" and "canary failed" in bad.reason and "non-finite" in bad.reason
    bad = swap.load(Failing(3), canary=SNAP, version="v3")
    assert not bad and "model file truncated" in bad.reason
    bad = swap.load(tmp_path / "nothing-here", canary=SNAP)
    assert not bad and "not a model directory" in bad.reason
    assert router.model_version == "v1" and router.tick(SNAP).model_version == "v1"
    assert {a.score for a in router.tick(SNAP).assignments} == {1.0}


def test_decisions_and_results_carry_the_version_after_a_swap() -> None:
    sink = MemorySink()
    router = Router(scorer=Const(1), sink=sink, model_version="v1")
    assert router.tick(SNAP).model_version == "v1"
    assert HotSwap(router).load(Const(2), canary=SNAP, version="v2").ok
    res = router.tick(SNAP)
    assert res.model_version == "v2" and res.to_dict()["model_version"] == "v2"
    assert {d.model_version for d in res.decisions} == {"v2"}
    logged = sink.decision_frame()
    assert set(logged["model_version"]) == {"v1", "v2"}
    assert int((logged["model_version"] == "v2").sum()) == len(res.decisions)


def test_swap_pause_is_measured_over_overlapping_ticks() -> None:
    router = Router(scorer=Const(1), model_version="v1")
    swap = HotSwap(router)
    n = iter(range(2, 100))
    pause = measure_swap_pause(router, SNAP, swap=lambda: swap.load(Const(next(n)), canary=SNAP), n_swaps=3,
                               min_ticks=20, gap_s=0.01)
    assert pause.n_swaps == 3 and pause.swaps_ok == 3 and pause.n_ticks >= 20
    assert pause.n_during_swap >= 1 and pause.median_ms > 0
    assert pause.ratio == pytest.approx(pause.longest_during_swap_ms / pause.median_ms)


def test_a_load_pauses_the_cyclic_collector_and_restores_its_state():
    import gc

    from assign.deploy.swap import _collector_paused

    seen = []
    for start in (True, False):
        (gc.enable if start else gc.disable)()
        with _collector_paused():
            seen.append(gc.isenabled())
        assert gc.isenabled() is start
    gc.enable()
    assert seen == [False, False]


def test_swap_pause_at_a_tick_cadence_spaces_the_ticks(monkeypatch) -> None:
    import assign.deploy.swap as swap_mod

    router = Router(scorer=Const(1), model_version="v1")
    seen = []
    real = swap_mod._pause
    monkeypatch.setattr(swap_mod, "_pause", lambda ticks, *a: seen.append(list(ticks)) or real(ticks, *a))
    pause = measure_swap_pause(router, SNAP, swap=lambda: time.sleep(0.05) or True, n_swaps=2, min_ticks=8,
                               gap_s=0.01, every_s=0.03)
    starts = np.array([s for s, *_ in seen[0]])
    assert pause.n_ticks >= 8 and pause.n_during_swap >= 1
    assert starts[-1] - starts[0] >= 0.03 * (len(starts) - 2)  # never ahead of the cadence (bar the first slot)


def test_swap_pause_by_step_splits_the_overlapping_ticks() -> None:
    router = Router(scorer=Const(1), model_version="v1")
    marks = []

    def swap() -> bool:
        a = time.perf_counter()
        time.sleep(0.03)
        b = time.perf_counter()
        time.sleep(0.03)
        marks.extend([("first", a, b), ("second", b, time.perf_counter())])
        return True

    p = measure_swap_pause(router, SNAP, swap=swap, n_swaps=2, min_ticks=10, gap_s=0.01, steps=lambda: marks)
    assert set(p.by_step) == {"first", "second"} and p.to_dict()["by_step"]["first"]["n_ticks"] >= 1
    assert max(s["longest_ms"] for s in p.by_step.values()) <= p.longest_during_swap_ms
    assert "by_step" not in measure_swap_pause(router, SNAP, swap=lambda: True, n_swaps=1, min_ticks=3).to_dict()


class Marked(Const):
    """Records the thread its warm-up ran on."""

    def warm_up(self) -> None:
        self.warmed_on = threading.get_ident()


def _ticking(router, stop, results, errors) -> None:
    while not stop.is_set():
        try:
            results.append((time.perf_counter(), router.tick(SNAP), time.perf_counter()))
            router.run_deferred()
        except Exception as err:
            errors.append(err)


def test_deferred_swaps_run_between_ticks_on_the_ticking_threads() -> None:
    router = Router(scorer=Const(1, delay_s=0.001), model_version="v1")
    swap = HotSwap(router)
    results, errors, stop = [], [], threading.Event()
    threads = [threading.Thread(target=_ticking, args=(router, stop, results, errors)) for _ in range(3)]
    for t in threads:
        t.start()
    outcomes, warmed, spans = [], [], []
    for i in range(2, 12):
        new = Marked(i, delay_s=0.001)
        outcomes.append(swap.load(new, canary=SNAP, version=f"v{i}", defer=True, wait_s=10))
        warmed.append(new.warmed_on)
        spans += [(a, b) for n, a, b in swap.last_steps if n != "load"]
    stop.set()
    for t in threads:
        t.join()
    assert not errors and all(o.ok for o in outcomes) and router.model_version == "v11"
    assert set(warmed) <= {t.ident for t in threads} and threading.get_ident() not in warmed
    for _, r, _ in results:
        k = {a.score for a in r.assignments}
        assert len(k) == 1 and r.model_version == f"v{int(k.pop()):d}"
    assert len({r.model_version for _, r, _ in results}) >= 3
    # a step runs between the ticks of the thread that runs it; one ticking thread: no tick overlaps a step
    solo = Router(scorer=Const(1), model_version="v1")
    results, stop = [], threading.Event()
    t = threading.Thread(target=_ticking, args=(solo, stop, results, errors))
    t.start()
    sw = HotSwap(solo)
    assert all(sw.load(Const(i), canary=SNAP, version=f"v{i}", defer=True, wait_s=10).ok for i in (2, 3, 4))
    steps = [(a, b) for n, a, b in sw.last_steps if n in ("wrap", "warm-up", "canary")]
    stop.set()
    t.join()
    assert len(steps) == 3 and not any(s < b and e > a for s, _, e in results for a, b in steps)


def test_a_deferred_swap_no_loop_runs_keeps_the_old_version_and_says_why() -> None:
    router = Router(scorer=Const(1), model_version="v1")
    res = HotSwap(router).load(Const(2), canary=SNAP, version="v2", defer=True, wait_s=0.05)
    assert not res and res.version == "v1" and "no tick loop ran the deferred checks" in res.reason
    assert not router.run_deferred() and router.model_version == "v1"  # called off: never swaps later


def test_a_deferred_swap_that_fails_its_checks_keeps_the_old_version() -> None:
    router = Router(scorer=Const(1), model_version="v1")
    stop, results, errors = threading.Event(), [], []
    t = threading.Thread(target=_ticking, args=(router, stop, results, errors))
    t.start()
    swap = HotSwap(router)
    bad = swap.load(Broken(2), canary=SNAP, version="v2", defer=True, wait_s=10)
    worse = swap.load(Failing(3), canary=SNAP, version="v3", defer=True, wait_s=10)
    stop.set()
    t.join()
    assert not errors and not bad and "non-finite" in bad.reason and "model file truncated" in worse.reason
    assert router.model_version == "v1" and {r.model_version for _, r, _ in results} == {"v1"}


def test_swap_pause_reports_the_deferred_work_between_ticks() -> None:
    router = Router(scorer=Const(1), model_version="v1")
    swap = HotSwap(router)
    n = iter(range(2, 100))
    p = measure_swap_pause(router, SNAP, swap=lambda: swap.load(Const(next(n)), canary=SNAP, defer=True, wait_s=10),
                           n_swaps=2, min_ticks=10, gap_s=0.01)
    assert p.swaps_ok == 2 and p.n_between_steps == 2 * 3  # wrap, warm-up, canary (+ swap) per load
    assert p.between_ticks_ms > 0 and p.between_ticks_ratio == pytest.approx(p.between_ticks_ms / p.median_ms)
    assert 0 <= p.n_preempted <= p.n_during_swap and 0 <= p.n_waited <= p.n_during_swap


def test_swap_pause_counts_ticks_that_waited_for_the_interpreter() -> None:
    import sys

    if not sys.platform.startswith("linux"):
        pytest.skip("per-thread context switches are read from Linux's getrusage")
    router = Router(scorer=Const(1), model_version="v1")

    def spin() -> bool:  # Python in the swapping thread: the ticks must wait for the GIL now and then
        end = time.perf_counter() + 0.1
        while time.perf_counter() < end:
            pass
        return True

    p = measure_swap_pause(router, SNAP, swap=spin, n_swaps=2, min_ticks=10, gap_s=0.01)
    assert p.n_waited >= 1 and p.n_during_swap >= p.n_waited


def test_swap_pause_counts_collections_inside_the_overlapping_ticks() -> None:
    import gc

    router = Router(scorer=Const(1), model_version="v1")

    class Cycle:
        pass

    def churn(snapshot, *, contact_idx, agent_idx):  # cycles made inside each tick set off collections
        for _ in range(2000):
            c = Cycle()
            c.me = c
        return np.full(len(contact_idx), 1.0)

    router.scorer.score_pairs = churn
    gc.collect()
    p = measure_swap_pause(router, SNAP, swap=lambda: time.sleep(0.05) or True, n_swaps=2, min_ticks=10, gap_s=0.01)
    assert set(p.gc_in_ticks) == {"gen0", "gen1", "gen2"} and p.gc_in_ticks["gen0"] >= 1
    assert p.to_dict()["gc_in_ticks"] == p.gc_in_ticks
