"""The ASGI application: routes, readiness, and how errors become HTTP answers.

:func:`create_app` returns the FastAPI app behind the :class:`~assign.serve.auth.Guard`
middleware (token, body limit). The router is loaded and warmed in a background thread at
start-up: ``/healthz`` answers at once, ``/readyz`` and the routing endpoints answer 503 until
the router is warm. Request bodies are read as bytes and validated by the snapshot rules
(:func:`assign.schema.parse_snapshot`), so bad input gets the CLI's messages, every problem
at once; the JSON Schemas in :mod:`assign.serve.schemas` only document them.
"""
from __future__ import annotations

import asyncio
import gc
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response

from assign.errors import InputError
from assign.serve import schemas as S
from assign.serve.auth import ADMIN, Guard, Tokens, load_tokens
from assign.serve.config import ServeConfig
from assign.serve.engine import Engine, load_engine
from assign.serve.jsonio import dumps, loads_body
from assign.serve.logs import event, setup_logging
from assign.serve.metrics import CONTENT_TYPE, Metrics
from assign.serve.runner import Draining, WindowRunner
from assign.serve.window import validate_agent, validate_contact

NOT_YET = ("POST /v1/model (switch to a registry alias: the model registry and hot swap of the retraining "
           "issue) and POST /v1/outcomes (Router.observe of the learning issue) are not implemented yet; "
           "this service serves the model given with --model")


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    data = body if isinstance(body, bytes) else dumps(body)
    return Response(content=data, status_code=status, media_type="application/json", headers=headers)


class Service:
    """What the routes share: settings, metrics, the engine once warm, the window runner."""

    def __init__(self, config: ServeConfig, tokens: Tokens) -> None:
        self.config, self.tokens = config, tokens
        self.metrics = Metrics()
        self.log = setup_logging()
        self.engine: Engine | None = None
        self.runner: WindowRunner | None = None
        self.failed: str | None = None
        self.draining = False
        self.tick_pool = ThreadPoolExecutor(max_workers=config.tick_threads, thread_name_prefix="assign-tick")
        self.window_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="assign-window")

    def load(self, loop: asyncio.AbstractEventLoop) -> None:
        """In a thread: load and warm the engine, then hand it to the event loop."""
        try:
            engine = load_engine(model=self.config.model, max_id_len=self.config.max_id_len,
                                 budget_ms=self.config.budget_ms)
        except Exception as err:
            self.failed = f"{type(err).__name__}: {err}"
            event(self.log, "load_failed", level=logging.ERROR, error=self.failed)
            return
        # the loaded libraries and model are ~200k objects that live as long as the process: out of
        # the collector's sight, a full collection no longer scans them (a ~100 ms pause every few
        # hundred requests, measured by benchmarks.parse, before)
        gc.collect()
        gc.freeze()
        loop.call_soon_threadsafe(self._ready, engine)

    def _ready(self, engine: Engine) -> None:
        if self.config.window_s is not None:
            self.runner = WindowRunner(engine=engine, window_s=self.config.window_s, executor=self.window_pool,
                                       metrics=self.metrics, log=self.log, log_ticks=self.config.log_ticks)
            self.runner.start()
        self.engine = engine
        m = engine.model
        self.metrics.model_info.labels(m.scorer, m.version).set(1)
        self.metrics.ready.set(1)
        event(self.log, "ready", model=m.to_dict(), warm_ms=round(engine.warm_ms, 1),
              window_s=self.config.window_s)

    def begin_drain(self) -> asyncio.Task | None:
        """Stop taking contacts and ticks; the window runner finishes and answers everyone."""
        if self.draining:
            return None
        self.draining = True
        self.metrics.ready.set(0)
        event(self.log, "draining")
        return asyncio.get_running_loop().create_task(self.runner.drain()) if self.runner else None

    async def close(self) -> None:
        if self.runner is not None:
            self.begin_drain()
            await self.runner.drain()
        self.tick_pool.shutdown(wait=True)
        self.window_pool.shutdown(wait=True)

    def unavailable(self) -> Response | None:
        """503 while loading, after a failed load, or while shutting down."""
        if self.draining:
            return json_response({"detail": "shutting down"}, 503)
        if self.failed is not None:
            return json_response({"detail": f"router failed to load: {self.failed}"}, 503)
        if self.engine is None:
            return json_response({"detail": "warming up"}, 503, {"Retry-After": "1"})
        return None

    def bad_input(self, err: InputError, kind: str = "bad_input") -> Response:
        self.metrics.error(kind)
        return json_response({"error": f"invalid {err.what}", "problems": list(err.problems),
                              "message": str(err)}, 422)

    def check_id(self, what: str, value: str) -> InputError | None:
        if len(value) > self.config.max_id_len:
            return InputError([f"{what}: longer than {self.config.max_id_len} characters"], what="request")
        return None


