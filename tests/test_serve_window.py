"""Window mode over real HTTP: contacts and agents arriving concurrently, every contact
decided exactly once, no agent over capacity, and a drain on SIGTERM that answers everyone."""
from __future__ import annotations

import asyncio
import time
from collections import Counter

import httpx
import pytest

from assign.serve.process import ServerProcess

TOKEN = "window-token-0123456789abcdef"
CHANNELS = ("voice", "chat", "email")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = ServerProcess("--window-s", "0.2", "--contact-timeout-s", "1.5", "--quiet-ticks", token=TOKEN,
                        log_path=tmp_path_factory.mktemp("win") / "server.log")
    with srv:
        yield srv


def _agent(j: int, *, prefix: str, cap: dict) -> dict:
    return {"languages": ["en"], "skills": {"billing": 0.3 + 0.6 * ((j * 7) % 10) / 10}, "capacity": cap,
            "tenure_days": 100 + j}


def _contact(i: int, *, prefix: str) -> dict:
    return {"contact_id": f"{prefix}c{i}", "channel": CHANNELS[i % 3], "intent": "billing", "language": "en",
            "urgency": (i % 10) / 10}


async def _post_all(client, contacts, *, concurrency: int, timeout_ms: float | None = None) -> list[httpx.Response]:
    sem = asyncio.Semaphore(concurrency)
    params = {"timeout_ms": timeout_ms} if timeout_ms is not None else None

    async def one(c):
        async with sem:
            return await client.post("/v1/contacts", json=c, params=params)

    return await asyncio.gather(*(one(c) for c in contacts))


async def _final_status(client, ids) -> dict[str, dict]:
    rs = await asyncio.gather(*(client.get(f"/v1/contacts/{cid}") for cid in ids))
    return {cid: r.json() for cid, r in zip(ids, rs)}


async def _gauge(client, name: str) -> float:
    text = (await client.get("/metrics")).text
    return float(next(ln.split()[1] for ln in text.splitlines() if ln.startswith(name + " ")))


def _check_capacity(assigned: dict[str, dict], caps: dict[str, dict]) -> None:
    per = Counter((d["agent_id"], d["channel"]) for d in assigned.values())
    for (agent, ch), n in per.items():
        assert n <= caps[agent].get(ch, 0), (agent, ch, n)


def test_concurrent_contacts_and_agents_are_decided_exactly_once(server):
    caps = {f"w1a{j}": {"voice": 1, "chat": 1 + j % 3, "email": j % 2} for j in range(30)}
    contacts = [_contact(i, prefix="w1") for i in range(240)]

    async def scenario():
        async with httpx.AsyncClient(base_url=server.url, headers=server.headers(), timeout=30.0) as client:
            async def agents_later():  # agents log in while contacts are already arriving
                await asyncio.sleep(0.3)
                rs = await asyncio.gather(*(client.put(f"/v1/agents/{a}", json=_agent(j, prefix="w1", cap=cap))
                                            for j, (a, cap) in enumerate(caps.items())))
                assert all(r.status_code == 200 for r in rs)

            first, _ = await asyncio.gather(_post_all(client, contacts, concurrency=60, timeout_ms=600),
                                            agents_later())
            statuses = await _final_status(client, [c["contact_id"] for c in contacts])
            gone = await asyncio.gather(*(client.delete(f"/v1/contacts/{c['contact_id']}") for c in contacts))
            return first, statuses, gone

    first, statuses, gone = asyncio.run(scenario())
    assert {r.status_code for r in first} <= {200, 202}
    seen: dict[str, str] = {}
    for r in first:  # what the platform was told at once must agree with the final state
        d = r.json()
        if d["status"] == "assigned":
            seen[d["contact_id"]] = d["agent_id"]
    for cid, d in statuses.items():
        assert d["status"] in ("assigned", "queued"), d     # none lost
        if cid in seen:
            assert d["status"] == "assigned" and d["agent_id"] == seen[cid]
    assigned = {cid: d for cid, d in statuses.items() if d["status"] == "assigned"}
    _check_capacity(assigned, caps)
    # clean-up: assigned contacts end, queued ones are withdrawn (unless a window took them since)
    ends = {r.json()["contact_id"]: r.json()["status"] for r in gone}
    assert all(ends[cid] == "ended" for cid in assigned)
    assert set(ends.values()) <= {"ended", "withdrawn"}
    slots = Counter()
    for cap in caps.values():
        slots.update(cap)
    demand = Counter(c["channel"] for c in contacts)
    # work-conserving: every channel fills up to the smaller of its demand and its slots
    assert Counter(d["channel"] for d in assigned.values()) == {ch: min(slots[ch], demand[ch]) for ch in CHANNELS}


