"""Decision logs for off-policy evaluation (``assign.ope-log/1``): enough to rebuild every
routing window a logging policy solved, its choices with their propensities, and outcomes.

A log is a directory of Parquet tables plus ``meta.json``; the decision-log issue (9) can
write the same tables from the live router. Columns:

- ``windows``: ``window_id`` (int, unique), ``t_s`` (seconds after ``meta.start``), ``at``
  (tick time, UTC), ``log_id`` (replication or day the window belongs to).
- ``window_contacts``: the snapshot's contacts, one row per (window, contact), in queue
  order: ``window_id, queue_pos, contact_id, channel, intent, language, complexity, urgency,
  sentiment, waited_s, style, customer_id, customer_tier``.
- ``window_agents``: the snapshot's agents (those with a free slot some waiting contact may
  take): ``window_id, agent_id, capacity_voice, capacity_chat, capacity_email, load_voice,
  load_chat, load_email, idle_s`` (capacity as the router saw it: an agent going off shift
  has capacity = load).
- ``agents``: static agent attributes, ``agent_id, languages`` (``;``-joined)``, tenure_days,
  sentiment_handling, style``; ``agent_skills``: ``agent_id, intent, proficiency``.
- ``pairs``: the logging policy's propensity of every candidate pair of every window it
  could choose (``window_id, contact_id, agent_id, propensity``); a pair not listed has
  propensity 0. This is what support diagnostics need: how likely the logger was to try
  the pair a target picks.
- ``decisions``: ``decision_id, window_id, at, model_version, contact_id, agent_id, score,
  value, explored, propensity`` (the logged pair's propensity, as in ``pairs``).
- ``outcomes``: ``decision_id, resolved, csat, handle_s`` (outcomes join decisions by id;
  in production they arrive later). Synthetic logs add ``truth_p_resolved``, which no
  estimator reads (validation only).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from assign.schema import CHANNELS, Agents, Contacts, Snapshot
from assign.validate import Problems

LOG_SCHEMA = "assign.ope-log/1"
TABLES: dict[str, tuple[str, ...]] = {
    "windows": ("window_id", "t_s", "at", "log_id"),
    "window_contacts": ("window_id", "queue_pos", "contact_id", "channel", "intent", "language", "complexity",
                        "urgency", "sentiment", "waited_s", "style", "customer_id", "customer_tier"),
    "window_agents": ("window_id", "agent_id", *(f"capacity_{c}" for c in CHANNELS),
                      *(f"load_{c}" for c in CHANNELS), "idle_s"),
    "agents": ("agent_id", "languages", "tenure_days", "sentiment_handling", "style"),
    "agent_skills": ("agent_id", "intent", "proficiency"),
    "pairs": ("window_id", "contact_id", "agent_id", "propensity"),
    "decisions": ("decision_id", "window_id", "at", "model_version", "contact_id", "agent_id", "score", "value",
                  "explored", "propensity"),
    "outcomes": ("decision_id", "resolved", "csat", "handle_s"),
}


@dataclass(frozen=True, eq=False)
class OPELog:
    """A decision log in memory: ``meta`` (vocabularies, logging policy) and the tables."""

    meta: dict[str, Any]
    tables: dict[str, pd.DataFrame]
    _idx: dict[str, Any] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_idx", _index(self))

    @property
    def n_windows(self) -> int:
        return len(self.tables["windows"])

    def write(self, path: str | Path) -> Path:
        """Write the log to directory ``path`` (Parquet tables + meta.json)."""
        p = Path(path)
        p.mkdir(parents=True, exist_ok=True)
        (p / "meta.json").write_text(json.dumps(self.meta, indent=1, default=str))
        for name, df in self.tables.items():
            df.to_parquet(p / f"{name}.parquet", index=False)
        return p

    def snapshot(self, k: int) -> Snapshot:
        """The snapshot of window number ``k`` (row ``k`` of ``windows``), contacts in queue
        order; ``meta`` carries the rows of this window in the log's tables."""
        ix = self._idx
        c0, c1 = ix["c_off"][k], ix["c_off"][k + 1]
        a0, a1 = ix["a_off"][k], ix["a_off"][k + 1]
        cc = ix["contacts"]
        contacts = Contacts(**{name: arr[c0:c1] for name, arr in cc.items()})
        rows = ix["wa_agent"][a0:a1]
        st = ix["static"]
        agents = Agents(ids=st["ids"][rows], speaks=st["speaks"][rows], skill=st["skill"][rows],
                        tenure_days=st["tenure_days"][rows], sentiment_handling=st["sentiment_handling"][rows],
                        style=st["style"][rows], capacity=ix["wa_capacity"][a0:a1], load=ix["wa_load"][a0:a1],
                        idle_s=ix["wa_idle"][a0:a1])
        return Snapshot(snapshot_id=f"w{int(ix['window_id'][k])}", at=ix["at"][k],
                        intents=ix["intents"], languages=ix["languages"], styles=ix["styles"],
                        contacts=contacts, agents=agents,
                        meta={"window": k, "contact_rows": np.arange(c0, c1), "agent_rows": np.arange(a0, a1)})

    @property
    def index(self) -> dict[str, Any]:
        """Arrays derived once: window offsets into ``window_contacts`` / ``window_agents``
        (``c_off``, ``a_off``), coded contact columns, static agent matrices."""
        return self._idx


