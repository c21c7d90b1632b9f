"""Queueing scenarios: a small JSON/YAML file (plus CSV tables) describing a centre.

A scenario directory holds ``scenario.json`` (or ``scenario.yaml``) with schema
``assign.scenario/1``: contact types with shares, arrivals (constant or per hour of week),
service times (exponential, lognormal, or an empirical sample per type and agent), patience
(none, exponential, or a Kaplan-Meier survival curve), staffing (constant or per hour of
week), optional agent names, a priority class and a pre-routing delay of identified callers
(``routing_delay``: Kaplan–Meier curves per type, ``routing_delay.csv``). ``assign calibrate`` writes one from a
real log; :func:`write_scenario` writes one from code. Reading checks everything and
reports every problem at once (:class:`~assign.errors.InputError`).
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from assign.constants import HOURS_PER_WEEK
from assign.errors import InputError

SCHEMA = "assign.scenario/1"

# What one simulation request may ask for (a request beyond them is refused, naming the
# limit): they keep one replication's memory in the low gigabytes (about 1 kB per contact).
MAX_DAYS = 400.0
MAX_AGENTS = 10_000
MAX_CONTACTS_PER_RUN = 1_000_000
MAX_RUNS = 10_000            # seeds x policies
MAX_WRAP_UP_S = 3600.0

try:  # YAML is optional: read/write it only where pyyaml is importable.
    import yaml as _yaml
except ImportError:  # pragma: no cover - pyyaml is installed in the project venv
    _yaml = None


@dataclass(frozen=True, kw_only=True)
class Arrivals:
    """``rate[type, hour_of_week]`` contacts per hour (a constant rate fills all 168 hours)."""

    kind: str
    rate: np.ndarray  # (n_types, 168)
    table: str | None = None


@dataclass(frozen=True, kw_only=True)
class Service:
    """Handle-time distribution. ``samples[(type, agent)]`` for empirical ones; agent ``""``
    means any agent."""

    kind: str
    mean_s: float | None = None
    cv: float | None = None
    samples: Mapping[tuple[str, str], np.ndarray] = field(default_factory=dict)
    table: str | None = None
    #: After-call work (s) already added to every empirical sample: the agent stays busy,
    #: the caller is gone. Simulated handle times (AHT) then include it.
    wrap_up_s: float = 0.0


@dataclass(frozen=True, kw_only=True)
class Patience:
    """Patience distribution: ``exponential`` (``mean_s``) or ``empirical`` Kaplan-Meier curves
    per type (``curves[type] = (t_s, survival)``, a right-continuous step function)."""

    kind: str
    mean_s: float | None = None
    curves: Mapping[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    table: str | None = None


@dataclass(frozen=True, kw_only=True)
class Staffing:
    """Agents on shift per hour of week (a constant fills all 168 hours). ``slots``: optional
    finer staffing, agents per slot of week of ``slot_minutes`` (Monday 00:00 first; table
    ``staffing_slots.csv``), which the simulator then follows instead of the hours."""

    kind: str
    agents: np.ndarray  # (168,) int
    table: str | None = None
    slots: np.ndarray | None = None  # (7 * 1440 / slot_minutes,) int
    slot_minutes: int | None = None
    slots_table: str | None = None


@dataclass(frozen=True, kw_only=True)
class RoutingDelay:
    """The pre-routing delay of identified callers (a customer id; unidentified callers have
    none): ``curves[type] = (t_s, survival)``, a right-continuous step survival per type, and
    ``pooled`` for the types without their own curve; every draw is multiplied by ``scale``.
    A draw below the curve's last survival (Kaplan–Meier with censoring may end above 0)
    takes the curve's last time."""

    curves: Mapping[str, tuple[np.ndarray, np.ndarray]]
    pooled: tuple[np.ndarray, np.ndarray]
    scale: float = 1.0

    def draw(self, rng: np.random.Generator, *, types: tuple[str, ...], typ: np.ndarray,
             identified: np.ndarray) -> np.ndarray:
        """Delays (s) of contacts with type codes ``typ`` (0 where not ``identified``)."""
        u = rng.random(len(typ))
        out = np.zeros(len(typ))
        for ti, name in enumerate(types):
            m = identified & (typ == ti)
            if m.any():
                t, surv = self.curves.get(name, self.pooled)
                k = np.searchsorted(-np.asarray(surv), -u[m], side="left")  # first t with S(t) <= u
                out[m] = np.asarray(t, float)[np.minimum(k, len(t) - 1)] * self.scale
        return out


