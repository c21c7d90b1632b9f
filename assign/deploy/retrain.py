"""Retrain a challenger on a recent window and promote it by a documented rule.

1. **Window**: rows that arrived in ``[cutoff - window_days, cutoff)``.
2. **Label delay**: an outcome counts only if it was known at the cut-off. A contact ends at
   ``arrival + wait_s + handle_s``; its handle time is known then, its CSAT ``csat_delay_h``
   later, its resolution (and 72-hour repeat) ``resolution_delay_h`` later (72 h: a real
   log only knows "resolved" once no repeat came). Later outcomes are blanked, so they
   neither train nor evaluate anything.
3. **Evaluation rows**: the most recent ``rule.eval_fraction`` of the window's served rows
   whose first decision target (``rule.targets[0]``) is matured (or, when ``rule.eval_days``
   is set, those that arrived in the last ``eval_days`` before the newest of them: a fixed,
   short holdout, so a challenger's training rows reach as close to the cut-off as the
   holdout allows, whatever the window's length); the challenger trains only on rows that
   arrived before the first of them, so champion and challenger are scored on the same rows
   and neither has seen them. Those evaluation rows are also the held-out tail that
   :func:`assign.model.train.train` reports metrics on: no second tail is held back inside
   the training rows (it used to be, and with the early-stopping tail it left the challenger's
   fitted rows ending ~12 days before a 28-day window's cut-off; docs/living-centre.md,
   "Why the models did not turn over"). The version's agent state (point-in-time agent
   rates for routing, the agents it knows) covers the window up to the cut-off.
   Each model scores the evaluation rows as it routes them (:func:`as_routed`): a row whose
   intent, language or agent the model does not know gets the mean of its in-domain predictions;
   with ``champion_offsets`` (per intent, what a router adds to the champion's predicted
   resolution, e.g. the loop's level offsets) the champion's resolution predictions carry them
   too (:func:`with_offsets`), so a challenger wins on what it would route better, not on a
   level the champion's router already corrects (docs/living-centre.md, loop11).
4. **Recency**: training rows get XGBoost sample weights ``0.5 ** (age / half_life_days)``,
   age measured back from the cut-off.
5. **Promotion** (:class:`PromotionRule`): for every decision target that both models
   predict, the per-row log-loss gain of the challenger (champion's minus challenger's, on
   the same rows) must be at least ``min_log_loss_gain`` and at least ``z`` paired standard
   errors, and the challenger's calibration error may be at most
   ``max_calibration_worsening`` above the champion's. Fewer than ``min_eval_rows``
   matured evaluation rows or ``min_train_rows`` training rows: refused, nothing trained.
   An empty registry promotes the first challenger ("no champion").

6. **Refit on promotion** (opt-in, ``refit_on_promotion``; docs/deploy.md, docs/living-centre.md
   "refit15"): the evaluation decides on the *recipe* (a challenger fitted without the evaluation
   rows against the champion on them); a promoted challenger is then refitted on the whole window,
   evaluation rows included (same parameters and weights, each target's number of boosting rounds
   the early-stopped fit chose, nothing held out; outcomes unknown at the cut-off still blanked),
   and that refit is registered and made champion: its card records the recipe's held-out metrics
   as the recipe's and ``refit`` (of which version, rounds, rows, the recipe's evaluation window).
   The evaluated challenger stays in the registry (alias ``challenger``). Like with like: a refit
   champion has fitted part of the next night's evaluation rows, so it is scored there through its
   own recipe (the version it was refitted from, out of sample on them), not its refit.

Every decision, promotion or not, is an audit line ``{"event": "retrain", ...}`` with its
figures (with refit on: ``deployed``, the version made champion, and ``refit``); a promotion
also moves the aliases (logged as alias changes).
"""
from __future__ import annotations

