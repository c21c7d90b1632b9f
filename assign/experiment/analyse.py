"""Readout of an experiment log: every metric x treatment arm against control, with SRM,
Holm correction across the primary metrics, and guardrails.

Input is a DataFrame (one row per contact, or per unit) with an arm column and metric
columns; ``read_log`` loads CSV/Parquet. A row whose arm (or cluster) is missing is
quarantined from every metric; a value present but not a number is quarantined from the
metrics that use its column only, and counted per column. Rows flagged burn-in are excluded
and counted.

The method follows the design (``docs/experiments.md``, "Which estimator runs"):
independent rows -> Welch t / two-proportion z / delta method; clusters (``cluster_col``) ->
the wild cluster bootstrap below 50 clusters, CR2 with Bell-McCaffrey degrees of freedom from
50 on; a switchback design (``switchback`` + ``time_col``) -> randomisation inference
re-drawing the design's own windows, with a carryover test. Each effect's notes say which
method ran and why.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from scipy import stats

from assign.errors import InputError
from assign.experiment import estimators as est
from assign.experiment import smallsample as ss
from assign.experiment import switchback as sw
from assign.experiment.logs import numeric_column, read_log
from assign.experiment.randomise import Switchback
from assign.validate import Problems

__all__ = ["Guardrail", "GuardrailResult", "MetricSpec", "Readout", "analyse", "numeric_column", "read_log"]

FEW_CLUSTERS = 50  # below this many clusters the readout uses the wild cluster bootstrap
CLUSTER_METHODS = ("auto", "wild", "cr2", "cr1", "unit-means")
_HUGE, _TINY = 1e100, 1e-100  # values rescaled outside this range, so that squares cannot overflow


@dataclass(frozen=True)
class MetricSpec:
    """``col`` (mean or, when 0/1, proportion) or ``num/den`` (ratio by the delta method)."""

    name: str
    num: str
    den: str | None = None

    @classmethod
    def parse(cls, spec: str) -> MetricSpec:
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
    """A metric that must not move the wrong way: ``bad`` is increase or decrease. Verdicts:
    ``harm`` when the interval lies wholly beyond ``margin`` on the bad side, ``ok``
    (non-inferior) when it lies wholly on the good side of the margin, else ``inconclusive``.
    ``relative``: the margin is a fraction of the control mean (written ``5%``)."""

    metric: MetricSpec
    bad: str
    margin: float = 0.0
    relative: bool = False

    @classmethod
    def parse(cls, spec: str) -> Guardrail:
        parts = spec.split(":")
        p = Problems()
        if len(parts) not in (2, 3):
            raise InputError([f"guardrail {spec!r}: write METRIC:increase|decrease[:MARGIN]"], what="guardrail")
        p.choice(f"guardrail {spec!r}: bad direction", parts[1], ("increase", "decrease"))
        margin, relative = 0.0, False
        if len(parts) == 3:
            text = parts[2].strip()
            relative = text.endswith("%")
            try:
                value = float(text.rstrip("%"))
            except ValueError:
                value = text
            m = p.number(f"guardrail {spec!r}: margin", value, lo=0)
            margin = 0.0 if m is None else (m / 100 if relative else m)
        p.raise_if_any(what="guardrail")
        return cls(MetricSpec.parse(parts[0]), parts[1], margin, relative)


@dataclass(frozen=True)
class GuardrailResult:
    effect: est.Effect
    bad: str
    margin: float
    status: str  # ok | harm | inconclusive | degenerate
    reason: str = ""

    def to_dict(self) -> dict:
        return {"bad": self.bad, "margin": self.margin, "status": self.status, "reason": self.reason,
                **self.effect.to_dict()}


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
    quarantined_values: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "arm_col": self.arm_col, "control": self.control, "arms": list(self.arms),
            "counts": self.counts, "rows": self.rows, "alpha": self.alpha, "sequential": self.sequential,
            "quarantined": int(len(self.quarantined)),
            "quarantine_reasons": (self.quarantined["reason"].value_counts().to_dict()
                                   if len(self.quarantined) else {}),
            "quarantined_values": dict(self.quarantined_values),
            "excluded_burn_in": self.excluded_burn_in,
            "srm": None if self.srm is None else {**self.srm.to_dict(), "unit": self.srm_unit},
            "effects": [{**e.to_dict(), "p_holm": p, "significant_holm": p is not None and p < self.alpha}
                        for e, p in zip(self.effects, self.p_holm)],
            "guardrails": [g.to_dict() for g in self.guardrails],
        }


@dataclass(frozen=True)
class _Ctx:
    """What every metric's analysis shares: the row arrays and the options."""

    arm: np.ndarray
    dead: np.ndarray  # rows quarantined from every metric (arm or cluster missing)
    burn: np.ndarray
    values: dict
    bad: dict
    groups: np.ndarray | None
    control: str
    alpha: float
    covariate: str | None
    cluster_method: str
    sequential: bool
    n_planned: float | None
    switchback: Switchback | None
    seconds: np.ndarray | None
    sites: np.ndarray | None
    ri_draws: int
    boot_draws: int
    seed: int


