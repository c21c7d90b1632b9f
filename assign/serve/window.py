"""Window mode's state machine: the contacts waiting, the agents, and who holds what.

No I/O and no clock of its own (``now`` is passed in, in monotonic seconds), so every rule
is testable without a server. The asyncio side (:mod:`assign.serve.runner`) calls it from the
event loop thread only; a tick is solved in a worker thread on the snapshot
:meth:`WindowState.snapshot` built, and :meth:`WindowState.apply` brings its answer back.

Rules:

* A contact is *waiting* from ``add_contact`` until a window assigns it (then *assigned*) or
  ``remove`` withdraws it. A window's assignment is applied only if that same contact (same
  arrival, not withdrawn and re-added meanwhile) is still waiting and its agent is still
  logged in with a free slot on the channel now; otherwise the contact stays waiting and is
  offered again next window. So a contact is assigned at most once and no agent goes over
  capacity, however requests and windows interleave.
* An assigned contact holds one slot of its agent's channel until the platform ends it
  (``remove``: ``DELETE /v1/contacts/{id}``). An agent's load as the router sees it is the
  load the platform reports with the agent (work the service did not route) plus the service's
  own active assignments, capped at capacity.
* ``waited_s`` grows with time spent waiting here; an agent's ``idle_s`` grows while the agent
  holds nothing and restarts when the agent's last contact ends.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from assign.errors import SnapshotError
from assign.result import TickResult
from assign.schema import CHANNELS, Snapshot, build_snapshot, parse_snapshot

WAITING, ASSIGNED = "waiting", "assigned"


@dataclass(frozen=True, kw_only=True)
class Decision:
    """What a contact's caller is told: assigned (agent, channel, value) or queued (position)."""

    contact_id: str
    status: str
    agent_id: str | None = None
    channel: str | None = None
    value: float | None = None
    window: int | None = None
    position: int | None = None
    waiting: int | None = None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass(kw_only=True)
class _Contact:
    record: dict[str, Any]
    arrived: float
    seq: int
    reason: str | None = None


@dataclass(kw_only=True)
class _Agent:
    record: dict[str, Any]
    external_load: dict[str, int]
    logged_in: bool
    idle_base_s: float
    idle_since: float
    active: Counter = field(default_factory=Counter)


def _relabel(err: SnapshotError, old: str, new: str) -> SnapshotError:
    return SnapshotError([new + p[len(old):] if p.startswith(old) else p for p in err.problems], what=new)


def validate_contact(record: Any) -> dict[str, Any]:
    """A contact record checked by the snapshot rules (the CLI's messages, path ``contact``),
    returned with its defaults filled."""
    try:
        snap = parse_snapshot({"contacts": [record], "agents": []})
    except SnapshotError as err:
        raise _relabel(err, "contacts[0]", "contact") from None
    return snap.to_dict()["contacts"][0]


def validate_agent(record: Any) -> dict[str, Any]:
    """An agent record checked by the snapshot rules (path ``agent``), defaults filled."""
    try:
        snap = parse_snapshot({"contacts": [], "agents": [record]})
    except SnapshotError as err:
        raise _relabel(err, "agents[0]", "agent") from None
    return snap.to_dict()["agents"][0]


@dataclass(frozen=True, kw_only=True)
class WindowInput:
    """One window's records, copied out of the state; :meth:`build` makes the Snapshot."""

    window: int
    at: datetime
    contacts: list[dict[str, Any]]
    agents: list[dict[str, Any]]
    sent: dict[str, int]

    def build(self) -> Snapshot:
        """The snapshot of already-validated records (validated when they came in)."""
        return build_snapshot(contacts=self.contacts, agents=self.agents, snapshot_id=f"window-{self.window}",
                              at=self.at)


