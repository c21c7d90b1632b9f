"""Value of a pair beyond its predicted quality: waiting-time aging and agent fairness.

aging(contact)   = (1 + urgency) / 2 * min(waited_s / service_level_s, aging_cap)
fairness(agent)  = idle_s / (idle_s + idle_half_s)
value(pair)      = w_score * score + w_aging * aging + w_fairness * fairness

Aging makes long, urgent waits win scarce capacity; fairness spreads work to idle agents.
"""
from __future__ import annotations

import numpy as np

from assign.config import RouterConfig


def aging(*, urgency: np.ndarray, waited_s: np.ndarray, config: RouterConfig) -> np.ndarray:
    """Per-contact aging term in [0, aging_cap]."""
    return (1.0 + urgency) / 2.0 * np.minimum(waited_s / config.service_level_s, config.aging_cap)


def fairness(*, idle_s: np.ndarray, config: RouterConfig) -> np.ndarray:
    """Per-agent fairness term in [0, 1)."""
    return idle_s / (idle_s + config.idle_half_s)


def combine(*, score: np.ndarray, aging: np.ndarray, fairness: np.ndarray, config: RouterConfig) -> np.ndarray:
    """The pair value the solver maximises."""
    return config.w_score * score + config.w_aging * aging + config.w_fairness * fairness
