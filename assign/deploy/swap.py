"""A safe hot swap of the model in a running :class:`~assign.router.Router`.

``HotSwap(router).load(target, canary=snapshot)``: load the new version (a registry alias or
version, a model directory, or a ready :class:`~assign.scorer.Scorer`; a model directory is
loaded in a separate process, :class:`~assign.model.offload.LoadWorker`, so that the load's
~0.4 s of Python does not hold the GIL the ticks need), warm it up
(``Scorer.warm_up``: numba compiles here, never in a tick) and validate it on the canary
snapshot off the tick path: a tick with the new scorer must run without a scorer fallback and
every score it produced must be finite. Only then :meth:`Router.swap` replaces the scorer and
model version as one reference between ticks; ticks already running finish on the version
they started with (a tick reads the reference once). A failure at any step keeps the old
version and says why in the :class:`SwapResult`.

``load(..., defer=True)``, for a router that ticks while the load runs: the steps that need
this process's interpreter (scorer built and wrapped, warm-up, canary tick, swap) do not run
in the loading thread, where they would compete with the ticks for the interpreter lock, but
one per gap between ticks on the ticking thread (:meth:`Router.defer`, which the tick loop
serves with :meth:`Router.run_deferred`): no tick is slowed by them; the next tick starts
later by the step instead (:mod:`assign.between`).

:func:`measure_swap_pause` times ticks while swaps run in another thread: the longest tick
that overlapped a swap over the median tick (the living-centre benchmark's ``swap_pause_ms``),
and how long the deferred steps held the tick loop between ticks.
"""
from __future__ import annotations

import contextlib
import functools
import gc
import os
import threading
import time
import weakref
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from assign.router import Loaded, Router
from assign.scorer import Scorer


@dataclass(frozen=True, kw_only=True)
class SwapResult:
    """What a load did: ``ok`` (True when swapped), the version now serving, why."""

    ok: bool
    version: str
    requested: str
    previous: str
    reason: str
    load_ms: float

    def __bool__(self) -> bool:
        return self.ok

    def to_dict(self) -> dict[str, Any]:
        return dict(ok=self.ok, version=self.version, requested=self.requested, previous=self.previous,
                    reason=self.reason, load_ms=round(self.load_ms, 3))