class WindowState:
    """Contacts waiting, agents, active assignments; one tick's snapshot in, decisions out."""

    def __init__(self) -> None:
        self.waiting: dict[str, _Contact] = {}        # insertion order = arrival order
        self.assigned: dict[str, Decision] = {}
        self.agents: dict[str, _Agent] = {}
        self.window = 0
        self._seq = 0

    # ------------------------------------------------------------------ requests

    def add_contact(self, record: dict[str, Any], *, now: float) -> bool:
        """Register a validated contact; False if its id is already waiting or assigned."""
        cid = record["contact_id"]
        if cid in self.waiting or cid in self.assigned:
            return False
        self._seq += 1
        self.waiting[cid] = _Contact(record=record, arrived=now, seq=self._seq)
        return True

    def remove(self, contact_id: str, *, now: float) -> str | None:
        """Withdraw a waiting contact ("withdrawn") or end an assigned one, releasing its
        slot ("ended"); None for an unknown id."""
        if self.waiting.pop(contact_id, None) is not None:
            return "withdrawn"
        d = self.assigned.pop(contact_id, None)
        if d is None:
            return None
        agent = self.agents.get(d.agent_id)
        if agent is not None:
            agent.active[d.channel] -= 1
            if agent.active[d.channel] <= 0:
                del agent.active[d.channel]
            if not agent.active:
                agent.idle_base_s, agent.idle_since = 0.0, now
        return "ended"

    def put_agent(self, record: dict[str, Any], *, logged_in: bool, now: float) -> None:
        """Create or replace a validated agent (its ``load`` is the platform-reported load);
        the service's active assignments to the agent are kept."""
        aid = record["agent_id"]
        old = self.agents.get(aid)
        self.agents[aid] = _Agent(record={k: v for k, v in record.items() if k != "load"},
                                  external_load=dict(record.get("load") or {}), logged_in=logged_in,
                                  idle_base_s=float(record.get("idle_s") or 0.0), idle_since=now,
                                  active=old.active if old is not None else Counter())

    def status(self, contact_id: str) -> Decision | None:
        """The decision so far: assigned, queued with position, or None (unknown)."""
        if contact_id in self.assigned:
            return self.assigned[contact_id]
        return self.queued(contact_id)

    def queued(self, contact_id: str) -> Decision | None:
        c = self.waiting.get(contact_id)
        if c is None:
            return None
        position = 1 + next(i for i, k in enumerate(self.waiting) if k == contact_id)
        return Decision(contact_id=contact_id, status="queued", position=position, waiting=len(self.waiting),
                        reason=c.reason, window=self.window or None)

    # ------------------------------------------------------------------ windows

    def _load(self, a: _Agent) -> dict[str, int]:
        cap = a.record.get("capacity") or {}
        out = {}
        for ch in CHANNELS:
            n = min(int(cap.get(ch, 0)), int(a.external_load.get(ch, 0)) + a.active.get(ch, 0))
            if n:
                out[ch] = n
        return out

    def _free(self, a: _Agent, channel: str) -> int:
        cap = int((a.record.get("capacity") or {}).get(channel, 0))
        return cap - int(a.external_load.get(channel, 0)) - a.active.get(channel, 0)

    def snapshot(self, *, now: float, at: datetime) -> WindowInput | None:
        """The next window's input (waiting contacts, logged-in agents, the
        arrival stamp of each contact); None when no contact waits. Records are copied, so
        the input can be built and solved in another thread while requests go on."""
        if not self.waiting:
            return None
        self.window += 1
        contacts, sent = [], {}
        for cid, c in self.waiting.items():
            rec = dict(c.record)
            rec["waited_s"] = float(rec.get("waited_s") or 0.0) + max(0.0, now - c.arrived)
            contacts.append(rec)
            sent[cid] = c.seq
        agents = []
        for a in self.agents.values():
            if not a.logged_in:
                continue
            load = self._load(a)  # agents with no free slot stay in: the router then says no_capacity
            idle = 0.0 if a.active or load else a.idle_base_s + max(0.0, now - a.idle_since)
            agents.append({**a.record, "load": load, "idle_s": idle})
        return WindowInput(window=self.window, at=at, contacts=contacts, agents=agents, sent=sent)

    def apply(self, result: TickResult, *, window: WindowInput) -> list[Decision]:
        """Apply a window's answer to the state as it is now; returns the assignments made."""
        made, sent = [], window.sent
        for a in result.assignments:
            c = self.waiting.get(a.contact_id)
            agent = self.agents.get(a.agent_id)
            if c is None or c.seq != sent.get(a.contact_id) or agent is None or not agent.logged_in:
                continue
            channel = c.record["channel"]
            if self._free(agent, channel) <= 0:
                c.reason = "capacity_changed"
                continue
            del self.waiting[a.contact_id]
            agent.active[channel] += 1
            d = Decision(contact_id=a.contact_id, status=ASSIGNED, agent_id=a.agent_id, channel=channel,
                         value=a.value, window=window.window)
            self.assigned[a.contact_id] = d
            made.append(d)
        for u in result.unassigned:
            c = self.waiting.get(u.contact_id)
            if c is not None and c.seq == sent.get(u.contact_id):
                c.reason = u.reason
        return made

    def counts(self) -> dict[str, int]:
        return {"waiting": len(self.waiting), "assigned": len(self.assigned),
                "agents_logged_in": sum(a.logged_in for a in self.agents.values())}
