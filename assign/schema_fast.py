"""The fast path of snapshot validation: the common, well-formed document checked in bulk.

:func:`assign.schema.parse_snapshot` tries :func:`fast_parse` first. It checks a document with
whole-column operations (the set of types of a column, set membership for language codes and
channels, numpy for ranges, one UTF-8 encode for all the text) and builds the
:class:`~assign.schema.Snapshot` straight from the columns, without a dict per record. It
either returns exactly the Snapshot the detailed validator would build, or None as soon as
anything is wrong *or merely unusual* (a Mapping that is not a dict, a numpy number, a field
name that looks like a typo); then the detailed validator runs and reports every problem. The
fast path never words a problem, so the messages are the detailed path's by construction.
"""
from __future__ import annotations

from datetime import UTC, datetime
from itertools import chain, repeat
from operator import itemgetter
from typing import Any

import numpy as np

from assign.schema import (
    AGENT_DEFAULTS,
    AGENT_FIELDS,
    CHANNEL_INDEX,
    CHANNELS,
    CONTACT_DEFAULTS,
    CONTACT_FIELDS,
    ISO639_1,
    MAX_CAPACITY,
    MAX_SKILL_CELLS,
    SCHEMA,
    TOP_FIELDS,
    Agents,
    Contacts,
    Snapshot,
    _parse_time,
    _Problems,
)
from assign.validate import Problems

_TOP = frozenset(TOP_FIELDS)
_C_KNOWN, _A_KNOWN = frozenset(CONTACT_FIELDS), frozenset(AGENT_FIELDS)
_C_REQUIRED = frozenset(("contact_id", "channel", "intent", "language"))
_A_REQUIRED = frozenset(("agent_id", "languages", "skills", "capacity"))
_NUMBER_TYPES = frozenset((int, float))  # exact types: bool, numpy numbers and subclasses defer
_TEXT = frozenset((str,))
_CUSTOMER_TYPES = frozenset((str, int, type(None)))
_CHANNEL_SET = frozenset(CHANNELS)


class _Defer(Exception):
    """The document is not the common well-formed case: let the detailed validator decide."""


def fast_parse(doc: Any) -> Snapshot | None:
    """The Snapshot of a well-formed document, or None where the detailed validator must run."""
    try:
        return _parse(doc)
    except Exception:  # anything unexpected is the detailed validator's to report
        return None


def _parse(doc: Any) -> Snapshot:
    if type(doc) is not dict:
        raise _Defer
    _known_names("", doc, TOP_FIELDS, _TOP)
    if doc.get("schema", SCHEMA) != SCHEMA:
        raise _Defer
    snapshot_id = doc.get("snapshot_id", "snapshot")
    texts: list[list[str]] = [[snapshot_id]]
    p = _Problems()
    at = _parse_time(p, "at", doc.get("at"))
    raw_c, raw_a = doc.get("contacts", []), doc.get("agents", [])
    if p or type(raw_c) is not list or type(raw_a) is not list:
        raise _Defer
    c_cols, c_extra = _records(raw_c, "contacts", CONTACT_FIELDS, _C_KNOWN, _C_REQUIRED)
    a_cols, a_extra = _records(raw_a, "agents", AGENT_FIELDS, _A_KNOWN, _A_REQUIRED)
    any_text: list[list[str]] = []  # strings that may be empty but must be valid Unicode
    contacts = _contact_columns(c_cols, texts, any_text)
    agents = _agent_columns(a_cols, texts)
    for column in texts:
        _check_texts(column)
    try:  # one lone surrogate anywhere fails the whole encode
        "".join(chain.from_iterable(chain(texts, any_text))).encode("utf-8")
    except UnicodeEncodeError as err:
        raise _Defer from err
    return _build(contacts, agents, c_extra, a_extra, snapshot_id=snapshot_id,
                  at=at or datetime.now(UTC),
                  meta={k: v for k, v in doc.items() if k not in _TOP})


def _known_names(path: str, rec: dict, fields: tuple[str, ...], known: frozenset) -> bool:
    """True when ``rec`` has names beyond ``known``; defers when one is not a string or looks
    like a known name (the detailed validator's typo rule, run on the unknown names only)."""
    if rec.keys() <= known:
        return False
    p = Problems()
    p.lookalikes(path, [k for k in rec if k not in known], fields)
    if p:
        raise _Defer
    return True


