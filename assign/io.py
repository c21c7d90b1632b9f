"""Reading and writing what people hand in and take out: snapshots, pair values, results.

Snapshots come as one JSON document or as a directory of tables (Parquet or CSV):
``contacts``, ``agents`` and ``agent_skills`` (long: ``agent_id, intent, proficiency``).
In the agents table, ``languages`` is ``;``-separated and the per-channel objects are
flattened to ``capacity_<channel>`` and ``load_<channel>`` columns.

Every reader turns decoding and parsing failures into :class:`InputError` problems naming
the file (and line or row); every writer goes through :func:`atomic_path`, so a failed
command leaves no half-written file behind.
"""
from __future__ import annotations

import contextlib
import io
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from assign.errors import InputError, SnapshotError
from assign.history import COLUMNS as HISTORY_COLUMNS
from assign.result import TickResult
from assign.schema import AGENT_FIELDS, CHANNELS, CONTACT_FIELDS, SCHEMA, Snapshot, parse_snapshot
from assign.validate import Problems, check_csv, decode_text, load_json, read_bytes, scalar_cells

TABLE_SUFFIXES = (".parquet", ".csv")
#: Columns read from CSV as text, never as numbers: ``00001`` keeps its padding, and only a
#: blank cell is missing (``NA`` or ``nan`` is a name like any other).
TEXT_COLUMNS = frozenset({"contact_id", "agent_id", "channel", "intent", "language", "languages", "style",
                          "customer_id", "customer_tier", "snapshot_id"}
                         | {c.name for c in HISTORY_COLUMNS if c.dtype == "string"})
NA_STRINGS = ("", "NA", "N/A", "NaN", "nan", "null", "NULL", "None", "#N/A")
TABLE_COLUMNS = {
    "contacts": tuple(CONTACT_FIELDS),
    "agents": tuple(k for k in AGENT_FIELDS if k not in ("skills", "capacity", "load"))
    + tuple(f"{k}_{ch}" for k in ("capacity", "load") for ch in CHANNELS),
    "agent_skills": ("agent_id", "intent", "proficiency"),
}


# ----------------------------------------------------------------------------- writing


@contextlib.contextmanager
def atomic_path(out: str | Path, *, inputs: tuple[str | Path, ...] = (), option: str = "--out") -> Iterator[Path]:
    """A temporary path beside ``out``, moved onto ``out`` (``os.replace``) only when the
    block succeeds: a failed command leaves the old file, or nothing, never half a file.
    Refuses an ``out`` that is one of ``inputs`` or whose directory does not exist."""
    out = Path(out)
    check_out(out, inputs=inputs, option=option)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, out)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


