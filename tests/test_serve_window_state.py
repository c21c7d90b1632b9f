"""Window mode's state machine without a server: exactly-once decisions and capacity, with
requests interleaved between a window's snapshot and its answer, checked against the
test's own bookkeeping of what the state told it."""
from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import numpy as np
import pytest

from assign.errors import SnapshotError
from assign.router import Router
from assign.serve.window import WindowState, validate_agent, validate_contact

AT = datetime(2026, 1, 5, 10, tzinfo=UTC)
CHANNELS = ("voice", "chat", "email")


@pytest.fixture(scope="module")
def router():
    return Router()


def _agent(j: int, rng, *, cap=None) -> dict:
    cap = cap or {"voice": 1, "chat": int(rng.integers(1, 4)), "email": int(rng.integers(0, 2))}
    return validate_agent({"agent_id": f"a{j}", "languages": ["en"], "skills": {"billing": 0.5 + 0.4 * rng.random()},
                           "capacity": cap, "load": {}})


def _contact(i: int, rng) -> dict:
    return validate_contact({"contact_id": f"c{i}", "channel": str(rng.choice(CHANNELS)), "intent": "billing",
                             "language": "en", "waited_s": float(rng.exponential(10))})


def test_records_are_checked_with_the_snapshot_messages():
    with pytest.raises(SnapshotError) as e:
        validate_contact({"contact_id": "c", "channel": "fax", "language": "xx"})
    assert e.value.problems == ("contact.intent: required field is missing",
                                "contact.channel: unknown channel 'fax' (expected one of voice, chat, email)",
                                "contact.language: unknown code 'xx'")
    with pytest.raises(SnapshotError, match=r"agent.load.chat: 4 exceeds capacity 1"):
        validate_agent({"agent_id": "a", "languages": ["en"], "skills": {}, "capacity": {"chat": 1},
                        "load": {"chat": 4}})
    assert validate_contact({"contact_id": "c", "channel": "chat", "intent": "x", "language": "en"})["urgency"] == 0.5


def test_interleaved_requests_never_double_assign_or_overfill(router):
    rng = np.random.default_rng(5)
    st = WindowState()
    for j in range(12):
        st.put_agent(_agent(j, rng), logged_in=True, now=0.0)
    decided: dict[str, str] = {}          # contact -> agent, from the decisions returned
    ended: set[str] = set()
    added = 0
    for w in range(40):
        now = float(w)
        for _ in range(int(rng.integers(0, 12))):
            assert st.add_contact(_contact(added, rng), now=now)
            added += 1
        win = st.snapshot(now=now, at=AT)
        if win is None:
            continue
        result = router.tick(win.build())
        # requests that land while the window solves
        for cid in rng.choice(list(st.waiting) or ["none"], size=2):
            st.remove(str(cid), now=now)
        if rng.random() < 0.3:
            j = int(rng.integers(0, 12))
            st.put_agent(_agent(j, rng, cap={"voice": 1, "chat": 1}), logged_in=bool(rng.random() < 0.7), now=now)
        made = st.apply(result, window=win)
        for d in made:
            assert d.contact_id not in decided and d.contact_id not in ended
            decided[d.contact_id] = d.agent_id
            assert d.contact_id in win.sent
        for a in st.agents.values():
            cap = a.record["capacity"]
            for ch, n in a.active.items():
                got = [d for d in made if d.agent_id == a.record["agent_id"] and d.channel == ch]
                if got:  # a new assignment never takes an agent over its capacity
                    assert n <= cap.get(ch, 0), (a.record["agent_id"], ch)
                    assert a.logged_in
        for cid in list(st.assigned)[: int(rng.integers(0, 4))]:
            assert st.remove(cid, now=now) == "ended"
            ended.add(cid)
    active = Counter((d.agent_id, d.channel) for d in st.assigned.values())
    for a in st.agents.values():
        assert dict(a.active) == {ch: n for (aid, ch), n in active.items() if aid == a.record["agent_id"]}
    assert set(st.assigned) | ended == set(decided)
    assert not set(st.waiting) & set(decided)
    assert len(decided) > 50  # the test did exercise many windows


def test_a_readded_contact_is_not_given_the_old_windows_answer(router):
    rng = np.random.default_rng(1)
    st = WindowState()
    st.put_agent(_agent(0, rng), logged_in=True, now=0.0)
    c = _contact(0, rng) | {"channel": "voice"}
    st.add_contact(c, now=0.0)
    win = st.snapshot(now=0.0, at=AT)
    result = router.tick(win.build())
    assert [a.contact_id for a in result.assignments] == ["c0"]
    assert st.remove("c0", now=0.1) == "withdrawn"
    st.add_contact(c, now=0.2)          # the same id comes back while the window solves
    assert st.apply(result, window=win) == []
    assert st.status("c0").status == "queued"


def test_load_released_on_end_and_external_load_counts(router):
    rng = np.random.default_rng(2)
    st = WindowState()
    st.put_agent(validate_agent({"agent_id": "a", "languages": ["en"], "skills": {"billing": 0.9},
                                 "capacity": {"chat": 2}, "load": {"chat": 1}}), logged_in=True, now=0.0)
    for i in range(3):
        st.add_contact(_contact(i, rng) | {"channel": "chat"}, now=0.0)
    win = st.snapshot(now=1.0, at=AT)
    made = st.apply(router.tick(win.build()), window=win)
    assert len(made) == 1 and st.counts()["waiting"] == 2        # one slot free: 2 minus the external 1
    assert st.queued(min(st.waiting)).reason == "no_capacity"
    win = st.snapshot(now=2.0, at=AT)
    assert st.apply(router.tick(win.build()), window=win) == []
    assert st.remove(made[0].contact_id, now=3.0) == "ended"
    win = st.snapshot(now=3.0, at=AT)
    assert len(st.apply(router.tick(win.build()), window=win)) == 1
    assert st.queued(next(iter(st.waiting))).position == 1
    assert win.contacts[0]["waited_s"] >= 3.0                    # waiting here counts as waiting
