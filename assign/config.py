"""Router configuration: one frozen, validated object holding every knob of a tick."""
from __future__ import annotations

from dataclasses import dataclass, fields

SOLVERS = ("flow", "hungarian", "greedy")


@dataclass(frozen=True, kw_only=True)
class RouterConfig:
    """Knobs of the routing tick. Validated at construction; errors name the field.

    Eligibility: ``min_proficiency`` on the contact's intent (a missing skill is 0 and never
    eligible), ``require_language``. Value of a pair = ``w_score * score + w_aging * aging +
    w_fairness * fairness`` where aging = ``(1 + urgency) / 2 * min(waited_s /
    service_level_s, aging_cap)`` and fairness = ``idle_s / (idle_s + idle_half_s)``.
    ``threshold`` (None = off) lets contacts stay queued when their value is below it.
    Pruning keeps the ``top_k`` agents per contact and ``top_k`` contacts per agent when the
    tick has more than ``prune_min_pairs`` eligible pairs. ``solver`` picks the first solver
    to try; ``greedy_margin_ms`` is how close to the budget the router switches to greedy.
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

    def __post_init__(self) -> None:
        problems = []
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name in ("require_language", "solver", "threshold", "budget_ms"):
                continue
            if not isinstance(v, (int, float)) or isinstance(v, bool) or v != v:
                problems.append(f"{f.name} must be a number, got {v!r}")
        if not problems:
            for name in ("min_proficiency", "w_score", "w_aging", "w_fairness", "greedy_margin_ms"):
                if getattr(self, name) < 0:
                    problems.append(f"{name} must be >= 0, got {getattr(self, name)}")
            for name in ("service_level_s", "aging_cap", "idle_half_s"):
                if getattr(self, name) <= 0:
                    problems.append(f"{name} must be > 0, got {getattr(self, name)}")
            for name in ("top_k", "explain_k"):
                if int(getattr(self, name)) != getattr(self, name) or getattr(self, name) < 1:
                    problems.append(f"{name} must be a whole number >= 1, got {getattr(self, name)}")
            if self.prune_min_pairs < 0:
                problems.append(f"prune_min_pairs must be >= 0, got {self.prune_min_pairs}")
        if self.solver not in SOLVERS:
            problems.append(f"solver must be one of {', '.join(SOLVERS)}, got {self.solver!r}")
        if self.budget_ms is not None and not self.budget_ms > 0:
            problems.append(f"budget_ms must be > 0, got {self.budget_ms}")
        if problems:
            raise ValueError("; ".join(problems))
