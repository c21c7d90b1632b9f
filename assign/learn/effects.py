"""Live agent effects on the population model's logit, by hierarchical empirical Bayes.

Each outcome event carries the population model's prediction for its pair
(``pred_margin``: resolution logit; ``pred_csat``: CSAT mean; :mod:`assign.learn.population`).
Per agent, decayed totals (exponential forgetting, as :mod:`assign.learn.live`) give two noisy
views of the agent's effect:

- resolution: ``theta_hat``, the maximum-likelihood offset of the agent's resolutions on the
  model's logits (totals kept per logit bin, so the fit is not linearised around 0: a one-step
  estimate overshoots a new hire's offset of -1.1 on logits of 0.8-1.8 by about 0.3), sampling variance
  the inverse Fisher information at it;
- CSAT: ``phi_hat = mean(csat - pred_csat)``, variance ``sigma_c^2 / n`` with ``sigma_c^2`` the
  pooled residual variance. CSAT is known an hour after wrap-up, resolution 72 h after.

Model: ``(theta_a, phi_a) ~ N(mu_g, Sigma)`` around the agent's cohort ``g`` (tenure band,
:data:`assign.learn.shrink.TENURE_BANDS_DAYS`; skill is in the population model already),
``mu_g ~ N(0, Sigma)`` around the centre (0: the population model is fitted on the centre).
``Sigma`` (2 x 2) is estimated by the method of moments over the agents, around their cohort's
mean (so that a cohort's difference, e.g. the new hires' learning curve, is not counted as agent
variance): ``E[(theta_hat - mean)^2] = Sigma_11 + 1 / w``, ``E[(phi_hat - mean)^2] = Sigma_22 +
sigma_c^2 / n``, ``E[(theta_hat - .)(phi_hat - .)] = Sigma_12`` (the two outcomes' noises are
independent given the pair), with the degrees of freedom of :func:`_moments`. A cohort's mean
is the Gaussian posterior given its agents; an agent's effect the Gaussian posterior given its
own two views, with the cohort mean's uncertainty added to the
prior. So CSAT moves a new hire within hours through the fitted correlation, pooled with the
other hires of its cohort, and resolution takes over as it arrives.

**Warm links** (:class:`WarmLinks`, :func:`fit_warm_links`; ``docs/learn.md`` 5.7): a scorer bound
to a run with the cohort prior fits the hyperparameters (each cohort's mean of the two views, and
``Sigma``) once, on the warm history, by maximum marginal likelihood (each cohort's mean free,
|correlation| <= 0.995), and :func:`fit_views` then uses them instead of the moments and the
``N(0, Sigma)`` cohort prior: a new hire's CSAT-only view no longer deflates the fitted correlation,
and its centre is the earlier cohort's own mean. Known limit of the refitted hierarchy: the CSAT ->
resolution relation is learnt across agents whose differences are abilities; where the
cohort's difference (the learning curve) moves CSAT less per resolution point, the CSAT view
under-states it until resolutions arrive, unless the cohort has data of its own (an earlier
cohort of hires in the history: ``docs/learn.md`` 3.3).
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from assign.history import epoch_seconds
from assign.learn.logs import check_outcomes
from assign.learn.shrink import TENURE_BANDS_DAYS

#: Floors of the between-agent variances, and the largest |correlation| used.
VAR_MIN, RHO_MAX = 1e-4, 0.95
#: Fewest agents with a view for its between-agent variance to be estimated (else VAR_FALLBACK).
MIN_AGENTS = 5
VAR_FALLBACK = 0.25
#: Per agent: resolution count, resolved and model-logit sums per logit bin (``nb``, ``sb``, ``mb``:
#: (n_agents, n_bins)); CSAT count, sum (c - c_hat), sum (c - c_hat)^2.
_TOTALS = ("nb", "sb", "mb", "n", "e", "q")
#: Edges of the model-logit bins the resolution totals are kept in (the likelihood of an agent's
#: offset is evaluated at each bin's mean logit: exact up to the spread within a bin).
LOGIT_EDGES = np.linspace(-4.0, 4.0, 33)
N_BINS = len(LOGIT_EDGES) + 1
#: Ridge on the offset's maximum-likelihood fit (keeps all-resolved agents finite).
ML_RIDGE = 1e-2


@dataclass(frozen=True, eq=False)
class EffectVersion:
    """Decayed residual totals per agent at time ``t_s`` (epoch seconds); immutable."""

    version: int
    t_s: float
    agent_ids: tuple[str, ...]
    nb: np.ndarray
    sb: np.ndarray
    mb: np.ndarray
    n: np.ndarray
    e: np.ndarray
    q: np.ndarray

    def agent_codes(self, agent_ids) -> np.ndarray:
        return row_codes(self.agent_ids, agent_ids)

    def totals(self, agent_ids) -> dict[str, np.ndarray]:
        """The totals of ``agent_ids`` in that order (zeros for agents never seen)."""
        c = self.agent_codes(agent_ids)
        ok = c >= 0
        out = {}
        for k in _TOTALS:
            src = getattr(self, k)
            v = np.zeros((len(c), *src.shape[1:]))
            v[ok] = src[c[ok]]
            out[k] = v
        return out


def row_codes(known: tuple[str, ...], agent_ids) -> np.ndarray:
    """Row of each agent id among a version's ``known`` ids (-1: never seen)."""
    code = {a: k for k, a in enumerate(known)}
    return np.fromiter((code.get(str(a), -1) for a in agent_ids), np.int64, len(agent_ids))


