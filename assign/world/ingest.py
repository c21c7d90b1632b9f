"""Load any contact-centre export (CSV, TSV or Parquet) into the history contract.

A *mapping* says which source column (or small derivation) fills each contract column
(:mod:`assign.history`); it is a JSON document (schema ``assign.ingest-map/1``) that can be
saved and reused. Every source line is accounted for, with the same :class:`Ledger` the
Anonymous Bank adapter uses: kept (a history row), excluded (a row the mapping's
``exclude`` rule keeps out, listed with the reason) or quarantined (line number, reason
code, every problem found, raw text). ``lines_read == kept + excluded + quarantined`` is
checked, never assumed.

Column specs (``columns`` of the mapping; a plain string is the source column's name):

- ``{"from": SRC}``: the column as text; with ``"map": {VALUE: OUT}`` (and ``"default"``)
  values are translated and a value neither mapped nor defaulted quarantines the line;
  ``"null": [TOKENS]`` reads those values as null; ``"null_pattern": REGEX`` too;
  ``"allowed": [VALUES]`` quarantines any other value; ``"when": {SRC: VALUE}`` keeps the
  value only on lines where SRC equals VALUE (null elsewhere).
- ``{"concat": [SRC, ...], "sep": "-"}``: joined text (ids made of several columns).
- ``{"value": CONST}``: the same value on every line.
- times: ``{"from": SRC}`` (a full timestamp), or ``{"date": SRC, "time": SRC}`` with
  ``"fallback_time": SRC`` (used when ``time`` equals ``"zero_time"``, e.g. a call that never
  queued) and ``"not_before": SRC`` (a clock time earlier than that one by more than an hour
  is on the next day: the call crossed midnight). ``time_format`` and ``tz`` (mapping level,
  or ``--time-format`` / ``--tz``) parse them; times are stored in UTC.
- durations (``wait_s``, ``handle_s``): seconds or ``H:MM:SS``; negative, non-finite or
  longer than a day quarantines the line.
"""
from __future__ import annotations

import csv
import io
import json
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from assign.constants import DAY_S
from assign.errors import AssignError, InputError
from assign.history import COLUMNS, conform_history, history_repeats

MAP_SCHEMA = "assign.ingest-map/1"
MAX_DURATION_S = DAY_S  # one day: a longer queue wait or handle time is a broken record
_BOOL_COLUMNS = {c.name for c in COLUMNS if c.dtype == "boolean"}
_FLOAT_COLUMNS = {c.name for c in COLUMNS if c.dtype == "float64"}
_TIME_COLUMNS = {c.name for c in COLUMNS if c.dtype.startswith("datetime")}
_DURATION_COLUMNS = ("wait_s", "handle_s")
_REQUIRED = tuple(c.name for c in COLUMNS if c.required)
_KNOWN = {c.name for c in COLUMNS}
_TRUE = {"1", "true", "t", "yes", "y"}
_FALSE = {"0", "false", "f", "no", "n"}
_RE_HMS = re.compile(r"^(\d{1,6}):([0-5]\d):([0-5]\d)$")


# --------------------------------------------------------------------------- accounting

