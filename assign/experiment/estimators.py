"""Effect estimators of two-arm experiments: Welch, two-proportion z, delta-method ratios,
cluster-robust OLS (CR1), CUPED, and always-valid confidence sequences.

Every estimator returns an :class:`Effect`. Data that cannot support an estimate (an arm
with too few rows, zero variance in both arms, a denominator that sums to zero, fewer than
two clusters in an arm) never yields NaN: the effect comes back with ``degenerate`` set to a
sentence naming the metric and the arm, and its inferential fields (``se``, CI, p-value) set
to ``None``. Malformed input (shapes, NaN, unknown labels) raises :class:`InputError`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
from scipy import stats

from assign.errors import InputError

# Mixture tuning of the confidence sequence: r* = -2 log a + log(-2 log a + 1) makes the
# sequence tightest near the planned sample size (Waudby-Smith et al., 2021, asymptotic CS).


@dataclass(frozen=True)
class Effect:
    """Treatment-minus-control effect on one metric, with its inference.

    ``lift`` is the relative effect ``mean_t / mean_c - 1`` with a delta-method CI; it is
    ``None`` (with a note) when the control mean is 0. ``p_value`` of a sequential effect is
    the always-valid p-value of this look (take the running minimum over looks).
    """

    metric: str
    kind: str  # mean | proportion | ratio
    method: str
    arm: str
    control: str
    n_treatment: int
    n_control: int
    mean_treatment: float | None
    mean_control: float | None
    diff: float | None
    se: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    lift: float | None = None
    lift_ci_low: float | None = None
    lift_ci_high: float | None = None
    df: float | None = None
    alpha: float = 0.05
    degenerate: str | None = None
    notes: tuple[str, ...] = ()
    extras: dict = field(default_factory=dict)

    @property
    def significant(self) -> bool:
        return self.p_value is not None and self.p_value < self.alpha

    def to_dict(self) -> dict:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["notes"] = list(self.notes)
        d["significant"] = self.significant
        return d


@dataclass(frozen=True)
class _Point:
    """What an estimator computed before inference is attached: the two arm means, their
    variances and covariance (of the means), and the degrees of freedom (inf = normal)."""

    m_t: float
    m_c: float
    v_t: float
    v_c: float
    cov_tc: float
    df: float


def _check_arrays(named: dict[str, np.ndarray], *, metric: str) -> list[str]:
    problems = []
    for name, a in named.items():
        if a.ndim != 1:
            problems.append(f"{metric}.{name}: expected a 1-d array, got shape {a.shape}")
        elif not np.all(np.isfinite(a)):
            bad = np.flatnonzero(~np.isfinite(a))
            problems.append(f"{metric}.{name}: {bad.size} non-finite value(s), first at row {int(bad[0])}")
    return problems


def _as_float(a, *, name: str, metric: str) -> np.ndarray:
    try:
        return np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise InputError([f"{metric}.{name}: not numeric: {err}"], what="experiment data") from None


def _finish(p: _Point, *, metric: str, kind: str, method: str, arm: str, control: str,
            n_t: int, n_c: int, alpha: float, notes=(), extras=None,
            p_value: float | None = None) -> Effect:
    """Attach CI, p-value and relative lift to a point estimate."""
    diff = p.m_t - p.m_c
    var = p.v_t + p.v_c - 2 * p.cov_tc
    if not all(math.isfinite(x) for x in (p.m_t, p.m_c, diff, var)):
        raise InputError([f"{metric}: values too large (or too small) for floating point: the means or "
                          "variances overflow; rescale the metric (analyse() does this itself)"],
                         what="experiment data")
    se = math.sqrt(max(var, 0.0))
    base = dict(metric=metric, kind=kind, method=method, arm=arm, control=control,
                n_treatment=n_t, n_control=n_c, mean_treatment=p.m_t, mean_control=p.m_c,
                diff=diff, alpha=alpha, extras=dict(extras or {}))
    if se == 0.0:
        return Effect(**base, se=None, ci_low=None, ci_high=None, p_value=None,
                      degenerate=f"{metric}: zero variance in both arms ({arm} and {control}); "
                                 "no test is possible", notes=tuple(notes))
    dist = stats.t(p.df) if math.isfinite(p.df) else stats.norm()
    q = float(dist.ppf(1 - alpha / 2))
    if p_value is None:
        p_value = float(2 * dist.sf(abs(diff) / se))
    lift = lo = hi = None
    notes = list(notes)
    try:  # a control mean at or near 0 (its 4th power underflows) leaves the relative lift undefined
        lift = p.m_t / p.m_c - 1
        lv = (p.v_t / p.m_c**2 + p.m_t**2 * p.v_c / p.m_c**4 - 2 * p.m_t * p.cov_tc / p.m_c**3)
        ls = math.sqrt(max(lv, 0.0))
        if not (math.isfinite(lift) and math.isfinite(ls)):
            raise OverflowError
        lo, hi = lift - q * ls, lift + q * ls
        base["extras"]["lift_se"] = ls
    except (ZeroDivisionError, OverflowError):
        lift = None
        notes.append(f"{metric}: control mean is 0 (or too close to 0), relative lift undefined")
    return Effect(**base, se=se, ci_low=diff - q * se, ci_high=diff + q * se,
                  p_value=p_value, lift=lift, lift_ci_low=lo, lift_ci_high=hi,
                  df=p.df if math.isfinite(p.df) else None, notes=tuple(notes))


def _degenerate(reason: str, *, metric, kind, method, arm, control, n_t, n_c, alpha,
                m_t=None, m_c=None, notes=()) -> Effect:
    diff = m_t - m_c if m_t is not None and m_c is not None else None
    return Effect(metric=metric, kind=kind, method=method, arm=arm, control=control,
                  n_treatment=n_t, n_control=n_c, mean_treatment=m_t, mean_control=m_c,
                  diff=diff, se=None, ci_low=None, ci_high=None, p_value=None, alpha=alpha,
                  degenerate=reason, notes=tuple(notes))


def _too_few(metric: str, arm: str, control: str, n_t: int, n_c: int, need: int, what="rows") -> str | None:
    short = [f"arm '{a}' has {n} {what}" for a, n in ((arm, n_t), (control, n_c)) if n < need]
    if short:
        return f"{metric}: " + " and ".join(short) + f" (need at least {need})"
    return None


def welch(y_t, y_c, *, metric: str = "metric", arm: str = "treatment", control: str = "control",
          alpha: float = 0.05, kind: str = "mean", method: str = "Welch t") -> Effect:
    """Difference of means with Welch's unequal-variance t test (scipy's ``ttest_ind(equal_var=False)``)."""
    y_t = _as_float(y_t, name=arm, metric=metric)
    y_c = _as_float(y_c, name=control, metric=metric)
    if problems := _check_arrays({arm: y_t, control: y_c}, metric=metric):
        raise InputError(problems, what="experiment data")
    n_t, n_c = y_t.size, y_c.size
    common = dict(metric=metric, kind=kind, method=method, arm=arm, control=control,
                  n_t=n_t, n_c=n_c, alpha=alpha)
    if reason := _too_few(metric, arm, control, n_t, n_c, 2):
        return _degenerate(reason, **common,
                           m_t=float(y_t.mean()) if n_t else None, m_c=float(y_c.mean()) if n_c else None)
    v_t = float(y_t.var(ddof=1)) / n_t
    v_c = float(y_c.var(ddof=1)) / n_c
    df = (v_t + v_c) ** 2 / (v_t**2 / (n_t - 1) + v_c**2 / (n_c - 1)) if v_t + v_c > 0 else math.inf
    return _finish(_Point(float(y_t.mean()), float(y_c.mean()), v_t, v_c, 0.0, df), **common)


def two_proportion(x_t: int, n_t: int, x_c: int, n_c: int, *, metric: str = "metric",
                   arm: str = "treatment", control: str = "control", alpha: float = 0.05) -> Effect:
    """Difference of two rates: pooled-variance z test (as statsmodels ``proportions_ztest``)
    for the p-value, unpooled Wald interval for the CI and lift."""
    problems = []
    for name, x, n in ((arm, x_t, n_t), (control, x_c, n_c)):
        if n < 0 or x < 0 or x > n:
            problems.append(f"{metric}.{name}: need 0 <= successes <= trials, got {x} of {n}")
    if problems:
        raise InputError(problems, what="experiment data")
    common = dict(metric=metric, kind="proportion", method="two-proportion z", arm=arm,
                  control=control, n_t=int(n_t), n_c=int(n_c), alpha=alpha)
    if reason := _too_few(metric, arm, control, n_t, n_c, 1):
        return _degenerate(reason, **common, m_t=x_t / n_t if n_t else None, m_c=x_c / n_c if n_c else None)
    p_t, p_c = x_t / n_t, x_c / n_c
    pooled = (x_t + x_c) / (n_t + n_c)
    if pooled in (0.0, 1.0):
        return _degenerate(f"{metric}: the rate is {pooled:g} in both arms ({arm} and {control}); "
                           "no test is possible", **common, m_t=p_t, m_c=p_c)
    se0 = math.sqrt(pooled * (1 - pooled) * (1 / n_t + 1 / n_c))
    p_value = float(2 * stats.norm.sf(abs(p_t - p_c) / se0))
    pt = _Point(p_t, p_c, p_t * (1 - p_t) / n_t, p_c * (1 - p_c) / n_c, 0.0, math.inf)
    if pt.v_t + pt.v_c == 0.0:  # e.g. 0% vs 100%: the Wald CI has width 0
        return _degenerate(f"{metric}: rates {p_t:g} ({arm}) and {p_c:g} ({control}) have zero "
                           "sampling variance; no interval is possible", **common, m_t=p_t, m_c=p_c)
    eff = _finish(pt, p_value=p_value, **common)
    return replace(eff, extras={**eff.extras, "z": (p_t - p_c) / se0})


def _sandwich_scale(n_groups: int, n_rows: int, k: int) -> float:
    """CR1 small-sample factor G/(G-1) * (N-1)/(N-K), as statsmodels' cluster covariance."""
    return n_groups / (n_groups - 1) * (n_rows - 1) / (n_rows - k)


