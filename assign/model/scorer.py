"""Loading a model dir, scoring tick pairs (:class:`XGBScorer`) and predicting histories.

``value = w_resolved * p_resolved + w_csat * (csat - 1) / 4 - cost_per_handle_min *
handle_s / 60 - w_repeat * p_repeat``, over the targets the model has (a missing target
contributes nothing). Defaults: 1.0, 0.2, 0.02, 0.5: a resolution is worth one unit, a
minute of agent time 0.02 units, a fully satisfied customer 0.2 units over an unhappy one.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from assign.errors import ModelError
from assign.features.build import TickFeaturizer, history_features
from assign.features.rolling import AgentState
from assign.features.spec import FeatureSpec
from assign.history import conform_history, has_truth
from assign.model.forest import Forest, forest_from_booster
from assign.model.train import TARGETS, eval_target
from assign.progress import Progress, Steps
from assign.schema import Snapshot, build_snapshot

OUTPUT_NAME = {"resolved": "p_resolved", "csat": "csat", "handle_time": "handle_s", "repeat_72h": "p_repeat_72h"}


@dataclass(frozen=True, kw_only=True)
class ValueWeights:
    w_resolved: float = 1.0
    w_csat: float = 0.2
    cost_per_handle_min: float = 0.02
    w_repeat: float = 0.5

    def combine(self, preds: dict[str, np.ndarray], n: int) -> np.ndarray:
        v = np.zeros(n)
        if "resolved" in preds:
            v += self.w_resolved * preds["resolved"]
        if "csat" in preds:
            v += self.w_csat * (np.clip(preds["csat"], 1.0, 5.0) - 1.0) / 4.0
        if "handle_time" in preds:
            v -= self.cost_per_handle_min * np.maximum(preds["handle_time"], 0.0) / 60.0
        if "repeat_72h" in preds:
            v -= self.w_repeat * preds["repeat_72h"]
        return v


@dataclass(frozen=True, eq=False)
class ModelDir:
    """A loaded model directory: spec, boosters, their flattened forests, agent state."""

    path: Path
    spec: FeatureSpec
    metadata: dict[str, Any]
    boosters: dict[str, Any]          # prediction with ``nthread`` threads
    boosters_serial: dict[str, Any]   # the same models with one thread, for small batches
    forests: dict[str, Forest]
    state: AgentState
    customer_times: pd.DataFrame
    parallel_from: int = 32768

    @classmethod
    def load(cls, path: str | Path, *, nthread: int = 2, parallel_from: int = 32768) -> "ModelDir":
        """Load and check a model dir. Batches of at least ``parallel_from`` rows predict with
        ``nthread`` threads, smaller ones with one: measured, OpenMP's thread hand-off costs
        more than it saves on small batches and stalls badly on a busy machine."""
        import xgboost as xgb

        p = Path(path)
        need = ["metadata.json", "features.json", "state.npz", "customers.parquet"]
        missing = [f for f in need if not (p / f).exists()]
        if missing:
            raise ModelError(f"{p}: not a model directory (missing {', '.join(missing)})")
        meta = json.loads((p / "metadata.json").read_text())
        spec = FeatureSpec.load(p / "features.json")
        spec.check_current()
        boosters, serial, forests = {}, {}, {}
        for n in meta.get("targets", []):
            f = p / "models" / f"{n}.json"
            if not f.exists():
                raise ModelError(f"{p}: model for target {n!r} is missing ({f})")
            b = xgb.Booster()
            b.load_model(f)
            if b.feature_names is not None and tuple(b.feature_names) != tuple(spec.names):
                raise ModelError(f"{f}: booster feature names differ from features.json")
            b.set_param({"nthread": nthread})
            boosters[n] = b
            one = b.copy()
            one.set_param({"nthread": 1})
            serial[n] = one
            forests[n] = forest_from_booster(b, n_features=len(spec.names))
        if not boosters:
            raise ModelError(f"{p}: the model directory holds no trained target")
        return cls(path=p, spec=spec, metadata=meta, boosters=boosters, boosters_serial=serial, forests=forests,
                   state=AgentState.load(p / "state.npz"), customer_times=pd.read_parquet(p / "customers.parquet"),
                   parallel_from=int(parallel_from))

    def predict_matrix(self, X: np.ndarray, *, backend: str = "xgboost") -> dict[str, np.ndarray]:
        """Per-target predictions (output scale). ``backend``: "xgboost" (``inplace_predict``,
        the faster one at every batch size measured by benchmarks/scoring.py) or "numba" (the
        flattened forests, verified equal; a dependency-light reference)."""
        self.spec.check_matrix(X)
        if backend not in ("numba", "xgboost"):
            raise ValueError(f"backend must be numba or xgboost, got {backend!r}")
        if backend == "numba":
            return {n: f.predict(X) for n, f in self.forests.items()}
        bs = self.boosters if len(X) >= self.parallel_from else self.boosters_serial
        return {n: np.asarray(b.inplace_predict(X), dtype=np.float64) for n, b in bs.items()}

    def predict_frame(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        """Predict a feature frame after checking names, order and dtypes against the spec."""
        return self.predict_matrix(self.spec.check_frame(frame))


@dataclass(eq=False)
class XGBScorer:
    """The trained models as the router's :class:`~assign.scorer.Scorer`."""

    model: ModelDir
    weights: ValueWeights = field(default_factory=ValueWeights)
    name: str = "xgb"

    def __post_init__(self) -> None:
        self._feat = TickFeaturizer(spec=self.model.spec, state=self.model.state,
                                    customer_times=self.model.customer_times)

    @classmethod
    def load(cls, path: str | Path, *, weights: ValueWeights | None = None, nthread: int = 2,
             parallel_from: int = 32768) -> "XGBScorer":
        """Load a model dir (see :meth:`ModelDir.load` for the threading)."""
        return cls(model=ModelDir.load(path, nthread=nthread, parallel_from=parallel_from),
                   weights=weights or ValueWeights())

    def features(self, snapshot: Snapshot, *, contact_idx: np.ndarray, agent_idx: np.ndarray) -> np.ndarray:
        return self._feat.features(snapshot, contact_idx=contact_idx, agent_idx=agent_idx)

    def predict_pairs(self, snapshot: Snapshot, *, contact_idx: np.ndarray, agent_idx: np.ndarray) -> dict[str, np.ndarray]:
        """Per-target predictions (output scale) for the pairs."""
        X = self.features(snapshot, contact_idx=contact_idx, agent_idx=agent_idx)
        return self.model.predict_matrix(X)

    def score_pairs(self, snapshot: Snapshot, *, contact_idx: np.ndarray, agent_idx: np.ndarray) -> np.ndarray:
        preds = self.predict_pairs(snapshot, contact_idx=contact_idx, agent_idx=agent_idx)
        return self.weights.combine(preds, len(np.asarray(contact_idx)))

    def warm_up(self) -> None:
        """Compile the numba kernels (features and trees) on a one-pair snapshot."""
        spec = self.model.spec
        lang = spec.languages[0] if spec.languages else "en"
        intent = spec.intents[0] if spec.intents else "x"
        snap = build_snapshot(
            contacts=[dict(contact_id="c", channel="voice", intent=intent, language=lang, complexity=0.5,
                           urgency=0.5, sentiment=0.0, waited_s=0.0, style=None, customer_id="u",
                           customer_tier=None)],
            agents=[dict(agent_id="a", languages=[lang], skills={intent: 0.5}, capacity={"voice": 1},
                         load={}, tenure_days=1.0, sentiment_handling=0.5, style=None, idle_s=0.0)],
            snapshot_id="warm-up", at=datetime.now(timezone.utc))
        self.score_pairs(snap, contact_idx=np.array([0]), agent_idx=np.array([0]))


