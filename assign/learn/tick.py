"""The router's tick when it learns: the plain pipeline plus the pinned live version,
budgeted exploration, the prior-only count and the decisions as data.

Called by :meth:`assign.router.Router.tick` only when the router was built with ``live``,
``sink`` or ``explore``; otherwise the plain tick runs, unchanged.
"""
from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from assign.learn.explore import Drawn, budgeted_draw, propensities, start_steps
from assign.learn.logs import DECISION_COLUMNS
from assign.learn.scorer import LIVE_KEY
from assign.result import Decision, TickResult
from assign.schema import Snapshot, parse_snapshot
from assign.solve import SOLVERS, Solution

if TYPE_CHECKING:
    from assign.router import Router, TickProblem


def learning_tick(router: Router, snapshot: Any, *, budget_ms: float | None, values: Any,
                  explain: bool) -> TickResult:
    from assign.router import _Clock

    t_start = time.perf_counter()
    clock = _Clock(t_start, {})
    if not isinstance(snapshot, Snapshot):
        snapshot = parse_snapshot(snapshot)
    if router.live is not None:  # one consistent version for the whole tick
        snapshot = replace(snapshot, meta={**snapshot.meta, LIVE_KEY: router.live.current()})
    budget = budget_ms if budget_ms is not None else router.config.budget_ms
    active = router.active()  # read once: the whole tick, its decisions and their log use this version
    tp = router._build(snapshot, values=values, clock=clock, force_prune=None, active=active)
    reasons = list(tp.reasons)
    solution = router._solve(tp.problem, budget=budget, t_start=t_start, reasons=reasons)
    clock.lap("solve")
    drawn, rng = None, None
    if router.explore is not None and values is None and tp.problem.n_arcs:
        rng = np.random.default_rng([int(router.explore.seed), next(router._tick_no)])
        drawn = _explore(router, tp, solution, rng, active.scorer)
        if drawn is not None:
            solution = Solution(arcs=np.sort(drawn.arcs), solver=solution.solver, optimal=solution.optimal)
        clock.lap("explore")
    result = router._result(tp, solution, reasons, clock.out, explain=explain, model_version=active.model_version)
    decisions = _decisions(tp, solution, drawn, active.model_version)
    result = replace(result, n_prior_only=_prior_only(active.scorer, tp), decisions=decisions)
    clock.out["total"] = (time.perf_counter() - t_start) * 1e3
    if router.sink is not None:
        if drawn is None or router._pool is None:
            router.sink.decisions(decision_frame(decisions))
        else:
            fut = router._pool.submit(_log_with_propensities, router, tp, drawn, decisions, rng, active.scorer)
            with router._pending_lock:
                router._pending.append(fut)
    return result


def _pairs(tp: TickProblem) -> tuple[np.ndarray, np.ndarray]:
    return tp.c_order[tp.rows], tp.a_order[tp.cols]


def _explore(router: Router, tp: TickProblem, exact: Solution, rng: np.random.Generator,
             scorer) -> Drawn | None:
    ci, ai = _pairs(tp)
    draw = scorer.posterior_draw(tp.snapshot, contact_idx=ci, agent_idx=ai, rng=rng)
    if draw is None:
        return None
    hint = router._step_hint
    drawn = budgeted_draw(tp.problem, exact=exact.arcs, score=tp.score, draw=np.asarray(draw)[0],
                          w_score=router.config.w_score, budget=router.explore.budget,
                          shrink=start_steps(router.explore.shrink, hint.value),
                          solve=lambda p: SOLVERS["flow"](p).arcs)
    hint.update(drawn)
    return drawn


def _prior_only(scorer, tp: TickProblem) -> int:
    if not len(tp.rows):
        return 0
    ci, ai = _pairs(tp)
    flags = scorer.prior_only(tp.snapshot, contact_idx=ci, agent_idx=ai)
    return 0 if flags is None else int(np.count_nonzero(flags))


def _decisions(tp: TickProblem, solution: Solution, drawn: Drawn | None, model_version: str) -> tuple[Decision, ...]:
    snap = tp.snapshot
    c, a = snap.contacts, snap.agents
    val = tp.problem.value
    exact_agent = {} if drawn is None else {int(tp.rows[k]): int(tp.cols[k]) for k in drawn.exact}
    p = 1.0 if drawn is None else float("nan")
    out = []
    for k in solution.arcs:
        ci, ai = int(tp.c_order[tp.rows[k]]), int(tp.a_order[tp.cols[k]])
        cid = str(c.ids[ci])
        explored = drawn is not None and exact_agent.get(int(tp.rows[k])) != int(tp.cols[k])
        out.append(Decision(decision_id=f"{snap.snapshot_id}/{cid}", window_id=str(snap.snapshot_id), at=snap.at,
                            model_version=model_version, contact_id=cid, agent_id=str(a.ids[ai]),
                            intent=str(snap.intents[c.intent[ci]]), score=float(tp.score[k]), value=float(val[k]),
                            explored=bool(explored), propensity=p))
    return tuple(out)


def decision_frame(decisions: tuple[Decision, ...]) -> pd.DataFrame:
    """Decisions as the decision-log table (``assign.learn.logs.DECISION_COLUMNS``)."""
    frame = pd.DataFrame({k: [getattr(d, k) for d in decisions] for k in DECISION_COLUMNS})
    frame["at"] = pd.to_datetime(frame["at"], utc=True)
    return frame.astype({"score": "float64", "value": "float64", "explored": "bool", "propensity": "float64"})


def _log_with_propensities(router: Router, tp: TickProblem, drawn: Drawn, decisions: tuple[Decision, ...],
                           rng: np.random.Generator, scorer) -> None:
    """Off the tick path: every arc's propensity from extra draws, then the decisions to the sink."""
    ci, ai = _pairs(tp)
    p = propensities(tp.problem, exact=drawn.exact, score=tp.score, w_score=router.config.w_score,
                     explore=router.explore, solve=lambda q: SOLVERS["flow"](q).arcs, rng=rng, logged=drawn.arcs,
                     steps=drawn.steps,
                     draws=lambda g: np.asarray(scorer.posterior_draw(
                         tp.snapshot, contact_idx=ci, agent_idx=ai, rng=g))[0])
    chosen = np.sort(drawn.arcs)
    frame = decision_frame(tuple(replace(d, propensity=float(p[k])) for d, k in zip(decisions, chosen)))
    router.sink.decisions(frame)