# ---- input checks and row preparation ---------------------------------------------------------
def _check(df: pd.DataFrame, *, arm_col, metrics, guardrails, cluster_col, covariate, alpha, n_planned,
           cluster_method, switchback, time_col, site_col, ri_draws, boot_draws) -> dict[str, str]:
    """Every problem with the options and the log's columns at once; returns the columns needed."""
    p = Problems()
    if not metrics and not guardrails:
        p.add("metrics", "give at least one metric")
    p.number("alpha", alpha, lo=0, hi=1, lo_open=True)
    if alpha is not None and alpha == 1:
        p.add("alpha", "must be below 1")
    p.number("n_planned", n_planned, lo=0, lo_open=True, optional=True)
    p.number("ri_draws", ri_draws, lo=19, hi=1_000_000, integer=True)
    p.number("boot_draws", boot_draws, lo=99, hi=1_000_000, integer=True)
    p.choice("cluster_method", cluster_method, CLUSTER_METHODS)
    needed = {arm_col: "arm column"}
    for m in [*metrics, *(g.metric for g in guardrails)]:
        for c in m.columns:
            needed.setdefault(c, f"metric {m.name}")
    for col, what in ((cluster_col, "cluster column"), (covariate, "covariate"), (time_col, "time column"),
                      (site_col, "site column")):
        if col:
            needed.setdefault(col, what)
    for c, what in needed.items():
        if c not in df.columns:
            p.add(f"log.{c}", f"{what} not found (columns: {', '.join(map(str, df.columns))})")
    if cluster_method == "unit-means" and not cluster_col:
        p.add("unit_means", "needs a cluster column (the randomised unit)")
    if cluster_method not in ("auto", "unit-means") and cluster_method in CLUSTER_METHODS and not cluster_col:
        p.add("cluster_method", f"{cluster_method} needs a cluster column")
    if switchback is not None and not time_col:
        p.add("time_col", "a switchback analysis needs the time of each row")
    p.raise_if_any(what="experiment analysis")
    return needed


def _seconds(s: pd.Series, design: Switchback, problems: Problems, col: str) -> np.ndarray:
    """Seconds since the design's origin: numbers as they are, else timestamps (naive = UTC)."""
    if pd.api.types.is_numeric_dtype(s):
        v = s.astype("float64").to_numpy()
    else:
        t = pd.to_datetime(s, utc=True, errors="coerce")
        v = ((t - design.origin).dt.total_seconds()).to_numpy(dtype=np.float64)
    bad = ~np.isfinite(v)
    if bad.any():
        problems.add(f"log.{col}", f"{int(bad.sum())} row(s) without a readable time (first at row "
                                   f"{int(np.flatnonzero(bad)[0])})")
    return v


