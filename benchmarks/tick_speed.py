"""Issue 14's tick cases for ``python -m benchmarks.tick``: XGBoost, incremental, and scale.

- ``xgb-1000x1000``: a model trained on a 1000-agent centre's history (seed 7; a temp dir,
  removed after, unless ``model_dir`` is given), its retrieval prior fitted on another peak
  snapshot of that centre, ticking peaks with 1000 contacts waiting. In the same run,
  interleaved: the engine with the fitted prior (table plus its contact part), the same at
  ``top_k`` 10 (``prior_top_k10``), with the table alone (``table_prior``), ranking by
  proficiency (``proficiency_prior``), the engine on xgboost's ``inplace_predict`` instead of the packed
  forest (``xgboost_backend``), and the naive pipeline (every pair scored by XGBoost, dense
  flow) for the speed-up and the pruning gaps.
- ``incremental-1000x1000``: consecutive 2-second windows of that centre, ~10% of the
  contacts new and ~10% of the agents with a changed load each window; the engine with the
  cross-tick score cache (:class:`assign.model.cache.CachedScorer`) against a from-scratch
  engine, interleaved, timed per tick after the first, assignments compared.
- ``scale-NxN``: rule-based, no naive pipeline (it cannot run at this size); ``max_rss_mb``
  and ``cpu_mean_ms`` (process CPU per tick: on a shared machine, closer to the quiet time
  than the wall clock).
"""
from __future__ import annotations

import dataclasses
import resource
import sys
import tempfile
import time
from datetime import timedelta

import numpy as np

STAGES = ("retrieve", "score", "solve")
PEAK_S = 10.5 * 3600.0  # Monday 10:30


