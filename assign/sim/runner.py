"""Replications and sweeps: many (policy, seed) runs, serially or on Dask, same results.

A run is a pure function of (source, policy, seed, config), so a Dask run returns exactly what
a serial run returns; results are put back in (policy, seed) order whatever order the workers
finish in. Sources are built once per worker process from a picklable :class:`SourceSpec`
(or scattered when given as objects); policies are built from :class:`PolicySpec` on the
worker (a Router is loaded once per process) or shipped as objects.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assign.sim.engine import SimConfig, simulate
from assign.sim.kpis import RunSummary, summarise

_SOURCES: dict[Any, Any] = {}
_POLICIES: dict[Any, Any] = {}


@dataclass(frozen=True)
class SourceSpec:
    """How to build a source: ``world`` (a world directory), ``scenario`` (a scenario
    directory, optionally with a ``replay`` history file)."""

    kind: str
    path: str
    replay: str | None = None

    def build(self):
        key = self
        if key not in _SOURCES:
            if self.kind == "world":
                from assign.sim.worldsource import WorldSource
                from assign.world.centre import World

                _SOURCES[key] = WorldSource(World.load(self.path), name=Path(self.path).name)
            elif self.kind == "scenario":
                from assign.sim.scenario import load_scenario
                from assign.sim.source import ScenarioSource

                replay = read_history(self.replay) if self.replay else None
                _SOURCES[key] = ScenarioSource(load_scenario(self.path), replay=replay)
            else:
                raise ValueError(f"SourceSpec.kind must be world or scenario, got {self.kind!r}")
        return _SOURCES[key]


def read_history(path: str | Path):
    """Read a history file (Parquet or CSV) for a replay."""
    import pandas as pd

    from assign.errors import InputError

    p = Path(path)
    if not p.is_file():
        raise InputError([f"{p}: no such history file"], what="replay history")
    try:
        return pd.read_parquet(p) if p.suffix in (".parquet", ".pq") else pd.read_csv(p)
    except (ValueError, OSError) as err:
        raise InputError([f"{p}: cannot be read: {err}"], what="replay history") from err


@dataclass(frozen=True)
class PolicySpec:
    """A policy by name, with the model directory (``ml-greedy``/``ml-batch``: an XGBoost
    model dir, else the rule-based SkillScorer) and router settings (a tuple of
    ``(field, value)`` pairs of :class:`~assign.config.RouterConfig`)."""

    name: str
    model_dir: str | None = None
    router: tuple[tuple[str, Any], ...] = ()
    label: str | None = None

    def build(self):
        if self not in _POLICIES:
            from assign.config import RouterConfig
            from assign.sim.policies import make_policy

            scorer = None
            if self.model_dir and self.name in ("ml-greedy", "ml-batch"):
                from assign.model import ModelDir, XGBScorer

                # One thread: a simulation makes many small predictions, where OpenMP
                # start-up costs more than it saves (and workers run one per core).
                scorer = XGBScorer(model=ModelDir.load(self.model_dir, nthread=1))
            cfg = RouterConfig(**dict(self.router)) if self.router else None
            pol = make_policy(self.name, scorer=scorer, router_config=cfg)
            if self.label:
                pol.name = self.label
            _POLICIES[self] = pol
        return _POLICIES[self]


@dataclass(frozen=True)
class _Given:
    """A policy object handed in directly (shipped to workers by cloudpickle)."""

    policy: Any

    def build(self):
        return self.policy


@dataclass(frozen=True, kw_only=True)
class Task:
    """One replication: the label its results carry, the policy recipe, the seed, the config."""

    label: str
    policy: Any
    seed: int
    config: SimConfig
    log_path: str | None = None


def run_task(source: Any, task: Task) -> RunSummary:
    """Run one replication (on a worker or here) and summarise it; writes the history log
    when ``task.log_path`` is set."""
    src = source.build() if isinstance(source, SourceSpec) else source
    pol = task.policy.build()
    from assign.learn.policy import LearnPolicy

    learning = isinstance(pol, LearnPolicy)
    if learning:
        pol.log_decisions = bool(task.log_path)
    run = simulate(source=src, policy=pol, seed=task.seed, config=task.config)
    s = summarise(run)
    if task.log_path:
        from assign.sim.log import to_history

        Path(task.log_path).parent.mkdir(parents=True, exist_ok=True)
        to_history(run, source=src).to_parquet(task.log_path, index=False)
        if learning:  # the decision and outcome logs (assign.learn.logs), next to the history
            pol.close(run).write(Path(task.log_path).with_suffix(""))
    if s.policy != task.label:
        s = RunSummary(**{**s.__dict__, "policy": task.label})
    return s


def replicate(*, source: Any, policies: Sequence[Any] | Mapping[str, Any], seeds: Sequence[int],
              config: SimConfig | None = None, workers: int = 0, scheduler: str | None = None,
              log_dir: str | Path | None = None, progress: bool | Callable[[int], None] = False,
              configs: Mapping[str, SimConfig] | None = None) -> list[RunSummary]:
    """Every policy on every seed (common random numbers: seed ``s`` gives every policy the
    same contacts and outcome draws). ``policies``: names, :class:`PolicySpec`, policy objects,
    or a mapping label -> any of those. ``workers > 0`` runs on a local Dask cluster of that
    many processes, ``scheduler`` on an existing one. Results come back in (policy, seed)
    order, identical to a serial run. ``configs`` overrides ``config`` per policy label (e.g.
    a routing window for the batch policies only)."""
    config = config or SimConfig()
    items = policies.items() if isinstance(policies, Mapping) else [(None, p) for p in policies]
    recipes = []
    for label, p in items:
        if isinstance(p, str):
            p = PolicySpec(name=p)
        recipe = p if isinstance(p, (PolicySpec, _Given)) else _Given(p)
        if label is None:
            label = p.label or p.name if isinstance(p, PolicySpec) else getattr(recipe.build(), "name", "policy")
        recipes.append((label, recipe))
    labels = [lab for lab, _ in recipes]
    if len(set(labels)) != len(labels):
        raise ValueError(f"policy labels must be distinct, got {labels}")
    configs = dict(configs or {})
    unknown = sorted(set(configs) - set(labels))
    if unknown:
        raise ValueError(f"configs names unknown policy labels {unknown}")
    tasks = [Task(label=lab, policy=r, seed=int(s), config=configs.get(lab, config),
                  log_path=str(Path(log_dir) / f"{lab}_seed{int(s)}.parquet") if log_dir else None)
             for lab, r in recipes for s in seeds]
    bar = _progress(progress, len(tasks))
    try:
        if workers <= 0 and not scheduler:
            out = []
            for t in tasks:
                out.append(run_task(source, t))
                bar(1)
            return out
        return _on_dask(source, tasks, workers=workers, scheduler=scheduler, bar=bar)
    finally:
        bar(0)


def _on_dask(source: Any, tasks: list[Task], *, workers: int, scheduler: str | None, bar) -> list[RunSummary]:
    from dask.distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler:
        client = Client(scheduler)
    else:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=":0", silence_logs=40)
        client = Client(cluster)
    try:
        src = source if isinstance(source, SourceSpec) else client.scatter(source, broadcast=True)
        futures = [client.submit(run_task, src, t, pure=False, key=f"sim-{k}-{t.label}-{t.seed}")
                   for k, t in enumerate(tasks)]
        index = {f.key: k for k, f in enumerate(futures)}
        out: list[Any] = [None] * len(tasks)
        for f in as_completed(futures):
            out[index[f.key]] = f.result()
            bar(1)
        return out
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _progress(progress, total: int):
    """A callable advancing a progress bar (tqdm on stderr) or a user callback; 0 closes it."""
    if callable(progress):
        return lambda k: progress(k) if k else None
    if not progress:
        return lambda k: None
    from tqdm import tqdm

    bar = tqdm(total=total, desc="simulating", unit="run", leave=False)
    return lambda k: bar.update(k) if k else bar.close()