def test_ended_contacts_free_their_slot_for_the_queue(server):
    async def scenario():
        async with httpx.AsyncClient(base_url=server.url, headers=server.headers(), timeout=30.0) as client:
            r = await client.put("/v1/agents/w2a", json=_agent(0, prefix="w2", cap={"chat": 2}) | {"skills": {"x": 1}})
            assert r.status_code == 200
            contacts = [{"contact_id": f"w2c{i}", "channel": "chat", "intent": "x", "language": "en"}
                        for i in range(5)]
            first = await _post_all(client, contacts, concurrency=5)
            assert sorted(r.status_code for r in first) == [200, 200, 202, 202, 202]
            done = [r.json()["contact_id"] for r in first if r.status_code == 200]
            queued = [r.json() for r in first if r.status_code == 202]
            assert sorted(q["position"] for q in queued) == [1, 2, 3] and queued[0]["reason"] == "no_capacity"
            # a retry of an assigned contact gets its own decision again, not a second one
            again = await client.post("/v1/contacts", json=contacts[int(done[0][3:])])
            assert again.json()["agent_id"] == "w2a" and again.json()["replayed"] is True
            for cid in done:
                assert (await client.delete(f"/v1/contacts/{cid}")).json()["status"] == "ended"
            waited = await asyncio.gather(*(client.get(f"/v1/contacts/{q['contact_id']}", params={"wait_ms": 1500})
                                            for q in queued))
            assert sorted(w.json()["status"] for w in waited) == ["assigned", "assigned", "queued"]
            last = next(w.json()["contact_id"] for w in waited if w.json()["status"] == "queued")
            assert (await client.delete(f"/v1/contacts/{last}")).json()["status"] == "withdrawn"
            assert (await client.get(f"/v1/contacts/{last}")).status_code == 404
            off = await client.put("/v1/agents/w2a", json={"languages": ["en"], "skills": {"x": 1},
                                                           "capacity": {"chat": 5}, "logged_in": False})
            assert off.status_code == 200
            late = await client.post("/v1/contacts", params={"timeout_ms": 500},
                                     json={"contact_id": "w2late", "channel": "chat", "intent": "x", "language": "en"})
            assert late.status_code == 202          # logged out: never offered
            await client.delete("/v1/contacts/w2late")

    asyncio.run(scenario())


def test_bad_window_requests_get_422(server):
    with httpx.Client(base_url=server.url, headers=server.headers()) as client:
        r = client.post("/v1/contacts", json={"contact_id": "x" * 200, "channel": "fax", "language": "en"})
        assert r.status_code == 422
        assert r.json()["problems"] == ["contact.contact_id: longer than 128 characters",
                                        "contact.intent: required field is missing",
                                        "contact.channel: unknown channel 'fax' (expected one of voice, chat, email)"]
        r = client.put("/v1/agents/a1", json={"agent_id": "a2", "languages": ["en"], "skills": {},
                                              "capacity": {"chat": 1}, "logged_in": "yes"})
        assert r.status_code == 422 and len(r.json()["problems"]) == 2
        assert client.delete("/v1/contacts/nobody").status_code == 404


def test_sigterm_under_load_answers_everyone(tmp_path):
    srv = ServerProcess("--window-s", "0.5", "--contact-timeout-s", "20", "--quiet-ticks", token=TOKEN,
                        log_path=tmp_path / "server.log").start()
    try:
        async def scenario():
            async with httpx.AsyncClient(base_url=srv.url, headers=srv.headers(), timeout=30.0,
                                         limits=httpx.Limits(max_connections=200)) as client:
                for j in range(10):
                    await client.put(f"/v1/agents/s{j}", json=_agent(j, prefix="s", cap={"chat": 1}))
                contacts = [{"contact_id": f"s{i}", "channel": "chat", "intent": "billing", "language": "en"}
                            for i in range(100)]
                posts = asyncio.ensure_future(_post_all(client, contacts, concurrency=100))
                while (await _gauge(client, "assign_queue_length")
                       + await _gauge(client, "assign_active_assignments")) < 100:
                    await asyncio.sleep(0.1)  # every request is in: 10 assigned, 90 waiting
                t0 = time.monotonic()
                srv.terminate()
                rs = await posts
                return rs, time.monotonic() - t0

        rs, took = asyncio.run(scenario())
        assert srv.proc.wait(30) in (0, -15)  # uvicorn re-raises SIGTERM once it has shut down
    finally:
        srv.stop()
    bodies = [r.json() for r in rs]
    assert all(r.status_code in (200, 202) for r in rs), Counter(r.status_code for r in rs)
    assert Counter(b["status"] for b in bodies) == {"assigned": 10, "queued": 90}
    assert len({b["agent_id"] for b in bodies if b["status"] == "assigned"}) == 10
    assert took < 10, took                    # answered by the drain, not by the 20 s timeout
    assert '"event":"drained"' in srv.log_path.read_text()
