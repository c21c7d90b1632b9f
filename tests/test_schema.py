"""Snapshot validation: every problem at once, each with its path; defaults; extras kept."""
from __future__ import annotations

import math

import numpy as np
import pytest

from assign.errors import SnapshotError
from assign.schema import AGENT_DEFAULTS, CONTACT_DEFAULTS, parse_snapshot


def _break(doc: dict, edit) -> dict:
    edit(doc)
    return doc


BAD = [
    (lambda d: d["contacts"][1].update(language="xx"), "contacts[1].language: unknown code 'xx'"),
    (
        lambda d: d["contacts"][1].update(language="EN"),
        "contacts[1].language: malformed language code 'EN' (expected ISO 639-1, two lowercase letters)",
    ),
    (
        lambda d: d["contacts"][2].update(channel="fax"),
        "contacts[2].channel: unknown channel 'fax' (expected one of voice, chat, email)",
    ),
    (lambda d: d["contacts"][0].update(complexity=math.nan), "contacts[0].complexity: must be finite, got nan"),
    (lambda d: d["contacts"][0].update(urgency=1.5), "contacts[0].urgency: 1.5 is above the maximum 1"),
    (lambda d: d["contacts"][0].update(waited_s=-3), "contacts[0].waited_s: -3 is below the minimum 0"),
    (lambda d: d["contacts"][0].update(sentiment="bad"), "contacts[0].sentiment: expected a number, got str 'bad'"),
    (lambda d: d["contacts"][3].pop("intent"), "contacts[3].intent: required field is missing"),
    (
        lambda d: d["contacts"][4].update(contact_id=d["contacts"][0]["contact_id"]),
        "contacts[4].contact_id: duplicate id 'c000000' (first at contacts[0])",
    ),
    (
        lambda d: d["agents"][1].update(agent_id=d["agents"][0]["agent_id"]),
        "agents[1].agent_id: duplicate id 'a00000' (first at agents[0])",
    ),
    (
        lambda d: d["agents"][0]["load"].update(chat=4) or d["agents"][0]["capacity"].update(chat=3),
        "agents[0].load.chat: 4 exceeds capacity 3",
    ),
    (lambda d: d["agents"][2]["skills"].update(billing=math.inf), "agents[2].skills.billing: must be finite, got inf"),
    (lambda d: d["agents"][2]["skills"].update(billing=1.2), "agents[2].skills.billing: 1.2 is above the maximum 1"),
    (
        lambda d: d["agents"][3].update(languages="en"),
        "agents[3].languages: expected a list of language codes, got str",
    ),
    (
        lambda d: d["agents"][3]["capacity"].update(sms=2),
        "agents[3].capacity.sms: unknown channel 'sms' (expected one of voice, chat, email)",
    ),
    (
        lambda d: d["agents"][3]["capacity"].update(voice=1.5),
        "agents[3].capacity.voice: expected a whole number, got 1.5",
    ),
    (lambda d: d["agents"][4].update(tenure_days=True), "agents[4].tenure_days: expected a number, got bool True"),
    (lambda d: d.update(at="yesterday"), "at: not an ISO-8601 time: 'yesterday'"),
    (
        lambda d: d.update(schema="assign.snapshot/9"),
        "schema: unsupported schema 'assign.snapshot/9' (expected 'assign.snapshot/1')",
    ),
]


@pytest.mark.parametrize(("edit", "message"), BAD, ids=[m.split(":")[0] + ":" + m.split(":")[1][:20] for _, m in BAD])
def test_each_bad_field_is_named_with_its_path(snapshot_doc, edit, message):
    with pytest.raises(SnapshotError) as err:
        parse_snapshot(_break(snapshot_doc, edit))
    assert message in err.value.problems


def test_every_problem_is_reported_at_once(snapshot_doc):
    snapshot_doc["contacts"][1]["language"] = "xx"
    snapshot_doc["contacts"][5]["channel"] = "fax"
    snapshot_doc["agents"][0]["idle_s"] = -1
    with pytest.raises(SnapshotError) as err:
        parse_snapshot(snapshot_doc)
    assert len(err.value.problems) == 3
    text = str(err.value)
    assert text.startswith("invalid snapshot: 3 problems")
    for path in ("contacts[1].language", "contacts[5].channel", "agents[0].idle_s"):
        assert path in text


def test_defaults_fill_missing_optional_fields_and_extras_are_kept(snapshot_doc):
    c = snapshot_doc["contacts"][0]
    for k in ("complexity", "urgency", "sentiment", "waited_s", "style", "customer_id", "customer_tier"):
        c.pop(k, None)
    a = snapshot_doc["agents"][0]
    for k in ("load", "tenure_days", "sentiment_handling", "style", "idle_s"):
        a.pop(k, None)
    a["team"] = "north"
    snap = parse_snapshot(snapshot_doc)
    i = list(snap.contacts.ids).index(c["contact_id"])
    assert snap.contacts.complexity[i] == CONTACT_DEFAULTS["complexity"]
    assert snap.contacts.urgency[i] == CONTACT_DEFAULTS["urgency"]
    assert snap.contacts.waited_s[i] == CONTACT_DEFAULTS["waited_s"]
    assert snap.contacts.style[i] == -1 and snap.contacts.customer_id[i] is None
    assert snap.agents.tenure_days[0] == AGENT_DEFAULTS["tenure_days"]
    assert snap.agents.load[0].sum() == 0
    assert snap.contacts.extra[0]["queue"] == "retail-east"
    assert snap.agents.extra[0]["team"] == "north"
    assert snap.to_dict()["agents"][0]["team"] == "north"


def test_round_trip_through_the_document(snapshot_doc):
    snap = parse_snapshot(snapshot_doc)
    again = parse_snapshot(snap.to_dict())
    assert list(again.contacts.ids) == list(snap.contacts.ids)
    np.testing.assert_array_equal(again.agents.skill, snap.agents.skill)
    np.testing.assert_array_equal(again.agents.capacity, snap.agents.capacity)
    np.testing.assert_array_equal(again.contacts.waited_s, snap.contacts.waited_s)


def test_empty_queue_and_no_agents_are_valid(snapshot_doc):
    snapshot_doc["contacts"] = []
    assert parse_snapshot(snapshot_doc).n_contacts == 0
    snapshot_doc["agents"] = []
    assert parse_snapshot(snapshot_doc).n_agents == 0


def test_not_an_object():
    with pytest.raises(SnapshotError, match="expected a JSON object"):
        parse_snapshot([1, 2])
