"""A run's per-contact log in the history contract (``assign.history``), so a simulated
history can train the next model. Extra columns: ``status`` (served | abandoned | unserved),
``policy``, ``seed`` and, for split runs, ``arm``."""
from __future__ import annotations

import numpy as np
import pandas as pd

from assign.constants import DAY_S
from assign.history import conform_history, repeat_within
from assign.schema import CHANNELS
from assign.sim.engine import ABANDONED, SERVED, STATUS_NAMES, RunResult


def _names(vocab: tuple[str, ...], codes: np.ndarray) -> np.ndarray:
    arr = np.asarray(list(vocab) + [None], dtype=object)
    return arr[np.where(codes >= 0, codes, len(vocab))]


def to_history(run: RunResult, *, source) -> pd.DataFrame:
    """The run as a history DataFrame (contract columns first, conformed)."""
    st, b, ag = run.stream, run.stream.block, source.agents
    served = run.status == SERVED
    a = run.agent
    aa = np.where(served, a, 0)
    start = pd.Timestamp(source.start)
    if start.tzinfo is None:
        start = start.tz_localize("UTC")

    def agent_col(values: np.ndarray, *, dtype=float) -> np.ndarray:
        out = np.asarray(values[aa], dtype=object if dtype is object else float)
        if dtype is object:
            out = out.copy()
            out[~served] = None
        else:
            out = np.where(served, out, np.nan)
        return out

    langs = np.array([";".join(source.languages[k] for k in np.flatnonzero(row)) for row in ag.speaks], dtype=object)
    style_names = _names(source.styles, ag.style)
    prof = np.where(served, ag.skill[aa, b.intent], np.nan)
    df = pd.DataFrame({
        "contact_id": b.ids,
        "arrival_at": start + pd.to_timedelta(st.arrival_s, unit="s"),
        "channel": np.asarray(CHANNELS, dtype=object)[b.channel],
        "intent": _names(source.intents, b.intent),
        "language": _names(source.languages, b.language),
        "complexity": b.complexity, "urgency": b.urgency, "sentiment": b.sentiment,
        "style": _names(source.styles, b.style),
        "customer_id": b.customer_id, "customer_tier": b.customer_tier,
        "agent_id": agent_col(ag.ids, dtype=object),
        "agent_tenure_days": np.where(served, np.maximum(source.tenure_at_start()[aa] + st.arrival_s / DAY_S, 0.0),
                                      np.nan),
        "agent_proficiency": prof,
        "agent_sentiment_handling": agent_col(ag.sentiment_handling),
        "agent_style": agent_col(style_names, dtype=object),
        "agent_languages": agent_col(langs, dtype=object),
        "agent_load": run.agent_load,
        "wait_s": run.wait_s,
        "abandoned": run.status == ABANDONED,
        "handle_s": run.handle_s,
        "resolved": pd.array(np.where(np.isnan(run.resolved), None, run.resolved == 1.0), dtype="boolean"),
        "csat": run.csat,
        "repeat_72h": repeat_within(b.customer_id, st.arrival_s),
        "truth_p_resolved": run.truth_p_resolved, "truth_csat": run.truth_csat,
        "truth_handle_s": run.truth_handle_s,
    })
    out = conform_history(df)
    out["status"] = np.asarray([STATUS_NAMES[int(s)] for s in run.status], dtype=object)
    out["policy"] = run.policy
    out["seed"] = run.seed
    if run.arm is not None:
        out["arm"] = run.arm
    return out