@dataclass(frozen=True, kw_only=True)
class Scenario:
    """A validated scenario. ``types`` and ``shares`` are parallel; ``agent_names`` has one
    name per agent (generated when the file gives none)."""

    name: str
    start: datetime
    days: float
    types: tuple[str, ...]
    shares: np.ndarray
    arrivals: Arrivals
    service: Service
    patience: Patience | None
    staffing: Staffing
    agent_names: tuple[str, ...]
    priority_share: float = 0.0
    priority_credit_s: float = 0.0
    policy: str = "fcfs"
    routing_delay: RoutingDelay | None = None

    @property
    def n_agents(self) -> int:
        return len(self.agent_names)

    def hour_of_week(self, t_s: np.ndarray | float) -> np.ndarray:
        """Hour of week (0 = Monday 00h, in the start's time zone) at ``t_s`` seconds after start."""
        base = self.start.weekday() * 24 + self.start.hour + (self.start.minute * 60 + self.start.second) / 3600
        return (np.floor(base + np.asarray(t_s, dtype=float) / 3600.0).astype(np.int64)) % HOURS_PER_WEEK


# --------------------------------------------------------------------------- reading

def _num(p: list[str], path: str, x: Any, *, lo: float | None = None, strict: bool = False) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
        p.append(f"{path}: expected a finite number, got {x!r}")
        return None
    if lo is not None and (x <= lo if strict else x < lo):
        p.append(f"{path}: must be {'>' if strict else '>='} {lo}, got {x!r}")
        return None
    return float(x)


def _read_table(p: list[str], root: Path, path: str, name: Any, columns: tuple[str, ...]) -> pd.DataFrame | None:
    if not isinstance(name, str) or not name:
        p.append(f"{path}: expected a CSV file name, got {name!r}")
        return None
    f = root / name
    if not f.is_file():
        p.append(f"{path}: table {str(f)!r} does not exist")
        return None
    try:
        df = pd.read_csv(f, keep_default_na=False, na_values=[""], dtype={"type": str, "agent": str})
    except (ValueError, OSError) as err:
        p.append(f"{name}: cannot be read as CSV: {err}")
        return None
    missing = [c for c in columns if c not in df.columns]
    if missing:
        p.append(f"{name}: missing column(s) {', '.join(missing)}")
        return None
    return df


def _numeric_col(p: list[str], name: str, df: pd.DataFrame, col: str, *, lo: float | None = None) -> np.ndarray | None:
    v = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(~np.isfinite(v) | ((v < lo) if lo is not None else False))
    for i in bad[:20]:
        bound = "" if lo is None else f" >= {lo}"
        p.append(f"{name} row {i + 2}: {col} must be a number{bound}, got {df[col].iloc[i]!r}")
    if len(bad) > 20:
        p.append(f"{name}: {len(bad) - 20} more bad {col} values")
    return None if len(bad) else v


