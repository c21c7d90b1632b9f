"""Readout of an experiment log: every metric x treatment arm against control, with SRM,
Holm correction across the primary metrics, and guardrails.

Input is a DataFrame (one row per contact, or per unit) with an arm column and metric
columns; ``read_log`` loads CSV/Parquet. Rows whose arm is missing, or whose metric value
is present but not a number, are quarantined (kept, counted, returned), never dropped
silently; rows flagged burn-in are excluded and counted.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from assign.errors import InputError
from assign.experiment import estimators as est


@dataclass(frozen=True)
class MetricSpec:
    """``col`` (mean or, when 0/1, proportion) or ``num/den`` (ratio by the delta method)."""

    name: str
    num: str
    den: str | None = None

    @classmethod
    def parse(cls, spec: str) -> "MetricSpec":
        spec = spec.strip()
        if "/" in spec:
            num, den = (s.strip() for s in spec.split("/", 1))
            if not num or not den:
                raise InputError([f"metric {spec!r}: a ratio is written NUM/DEN"], what="metric")
            return cls(spec, num, den)
        if not spec:
            raise InputError(["metric: empty name"], what="metric")
        return cls(spec, spec)

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.num,) if self.den is None else (self.num, self.den)


@dataclass(frozen=True)
class Guardrail:
    """A metric that must not move the wrong way: ``bad`` is increase or decrease;
    flagged ``harm`` when the CI lies wholly on the bad side beyond ``margin`` (default 0)."""

    metric: MetricSpec
    bad: str
    margin: float = 0.0

    @classmethod
    def parse(cls, spec: str) -> "Guardrail":
        parts = spec.split(":")
        problems = []
        if len(parts) not in (2, 3):
            raise InputError([f"guardrail {spec!r}: write METRIC:increase|decrease[:MARGIN]"],
                             what="guardrail")
        if parts[1] not in ("increase", "decrease"):
            problems.append(f"guardrail {spec!r}: bad direction must be increase or decrease, "
                            f"got {parts[1]!r}")
        margin = 0.0
        if len(parts) == 3:
            try:
                margin = float(parts[2])
                if margin < 0:
                    raise ValueError
            except ValueError:
                problems.append(f"guardrail {spec!r}: margin must be a number >= 0, got {parts[2]!r}")
        if problems:
            raise InputError(problems, what="guardrail")
        return cls(MetricSpec.parse(parts[0]), parts[1], margin)


@dataclass(frozen=True)
class GuardrailResult:
    effect: est.Effect
    bad: str
    margin: float
    status: str  # ok | harm | degenerate

    def to_dict(self) -> dict:
        return {"bad": self.bad, "margin": self.margin, "status": self.status, **self.effect.to_dict()}


@dataclass(frozen=True)
class Readout:
    """All results of one analysis; ``p_holm`` aligns with ``effects`` (None when degenerate)."""

    arm_col: str
    control: str
    arms: tuple[str, ...]
    counts: dict
    effects: tuple[est.Effect, ...]
    p_holm: tuple[float | None, ...]
    guardrails: tuple[GuardrailResult, ...]
    srm: est.SRM | None
    srm_unit: str
    rows: int
    quarantined: pd.DataFrame
    excluded_burn_in: int
    alpha: float
    sequential: bool

    def to_dict(self) -> dict:
        return {
            "arm_col": self.arm_col, "control": self.control, "arms": list(self.arms),
            "counts": self.counts, "rows": self.rows, "alpha": self.alpha, "sequential": self.sequential,
            "quarantined": int(len(self.quarantined)),
            "quarantine_reasons": (self.quarantined["reason"].value_counts().to_dict()
                                   if len(self.quarantined) else {}),
            "excluded_burn_in": self.excluded_burn_in,
            "srm": None if self.srm is None else {**self.srm.to_dict(), "unit": self.srm_unit},
            "effects": [{**e.to_dict(), "p_holm": p, "significant_holm": p is not None and p < self.alpha}
                        for e, p in zip(self.effects, self.p_holm)],
            "guardrails": [g.to_dict() for g in self.guardrails],
        }


def read_log(path) -> pd.DataFrame:
    """Load an experiment log from CSV or Parquet."""
    p = Path(path)
    if not p.exists():
        raise InputError([f"{p}: file not found"], what="experiment log")
    if p.suffix == ".parquet":
        return pd.read_parquet(p)
    if p.suffix in (".csv", ".gz") or p.name.endswith(".csv.gz"):
        return pd.read_csv(p, low_memory=False)
    raise InputError([f"{p}: expected a .csv or .parquet file"], what="experiment log")


_TRUE = {"true": 1.0, "false": 0.0, "1": 1.0, "0": 0.0, "yes": 1.0, "no": 0.0}


def numeric_column(s: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(values with NaN for missing, mask of present-but-unreadable values)."""
    if s.dtype == bool or str(s.dtype) == "boolean":
        return s.astype("float64").to_numpy(), np.zeros(len(s), dtype=bool)
    if pd.api.types.is_numeric_dtype(s):
        v = s.astype("float64").to_numpy()
        return v, np.isinf(v)
    as_bool = s.astype("string").str.strip().str.lower().map(_TRUE)
    v = pd.to_numeric(s, errors="coerce").astype("float64")
    v = v.where(v.notna(), as_bool.astype("float64")).to_numpy()
    bad = s.notna().to_numpy() & ~np.isfinite(v)
    return v, bad


