"""Model registry: immutable versions, moving aliases, an append-only audit log.

The embedded default is a directory (nothing to run)::

    REG/
      versions/v0001/      a copy of the model directory (read-only) + version.json
      versions/v0002/      ...
      aliases.json         {"champion": "v0002", "previous": "v0001", ...}  (a cache of the log)
      audit.jsonl          one JSON object per line, appended, never rewritten

``version.json`` holds the note, the training window, the evaluation window (rows the
version did not train on, set by ``retrain``), the data hash, the held-out metrics and
when it was registered. Every alias change is an audit line ``{"event": "alias", "at",
"alias", "from", "to", "reason"}``; retrain decisions and rollbacks are lines too
(:meth:`Registry.log`). Moving ``champion`` moves the old champion to ``previous``. "Which
model routed contact X at 10:31 on the 14th" is :meth:`Registry.routed_by`, answered from
the log alone. ``at=`` lets a simulation stamp its own clock instead of the wall clock.

Writers serialise on a lock file (``fcntl.flock``); readers never block.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from assign.errors import InputError, ModelError
from assign.io import dumps

ALIASES = ("champion", "challenger", "previous")
AUDIT = "audit.jsonl"


def version_record(model_dir: Path, *, note: str, training_window: tuple[Any, Any] | None, data_hash: str | None,
                   metrics: dict[str, Any] | None, at: Any,
                   evaluation_window: tuple[Any, Any] | None, refit: dict[str, Any] | None = None) -> dict[str, Any]:
    """What a registry records of a new version (both registries): the model directory is
    checked first; data hash and metrics default to the model's own metadata. ``refit`` (a
    version refitted on its whole window after its recipe was evaluated: which version, the
    rounds, the recipe's evaluation window) is recorded only when given."""
    if not (model_dir / "metadata.json").is_file():
        raise InputError([f"model_dir {model_dir}: not a model directory (no metadata.json)"], what="registration")
    meta = json.loads((model_dir / "metadata.json").read_text())
    return dict(registered_at=_stamp(at), note=note,
                training_window=[None if t is None else _stamp(t) for t in (training_window or ())],
                evaluation_window=[None if t is None else _stamp(t) for t in (evaluation_window or ())],
                data_hash=data_hash or meta.get("data", {}).get("data_hash"),
                metrics=metrics if metrics is not None else meta.get("metrics", {}), source=str(model_dir),
                **({} if refit is None else {"refit": refit}))