def _hour_col(p: list[str], name: str, df: pd.DataFrame) -> np.ndarray | None:
    h = _numeric_col(p, name, df, "hour_of_week", lo=0)
    if h is None:
        return None
    bad = np.flatnonzero((h != np.floor(h)) | (h >= HOURS_PER_WEEK))
    for i in bad[:20]:
        p.append(f"{name} row {i + 2}: hour_of_week must be a whole number 0..167, got {df['hour_of_week'].iloc[i]!r}")
    return None if len(bad) else h.astype(np.int64)


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario directory (or a ``scenario.json``/``.yaml`` file)."""
    path = Path(path)
    if path.is_dir():
        candidates = [path / "scenario.json", path / "scenario.yaml", path / "scenario.yml"]
        found = [c for c in candidates if c.is_file()]
        if not found:
            raise InputError([f"{path}: no scenario.json (or scenario.yaml) in this directory"], what="scenario")
        file = found[0]
    elif path.is_file():
        file = path
    else:
        raise InputError([f"{path}: no such scenario directory or file"], what="scenario")
    text = file.read_text()
    try:
        if file.suffix in (".yaml", ".yml"):
            if _yaml is None:
                raise InputError([f"{file}: YAML needs pyyaml, which is not installed; use JSON"], what="scenario")
            doc = _yaml.safe_load(text)
        else:
            doc = json.loads(text)
    except (ValueError, AttributeError) as err:  # json.JSONDecodeError and yaml.YAMLError
        raise InputError([f"{file.name}: not valid {file.suffix[1:].upper()}: {err}"], what="scenario") from err
    except Exception as err:  # yaml.YAMLError does not derive from ValueError
        raise InputError([f"{file.name}: not valid YAML: {err}"], what="scenario") from err
    return parse_scenario(doc, root=file.parent)


def parse_scenario(doc: Any, *, root: Path | str = ".") -> Scenario:
    """Validate a scenario document; tables are read relative to ``root``."""
    root = Path(root)
    p: list[str] = []
    if not isinstance(doc, Mapping):
        raise InputError([f"<document>: expected an object, got {type(doc).__name__}"], what="scenario")
    if doc.get("schema") != SCHEMA:
        p.append(f"schema: expected {SCHEMA!r}, got {doc.get('schema')!r}")
    name = doc.get("name", "scenario")
    if not isinstance(name, str):
        p.append(f"name: expected a string, got {name!r}")
        name = "scenario"
    start = _start(p, doc)
    days = _num(p, "days", doc.get("days", 1.0), lo=0, strict=True) or 1.0
    if days > MAX_DAYS:
        p.append(f"days: {days:g} is above the limit of {MAX_DAYS:g} days per run")
    types, share_arr = _types(p, doc.get("types"))
    arrivals = _arrivals(p, root, doc.get("arrivals"), types, share_arr)
    service = _service(p, root, doc.get("service"), types)
    patience = _patience(p, root, doc.get("patience"), types)
    staffing = _staffing(p, root, doc.get("staffing"))
    agent_names = _agent_names(p, doc.get("agents"), staffing=staffing, service=service)
    pr_share, pr_credit = _priority(p, doc.get("priority"))
    delay = _routing_delay(p, root, doc.get("routing_delay"), types)
    policy = doc.get("policy", "fcfs")
    if not isinstance(policy, str):
        p.append(f"policy: expected a policy name, got {policy!r}")
    if p:
        raise InputError(p, what="scenario")
    return Scenario(
        name=name,
        start=start,
        days=days,
        types=tuple(types),
        shares=share_arr,
        arrivals=arrivals,
        service=service,
        patience=patience,
        staffing=staffing,
        agent_names=agent_names,
        priority_share=pr_share,
        priority_credit_s=pr_credit,
        policy=policy,
        routing_delay=delay,
    )


def _start(p: list[str], doc: Mapping) -> datetime:
    """The scenario's start (ISO 8601; UTC when it has no zone); a Monday in 2026 by default."""
    start = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday
    if "start" in doc:
        try:
            start = datetime.fromisoformat(str(doc["start"]).replace("Z", "+00:00"))
            if start.tzinfo is None:
                start = start.replace(tzinfo=UTC)
        except ValueError:
            p.append(f"start: not an ISO-8601 time: {doc['start']!r}")
    return start


def _types(p: list[str], raw_types: Any) -> tuple[list[str], np.ndarray]:
    """Type names and their shares, normalised to sum to 1."""
    types: list[str] = []
    shares: list[float] = []
    if not isinstance(raw_types, list) or not raw_types:
        p.append(f"types: expected a non-empty list of {{name, share}}, got {raw_types!r}")
    else:
        for i, t in enumerate(raw_types):
            if not isinstance(t, Mapping) or not isinstance(t.get("name"), str) or not t.get("name"):
                p.append(f'types[{i}]: expected {{"name": str, "share": number}}, got {t!r}')
                continue
            if t["name"] in types:
                p.append(f"types[{i}].name: duplicate type {t['name']!r}")
            s = _num(p, f"types[{i}].share", t.get("share", 1.0), lo=0)
            types.append(t["name"])
            shares.append(s if s is not None else 0.0)
    share_arr = np.asarray(shares, dtype=float)
    if types and not (share_arr > 0).any():
        p.append("types: shares must not all be 0")
    elif types:  # scale by the largest first: shares like 1e308 would overflow the sum
        share_arr = share_arr / share_arr.max()
        share_arr = share_arr / share_arr.sum()
    return types, share_arr


