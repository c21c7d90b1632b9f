"""The learnable-links new-hire estimator: the ideal estimator's machinery on what a router can learn.

:mod:`benchmarks.cold_start_bound`'s ideal estimator knows the world's links: every contact's
true resolution logit up to the hire's ability, the exact CSAT link and the population's prior.
This estimator keeps its machinery (an exact grid posterior, each outcome counted once the world
reveals it, the estimate the posterior mean of the hire's resolution rate over the contacts it
has served) and replaces every piece of world knowledge by what the router has or can learn:

- the per-contact resolution logit: the population model's (``pred_margin``), up to the
  hire's offset ``a``: ``resolved ~ Bernoulli(sigmoid(m_i + a))``;
- the per-contact CSAT logit: the population model's CSAT mean on the logit scale,
  ``z_i = logit((pred_csat - 1) / 4)``, up to the hire's CSAT offset ``phi``:
  ``csat - 1 ~ Binomial(4, sigmoid(z_i + phi))`` (the world's CSAT draw is binomial);
- the prior and the link: ``(a, phi) ~ N(mu, Sigma)`` (:class:`Links`), so the CSAT link is
  ``phi | a ~ N(mu_phi + b (a - mu_a), s_u^2)``, ``b = Sigma_12 / Sigma_11``; ``Sigma`` and each
  group's ``mu`` fitted by maximum marginal likelihood (:func:`fit_links`) on the warm history
  only: tenured agents (one group) and the earlier cohort of hires (another); the new hires
  take the earlier cohort's ``mu``. Nothing of the run (not even the other hires' outcomes)
  enters the links; no forgetting.

With the true links (``m_i`` the true logits at ability 0, ``z_i`` the true CSAT logits at
ability 0, ``mu = 0``, ``Sigma`` the rank-one prior of (a, k a) with ``k`` the true CSAT link)
it is the ideal estimator (tested).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize
from scipy.special import logsumexp

A_GRID = np.linspace(-2.5, 2.5, 201)
#: The fit's grid of the CSAT offset.
PHI_FIT = np.linspace(-3.5, 3.5, 351)
#: Below this conditional sd of phi given a, the CSAT link is taken as exact (phi a function of a).
SU_EXACT = 1e-6
#: Bound of atanh(correlation) in the fit: |correlation| <= 0.995 (the likelihood can push it to 1).
ATANH_RHO_MAX = 3.0
#: The CSAT mean's share (csat - 1) / 4 is clipped to this before its logit.
Q_CLIP = 1e-3


def _sig(x):
    return 1.0 / (1.0 + np.exp(-x))


@dataclass(frozen=True)
class Links:
    """The hires' prior of (resolution-logit offset ``a``, CSAT-logit offset ``phi``): ``mu`` (2,),
    ``sigma`` (2, 2)."""

    mu: np.ndarray
    sigma: np.ndarray
    mu_tenured: np.ndarray | None = None  # the tenured agents' mean (reported only)

    def conditional(self) -> tuple[float, float]:
        """(slope ``b`` of phi on a, conditional sd ``s_u`` of phi given a)."""
        s = np.asarray(self.sigma, float)
        b = s[0, 1] / s[0, 0]
        return float(b), float(np.sqrt(max(s[1, 1] - s[0, 1] ** 2 / s[0, 0], 0.0)))


def csat_logit(pred_csat: np.ndarray) -> np.ndarray:
    """The population model's CSAT mean on the logit scale of the world's binomial draw."""
    q = np.clip((np.asarray(pred_csat, float) - 1.0) / 4.0, Q_CLIP, 1 - Q_CLIP)
    return np.log(q / (1 - q))


def res_loglik(y: np.ndarray, m: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """(n, grid): log-likelihood of each resolution at logit ``m_i + grid`` (NaN outcome: 0)."""
    p = np.clip(_sig(np.asarray(m, float)[:, None] + grid[None]), 1e-12, 1 - 1e-12)
    y = np.asarray(y, float)[:, None]
    return np.where(np.isfinite(y), np.nan_to_num(y) * np.log(p) + (1 - np.nan_to_num(y)) * np.log(1 - p), 0.0)


def csat_loglik(csat: np.ndarray, z: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """(n, grid): binomial log-likelihood of each CSAT (1-5) at logit ``z_i + grid`` (NaN: 0)."""
    q = np.clip(_sig(np.asarray(z, float)[:, None] + grid[None]), 1e-12, 1 - 1e-12)
    k = np.asarray(csat, float)[:, None] - 1
    return np.where(np.isfinite(k), np.nan_to_num(k) * np.log(q) + (4 - np.nan_to_num(k)) * np.log(1 - q), 0.0)


def known_cumsum(ll: np.ndarray, known: np.ndarray, t: np.ndarray) -> np.ndarray:
    """(len(t), grid): the sum of the rows of ``ll`` known (``known <= t``) at each time ``t``."""
    order = np.argsort(known, kind="stable")
    c = np.vstack([np.zeros((1, ll.shape[1])), np.cumsum(ll[order], axis=0)])
    return c[np.searchsorted(known[order], t, side="right")]


def learned_estimates(df, *, m: np.ndarray, z: np.ndarray, links: Links, label_delay_s: float,
                      csat_delay_s: float, use_csat: bool = True) -> np.ndarray:
    """The estimate at the start of each of the hire's contacts (``df``: start, end, resolved,
    csat in start order; ``m``, ``z``: the router's resolution and CSAT logits of those contacts):
    the posterior mean of ``mean_{i<=n} sigmoid(m_i + a)`` given the outcomes known by then."""
    t, end = df["start"].to_numpy(float), df["end"].to_numpy(float)
    mu_a, mu_p = float(links.mu[0]), float(links.mu[1])
    sd_a = float(np.sqrt(links.sigma[0, 0]))
    la = -0.5 * ((A_GRID - mu_a) / sd_a) ** 2 + known_cumsum(res_loglik(df["resolved"], m, A_GRID), end + label_delay_s,
                                                             t)
    if use_csat:
        b, su = links.conditional()
        centre = mu_p + b * (A_GRID - mu_a)  # phi's conditional mean at each a
        if su < SU_EXACT:  # phi a function of a: evaluate the CSAT at it
            la = la + known_cumsum(csat_loglik(df["csat"], z, centre), end + csat_delay_s, t)
        else:  # integrate phi out on a grid spanning its conditional means +- 3 (steps of at most s_u / 4)
            lo, hi = centre.min() - 3.0, centre.max() + 3.0
            phi = np.linspace(lo, hi, int(min(np.ceil((hi - lo) / min(0.02, su / 4)), 4000)) + 1)
            cphi = known_cumsum(csat_loglik(df["csat"], z, phi), end + csat_delay_s, t)  # (n, P)
            lg = -0.5 * ((phi[None] - centre[:, None]) / su) ** 2  # (A, P)
            lg = lg - logsumexp(lg, axis=1, keepdims=True)  # each a's conditional prior of phi, on the grid
            out = np.empty((len(t), len(A_GRID)))
            step = max(1, int(4e6 // (len(A_GRID) * len(phi))))
            for s in range(0, len(t), step):
                out[s:s + step] = logsumexp(cphi[s:s + step, None, :] + lg[None], axis=2)
            la = la + out
    w = np.exp(la - la.max(axis=1, keepdims=True))
    w /= w.sum(axis=1, keepdims=True)
    rate = np.cumsum(_sig(np.asarray(m, float)[:, None] + A_GRID[None]), axis=0) / np.arange(1, len(t) + 1)[:, None]
    return (w * rate).sum(axis=1)


def agent_logliks(agent: np.ndarray, *, resolved: np.ndarray, m: np.ndarray, csat: np.ndarray, z: np.ndarray,
                  agents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per agent of ``agents`` (in that order), the log-likelihood of its outcomes over the offset
    grids: resolutions over ``A_GRID`` (J, A), CSAT over ``PHI_FIT`` (J, P)."""
    code = {a: k for k, a in enumerate(agents)}
    g = np.fromiter((code.get(a, -1) for a in agent), np.int64, len(agent))
    ok = g >= 0
    R, C = np.zeros((len(agents), len(A_GRID))), np.zeros((len(agents), len(PHI_FIT)))
    rr = np.isfinite(np.asarray(resolved, float)) & ok
    cc = np.isfinite(np.asarray(csat, float)) & ok
    np.add.at(R, g[rr], res_loglik(np.asarray(resolved, float)[rr], np.asarray(m, float)[rr], A_GRID))
    np.add.at(C, g[cc], csat_loglik(np.asarray(csat, float)[cc], np.asarray(z, float)[cc], PHI_FIT))
    return R, C