def _stamp(at: Any) -> str:
    """ISO-8601 UTC text of ``at`` (None: now)."""
    t = pd.Timestamp(datetime.now(UTC) if at is None else at)
    return (t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")).isoformat()


class Registry(ABC):
    """What every registry offers; :class:`DirRegistry` is the embedded one."""

    @abstractmethod
    def register(self, model_dir: str | Path, *, note: str = "", training_window: tuple[Any, Any] | None = None,
                 data_hash: str | None = None, metrics: dict[str, Any] | None = None, at: Any = None,
                 evaluation_window: tuple[Any, Any] | None = None, refit: dict[str, Any] | None = None) -> str:
        """Copy ``model_dir`` in as a new immutable version; returns its id (``refit``: see
        :func:`version_record`)."""

    @abstractmethod
    def path(self, version_or_alias: str) -> Path:
        """A loadable model directory for a version id or an alias."""

    @abstractmethod
    def versions(self) -> list[dict[str, Any]]:
        """Every version's record (``version.json``), oldest first."""

    @abstractmethod
    def audit(self) -> list[dict[str, Any]]:
        """Every audit line, oldest first."""

    @abstractmethod
    def log(self, event: str, *, at: Any = None, **fields: Any) -> dict[str, Any]:
        """Append one audit line ``{"event": event, "at": ..., **fields}`` and return it."""

    @abstractmethod
    def _aliases(self) -> dict[str, str]:
        """Current alias -> version."""

    @abstractmethod
    def _point(self, alias: str, version: str | None) -> None:
        """Store one alias (None removes it)."""

    @contextmanager
    def _locked(self) -> Iterator[None]:
        yield

    def resolve(self, alias_or_version: str) -> str | None:
        """The version an alias points to (a version id resolves to itself); None if unset."""
        if alias_or_version in {v["version"] for v in self.versions()}:
            return alias_or_version
        return self._aliases().get(alias_or_version)

    def resolved(self, alias_or_version: str) -> str:
        """:meth:`resolve`, or an ``InputError`` naming what is not there."""
        v = self.resolve(alias_or_version)
        if v is None:
            raise InputError([f"version: {alias_or_version!r} is neither a version nor a set alias of {self}"],
                             what="registry lookup")
        return v

    def aliases(self) -> dict[str, str]:
        return dict(self._aliases())

    def set_alias(self, alias: str, version: str | None, *, reason: str, at: Any = None,
                  figures: dict[str, Any] | None = None) -> None:
        """Point ``alias`` at ``version`` (None: clear it) and log why. Moving ``champion``
        moves the old champion to ``previous`` (logged too)."""
        problems = []
        if alias not in ALIASES:
            problems.append(f"alias: {alias!r} is not one of {', '.join(ALIASES)}")
        known = {v["version"] for v in self.versions()}
        if version is not None and version not in known:
            problems.append(f"version: {version!r} is not in the registry")
        if not str(reason).strip():
            problems.append("reason: an alias change needs a reason")
        if problems:
            raise InputError(problems, what="alias change")
        with self._locked():
            current = self._aliases()
            old = current.get(alias)
            if old == version:
                return
            if alias == "champion" and old is not None:
                self._move("previous", old, current.get("previous"), reason=f"replaced as champion: {reason}", at=at)
            self._move(alias, version, old, reason=reason, at=at, figures=figures)

    def _move(self, alias: str, to: str | None, frm: str | None, *, reason: str, at: Any,
              figures: dict[str, Any] | None = None) -> None:
        self._point(alias, to)
        extra = {"figures": figures} if figures else {}
        self.log("alias", at=at, alias=alias, **{"from": frm, "to": to}, reason=reason, **extra)

    def routed_by(self, *, at: Any, alias: str = "champion") -> str | None:
        """The version ``alias`` pointed to at time ``at`` (from the audit log), None before any."""
        t = pd.Timestamp(_stamp(at))
        out = None
        for e in self.audit():
            if e.get("event") == "alias" and e.get("alias") == alias and pd.Timestamp(e["at"]) <= t:
                out = e.get("to")
        return out


class DirRegistry(Registry):
    """The embedded registry: a directory (see the module doc)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        if self.root.exists() and not self.root.is_dir():
            raise InputError([f"--registry {self.root}: exists and is not a directory"], what="registry")
        if self.root.is_dir() and any(self.root.iterdir()) and not (self.root / "versions").is_dir():
            raise InputError([f"--registry {self.root}: a directory of other files, not a registry "
                              "(no versions/); choose a new path"], what="registry")
        if not self.root.parent.is_dir():
            raise InputError([f"--registry {self.root}: directory {self.root.parent} does not exist"], what="registry")
        (self.root / "versions").mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"DirRegistry({str(self.root)!r})"

    @contextmanager
    def _locked(self) -> Iterator[None]:
        import fcntl

        with open(self.root / ".lock", "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def register(self, model_dir: str | Path, *, note: str = "", training_window: tuple[Any, Any] | None = None,
                 data_hash: str | None = None, metrics: dict[str, Any] | None = None, at: Any = None,
                 evaluation_window: tuple[Any, Any] | None = None, refit: dict[str, Any] | None = None) -> str:
        src = Path(model_dir)
        record = version_record(src, note=note, training_window=training_window, data_hash=data_hash,
                                metrics=metrics, at=at, evaluation_window=evaluation_window, refit=refit)
        with self._locked():
            n = 1 + max((int(p.name[1:]) for p in (self.root / "versions").glob("v[0-9]*")), default=0)
            version = f"v{n:04d}"
            tmp = Path(tempfile.mkdtemp(prefix=f".{version}.", dir=self.root / "versions"))
            try:
                shutil.copytree(src, tmp / "model", dirs_exist_ok=True)
                record = dict(version=version, **record)
                (tmp / "version.json").write_text(dumps(record, indent=1))
                os.replace(tmp, self.root / "versions" / version)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            _read_only(self.root / "versions" / version)
            self.log("register", at=at, version=version, note=note, data_hash=record["data_hash"])
        return version

    def path(self, version_or_alias: str) -> Path:
        return self.root / "versions" / self.resolved(version_or_alias) / "model"

    def versions(self) -> list[dict[str, Any]]:
        out = []
        for p in sorted((self.root / "versions").glob("v[0-9]*")):
            try:
                out.append(json.loads((p / "version.json").read_text()))
            except (OSError, ValueError) as err:
                raise ModelError(f"{p / 'version.json'}: unreadable ({err})") from err
        return out

    def audit(self) -> list[dict[str, Any]]:
        f = self.root / AUDIT
        if not f.exists():
            return []
        return [json.loads(line) for line in f.read_text().splitlines() if line.strip()]

    def log(self, event: str, *, at: Any = None, **fields: Any) -> dict[str, Any]:
        entry = {"event": event, "at": _stamp(at), **fields}
        with open(self.root / AUDIT, "a", encoding="utf-8") as fh:
            fh.write(dumps(entry) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        return entry

    def _aliases(self) -> dict[str, str]:
        f = self.root / "aliases.json"
        return json.loads(f.read_text()) if f.exists() else {}

    def _point(self, alias: str, version: str | None) -> None:
        current = self._aliases()
        if version is None:
            current.pop(alias, None)
        else:
            current[alias] = version
        tmp = self.root / ".aliases.json.tmp"
        tmp.write_text(json.dumps(current, indent=1, sort_keys=True))
        os.replace(tmp, self.root / "aliases.json")


def _read_only(root: Path) -> None:
    """Drop write permission on every file of a version (immutability made visible)."""
    for p in root.rglob("*"):
        if p.is_file():
            p.chmod(p.stat().st_mode & ~0o222)


def open_registry(where: str | Path) -> Registry:
    """A directory path -> :class:`DirRegistry`; an MLflow tracking URI (``mlflow:...``,
    ``file:...``, ``http(s)://...``) -> :class:`assign.deploy.mlflow_registry.MLflowRegistry`."""
    text = str(where)
    if text.startswith(("mlflow:", "file:", "http://", "https://", "sqlite:")):
        from assign.deploy.mlflow_registry import MLflowRegistry

        return MLflowRegistry(text.removeprefix("mlflow:"))
    return DirRegistry(text)