def _agent_names(p: list[str], names: Any, *, staffing: Staffing | None, service: Service | None) -> tuple[str, ...]:
    """The agents' names (generated when the document gives none), checked against the staffing
    and the per-agent handle-time samples."""
    n_needed = int(staffing.agents.max()) if staffing is not None and len(staffing.agents) else 0
    if staffing is not None and staffing.slots is not None:
        n_needed = max(n_needed, int(staffing.slots.max(initial=0)))
    if names is None:
        agent_names: tuple[str, ...] = tuple(f"agent-{j:03d}" for j in range(n_needed))
    elif isinstance(names, list) and len(names) > MAX_AGENTS:
        p.append(f"agents: {len(names)} names, above the limit of {MAX_AGENTS} agents")
        agent_names = ()
    elif not isinstance(names, list) or not all(isinstance(x, str) and x for x in names):
        p.append(f"agents: expected a list of agent names, got {names!r}")
        agent_names = ()
    else:
        agent_names = tuple(names)
        if len(set(agent_names)) != len(agent_names):
            p.append("agents: duplicate agent names")
        if len(agent_names) < n_needed:
            p.append(f"agents: staffing needs up to {n_needed} agents but only {len(agent_names)} are named")
    if service is not None and service.kind == "empirical":
        known = set(agent_names)
        unknown = sorted({a for (_, a) in service.samples if a and a not in known})
        if unknown and names is not None:
            p.append(f"{service.table}: agent(s) not in the scenario's agents: {', '.join(unknown[:10])}")
    return agent_names


def _priority(p: list[str], pr: Any) -> tuple[float, float]:
    """(share, credit_s) of the priority class; (0, 0) without one."""
    if pr is None:
        return 0.0, 0.0
    if not isinstance(pr, Mapping):
        p.append(f'priority: expected {{"share": p, "credit_s": s}}, got {pr!r}')
        return 0.0, 0.0
    s = _num(p, "priority.share", pr.get("share"), lo=0)
    if s is not None and s > 1:
        p.append(f"priority.share: must be <= 1, got {s}")
    c = _num(p, "priority.credit_s", pr.get("credit_s", 90.0), lo=0)
    return s or 0.0, c or 0.0


def _kind(p: list[str], path: str, raw: Any, kinds: tuple[str, ...]) -> str | None:
    if not isinstance(raw, Mapping):
        p.append(f'{path}: expected an object with a "kind" ({" | ".join(kinds)}), got {raw!r}')
        return None
    k = raw.get("kind")
    if k not in kinds:
        p.append(f"{path}.kind: expected one of {', '.join(kinds)}, got {k!r}")
        return None
    return k


def _type_col(p: list[str], name: str, df: pd.DataFrame, types: list[str]) -> np.ndarray:
    t = df["type"].astype(str).to_numpy()
    bad = sorted(set(t) - set(types))
    if bad:
        p.append(
            f"{name}: unknown type(s) {', '.join(map(repr, bad[:10]))} (the scenario's types are {', '.join(types)})"
        )
    return t


