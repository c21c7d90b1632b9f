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
@click.option("--days", type=float, default=None,
              help="Days of arrivals [default: 1; scenario: its days; replay: its span].")
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
@click.option("--staffing-scale", type=float, default=None,
              help="What-if: multiply the scenario's staffing by X (rounded to whole agents).")
@click.option("--arrival-scale", type=float, default=None, help="What-if: multiply the scenario's arrival rates by Y.")
@click.option("--overrides", "overrides_file", type=click.Path(dir_okay=False), default=None,
              help="What-if: CSV of hour_of_week with agents and/or arrival_scale, applied after the scales.")
def simulate_cmd(world_dir, scenario_dir, replay, policies, seeds, seed_start, days, window_s, batch_window_s,
                 sl_threshold_s, model_dir, workers, scheduler, out_dir, logs, as_json, staffing_scale,
                 arrival_scale, overrides_file) -> None:
    """Simulate routing POLICIES on a synthetic world or a queueing scenario; report KPIs with
    95% confidence intervals over SEEDS replications and paired differences vs fcfs."""
    from assign.sim.engine import SimConfig
    from assign.sim.runner import PolicySpec, replicate

    knobs = staffing_scale is not None or arrival_scale is not None or overrides_file is not None
    problems = _option_problems(world_dir=world_dir, scenario_dir=scenario_dir, replay=replay, policies=policies,
                                seeds=seeds, days=days, window_s=window_s, batch_window_s=batch_window_s,
                                workers=workers, model_dir=model_dir, knobs=knobs, arrival_scale=arrival_scale,
                                overrides_file=overrides_file)
    if problems:
        raise InputError(problems, what="option")
    spec, source, notes, policies = _build_source(world_dir=world_dir, scenario_dir=scenario_dir, replay=replay,
                                                  policies=policies, knobs=knobs, staffing_scale=staffing_scale,
                                                  arrival_scale=arrival_scale, overrides_file=overrides_file)
    if days is None:
        if replay:
            days = (source.replay_span_s + 1.0) / DAY_S if source.replay_span_s else 1.0
        elif scenario_dir:
            days = source.scenario.days
        else:
            days = 1.0
    if scenario_dir:
        _check_size(source.scenario, days=days)
    config = SimConfig(days=days, window_s=window_s, sl_threshold_s=sl_threshold_s)
    specs = [PolicySpec(name=p, model_dir=model_dir) for p in policies]
    seed_list = list(range(seed_start, seed_start + seeds))
    log_dir = Path(out_dir) / "logs" if (out_dir and logs) else None
    configs = {}
    if batch_window_s is not None:
        from dataclasses import replace

        from assign.sim.policies import BATCHED_POLICIES

        configs = {p: replace(config, window_s=batch_window_s) for p in policies if p in BATCHED_POLICIES}
    res = replicate(source=spec, policies=specs, seeds=seed_list, config=config, workers=workers,
                    scheduler=scheduler, log_dir=log_dir, progress=True, configs=configs)
    notes += _run_notes(source=source, scenario_dir=scenario_dir, replay=replay, config=config, window_s=window_s,
                        batch_window_s=batch_window_s, policies=policies, model_dir=model_dir)
    where = f"scenario {scenario_dir}" if knobs else f"{spec.kind} {spec.path}"
    settings = {"source": where + (f" replaying {replay}" if replay else ""),
                "policies": ", ".join(policies), "seeds": f"{seed_list[0]}..{seed_list[-1]} ({seeds})",
                "days": f"{days:g}", "window_s": window_s,
                "batch_window_s": window_s if batch_window_s is None else batch_window_s,
                "sl_threshold_s": sl_threshold_s,
                "workers": workers if not scheduler else scheduler}
    summary = _summarise(res, source=source, replay=replay, out_dir=out_dir, settings=settings, notes=notes,
                         policies=policies, sl_threshold_s=sl_threshold_s)
    if as_json:
        click.echo(json.dumps(summary, indent=1, default=str))
        return
    _echo_table(res)
    if out_dir:
        click.echo(f"report: {Path(out_dir) / 'report.md'} and report.html")


def _option_problems(*, world_dir, scenario_dir, replay, policies, seeds, days, window_s, batch_window_s, workers,
                     model_dir, knobs, arrival_scale, overrides_file) -> list[str]:
    """Every problem with ``simulate``'s options, at once."""
    from assign.sim.policies import POLICY_NAMES

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
    if knobs and not scenario_dir:
        problems.append("--staffing-scale / --arrival-scale / --overrides: need --scenario")
    if replay and (arrival_scale is not None or overrides_file is not None):
        problems.append("--arrival-scale / --overrides: not with --replay (the arrivals are the log's)")
    return problems + _request_limits(days=days, seeds=seeds, n_policies=max(len(policies), 1))


