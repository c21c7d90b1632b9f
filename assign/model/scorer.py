"""Loading a model dir, scoring tick pairs (:class:`XGBScorer`) and predicting histories.

``value = w_resolved * p_resolved + w_csat * (csat - 1) / 4 - cost_per_handle_min *
handle_s / 60 - w_repeat * p_repeat``, over the targets the model has (a missing target
contributes nothing). Defaults: 1.0, 0.2, 0.02, 0.5: a resolution is worth one unit, a
minute of agent time 0.02 units, a fully satisfied customer 0.2 units over an unhappy one.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from numba import njit

from assign.errors import InputError, ModelError
from assign.features.bound import RunTables
from assign.features.build import CustomerTimes, TickFeaturizer, history_features
from assign.features.rolling import AgentState
from assign.features.spec import FeatureSpec
from assign.history import conform_history, has_truth
from assign.model.forest import Forest, booster_learner, forest_from_booster
from assign.model.offload import LoadWorker
from assign.model.packed import PackedForest, pack_boosters
from assign.model.prior import PriorFit, fit_prior
from assign.model.train import TARGETS, eval_target
from assign.progress import Progress, Steps
from assign.schema import Snapshot, build_snapshot
from assign.scorer import Scorer

if TYPE_CHECKING:
    from assign.sim.view import RunInfo

OUTPUT_NAME = {"resolved": "p_resolved", "csat": "csat", "handle_time": "handle_s", "repeat_72h": "p_repeat_72h"}


@dataclass(frozen=True, kw_only=True)
class ValueWeights:
    w_resolved: float = 1.0
    w_csat: float = 0.2
    cost_per_handle_min: float = 0.02
    w_repeat: float = 0.5

    def combine(self, preds: dict[str, np.ndarray], n: int) -> np.ndarray:
        """The value of each of ``n`` pairs from the targets' predictions (one numba pass; the
        same float64 operations in the same order as :meth:`combine_reference`)."""
        cols = [np.ascontiguousarray(preds[k], np.float64) if k in preds else _ZERO for k in _TERMS]
        if n == 0 or any(k in preds and c.shape != (n,) for k, c in zip(_TERMS, cols)):
            return self.combine_reference(preds, n)  # unusual shapes: numpy's broadcasting rules
        out = np.empty(n)
        _combine(*cols, self.w_resolved, self.w_csat, self.cost_per_handle_min, self.w_repeat, out)
        return out

    def combine_reference(self, preds: dict[str, np.ndarray], n: int) -> np.ndarray:
        """:meth:`combine` in whole-array numpy (the reference the tests compare against)."""
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


_TERMS = ("resolved", "csat", "handle_time", "repeat_72h")
_ZERO = np.zeros(0)


@njit(cache=True, nogil=True)
def _combine(resolved, csat, handle, repeat, w_resolved, w_csat, cost_per_handle_min, w_repeat, out):
    """:meth:`ValueWeights.combine` per pair; an empty array is a target the model lacks. NaN
    propagates as numpy's clip and maximum propagate it."""
    for k in range(len(out)):
        v = 0.0
        if len(resolved):
            v += w_resolved * resolved[k]
        if len(csat):
            c = csat[k]
            if c == c:
                c = min(max(c, 1.0), 5.0)
            v += w_csat * (c - 1.0) / 4.0
        if len(handle):
            h = handle[k]
            if h == h:
                h = max(h, 0.0)
            v -= cost_per_handle_min * h / 60.0
        if len(repeat):
            v -= w_repeat * repeat[k]
        out[k] = v


