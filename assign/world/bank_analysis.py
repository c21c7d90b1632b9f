"""How much of (log) handle-time variance the agent × type match explains.

Three nested least-squares models of ``log(handle_s)`` on served calls with a known agent:
``type`` ⊂ ``type + agent`` ⊂ ``type × agent`` (the last one is the cell means). Reported
two ways:

* in sample: R², adjusted R² and sequential F tests of each step (a two-way ANOVA for an
  unbalanced design, Type I sums of squares in the order type, agent, agent:type);
* out of sample (the honest one): fit on the calls before ``split_at`` and score R² on the
  calls after it. Cells or agents unseen in training fall back to the smaller model, and a
  partially pooled interaction (each cell's deviation from ``type + agent`` shrunk toward 0
  by ``n / (n + k)``, ``k`` estimated by moments on the training data) is scored too.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from assign.constants import REPEAT_WINDOW_S
from assign.errors import InputError
from assign.history import epoch_seconds

MODELS = ("type", "type+agent", "type*agent")


@dataclass(frozen=True)
class Fit:
    """One in-sample least-squares fit."""

    model: str
    n: int
    rank: int
    rss: float
    tss: float

    @property
    def df_resid(self) -> int:
        return self.n - self.rank

    @property
    def r2(self) -> float:
        return 1.0 - self.rss / self.tss

    @property
    def adj_r2(self) -> float:
        return 1.0 - (self.rss / self.df_resid) / (self.tss / (self.n - 1))


@dataclass(frozen=True)
class FTest:
    """Sequential F test of adding terms: ``smaller`` -> ``larger``."""

    smaller: str
    larger: str
    f: float
    df_num: int
    df_den: int
    p_value: float
    delta_r2: float


@dataclass(frozen=True)
class VarianceAnalysis:
    fits: tuple[Fit, ...]
    tests: tuple[FTest, ...]
    n_used: int
    n_excluded: dict
    n_agents: int
    n_types: int
    n_cells: int
    split_at: pd.Timestamp | None
    n_train: int
    n_test: int
    holdout_r2: dict  # model name -> R² on the test part (test-mean SST)
    shrink_k: float

    def to_dict(self) -> dict:
        return {
            "n_used": self.n_used, "n_excluded": self.n_excluded, "n_agents": self.n_agents,
            "n_types": self.n_types, "n_cells": self.n_cells,
            "in_sample": {f.model: {"r2": f.r2, "adj_r2": f.adj_r2, "rank": f.rank,
                                    "df_resid": f.df_resid, "rss": f.rss} for f in self.fits},
            "f_tests": [{"from": t.smaller, "to": t.larger, "F": t.f, "df_num": t.df_num,
                         "df_den": t.df_den, "p": t.p_value, "delta_r2": t.delta_r2} for t in self.tests],
            "holdout": {"split_at": None if self.split_at is None else self.split_at.isoformat(),
                        "n_train": self.n_train, "n_test": self.n_test, "r2": self.holdout_r2,
                        "shrink_k": self.shrink_k},
        }


def last_week_start(arrival_at: pd.Series) -> pd.Timestamp:
    """Midnight of the latest Sunday (the bank's week starts on Sunday) that leaves at
    least seven days of log after it."""
    last_day = arrival_at.max().normalize()
    candidate = last_day - pd.Timedelta(days=6)
    back = (candidate.day_of_week + 1) % 7  # Monday=0 ... Sunday=6 -> days back to Sunday
    return candidate - pd.Timedelta(days=back)


def _frame(history: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    missing = [c for c in ("intent", "agent_id", "handle_s", "abandoned", "arrival_at") if c not in history]
    if missing:
        raise InputError([f"history.{c}: required column is missing" for c in missing], what="history")
    served = ~history["abandoned"].astype("boolean").fillna(False).to_numpy(dtype=bool)
    has_agent = history["agent_id"].notna().to_numpy()
    h = history["handle_s"].to_numpy(dtype=float)
    positive = np.isfinite(h) & (h > 0)
    keep = served & has_agent & positive
    excluded = {"abandoned": int((~served).sum()),
                "served_no_agent": int((served & ~has_agent).sum()),
                "served_handle_missing_or_zero": int((served & has_agent & ~positive).sum())}
    d = pd.DataFrame({"type": history["intent"].astype(str).to_numpy()[keep],
                      "agent": history["agent_id"].astype(str).to_numpy()[keep],
                      "y": np.log(h[keep]),
                      "t": pd.to_datetime(history["arrival_at"]).to_numpy()[keep]})
    return d, excluded


def _codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    levels, codes = np.unique(values, return_inverse=True)
    return levels, codes


def _design(d: pd.DataFrame, model: str) -> np.ndarray:
    """Treatment-coded design matrix (intercept + dummies) for one model."""
    cols = [np.ones(len(d))]
    if model == "type*agent":
        _, c = _codes((d["type"] + "\x1f" + d["agent"]).to_numpy())
        return np.eye(c.max() + 1)[c]
    for factor in ("type", "agent")[: 1 if model == "type" else 2]:
        _, c = _codes(d[factor].to_numpy())
        cols.extend((c == j).astype(float) for j in range(1, c.max() + 1))
    return np.column_stack(cols)


def _fit(d: pd.DataFrame, model: str) -> Fit:
    y = d["y"].to_numpy()
    tss = float(((y - y.mean()) ** 2).sum())
    if model == "type*agent":  # cell means: the exact least-squares fit, no big matrix
        g = d.groupby(["type", "agent"])["y"]
        rss = float(((y - g.transform("mean").to_numpy()) ** 2).sum())
        return Fit(model, len(d), int(g.ngroups), rss, tss)
    x = _design(d, model)
    coef, _, rank, _ = np.linalg.lstsq(x, y, rcond=None)
    rss = float(((y - x @ coef) ** 2).sum())
    return Fit(model, len(d), int(rank), rss, tss)


def _additive(train: pd.DataFrame, *, iters: int = 200) -> tuple[float, dict, dict]:
    """Least-squares type + agent effects by backfitting (alternating means), which
    converges to the OLS fit and gives per-level effects usable on new rows."""
    y = train["y"].to_numpy()
    mu = y.mean()
    a = pd.Series(0.0, index=np.unique(train["agent"]))
    ta = train["type"].to_numpy()
    ag = train["agent"].to_numpy()
    for _ in range(iters):
        t = pd.Series(y - mu - a.reindex(ag).to_numpy()).groupby(ta).mean()
        a_new = pd.Series(y - mu - t.reindex(ta).to_numpy()).groupby(ag).mean()
        a_new -= a_new.mean()
        if np.abs(a_new - a).max() < 1e-10:
            a = a_new
            break
        a = a_new
    return mu, t.to_dict(), a.to_dict()


def _holdout(train: pd.DataFrame, test: pd.DataFrame) -> tuple[dict, float]:
    y = test["y"].to_numpy()
    sst = float(((y - y.mean()) ** 2).sum())
    r2 = lambda pred: 1.0 - float(((y - pred) ** 2).sum()) / sst
    grand = train["y"].mean()
    tmean = train.groupby("type")["y"].mean()
    p_type = tmean.reindex(test["type"]).fillna(grand).to_numpy()
    mu, teff, aeff = _additive(train)
    p_add_train = mu + train["type"].map(teff).to_numpy() + train["agent"].map(aeff).to_numpy()
    p_add = mu + test["type"].map(teff).to_numpy() + test["agent"].map(aeff).to_numpy()
    p_add = np.where(np.isnan(p_add), p_type, p_add)
    # interaction: each cell's mean residual from the additive model
    res = pd.DataFrame({"type": train["type"], "agent": train["agent"], "r": train["y"].to_numpy() - p_add_train})
    cell = res.groupby(["type", "agent"])["r"].agg(["mean", "count", "var"])
    sigma2 = float(np.nansum(cell["var"] * (cell["count"] - 1)) / max(1, (cell["count"] - 1).sum()))
    tau2 = max(1e-12, float((cell["mean"] ** 2).mean() - (sigma2 / cell["count"]).mean()))
    k = sigma2 / tau2
    key = pd.MultiIndex.from_arrays([test["type"], test["agent"]])
    dev = cell["mean"].reindex(key).to_numpy()
    cnt = cell["count"].reindex(key).to_numpy()
    seen = ~np.isnan(dev)
    p_cell = np.where(seen, p_add + np.nan_to_num(dev), p_add)
    p_pool = np.where(seen, p_add + np.nan_to_num(dev * cnt / (cnt + k)), p_add)
    return {"type": r2(p_type), "type+agent": r2(p_add), "type*agent": r2(p_cell),
            "type*agent (pooled)": r2(p_pool)}, float(k)


def handle_time_variance(history: pd.DataFrame, *, split_at: pd.Timestamp | str | None = "auto") -> VarianceAnalysis:
    """Nested-model analysis of log handle time by type, agent and agent × type.

    ``split_at``: where the holdout starts (``"auto"``: :func:`last_week_start`; ``None``:
    no holdout). Rows used: served, agent known, handle time > 0; the others are counted.
    """
    d, excluded = _frame(history)
    if len(d) < 10:
        raise InputError([f"history: {len(d)} served calls with a known agent and handle time > 0; need at least 10"],
                         what="history")
    fits = tuple(_fit(d, m) for m in MODELS)
    tests = []
    full = fits[-1]
    for small, large in ((fits[0], fits[1]), (fits[1], fits[2]), (fits[0], fits[2])):
        df_num = small.df_resid - large.df_resid
        f = ((small.rss - large.rss) / df_num) / (full.rss / full.df_resid) if df_num > 0 else float("nan")
        p = float(stats.f.sf(f, df_num, full.df_resid)) if df_num > 0 else float("nan")
        tests.append(FTest(small.model, large.model, float(f), int(df_num), int(full.df_resid), p,
                           large.r2 - small.r2))
    holdout, k, n_train, n_test, split = {}, float("nan"), 0, 0, None
    if split_at is not None:
        t = pd.Series(pd.to_datetime(history["arrival_at"], utc=True))
        split = last_week_start(t) if split_at == "auto" else pd.Timestamp(split_at)
        if split.tzinfo is None:
            split = split.tz_localize("UTC")
        when = pd.to_datetime(d["t"], utc=True)
        train, test = d[(when < split).to_numpy()], d[(when >= split).to_numpy()]
        n_train, n_test = len(train), len(test)
        if n_train and n_test:
            holdout, k = _holdout(train, test)
    return VarianceAnalysis(
        fits=fits, tests=tuple(tests), n_used=len(d), n_excluded=excluded,
        n_agents=int(d["agent"].nunique()), n_types=int(d["type"].nunique()),
        n_cells=int(d.groupby(["type", "agent"]).ngroups), split_at=split,
        n_train=n_train, n_test=n_test, holdout_r2=holdout, shrink_k=k)


def plot(analysis: VarianceAnalysis, path) -> None:
    """Bar chart of R² per model: in sample, adjusted, and on the holdout week."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.6))
    x = np.arange(len(MODELS))
    w = 0.27
    ax.bar(x - w, [f.r2 for f in analysis.fits], w, label="R² (in sample)")
    ax.bar(x, [f.adj_r2 for f in analysis.fits], w, label="adjusted R²")
    if analysis.holdout_r2:
        ax.bar(x + w, [analysis.holdout_r2[m] for m in MODELS], w, label="R² on holdout week")
    ax.set_xticks(x, MODELS)
    ax.set_ylabel("share of log handle-time variance")
    ax.set_title(f"log handle time, {analysis.n_used} served calls")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def holdout_baselines(history: pd.DataFrame, *, split_at: pd.Timestamp | str = "auto") -> dict:
    """Simple predictors fitted before ``split_at`` and scored after it, on the same rows
    the trainer evaluates (served, agent known, label present), to read a model's metrics
    against: handle time by the type's mean; resolution by the base rate and by whether the
    customer called in the previous 72 h (the repeat-caller effect alone)."""
    from assign.features.rolling import recent_counts
    from assign.model.metrics import binary_metrics, regression_metrics

    t = pd.to_datetime(history["arrival_at"], utc=True)
    split = last_week_start(t) if split_at == "auto" else pd.Timestamp(split_at)
    if split.tzinfo is None:
        split = split.tz_localize("UTC")
    after = (t >= split).to_numpy()
    agent = history["agent_id"].notna().to_numpy()
    intent = history["intent"].astype(str).to_numpy()
    out: dict = {"split_at": split.isoformat()}
    h = history["handle_s"].to_numpy(dtype=float)
    ok = agent & np.isfinite(h)
    tr, te = ok & ~after, ok & after
    type_mean = pd.Series(h[tr]).groupby(intent[tr]).mean()
    pred = pd.Series(intent[te]).map(type_mean).fillna(h[tr].mean()).to_numpy()
    out["handle_time"] = {"type_mean": regression_metrics(h[te], pred),
                          "overall_mean": regression_metrics(h[te], np.full(te.sum(), h[tr].mean()))}
    y = history["resolved"].astype("float64").to_numpy(na_value=np.nan)
    ok = agent & np.isfinite(y)
    tr, te = ok & ~after, ok & after
    codes, _ = pd.factorize(history["customer_id"], use_na_sentinel=True)
    secs = epoch_seconds(t)
    recent = recent_counts(t=secs, customer=codes.astype(np.int64), window_s=REPEAT_WINDOW_S) > 0
    rate = pd.Series(y[tr]).groupby(recent[tr]).mean()
    out["resolved"] = {"base_rate": binary_metrics(y[te], np.full(te.sum(), y[tr].mean())),
                       "called_in_last_72h": binary_metrics(y[te], pd.Series(recent[te]).map(rate).to_numpy())}
    return out