class HotSwap:
    """Loads, warms up, validates and swaps model versions into ``router`` (module doc).

    ``registry`` resolves aliases (``"champion"``) and version ids. A model directory is loaded
    by default as an :class:`~assign.model.scorer.XGBScorer` (``weights``, ``nthread``) in
    :attr:`worker`, a :class:`~assign.model.offload.LoadWorker` process started at the first
    load, when ``isolate`` (on POSIX); in the calling thread when not (the ticks then share the
    GIL with the load). ``loader(path) -> Scorer`` replaces that (it runs in the calling
    thread; it can use a worker too: ``XGBScorer.load(path, worker=...)``). ``wrap(scorer) ->
    Scorer`` wraps what was loaded (e.g. in a learning scorer) before the checks.
    :meth:`close` stops the worker (so does the end of the process).
    """

    def __init__(self, router: Router, *, registry: Any = None, loader: Callable[[Path], Scorer] | None = None,
                 wrap: Callable[[Scorer], Scorer] | None = None, isolate: bool = True, weights: Any = None,
                 nthread: int = 2) -> None:
        from assign.model.offload import LoadWorker

        self.router, self.registry, self.wrap, self.loader = router, registry, wrap, loader
        self.weights, self.nthread = weights, int(nthread)
        self.worker = LoadWorker() if isolate and loader is None and os.name == "posix" else None  # fd passing
        if self.worker is not None:
            weakref.finalize(self, self.worker.close)
        self._lock = threading.Lock()  # one load at a time; ticks never wait on it
        #: ``(step, start, end)`` (``time.perf_counter``) of the last load: "load" (resolve, the
        #: worker's load and its unpickling, in the calling thread; the worker's own steps are in
        #: ``worker.last_steps``), then "wrap" (the scorer built and wrapped), "warm-up" and
        #: "canary": in the calling thread, or between ticks on the ticking thread with ``defer=True``
        self.last_steps: list[tuple[str, float, float]] = []

    def close(self) -> None:
        """Stop the load worker, if any (a later load starts it again)."""
        if self.worker is not None:
            self.worker.close()

    def load(self, target: str | Path | Scorer, *, canary: Any, version: str | None = None, defer: bool = False,
             wait_s: float = 60.0) -> SwapResult:
        """Swap ``target`` in if it loads, warms up and passes the canary; else keep the old one.

        ``defer``: this thread only does the part of the load that leaves the interpreter lock
        free (waiting for the worker, unpickling its boosters in xgboost's C code); the steps
        that need the interpreter (scorer built and wrapped, warm-up, canary tick, swap) are
        queued with :meth:`Router.defer` and run one per gap between ticks by the tick loop
        (:meth:`Router.run_deferred`), so no tick shares the interpreter lock with them. This
        call waits for them, at most ``wait_s`` seconds; then the swap is called off (the old
        version stays, the reason says so): so never call it with ``defer`` from the ticking
        thread itself. With several ticking threads a step runs between the ticks of the thread
        that runs it, alongside the others' ticks. Without ``defer`` every step runs in this thread.

        The cyclic garbage collector is paused for the load: decoding a model in this process
        (``isolate=False`` or a custom loader) allocates hundreds of thousands of short-lived
        objects (freed by reference counting), enough to set off full collections that hold the
        GIL for tens of milliseconds in the middle of a running tick."""
        with _collector_paused():
            return self._load(target, canary=canary, version=version, defer=defer, wait_s=float(wait_s))

    def _load(self, target: str | Path | Scorer, *, canary: Any, version: str | None, defer: bool,
              wait_s: float) -> SwapResult:
        t0 = time.perf_counter()
        with self._lock:
            previous = self.router.model_version
            try:
                make, name = self._resolve(target, version)
            except Exception as err:
                return self._kept(previous, str(target), f"cannot resolve: {type(err).__name__}: {err}", t0)
            self.last_steps = [("load", t0, time.perf_counter())]
            gate = _Gate()
            job = self._checked(make, name=name, canary=canary, previous=previous, t0=t0, gate=gate)
            if not defer:
                for _ in job:  # every step now, in this thread
                    pass
                return gate.result
            fut = self.router.defer(job)
            try:
                return fut.result(timeout=wait_s)
            except FutureTimeout:
                with gate.lock:
                    if gate.result is None:
                        gate.abandoned = True
                        fut.cancel()
                        return self._kept(previous, name, f"no tick loop ran the deferred checks within {wait_s:g} s "
                                                          "(Router.run_deferred between ticks)", t0)
                return gate.result

    def _checked(self, make: Callable[[], Scorer], *, name: str, canary: Any, previous: str, t0: float,
                 gate: _Gate) -> Generator[None, None, SwapResult]:
        """The steps that need the interpreter, one per ``yield``: the scorer built and wrapped,
        warm-up, canary and swap."""
        try:
            a = time.perf_counter()
            scorer = make()
            if self.wrap is not None:
                scorer = self.wrap(scorer)
            self.last_steps.append(("wrap", a, time.perf_counter()))
            yield
            a = time.perf_counter()
            scorer.warm_up()
            self.last_steps.append(("warm-up", a, time.perf_counter()))
            yield
            a = time.perf_counter()
            problems = canary_problems(self.router, scorer, name, canary)
            self.last_steps.append(("canary", a, time.perf_counter()))
        except Exception as err:
            return gate.settle(self._kept(previous, name, f"load or warm-up failed: {type(err).__name__}: {err}", t0))
        if problems:
            return gate.settle(self._kept(previous, name, "canary failed: " + "; ".join(problems), t0))
        with gate.lock:
            if gate.abandoned:
                return self._kept(previous, name, "called off: the load had stopped waiting", t0)
            self.router.swap(scorer, model_version=name)
            gate.result = SwapResult(ok=True, version=name, requested=name, previous=previous, reason="swapped",
                                     load_ms=(time.perf_counter() - t0) * 1e3)
        return gate.result

    def _resolve(self, target: str | Path | Scorer, version: str | None) -> tuple[Callable[[], Scorer], str]:
        """What finishes loading ``target`` (the waiting part done here) and its version name."""
        if isinstance(target, Scorer):
            return (lambda: target), version or target.name
        v = self.registry.resolve(str(target)) if self.registry is not None else None
        if v is not None:  # a registry alias or version first, then a path
            return self._open(self.registry.path(v)), version or v
        path = Path(target)
        if self.registry is not None and not path.exists():
            raise LookupError(f"{str(target)!r} is neither a version nor a set alias of {self.registry}, nor a path")
        return self._open(path), version or path.name

    def _open(self, path: Path) -> Callable[[], Scorer]:
        """Load ``path`` as far as can be done off the ticking thread; returns the rest."""
        if self.loader is not None:
            scorer = self.loader(path)
            return lambda: scorer
        from assign.model.prior import PriorFit
        from assign.model.scorer import ModelDir, ValueWeights, XGBScorer

        prior, weights = PriorFit.load(path), self.weights or ValueWeights()
        # the worker's load: this thread waits without the GIL; unpickling its answer is ~99% xgboost
        # rebuilding boosters in C (ctypes lets go of the GIL; a probe thread kept running): both stay here
        model = (self.worker.load(path, nthread=self.nthread) if self.worker is not None
                 else ModelDir.load(path, nthread=self.nthread))
        return lambda: XGBScorer(model=model, weights=weights, prior_fit=prior)

    def _kept(self, previous: str, requested: str, reason: str, t0: float) -> SwapResult:
        return SwapResult(ok=False, version=previous, requested=requested, previous=previous,
                          reason=f"kept {previous}: {reason}", load_ms=(time.perf_counter() - t0) * 1e3)


