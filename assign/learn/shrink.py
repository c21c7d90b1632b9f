"""Cold start by hierarchical empirical-Bayes shrinkage of resolution rates.

Levels: agent x intent -> agent -> cohort -> centre. The cohort is **tenure band x skill
profile**: tenure bands ``[0, 30), [30, 180), [180, 365), [365, inf)`` days, and the skill
profile is the agent's primary intent (the intent it is most proficient in; ties to the
lowest intent code). Each level's estimate is a beta posterior mean around its parent's:

    p_child = (s_child + M * p_parent) / (n_child + M)

with the prior strength ``M`` of each level estimated from the data by the beta-binomial
method of moments (:func:`prior_strength`), pooled over the parents of that level. A new
agent (no outcomes) starts at its cohort's estimate and moves to its own as ``n`` grows.

A new intent (no outcome of any agent) has no agent x intent parent of its own: it takes
the weighted mean of the agent's estimates on the ``k`` known intents nearest to it by the
agents' skill profiles (cosine similarity of the proficiency columns); such intents are
flagged in :attr:`Posterior.mapped_intents`.

The agent x intent parent is the agent's estimate on every intent alike, so a hire with no
outcome on a hard intent reads there at its all-intents rate (measured on the living centre,
slope33: the loop's day-21 hires took a shocked intent's contacts at a true 0.17).
``intent_parent`` (opt-in) shifts that parent by the intent's centre rate on the logit scale,
``logit p_parent = logit p_agent + logit p_intent - logit p_centre``: an additive agent + intent
prior; an agent with many outcomes on the intent barely moves.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from assign.learn.logit import margin_of, sigmoid
from assign.learn.proxy import CsatProxy, fit_proxy, known_mean_strength

TENURE_BANDS_DAYS = (30.0, 180.0, 365.0)
#: Bounds of the intra-class correlation ``rho = 1 / (M + 1)`` the moment estimate is clipped to.
RHO_MIN, RHO_MAX = 1e-4, 0.999


def prior_strength(s: np.ndarray, n: np.ndarray, parent: np.ndarray, parent_mean: np.ndarray) -> float:
    """Beta-binomial method-of-moments estimate of the prior strength ``M`` of groups (sums
    ``s``, counts ``n``) around their parents' means, pooled over parents.

    Per parent with mean ``p``, groups ``j`` (``N = sum n_j``, ``k`` groups):
    ``E[sum n_j (r_j - p_hat)^2] = p (1 - p) [(k - 1) + rho (N - k + 1 - sum n_j^2 / N)]``
    with ``rho = 1 / (M + 1)`` (Kleinman 1973). Numerators and denominators are summed over
    parents and ``rho`` clipped to ``[RHO_MIN, RHO_MAX]``; groups with ``n = 0`` carry nothing.
    """
    ok = n > 0
    s, n, parent = s[ok], n[ok], parent[ok]
    g, inv = np.unique(parent, return_inverse=True)
    size = np.bincount(inv, minlength=len(g))
    N = np.bincount(inv, n, len(g))
    p_hat = np.bincount(inv, s, len(g)) / np.maximum(N, 1e-300)
    S = np.bincount(inv, n * (s / n - p_hat[inv]) ** 2, len(g))
    n2 = np.bincount(inv, n ** 2, len(g))
    p = np.clip(parent_mean[g], 1e-6, 1 - 1e-6)
    use = size >= 2
    num = float((S / (p * (1 - p)) - (size - 1))[use].sum())
    den = float((N - size + 1 - n2 / np.maximum(N, 1e-300))[use].sum())
    if den <= 0:
        return 1.0 / RHO_MIN - 1.0  # nothing to estimate from: shrink fully to the parent
    rho = float(np.clip(num / den, RHO_MIN, RHO_MAX))
    return 1.0 / rho - 1.0


def tenure_band(tenure_days: np.ndarray, *, bounds_days=TENURE_BANDS_DAYS) -> np.ndarray:
    """Band code per agent: how many of the increasing ``bounds_days`` its tenure has reached
    (0: under the first)."""
    return np.searchsorted(np.asarray(bounds_days, float), np.asarray(tenure_days, float), side="right")


def cohorts(*, tenure_days: np.ndarray, skill: np.ndarray) -> np.ndarray:
    """Cohort code per agent: tenure band x primary intent (see the module doc)."""
    band = tenure_band(tenure_days)
    primary = np.argmax(skill, axis=1) if skill.shape[1] else np.zeros(len(skill), np.int64)
    return band.astype(np.int64) * max(skill.shape[1], 1) + primary


def nearest_intents(skill: np.ndarray, known: np.ndarray, *, k: int = 2) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """For each unknown intent, its ``k`` nearest known intents by cosine similarity of the
    agents' proficiency columns, and normalised non-negative weights."""
    cols = skill / np.maximum(np.linalg.norm(skill, axis=0, keepdims=True), 1e-12)
    sim = cols.T @ cols
    known_idx = np.flatnonzero(known)
    out = {}
    for j in np.flatnonzero(~known):
        if not len(known_idx):
            break
        order = known_idx[np.lexsort((known_idx, -sim[j, known_idx]))][:k]
        w = np.maximum(sim[j, order], 0) + 1e-12
        out[int(j)] = (order, w / w.sum())
    return out


