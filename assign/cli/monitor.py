"""``assign monitor``: drift and calibration of the champion model; exit 3 on an alarm."""
from __future__ import annotations

from pathlib import Path

import click

from assign.cli import main
from assign.errors import InputError

EXIT_ALARM = 3


def _model_dir(registry: str | None, model: str | None) -> tuple[Path, str | None]:
    """The model directory, and the end of the version's evaluation window (rows it did not
    train on, recorded by ``retrain``) when monitoring a registry's champion."""
    if model:
        return Path(model), None
    try:
        from assign.deploy import open_registry  # the registry lives in assign.deploy (imported only when asked)
    except ImportError as err:
        raise InputError([f"--registry {registry}: this build has no model registry ({err}); use --model DIR"],
                         what="option") from err
    reg = open_registry(registry)
    version = reg.resolve("champion")
    record = next((v for v in reg.versions() if str(v.get("version")) == str(version)), {})
    window = record.get("evaluation_window") or []
    return Path(reg.path("champion")), (window[1] if len(window) == 2 else None)


def _window(history, *, model_meta: dict, since: str | None, recent_days: float | None, reference: str | None,
            evaluated_until: str | None = None):
    """(recent, reference, context) frames out of the history; problems named together. The
    default reference is the model's training window, extended to ``evaluated_until`` (the end
    of its registry evaluation window) when given."""
    import pandas as pd

    from assign.cli.model import _read_history
    from assign.history import conform_history

    hist = conform_history(history).sort_values("arrival_at", kind="stable").reset_index(drop=True)
    p = []
    end = hist["arrival_at"].max()
    if since is not None:
        try:
            start = pd.Timestamp(since)
            start = start.tz_localize("UTC") if start.tzinfo is None else start.tz_convert("UTC")
        except (ValueError, TypeError):
            p.append(f"--since {since!r}: not an ISO time")
            start = None
    else:
        start = end - pd.Timedelta(days=recent_days if recent_days is not None else 1.0)
    data = model_meta.get("data", {}) if isinstance(model_meta.get("data"), dict) else {}
    if reference is not None:
        ref = conform_history(_read_history(reference))
    elif data.get("first_arrival") and data.get("last_arrival"):
        lo, hi = pd.Timestamp(data["first_arrival"]), pd.Timestamp(data["last_arrival"])
        below = hist["arrival_at"] <= hi
        if evaluated_until:
            below = below | (hist["arrival_at"] < pd.Timestamp(evaluated_until))
        ref = hist[(hist["arrival_at"] >= lo) & below]
        if len(ref) == 0:
            p.append(f"history: no rows in the model's training window {lo} .. {hi}; pass --reference")
    else:
        ref = None
        p.append("model: its metadata has no training window; pass --reference")
    if start is not None:
        recent = hist[hist["arrival_at"] >= start]
        if len(recent) == 0:
            p.append(f"history: no rows at or after {start} (the recent window)")
    if p:
        raise InputError(p, what="arguments")
    return recent, ref, hist[hist["arrival_at"] < start]


@main.command("monitor")
@click.argument("history", type=click.Path(dir_okay=False))
@click.option("--registry", default=None, help="Model registry: its `champion` is monitored.")
@click.option("--model", "model", default=None, type=click.Path(file_okay=False),
              help="Model directory to monitor (instead of --registry).")
@click.option("--reference", default=None, type=click.Path(dir_okay=False),
              help="Reference history (default: HISTORY's rows in the model's training window).")
@click.option("--since", default=None, help="Recent window starts at this ISO time.")
@click.option("--recent-days", type=float, default=None, help="Recent window: the last N days of HISTORY [1].")
@click.option("--now", default=None, help="Time of the check (ISO; default: the end of the recent data).")
@click.option("--alpha", type=float, default=None,
              help="False-alarm probability of one check (all tests together) [the monitor's default, set from a "
              "driftless calibration run: docs/monitor.md].")
@click.option("--calibration-reference", type=click.Choice(["held_out", "all"]), default="held_out",
              show_default=True, help="Reference rows of the calibration checks: those the model did not fit "
              "(its early-stopping and held-out tail, and its registry evaluation window) or all.")
@click.option("--out", default=None, type=click.Path(file_okay=False), help="Directory for monitor.json and plots.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def monitor_cmd(history: str, registry: str | None, model: str | None, reference: str | None, since: str | None,
                recent_days: float | None, now: str | None, alpha: float, calibration_reference: str, out: str | None,
                as_json: bool) -> None:
    """Compare HISTORY's recent traffic with the champion's training data: feature and
    prediction drift, calibration on matured outcomes, per-agent residuals.

    Exit 0 without an alarm, 3 when one fires (so a scheduler can trigger `assign retrain`)."""
    import pandas as pd

    from assign.cli.model import _read_history
    from assign.deploy.monitor import MonitorConfig, monitor
    from assign.io import dumps
    from assign.model.scorer import ModelDir
    from assign.validate import Problems

    p = Problems()
    if (registry is None) == (model is None):
        p.add("--registry/--model", "give exactly one")
    if since is not None and recent_days is not None:
        p.add("--since/--recent-days", "give at most one")
    p.number("--recent-days", recent_days, lo=0, lo_open=True, hi=3660, optional=True)
    p.number("--alpha", alpha, lo=0, lo_open=True, hi=0.5, optional=True)
    now_ts = None
    if now is not None:
        try:
            now_ts = pd.Timestamp(now)
        except (ValueError, TypeError):
            p.add("--now", f"{now!r} is not an ISO time")
    p.raise_if_any(what="arguments")
    path, evaluated_until = _model_dir(registry, model)
    mdl = ModelDir.load(path)
    recent, ref, ctx = _window(_read_history(history), model_meta=mdl.metadata, since=since,
                               recent_days=recent_days, reference=reference, evaluated_until=evaluated_until)
    cfg = MonitorConfig(**({} if alpha is None else {"alpha": alpha}), calibration_reference=calibration_reference)
    report = monitor(recent, reference=ref, model_dir=mdl, config=cfg, now=now_ts,
                     context=ctx if len(ctx) else None)
    if out:
        report.write(out)
    if as_json:
        click.echo(dumps(report.to_dict(), indent=1))
    else:
        m = report.meta
        click.echo(f"recent {m['rows_recent']} contacts ({m['matured_recent']} matured) vs reference "
                   f"{m['rows_reference']} over {m['days_reference']} days; {m['testable']} tests, "
                   f"alarm when p < {m['p_threshold']:.3g}")
        for a in report.alarms:
            click.echo(f"ALARM {a['kind']} {a['name']}: {a['detail']}")
        if not report.alarms:
            click.echo("no alarm")
        if out:
            click.echo(f"wrote {out}/monitor.json and plots")
    if report.alarm:
        raise click.exceptions.Exit(EXIT_ALARM)
