"""Two champions routed as one: the mean of their scores.

A promotion is decided on log-loss over the last matured days, which a model wins by getting an
intent's level right after a shock; but the new champion can order the agents on that intent
worse than the one it replaces (docs/living-centre.md, "loop15": on the shocked intent the
night-13 champion's best agent loses 0.10-0.20 of resolution per contact, the replaced
champion's none). :class:`MeanScorer` scores a pair as the mean of its members' scores, so a
loop can route with the champion just promoted and the one before it together
(``LoopConfig.blend_previous``): where one orders the agents wrongly, the other halves the error.
The level offsets (:mod:`assign.deploy.levels`) then measure the mean's level.
"""
from __future__ import annotations

import numpy as np

from assign.errors import InputError
from assign.schema import Snapshot
from assign.scorer import Prior, Scorer


class MeanScorer(Scorer):
    """The mean of ``members``' scores (a pair's score, each member's weight ``1 / len(members)``).
    The retrieval prior is the mean of the members' priors (None when one has none)."""

    def __init__(self, *, members: tuple[Scorer, ...]) -> None:
        members = tuple(members)
        if not members:
            raise InputError(["members: need at least one scorer"], what="mean scorer")
        self.members = members
        self.name = "mean(" + ", ".join(getattr(m, "name", "scorer") for m in members) + ")"

    def score_pairs(self, snapshot: Snapshot, *, contact_idx: np.ndarray, agent_idx: np.ndarray) -> np.ndarray:
        total = np.zeros(len(contact_idx))
        for m in self.members:
            total = total + np.asarray(m.score_pairs(snapshot, contact_idx=contact_idx, agent_idx=agent_idx), float)
        return total / len(self.members)

    def prior(self, snapshot: Snapshot) -> Prior | None:
        priors = [m.prior(snapshot) for m in self.members]
        if any(p is None for p in priors):
            return None
        return mean_prior(priors)

    def warm_up(self) -> None:
        for m in self.members:
            m.warm_up()

    def bind(self, run) -> None:
        for m in self.members:
            m.bind(run)


def mean_prior(priors: list[Prior]) -> Prior:
    """The prior of the mean score: every linear part averaged; the low-rank contact parts
    stacked with their weights divided by the number of priors (their sum is then the mean)."""
    k = len(priors)
    parts = [p for p in priors if p.contact_weight is not None and p.contact_tables is not None]
    weight = tables = None
    if parts:
        weight = np.concatenate([np.asarray(p.contact_weight, float) / k for p in parts], axis=1)
        tables = np.concatenate([np.asarray(p.contact_tables, float) for p in parts], axis=0)
    return Prior(agent_intent=sum(np.asarray(p.agent_intent, float) for p in priors) / k,
                 style_bonus=sum(p.style_bonus for p in priors) / k,
                 sentiment_coef=sum(p.sentiment_coef for p in priors) / k,
                 contact_weight=weight, contact_tables=tables)