def ols_cluster(X, y, groups) -> tuple[np.ndarray, np.ndarray, int]:
    """OLS coefficients and their cluster-robust (CR1) covariance; returns (beta, cov, n_groups).

    Same estimator as statsmodels ``OLS(y, X).fit(cov_type='cluster', cov_kwds={'groups': g})``.
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    codes = np.unique(np.asarray(groups), return_inverse=True)[1].ravel()
    G = int(codes.max()) + 1 if codes.size else 0
    XtX_inv = np.linalg.pinv(X.T @ X)
    beta = XtX_inv @ (X.T @ y)
    scores = X * (y - X @ beta)[:, None]
    S = np.zeros((G, X.shape[1]))
    np.add.at(S, codes, scores)
    meat = S.T @ S
    cov = XtX_inv @ meat @ XtX_inv * _sandwich_scale(G, X.shape[0], X.shape[1])
    return beta, cov, G


def _cluster_counts(groups: np.ndarray, treat: np.ndarray) -> tuple[int, int, bool]:
    """Clusters touching each arm, and whether every cluster sits in one arm only."""
    g_t = np.unique(groups[treat])
    g_c = np.unique(groups[~treat])
    nested = np.intersect1d(g_t, g_c).size == 0
    return g_t.size, g_c.size, nested


def cluster_diff(y, treat, groups, *, covariate=None, metric: str = "metric", arm: str = "treatment",
                 control: str = "control", alpha: float = 0.05, kind: str = "mean") -> Effect:
    """Difference of means by OLS ``y ~ 1 + treat [+ (x - mean x)]`` with cluster-robust
    (CR1) errors and t inference on G-1 degrees of freedom (G = number of clusters)."""
    y = _as_float(y, name="y", metric=metric)
    treat = np.asarray(treat, dtype=bool)
    groups = np.asarray(groups)
    named = {"y": y}
    if covariate is not None:
        named["covariate"] = _as_float(covariate, name="covariate", metric=metric)
    problems = _check_arrays(named, metric=metric)
    if groups.shape != y.shape or treat.shape != y.shape:
        problems.append(f"{metric}: y, treat and groups must have the same length "
                        f"({y.shape}, {treat.shape}, {groups.shape})")
    if problems:
        raise InputError(problems, what="experiment data")
    n_t, n_c = int(treat.sum()), int((~treat).sum())
    method = "OLS, cluster-robust (CR1)" + (" + CUPED" if covariate is not None else "")
    common = dict(metric=metric, kind=kind, method=method, arm=arm, control=control,
                  n_t=n_t, n_c=n_c, alpha=alpha)
    g_t, g_c, nested = _cluster_counts(groups, treat)
    m_t = float(y[treat].mean()) if n_t else None
    m_c = float(y[~treat].mean()) if n_c else None
    if reason := _too_few(metric, arm, control, g_t, g_c, 2, what="clusters"):
        return _degenerate(reason, **common, m_t=m_t, m_c=m_c)
    cols = [np.ones_like(y), treat.astype(np.float64)]
    if covariate is not None:
        x = named["covariate"]
        cols.append(x - x.mean())
    X = np.column_stack(cols)
    beta, cov, G = ols_cluster(X, y, groups)
    p = _Point(float(beta[0] + beta[1]), float(beta[0]), float(cov[0, 0] + cov[1, 1] + 2 * cov[0, 1]),
               float(cov[0, 0]), float(cov[0, 0] + cov[0, 1]), float(G - 1))
    notes = [] if nested else [f"{metric}: clusters appear in both arms (not nested); "
                               "the errors are robust to it but the arms share units"]
    return _finish(p, **common, notes=notes, extras={"clusters": G, "clusters_treatment": g_t,
                                                     "clusters_control": g_c})


def ratio(num, den, treat, *, groups=None, metric: str = "metric", arm: str = "treatment",
          control: str = "control", alpha: float = 0.05) -> Effect:
    """Ratio metric ``sum(num) / sum(den)`` per arm, difference by the delta method.

    Without ``groups`` rows are independent units: Var(R) = s^2(num - R den) / (n mean(den)^2).
    With ``groups`` the linearised residuals are summed per cluster (CR1, G-1 df); this is
    the WLS-of-(num/den)-on-arm sandwich with weights ``den``.
    """
    num = _as_float(num, name="numerator", metric=metric)
    den = _as_float(den, name="denominator", metric=metric)
    treat = np.asarray(treat, dtype=bool)
    problems = _check_arrays({"numerator": num, "denominator": den}, metric=metric)
    if not (num.shape == den.shape == treat.shape):
        problems.append(f"{metric}: numerator, denominator and arm must have the same length")
    elif np.any(den < 0):
        problems.append(f"{metric}.denominator: {int((den < 0).sum())} negative value(s)")
    if problems:
        raise InputError(problems, what="experiment data")
    n_t, n_c = int(treat.sum()), int((~treat).sum())
    method = "delta method" + (", cluster-robust (CR1)" if groups is not None else "")
    common = dict(metric=metric, kind="ratio", method=method, arm=arm, control=control,
                  n_t=n_t, n_c=n_c, alpha=alpha)
    s_t, s_c = den[treat].sum(), den[~treat].sum()
    zero = [a for a, s in ((arm, s_t), (control, s_c)) if s == 0]
    if zero:
        return _degenerate(f"{metric}: denominator sums to 0 in arm " + " and ".join(f"'{a}'" for a in zero),
                           **common)
    r_t, r_c = num[treat].sum() / s_t, num[~treat].sum() / s_c
    if groups is None:
        if reason := _too_few(metric, arm, control, n_t, n_c, 2):
            return _degenerate(reason, **common, m_t=r_t, m_c=r_c)
        d_t = num[treat] - r_t * den[treat]
        d_c = num[~treat] - r_c * den[~treat]
        v_t = float(d_t.var(ddof=1) / (n_t * den[treat].mean() ** 2))
        v_c = float(d_c.var(ddof=1) / (n_c * den[~treat].mean() ** 2))
        pt = _Point(float(r_t), float(r_c), v_t, v_c, 0.0, math.inf)
        return _finish(pt, **common)
    groups = np.asarray(groups)
    if groups.shape != num.shape:
        raise InputError([f"{metric}: groups must have the same length as the data"], what="experiment data")
    g_t, g_c, nested = _cluster_counts(groups, treat)
    if reason := _too_few(metric, arm, control, g_t, g_c, 2, what="clusters"):
        return _degenerate(reason, **common, m_t=r_t, m_c=r_c)
    codes = np.unique(groups, return_inverse=True)[1].ravel()
    G = int(codes.max()) + 1
    psi_t = np.where(treat, (num - r_t * den) / s_t, 0.0)
    psi_c = np.where(~treat, (num - r_c * den) / s_c, 0.0)
    a_t = np.bincount(codes, psi_t, minlength=G)
    a_c = np.bincount(codes, psi_c, minlength=G)
    scale = _sandwich_scale(G, num.size, 2)
    pt = _Point(float(r_t), float(r_c), float(a_t @ a_t * scale), float(a_c @ a_c * scale),
                float(a_t @ a_c * scale), float(G - 1))
    notes = [] if nested else [f"{metric}: clusters appear in both arms (not nested)"]
    return _finish(pt, **common, notes=notes, extras={"clusters": G})


def cuped(y, x, treat, *, metric: str = "metric", arm: str = "treatment", control: str = "control",
          alpha: float = 0.05, kind: str = "mean") -> Effect:
    """CUPED: ``y - theta (x - mean x)`` with theta = cov(y, x) / var(x) pooled over arms,
    then Welch on the adjusted values. ``extras`` holds theta, the pooled correlation rho
    and the measured variance reduction (theory: rho^2)."""
    y = _as_float(y, name="y", metric=metric)
    x = _as_float(x, name="covariate", metric=metric)
    treat = np.asarray(treat, dtype=bool)
    problems = _check_arrays({"y": y, "covariate": x}, metric=metric)
    if not (y.shape == x.shape == treat.shape):
        problems.append(f"{metric}: y, covariate and arm must have the same length")
    if problems:
        raise InputError(problems, what="experiment data")
    vx = x.var(ddof=1) if x.size > 1 else 0.0
    if vx == 0.0:
        eff = welch(y[treat], y[~treat], metric=metric, arm=arm, control=control, alpha=alpha, kind=kind)
        return replace(eff, notes=eff.notes + (f"{metric}: covariate has zero variance; CUPED not applied",))
    theta = float(np.cov(y, x, ddof=1)[0, 1] / vx)
    y_adj = y - theta * (x - x.mean())
    vy = y.var(ddof=1)
    rho = float(np.corrcoef(y, x)[0, 1]) if vy > 0 else 0.0
    eff = welch(y_adj[treat], y_adj[~treat], metric=metric, arm=arm, control=control, alpha=alpha,
                kind=kind, method="CUPED + Welch t")
    reduction = float(1 - y_adj.var(ddof=1) / vy) if vy > 0 else 0.0
    return replace(eff, extras={**eff.extras, "theta": theta, "rho": rho,
                                "variance_reduction": reduction})


def mixture_ratio(*, alpha: float) -> float:
    """r* = tau^2 / se^2 at the planned sample size that makes the normal-mixture sequence
    tightest there: -2 log a + log(1 - 2 log a)."""
    la = -2 * math.log(alpha)
    return la + math.log(la + 1)


def confidence_sequence(eff: Effect, *, n_now: float, n_planned: float) -> Effect:
    """Turn a fixed-sample effect into an always-valid one (normal-mixture mSPRT / asymptotic
    confidence sequence). The mixture variance tau^2 is fixed in advance through the planned
    sample size: r = tau^2 / se^2 = r* n_now / n_planned, so peeking at any n is covered.

    Radius: se sqrt((1 + r)/r * log((1 + r) / alpha^2)); p-value: min(1, 1 / Lambda),
    Lambda = exp(r z^2 / (2 (1 + r))) / sqrt(1 + r).
    """
    problems = []
    if not n_planned > 0:
        problems.append(f"n_planned: must be > 0, got {n_planned}")
    if not n_now > 0:
        problems.append(f"n_now: must be > 0, got {n_now}")
    if problems:
        raise InputError(problems, what="sequential analysis")
    if eff.degenerate or eff.se is None or eff.diff is None:
        return replace(eff, method=eff.method + ", sequential")
    a = eff.alpha
    r = mixture_ratio(alpha=a) * n_now / n_planned
    radius = eff.se * math.sqrt((1 + r) / r * math.log((1 + r) / a**2))
    z = eff.diff / eff.se
    log_lam = r * z * z / (2 * (1 + r)) - 0.5 * math.log1p(r)
    p = float(min(1.0, math.exp(-log_lam)))
    lo = hi = None
    if eff.lift is not None and "lift_se" in eff.extras:
        lr = eff.extras["lift_se"] * math.sqrt((1 + r) / r * math.log((1 + r) / a**2))
        lo, hi = eff.lift - lr, eff.lift + lr
    return replace(eff, method=eff.method + ", always-valid CS", ci_low=eff.diff - radius,
                   ci_high=eff.diff + radius, p_value=p, lift_ci_low=lo, lift_ci_high=hi,
                   extras={**eff.extras, "mixture_r": r, "n_now": n_now, "n_planned": n_planned})


@dataclass(frozen=True)
class SRM:
    """Sample-ratio-mismatch check: Pearson chi-square of arm counts against the design weights."""

    counts: tuple[int, ...]
    expected: tuple[float, ...]
    chi2: float
    df: int
    p_value: float
    threshold: float
    mismatch: bool

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def srm(counts, weights=None, *, threshold: float = 0.001) -> SRM:
    """Chi-square goodness-of-fit of ``counts`` to ``weights`` (normalised; equal when None).
    ``mismatch`` when p < ``threshold`` (0.001 by convention: SRM checks run on every test)."""
    counts = list(counts)
    problems = []
    if len(counts) < 2:
        problems.append(f"counts: need at least 2 arms, got {len(counts)}")
    for i, c in enumerate(counts):
        if not (isinstance(c, (int, np.integer)) or (isinstance(c, float) and c.is_integer())) or c < 0:
            problems.append(f"counts[{i}]: must be a non-negative integer, got {c!r}")
    if weights is None:
        weights = [1.0] * len(counts)
    weights = list(weights)
    if len(weights) != len(counts):
        problems.append(f"weights: {len(weights)} given for {len(counts)} counts")
    for i, w in enumerate(weights):
        if not (isinstance(w, (int, float, np.floating, np.integer)) and math.isfinite(w) and w > 0):
            problems.append(f"weights[{i}]: must be a finite number > 0, got {w!r}")
    if not 0 < threshold < 1:
        problems.append(f"threshold: must be in (0, 1), got {threshold}")
    if not problems and sum(counts) == 0:
        problems.append("counts: all zero; nothing to check")
    if problems:
        raise InputError(problems, what="SRM check")
    c = np.asarray(counts, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    exp = c.sum() * w / w.sum()
    chi2 = float(((c - exp) ** 2 / exp).sum())
    df = len(counts) - 1
    p = float(stats.chi2.sf(chi2, df))
    return SRM(tuple(int(x) for x in counts), tuple(float(e) for e in exp), chi2, df, p, threshold,
               p < threshold)


def holm(p_values, *, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Holm step-down adjusted p-values and rejections (as statsmodels ``multipletests(method='holm')``)."""
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1 or np.any(~np.isfinite(p)) or np.any((p < 0) | (p > 1)):
        raise InputError(["p_values: need a 1-d array of numbers in [0, 1]"], what="Holm correction")
    m = p.size
    order = np.argsort(p, kind="stable")
    adj_sorted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    adj = np.empty(m)
    adj[order] = adj_sorted
    ok = p[order] <= alpha / (m - np.arange(m))  # step-down: reject until the first failure
    n_rej = m if ok.all() else int(np.argmin(ok))
    rej = np.zeros(m, dtype=bool)
    rej[order[:n_rej]] = True
    return adj, rej