def _arrivals(p, root, raw, types, shares) -> Arrivals | None:
    k = _kind(p, "arrivals", raw, ("constant", "hour_of_week"))
    if k == "constant":
        r = _num(p, "arrivals.rate_per_hour", raw.get("rate_per_hour"), lo=0)
        if r is None or not types:
            return None
        return Arrivals(kind=k, rate=np.repeat((r * shares)[:, None], HOURS_PER_WEEK, axis=1))
    if k == "hour_of_week":
        df = _read_table(p, root, "arrivals.table", raw.get("table"), ("type", "hour_of_week", "rate_per_hour"))
        if df is None:
            return None
        name = raw["table"]
        t = _type_col(p, name, df, types)
        h = _hour_col(p, name, df)
        r = _numeric_col(p, name, df, "rate_per_hour", lo=0)
        if h is None or r is None:
            return None
        rate = np.zeros((len(types), HOURS_PER_WEEK))
        idx = {n: i for i, n in enumerate(types)}
        seen = set()
        for i, (tt, hh, rr) in enumerate(zip(t, h, r)):
            if tt not in idx:
                continue
            if (tt, hh) in seen:
                p.append(f"{name} row {i + 2}: duplicate (type, hour_of_week) = ({tt!r}, {hh})")
            seen.add((tt, hh))
            rate[idx[tt], hh] = rr
        for tt in types:
            missing = HOURS_PER_WEEK - len({hh for (t2, hh) in seen if t2 == tt})
            if missing:
                p.append(
                    f"{name}: type {tt!r} has no row for {missing} hour(s) of week (give all 168, 0 where "
                    "no call arrives)"
                )
        return Arrivals(kind=k, rate=rate, table=name)
    return None


def _service(p, root, raw, types) -> Service | None:
    k = _kind(p, "service", raw, ("exponential", "lognormal", "empirical"))
    if k in ("exponential", "lognormal") and raw.get("wrap_up_s"):
        p.append("service.wrap_up_s: only with empirical service (add it to mean_s instead)")
    if k == "exponential":
        m = _num(p, "service.mean_s", raw.get("mean_s"), lo=0, strict=True)
        return Service(kind=k, mean_s=m) if m else None
    if k == "lognormal":
        m = _num(p, "service.mean_s", raw.get("mean_s"), lo=0, strict=True)
        cv = _num(p, "service.cv", raw.get("cv"), lo=0, strict=True)
        return Service(kind=k, mean_s=m, cv=cv) if m and cv else None
    if k == "empirical":
        df = _read_table(p, root, "service.table", raw.get("table"), ("type", "agent", "handle_s"))
        if df is None:
            return None
        name = raw["table"]
        t = _type_col(p, name, df, types)
        h = _numeric_col(p, name, df, "handle_s", lo=0)
        if h is None:
            return None
        wrap = _num(p, "service.wrap_up_s", raw.get("wrap_up_s", 0.0), lo=0)
        if wrap is not None and wrap > MAX_WRAP_UP_S:
            p.append(f"service.wrap_up_s: at most {MAX_WRAP_UP_S:g} s, got {wrap!r}")
        wrap = wrap if wrap is not None and wrap <= MAX_WRAP_UP_S else 0.0
        agent = df["agent"].fillna("").astype(str).to_numpy()
        samples: dict[tuple[str, str], np.ndarray] = {}
        frame = pd.DataFrame({"t": t, "a": agent, "h": h + wrap})
        for (tt, aa), g in frame.groupby(["t", "a"], sort=True):
            samples[(tt, aa)] = np.sort(g["h"].to_numpy(dtype=float))
        missing = [tt for tt in types if (tt, "") not in samples]
        if missing:
            p.append(f"{name}: no any-agent sample (empty agent) for type(s) {', '.join(missing)}")
        return Service(kind=k, samples=samples, table=name, wrap_up_s=wrap)
    return None


def _patience(p, root, raw, types) -> Patience | None:
    if raw is None:
        return None
    k = _kind(p, "patience", raw, ("exponential", "empirical"))
    if k == "exponential":
        m = _num(p, "patience.mean_s", raw.get("mean_s"), lo=0, strict=True)
        return Patience(kind=k, mean_s=m) if m else None
    if k == "empirical":
        df = _read_table(p, root, "patience.table", raw.get("table"), ("type", "t_s", "survival"))
        if df is None:
            return None
        name = raw["table"]
        t = _type_col(p, name, df, types)
        ts = _numeric_col(p, name, df, "t_s", lo=0)
        sv = _numeric_col(p, name, df, "survival", lo=0)
        if ts is None or sv is None:
            return None
        curves = {}
        for tt in types:
            m = t == tt
            if not m.any():
                p.append(f"{name}: no survival curve for type {tt!r}")
                continue
            order = np.argsort(ts[m], kind="stable")
            x, s = ts[m][order], sv[m][order]
            if (s > 1).any() or (np.diff(s) > 1e-12).any():
                p.append(f"{name}: type {tt!r}: survival must be within 0..1 and non-increasing in t_s")
            curves[tt] = (x, s)
        return Patience(kind=k, curves=curves, table=name)
    return None


