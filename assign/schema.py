"""Snapshot contract: what a routing tick sees, validated and turned into arrays once.

A snapshot is the queue at one instant: the contacts waiting and the agents with their
capacity. People hand it in as JSON (``assign.snapshot/1``) or as tables (see ``assign.io``);
inside, every stage works on the columnar, integer-coded :class:`Snapshot`.

Validation reports every problem at once, each with its path
(``contacts[17].language: unknown code 'xx'``), and raises :class:`SnapshotError`.
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from numba import njit

from assign.errors import InputError, SnapshotError
from assign.validate import Problems, brief, is_number, is_unicode

SCHEMA = "assign.snapshot/1"
CHANNELS: tuple[str, ...] = ("voice", "chat", "email")
CHANNEL_INDEX = {c: i for i, c in enumerate(CHANNELS)}

ISO639_1 = frozenset(
    """aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs cu cv
    cy da de dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht
    hu hy hz ia id ie ig ii ik io is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la
    lb lg li ln lo lt lu lv mg mh mi mk ml mn mr ms mt my na nb nd ne ng nl nn no nr nv ny oc oj
    om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se sg si sk sl sm sn so sq sr ss st su sv
    sw ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi vo wa wo xh yi yo za zh zu""".split()
)

#: Defaults of the optional fields, as documented in the README.
CONTACT_DEFAULTS: dict[str, Any] = {
    "complexity": 0.5,
    "urgency": 0.5,
    "sentiment": 0.0,
    "waited_s": 0.0,
    "style": None,
    "customer_id": None,
    "customer_tier": None,
}
AGENT_DEFAULTS: dict[str, Any] = {
    "load": {},
    "tenure_days": 0.0,
    "sentiment_handling": 0.5,
    "style": None,
    "idle_s": 0.0,
}
CONTACT_FIELDS = ("contact_id", "channel", "intent", "language", *CONTACT_DEFAULTS)
AGENT_FIELDS = ("agent_id", "languages", "skills", "capacity", *AGENT_DEFAULTS)

_LANG_RE = re.compile(r"^[a-z]{2}$")
TOP_FIELDS = ("schema", "snapshot_id", "at", "contacts", "agents")

#: Most concurrent contacts an agent may take on one channel (capacities are int32 inside).
MAX_CAPACITY = 10_000
#: Most cells of the agents x intents skill matrix (agents x distinct intents of the contacts):
#: bounds a snapshot's memory (8 bytes a cell, a few copies per tick) whatever its shape.
MAX_SKILL_CELLS = 20_000_000


def _f64(x: Any) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=np.float64)


def _i32(x: Any, name: str = "codes") -> np.ndarray:
    """int32 without numpy's silent wrap-around (2**32 would become code 0)."""
    wide = np.asarray(x)
    if wide.dtype == np.int32:
        return np.ascontiguousarray(wide)  # nothing to check: already int32
    if wide.dtype.kind == "f" and wide.size and not np.isfinite(wide).all():
        raise SnapshotError([f"{name}: non-finite value where an integer belongs"])
    if wide.size and wide.dtype.kind in "iuf" and (wide.min() < -2**31 or wide.max() >= 2**31):
        raise SnapshotError([f"{name}: value {wide.max() if wide.max() >= 2**31 else wide.min()} "
                             "outside the int32 range"])
    return np.ascontiguousarray(wide, dtype=np.int32)


def _obj(x: Any) -> np.ndarray:
    if isinstance(x, np.ndarray) and x.dtype == object and x.ndim == 1:
        return x.copy()  # already a column of objects: a plain copy, not an element-wise rebuild
    out = np.empty(len(x), dtype=object)
    out[:] = list(x)
    return out


