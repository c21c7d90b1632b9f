"""Day-level shift tests: is a recent batch's mean of a per-row quantity within the
reference's own day-to-day variation?

Why not a row-level test (KS, chi-square, PSI): rows of a day are not independent (the same
agents serve all day, the same weather hits every call), so a row-level test's false-alarm
rate grows with the batch size, and PSI > 0.1 fires on most unchanged small batches. Here the
unit is the day: each reference day gives one mean of the quantity, and the recent batch's
mean is compared with them under a one-way random-effects model,

    mean of day d = mu + u_d + e_d,   u_d ~ (0, tau^2) day effect,  e_d ~ (0, sigma^2 / n_d),

with ``sigma^2`` the pooled within-day variance of the rows and ``tau^2 = max(0, S^2 -
mean(sigma^2 / n_d))`` from the spread ``S^2`` of the reference days' means. The recent
batch (rows of ``m`` days, ``n_j`` rows on day j) has mean ``mu + sum(n_j u_j)/n + e`` with

    V = tau^2 * sum(n_j^2) / n^2 + sigma^2 / n + S^2 / D

(the last term: ``mu`` itself is a mean of D days), and ``z = (recent - mu) / sqrt(V)`` is
referred to Student's t with Satterthwaite's degrees of freedom (S^2 has D - 1). The
false-alarm rate does not grow with the batch size: a bigger batch shrinks only the
``sigma^2 / n`` part, never the day effect. With one recent day of a reference day's size it
is exactly the two-sample t-test of the D day means against the one recent mean (checked
against ``scipy.stats.ttest_ind`` in the tests).

Part days: a reference day with a small fraction of a whole day's rows (the hours before a
window's cut-off) is left out (:func:`whole_days`): its noisy mean enters ``S^2`` and
``mean(sigma^2 / n_d)`` with weight one and often drives ``tau^2`` to 0, which removes the
day effect from ``V`` (measured: most of the living centre's false alarms, docs/monitor.md).
Optionally (:func:`loo_dispersion`) the variance is widened by how far the reference's own
days stray from each other, each tested against the rest.

Time of day: each row's quantity is first centred on the reference's mean for its hour of
day (:func:`hour_centred`), so a morning-only batch is compared with the reference's mornings.
Weekday differences stay in ``tau^2`` (a weekday pattern makes the test conservative on
average over the week, not anti-conservative).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class DayTest:
    """One quantity's day-level test."""

    z: float            # (recent - reference) / sqrt(V); NaN when untestable
    p_value: float      # two-sided, Student's t with ``df``
    df: float
    recent: float       # mean of the recent rows (hour-centred)
    reference: float    # mean of the reference days' means (hour-centred)
    sd: float           # sqrt(V)
    tau: float          # between-day standard deviation of the reference
    n_recent: int
    days_reference: int
    testable: bool
    dispersion: float = 1.0  # factor on the variance from the reference's own days (:func:`loo_dispersion`)


