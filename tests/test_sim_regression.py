"""Seeded simulator runs reproduce a stored fixture exactly (bit for bit).

The fixture ``tests/data/sim_regression.npz`` holds, for every case below, the per-contact
arrays (status, agent, wait, handle, resolved, csat, agent load) and the run's KPI dict
(``summarise(run).kpis``, plus the per-arm KPIs of split runs) as produced by the engine
before its event loop was restructured (issue 8). A refactor of the engine, the policies or
the sources must reproduce every value exactly; a change that is MEANT to change seeded
results must regenerate the fixture in its own commit, saying why:

    cd REPO && python tests/test_sim_regression.py --regenerate
"""
from __future__ import annotations

import json
import sys
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

if __name__ == "__main__":  # run as a script from the repository root: import this checkout's assign
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
FIXTURE = Path(__file__).resolve().parent / "data" / "sim_regression.npz"
ARRAYS = ("status", "agent", "wait_s", "handle_s", "resolved", "csat", "agent_load")
WINDOWS = (0.0, 5.0)


def _world_source():
    from assign.sim.worldsource import WorldSource
    from assign.world.centre import generate_world

    return WorldSource(generate_world(seed=21, n_agents=30, n_intents=6, n_customers=3000))


def _replay_source():
    """A two-type lognormal scenario with priority, replaying a hand-made arrival stream."""
    from assign.sim.scenario import parse_scenario
    from assign.sim.source import ScenarioSource

    sc = parse_scenario({
        "schema": "assign.scenario/1", "name": "replay", "days": 1, "start": "2026-01-05T00:00:00+00:00",
        "types": [{"name": "a", "share": 0.6}, {"name": "b", "share": 0.4}],
        "arrivals": {"kind": "constant", "rate_per_hour": 60.0},
        "service": {"kind": "lognormal", "mean_s": 240.0, "cv": 0.8},
        "patience": {"kind": "exponential", "mean_s": 180.0},
        "staffing": {"kind": "constant", "agents": 4},
        "priority": {"share": 0.2, "credit_s": 60.0},
    })
    rng = np.random.default_rng(5)
    n = 400
    t = np.sort(rng.uniform(0, 0.25 * 86400.0, n))
    hist = pd.DataFrame({
        "contact_id": [f"r{k:05d}" for k in range(n)],
        "arrival_at": pd.Timestamp("2026-01-05T00:00:00Z") + pd.to_timedelta(t, unit="s"),
        "channel": "voice", "intent": np.where(rng.random(n) < 0.6, "a", "b"),
        "customer_id": [f"u{k}" for k in rng.integers(0, 150, n)],
        "customer_tier": np.where(rng.random(n) < 0.2, "priority", "regular"),
        "wait_s": 0.0, "abandoned": False,
    })
    return ScenarioSource(sc, replay=hist)


def _split():
    from assign.sim.policies import FCFS, Skills, SplitPolicy

    return SplitPolicy(arms={"control": FCFS(), "treatment": Skills()},
                       arm_of=lambda c, t: "treatment" if zlib.crc32(c.contact_id.encode()) % 2 else "control")


def _cases():
    """(name, source kind, policy factory, seed, window_s)."""
    def make_policy(name):
        from assign.sim.policies import make_policy as make

        return make(name)

    out = []
    for w in WINDOWS:
        for name in ("fcfs", "random", "skills", "ml-greedy", "ml-batch", "oracle"):
            out.append((f"world-{name}-w{w:g}", "world", lambda name=name: make_policy(name), 3, w))
        out.append((f"world-split-w{w:g}", "world", _split, 4, w))
        out.append((f"replay-fcfs-w{w:g}", "replay", lambda: make_policy("fcfs"), 2, w))
    out.append(("world-fcfs-w2.5", "world", lambda: make_policy("fcfs"), 7, 2.5))
    return out


def _run(kind, factory, seed, window_s, sources):
    from assign.sim.engine import SimConfig, simulate
    from assign.sim.kpis import summarise

    days = 0.3 if kind == "world" else 0.25
    run = simulate(source=sources[kind], policy=factory(), seed=seed, config=SimConfig(days=days, window_s=window_s))
    s = summarise(run)
    kp = {"kpis": s.kpis, "n_decisions": run.n_decisions, "by_arm": s.extra.get("by_arm")}
    return run, kp


@pytest.fixture(scope="module")
def sources():
    return {"world": _world_source(), "replay": _replay_source()}


@pytest.fixture(scope="module")
def stored():
    return np.load(FIXTURE, allow_pickle=False)


@pytest.mark.parametrize("case", _cases(), ids=lambda c: c[0])
def test_seeded_run_matches_fixture(case, sources, stored):
    name, kind, factory, seed, window_s = case
    run, kp = _run(kind, factory, seed, window_s, sources)
    for k in ARRAYS:
        np.testing.assert_array_equal(getattr(run, k), stored[f"{name}/{k}"], err_msg=f"{name}: {k}")
    want = json.loads(str(stored[f"{name}/kpis"]))
    got = json.loads(json.dumps(kp))
    assert _same_json(got, want), f"{name}: KPIs differ\n got {got}\nwant {want}"


def _same_json(a, b) -> bool:
    """Equality with NaN == NaN (json round-trips floats exactly; NaN never equals itself)."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same_json(a[k], b[k]) for k in a)
    if isinstance(a, float) and isinstance(b, float) and a != a and b != b:
        return True
    return a == b


def regenerate() -> None:
    srcs = {"world": _world_source(), "replay": _replay_source()}
    out = {}
    for name, kind, factory, seed, window_s in _cases():
        run, kp = _run(kind, factory, seed, window_s, srcs)
        for k in ARRAYS:
            out[f"{name}/{k}"] = getattr(run, k)
        out[f"{name}/kpis"] = np.array(json.dumps(kp))
        print(f"{name}: {run.n_contacts} contacts, {run.n_decisions} decisions, {run.wall_s:.2f} s")
    FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(FIXTURE, **out)


if __name__ == "__main__":
    if "--regenerate" in sys.argv:
        regenerate()