def _routing_delay(p, root, raw, types) -> RoutingDelay | None:
    """The optional pre-routing delay of identified callers: a table ``type, t_s, survival``
    of step survival curves, an empty type for the pooled curve (required)."""
    if raw is None:
        return None
    if _kind(p, "routing_delay", raw, ("empirical",)) is None:
        return None
    if raw.get("applies_to", "identified") != "identified":
        p.append(f"routing_delay.applies_to: only 'identified' is supported, got {raw.get('applies_to')!r}")
    df = _read_table(p, root, "routing_delay.table", raw.get("table"), ("type", "t_s", "survival"))
    if df is None:
        return None
    name = raw["table"]
    t = df["type"].fillna("").astype(str).to_numpy()
    bad = sorted(set(t) - set(types) - {""})
    if bad:
        p.append(f"{name}: unknown type(s) {', '.join(map(repr, bad[:10]))} (the scenario's types are "
                 f"{', '.join(types)}; an empty type is the pooled curve)")
    ts = _numeric_col(p, name, df, "t_s", lo=0)
    sv = _numeric_col(p, name, df, "survival", lo=0)
    if ts is None or sv is None:
        return None
    curves = {}
    for tt in sorted(set(t)):
        m = t == tt
        order = np.argsort(ts[m], kind="stable")
        x, s = ts[m][order], sv[m][order]
        if (s > 1).any() or (np.diff(s) > 1e-12).any():
            p.append(f"{name}: type {tt!r}: survival must be within 0..1 and non-increasing in t_s")
        curves[tt] = (x, s)
    if "" not in curves:
        p.append(f"{name}: no pooled curve (rows with an empty type)")
        return None
    pooled = curves.pop("")
    return RoutingDelay(curves=curves, pooled=pooled)


def _staffing(p, root, raw) -> Staffing | None:
    k = _kind(p, "staffing", raw, ("constant", "hour_of_week"))
    if k == "constant":
        if "slots" in raw:
            p.append("staffing.slots: only with staffing kind hour_of_week")
        c = _num(p, "staffing.agents", raw.get("agents"), lo=1)
        if c is None:
            return None
        if c > MAX_AGENTS:
            p.append(f"staffing.agents: {c:g} is above the limit {MAX_AGENTS}")
            return None
        if c != int(c):
            p.append(f"staffing.agents: must be a whole number, got {c}")
        return Staffing(kind=k, agents=np.full(HOURS_PER_WEEK, int(c), dtype=np.int64))
    if k == "hour_of_week":
        df = _read_table(p, root, "staffing.table", raw.get("table"), ("hour_of_week", "agents"))
        if df is None:
            return None
        name = raw["table"]
        h = _hour_col(p, name, df)
        a = _numeric_col(p, name, df, "agents", lo=0)
        if h is None or a is None:
            return None
        out = np.zeros(HOURS_PER_WEEK, dtype=np.int64)
        frac = np.flatnonzero(a != np.round(a))
        for i in frac[:10]:
            p.append(
                f"{name} row {i + 2}: agents must be a whole number, got {float(a[i]):g} (round it yourself: "
                "the simulator staffs whole agents)"
            )
        big = np.flatnonzero(a > MAX_AGENTS)
        for i in big[:10]:
            p.append(f"{name} row {i + 2}: {a[i]:g} agents is above the limit {MAX_AGENTS}")
        out[h] = np.round(np.minimum(a, MAX_AGENTS)).astype(np.int64)
        if len(np.unique(h)) != len(h):
            p.append(f"{name}: duplicate hour_of_week rows")
        if len(np.unique(h)) < HOURS_PER_WEEK:
            p.append(
                f"{name}: no row for {HOURS_PER_WEEK - len(np.unique(h))} hour(s) of week "
                "(give all 168, 0 where nobody works)"
            )
        if out.max() < 1:
            p.append(f"{name}: no hour has any agent")
        slots = _staffing_slots(p, root, raw.get("slots")) if "slots" in raw else (None, None, None)
        return Staffing(kind=k, agents=out, table=name, slots=slots[0], slot_minutes=slots[1], slots_table=slots[2])
    return None


