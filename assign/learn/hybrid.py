"""Live estimates in the form each agent needs: a residual on the champion for the agents it
knows, the absolute posterior for the ones it does not (hybrid17, opt-in ``LoopConfig.live_hybrid``).

The loop's two built live parts each lose where the other wins (docs/living-centre.md, "pre28"):
the absolute posterior mean (:class:`~assign.learn.scorer.LearnScorer`) added to the champion's
score is a second, contact-blind estimate of agents the champion already reads, and costs the
first week; the residual on the champion (:class:`~assign.learn.residual.ResidualScorer`) removes
that cost but reads a hire as the champion reads an agent it has never seen (its history
features missing) plus a cohort residual centred on 0, and loses the days the hires join. Here
both live objects fold every outcome (:class:`PairedEstimates`), and :class:`HybridScorer` scores

- an agent the champion has training rows of: ``base + residual`` (as ``ResidualScorer``);
- an agent it has none of (``hires(snapshot)``, a hire until a champion trained on its rows is
  promoted): ``(base + theta) / 2``, the mean of the champion's reading and the absolute
  posterior mean ``theta`` of the pair (cohort prior, CSAT proxy and the hire's own outcomes),
  so the hire stands on the scale of the others' scores (probability, not the sum of two).

Thompson draws follow the same split (a beta draw of ``theta`` for the hires, a normal draw of
the residual for the others); the base is scored once per call.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from assign.learn.live import LiveEstimates, LiveVersion
from assign.learn.residual import ResidualEstimates, ResidualScorer, ResidualVersion
from assign.learn.scorer import LIVE_KEY, LearnScorer
from assign.schema import Snapshot
from assign.scorer import Prior, Scorer


@dataclass(frozen=True, eq=False)
class PairedVersion:
    """One consistent pair of live versions (what a tick pins)."""

    absolute: LiveVersion
    residual: ResidualVersion


class PairedEstimates:
    """Both live objects, fed the same outcome events (they need ``pred_margin`` for the
    residual part; events without it fold into the absolute part alone)."""

    def __init__(self, *, absolute: LiveEstimates, residual: ResidualEstimates) -> None:
        self.absolute, self.residual = absolute, residual
        self._lock = threading.Lock()

    def current(self) -> PairedVersion:
        with self._lock:
            return PairedVersion(absolute=self.absolute.current(), residual=self.residual.current())

    def observe(self, outcomes: pd.DataFrame, *, checked: bool = False) -> PairedVersion:
        with self._lock:
            self.absolute.observe(outcomes, checked=checked)
            self.residual.observe(outcomes, checked=checked)
        return self.current()


class HybridScorer(Scorer):
    """The scores of the module doc. ``base``: the champion's score (with the level offsets);
    ``hires(snapshot)``: per snapshot agent, True where the champion has no rows of it (None:
    nobody, i.e. ``ResidualScorer``'s scores); ``new_intents(snapshot)``: per snapshot intent,
    True where the champion has no rows of it (hybrid19: those pairs are scored as a hire's;
    None: nothing); ``residual_band_days``: the tenure bands of the residual part's strengths
    (:class:`~assign.learn.residual.ResidualScorer`; None: one per level); ``absolute_intent_parent``:
    the absolute part's agent x intent parents shifted by the intent's rate
    (:func:`~assign.learn.shrink.fit_posterior`)."""

    name = "learn-hybrid"

    def __init__(self, *, live: PairedEstimates, base: Scorer | None = None,
                 hires: Callable[[Snapshot], np.ndarray] | None = None,
                 new_intents: Callable[[Snapshot], np.ndarray] | None = None,
                 residual_band_days: tuple[float, ...] | None = None, absolute_intent_parent: bool = False) -> None:
        self.live, self.base, self.hires, self.new_intents = live, base, hires, new_intents
        self.absolute = LearnScorer(live=live.absolute, intent_parent=absolute_intent_parent)
        self.residual = ResidualScorer(live=live.residual, band_days=residual_band_days)

    def bind(self, run) -> None:
        self.absolute.bind(run)
        self.residual.bind(run)
        if self.base is not None:
            self.base.bind(run)

    def warm_up(self) -> None:
        if self.base is not None:
            self.base.warm_up()

    def _parts(self, snapshot: Snapshot) -> tuple[Snapshot, Snapshot]:
        """The snapshot as each part's scorer reads it: its own pinned version."""
        v = snapshot.meta.get(LIVE_KEY) if snapshot.meta else None
        if not isinstance(v, PairedVersion):
            v = self.live.current()
        return (replace(snapshot, meta={**snapshot.meta, LIVE_KEY: v.absolute}),
                replace(snapshot, meta={**snapshot.meta, LIVE_KEY: v.residual}))

    def _hire_agents(self, snapshot: Snapshot) -> np.ndarray:
        if self.hires is None:
            return np.zeros(snapshot.n_agents, bool)
        return np.asarray(self.hires(snapshot), bool)

    def _absolute_table(self, snapshot: Snapshot) -> np.ndarray:
        """(n_agents, n_intents): the agent x intent cells scored in the absolute form."""
        hire = self._hire_agents(snapshot)[:, None]
        if self.new_intents is None:
            return np.broadcast_to(hire, (snapshot.n_agents, len(snapshot.intents)))
        return hire | np.asarray(self.new_intents(snapshot), bool)[None, :]

    def _absolute_pairs(self, snapshot: Snapshot, contact_idx, agent_idx) -> np.ndarray:
        return self._absolute_table(snapshot)[agent_idx, snapshot.contacts.intent[contact_idx]]

    def _base(self, snapshot, contact_idx, agent_idx) -> np.ndarray:
        if self.base is None:
            return np.zeros(len(contact_idx))
        return np.asarray(self.base.score_pairs(snapshot, contact_idx=contact_idx, agent_idx=agent_idx), float)

    def _combine(self, base: np.ndarray, theta: np.ndarray, resid: np.ndarray, hire: np.ndarray) -> np.ndarray:
        return base + np.where(hire, 0.5 * (theta - base), resid)

    def score_pairs(self, snapshot: Snapshot, *, contact_idx: np.ndarray, agent_idx: np.ndarray) -> np.ndarray:
        sa, sr = self._parts(snapshot)
        hire = self._absolute_pairs(snapshot, contact_idx, agent_idx)
        theta = self.absolute.score_pairs(sa, contact_idx=contact_idx, agent_idx=agent_idx)
        resid = self.residual.score_pairs(sr, contact_idx=contact_idx, agent_idx=agent_idx)
        return self._combine(self._base(snapshot, contact_idx, agent_idx), theta, resid, hire)

    def posterior_draw(self, snapshot: Snapshot, *, contact_idx: np.ndarray, agent_idx: np.ndarray,
                       rng: np.random.Generator, n_draws: int = 1) -> np.ndarray:
        """(n_draws, n_pairs): the split of the module doc, each part's own draw (beta for the
        hires' absolute rate, normal for the others' residual)."""
        sa, sr = self._parts(snapshot)
        hire = self._absolute_pairs(snapshot, contact_idx, agent_idx)
        theta = self.absolute.posterior_draw(sa, contact_idx=contact_idx, agent_idx=agent_idx, rng=rng,
                                             n_draws=n_draws)
        resid = self.residual.posterior_draw(sr, contact_idx=contact_idx, agent_idx=agent_idx, rng=rng,
                                             n_draws=n_draws)
        return self._combine(self._base(snapshot, contact_idx, agent_idx)[None, :], theta, resid, hire[None, :])

    def prior(self, snapshot: Snapshot) -> Prior | None:
        """Retrieval's cheap estimate, split as the scores: the base's prior plus the residual
        means, or the mean of the base's prior and the absolute means for the hires."""
        if self.base is None:
            return None
        bp = self.base.prior(snapshot)
        if bp is None:
            return None
        sa, sr = self._parts(snapshot)
        post_a, rows_a = self.absolute.posterior(sa)
        post_r, rows_r = self.residual.posterior(sr)
        cells = self._absolute_table(snapshot)
        agent_intent = self._combine(bp.agent_intent, post_a.mean[rows_a], post_r.mean[rows_r], cells)
        tables = bp.contact_tables
        if tables is not None and cells.any():  # the absolute cells' contact part is halved with their base
            tables = np.where(cells[None, :, :], 0.5 * tables, tables)
        return replace(bp, agent_intent=agent_intent, contact_tables=tables)

    def prior_only(self, snapshot: Snapshot, *, contact_idx: np.ndarray, agent_idx: np.ndarray) -> np.ndarray:
        sa, sr = self._parts(snapshot)
        hire = self._absolute_pairs(snapshot, contact_idx, agent_idx)
        return np.where(hire, self.absolute.prior_only(sa, contact_idx=contact_idx, agent_idx=agent_idx),
                        self.residual.prior_only(sr, contact_idx=contact_idx, agent_idx=agent_idx))