def _prepare(df, needed, *, arm_col, cluster_col, time_col):
    """(values, bad-value masks per column, rows dead for every metric, quarantine frame)."""
    reasons = [[] for _ in range(len(df))]
    dead = df[arm_col].isna().to_numpy().copy()
    for i in np.flatnonzero(dead):
        reasons[i].append(f"{arm_col} missing")
    if cluster_col:
        miss = df[cluster_col].isna().to_numpy()
        for i in np.flatnonzero(miss):
            reasons[i].append(f"{cluster_col} missing")
        dead |= miss
    values, bad = {}, {}
    for c in needed:
        if c in (arm_col, cluster_col, time_col):
            continue
        values[c], bad[c] = numeric_column(df[c])
        for i in np.flatnonzero(bad[c]):
            reasons[i].append(f"{c} not a number")
    has = np.array([bool(r) for r in reasons], dtype=bool)
    quarantined = df[has].assign(reason=["; ".join(r) for r, h in zip(reasons, has) if h])
    return values, bad, dead, quarantined


def _arms(arm_raw: pd.Series, keep: np.ndarray, control, arm_col) -> tuple[str, list[str]]:
    names = tuple(sorted(set(arm_raw[keep].astype(str))))
    if control is None:
        control = "control" if "control" in names else None
    if control is None or control not in names:
        raise InputError([f"log.{arm_col}: control arm {control!r} not found among {list(names)}; "
                          "name it with --control"], what="experiment analysis")
    if len(names) < 2:
        raise InputError([f"log.{arm_col}: only arm {names[0]!r} present; nothing to compare"],
                         what="experiment analysis")
    return control, [a for a in names if a != control]


def _srm(df, keep, arms_all, order, cluster_col, weights):
    """SRM on assignment units (clusters when clustered), before burn-in exclusion."""
    if cluster_col:
        cl = df.loc[keep, [cluster_col]].assign(_arm=arms_all)
        per_arm = cl.drop_duplicates([cluster_col, "_arm"])["_arm"].value_counts()
        unit = f"clusters ({cluster_col})"
    else:
        per_arm = pd.Series(arms_all).value_counts()
        unit = "rows"
    counts = {a: int(per_arm.get(a, 0)) for a in order}
    return counts, est.srm([counts[a] for a in order], weights), unit


# ---- one metric -------------------------------------------------------------------------------
def _scale_of(*arrays) -> float:
    """1, or the largest |value| when values are so large (or small) that squares would overflow
    (underflow): the estimators are scale-equivariant, so the data are analysed divided by it."""
    m = max((float(np.max(np.abs(a))) if a.size else 0.0) for a in arrays)
    return m if (m > _HUGE or 0 < m < _TINY) else 1.0


def _rescale(e: est.Effect, s: float) -> est.Effect:
    if s == 1.0:
        return e
    f = {k: (None if getattr(e, k) is None else getattr(e, k) * s)
         for k in ("mean_treatment", "mean_control", "diff", "se", "ci_low", "ci_high")}
    return replace(e, **f, notes=e.notes + (f"{e.metric}: values analysed divided by {s:.3g} (their size), "
                                            "results scaled back",))


def _retest(base: est.Effect, test: ss.CoefTest, crit: float, why: str) -> est.Effect:
    """``base`` (CR1 fit, same point estimate) with the inference of ``test``; the lift interval
    keeps the delta-method shape, widened by the ratio of the interval half-widths."""
    if base.degenerate or not (test.se > 0 and math.isfinite(crit)):
        return replace(base, notes=base.notes + (why,))
    half = crit * test.se
    old = (base.ci_high - base.ci_low) / 2
    lo = hi = None
    if base.lift is not None and base.lift_ci_low is not None and old > 0:
        lh = (base.lift_ci_high - base.lift_ci_low) / 2 * half / old
        lo, hi = base.lift - lh, base.lift + lh
    return replace(base, method=test.method, se=test.se, ci_low=base.diff - half, ci_high=base.diff + half,
                   p_value=test.p_value, df=test.df, lift_ci_low=lo, lift_ci_high=hi,
                   notes=base.notes + (why,), extras={**base.extras, "clusters": test.clusters, "crit": crit})


