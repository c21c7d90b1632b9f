"""Target policies as rules on one window's snapshot, and their simulator adapter.

Off-policy evaluation re-runs the target on each logged window: given that window's
snapshot (the contacts waiting, in queue order, and the agents with a free slot), which
pairs would the target start? Each rule here answers exactly that, from the snapshot alone:

- ``fcfs``: contacts in queue order, each to the longest-idle eligible agent with a free
  slot on its channel (fewest contacts held first, then longest idle: the simulator's key).
- ``skills``: queue order, the most proficient eligible free agent (longest idle on ties).
- ``ml-greedy``: queue order, the eligible free agent with the best scorer score now.
- ``ml-batch``: the :class:`~assign.router.Router` on the whole window.
- ``worst-skill`` (the deliberately bad policy): queue order, the LEAST proficient
  eligible free agent.

Eligibility is the router's: language spoken, proficiency >= ``min_proficiency`` on the
intent, a free slot on the contact's channel.

What this differs from on-policy simulation in: a rule sees the logged windows, which the
logging policy's earlier choices shaped (who is still waiting, which agents are free, their
load). Run on-policy, the same rule would have made other windows: other contacts
abandoned, other agents free. Pair-level OPE estimates the value of the rule's choices on
the logged windows; the queue dynamics (wait, abandonment, and the load each choice
leaves) belong to the simulator. :class:`SnapshotPolicy` runs any rule in the simulator
(the on-policy truth of the validation), so the rule is literally the same code in both.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np

from assign.schema import Snapshot
from assign.scorer import Scorer, SkillScorer
from assign.sim.policies import Policy
from assign.sim.view import View

TARGET_NAMES = ("fcfs", "skills", "ml-greedy", "ml-batch", "worst-skill")
_EMPTY = (np.zeros(0, np.int64), np.zeros(0, np.int64))


def eligible(snapshot: Snapshot, *, min_proficiency: float = 0.2, require_language: bool = True) -> np.ndarray:
    """(contacts, agents) hard-rule eligibility, capacity aside."""
    c, a = snapshot.contacts, snapshot.agents
    ok = a.skill[:, c.intent].T >= max(min_proficiency, 1e-12)
    if require_language:
        ok &= a.speaks[:, c.language].T
    return ok & (a.capacity[:, c.channel].T > 0)


class WindowPolicy(ABC):
    """A target policy: ``choose(snapshot) -> (contact_index, agent_index)`` (rows of the
    snapshot); it must respect eligibility and free capacity."""

    name: str = "policy"

    @abstractmethod
    def choose(self, snapshot: Snapshot) -> tuple[np.ndarray, np.ndarray]:
        ...


@dataclass
class QueueOrder(WindowPolicy):
    """Contacts in queue order, each to the free eligible agent with the smallest key
    (:meth:`key`, ties by the idle key: fewest held, then longest idle, then row)."""

    min_proficiency: float = 0.2
    name: str = "queue-order"

    def key(self, snapshot: Snapshot, i: int) -> np.ndarray:
        """Per agent: smaller is preferred for contact ``i`` (0 everywhere: idle order only)."""
        return np.zeros(snapshot.n_agents)

    def choose(self, snapshot: Snapshot) -> tuple[np.ndarray, np.ndarray]:
        a, c = snapshot.agents, snapshot.contacts
        elig = eligible(snapshot, min_proficiency=self.min_proficiency)
        free = a.free.copy()
        idle = a.load.sum(axis=1) * 1e12 - a.idle_s
        out_c, out_a = [], []
        for i in range(snapshot.n_contacts):
            cand = elig[i] & (free[:, c.channel[i]] > 0)
            if not cand.any():
                continue
            k = np.where(cand, self.key(snapshot, i), np.inf)
            top = cand & (k <= k.min() + 1e-12)
            j = int(np.argmin(np.where(top, idle, np.inf)))
            free[j, c.channel[i]] -= 1
            idle[j] += 1e12
            out_c.append(i)
            out_a.append(j)
        return np.asarray(out_c, np.int64), np.asarray(out_a, np.int64)


@dataclass
class FCFSRule(QueueOrder):
    name: str = "fcfs"


@dataclass
class SkillsRule(QueueOrder):
    name: str = "skills"

    def key(self, snapshot, i):
        return -snapshot.agents.skill[:, snapshot.contacts.intent[i]]


@dataclass
class WorstSkillRule(QueueOrder):
    name: str = "worst-skill"

    def key(self, snapshot, i):
        return snapshot.agents.skill[:, snapshot.contacts.intent[i]]


@dataclass
class MLGreedyRule(QueueOrder):
    """Queue order, best score first (all eligible pairs scored once per window)."""

    scorer: Scorer | None = None
    name: str = "ml-greedy"

    def choose(self, snapshot):
        elig = eligible(snapshot, min_proficiency=self.min_proficiency)
        ci, ai = np.nonzero(elig)
        score = np.full(elig.shape, 0.0)
        if len(ci):
            score[ci, ai] = (self.scorer or SkillScorer()).score_pairs(snapshot, contact_idx=ci, agent_idx=ai)
        self._score = score
        return super().choose(snapshot)

    def key(self, snapshot, i):
        return -self._score[i]


class BatchRule(WindowPolicy):
    """The router on the whole window (``ml-batch``)."""

    def __init__(self, *, scorer: Scorer | None = None, config: Any = None, name: str = "ml-batch") -> None:
        from assign.router import Router

        self.name = name
        self.router = Router(scorer=scorer, config=config)

    def choose(self, snapshot):
        res = self.router.tick(snapshot)
        return np.asarray(res.contact_index, np.int64), np.asarray(res.agent_index, np.int64)


def make_target(name: str, *, scorer: Scorer | None = None) -> WindowPolicy:
    """A target rule by name (:data:`TARGET_NAMES`); ``scorer`` for ml-greedy / ml-batch."""
    if name == "fcfs":
        return FCFSRule()
    if name == "skills":
        return SkillsRule()
    if name == "worst-skill":
        return WorstSkillRule()
    if name == "ml-greedy":
        return MLGreedyRule(scorer=scorer)
    if name == "ml-batch":
        return BatchRule(scorer=scorer)
    raise ValueError(f"unknown target policy {name!r} (expected one of {', '.join(TARGET_NAMES)})")


class SnapshotPolicy(Policy):
    """Runs a :class:`WindowPolicy` in the simulator: each decision, the
    waiting contacts with an eligible free agent and those agents become a snapshot (as the
    batch router sees it) and the rule chooses. Touches ``view.waiting``, ``view.free``,
    ``view.static_eligible``, ``view.stream.block.channel`` and ``view.snapshot``."""

    def __init__(self, rule: WindowPolicy) -> None:
        self.rule = rule
        self.name = rule.name

    def assign(self, view: View) -> tuple[np.ndarray, np.ndarray]:
        w, agents = view.routable()
        if not len(w):
            return _EMPTY
        ci, ai = self.rule.choose(view.snapshot(w, agents))
        return w[ci], agents[ai]