import math
import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from assign.constants import REPEAT_WINDOW_S
from assign.deploy.registry import Registry
from assign.errors import InputError
from assign.history import conform_history, epoch_seconds
from assign.learn.logit import margin_of, sigmoid
from assign.model.metrics import binary_metrics, regression_metrics
from assign.model.train import TARGETS, TrainParams, data_hash

_DAY = 86400.0


@dataclass(frozen=True, kw_only=True)
class PromotionRule:
    """When a challenger replaces the champion (see the module doc for the rule)."""

    targets: tuple[str, ...] = ("resolved",)
    min_log_loss_gain: float = 0.002
    z: float = 1.64
    max_calibration_worsening: float = 0.01
    min_eval_rows: int = 300
    min_train_rows: int = 300
    eval_fraction: float = 0.2
    eval_days: float | None = None  # set: the last eval_days of matured rows instead of eval_fraction
    #: slope28b (opt-in, docs/living-centre.md): before the comparison, each model's predictions of
    #: each intent are moved by the one logit shift that fits that intent's level on the evaluation
    #: rows (:func:`intent_recalibrated`), so the challenger must order the pairs within an intent
    #: better, not only predict its level better: for a router whose level offsets follow each
    #: intent's level online (``LevelOffsets(scale="logit")``), a level-only gain routes nothing better.
    level_free: bool = False

    def __post_init__(self) -> None:
        problems = []
        bad = [t for t in self.targets if t not in TARGETS or not TARGETS[t].binary]
        if not self.targets or bad:
            problems.append(f"targets: need binary targets among {[k for k, t in TARGETS.items() if t.binary]}, "
                            f"got {list(self.targets)}")
        for k in ("min_log_loss_gain", "z", "max_calibration_worsening"):
            v = getattr(self, k)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                problems.append(f"{k}: must be a finite number >= 0, got {v!r}")
        for k in ("min_eval_rows", "min_train_rows"):
            if not (isinstance(getattr(self, k), int) and getattr(self, k) >= 50):
                problems.append(f"{k}: must be an integer >= 50, got {getattr(self, k)!r}")
        if not 0 < self.eval_fraction < 0.9:
            problems.append(f"eval_fraction: must be in (0, 0.9), got {self.eval_fraction!r}")
        if self.eval_days is not None and not (isinstance(self.eval_days, (int, float))
                                               and math.isfinite(self.eval_days) and self.eval_days > 0):
            problems.append(f"eval_days: must be None or a finite number of days > 0, got {self.eval_days!r}")
        if not isinstance(self.level_free, bool):
            problems.append(f"level_free: must be True or False, got {self.level_free!r}")
        if problems:
            raise InputError(problems, what="promotion rule")


@dataclass(frozen=True, kw_only=True)
class RetrainDecision:
    """What one retrain did and why (the same figures as its audit line)."""

    version: str | None
    promoted: bool
    reason: str
    champion: str | None
    champion_metrics: dict[str, Any] = field(default_factory=dict)
    challenger_metrics: dict[str, Any] = field(default_factory=dict)
    comparison: dict[str, Any] = field(default_factory=dict)
    cutoff: str = ""
    window: tuple[str, str] = ("", "")
    eval_from: str | None = None
    rows: dict[str, int] = field(default_factory=dict)
    trigger: str = ""  # what started this retrain (e.g. a monitor alarm); "" for a plain call
    #: per intent, each model's mean predicted resolution on the evaluation rows and their count
    #: (:func:`intent_levels`); empty when nothing was compared
    levels: dict[str, Any] = field(default_factory=dict)
    #: ``refit_on_promotion`` only (None otherwise, and left out of the audit line): the version
    #: made champion (the refit; None when nothing was promoted) and what the refit did
    deployed: str | None = None
    refit: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["window"] = list(self.window)
        if self.refit is None:  # the audit line of a plain retrain, as before the option
            del d["deployed"], d["refit"]
        return d