@dataclass(eq=False)
class _Gate:
    """Where a deferred swap and a load that stops waiting for it agree on one outcome."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    abandoned: bool = False
    result: SwapResult | None = None

    def settle(self, result: SwapResult) -> SwapResult:
        with self.lock:
            self.result = result
        return result


@contextlib.contextmanager
def _collector_paused():
    """``gc.disable()`` for the block, restoring whatever state the collector was in."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def canary_problems(router: Router, scorer: Scorer, version: str, canary: Any) -> list[str]:
    """Why ``scorer`` must not serve (empty when it may): a plain tick of ``router``'s pipeline
    on the canary with this scorer, off the tick path (no log, no exploration)."""
    res = router._tick(canary, budget_ms=1e9, values=None, explain=False, force_prune=None,
                       active=Loaded(scorer=scorer, model_version=version))
    problems = []
    if res.fallback_reason and "scorer" in res.fallback_reason:
        problems.append(res.fallback_reason)
    scores = np.array([a.score for a in res.assignments], dtype=float)
    if not np.isfinite(scores).all():
        problems.append(f"{int((~np.isfinite(scores)).sum())} non-finite scores")
    if res.n_candidates and not res.assignments and not res.unassigned:
        problems.append("the canary tick answered nothing")
    return problems


@dataclass(frozen=True, kw_only=True)
class SwapPause:
    """Tick times while swaps ran: the longest tick overlapping a swap over the median tick.

    ``between_ticks_ms``: the longest step of deferred work (``HotSwap.load(defer=True)``) run
    between two ticks: back to back, the next tick started that much later (0 when none ran;
    ``between_ticks_ratio``: over the median tick; ``between_ticks_cpu_ms``: the most CPU time
    one step took, which a busy machine hardly changes). ``n_preempted``: ticks overlapping a swap
    during which the OS took the core from the ticking thread (involuntary context switches;
    Linux, else -1); ``n_waited``: those that gave up the core themselves (voluntary context
    switches: waiting for the interpreter lock another thread held, or for I/O): the swap's
    own interference, which a busy machine does not add to; ``longest_unpreempted_ms`` and
    ``ratio_unpreempted``: the ratio over the ticks not preempted (on a busy machine the
    preempted ones measure the machine, not the swap).
    ``gc_in_ticks``: per generation of the cyclic collector, the ticks overlapping a swap in
    which a collection started. ``by_step``: the ratio per named step of the swaps (when ``measure_swap_pause`` got
    ``steps``): which part of a load the slow ticks overlap."""

    longest_during_swap_ms: float
    median_ms: float
    ratio: float
    n_ticks: int
    n_during_swap: int
    n_swaps: int
    swaps_ok: int
    between_ticks_ms: float = 0.0
    between_ticks_ratio: float = 0.0
    between_ticks_cpu_ms: float = 0.0
    n_between_steps: int = 0
    n_preempted: int = -1
    n_waited: int = -1
    longest_unpreempted_ms: float = float("nan")
    ratio_unpreempted: float = float("nan")
    gc_in_ticks: dict[str, int] = field(default_factory=dict)
    by_step: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in self.__dict__.items() if k != "by_step"}
        out["gc_in_ticks"] = dict(self.gc_in_ticks)
        if self.by_step:
            out["by_step"] = {k: {a: (round(b, 4) if isinstance(b, float) else b) for a, b in v.items()}
                              for k, v in self.by_step.items()}
        return out