def max_rss_mb() -> float:
    """The process's peak resident memory so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _pct(xs, q) -> float:
    return float(np.percentile(xs, q)) if len(xs) else float("nan")


def _take(block, idx: np.ndarray):
    """Rows ``idx`` of a Contacts/Agents block."""
    out = {}
    for f in dataclasses.fields(block):
        v = getattr(block, f.name)
        out[f.name] = None if v is None else (tuple(v[i] for i in idx) if isinstance(v, tuple) else v[idx])
    return type(block)(**out)


def peak_snapshot(world, *, seed: int, n_contacts: int, t_s: float = PEAK_S, pool: int | None = None):
    """A snapshot of ``world`` at ``t_s`` with ``n_contacts`` waiting (arrived in the last hour)
    and every agent; with ``pool`` also returns a pool of that many more arrivals (waited 0)."""
    from assign.schema import Snapshot

    rng = np.random.default_rng(seed)
    arr = world.sample_arrivals(rng=rng, start_s=t_s - 3600.0, end_s=t_s)
    pick = rng.permutation(len(arr))[:n_contacts + (pool or 0)]
    arr = arr.iloc[pick].reset_index(drop=True)
    contacts = world.contacts_block(arr)
    waited = np.where(np.arange(len(arr)) < n_contacts, t_s - arr["arrival_s"].to_numpy(), 0.0)
    contacts = dataclasses.replace(contacts, waited_s=waited)
    snap = Snapshot(snapshot_id=f"peak-{seed}", at=world.start + timedelta(seconds=t_s), intents=world.intents,
                    languages=world.languages, styles=world.styles,
                    contacts=_take(contacts, np.arange(n_contacts)), agents=world.agents_block(t_s=t_s))
    if pool is None:
        return snap
    return snap, _take(contacts, np.arange(n_contacts, len(arr)))


def _train_model(world, *, days: int, out: str) -> None:
    from assign.model import train
    from assign.world.centre import generate_history

    print(f"  training a model on {days} day(s) of a {world.n_agents}-agent centre...", file=sys.stderr, flush=True)
    train(generate_history(world, days=days, seed=8), out=out)


def _timed(engines: dict, snaps: list, repeats: int) -> dict:
    """Interleaved ticks: each repeat ticks every engine on the same snapshot. ``cpu``: the
    process's CPU time per tick (every stage is single-threaded, so on a quiet machine it is
    close to the wall time; on a contended one it is the steadier figure)."""
    out = {k: {"total": [], "cpu": [], **{s: [] for s in STAGES}} for k in engines}
    for r in range(repeats):
        for k, eng in engines.items():
            c0 = time.process_time()
            t = eng.tick(snaps[r % len(snaps)]).timings_ms
            out[k]["cpu"].append((time.process_time() - c0) * 1e3)
            out[k]["total"].append(t["total"])
            for s in STAGES:
                out[k][s].append(t.get(s, 0.0))
    return out


def _summary(t: dict) -> dict:
    cpu = {"cpu_p50_ms": _pct(t["cpu"], 50), "cpu_p99_ms": _pct(t["cpu"], 99)} if t.get("cpu") else {}
    return {"p50_ms": _pct(t["total"], 50), "p99_ms": _pct(t["total"], 99), **cpu,
            "stages_p50_ms": {s: _pct(t[s], 50) for s in STAGES}, "stages_p99_ms": {s: _pct(t[s], 99) for s in STAGES}}


def xgb_world(*, quick: bool, model_dir: str | None = None) -> tuple:
    """The xgb cases' 1000-agent centre (seed 7) and the XGBoost scorer of ``model_dir``
    (None: a model trained on 2 days of its history, 1 with ``quick``, in a temp dir)."""
    from assign.model import XGBScorer
    from assign.world.centre import generate_world

    world = generate_world(n_agents=1000, seed=7)
    with tempfile.TemporaryDirectory(prefix="assign-bench-xgb-") as tmp:
        if model_dir is None:
            model_dir = tmp
            _train_model(world, days=1 if quick else 2, out=tmp)
        return world, XGBScorer.load(model_dir)


def xgb_case(*, quick: bool, model_dir: str | None = None) -> tuple[dict, tuple]:
    """``xgb-1000x1000`` (see the module docstring); also returns (world, scorer) for the
    incremental case."""
    from assign.config import RouterConfig
    from assign.model.prior import fit_prior
    from assign.router import Router
    from benchmarks.tick import naive_tick

    world, scorer = xgb_world(quick=quick, model_dir=model_dir)
    fit_snap = peak_snapshot(world, seed=100, n_contacts=1000)
    fit = scorer.fit_prior(fit_snap)
    plain = dataclasses.replace(scorer, prior_fit=None)
    table_only = dataclasses.replace(scorer, prior_fit=fit_prior(scorer, fit_snap, contact_terms=()))
    on_xgb = dataclasses.replace(scorer, model=dataclasses.replace(scorer.model, packed=None))
    engines = {"prior": Router(scorer=scorer), "prior_top_k10": Router(scorer=scorer, config=RouterConfig(top_k=10)),
               "table_prior": Router(scorer=table_only), "proficiency_prior": Router(scorer=plain),
               "xgboost_backend": Router(scorer=on_xgb)}
    snaps = [peak_snapshot(world, seed=200 + s, n_contacts=1000) for s in range(2 if quick else 4)]
    times = _timed(engines, snaps, 20 if quick else 100)
    naive_ms, gaps = [], {k: [] for k in ("prior", "prior_top_k10", "table_prior", "proficiency_prior")}
    served_lost, n_cand, n_scored = [], 0, {k: [] for k in gaps}
    for snap in snaps:
        ref_obj, ref_served, ms = naive_tick(snap, scorer=scorer, config=engines["prior"].config)
        naive_ms.append(ms)
        for k, gap in gaps.items():
            res = engines[k].tick(snap)
            gap.append((ref_obj - res.objective) / abs(ref_obj) if ref_obj else 0.0)
            n_scored[k].append(len(engines[k].problem(snap).rows))
            if k == "prior":
                served_lost.append(ref_served - len(res.assignments))
                n_cand = res.n_candidates
    main = _summary(times["prior"])
    return {
        "name": "xgb-1000x1000", "contacts": 1000, "agents": 1000, "scorer": scorer.name,
        "repeats": len(times["prior"]["total"]), **main,
        "naive_p50_ms": _pct(naive_ms, 50), "speedup_p50": _pct(naive_ms, 50) / main["p50_ms"],
        "pruning_gap": float(np.mean(gaps["prior"])), "pruning_gap_max": float(np.max(gaps["prior"])),
        "served_lost_max": int(max(served_lost)), "candidates_pruned": int(n_cand),
        "prior_fit_r2": fit.r2, "trees": scorer.model.packed.n_trees if scorer.model.packed else None,
        "pairs_scored": float(np.mean(n_scored["prior"])),
        **{k: {**_summary(times[k]), "pruning_gap": float(np.mean(gaps[k])), "pruning_gap_max": float(np.max(gaps[k])),
               "pairs_scored": float(np.mean(n_scored[k]))}
           for k in ("prior_top_k10", "table_prior", "proficiency_prior")},
        "xgboost_backend": _summary(times["xgboost_backend"]), "max_rss_mb": max_rss_mb(),
    }, (world, scorer)


def _next_window(snap, pool, used: int, rng, *, share: float = 0.1):
    """The window 2 s later: ~``share`` of the contacts replaced by new arrivals from ``pool``,
    ~``share`` of the agents with one channel's load changed. Returns (snapshot, used)."""
    c, a = snap.contacts, snap.agents
    k = max(1, round(share * len(c)))
    out = np.sort(rng.choice(len(c), k, replace=False))
    keep = np.setdiff1d(np.arange(len(c)), out)
    new = _take(pool, np.arange(used, used + k))
    both = {f.name: (np.concatenate([getattr(c, f.name)[keep], getattr(new, f.name)])
                     if getattr(c, f.name) is not None and not isinstance(getattr(c, f.name), tuple) else None)
            for f in dataclasses.fields(c)}
    both["waited_s"] = np.concatenate([c.waited_s[keep] + 2.0, np.zeros(k)])
    contacts = type(c)(**both)
    load = a.load.copy()
    for j in rng.choice(len(a), max(1, round(share * len(a))), replace=False):
        ch = int(np.argmax(a.capacity[j]))
        load[j, ch] = (load[j, ch] + 1) % (a.capacity[j, ch] + 1)
    agents = dataclasses.replace(a, load=load, idle_s=a.idle_s + 2.0)
    return dataclasses.replace(snap, snapshot_id=f"{snap.snapshot_id}+", at=snap.at + timedelta(seconds=2),
                               contacts=contacts, agents=agents), used + k


