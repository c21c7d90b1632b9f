"""The routing tick: snapshot in, the optimal capacitated assignment out.

validate -> eligibility + retrieval (numba) -> score candidates -> value -> solve -> result.
``Router`` holds only immutable state (config, scorer), so one instance serves many threads;
everything a tick needs is local to the call. Compilation and model loading happen in the
constructor, never inside a tick. The scorer and its model version are one :class:`Loaded`
reference that a tick reads once, so :meth:`Router.swap` (``assign.deploy.HotSwap``) can
replace them between ticks while in-flight ticks finish on the version they started with.
"""
from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Generator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from assign import parallel
from assign.between import BetweenTicks
from assign.candidates import AgentTerms, ContactTerms, find_candidates
from assign.config import SOLVERS as CONFIG_SOLVERS
from assign.config import RouterConfig
from assign.errors import AssignError, InputError, SolverError
from assign.result import (
    BELOW_THRESHOLD,
    NO_CAPACITY,
    NO_ELIGIBLE_AGENT,
    Alternative,
    Assignment,
    TickResult,
    Unassigned,
)
from assign.schema import CHANNELS, Snapshot, parse_snapshot
from assign.scorer import Prior, Scorer, SkillScorer
from assign.smalltick import all_eligible
from assign.solve import SOLVERS, Problem, Solution
from assign.solve import value as pair_value
from assign.solve.problem import InfeasibleAnswer
from assign.values import resolve_values

_N_CH = len(CHANNELS)


@dataclass(frozen=True, eq=False)
class Loaded:
    """The scorer a tick uses and the model version it reports, swapped as one reference."""

    scorer: Scorer
    model_version: str


