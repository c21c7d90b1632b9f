"""``assign simulate``: run policies through the discrete-event simulator and write a report."""
from __future__ import annotations

import json
from pathlib import Path

import click

from assign.cli import main
from assign.constants import DAY_S
from assign.errors import InputError


def _world_dir(path: str) -> str:
    p = Path(path)
    if (p / "world.json").is_file():
        return str(p)
    if (p / "world" / "world.json").is_file():  # the directory `assign generate --out` writes
        return str(p / "world")
    raise InputError([f"--world {path}: no world.json here or in {p / 'world'}"], what="option")


@main.command("simulate")
@click.option("--world", "world_dir", type=click.Path(), default=None,
              help="World directory (from `assign generate --out DIR`: DIR or DIR/world).")
@click.option("--scenario", "scenario_dir", type=click.Path(), default=None, help="Scenario directory or file.")
@click.option("--replay", type=click.Path(), default=None,
              help="History (Parquet/CSV) whose arrival stream is replayed (needs --scenario).")
@click.option("--policy", "policies", multiple=True,
              help="fcfs | skills | random | gcmu | ml-greedy | ml-batch | oracle | ml-live | ml-learn (repeatable) "
                   "[default: the scenario's policy].")
@click.option("--seeds", type=int, default=5, show_default=True, help="Replications (seeds 0..N-1 + --seed-start).")
@click.option("--seed-start", type=int, default=0, show_default=True)
@click.option("--days", type=float, default=None, help="Days of arrivals [default: 1; scenario: its days; replay: its span].")
@click.option("--window-s", type=float, default=0.0, show_default=True,
              help="Routing window in seconds (0 = route at each arrival and each freed agent).")
@click.option("--batch-window-s", type=float, default=None,
              help="Routing window of ml-batch and oracle only [default: --window-s].")
@click.option("--sl-threshold-s", type=float, default=20.0, show_default=True, help="Service-level threshold.")
@click.option("--model", "model_dir", type=click.Path(), default=None,
              help="XGBoost model directory for ml-greedy / ml-batch [default: rule-based SkillScorer].")