def incremental_case(*, quick: bool, world, scorer) -> dict:
    """``incremental-1000x1000`` (see the module docstring); ``scorer`` with its prior fitted."""
    from assign.model.cache import CachedScorer
    from assign.router import Router

    n_ticks = 15 if quick else 60
    snap, pool = peak_snapshot(world, seed=300, n_contacts=1000, pool=100 * (n_ticks + 1))
    cached = CachedScorer(inner=scorer)
    engines = {"incremental": Router(scorer=cached), "from_scratch": Router(scorer=scorer)}
    rng = np.random.default_rng(300)
    times = {k: {"total": [], **{s: [] for s in STAGES}} for k in engines}
    same, used = [], 0
    for k in range(n_ticks + 1):
        res = {}
        for name, eng in engines.items():
            r = eng.tick(snap)
            res[name] = r
            if k > 0:
                times[name]["total"].append(r.timings_ms["total"])
                for s in STAGES:
                    times[name][s].append(r.timings_ms.get(s, 0.0))
        pairs = {n: sorted((x.contact_id, x.agent_id) for x in r.assignments) for n, r in res.items()}
        same.append(pairs["incremental"] == pairs["from_scratch"])
        snap, used = _next_window(snap, pool, used, rng)
    inc, scratch = _summary(times["incremental"]), _summary(times["from_scratch"])
    return {"name": "incremental-1000x1000", "contacts": 1000, "agents": 1000, "scorer": scorer.name,
            "repeats": n_ticks, **inc, "naive_p50_ms": None, "speedup_p50": None, "pruning_gap": None,
            "pruning_gap_max": None, "served_lost_max": None, "candidates_pruned": None,
            "same_assignments": bool(all(same)), "cache_hit_share": cached.hits / max(cached.hits + cached.misses, 1),
            "from_scratch": scratch, "speedup_vs_from_scratch_p50": scratch["p50_ms"] / inc["p50_ms"],
            "max_rss_mb": max_rss_mb()}


def scale_case(*, n: int, quick: bool) -> dict:
    """``scale-NxN``: the rule-based engine on a specialists centre of n contacts and n agents."""
    from assign.router import Router
    from assign.workload import synthetic_snapshot

    snaps = [synthetic_snapshot(n_contacts=n, n_agents=n, seed=5000 + s, skill_density=0.4) for s in range(2)]
    engine = Router()
    repeats = (3 if quick else 10) if n >= 10_000 else (5 if quick else 20)
    cpu0 = time.process_time()
    t = _timed({"engine": engine}, snaps, repeats)["engine"]
    cpu_ms = (time.process_time() - cpu0) * 1e3 / repeats  # CPU a tick costs: what contention distorts least
    return {"name": f"scale-{n}x{n}", "contacts": n, "agents": n, "scorer": engine.scorer.name, "repeats": repeats,
            **_summary(t), "cpu_mean_ms": cpu_ms, "naive_p50_ms": None, "speedup_p50": None, "pruning_gap": None,
            "pruning_gap_max": None, "served_lost_max": None,
            "candidates_pruned": int(engine.tick(snaps[0]).n_candidates), "max_rss_mb": max_rss_mb()}
