"""The service's settings: one frozen, validated object, passed to worker processes as JSON.

Tokens are never part of it: it names where they come from (a file, else an environment
variable), so the settings can travel in the environment of uvicorn's worker processes
without carrying a secret.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass

from assign.validate import Problems

ENV_CONFIG = "ASSIGN_SERVE_CONFIG"
ENV_TOKEN = "ASSIGN_SERVE_TOKEN"
ENV_ADMIN_TOKEN = "ASSIGN_SERVE_ADMIN_TOKEN"


@dataclass(frozen=True, kw_only=True)
class ServeConfig:
    """Knobs of ``assign serve``. Validated at construction; errors name the field.

    ``window_s`` None turns window mode off (only the stateless ``/v1/tick``). ``auth`` False
    serves without a token (local development only). ``contact_timeout_s`` is the longest a
    ``POST /v1/contacts`` waits for its decision before answering "queued".
    """

    model: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    window_s: float | None = None
    auth: bool = True
    token_file: str | None = None
    admin_token_file: str | None = None
    budget_ms: float | None = None
    max_body_bytes: int = 4 * 1024 * 1024
    max_id_len: int = 128
    contact_timeout_s: float = 2.0
    tick_threads: int = 1
    shutdown_timeout_s: float = 30.0
    log_ticks: bool = True

    def __post_init__(self) -> None:
        p = Problems()
        p.number("port", self.port, lo=0, hi=65535, integer=True)
        p.number("workers", self.workers, lo=1, integer=True)
        p.number("window_s", self.window_s, lo=0, lo_open=True, optional=True)
        p.number("budget_ms", self.budget_ms, lo=0, lo_open=True, optional=True)
        p.number("max_body_bytes", self.max_body_bytes, lo=1, integer=True)
        p.number("max_id_len", self.max_id_len, lo=1, integer=True)
        p.number("contact_timeout_s", self.contact_timeout_s, lo=0, lo_open=True)
        p.number("tick_threads", self.tick_threads, lo=1, integer=True)
        p.number("shutdown_timeout_s", self.shutdown_timeout_s, lo=0)
        if self.window_s is not None and self.workers > 1:
            p.add("workers", "window mode keeps its queue in one process: use --workers 1 with --window-s")
        p.raise_if_any(what="service configuration")

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls) -> ServeConfig:
        """The settings ``assign serve`` left in :data:`ENV_CONFIG` for uvicorn's workers."""
        return cls(**json.loads(os.environ.get(ENV_CONFIG, "{}")))