def _cluster_choice(ctx: _Ctx, G: int) -> tuple[str, str]:
    m = ctx.cluster_method
    if m == "auto":
        m = "wild" if G < FEW_CLUSTERS else "cr2"
        why = (f"{G} clusters (< {FEW_CLUSTERS}): CR1 errors are unreliable with few clusters, so the "
               "restricted wild cluster bootstrap-t decides" if m == "wild" else
               f"{G} clusters (>= {FEW_CLUSTERS}): CR2 errors with Bell-McCaffrey degrees of freedom")
        return m, why
    return m, f"cluster method {m} (chosen by the caller) over {G} clusters"


def _clustered(ctx: _Ctx, y, t, g, X, base: est.Effect) -> est.Effect:
    """Inference for ``base`` (a CR1 fit of y on X, treatment in column 1) per the cluster rule."""
    G = int(np.unique(g).size)
    method, why = _cluster_choice(ctx, G)
    why = f"{base.metric}: {why}"
    if base.degenerate or method == "cr1":
        return replace(base, notes=base.notes + (why,))
    if method == "cr2":
        test = ss.cr2(X, y, g)
        return _retest(base, test, float(stats.t.isf(ctx.alpha / 2, test.df)), why)
    test = ss.wild_cluster_bootstrap(X, y, g, draws=ctx.boot_draws, seed=ctx.seed, alpha=ctx.alpha)
    return _retest(base, test, test.crit, why)


def _unit_means(ctx: _Ctx, yy, t, g, x, common) -> est.Effect:
    first, codes = np.unique(g, return_index=True, return_inverse=True)[1:]
    codes = codes.ravel()
    size = np.bincount(codes)
    ym = np.bincount(codes, yy) / size
    tm = t[first]
    if x is None:
        return est.welch(ym[tm], ym[~tm], kind="mean", method="Welch t on cluster means", **common)
    e = est.cuped(ym, np.bincount(codes, x) / size, tm, kind="mean", **common)
    return replace(e, method="CUPED + Welch t on cluster means")


def _mean_effect(ctx: _Ctx, y, t, g, x, common) -> est.Effect:
    binary = y.size > 0 and bool(np.isin(y, (0.0, 1.0)).all())
    kind = "proportion" if binary else "mean"
    if g is not None and ctx.cluster_method == "unit-means":
        return _unit_means(ctx, y, t, g, x, common)
    if g is not None:
        base = est.cluster_diff(y, t, g, covariate=x, kind=kind, **common)
        cols = [np.ones_like(y), t.astype(float)] + ([] if x is None else [x - x.mean()])
        return _clustered(ctx, y, t, g, np.column_stack(cols), base)
    if x is not None:
        return est.cuped(y, x, t, kind=kind, **common)
    if binary:
        return est.two_proportion(int(y[t].sum()), int(t.sum()), int(y[~t].sum()), int((~t).sum()), **common)
    return est.welch(y[t], y[~t], **common)


def _ratio_effect(ctx: _Ctx, num, den, t, g, common) -> est.Effect:
    base = est.ratio(num, den, t, groups=g, **common)
    if g is None or base.degenerate:
        return base
    pos = den > 0  # WLS of num/den on the arm with weights den: rows with den = 0 weigh nothing
    w = np.sqrt(den[pos])
    X = np.column_stack([w, w * t[pos]])
    return _clustered(ctx, w * (num[pos] / den[pos]), t[pos], g[pos], X, base)


