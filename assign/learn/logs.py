"""Decisions and outcomes as data: two logs, joinable on ``decision_id``.

A tick's decisions are known when it returns; their outcomes arrive later and separately,
each with the time it became known (handle time at wrap-up, CSAT when a survey is answered,
resolution when the 72 h repeat window closes). Both logs are Parquet directories
partitioned by day (``day=YYYY-MM-DD/part-NNNNN.parquet``, Hive style, the day of ``at``
for decisions and of ``known_at`` for outcomes), so a day is appended to and read alone.

Columns (the ``decisions`` / ``outcomes`` tables of ``docs/ope.md``'s ``assign.ope-log/1``
plus what a live log needs):

- decisions: ``decision_id, window_id, at, model_version, contact_id, agent_id, intent,
  score, value, explored, propensity``. ``window_id`` is the tick's snapshot id.
  ``propensity`` is NaN until the off-path estimate is known (see :meth:`LogSink.decisions`).
- outcomes: ``decision_id, known_at, agent_id, intent, resolved, csat, handle_s`` (+
  ``truth_p_resolved`` from the simulator); one row per outcome event, NaN for what that
  event does not carry. :func:`outcome_table` collapses them to one row per decision (the
  OPE ``outcomes`` table).
"""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pandas as pd

from assign.errors import InputError

DECISION_COLUMNS = ("decision_id", "window_id", "at", "model_version", "contact_id", "agent_id", "intent", "score",
                    "value", "explored", "propensity")
OUTCOME_COLUMNS = ("decision_id", "known_at", "agent_id", "intent", "resolved", "csat", "handle_s")
OUTCOME_VALUES = ("resolved", "csat", "handle_s")


def check_outcomes(frame: pd.DataFrame, *, where: str = "outcomes") -> pd.DataFrame:
    """The outcome frame conformed (UTC ``known_at``, float values), or :class:`InputError`
    naming every problem: missing columns, null ids or times, rows that carry no outcome."""
    if not isinstance(frame, pd.DataFrame):
        raise InputError([f"{where}: expected a pandas DataFrame, got {type(frame).__name__}"], what="outcomes")
    problems = [f"{where}: missing column {c!r}" for c in OUTCOME_COLUMNS if c not in frame.columns]
    if problems:
        raise InputError(problems, what="outcomes")
    out = frame.copy()
    for c in ("decision_id", "agent_id", "intent"):
        bad = np.flatnonzero(out[c].isna().to_numpy())
        if len(bad):
            problems.append(f"{where}.{c}: null at rows {bad[:10].tolist()}")
    try:
        out["known_at"] = pd.to_datetime(out["known_at"], utc=True)
    except (ValueError, TypeError) as err:
        problems.append(f"{where}.known_at: not a time ({err})")
    else:
        bad = np.flatnonzero(out["known_at"].isna().to_numpy())
        if len(bad):
            problems.append(f"{where}.known_at: null at rows {bad[:10].tolist()}")
    for c in OUTCOME_VALUES:
        out[c] = pd.to_numeric(out[c], errors="coerce").astype("float64")
    empty = np.flatnonzero(out[list(OUTCOME_VALUES)].isna().all(axis=1).to_numpy())
    if len(empty):
        problems.append(f"{where}: rows {empty[:10].tolist()} carry no outcome (resolved, csat, handle_s all null)")
    res = out["resolved"].to_numpy()
    bad = np.flatnonzero(np.isfinite(res) & (res != 0) & (res != 1))
    if len(bad):
        problems.append(f"{where}.resolved: not 0/1 at rows {bad[:10].tolist()}")
    if problems:
        raise InputError(problems, what="outcomes")
    return out.reset_index(drop=True)


class LogSink:
    """Where a router's decisions and outcomes go. Override both methods; the router calls
    :meth:`decisions` after each tick and :meth:`outcomes` from ``Router.observe``."""

    def decisions(self, frame: pd.DataFrame) -> None:
        """One tick's decisions (:data:`DECISION_COLUMNS`)."""

    def outcomes(self, frame: pd.DataFrame) -> None:
        """A batch of outcome events (:data:`OUTCOME_COLUMNS`)."""


