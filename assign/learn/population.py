"""The population model: what a pair's outcomes are expected to be for an average agent.

A logistic regression of resolution (and a linear regression of CSAT) on the pair's
features without the agent's identity: the contact (intent, channel, complexity, urgency,
sentiment), the agent's proficiency on the intent, language and style match, load, and the
crosses proficiency x complexity and sentiment handling x negative sentiment. The rows are
built by the one feature code path (:func:`assign.features.history_features` for training,
:class:`assign.features.TickFeaturizer` for ticks); only :data:`POP_FEATURES` are read.

Why not XGBoost on every feature: with a few dozen agents, agent-level continuous features
(tenure, sentiment handling, the agent's own rates) identify each agent, so a tree model
learns who the agent is and a new hire inherits the nearest tenured agent's leaf. Here the
agent enters only through the hierarchical agent effect (:mod:`assign.learn.effects`) on the
model's logit, which is what a new hire's cold start needs: a prior mean per pair from the
model, an agent offset that starts at the hire's cohort and moves with the hire's outcomes.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from assign.errors import InputError
from assign.features import FEATURES, TickFeaturizer, fit_spec, history_features
from assign.features.spec import FeatureSpec
from assign.schema import CHANNELS, Snapshot

#: Numeric pair features the population model reads (agent identity features left out).
POP_FEATURES = ("complexity", "urgency", "sentiment", "agent_load", "proficiency", "lang_match", "style_match",
                "prof_x_complexity", "neg_x_handling")
_COL = {n: k for k, n in enumerate(FEATURES)}
RIDGE = 1e-3


def design(X: np.ndarray, *, n_intents: int) -> np.ndarray:
    """The regression's design matrix from feature rows: intercept, the numeric features
    (NaN as 0), one-hot intent (model vocabulary; unknown = none) and channel."""
    num = np.nan_to_num(X[:, [_COL[n] for n in POP_FEATURES]].astype(np.float64))
    intent = X[:, _COL["intent"]]
    channel = X[:, _COL["channel"]]
    oh_i = (intent[:, None] == np.arange(1, n_intents)[None, :]).astype(np.float64)  # first intent: baseline
    oh_c = (channel[:, None] == np.arange(1, len(CHANNELS))[None, :]).astype(np.float64)
    return np.hstack([np.ones((len(X), 1)), num, oh_i, oh_c])


def fit_logistic(D: np.ndarray, y: np.ndarray, *, ridge: float = RIDGE, iters: int = 25) -> np.ndarray:
    """Ridge-penalised logistic regression by Newton (IRLS); the intercept is not penalised."""
    b = np.zeros(D.shape[1])
    pen = np.full(D.shape[1], ridge * len(y))
    pen[0] = 0.0
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-(D @ b)))
        g = D.T @ (y - p) - pen * b
        H = (D * (p * (1 - p))[:, None]).T @ D + np.diag(pen)
        step = np.linalg.solve(H, g)
        b += step
        if np.abs(step).max() < 1e-8:
            break
    return b


def fit_linear(D: np.ndarray, y: np.ndarray, *, ridge: float = RIDGE) -> np.ndarray:
    pen = np.full(D.shape[1], ridge * len(y))
    pen[0] = 0.0
    return np.linalg.solve(D.T @ D + np.diag(pen), D.T @ y)


@dataclass(frozen=True, eq=False)
class PopulationModel:
    """Coefficients of the resolution logit (``coef_res``) and CSAT mean (``coef_csat``,
    None without CSAT) on :func:`design`, with the feature spec and a featurizer for ticks."""

    spec: FeatureSpec
    coef_res: np.ndarray
    coef_csat: np.ndarray | None
    featurizer: TickFeaturizer

    @classmethod
    def fit(cls, history: pd.DataFrame) -> PopulationModel:
        """Fit on the served rows of a history (the history contract) with a resolution."""
        served = history[history["agent_id"].notna()].reset_index(drop=True)
        res = pd.to_numeric(served["resolved"], errors="coerce").to_numpy(np.float64)
        if np.isfinite(res).sum() < 50:
            raise InputError([f"history: {int(np.isfinite(res).sum())} served rows with a resolution; "
                              "the population model needs at least 50"], what="history")
        spec = fit_spec(served)
        tf = history_features(served, spec)
        D = design(tf.X, n_intents=len(spec.intents))
        ok = np.isfinite(res)
        coef_res = fit_logistic(D[ok], res[ok])
        cs = pd.to_numeric(served["csat"], errors="coerce").to_numpy(np.float64)
        okc = np.isfinite(cs)
        coef_csat = fit_linear(D[okc], cs[okc]) if okc.sum() >= 50 else None
        empty = pd.DataFrame({"customer_id": pd.Series([], dtype=object), "t": pd.Series([], dtype=float)})
        featurizer = TickFeaturizer(spec=spec, state=tf.state, customer_times=empty)
        return cls(spec=spec, coef_res=coef_res, coef_csat=coef_csat, featurizer=featurizer)

    def predict_rows(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(resolution logit, CSAT mean; NaN without a CSAT fit) of feature rows."""
        D = design(X, n_intents=len(self.spec.intents))
        csat = D @ self.coef_csat if self.coef_csat is not None else np.full(len(D), np.nan)
        return D @ self.coef_res, csat

    def predict(self, snapshot: Snapshot, *, contact_idx: np.ndarray,
                agent_idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(resolution logit, CSAT mean) of the snapshot's pairs, through the tick featurizer."""
        X = self.featurizer.features(snapshot, contact_idx=contact_idx, agent_idx=agent_idx)
        return self.predict_rows(X)

    def history_predictions(self, history: pd.DataFrame) -> pd.DataFrame:
        """``contact_id, pred_margin, pred_csat`` of the served rows of ``history`` (for the
        warm start's outcome events)."""
        served = history[history["agent_id"].notna()].reset_index(drop=True)
        m, c = self.predict_rows(history_features(served, self.spec).X)
        return pd.DataFrame({"contact_id": served["contact_id"].astype(str).to_numpy(), "pred_margin": m,
                             "pred_csat": c})
