"""An expected-handle-time proxy from what the router sees: the pair's features, not the agent.

A ridge linear regression of ``log(handle_s)`` on the population model's design
(:func:`assign.learn.population.design`: intercept, the contact's complexity, urgency and
sentiment, the agent's load and proficiency on the intent, language and style match, the
crosses, one-hot intent and channel), fitted on the served rows of the warm history. No agent
identity and no tenure: it says which contacts are long or short for an average agent, which
is what the work floor's handle-aware bonus (:mod:`assign.learn.floor`) needs to prefer short
contacts for a new hire ("nesting": a centre's new hires take simple, short contacts first).
A hire's own slowness is a constant on the log scale and does not change which of its
contacts are the short ones.

``ref`` is the mean log handle of the history's served rows (the fitted mean, since the
regression has an intercept), so ``exp(ref - log_handle)`` is 1 for a typical contact, above 1
for a short one and below for a long one.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from assign.errors import InputError
from assign.features import history_features
from assign.features.spec import FeatureSpec
from assign.learn.population import design, fit_linear


@dataclass(frozen=True, eq=False)
class HandleModel:
    """Coefficients of the log handle time on :func:`design` (``coef``), the history's mean log
    handle (``ref``) and the number of intents of the design's vocabulary."""

    coef: np.ndarray
    ref: float
    n_intents: int

    @classmethod
    def fit(cls, history: pd.DataFrame, *, spec: FeatureSpec) -> HandleModel:
        """Fit on the served rows of ``history`` with a positive handle time, on the feature
        ``spec`` of the population model (the same vocabulary as the tick's feature rows)."""
        served = history[history["agent_id"].notna()].reset_index(drop=True)
        h = pd.to_numeric(served["handle_s"], errors="coerce").to_numpy(np.float64)
        ok = np.isfinite(h) & (h > 0)
        if ok.sum() < 50:
            raise InputError([f"history: {int(ok.sum())} served rows with a positive handle_s; "
                              "the handle model needs at least 50"], what="history")
        D = design(history_features(served, spec).X, n_intents=len(spec.intents))[ok]
        y = np.log(h[ok])
        return cls(coef=fit_linear(D, y), ref=float(y.mean()), n_intents=len(spec.intents))

    def predict_rows(self, X: np.ndarray) -> np.ndarray:
        """Expected log handle seconds of feature rows (an average agent)."""
        return design(X, n_intents=self.n_intents) @ self.coef

    def shortness(self, log_handle: np.ndarray) -> np.ndarray:
        """``exp(ref - log_handle)``: a pair's contacts per unit of time against a typical contact's."""
        return np.exp(self.ref - np.asarray(log_handle, np.float64))