def measure_swap_pause(router: Router, snapshot: Any, *, swap: Callable[[], Any], n_swaps: int = 3,
                       min_ticks: int = 30, gap_s: float = 0.05, every_s: float = 0.0,
                       steps: Callable[[], Sequence[tuple[str, float, float]]] | None = None) -> SwapPause:
    """Tick ``snapshot`` on this thread while another thread calls ``swap()`` ``n_swaps`` times
    (``gap_s`` apart); at least ``min_ticks`` ticks. Between ticks the loop runs deferred work
    (``router.run_deferred()``, one step per gap, timed). ``every_s`` 0: ticks back to back (the
    worst case: no idle time left for a load); > 0: a tick starts every ``every_s`` seconds
    (as a router in window mode runs them; a tick that overruns its slot is followed at once).
    Returns the longest tick that overlapped a swap call over the median of all ticks; with
    ``steps`` (called once at the end: ``(name, start, end)`` spans in ``time.perf_counter``
    that the swaps recorded, e.g. ``HotSwap.last_steps``), also per step name."""
    spans: list[tuple[float, float]] = []
    oks: list[bool] = []
    done = threading.Event()

    def swapper() -> None:
        for _ in range(n_swaps):
            time.sleep(gap_s)
            s = time.perf_counter()
            oks.append(bool(swap()))
            spans.append((s, time.perf_counter()))
        done.set()

    ticks: list[tuple[float, float, int, int]] = []
    between: list[tuple[float, float]] = []
    for _ in range(3):
        router.tick(snapshot)
    th = threading.Thread(target=swapper, daemon=True)
    collections: list[tuple[int, float]] = []
    gc.callbacks.append(on_gc := functools.partial(_on_gc, collections))
    th.start()
    next_at = time.perf_counter()
    try:
        while not done.is_set() or len(ticks) < min_ticks:
            if every_s > 0:
                time.sleep(max(0.0, next_at - time.perf_counter()))
                next_at = max(next_at + every_s, time.perf_counter())
            c, s = _switches(), time.perf_counter()
            router.tick(snapshot)
            e, c2 = time.perf_counter(), _switches()
            ticks.append((s, e, c2[0] - c[0], c2[1] - c[1]))
            s, c = time.perf_counter(), time.thread_time()
            if router.run_deferred():
                between.append(((time.perf_counter() - s) * 1e3, (time.thread_time() - c) * 1e3))
        th.join()
    finally:
        gc.callbacks.remove(on_gc)
    while router.run_deferred():  # a swap that gave up waiting leaves its steps: they end without swapping
        pass
    pause = replace(_pause(ticks, spans, oks, between), gc_in_ticks=_gc_in_ticks(ticks, spans, collections))
    return pause if steps is None else replace(pause, by_step=_by_step(ticks, steps(), pause.median_ms))


