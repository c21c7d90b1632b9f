"""The router the service holds: loaded as ``assign solve`` loads it, warmed before ready.

:class:`Engine` wraps one :class:`~assign.router.Router` (immutable, so shared by every
thread) with what the operations endpoints report about its model, and answers a stateless
tick from request bytes to response bytes with the same JSON as ``assign solve``
(:meth:`TickResult.to_dict`).
"""
from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assign.errors import SnapshotError
from assign.model.domain import with_domain
from assign.model.scorer import XGBScorer
from assign.result import TickResult
from assign.schema import parse_snapshot
from assign.serve.jsonio import dumps, loads_body

ID_FIELDS = (("contacts", "contact_id"), ("agents", "agent_id"))


@dataclass(frozen=True, kw_only=True)
class ModelInfo:
    """What ``GET /v1/model`` and the ``assign_model_info`` metric say about the scorer."""

    scorer: str
    version: str
    path: str | None = None
    created_at: str | None = None
    targets: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"scorer": self.scorer, "version": self.version, "path": self.path,
                "created_at": self.created_at, "targets": list(self.targets)}


@dataclass(eq=False, kw_only=True)
class Engine:
    """A warm router plus its model description. Build it with :func:`load_engine`."""

    router: Any
    model: ModelInfo
    max_id_len: int = 128
    budget_ms: float | None = None
    warm_ms: float = field(default=0.0)

    def check_ids(self, doc: Any) -> None:
        """Ids longer than ``max_id_len`` are refused (every one named) before validation."""
        if not isinstance(doc, Mapping):
            return
        problems = []
        for name, key in ID_FIELDS:
            recs = doc.get(name)
            if isinstance(recs, list):
                for i, rec in enumerate(recs):
                    v = rec.get(key) if isinstance(rec, Mapping) else None
                    if isinstance(v, str) and len(v) > self.max_id_len:
                        problems.append(f"{name}[{i}].{key}: longer than {self.max_id_len} characters")
        sid = doc.get("snapshot_id")
        if isinstance(sid, str) and len(sid) > self.max_id_len:
            problems.append(f"snapshot_id: longer than {self.max_id_len} characters")
        if problems:
            raise SnapshotError(problems)

    def tick_doc(self, doc: Any, *, budget_ms: float | None = None) -> TickResult:
        """One tick of a snapshot document (validated here; bad input raises SnapshotError)."""
        self.check_ids(doc)
        budget_ms = budget_ms if budget_ms is not None else self.budget_ms
        if not isinstance(self.router.scorer, XGBScorer):
            return self.router.tick(doc, budget_ms=budget_ms)
        snap = parse_snapshot(doc)  # the model's out-of-domain counts need it, as `assign solve --model`
        return with_domain(self.router.tick(snap, budget_ms=budget_ms), model=self.router.scorer.model, snapshot=snap)

    def tick_bytes(self, body: bytes, *, budget_ms: float | None = None) -> tuple[bytes, TickResult]:
        """Request body -> (response body, result): the JSON ``assign solve`` prints."""
        result = self.tick_doc(loads_body(body), budget_ms=budget_ms)
        return dumps(result.to_dict()), result


def _model_info(model_dir: str | None, scorer: Any) -> ModelInfo:
    if model_dir is None:
        return ModelInfo(scorer=type(scorer).__name__, version="rules")
    meta_path = Path(model_dir) / "metadata.json"
    digest = hashlib.sha256(meta_path.read_bytes()).hexdigest()[:12]
    meta = scorer.model.metadata
    return ModelInfo(scorer=type(scorer).__name__, version=digest, path=str(Path(model_dir).resolve()),
                     created_at=meta.get("created_at"), targets=tuple(meta.get("targets", ())))


def canary_snapshot() -> dict[str, Any]:
    """A small valid snapshot document, ticked once at start-up through the request path."""
    from assign.workload import synthetic_snapshot

    return synthetic_snapshot(n_contacts=40, n_agents=20, seed=12345, snapshot_id="canary").to_dict()


def load_engine(*, model: str | None, max_id_len: int = 128, budget_ms: float | None = None) -> Engine:
    """Load the scorer as ``assign solve --model`` does, build the router (which compiles the
    numba kernels) and tick the canary snapshot through the request path (parse, tick,
    serialise), so that no request pays a first-call cost."""
    import time

    from assign.config import RouterConfig
    from assign.router import Router

    t0 = time.perf_counter()
    scorer = None
    if model:
        from assign.model import XGBScorer

        scorer = XGBScorer.load(model)
    router = Router(scorer=scorer, config=RouterConfig())
    engine = Engine(router=router, model=_model_info(model, router.scorer), max_id_len=max_id_len,
                    budget_ms=budget_ms)
    body = dumps(canary_snapshot())
    for _ in range(2):
        engine.tick_bytes(body)
    engine.warm_ms = (time.perf_counter() - t0) * 1e3
    return engine
