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
from numba import njit

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
    rows, cols, ok = _grid(contacts.intent, contacts.language, contacts.channel, agents.skill, agents.speaks,
                           np.ascontiguousarray(free), float(min_proficiency), bool(require_language))
    return Eligible(contact=rows, agent=cols, skilled=ok, n_eligible=len(rows))


def all_eligible_reference(*, contacts: Contacts, agents: Agents, free: np.ndarray, min_proficiency: float,
                           require_language: bool) -> Eligible:
    """:func:`all_eligible` in whole-grid numpy (the reference the tests compare against)."""
    prof = agents.skill[:, contacts.intent].T.astype(np.float64)
    speaks = agents.speaks[:, contacts.language].T
    ok = is_skilled(prof, speaks, float(min_proficiency), bool(require_language))
    rows, cols = np.nonzero(ok & (free[:, contacts.channel].T > 0))
    return Eligible(contact=rows.astype(np.int64), agent=cols.astype(np.int64), skilled=ok.any(axis=1),
                    n_eligible=len(rows))


@njit(cache=True, nogil=True)
def _grid(intent, language, channel, skill, speaks, free, min_proficiency, require_language):
    """Row-major eligible pairs with room, and per contact whether any agent is skilled (one
    pass over the grid, by the one rule :func:`assign.eligibility.skilled`)."""
    n_c, n_a = len(intent), skill.shape[0]
    rows = np.empty(n_c * n_a, np.int64)
    cols = np.empty(n_c * n_a, np.int64)
    ok = np.zeros(n_c, np.bool_)
    n = 0
    for i in range(n_c):
        it, lang, ch = intent[i], language[i], channel[i]
        for j in range(n_a):
            if is_skilled(np.float64(skill[j, it]), speaks[j, lang], min_proficiency, require_language):
                ok[i] = True
                if free[j, ch] > 0:
                    rows[n] = i
                    cols[n] = j
                    n += 1
    return rows[:n].copy(), cols[:n].copy(), ok