def _records(recs: list, what: str, fields: tuple[str, ...], known: frozenset,
             required: frozenset) -> tuple[dict[str, list], tuple[dict, ...]]:
    """Records -> {field: column} (None where absent) and each record's extra fields."""
    if not set(map(type, recs)) <= {dict}:
        raise _Defer
    has_extra = not all(map(known.issuperset, recs))
    if has_extra:
        for rec in recs:
            _known_names(what, rec, fields, known)
    # a required field missing is a KeyError here: deferred
    cols = {k: list(map(itemgetter(k), recs)) if k in required else list(map(dict.get, recs, repeat(k)))
            for k in fields}
    if has_extra:
        extra = tuple({k: v for k, v in rec.items() if k not in known and v is not None} for rec in recs)
    else:
        extra = tuple({} for _ in recs)
    return cols, extra


def _check_texts(column: list) -> None:
    """Every item a non-empty str (Unicode validity is checked once for all text)."""
    if not set(map(type, column)) <= _TEXT or not all(map(str.strip, column)):
        raise _Defer


def _numbers(column: list, default: float | None, lo: float, hi: float | None, *,
             integer: bool = False) -> np.ndarray:
    """A float64 column of finite real numbers within [lo, hi] (None -> ``default``)."""
    if default is not None:
        column = [default if v is None else v for v in column]
    if not set(map(type, column)) <= _NUMBER_TYPES:
        raise _Defer
    arr = np.array(column, dtype=np.float64)  # an int too large for a float raises: deferred
    if arr.size and not (np.isfinite(arr).all() and arr.min() >= lo and (hi is None or arr.max() <= hi)):
        raise _Defer
    if integer and arr.size and not (arr == np.trunc(arr)).all():
        raise _Defer
    return arr


def _optional_texts(column: list, texts: list[list[str]]) -> list:
    present = [v for v in column if v is not None]
    texts.append(present)
    return column


def _contact_columns(cols: dict[str, list], texts: list[list[str]], any_text: list[list[str]]) -> dict[str, Any]:
    ids, intents = cols["contact_id"], cols["intent"]
    texts += [ids, list(set(intents))]
    if len(set(ids)) != len(ids) or not set(cols["language"]) <= ISO639_1:
        raise _Defer
    out: dict[str, Any] = {"ids": ids, "intent": intents, "language": cols["language"],
                           "channel": np.array([CHANNEL_INDEX[c] for c in cols["channel"]], dtype=np.int32),
                           "style": _optional_texts(cols["style"], texts)}
    for k, lo, hi in (("complexity", 0, 1), ("urgency", 0, 1), ("sentiment", -1, 1), ("waited_s", 0, None)):
        out[k] = _numbers(cols[k], CONTACT_DEFAULTS[k], lo, hi)
    for k in ("customer_id", "customer_tier"):
        column = cols[k]
        kinds = set(map(type, column))
        if not kinds <= _CUSTOMER_TYPES:
            raise _Defer
        if int in kinds:
            column = [str(v) if type(v) is int else v for v in column]
        any_text.append([v for v in column if v is not None])  # empty strings are allowed here
        out[k] = column
    return out


def _agent_columns(cols: dict[str, list], texts: list[list[str]]) -> dict[str, Any]:
    ids, langs, skills = cols["agent_id"], cols["languages"], cols["skills"]
    texts.append(ids)
    if len(set(ids)) != len(ids) or not set(map(type, langs)) <= {list} or not set(map(type, skills)) <= {dict}:
        raise _Defer
    flat_langs = list(chain.from_iterable(langs))
    if not set(flat_langs) <= ISO639_1:
        raise _Defer
    skill_keys = list(chain.from_iterable(skills))
    texts.append(list(set(skill_keys)))  # a few distinct names, repeated in every agent
    out: dict[str, Any] = {
        "ids": ids, "languages": langs, "flat_langs": flat_langs, "skill_keys": skill_keys,
        "skill_values": _numbers(list(chain.from_iterable(map(dict.values, skills))), None, 0, 1),
        "n_skills": list(map(len, skills)), "style": _optional_texts(cols["style"], texts)}
    load_col = [v or {} for v in cols["load"]]  # the detailed rule: a missing or empty load is none
    out["capacity"] = _channel_matrix(cols["capacity"])
    out["load"] = _channel_matrix(load_col)
    if (out["load"] > out["capacity"]).any():
        raise _Defer
    for k, lo, hi in (("tenure_days", 0, None), ("sentiment_handling", 0, 1), ("idle_s", 0, None)):
        out[k] = _numbers(cols[k], AGENT_DEFAULTS[k], lo, hi)
    return out


