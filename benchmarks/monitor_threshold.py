"""The monitor's alarm threshold from a driftless calibration run, checked on other seeds.

    python -m benchmarks.monitor_threshold --calibration CAL.json [CAL2.json ...] \\
        --evaluation EVAL.json [...] [--drift DRIFT.json] --json OUT.json

Inputs are the records of ``benchmarks.monitor_calibration`` (every day test of every nightly
check of the living centre's loop, with the day-level sums behind it). Per check, the
statistic is the smallest p-value over the day tests of the kinds the loop counts (feature,
calibration) times the number of testable tests (Bonferroni-adjusted): the check alarms at
``alpha`` when it is below ``alpha``. The p-values are recomputed from the recorded day sums
by :func:`assign.deploy.drift.day_test_from_sums` for each variant of the day test (``plain``:
as before; ``whole_days``: part days left out of the reference; ``dispersion``: the
reference's own leave-one-day-out dispersion; both), so they are compared on the same checks.

The rule (no figure from the evaluation seeds enters it): the target is ``--per-week``
(0.1) false alarms a week with one check a night, i.e. ``per_week / 7`` a check; ``alpha`` is
the largest value of a 1-2-5 grid (at most 0.01) at which so few calibration checks alarm
that a new driftless check alarms, by rank among the calibration checks, at most half as
often as that, or at most once in N + 1 when N checks cannot show that much
(:func:`choose_alpha`). Evaluation: alarms, checks,
simulated weeks and the Clopper-Pearson 95% interval of the rate, at that ``alpha`` and at
the old default 0.01. With ``--drift``: per seed, the days from the shock to the first check
that alarms.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy import stats

from assign.deploy.drift import day_test_from_sums, whole_days

COUNTED = ("feature", "calibration")
GRID = tuple(float(f"{m}e{e}") for e in range(-2, -7, -1) for m in (5, 2, 1))[2:]  # 0.01 ... 1e-6
OLD_ALPHA = 0.01


def load(path: str | Path) -> list[dict]:
    """Checks of a ``monitor_calibration`` JSON, or of its ``.calls.jsonl`` (a run still going
    or stopped early: runs are told apart by the clock going back)."""
    p = Path(path)
    if p.suffix == ".jsonl":
        import pandas as pd

        start = pd.Timestamp("2026-01-05", tz="UTC")  # the living centre's day 0 (world seed 2026)
        rows = [json.loads(line) for line in p.read_text().splitlines() if line]
        run, prev = 0, None
        for r in rows:
            run += prev is not None and r["now"] < prev
            r["seed"], prev = f"{p.name}#{run}", r["now"]
            now = pd.Timestamp(r["now"])
            r["day"] = (now - start).total_seconds() / 86400.0
            r["weekday_of_recent"] = (now - pd.Timedelta(days=1)).day_name()
        return rows
    return json.loads(p.read_text())["checks"]


VARIANTS = {"plain": dict(min_day_share=0.0, dispersion=False),  # the day test before (mon2)
            "whole_days": dict(min_day_share=0.2, dispersion=False),  # the default now
            "whole_days+dispersion": dict(min_day_share=0.2, dispersion=True)}


def check_statistic(check: dict, *, dispersion: bool, min_day_share: float = 0.0) -> float:
    """Smallest Bonferroni-adjusted p-value over the counted kinds' tests of one check."""
    ps, kinds = [], []
    for kind, _name, _z, p, _df, sums in check["tests"]:
        if sums is not None:
            t = day_test_from_sums(**_arrays(sums, min_day_share), dispersion=dispersion)
            p = t.p_value if t.testable else None
        if p is not None:
            ps.append(float(p))
            kinds.append(kind)
    n = max(len(ps), 1)  # Bonferroni over the tests this variant can run (the monitor's own count)
    return min([1.0] + [p * n for p, k in zip(ps, kinds) if k in COUNTED])