def _switchback_effect(ctx: _Ctx, y, rows, treatment, common) -> est.Effect:
    """Randomisation inference over the design's own re-drawn windows (rows include burn-ins:
    a re-draw decides its own), on top of the windows-clustered CR1 fit for means and lift."""
    d = ctx.switchback
    sites = None if ctx.sites is None else ctx.sites[rows]
    lab = d.label(ctx.seconds[rows], sites)
    post = ~lab["burn_in"].to_numpy()
    t = ctx.arm[rows] == treatment
    base = est.cluster_diff(y[post], t[post], lab["window"].to_numpy()[post], kind="mean", **common)
    if base.degenerate:
        return base
    cells = sw.cells_of(y, ctx.seconds[rows], d, sites)
    arms, switched = sw.assignments(cells, d, sw.draw_salts(d.salt, ctx.ri_draws))
    ri = sw.ri_test(cells, arms, switched, treatment=treatment, control=ctx.control, alpha=ctx.alpha)
    carry, carry_p, n_cells = sw.carryover_test(cells, arms, treatment=treatment, control=ctx.control)
    notes = [f"{base.metric}: switchback design: randomisation inference over {ri.draws} re-drawn window "
             "assignments (exact under the sharp null, whatever the number of windows)"]
    if math.isfinite(carry_p):
        notes.append(f"{base.metric}: carryover test: previous window's arm shifts this window's mean by "
                     f"{carry:+.4g} (randomisation p = {carry_p:.3g}, {n_cells} windows)"
                     + ("; CARRYOVER: lengthen the burn-in" if carry_p < ctx.alpha else ""))
    lo = hi = None
    if base.lift is not None and ri.ci_low is not None and base.mean_control:
        lo, hi = ri.ci_low / base.mean_control, ri.ci_high / base.mean_control
    return replace(base, method=f"randomisation inference (switchback, {ri.draws} re-draws)", se=ri.se,
                   ci_low=ri.ci_low, ci_high=ri.ci_high, p_value=ri.p_value, df=None, lift_ci_low=lo,
                   lift_ci_high=hi, notes=base.notes + tuple(notes),
                   extras={**base.extras, "carryover": carry, "carryover_p": carry_p, "ri_draws": ri.draws})


def _usable(ctx: _Ctx, spec: MetricSpec, treatment: str) -> tuple[np.ndarray, np.ndarray, int]:
    """(rows in the two arms and not dead, rows also free of quarantined values, values
    quarantined from this metric)."""
    in_arms = ~ctx.dead & np.isin(ctx.arm, [treatment, ctx.control])
    cols = list(spec.columns) + ([ctx.covariate] if ctx.covariate and spec.den is None else [])
    bad = np.zeros(len(in_arms), dtype=bool)
    for c in cols:
        bad |= ctx.bad[c]
    return in_arms, in_arms & ~bad, int((in_arms & bad).sum())


def _effect(ctx: _Ctx, spec: MetricSpec, treatment: str) -> est.Effect:
    common = dict(metric=spec.name, arm=treatment, control=ctx.control, alpha=ctx.alpha)
    in_arms, ok, n_bad = _usable(ctx, spec, treatment)
    notes = [f"{spec.name}: {n_bad} row(s) with an unreadable value quarantined from this metric"] if n_bad else []
    x = ctx.values.get(ctx.covariate) if ctx.covariate else None
    if spec.den is not None:
        num, den = ctx.values[spec.num], ctx.values[spec.den]
        num = np.where(np.isnan(num) & (den == 0), 0.0, num)  # e.g. no handle time when not answered
        ok &= np.isfinite(num) & np.isfinite(den) & ~ctx.burn
        if ctx.covariate:
            notes.append(f"{spec.name}: covariate not used for ratio metrics")
        if ctx.cluster_method == "unit-means":
            notes.append(f"{spec.name}: a ratio is analysed on cluster totals (cluster-robust), not unit means")
        s_n, s_d = _scale_of(num[ok]), _scale_of(den[ok])
        e = _ratio_effect(ctx, num[ok] / s_n, den[ok] / s_d, ctx.arm[ok] == treatment,
                          None if ctx.groups is None else ctx.groups[ok], common)
        e = _rescale(e, s_n / s_d)
    else:
        y = ctx.values[spec.num]
        ok &= np.isfinite(y) & (True if x is None else np.isfinite(x))
        s = _scale_of(y[ok])
        if ctx.switchback is not None:
            e = _switchback_effect(ctx, y[ok] / s, ok, treatment, common)
        else:
            ok &= ~ctx.burn
            g = None if ctx.groups is None else ctx.groups[ok]
            xs = None if x is None else x[ok] / _scale_of(x[ok])
            e = _mean_effect(ctx, y[ok] / s, ctx.arm[ok] == treatment, g, xs, common)
        e = _rescale(e, s)
    missing = int((in_arms & ~ok & ~ctx.burn).sum()) - n_bad
    if missing > 0:
        notes.append(f"{spec.name}: {missing} row(s) without a value excluded")
    e = replace(e, notes=e.notes + tuple(notes), extras={**e.extras, "missing": max(missing, 0),
                                                          "quarantined": n_bad})
    if ctx.sequential:
        n_now = len(np.unique(ctx.groups[ok])) if ctx.groups is not None else int(ok.sum())
        e = est.confidence_sequence(e, n_now=n_now, n_planned=ctx.n_planned or n_now)
    return e


