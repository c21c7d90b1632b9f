"""The seam between prediction and assignment: a :class:`Scorer` values contact-agent pairs.

The router asks a scorer for the expected quality of candidate pairs only (after eligibility
and pruning). Scores are "quality units", roughly 0..1, higher is better; the router adds
waiting-time aging and agent fairness on top (``assign.solve.value``).

``SkillScorer`` is the rule-based scorer that makes the engine useful before any model;
``assign.model.XGBScorer`` plugs into the same interface.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from assign.schema import Snapshot

if TYPE_CHECKING:
    from assign.sim.view import RunInfo


@dataclass(frozen=True, kw_only=True)
class Prior:
    """A scorer's cheap estimate of its score for a pair (agent j, contact i):

    ``agent_intent[j, intent_i] + style_bonus * [style_i == style_j] + sentiment_coef *
    sentiment_handling_j * max(-sentiment_i, 0)``. ``agent_intent`` is (n_agents, n_intents).

    Optionally a low-rank contact x (agent, intent) part, for scorers whose ranking of agents
    depends on the contact (skill matters more on hard contacts): ``+ sum_r
    contact_weight[i, r] * contact_tables[r, j, intent_i]``, with ``contact_weight``
    (n_contacts, R) in the snapshot's contact order and ``contact_tables`` (R, n_agents,
    n_intents). None: no such part.
    """

    agent_intent: np.ndarray
    style_bonus: float = 0.0
    sentiment_coef: float = 0.0
    contact_weight: np.ndarray | None = None
    contact_tables: np.ndarray | None = None


class Scorer(ABC):
    """Values candidate pairs of one snapshot: subclass and override :meth:`score_pairs`.

    ``score_pairs`` gets parallel index arrays (contact row, agent row of ``snapshot``) and
    returns one finite float64 per pair. The optional hooks have no-op defaults:
    :meth:`warm_up` (the router calls it at construction so that compilation and model
    loading never happen inside a tick), :meth:`prior` (a cheap linear estimate of the score
    that the router evaluates on every eligible pair to prune candidates on large ticks;
    proficiency when None), :meth:`bind` (called when a simulated replication starts, for
    scorers that read the simulated centre, like the oracle), and for learning scorers
    :meth:`prior_only` and :meth:`posterior_draw` (``assign.learn``). The closer the prior to the
    score, the less pruning loses. Implementations must be safe to call from several threads.
    """

    name: str = "scorer"

    @abstractmethod
    def score_pairs(self, snapshot: Snapshot, *, contact_idx: np.ndarray, agent_idx: np.ndarray) -> np.ndarray:
        """One finite score per pair (contact row ``contact_idx[k]``, agent row ``agent_idx[k]``)."""

    def warm_up(self) -> None:  # noqa: B027 - an optional hook: nothing to load by default
        """Load and compile whatever scoring needs, before the first tick. Default: nothing."""

    def prior(self, snapshot: Snapshot) -> Prior | None:
        """A cheap linear estimate of the score for retrieval. Default: None (proficiency)."""
        return None

    def bind(self, run: RunInfo) -> None:  # noqa: B027 - an optional hook
        """Called when a simulated replication starts. Default: nothing."""

    def prior_only(self, snapshot: Snapshot, *, contact_idx: np.ndarray, agent_idx: np.ndarray) -> np.ndarray | None:
        """Per pair, whether its score comes from the prior alone (no outcome of the agent
        known yet); the router counts them in ``TickResult.n_prior_only``. Default: None
        (the scorer does not say)."""
        return None

    def posterior_draw(self, snapshot: Snapshot, *, contact_idx: np.ndarray, agent_idx: np.ndarray,
                       rng: np.random.Generator, n_draws: int = 1) -> np.ndarray | None:
        """(n_draws, n_pairs) scores drawn from the scorer's posterior, for Thompson
        exploration (``Router(explore=...)``). Default: None (nothing to explore)."""
        return None


@dataclass(frozen=True, kw_only=True)
class SkillScorer(Scorer):
    """Rule-based quality: proficiency on the intent, tenure, style match, sentiment handling.

    ``score = w_proficiency * p + w_tenure * t / (t + tenure_half_days) + w_style * [styles
    match] + w_sentiment * sentiment_handling * max(-sentiment, 0)``, divided by the sum of
    the weights so that it stays in 0..1.
    """

    w_proficiency: float = 0.7
    w_tenure: float = 0.15
    w_style: float = 0.05
    w_sentiment: float = 0.1
    tenure_half_days: float = 180.0
    name: str = "skill"

    def __post_init__(self) -> None:
        for k in ("w_proficiency", "w_tenure", "w_style", "w_sentiment"):
            if getattr(self, k) < 0:
                raise ValueError(f"{k} must be >= 0, got {getattr(self, k)}")
        if self.total_weight <= 0:
            raise ValueError("at least one SkillScorer weight must be > 0")
        if self.tenure_half_days <= 0:
            raise ValueError(f"tenure_half_days must be > 0, got {self.tenure_half_days}")

    @property
    def total_weight(self) -> float:
        return self.w_proficiency + self.w_tenure + self.w_style + self.w_sentiment

    def prior(self, snapshot: Snapshot) -> Prior:
        """The score itself: every term of this scorer is linear enough to be its own prior."""
        a = snapshot.agents
        tenure = self.w_tenure * a.tenure_days / (a.tenure_days + self.tenure_half_days)
        w = self.total_weight
        return Prior(agent_intent=(self.w_proficiency * a.skill + tenure[:, None]) / w,
                     style_bonus=self.w_style / w, sentiment_coef=self.w_sentiment / w)

    def score_pairs(self, snapshot: Snapshot, *, contact_idx: np.ndarray, agent_idx: np.ndarray) -> np.ndarray:
        c, a = snapshot.contacts, snapshot.agents
        prof = a.skill[agent_idx, c.intent[contact_idx]]
        tenure = a.tenure_days[agent_idx]
        cs, ast = c.style[contact_idx], a.style[agent_idx]
        style_match = (cs >= 0) & (cs == ast)
        neg = np.maximum(-c.sentiment[contact_idx], 0.0)
        s = (self.w_proficiency * prof
             + self.w_tenure * tenure / (tenure + self.tenure_half_days)
             + self.w_style * style_match
             + self.w_sentiment * a.sentiment_handling[agent_idx] * neg)
        return s / self.total_weight