#: Columns of ``staffing_slots.csv`` (``weekday`` and ``time`` are for people; not read).
SLOT_COLUMNS = ("slot_of_week", "weekday", "time", "agents")


def _staffing_slots(p, root, raw) -> tuple[np.ndarray | None, int | None, str | None]:
    """``staffing.slots``: ``{minutes, table}``, agents per slot of week (every slot, once)."""
    if not isinstance(raw, Mapping):
        p.append(f"staffing.slots: expected an object with minutes and table, got {raw!r}")
        return None, None, None
    n0, m = len(p), raw.get("minutes")
    if isinstance(m, bool) or not isinstance(m, int) or not 0 < m <= 60 or 60 % m:
        p.append(f"staffing.slots.minutes: must be a whole divisor of 60, got {m!r}")
        return None, None, None
    df = _read_table(p, root, "staffing.slots.table", raw.get("table"), ("slot_of_week", "agents"))
    if df is None:
        return None, None, None
    name, n = raw["table"], 7 * 1440 // m
    k = _numeric_col(p, name, df, "slot_of_week", lo=0)
    a = _numeric_col(p, name, df, "agents", lo=0)
    if k is None or a is None:
        return None, None, None
    for i in np.flatnonzero((k != np.floor(k)) | (k >= n))[:10]:
        p.append(f"{name} row {i + 2}: slot_of_week must be a whole number 0..{n - 1}, "
                 f"got {df['slot_of_week'].iloc[i]!r}")
    for i in np.flatnonzero((a != np.round(a)) | (a > MAX_AGENTS))[:10]:
        p.append(f"{name} row {i + 2}: agents must be a whole number up to {MAX_AGENTS}, got {float(a[i]):g}")
    if len(k) != n or len(np.unique(k)) != n:
        p.append(f"{name}: expected each of the {n} slots of {m} minutes once, got {len(k)} rows "
                 f"({len(np.unique(k))} distinct slots)")
    if len(p) > n0:
        return None, None, None
    out = np.zeros(n, dtype=np.int64)
    out[k.astype(np.int64)] = a.astype(np.int64)
    return out, m, name


