"""Training: time-ordered split, early stopping, one XGBoost model per target, a model dir.

Rows are sorted by arrival; the first ``1 - valid - test`` share trains, the next ``valid``
share decides early stopping, the last ``test`` share (the held-out tail) gives the metrics.
On a synthetic history the same metrics of the truth columns are reported next to the
model's: the best any model could do on that tail.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from assign.constants import REPEAT_WINDOW_S
from assign.errors import InputError, ModelError
from assign.features.build import fit_spec, history_features
from assign.features.spec import FeatureSpec
from assign.history import conform_history, has_truth
from assign.io import replace_dir
from assign.model.metrics import binary_metrics, regression_metrics
from assign.progress import Progress, Steps


@dataclass(frozen=True)
class Target:
    name: str
    column: str
    objective: str
    truth: str | None  # truth column with the expectation of this target, if any

    @property
    def binary(self) -> bool:
        return self.objective == "binary:logistic"


TARGETS: dict[str, Target] = {
    "resolved": Target("resolved", "resolved", "binary:logistic", "truth_p_resolved"),
    "csat": Target("csat", "csat", "reg:squarederror", "truth_csat"),
    "handle_time": Target("handle_time", "handle_s", "reg:squarederror", "truth_handle_s"),
    "repeat_72h": Target("repeat_72h", "repeat_72h", "binary:logistic", None),
}
DEFAULT_TARGETS = ("resolved", "csat", "handle_time")


@dataclass(frozen=True, kw_only=True)
class TrainParams:
    """XGBoost and split settings. Modest depth and early stopping keep the models compact
    enough for the tick (see benchmarks/scoring.py)."""

    max_depth: int = 5
    learning_rate: float = 0.3
    max_rounds: int = 400
    early_stopping: int = 25
    min_child_weight: float = 10.0
    subsample: float = 0.8
    valid_fraction: float = 0.1
    test_fraction: float = 0.2
    nthread: int = 2
    seed: int = 0

    def __post_init__(self) -> None:
        problems = []
        if not (0 < self.valid_fraction < 1 and 0 < self.test_fraction < 1
                and self.valid_fraction + self.test_fraction < 0.9):
            problems.append(f"valid_fraction {self.valid_fraction} and test_fraction {self.test_fraction} "
                            "must be in (0, 1) and leave at least 10% to train")
        for k in ("max_depth", "max_rounds", "early_stopping", "nthread"):
            if getattr(self, k) < 1:
                problems.append(f"{k} must be >= 1, got {getattr(self, k)}")
        if problems:
            raise InputError(problems, what="training parameters")

    def xgb(self, objective: str) -> dict[str, Any]:
        return dict(objective=objective, tree_method="hist", max_depth=self.max_depth, eta=self.learning_rate,
                    min_child_weight=self.min_child_weight, subsample=self.subsample, seed=self.seed,
                    nthread=self.nthread, eval_metric="logloss" if objective.startswith("binary") else "rmse")


@dataclass(frozen=True)
class TrainResult:
    out: Path
    metrics: dict[str, dict[str, Any]]
    metadata: dict[str, Any] = field(default_factory=dict)


def data_hash(history: pd.DataFrame) -> str:
    h = hashlib.sha256()
    h.update(pd.util.hash_pandas_object(history, index=False).to_numpy().tobytes())
    return h.hexdigest()[:16]


def _labels(history: pd.DataFrame, t: Target) -> tuple[np.ndarray, np.ndarray]:
    y = history[t.column].astype("float64").to_numpy(na_value=np.nan)
    ok = np.isfinite(y) & history["agent_id"].notna().to_numpy()
    return y, ok


def _check_weights(weights, n: int) -> np.ndarray | None:
    """Sample weights as a float array of length ``n``, every problem named."""
    if weights is None:
        return None
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    problems = []
    if len(w) != n:
        problems.append(f"weights: {len(w)} given for {n} history rows")
    elif not (np.isfinite(w) & (w >= 0)).all():
        bad = np.flatnonzero(~(np.isfinite(w) & (w >= 0)))
        problems.append(f"weights: {len(bad)} not a finite number >= 0, first at row {int(bad[0])}")
    elif not (w > 0).any():
        problems.append("weights: all zero")
    if problems:
        raise InputError(problems, what="training weights")
    return w


def _refit_split(n: int, rounds: dict[str, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every row fitted, none for early stopping or held out (a refit); the rounds checked."""
    bad = [f"refit_rounds[{k!r}]: must be an integer >= 1, got {v!r}" for k, v in rounds.items()
           if not (isinstance(v, (int, np.integer)) and v >= 1)]
    if bad or not rounds:
        raise InputError(bad or ["refit_rounds: empty (name the targets to refit and their rounds)"],
                         what="training parameters")
    return np.ones(n, bool), np.zeros(n, bool), np.zeros(n, bool)