class Router:
    """Load once, then ``tick(snapshot)`` every micro-batch window.

    >>> from assign.workload import synthetic_snapshot
    >>> result = Router().tick(synthetic_snapshot(n_contacts=20, n_agents=10, seed=1))
    >>> result.solver, len(result.assignments) + len(result.unassigned)
    ('flow', 20)
    """

    def __init__(self, *, scorer: Scorer | None = None, config: RouterConfig | None = None, live: Any = None,
                 sink: Any = None, explore: Any = None, model_version: str = "unversioned") -> None:
        """``live`` (:class:`assign.learn.LiveEstimates`), ``sink`` (:class:`assign.learn.LogSink`)
        and ``explore`` (:class:`assign.learn.Explore`) turn on learning while routing
        (``assign.learn``); without them a tick is exactly the plain one."""
        self._swap_lock = threading.Lock()
        self._between = BetweenTicks()
        self._active = Loaded(scorer=scorer if scorer is not None else SkillScorer(), model_version=str(model_version))
        self.config: RouterConfig = config if config is not None else RouterConfig()
        self.live, self.sink, self.explore = live, sink, explore
        self._tick_no = itertools.count()
        self._pending: list[Future] = []
        self._pending_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1) if explore is not None and sink is not None else None
        if explore is not None:  # where the exploring draw starts shrinking (assign.learn.explore.StepHint)
            from assign.learn.explore import StepHint

            self._step_hint = StepHint(explore.shrink)
        if not isinstance(self.scorer, Scorer):
            raise TypeError(f"scorer must be an assign.scorer.Scorer (subclass it and override score_pairs), "
                            f"got {type(self.scorer).__name__}")
        self._warm_up()

    @property
    def scorer(self) -> Scorer:
        return self._active.scorer

    @property
    def model_version(self) -> str:
        return self._active.model_version

    def active(self) -> Loaded:
        """The scorer and model version a tick starting now would use (read once per tick)."""
        return self._active

    def swap(self, scorer: Scorer, *, model_version: str) -> Loaded:
        """Make ``scorer`` (warmed up and checked by the caller: ``assign.deploy.HotSwap``) the
        one later ticks use; one reference assignment, so no tick sees half a swap. Returns
        what it replaced."""
        if not isinstance(scorer, Scorer):
            raise TypeError(f"scorer must be an assign.scorer.Scorer, got {type(scorer).__name__}")
        with self._swap_lock:
            old, self._active = self._active, Loaded(scorer=scorer, model_version=str(model_version))
        return old

    def defer(self, job: Generator[None, None, Any]) -> Future:
        """Queue ``job`` (a generator; each ``yield`` ends a step) to run on the ticking thread
        between ticks, one step per :meth:`run_deferred` (:mod:`assign.between`; how
        ``HotSwap.load(..., defer=True)`` checks a new version without slowing a tick)."""
        return self._between.submit(job)

    def run_deferred(self) -> bool:
        """Run one step of deferred work, if any: a tick loop calls this between ticks (a
        window loop, after its tick; back-to-back ticks delay the next tick by the step).
        True when a step ran."""
        return self._between.run()

    def _warm_up(self) -> None:
        """Compile every numba kernel and let the scorer load, on a tiny snapshot."""
        from assign.workload import synthetic_snapshot

        self.scorer.warm_up()
        snap = synthetic_snapshot(n_contacts=6, n_agents=4, seed=0)
        for prune in (False, True):
            self._tick(snap, budget_ms=None, values=None, explain=False, force_prune=prune)
        tiny = Problem(n_contacts=2, contact=[0, 1], resource=[0, 0], value=[1.0, 2.0], capacity=[1])
        try:  # OR-Tools loads here, not in the first tick the certified shortcut declines
            import ortools.graph.python.min_cost_flow  # noqa: F401
        except ImportError:  # pragma: no cover - a core dependency; solve_flow reports it
            pass
        for name in sorted({"greedy", self.config.solver} & {"greedy", "auction"}):  # numba kernels: compiled here,
            SOLVERS[name](tiny)  # (or loaded from numba's cache), never in a tick

    def tick(self, snapshot: Snapshot | Mapping[str, Any], *, budget_ms: float | None = None,
             values: Any = None, explain: bool = False) -> TickResult:
        """Assign the snapshot's contacts. ``values`` (pairs ``contact_id, agent_id, value``)
        replaces eligibility and scoring: the listed pairs are the only candidates, with exactly
        those values. ``budget_ms`` overrides the config's time budget. Bad input raises
        :class:`~assign.errors.SnapshotError`; a scorer or solver failure still answers, with
        ``fallback`` set."""
        if budget_ms is not None and not budget_ms > 0:  # NaN included
            raise InputError([f"budget_ms: must be > 0, got {budget_ms}"], what="tick option")
        if self.live is not None or self.sink is not None or self.explore is not None:
            from assign.learn.tick import learning_tick

            return learning_tick(self, snapshot, budget_ms=budget_ms, values=values, explain=explain)
        return self._tick(snapshot, budget_ms=budget_ms, values=values, explain=explain, force_prune=None)

    def tick_rows(self, snapshot: Snapshot, *, budget_ms: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(contact_index, agent_index)`` of ``tick(snapshot, budget_ms=budget_ms)``, the
        same rows, without building the result's per-contact records: for the simulator's
        policies, which read only the rows (a routed day is thousands of tiny ticks)."""
        if budget_ms is not None and not budget_ms > 0:  # NaN included
            raise InputError([f"budget_ms: must be > 0, got {budget_ms}"], what="tick option")
        if self.live is not None or self.sink is not None or self.explore is not None:
            res = self.tick(snapshot, budget_ms=budget_ms)
            return res.contact_index, res.agent_index
        t_start = time.perf_counter()
        budget = budget_ms if budget_ms is not None else self.config.budget_ms
        tp = self._build(snapshot, values=None, clock=_Clock(t_start, {}), force_prune=None, active=self._active)
        arcs = self._solve(tp.problem, budget=budget, t_start=t_start, reasons=list(tp.reasons)).arcs
        return tp.c_order[tp.rows[arcs]], tp.a_order[tp.cols[arcs]]

    def observe(self, outcomes: Any) -> None:
        """Outcomes that became known (a frame of ``assign.learn.logs.OUTCOME_COLUMNS``): fold
        them into the live estimates (later ticks see the new version) and log them."""
        if self.live is None and self.sink is None:
            raise ValueError("Router.observe needs a router built with live= or sink=")
        from assign.learn.logs import check_outcomes

        frame = check_outcomes(outcomes)
        if self.live is not None:
            self.live.observe(frame, checked=True)
        if self.sink is not None:
            self.sink.outcomes(frame)

    def flush(self) -> None:
        """Wait until every off-path propensity estimate has reached the sink."""
        with self._pending_lock:
            pending, self._pending = self._pending, []
        for f in pending:
            f.result()

    # ------------------------------------------------------------------ the pipeline

    def problem(self, snapshot: Snapshot | Mapping[str, Any], *, values: Any = None) -> TickProblem:
        """Everything before the solve: candidates, values and the solver's :class:`Problem`.
        For baselines and analysis that want to solve the same problem another way."""
        return self._build(snapshot, values=values, clock=_Clock(time.perf_counter(), {}), force_prune=None,
                           active=self._active)

    def _tick(self, snapshot, *, budget_ms, values, explain, force_prune, active: Loaded | None = None) -> TickResult:
        t_start = time.perf_counter()
        active = active if active is not None else self._active  # read once: the whole tick uses this version
        clock = _Clock(t_start, {})
        budget = budget_ms if budget_ms is not None else self.config.budget_ms
        tp = self._build(snapshot, values=values, clock=clock, force_prune=force_prune, active=active)
        reasons = list(tp.reasons)
        solution = self._solve(tp.problem, budget=budget, t_start=t_start, reasons=reasons)
        clock.lap("solve")
        result = self._result(tp, solution, reasons, clock.out, explain=explain, model_version=active.model_version)
        clock.out["total"] = (time.perf_counter() - t_start) * 1e3
        return result

    def _build(self, snapshot, *, values, clock: _Clock, force_prune, active: Loaded) -> TickProblem:
        """Everything before the solve, its row kernels on ``config.threads`` threads (:mod:`assign.parallel`)."""
        with parallel.using(self.config.threads):
            return self._build_in(snapshot, values=values, clock=clock, force_prune=force_prune, active=active)

    def _build_in(self, snapshot, *, values, clock: _Clock, force_prune, active: Loaded) -> TickProblem:
        cfg, scorer = self.config, active.scorer
        if not isinstance(snapshot, Snapshot):
            snapshot = parse_snapshot(snapshot)
        clock.lap("validate")
        ordered = snapshot.in_id_order()
        c, a = ordered.contacts, ordered.agents
        c_order, a_order = ordered.contact_order, ordered.agent_order
        aging_c = pair_value.aging(urgency=c.urgency, waited_s=c.waited_s, config=cfg)
        fair_a = pair_value.fairness(idle_s=a.idle_s, config=cfg)
        free, chan = a.free, c.channel
        reasons: list[str] = []

        if values is None:
            prune = (force_prune if force_prune is not None
                     else snapshot.n_contacts * snapshot.n_agents > cfg.prune_min_pairs)
            if prune or not cfg.small_tick:
                cands = find_candidates(
                    contacts=ContactTerms.of(c, term=cfg.w_aging * aging_c),
                    agents=AgentTerms.of(a, term=cfg.w_fairness * fair_a),
                    prior=self._prior(snapshot, c_order, a_order, scorer),
                    min_proficiency=cfg.min_proficiency, require_language=cfg.require_language,
                    w_score=cfg.w_score, top_k=cfg.top_k, prune=prune)
            else:  # nothing to rank: every eligible pair, no prior (assign.smalltick)
                cands = all_eligible(contacts=c, agents=a, free=free, min_proficiency=cfg.min_proficiency,
                                     require_language=cfg.require_language)
            clock.lap("retrieve")
            rows, cols, skilled = cands.contact, cands.agent, cands.skilled
            score = self._score(snapshot, c_order[rows], a_order[cols], reasons,
                                proficiency=lambda: a.skill[cols, c.intent[rows]], scorer=scorer)
            clock.lap("score")
            parts_aging, parts_fair = aging_c[rows], fair_a[cols]
            val = pair_value.combine(score=score, aging=parts_aging, fairness=parts_fair, config=cfg)
            n_eligible = cands.n_eligible
        else:
            rows, cols, skilled, score = _external_pairs(snapshot, values, c_order, a_order, free, chan)
            parts_aging, parts_fair = np.zeros_like(score), np.zeros_like(score)
            val = score
            n_eligible = len(rows)
            clock.lap("score")

        with_room = np.zeros(snapshot.n_contacts, dtype=bool)
        with_room[rows] = True
        if cfg.threshold is not None:
            ok = val >= cfg.threshold
            rows, cols, val, score = rows[ok], cols[ok], val[ok], score[ok]
            parts_aging, parts_fair = parts_aging[ok], parts_fair[ok]
        clock.lap("value")
        problem = Problem(n_contacts=snapshot.n_contacts, contact=rows, resource=cols * _N_CH + chan[rows],
                          value=val, capacity=free.reshape(-1))
        return TickProblem(snapshot=snapshot, problem=problem, c_order=c_order, a_order=a_order, rows=rows,
                           cols=cols, score=score, aging=parts_aging, fairness=parts_fair, skilled=skilled,
                           with_room=with_room, n_eligible=int(n_eligible), reasons=tuple(reasons))

    def _prior(self, snapshot: Snapshot, c_order: np.ndarray, a_order: np.ndarray,
               scorer: Scorer | None = None) -> Prior:
        """The scorer's cheap estimate for retrieval (rows in canonical contact and agent
        order); plain proficiency when the scorer has none or gives an unusable one."""
        prior = (scorer if scorer is not None else self._active.scorer).prior(snapshot)
        if (isinstance(prior, Prior) and prior.agent_intent.shape == snapshot.agents.skill.shape
                and np.isfinite(prior.agent_intent).all()):
            w, t = prior.contact_weight, prior.contact_tables
            shape = None if w is None else (w.shape[-1], *prior.agent_intent.shape)
            if w is not None and t is not None and (
                    w.ndim != 2 or w.shape[0] != snapshot.n_contacts or t.shape != shape
                    or not np.isfinite(w).all() or not np.isfinite(t).all()):
                w = t = None  # an unusable contact part: the table alone
            return Prior(agent_intent=prior.agent_intent[a_order], style_bonus=prior.style_bonus,
                         sentiment_coef=prior.sentiment_coef, contact_weight=None if w is None else w[c_order],
                         contact_tables=None if t is None else t[:, a_order])
        return Prior(agent_intent=snapshot.agents.skill[a_order])

    def _score(self, snapshot: Snapshot, ci: np.ndarray, ai: np.ndarray, reasons: list[str], *,
               proficiency: Callable[[], np.ndarray], scorer: Scorer) -> np.ndarray:
        """The scorer's values for the candidates; on failure, ``proficiency()``, flagged."""
        if len(ci) == 0:
            return np.zeros(0)
        try:
            s = np.asarray(scorer.score_pairs(snapshot, contact_idx=ci, agent_idx=ai), dtype=np.float64)
            if s.shape != ci.shape:
                raise AssignError(f"returned shape {s.shape}, expected {ci.shape}")
            if not np.isfinite(s).all():
                raise AssignError(f"returned {int((~np.isfinite(s)).sum())} non-finite values")
            return s
        except Exception as err:  # a failed scorer must not fail the tick
            reasons.append(f"scorer {scorer.name} failed ({err}); proficiency used")
            return proficiency().astype(np.float64)

    def _solve(self, problem: Problem, *, budget: float | None, t_start: float,
               reasons: list[str]) -> Solution:
        """The configured solver, then the exact alternative, then greedy; greedy at once when
        the budget is nearly spent."""
        chain = [self.config.solver] + [s for s in CONFIG_SOLVERS if s != self.config.solver]
        if budget is not None:
            left = budget - (time.perf_counter() - t_start) * 1e3
            if left < self.config.greedy_margin_ms and chain[0] != "greedy":
                reasons.append(f"time budget: {left:.1f} ms left of {budget:g} ms; greedy used")
                chain = ["greedy"]
        for name in chain:
            try:
                if name == "flow" and not self.config.small_tick:
                    sol = SOLVERS[name](problem, shortcut=False)  # the general path, for comparisons
                else:
                    sol = SOLVERS[name](problem)
                problem.check(sol.arcs)
                return sol
            except InfeasibleAnswer:
                raise  # a solver bug, never a routine fallback
            except (SolverError, MemoryError) as err:
                reasons.append(f"solver {name} failed: {err}")
        raise SolverError("every solver failed: " + "; ".join(reasons))  # greedy cannot fail

    def _result(self, tp: TickProblem, solution: Solution, reasons: list[str], timings: dict[str, float], *,
                explain: bool, model_version: str) -> TickResult:
        snapshot, rows, cols = tp.snapshot, tp.rows, tp.cols
        c_ids, a_ids = snapshot.contacts.ids, snapshot.agents.ids
        c_order, a_order, val = tp.c_order, tp.a_order, tp.problem.value
        arcs = solution.arcs
        assigned_rows = rows[arcs]
        # whole columns to Python objects at once (tolist), not one numpy scalar at a time
        assignments = tuple(
            Assignment(contact_id=c, agent_id=a, value=v, score=s, aging=g, fairness=f)
            for c, a, v, s, g, f in zip(c_ids[c_order[assigned_rows]].tolist(), a_ids[a_order[cols[arcs]]].tolist(),
                                        val[arcs].astype(float).tolist(), tp.score[arcs].astype(float).tolist(),
                                        tp.aging[arcs].astype(float).tolist(),
                                        tp.fairness[arcs].astype(float).tolist()))
        served = np.zeros(snapshot.n_contacts, dtype=bool)
        served[assigned_rows] = True
        has_arc = np.zeros(snapshot.n_contacts, dtype=bool)
        has_arc[rows] = True
        left = np.flatnonzero(~served)
        reasons_left = np.where(~tp.skilled[left], NO_ELIGIBLE_AGENT,
                                np.where(tp.with_room[left] & ~has_arc[left], BELOW_THRESHOLD, NO_CAPACITY))
        unassigned = [Unassigned(contact_id=c, reason=str(why))
                      for c, why in zip(c_ids[c_order[left]].tolist(), reasons_left.tolist())]
        explanations = _explain(tp, solution, k=self.config.explain_k) if explain else None
        return TickResult(
            snapshot_id=snapshot.snapshot_id, assignments=assignments, unassigned=tuple(unassigned),
            objective=float(val[arcs].sum()), solver=solution.solver, fallback=bool(reasons),
            fallback_reason="; ".join(reasons) or None, timings_ms=timings,
            contact_index=c_order[assigned_rows], agent_index=a_order[cols[arcs]],
            n_candidates=tp.n_eligible, explanations=explanations, model_version=model_version)


