"""Routing policies behind one small interface.

A policy subclasses :class:`Policy`: a ``name``, ``assign(view) -> (contact_rows,
agent_rows)`` (given the waiting contacts in queue order and the free capacity now, which
pairs to start) and two optional hooks with no-op defaults: ``start(run)``, called once per
replication with its :class:`~assign.sim.view.RunInfo` (bind to the run's contacts, warm
up), and ``arm_labels(run)``, a per-contact arm label array for split runs (None by
default). A policy sees the run only through :class:`~assign.sim.view.View` and
``RunInfo``. The engine checks every answer (capacity, eligibility, no double assignment).

- ``fcfs``: first come first served to the longest-idle eligible agent (the classic ACD).
- ``random``: queue order, a uniformly random eligible free agent.
- ``skills``: queue order, the most proficient eligible free agent (longest idle breaks ties).
- ``gcmu``: the generalised cµ rule with quadratic waiting cost: start the pair with the
  largest ``(1 + urgency) * waited * µ[agent, intent]``, µ = 1 / expected handle time.
- ``ml-greedy``: queue order, each contact gets the best *predicted* eligible free agent now.
- ``ml-batch``: the engine's :class:`~assign.router.Router` on the whole window.
- ``oracle``: the same Router fed the true expected resolution (the ceiling).
- ``ml-live``: the Router on live agent estimates without the cohort level of the cold-start
  prior, no exploration; ``ml-learn``: live estimates + the hierarchical cold-start prior +
  budgeted exploration (:mod:`assign.learn.policy`; the new-hire ramp, :mod:`assign.learn.ramp`, is
  off by default).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from assign.config import RouterConfig
from assign.errors import InputError
from assign.schema import Snapshot
from assign.scorer import Scorer, SkillScorer
from assign.sim.view import RunInfo, View

_EMPTY = (np.zeros(0, np.int64), np.zeros(0, np.int64))


class Policy(ABC):
    """A routing policy: override :meth:`assign`; the hooks default to doing nothing."""

    name: str = "policy"

    def start(self, run: RunInfo) -> None:  # noqa: B027 - an optional hook
        """Called once when a replication starts, before any event. Default: nothing."""

    @abstractmethod
    def assign(self, view: View) -> tuple[np.ndarray, np.ndarray]:
        """(contact rows, agent rows) of the pairs to start now, within ``view.free``."""

    def arm_labels(self, run: RunInfo) -> np.ndarray | None:
        """Per contact of the run (stream order), the arm that routes it; None (the default)
        for a policy without arms."""
        return None


class _Sequential(Policy):
    """Queue order; each contact takes the agent that ``_pick`` chooses among the eligible
    free ones. Subclasses override ``_pick`` only."""

    name = "sequential"

    def start(self, run: RunInfo) -> None:
        self._all = np.arange(run.n_agents)

    def assign(self, view: View) -> tuple[np.ndarray, np.ndarray]:
        w, free = view.waiting, view.free
        if len(w) == 1:  # one new contact against all agents: no per-agent subsetting needed
            c = w[0]
            cand = view.static_eligible(c) & (free[:, view.stream.block.channel[c]] > 0)
            if not np.count_nonzero(cand):
                return _EMPTY
            return np.array([c]), np.array([self._pick(view, c, cand, view.idle_key, self._all)])
        fa = np.flatnonzero(free.any(axis=1))  # only agents with a free slot matter
        if not len(fa):
            return _EMPTY
        ch = view.stream.block.channel
        elig = view.static_eligible(w)[:, fa]
        fr = free[fa]
        # Drop contacts no free agent can take before looping (overload: long queues).
        ok = (elig & (fr[:, ch[w]].T > 0)).any(axis=1)
        if not np.count_nonzero(ok):
            return _EMPTY
        w, elig = w[ok], elig[ok]
        idle = view.idle_key[fa]
        out_c, out_a = [], []
        for k in range(len(w)):
            c = w[k]
            cand = elig[k] & (fr[:, ch[c]] > 0)
            if not np.count_nonzero(cand):
                continue
            j = self._pick(view, c, cand, idle, fa)
            fr[j, ch[c]] -= 1
            idle[j] += 1e12
            out_c.append(c); out_a.append(fa[j])
            if not np.count_nonzero(fr):
                break
        return np.asarray(out_c, np.int64), np.asarray(out_a, np.int64)

    def _pick(self, view: View, c: int, cand: np.ndarray, idle: np.ndarray, agents: np.ndarray) -> int:
        """Index into ``agents`` (the free agents) of the one contact ``c`` gets."""
        raise NotImplementedError


class FCFS(_Sequential):
    """First come, first served to the longest-idle agent."""

    name = "fcfs"

    def _pick(self, view, c, cand, idle, agents):
        return int(np.argmin(np.where(cand, idle, np.inf)))


class RandomPolicy(_Sequential):
    """Queue order, a uniformly random eligible free agent (the policy stream of the run)."""

    name = "random"

    def _pick(self, view, c, cand, idle, agents):
        idx = np.flatnonzero(cand)
        return int(idx[view.rng.integers(len(idx))])


class Skills(_Sequential):
    """Queue order, the most proficient eligible free agent; longest idle breaks ties."""

    name = "skills"

    def _pick(self, view, c, cand, idle, agents):
        prof = view.agents.skill[agents, view.stream.block.intent[c]]
        best = np.where(cand, prof, -np.inf)
        top = cand & (best >= best.max() - 1e-12)
        return int(np.argmin(np.where(top, idle, np.inf)))


class GCMu(Policy):
    """Generalised cµ (Mandelbaum & Stolyar 2004) with quadratic waiting cost: repeatedly start
    the pair maximising ``(1 + urgency) * (waited + 1 s) * µ[agent, intent]``."""

    name = "gcmu"

    def start(self, run: RunInfo) -> None:
        self._mu = 1.0 / np.maximum(run.source.expected_handle_s(), 1e-9)  # (agents, intents)

    def assign(self, view: View) -> tuple[np.ndarray, np.ndarray]:
        w, free = view.waiting, view.free
        blk = view.stream.block
        elig = view.eligible(w)
        if not elig.any():
            return _EMPTY
        rows = np.flatnonzero(elig.any(axis=1))
        w, elig = w[rows], elig[rows]
        cost_rate = (1.0 + blk.urgency[w]) * (view.t - view.stream.arrival_s[w] + 1.0)
        idx = cost_rate[:, None] * self._mu[:, blk.intent[w]].T
        # Ties: longest-idle agent, then queue order (argmax takes the first row).
        idx = np.where(elig, idx - 1e-9 * np.argsort(np.argsort(view.idle_key))[None, :] / len(view.idle_key), -np.inf)
        ch = blk.channel[w]
        out_c, out_a = [], []
        while True:
            k = int(np.argmax(idx))
            i, a = divmod(k, idx.shape[1])
            if not np.isfinite(idx[i, a]):
                break
            out_c.append(w[i]); out_a.append(a)
            idx[i, :] = -np.inf
            free[a, ch[i]] -= 1
            if free[a, ch[i]] == 0:
                idx[ch == ch[i], a] = -np.inf
        return np.asarray(out_c, np.int64), np.asarray(out_a, np.int64)


class MLGreedy(Policy):
    """Each contact, in queue order, gets the eligible free agent with the best predicted
    score now (how vendor predictive routers work): no look-ahead across the window."""

    name = "ml-greedy"

    def __init__(self, *, scorer: Scorer | None = None) -> None:
        self.scorer = scorer if scorer is not None else SkillScorer()
        self._warm = False

    def start(self, run: RunInfo) -> None:
        self.scorer.bind(run)
        if not self._warm:
            self.scorer.warm_up()
            self._warm = True

    def assign(self, view: View) -> tuple[np.ndarray, np.ndarray]:
        w, free = view.waiting, view.free
        elig = view.eligible(w)
        rows = np.flatnonzero(elig.any(axis=1))
        if not len(rows):
            return _EMPTY
        w, elig = w[rows], elig[rows]
        agents = np.flatnonzero(elig.any(axis=0))
        snap = view.snapshot(w, agents)
        ci, aj = np.nonzero(elig[:, agents])
        score = np.full((len(w), len(agents)), -np.inf)
        score[ci, aj] = self.scorer.score_pairs(snap, contact_idx=ci, agent_idx=aj)
        ch = view.stream.block.channel[w]
        out_c, out_a = [], []
        for i in range(len(w)):
            ok = free[agents, ch[i]] > 0
            s = np.where(ok, score[i], -np.inf)
            j = int(np.argmax(s))
            if not np.isfinite(s[j]):
                continue
            a = agents[j]
            free[a, ch[i]] -= 1
            out_c.append(w[i]); out_a.append(a)
        return np.asarray(out_c, np.int64), np.asarray(out_a, np.int64)


class RouterPolicy(Policy):
    """The engine's :class:`~assign.router.Router` on every decision (``ml-batch``; with an
    :class:`OracleScorer`, ``oracle``). Router eligibility is the same rule set as the
    engine's, so the engine's check never trips on a correct router."""

    def __init__(self, *, scorer: Scorer | None = None, config: RouterConfig | None = None, name: str = "ml-batch",
                 budget_ms: float | None = None) -> None:
        self.name = name
        self.scorer = scorer if scorer is not None else SkillScorer()
        self.config = config
        self.budget_ms = budget_ms
        self._router = None

    def start(self, run: RunInfo) -> None:
        self.scorer.bind(run)
        if self._router is None:
            from assign.router import Router

            self._router = Router(scorer=self.scorer, config=self.config)

    def assign(self, view: View) -> tuple[np.ndarray, np.ndarray]:
        w, agents = view.routable()
        if not len(w):
            return _EMPTY
        ci, ai = self._router.tick_rows(view.snapshot(w, agents), budget_ms=self.budget_ms)
        return w[np.asarray(ci, np.int64)], agents[np.asarray(ai, np.int64)]


class OracleScorer(Scorer):
    """Scores pairs by the source's true expected resolution for the run it is bound to
    (needs a source with ``has_truth``: the synthetic world). The ceiling, not a model."""

    name = "oracle"

    def __init__(self) -> None:
        self._run: RunInfo | None = None

    def bind(self, run: RunInfo) -> None:
        if not run.source.has_truth:
            raise InputError([f"policy oracle: source {run.source.name!r} has no truth (use --world)"],
                             what="simulation")
        self._run = run

    def score_pairs(self, snapshot: Snapshot, *, contact_idx: np.ndarray, agent_idx: np.ndarray) -> np.ndarray:
        run = self._run
        if run is None:
            raise InputError(["scorer oracle: not bound to a simulated run (it scores simulated contacts only)"],
                             what="scorer")
        cr = snapshot.meta["contact_rows"][contact_idx]
        ar = snapshot.meta["agent_rows"][agent_idx]
        load = snapshot.agents.load[agent_idx].sum(axis=1)
        return run.source.truth_quality(stream=run.stream, contact_idx=cr, agent_idx=ar, agent_load=load)


class SplitPolicy(Policy):
    """Several arms in one centre: each contact is routed by its arm's policy, all arms share
    the agents and ONE queue. ``arm_of(contact, t_s) -> arm name`` is called once per contact
    at arrival time with a :class:`ContactRow`; key it on the contact (contact-level
    randomisation) or on ``t_s`` (switchback windows). At each decision the waiting contacts
    (queue order) are cut into maximal runs of consecutive contacts of one arm; each run is
    routed by its arm's policy as one batch on the capacity the earlier runs left, so no arm
    jumps the queue (two identical arms reproduce the single policy exactly) and a batch
    policy still batches its consecutive contacts. The run's log gets an ``arm`` column."""

    def __init__(self, *, arms: Mapping[str, Policy], arm_of: Callable[[ContactRow, float], str],
                 name: str = "split") -> None:
        if not arms:
            raise ValueError("arms must name at least one policy")
        self.arms = dict(arms)
        self.arm_of = arm_of
        self.name = name
        self._names = tuple(self.arms)

    def start(self, run: RunInfo) -> None:
        for p in self.arms.values():
            p.start(run)

    def arm_labels(self, run: RunInfo) -> np.ndarray:
        st = run.stream
        b, src = st.block, run.source
        labels = np.empty(len(st), dtype=object)
        for i in range(len(st)):
            row = ContactRow(index=i, contact_id=b.ids[i], arrival_s=float(st.arrival_s[i]),
                             channel=int(b.channel[i]), intent=src.intents[b.intent[i]],
                             customer_id=b.customer_id[i], customer_tier=b.customer_tier[i])
            arm = self.arm_of(row, row.arrival_s)
            if arm not in self.arms:
                raise ValueError(f"arm_of returned {arm!r}, not one of {', '.join(self._names)}")
            labels[i] = arm
        index = {name: k for k, name in enumerate(self._names)}
        self._codes = np.array([index[x] for x in labels], dtype=np.int64)
        return labels

    def assign(self, view: View) -> tuple[np.ndarray, np.ndarray]:
        w = view.waiting
        if not len(w):
            return _EMPTY
        codes = self._codes[w]
        if (codes == codes[0]).all():  # one arm waiting: its policy on the view as is
            return self.arms[self._names[codes[0]]].assign(view)
        cuts = np.flatnonzero(np.diff(codes)) + 1
        starts = np.concatenate(([0], cuts))
        ends = np.concatenate((cuts, [len(w)]))
        free = view.free.copy()
        ch_of = view.stream.block.channel
        out_c, out_a = [], []
        for s, e in zip(starts, ends):
            if not free.any():
                break
            sub = view.narrowed(waiting=w[s:e], free=free.copy(), added=view.free - free)
            ci, ai = self.arms[self._names[codes[s]]].assign(sub)
            if len(ci):
                ci = np.asarray(ci, np.int64); ai = np.asarray(ai, np.int64)
                np.subtract.at(free, (ai, ch_of[ci]), 1)
                out_c.append(ci); out_a.append(ai)
        if not out_c:
            return _EMPTY
        return np.concatenate(out_c), np.concatenate(out_a)


