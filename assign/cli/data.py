"""Real-data commands: ``assign ingest anonymous-bank``, ``assign ingest csv``,
``assign calibrate``, ``assign handle-variance``, ``assign replay-gap``."""
from __future__ import annotations

import json
from pathlib import Path

import click

from assign.cli import main
from assign.errors import InputError


def _read_history(path: str):
    """A history file (Parquet or CSV) conformed to the contract; errors name the file."""
    from assign.history import conform_history
    from assign.io import read_table

    p = Path(path)
    if not p.is_file():
        raise InputError([f"{path}: no such file"], what="history")
    return conform_history(read_table(p))


@main.group()
def ingest() -> None:
    """Load a real contact log into the history contract (Parquet)."""


@ingest.command("anonymous-bank")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="History Parquet to write.")
@click.option("--json", "as_json", is_flag=True, help="Print the accounting as JSON.")
def ingest_anonymous_bank(file: str, out: str, as_json: bool) -> None:
    """Read an Anonymous Bank call log (tab-separated, 17 columns).

    Malformed lines go to OUT's ``.quarantine.csv`` (line, reason, raw text), PHANTOM calls
    to ``.phantom.csv``; the accounting is printed and written to ``.ingest.json``.
    """
    from assign.world.bank import read_anonymous_bank

    res = read_anonymous_bank(file)
    paths = res.write(out, inputs=(file,))
    c = res.counts
    if as_json:
        click.echo(json.dumps(c, indent=2, sort_keys=True))
        return
    click.echo(f"read {c['lines_read']} lines: kept {c['kept']} "
               f"(served {c['kept_by_outcome']['AGENT']}, abandoned {c['kept_by_outcome']['HANG']}), "
               f"phantom excluded {c['phantom_excluded']}, quarantined {c['quarantined']}")
    for reason, n in c["quarantined_by_reason"].items():
        click.echo(f"  quarantined {reason}: {n}")
    click.echo(f"unidentified customers {c['unidentified_customer']} (of which exponent-form ids "
               f"{c['exponent_customer_id']}); repeat within 72 h: {c['repeat_72h_true']} yes, "
               f"{c['repeat_72h_false']} no, {c['repeat_72h_unknown']} unknown")
    click.echo(f"served with unknown agent {c['served_unknown_agent']}, served without service record "
               f"{c['served_without_service_record']}, abandoned before queueing {c['abandoned_before_queue']}, "
               f"crossing midnight {c['crossing_midnight']}")
    click.echo(f"wrote {paths['history']}, {paths['quarantine']}, {paths['excluded']}, {paths['summary']}")


@ingest.command("csv")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--map", "maps", multiple=True, metavar="COLUMN=SOURCE",
              help="Fill history COLUMN from the file's SOURCE column (repeatable; overrides --mapping).")
@click.option("--mapping", "mapping_file", type=click.Path(dir_okay=False), default=None,
              help="Mapping file (JSON, schema assign.ingest-map/1; see docs/history.md).")
