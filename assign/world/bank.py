"""Adapter for the "Anonymous Bank" call-centre log (Guedj & Mandelbaum, Technion).

Reads the tab-separated 17-column log into the history contract (:mod:`assign.history`).
Every line is accounted for: good records become history rows, PHANTOM calls (the log's
own "ignore" marker) are kept out of the history but listed and counted, and malformed
lines are quarantined with their line number, raw text and every reason found.

Times: the log holds the bank's local wall clock (Israel) without a zone. They are stored
*as if* they were UTC (no shift), so ``arrival_at.dt.hour`` and the day of week read as the
bank's local clock; do not convert them to another zone.
"""
from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from assign.constants import DAY_S
from assign.errors import InputError
from assign.history import conform_history, history_repeats
from assign.world.ingest import IngestResult, Ledger

__all__ = ["IngestResult", "read_anonymous_bank"]

FORMAT = "anonymous-bank"
HEADER = ("vru+line", "call_id", "customer_id", "priority", "type", "date", "vru_entry",
          "vru_exit", "vru_time", "q_start", "q_exit", "q_time", "outcome", "ser_start",
          "ser_exit", "ser_time", "server")
TYPES = ("PS", "PE", "IN", "NE", "NW", "TT")
OUTCOMES = ("AGENT", "HANG", "PHANTOM")
NO_SERVER = "NO_SERVER"
# Clock skew tolerated between consecutive stamps of one call (the log has VRU exits up
# to 79 s before the VRU entry); anything larger is read as crossing midnight.
_SKEW_S = 3600
_DAY_S = int(DAY_S)  # whole seconds: the log's stamps are integers

_RE_TIME = re.compile(r"^(\d{1,2}):(\d{2}):(\d{2})$")
_RE_UINT = re.compile(r"^\d+$")
_RE_DUR = re.compile(r"^\d{1,9}$")       # durations: at most 9 digits, never overflows int64
_RE_SDUR = re.compile(r"^-?\d{1,9}$")
_RE_EXP = re.compile(r"^\d+(\.\d+)?[eE][+-]?\d+$")
_RE_TOKEN = re.compile(r"^\S+$")
_TIME_FIELDS = ("vru_entry", "vru_exit", "q_start", "q_exit", "ser_start", "ser_exit")
_IDX = {name: i for i, name in enumerate(HEADER)}


def _time_s(text: str) -> int | None:
    m = _RE_TIME.match(text)
    if not m:
        return None
    h, mi, s = (int(g) for g in m.groups())
    if h > 23 or mi > 59 or s > 59:
        return None
    return h * 3600 + mi * 60 + s


def _check_line(f: list[str]) -> list[tuple[str, str]]:
    """Every problem of one 17-field line as (code, message); empty when the line is good."""
    bad: list[tuple[str, str]] = []
    g = {name: f[i] for name, i in _IDX.items()}
    for name in ("vru+line", "server"):
        if not _RE_TOKEN.match(g[name]):
            bad.append(("bad_token", f"{name} {g[name]!r} is empty or holds a space"))
    if not _RE_UINT.match(g["call_id"]):
        bad.append(("bad_call_id", f"call_id {g['call_id']!r} is not a non-negative integer"))
    cid = g["customer_id"]
    if not (_RE_UINT.match(cid) or _RE_EXP.match(cid)):
        bad.append(("bad_customer_id", f"customer_id {cid!r} is neither an integer nor exponent form"))
    if g["priority"] not in ("0", "1", "2"):
        bad.append(("bad_priority", f"priority {g['priority']!r} is not 0, 1 or 2"))
    if g["type"] not in TYPES:
        bad.append(("bad_type", f"type {g['type']!r} is not one of {', '.join(TYPES)}"))
    try:
        if not re.fullmatch(r"\d{6}", g["date"]):
            raise ValueError
        datetime.strptime(g["date"], "%y%m%d")
    except ValueError:
        bad.append(("bad_date", f"date {g['date']!r} is not a valid YYMMDD date"))
    secs = {}
    for name in _TIME_FIELDS:
        secs[name] = _time_s(g[name])
        if secs[name] is None:
            bad.append(("bad_time", f"{name} {g[name]!r} is not a valid H:MM:SS time"))
    durs = {}
    for name, rx in (("vru_time", _RE_SDUR), ("q_time", _RE_DUR), ("ser_time", _RE_DUR)):
        if rx.match(g[name]):
            durs[name] = int(g[name])
        else:
            bad.append(("bad_duration", f"{name} {g[name]!r} is not an integer number of seconds"))
    if g["outcome"] not in OUTCOMES:
        bad.append(("bad_outcome", f"outcome {g['outcome']!r} is not one of {', '.join(OUTCOMES)}"))
    for name, lo, hi in (("vru_time", -_SKEW_S, _DAY_S), ("q_time", 0, _DAY_S), ("ser_time", 0, _DAY_S)):
        if name in durs and not lo <= durs[name] < hi:
            bad.append(("bad_duration", f"{name} {durs[name]} s is outside {lo}..{hi - 1} s (a call within a day)"))
    if bad:
        return bad
    # Durations must agree with the clock stamps (modulo a day: calls cross midnight).
    if (secs["vru_exit"] - secs["vru_entry"] - durs["vru_time"]) % _DAY_S:
        bad.append(("inconsistent", f"vru_time {durs['vru_time']} != vru_exit - vru_entry"))
    if secs["q_start"] and (secs["q_exit"] - secs["q_start"] - durs["q_time"]) % _DAY_S:
        bad.append(("inconsistent", f"q_time {durs['q_time']} != q_exit - q_start"))
    if not secs["q_start"] and durs["q_time"]:
        bad.append(("inconsistent", f"q_time {durs['q_time']} > 0 but the call never queued (q_start 0:00:00)"))
    if g["outcome"] == "AGENT" and (secs["ser_exit"] - secs["ser_start"] - durs["ser_time"]) % _DAY_S:
        bad.append(("inconsistent", f"ser_time {durs['ser_time']} != ser_exit - ser_start"))
    return bad