@dataclass(frozen=True, eq=False)
class Contacts:
    """Waiting contacts as columns. Codes index the vocabularies of the owning snapshot.

    ``channel`` indexes :data:`CHANNELS`; ``intent``, ``language`` and ``style`` index
    ``Snapshot.intents``, ``.languages`` and ``.styles`` (``style`` is -1 when absent).
    """

    ids: np.ndarray
    channel: np.ndarray
    intent: np.ndarray
    language: np.ndarray
    complexity: np.ndarray
    urgency: np.ndarray
    sentiment: np.ndarray
    waited_s: np.ndarray
    style: np.ndarray
    customer_id: np.ndarray
    customer_tier: np.ndarray
    extra: tuple[Mapping[str, Any], ...] | None = None

    def __post_init__(self) -> None:
        n = len(self.ids)
        for name, conv in (("ids", _obj), ("customer_id", _obj), ("customer_tier", _obj),
                           ("channel", _i32), ("intent", _i32), ("language", _i32),
                           ("style", _i32), ("complexity", _f64), ("urgency", _f64),
                           ("sentiment", _f64), ("waited_s", _f64)):
            arr = conv(getattr(self, name), f"Contacts.{name}") if conv is _i32 else conv(getattr(self, name))
            if arr.shape != (n,):
                raise SnapshotError([f"Contacts.{name}: expected shape ({n},), got {arr.shape}"])
            object.__setattr__(self, name, arr)

    def __len__(self) -> int:
        return len(self.ids)

    def take(self, rows: np.ndarray, *, waited_s: np.ndarray) -> Contacts:
        """The contacts at ``rows`` (extras kept) with new waiting times: a block of validated
        columns gathered by row is valid as it is, so only ``waited_s`` is converted and checked
        (the simulator builds thousands of small snapshots from one stream this way)."""
        w = _f64(waited_s)
        if w.shape != (len(rows),):
            raise SnapshotError([f"Contacts.waited_s: expected shape ({len(rows)},), got {w.shape}"])
        return _taken(self, _CONTACT_ROWS, rows, waited_s=w)


@dataclass(frozen=True, eq=False)
class Agents:
    """Agents as columns and small matrices.

    ``speaks`` is (n_agents, n_languages) bool; ``skill`` is (n_agents, n_intents) with 0.0
    where the agent has no skill for the intent; ``capacity`` and ``load`` are
    (n_agents, len(CHANNELS)) integer concurrency limits and current loads.
    """

    ids: np.ndarray
    speaks: np.ndarray
    skill: np.ndarray
    tenure_days: np.ndarray
    sentiment_handling: np.ndarray
    style: np.ndarray
    capacity: np.ndarray
    load: np.ndarray
    idle_s: np.ndarray
    extra: tuple[Mapping[str, Any], ...] | None = None

    def __post_init__(self) -> None:
        n = len(self.ids)
        object.__setattr__(self, "ids", _obj(self.ids))
        for name in ("tenure_days", "sentiment_handling", "idle_s"):
            object.__setattr__(self, name, _f64(getattr(self, name)))
        object.__setattr__(self, "style", _i32(self.style, "Agents.style"))
        object.__setattr__(self, "speaks", np.ascontiguousarray(self.speaks, dtype=bool))
        object.__setattr__(self, "skill", _f64(self.skill))
        for name in ("capacity", "load"):
            arr = _i32(getattr(self, name), f"Agents.{name}").reshape(n, len(CHANNELS))
            object.__setattr__(self, name, arr)
        for name in ("tenure_days", "sentiment_handling", "idle_s", "style"):
            if getattr(self, name).shape != (n,):
                raise SnapshotError([f"Agents.{name}: expected shape ({n},)"])
        if self.speaks.ndim != 2 or self.speaks.shape[0] != n:
            raise SnapshotError(["Agents.speaks: expected shape (n_agents, n_languages)"])
        if self.skill.ndim != 2 or self.skill.shape[0] != n:
            raise SnapshotError(["Agents.skill: expected shape (n_agents, n_intents)"])

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def free(self) -> np.ndarray:
        """Free concurrency per agent and channel: capacity minus load, never below 0."""
        return np.maximum(self.capacity - self.load, 0)

    def take(self, rows: np.ndarray, *, capacity: np.ndarray, load: np.ndarray, idle_s: np.ndarray,
             tenure_days: np.ndarray | None = None) -> Agents:
        """The agents at ``rows`` (extras kept) with their capacity, load and idle time now, and
        their tenure now where given: the gathered columns are valid as they are; the new ones
        are converted and checked."""
        n = len(rows)
        cap = _i32(capacity, "Agents.capacity").reshape(n, len(CHANNELS))
        ld = _i32(load, "Agents.load").reshape(n, len(CHANNELS))
        idle = _f64(idle_s)
        if idle.shape != (n,):
            raise SnapshotError([f"Agents.idle_s: expected shape ({n},)"])
        new = {"capacity": cap, "load": ld, "idle_s": idle}
        if tenure_days is not None:
            ten = _f64(tenure_days)
            if ten.shape != (n,) or not (np.isfinite(ten) & (ten >= 0)).all():
                raise SnapshotError([f"Agents.tenure_days: expected shape ({n},), finite and >= 0"])
            new["tenure_days"] = ten
        return _taken(self, _AGENT_ROWS, rows, **new)