@click.option("--time-format", default=None, help="strftime format of the time columns [default: ISO 8601].")
@click.option("--tz", default=None, help="Time zone of times without one [default: the mapping's, else UTC].")
@click.option("--save-mapping", type=click.Path(dir_okay=False), default=None,
              help="Write the mapping in effect (file + --map + --time-format + --tz) to reuse it.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="History Parquet to write.")
@click.option("--json", "as_json", is_flag=True, help="Print the accounting as JSON.")
def ingest_csv(file: str, maps: tuple[str, ...], mapping_file: str | None, time_format: str | None,
               tz: str | None, save_mapping: str | None, out: str, as_json: bool) -> None:
    """Read any CSV, TSV or Parquet export through a column mapping into the history contract.

    Every line is kept, excluded by the mapping's ``exclude`` rule (``.excluded.csv``) or
    quarantined with its reasons (``.quarantine.csv``); the accounting is printed and
    written to ``.ingest.json``. The input file is never overwritten.
    """
    from assign.world.ingest import load_map, parse_map, parse_overrides, read_mapped

    doc = load_map(mapping_file) if mapping_file else None
    mapping = parse_map(doc, overrides=parse_overrides(maps), time_format=time_format, tz=tz)
    inputs = (file, *((mapping_file,) if mapping_file else ()))
    if save_mapping:
        if any(Path(save_mapping).resolve() == Path(i).resolve() for i in (file,)):
            raise InputError([f"--save-mapping {save_mapping}: would overwrite the input file"], what="option")
        mapping.save(save_mapping)
    res = read_mapped(file, mapping)
    paths = res.write(out, inputs=inputs)
    c = res.counts
    if as_json:
        click.echo(json.dumps(c, indent=2, sort_keys=True))
        return
    click.echo(f"read {c['lines_read']} lines: kept {c['kept']} (served {c['kept_served']}, abandoned "
               f"{c['kept_abandoned']}), excluded {c['excluded']}, quarantined {c['quarantined']}")
    for reason, n in c["quarantined_by_reason"].items():
        click.echo(f"  quarantined {reason}: {n}")
    if c["derived_columns"]:
        click.echo(f"derived: {', '.join(c['derived_columns'])}")
    click.echo(f"wrote {paths['history']}, {paths['quarantine']}, {paths['excluded']}, {paths['summary']}"
               + (f", {save_mapping}" if save_mapping else ""))


@main.command()
@click.argument("history", type=click.Path(dir_okay=False))
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Scenario directory to write.")
@click.option("--name", default=None, help="Scenario name (default: the history file's stem).")
@click.option("--min-cell", default=30, show_default=True, type=int,
              help="Calls a type x agent cell needs to get its own handle-time sample.")
@click.option("--staffing-slot-s", default=900, show_default=True, type=int,
              help="Slot (divisor of 3600 s) in which distinct serving agents are counted as staffed.")
@click.option("--staffing-floor", default=1.0, show_default=True, type=float,
              help="Least staffing of an hour of week in which any call was served (0: none).")
@click.option("--sl-threshold-s", default=20.0, show_default=True, type=float,
              help="Service-level threshold of the observed KPIs (observed.json).")
@click.option("--capacity", type=click.Choice(["seen", "busy-when-queued"]), default="seen", show_default=True,
              help="How unrecorded staffing is inferred (docs/real-data.md, replay fidelity).")
@click.option("--capacity-share", type=float, default=1.0, show_default=True, help="Scale the inferred agents.")
@click.option("--wrap-up-s", type=float, default=0.0, show_default=True,
              help="After-call work added to every simulated handle time.")
@click.option("--until", default=None, help="Calibrate on arrivals before this ISO date only; the rest is "
                                           "written to holdout.parquet (replay it to validate).")
@click.option("--routing-delay", is_flag=True,
              help="Estimate the pre-routing delay of identified callers (routing_delay.csv; replays use it).")
@click.option("--slot-minutes", type=int, default=None,
              help="Also staff per slot of week of this many minutes (divisor of 60; staffing_slots.csv): "
                   "simulate then follows the slots instead of the hours.")
def calibrate(history: str, out: str, name: str | None, min_cell: int, staffing_slot_s: int,
              staffing_floor: float, sl_threshold_s: float, capacity: str, capacity_share: float,
              wrap_up_s: float, until: str | None, routing_delay: bool, slot_minutes: int | None) -> None:
    """Fit a simulator scenario (arrivals, handle times, patience, staffing) from HISTORY.

    Also writes ``replay.parquet`` (the history rows that reached the queue: the stream to
    pass to ``assign simulate --replay``) and ``observed.json`` (that stream's logged KPIs).
    """
    import pandas as pd

    from assign.io import atomic_dir
    from assign.sim.calibrate import CapacityModel, observed_kpis, queue_population
    from assign.sim.calibrate import calibrate as fit

    df = _read_history(history)
    holdout = None
    if until:
        try:
            cut = pd.Timestamp(until, tz="UTC")
        except ValueError as err:
            raise InputError([f"--until {until!r}: not an ISO date"], what="option") from err
        holdout, df = df[df["arrival_at"] >= cut], df[df["arrival_at"] < cut]
        if not len(df) or not len(holdout):
            raise InputError([f"--until {until}: leaves no rows on one side"], what="option")
    cap = CapacityModel(kind=capacity, slot_s=staffing_slot_s, floor=staffing_floor, share=capacity_share,
                        wrap_up_s=wrap_up_s)
    cal = fit(df, name=name or Path(history).stem, min_cell=min_cell, capacity=cap, routing_delay=routing_delay,
              slot_minutes=slot_minutes)
    obs = observed_kpis(df, sl_threshold_s=sl_threshold_s)
    with atomic_dir(out, marker="scenario.json") as tmp:
        path = Path(out) / cal.write(tmp).relative_to(tmp)
        if holdout is not None:
            holdout[queue_population(holdout)].to_parquet(tmp / "holdout.parquet", index=False)
        df[queue_population(df)].to_parquet(tmp / "replay.parquet", index=False)
        (tmp / "observed.json").write_text(json.dumps(obs, indent=2) + "\n")
    s = cal.summary
    click.echo(f"{s['queue_population']} calls reached the queue ({s['left_out_abandoned_before_queue']} hung "
               f"up before queueing: left out), {s['days_present']} days present "
               f"(missing: {', '.join(s['days_missing']) or 'none'}), "
               f"{s['handle_cells_type_x_agent']} type x agent handle cells")
    click.echo(f"observed: abandonment {obs['abandonment_rate']:.4f}, mean wait {obs['mean_wait_s']:.1f} s, "
               f"service level ({sl_threshold_s:g} s) {obs['service_level']:.4f}")
    click.echo(f"wrote {path}, {Path(out) / 'replay.parquet'}, {Path(out) / 'observed.json'}")


@main.command("handle-variance")
@click.argument("history", type=click.Path(dir_okay=False))
@click.option("--split-at", default="auto", show_default=True,
              help="Holdout start (ISO date), 'auto' (the last full week, from Sunday) or 'none'.")
@click.option("--plot", "plot_path", default=None, type=click.Path(dir_okay=False), help="Write a PNG bar chart.")
@click.option("--baselines", is_flag=True,
              help="Also score simple predictors (type mean, base rate, called in the last 72 h) on the holdout.")
@click.option("--json", "as_json", is_flag=True, help="Print the full result as JSON.")
def handle_variance(history: str, split_at: str, plot_path: str | None, baselines: bool, as_json: bool) -> None:
    """How much of log handle-time variance type, agent and agent x type explain."""
    from assign.world.bank_analysis import handle_time_variance, holdout_baselines, plot

    df = _read_history(history)
    a = handle_time_variance(df, split_at=None if split_at == "none" else split_at)
    base = holdout_baselines(df, split_at=a.split_at) if baselines and a.split_at is not None else None
    if plot_path:
        plot(a, plot_path)
    if as_json:
        doc = a.to_dict()
        if base is not None:
            doc["baselines"] = base
        click.echo(json.dumps(doc, indent=2, default=str))
        return
    click.echo(f"{a.n_used} served calls, {a.n_types} types, {a.n_agents} agents, {a.n_cells} cells; "
               f"excluded {a.n_excluded}")
    click.echo(f"{'model':<22}{'R2':>8}{'adj R2':>9}{'holdout R2':>12}")
    for f in a.fits:
        ho = a.holdout_r2.get(f.model, float("nan"))
        click.echo(f"{f.model:<22}{f.r2:>8.4f}{f.adj_r2:>9.4f}{ho:>12.4f}")
    if "type*agent (pooled)" in a.holdout_r2:
        click.echo(f"{'type*agent (pooled)':<22}{'':>8}{'':>9}{a.holdout_r2['type*agent (pooled)']:>12.4f}")
    for t in a.tests:
        click.echo(f"F test {t.smaller} -> {t.larger}: F({t.df_num}, {t.df_den}) = {t.f:.2f}, "
                   f"p = {t.p_value:.3g}, delta R2 = {t.delta_r2:.4f}")
    if a.split_at is not None:
        click.echo(f"holdout: train before {a.split_at} ({a.n_train} calls), test after ({a.n_test} calls)")
    if base is not None:
        for name, m in base["handle_time"].items():
            click.echo(f"baseline handle_time {name}: RMSE {m['rmse']:.1f} s, MAE {m['mae']:.1f} s ({m['rows']} rows)")
        for name, m in base["resolved"].items():
            click.echo(f"baseline resolved {name}: AUC {m['auc']:.3f}, log-loss {m['log_loss']:.4f}, "
                       f"calibration error {m['calibration_error']:.4f} ({m['rows']} rows)")


@main.command("replay-gap")
@click.argument("history", type=click.Path(dir_okay=False))
@click.argument("sim_logs", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--sl-threshold-s", default=20.0, show_default=True, type=float)
@click.option("--plot", "plot_path", default=None, type=click.Path(dir_okay=False), help="Write a PNG by hour of day.")
@click.option("--csv", "csv_path", default=None, type=click.Path(dir_okay=False), help="Write the table as CSV.")
def replay_gap_cmd(history: str, sim_logs: tuple[str, ...], sl_threshold_s: float, plot_path: str | None,
                   csv_path: str | None) -> None:
    """Observed KPIs of HISTORY vs simulator logs (``assign simulate --logs``), by hour of day."""
    from assign.io import read_table
    from assign.sim.calibrate import GAP_KPIS, check_kpi_columns, plot_replay_gap, replay_gap

    obs = _read_history(history)
    sims = []
    for p in sim_logs:
        if not Path(p).is_file():
            raise InputError([f"{p}: no such file"], what="simulator log")
        sims.append(read_table(Path(p)))
        check_kpi_columns(sims[-1], where=p)
    gap = replay_gap(obs, sims, sl_threshold_s=sl_threshold_s)
    if plot_path:
        plot_replay_gap(gap, plot_path, title=f"{Path(history).name} vs {len(sims)} simulated run(s)")
    if csv_path:
        gap.to_csv(csv_path)
    a = gap.loc["all"]
    runs = f"({len(sims)} run(s), {int(a['offered_obs'])} offered)"
    click.echo(f"{'KPI':<18}{'observed':>10}{'simulated':>11}{'gap':>10}   {runs}")
    for g in GAP_KPIS:
        click.echo(f"{g:<18}{a[g + '_obs']:>10.4f}{a[g + '_sim']:>11.4f}{a[g + '_gap']:>+10.4f}")
