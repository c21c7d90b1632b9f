"""Externally valued pairs: users bring their own model as ``contact_id, agent_id, value`` rows.

The listed pairs become the only candidates with exactly those values. Every problem is
reported at once with its row (``values[3].agent_id: unknown agent 'a9'``).
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from assign.errors import SnapshotError
from assign.schema import Snapshot

VALUE_COLUMNS = ("contact_id", "agent_id", "value")
#: Largest magnitude of a pair value: sums over a tick stay finite and exact to float64 use.
MAX_ABS_VALUE = 1e15
MAX_PROBLEMS = 50


def values_frame(values: Any) -> pd.DataFrame:
    """Accept a DataFrame, a list of records/tuples, or a mapping {(contact_id, agent_id): value}."""
    if isinstance(values, pd.DataFrame):
        return values
    if isinstance(values, Mapping):
        return pd.DataFrame([(c, a, v) for (c, a), v in values.items()], columns=list(VALUE_COLUMNS))
    rows = list(values)
    if rows and isinstance(rows[0], Mapping):
        return pd.DataFrame(rows)
    return pd.DataFrame(rows, columns=list(VALUE_COLUMNS))


def resolve_values(snapshot: Snapshot, values: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Map value rows to (contact row, agent row, value) arrays of the snapshot, validated."""
    df = values_frame(values)
    missing = [k for k in VALUE_COLUMNS if k not in df.columns]
    if missing:
        raise SnapshotError([f"values: missing column {k!r}" for k in missing], what="values")
    c_pos = {cid: i for i, cid in enumerate(snapshot.contacts.ids)}
    a_pos = {aid: j for j, aid in enumerate(snapshot.agents.ids)}
    problems: list[str] = []
    ci = np.empty(len(df), dtype=np.int64)
    ai = np.empty(len(df), dtype=np.int64)
    v = np.empty(len(df), dtype=np.float64)
    first: dict[tuple[int, int], int] = {}
    for r, (cid, aid, val) in enumerate(zip(df["contact_id"], df["agent_id"], df["value"])):
        if len(problems) >= MAX_PROBLEMS:
            problems.append(f"values: more problems after row {r} not listed")
            break
        i = _lookup(problems, f"values[{r}].contact_id", cid, c_pos, "contact")
        j = _lookup(problems, f"values[{r}].agent_id", aid, a_pos, "agent")
        try:
            if isinstance(val, (bool, np.bool_)):
                raise TypeError(val)
            x = float(val)
        except (TypeError, ValueError, OverflowError):
            problems.append(f"values[{r}].value: expected a number, got {_short(val)}")
            x = 0.0
        else:
            if math.isnan(x) or math.isinf(x):
                problems.append(f"values[{r}].value: must be finite, got {_short(val)}")
            elif abs(x) > MAX_ABS_VALUE:
                problems.append(f"values[{r}].value: {x:g} exceeds the limit of {MAX_ABS_VALUE:g} in magnitude")
        if i >= 0 and j >= 0:
            prev = first.setdefault((i, j), r)
            if prev != r:
                problems.append(f"values[{r}]: duplicate pair ({cid!r}, {aid!r}) (first at values[{prev}])")
        ci[r], ai[r], v[r] = i, j, x
    if problems:
        raise SnapshotError(problems, what="values")
    return ci, ai, v


def _short(x: Any) -> str:
    r = repr(x)
    return r if len(r) <= 40 else r[:37] + "..."


def _lookup(problems: list[str], path: str, x: Any, pos: dict[Any, int], what: str) -> int:
    """Row of id ``x``; a missing, blank or non-text id is a problem, never the name "nan"."""
    if isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_)):
        x = str(x)
    if not isinstance(x, str) or not x.strip():
        problems.append(f"{path}: missing or blank id ({_short(x)})")
        return -1
    i = pos.get(x, -1)
    if i < 0:
        problems.append(f"{path}: unknown {what} {_short(x)}")
    return i
