"""Budgeted Thompson exploration on the exact flow.

Each tick draws the agent x intent effects from the scorer's posterior
(``Scorer.posterior_draw``) and solves the drawn values with the router's own exact solver,
so an uncertain agent is tried in proportion to its chance of being best. The budget: the
drawn assignment, valued at the posterior means, must stay within ``budget`` (a share,
default 0.5%) of the exact assignment's value; otherwise the draw is shrunk towards the
mean (``mean + lam * (draw - mean)`` for ``lam`` in :attr:`Explore.shrink` in turn) and
re-solved; ``lam = 0`` is the exact assignment, which always fits.

The draw is solved on a reduced graph (:func:`top_k_solver`: each contact's ``draw_k`` best
drawn arcs plus the exact assignment's arcs): the exact solve is on the tick path for the
budget, and the draw's solve on a few arcs per contact costs a fraction of a full one.

Propensities (P(this contact goes to this agent in this tick)) are estimated by re-solving
``n_propensity_draws`` extra draws of the same procedure (budget and shrinking included),
with :func:`assign.ope.propensity.draw_frequencies`; the router runs that after the
decision is returned, on a worker thread, since only the log needs it.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numba import njit

from assign.ope.propensity import draw_frequencies
from assign.solve import Problem


@dataclass(frozen=True, kw_only=True)
class Explore:
    """Exploration settings: the value ``budget`` (share of the exact value), the shrink
    steps, the number of extra draws for propensities and the seed of the draws."""

    budget: float = 0.005
    shrink: tuple[float, ...] = (1.0, 0.5, 0.25, 0.125)
    n_propensity_draws: int = 200
    seed: int = 0
    draw_k: int | None = 2  # the draw is solved on each contact's top-k drawn arcs + the exact ones

    def __post_init__(self) -> None:
        if not 0 <= self.budget < 1:
            raise ValueError(f"explore budget must be in [0, 1), got {self.budget}")
        if any(not 0 < x <= 1 for x in self.shrink):
            raise ValueError(f"explore shrink steps must be in (0, 1], got {self.shrink}")
        if self.n_propensity_draws < 1:
            raise ValueError(f"n_propensity_draws must be >= 1, got {self.n_propensity_draws}")
        if self.draw_k is not None and self.draw_k < 1:
            raise ValueError(f"draw_k must be >= 1 or None, got {self.draw_k}")


@dataclass(frozen=True, eq=False)
class Drawn:
    """One exploring decision: the chosen arcs, the exact optimum's arcs and the shrink used
    (0: the exact assignment)."""

    arcs: np.ndarray
    exact: np.ndarray
    lam: float
    steps: tuple[float, ...] = ()  # the shrink steps this tick tried, in order (the law of its draw)


def budgeted_draw(problem: Problem, *, exact: np.ndarray, score: np.ndarray, draw: np.ndarray, w_score: float,
                  budget: float, shrink: tuple[float, ...], solve: Callable[[Problem], np.ndarray]) -> Drawn:
    """Solve the problem with each arc's score replaced by ``score + lam * (draw - score)``
    for the first ``lam`` whose assignment keeps the mean-valued loss within the budget."""
    val = problem.value
    best = float(val[exact].sum())
    allowed = budget * abs(best)
    for lam in shrink:
        p = Problem(n_contacts=problem.n_contacts, contact=problem.contact, resource=problem.resource,
                    value=val + w_score * lam * (draw - score), capacity=problem.capacity)
        arcs = np.asarray(solve(p), np.int64)
        if len(arcs) >= len(exact) and best - float(val[arcs].sum()) <= allowed + 1e-12:
            return Drawn(arcs=arcs, exact=exact, lam=lam, steps=tuple(shrink))
    return Drawn(arcs=np.asarray(exact, np.int64), exact=exact, lam=0.0, steps=tuple(shrink))


def top_k_solver(solve: Callable[[Problem], np.ndarray], *, exact: np.ndarray,
                 k: int | None) -> Callable[[Problem], np.ndarray]:
    """``solve`` on a reduced graph: each contact's ``k`` best arcs by the problem's (drawn)
    value, plus the exact assignment's arcs (so the reduced graph still serves as many
    contacts as the full one). Why: the exact solve is on the tick path for the budget; the
    draw's solve on a few arcs per contact costs a fraction of it. ``k=None``: the full graph.
    Ties break by arc order (deterministic)."""
    if k is None:
        return solve

    def reduced(p: Problem) -> np.ndarray:
        keep = _top_k_per_contact(p.contact, p.value, k)
        keep[exact] = True
        idx = np.flatnonzero(keep)
        sub = Problem(n_contacts=p.n_contacts, contact=p.contact[idx], resource=p.resource[idx], value=p.value[idx],
                      capacity=p.capacity)
        return idx[np.asarray(solve(sub), np.int64)]

    return reduced


@njit(cache=True)
def _top_k_per_contact(contact, value, k):
    """Mask of each contact's ``k`` highest-value arcs (arcs grouped by contact; ties to the
    earlier arc)."""
    n = len(contact)
    keep = np.zeros(n, np.bool_)
    lo = 0
    while lo < n:
        hi = lo
        while hi < n and contact[hi] == contact[lo]:
            hi += 1
        for _ in range(min(k, hi - lo)):
            best = -1
            for j in range(lo, hi):
                if not keep[j] and (best < 0 or value[j] > value[best]):
                    best = j
            keep[best] = True
        lo = hi
    return keep


def start_steps(shrink: tuple[float, ...], hint: float) -> tuple[float, ...]:
    """The shrink steps from the largest one not above ``hint`` (the step that last passed):
    a router's consecutive ticks are alike, so starting there saves re-solves that would
    fail. The steps tried are part of the draw's law, and the propensities use the same."""
    steps = tuple(x for x in shrink if x <= hint + 1e-12)
    return steps or (min(shrink),)