def _split(n: int, p: TrainParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n_te = int(round(n * p.test_fraction))
    n_va = int(round(n * p.valid_fraction))
    n_tr = n - n_te - n_va
    seg = np.zeros(n, dtype=np.int8)
    seg[n_tr:n_tr + n_va] = 1
    seg[n_tr + n_va:] = 2
    return seg == 0, seg == 1, seg == 2


def eval_target(t: Target, y: np.ndarray, pred: np.ndarray, truth: np.ndarray | None) -> dict[str, Any]:
    m = binary_metrics(y, pred) if t.binary else regression_metrics(y, pred)
    if truth is not None and np.isfinite(truth).all() and len(truth):
        m["truth"] = binary_metrics(y, truth) if t.binary else regression_metrics(y, truth)
    return m


def train(history: pd.DataFrame, *, out: str | Path, targets: Sequence[str] | None = None,
          params: TrainParams | None = None, label_delay_s: float | None = None,
          scheduler: Any = None, progress: Progress | None = None,
          weights: Sequence[float] | np.ndarray | None = None,
          refit_rounds: dict[str, int] | None = None, history_rates: str = "absolute") -> TrainResult:
    """Train one model per target on ``history`` (history contract) and write the model dir.

    ``targets`` None means every default target that has labels; named targets without any
    label are an :class:`InputError`. ``label_delay_s`` (default: 0 for synthetic histories,
    72 h otherwise, when "resolved" is only known once no repeat came) delays when an outcome
    counts in the agents' point-in-time performance. ``scheduler`` trains on a Dask cluster: its
    address, or a connected ``dask.distributed.Client`` (used as is and left open).
    ``progress`` (see :mod:`assign.progress`) hears of each feature step and each target trained.
    The metadata records the held-out period (``held_out``) that ``assign evaluate`` scores by default.
    ``weights`` (one finite number >= 0 per row of ``history``, in its order) are XGBoost sample
    weights for training and early stopping (``assign.deploy.retrain`` weights recent rows more);
    the held-out metrics stay unweighted. ``refit_rounds`` (target -> boosting rounds; the
    targets trained): a refit of an evaluated recipe (``assign.deploy.retrain``'s
    ``refit_on_promotion``): every row is fitted with exactly that many rounds, nothing is held
    out, so the metadata has no metrics, no early-stopping segment and no held-out tail
    (``refit: true``; every row after the last arrival is unseen). ``history_rates``: the agents'
    outcome-history rates, "absolute" or "relative" to the centre's (:class:`assign.features.FeatureSpec`)."""
    p = params or TrainParams()
    check_model_out(Path(out))
    hist = conform_history(history)
    if len(hist) < 50:
        raise InputError([f"history: {len(hist)} rows; training needs at least 50"], what="history")
    explicit = targets is not None or refit_rounds is not None
    names = list(refit_rounds) if refit_rounds is not None else list(targets) if explicit else list(DEFAULT_TARGETS)
    bad = [f"targets: unknown target {n!r} (expected one of {', '.join(TARGETS)})" for n in names if n not in TARGETS]
    if bad:
        raise InputError(bad, what="training targets")
    w = _check_weights(weights, len(hist))
    order = hist.sort_values("arrival_at", kind="stable").index.to_numpy()
    hist = hist.loc[order].reset_index(drop=True)
    w = None if w is None else w[order]
    tr, va, te = _split(len(hist), p) if refit_rounds is None else _refit_split(len(hist), refit_rounds)
    usable, skipped = _usable_targets(hist, names, explicit=explicit,
                                      segments=(tr, va, te) if refit_rounds is None else (tr,))
    synthetic = has_truth(hist)
    delay = (0.0 if synthetic else REPEAT_WINDOW_S) if label_delay_s is None else float(label_delay_s)
    steps = Steps(progress, stage="features", total=2)
    spec = fit_spec(hist[tr], label_delay_s=delay, history_rates=history_rates)
    spec.check_current()
    steps.advance()
    feats = history_features(hist, spec)
    steps.advance()
    X = feats.X
    if not np.isfinite(X[~np.isnan(X)]).all():
        raise InputError(["history: a feature built from it is infinite (check the numeric columns)"], what="history")
    final = Path(out)
    out = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        metrics, meta = _fit_and_write(out=out, hist=hist, history=history, usable=usable, skipped=skipped, X=X,
                                       spec=spec, feats=feats, p=p, split=(tr, va, te), synthetic=synthetic,
                                       delay=delay, scheduler=scheduler, progress=progress, weights=w,
                                       refit_rounds=refit_rounds)
        meta["files"] = file_digests(out)
        (out / "metadata.json").write_text(json.dumps(meta, indent=1, default=str))
        (out / "model_card.md").write_text(model_card(meta, spec))
        replace_dir(out, final)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return TrainResult(out=final, metrics=metrics, metadata=meta)


def _fit_and_write(*, out: Path, hist, history, usable, skipped, X, spec, feats, p: TrainParams, split,
                   synthetic: bool, delay: float, scheduler: Any,
                   progress: Progress | None, weights: np.ndarray | None = None,
                   refit_rounds: dict[str, int] | None = None):
    """Train every usable target and write boosters, spec and state into ``out`` (a fresh
    temporary directory); returns the metrics and the metadata (without file digests)."""
    import xgboost as xgb

    tr, va, te = split
    (out / "models").mkdir(parents=True, exist_ok=True)
    metrics: dict[str, dict[str, Any]] = {}
    rounds: dict[str, int] = {}
    given = scheduler is not None and not isinstance(scheduler, str)  # a Client object
    client = scheduler if given else (_client(scheduler) if scheduler else None)
    steps = Steps(progress, stage="training", total=len(usable))
    for n in usable:
        t = TARGETS[n]
        y, ok = _labels(hist, t)
        wtr, wva = (None, None) if weights is None else (weights[ok & tr], weights[ok & va])
        if refit_rounds is not None:
            bst = _refit(client, p, t, X[ok & tr], y[ok & tr], spec, w=wtr, rounds=int(refit_rounds[n]))
        elif client is None:
            dtr = xgb.DMatrix(X[ok & tr], label=y[ok & tr], weight=wtr, feature_names=list(spec.names))
            dva = xgb.DMatrix(X[ok & va], label=y[ok & va], weight=wva, feature_names=list(spec.names))
            bst = xgb.train(p.xgb(t.objective), dtr, num_boost_round=p.max_rounds, evals=[(dva, "valid")],
                            early_stopping_rounds=p.early_stopping, verbose_eval=False)
        else:
            bst = _train_dask(client, p, t, X[ok & tr], y[ok & tr], X[ok & va], y[ok & va], spec, wtr=wtr, wva=wva)
        best = int(getattr(bst, "best_iteration", bst.num_boosted_rounds() - 1))
        bst = bst[: best + 1]
        rounds[n] = best + 1
        bst.save_model(out / "models" / f"{n}.json")
        sel = ok & te
        if sel.any():  # a refit holds nothing out
            pred = bst.inplace_predict(X[sel])
            truth = hist[t.truth].astype("float64").to_numpy(na_value=np.nan)[sel] if (synthetic and t.truth) else None
            metrics[n] = eval_target(t, y[sel], pred, truth)
        steps.advance()
    if client is not None and not given:
        client.close()
    spec.save(out / "features.json")
    feats.state.save(out / "state.npz")
    feats.customer_times.to_parquet(out / "customers.parquet", index=False)
    t_all = hist["arrival_at"]
    meta = dict(
        schema="assign.model/1", created_at=datetime.now(UTC).isoformat(),
        xgboost_version=xgb.__version__, targets=usable, skipped_targets=skipped,
        objectives={n: TARGETS[n].objective for n in usable}, rounds=rounds,
        params={k: getattr(p, k) for k in p.__dataclass_fields__},
        data=dict(rows=int(len(hist)), rows_train=int(tr.sum()), rows_valid=int(va.sum()), rows_test=int(te.sum()),
                  first_arrival=str(t_all.iloc[0]), last_arrival=str(t_all.iloc[-1]),
                  valid_from=str(t_all[va].iloc[0]) if va.any() else None,
                  test_from=str(t_all[te].iloc[0]) if te.any() else None,
                  data_hash=data_hash(history), synthetic=synthetic),
        label_delay_s=delay, metrics=metrics, weighted=weights is not None,
        scheduler=(client.scheduler.address if given else scheduler) or "in-process",
        held_out=held_out_period(t_all[te], rows=int(len(hist))) if te.any() else None,
    )
    if refit_rounds is not None:
        meta["refit"] = True
    return metrics, meta


def _refit(client, p: TrainParams, t: Target, X: np.ndarray, y: np.ndarray, spec: FeatureSpec, *,
           w: np.ndarray | None, rounds: int):
    """A booster of exactly ``rounds`` rounds on every given row, no early stopping (a refit)."""
    import xgboost as xgb

    if client is None:
        d = xgb.DMatrix(X, label=y, weight=w, feature_names=list(spec.names))
        return xgb.train(p.xgb(t.objective), d, num_boost_round=rounds, verbose_eval=False)
    import dask.array as da
    from xgboost import dask as dxgb

    chunks = max(1, len(X) // 4)
    d = dxgb.DaskDMatrix(client, da.from_array(X, chunks=(chunks, -1)), da.from_array(y, chunks=chunks),
                         weight=None if w is None else da.from_array(w, chunks=chunks), feature_names=list(spec.names))
    return dxgb.train(client, p.xgb(t.objective), d, num_boost_round=rounds, verbose_eval=False)["booster"]


#: Files of a model directory whose SHA-256 is recorded at training and checked at load.
DIGESTED = ("features.json", "state.npz", "customers.parquet")


def file_digests(directory: Path) -> dict[str, str]:
    """SHA-256 of the spec, the state and every booster, keyed by relative path: a reordered
    vocabulary, an edited prior or one target's booster copied over another's no longer
    loads and scores wrong without a word."""
    names = [*DIGESTED, *sorted(str(f.relative_to(directory)) for f in (directory / "models").glob("*.json"))]
    return {n: hashlib.sha256((directory / n).read_bytes()).hexdigest() for n in names}


def check_model_out(out: Path) -> None:
    """``--out`` must be a new path, an empty directory or an earlier model directory (which
    is replaced whole): never a directory of other files, which would be lost."""
    if not out.parent.is_dir():
        raise InputError([f"--out {out}: directory {out.parent} does not exist"], what="option")
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / "metadata.json").exists())):
        raise InputError([f"--out {out}: exists and is not a model directory; choose a new path"], what="option")