@dataclass(frozen=True, eq=False)
class Posterior:
    """Beta posteriors of every agent x intent resolution rate: ``alpha``, ``beta`` (n_agents,
    n_intents), their ``mean``; ``own_n`` the pair's own (decayed) count and ``agent_n`` the
    agent's (0: scored from the prior alone); the fitted strengths and ``mapped_intents``."""

    alpha: np.ndarray
    beta: np.ndarray
    agent_n: np.ndarray
    own_n: np.ndarray
    strengths: dict[str, float]
    mapped_intents: tuple[int, ...]
    cohort: np.ndarray
    agent_mean: np.ndarray  # (n_agents,) the agent-level estimate every intent shrinks to

    @property
    def mean(self) -> np.ndarray:
        return self.alpha / (self.alpha + self.beta)


def fit_posterior(*, n_ai: np.ndarray, s_ai: np.ndarray, cohort: np.ndarray, skill: np.ndarray,
                  n_neighbours: int = 2, n_csat: np.ndarray | None = None,
                  s_csat: np.ndarray | None = None, intent_parent: bool = False) -> Posterior:
    """The hierarchy fitted to agent x intent totals (``n_ai``, ``s_ai``; decayed counts are
    fine) with each agent's ``cohort`` code; ``skill`` (n_agents, n_intents) maps new intents.
    With the agents' CSAT totals (``n_csat``, ``s_csat``) the cohort and agent levels shrink
    towards parents moved by the CSAT proxy (:func:`_levels_with_proxy`); ``intent_parent``:
    the agent x intent parents shifted by each known intent's centre rate (module doc)."""
    n_a, s_a = n_ai.sum(axis=1), s_ai.sum(axis=1)
    N, S = n_a.sum(), s_a.sum()
    p0 = S / N if N > 0 else 0.5
    codes, c_idx = np.unique(cohort, return_inverse=True)
    n_c = np.bincount(c_idx, n_a, len(codes))
    s_c = np.bincount(c_idx, s_a, len(codes))
    proxy = None
    if n_csat is not None and s_csat is not None:
        proxy = fit_proxy(n_csat=np.asarray(n_csat, float), s_csat=np.asarray(s_csat, float), c_idx=c_idx,
                          n_res=n_a, s_res=s_a)
    extra: dict[str, float] = {}
    if proxy is None:
        m_c = prior_strength(s_c, n_c, np.zeros(len(codes), np.int64), np.array([p0]))
        p_c = (s_c + m_c * p0) / (n_c + m_c)
        m_a = prior_strength(s_a, n_a, c_idx, p_c)
        p_a = (s_a + m_a * p_c[c_idx]) / (n_a + m_a)
    else:
        m_c, m_a, p_a = _levels_with_proxy(p0=p0, n_c=n_c, s_c=s_c, n_a=n_a, s_a=s_a, c_idx=c_idx, proxy=proxy)
        extra = {"csat_beta": proxy.beta, **proxy.strengths}
    known = n_ai.sum(axis=0) > 0
    parent = np.repeat(p_a[:, None], n_ai.shape[1], axis=1)
    if intent_parent and N > 0:
        parent[:, known] = intent_shifted(p_a, p_intent=s_ai.sum(axis=0)[known] / n_ai.sum(axis=0)[known], p_centre=p0)
    rows = np.repeat(np.arange(len(n_a)), n_ai.shape[1])
    m_ai = prior_strength(s_ai.ravel(), n_ai.ravel(), rows, p_a)
    # Pre-mapping posterior means of known intents, then new intents take their neighbours'.
    mean_known = (s_ai + m_ai * parent) / (n_ai + m_ai)
    mapped = nearest_intents(skill, known, k=n_neighbours)
    for j, (nb, w) in mapped.items():
        parent[:, j] = mean_known[:, nb] @ w
    alpha = s_ai + m_ai * parent
    beta = (n_ai - s_ai) + m_ai * (1 - parent)
    return Posterior(alpha=alpha, beta=np.maximum(beta, 1e-9), agent_n=n_a, own_n=n_ai,
                     strengths={"cohort": m_c, "agent": m_a, "agent_intent": m_ai, "centre_rate": p0, **extra},
                     mapped_intents=tuple(sorted(mapped)), cohort=cohort, agent_mean=p_a)


def intent_shifted(p_agent: np.ndarray, *, p_intent: np.ndarray, p_centre: float) -> np.ndarray:
    """(n_agents, n_intents): ``sigmoid(logit p_agent + logit p_intent - logit p_centre)``
    (:func:`~assign.learn.logit.margin_of`'s clipped logits)."""
    shift = margin_of(p_intent) - margin_of(np.array([p_centre]))
    return sigmoid(margin_of(p_agent)[:, None] + shift[None, :])


def _levels_with_proxy(*, p0: float, n_c, s_c, n_a, s_a, c_idx, proxy: CsatProxy) -> tuple[float, float, np.ndarray]:
    """Cohort and agent levels whose parents are moved by the CSAT proxy: a cohort shrinks
    to ``p0 + beta (csat_cohort - csat_centre)``, an agent to ``p_cohort + beta (csat_agent -
    csat_cohort)``; each level's strength by the known-mean moment estimate. Returns
    ``(M_cohort, M_agent, p_agent)``."""
    b = proxy.beta
    pi_c = np.clip(p0 + b * (proxy.cohort - proxy.centre), 1e-3, 1 - 1e-3)
    m_c = known_mean_strength(s_c, n_c, pi_c, rho_min=RHO_MIN, rho_max=RHO_MAX)
    p_c = (s_c + m_c * pi_c) / (n_c + m_c)
    pi_a = np.clip(p_c[c_idx] + b * (proxy.agent - proxy.cohort[c_idx]), 1e-3, 1 - 1e-3)
    m_a = known_mean_strength(s_a, n_a, pi_a, rho_min=RHO_MIN, rho_max=RHO_MAX)
    return m_c, m_a, (s_a + m_a * pi_a) / (n_a + m_a)
