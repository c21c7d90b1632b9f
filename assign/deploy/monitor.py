"""Monitoring a champion model: does recent traffic still look like its training data, and
is the model still calibrated on the outcomes that have matured?

Every check is a day-level shift test (:mod:`assign.deploy.drift`): a per-row quantity's
recent mean against the reference days' means, allowing for the reference's own
day-to-day variation, so the false-alarm rate does not grow with the batch size (plain PSI
or a row-level KS test fires on most unchanged batches once they are large, because rows of
a day are not independent). One alarm threshold over all of them: Bonferroni at
``alpha`` (the family-wise false-alarm probability of one check). The quantities:

- feature drift: per numeric model feature, the reference's mid-rank CDF of the value
  (location) and its distance from the median (spread); per category of ``channel`` and
  ``intent``, the share of rows in it. Features are built by the model's own code path
  (:func:`assign.features.history_features`). Left out by default: hour and weekday (the
  tests condition on them) and the agents' point-in-time performance features, whose counts
  grow every day on an unchanged world (they are watched through the predictions).
- prediction drift: the same two quantities of each target's prediction on served rows.
- calibration: observed minus predicted on matured rows (outcome known by ``now``), overall,
  per intent and per reliability bin (the reference's deciles of the prediction). The
  reference side uses only rows the model did not fit (``calibration_reference="held_out"``,
  the default: rows arriving at or after the start of its early-stopping and held-out tail,
  :func:`unseen_from`): in-sample residuals are shrunk towards zero and vary less from day
  to day, so an out-of-sample recent day compared with them alarms too often.
- unknown categories: the share of recent contacts whose intent or language the model never
  saw (a threshold: the reference has none by construction).
- agents: per-agent observed minus predicted resolution (binomial score z, Holm-adjusted);
  reported, and an alarm only when ``MonitorConfig.agent_alarms`` is set.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from assign.constants import DAY_S, HOUR_S
from assign.deploy.drift import DayTest, beyond_margin, binomial_residual_z, day_test, holm, hour_centred, midrank_pit
from assign.errors import InputError
from assign.history import conform_history, epoch_seconds

SCHEMA = "assign.monitor/1"
#: Features not tested by default (see the module docstring).
DEFAULT_EXCLUDE = ("hour", "weekday", "agent_rate", "agent_log_n", "agent_intent_rate", "agent_intent_log_n",
                   "agent_handle_ratio", "agent_csat")
CATEGORICAL = ("channel", "intent")
HISTORY_DEPENDENT = ("cust_recent_72h",)  # needs 72 h of history before the row
REFERENCES = ("held_out", "all")


@dataclass(frozen=True, kw_only=True)
class MonitorConfig:
    """Thresholds of :func:`monitor`. ``alpha``: probability that one check on an unchanged
    world raises any alarm (Bonferroni over every day test); ``warmup_h``: reference rows this
    close to the start of the data are left out of the null (their point-in-time features
    lack history); ``label_delay_s`` None: the model's own; ``calibration_margin``: per target,
    a calibration shift no larger than this never alarms (default none: any shift beyond the
    reference's day-to-day variation does); ``calibration_reference`` / ``prediction_reference``:
    which reference rows the calibration / prediction checks use: ``"held_out"`` (rows the
    model did not fit, :func:`unseen_from`) or ``"all"`` (every reference row after the warm-up);
    ``min_day_share``: reference days with fewer rows than this share of the median day are
    part days (the hours before a window's cut-off) and left out (:func:`assign.deploy.drift.whole_days`);
    ``dispersion``: widen each test by the reference's own leave-one-day-out dispersion
    (:func:`assign.deploy.drift.loo_dispersion`; off by default: it only ever widens a test,
    and leaving part days out removed the false alarms it was built for, docs/monitor.md).

    The default ``alpha`` was set by a rule on a driftless calibration run, not by hand: the
    largest 1-2-5 value (at most 0.01) below which no nightly check of the driftless living
    centre alarmed (93 checks, seeds 100-103; ``benchmarks.monitor_threshold``), so that a new check alarms
    at most about once in N + 1 calibration checks; docs/monitor.md has the run and the
    evaluation on other seeds."""

    alpha: float = 0.005  # from the calibration rule (class docstring), 0.01 before
    min_day_rows: int = 10
    min_days: int = 3
    warmup_h: float = 72.0
    exclude: tuple[str, ...] = DEFAULT_EXCLUDE
    max_unknown_share: float = 0.005
    min_unknown_rows: int = 5
    label_delay_s: float | None = None
    calibration_margin: dict[str, float] = field(default_factory=dict)  # target -> smallest shift that matters
    calibration_bins: int = 10
    agent_alarms: bool = False
    calibration_reference: str = "held_out"
    prediction_reference: str = "all"
    agent_alpha: float = 0.01
    top_agents: int = 10
    min_day_share: float = 0.2
    dispersion: bool = False

    def __post_init__(self) -> None:
        problems = []
        if not 0 < self.alpha < 1:
            problems.append(f"alpha must be in (0, 1), got {self.alpha!r}")
        if not 0 < self.agent_alpha < 1:
            problems.append(f"agent_alpha must be in (0, 1), got {self.agent_alpha!r}")
        if not 0 <= self.max_unknown_share < 1:
            problems.append(f"max_unknown_share must be in [0, 1), got {self.max_unknown_share!r}")
        for k in ("min_day_rows", "min_days", "calibration_bins", "min_unknown_rows", "top_agents"):
            if getattr(self, k) < 1:
                problems.append(f"{k} must be >= 1, got {getattr(self, k)!r}")
        if self.min_days < 2:
            problems.append(f"min_days must be >= 2 (a spread needs two days), got {self.min_days!r}")
        bad = {k: v for k, v in self.calibration_margin.items() if not (isinstance(v, int | float) and v >= 0)}
        if bad:
            problems.append(f"calibration_margin values must be numbers >= 0, got {bad!r}")
        for k in ("calibration_reference", "prediction_reference"):
            if getattr(self, k) not in REFERENCES:
                problems.append(f"{k} must be one of {', '.join(REFERENCES)}, got {getattr(self, k)!r}")
        if not 0 <= self.min_day_share < 1:
            problems.append(f"min_day_share must be in [0, 1), got {self.min_day_share!r}")
        if not self.warmup_h >= 0:
            problems.append(f"warmup_h must be >= 0, got {self.warmup_h!r}")
        if problems:
            raise InputError(problems, what="monitor config")


@dataclass(frozen=True)
class Quantity:
    """One tested per-row quantity: values on the reference rows and on the recent rows."""

    kind: str   # feature | prediction | calibration
    name: str
    ref: np.ndarray
    rec: np.ndarray
    margin: float = 0.0  # shifts up to this size do not alarm


@dataclass
class MonitorReport:
    """What :func:`monitor` found. ``alarms``: one dict per alarm (kind, name, statistic,
    p_value or threshold, detail); ``tests``: every day test; ``plots``: data for the figures."""

    alarm: bool
    alarms: list[dict[str, Any]]
    tests: list[dict[str, Any]]
    unknown: dict[str, Any]
    agents: list[dict[str, Any]]
    calibration: dict[str, Any]
    meta: dict[str, Any]
    plots: dict[str, Any] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        from assign.io import json_safe

        return json_safe(dict(schema=SCHEMA, alarm=self.alarm, alarms=self.alarms, meta=self.meta,
                              unknown=self.unknown, calibration=self.calibration, agents=self.agents,
                              tests=self.tests))

    def write(self, out_dir: str | Path) -> list[Path]:
        """``monitor.json`` and the PNG figures into ``out_dir`` (created); returns the paths."""
        from assign.deploy.monitor_plots import write_plots
        from assign.io import dumps, write_text

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = [write_text(out / "monitor.json", dumps(self.to_dict(), indent=1))]
        return paths + write_plots(self, out)


@dataclass(frozen=True)
class Side:
    """One side (reference or recent) after features and predictions: arrays per row."""

    hist: pd.DataFrame
    X: np.ndarray
    preds: dict[str, np.ndarray]
    t: np.ndarray
    day: np.ndarray
    hour: np.ndarray
    in_null: np.ndarray     # rows that count (reference: after the warm-up)
    done_at: np.ndarray     # when the contact ended (inf when not served)
    matured: np.ndarray     # outcome known by the check's time (set by :meth:`matured_by`)

    def take(self, mask: np.ndarray) -> Side:
        """The rows where ``mask`` holds."""
        m = np.asarray(mask, bool)
        return Side(hist=self.hist[m].reset_index(drop=True), X=self.X[m],
                    preds={k: v[m] for k, v in self.preds.items()}, t=self.t[m], day=self.day[m],
                    hour=self.hour[m], in_null=self.in_null[m], done_at=self.done_at[m], matured=self.matured[m])

    def matured_by(self, now_s: float, delay_s: float) -> Side:
        """This side with ``matured``: served and ended at least ``delay_s`` before ``now_s``."""
        from dataclasses import replace

        return replace(self, matured=np.isfinite(self.done_at) & (self.done_at + delay_s <= now_s))


def monitor(recent: pd.DataFrame, *, reference: pd.DataFrame, model_dir: Any, config: MonitorConfig | None = None,
            now: datetime | pd.Timestamp | None = None, context: pd.DataFrame | None = None,
            routed_from: datetime | pd.Timestamp | None = None) -> MonitorReport:
    """Compare ``recent`` traffic with ``reference`` (the champion's training data) for the
    model in ``model_dir`` (a path or a loaded :class:`assign.model.ModelDir`). ``now``: the
    time of the check (default: the last moment in ``recent``); only outcomes known by then
    count. ``context``: earlier rows used only to build ``recent``'s point-in-time features
    (default: the reference's rows before ``recent``). ``routed_from``: reference rows that
    arrived from then on are traffic the model routed after its window (matured, before
    ``recent``): out of sample, so the calibration check uses them, the feature and prediction
    checks do not (their reference stays the model's window)."""
    from assign.model.scorer import ModelDir

    cfg = config or MonitorConfig()
    model = model_dir if isinstance(model_dir, ModelDir) else ModelDir.load(model_dir)
    ref_h, rec_h = _checked(reference, "reference"), _checked(recent, "recent")
    now_s = _now_seconds(rec_h, now)
    t0 = _day0(ref_h, rec_h)
    ref = build_side(model, ref_h, None, cfg, t0=t0, reference=True)
    ctx = ref_h if context is None else _checked(context, "context")
    rec = build_side(model, rec_h, ctx, cfg, t0=t0, reference=False)
    routed_s = None if routed_from is None else _now_seconds(rec_h, routed_from)
    return assess(model, ref, rec, cfg, now_s=now_s, routed_from_s=routed_s)


def assess(model, ref: Side, rec: Side, cfg: MonitorConfig, *, now_s: float,
           routed_from_s: float | None = None) -> MonitorReport:
    """The checks of :func:`monitor` on prepared sides (:func:`build_side`): a simulation that
    checks many days builds each side once and slices the recent one (:meth:`Side.take`).
    ``routed_from_s``: see :func:`monitor`'s ``routed_from``."""
    delay = float(model.spec.label_delay_s if cfg.label_delay_s is None else cfg.label_delay_s)
    rec = rec.matured_by(now_s, delay)
    ref = ref.matured_by(np.inf, delay)
    unseen_s = unseen_from(model.metadata)
    window = np.ones(len(ref.t), bool) if routed_from_s is None else ref.t < routed_from_s
    ref_w = ref if routed_from_s is None else ref.take(window)  # the feature and prediction checks' reference
    oos = np.ones(len(ref.t), bool) if unseen_s is None else ref.t >= unseen_s
    held_out = cfg.prediction_reference == "held_out"
    cal_keep = oos if cfg.calibration_reference == "held_out" else None
    paired = [*((q, ref_w) for q in _feature_quantities(model, ref_w, rec, cfg)),
              *((q, ref_w) for q in _restricted(_prediction_quantities(ref_w, rec), oos[window] if held_out else None)),
              *((q, ref) for q in _restricted(_calibration_quantities(model, ref, rec, cfg), cal_keep))]
    quantities = [q for q, _ in paired]
    tests = [_run(q, side, rec, cfg) for q, side in paired]
    n_tests = sum(1 for d in tests if d.testable)
    cut = cfg.alpha / max(n_tests, 1)
    alarms = [_alarm(q, d, cut) for q, d in zip(quantities, tests) if d.testable and d.p_value < cut]
    unknown = _unknown(model, rec, cfg)
    alarms += unknown.pop("alarms")
    agents, agent_alarms = _agents(rec, cfg)
    if cfg.agent_alarms:
        alarms += agent_alarms
    calib = _calibration_windows(ref, rec, cfg)
    meta = dict(now=pd.Timestamp(now_s, unit="s", tz="UTC").isoformat(), model=str(model.path),
                rows_reference=int(ref.in_null.sum()), rows_recent=int(len(rec.hist)),
                matured_recent=int(rec.matured.sum()), days_reference=int(len(np.unique(ref.day[ref.in_null]))),
                tests=len(tests), testable=n_tests, alpha=cfg.alpha, p_threshold=cut, label_delay_s=delay,
                calibration_reference=cfg.calibration_reference, prediction_reference=cfg.prediction_reference,
                dispersion=cfg.dispersion, min_day_share=cfg.min_day_share,
                unseen_from=None if unseen_s is None else pd.Timestamp(unseen_s, unit="s", tz="UTC").isoformat(),
                rows_reference_unseen=int((ref.in_null & oos).sum()),
                rows_reference_routed=int((ref.in_null & ~window).sum()),
                days_reference_unseen=int(len(np.unique(ref.day[ref.in_null & oos]))))
    rows = [dict(kind=q.kind, name=q.name, statistic=d.z, p_value=d.p_value, df=d.df, recent=d.recent,
                 reference=d.reference, sd=d.sd, tau=d.tau, n_recent=d.n_recent, days_reference=d.days_reference,
                 dispersion=d.dispersion, testable=d.testable) for q, d in zip(quantities, tests)]
    return MonitorReport(alarm=bool(alarms), alarms=alarms, tests=rows, unknown=unknown, agents=agents,
                         calibration=calib["summary"], meta=meta, plots=dict(reliability=calib["reliability"],
                                                                             daily=calib["daily"]))


def unseen_from(meta: dict[str, Any]) -> float | None:
    """Epoch seconds from which a model's training history was not fitted: the start of its
    early-stopping segment (``data.valid_from``; it picks only the number of rounds), else of
    its held-out tail (``held_out.from``, older models); every later row is unseen too.
    A refit (``refit``: every row fitted) has seen every row up to its last arrival: just after it.
    None when the metadata records neither (then every reference row is used)."""
    refit = bool(meta.get("refit"))
    t = (meta.get("data") or {}).get("last_arrival") if refit else \
        (meta.get("data") or {}).get("valid_from") or (meta.get("held_out") or {}).get("from")
    if not t:
        return None
    ts = pd.Timestamp(t)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts
    s = float(epoch_seconds(pd.Series([ts]))[0])  # rounded as the rows' times are
    return float(np.nextafter(s, np.inf)) if refit else s


def _restricted(quantities: list[Quantity], keep: np.ndarray | None) -> list[Quantity]:
    """``quantities`` with reference values outside ``keep`` blanked (None: unchanged)."""
    if keep is None:
        return quantities
    from dataclasses import replace

    return [replace(q, ref=np.where(keep, q.ref, np.nan)) for q in quantities]


def _checked(df: Any, what: str) -> pd.DataFrame:
    if not isinstance(df, pd.DataFrame):
        raise InputError([f"{what}: expected a pandas DataFrame (history contract), got {type(df).__name__}"],
                         what="monitor input")
    h = conform_history(df)
    if len(h) == 0:
        raise InputError([f"{what}: no rows"], what="monitor input")
    dup = h["contact_id"].duplicated()
    if dup.any():
        raise InputError([f"{what}.contact_id: {int(dup.sum())} duplicate id(s), first "
                          f"{h['contact_id'][dup].iloc[0]!r}"], what="monitor input")
    return h.sort_values(["arrival_at", "contact_id"], kind="stable").reset_index(drop=True)


def _now_seconds(rec: pd.DataFrame, now: Any) -> float:
    if now is not None:
        return float(pd.Timestamp(now).tz_localize("UTC").timestamp() if pd.Timestamp(now).tzinfo is None
                     else pd.Timestamp(now).timestamp())
    t = epoch_seconds(rec["arrival_at"])
    end = t + np.nan_to_num(rec["wait_s"].astype("float64").to_numpy(na_value=np.nan)) + np.nan_to_num(
        rec["handle_s"].astype("float64").to_numpy(na_value=np.nan))
    return float(end.max())


def _day0(*frames: pd.DataFrame) -> float:
    return float(np.floor(min(epoch_seconds(f["arrival_at"]).min() for f in frames) / DAY_S) * DAY_S)


def build_side(model, hist: pd.DataFrame, context: pd.DataFrame | None, cfg: MonitorConfig, *, t0: float,
               reference: bool) -> Side:
    """Features (point in time over ``context`` + ``hist``), predictions and day/hour codes
    (days counted from ``t0``) of ``hist``, a conformed history sorted by arrival."""
    from assign.features.build import history_features

    t = epoch_seconds(hist["arrival_at"])
    if context is not None:
        ctx = context[(epoch_seconds(context["arrival_at"]) < t.min())
                      & ~context["contact_id"].isin(hist["contact_id"])]
        full = pd.concat([ctx, hist], ignore_index=True)
    else:
        ctx, full = hist.iloc[:0], hist
    X = history_features(full, model.spec).X[len(ctx):].copy()
    short = t < float(epoch_seconds(full["arrival_at"]).min()) + cfg.warmup_h * HOUR_S
    for name in HISTORY_DEPENDENT:
        X[short, model.spec.names.index(name)] = np.nan
    preds = model.predict_matrix(X)
    served = hist["agent_id"].notna().to_numpy()
    for v in preds.values():
        v[~served] = np.nan
    done = t + np.nan_to_num(hist["wait_s"].astype("float64").to_numpy(na_value=np.nan)) + np.nan_to_num(
        hist["handle_s"].astype("float64").to_numpy(na_value=np.nan))
    day = np.floor((t - t0) / DAY_S).astype(np.int64)
    hour = np.floor((t - np.floor(t / DAY_S) * DAY_S) / HOUR_S).astype(np.int64)
    return Side(hist=hist, X=X, preds=preds, t=t, day=day, hour=np.clip(hour, 0, 23),
                in_null=~short if reference else np.ones(len(t), bool), done_at=np.where(served, done, np.inf),
                matured=served)


def _spread(pit: np.ndarray) -> np.ndarray:
    return np.abs(2.0 * pit - 1.0)


def _feature_quantities(model, ref: Side, rec: Side, cfg: MonitorConfig) -> list[Quantity]:
    out = []
    for k, name in enumerate(model.spec.names):
        if name in cfg.exclude:
            continue
        a, b = ref.X[:, k].astype(np.float64), rec.X[:, k].astype(np.float64)
        if name in CATEGORICAL:
            vocab = model.spec.intents if name == "intent" else _channels()
            for code, label in enumerate(vocab):
                out.append(Quantity("feature", f"{name}={label}", _share(a, code), _share(b, code)))
            continue
        pa, pb = midrank_pit(a, a), midrank_pit(a, b)
        out += [Quantity("feature", f"{name}:location", pa, pb),
                Quantity("feature", f"{name}:spread", _spread(pa), _spread(pb))]
    return out


def _channels() -> tuple[str, ...]:
    from assign.schema import CHANNELS

    return tuple(CHANNELS)


def _share(x: np.ndarray, code: int) -> np.ndarray:
    """1 where the category is ``code``, 0 elsewhere, NaN where the value is missing."""
    return np.where(np.isfinite(x), (x == code).astype(float), np.nan)


def _prediction_quantities(ref: Side, rec: Side) -> list[Quantity]:
    out = []
    for n in ref.preds:
        pa, pb = midrank_pit(ref.preds[n], ref.preds[n]), midrank_pit(ref.preds[n], rec.preds[n])
        out += [Quantity("prediction", f"{n}:location", pa, pb),
                Quantity("prediction", f"{n}:spread", _spread(pa), _spread(pb))]
    return out


def _residual(side: Side, n: str) -> np.ndarray:
    """Observed minus predicted on matured rows (NaN elsewhere); handle time relative."""
    from assign.model.train import TARGETS

    y = side.hist[TARGETS[n].column].astype("float64").to_numpy(na_value=np.nan)
    p = side.preds[n]
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (y - p) / np.maximum(p, 1.0) if n == "handle_time" else y - p
    return np.where(side.matured, r, np.nan)


def _calibration_quantities(model, ref: Side, rec: Side, cfg: MonitorConfig) -> list[Quantity]:
    out = []
    k_int = model.spec.names.index("intent")
    for n in ref.preds:
        ra, rb = _residual(ref, n), _residual(rec, n)
        mg = float(cfg.calibration_margin.get(n, 0.0))
        out.append(Quantity("calibration", f"{n}:all", ra, rb, mg))
        for code, label in enumerate(model.spec.intents):
            ma, mb = ref.X[:, k_int] == code, rec.X[:, k_int] == code
            out.append(Quantity("calibration", f"{n}:intent={label}", np.where(ma, ra, np.nan),
                                np.where(mb, rb, np.nan), mg))
        edges = _bin_edges(ref.preds[n][np.isfinite(ra)], cfg.calibration_bins)
        ba, bb = np.searchsorted(edges, ref.preds[n]), np.searchsorted(edges, rec.preds[n])
        for b in range(len(edges) + 1):
            out.append(Quantity("calibration", f"{n}:bin={b}", np.where(ba == b, ra, np.nan),
                                np.where(bb == b, rb, np.nan), mg))
    return out


def _bin_edges(p: np.ndarray, bins: int) -> np.ndarray:
    if len(p) == 0:
        return np.zeros(0)
    return np.unique(np.quantile(p, np.linspace(0, 1, bins + 1)[1:-1]))


def _run(q: Quantity, ref: Side, rec: Side, cfg: MonitorConfig) -> DayTest:
    a = np.where(ref.in_null, q.ref, np.nan)
    ca, cb = hour_centred(a, ref.hour, q.rec, rec.hour, ref_day=ref.day)
    d = day_test(ca, ref.day, cb, rec.day, min_day_rows=cfg.min_day_rows, min_days=cfg.min_days,
                 min_day_share=cfg.min_day_share, dispersion=cfg.dispersion)
    return beyond_margin(d, q.margin)


def _alarm(q: Quantity, d: DayTest, cut: float) -> dict[str, Any]:
    return dict(kind=q.kind, name=q.name, statistic=d.z, p_value=d.p_value, threshold=cut,
                detail=f"recent mean {d.recent:+.4g} vs reference {d.reference:+.4g} (hour-centred; sd {d.sd:.3g}, "
                       f"day-to-day sd {d.tau:.3g}, {d.days_reference} reference days, {d.n_recent} recent rows)")


def _unknown(model, rec: Side, cfg: MonitorConfig) -> dict[str, Any]:
    """Share of recent contacts whose intent or language the model never saw."""
    res: dict[str, Any] = {"alarms": []}
    for col, vocab in (("intent", model.spec.intents), ("language", model.spec.languages)):
        v = rec.hist[col]
        bad = v.notna() & ~v.isin(list(vocab))
        k = int(bad.sum())
        share = k / max(len(v), 1)
        values = v[bad].value_counts().sort_index()
        res[col] = dict(rows=k, share=share, values={str(a): int(b) for a, b in values.items()})
        if k >= cfg.min_unknown_rows and share > cfg.max_unknown_share:
            seen = ", ".join(f"{a} ({b})" for a, b in list(res[col]["values"].items())[:5])
            res["alarms"].append(dict(kind="unknown", name=col, statistic=share, threshold=cfg.max_unknown_share,
                                      detail=f"{k} recent contacts ({share:.2%}) with a {col} the model never "
                                             f"saw: {seen}"))
    return res


def _agents(rec: Side, cfg: MonitorConfig) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Agents whose matured resolution outcomes the model gets most wrong (Holm over agents)."""
    if "resolved" not in rec.preds:
        return [], []
    y = rec.hist["resolved"].astype("float64").to_numpy(na_value=np.nan)
    p = rec.preds["resolved"]
    ok = rec.matured & np.isfinite(y) & np.isfinite(p)
    if not ok.any():
        return [], []
    codes, ids = pd.factorize(rec.hist["agent_id"][ok], sort=True)
    n, r, z = binomial_residual_z(y[ok], p[ok], codes, len(ids))
    from scipy import stats

    pv = 2 * stats.norm.sf(np.abs(z))
    adj = holm(pv)
    order = np.lexsort((np.asarray(ids, dtype=str), -np.abs(z)))[: cfg.top_agents]
    rows = [dict(agent_id=str(ids[i]), rows=int(n[i]), observed_minus_predicted=float(r[i]),
                 statistic=float(z[i]), p_value=float(pv[i]), p_holm=float(adj[i])) for i in order]
    alarms = [dict(kind="agent", name=row["agent_id"], statistic=row["statistic"], p_value=row["p_holm"],
                   detail=f"{row['rows']} matured contacts, resolved {row['observed_minus_predicted']:+.1f} "
                          f"vs predicted (Holm-adjusted p {row['p_holm']:.3g})")
              for row in rows if row["p_holm"] < cfg.agent_alpha]
    return rows, alarms


def _calibration_windows(ref: Side, rec: Side, cfg: MonitorConfig) -> dict[str, Any]:
    """Daily expected calibration error of the resolution model (reference and recent days)
    and the reliability curve of each side (recent: matured rows)."""
    out: dict[str, Any] = {"summary": {}, "reliability": {}, "daily": []}
    if "resolved" not in ref.preds:
        return out
    for label, side, mask in (("reference", ref, ref.in_null & ref.matured), ("recent", rec, rec.matured)):
        y = side.hist["resolved"].astype("float64").to_numpy(na_value=np.nan)
        p = side.preds["resolved"]
        ok = mask & np.isfinite(y) & np.isfinite(p)
        out["reliability"][label] = _reliability(p[ok], y[ok], cfg.calibration_bins)
        for d in np.unique(side.day[ok]):
            m = ok & (side.day == d)
            out["daily"].append(dict(side=label, day=int(d), rows=int(m.sum()),
                                     ece=_ece(p[m], y[m], cfg.calibration_bins),
                                     mean_residual=float((y[m] - p[m]).mean())))
        out["summary"][label] = dict(rows=int(ok.sum()), ece=_ece(p[ok], y[ok], cfg.calibration_bins)
                                     if ok.any() else None)
    return out


def _reliability(p: np.ndarray, y: np.ndarray, bins: int) -> list[dict[str, float]]:
    edges = np.linspace(0, 1, bins + 1)
    b = np.clip(np.searchsorted(edges, p, "right") - 1, 0, bins - 1)
    rows = []
    for k in range(bins):
        m = b == k
        if m.any():
            rows.append(dict(bin=k, rows=int(m.sum()), predicted=float(p[m].mean()), observed=float(y[m].mean())))
    return rows


def _ece(p: np.ndarray, y: np.ndarray, bins: int) -> float:
    """Expected calibration error: row-weighted mean |observed - predicted| over equal-width bins."""
    rel = _reliability(p, y, bins)
    n = sum(r["rows"] for r in rel)
    return float(sum(r["rows"] * abs(r["observed"] - r["predicted"]) for r in rel) / n) if n else float("nan")
