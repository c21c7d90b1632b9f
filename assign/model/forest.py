"""Numba traversal of an XGBoost tree ensemble: an alternative prediction backend.

Measured (benchmarks/scoring.py, 2 cores): xgboost's blocked ``inplace_predict`` is faster at
every batch size tried (800 to 100,000 rows), so the scorer uses xgboost by default; this
single-threaded kernel stays as the ``backend="numba"`` option and as an independent check of
how the trees are read (the model dir's JSON is all it needs).

The trees are read from the booster's JSON (``save_raw("json")``); a row goes left when
``x < threshold`` (float32 compare, as xgboost) and follows ``default_left`` when x is NaN.
The bias (base margin) is taken from xgboost itself: ``predict(output_margin=True)`` minus
the leaf sum on one row, so it follows whatever base-score convention the version uses.
No fastmath: it would assume away the NaN that carry missing values.
Tests check the margins equal ``Booster.predict`` to 1e-5.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
from numba import njit

from assign.errors import ModelError


@njit(cache=True)
def _predict(X, roots, left, right, feat, thresh, default_left, value, bias, out):
    n = X.shape[0]
    n_trees = len(roots)
    for i in range(n):
        acc = 0.0
        for t in range(n_trees):
            node = roots[t]
            while left[node] >= 0:
                x = X[i, feat[node]]
                if np.isnan(x):
                    node = left[node] if default_left[node] else right[node]
                elif x < thresh[node]:
                    node = left[node]
                else:
                    node = right[node]
            acc += value[node]
        out[i] = acc + bias


def booster_learner(booster) -> dict:
    """The ``learner`` object of ``booster``'s JSON model (trees, objective, base score)."""
    return json.loads(booster.save_raw("json"))["learner"]


@dataclass(frozen=True, eq=False)
class Forest:
    """Flattened trees of one booster (node ids global across trees)."""

    roots: np.ndarray
    left: np.ndarray
    right: np.ndarray
    feat: np.ndarray
    thresh: np.ndarray
    default_left: np.ndarray
    value: np.ndarray
    bias: float
    n_features: int
    logistic: bool

    @property
    def n_trees(self) -> int:
        return len(self.roots)

    def margin(self, X: np.ndarray) -> np.ndarray:
        if X.dtype != np.float32 or X.ndim != 2 or X.shape[1] != self.n_features:
            raise ModelError(f"forest expects float32 rows of {self.n_features} features, got {X.dtype} {X.shape}")
        out = np.empty(X.shape[0])
        _predict(np.ascontiguousarray(X), self.roots, self.left, self.right, self.feat, self.thresh,
                 self.default_left, self.value, self.bias, out)
        return out

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predictions on the output scale (probability for logistic objectives)."""
        m = self.margin(X)
        return 1.0 / (1.0 + np.exp(-m)) if self.logistic else m


def forest_from_booster(booster, *, n_features: int, learner: dict | None = None) -> Forest:
    """Flatten ``booster`` (all its trees; slice it to the best iteration first). ``learner``:
    its parsed JSON ``learner`` object when the caller has it (parsed once per load)."""
    if learner is None:
        learner = booster_learner(booster)
    objective = learner["objective"]["name"]
    gb = learner["gradient_booster"]
    if gb.get("name", "gbtree") != "gbtree":
        raise ModelError(f"only gbtree boosters can be flattened, got {gb.get('name')!r}")
    trees = gb["model"]["trees"]
    roots, left, right, feat, thresh, dleft, value = [], [], [], [], [], [], []
    off = 0
    for tr in trees:
        if tr.get("categories_nodes"):
            raise ModelError("categorical splits are not supported by the numba forest")
        lc = np.asarray(tr["left_children"], np.int64)
        rc = np.asarray(tr["right_children"], np.int64)
        leaf = lc < 0
        roots.append(off)
        left.append(np.where(leaf, -1, lc + off))
        right.append(np.where(leaf, -1, rc + off))
        feat.append(np.asarray(tr["split_indices"], np.int64))
        thresh.append(np.asarray(tr["split_conditions"], np.float32))
        dleft.append(np.asarray(tr["default_left"], np.bool_))
        value.append(np.where(leaf, np.asarray(tr["split_conditions"], np.float64), 0.0))
        off += len(lc)
    cat = (lambda xs, dt: np.ascontiguousarray(np.concatenate(xs) if xs else np.empty(0, dt), dtype=dt))
    f = Forest(roots=np.asarray(roots, np.int64), left=cat(left, np.int64), right=cat(right, np.int64),
               feat=cat(feat, np.int64), thresh=cat(thresh, np.float32), default_left=cat(dleft, np.bool_),
               value=cat(value, np.float64), bias=0.0, n_features=int(n_features),
               logistic=objective in ("binary:logistic", "reg:logistic"))

    probe = np.full((1, n_features), np.nan, dtype=np.float32)
    xgb_margin = float(booster.inplace_predict(probe, predict_type="margin")[0])
    bias = xgb_margin - float(f.margin(probe)[0])
    return Forest(**{**f.__dict__, "bias": bias})