def predict_history(model: ModelDir, history: pd.DataFrame, *, progress: Progress | None = None) -> pd.DataFrame:
    """Per-row predictions for a history (features point in time over the history given)."""
    steps = Steps(progress, stage="predicting", total=2)
    hist = conform_history(history)
    X = history_features(hist, model.spec).X
    steps.advance()
    preds = model.predict_matrix(X)
    steps.advance()
    out = pd.DataFrame({"contact_id": hist["contact_id"]})
    for n, v in preds.items():
        out[OUTPUT_NAME[n]] = v
    out.loc[hist["agent_id"].isna().to_numpy(), list(OUTPUT_NAME[n] for n in preds)] = np.nan
    return out


def held_out_from(metadata: dict[str, Any]) -> str | None:
    """Start of the model's held-out period (ISO time; every row arriving at or after it is
    unseen by the model), or None for a model trained before it was recorded."""
    held = metadata.get("held_out")
    return str(held["from"]) if isinstance(held, dict) and held.get("from") else None


def evaluate(model: ModelDir, history: pd.DataFrame, *, since: datetime | None = None,
             progress: Progress | None = None) -> dict[str, Any]:
    """Metrics of every target on the served, labelled rows (arrived at or after ``since``;
    None = every row, in-sample ones included: see :func:`held_out_from`); features are
    computed point in time over the whole history, so pass the earlier part too when
    evaluating a later window. Adds the truth's metrics on synthetic histories."""
    steps = Steps(progress, stage="scoring", total=2)
    hist = conform_history(history).sort_values("arrival_at", kind="stable").reset_index(drop=True)
    X = history_features(hist, model.spec).X
    steps.advance()
    preds = model.predict_matrix(X)
    steps.advance()
    window = np.ones(len(hist), bool) if since is None else (hist["arrival_at"] >= pd.Timestamp(since)).to_numpy()
    synthetic = has_truth(hist)
    res: dict[str, Any] = {}
    for n, pred in preds.items():
        t = TARGETS[n]
        y = hist[t.column].astype("float64").to_numpy(na_value=np.nan)
        sel = window & np.isfinite(y) & hist["agent_id"].notna().to_numpy()
        if not sel.any():
            res[n] = {"rows": 0}
            continue
        truth = hist[t.truth].astype("float64").to_numpy(na_value=np.nan)[sel] if (synthetic and t.truth) else None
        res[n] = eval_target(t, y[sel], pred[sel], truth)
    return res