def _split_problem(line: str, fields: list[str]) -> tuple[str, str]:
    n = len(fields)
    if n < len(HEADER):
        spaced = [i for i, v in enumerate(fields) if " " in v.strip()]
        hint = ""
        if spaced:
            i = spaced[0]
            hint = f"; field {i + 1} {fields[i]!r} holds a space (a space where a tab belongs?)"
        return "missing_fields", f"{n} tab-separated fields, expected {len(HEADER)}{hint}"
    return "stray_fields", f"{n} tab-separated fields, expected {len(HEADER)} (stray fields)"


def read_anonymous_bank(path: str | Path) -> IngestResult:
    """Parse one Anonymous Bank log file into the history contract.

    Raises :class:`InputError` when the file is missing or its header is not the format's;
    malformed data lines never raise: they are quarantined with their reasons.
    """
    path = Path(path)
    lines = _read_lines(path)
    ledger = Ledger(lines_read=len(lines) - 1)
    good, good_lines = _sort_lines(lines, ledger)
    history, derived = _derive(good, good_lines)
    counts = ledger.counts(kept=len(history), file=str(path), excluded_key="phantom_excluded")
    counts["kept_by_outcome"] = {"AGENT": int((~history["abandoned"]).sum()), "HANG": int(history["abandoned"].sum())}
    counts.update(derived)
    q, e = ledger.frames()
    return IngestResult(history=history, quarantine=q, excluded=e, counts=counts, excluded_name="phantom")


def _read_lines(path: Path) -> list[str]:
    """The file's lines (header first); refuses a missing file, an empty one, a wrong header."""
    if not path.is_file():
        raise InputError([f"{path}: no such file"], what="anonymous-bank log")
    raw = path.read_bytes().decode("utf-8", errors="replace")
    lines = raw.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the newline that ends the last line does not open another one
    if not lines:
        raise InputError([f"{path}: empty file, expected the header line"], what="anonymous-bank log")
    header = lines[0].rstrip("\r").split("\t")
    if tuple(h.strip() for h in header) != HEADER:
        raise InputError([(f"{path} line 1: header {header!r} is not the Anonymous Bank header "
                          f"{list(HEADER)!r}")], what="anonymous-bank log")
    return lines


def _sort_lines(lines: list[str], ledger: Ledger) -> tuple[list[list[str]], list[int]]:
    """Good data lines (as fields) and their line numbers; the rest go to ``ledger``."""
    good: list[list[str]] = []
    good_lines: list[int] = []
    seen: dict[str, int] = {}
    for lineno, text in enumerate(lines[1:], start=2):
        text = text.rstrip("\r")
        if not text.strip():
            ledger.quarantine(lineno, [("blank", "blank line")], text)
            continue
        fields = text.split("\t")
        if len(fields) != len(HEADER):
            ledger.quarantine(lineno, [_split_problem(text, fields)], text)
            continue
        fields = [v.strip() for v in fields]
        bad = _check_line(fields)
        key = f"{fields[0]}-{fields[1]}"
        if not bad and key in seen:
            bad = [("duplicate", f"call {key} already read on line {seen[key]}")]
        if bad:
            ledger.quarantine(lineno, bad, text)
            continue
        seen[key] = lineno
        if fields[_IDX["outcome"]] == "PHANTOM":
            ledger.exclude(lineno, key, "PHANTOM (the log's own ignore marker)", text)
            continue
        good.append(fields)
        good_lines.append(lineno)
    return good, good_lines


def _wrap(delta: np.ndarray) -> np.ndarray:
    """Signed seconds from one clock stamp to the next, reading a big backwards jump as
    crossing midnight and a small one as clock skew."""
    return (delta + _SKEW_S) % _DAY_S - _SKEW_S


