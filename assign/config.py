"""Router configuration: one frozen, validated object holding every knob of a tick."""
from __future__ import annotations

from dataclasses import dataclass

from assign.validate import Problems

#: The order is the router's fallback chain after the configured solver: ``auction`` comes last
#: so that the default chain (flow -> hungarian -> greedy) is unchanged; configured first, it
#: falls back to flow -> hungarian -> greedy.
SOLVERS = ("flow", "hungarian", "greedy", "auction")


@dataclass(frozen=True, kw_only=True)
class RouterConfig:
    """Knobs of the routing tick. Validated at construction; errors name the field.

    Eligibility: ``min_proficiency`` on the contact's intent (a missing skill is 0 and never
    eligible), ``require_language``. Value of a pair = ``w_score * score + w_aging * aging +
    w_fairness * fairness`` where aging = ``(1 + urgency) / 2 * min(waited_s /
    service_level_s, aging_cap)`` and fairness = ``idle_s / (idle_s + idle_half_s)``.
    ``threshold`` (None = off) lets contacts stay queued when their value is below it.
    Pruning keeps the ``top_k`` agents per contact and ``top_k`` contacts per agent when the
    tick's full grid (contacts x agents, eligible or not: known before eligibility is
    computed) has more than ``prune_min_pairs`` cells. ``solver`` picks the first solver
    to try (``flow``: OR-Tools; ``auction``: the numba ε-scaling auction, exact too, then
    flow -> hungarian -> greedy); ``greedy_margin_ms`` is how close to the budget the router
    switches to greedy. ``small_tick`` (default on) lets an unpruned tick take every eligible
    pair straight from the skill grid (:mod:`assign.smalltick`) and the flow answer small
    problems by its certified shortcut (:mod:`assign.solve.small`): the same answers, less
    fixed cost per tick; off, both run the general machinery (for comparisons).
    ``threads``: threads the tick's row kernels may use (the packed forest, retrieval's top-K
    selection; rows cut into contiguous ranges, the same bits at any count:
    :mod:`assign.parallel`); None (default): the cores this process may use, at most 2. A
    kernel splits only when each thread gets enough rows (thousands of forest rows, hundreds
    of contacts), so small ticks (the simulator's) stay on one thread.
    """

    min_proficiency: float = 0.2
    require_language: bool = True
    w_score: float = 1.0
    w_aging: float = 0.3
    w_fairness: float = 0.05
    service_level_s: float = 20.0
    aging_cap: float = 3.0
    idle_half_s: float = 120.0
    threshold: float | None = None
    top_k: int = 16
    prune_min_pairs: int = 50_000
    solver: str = "flow"
    budget_ms: float | None = None
    greedy_margin_ms: float = 15.0
    explain_k: int = 3
    small_tick: bool = True
    threads: int | None = None

    def __post_init__(self) -> None:
        p = Problems()
        for name in ("min_proficiency", "w_score", "w_aging", "w_fairness", "greedy_margin_ms"):
            p.number(f"config.{name}", getattr(self, name), lo=0)
        for name in ("service_level_s", "aging_cap", "idle_half_s"):
            p.number(f"config.{name}", getattr(self, name), lo=0, lo_open=True)
        for name in ("top_k", "explain_k"):
            p.number(f"config.{name}", getattr(self, name), lo=1, hi=10_000, integer=True)
        p.number("config.prune_min_pairs", self.prune_min_pairs, lo=0, integer=True)
        p.number("config.threads", self.threads, lo=1, hi=64, integer=True, optional=True)
        p.number("config.threshold", self.threshold, optional=True)
        p.number("config.budget_ms", self.budget_ms, lo=0, lo_open=True, optional=True)
        for name in ("require_language", "small_tick"):
            if not isinstance(getattr(self, name), bool):
                p.add(f"config.{name}", f"expected true or false, got {getattr(self, name)!r}")
        p.choice("config.solver", self.solver, SOLVERS)
        p.raise_if_any(what="router configuration")
