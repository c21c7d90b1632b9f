"""The feature list: names, order and dtype, and the vocabularies the codes refer to.

The spec is written into every model directory and checked at load and at predict, so a
matrix whose columns are missing, extra or shuffled is refused with a :class:`ModelError`
instead of being scored silently wrong (xgboost's ``inplace_predict`` does not check).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from assign.errors import ModelError
from assign.features.rolling import CENTRE_HALF_LIFE_S, HISTORY_RATES

FEATURES: tuple[str, ...] = (
    "channel",             # code in CHANNELS
    "intent",              # code in spec.intents; NaN when unknown to the model
    "complexity", "urgency", "sentiment",
    "priority",            # customer tier is 'priority' (NaN when unknown)
    "hour", "weekday",     # of the contact's arrival, UTC
    "cust_recent_72h",     # the customer's earlier contacts in the 72 h before arrival
    "agent_log_tenure", "agent_handling", "agent_load",
    "proficiency",         # agent's proficiency on the contact's intent
    "lang_match", "style_match",
    "prof_x_complexity", "neg_x_handling",
    "agent_rate", "agent_log_n",            # point-in-time resolution rate (smoothed), count
    "agent_intent_rate", "agent_intent_log_n",
    "agent_handle_ratio",  # mean log(handle / intent-channel mean) of the agent, point in time
    "agent_csat",          # smoothed mean CSAT of the agent, point in time
)
DTYPE = "float32"


@dataclass(frozen=True)
class FeatureSpec:
    """What a model was trained on: feature names/order/dtype plus the encodings."""

    intents: tuple[str, ...]
    languages: tuple[str, ...]
    styles: tuple[str, ...]
    names: tuple[str, ...] = FEATURES
    dtype: str = DTYPE
    prior_rate: float = 0.5           # smoothing prior of the rolling resolution rates
    prior_csat: float = 3.0
    smoothing: float = 20.0           # pseudo-count of the prior
    label_delay_s: float = 0.0        # outcomes count only this long after the contact ended
    handle_log_mean: dict[str, float] = field(default_factory=dict)  # "channel|intent" -> mean log handle
    #: "absolute" (the default): agent_rate / agent_intent_rate are the agent's smoothed resolution
    #: rates; "relative": the centre's current rate (on the row's intent for agent_intent_rate) plus
    #: the agent's smoothed mean residual against the centre's rate known when each outcome came in
    #: (:func:`assign.features.rolling.point_in_time`), the centre's rate forgotten with half-life
    #: ``centre_half_life_s`` of known-at time. Written to spec.json only when not "absolute", so
    #: the files of absolute models stay as they were.
    history_rates: str = "absolute"
    centre_half_life_s: float = CENTRE_HALF_LIFE_S

    def __post_init__(self) -> None:
        if self.history_rates not in HISTORY_RATES:
            raise ValueError(f"history_rates must be one of {HISTORY_RATES}, got {self.history_rates!r}")
        if not self.centre_half_life_s > 0:
            raise ValueError(f"centre_half_life_s must be > 0, got {self.centre_half_life_s}")

    @property
    def relative_rates(self) -> bool:
        return self.history_rates == "relative"

    def to_json(self) -> str:
        d = asdict(self)
        if not self.relative_rates:
            d.pop("history_rates")
            d.pop("centre_half_life_s")
        return json.dumps(d, indent=1)

    @classmethod
    def from_json(cls, text: str) -> FeatureSpec:
        d = json.loads(text)
        for k in ("intents", "languages", "styles", "names"):
            d[k] = tuple(d[k])
        return cls(**d)

    def save(self, path: Path) -> None:
        Path(path).write_text(self.to_json())

    @classmethod
    def load(cls, path: Path) -> FeatureSpec:
        try:
            return cls.from_json(Path(path).read_text())
        except (OSError, ValueError, TypeError, KeyError) as err:
            raise ModelError(f"{path}: not a readable feature spec ({err})") from err

    def check_current(self) -> None:
        """Refuse ``truth_*`` features and a spec written by code with another feature list."""
        truth = [n for n in self.names if n.startswith("truth_")]
        if truth:
            raise ModelError(f"truth columns cannot be features (evaluation only): {truth}")
        if tuple(self.names) != FEATURES:
            raise ModelError(_diff("model's feature spec", self.names, FEATURES))

    def check_frame(self, frame: pd.DataFrame) -> np.ndarray:
        """Return ``frame`` as the model's float32 matrix, refusing missing, extra or
        reordered columns and wrong dtypes, each named."""
        cols = tuple(frame.columns)
        if cols != tuple(self.names):
            raise ModelError(_diff("feature columns", cols, self.names))
        bad = [f"{c}: dtype {frame[c].dtype}, expected {self.dtype}" for c in cols if str(frame[c].dtype) != self.dtype]
        if bad:
            raise ModelError("feature columns have wrong dtypes: " + "; ".join(bad))
        return np.ascontiguousarray(frame.to_numpy(dtype=np.float32))

    def check_matrix(self, X: np.ndarray) -> None:
        if X.ndim != 2 or X.shape[1] != len(self.names) or X.dtype != np.float32:
            raise ModelError(f"feature matrix must be float32 with {len(self.names)} columns "
                             f"({', '.join(self.names)}); got {X.dtype} {X.shape}")


def _diff(what: str, got: tuple[str, ...], want: tuple[str, ...]) -> str:
    missing = [c for c in want if c not in got]
    extra = [c for c in got if c not in want]
    parts = []
    if missing:
        parts.append(f"missing {missing}")
    if extra:
        parts.append(f"unexpected {extra}")
    if not missing and not extra:
        first = next(k for k, (a, b) in enumerate(zip(got, want)) if a != b)
        parts.append(f"shuffled: position {first} is {got[first]!r}, the model expects {want[first]!r}")
    return f"{what} do not match the model's feature spec: " + "; ".join(parts)