def _arrays(s: dict, min_day_share: float) -> dict:
    n = np.asarray(s["n"], float)
    keep = whole_days(n, min_day_rows=10, min_day_share=min_day_share)  # MonitorConfig.min_day_rows
    return dict(n_d=n[keep], s_d=np.asarray(s["s"])[keep], q_d=np.asarray(s["q"])[keep],
                n_j=np.asarray(s["rn"], float), s_j=np.asarray(s["rs"], float))


def alarms(checks: list[dict], stat: np.ndarray, alpha: float) -> np.ndarray:
    """Per check: alarm at ``alpha`` (a day test, or a threshold alarm such as an unknown intent)."""
    thr = np.array([any(a["kind"] == "unknown" for a in c["threshold_alarms"]) for c in checks], bool)
    return (stat < alpha) | thr


def rate(k: int, n: int) -> dict:
    """Alarms per check and per week (7 checks), Clopper-Pearson 95% interval."""
    lo = float(stats.beta.ppf(0.025, k, n - k + 1)) if k > 0 else 0.0
    hi = float(stats.beta.ppf(0.975, k + 1, n - k)) if k < n else 1.0
    return dict(alarms=int(k), checks=int(n), weeks=n / 7.0, per_check=k / n, per_week=7 * k / n,
                per_week_ci95=[7 * lo, 7 * hi])


def choose_alpha(stat: np.ndarray, *, per_week: float) -> tuple[float, float]:
    """The largest grid alpha (at most 0.01, the monitor's nominal level before) at which at
    most ``k`` calibration checks alarm, ``k + 1 = max(1, floor(r (N + 1)))`` with ``r`` half
    the target rate a check. A new driftless check exchangeable with the N calibration checks
    then alarms with probability at most ``(k + 1) / (N + 1)`` (a rank argument: it is
    among the ``k + 1`` smallest of N + 1 at most that often); returned with the alpha, per
    week (7 checks)."""
    r = 0.5 * per_week / 7.0
    k = max(1, int(np.floor(r * (len(stat) + 1)))) - 1
    bound = 7.0 * (k + 1) / (len(stat) + 1)
    for a in GRID:
        if (stat < a).sum() <= k:
            return a, bound
    return float(np.sort(stat)[k]), bound  # below the grid: the (k + 1)-th smallest itself


def delays(checks: list[dict], stat: np.ndarray, alpha: float, *, shock_day: float) -> dict[str, float | None]:
    al = alarms(checks, stat, alpha)
    out: dict[str, float | None] = {}
    for c, a in zip(checks, al):
        out.setdefault(str(c["seed"]), None)
        if a and c["day"] >= shock_day and out[str(c["seed"])] is None:
            out[str(c["seed"])] = round(c["day"] - shock_day, 2)
    return out


def report(cal: list[dict], ev: list[dict], drift: list[dict], *, per_week: float, variant: dict) -> dict:
    sc = np.array([check_statistic(c, **variant) for c in cal])
    se = np.array([check_statistic(c, **variant) for c in ev])
    alpha, bound = choose_alpha(sc, per_week=per_week)
    out = dict(alpha=alpha, per_week_bound_by_rank=bound, calibration=rate(int(alarms(cal, sc, alpha).sum()), len(cal)),
               evaluation=rate(int(alarms(ev, se, alpha).sum()), len(ev)),
               calibration_old_alpha=rate(int(alarms(cal, sc, OLD_ALPHA).sum()), len(cal)),
               evaluation_old_alpha=rate(int(alarms(ev, se, OLD_ALPHA).sum()), len(ev)),
               evaluation_alarms=[dict(seed=c["seed"], day=c["day"], weekday=c.get("weekday_of_recent"),
                                       statistic=float(s), tests=_top(c, variant))
                                  for c, s in zip(ev, se) if s < max(alpha, OLD_ALPHA)],
               calibration_smallest=sorted(float(x) for x in sc)[:5],
               statistics={"calibration": _per_check(cal, sc), "evaluation": _per_check(ev, se)})
    if drift:
        sd = np.array([check_statistic(c, **variant) for c in drift])
        out["statistics"]["drift"] = _per_check(drift, sd)
        out["delay_days"] = delays(drift, sd, alpha, shock_day=9.0)
        out["delay_days_old_alpha"] = delays(drift, sd, OLD_ALPHA, shock_day=9.0)
    return out