def slot_table(slots: np.ndarray) -> pd.DataFrame:
    """``staffing_slots.csv`` of agents per slot of week (Monday 00:00 first)."""
    n = len(slots)
    minutes = 7 * 1440 // n
    start = np.arange(n) * minutes
    days = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
    return pd.DataFrame({"slot_of_week": np.arange(n), "weekday": [days[x // 1440] for x in start],
                         "time": [f"{x % 1440 // 60:02d}:{x % 60:02d}" for x in start],
                         "agents": np.asarray(slots, dtype=np.int64)})


# --------------------------------------------------------------------------- writing


def write_scenario(scenario: Scenario, out_dir: str | Path, *, fmt: str = "json") -> Path:
    """Write ``scenario`` as a scenario directory (``scenario.json`` or ``.yaml`` + CSV tables)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    s = scenario
    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "name": s.name,
        "start": s.start.isoformat(),
        "days": s.days,
        "types": [{"name": t, "share": float(x)} for t, x in zip(s.types, s.shares)],
    }
    a = s.arrivals
    if a.kind == "constant":
        doc["arrivals"] = {"kind": "constant", "rate_per_hour": float(a.rate[:, 0].sum())}
    else:
        rows = [(t, h, a.rate[i, h]) for i, t in enumerate(s.types) for h in range(HOURS_PER_WEEK)]
        pd.DataFrame(rows, columns=["type", "hour_of_week", "rate_per_hour"]).to_csv(out / "arrivals.csv", index=False)
        doc["arrivals"] = {"kind": "hour_of_week", "table": "arrivals.csv"}
    sv = s.service
    if sv.kind == "exponential":
        doc["service"] = {"kind": "exponential", "mean_s": sv.mean_s}
    elif sv.kind == "lognormal":
        doc["service"] = {"kind": "lognormal", "mean_s": sv.mean_s, "cv": sv.cv}
    else:
        rows = [(t, ag, h - sv.wrap_up_s) for (t, ag), v in sv.samples.items() for h in v]
        pd.DataFrame(rows, columns=["type", "agent", "handle_s"]).to_csv(out / "handle.csv", index=False)
        doc["service"] = {"kind": "empirical", "table": "handle.csv"}
        if sv.wrap_up_s > 0:
            doc["service"]["wrap_up_s"] = sv.wrap_up_s
    pt = s.patience
    if pt is None:
        doc["patience"] = None
    elif pt.kind == "exponential":
        doc["patience"] = {"kind": "exponential", "mean_s": pt.mean_s}
    else:
        rows = [(t, x, y) for t, (xs, ys) in pt.curves.items() for x, y in zip(xs, ys)]
        pd.DataFrame(rows, columns=["type", "t_s", "survival"]).to_csv(out / "patience.csv", index=False)
        doc["patience"] = {"kind": "empirical", "table": "patience.csv"}
    st = s.staffing
    if st.kind == "constant":
        doc["staffing"] = {"kind": "constant", "agents": int(st.agents[0])}
    else:
        pd.DataFrame({"hour_of_week": np.arange(HOURS_PER_WEEK), "agents": st.agents}).to_csv(
            out / "staffing.csv", index=False
        )
        doc["staffing"] = {"kind": "hour_of_week", "table": "staffing.csv"}
        if st.slots is not None:
            slot_table(st.slots).to_csv(out / "staffing_slots.csv", index=False)
            doc["staffing"]["slots"] = {"minutes": st.slot_minutes, "table": "staffing_slots.csv"}
    doc["agents"] = list(s.agent_names)
    if s.priority_share > 0:
        doc["priority"] = {"share": s.priority_share, "credit_s": s.priority_credit_s}
    doc["policy"] = s.policy
    if s.routing_delay is not None:
        d = s.routing_delay
        rows = [(t, x, y) for t, (xs, ys) in [("", d.pooled), *d.curves.items()] for x, y in zip(xs, ys)]
        pd.DataFrame(rows, columns=["type", "t_s", "survival"]).to_csv(out / "routing_delay.csv", index=False)
        doc["routing_delay"] = {"kind": "empirical", "applies_to": "identified", "table": "routing_delay.csv"}
    if fmt == "yaml":
        if _yaml is None:
            raise InputError(["fmt: YAML needs pyyaml, which is not installed"], what="scenario")
        f = out / "scenario.yaml"
        f.write_text(_yaml.safe_dump(doc, sort_keys=False))
    else:
        f = out / "scenario.json"
        f.write_text(json.dumps(doc, indent=2) + "\n")
    return f


def mmc_scenario(
    *,
    arrival_rate_per_hour: float,
    mean_service_s: float,
    agents: int,
    days: float = 1.0,
    patience_mean_s: float | None = None,
    name: str = "mmc",
) -> Scenario:
    """An M/M/c (or M/M/c+M with ``patience_mean_s``) scenario built in code: the validation case."""
    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "name": name,
        "days": days,
        "types": [{"name": "call", "share": 1.0}],
        "arrivals": {"kind": "constant", "rate_per_hour": arrival_rate_per_hour},
        "service": {"kind": "exponential", "mean_s": mean_service_s},
        "patience": None if patience_mean_s is None else {"kind": "exponential", "mean_s": patience_mean_s},
        "staffing": {"kind": "constant", "agents": agents},
    }
    return parse_scenario(doc)


def expected_contacts(scenario: Scenario, *, days: float) -> float:
    """Expected arrivals of ``days`` of the scenario (its hour-of-week rates summed)."""
    week = float(scenario.arrivals.rate.sum())
    whole, part = divmod(float(days) * 24.0, float(HOURS_PER_WEEK))
    hours = np.arange(int(np.ceil(part)))
    first = scenario.hour_of_week(hours * 3600.0)
    return whole * week + float(scenario.arrivals.rate[:, first].sum())
