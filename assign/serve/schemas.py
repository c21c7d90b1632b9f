"""JSON Schemas of the request and response bodies, for the OpenAPI document only.

Requests are validated by :func:`assign.schema.parse_snapshot` (every problem, with its
path, the CLI's messages), not by these schemas: they document the contract; the README's
snapshot table is the reference they follow.
"""
from __future__ import annotations

from typing import Any

_NUM = {"type": "number"}
_CHANNEL_MAP = {"type": "object", "description": "channel (voice, chat, email) -> count; a missing channel is 0",
                "additionalProperties": {"type": "integer", "minimum": 0}}

CONTACT: dict[str, Any] = {
    "type": "object", "required": ["contact_id", "channel", "intent", "language"],
    "description": "A waiting contact (assign.snapshot/1); unknown fields are kept and ignored.",
    "properties": {
        "contact_id": {"type": "string", "description": "unique; at most --max-id-len characters"},
        "channel": {"type": "string", "enum": ["voice", "chat", "email"]},
        "intent": {"type": "string"}, "language": {"type": "string", "description": "ISO 639-1 code"},
        "complexity": {**_NUM, "minimum": 0, "maximum": 1, "default": 0.5},
        "urgency": {**_NUM, "minimum": 0, "maximum": 1, "default": 0.5},
        "sentiment": {**_NUM, "minimum": -1, "maximum": 1, "default": 0.0},
        "waited_s": {**_NUM, "minimum": 0, "default": 0, "description": "waited before arriving here"},
        "style": {"type": ["string", "null"]}, "customer_id": {"type": ["string", "null"]},
        "customer_tier": {"type": ["string", "null"]},
    },
}
AGENT: dict[str, Any] = {
    "type": "object", "required": ["agent_id", "languages", "skills", "capacity"],
    "description": "An agent (assign.snapshot/1); unknown fields are kept and ignored.",
    "properties": {
        "agent_id": {"type": "string"},
        "languages": {"type": "array", "items": {"type": "string"}},
        "skills": {"type": "object", "additionalProperties": {**_NUM, "minimum": 0, "maximum": 1},
                   "description": "intent -> proficiency; a missing intent is 0"},
        "capacity": _CHANNEL_MAP, "load": {**_CHANNEL_MAP, "default": {}},
        "tenure_days": {**_NUM, "minimum": 0, "default": 0},
        "sentiment_handling": {**_NUM, "minimum": 0, "maximum": 1, "default": 0.5},
        "style": {"type": ["string", "null"]}, "idle_s": {**_NUM, "minimum": 0, "default": 0},
    },
}
AGENT_PUT: dict[str, Any] = {
    **AGENT, "required": ["languages", "skills", "capacity"],
    "description": "The agent's state. agent_id may be left out (the path names it). `load` is the load the "
                   "platform reports from work this service did not route; the service adds its own active "
                   "assignments. `logged_in` false takes the agent out of the windows.",
    "properties": {**AGENT["properties"], "logged_in": {"type": "boolean", "default": True}},
}
SNAPSHOT: dict[str, Any] = {
    "type": "object", "description": "A queue snapshot, assign.snapshot/1 (see the README's table).",
    "properties": {
        "schema": {"type": "string", "const": "assign.snapshot/1"}, "snapshot_id": {"type": "string"},
        "at": {"type": "string", "format": "date-time"},
        "contacts": {"type": "array", "items": CONTACT}, "agents": {"type": "array", "items": AGENT},
    },
}
TICK_RESULT: dict[str, Any] = {
    "type": "object", "description": "Exactly what `assign solve` prints for the snapshot.",
    "properties": {
        "snapshot_id": {"type": "string"},
        "assignments": {"type": "array", "items": {"type": "object", "properties": {
            k: {"type": "string"} if k.endswith("_id") else _NUM
            for k in ("contact_id", "agent_id", "value", "score", "aging", "fairness")}}},
        "unassigned": {"type": "array", "items": {"type": "object", "properties": {
            "contact_id": {"type": "string"},
            "reason": {"type": "string", "enum": ["no_eligible_agent", "no_capacity", "below_threshold"]}}}},
        "objective": _NUM, "solver": {"type": "string"}, "fallback": {"type": "boolean"},
        "fallback_reason": {"type": ["string", "null"]}, "n_candidates": {"type": "integer"},
        "timings_ms": {"type": "object", "additionalProperties": _NUM},
    },
}
DECISION: dict[str, Any] = {
    "type": "object", "required": ["contact_id", "status"],
    "properties": {
        "contact_id": {"type": "string"},
        "status": {"type": "string", "enum": ["assigned", "queued", "withdrawn", "ended"]},
        "agent_id": {"type": "string"}, "channel": {"type": "string"}, "value": _NUM,
        "window": {"type": "integer"}, "position": {"type": "integer", "description": "1 = longest waiting"},
        "waiting": {"type": "integer"}, "reason": {"type": "string", "description": "why the last window left it"},
        "replayed": {"type": "boolean", "description": "the id was already known: its own decision"},
    },
}
PROBLEMS: dict[str, Any] = {
    "type": "object", "properties": {"error": {"type": "string"}, "problems": {"type": "array",
                                     "items": {"type": "string"}}, "message": {"type": "string"}},
}


def body(schema: dict[str, Any]) -> dict[str, Any]:
    """``openapi_extra`` declaring a JSON request body of this schema."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def responses(ok: dict[str, Any], *, ok_code: int = 200, **extra: str) -> dict[int | str, Any]:
    """The ``responses`` of a route: its JSON answer, 401, 413, 422 and any ``extra``."""
    out: dict[int | str, Any] = {ok_code: {"content": {"application/json": {"schema": ok}}},
                                 401: {"description": "missing or wrong bearer token"},
                                 413: {"description": "request body over the limit"},
                                 422: {"description": "invalid input: every problem with its path",
                                       "content": {"application/json": {"schema": PROBLEMS}}}}
    for code, text in extra.items():
        out[int(code.lstrip("_"))] = {"description": text}
    return out
