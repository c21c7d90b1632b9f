"""An early proxy of resolution: CSAT, known an hour after wrap-up, while resolution takes 72 h.

Why it may be used: in the synthetic centre's truth (``assign/world/truth.py``) the CSAT logit
is ``csat_base + 0.55 * z + ... + 0.25 * ability``, where ``z`` is the resolution logit (it
carries the agent's ability, proficiency and the new-hire learning curve), so an agent's
mean CSAT moves with its resolution rate. Whether it does in the data at hand is *estimated*,
never assumed: the slope ``beta = cov(resolution rate, mean CSAT) / tau^2`` (true resolution per
true CSAT point: the covariance of the agents' raw means equals that of their true means when
the two outcomes' noises are independent, as in the truth's draws; ``tau^2`` the between-agent
CSAT variance) is fitted on the agents that have both, clipped at 0, and set to 0 when agents'
CSAT does not differ beyond sampling noise, so a CSAT unrelated to resolution shifts nothing.
The shift applies to the shrunk CSAT means, so an agent with few surveys moves little.
Known weakness: the slope is fitted on raw agent means, so a contact mix that moves both
outcomes (agents given easier contacts score better on both) makes it steeper than the agent
effect alone (measured in ``docs/learn.md``); adjusting both for the contacts served is next.

Agent mean CSAT is shrunk like resolution (agent -> cohort -> centre) with normal
empirical-Bayes strengths ``m = sigma^2 / tau^2``: ``sigma^2`` the per-contact variance (CSAT
on 1..5 is ``1 + Binomial(4, q)`` in the truth, so it is taken as ``4 q (1 - q)`` at the
centre's mean: a model assumption), ``tau^2`` by the method of moments
``E[sum_j n_j (c_j - mu_j)^2] = tau^2 sum_j n_j + k sigma^2``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Fewest agents with both resolution and CSAT for the slope to be fitted (else it is 0).
MIN_AGENTS = 8
#: Floor of the between-agent CSAT variance, so ``m`` stays finite.
TAU2_MIN = 1e-6


@dataclass(frozen=True, eq=False)
class CsatProxy:
    """Shrunk mean CSAT per agent (``agent``) and per cohort (``cohort``, by cohort index),
    the centre mean, and the fitted slope ``beta`` (resolution per CSAT point)."""

    agent: np.ndarray
    cohort: np.ndarray
    centre: float
    beta: float
    strengths: dict[str, float]


def normal_strength(s: np.ndarray, n: np.ndarray, mu: np.ndarray, sigma2: float) -> float:
    """``m = sigma^2 / tau^2`` of group means ``s / n`` around known means ``mu`` (see module doc)."""
    ok = n > 0
    if ok.sum() < 2:
        return 1.0 / TAU2_MIN
    s, n, mu = s[ok], n[ok], mu[ok]
    tau2 = (float((n * (s / n - mu) ** 2).sum()) - ok.sum() * sigma2) / float(n.sum())
    return sigma2 / max(tau2, TAU2_MIN)


def fit_proxy(*, n_csat: np.ndarray, s_csat: np.ndarray, c_idx: np.ndarray, n_res: np.ndarray,
              s_res: np.ndarray) -> CsatProxy | None:
    """The shrunk CSAT means and the slope; None when no CSAT was observed."""
    N = float(n_csat.sum())
    if N <= 0:
        return None
    centre = float(s_csat.sum()) / N
    q = np.clip((centre - 1.0) / 4.0, 0.02, 0.98)
    sigma2 = 4.0 * q * (1.0 - q)
    k = int(c_idx.max()) + 1 if len(c_idx) else 0
    n_c, s_c = np.bincount(c_idx, n_csat, k), np.bincount(c_idx, s_csat, k)
    m_c = normal_strength(s_c, n_c, np.full(k, centre), sigma2)
    cohort = (s_c + m_c * centre) / (n_c + m_c)
    m_a = normal_strength(s_csat, n_csat, cohort[c_idx], sigma2)
    agent = (s_csat + m_a * cohort[c_idx]) / (n_csat + m_a)
    tau2 = sigma2 / m_a
    typical_n = float(np.median(n_csat[n_csat > 0]))
    both = (n_res > 0) & (n_csat > 0)
    beta = 0.0
    # Only when agents' CSAT really differs (between-agent variance at least a typical agent's
    # sampling variance) and enough agents have both: else the ratio is noise over noise.
    if both.sum() >= MIN_AGENTS and tau2 >= sigma2 / typical_n:
        w = n_res[both]
        x, y = s_csat[both] / n_csat[both], s_res[both] / n_res[both]
        cov = float(np.average((x - np.average(x, weights=w)) * (y - np.average(y, weights=w)), weights=w))
        beta = max(0.0, cov / tau2)  # cov of raw means = cov of true means (independent noise)
    return CsatProxy(agent=agent, cohort=cohort, centre=centre, beta=beta,
                     strengths={"csat_cohort": m_c, "csat_agent": m_a, "csat_sigma2": sigma2, "csat_tau2": tau2})


def known_mean_strength(s: np.ndarray, n: np.ndarray, mu: np.ndarray, *, rho_min: float, rho_max: float) -> float:
    """Beta-binomial strength ``M`` of groups around known, group-specific means ``mu``:
    ``E[n_j (r_j - mu_j)^2] = mu_j (1 - mu_j) [1 + rho (n_j - 1)]``, ``rho = 1 / (M + 1)``,
    summed over groups; ``rho`` clipped to ``[rho_min, rho_max]``."""
    ok = n > 0
    s, n, mu = s[ok], n[ok], np.clip(mu[ok], 1e-6, 1 - 1e-6)
    v = mu * (1 - mu)
    den = float((v * (n - 1)).sum())
    if den <= 0:
        return 1.0 / rho_min - 1.0
    rho = float(np.clip((float((n * (s / n - mu) ** 2).sum()) - float(v.sum())) / den, rho_min, rho_max))
    return 1.0 / rho - 1.0