def _usable_targets(hist: pd.DataFrame, names: list[str], *, explicit: bool,
                    segments: tuple[np.ndarray, ...]) -> tuple[list[str], dict[str, str]]:
    """Targets with labelled served rows in every segment (train, valid, test), and why the
    others were skipped; an explicitly named target without labels is an InputError."""
    usable, skipped = [], {}
    for n in names:
        _, ok = _labels(hist, TARGETS[n])
        counts = [int((ok & s).sum()) for s in segments]
        if min(counts) == 0:
            parts = "train/valid/test" if len(counts) == 3 else "the rows to refit"
            skipped[n] = f"no labelled served rows in {parts} ({'/'.join(map(str, counts))})"
        else:
            usable.append(n)
    if (explicit and skipped) or not usable:
        raise InputError([f"target {k}: {v}" for k, v in skipped.items()], what="training targets")
    return usable, skipped


def held_out_period(arrivals: pd.Series, *, rows: int) -> dict[str, Any]:
    """The held-out tail as metadata: its first and last arrival and row count. Every row
    arriving at or after ``from`` is unseen by the model (the tail, and anything later)."""
    return {"from": str(arrivals.iloc[0]), "to": str(arrivals.iloc[-1]), "rows": int(len(arrivals)),
            "of_rows": rows, "rule": "the last test_fraction of the training history by arrival time"}