def retrain(history: pd.DataFrame, *, registry: Registry, cutoff: Any = None, window_days: float = 28.0,
            half_life_days: float = 7.0, rule: PromotionRule | None = None, seed: int = 0, client: Any = None,
            params: TrainParams | None = None, resolution_delay_h: float = REPEAT_WINDOW_S / 3600.0,
            csat_delay_h: float = 1.0, at: Any = None, note: str = "", trigger: str = "",
            champion_offsets: dict[str, float] | None = None, ood: str = "mean",
            refit_on_promotion: bool = False, history_rates: str = "absolute") -> RetrainDecision:
    """Train a challenger on the window before ``cutoff`` (None: the last arrival), compare it
    with the registry's champion and promote it by ``rule``; see the module doc
    (``champion_offsets``: per intent, added to the champion's predicted resolution; ``ood``:
    how the router scores out-of-domain pairs, as :attr:`assign.model.scorer.XGBScorer.ood`). ``client``
    (a ``dask.distributed.Client`` or a scheduler address) trains on Dask. ``at`` stamps the
    audit lines (None: now; a simulation passes its clock); ``trigger`` says in the audit line
    what started the retrain (a schedule, a monitor alarm); ``refit_on_promotion``: item 6 of the
    module doc; ``history_rates``: the challenger's agent outcome-history rates
    (:class:`assign.features.FeatureSpec`)."""
    rule = rule or PromotionRule()
    _check_options(window_days=window_days, half_life_days=half_life_days, resolution_delay_h=resolution_delay_h,
                   csat_delay_h=csat_delay_h)
    _check_offsets(champion_offsets)
    _check_ood(ood)
    hist = conform_history(history).sort_values("arrival_at", kind="stable").reset_index(drop=True)
    cut = pd.Timestamp(hist["arrival_at"].max()) if cutoff is None else _utc(cutoff)
    t0 = cut - pd.Timedelta(seconds=window_days * _DAY)
    hist = hist[(hist["arrival_at"] >= t0) & (hist["arrival_at"] < cut)].reset_index(drop=True)
    hist = mature_only(hist, cutoff=cut, resolution_delay_h=resolution_delay_h, csat_delay_h=csat_delay_h)
    champion = registry.resolve("champion")
    base = dict(champion=champion, cutoff=cut.isoformat(), window=(t0.isoformat(), cut.isoformat()), trigger=trigger)
    eval_mask, n_eval = _eval_rows(hist, target=rule.targets[0], fraction=rule.eval_fraction, days=rule.eval_days)
    eval_from = hist["arrival_at"][eval_mask].min() if eval_mask.any() else None
    train_mask = (hist["arrival_at"] < eval_from).to_numpy() if eval_from is not None else np.zeros(len(hist), bool)
    rows = dict(window=int(len(hist)), train=int(train_mask.sum()), eval=n_eval)
    short = [f"{rows['eval']} matured evaluation rows (< {rule.min_eval_rows})"] * (rows["eval"] < rule.min_eval_rows)
    short += [f"{rows['train']} training rows (< {rule.min_train_rows})"] * (rows["train"] < rule.min_train_rows)
    if short:
        d = RetrainDecision(version=None, promoted=False, reason="refused: too few rows to tell: " + "; ".join(short),
                            rows=rows, eval_from=None if eval_from is None else eval_from.isoformat(), **base)
        _log(registry, d, at=at)
        return d
    age_days = (epoch_seconds(pd.Series([cut] * 1)).item() - epoch_seconds(hist["arrival_at"])) / _DAY
    weights = 0.5 ** (age_days / half_life_days)
    train_hist = hist[train_mask].reset_index(drop=True)
    p = params or TrainParams(seed=seed)
    try:
        version = _train_and_register(hist, weights, n_fit=int(train_mask.sum()), registry=registry, params=p,
                                      client=client, window=(t0, eval_from), eval_window=(eval_from, cut), at=at,
                                      note=note or f"retrain at cut-off {cut.isoformat()}",
                                      train_hash=data_hash(train_hist), history_rates=history_rates)
    except InputError as err:  # logged as a decision too, then reported
        _log(registry, RetrainDecision(version=None, promoted=False, reason=f"refused: training failed: {err}",
                                       rows=rows, eval_from=eval_from.isoformat(), **base), at=at)
        raise
    scored_as = recipe_of(registry, champion) if refit_on_promotion and champion is not None else champion
    scored = compare(hist, eval_mask, registry=registry, champion=scored_as, challenger=version,
                     champion_offsets=champion_offsets, ood=ood, level_free=rule.level_free)
    promoted, reason = decide(rule, scored, champion=champion)
    d = RetrainDecision(version=version, promoted=promoted, reason=reason, champion_metrics=scored["champion"],
                        challenger_metrics=scored["challenger"], comparison=scored["comparison"],
                        levels=scored["levels"],
                        eval_from=eval_from.isoformat(), rows=rows, **base)
    registry.set_alias("challenger", version, reason=f"retrained at cut-off {cut.isoformat()}", at=at)
    if refit_on_promotion:
        d = _with_refit(d, hist, weights, registry=registry, params=p, client=client, scored_as=scored_as,
                        window=(t0, cut), eval_window=(eval_from, cut), at=at, history_rates=history_rates)
    if promoted:
        registry.set_alias("champion", d.deployed or version, at=at, figures=scored["comparison"],
                           reason=reason if d.deployed is None else
                           f"{reason}; deployed as {d.deployed}, {version}'s recipe refitted on the whole window")
    _log(registry, d, at=at)
    return d