def day_sums(values: np.ndarray, day: np.ndarray, n_days: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per day: count, sum and sum of squares of the finite ``values`` (NaN = not this quantity's row)."""
    ok = np.isfinite(values)
    d, v = day[ok], values[ok]
    return (np.bincount(d, minlength=n_days).astype(float), np.bincount(d, weights=v, minlength=n_days),
            np.bincount(d, weights=v * v, minlength=n_days))


def hour_centred(ref: np.ndarray, ref_hour: np.ndarray, rec: np.ndarray, rec_hour: np.ndarray,
                 *, min_rows: int = 5, ref_day: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Both arrays minus the reference's mean of their hour of day (the overall reference
    mean for an hour with fewer than ``min_rows`` reference rows). With ``ref_day`` (integer
    day codes from 0) each reference row is centred on the means of the *other* reference
    days (leave one day out), as the recent rows are on days they are not part of: centring
    a day on means it helped make pulls its mean towards zero, which shrinks the reference's
    day-to-day spread, the more so the fewer the days and the sparser the quantity."""
    n, s, _ = day_sums(ref, ref_hour, 24)
    overall = float(np.nanmean(ref)) if np.isfinite(ref).any() else 0.0
    with np.errstate(invalid="ignore", divide="ignore"):
        m = np.where(n >= min_rows, s / np.maximum(n, 1), overall)
    if ref_day is None:
        return ref - m[ref_hour], rec - m[rec_hour]
    return ref - _other_days_mean(ref, ref_hour, np.asarray(ref_day, np.int64), min_rows=min_rows), rec - m[rec_hour]


def _other_days_mean(ref: np.ndarray, hour: np.ndarray, day: np.ndarray, *, min_rows: int) -> np.ndarray:
    """Per reference row: the mean of its hour of day over the other days (their overall
    mean where that hour has fewer than ``min_rows`` rows; 0 where they have none)."""
    n_days = int(day.max(initial=-1)) + 1
    cell = day * 24 + hour
    n_c, s_c, _ = day_sums(ref, cell, n_days * 24)
    n_c, s_c = n_c.reshape(n_days, 24), s_c.reshape(n_days, 24)
    n_o, s_o = n_c.sum(0)[None, :] - n_c, s_c.sum(0)[None, :] - s_c      # other days, per (day, hour)
    N_o, S_o = n_o.sum(1), s_o.sum(1)                                  # other days, per day
    with np.errstate(invalid="ignore", divide="ignore"):
        overall = np.where(N_o > 0, S_o / np.maximum(N_o, 1), 0.0)
        m = np.where(n_o >= min_rows, s_o / np.maximum(n_o, 1), overall[:, None])
    return m[day, hour]


def day_test(ref: np.ndarray, ref_day: np.ndarray, rec: np.ndarray, rec_day: np.ndarray, *,
             min_day_rows: int = 10, min_days: int = 3, min_day_share: float = 0.0,
             dispersion: bool = False) -> DayTest:
    """Test the recent rows' mean against the reference days (see the module docstring).
    ``*_day`` are integer day codes from 0; NaN values are rows the quantity does not cover.
    Reference days with fewer than ``min_day_rows`` rows, or fewer than ``min_day_share``
    times the median day's (:func:`whole_days`), are left out; fewer than ``min_days`` days
    left (or no recent row) gives an untestable result (p = 1). ``dispersion``: widen by the
    reference's own leave-one-day-out dispersion (:func:`loo_dispersion`)."""
    ref_day = np.asarray(ref_day, dtype=np.int64)
    rec_day = np.asarray(rec_day, dtype=np.int64)
    n_d, s_d, q_d = day_sums(ref, ref_day, int(ref_day.max(initial=-1)) + 1)
    keep = whole_days(n_d, min_day_rows=min_day_rows, min_day_share=min_day_share)
    n_j, s_j, _ = day_sums(rec, rec_day, int(rec_day.max(initial=-1)) + 1)
    return day_test_from_sums(n_d=n_d[keep], s_d=s_d[keep], q_d=q_d[keep], n_j=n_j[n_j > 0], s_j=s_j[n_j > 0],
                              min_days=min_days, dispersion=dispersion)


def whole_days(n_d: np.ndarray, *, min_day_rows: int, min_day_share: float) -> np.ndarray:
    """Which reference days count: at least ``min_day_rows`` rows and at least
    ``min_day_share`` times the median of those. A part day (the hours before a training
    window's cut-off, a day still maturing) has a noisy mean that the moment estimate of
    ``tau^2`` averages in with weight one: ``mean(sigma^2 / n_d)`` grows with it until
    ``tau^2`` reads 0 and the day-to-day variation drops out of the test."""
    n_d = np.asarray(n_d, float)
    keep = n_d >= min_day_rows
    if keep.any() and min_day_share > 0:
        keep &= n_d >= min_day_share * float(np.median(n_d[keep]))
    return keep


def day_test_from_sums(*, n_d: np.ndarray, s_d: np.ndarray, q_d: np.ndarray, n_j: np.ndarray, s_j: np.ndarray,
                       min_days: int = 3, dispersion: bool = False) -> DayTest:
    """:func:`day_test` from day-level sums: per reference day (those kept) rows ``n_d``, sum
    ``s_d`` and sum of squares ``q_d``; per recent day rows ``n_j`` and sum ``s_j``."""
    n_d, s_d, q_d = (np.asarray(x, float) for x in (n_d, s_d, q_d))
    n_j, s_j = np.asarray(n_j, float), np.asarray(s_j, float)
    n = float(n_j.sum())
    D = len(n_d)
    if D < min_days or n < 1:
        return DayTest(np.nan, 1.0, np.nan, np.nan, np.nan, np.nan, np.nan, int(n), D, False)
    means = s_d / n_d
    mu = float(means.mean())
    S2 = float(means.var(ddof=1))
    sigma2 = float(max((q_d - s_d ** 2 / n_d).sum(), 0.0) / max((n_d - 1).sum(), 1.0))
    tau2 = max(S2 - float((sigma2 / n_d).mean()), 0.0)
    w = float((n_j ** 2).sum() / n ** 2)
    phi = loo_dispersion(n_d, s_d, q_d) if dispersion else 1.0
    V = (tau2 * w + sigma2 / n + S2 / D) * phi
    random_part = S2 * ((w if tau2 > 0 else 0.0) + 1.0 / D) * phi
    rec_mean = float(s_j.sum() / n)
    diff = rec_mean - mu
    if V <= 0:
        z, p, df = (0.0, 1.0, np.inf) if abs(diff) < 1e-12 else (np.copysign(np.inf, diff), 0.0, np.inf)
    else:
        df = float(np.clip(V ** 2 / (random_part ** 2 / (D - 1)), 1.0, 1e9)) if random_part > 0 else 1e9
        z = diff / np.sqrt(V)
        p = float(2.0 * stats.t.sf(abs(z), df))
    return DayTest(float(z), p, float(df), rec_mean, mu, float(np.sqrt(max(V, 0.0))), float(np.sqrt(tau2)),
                   int(n), D, True, float(phi))


def loo_scores(n_d: np.ndarray, s_d: np.ndarray, q_d: np.ndarray) -> np.ndarray:
    """Each reference day tested as a one-day recent batch against the other days (the same
    statistic, closed form over days), as a normal score (its t quantile mapped to N(0, 1));
    NaN where untestable (fewer than three days, no spread)."""
    D = len(n_d)
    out = np.full(D, np.nan)
    if D < 3:
        return out
    m = s_d / n_d
    w_d = q_d - s_d ** 2 / n_d
    mu_o = (m.sum() - m) / (D - 1)
    S2_o = np.maximum((np.sum(m ** 2) - m ** 2 - (D - 1) * mu_o ** 2) / (D - 2), 0.0)
    sig2_o = np.maximum(w_d.sum() - w_d, 0.0) / np.maximum((n_d - 1).sum() - (n_d - 1), 1.0)
    tau2_o = np.maximum(S2_o - sig2_o * ((1.0 / n_d).sum() - 1.0 / n_d) / (D - 1), 0.0)
    V = tau2_o + sig2_o / n_d + S2_o / (D - 1)
    rp = S2_o * (np.where(tau2_o > 0, 1.0, 0.0) + 1.0 / (D - 1))
    ok = V > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        df = np.where(rp > 0, np.clip(V ** 2 / (rp ** 2 / (D - 2)), 1.0, 1e9), 1e9)
        z = (m - mu_o) / np.sqrt(V)
    u = stats.norm.isf(stats.t.sf(z[ok], df[ok]))
    out[ok] = np.where(np.isfinite(u), u, z[ok])  # beyond the float range of the tail: z itself
    return out


def loo_dispersion(n_d: np.ndarray, s_d: np.ndarray, q_d: np.ndarray) -> float:
    """How much more the reference days stray from each other than the random-effects model
    says: the mean square of their leave-one-day-out normal scores (:func:`loo_scores`),
    never below 1. About 1 when the model holds; well above when the days are not alike (a
    weekday whose channel mix differs, a holiday), which the moment estimate of ``tau^2``
    under-states for a recent day of the odd kind. Multiplies the test's variance."""
    u = loo_scores(n_d, s_d, q_d)
    u = u[np.isfinite(u)]
    return float(max(1.0, np.mean(u ** 2))) if len(u) >= 3 else 1.0


def beyond_margin(d: DayTest, margin: float) -> DayTest:
    """``d`` with its p-value for "the shift exceeds ``margin``" (one-sided t on ``|recent -
    reference| - margin``): a change too small to matter does not alarm however sure it is."""
    from dataclasses import replace

    if not d.testable or margin <= 0:
        return d
    excess = abs(d.recent - d.reference) - margin
    if d.sd <= 0:
        return replace(d, p_value=0.0 if excess > 0 else 1.0)
    return replace(d, p_value=float(stats.t.sf(excess / d.sd, d.df)))


def midrank_pit(ref: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The reference's mid-rank empirical CDF at ``x`` (ties count half): uniform-like on
    unchanged data, bounded whatever the outliers; NaN stays NaN."""
    r = np.sort(ref[np.isfinite(ref)])
    out = np.full(len(x), np.nan)
    ok = np.isfinite(x)
    if len(r) == 0:
        return out
    lo = np.searchsorted(r, x[ok], "left")
    hi = np.searchsorted(r, x[ok], "right")
    out[ok] = (lo + hi) / (2.0 * len(r))
    return out


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm-adjusted p-values (family-wise error control under any dependence)."""
    p = np.asarray(p_values, dtype=float)
    m = len(p)
    if m == 0:
        return p
    order = np.argsort(p, kind="stable")
    adj = np.maximum.accumulate(np.minimum((m - np.arange(m)) * p[order], 1.0))
    out = np.empty(m)
    out[order] = adj
    return out


def binomial_residual_z(y: np.ndarray, p: np.ndarray, group: np.ndarray,
                        n_groups: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per group: rows, observed minus predicted (sum), and ``z = sum(y - p) / sqrt(sum p(1-p))``
    (the score test that the model is calibrated for the group)."""
    n = np.bincount(group, minlength=n_groups).astype(float)
    r = np.bincount(group, weights=y - p, minlength=n_groups)
    v = np.bincount(group, weights=p * (1 - p), minlength=n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(v > 0, r / np.sqrt(v), 0.0)
    return n, r, z
