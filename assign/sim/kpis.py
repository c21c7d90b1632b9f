"""Business KPIs of a run, their means with 95% confidence intervals over independent
replications, and paired differences between policies on common random numbers.

Definitions (per replication):
- ``resolution_rate``: share of answered contacts resolved (drawn outcome);
  ``expected_resolution``: mean true resolution probability of answered contacts (synthetic
  world only: the same quantity without the Bernoulli noise).
- ``csat``: mean CSAT of answered contacts; ``aht_s``: mean handle time of answered contacts.
- ``asa_s``: mean wait of answered contacts; ``mean_wait_s``: mean wait of all offered.
- ``p_wait``: share of answered contacts who waited at all (Erlang C's probability of wait).
- ``service_level``: answered within the threshold / offered (abandoned count as misses).
- ``abandonment_rate``: abandoned / offered; ``unserved_rate``: still queued at the end.
- ``occupancy``: time agents held at least one contact / time on shift.
- ``work_gini``: Gini coefficient of handle seconds across agents who were on shift.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from assign.constants import DAY_S
from assign.sim.engine import ABANDONED, SERVED, UNSERVED, RunResult

KPI_NAMES = ("offered", "resolution_rate", "expected_resolution", "csat", "aht_s", "asa_s", "mean_wait_s",
             "p_wait", "service_level", "abandonment_rate", "unserved_rate", "occupancy", "work_gini")
WAIT_BINS = np.r_[0, 1, 5, 10, 20, 30, 45, 60, 90, 120, 180, 300, 600, 1200, np.inf]


def gini(x: np.ndarray) -> float:
    """Gini coefficient of non-negative values (0 = all equal); NaN for an empty or all-zero set."""
    x = np.sort(np.asarray(x, dtype=float))
    n = len(x)
    if n == 0 or x.sum() <= 0:
        return float("nan")
    return float((2.0 * np.sum(np.arange(1, n + 1) * x) / (n * x.sum())) - (n + 1.0) / n)


def _mean(x: np.ndarray) -> float:
    x = x[np.isfinite(x)]
    return float(x.mean()) if len(x) else float("nan")


def kpis_of(*, status: np.ndarray, wait_s: np.ndarray, handle_s: np.ndarray, resolved: np.ndarray,
            csat: np.ndarray, truth_p: np.ndarray, sl_threshold_s: float) -> dict[str, float]:
    """Contact-level KPIs of any subset of a run (used per run, per intent, per hour)."""
    n = len(status)
    served = status == SERVED
    ns = int(served.sum())
    nan = float("nan")
    return {
        "offered": float(n),
        "resolution_rate": _mean(resolved[served]) if ns else nan,
        "expected_resolution": _mean(truth_p[served]) if ns else nan,
        "csat": _mean(csat[served]) if ns else nan,
        "aht_s": _mean(handle_s[served]) if ns else nan,
        "asa_s": float(wait_s[served].mean()) if ns else nan,
        "mean_wait_s": float(np.nanmean(wait_s)) if n else nan,
        "p_wait": float((wait_s[served] > 0).mean()) if ns else nan,
        "service_level": float((served & (wait_s <= sl_threshold_s)).sum() / n) if n else nan,
        "abandonment_rate": float((status == ABANDONED).mean()) if n else nan,
        "unserved_rate": float((status == UNSERVED).mean()) if n else nan,
    }


@dataclass(frozen=True, eq=False)
class RunSummary:
    """What a replication sends back (small enough to ship from a Dask worker)."""

    policy: str
    seed: int
    kpis: dict[str, float]
    by_intent: dict[str, dict[str, float]]
    by_hour: dict[str, np.ndarray]          # offered / answered_in_sl / served / abandoned per hour of day
    wait_hist: np.ndarray                   # counts of answered waits in WAIT_BINS
    agent_work_s: np.ndarray
    agent_handled: np.ndarray
    agent_ids: tuple[str, ...]
    n_decisions: int
    wall_s: float
    extra: dict = field(default_factory=dict)


def summarise(run: RunResult) -> RunSummary:
    """KPIs and breakdowns of one run."""
    cfg = run.config
    thr = cfg.sl_threshold_s
    args = dict(status=run.status, wait_s=run.wait_s, handle_s=run.handle_s, resolved=run.resolved,
                csat=run.csat, truth_p=run.truth_p_resolved, sl_threshold_s=thr)
    k = kpis_of(**args)
    staffed = run.agent_staffed_s
    k["occupancy"] = float(run.agent_busy_s.sum() / staffed.sum()) if staffed.sum() > 0 else float("nan")
    k["work_gini"] = gini(run.agent_work_s[staffed > 0])
    intent = run.stream.block.intent
    by_intent = {}
    for i, name in enumerate(run.intents):
        m = intent == i
        if m.any():
            by_intent[name] = kpis_of(**{kk: (v[m] if isinstance(v, np.ndarray) else v) for kk, v in args.items()})
    hour = (np.floor(run.stream.arrival_s / 3600.0).astype(np.int64)) % 24
    served = run.status == SERVED
    by_hour = {
        "offered": np.bincount(hour, minlength=24).astype(float),
        "answered_in_sl": np.bincount(hour, weights=(served & (run.wait_s <= thr)).astype(float), minlength=24),
        "served": np.bincount(hour, weights=served.astype(float), minlength=24),
        "abandoned": np.bincount(hour, weights=(run.status == ABANDONED).astype(float), minlength=24),
    }
    wait_hist = np.histogram(run.wait_s[served], bins=WAIT_BINS)[0].astype(float)
    extra = {}
    n_days = int(np.ceil(cfg.days))
    if n_days > 1:  # per day of arrival (multi-day runs: drift, learning curves)
        day = np.floor(run.stream.arrival_s / DAY_S).astype(np.int64)
        extra["by_day"] = {d: kpis_of(**{kk: (v[day == d] if isinstance(v, np.ndarray) else v)
                                         for kk, v in args.items()}) for d in range(n_days)}
    if run.arm is not None:
        extra["by_arm"] = {arm: kpis_of(**{kk: (v[run.arm == arm] if isinstance(v, np.ndarray) else v)
                                           for kk, v in args.items()})
                           for arm in sorted(set(run.arm.tolist()))}
    return RunSummary(extra=extra, policy=run.policy, seed=run.seed, kpis=k, by_intent=by_intent, by_hour=by_hour,
                      wait_hist=wait_hist, agent_work_s=run.agent_work_s.copy(),
                      agent_handled=run.agent_handled.copy(), agent_ids=tuple(run.agent_ids),
                      n_decisions=run.n_decisions, wall_s=run.wall_s)


@dataclass(frozen=True)
class Interval:
    """A mean with its 95% t-interval over ``n`` replications (half-width NaN when n < 2)."""

    mean: float
    half_width: float
    n: int

    @property
    def low(self) -> float:
        return self.mean - self.half_width

    @property
    def high(self) -> float:
        return self.mean + self.half_width


def interval(x: np.ndarray, *, level: float = 0.95) -> Interval:
    """Student-t confidence interval of the mean of independent replications (NaNs ignored)."""
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    n = len(x)
    if n == 0:
        return Interval(float("nan"), float("nan"), 0)
    if n == 1:
        return Interval(float(x[0]), float("nan"), 1)
    hw = stats.t.ppf(0.5 + level / 2, n - 1) * x.std(ddof=1) / np.sqrt(n)
    return Interval(float(x.mean()), float(hw), n)


def kpi_table(summaries: list[RunSummary]) -> pandas.DataFrame:  # noqa: F821
    """One row per (policy, KPI): mean, 95% CI low/high, half-width, replications."""
    import pandas as pd

    rows = []
    policies = list(dict.fromkeys(s.policy for s in summaries))
    for p in policies:
        runs = [s for s in summaries if s.policy == p]
        for k in KPI_NAMES:
            iv = interval(np.array([r.kpis[k] for r in runs]))
            rows.append({"policy": p, "kpi": k, "mean": iv.mean, "ci_low": iv.low, "ci_high": iv.high,
                         "half_width": iv.half_width, "n": iv.n})
    return pd.DataFrame(rows)


def paired_differences(summaries: list[RunSummary], *, baseline: str) -> pandas.DataFrame:  # noqa: F821
    """Policy minus ``baseline`` per KPI, paired on seed (common random numbers): mean
    difference with its 95% CI over the seeds both policies ran, and the relative change."""
    import pandas as pd

    base = {s.seed: s for s in summaries if s.policy == baseline}
    rows = []
    for p in dict.fromkeys(s.policy for s in summaries):
        if p == baseline:
            continue
        runs = {s.seed: s for s in summaries if s.policy == p}
        seeds = sorted(set(runs) & set(base))
        for k in KPI_NAMES:
            d = np.array([runs[s].kpis[k] - base[s].kpis[k] for s in seeds])
            b = interval(np.array([base[s].kpis[k] for s in seeds]))
            iv = interval(d)
            rows.append({"policy": p, "baseline": baseline, "kpi": k, "diff": iv.mean, "ci_low": iv.low,
                         "ci_high": iv.high, "relative": iv.mean / b.mean if b.mean else float("nan"),
                         "n": iv.n})
    return pd.DataFrame(rows, columns=["policy", "baseline", "kpi", "diff", "ci_low", "ci_high", "relative", "n"])


def uplift_share(summaries: list[RunSummary], *, policy: str, baseline: str, ceiling: str,
                 kpi: str = "resolution_rate") -> Interval:
    """``(policy - baseline) / (ceiling - baseline)`` on ``kpi``: the share of the ceiling's
    uplift a policy captures. Interval by the delta method over paired seeds (ratio of means)."""
    by = {(s.policy, s.seed): s.kpis[kpi] for s in summaries}
    seeds = sorted({s.seed for s in summaries if (policy, s.seed) in by and (baseline, s.seed) in by
                    and (ceiling, s.seed) in by})
    num = np.array([by[(policy, s)] - by[(baseline, s)] for s in seeds])
    den = np.array([by[(ceiling, s)] - by[(baseline, s)] for s in seeds])
    n = len(seeds)
    if n == 0 or den.mean() == 0:
        return Interval(float("nan"), float("nan"), n)
    r = num.mean() / den.mean()
    if n < 2:
        return Interval(float(r), float("nan"), n)
    # Delta method for a ratio of means of paired samples.
    cov = np.cov(num, den, ddof=1)
    var = (cov[0, 0] - 2 * r * cov[0, 1] + r * r * cov[1, 1]) / (n * den.mean() ** 2)
    hw = stats.t.ppf(0.975, n - 1) * np.sqrt(max(var, 0.0))
    return Interval(float(r), float(hw), n)