def _chain_times(df: pd.DataFrame) -> dict[str, np.ndarray]:
    """Seconds since each call's date at midnight of its arrival, answer and end, chained
    stamp to stamp so a call that crosses midnight at any step lands on the next day."""
    n = len(df)
    sec = {name: df[name].map(_time_s).to_numpy(dtype=np.int64) if n else np.zeros(0, np.int64)
           for name in _TIME_FIELDS}
    vru_s = df["vru_time"].astype(np.int64).to_numpy()
    q_s = df["q_time"].astype(np.int64).to_numpy()
    ser_s = df["ser_time"].astype(np.int64).to_numpy()
    served = (df["outcome"] == "AGENT").to_numpy()
    entered_queue = sec["q_start"] > 0

    # Seconds since the call's date at midnight, chained stamp to stamp so a call that
    # crosses midnight at any step lands on the next day.
    t_ve = sec["vru_entry"]
    t_vx = t_ve + vru_s
    t_qs = np.where(entered_queue, t_vx + _wrap(sec["q_start"] - sec["vru_exit"]), t_vx)
    t_qx = t_qs + q_s
    # Some served calls carry no service stamps at all (0:00:00, 0 s): answered when the
    # queue was left, handle time unknown.
    stamped = served & ((sec["ser_start"] > 0) | (ser_s > 0))
    t_ss = np.where(entered_queue, t_qx + _wrap(sec["ser_start"] - sec["q_exit"]),
                    t_vx + _wrap(sec["ser_start"] - sec["vru_exit"]))
    t_ss = np.where(stamped, t_ss, t_qx)
    t_arr = np.where(entered_queue, t_qs, t_vx)
    t_end = np.where(stamped, t_ss + ser_s, t_qx)
    return {"vru_s": vru_s, "q_s": q_s, "ser_s": ser_s, "served": served, "entered_queue": entered_queue,
            "stamped": stamped, "t_arr": t_arr, "t_ss": t_ss, "t_end": t_end}


def _derive(rows: list[list[str]], lines: list[int]) -> tuple[pd.DataFrame, dict]:
    """Good 17-field rows -> contract history (vectorised), plus derived counts."""
    df = pd.DataFrame(rows, columns=list(HEADER))
    n = len(df)
    c = _chain_times(df)
    vru_s, q_s, ser_s, served = c["vru_s"], c["q_s"], c["ser_s"], c["served"]
    entered_queue, stamped, t_arr, t_ss, t_end = (c["entered_queue"], c["stamped"], c["t_arr"], c["t_ss"],
                                                  c["t_end"])
    abandoned = ~served
    day = pd.to_datetime(df["date"], format="%y%m%d").to_numpy(dtype="datetime64[s]") if n \
        else np.zeros(0, "datetime64[s]")
    crossing = (t_end >= _DAY_S) | (t_arr >= _DAY_S)

    def stamp(t: np.ndarray) -> pd.Series:
        return pd.Series(pd.to_datetime(day + t.astype("timedelta64[s]")), dtype="datetime64[ns]").dt.tz_localize("UTC")

    cust_raw = df["customer_id"]
    exponent = cust_raw.str.contains(r"[eE]", regex=True).to_numpy() if n else np.zeros(0, bool)
    zero = (cust_raw == "0").to_numpy() if n else np.zeros(0, bool)
    customer = cust_raw.where(~(exponent | zero), None)
    server = df["server"]
    agent = server.where(served & (server != NO_SERVER).to_numpy(), None)
    arrival = stamp(t_arr)
    hist = pd.DataFrame({
        "contact_id": df["vru+line"] + "-" + df["call_id"],
        "arrival_at": arrival,
        "channel": "voice",
        "intent": df["type"],
        "language": np.where(df["type"] == "PE", "en", "he"),
        "customer_id": customer,
        "customer_tier": np.where(df["priority"] == "2", "priority", "regular"),
        "agent_id": agent,
        "wait_s": q_s.astype(float),
        "abandoned": abandoned,
        "handle_s": np.where(stamped, ser_s, np.nan).astype(float),
        "call_id": df["call_id"],
        "vru_line": df["vru+line"],
        "priority": df["priority"].astype(np.int8) if n else pd.Series([], dtype=np.int8),
        "entered_queue": entered_queue,
        "vru_s": vru_s.astype(float),
        "answered_at": stamp(t_ss).where(served),
        "ended_at": stamp(t_end),
        "source_line": np.asarray(lines, dtype=np.int64),
    })
    repeat = history_repeats(hist)
    hist["repeat_72h"] = repeat
    resolved = (~repeat.astype("boolean")).astype("boolean")
    resolved[hist["abandoned"].to_numpy()] = pd.NA
    hist["resolved"] = resolved
    hist = hist.sort_values(["arrival_at", "contact_id"], kind="stable")
    out = conform_history(hist)
    derived = {
        "served_unknown_agent": int((served & (server == NO_SERVER).to_numpy()).sum()),
        "served_without_service_record": int((served & ~stamped).sum()),
        "hang_with_server": int((abandoned & (server != NO_SERVER).to_numpy()).sum()),
        "abandoned_before_queue": int((abandoned & ~entered_queue).sum()),
        "unidentified_customer": int((zero | exponent).sum()),
        "exponent_customer_id": int(exponent.sum()),
        "crossing_midnight": int(crossing.sum()),
        "repeat_72h_true": int(out["repeat_72h"].eq(True).sum()),
        "repeat_72h_false": int(out["repeat_72h"].eq(False).sum()),
        "repeat_72h_unknown": int(out["repeat_72h"].isna().sum()),
    }
    return out, derived