def _guardrail(ctx: _Ctx, g: Guardrail, treatment: str) -> GuardrailResult:
    e = _effect(ctx, g.metric, treatment)
    if e.degenerate or e.ci_low is None:
        return GuardrailResult(e, g.bad, g.margin, "degenerate", e.degenerate or "no interval")
    m = g.margin * abs(e.mean_control) if g.relative and e.mean_control is not None else g.margin
    side = 1.0 if g.bad == "increase" else -1.0
    worst, best = (e.ci_high, e.ci_low) if side > 0 else (-e.ci_low, -e.ci_high)
    if best > m:
        return GuardrailResult(e, g.bad, m, "harm", f"the whole interval is worse than the margin {m:g}")
    if worst < m:
        what = "no worse than the margin" if m > 0 else "better than control"
        return GuardrailResult(e, g.bad, m, "ok", f"non-inferior: the whole interval is {what} ({m:g})")
    return GuardrailResult(e, g.bad, m, "inconclusive",
                           f"the interval reaches past the margin {m:g} on the bad side but does not lie "
                           "wholly beyond it: the test cannot rule the harm in or out (set a margin, or run longer)")


# ---- the readout ------------------------------------------------------------------------------
def _holm(effects, alpha) -> tuple[float | None, ...]:
    live = [i for i, e in enumerate(effects) if e.p_value is not None]
    out: list[float | None] = [None] * len(effects)
    if live:
        adj, _ = est.holm([effects[i].p_value for i in live], alpha=alpha)
        for i, p in zip(live, adj):
            out[i] = float(p)
    return tuple(out)


def _context(df, *, values, bad, dead, arm_col, control, cluster_col, burn_in_col, options) -> tuple[_Ctx, int]:
    keep = ~dead
    burn = np.zeros(len(df), dtype=bool)
    if burn_in_col and burn_in_col in df.columns:
        b, _ = numeric_column(df[burn_in_col])
        burn = np.nan_to_num(b) > 0
    arm = df[arm_col].astype(str).to_numpy()
    groups = df[cluster_col].astype(str).to_numpy() if cluster_col else None
    if options["cluster_method"] == "unit-means":
        per = pd.DataFrame({"g": groups[keep], "a": arm[keep]}).drop_duplicates().groupby("g").size()
        if (per > 1).any():
            shared = per.index[per > 1]
            raise InputError([f"log.{cluster_col}: {len(shared)} cluster(s) appear in more than one arm "
                              f"(first: {shared[0]!r}); unit means need clusters nested in arms"],
                             what="experiment analysis")
    seconds = sites = None
    design, time_col, site_col = options.pop("switchback"), options.pop("time_col"), options.pop("site_col")
    if design is not None:
        p = Problems()
        seconds = _seconds(df[time_col], design, p, time_col)
        sites = df[site_col].astype(str).to_numpy() if site_col else None
        p.raise_if_any(what="experiment analysis")
        _check_assignment(design, seconds, sites, arm, keep, arm_col)
        burn = np.zeros(len(df), dtype=bool)  # the design decides the burn-in of each re-draw
    excluded = int((burn & keep).sum())
    ctx = _Ctx(arm=arm, dead=dead, burn=burn, values=values, bad=bad, groups=groups, control=control,
               switchback=design, seconds=seconds, sites=sites, **options)
    return ctx, excluded