def _build_source(*, world_dir, scenario_dir, replay, policies, knobs, staffing_scale, arrival_scale, overrides_file):
    """The source spec to ship to workers, the built source, the what-if notes and the policies
    (the scenario's own policy when none is given)."""
    from assign.sim.policies import POLICY_NAMES
    from assign.sim.runner import SourceSpec

    if world_dir:
        spec = SourceSpec(kind="world", path=_world_dir(world_dir))
    else:
        spec = SourceSpec(kind="scenario", path=str(scenario_dir), replay=str(replay) if replay else None)
    source = spec.build()  # validates here, before any worker starts
    notes: list[str] = []
    if knobs:
        source, notes = _what_if(source, replay, staffing_scale, arrival_scale, overrides_file)
        spec = source  # a built source object travels to the workers as it is
    if not policies:
        policies = (source.scenario.policy,)
        if policies[0] not in POLICY_NAMES:
            raise InputError([f"scenario policy {policies[0]!r}: unknown (expected one of {', '.join(POLICY_NAMES)})"],
                             what="scenario")
    return spec, source, notes, policies


def _run_notes(*, source, scenario_dir, replay, config, window_s, batch_window_s, policies, model_dir) -> list[str]:
    """The report's notes on what the run models and how it routed."""
    notes = []
    if scenario_dir:
        notes.append("scenario: outcomes other than handle time (resolution, CSAT) are not modelled, "
                     "so those KPIs are n/a")
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
        scorer = f"XGBoost model {model_dir}" if model_dir else "rule-based SkillScorer (no --model)"
        notes.append(f"scorer of ml policies: {scorer}")
    return notes


def _summarise(res, *, source, replay, out_dir, settings, notes, policies, sl_threshold_s) -> dict:
    """Write the report (with ``--out``) and return the JSON summary."""
    from assign.sim.report import write_report

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
        paired = paired_differences(res, baseline=policies[0])
        summary = {"settings": settings, "kpis": json.loads(kt.to_json(orient="records")),
                   "paired_differences": json.loads(paired.to_json(orient="records")),
                   "headline": headline(res)}
    if replay:
        summary["observed_vs_simulated"] = json.loads(extra[0][1].to_json(orient="records"))
    return summary


def _echo_table(res) -> None:
    """The KPI table on stdout: mean ± 95% half-width per policy."""
    from assign.sim.kpis import kpi_table

    kt = kpi_table(res)
    show = ["resolution_rate", "csat", "aht_s", "asa_s", "service_level", "abandonment_rate", "occupancy"]
    click.echo(f"{'policy':<10}" + "".join(f"{k:>22}" for k in show))
    for p in dict.fromkeys(s.policy for s in res):
        cells = []
        for k in show:
            r = kt[(kt.policy == p) & (kt.kpi == k)].iloc[0]
            if r["mean"] != r["mean"]:
                cells.append("n/a")
            elif r["half_width"] == r["half_width"]:
                cells.append(f"{r['mean']:.3f}±{r['half_width']:.3f}")
            else:
                cells.append(f"{r['mean']:.3f}")
        click.echo(f"{p:<10}" + "".join(f"{c:>22}" for c in cells))


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


def _request_limits(*, days, seeds: int, n_policies: int) -> list[str]:
    """What one request may ask for (the limits keep a run's memory bounded)."""
    from assign.sim.scenario import MAX_DAYS, MAX_RUNS

    out = []
    if days is not None and not days <= MAX_DAYS:
        out.append(f"--days: {days:g} is above the limit of {MAX_DAYS:g} days per run")
    if seeds * n_policies > MAX_RUNS:
        out.append(f"--seeds: {seeds} seeds x {n_policies} policies = {seeds * n_policies} runs, above the "
                   f"limit of {MAX_RUNS}")
    return out


def _check_size(scenario, *, days: float) -> None:
    """Refuse a run whose expected contacts or agents exceed the limits."""
    from assign.sim.scenario import MAX_AGENTS, MAX_CONTACTS_PER_RUN, MAX_DAYS, expected_contacts

    p = []
    if days > MAX_DAYS:
        p.append(f"days: {days:g} is above the limit of {MAX_DAYS:g} days per run")
    else:
        n = expected_contacts(scenario, days=days)
        if n > MAX_CONTACTS_PER_RUN:
            p.append(f"arrivals: {n:.3g} expected contacts in {days:g} day(s), above the limit of "
                     f"{MAX_CONTACTS_PER_RUN:,} per run (lower the rates or --days)")
    if scenario.n_agents > MAX_AGENTS:
        p.append(f"agents: {scenario.n_agents} agents, above the limit of {MAX_AGENTS}")
    if p:
        raise InputError(p, what="simulation request")


