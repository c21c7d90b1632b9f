"""Experiment design: sample size, duration or minimum detectable effect (MDE).

The test statistic is a difference of arm means with per-arm sampling variance
``(sigma_b^2 + sigma_w^2 / m) / G`` for G clusters of m rows (one-way random-effects
model; contacts are clusters of one with sigma_b = 0). Power follows statsmodels: two
tails of a normal statistic (``NormalIndPower`` / ``zt_ind_solve_power``), a noncentral t
for small samples (``TTestIndPower``) and, for proportions, the pooled null / unpooled
alternative variances of ``power_proportions_2indep``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy import optimize, stats

from assign.constants import DAY_S
from assign.errors import InputError
from assign.validate import Problems


def _check(alpha: float, power: float | None, ratio: float) -> list[str]:
    problems = []
    if not 0 < alpha < 1:
        problems.append(f"alpha: must be in (0, 1), got {alpha}")
    if power is not None and not 0 < power < 1:
        problems.append(f"power: must be in (0, 1), got {power}")
    if power is not None and 0 < alpha < 1 and 0 < power < 1 and power <= alpha / 2:
        problems.append(f"power: must exceed alpha/2 = {alpha / 2}, got {power}")
    if not (math.isfinite(ratio) and ratio > 0):
        problems.append(f"ratio: must be > 0, got {ratio}")
    return problems


def normal_power(*, diff: float, n1: float, std_null: float, std_alt: float | None = None,
                 alpha: float = 0.05) -> float:
    """Two-sided power of a z test whose statistic has standard deviation ``std / sqrt(n1)``
    (std per sqrt of the first arm's size), as statsmodels ``normal_power_het``."""
    std_alt = std_null if std_alt is None else std_alt
    crit = stats.norm.isf(alpha / 2)
    shift = abs(diff) * math.sqrt(n1) / std_alt
    ratio = std_null / std_alt
    return float(stats.norm.sf(crit * ratio - shift) + stats.norm.cdf(-crit * ratio - shift))


def t_power(*, effect_size: float, n1: float, ratio: float = 1.0, alpha: float = 0.05) -> float:
    """Two-sided power of the pooled two-sample t test (statsmodels ``TTestIndPower``)."""
    n2 = n1 * ratio
    df = n1 + n2 - 2
    nc = abs(effect_size) * math.sqrt(n1 * n2 / (n1 + n2))
    crit = stats.t.isf(alpha / 2, df)
    return float(stats.nct.sf(crit, df, nc) + stats.nct.cdf(-crit, df, nc))


def _solve_n1(power_fn, power: float, lo: float = 1.0001) -> float:
    hi = 2.0
    while power_fn(hi) < power:
        hi *= 2
        if hi > 1e13:
            raise InputError([f"power: {power} is not reachable with any sample size under 1e13"],
                             what="design")
    lo = min(lo, hi / 2)
    if power_fn(lo) >= power:
        return lo
    return float(optimize.brentq(lambda n: power_fn(n) - power, lo, hi, xtol=1e-10, rtol=1e-12))


def n_means(*, mde: float, sd: float, alpha: float = 0.05, power: float = 0.8, ratio: float = 1.0,
            test: str = "z") -> float:
    """Size of the first arm (``n2 = ratio * n1``) to detect a mean difference ``mde`` with
    per-unit standard deviation ``sd``; ``test`` z (normal) or t (noncentral t)."""
    problems = _check(alpha, power, ratio)
    if not (math.isfinite(mde) and mde != 0):
        problems.append(f"mde: must be a non-zero number, got {mde}")
    if not (math.isfinite(sd) and sd > 0):
        problems.append(f"sd: must be > 0, got {sd}")
    if test not in ("z", "t"):
        problems.append(f"test: must be 'z' or 't', got {test!r}")
    if problems:
        raise InputError(problems, what="design")
    if test == "z":
        std = sd * math.sqrt(1 + 1 / ratio)
        return _solve_n1(lambda n: normal_power(diff=mde, n1=n, std_null=std, alpha=alpha), power)
    return _solve_n1(lambda n: t_power(effect_size=mde / sd, n1=n, ratio=ratio, alpha=alpha), power,
                     lo=2.0001)


def _prop_stds(p_c: float, diff: float, ratio: float) -> tuple[float, float]:
    p_t = p_c + diff
    pooled = (p_t + p_c * ratio) / (1 + ratio)
    std_null = math.sqrt(pooled * (1 - pooled) * (1 + 1 / ratio))
    std_alt = math.sqrt(p_t * (1 - p_t) + p_c * (1 - p_c) / ratio)
    return std_null, std_alt


def n_proportions(*, baseline: float, mde: float, alpha: float = 0.05, power: float = 0.8,
                  ratio: float = 1.0) -> float:
    """Treatment-arm size to detect ``baseline -> baseline + mde`` with the pooled z test;
    ``ratio`` = control / treatment size (as statsmodels ``power_proportions_2indep``)."""
    problems = _check(alpha, power, ratio)
    if not 0 < baseline < 1:
        problems.append(f"baseline: a rate must be in (0, 1), got {baseline}")
    elif not (math.isfinite(mde) and mde != 0 and 0 < baseline + mde < 1):
        problems.append(f"mde: baseline + mde must be in (0, 1) and mde != 0, got {mde}")
    if problems:
        raise InputError(problems, what="design")
    s0, s1 = _prop_stds(baseline, mde, ratio)
    return _solve_n1(lambda n: normal_power(diff=mde, n1=n, std_null=s0, std_alt=s1, alpha=alpha), power)


def mde_means(*, n1: float, sd: float, alpha: float = 0.05, power: float = 0.8, ratio: float = 1.0) -> float:
    """Smallest mean difference detected with ``power`` by a z test with ``n1`` and ``ratio*n1`` units."""
    problems = _check(alpha, power, ratio)
    if not (math.isfinite(n1) and n1 > 0):
        problems.append(f"n1: must be > 0, got {n1}")
    if not (math.isfinite(sd) and sd > 0):
        problems.append(f"sd: must be > 0, got {sd}")
    if problems:
        raise InputError(problems, what="design")
    std = sd * math.sqrt(1 + 1 / ratio)
    f = lambda d: normal_power(diff=d, n1=n1, std_null=std, alpha=alpha) - power
    hi = std / math.sqrt(n1) * 20
    return float(optimize.brentq(f, 1e-15 * hi, hi, xtol=1e-14 * hi))


def mde_proportions(*, baseline: float, n1: float, alpha: float = 0.05, power: float = 0.8,
                    ratio: float = 1.0) -> float:
    """Smallest increase of a rate from ``baseline`` detected with ``power``; raises when even
    a move to 1 is not detectable."""
    problems = _check(alpha, power, ratio)
    if not 0 < baseline < 1:
        problems.append(f"baseline: a rate must be in (0, 1), got {baseline}")
    if not (math.isfinite(n1) and n1 > 0):
        problems.append(f"n1: must be > 0, got {n1}")
    if problems:
        raise InputError(problems, what="design")

    def f(d):
        s0, s1 = _prop_stds(baseline, d, ratio)
        return normal_power(diff=d, n1=n1, std_null=s0, std_alt=s1, alpha=alpha) - power

    top = (1 - baseline) * (1 - 1e-9)
    if f(top) < 0:
        raise InputError([f"n1: {n1:g} units cannot detect any increase from {baseline} with power {power}"],
                         what="design")
    return float(optimize.brentq(f, 1e-12, top, xtol=1e-14))


@dataclass(frozen=True)
class VarianceComponents:
    """Per-row variable's mean and its one-way random-effects decomposition over clusters.

    ``sigma_w2`` within-cluster variance, ``sigma_b2`` between-cluster variance of cluster
    means beyond what ``sigma_w2 / m`` explains (method of moments, floored at 0), ``m``
    the mean cluster size, ``clusters_per_day`` and ``rows_per_day`` observed in history.
    """

    baseline: float
    sigma_w2: float
    sigma_b2: float
    m: float
    clusters: int
    rows: int
    clusters_per_day: float
    rows_per_day: float
    days: float
    notes: tuple[str, ...] = ()

    @property
    def icc(self) -> float:
        tot = self.sigma_b2 + self.sigma_w2
        return self.sigma_b2 / tot if tot > 0 else 0.0

    @property
    def design_effect(self) -> float:
        return 1 + (self.m - 1) * self.icc


def variance_components(v: np.ndarray, groups: np.ndarray, *, days: float,
                        baseline: float) -> VarianceComponents:
    """Method-of-moments (ANOVA) estimate of sigma_b^2 and sigma_w^2 of ``v`` over ``groups``."""
    v = np.asarray(v, dtype=np.float64)
    codes, sizes = np.unique(groups, return_inverse=True, return_counts=True)[1:]
    codes = codes.ravel()
    G, N = sizes.size, v.size
    if G == N and G >= 2:  # clusters of one: independent rows
        return VarianceComponents(baseline, float(v.var(ddof=1)), 0.0, 1.0, G, N, G / days, N / days, days)
    if G < 2 or N <= G:
        raise InputError([f"history: need >= 2 clusters and more rows than clusters, got {G} clusters, "
                          f"{N} rows"], what="design")
    sums = np.bincount(codes, v, minlength=G)
    means = sums / sizes
    ssw = float(((v - means[codes]) ** 2).sum())
    ssb = float((sizes * (means - v.mean()) ** 2).sum())
    msw = ssw / (N - G)
    msb = ssb / (G - 1)
    n0 = (N - (sizes**2).sum() / N) / (G - 1)
    sb2 = max((msb - msw) / n0, 0.0)
    return VarianceComponents(baseline, msw, sb2, N / G, G, N, G / days, N / days, days)


@dataclass(frozen=True)
class Design:
    """What ``assign experiment design`` answers, in the units people plan with."""

    metric: str
    kind: str
    unit: str
    baseline: float
    mde: float
    mde_relative: float | None
    alpha: float
    power: float
    weights: tuple[float, float]  # control, treatment (normalised)
    sd: float | None
    n_treatment: float
    n_control: float
    unit_name: str  # what n counts: contacts | agents | windows
    days: float | None
    icc: float | None
    design_effect: float | None
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["notes"] = list(self.notes)
        return d


def history_variable(df: pd.DataFrame, *, metric: str) -> tuple[np.ndarray, float, str]:
    """Per-row variable of ``metric`` in a history frame: a column (mean/proportion) or
    ``NUM/DEN`` (ratio, linearised: (num - R den) / mean(den)). Returns (v, baseline, kind).
    Rows with a missing value are excluded by the caller through the mask in v (NaN)."""
    from assign.experiment.logs import numeric_column

    def col(name):
        if name not in df.columns:
            raise InputError([f"history.{name}: column not found (have {', '.join(map(str, df.columns))})"],
                             what="design")
        v, bad = numeric_column(df[name])
        if bad.all():
            raise InputError([f"history.{name}: not numeric"], what="design")
        return v, bad  # unreadable values are NaN: excluded and counted by the caller

    if "/" in metric:
        num_name, den_name = metric.split("/", 1)
        (num, bad), (den, _) = col(num_name), col(den_name)
        num = np.where(np.isnan(num) & ~bad & (den == 0), 0.0, num)  # e.g. no handle time when not answered
        ok = np.isfinite(num) & np.isfinite(den)
        if den[ok].sum() == 0:
            raise InputError([f"history.{den_name}: denominator sums to 0"], what="design")
        r = num[ok].sum() / den[ok].sum()
        v = np.where(ok, (num - r * den) / den[ok].mean(), np.nan)
        return v, float(r), "ratio"
    y, _ = col(metric)
    ok = np.isfinite(y)
    kind = "proportion" if np.isin(y[ok], (0.0, 1.0)).all() else "mean"
    return y, float(y[ok].mean()) if ok.any() else float("nan"), kind


def _power_var(d: float, var_diff: float, alpha: float) -> float:
    return normal_power(diff=d, n1=1.0, std_null=math.sqrt(var_diff), alpha=alpha)


def _mde_from_var(var_diff: float, *, alpha: float, power: float) -> float:
    hi = 20 * math.sqrt(var_diff)
    return float(optimize.brentq(lambda d: _power_var(d, var_diff, alpha) - power, 1e-15 * hi, hi,
                                 xtol=1e-14 * hi))


MAX_DAYS = 100_000.0  # a design longer than ~270 years is a typo, and the duration search stops there


def _plan_problems(*, kind, unit, baseline, mde, relative, days, sd, components, rows_per_day, alpha, power,
                   weights) -> Problems:
    """Every problem with a design request at once; NaN and infinities never pass."""
    p = Problems()
    p.extend(_check(alpha, power, 1.0))
    p.choice("unit", unit, ("contact", "customer", "agent", "switchback"))
    p.choice("kind", kind, ("mean", "proportion", "ratio"))
    p.number("baseline", baseline)
    if (mde is None) == (days is None):
        p.add("", "give exactly one of mde (for a sample size) or days (for an MDE)")
    if p.number("mde", mde, optional=True) == 0:
        p.add("mde", "must be a non-zero number, got 0")
    p.number("days", days, lo=0, lo_open=True, hi=MAX_DAYS, optional=True)
    p.number("sd", sd, lo=0, lo_open=True, optional=True)
    p.number("units_per_day", rows_per_day, lo=0, lo_open=True, optional=True)
    if len(weights) != 2:
        p.add("weights", f"need two positive weights (control, treatment), got {list(weights)}")
    for i, w in enumerate(weights):
        p.number(f"weights[{i}]", w, lo=0, lo_open=True, hi=1e12)
    if relative and baseline == 0:
        p.add("baseline", f"a relative MDE needs a non-zero baseline, got {baseline}")
    clustered = unit in ("agent", "switchback")
    if clustered and components is None:
        p.add(f"unit {unit}", "clustered designs need --history to estimate between-cluster variance")
    if kind == "ratio" and components is None:
        p.add("kind", "ratio metrics need --history (variance of the linearised ratio)")
    if kind == "mean" and components is None and sd is None:
        p.add("sd", "mean metrics need --sd or --history")
    return p


def _plan_independent(*, kind, unit, baseline, abs_mde, days, sd, components, per_day, alpha, power, ratio,
                      w_t, notes) -> tuple:
    """Contacts (or customers, with Kish's design effect) as independent units."""
    icc = deff = None
    if components is not None and sd is None and kind != "proportion":
        sd = math.sqrt(components.sigma_w2 + components.sigma_b2)
    kish = components.design_effect if unit == "customer" and components is not None else 1.0
    if kish != 1.0:
        icc, deff = components.icc, kish
        notes.append(f"customer-level: sizes in contacts include the design effect {kish:.2f} "
                     "of repeat contacts (from history)")
    if abs_mde is not None:
        n1 = (n_proportions(baseline=baseline, mde=abs_mde, alpha=alpha, power=power, ratio=ratio)
              if kind == "proportion" else n_means(mde=abs_mde, sd=sd, alpha=alpha, power=power, ratio=ratio))
        n1 *= kish
        d_out = (n1 * (1 + ratio)) / per_day if per_day else None
        if d_out is None:
            notes.append("no history or --units-per-day: duration not computed")
    else:
        if not per_day:
            raise InputError(["days: an MDE for a duration needs --history or --units-per-day"], what="design")
        n1 = per_day * days * w_t
        n_eff = n1 / kish
        abs_mde = (mde_proportions(baseline=baseline, n1=n_eff, alpha=alpha, power=power, ratio=ratio)
                   if kind == "proportion" else mde_means(n1=n_eff, sd=sd, alpha=alpha, power=power, ratio=ratio))
        d_out = days
    return abs_mde, n1, n1 * ratio, "contacts", d_out, sd, icc, deff


def _var_diff(c: VarianceComponents, unit: str, w_t: float, w_c: float):
    """Variance of the arm difference as a function of the duration in days."""
    if unit == "switchback":
        def f(dd):
            g = c.clusters_per_day * dd
            return (c.sigma_b2 + c.sigma_w2 / c.m) * (1 / (g * w_t) + 1 / (g * w_c))
        return f

    def f(dd):
        m = c.rows_per_day * dd / c.clusters
        return (c.sigma_b2 + c.sigma_w2 / m) * (1 / (c.clusters * w_t) + 1 / (c.clusters * w_c))
    return f


def _days_for(c, unit, abs_mde, var_diff, alpha, power, w_t, w_c) -> float:
    f = lambda dd: _power_var(abs_mde, var_diff(dd), alpha) - power
    hi = 1.0
    while f(hi) < 0:
        hi *= 2
        if hi > MAX_DAYS:
            msg = f"mde: {abs_mde:g} is not reachable in {MAX_DAYS:g} days with unit {unit}"
            if unit == "agent" and c.sigma_b2 > 0:
                floor = _mde_from_var(c.sigma_b2 * (1 / (c.clusters * w_t) + 1 / (c.clusters * w_c)),
                                      alpha=alpha, power=power)
                msg += (f"; with {c.clusters} agents the between-agent variance alone limits "
                        f"the MDE to {floor:.4g}")
            raise InputError([msg], what="design")
    return float(optimize.brentq(f, 1e-9, hi, xtol=1e-9)) if f(1e-9) < 0 else 1e-9


def _plan_clustered(*, unit, abs_mde, days, components, alpha, power, w_t, w_c, notes) -> tuple:
    """Agents (fixed clusters that grow) or switchback windows (clusters that accrue)."""
    c = components
    sd = math.sqrt(c.sigma_b2 + c.sigma_w2)
    var_diff = _var_diff(c, unit, w_t, w_c)
    if abs_mde is not None:
        d_out = _days_for(c, unit, abs_mde, var_diff, alpha, power, w_t, w_c)
    else:
        d_out = days
        abs_mde = _mde_from_var(var_diff(days), alpha=alpha, power=power)
    if unit == "switchback":
        n_t, n_c, unit_name = c.clusters_per_day * d_out * w_t, c.clusters_per_day * d_out * w_c, "windows"
    else:
        n_t, n_c, unit_name = c.clusters * w_t, c.clusters * w_c, "agents"
    if min(n_t, n_c) < 50:
        notes.append("z approximation over fewer than 50 clusters per arm; the analysis uses the wild "
                     "cluster bootstrap (agents) or randomisation inference (switchbacks), which need somewhat more")
    return abs_mde, n_t, n_c, unit_name, d_out, sd, c.icc, c.design_effect


def plan(*, metric: str, kind: str, unit: str, baseline: float, mde: float | None = None,
         relative: bool = False, days: float | None = None, sd: float | None = None,
         components: VarianceComponents | None = None, rows_per_day: float | None = None,
         alpha: float = 0.05, power: float = 0.8, weights: tuple[float, float] = (0.5, 0.5)) -> Design:
    """Sample size and duration for an MDE, or the MDE of a duration.

    ``unit`` contact: rows are independent (``sd`` or ``components`` from history; proportions
    need neither). agent: the clusters (agents) are fixed, a longer test grows each cluster;
    the between-agent variance sets a floor no duration goes below. switchback: clusters are
    (site, window) pairs, a longer test adds windows of fixed size (burn-in already removed).
    ``mde`` is absolute, or relative to ``baseline`` when ``relative``.
    """
    _plan_problems(kind=kind, unit=unit, baseline=baseline, mde=mde, relative=relative, days=days, sd=sd,
                   components=components, rows_per_day=rows_per_day, alpha=alpha, power=power,
                   weights=weights).raise_if_any(what="design")
    w_c, w_t = (w / sum(weights) for w in weights)
    abs_mde = None if mde is None else (mde * abs(baseline) if relative else mde)
    notes: list[str] = []
    per_day = rows_per_day if rows_per_day else (components.rows_per_day if components else None)
    if unit in ("agent", "switchback"):
        out = _plan_clustered(unit=unit, abs_mde=abs_mde, days=days, components=components, alpha=alpha,
                              power=power, w_t=w_t, w_c=w_c, notes=notes)
    else:
        out = _plan_independent(kind=kind, unit=unit, baseline=baseline, abs_mde=abs_mde, days=days, sd=sd,
                                components=components, per_day=per_day, alpha=alpha, power=power,
                                ratio=w_c / w_t, w_t=w_t, notes=notes)
    abs_mde, n_t, n_c, unit_name, d_out, sd, icc, deff = out
    bad = [k for k, v in (("mde", abs_mde), ("n", n_t), ("days", d_out), ("sd", sd)) if v is not None
           and not math.isfinite(v)]
    if bad:
        raise InputError([f"{', '.join(bad)}: not finite: the inputs are too large or too small to plan with "
                          "(numeric overflow)"], what="design")
    if components is not None:
        notes = [*components.notes, *notes]
    rel = abs_mde / abs(baseline) if baseline else None
    return Design(metric=metric, kind=kind, unit=unit, baseline=baseline, mde=abs_mde, mde_relative=rel,
                  alpha=alpha, power=power, weights=(w_c, w_t), sd=sd, n_treatment=n_t, n_control=n_c,
                  unit_name=unit_name, days=d_out, icc=icc, design_effect=deff, notes=tuple(notes))


def components_from_history(df: pd.DataFrame, *, metric: str, unit: str, window_s: float = 3600.0,
                            burn_in_s: float = 0.0, site_col: str | None = None,
                            salt: str = "design") -> tuple[VarianceComponents, str]:
    """Variance components of ``metric`` in a history for the given randomisation ``unit``.

    contact/customer: clusters of one row (customer: by customer_id, unidentified rows alone);
    agent: by agent_id (rows without an agent are dropped: they were never served);
    switchback: (site, window) cells, the burn-in rows of a hypothetical switch schedule removed.
    Returns (components, kind).
    """
    from assign.experiment.randomise import Switchback

    problems = []
    if "arrival_at" not in df.columns:
        problems.append("history.arrival_at: required to measure the duration")
    if unit == "agent" and "agent_id" not in df.columns:
        problems.append("history.agent_id: required for agent-level randomisation")
    if site_col is not None and site_col not in df.columns:
        problems.append(f"history.{site_col}: site column not found")
    if problems:
        raise InputError(problems, what="design")
    t = pd.to_datetime(df["arrival_at"], utc=True)
    v, baseline, kind = history_variable(df, metric=metric)
    keep = np.isfinite(v) & t.notna().to_numpy()
    if unit == "agent":
        keep &= df["agent_id"].notna().to_numpy()
        groups = df["agent_id"].astype(str).to_numpy()
    elif unit == "switchback":
        seconds = (t - t.min()).dt.total_seconds().to_numpy()
        sites = df[site_col].astype(str).to_numpy() if site_col else None
        lab = Switchback(salt=salt, window_s=window_s, burn_in_s=burn_in_s).label(seconds, sites)
        keep &= ~lab["burn_in"].to_numpy()
        groups = lab["window"].to_numpy()
    elif unit == "customer" and "customer_id" in df.columns:
        cid = df["customer_id"]
        alone = "row:" + pd.Series(np.arange(len(df))).astype(str)
        groups = np.where(cid.notna(), cid.astype(str), alone).astype(str)
    else:
        groups = np.arange(len(df))
    span = (t[keep].max() - t[keep].min()).total_seconds() / DAY_S if keep.any() else 0.0
    if unit == "switchback":
        span = max(span, window_s / DAY_S)
    if not span > 0:
        raise InputError(["history: needs rows spread over time (arrival_at) to measure a rate per day"],
                         what="design")
    with np.errstate(over="ignore", invalid="ignore"):
        comps = variance_components(v[keep], np.asarray(groups)[keep], days=span, baseline=baseline)
    if not all(math.isfinite(x) for x in (comps.sigma_w2, comps.sigma_b2, comps.baseline)):
        raise InputError([f"history.{metric}: values too large: their variance overflows (largest |value| "
                          f"{float(np.nanmax(np.abs(v[keep]))):.3g})"], what="design")
    dropped = int((~keep).sum())
    if dropped:
        why = "missing or unreadable values" + (", burn-in" if unit == "switchback" and burn_in_s else "") + \
            (", no agent" if unit == "agent" else "")
        comps = replace(comps, notes=(f"history: {dropped} of {len(df)} rows not used ({why})",))
    return comps, kind