def _channel_matrix(maps: list) -> np.ndarray:
    """(n, channels) int32 from channel -> count objects (whole numbers in [0, MAX_CAPACITY];
    a channel left out is 0, which the detailed rules accept too)."""
    if not set(map(type, maps)) <= {dict} or not all(map(_CHANNEL_SET.issuperset, maps)):
        raise _Defer
    counts = list(chain.from_iterable(map(dict.get, maps, repeat(ch), repeat(0)) for ch in CHANNELS))
    arr = _numbers(counts, None, 0, MAX_CAPACITY, integer=True)
    return np.ascontiguousarray(arr.reshape(len(CHANNELS), len(maps)).T, dtype=np.int32)


def _build(c: dict[str, Any], a: dict[str, Any], c_extra: tuple[dict, ...], a_extra: tuple[dict, ...], *,
           snapshot_id: str, at: datetime, meta: dict[str, Any]) -> Snapshot:
    """The Snapshot :func:`assign.schema.build_snapshot` makes of the same records."""
    intents = sorted(set(c["intent"]))
    if len(a["ids"]) * len(intents) > MAX_SKILL_CELLS:
        raise _Defer
    languages = sorted(set(c["language"]) | set(a["flat_langs"]))
    styles = sorted({s for s in c["style"] if s} | {s for s in a["style"] if s})
    ii = {k: n for n, k in enumerate(intents)}
    li = {k: n for n, k in enumerate(languages)}
    si = {k: n for n, k in enumerate(styles)}
    n_a = len(a["ids"])
    speaks = np.zeros((n_a, len(languages)), dtype=bool)
    speaks[np.repeat(np.arange(n_a), [len(x) for x in a["languages"]]), [li[x] for x in a["flat_langs"]]] = True
    skill = np.zeros((n_a, len(intents)))
    owner = np.repeat(np.arange(n_a), a["n_skills"])
    col = np.fromiter(map(ii.get, a["skill_keys"], repeat(-1)), dtype=np.int64, count=len(a["skill_keys"]))
    known = col >= 0
    skill[owner[known], col[known]] = a["skill_values"][known]
    if not known.all():  # skills on intents no contact asks for: kept for the document
        unknown = np.flatnonzero(~known)
        who = owner[unknown]  # non-decreasing: each agent's unknown skills are one run
        starts = np.flatnonzero(np.r_[True, who[1:] != who[:-1]])
        keys, values = [a["skill_keys"][x] for x in unknown.tolist()], a["skill_values"][unknown].tolist()
        for j, lo, hi in zip(who[starts].tolist(), starts.tolist(), [*starts[1:].tolist(), len(unknown)]):
            a_extra[j]["skills"] = dict(zip(keys[lo:hi], values[lo:hi]))
    cs = Contacts(ids=c["ids"], channel=c["channel"], intent=[ii[x] for x in c["intent"]],
                  language=[li[x] for x in c["language"]], complexity=c["complexity"], urgency=c["urgency"],
                  sentiment=c["sentiment"], waited_s=c["waited_s"],
                  style=[si[s] if s else -1 for s in c["style"]], customer_id=c["customer_id"],
                  customer_tier=c["customer_tier"], extra=c_extra)
    ag = Agents(ids=a["ids"], speaks=speaks, skill=skill, tenure_days=a["tenure_days"],
                sentiment_handling=a["sentiment_handling"], style=[si[s] if s else -1 for s in a["style"]],
                capacity=a["capacity"], load=a["load"], idle_s=a["idle_s"], extra=a_extra)
    return Snapshot(snapshot_id=snapshot_id, at=at, intents=tuple(intents), languages=tuple(languages),
                    styles=tuple(styles), contacts=cs, agents=ag, meta=meta)
