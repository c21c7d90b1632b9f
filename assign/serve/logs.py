"""Structured logs: one JSON object per line. Every value, request data included, goes
through the JSON encoder, so a newline or control character from a request is escaped and
can never forge a log line."""
from __future__ import annotations

import logging
import sys
import time
from typing import Any

from assign.serve.jsonio import dumps

LOGGER = "assign.serve"


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "event", ...fields}``; the fields come from ``extra={"fields": {...}}``."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {"ts": round(record.created, 3), "level": record.levelname.lower(),
                               "event": record.getMessage()}
        out.update(getattr(record, "fields", {}))
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return dumps(out, default=str).decode()


def setup_logging(level: int = logging.INFO) -> logging.Logger:
    """The service logger, writing JSON lines to stderr (idempotent)."""
    log = logging.getLogger(LOGGER)
    if not any(isinstance(h.formatter, JsonFormatter) for h in log.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        log.addHandler(handler)
    log.setLevel(level)
    log.propagate = False
    return log


def event(log: logging.Logger, name: str, *, level: int = logging.INFO, **fields: Any) -> None:
    """Log one event with its fields (values of any origin: they are JSON-escaped)."""
    if log.isEnabledFor(level):
        log.log(level, name, extra={"fields": fields})


def now_ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1e3, 3)