@contextlib.contextmanager
def atomic_dir(out: str | Path, *, marker: str, option: str = "--out") -> Iterator[Path]:
    """A fresh temporary directory beside ``out``, swapped onto ``out`` whole only when the
    block succeeds: a failed command leaves the old directory, or nothing, never a mix. ``out``
    must be new, empty, or an earlier output of the same kind (it holds ``marker``): never a
    directory of other files, which the swap would lose."""
    out = Path(out)
    if not out.parent.is_dir():
        raise InputError([f"{option} {out}: directory {out.parent} does not exist"], what="option")
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / marker).exists())):
        raise InputError([f"{option} {out}: exists and is not an earlier output (no {marker}); choose a new path"],
                         what="option")
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        yield tmp
        replace_dir(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def replace_dir(new: Path, final: Path) -> None:
    """Move the finished ``new`` directory onto ``final``: the old one stays whole until the
    new one is complete, then is swapped out (rename) and removed."""
    old = None
    if final.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{final.name}.old.", dir=final.parent))
        os.rmdir(old)
        os.replace(final, old)
    os.replace(new, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def check_out(out: str | Path, *, inputs: tuple[str | Path, ...] = (), option: str = "--out") -> None:
    """Bad output paths as :class:`InputError`: a missing directory, a directory where a
    file is wanted, or one of the command's own inputs."""
    out = Path(out)
    if not out.parent.is_dir():
        raise InputError([f"{option} {out}: directory {out.parent} does not exist"], what="option")
    if out.is_dir():
        raise InputError([f"{option} {out}: is a directory, expected a file"], what="option")
    for src in inputs:
        if out.exists() and Path(src).exists() and os.path.samefile(out, src):
            raise InputError([f"{option} {out}: is the command's own input; choose another path"], what="option")


def json_safe(x: Any) -> Any:
    """``x`` with every NaN or infinite float replaced by None (JSON has no such numbers)."""
    if isinstance(x, float | np.floating):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: json_safe(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [json_safe(v) for v in x]
    if isinstance(x, np.integer):
        return int(x)
    return x


def dumps(doc: Any, **kw: Any) -> str:
    """Strict JSON text (``allow_nan=False``) of ``doc`` after :func:`json_safe`."""
    return json.dumps(json_safe(doc), allow_nan=False, **kw)


def write_text(out: str | Path, text: str, *, inputs: tuple[str | Path, ...] = ()) -> Path:
    with atomic_path(out, inputs=inputs) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(out)


def write_frame(df: pd.DataFrame, out: str | Path, *, fmt: str | None = None,
                inputs: tuple[str | Path, ...] = ()) -> Path:
    """A DataFrame as Parquet or CSV (by ``fmt`` or the suffix), atomically."""
    fmt = fmt or Path(out).suffix.lstrip(".") or "parquet"
    if fmt not in ("csv", "parquet"):
        raise InputError([f"--format: unknown format {fmt!r}"], what="option")
    with atomic_path(out, inputs=inputs) as tmp:
        if fmt == "csv":
            df.to_csv(tmp, index=False)
        else:
            df.to_parquet(tmp, index=False)
    return Path(out)


# ----------------------------------------------------------------------------- reading


def read_table(path: str | Path, *, what: str = "file", fmt: str | None = None) -> pd.DataFrame:
    """A CSV or Parquet file (``fmt``, else by suffix) as a DataFrame; every failure names
    the file (and line)."""
    path = Path(path)
    fmt = fmt or path.suffix.lstrip(".")
    if f".{fmt}" not in TABLE_SUFFIXES:
        raise InputError([f"{path}: unsupported file type {path.suffix!r} (expected .csv or .parquet)"], what=what)
    data = read_bytes(path, what=what)
    if fmt == "parquet":
        try:
            return pd.read_parquet(io.BytesIO(data))
        except Exception as err:  # pyarrow raises many types for corrupt files
            raise InputError([f"{path}: not a readable Parquet file: {type(err).__name__}: {err}"], what=what) from err
    text = decode_text(data, path=path, what=what)
    header = check_csv(text, path=path, what=what)
    text_cols = [c for c in header if c in TEXT_COLUMNS]
    try:
        return pd.read_csv(io.StringIO(text), dtype={c: str for c in text_cols}, keep_default_na=False,
                           na_values={c: ([""] if c in TEXT_COLUMNS else list(NA_STRINGS)) for c in header})
    except (ValueError, pd.errors.ParserError, OverflowError) as err:
        raise InputError([f"{path}: cannot read CSV: {err}"], what=what) from err


def _find_table(directory: Path, name: str) -> Path | None:
    for suffix in TABLE_SUFFIXES:
        p = directory / f"{name}{suffix}"
        if p.exists():
            return p
    return None


def read_snapshot(path: str | Path) -> Snapshot:
    """Read and validate a snapshot from a JSON file or a directory of tables."""
    path = Path(path)
    if not path.exists():
        raise InputError([f"{path}: no such file or directory"], what="snapshot")
    if path.is_dir():
        return parse_snapshot(snapshot_doc_from_tables(path))
    return parse_snapshot(load_json(path, what="snapshot"))


def _clean(v: Any) -> Any:
    """Table cells to JSON values: NaN/NA become None, numpy scalars become Python; lists
    and arrays (Parquet) stay lists, for the validation to refuse where a scalar belongs."""
    if isinstance(v, np.ndarray):
        return v.tolist()
    if v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, np.generic):
        v = v.item()
        return None if isinstance(v, float) and math.isnan(v) else v
    return v


def _check_columns(p: Problems, name: str, df: pd.DataFrame) -> None:
    known = TABLE_COLUMNS[name]
    p.lookalikes(name, df.columns, known)
    for col in df.columns:
        if not isinstance(col, str):
            continue
        head = col.split("_", 1)[0].strip().lower()
        if name == "agents" and head in ("capacity", "load", "loads") and col not in known:
            if not any(p_.startswith(f"{name}.{col}:") for p_ in p.items):
                p.add(f"{name}.{col}", f"unknown column; per-channel columns are {head.rstrip('s')}_<channel> "
                      f"with channel one of {', '.join(CHANNELS)}")
        if col in known and col not in ("languages",):
            scalar_cells(p, f"{name}.{col}", df[col].tolist())
    if name == "agent_skills":
        for col in known:
            if col not in df.columns:
                p.add(f"{name}.{col}", "required column is missing")


def _skill_map(p: Problems, skills: pd.DataFrame, agent_ids: set[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    first: dict[tuple[str, str], int] = {}
    cols = [skills.get(k, pd.Series([None] * len(skills))).tolist() for k in ("agent_id", "intent", "proficiency")]
    for r, (aid, intent, prof) in enumerate(zip(*cols)):
        aid, intent, prof = _clean(aid), _clean(intent), _clean(prof)
        path = f"agent_skills[{r}]"
        if not isinstance(aid, str) or not isinstance(intent, str):
            p.add(path, f"agent_id and intent must be text, got {aid!r}, {intent!r}")
            continue
        if aid not in agent_ids:
            p.add(f"{path}.agent_id", f"unknown agent {aid!r} (not in the agents table)")
            continue
        if p.number(f"{path}.proficiency", prof, lo=0, hi=1) is None:
            continue
        prev = first.setdefault((aid, intent), r)
        if prev != r:
            if out[aid][intent] != prof:
                p.add(path, f"conflicting duplicate skill ({aid!r}, {intent!r}): {prof!r} here, "
                      f"{out[aid][intent]!r} at agent_skills[{prev}]")
            continue
        out.setdefault(aid, {})[intent] = prof
    return out


def _meta(p: Problems, directory: Path) -> dict[str, Any]:
    meta_path = directory / "snapshot.json"
    if not meta_path.exists():
        return {}
    try:
        meta = load_json(meta_path, what="snapshot")
    except InputError as err:
        p.extend(err.problems)
        return {}
    if not isinstance(meta, dict):
        p.add(str(meta_path), f"expected a JSON object, got {type(meta).__name__}")
        return {}
    return meta


def snapshot_doc_from_tables(directory: Path) -> dict[str, Any]:
    """Assemble the JSON document of a snapshot stored as tables (validation comes after);
    table-level problems (misnamed columns, orphan or conflicting skill rows, non-scalar
    cells, an unreadable ``snapshot.json``) are all raised here, at once."""
    paths = {name: _find_table(directory, name) for name in ("contacts", "agents", "agent_skills")}
    missing = [f"{directory}/{name}.{{parquet,csv}}: missing" for name, p in paths.items() if p is None]
    if missing:
        raise SnapshotError(missing)
    p = Problems()
    tables = {}
    for name, path in paths.items():
        try:
            tables[name] = read_table(path, what="snapshot")
        except InputError as err:
            p.extend(err.problems)
    for name, df in tables.items():
        _check_columns(p, name, df)
    meta = _meta(p, directory)
    if p:
        raise SnapshotError(p.items)
    contacts, agents, skills = tables["contacts"], tables["agents"], tables["agent_skills"]
    ids = {str(a) for a in agents["agent_id"].tolist() if isinstance(_clean(a), str)} if "agent_id" in agents else set()
    skill_map = _skill_map(p, skills, ids)
    agent_recs = []
    for j, rec in enumerate(agents.to_dict("records")):
        rec = {k: _clean(v) for k, v in rec.items()}
        out: dict[str, Any] = {k: v for k, v in rec.items()
                               if k not in TABLE_COLUMNS["agents"][-6:] and v is not None}
        langs = rec.get("languages")
        if langs is not None and not isinstance(langs, str):
            p.add(f"agents[{j}].languages", f"expected ';'-separated codes, got {type(langs).__name__}")
            langs = None
        out["languages"] = [x.strip() for x in langs.split(";") if x.strip()] if langs is not None else []
        out["capacity"] = {ch: rec[f"capacity_{ch}"] for ch in CHANNELS if rec.get(f"capacity_{ch}") is not None}
        out["load"] = {ch: rec[f"load_{ch}"] for ch in CHANNELS if rec.get(f"load_{ch}") is not None}
        out["skills"] = skill_map.get(rec.get("agent_id"), {}) if isinstance(rec.get("agent_id"), str) else {}
        agent_recs.append(out)
    if p:
        raise SnapshotError(p.items)
    contact_recs = [{k: c for k, v in rec.items() if (c := _clean(v)) is not None}
                    for rec in contacts.to_dict("records")]
    return {"schema": SCHEMA, "snapshot_id": meta.get("snapshot_id", directory.name),
            **({"at": meta["at"]} if "at" in meta else {}), "contacts": contact_recs, "agents": agent_recs}


def write_snapshot_tables(snapshot: Snapshot, directory: str | Path, *, fmt: str = "parquet") -> None:
    """Write a snapshot as the three tables plus ``snapshot.json`` (id and time)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    doc = snapshot.to_dict()
    contacts = pd.DataFrame(doc["contacts"])
    agents = pd.DataFrame([{
        **{k: v for k, v in a.items() if k not in ("languages", "skills", "capacity", "load")},
        "languages": ";".join(a["languages"]),
        **{f"capacity_{ch}": a["capacity"].get(ch, 0) for ch in CHANNELS},
        **{f"load_{ch}": a["load"].get(ch, 0) for ch in CHANNELS},
    } for a in doc["agents"]])
    skills = pd.DataFrame([(a["agent_id"], k, v) for a in doc["agents"] for k, v in a["skills"].items()],
                          columns=["agent_id", "intent", "proficiency"])
    for name, df in (("contacts", contacts), ("agents", agents), ("agent_skills", skills)):
        write_frame(df, directory / f"{name}.{fmt}", fmt=fmt)
    write_text(directory / "snapshot.json", dumps({"snapshot_id": doc["snapshot_id"], "at": doc["at"]}))


def read_values(path: str | Path) -> pd.DataFrame:
    """Pair values ``contact_id, agent_id, value`` from CSV or Parquet (ids read as text)."""
    return read_table(path, what="values")


def result_frames(result: TickResult) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Assignments and unassigned as DataFrames (for CSV/Parquet output)."""
    d = result.to_dict()
    rows = [{k: v for k, v in a.items() if k != "alternatives"} for a in d["assignments"]]
    assigned = pd.DataFrame(rows, columns=["contact_id", "agent_id", "value", "score", "aging", "fairness"])
    unassigned = pd.DataFrame([{k: v for k, v in u.items() if k != "alternatives"} for u in d["unassigned"]],
                              columns=["contact_id", "reason"])
    return assigned, unassigned


def result_table(result: TickResult) -> pd.DataFrame:
    """One row per contact (agent empty and ``reason`` set for the unassigned), by id."""
    assigned, unassigned = result_frames(result)
    table = pd.concat([assigned.assign(reason=None), unassigned], ignore_index=True)
    return table.sort_values("contact_id", kind="stable").reset_index(drop=True)


def write_result(result: TickResult, *, fmt: str, out: str | Path, inputs: tuple[str | Path, ...] = ()) -> list[Path]:
    """Write a result as JSON, or as one CSV/Parquet table of every contact, atomically;
    ``inputs`` are the command's own input files, which ``out`` must not replace."""
    if fmt == "json":
        return [write_text(out, dumps(result.to_dict(), indent=2), inputs=inputs)]
    if fmt not in ("csv", "parquet"):
        raise InputError([f"--format: unknown format {fmt!r}"], what="option")
    return [write_frame(result_table(result), out, fmt=fmt, inputs=inputs)]
