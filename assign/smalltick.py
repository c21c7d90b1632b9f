"""Eligibility for small ticks: every eligible pair straight from the skill grid.

A tick small enough not to be pruned (``RouterConfig.prune_min_pairs``) keeps every
eligible pair, so retrieval's machinery (groups, member terms ordered by the prior, cheap
values; :mod:`assign.candidates`) has nothing to rank and the scorer's prior is not needed.
Most simulated ticks hold a few contacts and agents, where that machinery's fixed cost is
most of the tick. :func:`all_eligible` gives the same pairs, in the same canonical order,
from the one rule (:mod:`assign.eligibility`) on the dense contacts x agents grid.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from assign.eligibility import skilled as is_skilled
from assign.schema import Agents, Contacts


@dataclass(frozen=True, eq=False)
class Eligible:
    """Every eligible pair (contact row, agent row; row-major order) and per contact whether
    some agent passes language and skill, capacity aside (the router's "no eligible agent")."""

    contact: np.ndarray
    agent: np.ndarray
    skilled: np.ndarray
    n_eligible: int


def all_eligible(*, contacts: Contacts, agents: Agents, free: np.ndarray, min_proficiency: float,
                 require_language: bool) -> Eligible:
    """The pairs :func:`assign.candidates.find_candidates` keeps without pruning (same rule,
    same order), on the dense grid: for ticks of up to a few tens of thousands of cells."""
    prof = agents.skill[:, contacts.intent].T.astype(np.float64)
    speaks = agents.speaks[:, contacts.language].T
    ok = is_skilled(prof, speaks, float(min_proficiency), bool(require_language))
    rows, cols = np.nonzero(ok & (free[:, contacts.channel].T > 0))
    return Eligible(contact=rows.astype(np.int64), agent=cols.astype(np.int64), skilled=ok.any(axis=1),
                    n_eligible=len(rows))