def analyse(df: pd.DataFrame, *, arm_col: str = "arm", metrics, control: str | None = None,
            cluster_col: str | None = None, covariate: str | None = None, sequential: bool = False,
            n_planned: float | None = None, guardrails=(), weights=None, alpha: float = 0.05,
            burn_in_col: str | None = "burn_in", unit_means: bool = False) -> Readout:
    """Analyse a log: see the module docstring. ``metrics`` and ``guardrails`` are specs (str)
    or parsed objects; ``weights`` are the design's arm weights in sorted-arm order (control
    first), equal by default; ``n_planned`` sizes the confidence sequence (rows, or clusters
    with ``cluster_col``; default: the current size). ``unit_means`` analyses the per-cluster
    means of mean/rate metrics (Welch, or CUPED on cluster means) instead of cluster-robust
    OLS on rows: better calibrated with few clusters (docs/experiments.md, section 5); the
    clusters must then be nested in the arms."""
    metrics = [m if isinstance(m, MetricSpec) else MetricSpec.parse(m) for m in metrics]
    guardrails = [g if isinstance(g, Guardrail) else Guardrail.parse(g) for g in guardrails]
    problems = []
    if not metrics and not guardrails:
        problems.append("metrics: give at least one metric")
    if not 0 < alpha < 1:
        problems.append(f"alpha: must be in (0, 1), got {alpha}")
    needed = {arm_col: "arm column"}
    for m in [*metrics, *(g.metric for g in guardrails)]:
        for c in m.columns:
            needed.setdefault(c, f"metric {m.name}")
    if cluster_col:
        needed.setdefault(cluster_col, "cluster column")
    if covariate:
        needed.setdefault(covariate, "covariate")
    for c, what in needed.items():
        if c not in df.columns:
            problems.append(f"log.{c}: {what} not found (columns: {', '.join(map(str, df.columns))})")
    if unit_means and not cluster_col:
        problems.append("unit_means: needs a cluster column (the randomised unit)")
    if problems:
        raise InputError(problems, what="experiment analysis")

    reasons = pd.Series("", index=df.index, dtype=object)
    arm_raw = df[arm_col]
    reasons[arm_raw.isna().to_numpy()] = f"{arm_col} missing"
    values: dict[str, np.ndarray] = {}
    for c in needed:
        if c in (arm_col, cluster_col):
            continue
        v, bad = numeric_column(df[c])
        values[c] = v
        reasons[bad & (reasons == "").to_numpy()] = f"{c} not a number"
    if cluster_col:
        reasons[df[cluster_col].isna().to_numpy() & (reasons == "").to_numpy()] = f"{cluster_col} missing"
    q_mask = (reasons != "").to_numpy()
    quarantined = df[q_mask].assign(reason=reasons[q_mask].to_numpy())
    keep = ~q_mask
    arms_all = arm_raw[keep].astype(str).to_numpy()
    arm_names = tuple(sorted(set(arms_all)))
    if control is None:
        control = "control" if "control" in arm_names else None
    if control is None or control not in arm_names:
        raise InputError([f"log.{arm_col}: control arm {control!r} not found among {list(arm_names)}; "
                          "name it with --control"], what="experiment analysis")
    if len(arm_names) < 2:
        raise InputError([f"log.{arm_col}: only arm {arm_names[0]!r} present; nothing to compare"],
                         what="experiment analysis")
    treatments = [a for a in arm_names if a != control]

    # SRM: on assignment units (clusters when clustered), before burn-in exclusion
    srm_unit = "rows"
    if cluster_col:
        cl = df.loc[keep, [cluster_col]].assign(_arm=arms_all)
        per_arm = cl.drop_duplicates([cluster_col, "_arm"])["_arm"].value_counts()
        srm_unit = f"clusters ({cluster_col})"
    else:
        per_arm = pd.Series(arms_all).value_counts()
    order = [control, *treatments]
    counts = {a: int(per_arm.get(a, 0)) for a in order}
    srm_res = est.srm([counts[a] for a in order], weights)

    burn = np.zeros(len(df), dtype=bool)
    if burn_in_col and burn_in_col in df.columns:
        b, bad = numeric_column(df[burn_in_col])
        burn = np.nan_to_num(b) > 0
    excluded = int((burn & keep).sum())
    keep &= ~burn
    arm = arm_raw.astype(str).to_numpy()
    groups = df[cluster_col].astype(str).to_numpy() if cluster_col else None
    if unit_means:
        arms_per = pd.DataFrame({"g": groups[keep], "a": arm[keep]}).drop_duplicates().groupby("g").size()
        if (arms_per > 1).any():
            shared = arms_per.index[arms_per > 1]
            raise InputError([f"log.{cluster_col}: {len(shared)} cluster(s) appear in more than one arm "
                              f"(first: {shared[0]!r}); unit means need clusters nested in arms"],
                             what="experiment analysis")
    x = values.get(covariate) if covariate else None

    def one(spec: MetricSpec, treatment: str) -> est.Effect:
        in_arms = keep & np.isin(arm, [treatment, control])
        common = dict(metric=spec.name, arm=treatment, control=control, alpha=alpha)
        notes = []
        if spec.den is not None:
            num, den = values[spec.num], values[spec.den]
            num = np.where(np.isnan(num) & (den == 0), 0.0, num)  # unreadable rows are quarantined already
            ok = in_arms & np.isfinite(num) & np.isfinite(den)
            missing = int((in_arms & ~ok).sum())
            t = arm[ok] == treatment
            if covariate:
                notes.append(f"{spec.name}: covariate not used for ratio metrics")
            e = est.ratio(num[ok], den[ok], t, groups=None if groups is None else groups[ok], **common)
        else:
            y = values[spec.num]
            ok = in_arms & np.isfinite(y)
            if x is not None:
                ok &= np.isfinite(x)
            missing = int((in_arms & ~ok).sum())
            t = arm[ok] == treatment
            yy = y[ok]
            binary = yy.size > 0 and np.isin(yy, (0.0, 1.0)).all()
            kind = "proportion" if binary else "mean"
            if groups is not None and unit_means:
                first, codes = np.unique(groups[ok], return_index=True, return_inverse=True)[1:]
                codes = codes.ravel()
                size = np.bincount(codes)
                ym = np.bincount(codes, yy) / size
                tm = t[first]
                if x is None:
                    e = est.welch(ym[tm], ym[~tm], kind="mean", method="Welch t on cluster means", **common)
                else:
                    e = est.cuped(ym, np.bincount(codes, x[ok]) / size, tm, kind="mean", **common)
                    e = replace(e, method="CUPED + Welch t on cluster means")
            elif groups is not None:
                e = est.cluster_diff(yy, t, groups[ok], covariate=None if x is None else x[ok], kind=kind,
                                     **common)
            elif x is not None:
                e = est.cuped(yy, x[ok], t, kind=kind, **common)
            elif binary:
                e = est.two_proportion(int(yy[t].sum()), int(t.sum()), int(yy[~t].sum()), int((~t).sum()),
                                       **common)
            else:
                e = est.welch(yy[t], yy[~t], **common)
        if missing:
            notes.append(f"{spec.name}: {missing} row(s) without a value excluded")
        e = replace(e, notes=e.notes + tuple(notes), extras={**e.extras, "missing": missing})
        if unit_means and spec.den is not None:
            notes.append(f"{spec.name}: a ratio is already analysed on cluster totals")
        if sequential:
            n_now = (len(np.unique(groups[ok])) if groups is not None else int(ok.sum()))
            e = est.confidence_sequence(e, n_now=n_now, n_planned=n_planned or n_now)
        return e

    effects = tuple(one(m, a) for m in metrics for a in treatments)
    live = [i for i, e in enumerate(effects) if e.p_value is not None]
    p_holm: list[float | None] = [None] * len(effects)
    if live:
        adj, _ = est.holm([effects[i].p_value for i in live], alpha=alpha)
        for i, p in zip(live, adj):
            p_holm[i] = float(p)
    g_results = []
    for g in guardrails:
        for a in treatments:
            e = one(g.metric, a)
            if e.degenerate or e.ci_low is None:
                status = "degenerate"
            elif g.bad == "increase":
                status = "harm" if e.ci_low > g.margin else "ok"
            else:
                status = "harm" if e.ci_high < -g.margin else "ok"
            g_results.append(GuardrailResult(e, g.bad, g.margin, status))
    return Readout(arm_col=arm_col, control=control, arms=tuple(order), counts=counts, effects=effects,
                   p_holm=tuple(p_holm), guardrails=tuple(g_results), srm=srm_res, srm_unit=srm_unit,
                   rows=len(df), quarantined=quarantined, excluded_burn_in=excluded, alpha=alpha,
                   sequential=sequential)