class Ledger:
    """Where every source line went: kept, excluded (with a reason) or quarantined.

    One implementation for every reader (the bank adapter and the mapped CSV reader), so
    the accounting and the side files mean the same thing everywhere.
    """

    def __init__(self, *, lines_read: int) -> None:
        self.lines_read = lines_read
        self.quarantined: list[tuple[int, str, str, str]] = []
        self.excluded: list[tuple[int, str, str, str]] = []

    def quarantine(self, line: int, problems: list[tuple[str, str]], raw: str) -> None:
        """Quarantine one line with every (code, message) found; the first code is its reason."""
        self.quarantined.append((line, problems[0][0], "; ".join(m for _, m in problems), raw))

    def exclude(self, line: int, contact_id: str, reason: str, raw: str) -> None:
        self.excluded.append((line, contact_id, reason, raw))

    def frames(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        q = pd.DataFrame(self.quarantined, columns=["line", "reason_code", "reason", "raw"])
        e = pd.DataFrame(self.excluded, columns=["line", "contact_id", "reason", "raw"])
        return q, e

    def counts(self, *, kept: int, file: str, excluded_key: str = "excluded") -> dict:
        """The accounting; raises :class:`AssignError` when a line is unaccounted for."""
        q, e = self.frames()
        n = kept + len(e) + len(q)
        if n != self.lines_read:
            raise AssignError(f"{file}: line accounting broken: {self.lines_read} lines read but {kept} kept "
                              f"+ {len(e)} excluded + {len(q)} quarantined = {n}")
        return {"file": file, "lines_read": self.lines_read, "kept": kept, excluded_key: len(e),
                "quarantined": len(q),
                "quarantined_by_reason": {k: int(v) for k, v in q["reason_code"].value_counts().sort_index().items()}}


@dataclass(frozen=True)
class IngestResult:
    """What a reader made of one file.

    ``history``: contract rows (plus the reader's extra columns); ``quarantine``: malformed
    lines (``line``, ``reason_code``, ``reason``, ``raw``); ``excluded``: lines kept out by
    rule (``line``, ``contact_id``, ``reason``, ``raw``: the bank's PHANTOM calls);
    ``counts``: the accounting, ``lines_read == kept + excluded + quarantined``.
    ``excluded_name`` names the excluded side file (``phantom`` for the bank).
    """

    history: pd.DataFrame
    quarantine: pd.DataFrame
    excluded: pd.DataFrame
    counts: dict = field(default_factory=dict)
    excluded_name: str = "excluded"

    @property
    def phantom(self) -> pd.DataFrame:
        """The bank adapter's name for its excluded lines."""
        return self.excluded

    @property
    def n_quarantined(self) -> int:
        return len(self.quarantine)

    def write(self, out: str | Path, *, inputs: tuple[str | Path, ...] = ()) -> dict[str, Path]:
        """Write the history to ``out`` (Parquet) and the side files next to it:
        ``<stem>.quarantine.csv``, ``<stem>.<excluded_name>.csv``, ``<stem>.ingest.json``.

        Refuses to write over any of ``inputs`` (the file read); every file is written to a
        temporary name first and moved into place, so a failure leaves no half-written file.
        Text cells are quoted, so a raw line holding a carriage return reads back as one row.
        """
        out = Path(out)
        stem = out.with_suffix("")
        paths = {"history": out, "quarantine": Path(f"{stem}.quarantine.csv"),
                 "excluded": Path(f"{stem}.{self.excluded_name}.csv"), "summary": Path(f"{stem}.ingest.json")}
        same = [f"{p}" for p in paths.values() for i in inputs if _same_file(p, Path(i))]
        if same:
            raise InputError([f"--out {out}: would overwrite the input {s}; write elsewhere" for s in same],
                             what="option")
        if not out.parent.is_dir():
            raise InputError([f"--out {out}: directory {out.parent} does not exist"], what="option")
        writers = {
            "history": lambda f: self.history.to_parquet(f, index=False),
            "quarantine": lambda f: self.quarantine.to_csv(f, index=False, quoting=csv.QUOTE_NONNUMERIC),
            "excluded": lambda f: self.excluded.to_csv(f, index=False, quoting=csv.QUOTE_NONNUMERIC),
            "summary": lambda f: Path(f).write_text(json.dumps(self.counts, indent=2, sort_keys=True) + "\n"),
        }
        for key, write in writers.items():
            atomic_write(paths[key], write)
        return paths


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def atomic_write(path: Path, write) -> None:
    """``write(tmp_path)`` then move the temporary file onto ``path`` (same directory)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------- mapping

@dataclass(frozen=True)
class IngestMap:
    """A validated mapping (see the module doc). ``columns``: contract column -> spec."""

    columns: Mapping[str, Any]
    exclude: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    time_format: str | None = None
    tz: str = "UTC"
    delimiter: str | None = None

    def to_dict(self) -> dict:
        doc: dict[str, Any] = {"schema": MAP_SCHEMA, "columns": dict(self.columns)}
        if self.exclude:
            doc["exclude"] = {k: list(v) for k, v in self.exclude.items()}
        if self.time_format:
            doc["time_format"] = self.time_format
        doc["tz"] = self.tz
        if self.delimiter:
            doc["delimiter"] = self.delimiter
        return doc

    def save(self, path: str | Path) -> Path:
        """Write the mapping as JSON, to reuse with ``--mapping``."""
        path = Path(path)
        atomic_write(path, lambda f: Path(f).write_text(json.dumps(self.to_dict(), indent=2) + "\n"))
        return path


def load_map(path: str | Path) -> dict:
    """A mapping file as a document (validated by :func:`parse_map`)."""
    path = Path(path)
    if not path.is_file():
        raise InputError([f"{path}: no such mapping file"], what="mapping")
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise InputError([f"{path}: not a valid JSON mapping: {err}"], what="mapping") from err


def parse_map(doc: Any, *, overrides: Mapping[str, str] | None = None, time_format: str | None = None,
              tz: str | None = None) -> IngestMap:
    """Validate a mapping document; ``overrides`` (``--map COLUMN=SOURCE``) replace its
    column specs, ``time_format`` / ``tz`` its time settings. Every problem at once."""
    p: list[str] = []
    doc = {} if doc is None else doc
    if not isinstance(doc, Mapping):
        raise InputError([f"<mapping>: expected an object, got {type(doc).__name__}"], what="mapping")
    if doc.get("schema", MAP_SCHEMA) != MAP_SCHEMA:
        p.append(f"schema: expected {MAP_SCHEMA!r}, got {doc.get('schema')!r}")
    cols = doc.get("columns", {})
    if not isinstance(cols, Mapping):
        p.append(f"columns: expected an object contract column -> spec, got {cols!r}")
        cols = {}
    cols = {**cols, **(overrides or {})}
    for name, spec in cols.items():
        _check_spec(p, name, spec)
    for name in _REQUIRED:
        if name not in cols:
            p.append(f"columns.{name}: required contract column has no mapping (--map {name}=SOURCE)")
    exclude = doc.get("exclude", {})
    if not isinstance(exclude, Mapping) or not all(isinstance(v, list) for v in exclude.values()):
        p.append(f"exclude: expected an object source column -> list of values, got {exclude!r}")
        exclude = {}
    tf = time_format if time_format is not None else doc.get("time_format")
    if tf is not None and (not isinstance(tf, str) or "%" not in tf):
        p.append(f"time_format: expected a strftime format such as '%Y-%m-%d %H:%M:%S', got {tf!r}")
    zone = tz if tz is not None else doc.get("tz", "UTC")
    try:
        pd.Timestamp("2000-01-01").tz_localize(zone)
    except Exception:
        p.append(f"tz: unknown time zone {zone!r}")
    delim = doc.get("delimiter")
    if delim is not None and (not isinstance(delim, str) or len(delim) != 1):
        p.append(f"delimiter: expected one character, got {delim!r}")
    if p:
        raise InputError(p, what="mapping")
    return IngestMap(columns=cols, exclude={k: tuple(map(str, v)) for k, v in exclude.items()},
                     time_format=tf, tz=zone, delimiter=delim)


def parse_overrides(items: tuple[str, ...]) -> dict[str, str]:
    """``--map COLUMN=SOURCE`` options as a dict; every malformed one named."""
    out, p = {}, []
    for item in items:
        col, sep, src = item.partition("=")
        if not sep or not col.strip() or not src:
            p.append(f"--map {item!r}: expected COLUMN=SOURCE")
            continue
        out[col.strip()] = src
    if p:
        raise InputError(p, what="option")
    return out


_SPEC_KEYS = {"from", "map", "default", "null", "null_pattern", "allowed", "when", "concat", "sep", "value",
              "date", "time", "fallback_time", "zero_time", "not_before"}


def _check_spec(p: list[str], name: str, spec: Any) -> None:
    path = f"columns.{name}"
    if name not in _KNOWN:
        near = [c for c in _KNOWN if c.lower() == name.strip().lower()]
        p.append(f"{path}: not a history contract column" + (f" (did you mean {near[0]!r}?)" if near else ""))
    if isinstance(spec, str):
        if not spec:
            p.append(f"{path}: empty source column name")
        return
    if not isinstance(spec, Mapping):
        p.append(f"{path}: expected a source column name or an object, got {spec!r}")
        return
    unknown = sorted(set(spec) - _SPEC_KEYS)
    if unknown:
        p.append(f"{path}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(_SPEC_KEYS))})")
    kinds = [k for k in ("from", "concat", "value", "date") if k in spec]
    if len(kinds) != 1:
        p.append(f"{path}: give exactly one of from, concat, value, date; got {kinds or 'none'}")
    if "date" in spec and "time" not in spec:
        p.append(f"{path}: date needs time")
    if "concat" in spec and not (isinstance(spec["concat"], list) and spec["concat"]
                                 and all(isinstance(x, str) for x in spec["concat"])):
        p.append(f"{path}.concat: expected a list of source column names")
    for key in ("map", "when"):
        if key in spec and not isinstance(spec[key], Mapping):
            p.append(f"{path}.{key}: expected an object")
    for key in ("null", "allowed"):
        if key in spec and not isinstance(spec[key], list):
            p.append(f"{path}.{key}: expected a list of values")
    if "null_pattern" in spec:
        try:
            re.compile(spec["null_pattern"])
        except (re.error, TypeError) as err:
            p.append(f"{path}.null_pattern: not a regular expression: {err}")


# --------------------------------------------------------------------------- reading

def read_mapped(path: str | Path, mapping: IngestMap) -> IngestResult:
    """Read a CSV/TSV/Parquet export through ``mapping`` into the history contract.

    Raises :class:`InputError` when the file cannot be read as a table or lacks a column the
    mapping names; malformed lines never raise: they are quarantined with their reasons.
    """
    path = Path(path)
    frame, ledger = _read_rows(path, mapping)
    missing = sorted({s for s in _sources(mapping) if s not in frame.columns})
    if missing:
        raise InputError([(f"{path}: the mapping names source column(s) {', '.join(map(repr, missing))} that "
                          f"the file does not have (it has {', '.join(map(repr, frame.columns[1:]))})")],
                         what="history export")
    values, problems = _evaluate(frame, mapping)
    lines = frame["_line"].to_numpy()
    has_problem = np.zeros(len(frame), dtype=bool)
    has_problem[list(problems)] = True
    cid = values["contact_id"]
    dup = cid.duplicated(keep=False).to_numpy() & ~has_problem
    if dup.any():  # a later line repeating a good line's contact id is quarantined
        ok = pd.Series(np.flatnonzero(~has_problem))
        first = pd.Series(lines[ok], index=cid.iloc[ok].to_numpy()).groupby(level=0).min()
        later = dup & (lines != first.reindex(cid.to_numpy()).to_numpy())
        for i in np.flatnonzero(later):
            problems[int(i)] = [("duplicate", f"contact_id {cid.iloc[i]!r} already read on line {first[cid.iloc[i]]}")]
    join = _joiner(mapping, path)
    excluded = np.zeros(len(frame), dtype=bool)
    for col, vals in mapping.exclude.items():
        excluded |= frame[col].isin(vals).to_numpy()
    for i in sorted(problems):
        ledger.quarantine(int(lines[i]), problems[i], join(frame.iloc[i, 1:]))
    excluded &= ~np.isin(np.arange(len(frame)), list(problems))
    for i in np.flatnonzero(excluded):
        why = [f"{c}={frame[c].iloc[i]}" for c, vals in mapping.exclude.items() if frame[c].iloc[i] in vals]
        ledger.exclude(int(lines[i]), str(cid.iloc[i]), "excluded by the mapping: " + ", ".join(why),
                       join(frame.iloc[i, 1:]))
    keep = ~excluded & ~np.isin(np.arange(len(frame)), list(problems))
    hist = pd.DataFrame({k: v[keep] for k, v in values.items()})
    hist["source_line"] = lines[keep].astype(np.int64)
    hist, derived = _derive(hist)
    counts = ledger.counts(kept=len(hist), file=str(path))
    counts.update(derived)
    q, e = ledger.frames()
    return IngestResult(history=hist, quarantine=q, excluded=e, counts=counts)


def _joiner(mapping: IngestMap, path: Path):
    d = mapping.delimiter or ("\t" if path.suffix.lower() in (".tsv", ".tab") else ",")
    return lambda row: d.join(map(str, row))


def _sources(m: IngestMap) -> set[str]:
    out: set[str] = set(m.exclude)
    for spec in m.columns.values():
        if isinstance(spec, str):
            out.add(spec)
            continue
        for key in ("from", "date", "time", "fallback_time", "not_before"):
            if isinstance(spec.get(key), str):
                out.add(spec[key])
        out.update(spec.get("concat", []))
        out.update(spec.get("when", {}))
    return out


def _read_rows(path: Path, mapping: IngestMap) -> tuple[pd.DataFrame, Ledger]:
    """The file as all-text columns plus ``_line`` (1-based, the header is line 1), and a
    ledger already holding the lines that could not be split into the header's fields."""
    if not path.is_file():
        raise InputError([f"{path}: no such file"], what="history export")
    if path.suffix.lower() in (".parquet", ".pq"):
        try:
            df = pd.read_parquet(path)
        except Exception as err:
            raise InputError([f"{path}: cannot be read as Parquet: {err}"], what="history export") from err
        text = pd.DataFrame({c: _as_text(df[c]) for c in df.columns})
        text.insert(0, "_line", np.arange(2, len(df) + 2))
        return text, Ledger(lines_read=len(df))
    data = path.read_bytes()
    try:
        content = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise InputError([f"{path}: not UTF-8 text (byte {err.start}); convert the export to UTF-8"],
                         what="history export") from err
    delim = mapping.delimiter or ("\t" if path.suffix.lower() in (".tsv", ".tab") else ",")
    reader = csv.reader(io.StringIO(content, newline=""), delimiter=delim)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise InputError([f"{path}: empty file, expected a header line"], what="history export") from None
    except csv.Error as err:
        raise InputError([f"{path} line 1: {err}"], what="history export") from err
    if len(set(header)) != len(header):
        raise InputError([f"{path} line 1: duplicate column names in the header"], what="history export")
    rows, lines, bad = [], [], []
    while True:
        start = reader.line_num + 1
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as err:
            bad.append((start, [("bad_quoting", str(err))], ""))
            continue
        raw = delim.join(fields)
        if not any(f.strip() for f in fields):
            bad.append((start, [("blank", "blank line")], raw))
        elif len(fields) != len(header):
            code = "missing_fields" if len(fields) < len(header) else "stray_fields"
            bad.append((start, [(code, f"{len(fields)} fields, expected {len(header)}")], raw))
        else:
            rows.append([f.strip() for f in fields])
            lines.append(start)
    ledger = Ledger(lines_read=len(rows) + len(bad))
    for line, problems, raw in bad:
        ledger.quarantine(line, problems, raw)
    df = pd.DataFrame(rows, columns=header, dtype=object) if rows else pd.DataFrame(columns=header, dtype=object)
    df.insert(0, "_line", np.asarray(lines, dtype=np.int64))
    return df.reset_index(drop=True), ledger


def _as_text(s: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(s):
        return s.map(lambda x: "" if pd.isna(x) else x.isoformat())
    return s.map(lambda x: "" if x is None or (isinstance(x, float) and np.isnan(x)) else str(x))


class _Problems:
    """Per-row problems: ``{row: [(code, message), ...]}``."""

    def __init__(self) -> None:
        self.rows: dict[int, list[tuple[str, str]]] = {}

    def add(self, mask: np.ndarray, code: str, message) -> None:
        for i in np.flatnonzero(mask):
            self.rows.setdefault(int(i), []).append((code, message(int(i)) if callable(message) else message))


def _evaluate(df: pd.DataFrame, m: IngestMap) -> tuple[dict[str, pd.Series], dict[int, list[tuple[str, str]]]]:
    """Every mapped contract column as a Series, and the problems of each row."""
    pr = _Problems()
    out: dict[str, pd.Series] = {}
    for name, spec in m.columns.items():
        spec = {"from": spec} if isinstance(spec, str) else spec
        if name in _TIME_COLUMNS:
            out[name] = _time(df, name, spec, m, pr)
            continue
        text = _text(df, name, spec, pr)
        if name in _DURATION_COLUMNS:
            out[name] = _duration(text, name, pr)
        elif name in _BOOL_COLUMNS:
            out[name] = _boolean(text, name, pr)
        elif name in _FLOAT_COLUMNS:
            v = pd.to_numeric(text.where(text.map(lambda x: isinstance(x, str) and x != ""), None), errors="coerce")
            bad = text.notna().to_numpy() & ~np.isfinite(v.to_numpy(dtype=float))
            pr.add(bad, "bad_number", lambda i, t=text, n=name: f"{n} {t.iloc[i]!r} is not a finite number")
            out[name] = v.astype(float)
        else:
            out[name] = text
    for name in _REQUIRED:
        if name in out:
            pr.add(out[name].isna().to_numpy(), "missing_value", f"{name} is empty")
    return out, pr.rows


def _text(df: pd.DataFrame, name: str, spec: Mapping, pr: _Problems) -> pd.Series:
    if "value" in spec:
        s = pd.Series([spec["value"]] * len(df), dtype=object)
    elif "concat" in spec:
        parts = [df[c].astype(str) for c in spec["concat"]]
        s = parts[0]
        for part in parts[1:]:
            s = s + str(spec.get("sep", "-")) + part
        s = s.astype(object)
    else:
        s = df[spec["from"]].astype(object)
    s = s.where(s.map(lambda x: x != ""), None)
    if "null" in spec:
        s = s.where(~s.isin([str(x) for x in spec["null"]]), None)
    if "null_pattern" in spec:
        s = s.where(~s.astype(str).str.contains(spec["null_pattern"], regex=True).to_numpy() | s.isna(), None)
    for col, val in spec.get("when", {}).items():
        s = s.where(df[col] == str(val), None)
    if "allowed" in spec:
        ok = s.isna() | s.isin([str(x) for x in spec["allowed"]])
        pr.add(~ok.to_numpy(), "bad_value", lambda i: f"{name} {s.iloc[i]!r} is not one of {spec['allowed']}")
    if "map" in spec:
        table = {str(k): v for k, v in spec["map"].items()}
        mapped = s.map(lambda x: table.get(x, _MISSING) if x is not None else None)
        unmapped = mapped.map(lambda x: x is _MISSING).to_numpy()
        if "default" in spec:
            mapped = mapped.where(~unmapped, spec["default"])
        else:
            pr.add(unmapped, "bad_value", lambda i: f"{name}: value {s.iloc[i]!r} is not in the mapping's map")
            mapped = mapped.where(~unmapped, None)
        s = mapped
    return s


_MISSING = object()


def _duration(text: pd.Series, name: str, pr: _Problems) -> pd.Series:
    """Seconds or H:MM:SS; negative, non-finite or longer than a day is a problem."""
    def seconds(x):
        if x is None or isinstance(x, (bool, np.bool_)):
            return np.nan if x is None else -1.0
        x = str(x)
        hm = _RE_HMS.match(x)
        if hm:
            return float(int(hm[1]) * 3600 + int(hm[2]) * 60 + int(hm[3]))
        try:
            return float(x) if len(x) <= 40 else float("inf")
        except ValueError:
            return float("inf")
    v = text.map(seconds).to_numpy(dtype=float)
    bad = text.notna().to_numpy() & ~((v >= 0) & (v <= MAX_DURATION_S))
    pr.add(bad, "bad_duration", lambda i: f"{name} {text.iloc[i]!r} is not seconds or H:MM:SS within 0..1 day")
    return pd.Series(np.where(bad, np.nan, v), dtype=float)


def _boolean(text: pd.Series, name: str, pr: _Problems) -> pd.Series:
    def value(x):
        if x is None or isinstance(x, (bool, np.bool_)):
            return x
        t = str(x).strip().lower()
        return True if t in _TRUE else False if t in _FALSE else _MISSING
    v = text.map(value)
    bad = v.map(lambda x: x is _MISSING).to_numpy()
    pr.add(bad, "bad_value", lambda i: f"{name} {text.iloc[i]!r} is not true/false")
    return pd.Series(v.where(~bad, None).tolist(), dtype="boolean")


def _time(df: pd.DataFrame, name: str, spec: Mapping, m: IngestMap, pr: _Problems) -> pd.Series:
    """A UTC timestamp column from one full-time column or a date and a clock time."""
    if "date" in spec:
        clock = df[spec["time"]].astype(str)
        if "fallback_time" in spec:
            clock = clock.where(clock != str(spec.get("zero_time", "0:00:00")), df[spec["fallback_time"]])
        raw = df[spec["date"]].astype(str) + " " + clock
    else:
        raw = _text(df, name, spec, pr).astype(object)
    given = raw.map(lambda x: isinstance(x, str) and x.strip() != "").to_numpy()
    fmt = m.time_format or "ISO8601"
    t = pd.to_datetime(raw.where(given, None), format=fmt, errors="coerce")
    if getattr(t.dt, "tz", None) is None:
        t = t.dt.tz_localize(m.tz, ambiguous="NaT", nonexistent="NaT")
    t = t.dt.tz_convert("UTC").dt.as_unit("ns")
    if "not_before" in spec and len(df):
        ref = pd.to_timedelta(df[spec["not_before"]].astype(str), errors="coerce")
        tod = t - t.dt.floor("D")
        t = t.where(~(tod < ref - pd.Timedelta(hours=1)), t + pd.Timedelta(days=1))
    bad = given & t.isna().to_numpy()
    pr.add(bad, "bad_time", lambda i: f"{name} {raw.iloc[i]!r} is not a time in format {fmt} (zone {m.tz})")
    return t


def _derive(hist: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """Conform to the contract; derive ``repeat_72h`` (and ``resolved`` of served calls) from
    identified customers when the export does not carry them, as the bank adapter does."""
    derived = []
    hist = conform_history(hist)
    if "customer_id" in hist and hist["customer_id"].notna().any() and hist["repeat_72h"].isna().all():
        hist["repeat_72h"] = history_repeats(hist)
        derived.append("repeat_72h")
        if hist["resolved"].isna().all():
            resolved = (~hist["repeat_72h"]).astype("boolean")
            resolved[hist["abandoned"].fillna(True).to_numpy(dtype=bool)] = pd.NA
            hist["resolved"] = resolved
            derived.append("resolved")
    hist = hist.sort_values(["arrival_at", "contact_id"], kind="stable").reset_index(drop=True)
    ab = hist["abandoned"].fillna(False).to_numpy(dtype=bool)
    return hist, {"derived_columns": derived, "kept_abandoned": int(ab.sum()), "kept_served": int((~ab).sum())}
