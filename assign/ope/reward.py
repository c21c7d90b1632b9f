"""Reward models for DM and DR: the expected outcome of a (contact, agent) pair in a window.

:class:`LogisticRewardModel` is fitted on the log itself: a ridge-penalised logistic
regression of ``resolved`` on what a snapshot shows of the pair (proficiency and its
product with complexity, complexity, urgency, style match, negative sentiment and the
agent's handling of it, tenure, the agent's load, channel, intent and language). It sees no
agent identity, so it misses what is particular to an agent: DM inherits that bias, DR
corrects it with the weighted residuals. It is cross-fitted over two folds of windows (even
and odd), so no window's prediction comes from a model that saw that window's outcome.

:class:`ModelRewardModel` uses a trained model directory (``assign train``): its
``resolved`` prediction for the pair on the window's snapshot.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from assign.errors import InputError
from assign.ope.logs import OPELog
from assign.schema import CHANNELS


def pair_features(log: OPELog, *, contact_row: np.ndarray, agent_row: np.ndarray, extra_load: np.ndarray) -> np.ndarray:
    """Feature matrix of pairs (rows of ``window_contacts``, rows of ``window_agents``)."""
    ix = log.index
    c, st = ix["contacts"], ix["static"]
    j = ix["wa_agent"][agent_row]
    intent = c["intent"][contact_row]
    prof = st["skill"][j, intent]
    cx = c["complexity"][contact_row]
    neg = np.maximum(-c["sentiment"][contact_row], 0.0)
    sty = c["style"][contact_row]
    match = ((sty >= 0) & (sty == st["style"][j])).astype(float)
    ten = st["tenure_days"][j]
    load = ix["wa_load"][agent_row].sum(axis=1) + extra_load
    cols = [np.ones(len(j)), prof, prof * cx, cx, c["urgency"][contact_row], match, neg,
            st["sentiment_handling"][j] * neg, ten / (ten + 180.0), np.log1p(ten), load.astype(float)]
    for codes, n in ((c["channel"][contact_row], len(CHANNELS)), (intent, len(ix["intents"])),
                     (c["language"][contact_row], len(ix["languages"]))):
        cols.extend((codes == k).astype(float) for k in range(1, n))
    return np.column_stack(cols)


def fit_logistic(X: np.ndarray, y: np.ndarray, *, ridge: float = 1.0, iters: int = 50) -> np.ndarray:
    """Ridge logistic regression by Newton's method (the intercept, column 0, unpenalised)."""
    beta = np.zeros(X.shape[1])
    pen = np.full(X.shape[1], ridge)
    pen[0] = 0.0
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-np.clip(X @ beta, -30, 30)))
        g = X.T @ (p - y) + pen * beta
        h = (X * (p * (1 - p))[:, None]).T @ X + np.diag(pen + 1e-9)
        step = np.linalg.solve(h, g)
        beta -= step
        if np.abs(step).max() < 1e-8:
            break
    return beta


@dataclass
class LogisticRewardModel:
    """Cross-fitted logistic model of ``resolved`` (see module doc)."""

    ridge: float = 1.0
    name: str = "logistic (cross-fitted on the log)"

    def fit(self, log: OPELog, *, contact_row, agent_row, extra_load, window, reward) -> LogisticRewardModel:
        X = pair_features(log, contact_row=contact_row, agent_row=agent_row, extra_load=extra_load)
        fold = np.asarray(window) % 2
        self._beta = {}
        for f in (0, 1):
            train = fold != f
            if train.sum() < 20 or len(np.unique(reward[train])) < 2:
                raise InputError([f"reward model: fold {f} has too few logged outcomes ({int(train.sum())}) to fit"],
                                 what="OPE log")
            self._beta[f] = fit_logistic(X[train], reward[train], ridge=self.ridge)
        return self

    def predict(self, log: OPELog, *, contact_row, agent_row, extra_load, window) -> np.ndarray:
        X = pair_features(log, contact_row=contact_row, agent_row=agent_row, extra_load=extra_load)
        fold = np.asarray(window) % 2
        out = np.empty(len(X))
        for f in (0, 1):
            m = fold == f
            out[m] = 1.0 / (1.0 + np.exp(-(X[m] @ self._beta[f])))
        return out


@dataclass
class ModelRewardModel:
    """The ``resolved`` prediction of a trained model directory (XGBoost, ``assign train``)."""

    scorer: Any
    name: str = "model"

    def fit(self, log, **_: Any) -> ModelRewardModel:
        return self

    def predict(self, log: OPELog, *, contact_row, agent_row, extra_load, window) -> np.ndarray:
        out = np.empty(len(contact_row))
        ix = log.index
        window = np.asarray(window)
        for k in np.unique(window):
            m = np.flatnonzero(window == k)
            snap = log.snapshot(int(k))
            ci = contact_row[m] - ix["c_off"][k]
            ai = agent_row[m] - ix["a_off"][k]
            preds = self.scorer.predict_pairs(snap, contact_idx=ci, agent_idx=ai)
            if "resolved" not in preds:
                raise InputError([f"--model: predicts {', '.join(preds)}, not resolved"], what="option")
            out[m] = preds["resolved"]
        return out
