"""Prometheus metrics of one service process, on a registry of its own (not the global one,
so that several apps in one process, as in tests, never collide).

With ``--workers N`` each worker process keeps its own counters and ``/metrics`` shows the
worker that answered; scrape window mode (one process) for the queue metrics.
"""
from __future__ import annotations

from collections import Counter as Tally

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from assign.result import TickResult

BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
DECISION_BUCKETS_S = (0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    """Every metric the service exports; :meth:`observe_tick` records one tick."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.stage_seconds = Histogram("assign_tick_stage_seconds", "Tick latency per stage (total = whole tick)",
                                       ["mode", "stage"], buckets=BUCKETS_S, registry=r)
        self.ticks = Counter("assign_ticks_total", "Ticks solved", ["mode"], registry=r)
        self.decisions = Counter("assign_decisions_total",
                                 "Contacts decided: assigned, or left queued with a reason",
                                 ["mode", "outcome"], registry=r)
        self.fallbacks = Counter("assign_fallbacks_total", "Ticks that fell back from the configured solver",
                                 ["mode"], registry=r)
        self.errors = Counter("assign_errors_total", "Requests refused or failed, by kind",
                              ["kind"], registry=r)
        self.queue_length = Gauge("assign_queue_length", "Contacts waiting (window mode)", registry=r)
        self.active = Gauge("assign_active_assignments", "Assigned contacts not yet ended (window mode)",
                            registry=r)
        self.agents = Gauge("assign_agents_logged_in", "Agents logged in (window mode)", registry=r)
        self.decision_seconds = Histogram("assign_contact_decision_seconds",
                                          "From POST /v1/contacts to its decision (window mode)",
                                          buckets=DECISION_BUCKETS_S, registry=r)
        self.model_info = Gauge("assign_model_info", "The model serving (value 1)",
                                ["scorer", "version"], registry=r)
        self.ready = Gauge("assign_ready", "1 once the router is loaded and warm", registry=r)

    def observe_tick(self, result: TickResult, *, mode: str) -> None:
        self.ticks.labels(mode).inc()
        for stage, ms in result.timings_ms.items():
            self.stage_seconds.labels(mode, stage).observe(ms / 1e3)
        if result.assignments:
            self.decisions.labels(mode, "assigned").inc(len(result.assignments))
        for reason, n in Tally(u.reason for u in result.unassigned).items():  # one update per reason
            self.decisions.labels(mode, reason).inc(n)
        if result.fallback:
            self.fallbacks.labels(mode).inc()

    def error(self, kind: str) -> None:
        self.errors.labels(kind).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