def create_app(config: ServeConfig, *, tokens: Tokens | None = None) -> Guard:
    """The service as an ASGI app; ``tokens`` default to those the configuration names."""
    service = Service(config, tokens if tokens is not None else load_tokens(config))

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        loop = asyncio.get_running_loop()
        threading.Thread(target=service.load, args=(loop,), name="assign-load", daemon=True).start()
        yield
        await service.close()

    app = FastAPI(title="assign", version="1", lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Contact routing: a stateless tick and a micro-batch window mode. Every endpoint "
                              "but /healthz and /readyz needs `Authorization: Bearer TOKEN`.")
    app.state.service = service
    _operations(app, service)
    _tick(app, service)
    _window(app, service)
    guard = Guard(app, tokens=service.tokens, max_body_bytes=config.max_body_bytes,
                  on_reject=lambda status: service.metrics.error({401: "unauthorized", 413: "too_large"}[status]))
    guard.service = service
    return guard


def _operations(app: FastAPI, service: Service) -> None:
    @app.get("/healthz", tags=["operations"], summary="Alive (no token needed)")
    async def healthz():
        return json_response({"status": "alive"})

    @app.get("/readyz", tags=["operations"], summary="Router loaded and warm (no token needed)")
    async def readyz():
        busy = service.unavailable()
        if busy is not None:
            return busy
        return json_response({"status": "ready", "model": service.engine.model.to_dict(),
                              "window_s": service.config.window_s})

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics")
    async def metrics():
        return Response(content=service.metrics.render(), media_type=CONTENT_TYPE)

    @app.get("/v1/model", tags=["model"], summary="The model serving")
    async def get_model():
        busy = service.unavailable()
        return busy or json_response(service.engine.model.to_dict())

    @app.post("/v1/model", tags=["model"], summary="Switch to a registry alias (admin token; not implemented yet)",
              responses={403: {"description": "needs the admin token"}, 501: {"description": NOT_YET}})
    async def post_model(request: Request):
        if request.scope.get("state", {}).get("role") != ADMIN:
            return json_response({"detail": "needs the admin token"}, 403)
        return json_response({"detail": NOT_YET}, 501)

    @app.post("/v1/outcomes", tags=["model"], summary="Report outcomes (not implemented yet)",
              responses={501: {"description": NOT_YET}})
    async def post_outcomes():
        return json_response({"detail": NOT_YET}, 501)


def _tick(app: FastAPI, service: Service) -> None:
    @app.post("/v1/tick", tags=["tick"], summary="Solve one snapshot: the same answer as `assign solve`",
              openapi_extra=S.body(S.SNAPSHOT), responses=S.responses(S.TICK_RESULT, _503="not ready"))
    async def tick(request: Request, budget_ms: float | None = None):
        busy = service.unavailable()
        if busy is not None:
            return busy
        if budget_ms is not None and not budget_ms > 0:
            return service.bad_input(InputError([f"budget_ms: must be > 0, got {budget_ms}"], what="request"))
        body = await request.body()
        t0 = time.perf_counter()
        try:
            out, result = await asyncio.get_running_loop().run_in_executor(
                service.tick_pool, lambda: service.engine.tick_bytes(body, budget_ms=budget_ms))
        except InputError as err:
            return service.bad_input(err)
        except Exception as err:
            service.metrics.error("internal")
            event(service.log, "tick_failed", level=logging.ERROR, error=f"{type(err).__name__}: {err}")
            return json_response({"detail": "internal error"}, 500)
        service.metrics.observe_tick(result, mode="tick")
        if service.config.log_ticks:
            event(service.log, "tick", mode="tick", snapshot_id=result.snapshot_id,
                  contacts=len(result.assignments) + len(result.unassigned), assigned=len(result.assignments),
                  solver=result.solver, fallback=result.fallback, fallback_reason=result.fallback_reason,
                  ms=round((time.perf_counter() - t0) * 1e3, 3))
        return json_response(out)