def _with_refit(d: RetrainDecision, hist: pd.DataFrame, weights: np.ndarray, *, registry: Registry,
                params: TrainParams, client: Any, scored_as: str | None, window: tuple[pd.Timestamp, pd.Timestamp],
                eval_window: tuple[pd.Timestamp, pd.Timestamp], at: Any, history_rates: str) -> RetrainDecision:
    """``d`` with what ``refit_on_promotion`` did: a promoted challenger refitted and registered
    (module doc, item 6); a failed refit keeps the champion, is logged as a decision and raised."""
    refit = dict(champion_scored_as=scored_as)
    deployed = None
    if d.promoted:
        try:
            deployed, done = _refit_and_register(hist, weights, registry=registry, params=params, client=client,
                                                 recipe=d.version, window=window, eval_window=eval_window, at=at,
                                                 history_rates=history_rates)
        except InputError as err:
            _log(registry, replace(d, promoted=False, reason=f"refused: refit of {d.version} failed: {err}",
                                   refit=refit), at=at)
            raise
        refit.update(done)
    return replace(d, deployed=deployed, refit=refit)


def recipe_of(registry: Registry, version: str) -> str:
    """The version whose recipe ``version`` is: the one it was refitted from (its card's
    ``refit.of``), else itself."""
    rec = next((v for v in registry.versions() if str(v.get("version")) == str(version)), {})
    return str((rec.get("refit") or {}).get("of") or version)