class MemorySink(LogSink):
    """Keeps every frame in memory (tests, the simulator); thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._d: list[pd.DataFrame] = []
        self._o: list[pd.DataFrame] = []

    def decisions(self, frame: pd.DataFrame) -> None:
        with self._lock:
            self._d.append(frame)

    def outcomes(self, frame: pd.DataFrame) -> None:
        with self._lock:
            self._o.append(frame)

    def decision_frame(self) -> pd.DataFrame:
        with self._lock:
            return _concat(self._d, DECISION_COLUMNS)

    def outcome_frame(self) -> pd.DataFrame:
        with self._lock:
            return _concat(self._o, OUTCOME_COLUMNS)

    def write(self, path: str | Path) -> Path:
        """Both logs under ``path`` (``decisions/``, ``outcomes/``), partitioned by day."""
        p = Path(path)
        write_partitioned(self.decision_frame(), p / "decisions", time_column="at")
        write_partitioned(self.outcome_frame(), p / "outcomes", time_column="known_at")
        return p


class ParquetSink(LogSink):
    """Appends each frame to the day partitions under ``path`` as it comes."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def decisions(self, frame: pd.DataFrame) -> None:
        with self._lock:
            write_partitioned(frame, self.path / "decisions", time_column="at")

    def outcomes(self, frame: pd.DataFrame) -> None:
        with self._lock:
            write_partitioned(frame, self.path / "outcomes", time_column="known_at")


def _concat(frames: list[pd.DataFrame], columns: tuple[str, ...]) -> pd.DataFrame:
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame({c: [] for c in columns})
    return pd.concat(frames, ignore_index=True)


def write_partitioned(frame: pd.DataFrame, path: Path, *, time_column: str) -> None:
    """Append ``frame`` to ``path/day=YYYY-MM-DD/part-NNNNN.parquet`` by the UTC day of
    ``time_column`` (new part files: nothing written before is rewritten)."""
    if not len(frame):
        return
    day = pd.to_datetime(frame[time_column], utc=True).dt.strftime("%Y-%m-%d")
    for d, part in frame.groupby(day.to_numpy(), sort=True):
        folder = path / f"day={d}"
        folder.mkdir(parents=True, exist_ok=True)
        n = len(list(folder.glob("part-*.parquet")))
        part.reset_index(drop=True).to_parquet(folder / f"part-{n:05d}.parquet", index=False)


def read_partitioned(path: str | Path, *, days: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Every part file under ``path`` (or only the ``days`` given), in day then part order."""
    p = Path(path)
    files = sorted(p.glob("day=*/part-*.parquet"))
    if days is not None:
        files = [f for f in files if f.parent.name.removeprefix("day=") in days]
    if not files:
        raise InputError([f"{p}: no day partitions (day=YYYY-MM-DD/part-*.parquet)"], what="log")
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


def outcome_table(events: pd.DataFrame) -> pd.DataFrame:
    """One row per decision: each outcome value from the event that carried it (the last
    known when several did), and ``known_at`` of the latest event."""
    ev = events.sort_values(["decision_id", "known_at"], kind="stable")
    cols = [c for c in (*OUTCOME_VALUES, "truth_p_resolved") if c in ev.columns]
    g = ev.groupby("decision_id", sort=True)
    out = g[cols].last()  # last non-null per column
    out["known_at"] = g["known_at"].max()
    return out.reset_index()


def join_logs(decisions: pd.DataFrame, outcome_events: pd.DataFrame) -> pd.DataFrame:
    """Decisions with their outcomes (left join on ``decision_id``; NaN where none known yet)."""
    dup = decisions["decision_id"].duplicated()
    if dup.any():
        raise InputError([f"decisions.decision_id: duplicated {decisions['decision_id'][dup].iloc[:5].tolist()}"],
                         what="log")
    return decisions.merge(outcome_table(outcome_events), on="decision_id", how="left", validate="one_to_one",
                           suffixes=("", "_outcome"))
