"""Held-out metrics: AUC, log-loss, calibration error, Brier score, RMSE.

AUC is the Mann-Whitney statistic from average ranks (ties count half); calibration error
is the expected calibration error over ``bins`` equal-count bins of the prediction.
"""
from __future__ import annotations

import numpy as np
from scipy.stats import rankdata


def auc(y: np.ndarray, p: np.ndarray) -> float:
    y = np.asarray(y, dtype=bool)
    n1 = int(y.sum())
    n0 = len(y) - n1
    if n1 == 0 or n0 == 0:
        return float("nan")
    r = rankdata(p)
    return float((r[y].sum() - n1 * (n1 + 1) / 2.0) / (n1 * n0))


def log_loss(y: np.ndarray, p: np.ndarray, eps: float = 1e-12) -> float:
    p = np.clip(np.asarray(p, float), eps, 1 - eps)
    y = np.asarray(y, float)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def calibration_error(y: np.ndarray, p: np.ndarray, *, bins: int = 20) -> float:
    """Expected calibration error: sum over equal-count bins of share * |mean p - mean y|."""
    p = np.asarray(p, float)
    y = np.asarray(y, float)
    if len(p) == 0:
        return float("nan")
    order = np.argsort(p, kind="stable")
    err = 0.0
    for chunk in np.array_split(order, min(bins, len(p))):
        err += len(chunk) * abs(p[chunk].mean() - y[chunk].mean())
    return float(err / len(p))


def binary_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    y = np.asarray(y, float)
    p = np.asarray(p, float)
    return dict(auc=auc(y, p), log_loss=log_loss(y, p), calibration_error=calibration_error(y, p),
                brier=float(np.mean((p - y) ** 2)), mean_prediction=float(p.mean()), mean_label=float(y.mean()),
                rows=int(len(y)))


def regression_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    y = np.asarray(y, float)
    p = np.asarray(p, float)
    return dict(rmse=float(np.sqrt(np.mean((p - y) ** 2))), mae=float(np.mean(np.abs(p - y))),
                mean_prediction=float(p.mean()), mean_label=float(y.mean()), rows=int(len(y)))
