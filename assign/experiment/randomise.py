"""Deterministic randomisation: (experiment salt, unit id) -> arm, by hashing.

``sha256(salt + ":" + unit id)`` -> the first 8 bytes as an integer / 2**64 -> a uniform
number u in [0, 1) -> the first arm whose cumulative weight exceeds u. The same salt and id
give the same arm on every machine and in every process, with no stored table; a new salt
re-randomises independently. Units: contact, customer, agent (hash their ids) and
switchback windows (hash ``site|window index``), with a burn-in after each switch that the
analysis excludes.

>>> arm_of("contact-17", salt="exp-1")
'control'
>>> arm_of("contact-17", salt="exp-1") == arm_of("contact-17", salt="exp-1")
True
"""
from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

import numpy as np
import pandas as pd

from assign.errors import InputError

UNITS = ("contact", "customer", "agent", "switchback")
DEFAULT_ARMS = ("control", "treatment")


def hash_uniform(salt: str, unit_id) -> float:
    """Uniform number in [0, 1) from sha256(salt:unit_id); 53 bits, exactly representable."""
    h = hashlib.sha256(f"{salt}:{unit_id}".encode()).digest()
    return (int.from_bytes(h[:8], "big") >> 11) / float(1 << 53)


def uniforms(salt: str, unit_ids: Iterable) -> np.ndarray:
    """Vectorised :func:`hash_uniform` (same numbers), without the per-call overhead."""
    base = hashlib.sha256(f"{salt}:".encode())
    out = []
    for i in unit_ids:
        h = base.copy()
        h.update(str(i).encode())
        out.append(int.from_bytes(h.digest()[:8], "big") >> 11)
    return np.asarray(out, dtype=np.float64) / float(1 << 53)


@lru_cache(maxsize=256)
def _cumulative(arms: tuple[str, ...], weights: tuple[float, ...] | None) -> tuple[float, ...]:
    problems = []
    if len(arms) < 2:
        problems.append(f"arms: need at least 2, got {len(arms)}")
    if len(set(arms)) != len(arms):
        problems.append(f"arms: duplicate names in {list(arms)}")
    if weights is None:
        weights = (1.0,) * len(arms)
    if len(weights) != len(arms):
        problems.append(f"weights: {len(weights)} given for {len(arms)} arms")
    elif any(not (isinstance(w, (int, float)) and math.isfinite(w) and w > 0) for w in weights):
        problems.append(f"weights: each must be a finite number > 0, got {list(weights)}")
    if problems:
        raise InputError(problems, what="randomisation")
    total = float(sum(weights))
    cum, acc = [], 0.0
    for w in weights:
        acc += w / total
        cum.append(acc)
    cum[-1] = 1.0
    return tuple(cum)


def arm_of(unit_id, *, salt: str, arms: Sequence[str] = DEFAULT_ARMS,
           weights: Sequence[float] | None = None) -> str:
    """The arm of one unit (a contact, customer or agent id, or a switchback window id).

    Cheap (one sha256, ~1 microsecond): meant to be called by the router at tick time.
    """
    arms = tuple(arms)
    cum = _cumulative(arms, None if weights is None else tuple(float(w) for w in weights))
    u = hash_uniform(salt, unit_id)
    for arm, c in zip(arms, cum):
        if u < c:
            return arm
    return arms[-1]


def arms_of(unit_ids: Iterable, *, salt: str, arms: Sequence[str] = DEFAULT_ARMS,
            weights: Sequence[float] | None = None) -> np.ndarray:
    """Vectorised :func:`arm_of` for many units: an object array of arm names."""
    arms = tuple(arms)
    cum = np.asarray(_cumulative(arms, None if weights is None else tuple(float(w) for w in weights)))
    u = uniforms(salt, unit_ids)
    idx = np.minimum(np.searchsorted(cum, u, side="right"), len(arms) - 1)
    return np.asarray(arms, dtype=object)[idx]