def _unpack(x: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    mu = x[:2 * n_groups].reshape(n_groups, 2)
    sa, sp, rho = np.exp(x[-3]), np.exp(x[-2]), np.tanh(x[-1])
    return mu, np.array([[sa * sa, rho * sa * sp], [rho * sa * sp, sp * sp]])


def marginal_loglik(x: np.ndarray, R: np.ndarray, C: np.ndarray, group: np.ndarray, n_groups: int) -> float:
    """Sum over agents of the log marginal likelihood of their outcomes, their (a, phi) integrated
    over ``N(mu_group, Sigma)`` on the grids (``x``: the group means, log sds, atanh correlation)."""
    mu, s = _unpack(x, n_groups)
    inv = np.linalg.inv(s)
    da, dp = A_GRID[1] - A_GRID[0], PHI_FIT[1] - PHI_FIT[0]
    rmax, cmax = R.max(axis=1), C.max(axis=1)
    eR, eC = np.exp(R - rmax[:, None]), np.exp(C - cmax[:, None])
    total = float((rmax + cmax).sum())
    for g in range(n_groups):
        idx = group == g
        if not idx.any():
            continue
        da_, dp_ = (A_GRID - mu[g, 0])[:, None], (PHI_FIT - mu[g, 1])[None]
        q = inv[0, 0] * da_ * da_ + 2 * inv[0, 1] * da_ * dp_ + inv[1, 1] * dp_ * dp_  # (A, P)
        dens = np.exp(-0.5 * q) * da * dp / (2 * np.pi * np.sqrt(np.linalg.det(s)))
        val = ((eR[idx] @ dens) * eC[idx]).sum(axis=1)
        total += float(np.log(np.maximum(val, 1e-300)).sum())
    return total


def fit_links(R: np.ndarray, C: np.ndarray, *, group: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Maximum marginal likelihood of the group means ``mu`` (n_groups, 2) and the agents'
    covariance ``Sigma`` around them (2, 2), from per-agent grid log-likelihoods (:func:`agent_logliks`)."""
    group = np.asarray(group, np.int64)
    mode = np.stack([A_GRID[R.argmax(axis=1)], PHI_FIT[C.argmax(axis=1)]], 1)
    mu0 = np.array([mode[group == g].mean(axis=0) if (group == g).any() else np.zeros(2) for g in range(n_groups)])
    x0 = np.concatenate([mu0.ravel(), [np.log(0.4), np.log(0.4), np.arctanh(0.5)]])
    bounds = [(-4.0, 4.0)] * (2 * n_groups) + [(np.log(0.02), np.log(3.0))] * 2 + [(-ATANH_RHO_MAX, ATANH_RHO_MAX)]
    res = optimize.minimize(lambda x: -marginal_loglik(x, R, C, group, n_groups), x0, method="L-BFGS-B",
                            bounds=bounds, options={"maxiter": 500})
    return _unpack(res.x, n_groups)