def read_log(path: str | Path) -> OPELog:
    """Read and validate a log directory; every problem is named (InputError)."""
    p = Path(path)
    problems = Problems()
    if not p.is_dir():
        problems.add(str(p), "no such log directory")
        problems.raise_if_any(what="OPE log")
    meta_path = p / "meta.json"
    meta: dict[str, Any] = {}
    if not meta_path.is_file():
        problems.add(str(meta_path), "missing")
    else:
        try:
            meta = json.loads(meta_path.read_text())
        except ValueError as err:
            problems.add(str(meta_path), f"not JSON: {err}")
    tables: dict[str, pd.DataFrame] = {}
    for name in TABLES:
        f = p / f"{name}.parquet"
        if not f.is_file():
            problems.add(str(f), "missing")
            continue
        try:
            tables[name] = pd.read_parquet(f)
        except (OSError, ValueError) as err:
            problems.add(str(f), f"cannot be read: {err}")
    problems.raise_if_any(what="OPE log")
    return make_log(meta=meta, tables=tables, where=str(p))


def make_log(*, meta: dict[str, Any], tables: dict[str, pd.DataFrame], where: str = "log") -> OPELog:
    """Validate tables and meta and build the log (sorted by window, queue position)."""
    problems = Problems()
    if meta.get("schema") != LOG_SCHEMA:
        problems.add(f"{where}/meta.json.schema", f"expected {LOG_SCHEMA!r}, got {meta.get('schema')!r}")
    for key in ("intents", "languages", "styles"):
        if not isinstance(meta.get(key), list):
            problems.add(f"{where}/meta.json.{key}", "missing (a list of names)")
    for name, cols in TABLES.items():
        missing = [c for c in cols if c not in tables.get(name, pd.DataFrame()).columns]
        if missing:
            problems.add(f"{where}/{name}", f"missing columns {', '.join(missing)}")
    problems.raise_if_any(what="OPE log")
    t = dict(tables)
    t["windows"] = t["windows"].sort_values("window_id", kind="stable").reset_index(drop=True)
    t["window_contacts"] = t["window_contacts"].sort_values(["window_id", "queue_pos"], kind="stable").reset_index(
        drop=True)
    t["window_agents"] = t["window_agents"].sort_values(["window_id", "agent_id"], kind="stable").reset_index(
        drop=True)
    _check_tables(problems, t, meta, where)
    problems.raise_if_any(what="OPE log")
    return OPELog(meta=dict(meta), tables=t)


