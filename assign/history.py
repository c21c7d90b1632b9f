"""History contract: one row per contact, as logged in production or made by the simulator.

Real logs fill what they have and leave the rest empty (null); synthetic histories also
carry ``truth_*`` columns, the hidden outcome model's expectations, which exist for
evaluation only and are refused as model features.

Stored as Parquet (``assign.io`` / ``pandas.read_parquet``); agents' attributes at the time
of the contact are in the row (``agent_*``), so no join is needed to build features.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from assign.constants import REPEAT_WINDOW_S
from assign.errors import InputError

SCHEMA = "assign.history/1"


@dataclass(frozen=True)
class Column:
    name: str
    dtype: str  # pandas dtype the loader coerces to
    required: bool
    doc: str


COLUMNS: tuple[Column, ...] = (
    Column("contact_id", "string", True, "unique id of the contact"),
    Column("arrival_at", "datetime64[ns, UTC]", True, "when the contact joined the queue"),
    Column("channel", "string", True, "voice | chat | email"),
    Column("intent", "string", True, "why the customer called (real logs: the service type)"),
    Column("language", "string", False, "ISO 639-1 code of the customer's language"),
    Column("complexity", "float64", False, "0..1"),
    Column("urgency", "float64", False, "0..1"),
    Column("sentiment", "float64", False, "-1..1 at arrival"),
    Column("style", "string", False, "customer's communication style"),
    Column("customer_id", "string", False, "null when the caller was not identified"),
    Column("customer_tier", "string", False, "e.g. regular | priority"),
    Column("agent_id", "string", False, "agent who served it; null when abandoned"),
    Column("agent_tenure_days", "float64", False, "agent's tenure when serving"),
    Column("agent_proficiency", "float64", False, "agent's proficiency on this intent when serving"),
    Column("agent_sentiment_handling", "float64", False, "0..1"),
    Column("agent_style", "string", False, "agent's communication style"),
    Column("agent_languages", "string", False, "languages the agent speaks, ';'-separated"),
    Column("agent_load", "float64", False, "agent's concurrent contacts when this one started"),
    Column("wait_s", "float64", True, "seconds in queue until answered or abandoned"),
    Column("abandoned", "boolean", True, "hung up before being answered"),
    Column("handle_s", "float64", False, "handle time in seconds; null when abandoned"),
    Column("resolved", "boolean", False, "resolved (synthetic) or not repeated within 72 h (real)"),
    Column("csat", "float64", False, "satisfaction 1..5; null when not surveyed"),
    Column("repeat_72h", "boolean", False, "same identified customer contacted again within 72 h"),
    Column("propensity", "float64", False, "probability the logging policy gave the logged agent"),
    Column("truth_p_resolved", "float64", False, "synthetic only: true resolution probability"),
    Column("truth_csat", "float64", False, "synthetic only: true expected CSAT"),
    Column("truth_handle_s", "float64", False, "synthetic only: true expected handle time"),
)
COLUMN_NAMES = tuple(c.name for c in COLUMNS)
TRUTH_COLUMNS = tuple(c.name for c in COLUMNS if c.name.startswith("truth_"))


def conform_history(df: pd.DataFrame) -> pd.DataFrame:
    """Return ``df`` with every contract column present (missing optional ones as nulls) and
    coerced to its dtype; extra columns are kept after the contract's. Raises
    :class:`InputError` naming every missing required column or uncoercible one."""
    problems = [f"history.{c.name}: required column is missing" for c in COLUMNS
                if c.required and c.name not in df.columns]
    out = {}
    for c in COLUMNS:
        if c.name not in df.columns:
            out[c.name] = pd.Series([None] * len(df), index=df.index, dtype="object").astype(
                "float64" if c.dtype in ("float64", "datetime64[ns, UTC]") else c.dtype)
            if c.dtype.startswith("datetime"):
                out[c.name] = pd.to_datetime(out[c.name], utc=True)
            continue
        try:
            out[c.name] = _coerce(df[c.name], c, problems)
        except (TypeError, ValueError, OverflowError) as err:
            problems.append(f"history.{c.name}: cannot be read as {c.dtype}: {str(err)[:200]}")
    if problems:
        raise InputError(problems, what="history")
    extra = [k for k in df.columns if k not in COLUMN_NAMES]
    res = pd.DataFrame(out, index=df.index)
    for k in extra:
        res[k] = df[k]
    return res.reset_index(drop=True)


def _coerce(s: pd.Series, c: Column, problems: list[str]) -> pd.Series:
    """One column to its contract dtype. Numbers in a time column are epoch seconds (as
    :func:`epoch_seconds` writes them), never nanoseconds: read as nanoseconds, every arrival
    would fall on 1 January 1970 and training would still "succeed". Infinite numbers are a
    problem (NaN is missing, which the contract allows)."""
    if c.dtype.startswith("datetime"):
        if pd.api.types.is_bool_dtype(s):
            raise TypeError("booleans are not times")
        if pd.api.types.is_numeric_dtype(s):
            x = s.astype("float64")
            if not np.isfinite(x.dropna()).all():
                raise ValueError("infinite epoch seconds")
            out = pd.to_datetime(x, unit="s", utc=True)
        else:
            out = pd.to_datetime(s, utc=True)
        out = out.dt.as_unit("ns")
        if c.required and out.isna().any():
            problems.append(f"history.{c.name}: {int(out.isna().sum())} missing time(s), first at row "
                            f"{int(np.flatnonzero(out.isna().to_numpy())[0])}")
        return out
    out = s.astype(c.dtype)
    if c.dtype == "float64":
        bad = np.isinf(out.to_numpy(dtype="float64", na_value=np.nan))
        if bad.any():
            problems.append(f"history.{c.name}: {int(bad.sum())} infinite value(s), first at row "
                            f"{int(np.flatnonzero(bad)[0])}")
    return out


def epoch_seconds(ts: pd.Series) -> np.ndarray:
    """Seconds since 1970 (float) of a datetime column, whatever its unit (ns, us, ms, s):
    the one conversion (pandas 3 may hold microseconds, so never ``.astype("int64")``)."""
    return pd.to_datetime(ts, utc=True).dt.as_unit("ns").astype("int64").to_numpy() / 1e9


def history_repeats(hist: pd.DataFrame, *, window_s: float = REPEAT_WINDOW_S) -> pd.Series:
    """:func:`repeat_within` over a history frame's ``customer_id`` and ``arrival_at``."""
    return pd.Series(repeat_within(hist["customer_id"], epoch_seconds(hist["arrival_at"]), window_s=window_s),
                     index=hist.index)


