"""The bulk fast path of snapshot validation against the field-by-field validator.

Soundness: whenever :func:`fast_parse` returns a Snapshot, the detailed validator accepts the
same document and builds an identical Snapshot. Agreement: :func:`parse_snapshot` (fast path
first) raises exactly the detailed validator's problems on every invalid document. And the
fast path is really taken on valid documents (else the speed-up would be a fiction).
"""
from __future__ import annotations

import copy
import json
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from assign.errors import SnapshotError
from assign.router import Router
from assign.schema import CHANNELS, ISO639_1, Snapshot, _id_order, parse_snapshot, parse_snapshot_detailed
from assign.schema_fast import fast_parse
from assign.workload import synthetic_snapshot

EXAMPLE = json.loads((Path(__file__).resolve().parent.parent / "examples" / "snapshot.json").read_text())
LANGS = [*sorted(ISO639_1)[:6], "en"]
INTENTS = ["billing", "card_lost", "fraud", "loan", "ÜberIntent"]
STYLES = ["driver", "amiable", "analytic"]


def same_snapshot(a: Snapshot, b: Snapshot) -> None:
    """Every field equal: ids, vocabularies, codes, numbers (types too), extras, meta."""
    assert (a.snapshot_id, a.intents, a.languages, a.styles) == (b.snapshot_id, b.intents, b.languages, b.styles)
    # a document without a time gets "now", read once per parse
    assert a.at == b.at or (abs(a.at - b.at) < timedelta(seconds=10) and a.at.tzinfo == b.at.tzinfo)
    assert dict(a.meta) == dict(b.meta)
    for part in ("contacts", "agents"):
        x, y = getattr(a, part), getattr(b, part)
        for name in x.__dataclass_fields__:
            u, v = getattr(x, name), getattr(y, name)
            if name == "extra":
                assert [dict(e) for e in u] == [dict(e) for e in v], name
                continue
            assert u.dtype == v.dtype and u.shape == v.shape, (part, name)
            assert np.array_equal(u, v), (part, name)
            if u.dtype == object:
                assert [type(t) for t in u] == [type(t) for t in v], (part, name)
    assert a.to_dict() | {"at": None} == b.to_dict() | {"at": None}


def number(lo, hi):
    ints = st.integers(int(np.ceil(lo)), int(hi if hi is not None else 10**6))
    return st.one_of(ints, st.floats(lo, hi if hi is not None else 1e9, allow_nan=False))


def maybe(draw, rec: dict, key: str, strategy) -> None:
    """Leave ``key`` out, set it to None, or to a drawn value."""
    how = draw(st.sampled_from(["absent", "none", "value", "value"]))
    if how == "none":
        rec[key] = None
    elif how == "value":
        rec[key] = draw(strategy)


@st.composite
def valid_docs(draw):
    n_c, n_a = draw(st.integers(0, 6)), draw(st.integers(0, 5))
    text = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=4).filter(str.strip)
    contacts = []
    for i in range(n_c):
        rec = {"contact_id": f"c{i}{draw(text)}", "channel": draw(st.sampled_from(CHANNELS)),
               "intent": draw(st.sampled_from(INTENTS)), "language": draw(st.sampled_from(LANGS))}
        for k, lo, hi in (("complexity", 0, 1), ("urgency", 0, 1), ("sentiment", -1, 1), ("waited_s", 0, None)):
            maybe(draw, rec, k, number(lo, hi))
        maybe(draw, rec, "style", st.sampled_from(STYLES))
        for k in ("customer_id", "customer_tier"):
            maybe(draw, rec, k, st.one_of(st.text(max_size=3), st.integers(-5, 10**12)))
        if draw(st.booleans()):
            rec["note"] = draw(st.one_of(st.none(), st.integers(), st.text(max_size=3)))
        contacts.append(dict(draw(st.permutations(list(rec.items())))))
    agents = []
    for j in range(n_a):
        cap = {ch: draw(st.one_of(st.integers(0, 5), st.sampled_from([1.0, 3.0])))
               for ch in draw(st.lists(st.sampled_from(CHANNELS), unique=True))}
        rec = {"agent_id": f"a{j}{draw(text)}", "languages": draw(st.lists(st.sampled_from(LANGS), max_size=3)),
               "skills": draw(st.dictionaries(st.sampled_from([*INTENTS, "unasked", "other"]), number(0, 1),
                                              max_size=4)),
               "capacity": cap}
        maybe(draw, rec, "load", st.one_of(st.just({}), st.just([]), st.just(0),
                                           st.just({ch: n for ch, n in cap.items() if n and draw(st.booleans())})))
        for k, lo, hi in (("tenure_days", 0, None), ("sentiment_handling", 0, 1), ("idle_s", 0, None)):
            maybe(draw, rec, k, number(lo, hi))
        maybe(draw, rec, "style", st.sampled_from(STYLES))
        if draw(st.booleans()):
            rec["team"] = draw(st.one_of(st.none(), st.text(max_size=3)))
        agents.append(rec)
    doc = {"contacts": contacts, "agents": agents}
    for key, strategy in (("schema", st.just("assign.snapshot/1")), ("snapshot_id", text)):
        if draw(st.booleans()):  # absent means the default; None is not allowed here
            doc[key] = draw(strategy)
    doc["at"] = draw(st.sampled_from(["2026-01-05T10:00:00Z", "2026-01-05T10:00:00+02:00", "2026-01-05 10:00"]))
    if draw(st.booleans()):
        doc["site"] = "lisbon"
    return doc


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_docs())
def test_valid_documents_take_the_fast_path_and_build_the_same_snapshot(doc):
    fast = fast_parse(copy.deepcopy(doc))
    assert fast is not None, "a valid document fell back to the detailed validator"
    same_snapshot(fast, parse_snapshot_detailed(copy.deepcopy(doc)))