def _refit_and_register(hist: pd.DataFrame, weights: np.ndarray, *, registry: Registry, params: TrainParams,
                        client: Any, recipe: str, window: tuple[pd.Timestamp, pd.Timestamp],
                        eval_window: tuple[pd.Timestamp, pd.Timestamp], at: Any,
                        history_rates: str = "absolute") -> tuple[str, dict[str, Any]]:
    """Refit ``recipe`` (a registered challenger) on every row of ``hist`` (the window, outcomes
    unknown at the cut-off already blanked) with its rounds per target; register it with the
    recipe's held-out metrics and a ``refit`` record. Returns (version, what the refit did)."""
    import json

    from assign.model.train import train

    meta = json.loads((registry.path(recipe) / "metadata.json").read_text())
    rounds = {n: int(k) for n, k in meta["rounds"].items()}
    recipe_metrics = next(v for v in registry.versions() if str(v.get("version")) == str(recipe))["metrics"]
    with tempfile.TemporaryDirectory(prefix="assign-refit-") as tmp:
        res = train(hist, out=Path(tmp) / "model", params=params, scheduler=client, weights=weights,
                    refit_rounds=rounds, history_rates=history_rates)
        ew = [t.isoformat() for t in eval_window]
        record = dict(of=recipe, rounds=rounds, rows=int(res.metadata["data"]["rows"]), recipe_evaluation_window=ew,
                      metrics="the recipe's: held-out metrics of " + recipe + " on its evaluation window; this "
                      "version has fitted those rows too, so it has no held-out metrics of its own")
        version = registry.register(res.out, training_window=window, data_hash=data_hash(hist), metrics=recipe_metrics,
                                    at=at, evaluation_window=None, refit=record,
                                    note=f"refit of {recipe} on its whole window, evaluation rows included "
                                         f"(rounds {rounds}); held-out metrics are the recipe's")
    return version, dict(version=version, of=recipe, rounds=rounds, rows=record["rows"])


def mature_only(hist: pd.DataFrame, *, cutoff: pd.Timestamp, resolution_delay_h: float,
                csat_delay_h: float) -> pd.DataFrame:
    """``hist`` with every outcome not yet known at ``cutoff`` blanked (see the module doc)."""
    out = hist.copy()
    cut = epoch_seconds(pd.Series([cutoff])).item()
    end = ended_at_s(out)
    for col, delay in (("handle_s", 0.0), ("csat", csat_delay_h), ("resolved", resolution_delay_h),
                       ("repeat_72h", resolution_delay_h)):
        late = end + delay * 3600.0 > cut
        out.loc[late, col] = pd.NA if out[col].dtype == "boolean" else np.nan
    return out


def ended_at_s(hist: pd.DataFrame) -> np.ndarray:
    """Epoch seconds at which each contact's handling ended (arrival + wait + handle time); inf
    for a contact unfinished or abandoned, which has no outcome yet."""
    end = epoch_seconds(hist["arrival_at"]) + hist["wait_s"].to_numpy(float, na_value=np.nan) \
        + hist["handle_s"].to_numpy(float, na_value=np.nan)
    return np.where(np.isfinite(end), end, np.inf)


def _eval_rows(hist: pd.DataFrame, *, target: str, fraction: float,
               days: float | None = None) -> tuple[np.ndarray, int]:
    """The served rows from the first of the most recent ``fraction`` of served rows with the
    target's label known (``days`` set: of those that arrived within ``days`` of the newest
    one) on, and how many of them have that label."""
    y = hist[TARGETS[target].column].astype("float64").to_numpy(na_value=np.nan)
    ok = np.flatnonzero(np.isfinite(y) & hist["agent_id"].notna().to_numpy())
    if days is None or not len(ok):
        n = int(round(len(ok) * fraction))
    else:
        t = epoch_seconds(hist["arrival_at"].iloc[ok])
        n = int((t >= t[-1] - days * _DAY).sum())
    mask = np.zeros(len(hist), bool)
    if n:
        mask[ok[-n]:] = True  # every served row from the first evaluation row on (rows are in arrival order)
        mask &= hist["agent_id"].notna().to_numpy()
    return mask, n


def tail_params(params: TrainParams, *, n_fit: int, n: int) -> TrainParams:
    """``params`` with train()'s split set so that of ``n`` rows in arrival order the first
    ``n_fit`` are fitted (their last ``params.valid_fraction`` deciding early stopping) and the
    rest are the held-out tail (the retrain's evaluation rows and any abandoned after them)."""
    n_va = int(round(n_fit * params.valid_fraction))
    return replace(params, valid_fraction=n_va / n, test_fraction=(n - n_fit) / n)