@dataclass(frozen=True)
class Switchback:
    """Switchback design: time is cut into windows of ``window_s`` seconds from ``origin``;
    each (site, window) is randomised by hashing ``site|index``. The first ``burn_in_s``
    seconds after a switch (the arm differs from the site's previous window) are flagged
    burn-in: the queue still carries the other arm's decisions there, so analysis drops them.
    """

    salt: str
    window_s: float
    burn_in_s: float = 0.0
    arms: tuple[str, ...] = DEFAULT_ARMS
    weights: tuple[float, ...] | None = None
    origin: pd.Timestamp = pd.Timestamp("1970-01-01", tz="UTC")  # noqa: RUF009 - immutable

    def __post_init__(self) -> None:
        problems = []
        if not (math.isfinite(self.window_s) and self.window_s > 0):
            problems.append(f"window_s: must be > 0, got {self.window_s}")
        if not (math.isfinite(self.burn_in_s) and 0 <= self.burn_in_s < self.window_s):
            problems.append(f"burn_in_s: must be in [0, window_s), got {self.burn_in_s}")
        if problems:
            raise InputError(problems, what="switchback design")
        _cumulative(tuple(self.arms), self.weights)

    def _seconds(self, at) -> float:
        return (pd.Timestamp(at).tz_convert("UTC") if pd.Timestamp(at).tzinfo else
                pd.Timestamp(at).tz_localize("UTC")).value / 1e9 - self.origin.value / 1e9

    def window_index(self, at) -> int:
        return int(math.floor(self._seconds(at) / self.window_s))

    def window_id(self, at, site: str = "all") -> str:
        return f"{site}|{self.window_index(at)}"

    def arm_of_window(self, index: int, site: str = "all") -> str:
        return arm_of(f"{site}|{index}", salt=self.salt, arms=self.arms, weights=self.weights)

    def arm_at(self, at, site: str = "all") -> str:
        """The arm in force at time ``at`` (a timestamp; naive means UTC) at ``site``."""
        return self.arm_of_window(self.window_index(at), site)

    def in_burn_in(self, at, site: str = "all") -> bool:
        s = self._seconds(at)
        k = int(math.floor(s / self.window_s))
        if s - k * self.window_s >= self.burn_in_s:
            return False
        return self.arm_of_window(k, site) != self.arm_of_window(k - 1, site)

    def label(self, seconds: np.ndarray, sites: np.ndarray | None = None) -> pd.DataFrame:
        """Vectorised labelling of events at ``seconds`` since ``origin``: window id, arm, burn-in."""
        seconds = np.asarray(seconds, dtype=np.float64)
        if sites is None:
            sites = np.full(seconds.shape, "all", dtype=object)
        sites = np.asarray(sites, dtype=object)
        k = np.floor(seconds / self.window_s).astype(np.int64)
        pairs = pd.unique(pd.Series([f"{s}|{i}" for s, i in zip(sites, k)]))
        prev = {p: f"{p.rsplit('|', 1)[0]}|{int(p.rsplit('|', 1)[1]) - 1}" for p in pairs}
        names = set(pairs) | set(prev.values())
        arm = {n: arm_of(n, salt=self.salt, arms=self.arms, weights=self.weights) for n in names}
        wid = np.array([f"{s}|{i}" for s, i in zip(sites, k)], dtype=object)
        arms = np.array([arm[w] for w in wid], dtype=object)
        switched = np.array([arm[w] != arm[prev[w]] for w in wid], dtype=bool)
        burn = switched & (seconds - k * self.window_s < self.burn_in_s)
        return pd.DataFrame({"window": wid, "arm": arms, "burn_in": burn})


class Assignment(NamedTuple):
    """One line of an assignment log: which unit got which arm, when, under which experiment."""

    experiment: str
    unit: str  # contact | customer | agent | switchback
    unit_id: str
    arm: str
    at: pd.Timestamp | None = None
    contact_id: str | None = None
    burn_in: bool = False


class AssignmentLog:
    """Append-only record of assignments, turned into a DataFrame (or file) at the edge."""

    def __init__(self) -> None:
        self._rows: list[Assignment] = []

    def record(self, *, experiment: str, unit: str, unit_id, arm: str, at=None,
               contact_id=None, burn_in: bool = False) -> Assignment:
        if unit not in UNITS:
            raise InputError([f"unit: must be one of {UNITS}, got {unit!r}"], what="assignment")
        row = Assignment(experiment, unit, str(unit_id), arm, at,
                         None if contact_id is None else str(contact_id), bool(burn_in))
        self._rows.append(row)
        return row

    def __len__(self) -> int:
        return len(self._rows)

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self._rows, columns=Assignment._fields)

    def write(self, path) -> None:
        df = self.to_frame()
        if str(path).endswith(".parquet"):
            df.to_parquet(path, index=False)
        else:
            df.to_csv(path, index=False)