class FoldedTotals:
    """Live totals kept as immutable versions: ``observe`` folds outcome events carrying
    ``pred_margin`` into a new version (copy on write, one reference swapped under a lock);
    ``current()`` is what a tick pins. A subclass sets ``_v``, ``_lock`` and ``half_life_s`` and
    says how a batch folds in (``_fold``)."""

    _v: Any
    _lock: threading.Lock
    half_life_s: float

    def current(self) -> Any:
        return self._v

    def observe(self, outcomes: pd.DataFrame, *, checked: bool = False) -> Any:
        ev = outcomes if checked else check_outcomes(outcomes)
        if not len(ev) or "pred_margin" not in ev.columns:
            return self._v
        with self._lock:
            self._v = self._fold(self._v, ev)
            return self._v

    def _fold(self, v: Any, ev: pd.DataFrame) -> Any:
        raise NotImplementedError


class EffectEstimates(FoldedTotals):
    """The live residual totals of :func:`fold_effects`: outcome events carrying ``pred_margin`` /
    ``pred_csat`` (see :class:`FoldedTotals`). ``half_life_s``: exponential forgetting."""

    def __init__(self, *, half_life_s: float = 30 * 86400.0) -> None:
        self.half_life_s = float(half_life_s)
        z, zb = np.zeros(0), np.zeros((0, N_BINS))
        self._v = EffectVersion(version=0, t_s=-math.inf, agent_ids=(), nb=zb, sb=zb, mb=zb, n=z, e=z, q=z)
        self._lock = threading.Lock()

    def _fold(self, v: EffectVersion, ev: pd.DataFrame) -> EffectVersion:
        return fold_effects(v, ev, half_life_s=self.half_life_s)


def fold_effects(v: EffectVersion, ev: pd.DataFrame, *, half_life_s: float) -> EffectVersion:
    """``v`` decayed to the batch's time plus the batch's residuals, each weighted by its age."""
    t = epoch_seconds(ev["known_at"])
    t_new = max(v.t_s, float(t.max()))
    ids = v.agent_ids + tuple(dict.fromkeys(str(a) for a in ev["agent_id"] if str(a) not in set(v.agent_ids)))
    forget = math.isfinite(half_life_s)
    decay = 2.0 ** (-(t_new - v.t_s) / half_life_s) if forget and math.isfinite(v.t_s) else 1.0
    wt = np.exp2(-(t_new - t) / half_life_s) if forget else np.ones(len(t))
    code = {a: k for k, a in enumerate(ids)}
    a = np.fromiter((code[str(x)] for x in ev["agent_id"]), np.int64, len(ev))
    new = len(ids) - len(v.agent_ids)
    out = {k: np.concatenate([getattr(v, k), np.zeros((new, *getattr(v, k).shape[1:]))]) * decay for k in _TOTALS}
    m = pd.to_numeric(ev["pred_margin"], errors="coerce").to_numpy(np.float64)
    y = ev["resolved"].to_numpy(np.float64)
    ok = np.isfinite(y) & np.isfinite(m)
    b = np.searchsorted(LOGIT_EDGES, m[ok])
    for k, val in (("nb", wt[ok]), ("sb", wt[ok] * y[ok]), ("mb", wt[ok] * m[ok])):
        np.add.at(out[k], (a[ok], b), val)
    if "pred_csat" in ev.columns:
        ch = pd.to_numeric(ev["pred_csat"], errors="coerce").to_numpy(np.float64)
        c = ev["csat"].to_numpy(np.float64)
        ok = np.isfinite(c) & np.isfinite(ch)
        d = c[ok] - ch[ok]
        out["n"] += np.bincount(a[ok], wt[ok], len(ids))
        out["e"] += np.bincount(a[ok], wt[ok] * d, len(ids))
        out["q"] += np.bincount(a[ok], wt[ok] * d * d, len(ids))
    return EffectVersion(version=v.version + 1, t_s=t_new, agent_ids=ids, **out)