def _train_and_register(hist: pd.DataFrame, weights: np.ndarray, *, n_fit: int, registry: Registry,
                        params: TrainParams, client: Any, window: tuple[pd.Timestamp, pd.Timestamp],
                        eval_window: tuple[pd.Timestamp, pd.Timestamp], at: Any, note: str, train_hash: str,
                        history_rates: str = "absolute") -> str:
    """Fit on the first ``n_fit`` rows of ``hist`` (the window, in arrival order), the rest
    being train()'s held-out tail; register the version (``train_hash``: of the rows before
    the evaluation rows, as before)."""
    from assign.model.train import train

    scheduler = client  # an address or a Client: train() takes either
    p = tail_params(params, n_fit=n_fit, n=len(hist))
    with tempfile.TemporaryDirectory(prefix="assign-retrain-") as tmp:
        res = train(hist, out=Path(tmp) / "model", params=p, scheduler=scheduler, weights=weights,
                    history_rates=history_rates)
        return registry.register(res.out, note=note, training_window=window, data_hash=train_hash,
                                 metrics=res.metrics, at=at, evaluation_window=eval_window)


def compare(hist: pd.DataFrame, eval_mask: np.ndarray, *, registry: Registry, champion: str | None,
            challenger: str, champion_offsets: dict[str, float] | None = None, ood: str = "mean",
            level_free: bool = False) -> dict[str, Any]:
    """Both models' metrics per target on the same evaluation rows, and per binary target the
    paired log-loss gain (champion minus challenger per row), its standard error and the
    calibration change. Features are point in time over the whole window. Each model is scored
    as it routes (:func:`as_routed`); ``champion_offsets`` (per intent) are added to the
    champion's resolution predictions (:func:`with_offsets`). ``ood`` "model": a router that
    scores out-of-domain pairs by the model (``XGBScorer(ood="model")``), so their raw predictions
    are kept, with the features a tick gives them (:func:`as_routed_features`: an agent the model
    does not know has no history features, however many rows it has in the window). ``level_free``:
    each model's binary predictions recalibrated per intent on the compared rows first
    (:func:`intent_recalibrated`; :attr:`PromotionRule.level_free`)."""
    _check_ood(ood)
    from assign.features.build import history_features
    from assign.model.domain import history_in_domain
    from assign.model.scorer import ModelDir

    served = hist["agent_id"].notna().to_numpy()
    preds = {}
    for role, v in (("champion", champion), ("challenger", challenger)):
        if v is not None:
            m = ModelDir.load(registry.path(v), nthread=1)
            X = history_features(hist, m.spec).X
            if ood in ("model", "hire"):
                X = as_routed_features(X, unknown_agent=~hist["agent_id"].astype(str).isin(
                    set(m.state.agent_ids)).to_numpy(), as_new=ood == "hire")
            raw = m.predict_matrix(X)
            known = history_in_domain(m, hist)
            preds[role] = raw if ood != "mean" else {n: as_routed(p, known=known, rows=eval_mask & served)
                                                      for n, p in raw.items()}
    levels = intent_levels(hist, eval_mask & served, preds)  # before any offset
    if champion_offsets is not None and "resolved" in preds.get("champion", {}):
        preds["champion"]["resolved"] = with_offsets(preds["champion"]["resolved"], intent=hist["intent"],
                                                     offsets=champion_offsets)
    out: dict[str, Any] = {"champion": {}, "challenger": {}, "comparison": {}, "levels": levels}
    for n in preds["challenger"]:
        t = TARGETS[n]
        y = hist[t.column].astype("float64").to_numpy(na_value=np.nan)
        sel = eval_mask & served & np.isfinite(y)
        if not sel.any():
            continue
        if level_free and t.binary:
            preds = {role: {**p, n: intent_recalibrated(y, p[n], intent=hist["intent"], rows=sel)} if n in p else p
                     for role, p in preds.items()}
        for role, p in preds.items():
            if n in p:
                out[role][n] = (binary_metrics if t.binary else regression_metrics)(y[sel], p[n][sel])
        if t.binary and "champion" in preds and n in preds["champion"]:
            gain = _row_log_loss(y[sel], preds["champion"][n][sel]) - _row_log_loss(y[sel], preds["challenger"][n][sel])
            out["comparison"][n] = dict(
                log_loss_gain=float(gain.mean()), log_loss_gain_se=float(gain.std(ddof=1) / math.sqrt(len(gain))),
                calibration_change=out["challenger"][n]["calibration_error"] - out["champion"][n]["calibration_error"],
                rows=int(sel.sum()), level_free=bool(level_free))
    return out