@dataclass(frozen=True, slots=True)
class ContactRow:
    """One contact as ``SplitPolicy.arm_of`` sees it."""

    index: int
    contact_id: str
    arrival_s: float
    channel: int
    intent: str
    customer_id: str | None
    customer_tier: str | None


POLICY_NAMES = ("fcfs", "skills", "random", "gcmu", "ml-greedy", "ml-batch", "oracle", "ml-live", "ml-learn")
#: The policies that solve a window as one assignment: ``--batch-window-s`` applies to them.
BATCHED_POLICIES = ("ml-batch", "oracle", "ml-live", "ml-learn")


def make_policy(name: str, *, scorer: Scorer | None = None, router_config: RouterConfig | None = None) -> Policy:
    """A policy by name. ``scorer`` (default :class:`SkillScorer`) is used by ``ml-greedy``
    and ``ml-batch``; ``oracle`` always uses the source's truth."""
    if name == "fcfs":
        return FCFS()
    if name == "random":
        return RandomPolicy()
    if name == "skills":
        return Skills()
    if name == "gcmu":
        return GCMu()
    if name == "ml-greedy":
        return MLGreedy(scorer=scorer)
    if name == "ml-batch":
        return RouterPolicy(scorer=scorer, config=router_config, name="ml-batch")
    if name == "oracle":
        return RouterPolicy(scorer=OracleScorer(), config=router_config, name="oracle")
    if name in ("ml-live", "ml-learn"):  # the learning router (assign.learn): live estimates, + exploration
        from assign.learn.explore import Explore
        from assign.learn.policy import LearnPolicy

        # warm start: 14 days of the world's history before the run (synthetic worlds; else none)
        learn = name == "ml-learn"
        return LearnPolicy(name=name, explore=Explore() if learn else None, config=router_config, warm_days=14,
                           cohort_prior=learn)
    raise ValueError(f"unknown policy {name!r} (expected one of {', '.join(POLICY_NAMES)})")