def _window(app: FastAPI, service: Service) -> None:
    def runner_or_error() -> Response | WindowRunner:
        busy = service.unavailable()
        if busy is not None:
            return busy
        if service.runner is None:
            return json_response({"detail": "window mode is off: start the service with --window-s"}, 404)
        return service.runner

    @app.post("/v1/contacts", tags=["window"], summary="A contact arrives: wait for its decision",
              openapi_extra=S.body(S.CONTACT),
              responses=S.responses(S.DECISION, _202="queued: not decided within the timeout; offered again "
                                    "next window", _503="not ready or shutting down"))
    async def post_contact(request: Request, timeout_ms: float | None = None):
        runner = runner_or_error()
        if isinstance(runner, Response):
            return runner
        timeout_s = service.config.contact_timeout_s if timeout_ms is None else max(0.0, timeout_ms / 1e3)
        timeout_s = min(timeout_s, service.config.contact_timeout_s)
        try:
            record = _contact_record(loads_body(await request.body()), service)
        except InputError as err:
            return service.bad_input(err)
        try:
            decision, replayed = await runner.submit(record, timeout_s=timeout_s)
        except Draining:
            return json_response({"detail": "shutting down"}, 503)
        return _decision_response(decision, replayed=replayed)

    @app.get("/v1/contacts/{contact_id}", tags=["window"], summary="A contact's decision (long poll with wait_ms)",
             responses=S.responses(S.DECISION, _404="unknown contact (never seen, withdrawn or ended)"))
    async def get_contact(contact_id: str, wait_ms: float = 0.0):
        runner = runner_or_error()
        if isinstance(runner, Response):
            return runner
        wait_s = min(max(0.0, wait_ms / 1e3), service.config.contact_timeout_s)
        decision = await runner.wait(contact_id, timeout_s=wait_s)
        if decision is None:
            return json_response({"detail": "unknown contact"}, 404)
        return _decision_response(decision)

    @app.delete("/v1/contacts/{contact_id}", tags=["window"],
                summary="Withdraw a waiting contact, or end an assigned one (frees the agent's slot)",
                responses=S.responses(S.DECISION, _404="unknown contact"))
    async def delete_contact(contact_id: str):
        runner = runner_or_error()
        if isinstance(runner, Response):
            return runner
        what = runner.remove(contact_id)
        if what is None:
            return json_response({"detail": "unknown contact"}, 404)
        return json_response({"contact_id": contact_id, "status": what})

    @app.put("/v1/agents/{agent_id}", tags=["window"], summary="Create or update an agent (log in/out, "
             "capacity, load, skills)", openapi_extra=S.body(S.AGENT_PUT),
             responses=S.responses({"type": "object"}))
    async def put_agent(agent_id: str, request: Request):
        runner = runner_or_error()
        if isinstance(runner, Response):
            return runner
        try:
            record, logged_in = _agent_record(agent_id, loads_body(await request.body()), service)
        except InputError as err:
            return service.bad_input(err)
        runner.put_agent(record, logged_in=logged_in)
        return json_response({"agent_id": agent_id, "logged_in": logged_in})


def _contact_record(doc: Any, service: Service) -> dict[str, Any]:
    """The validated contact of a POST body; an over-long id is one more problem."""
    problems = []
    if isinstance(doc, dict) and isinstance(doc.get("contact_id"), str):
        bad = service.check_id("contact.contact_id", doc["contact_id"])
        problems.extend(bad.problems if bad is not None else ())
    try:
        record = validate_contact(doc)
    except InputError as err:
        problems.extend(err.problems)
    if problems:
        raise InputError(problems, what="contact")
    return record


def _agent_record(agent_id: str, doc: Any, service: Service) -> tuple[dict[str, Any], bool]:
    """The validated agent of a PUT body; the path's id, ``logged_in`` taken out."""
    problems = []
    bad = service.check_id("agent_id", agent_id)
    if bad is not None:
        problems.extend(bad.problems)
    logged_in = True
    if isinstance(doc, dict):
        doc = dict(doc)
        logged_in = doc.pop("logged_in", True)
        if not isinstance(logged_in, bool):
            problems.append(f"agent.logged_in: expected true or false, got {logged_in!r}")
        if doc.setdefault("agent_id", agent_id) != agent_id:
            problems.append(f"agent.agent_id: {doc['agent_id']!r} differs from the path's {agent_id!r}")
    try:
        record = validate_agent(doc)
    except InputError as err:
        problems.extend(err.problems)
    if problems:
        raise InputError(problems, what="agent")
    return record, logged_in


def _decision_response(decision, *, replayed: bool = False) -> Response:
    body = decision.to_dict()
    if replayed:
        body["replayed"] = True
    return json_response(body, 202 if decision.status == "queued" else 200)