def intent_recalibrated(y: np.ndarray, p: np.ndarray, *, intent: pd.Series, rows: np.ndarray) -> np.ndarray:
    """``p`` with each intent's ``rows`` moved by the logit shift ``delta`` that makes their mean
    predicted probability equal their outcome rate, ``sum(y - sigmoid(logit(p) + delta)) = 0``
    (Newton; ``delta`` within +-8 when the rows are all 0 or all 1); other rows unchanged."""
    out = np.asarray(p, float).copy()
    codes = pd.Categorical(intent.astype("string").fillna("")).codes
    for k in np.unique(codes[rows]):
        m = rows & (codes == k)
        z = margin_of(out[m], eps=1e-12)
        delta = 0.0
        for _ in range(50):
            q = sigmoid(z + delta)
            step = (y[m] - q).sum() / max((q * (1 - q)).sum(), 1e-12)
            delta = float(np.clip(delta + step, -8.0, 8.0))
            if abs(step) < 1e-10 or abs(delta) == 8.0:
                break
        out[m] = sigmoid(z + delta)
    return out


def intent_levels(hist: pd.DataFrame, rows: np.ndarray, preds: dict[str, dict[str, np.ndarray]]) -> dict[str, Any]:
    """Per intent, each model's mean predicted resolution (as it routes, before any offset)
    over ``rows`` whose resolution is known, and how many rows: what the loop needs to rebase
    its level offsets onto a promoted challenger (:meth:`assign.deploy.levels.LevelOffsets.rebase`)."""
    y = hist["resolved"].astype("float64").to_numpy(na_value=np.nan)
    sel = rows & np.isfinite(y)
    names = hist["intent"].astype("string").fillna("").to_numpy(object)
    out: dict[str, Any] = {"rows": {}}
    for k in sorted(set(names[sel].tolist())):
        out["rows"][k] = int((sel & (names == k)).sum())
    for role, p in preds.items():
        if "resolved" in p:
            r = np.asarray(p["resolved"], float)
            out[role] = {k: float(r[sel & (names == k)].mean()) for k in out["rows"]}
    return out


#: The history-based agent features: a tick gives them NaN for an agent the model never saw
#: (``AgentState.agent_features`` / ``pair_features`` with code -1).
AGENT_HISTORY_FEATURES = ("agent_rate", "agent_log_n", "agent_intent_rate", "agent_intent_log_n",
                          "agent_handle_ratio", "agent_csat")


def as_routed_features(X: np.ndarray, *, unknown_agent: np.ndarray, as_new: bool = False) -> np.ndarray:
    """History feature rows with every :data:`AGENT_HISTORY_FEATURES` column NaN on the rows of
    an agent the model does not know, as a tick builds them (``history_features`` computes them
    point in time over the window, so a hire with rows there would otherwise look known). With
    ``as_new`` (a router with ``ood="hire"``) those rows read as an agent with no history: the
    rates NaN, the counts 0 (the agent x intent count NaN where the intent is unknown to the model)."""
    from assign.features.spec import FEATURES

    out = np.array(X, copy=True)
    rows = np.flatnonzero(unknown_agent)
    intent_n = out[rows, FEATURES.index("agent_intent_log_n")]
    cols = [FEATURES.index(n) for n in AGENT_HISTORY_FEATURES]
    out[np.ix_(rows, cols)] = np.nan
    if as_new:
        out[rows, FEATURES.index("agent_log_n")] = 0.0
        out[rows, FEATURES.index("agent_intent_log_n")] = np.where(np.isfinite(intent_n), 0.0, np.nan)
    return out


