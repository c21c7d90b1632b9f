"""The registry on MLflow, for teams that run it (the optional ``mlflow`` extra).

A version is an MLflow model version of one registered model (default ``assign``): its
model directory is the artifact ``model/`` of a run in the experiment ``<name>-versions``,
its record (note, training window, data hash, held-out metrics) the version's tag
``assign.record`` and the run's metrics. Aliases ``champion`` / ``challenger`` / ``previous``
are MLflow model aliases. MLflow keeps no append-only log, so each audit line is a run of
the experiment ``<name>-audit`` holding the line as the artifact ``entry.json`` (runs are
never edited). :meth:`path` downloads a version once into ``cache_dir``.

MLflow 3 refuses its file store (``file:`` URIs) unless ``MLFLOW_ALLOW_FILE_STORE=true`` is
set; a ``sqlite:`` URI needs SQLAlchemy (full ``mlflow``).
"""
from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

from assign.deploy.registry import Registry, _stamp, version_record
from assign.errors import InputError, ModelError
from assign.io import dumps


class MLflowRegistry(Registry):
    """:class:`~assign.deploy.registry.Registry` on an MLflow tracking URI (module doc)."""

    def __init__(self, uri: str, *, name: str = "assign", cache_dir: str | Path | None = None) -> None:
        try:
            from mlflow import MlflowClient
        except ImportError as err:  # pragma: no cover - depends on the install
            raise InputError([f"--registry {uri}: an MLflow URI needs mlflow (pip install 'assign[mlflow]')"],
                             what="registry") from err
        self.uri, self.name = uri, name
        try:
            self.client = MlflowClient(tracking_uri=uri, registry_uri=uri)
            if self.client.search_registered_models(filter_string=f"name='{name}'") == []:
                self.client.create_registered_model(name)
        except Exception as err:  # MlflowException and the store's own errors
            raise InputError([f"--registry {uri}: cannot open the MLflow registry ({str(err)[:300]})"],
                             what="registry") from err
        self.cache = Path(cache_dir) if cache_dir is not None else Path(tempfile.mkdtemp(prefix="assign-mlflow-"))

    def __repr__(self) -> str:
        return f"MLflowRegistry({self.uri!r}, name={self.name!r})"

    def _experiment(self, suffix: str) -> str:
        full = f"{self.name}-{suffix}"
        exp = self.client.get_experiment_by_name(full)
        return exp.experiment_id if exp is not None else self.client.create_experiment(full)

    def register(self, model_dir: str | Path, *, note: str = "", training_window: tuple[Any, Any] | None = None,
                 data_hash: str | None = None, metrics: dict[str, Any] | None = None, at: Any = None,
                 evaluation_window: tuple[Any, Any] | None = None, refit: dict[str, Any] | None = None) -> str:
        src = Path(model_dir)
        record = version_record(src, note=note, training_window=training_window, data_hash=data_hash,
                                metrics=metrics, at=at, evaluation_window=evaluation_window, refit=refit)
        run = self.client.create_run(self._experiment("versions"))
        rid = run.info.run_id
        self.client.log_artifacts(rid, str(src), "model")
        for target, m in record["metrics"].items():
            for k, v in m.items():
                if isinstance(v, (int, float)) and v == v:
                    self.client.log_metric(rid, f"{target}.{k}", float(v))
        self.client.set_terminated(rid)
        mv = self.client.create_model_version(self.name, source=f"{run.info.artifact_uri}/model", run_id=rid,
                                              tags={"assign.record": dumps(record)})
        version = str(mv.version)
        self.log("register", at=at, version=version, note=note, data_hash=record["data_hash"])
        return version

    def path(self, version_or_alias: str) -> Path:
        import mlflow

        v = self.resolved(version_or_alias)
        dest = self.cache / v
        if not (dest / "model" / "metadata.json").is_file():
            mv = self.client.get_model_version(self.name, v)
            dest.mkdir(parents=True, exist_ok=True)
            got = mlflow.artifacts.download_artifacts(artifact_uri=mv.source, dst_path=str(dest), tracking_uri=self.uri)
            if Path(got) != dest / "model":
                raise ModelError(f"{self.uri}: version {v} downloaded to {got}, expected {dest / 'model'}")
        return dest / "model"

    def versions(self) -> list[dict[str, Any]]:
        out = []
        for mv in self.client.search_model_versions(f"name='{self.name}'"):
            rec = json.loads(mv.tags.get("assign.record", "{}"))
            out.append({"version": str(mv.version), **rec})
        return sorted(out, key=lambda r: int(r["version"]))

    def audit(self) -> list[dict[str, Any]]:
        import mlflow

        exp = self.client.get_experiment_by_name(f"{self.name}-audit")
        if exp is None:
            return []
        runs = self.client.search_runs([exp.experiment_id], max_results=50_000)
        runs = sorted(runs, key=lambda r: int(r.data.tags.get("assign.seq", "0")))
        return [json.loads(mlflow.artifacts.load_text(f"{r.info.artifact_uri}/entry.json")) for r in runs]

    def log(self, event: str, *, at: Any = None, **fields: Any) -> dict[str, Any]:
        entry = {"event": event, "at": _stamp(at), **fields}
        run = self.client.create_run(self._experiment("audit"),
                                     tags={"assign.seq": str(time.time_ns()), "assign.event": event})
        self.client.log_text(run.info.run_id, dumps(entry), "entry.json")
        self.client.set_terminated(run.info.run_id)
        return entry

    def _aliases(self) -> dict[str, str]:
        return {k: str(v) for k, v in self.client.get_registered_model(self.name).aliases.items()}

    def _point(self, alias: str, version: str | None) -> None:
        if version is None:
            self.client.delete_registered_model_alias(self.name, alias)
        else:
            self.client.set_registered_model_alias(self.name, alias, version)