@dataclass(frozen=True, eq=False)
class AgentEffects:
    """Posterior of each roster agent's resolution-logit effect: ``mean``, ``var``; ``n_obs``
    its outcome weight (0: prior alone); ``cohort`` codes; fitted ``sigma`` (2 x 2) and
    ``cohort_mean`` (n_cohorts, 2)."""

    mean: np.ndarray
    var: np.ndarray
    n_obs: np.ndarray
    cohort: np.ndarray
    sigma: np.ndarray
    cohort_mean: np.ndarray


def tenure_band(tenure_days: np.ndarray) -> np.ndarray:
    return np.searchsorted(np.asarray(TENURE_BANDS_DAYS), np.asarray(tenure_days, float), side="right")


@dataclass(frozen=True, eq=False)
class WarmLinks:
    """The hierarchy's hyperparameters fitted once on the warm history (:func:`fit_warm_links`):
    each cohort code's mean ``mu`` (n_codes, 2; ``known`` False: no agent of it had data, mean 0
    with ``sigma`` of uncertainty, as an empty band) and the agents' covariance ``sigma``."""

    mu: np.ndarray
    known: np.ndarray
    sigma: np.ndarray


def views(t: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Each agent's two views ``y`` (n, 2) and their sampling variances (inf: no such view)."""
    theta, w = resolution_view(t["nb"], t["sb"], t["mb"])
    n, e, q = t["n"], t["e"], t["q"]
    s2c = float(q.sum() / n.sum()) if n.sum() > 0 else 1.0
    y = np.stack([theta, np.where(n > 0, e / np.maximum(n, 1e-300), 0.0)], 1)
    noise = np.stack([np.where(w > 0, 1 / np.maximum(w, 1e-300), np.inf), np.where(n > 0, s2c / np.maximum(n, 1e-300),
                                                                                    np.inf)], 1)
    return y, noise


def fit_effects(t: dict[str, np.ndarray], *, cohort: np.ndarray, links: WarmLinks | None = None) -> AgentEffects:
    """The hierarchy of the module doc over agents with totals ``t`` (:meth:`EffectVersion.totals`);
    with ``links``, its hyperparameters are those (fitted on the warm history), not refitted."""
    y, noise = views(t)
    return fit_views(y, noise, cohort=cohort, n_obs=t["nb"].sum(axis=1) + t["n"], links=links)


def resolution_view(nb: np.ndarray, sb: np.ndarray, mb: np.ndarray, *, iters: int = 30) -> tuple[np.ndarray, ...]:
    """Per agent, the maximum-likelihood logit offset ``theta`` of its resolutions given the
    model's logits (binned: each bin at its mean logit; ridge :data:`ML_RIDGE`) by Newton, and
    the Fisher information at it (0 for an agent without resolutions)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        mbar = np.where(nb > 0, mb / nb, 0.0)
    theta = np.zeros(len(nb))
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-(mbar + theta[:, None])))
        info = (nb * p * (1 - p)).sum(axis=1) + ML_RIDGE
        step = ((sb - nb * p).sum(axis=1) - ML_RIDGE * theta) / info
        theta = np.clip(theta + step, -8.0, 8.0)
        if np.abs(step).max(initial=0.0) < 1e-10:
            break
    p = 1.0 / (1.0 + np.exp(-(mbar + theta[:, None])))
    has = nb.sum(axis=1) > 0
    return np.where(has, theta, 0.0), np.where(has, (nb * p * (1 - p)).sum(axis=1), 0.0)


def fit_views(y: np.ndarray, noise: np.ndarray, *, cohort: np.ndarray, n_obs: np.ndarray,
              links: WarmLinks | None = None) -> AgentEffects:
    """The hierarchy given each agent's two views ``y`` (n_agents, 2) and their sampling
    variances ``noise`` (inf: no such view); ``links``: fixed hyperparameters (cohort codes index
    ``links.mu``)."""
    codes, g = np.unique(cohort, return_inverse=True)
    prec_obs = np.where(np.isfinite(noise), 1.0 / noise, 0.0)  # (n_agents, 2) diagonal precisions
    if links is None:
        sigma = _moments(y, noise, g)
        mu, mu_cov = _cohort_means(y, noise, g, len(codes), sigma)
    else:
        sigma = links.sigma
        c = np.clip(codes.astype(np.int64), 0, len(links.mu) - 1)
        ok = links.known[c] & (codes == c)
        mu = np.where(ok[:, None], links.mu[c], 0.0)
        mu_cov = np.where(ok[:, None, None], 0.0, sigma[None])
    prior = sigma[None] + mu_cov[g]                        # (n_agents, 2, 2)
    prior_prec = np.linalg.inv(prior)
    post_cov = np.linalg.inv(prior_prec + prec_obs[:, :, None] * np.eye(2)[None])
    rhs = np.einsum("aij,aj->ai", prior_prec, mu[g]) + prec_obs * y
    post = np.einsum("aij,aj->ai", post_cov, rhs)
    return AgentEffects(mean=post[:, 0], var=post_cov[:, 0, 0], n_obs=n_obs, cohort=np.asarray(cohort),
                        sigma=sigma, cohort_mean=mu)


def _moments(y: np.ndarray, noise: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Method-of-moments between-agent covariance of the two views, around each cohort's own mean
    (``g``: cohort codes), so that cohorts that differ (new hires against tenured agents) do not
    count as agent variance. Per view, over the cohorts with at least two agents having it:
    ``E[sum_g sum_i (y_i - ybar_g)^2] = Sigma_kk sum_g (n_g - 1) + sum_g (1 - 1/n_g) sum_i noise_i``;
    the cross-moment the same without noise (the two outcomes' noises are independent)."""
    s = np.zeros((2, 2))
    has = np.isfinite(noise)
    for k in range(2):
        ss, nz, df = _within(y[:, k], np.where(has[:, k], noise[:, k], 0.0), g, has[:, k])
        s[k, k] = max((ss - nz) / df, VAR_MIN) if df + 1 >= MIN_AGENTS else VAR_FALLBACK
    both = has.all(axis=1)
    cross, _, df = _within(y[:, 0], np.zeros(len(y)), g, both, other=y[:, 1])
    if df + 1 >= MIN_AGENTS:
        lim = RHO_MAX * math.sqrt(s[0, 0] * s[1, 1])
        s[0, 1] = s[1, 0] = float(np.clip(cross / df, -lim, lim))
    return s


def _within(y, noise, g, m, *, other=None) -> tuple[float, float, int]:
    """Over the agents ``m``, in cohorts of at least two of them: the within-cohort sum of
    squares (of products with ``other``), ``sum (1 - 1/n_g) noise_i`` and ``sum (n_g - 1)``."""
    gm = g[m]
    n_g = np.bincount(gm, minlength=int(g.max(initial=0)) + 1).astype(float)
    keep = n_g[gm] >= 2
    if not keep.any():
        return 0.0, 0.0, 0
    gk, nk = gm[keep], n_g[gm][keep]
    a = y[m][keep]
    b = a if other is None else other[m][keep]
    da = a - (np.bincount(gk, a, len(n_g)) / np.maximum(n_g, 1))[gk]
    db = b - (np.bincount(gk, b, len(n_g)) / np.maximum(n_g, 1))[gk]
    return float(np.sum(da * db)), float(np.sum((1 - 1 / nk) * noise[m][keep])), int(np.sum(n_g[n_g >= 2] - 1))


def _cohort_means(y, noise, g, k, sigma) -> tuple[np.ndarray, np.ndarray]:
    """Each cohort's mean effect (prior ``N(0, sigma)``) given its agents' views, each view
    ``N(mu_g, sigma + noise)`` (missing components marginalised out); mean and covariance."""
    has = np.isfinite(noise)
    both = has.all(axis=1)
    p = np.zeros((len(y), 2, 2))
    if both.any():
        p[both] = np.linalg.inv(sigma[None] + noise[both][:, :, None] * np.eye(2)[None])
    for c in range(2):  # one view only: its own precision, nothing about the other
        one = has[:, c] & ~both
        p[one, c, c] = 1.0 / (sigma[c, c] + noise[one, c])
    prec = np.zeros((k, 2, 2)) + np.linalg.inv(sigma)[None]
    rhs = np.zeros((k, 2))
    np.add.at(prec, g, p)
    np.add.at(rhs, g, np.einsum("aij,aj->ai", p, np.where(has, y, 0.0)))
    cov = np.linalg.inv(prec)
    return np.einsum("gij,gj->gi", cov, rhs), cov


def fit_warm_links(y: np.ndarray, noise: np.ndarray, *, cohort: np.ndarray, n_codes: int) -> WarmLinks:
    """The hierarchy's hyperparameters by maximum marginal likelihood over the agents with data:
    each agent's views ``N(mu_g, Sigma + diag(noise))`` (a missing view marginalised out), each
    cohort's mean free (not shrunk to the centre), ``|corr(Sigma)| <= RHO_WARM_MAX``. The moment
    estimate of :func:`_moments` and the cohorts' sample means start the search."""
    from scipy import optimize

    cohort = np.asarray(cohort, np.int64)
    has = np.isfinite(noise)
    use = has.any(axis=1)
    present = np.unique(cohort[use])
    s0 = _moments(y[use], noise[use], np.searchsorted(present, cohort[use]))
    mu0 = np.array([[np.mean(y[use & has[:, k] & (cohort == c), k]) if (use & has[:, k] & (cohort == c)).any()
                     else 0.0 for k in range(2)] for c in present])
    r0 = np.clip(s0[0, 1] / np.sqrt(s0[0, 0] * s0[1, 1]), -0.9, 0.9)
    x0 = np.concatenate([mu0.ravel(), 0.5 * np.log(np.diag(s0)), [np.arctanh(r0)]])
    gi = np.searchsorted(present, cohort[use])
    yy, nn, hh = y[use], np.where(has[use], noise[use], 0.0), has[use]

    def nll(x):
        mu, sig = _unpack_links(x, len(present))
        cov = sig[None] + nn[:, :, None] * np.eye(2)[None]
        d = np.where(hh, yy - mu[gi], 0.0)
        both = hh.all(axis=1)
        out = 0.0
        if both.any():
            cb, db = cov[both], d[both]
            det = cb[:, 0, 0] * cb[:, 1, 1] - cb[:, 0, 1] ** 2
            q = (cb[:, 1, 1] * db[:, 0] ** 2 - 2 * cb[:, 0, 1] * db[:, 0] * db[:, 1]
                 + cb[:, 0, 0] * db[:, 1] ** 2) / det
            out += 0.5 * float(np.sum(q + np.log(det)))
        for k in range(2):
            one = hh[:, k] & ~both
            v = cov[one, k, k]
            out += 0.5 * float(np.sum(d[one, k] ** 2 / v + np.log(v)))
        return out

    lim = float(np.arctanh(RHO_WARM_MAX))
    bounds = [(None, None)] * (2 * len(present)) + [(np.log(1e-3), np.log(10.0))] * 2 + [(-lim, lim)]
    x = optimize.minimize(nll, x0, method="L-BFGS-B", bounds=bounds, options={"maxiter": 500}).x
    mu_p, sigma = _unpack_links(x, len(present))
    mu, known = np.zeros((n_codes, 2)), np.zeros(n_codes, bool)
    mu[present], known[present] = mu_p, True
    return WarmLinks(mu=mu, known=known, sigma=sigma)


#: The largest |correlation| of the warm links' covariance (the likelihood can push it to 1).
RHO_WARM_MAX = 0.995


def _unpack_links(x: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    mu = x[:2 * n_groups].reshape(n_groups, 2)
    sa, sp, rho = np.exp(x[-3]), np.exp(x[-2]), np.tanh(x[-1])
    return mu, np.array([[sa * sa, rho * sa * sp], [rho * sa * sp, sp * sp]])