class StepHint:
    """The step a router starts from: the last step that passed; after ``patience``
    consecutive ticks that passed at once, one step larger (exploration recovers when the
    posteriors widen again)."""

    def __init__(self, shrink: tuple[float, ...], *, patience: int = 8) -> None:
        self.shrink, self.patience = tuple(sorted(shrink, reverse=True)), patience
        self.value, self._streak = self.shrink[0], 0

    def update(self, drawn: Drawn) -> None:
        if drawn.lam <= 0:
            self.value, self._streak = self.shrink[-1], 0
            return
        first = drawn.steps and drawn.lam == drawn.steps[0]
        self._streak = self._streak + 1 if first else 0
        self.value = drawn.lam
        if self._streak >= self.patience:
            k = self.shrink.index(drawn.lam) if drawn.lam in self.shrink else 0
            self.value, self._streak = self.shrink[max(k - 1, 0)], 0


def propensities(problem: Problem, *, exact: np.ndarray, score: np.ndarray, draws: Callable, w_score: float,
                 explore: Explore, solve: Callable[[Problem], np.ndarray], rng: np.random.Generator,
                 logged: np.ndarray, steps: tuple[float, ...] | None = None) -> np.ndarray:
    """P(arc chosen) of every arc under :func:`budgeted_draw` with the shrink ``steps`` the
    tick used (default: all of ``explore.shrink``), from extra draws (``draws(rng) -> one
    draw of the scores``)."""
    shrink = explore.shrink if steps is None else steps

    solve = top_k_solver(solve, exact=exact, k=explore.draw_k)

    def choose(g: np.random.Generator) -> np.ndarray:
        return budgeted_draw(problem, exact=exact, score=score, draw=draws(g), w_score=w_score,
                             budget=explore.budget, shrink=shrink, solve=solve).arcs

    return draw_frequencies(choose, n_arcs=problem.n_arcs, n_draws=explore.n_propensity_draws, rng=rng,
                            logged=logged)