@dataclass(frozen=True, eq=False)
class ModelDir:
    """A loaded model directory: spec, boosters, their packed forest, agent state, the
    customers' recent arrivals. Plain arrays and boosters: it pickles into a few buffers, so
    a loader process can hand it over (:mod:`assign.model.offload`)."""

    path: Path
    spec: FeatureSpec
    metadata: dict[str, Any]
    boosters: dict[str, Any]          # prediction with ``nthread`` threads
    state: AgentState
    customers: CustomerTimes
    parallel_from: int = 32768
    packed: PackedForest | None = None  # every target in one numba forest; None: xgboost only

    @classmethod
    def load(cls, path: str | Path, *, nthread: int = 2, parallel_from: int = 32768) -> ModelDir:
        """Load and check a model dir. Batches of at least ``parallel_from`` rows predict with
        ``nthread`` threads, smaller ones with one: measured, OpenMP's thread hand-off costs
        more than it saves on small batches and stalls badly on a busy machine."""
        import xgboost as xgb

        p = require_model_files(path)
        meta = _metadata(p)
        _check_digests(p, meta)
        spec = _guard(p / "features.json", lambda: FeatureSpec.load(p / "features.json"))
        spec.check_current()
        boosters, learners = {}, {}
        for n in meta["targets"]:
            f = p / "models" / f"{n}.json"
            b = _guard(f, lambda f=f: _booster(xgb, f))
            if b.feature_names is not None and tuple(b.feature_names) != tuple(spec.names):
                raise ModelError(f"{f}: booster feature names differ from features.json")
            learners[n] = learner = _guard(f, lambda b=b: booster_learner(b))  # parsed once, for packing too
            objective = learner["objective"]["name"]
            if objective != meta["objectives"].get(n):
                raise ModelError(f"{f}: booster objective {objective!r} is not the {meta['objectives'].get(n)!r} "
                                 f"recorded for target {n!r} at training")
            b.set_param({"nthread": nthread})
            boosters[n] = b
        if not boosters:
            raise ModelError(f"{p}: the model directory holds no trained target")
        try:
            packed = pack_boosters(boosters, n_features=len(spec.names), learners=learners)
        except ModelError:
            packed = None  # trees the packed layout cannot hold: xgboost serves
        state = _guard(p / "state.npz", lambda: AgentState.load(p / "state.npz"))
        customers = _guard(p / "customers.parquet",
                           lambda: CustomerTimes.from_frame(pd.read_parquet(p / "customers.parquet")))
        return cls(path=p, spec=spec, metadata=meta, boosters=boosters, state=state,
                   customers=customers, parallel_from=int(parallel_from), packed=packed)

    def __getstate__(self) -> dict[str, Any]:
        """Pickled without what is built on first use (serial boosters, numba forests): a model
        crossing from a loader process carries the least."""
        return {k: v for k, v in self.__dict__.items() if k not in ("boosters_serial", "forests")}

    @cached_property
    def boosters_serial(self) -> dict[str, Any]:
        """The same boosters with one thread, for small batches when there is no packed forest
        (made on first use: warm-up, off the tick path; a loaded model crossing from a loader
        process does not carry them)."""
        serial = {}
        for n, b in self.boosters.items():
            serial[n] = one = b.copy()
            one.set_param({"nthread": 1})
        return serial

    @cached_property
    def forests(self) -> dict[str, Forest]:
        """Per target, the booster's trees flattened for the ``numba`` backend (built on first
        use: the tick path serves from ``packed`` or xgboost, so a load does not pay for them)."""
        return {n: forest_from_booster(b, n_features=len(self.spec.names)) for n, b in self.boosters.items()}

    @property
    def customer_times(self) -> pd.DataFrame:
        """The customers' recent arrivals as ``customer_id``, ``t`` rows (customers.parquet's content)."""
        return self.customers.frame()

    def predict_matrix(self, X: np.ndarray, *, backend: str = "auto") -> dict[str, np.ndarray]:
        """Per-target predictions (output scale). ``backend``: "packed" (every target in one
        numba pass, :mod:`assign.model.packed`; faster than one-thread ``inplace_predict`` at
        tick sizes, benchmarks/scoring.py), "xgboost" (``inplace_predict``), "numba" (the
        per-target reference forests), or "auto": packed below ``parallel_from`` rows when
        the model could be packed, else xgboost (two threads pay off on large batches)."""
        self.spec.check_matrix(X)
        if backend not in ("auto", "packed", "numba", "xgboost"):
            raise ValueError(f"backend must be auto, packed, numba or xgboost, got {backend!r}")
        if backend == "auto":
            backend = "packed" if self.packed is not None and len(X) < self.parallel_from else "xgboost"
        if backend == "packed":
            if self.packed is None:
                raise ModelError(f"{self.path}: this model could not be packed; use the xgboost backend")
            return self.packed.predict(X)
        if backend == "numba":
            return {n: f.predict(X) for n, f in self.forests.items()}
        bs = self.boosters if len(X) >= self.parallel_from else self.boosters_serial
        return {n: np.asarray(b.inplace_predict(X), dtype=np.float64) for n, b in bs.items()}

    def predict_frame(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        """Predict a feature frame after checking names, order and dtypes against the spec."""
        return self.predict_matrix(self.spec.check_frame(frame))


def require_model_files(path: str | Path) -> Path:
    """``path`` as a Path, or :class:`ModelError` when it lacks a model directory's files."""
    p = Path(path)
    need = ["metadata.json", "features.json", "state.npz", "customers.parquet"]
    missing = [f for f in need if not (p / f).is_file()]
    if missing:
        raise ModelError(f"{p}: not a model directory (missing {', '.join(missing)})")
    return p


def _guard(path: Path, load):
    """``load()``, with any failure reading ``path`` turned into :class:`ModelError`."""
    try:
        return load()
    except ModelError:
        raise
    except Exception as err:  # corrupt files raise anything from ValueError to XGBoostError
        raise ModelError(f"{path}: corrupt or unreadable ({type(err).__name__}: {str(err)[:200]})") from err


def _booster(xgb, f: Path):
    b = xgb.Booster()
    b.load_model(f)
    return b


def _metadata(p: Path) -> dict[str, Any]:
    """``metadata.json``, checked for what loading relies on."""
    from assign.validate import load_json

    try:
        meta = load_json(p / "metadata.json", what="model")
    except Exception as err:
        raise ModelError(f"{p / 'metadata.json'}: corrupt or unreadable ({err})") from err
    if not isinstance(meta, dict) or meta.get("schema") != "assign.model/1":
        raise ModelError(f"{p / 'metadata.json'}: not an assign.model/1 metadata document")
    targets, objectives = meta.get("targets"), meta.get("objectives")
    if (not isinstance(targets, list) or not targets or not isinstance(objectives, dict)
            or any(not isinstance(t, str) or not t.isidentifier() for t in targets)):
        raise ModelError(f"{p / 'metadata.json'}: targets and objectives are missing or malformed")
    if not isinstance(meta.get("files"), dict):
        raise ModelError(f"{p / 'metadata.json'}: no file digests (a model made before they were recorded); "
                         "retrain it")
    return meta


def _check_digests(p: Path, meta: dict[str, Any]) -> None:
    """Every file recorded at training is present and unchanged (SHA-256)."""
    import hashlib

    from assign.model.train import DIGESTED

    files = meta["files"]
    expected = {*DIGESTED, *(f"models/{n}.json" for n in meta["targets"])}
    if not expected <= set(files):
        raise ModelError(f"{p}: metadata.json lacks digests for {', '.join(sorted(expected - set(files)))}")
    for name in sorted(expected):
        f = p / name
        if not f.is_file():
            raise ModelError(f"{p}: {name} is missing")
        if hashlib.sha256(f.read_bytes()).hexdigest() != files[name]:
            raise ModelError(f"{f}: changed since training (SHA-256 differs from metadata.json); "
                             "retrain rather than edit a model directory")


#: Ways to score a pair out of the model's domain (:attr:`XGBScorer.ood`).
OOD_MODES = ("mean", "model", "hire")


def check_ood(ood: str, *, what: str) -> None:
    """Refuse an ``ood`` mode outside :data:`OOD_MODES` (``what``: whose option it is)."""
    if ood not in OOD_MODES:
        raise InputError([f"ood: must be one of {', '.join(OOD_MODES)}, got {ood!r}"], what=what)


@dataclass(eq=False)
class XGBScorer(Scorer):
    """The trained models as the router's :class:`~assign.scorer.Scorer`."""

    model: ModelDir
    weights: ValueWeights = field(default_factory=ValueWeights)
    name: str = "xgb"
    prior_fit: PriorFit | None = None  # retrieval's cheap estimate (assign.model.prior); None: proficiency
    run_tables: bool = True  # bound to a simulated run: its ticks' features from per-run tables (same bits)
    #: How a pair out of the model's domain is scored: "mean" (the tick's in-domain mean: no
    #: preference among such pairs) or "model" (the model's own prediction, the unknown intent
    #: missing and an unknown agent with no history, so proficiency, tenure and the contact
    #: still order the agents; loop12, docs/living-centre.md); "hire" (loop13): as "model", with
    #: an agent the model does not know read as an agent with no history (its outcome counts 0,
    #: its rates missing: what a training row of an agent's first contact holds) rather than
    #: every history feature missing.
    ood: str = "mean"

    def __post_init__(self) -> None:
        check_ood(self.ood, what="XGBScorer")
        self._feat = TickFeaturizer(spec=self.model.spec, state=self.model.state,
                                    customer_times=self.model.customers,
                                    unknown_agent="new" if self.ood == "hire" else "missing")
        self._tables: RunTables | None = None
        self._unknown_intents: tuple | None = None  # (snapshot intents, mask) of the last call

    def bind(self, run: RunInfo) -> None:
        """A simulated run starts: look its contacts and agents up once
        (:class:`assign.features.bound.RunTables`), so its ticks' features skip the per-row
        look-ups; with ``run_tables`` False (or a run the tables decline), the general path."""
        self._tables = RunTables.build(self._feat, run) if self.run_tables else None

    def __getstate__(self) -> dict[str, Any]:
        """Pickled unbound: a scorer shipped elsewhere carries no run's tables (bind rebuilds them)."""
        return {**self.__dict__, "_tables": None}

    @classmethod
    def load(cls, path: str | Path, *, weights: ValueWeights | None = None, nthread: int = 2,
             parallel_from: int = 32768, worker: LoadWorker | None = None, ood: str = "mean") -> XGBScorer:
        """Load a model dir (see :meth:`ModelDir.load` for the threading); with ``worker``, the
        heavy part runs in that process (:mod:`assign.model.offload`: for a running router)."""
        model = (ModelDir.load(path, nthread=nthread, parallel_from=parallel_from) if worker is None
                 else worker.load(path, nthread=nthread, parallel_from=parallel_from))
        return cls(model=model, weights=weights or ValueWeights(), prior_fit=PriorFit.load(path), ood=ood)

    def fit_prior(self, snapshot: Snapshot, *, n_pairs: int = 4096, seed: int = 0) -> PriorFit:
        """Fit (and keep) the retrieval prior on a sample of ``snapshot``'s pairs; ``prior_fit.save``
        stores it with the model. Call before ticking: a scorer in use must not change."""
        self.prior_fit = fit_prior(self, snapshot, n_pairs=n_pairs, seed=seed)
        return self.prior_fit

    def prior(self, snapshot: Snapshot):
        """The router's retrieval prior (:class:`assign.scorer.Prior`), None before one is fitted."""
        return None if self.prior_fit is None else self.prior_fit.prior(self.model, snapshot)

    def features(self, snapshot: Snapshot, *, contact_idx: np.ndarray, agent_idx: np.ndarray) -> np.ndarray:
        return self._feat.features(snapshot, contact_idx=contact_idx, agent_idx=agent_idx)

    def predict_pairs(self, snapshot: Snapshot, *, contact_idx: np.ndarray,
                      agent_idx: np.ndarray) -> dict[str, np.ndarray]:
        """Per-target predictions (output scale) for the pairs."""
        X = self.features(snapshot, contact_idx=contact_idx, agent_idx=agent_idx)
        return self.model.predict_matrix(X)

    def score_pairs(self, snapshot: Snapshot, *, contact_idx: np.ndarray, agent_idx: np.ndarray) -> np.ndarray:
        """Combined scores. Pairs out of the model's domain (an intent, language or agent it
        never saw: :mod:`assign.model.domain`) are not scored as if known: they get the mean
        score of the tick's in-domain pairs, or, when none is in domain, one shared value (the
        mean over all pairs), so the model expresses no preference among them; with ``ood``
        "model", the model's own prediction for them (the field's comment)."""
        ci, ai = np.asarray(contact_idx, dtype=np.int64), np.asarray(agent_idx, dtype=np.int64)
        tables = self._tables
        if tables is not None and tables.applies(snapshot):  # a view of the bound run: the same matrix, faster
            X, ood = tables.features(snapshot, contact_idx=ci, agent_idx=ai)
        else:
            scored = np.flatnonzero(np.bincount(ai, minlength=snapshot.n_agents))  # = np.unique(ai), without a sort
            codes = self._feat.agent_codes(snapshot, rows=scored)  # only the scored agents are read
            X = self._feat.features(snapshot, contact_idx=ci, agent_idx=ai, agent_codes=codes)
            intent_ok, lang_ok, agent_ok = self._feat.known(snapshot, agent_codes=codes)  # = domain.out_of_domain
            ood = ~intent_ok[ci] | ~lang_ok[ci] | ~agent_ok[ai]
        score = self.weights.combine(self.model.predict_matrix(X), len(ci))
        if self.ood == "mean" and ood.any():
            score = np.array(score, dtype=float)
            score[ood] = float(score[~ood].mean()) if (~ood).any() else float(score.mean())
        return score

    def unknown_agents(self, snapshot: Snapshot) -> np.ndarray:
        """Per snapshot agent: True where the model has no training rows of it (a hire it never saw)."""
        return ~self._feat.known(snapshot, agent_codes=self._feat.agent_codes(snapshot))[2]

    def unknown_intents(self, snapshot: Snapshot) -> np.ndarray:
        """Per snapshot intent: True where the model has no training rows of it (a new intent)."""
        intents = tuple(snapshot.intents)
        cached = self._unknown_intents
        if cached is None or cached[0] != intents:
            known = set(self.model.spec.intents)
            cached = self._unknown_intents = (intents, np.array([k not in known for k in intents], bool))
        return cached[1]

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
            snapshot_id="warm-up", at=datetime.now(UTC))
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
