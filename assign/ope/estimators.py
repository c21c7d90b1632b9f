"""Off-policy estimators for assignment policies, in the Open Bandit Pipeline's shape.

The unit is a routing window ``w`` (one solved snapshot). The target policy, re-run on the
window's snapshot, makes the pairs ``T_w``; the logging policy made the logged pairs, each
with its propensity. For every target pair ``k`` (contact i, agent j) the inputs are:

- ``window[k]``: its window (0..n_windows-1; windows where the target makes no pair still
  count as units of the bootstrap);
- ``matched[k]``: the logging policy made the same pair in that window;
- ``reward[k]``: the logged outcome of that pair where matched (ignored elsewhere);
- ``pscore[k]``: the logging policy's propensity of the pair in that window, the
  marginal ``P(pair in logged matching | snapshot)`` (0 when it never tries it);
- ``q_hat[k]``: the reward model's prediction for the pair (DM, DR, switch-DR).

The importance weight of a target pair is ``w_k = matched_k / pscore_k``: its expectation
given the snapshot is 1, so ``w_k * reward_k`` is unbiased for the pair's expected reward
(the linearity of a sum over pairs is what lets marginal pair propensities suffice, where
the probability of the whole matching would be astronomically small). The estimand is the
target's mean reward per contact it serves on the logged windows,
``V = sum_w sum_{k in T_w} E[r_k] / sum_w |T_w|``.

Each estimator returns per-window numerators ``A_w`` and denominators ``D_w``; the estimate
is ``sum A / sum D`` and the interval a percentile bootstrap over windows, which are the
independent units (contacts of one window share the agents' capacity).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from assign.validate import Problems

#: Switch-DR's candidate thresholds on the importance weight (inf = plain DR).
SWITCH_GRID = (2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, np.inf)


@dataclass(frozen=True, eq=False)
class PairData:
    """Target pairs with what the estimators need (see module doc); build with
    :func:`check_ope_inputs`."""

    window: np.ndarray
    n_windows: int
    matched: np.ndarray
    reward: np.ndarray
    pscore: np.ndarray
    q_hat: np.ndarray | None = None

    @property
    def n_pairs(self) -> int:
        return len(self.window)

    @property
    def iw(self) -> np.ndarray:
        """Importance weight of each target pair: matched / pscore (0 where not matched)."""
        return np.where(self.matched, 1.0 / np.where(self.matched, self.pscore, 1.0), 0.0)

    def per_window(self, x: np.ndarray) -> np.ndarray:
        return np.bincount(self.window, weights=x, minlength=self.n_windows)


def check_ope_inputs(*, window, n_windows, matched, reward, pscore, q_hat=None) -> PairData:
    """Validate the arrays of every estimator at once; each problem names its argument.

    >>> d = check_ope_inputs(window=[0, 1], n_windows=2, matched=[True, False], reward=[1.0, np.nan],
    ...                      pscore=[0.5, 0.0])
    >>> d.iw.tolist()
    [2.0, 0.0]
    >>> check_ope_inputs(window=[0, 3], n_windows=2, matched=[True, True], reward=[1.0, np.nan],
    ...                  pscore=[0.5, 0.0])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    assign.errors.InputError: invalid OPE inputs: 3 problems
      window: 1 values outside 0..1
      reward: 1 matched pairs without a finite reward
      pscore: 1 matched pairs with propensity outside (0, 1]
    """
    p = Problems()
    arrays = {}
    n = None
    for name, x, dtype in (("window", window, np.int64), ("matched", matched, bool), ("reward", reward, float),
                           ("pscore", pscore, float), ("q_hat", q_hat, float)):
        if x is None:
            continue
        try:
            a = np.asarray(x, dtype=dtype)
        except (TypeError, ValueError):
            p.add(name, f"cannot be read as {np.dtype(dtype).name}")
            continue
        if a.ndim != 1:
            p.add(name, f"expected a 1-d array, got shape {a.shape}")
            continue
        if n is None:
            n = len(a)
        elif len(a) != n:
            p.add(name, f"length {len(a)}, expected {n} (as window)")
            continue
        arrays[name] = a
    nw = p.number("n_windows", n_windows, lo=0, integer=True)
    if p:
        p.raise_if_any(what="OPE inputs")
    w, m, r, ps = arrays["window"], arrays["matched"], arrays["reward"], arrays["pscore"]
    bad = (w < 0) | (w >= nw)
    if bad.any():
        p.add("window", f"{int(bad.sum())} values outside 0..{int(nw) - 1}")
    bad = m & ~np.isfinite(r)
    if bad.any():
        p.add("reward", f"{int(bad.sum())} matched pairs without a finite reward")
    bad = m & ~((ps > 0) & (ps <= 1))
    if bad.any():
        p.add("pscore", f"{int(bad.sum())} matched pairs with propensity outside (0, 1]")
    bad = ~np.isfinite(ps) | (ps < 0) | (ps > 1)
    if bad.any() and not (m & bad).all():
        p.add("pscore", f"{int((bad & ~m).sum())} values outside [0, 1]")
    qh = arrays.get("q_hat")
    if qh is not None and not np.isfinite(qh).all():
        p.add("q_hat", f"{int((~np.isfinite(qh)).sum())} non-finite predictions")
    p.raise_if_any(what="OPE inputs")
    return PairData(window=w, n_windows=int(nw), matched=m, reward=np.where(m, r, 0.0), pscore=ps, q_hat=qh)


@dataclass(frozen=True)
class Interval:
    mean: float
    low: float
    high: float


class BaseOffPolicyEstimator(ABC):
    """One abstract method, :meth:`_window_terms`; the rest is shared."""

    estimator_name: str = "base"
    needs_q_hat: bool = False

    @abstractmethod
    def _window_terms(self, data: PairData) -> tuple[np.ndarray, np.ndarray]:
        """Per-window numerator and denominator of the estimate."""

    def _check(self, data: PairData) -> None:
        if self.needs_q_hat and data.q_hat is None:
            p = Problems()
            p.add("q_hat", f"{self.estimator_name} needs the reward model's predictions")
            p.raise_if_any(what="OPE inputs")

    def estimate_policy_value(self, data: PairData) -> float:
        """The point estimate ``sum_w A_w / sum_w D_w`` (NaN when the target makes no pair)."""
        self._check(data)
        a, d = self._window_terms(data)
        return float(a.sum() / d.sum()) if d.sum() > 0 else float("nan")

    def estimate_interval(self, data: PairData, *, alpha: float = 0.05, n_bootstrap: int = 1000,
                          random_state: int = 0) -> Interval:
        """Percentile bootstrap over windows (resampled with replacement, terms fixed)."""
        self._check(data)
        a, d = self._window_terms(data)
        return bootstrap_ratio(a, d, alpha=alpha, n_bootstrap=n_bootstrap, random_state=random_state)


def bootstrap_ratio(a: np.ndarray, d: np.ndarray, *, alpha: float, n_bootstrap: int,
                    random_state: int) -> Interval:
    """Mean and percentile interval of ``sum(a) / sum(d)`` over window resamples."""
    n = len(a)
    if n == 0 or d.sum() <= 0:
        nan = float("nan")
        return Interval(nan, nan, nan)
    rng = np.random.default_rng(random_state)
    est = np.empty(n_bootstrap)
    step = max(1, 4_000_000 // n)
    for lo in range(0, n_bootstrap, step):
        m = min(step, n_bootstrap - lo)
        idx = rng.integers(0, n, size=(m, n))
        num, den = a[idx].sum(axis=1), d[idx].sum(axis=1)
        est[lo:lo + m] = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
    est = est[np.isfinite(est)]
    return Interval(float(est.mean()), float(np.quantile(est, alpha / 2)), float(np.quantile(est, 1 - alpha / 2)))


@dataclass(frozen=True)
class DirectMethod(BaseOffPolicyEstimator):
    """DM: ``V = sum_k q_hat_k / sum_w |T_w|`` (obp: ``mean(sum_a pi_e(a|x) q_hat(x, a))``).
    No weights, so low variance; biased wherever the reward model is."""

    estimator_name: str = "dm"
    needs_q_hat: bool = True

    def _window_terms(self, data):
        return data.per_window(data.q_hat), data.per_window(np.ones(data.n_pairs))


@dataclass(frozen=True)
class InverseProbabilityWeighting(BaseOffPolicyEstimator):
    """IPS: ``V = sum_k w_k r_k / sum_w |T_w|``, ``w_k = matched_k / pscore_k`` (obp:
    ``mean(iw * reward)``). Unbiased when every target pair has pscore > 0."""

    estimator_name: str = "ips"

    def _window_terms(self, data):
        return data.per_window(data.iw * data.reward), data.per_window(np.ones(data.n_pairs))


@dataclass(frozen=True)
class SelfNormalizedInverseProbabilityWeighting(BaseOffPolicyEstimator):
    """SNIPS: ``V = sum_k w_k r_k / sum_k w_k`` (obp: ``mean(iw * reward) / mean(iw)``).
    Consistent, slightly biased, far less variable than IPS when weights are large."""

    estimator_name: str = "snips"

    def _window_terms(self, data):
        return data.per_window(data.iw * data.reward), data.per_window(data.iw)


@dataclass(frozen=True)
class DoublyRobust(BaseOffPolicyEstimator):
    """DR: ``V = sum_k [q_hat_k + w_k (r_k - q_hat_k)] / sum_w |T_w|`` (obp: ``mean(sum_a
    pi_e q_hat + iw (reward - q_hat(x, a_logged)))``). Unbiased if the propensities are right,
    whatever the reward model; less variable than IPS when the reward model is good."""

    estimator_name: str = "dr"
    needs_q_hat: bool = True

    def _window_terms(self, data):
        return (data.per_window(data.q_hat + data.iw * (data.reward - data.q_hat)),
                data.per_window(np.ones(data.n_pairs)))


@dataclass(frozen=True)
class SwitchDoublyRobust(BaseOffPolicyEstimator):
    """Switch-DR (Wang et al. 2017): DR where the weight is at most ``tau``, DM above:
    ``V = sum_k [q_hat_k + 1{w_k <= tau} w_k (r_k - q_hat_k)] / sum_w |T_w|`` (obp's
    ``SwitchDoublyRobust`` with ``lambda_ = tau``).

    Tuning rule (``tau=None``): from :data:`SWITCH_GRID`, the ``tau`` with the smallest
    estimated MSE, ``var_hat(tau) + bias_hat(tau)^2``, as obp's ``_estimate_mse_score``: the
    variance of the ratio over windows, and the bias as the (unbiased) estimate of what the
    switch drops, ``|sum_k 1{w_k > tau} w_k (r_k - q_hat_k)| / sum_w |T_w|``.
    """

    tau: float | None = None
    estimator_name: str = "switch-dr"
    needs_q_hat: bool = True

    def _window_terms(self, data):
        tau = self.tau if self.tau is not None else self.tune(data)
        keep = data.iw <= tau
        return (data.per_window(data.q_hat + keep * data.iw * (data.reward - data.q_hat)),
                data.per_window(np.ones(data.n_pairs)))

    def tune(self, data: PairData) -> float:
        """The grid value with the smallest estimated MSE (ties: the larger tau)."""
        n_t = data.n_pairs
        if n_t == 0:
            return float(np.inf)
        resid = data.iw * (data.reward - data.q_hat)
        den = data.per_window(np.ones(n_t))
        best, best_mse = float(np.inf), np.inf
        for tau in sorted(SWITCH_GRID, reverse=True):
            keep = data.iw <= tau
            a = data.per_window(data.q_hat + keep * resid)
            v = a.sum() / den.sum()
            var = len(a) * np.var(a - v * den) / den.sum() ** 2
            bias = abs((resid * ~keep).sum()) / den.sum()
            mse = var + bias * bias
            if mse < best_mse - 1e-15:
                best, best_mse = float(tau), mse
        return best


ESTIMATORS: dict[str, type[BaseOffPolicyEstimator]] = {
    "dm": DirectMethod, "ips": InverseProbabilityWeighting, "snips": SelfNormalizedInverseProbabilityWeighting,
    "dr": DoublyRobust, "switch-dr": SwitchDoublyRobust,
}


def effective_sample_size(data: PairData) -> float:
    """Kish's effective sample size of the importance weights, ``(sum w)^2 / sum w^2``: how
    many target pairs the weighted log is worth (the number of target pairs at best)."""
    w = data.iw
    s2 = float((w * w).sum())
    return float(w.sum() ** 2 / s2) if s2 > 0 else 0.0


def support_deficiency(data: PairData, *, floor: float) -> float:
    """Share of the target's pairs the logging policy tried with propensity below ``floor``."""
    return float((data.pscore < floor).mean()) if data.n_pairs else 0.0