def _per_check(checks: list[dict], stat: np.ndarray) -> list[list]:
    """[seed, day, statistic] per check (the records themselves are too large to keep)."""
    return [[str(c["seed"]), round(float(c["day"]), 3), float(f"{x:.4g}")] for c, x in zip(checks, stat)]


def _top(check: dict, variant: dict) -> list[str]:
    n = max(int(check["testable"]), 1)
    rows = []
    for kind, name, _z, p, _df, sums in check["tests"]:
        if kind in COUNTED:
            p = (day_test_from_sums(**_arrays(sums, variant["min_day_share"]), dispersion=variant["dispersion"]).p_value
                 if sums is not None else p)
            rows.append((float(p) * n, f"{kind}:{name}"))
    return [f"{name} {p:.2g}" for p, name in sorted(rows)[:3]]


def small_shock(paths: list[str], *, alpha: float, counted: tuple[str, ...] = ("feature", "prediction", "calibration",
                                                                               "unknown")) -> dict:
    """From ``benchmarks.monitor_alarms --shocks difficulty --also-plain`` seed records
    (``OUT.seeds.jsonl``): per statistic (the day test now, and as it was), the seeds whose
    difficulty shock alarms within 2 nights and the null checks that alarm, at ``alpha``
    and at 0.01. Every kind counts there (a frozen champion, no router in the way)."""
    seeds = [json.loads(line) for p in paths for line in Path(p).read_text().splitlines() if line]

    def hit(m: dict | None, a: float) -> bool:
        return m is not None and min((v for k, v in m.items() if k in counted), default=1.0) < a

    out: dict = {"seeds": [r["seed"] for r in seeds]}
    for label, key in (("now", "min_p_adjusted"), ("before", "min_p_adjusted_plain")):
        for a in sorted({alpha, OLD_ALPHA}):
            null = [hit(c.get(key), a) for r in seeds for c in r["null"]]
            delay = [next((k + 1 for k, m in enumerate(r["shocks"]["difficulty"][key]) if hit(m, a)), None)
                     for r in seeds]
            out[f"{label}@{a:g}"] = dict(null_alarms=int(sum(null)), null_checks=len(null), delay_nights=delay,
                                         within_2_nights=sum(d is not None and d <= 2 for d in delay))
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calibration", nargs="+", required=True)
    ap.add_argument("--evaluation", nargs="+", required=True)
    ap.add_argument("--drift", nargs="*", default=[], help="records of the drifting centre (alarm delay)")
    ap.add_argument("--alarms", nargs="*", default=[],
                    help="monitor_alarms seed records (OUT.seeds.jsonl) for the small-shock power")
    ap.add_argument("--per-week", type=float, default=0.1, help="target false alarms a week")
    ap.add_argument("--json", dest="json_out", default=None)
    a = ap.parse_args(argv)
    cal = [c for f in a.calibration for c in load(f)]
    ev = [c for f in a.evaluation for c in load(f)]
    drift = [c for f in a.drift for c in load(f)]
    doc = {name: report(cal, ev, drift, per_week=a.per_week, variant=v) for name, v in VARIANTS.items()}
    if a.alarms:
        doc["small_shock"] = small_shock(a.alarms, alpha=doc["whole_days"]["alpha"])
    doc["inputs"] = dict(calibration=a.calibration, evaluation=a.evaluation, drift=a.drift, per_week=a.per_week)
    print(json.dumps({k: {kk: vv for kk, vv in v.items() if kk not in ("evaluation_alarms", "statistics")}
                      if k not in ("inputs", "small_shock") else v for k, v in doc.items()}, indent=1))
    if a.json_out:
        Path(a.json_out).write_text(json.dumps(doc, indent=1))


if __name__ == "__main__":
    main()