_CONTACT_ROWS = ("ids", "channel", "intent", "language", "complexity", "urgency", "sentiment", "style", "customer_id",
                 "customer_tier")
_AGENT_ROWS = ("ids", "speaks", "skill", "tenure_days", "sentiment_handling", "style")


def _taken(block, names: tuple[str, ...], rows: np.ndarray, **new: np.ndarray):
    """A copy of the frozen column block ``block`` holding rows ``rows`` of the columns ``names``
    (a gather makes new contiguous arrays of the same dtypes) and the ``new`` columns as given,
    without running the constructor's conversions again."""
    out = object.__new__(type(block))
    cols = {k: getattr(block, k)[rows] for k in names}
    extra = None if block.extra is None else tuple(block.extra[k] for k in np.asarray(rows).tolist())
    out.__dict__.update(cols, extra=extra, **new)
    return out


@dataclass(frozen=True, eq=False)
class IdOrdered:
    """A snapshot's contacts and agents in canonical (id) order: row ``k`` of ``contacts`` is
    row ``contact_order[k]`` of the snapshot (extras dropped)."""

    contact_order: np.ndarray
    agent_order: np.ndarray
    contacts: Contacts
    agents: Agents


@dataclass(frozen=True, eq=False)
class Snapshot:
    """The queue at one instant, validated and integer-coded.

    Build it with :func:`parse_snapshot` from a JSON document (validates everything), or
    directly from arrays where the caller already guarantees the contract (the simulator).
    """

    snapshot_id: str
    at: datetime
    intents: tuple[str, ...]
    languages: tuple[str, ...]
    styles: tuple[str, ...]
    contacts: Contacts
    agents: Agents
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.agents.speaks.shape[1] != len(self.languages):
            raise SnapshotError(["Agents.speaks has a column per language of the snapshot"])
        if self.agents.skill.shape[1] != len(self.intents):
            raise SnapshotError(["Agents.skill has a column per intent of the snapshot"])
        check_codes(self)

    @property
    def n_contacts(self) -> int:
        return len(self.contacts)

    @property
    def n_agents(self) -> int:
        return len(self.agents)

    def in_id_order(self) -> IdOrdered:
        """Contacts and agents sorted by id (stable), with the orders that did it, so that
        input order never changes a tick's answer. Built once per tick."""
        c, a = self.contacts, self.agents
        if c.extra is None and a.extra is None and _in_order(c.ids) and _in_order(a.ids):
            co, ao = np.arange(len(c), dtype=np.intp), np.arange(len(a), dtype=np.intp)
            return IdOrdered(contact_order=co, agent_order=ao, contacts=c, agents=a)  # already in order
        co, ao = _id_order(c.ids), _id_order(a.ids)
        if c.extra is None and a.extra is None and _identity(co) and _identity(ao):
            return IdOrdered(contact_order=co, agent_order=ao, contacts=c, agents=a)  # already in order
        contacts = Contacts(ids=c.ids[co], channel=c.channel[co], intent=c.intent[co], language=c.language[co],
                            complexity=c.complexity[co], urgency=c.urgency[co], sentiment=c.sentiment[co],
                            waited_s=c.waited_s[co], style=c.style[co], customer_id=c.customer_id[co],
                            customer_tier=c.customer_tier[co])
        agents = Agents(ids=a.ids[ao], speaks=a.speaks[ao], skill=a.skill[ao], tenure_days=a.tenure_days[ao],
                        sentiment_handling=a.sentiment_handling[ao], style=a.style[ao], capacity=a.capacity[ao],
                        load=a.load[ao], idle_s=a.idle_s[ao])
        return IdOrdered(contact_order=co, agent_order=ao, contacts=contacts, agents=agents)

    def contact_proficiency(self) -> np.ndarray:
        """(n_contacts, n_agents) proficiency of every agent for every contact's intent."""
        return self.agents.skill[:, self.contacts.intent].T

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of this snapshot (``assign.snapshot/1``), extras included."""
        c, a = self.contacts, self.agents
        contacts = []
        for i in range(len(c)):
            rec = dict(c.extra[i]) if c.extra else {}
            rec.update(
                contact_id=c.ids[i], channel=CHANNELS[c.channel[i]], intent=self.intents[c.intent[i]],
                language=self.languages[c.language[i]], complexity=float(c.complexity[i]),
                urgency=float(c.urgency[i]), sentiment=float(c.sentiment[i]),
                waited_s=float(c.waited_s[i]),
                style=self.styles[c.style[i]] if c.style[i] >= 0 else None,
                customer_id=c.customer_id[i], customer_tier=c.customer_tier[i],
            )
            contacts.append(rec)
        agents = []
        for j in range(len(a)):
            rec = dict(a.extra[j]) if a.extra else {}
            rec.update(
                agent_id=a.ids[j],
                languages=[self.languages[k] for k in np.flatnonzero(a.speaks[j])],
                skills={**dict(rec.get("skills") or {}),
                        **{self.intents[k]: float(a.skill[j, k]) for k in np.flatnonzero(a.skill[j])}},
                tenure_days=float(a.tenure_days[j]),
                sentiment_handling=float(a.sentiment_handling[j]),
                style=self.styles[a.style[j]] if a.style[j] >= 0 else None,
                capacity={ch: int(a.capacity[j, k]) for k, ch in enumerate(CHANNELS) if a.capacity[j, k]},
                load={ch: int(a.load[j, k]) for k, ch in enumerate(CHANNELS) if a.load[j, k]},
                idle_s=float(a.idle_s[j]),
            )
            agents.append(rec)
        return {
            "schema": SCHEMA,
            "snapshot_id": self.snapshot_id,
            "at": self.at.isoformat(),
            **dict(self.meta),
            "contacts": contacts,
            "agents": agents,
        }


def _identity(order: np.ndarray) -> bool:
    """Whether ``order`` leaves every row where it is."""
    return bool((order == np.arange(len(order))).all())


def _in_order(ids: np.ndarray) -> bool:
    """Whether a stable sort by id leaves an object column of ids as it is (the simulator's
    snapshots always are in order; checked at C speed: a sorted copy of a sorted list)."""
    if ids.dtype != object:
        return False
    seq = ids.tolist()
    return seq == sorted(seq)


def _id_order(ids: np.ndarray) -> np.ndarray:
    """``np.argsort(ids, kind="stable")`` of an object column of ids, by Python's (stable)
    sort: the same order, several times faster on strings (and linear on sorted input)."""
    if ids.dtype != object:
        return np.argsort(ids, kind="stable")
    return np.fromiter(sorted(range(len(ids)), key=ids.tolist().__getitem__), dtype=np.intp, count=len(ids))


def check_codes(snapshot: Snapshot) -> None:
    """Every integer code indexes its vocabulary: the numba kernels index arrays by these
    codes without bounds checks, so an out-of-range code read memory out of bounds (a
    segfault at code 10,000). Checked once, at construction, for every way a Snapshot is made."""
    c, a = snapshot.contacts, snapshot.agents
    if _codes_ok(c.channel, c.intent, c.language, c.style, a.style, a.capacity.reshape(-1), a.load.reshape(-1),
                 len(CHANNELS), len(snapshot.intents), len(snapshot.languages), len(snapshot.styles)):
        return  # the common case, in one pass; otherwise the detailed checks below name every problem
    p = _Problems()
    for path, codes, lo, n in (("contacts.channel", c.channel, 0, len(CHANNELS)),
                               ("contacts.intent", c.intent, 0, len(snapshot.intents)),
                               ("contacts.language", c.language, 0, len(snapshot.languages)),
                               ("contacts.style", c.style, -1, len(snapshot.styles)),
                               ("agents.style", a.style, -1, len(snapshot.styles))):
        bad = np.flatnonzero((codes < lo) | (codes >= n))
        if len(bad):
            p.add(f"{path}[{int(bad[0])}]", f"code {int(codes[bad[0]])} outside [{lo}, {n}) "
                  f"({len(bad)} such code{'s' if len(bad) > 1 else ''})")
    for path, arr in (("agents.capacity", a.capacity), ("agents.load", a.load)):
        if arr.size and arr.min() < 0:
            p.add(path, f"negative value {int(arr.min())}")
    p.raise_if_any()


@njit(cache=True)
def _codes_ok(channel, intent, language, style, agent_style, capacity, load, n_ch, n_int, n_lang, n_sty):
    """Whether :func:`check_codes` has nothing to report (int32 columns, one pass each)."""
    for i in range(len(channel)):
        if not (0 <= channel[i] < n_ch and 0 <= intent[i] < n_int and 0 <= language[i] < n_lang
                and -1 <= style[i] < n_sty):
            return False
    for j in range(len(agent_style)):
        if not -1 <= agent_style[j] < n_sty:
            return False
    for k in range(len(capacity)):
        if capacity[k] < 0 or load[k] < 0:
            return False
    return True


# ----------------------------------------------------------------------------- validation


class _Problems(Problems):
    """Snapshot problems: raised as :class:`SnapshotError`."""

    def raise_if_any(self, *, what: str = "snapshot", error: type[InputError] = SnapshotError) -> None:
        super().raise_if_any(what=what, error=error)


_is_number = is_number


def _number(p: _Problems, path: str, x: Any, *, lo: float | None = None, hi: float | None = None,
            integer: bool = False) -> float | None:
    return p.number(path, x, lo=lo, hi=hi, integer=integer)


def _text(p: _Problems, path: str, x: Any, *, optional: bool = False) -> str | None:
    return p.text(path, x, optional=optional)


def _language(p: _Problems, path: str, x: Any) -> str | None:
    code = _text(p, path, x)
    if code is None:
        return None
    if not _LANG_RE.match(code):
        p.add(path, f"malformed language code {brief(code)} (expected ISO 639-1, two lowercase letters)")
        return None
    if code not in ISO639_1:
        p.add(path, f"unknown code {brief(code)}")
        return None
    return code


def _channel_map(p: _Problems, path: str, x: Any) -> dict[str, int] | None:
    if not isinstance(x, Mapping):
        p.add(path, f"expected an object channel -> count, got {type(x).__name__}")
        return None
    out: dict[str, int] = {}
    for ch, v in x.items():
        if not isinstance(ch, str) or ch not in CHANNEL_INDEX:
            p.add(f"{path}.{ch}", f"unknown channel {brief(ch)} (expected one of {', '.join(CHANNELS)})")
            continue
        n = _number(p, f"{path}.{ch}", v, lo=0, hi=MAX_CAPACITY, integer=True)
        if n is not None:
            out[ch] = int(n)
    return out


def _check_record(p: _Problems, path: str, rec: Any, required: Sequence[str]) -> bool:
    if not isinstance(rec, Mapping):
        p.add(path, f"expected an object, got {type(rec).__name__}")
        return False
    missing = [k for k in required if k not in rec]
    for k in missing:
        p.add(f"{path}.{k}", "required field is missing")
    return True


def parse_snapshot(doc: Any) -> Snapshot:
    """Validate a snapshot document and return the integer-coded :class:`Snapshot`.

    Every problem is collected before raising :class:`SnapshotError`. Unknown fields are
    kept (``Contacts.extra`` / ``Agents.extra``) and otherwise ignored; optional fields
    missing from a record get :data:`CONTACT_DEFAULTS` / :data:`AGENT_DEFAULTS`.

    A well-formed document is checked in bulk (:mod:`assign.schema_fast`); any other goes
    through :func:`parse_snapshot_detailed`, which words every problem.
    """
    from assign.schema_fast import fast_parse  # imports this module: imported on first use

    snapshot = fast_parse(doc)
    return snapshot if snapshot is not None else parse_snapshot_detailed(doc)


def parse_snapshot_detailed(doc: Any) -> Snapshot:
    """:func:`parse_snapshot` field by field: the reference the fast path must agree with,
    and the one that reports the problems."""
    p = _Problems()
    if not isinstance(doc, Mapping):
        raise SnapshotError([f"<document>: expected a JSON object, got {type(doc).__name__}"])
    schema = doc.get("schema", SCHEMA)
    if schema != SCHEMA:
        p.add("schema", f"unsupported schema {brief(schema)} (expected {SCHEMA!r})")
    snapshot_id = _text(p, "snapshot_id", doc.get("snapshot_id", "snapshot"))
    at = _parse_time(p, "at", doc.get("at"))
    raw_contacts = doc.get("contacts", [])
    raw_agents = doc.get("agents", [])
    for name, raw in (("contacts", raw_contacts), ("agents", raw_agents)):
        if not isinstance(raw, list):
            p.add(name, f"expected a list, got {type(raw).__name__}")
    if not isinstance(raw_contacts, list) or not isinstance(raw_agents, list):
        p.raise_if_any()
    p.lookalikes("", doc.keys(), TOP_FIELDS)
    contacts = [_contact(p, i, rec) for i, rec in enumerate(raw_contacts)]
    agents = [_agent(p, j, rec) for j, rec in enumerate(raw_agents)]
    _duplicates(p, "contacts", "contact_id", raw_contacts)
    _duplicates(p, "agents", "agent_id", raw_agents)
    n_intents = len({c.get("intent") for c in contacts if c is not None and isinstance(c.get("intent"), str)})
    if len(raw_agents) * n_intents > MAX_SKILL_CELLS:
        p.add("<document>", f"{len(raw_agents)} agents x {n_intents} distinct intents exceed the limit of "
              f"{MAX_SKILL_CELLS} skill cells; split the snapshot")
    p.raise_if_any()
    meta = {k: v for k, v in doc.items() if k not in ("schema", "snapshot_id", "at", "contacts", "agents")}
    return build_snapshot(contacts=contacts, agents=agents, snapshot_id=snapshot_id or "snapshot",
                          at=at or datetime.now(UTC), meta=meta)


def _parse_time(p: _Problems, path: str, x: Any) -> datetime | None:
    if x is None:
        return None
    if not isinstance(x, str):
        p.add(path, f"expected an ISO-8601 time string, got {type(x).__name__}")
        return None
    try:
        t = datetime.fromisoformat(x.replace("Z", "+00:00"))
    except ValueError:
        p.add(path, f"not an ISO-8601 time: {brief(x)}")
        return None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _duplicates(p: _Problems, name: str, key: str, records: list[Any]) -> None:
    seen: dict[Any, int] = {}
    for i, rec in enumerate(records):
        if not isinstance(rec, Mapping) or not isinstance(rec.get(key), str):
            continue
        first = seen.setdefault(rec[key], i)
        if first != i:
            p.add(f"{name}[{i}].{key}", f"duplicate id {brief(rec[key])} (first at {name}[{first}])")


def _contact(p: _Problems, i: int, rec: Any) -> dict[str, Any] | None:
    path = f"contacts[{i}]"
    if not _check_record(p, path, rec, ("contact_id", "channel", "intent", "language")):
        return None
    n0 = len(p.items)
    p.lookalikes(path, rec.keys(), CONTACT_FIELDS)
    out = {**CONTACT_DEFAULTS, **{k: v for k, v in rec.items() if v is not None or k in CONTACT_DEFAULTS}}
    cid = _text(p, f"{path}.contact_id", rec.get("contact_id")) if "contact_id" in rec else None
    ch = rec.get("channel")
    if "channel" in rec and (not isinstance(ch, str) or ch not in CHANNEL_INDEX):
        p.add(f"{path}.channel", f"unknown channel {brief(ch)} (expected one of {', '.join(CHANNELS)})")
    if "intent" in rec:
        _text(p, f"{path}.intent", rec.get("intent"))
    if "language" in rec:
        _language(p, f"{path}.language", rec.get("language"))
    for k, lo, hi in (("complexity", 0, 1), ("urgency", 0, 1), ("sentiment", -1, 1), ("waited_s", 0, None)):
        if rec.get(k) is not None:
            _number(p, f"{path}.{k}", rec[k], lo=lo, hi=hi)
        else:
            out[k] = CONTACT_DEFAULTS[k]
    _text(p, f"{path}.style", rec.get("style"), optional=True)
    for k in ("customer_id", "customer_tier"):
        v = rec.get(k)
        if (v is not None and not isinstance(v, (str, int))) or isinstance(v, bool) or (
                isinstance(v, str) and not is_unicode(v)):
            p.add(f"{path}.{k}", f"expected a string of valid Unicode, got {type(v).__name__} {brief(v)}")
        elif v is not None:
            out[k] = str(v)
    if len(p.items) > n0 or cid is None:
        return None
    return out


def _agent(p: _Problems, j: int, rec: Any) -> dict[str, Any] | None:
    path = f"agents[{j}]"
    if not _check_record(p, path, rec, ("agent_id", "languages", "skills", "capacity")):
        return None
    n0 = len(p.items)
    p.lookalikes(path, rec.keys(), AGENT_FIELDS)
    out = {**AGENT_DEFAULTS, **{k: v for k, v in rec.items() if v is not None}}
    if "agent_id" in rec:
        _text(p, f"{path}.agent_id", rec.get("agent_id"))
    langs = rec.get("languages")
    if "languages" in rec:
        if not isinstance(langs, list):
            p.add(f"{path}.languages", f"expected a list of language codes, got {type(langs).__name__}")
        else:
            for k, code in enumerate(langs):
                _language(p, f"{path}.languages[{k}]", code)
    skills = rec.get("skills")
    if "skills" in rec:
        if not isinstance(skills, Mapping):
            p.add(f"{path}.skills", f"expected an object intent -> proficiency, got {type(skills).__name__}")
        else:
            for intent, v in skills.items():
                if _text(p, f"{path}.skills", intent) is not None:
                    _number(p, f"{path}.skills.{intent}", v, lo=0, hi=1)
    cap = _channel_map(p, f"{path}.capacity", rec["capacity"]) if "capacity" in rec else None
    load = _channel_map(p, f"{path}.load", rec.get("load") or {})
    if cap is not None and load is not None:
        for ch, n in load.items():
            if n > cap.get(ch, 0):
                p.add(f"{path}.load.{ch}", f"{n} exceeds capacity {cap.get(ch, 0)}")
    for k, lo, hi in (("tenure_days", 0, None), ("sentiment_handling", 0, 1), ("idle_s", 0, None)):
        if rec.get(k) is not None:
            _number(p, f"{path}.{k}", rec[k], lo=lo, hi=hi)
        else:
            out[k] = AGENT_DEFAULTS[k]
    _text(p, f"{path}.style", rec.get("style"), optional=True)
    if len(p.items) > n0:
        return None
    out["capacity"], out["load"] = cap, load
    return out


def build_snapshot(*, contacts: Sequence[Mapping[str, Any]], agents: Sequence[Mapping[str, Any]],
                   snapshot_id: str, at: datetime, meta: Mapping[str, Any] | None = None) -> Snapshot:
    """Encode already-valid contact and agent records (defaults filled) into a Snapshot."""
    # only the intents contacts ask for get a column: an agent's skill on an intent nobody asks
    # for cannot matter to this tick, and a column per name would make memory grow with
    # agents x names (kept for the document in ``Agents.extra["skills"]``)
    intents = sorted({c["intent"] for c in contacts})
    languages = sorted({c["language"] for c in contacts} | {x for a in agents for x in a["languages"]})
    styles = sorted({c["style"] for c in contacts if c.get("style")} | {a["style"] for a in agents if a.get("style")})
    ii = {k: n for n, k in enumerate(intents)}
    li = {k: n for n, k in enumerate(languages)}
    si = {k: n for n, k in enumerate(styles)}
    known_c = set(CONTACT_FIELDS)
    known_a = set(AGENT_FIELDS)
    cs = Contacts(
        ids=[c["contact_id"] for c in contacts],
        channel=[CHANNEL_INDEX[c["channel"]] for c in contacts],
        intent=[ii[c["intent"]] for c in contacts],
        language=[li[c["language"]] for c in contacts],
        complexity=[c["complexity"] for c in contacts],
        urgency=[c["urgency"] for c in contacts],
        sentiment=[c["sentiment"] for c in contacts],
        waited_s=[c["waited_s"] for c in contacts],
        style=[si[c["style"]] if c.get("style") else -1 for c in contacts],
        customer_id=[c.get("customer_id") for c in contacts],
        customer_tier=[c.get("customer_tier") for c in contacts],
        extra=tuple({k: v for k, v in c.items() if k not in known_c} for c in contacts),
    )
    n_a = len(agents)
    speaks = np.zeros((n_a, len(languages)), dtype=bool)
    skill = np.zeros((n_a, len(intents)))
    capacity = np.zeros((n_a, len(CHANNELS)), dtype=np.int32)
    load = np.zeros((n_a, len(CHANNELS)), dtype=np.int32)
    others: list[dict[str, float]] = []
    for j, a in enumerate(agents):
        speaks[j, [li[x] for x in a["languages"]]] = True
        other = {}
        for k, v in a["skills"].items():
            if k in ii:
                skill[j, ii[k]] = float(v)
            else:
                other[k] = float(v)
        others.append(other)
        for ch, n in (a.get("capacity") or {}).items():
            capacity[j, CHANNEL_INDEX[ch]] = n
        for ch, n in (a.get("load") or {}).items():
            load[j, CHANNEL_INDEX[ch]] = n
    ag = Agents(
        ids=[a["agent_id"] for a in agents],
        speaks=speaks,
        skill=skill,
        tenure_days=[a["tenure_days"] for a in agents],
        sentiment_handling=[a["sentiment_handling"] for a in agents],
        style=[si[a["style"]] if a.get("style") else -1 for a in agents],
        capacity=capacity,
        load=load,
        idle_s=[a["idle_s"] for a in agents],
        extra=tuple({**{k: v for k, v in a.items() if k not in known_a}, **({"skills": o} if o else {})}
                    for a, o in zip(agents, others)),
    )
    return Snapshot(snapshot_id=snapshot_id, at=at, intents=tuple(intents), languages=tuple(languages),
                    styles=tuple(styles), contacts=cs, agents=ag, meta=dict(meta or {}))