def _client(address: str):
    try:
        from dask.distributed import Client
    except ImportError as err:  # pragma: no cover - depends on the install
        raise ModelError("--scheduler needs dask[distributed] (pip install 'assign[dist]')") from err
    try:
        return Client(address, timeout="10s")
    except OSError as err:
        raise ModelError(f"cannot reach the Dask scheduler at {address}: {err}") from err


def _train_dask(client, p: TrainParams, t: Target, Xtr, ytr, Xva, yva, spec: FeatureSpec, *, wtr=None, wva=None):
    import dask.array as da
    from xgboost import dask as dxgb

    chunks = max(1, len(Xtr) // 4)
    cva = max(1, len(Xva) // 2)
    dtr = dxgb.DaskDMatrix(client, da.from_array(Xtr, chunks=(chunks, -1)), da.from_array(ytr, chunks=chunks),
                           weight=None if wtr is None else da.from_array(wtr, chunks=chunks),
                           feature_names=list(spec.names))
    dva = dxgb.DaskDMatrix(client, da.from_array(Xva, chunks=(cva, -1)), da.from_array(yva, chunks=cva),
                           weight=None if wva is None else da.from_array(wva, chunks=cva),
                           feature_names=list(spec.names))
    res = dxgb.train(client, p.xgb(t.objective), dtr, num_boost_round=p.max_rounds, evals=[(dva, "valid")],
                         early_stopping_rounds=p.early_stopping, verbose_eval=False)
    return res["booster"]


def model_card(meta: dict[str, Any], spec: FeatureSpec) -> str:
    d = meta["data"]
    lines = [
        "# Model card", "",
        f"- created {meta['created_at']} with xgboost {meta['xgboost_version']} ({meta['scheduler']})",
        f"- data: {d['rows']} contacts, {d['first_arrival']} .. {d['last_arrival']} (hash {d['data_hash']}); "
        f"{'synthetic (truth known)' if d['synthetic'] else 'real log'}",
        (f"- refit: all {d['rows']} rows fitted, the rounds of an evaluated recipe "
         f"({', '.join(f'{k} {v}' for k, v in meta['rounds'].items())}); nothing held out, no held-out metrics"
         if meta.get("refit") else f"- split by time: train {d['rows_train']}, early-stopping {d['rows_valid']}, "
         f"held-out tail {d['rows_test']} from {d['test_from']}"),
        f"- {len(spec.names)} features: {', '.join(spec.names)}; no `truth_*` column is a feature",
        f"- outcomes count in agents' point-in-time performance {meta['label_delay_s'] / 3600:g} h after the "
        "contact ends",
        "", "## Held-out metrics", "",
    ]
    for n, m in meta["metrics"].items():
        keys = [k for k in ("auc", "log_loss", "calibration_error", "brier", "rmse", "mae") if k in m]
        lines.append(f"**{n}** ({meta['objectives'][n]}, {meta['rounds'][n]} trees, {m['rows']} rows)")
        lines.append("")
        lines.append("| metric | model |" + (" truth |" if "truth" in m else ""))
        lines.append("|---|---|" + ("---|" if "truth" in m else ""))
        for k in keys:
            lines.append(f"| {k} | {m[k]:.4f} |" + (f" {m['truth'][k]:.4f} |" if "truth" in m else ""))
        lines.append("")
    for n, why in meta.get("skipped_targets", {}).items():
        lines.append(f"- target {n} skipped: {why}")
    lines += ["", "Limits: agent performance features are expanding means of the training window; "
              "a new agent starts with NaN (cold start) until outcomes are observed."]
    return "\n".join(lines) + "\n"