def _overlaps(start: float, end: float, spans: Sequence[tuple[float, float]]) -> bool:
    """Whether the interval ``[start, end)`` overlaps any of ``spans``."""
    return any(start < b and end > a for a, b in spans)


def _on_gc(out: list[tuple[int, float]], phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        out.append((int(info["generation"]), time.perf_counter()))


def _gc_in_ticks(ticks: Sequence[tuple[float, float, int, int]], spans: Sequence[tuple[float, float]],
                 collections: Sequence[tuple[int, float]]) -> dict[str, int]:
    """Per collector generation: ticks overlapping a swap in which a collection of it started."""
    during = [(s, e) for s, e, *_ in ticks if _overlaps(s, e, spans)]
    return {f"gen{g}": sum(any(s <= t < e for g2, t in collections if g2 == g) for s, e in during) for g in range(3)}


def _by_step(ticks: Sequence[tuple[float, float, int, int]], steps: Sequence[tuple[str, float, float]],
             median_ms: float) -> dict[str, dict[str, float]]:
    by_step = {}
    for name in dict.fromkeys(n for n, _, _ in steps):
        mine = [(a, b) for n, a, b in steps if n == name]
        d = np.array([(e - s) * 1e3 for s, e, *_ in ticks if _overlaps(s, e, mine)])
        by_step[name] = {"n_ticks": len(d), "longest_ms": float(d.max()) if len(d) else float("nan"),
                         "ratio": float(d.max()) / median_ms if len(d) and median_ms > 0 else float("nan")}
    return by_step


def _switches() -> tuple[int, int]:
    """Involuntary and voluntary context switches of this thread so far (Linux); -1 where not known."""
    try:
        import resource

        r = resource.getrusage(resource.RUSAGE_THREAD)
        return r.ru_nivcsw, r.ru_nvcsw
    except (ImportError, AttributeError, OSError):
        return -1, -1


def _pause(ticks: Sequence[tuple[float, float, int, int]], spans: Sequence[tuple[float, float]],
           oks: Sequence[bool], between: Sequence[tuple[float, float]] = ()) -> SwapPause:
    dur = np.array([(e - s) * 1e3 for s, e, *_ in ticks])
    during = np.array([_overlaps(s, e, spans) for s, e, *_ in ticks], dtype=bool)
    pre = np.array([k > 0 for _, _, k, _ in ticks], dtype=bool)
    waited = np.array([k > 0 for _, _, _, k in ticks], dtype=bool)
    med = float(np.median(dur))
    longest = float(dur[during].max()) if during.any() else float("nan")
    calm = during & ~pre
    unpre = float(dur[calm].max()) if calm.any() else float("nan")
    known = _switches()[0] >= 0
    most = max((w for w, _ in between), default=0.0)
    return SwapPause(longest_during_swap_ms=longest, median_ms=med, ratio=longest / med if med > 0 else float("nan"),
                     n_ticks=len(dur), n_during_swap=int(during.sum()), n_swaps=len(spans), swaps_ok=int(sum(oks)),
                     between_ticks_ms=most, between_ticks_ratio=most / med if med > 0 else float("nan"),
                     between_ticks_cpu_ms=max((c for _, c in between), default=0.0),
                     n_between_steps=len(between), n_preempted=int((during & pre).sum()) if known else -1,
                     n_waited=int((during & waited).sum()) if known else -1,
                     longest_unpreempted_ms=unpre, ratio_unpreempted=unpre / med if med > 0 else float("nan"))