def _check_tables(problems: Problems, t: dict[str, pd.DataFrame], meta: dict[str, Any], where: str) -> None:
    """Keys that must exist, codes that must be known, numbers that must be in range."""
    wid = t["windows"]["window_id"]
    if wid.duplicated().any():
        problems.add(f"{where}/windows.window_id", f"{int(wid.duplicated().sum())} duplicate ids")
    known = set(wid.tolist())
    for name in ("window_contacts", "window_agents", "pairs", "decisions"):
        bad = ~t[name]["window_id"].isin(known)
        if bad.any():
            problems.add(f"{where}/{name}.window_id", f"{int(bad.sum())} rows name unknown windows "
                                                      f"(first row {int(np.flatnonzero(bad)[0])})")
    vocab = {"channel": CHANNELS, "intent": meta["intents"], "language": meta["languages"]}
    wc = t["window_contacts"]
    for col, names in vocab.items():
        bad = ~wc[col].isin(names)
        if bad.any():
            problems.add(f"{where}/window_contacts.{col}", f"{int(bad.sum())} unknown codes, e.g. "
                                                          f"{wc[col][bad].iloc[0]!r}")
    ag_ids = set(t["agents"]["agent_id"].tolist())
    for name in ("window_agents", "agent_skills", "pairs", "decisions"):
        bad = ~t[name]["agent_id"].isin(ag_ids)
        if bad.any():
            problems.add(f"{where}/{name}.agent_id", f"{int(bad.sum())} rows name unknown agents")
    for name in ("pairs", "decisions"):
        p = pd.to_numeric(t[name]["propensity"], errors="coerce").to_numpy(float)
        bad = ~((p > 0) & (p <= 1))
        if bad.any():
            problems.add(f"{where}/{name}.propensity", f"{int(bad.sum())} values outside (0, 1], "
                                                      f"first at row {int(np.flatnonzero(bad)[0])}")
    keys = set(zip(wc["window_id"], wc["contact_id"]))
    d = t["decisions"]
    bad = [k for k, key in enumerate(zip(d["window_id"], d["contact_id"])) if key not in keys]
    if bad:
        problems.add(f"{where}/decisions.contact_id", f"{len(bad)} decisions name a contact not in their "
                                                      f"window's snapshot (first row {bad[0]})")
    if t["decisions"]["decision_id"].duplicated().any():
        problems.add(f"{where}/decisions.decision_id", "duplicate ids")
    bad = ~t["outcomes"]["decision_id"].isin(set(d["decision_id"].tolist()))
    if bad.any():
        problems.add(f"{where}/outcomes.decision_id", f"{int(bad.sum())} outcomes of unknown decisions")


def _codes(values: pd.Series, names: Any) -> np.ndarray:
    return pd.Categorical(values, categories=list(names)).codes.astype(np.int64)


def _index(log: OPELog) -> dict[str, Any]:
    t, meta = log.tables, log.meta
    intents, languages, styles = tuple(meta["intents"]), tuple(meta["languages"]), tuple(meta["styles"])
    win = t["windows"]["window_id"].to_numpy(np.int64)
    wc, wa, ag = t["window_contacts"], t["window_agents"], t["agents"]
    c_off = np.searchsorted(wc["window_id"].to_numpy(np.int64), win, side="left")
    a_off = np.searchsorted(wa["window_id"].to_numpy(np.int64), win, side="left")
    c_off = np.r_[c_off, len(wc)]
    a_off = np.r_[a_off, len(wa)]
    contacts = {
        "ids": wc["contact_id"].astype(str).to_numpy(object), "channel": _codes(wc["channel"], CHANNELS),
        "intent": _codes(wc["intent"], intents), "language": _codes(wc["language"], languages),
        "complexity": wc["complexity"].to_numpy(float), "urgency": wc["urgency"].to_numpy(float),
        "sentiment": wc["sentiment"].to_numpy(float), "waited_s": wc["waited_s"].to_numpy(float),
        "style": _codes(wc["style"], styles), "customer_id": wc["customer_id"].to_numpy(object),
        "customer_tier": wc["customer_tier"].to_numpy(object)}
    ag_ids = ag["agent_id"].astype(str).to_numpy(object)
    row_of = {a: k for k, a in enumerate(ag_ids)}
    speaks = np.zeros((len(ag), len(languages)), bool)
    for j, langs in enumerate(ag["languages"]):
        for x in str(langs).split(";"):
            if x in languages:
                speaks[j, languages.index(x)] = True
    sk = t["agent_skills"]
    skill = np.zeros((len(ag), len(intents)))
    ok = sk["intent"].isin(intents).to_numpy()
    skill[[row_of[a] for a in sk["agent_id"][ok]], _codes(sk["intent"][ok], intents)] = sk["proficiency"][ok]
    static = {"ids": ag_ids, "speaks": speaks, "skill": skill, "tenure_days": ag["tenure_days"].to_numpy(float),
                  "sentiment_handling": ag["sentiment_handling"].to_numpy(float), "style": _codes(ag["style"], styles)}
    at = pd.to_datetime(t["windows"]["at"], utc=True)
    return {
        "window_id": win,
        "at": [x.to_pydatetime() for x in at],
        "c_off": c_off,
        "a_off": a_off,
        "contacts": contacts,
        "static": static,
        "agent_row": row_of,
        "wa_agent": np.array([row_of[a] for a in wa["agent_id"]], dtype=np.int64),
        "wa_capacity": wa[[f"capacity_{c}" for c in CHANNELS]].to_numpy(np.int32),
        "wa_load": wa[[f"load_{c}" for c in CHANNELS]].to_numpy(np.int32),
        "wa_idle": wa["idle_s"].to_numpy(float),
        "intents": intents,
        "languages": languages,
        "styles": styles,
        "start": datetime.fromisoformat(meta["start"]) if isinstance(meta.get("start"), str) else None,
    }