@click.option("--workers", type=int, default=0, show_default=True, help="Local Dask worker processes (0 = serial).")
@click.option("--scheduler", default=None, help="Existing Dask scheduler address, e.g. tcp://host:8786.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None, help="Report directory.")
@click.option("--logs", is_flag=True, help="Also write each run's history log under OUT/logs/ (ml-live / ml-learn: "
              "also their decision and outcome logs, OUT/logs/<run>/decisions|outcomes, partitioned by day).")
@click.option("--json", "as_json", is_flag=True, help="Print the KPI summary as JSON.")
def simulate_cmd(world_dir, scenario_dir, replay, policies, seeds, seed_start, days, window_s, batch_window_s,
                 sl_threshold_s,
                 model_dir, workers, scheduler, out_dir, logs, as_json) -> None:
    """Simulate routing POLICIES on a synthetic world or a queueing scenario; report KPIs with
    95% confidence intervals over SEEDS replications and paired differences vs fcfs."""
    from assign.sim.engine import SimConfig
    from assign.sim.policies import POLICY_NAMES
    from assign.sim.report import write_report
    from assign.sim.runner import PolicySpec, SourceSpec, replicate

    problems = []
    if not policies and not scenario_dir:
        problems.append("--policy: give at least one (only a scenario has a default policy)")
    if (world_dir is None) == (scenario_dir is None):
        problems.append("--world / --scenario: give exactly one")
    if replay and not scenario_dir:
        problems.append("--replay: needs --scenario (the calibrated staffing, service and patience)")
    for p in policies:
        if p not in POLICY_NAMES:
            problems.append(f"--policy {p}: unknown (expected one of {', '.join(POLICY_NAMES)})")
    if len(set(policies)) != len(policies):
        problems.append("--policy: each policy once")
    if seeds < 1:
        problems.append(f"--seeds: must be >= 1, got {seeds}")
    if days is not None and not days > 0:
        problems.append(f"--days: must be > 0, got {days}")
    if window_s < 0:
        problems.append(f"--window-s: must be >= 0, got {window_s}")
    if batch_window_s is not None and batch_window_s < 0:
        problems.append(f"--batch-window-s: must be >= 0, got {batch_window_s}")
    if workers < 0:
        problems.append(f"--workers: must be >= 0, got {workers}")
    if scenario_dir and "oracle" in policies:
        problems.append("--policy oracle: needs --world (a scenario has no true match quality)")
    if model_dir and not Path(model_dir).is_dir():
        problems.append(f"--model {model_dir}: no such directory")
    if problems:
        raise InputError(problems, what="option")
    if world_dir:
        spec = SourceSpec(kind="world", path=_world_dir(world_dir))
    else:
        spec = SourceSpec(kind="scenario", path=str(scenario_dir), replay=str(replay) if replay else None)
    source = spec.build()  # validates here, before any worker starts
    if not policies:
        policies = (source.scenario.policy,)
        if policies[0] not in POLICY_NAMES:
            raise InputError([f"scenario policy {policies[0]!r}: unknown (expected one of {', '.join(POLICY_NAMES)})"],
                             what="scenario")
    notes = []
    if days is None:
        if replay:
            days = (source.replay_span_s + 1.0) / DAY_S if source.replay_span_s else 1.0
        elif scenario_dir:
            days = source.scenario.days
        else:
            days = 1.0
    config = SimConfig(days=days, window_s=window_s, sl_threshold_s=sl_threshold_s)
    specs = [PolicySpec(name=p, model_dir=model_dir) for p in policies]
    seed_list = list(range(seed_start, seed_start + seeds))
    log_dir = Path(out_dir) / "logs" if (out_dir and logs) else None
    configs = {}
    if batch_window_s is not None:
        from dataclasses import replace

        batched = ("ml-batch", "oracle", "ml-live", "ml-learn")
        configs = {p: replace(config, window_s=batch_window_s) for p in policies if p in batched}
    res = replicate(source=spec, policies=specs, seeds=seed_list, config=config, workers=workers,
                    scheduler=scheduler, log_dir=log_dir, progress=True, configs=configs)
    if scenario_dir:
        notes.append("scenario: outcomes other than handle time (resolution, CSAT) are not modelled, so those KPIs are n/a")
    if replay:
        outside = source.replay_outside(config.horizon_s)
        if outside:
            notes.append(f"replay: {outside} history rows arrived before the scenario start or after --days "
                         "and were not replayed")
        notes.append("replay: the logged arrival stream (times, types) with the scenario's staffing; patience and "
                     "handle times are drawn from the calibrated distributions: outcomes are a model, not the truth")
    for w, who in ((window_s, "policies" if batch_window_s is None else "policies other than ml-batch/oracle"),
                   (batch_window_s, "ml-batch and oracle")):
        if w is None:
            continue
        if w == 0:
            notes.append(f"{who}: window 0, each arrival and each freed agent is routed at once (event-driven)")
        else:
            notes.append(f"{who}: window {w:g} s, contacts are routed at multiples of the window, so every "
                         "contact waits until the next tick (p_wait is ~1 by construction)")
    if "ml-batch" in policies or "ml-greedy" in policies:
        notes.append(f"scorer of ml policies: {'XGBoost model ' + str(model_dir) if model_dir else 'rule-based SkillScorer (no --model)'}")
    settings = {"source": f"{spec.kind} {spec.path}" + (f" replaying {replay}" if replay else ""),
                "policies": ", ".join(policies), "seeds": f"{seed_list[0]}..{seed_list[-1]} ({seeds})",
                "days": f"{days:g}", "window_s": window_s,
                "batch_window_s": window_s if batch_window_s is None else batch_window_s, "sl_threshold_s": sl_threshold_s,
                "workers": workers if not scheduler else scheduler}
    extra = []
    if replay:
        extra.append(("Observed (history) vs simulated", _observed_vs_simulated(source, res, sl_threshold_s)))
    if out_dir:
        summary = write_report(res, out_dir, title="Simulation report", settings=settings, notes=notes,
                               extra_sections=extra)
    else:
        from assign.sim.kpis import kpi_table, paired_differences
        from assign.sim.report import headline

        kt = kpi_table(res)
        summary = {"settings": settings, "kpis": json.loads(kt.to_json(orient="records")),
                   "paired_differences": json.loads(paired_differences(res, baseline=policies[0]).to_json(orient="records")),
                   "headline": headline(res)}
    if replay:
        summary["observed_vs_simulated"] = json.loads(extra[0][1].to_json(orient="records"))
    if as_json:
        click.echo(json.dumps(summary, indent=1, default=str))
        return
    from assign.sim.kpis import kpi_table

    kt = kpi_table(res)
    show = ["resolution_rate", "csat", "aht_s", "asa_s", "service_level", "abandonment_rate", "occupancy"]
    click.echo(f"{'policy':<10}" + "".join(f"{k:>22}" for k in show))
    for p in dict.fromkeys(s.policy for s in res):
        cells = []
        for k in show:
            r = kt[(kt.policy == p) & (kt.kpi == k)].iloc[0]
            cells.append("n/a" if r["mean"] != r["mean"] else
                         f"{r['mean']:.3f}±{r['half_width']:.3f}" if r["half_width"] == r["half_width"] else f"{r['mean']:.3f}")
        click.echo(f"{p:<10}" + "".join(f"{c:>22}" for c in cells))
    if out_dir:
        click.echo(f"report: {Path(out_dir) / 'report.md'} and report.html")


def _observed_vs_simulated(source, res, sl_threshold_s: float):
    """Abandonment, mean wait (answered) and service level: the log vs each simulated policy."""
    import numpy as np
    import pandas as pd

    from assign.sim.kpis import interval

    h = source._replay
    ab = h["abandoned"].fillna(False).to_numpy(bool)
    w = h["wait_s"].to_numpy(float)
    obs = {"abandonment_rate": float(ab.mean()), "asa_s": float(np.nanmean(w[~ab])),
           "service_level": float(((~ab) & (w <= sl_threshold_s)).mean())}
    rows = []
    for k, v in obs.items():
        row = {"kpi": k, "observed": round(v, 4)}
        for p in dict.fromkeys(s.policy for s in res):
            iv = interval(np.array([s.kpis[k] for s in res if s.policy == p]))
            row[f"{p} simulated"] = round(iv.mean, 4)
            row[f"{p} gap"] = round(iv.mean - v, 4)
        rows.append(row)
    return pd.DataFrame(rows)
