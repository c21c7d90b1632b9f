"""A scorer from the population model and the live agent effects.

``score = sigmoid(model logit of the pair + posterior mean effect of the agent)``: the
population model (:mod:`assign.learn.population`) knows what the pair's features say for an
average agent; the agent effect (:mod:`assign.learn.effects`) what the agent's own outcomes
(and CSAT, early) add, shrunk to its cohort. A new hire is scored by the model with its
cohort's effect (counted as prior-only). :meth:`posterior_draw` draws one effect per agent
from its Gaussian posterior (Thompson sampling): agents with few outcomes get the widest draws.
"""
from __future__ import annotations

import threading

import numpy as np

from assign.learn.effects import (
    AgentEffects,
    EffectEstimates,
    EffectVersion,
    fit_effects,
    fit_warm_links,
    tenure_band,
    views,
)
from assign.learn.floor import FloorController
from assign.learn.handle import HandleModel
from assign.learn.logit import sigmoid
from assign.learn.population import PopulationModel
from assign.learn.ramp import Ramp
from assign.learn.scorer import LIVE_KEY
from assign.learn.shrink import TENURE_BANDS_DAYS
from assign.schema import Snapshot
from assign.scorer import Scorer


class ModelScorer(Scorer):
    """Population model + live agent effects (see module doc). ``roster``: agent ids and
    tenure (days) the effects are fitted over; the snapshot's agents when not bound."""

    name = "model-effects"

    def __init__(self, *, model: PopulationModel, live: EffectEstimates, cohort_prior: bool = True,
                 ramp: Ramp | None = None, floor: FloorController | None = None,
                 warm_links: bool = True, handle: HandleModel | None = None) -> None:
        self.model, self.live, self.cohort_prior, self.ramp = model, live, bool(cohort_prior), ramp
        self.floor = floor  # the new-hire work floor's multipliers (assign.learn.floor), read per call
        if floor is not None and floor.floor.handle and handle is None:
            raise ValueError("a handle-aware work floor needs the handle model (handle=HandleModel)")
        self.handle = handle  # the expected-handle proxy of the floor's handle-aware bonus (assign.learn.handle)
        # with the cohort prior, bound to a run: the hierarchy's hyperparameters fitted once on what
        # ``live`` holds at bind time (the warm history), by maximum marginal likelihood (effects.WarmLinks)
        self.warm_links, self.links = bool(warm_links), None
        self._roster: tuple[np.ndarray, np.ndarray] | None = None
        self._lock = threading.Lock()
        self._cache: tuple | None = None  # (version, roster, effects, index)
        self._margins: tuple | None = None  # (contacts, agents, ci, ai, logit, csat, log handle) of the last call
        self._snapshot_roster: tuple | None = None  # (agents, roster) when not bound to a run

    def bind(self, run) -> None:
        a = run.source.agents
        self._roster = (np.asarray(a.ids).astype(str), np.asarray(a.tenure_days, float))
        self._cache = None
        if self.warm_links and self.cohort_prior:
            y, noise = views(self.live.current().totals(self._roster[0]))
            self.links = fit_warm_links(y, noise, cohort=self._cohorts(self._roster[1]),
                                        n_codes=len(TENURE_BANDS_DAYS) + 1) if np.isfinite(noise).any() else None

    def version(self, snapshot: Snapshot) -> EffectVersion:
        v = snapshot.meta.get(LIVE_KEY) if snapshot.meta else None
        return v if isinstance(v, EffectVersion) else self.live.current()

    def effects(self, snapshot: Snapshot) -> tuple[AgentEffects, np.ndarray]:
        """The fitted effects and the row of each snapshot agent in them."""
        v = self.version(snapshot)
        roster = self._roster
        ids = np.asarray(snapshot.agents.ids).astype(str)
        if roster is None:  # one roster per snapshot agents table: a tick's calls share one fit
            held = self._snapshot_roster
            if held is None or held[0] is not snapshot.agents:
                held = (snapshot.agents, (ids, np.asarray(snapshot.agents.tenure_days, float)))
                self._snapshot_roster = held
            roster = held[1]
        with self._lock:
            cache = self._cache
        if cache is None or cache[0] is not v or cache[1] is not roster:
            eff = fit_effects(v.totals(roster[0]), cohort=self._cohorts(roster[1]),
                              links=self.links if roster is self._roster else None)
            cache = (v, roster, eff, {a: k for k, a in enumerate(roster[0])})
            with self._lock:
                self._cache = cache
        eff, index = cache[2], cache[3]
        rows = np.fromiter((index.get(a, -1) for a in ids), np.int64, len(ids))
        if (rows < 0).any():  # agents outside the bound roster: fit over the snapshot's own
            eff = fit_effects(v.totals(ids), cohort=self._cohorts(snapshot.agents.tenure_days))
            rows = np.arange(len(ids))
        return eff, rows

    def _cohorts(self, tenure_days: np.ndarray) -> np.ndarray:
        """Cohort codes: tenure bands, or one cohort (the centre) without the cohort prior."""
        t = np.asarray(tenure_days, float)
        return tenure_band(t) if self.cohort_prior else np.zeros(len(t), np.int64)

    def _bonus(self, snapshot: Snapshot, agent_idx: np.ndarray, log_handle: np.ndarray | None) -> np.ndarray | float:
        """The ramp's value bonus plus the work floor's term of each pair (its agent's multiplier,
        times the pair's handle factor with a handle-aware floor; 0 without either)."""
        ramp = 0.0 if self.ramp is None else self.ramp.terms(snapshot.agents.tenure_days)[agent_idx]
        if self.floor is None:
            return ramp
        lam = self.floor.terms(snapshot.agents.ids)[agent_idx]
        if self.floor.floor.handle:
            lam = lam * self.floor.floor.pair_factor(self.handle.shortness(log_handle))
        return ramp + lam

    def margins(self, snapshot: Snapshot, *, contact_idx: np.ndarray, agent_idx: np.ndarray) -> tuple[np.ndarray, ...]:
        """(population logit, population CSAT mean) of the pairs; the last call's answer is kept,
        since a tick asks for the same pairs to score them and to draw them."""
        return self._pairs(snapshot, contact_idx, agent_idx)[4:6]

    def _pairs(self, snapshot: Snapshot, contact_idx: np.ndarray, agent_idx: np.ndarray) -> tuple:
        """(contacts, agents, ci, ai, logit, CSAT mean, expected log handle or None) of the pairs."""
        ci, ai = np.asarray(contact_idx, np.int64), np.asarray(agent_idx, np.int64)
        held = self._margins
        if (held is not None and held[0] is snapshot.contacts and held[1] is snapshot.agents
                and np.array_equal(held[2], ci) and np.array_equal(held[3], ai)):
            return held
        X = self.model.featurizer.features(snapshot, contact_idx=ci, agent_idx=ai)
        m, c = self.model.predict_rows(X)
        lh = self.handle.predict_rows(X) if self.handle is not None else None  # expected log handle
        held = (snapshot.contacts, snapshot.agents, ci, ai, m, c, lh)
        self._margins = held  # one reference: swapped whole
        return held

    def score_pairs(self, snapshot: Snapshot, *, contact_idx: np.ndarray, agent_idx: np.ndarray) -> np.ndarray:
        eff, rows = self.effects(snapshot)
        held = self._pairs(snapshot, contact_idx, agent_idx)
        ai = np.asarray(agent_idx, np.int64)
        return sigmoid(held[4] + eff.mean[rows[ai]]) + self._bonus(snapshot, ai, held[6])

    def prior_only(self, snapshot: Snapshot, *, contact_idx: np.ndarray, agent_idx: np.ndarray) -> np.ndarray:
        eff, rows = self.effects(snapshot)
        return eff.n_obs[rows[np.asarray(agent_idx, np.int64)]] <= 0

    def posterior_draw(self, snapshot: Snapshot, *, contact_idx: np.ndarray, agent_idx: np.ndarray,
                       rng: np.random.Generator, n_draws: int = 1) -> np.ndarray:
        """(n_draws, n_pairs): one effect per snapshot agent per draw, shared by its pairs."""
        eff, rows = self.effects(snapshot)
        held = self._pairs(snapshot, contact_idx, agent_idx)
        m, ai = held[4], np.asarray(agent_idx, np.int64)
        theta = eff.mean[rows] + np.sqrt(eff.var[rows]) * rng.standard_normal((n_draws, len(rows)))
        if not len(ai):
            return np.zeros((n_draws, 0))
        return sigmoid(m[None, :] + theta[:, ai]) + self._bonus(snapshot, ai, held[6])

    def estimate(self, snapshot: Snapshot, *, margins: np.ndarray, agent_row: int) -> float:
        """An agent's estimated resolution rate over contacts with these population logits."""
        eff, rows = self.effects(snapshot)
        return float(np.mean(sigmoid(np.asarray(margins) + eff.mean[rows[agent_row]]))) if len(margins) else np.nan
