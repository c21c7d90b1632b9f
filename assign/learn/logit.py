"""The logit of a predicted rate and its inverse, shared by the live parts that work on the
logit scale (residuals on the base's margin, the intent-shifted shrinkage parent)."""
from __future__ import annotations

import numpy as np

#: Predictions are clipped to this distance from 0 and 1 before their logit is taken.
P_EPS = 1e-6


def margin_of(p: np.ndarray, *, eps: float = P_EPS) -> np.ndarray:
    """The logit of a predicted resolution ``p`` (clipped to ``[eps, 1 - eps]``)."""
    p = np.clip(np.asarray(p, float), eps, 1 - eps)
    return np.log(p) - np.log1p(-p)


def sigmoid(z: np.ndarray) -> np.ndarray:
    """The inverse of :func:`margin_of` (unclipped)."""
    return 1.0 / (1.0 + np.exp(-z))