def _check_assignment(design: Switchback, seconds, sites, arm, keep, arm_col) -> None:
    """Randomisation inference re-draws the design: the log must follow it."""
    lab = design.label(seconds[keep], None if sites is None else sites[keep])
    differ = lab["arm"].to_numpy() != arm[keep]
    if differ.any():
        raise InputError([f"log.{arm_col}: {int(differ.sum())} row(s) carry an arm other than the switchback "
                          f"design's window assignment (salt {design.salt!r}, window {design.window_s:g} s); "
                          "randomisation inference needs the design that was run"], what="experiment analysis")


def analyse(df: pd.DataFrame, *, arm_col: str = "arm", metrics, control: str | None = None,
            cluster_col: str | None = None, covariate: str | None = None, sequential: bool = False,
            n_planned: float | None = None, guardrails=(), weights=None, alpha: float = 0.05,
            burn_in_col: str | None = "burn_in", unit_means: bool = False, cluster_method: str = "auto",
            switchback: Switchback | None = None, time_col: str | None = None, site_col: str | None = None,
            ri_draws: int = 1000, boot_draws: int = 999, seed: int = 0) -> Readout:
    """Analyse a log: see the module docstring. ``metrics`` and ``guardrails`` are specs (str)
    or parsed objects; ``weights`` are the design's arm weights in sorted-arm order (control
    first), equal by default; ``n_planned`` sizes the confidence sequence (rows, or clusters
    with ``cluster_col``; default: the current size). ``cluster_method`` auto (by the number of
    clusters), wild, cr2, cr1 or unit-means (``unit_means=True`` is the same: Welch on cluster
    means, clusters nested in arms). ``switchback`` (with ``time_col``: seconds since the
    design's origin, or timestamps; ``site_col`` when windows are cut per site) switches to
    randomisation inference with ``ri_draws`` re-draws; ``boot_draws`` and ``seed`` set the
    wild bootstrap."""
    metrics = [m if isinstance(m, MetricSpec) else MetricSpec.parse(m) for m in metrics]
    guardrails = [g if isinstance(g, Guardrail) else Guardrail.parse(g) for g in guardrails]
    cluster_method = "unit-means" if unit_means else cluster_method
    needed = _check(df, arm_col=arm_col, metrics=metrics, guardrails=guardrails, cluster_col=cluster_col,
                    covariate=covariate, alpha=alpha, n_planned=n_planned, cluster_method=cluster_method,
                    switchback=switchback, time_col=time_col, site_col=site_col, ri_draws=ri_draws,
                    boot_draws=boot_draws)
    values, bad, dead, quarantined = _prepare(df, needed, arm_col=arm_col, cluster_col=cluster_col,
                                              time_col=time_col)
    control, treatments = _arms(df[arm_col], ~dead, control, arm_col)
    order = [control, *treatments]
    counts, srm_res, srm_unit = _srm(df, ~dead, df[arm_col][~dead].astype(str).to_numpy(), order, cluster_col,
                                     weights)
    options = dict(alpha=alpha, covariate=covariate, cluster_method=cluster_method, sequential=sequential,
                   n_planned=n_planned, ri_draws=int(ri_draws), boot_draws=int(boot_draws), seed=int(seed),
                   switchback=switchback, time_col=time_col, site_col=site_col)
    ctx, excluded = _context(df, values=values, bad=bad, dead=dead, arm_col=arm_col, control=control,
                             cluster_col=cluster_col, burn_in_col=burn_in_col, options=options)
    effects = tuple(_effect(ctx, m, a) for m in metrics for a in treatments)
    g_results = tuple(_guardrail(ctx, g, a) for g in guardrails for a in treatments)
    return Readout(arm_col=arm_col, control=control, arms=tuple(order), counts=counts, effects=effects,
                   p_holm=_holm(effects, alpha), guardrails=g_results, srm=srm_res, srm_unit=srm_unit,
                   rows=len(df), quarantined=quarantined, excluded_burn_in=excluded, alpha=alpha,
                   sequential=sequential, quarantined_values={c: int(m.sum()) for c, m in bad.items() if m.any()})