def repeat_within(customer_id: Any, arrival_s: np.ndarray, *,
                  window_s: float = REPEAT_WINDOW_S) -> pd.arrays.BooleanArray:
    """Whether the same identified customer contacts again within ``window_s`` of this
    contact's arrival (any later contact counts, served or abandoned): the one repeat rule.

    Null (unknown) when the customer is unidentified (None or NaN), and when no later
    contact is seen but the window runs past the last arrival in the log (right-censored:
    the log ends before the answer is known). Ties in time count as a repeat of the earlier
    row.

    >>> repeat_within(np.array(["a", "a", None, "b"], dtype=object), np.array([0.0, 50.0, 60.0, 500.0]),
    ...               window_s=100.0).tolist()
    [True, False, <NA>, <NA>]
    """
    cust = pd.Series(np.asarray(customer_id, dtype=object))
    t = np.asarray(arrival_s, dtype=np.float64)
    out = pd.array([pd.NA] * len(t), dtype="boolean")
    ident = cust.notna().to_numpy()
    if not ident.any():
        return out
    log_end = t.max()
    sub = pd.DataFrame({"c": cust.to_numpy()[ident], "t": t[ident], "i": np.flatnonzero(ident)}).sort_values(
        ["c", "t", "i"], kind="stable")
    nxt = sub.groupby("c", sort=False)["t"].shift(-1).to_numpy()
    has_next = ~np.isnan(nxt)
    gap = np.where(has_next, nxt - sub["t"].to_numpy(), np.inf)
    val = pd.array(gap <= window_s, dtype="boolean")
    val[~has_next & (sub["t"].to_numpy() + window_s > log_end)] = pd.NA
    out[sub["i"].to_numpy()] = val
    return out


def has_truth(df: pd.DataFrame) -> bool:
    """True when the history carries the synthetic truth columns (filled)."""
    return all(k in df.columns for k in TRUTH_COLUMNS) and bool(np.isfinite(df["truth_p_resolved"].astype(float)).any())