SURROGATE = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
HOSTILE = st.one_of(
    st.none(), st.booleans(), st.floats(allow_nan=True, allow_infinity=True), st.integers(-(2**70), 2**70),
    st.just(10**400), st.text(max_size=4), st.text(SURROGATE, min_size=1, max_size=2),
    st.sampled_from(["voice", "Voice", "en", "EN", "xx", "en\n", "", " ", "billing", np.float64(0.5), np.int64(2)]),
    st.lists(st.sampled_from(["en", "xx", 3]), max_size=3),
    st.dictionaries(st.sampled_from(["voice", "chat", "sms", "Voice", "billing", ""]),
                    st.one_of(st.integers(-2, 20_000), st.floats(), st.booleans()), max_size=3))
KEYS = ["contact_id", "agent_id", "channel", "intent", "language", "languages", "skills", "capacity", "load",
        "complexity", "urgency", "sentiment", "waited_s", "idle_s", "tenure_days", "sentiment_handling",
        "style", "customer_id", "customer_tier", "Capacity", "loads", " load", "LANGUAGES", "extra_field"]


@st.composite
def broken_docs(draw):
    doc = draw(valid_docs()) if draw(st.booleans()) else copy.deepcopy(EXAMPLE)
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["contacts", "agents", "<top>"]))
        if kind == "<top>" or not doc[kind]:
            doc[draw(st.sampled_from(["schema", "snapshot_id", "at", "contacts", "agents", "Agents"]))] = draw(HOSTILE)
            continue
        if not isinstance(doc[kind], list) or not doc[kind]:
            continue
        i = draw(st.integers(0, len(doc[kind]) - 1))
        if not isinstance(doc[kind][i], dict):
            continue
        key = draw(st.sampled_from(KEYS))
        if draw(st.integers(0, 3)) == 0 and key in doc[kind][i]:
            del doc[kind][i][key]
        elif draw(st.integers(0, 5)) == 0 and len(doc[kind]) > 1:
            doc[kind][i] = copy.deepcopy(doc[kind][0])  # a duplicate id
        else:
            doc[kind][i][key] = draw(HOSTILE)
    return doc


def outcome(parse, doc):
    try:
        return "ok", parse(copy.deepcopy(doc))
    except SnapshotError as err:
        return "error", list(err.problems)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(broken_docs())
def test_any_document_gets_the_detailed_validators_answer(doc):
    fast = fast_parse(copy.deepcopy(doc))
    kind, detailed = outcome(parse_snapshot_detailed, doc)
    event(f"detailed: {kind}, fast path: {'taken' if fast is not None else 'deferred'}")
    if fast is not None:  # soundness: the fast path accepts only what the detailed one accepts
        assert kind == "ok", detailed
        same_snapshot(fast, detailed)
    kind2, public = outcome(parse_snapshot, doc)
    assert kind2 == kind
    if kind == "error":
        assert public == detailed
    else:
        same_snapshot(public, detailed)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_synthetic_and_example_snapshots_take_the_fast_path(seed):
    for doc in (synthetic_snapshot(n_contacts=200, n_agents=200, seed=seed).to_dict(), copy.deepcopy(EXAMPLE)):
        doc = json.loads(json.dumps(doc))
        fast = fast_parse(doc)
        assert fast is not None
        same_snapshot(fast, parse_snapshot_detailed(doc))


def test_surrogate_anywhere_in_text_defers_and_is_reported():
    doc = copy.deepcopy(EXAMPLE)
    doc["agents"][0]["skills"]["\ud800x"] = 0.5
    assert fast_parse(doc) is None
    with pytest.raises(SnapshotError) as err:
        parse_snapshot(doc)
    assert any("lone surrogate" in p for p in err.value.problems)


@given(st.lists(st.sampled_from(["b", "a", "ab", "a ", "", "Z", "é", "a"]), max_size=30))
def test_id_order_is_numpys_stable_argsort(ids):
    arr = np.empty(len(ids), dtype=object)
    arr[:] = ids
    assert np.array_equal(_id_order(arr), np.argsort(arr, kind="stable"))


def test_to_dict_is_asdict_field_for_field():
    router = Router()
    snap = synthetic_snapshot(n_contacts=40, n_agents=12, seed=4)
    for explain in (False, True):
        res = router.tick(snap, explain=explain)
        got = res.to_dict()
        assert got["assignments"] == [
            {**asdict(a), **({"alternatives": [asdict(x) for x in res.explanations[a.contact_id]]} if explain else {})}
            for a in res.assignments]
        assert got["unassigned"] == [
            {**asdict(u), **({"alternatives": [asdict(x) for x in res.explanations[u.contact_id]]} if explain else {})}
            for u in res.unassigned]
        assert [type(v) for a in got["assignments"] for v in a.values() if not isinstance(v, list)] == \
            [type(v) for a in res.assignments for v in asdict(a).values()]
