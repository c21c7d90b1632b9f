"""Warm start: a history the centre already has, as outcome events for the live estimates.

A centre that starts learning online is not empty: its tenured agents have a history (the
one a frozen model is trained on). :func:`history_outcomes` turns a history (the history
contract, ``assign.history``) into outcome events, each known when its contact arrived
shifted by ``shift``, so a history of the days before a run can be folded in before the run
starts (and is forgotten at the live object's half-life like any outcome).
"""
from __future__ import annotations

import numpy as np
import pandas as pd


def history_outcomes(history: pd.DataFrame, *, shift: pd.Timedelta | None = None) -> pd.DataFrame:
    """Outcome events (``assign.learn.logs`` columns) of the served rows of ``history`` that
    carry an outcome: ``decision_id`` = contact id, ``known_at`` = arrival + ``shift``."""
    shift = pd.Timedelta(0) if shift is None else shift
    served = history["agent_id"].notna().to_numpy()
    h = history.loc[served]
    res = pd.to_numeric(h["resolved"], errors="coerce").astype("float64")
    csat = pd.to_numeric(h["csat"], errors="coerce").astype("float64")
    handle = pd.to_numeric(h["handle_s"], errors="coerce").astype("float64")
    frame = pd.DataFrame({"decision_id": h["contact_id"].astype(str).to_numpy(),
                          "known_at": pd.to_datetime(h["arrival_at"], utc=True).to_numpy() + shift,
                          "agent_id": h["agent_id"].astype(str).to_numpy(),
                          "intent": h["intent"].astype(str).to_numpy(),
                          "resolved": res.to_numpy(), "csat": csat.to_numpy(), "handle_s": handle.to_numpy()})
    keep = np.isfinite(frame[["resolved", "csat", "handle_s"]].to_numpy()).any(axis=1)
    return frame.loc[keep].reset_index(drop=True)