def _check_ood(ood: str) -> None:
    from assign.model.scorer import check_ood

    check_ood(ood, what="retrain options")


def as_routed(pred: np.ndarray, *, known: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``pred`` with every out-of-domain row (``~known``) set to the mean prediction of the
    in-domain ``rows`` (of all ``rows`` when none is in domain), as the router scores such
    pairs (:meth:`assign.model.scorer.XGBScorer.score_pairs`, one constant for them)."""
    out = np.array(pred, dtype=float)
    ref = rows & known if (rows & known).any() else rows
    if (~known).any() and ref.any():
        out[~known] = float(out[ref].mean())
    return out


def with_offsets(pred: np.ndarray, *, intent: pd.Series, offsets: dict[str, float]) -> np.ndarray:
    """``pred`` (probabilities) plus each row's intent offset (an intent without one: 0), as
    :class:`assign.deploy.levels.OffsetScorer` adds them to a routed score; clipped to
    [0.01, 0.99], so a score shifted past 0 or 1 is a confident probability, not an impossible one."""
    _check_offsets(offsets)
    names = intent.astype("string").fillna("")
    add = names.map(lambda k: float(offsets.get(k, 0.0))).to_numpy(float)
    return np.clip(np.asarray(pred, float) + add, 0.01, 0.99)


def _check_offsets(offsets: dict[str, float] | None) -> None:
    if offsets is None:
        return
    bad = [k for k, v in offsets.items() if not (isinstance(v, (int, float, np.floating)) and math.isfinite(v))]
    if bad:
        raise InputError([f"champion_offsets[{k!r}]: must be a finite number, got {offsets[k]!r}" for k in bad],
                         what="retrain options")


def _row_log_loss(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, float), 1e-12, 1 - 1e-12)
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))


def decide(rule: PromotionRule, scored: dict[str, Any], *, champion: str | None) -> tuple[bool, str]:
    """(promote, reason) by ``rule`` from :func:`compare`'s figures."""
    if champion is None:
        return True, "no champion"
    fails, passes = [], []
    for n in rule.targets:
        c = scored["comparison"].get(n)
        if c is None:
            fails.append(f"{n}: not predicted by both models")
            continue
        g, se, dc = c["log_loss_gain"], c["log_loss_gain_se"], c["calibration_change"]
        need = max(rule.min_log_loss_gain, rule.z * se)
        if g < need:
            fails.append(f"{n}: log-loss gain {g:.4f} < {need:.4f} (margin {rule.min_log_loss_gain:g}, "
                         f"{rule.z:g} x s.e. {se:.4f})")
        elif dc > rule.max_calibration_worsening:
            fails.append(f"{n}: calibration error worse by {dc:.4f} (> {rule.max_calibration_worsening:g})")
        else:
            passes.append(f"{n}: log-loss gain {g:.4f} >= {need:.4f}, calibration change {dc:+.4f}")
    if fails:
        return False, "kept champion: " + "; ".join(fails)
    return True, "better: " + "; ".join(passes)


def _log(registry: Registry, d: RetrainDecision, *, at: Any) -> None:
    fields = d.to_dict()
    registry.log("retrain", at=at, **fields)


def _utc(t: Any) -> pd.Timestamp:
    ts = pd.Timestamp(t)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _check_options(**opts: float) -> None:
    problems = []
    for k, v in opts.items():
        ok = isinstance(v, (int, float)) and math.isfinite(v) and (v >= 0 if k.endswith("delay_h") else v > 0)
        if not ok:
            problems.append(f"{k}: must be a finite number {'>= 0' if k.endswith('delay_h') else '> 0'}, got {v!r}")
    if problems:
        raise InputError(problems, what="retrain options")