def _what_if(source, replay, staffing_scale, arrival_scale, overrides_file):
    """The scenario source rebuilt with the what-if knobs applied (before the source is built)."""
    from assign.io import read_table
    from assign.sim.source import ScenarioSource
    from assign.sim.staffing import what_if

    overrides = None
    if overrides_file:
        if not Path(overrides_file).is_file():
            raise InputError([f"--overrides {overrides_file}: no such file"], what="option")
        overrides = read_table(Path(overrides_file))
    sc = what_if(source.scenario, staffing_scale=1.0 if staffing_scale is None else staffing_scale,
                 arrival_scale=1.0 if arrival_scale is None else arrival_scale, overrides=overrides)
    new = ScenarioSource(sc, replay=source._replay if replay else None)
    notes = [f"what-if: staffing x{staffing_scale or 1:g} (rounded to whole agents), arrivals x{arrival_scale or 1:g}"
             + (f", per-hour overrides from {overrides_file}" if overrides_file else "")
             + f": {int(sc.staffing.agents.sum())} agent-hours per week"]
    return new, notes


@main.command("staff")
@click.option("--scenario", "scenario_dir", required=True, type=click.Path(), help="Scenario directory or file.")
@click.option("--target-sl", type=float, default=0.8, show_default=True, help="Service-level target (share answered).")
@click.option("--target-s", type=float, default=20.0, show_default=True, help="... within this many seconds.")
@click.option("--max-abandon", type=float, default=None, help="Also keep each hour's abandonment at or below this.")
@click.option("--weeks", type=int, default=2, show_default=True, help="Simulated weeks per check replication.")
@click.option("--seeds", type=int, default=2, show_default=True, help="Check replications, pooled per hour.")
@click.option("--max-rounds", type=int, default=12, show_default=True, help="Correction rounds at most.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Write staffing.csv (per hour of week), staffing.png and a staffed scenario here.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
def staff_cmd(scenario_dir, target_sl, target_s, max_abandon, weeks, seeds, max_rounds, out_dir, as_json) -> None:
    """Agents needed per hour of week for TARGET-SL within TARGET-S: Erlang A (M/M/n+M) first
    guess, then checked and corrected by simulating the scenario."""
    from dataclasses import replace

    from assign.sim.scenario import Staffing, load_scenario, write_scenario
    from assign.sim.staffing import _names, plan_staffing, plot_staffing

    sc = load_scenario(scenario_dir)
    plan = plan_staffing(sc, target_sl=target_sl, target_s=target_s, max_abandon=max_abandon, weeks=weeks,
                         seeds=seeds, max_rounds=max_rounds, progress=lambda m: click.echo(m, err=True))
    t = plan.table
    staffed = t["arrivals_per_hour"] > 0
    worst = t.loc[staffed, "simulated_service_level"].min()
    summary = {"met_in_every_staffed_hour": plan.met, "rounds": plan.rounds, "staffed_hours": int(staffed.sum()),
               "erlang_a_agent_hours_per_week": int(t["erlang_a_agents"].sum()),
               "agent_hours_per_week": int(t["agents"].sum()), "lowest_simulated_service_level": float(worst),
               **plan.settings}
    if out_dir:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        t.to_csv(out / "staffing-plan.csv", index=False)
        plot_staffing(plan, str(out / "staffing.png"))
        staffed_sc = replace(sc, staffing=Staffing(kind="hour_of_week", agents=t["agents"].to_numpy()),
                             agent_names=_names(sc, int(t["agents"].max())))
        write_scenario(staffed_sc, out / "scenario")
        summary["wrote"] = [str(out / "staffing-plan.csv"), str(out / "staffing.png"), str(out / "scenario")]
    if as_json:
        click.echo(json.dumps(summary, indent=1))
        return
    click.echo(f"{summary['staffed_hours']} hours with arrivals: Erlang A {summary['erlang_a_agent_hours_per_week']} "
               f"agent-hours/week, after {plan.rounds} simulation round(s) {summary['agent_hours_per_week']}; "
               f"target met in every staffed hour: {'yes' if plan.met else 'NO'} "
               f"(lowest simulated service level {worst:.3f})")
    if out_dir:
        click.echo("wrote " + ", ".join(summary["wrote"]))