def _external_pairs(snapshot: Snapshot, values: Any, c_order: np.ndarray, a_order: np.ndarray, free: np.ndarray,
                    chan: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Caller-given pair values as canonical (rows, cols, skilled, value), pairs without
    room dropped, sorted by row then column."""
    c_rank = np.empty_like(c_order)
    c_rank[c_order] = np.arange(len(c_order))
    a_rank = np.empty_like(a_order)
    a_rank[a_order] = np.arange(len(a_order))
    ci, ai, v = resolve_values(snapshot, values)
    rows, cols = c_rank[ci], a_rank[ai]
    skilled = np.zeros(snapshot.n_contacts, dtype=bool)
    skilled[rows] = True
    has_room = free[cols, chan[rows]] > 0
    rows, cols, v = rows[has_room], cols[has_room], v[has_room]
    order = np.lexsort((cols, rows))
    return rows[order], cols[order], skilled, v[order]


@dataclass(frozen=True, eq=False)
class TickProblem:
    """A tick up to the solve: the snapshot, its canonical orders, the candidate arcs with
    their value parts (arc k joins canonical contact ``rows[k]`` and agent ``cols[k]``)."""

    snapshot: Snapshot
    problem: Problem
    c_order: np.ndarray
    a_order: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    score: np.ndarray
    aging: np.ndarray
    fairness: np.ndarray
    skilled: np.ndarray
    with_room: np.ndarray
    n_eligible: int
    reasons: tuple[str, ...]


class _Clock:
    """Stage timings in milliseconds."""

    def __init__(self, t0: float, out: dict[str, float]) -> None:
        self.last, self.out = t0, out

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.out[name] = (now - self.last) * 1e3
        self.last = now


def _explain(tp: TickProblem, solution: Solution, *, k: int) -> dict[str, tuple[Alternative, ...]]:
    """Each contact's best candidates that were not chosen, and why each lost."""
    problem, rows, cols, val = tp.problem, tp.rows, tp.cols, tp.problem.value
    c_ids, a_ids = tp.snapshot.contacts.ids, tp.snapshot.agents.ids
    c_order, a_order, score, fair = tp.c_order, tp.a_order, tp.score, tp.fairness
    chosen_of_row = {int(rows[x]): int(x) for x in solution.arcs}
    used = np.bincount(problem.resource[solution.arcs], minlength=problem.n_resources)
    takers: dict[int, list[str]] = {}
    for x in solution.arcs:
        takers.setdefault(int(problem.resource[x]), []).append(c_ids[c_order[rows[x]]])
    out: dict[str, tuple[Alternative, ...]] = {}
    order = np.lexsort((cols, -val, rows))
    starts = np.searchsorted(rows[order], np.arange(problem.n_contacts))
    ends = np.searchsorted(rows[order], np.arange(problem.n_contacts), side="right")
    for r in range(problem.n_contacts):
        mine = chosen_of_row.get(r)
        alts = []
        for x in order[starts[r]:ends[r]]:
            if x == mine:
                continue
            res = int(problem.resource[x])
            if used[res] >= problem.capacity[res]:
                why = f"agent full: its free slot went to {', '.join(sorted(takers.get(res, [])))}"
            elif mine is not None:
                why = f"value {val[x]:.4f} vs chosen {val[mine]:.4f}"
            else:
                why = "serving it would displace a contact worth more in total"
            alts.append(Alternative(agent_id=a_ids[a_order[cols[x]]], value=float(val[x]),
                                    score=float(score[x]), fairness=float(fair[x]), why_not=why))
            if len(alts) == k:
                break
        out[c_ids[c_order[r]]] = tuple(alts)
    return out
