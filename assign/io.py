"""Reading and writing what people hand in and take out: snapshots, pair values, results.

Snapshots come as one JSON document or as a directory of tables (Parquet or CSV):
``contacts``, ``agents`` and ``agent_skills`` (long: ``agent_id, intent, proficiency``).
In the agents table, ``languages`` is ``;``-separated and the per-channel objects are
flattened to ``capacity_<channel>`` and ``load_<channel>`` columns.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from assign.errors import InputError, SnapshotError
from assign.result import TickResult
from assign.schema import CHANNELS, SCHEMA, Snapshot, parse_snapshot

TABLE_SUFFIXES = (".parquet", ".csv")


def read_table(path: Path) -> pd.DataFrame:
    """A CSV or Parquet file as a DataFrame; the error names the file."""
    path = Path(path)
    try:
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
        if path.suffix == ".csv":
            return pd.read_csv(path, keep_default_na=True)
    except (OSError, ValueError) as err:
        raise InputError([f"{path}: cannot read: {err}"], what="file") from err
    raise InputError([f"{path}: unsupported file type {path.suffix!r} (expected .csv or .parquet)"], what="file")


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
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise SnapshotError([f"{path}: not valid JSON: {err}"]) from err
    return parse_snapshot(doc)


def _clean(v: Any) -> Any:
    """Table cells to JSON values: NaN/NA become None, numpy scalars become Python."""
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
        return None
    return v.item() if hasattr(v, "item") else v


def snapshot_doc_from_tables(directory: Path) -> dict[str, Any]:
    """Assemble the JSON document of a snapshot stored as tables (validation comes after)."""
    paths = {name: _find_table(directory, name) for name in ("contacts", "agents", "agent_skills")}
    missing = [f"{directory}/{name}.{{parquet,csv}}: missing" for name, p in paths.items() if p is None]
    if missing:
        raise SnapshotError(missing)
    contacts = read_table(paths["contacts"])
    agents = read_table(paths["agents"])
    skills = read_table(paths["agent_skills"])
    meta_path = directory / "snapshot.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    skill_map: dict[str, dict[str, Any]] = {}
    for aid, intent, prof in zip(skills.get("agent_id", []), skills.get("intent", []), skills.get("proficiency", [])):
        skill_map.setdefault(str(aid), {})[str(intent)] = _clean(prof)
    agent_recs = []
    for rec in agents.to_dict("records"):
        rec = {k: _clean(v) for k, v in rec.items()}
        out: dict[str, Any] = {k: v for k, v in rec.items()
                               if not k.startswith(("capacity_", "load_")) and v is not None}
        langs = rec.get("languages")
        out["languages"] = [x.strip() for x in str(langs).split(";") if x.strip()] if langs is not None else []
        out["capacity"] = {ch: rec[f"capacity_{ch}"] for ch in CHANNELS if rec.get(f"capacity_{ch}") is not None}
        out["load"] = {ch: rec[f"load_{ch}"] for ch in CHANNELS if rec.get(f"load_{ch}") is not None}
        out["skills"] = skill_map.get(str(rec.get("agent_id")), {})
        agent_recs.append(out)
    contact_recs = [{k: _clean(v) for k, v in rec.items() if _clean(v) is not None}
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
        if fmt == "parquet":
            df.to_parquet(directory / f"{name}.parquet", index=False)
        else:
            df.to_csv(directory / f"{name}.csv", index=False)
    (directory / "snapshot.json").write_text(json.dumps({"snapshot_id": doc["snapshot_id"], "at": doc["at"]}))


def read_values(path: str | Path) -> pd.DataFrame:
    """Pair values ``contact_id, agent_id, value`` from CSV or Parquet (ids read as text)."""
    path = Path(path)
    if not path.exists():
        raise InputError([f"{path}: no such file"], what="values")
    if path.suffix == ".csv":
        return pd.read_csv(path, dtype={"contact_id": str, "agent_id": str})
    return read_table(path)


def result_frames(result: TickResult) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Assignments and unassigned as DataFrames (for CSV/Parquet output)."""
    d = result.to_dict()
    rows = [{k: v for k, v in a.items() if k != "alternatives"} for a in d["assignments"]]
    assigned = pd.DataFrame(rows, columns=["contact_id", "agent_id", "value", "score", "aging", "fairness"])
    unassigned = pd.DataFrame([{k: v for k, v in u.items() if k != "alternatives"} for u in d["unassigned"]],
                              columns=["contact_id", "reason"])
    return assigned, unassigned


def write_result(result: TickResult, *, fmt: str, out: str | Path) -> list[Path]:
    """Write a result as JSON, or as one CSV/Parquet table of every contact (agent empty and
    ``reason`` set for the unassigned). Returns the paths written."""
    out = Path(out)
    if fmt == "json":
        out.write_text(json.dumps(result.to_dict(), indent=2))
        return [out]
    assigned, unassigned = result_frames(result)
    table = pd.concat([assigned.assign(reason=None), unassigned], ignore_index=True)
    table = table.sort_values("contact_id", kind="stable").reset_index(drop=True)
    if fmt == "csv":
        table.to_csv(out, index=False)
    elif fmt == "parquet":
        table.to_parquet(out, index=False)
    else:
        raise InputError([f"--format: unknown format {fmt!r}"], what="option")
    return [out]
