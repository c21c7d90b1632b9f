"""``assign experiment``: design (power, duration, MDE), analyze (readout), srm (arm counts)."""
from __future__ import annotations

import json
import math

import click

from assign.cli import main
from assign.errors import InputError
from assign.validate import Problems


def _floats(text: str, *, name: str, problems: Problems | None = None, lo: float | None = 0.0,
            integer: bool = False) -> list[float]:
    """Comma-separated numbers of option ``--name``: each finite (NaN and inf never pass), above
    ``lo`` (strictly) unless None; problems go to ``problems`` (or raise at once)."""
    own = problems is None
    p = Problems() if own else problems
    out = []
    for i, x in enumerate(t.strip() for t in text.split(",")):
        if not x:
            continue
        try:
            v = float(x)
        except ValueError:
            p.add(f"--{name}", f"expected comma-separated numbers, got {text!r}")
            break
        if lo is None:
            got = p.number(f"--{name}[{i}]", v, integer=integer)
        else:
            got = p.number(f"--{name}[{i}]", v, lo=lo, lo_open=not integer, integer=integer)
        if got is not None:
            out.append(got)
    if own:
        p.raise_if_any(what="arguments")
    return out


def _clean(obj):
    """JSON-safe: numpy scalars to Python, non-finite floats to null."""
    import numpy as np

    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


@main.group("experiment")
def experiment() -> None:
    """Experiments on routing changes: design, analysis, sample-ratio checks."""


@experiment.command("srm")
@click.option("--counts", required=True, help="Units per arm, comma-separated, e.g. 5000,5100.")
@click.option("--weights", default=None, help="Design weights per arm (normalised); equal by default.")
@click.option("--threshold", default=0.001, show_default=True, type=float,
              help="Flag a mismatch when p < this.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def srm_cmd(counts: str, weights: str | None, threshold: float, as_json: bool) -> None:
    """Sample-ratio-mismatch chi-square test of arm counts against the design weights.

    Exit 0 when the counts fit, 3 when a mismatch is flagged (so scripts can gate on it)."""
    from assign.experiment.estimators import srm

    p = Problems()
    c = _floats(counts, name="counts", problems=p, integer=True)
    w = None if weights is None else _floats(weights, name="weights", problems=p)
    p.number("--threshold", threshold, lo=0, hi=1, lo_open=True)
    p.raise_if_any(what="arguments")
    res = srm([int(x) for x in c], w, threshold=threshold)
    if as_json:
        click.echo(json.dumps(_clean(res.to_dict()), indent=2))
    else:
        exp = ", ".join(f"{e:.1f}" for e in res.expected)
        click.echo(f"counts {list(res.counts)}, expected [{exp}]")
        click.echo(f"chi2 = {res.chi2:.4f} (df {res.df}), p = {res.p_value:.4g}")
        click.echo("SAMPLE RATIO MISMATCH" if res.mismatch else f"no mismatch (threshold p < {threshold})")
    if res.mismatch:
        raise click.exceptions.Exit(3)


def _switchback_window(f):
    """The switchback window and burn-in options, shared by design and analyze."""
    f = click.option("--burn-in", "burn_min", type=float, default=0.0, show_default=True,
                     help="Switchback burn-in after a switch, minutes.")(f)
    return click.option("--window", "window_min", type=float, default=60.0, show_default=True,
                        help="Switchback window, minutes.")(f)


def _check_window(p: Problems, *, window_min, burn_min, hi: float) -> None:
    """--window in (0, hi] minutes and --burn-in within it."""
    if p.number("--window", window_min, lo=0, lo_open=True, hi=hi) is not None:
        p.number("--burn-in", burn_min, lo=0, hi=window_min)


def _check_design_options(p: Problems, *, baseline, sd, days, window_min, burn_min, units_per_day, alpha,
                          power) -> None:
    from assign.experiment.design import MAX_DAYS

    p.number("--baseline", baseline, optional=True)
    p.number("--sd", sd, lo=0, lo_open=True, optional=True)
    p.number("--days", days, lo=0, lo_open=True, hi=MAX_DAYS, optional=True)
    _check_window(p, window_min=window_min, burn_min=burn_min, hi=MAX_DAYS * 1440)
    p.number("--units-per-day", units_per_day, lo=0, lo_open=True, hi=1e12, optional=True)
    p.number("--alpha", alpha, lo=0, hi=0.5, lo_open=True)
    p.number("--power", power, lo=0, hi=1, lo_open=True)
    if power is not None and power >= 1:
        p.add("--power", f"must be below 1, got {power!r}")


@experiment.command("design")
@click.option("--metric", required=True, help="Column (mean or 0/1 rate) or NUM/DEN (ratio) in --history.")
@click.option("--kind", type=click.Choice(["mean", "proportion", "ratio"]), default=None,
              help="Metric kind; inferred from --history (0/1 -> proportion, NUM/DEN -> ratio), else mean.")
@click.option("--baseline", type=float, default=None, help="Control mean or rate (default: from --history).")
@click.option("--sd", type=float, default=None, help="Per-contact standard deviation of a mean metric.")
@click.option("--mde", default=None, help="Minimum detectable effect: absolute (0.02) or relative (5%).")
@click.option("--days", type=float, default=None,
              help="Instead of --mde: the MDE reachable in this many days.")
@click.option("--unit", type=click.Choice(["contact", "customer", "agent", "switchback"]), default="contact",
              show_default=True)
@click.option("--history", "history", type=click.Path(dir_okay=False), default=None,
              help="History (CSV/Parquet, arrival_at + metric columns) to estimate variances and volumes.")
@_switchback_window
@click.option("--site-col", default=None, help="History column of the site/queue switchbacks are cut by.")
@click.option("--units-per-day", type=float, default=None,
              help="Contacts per day, when there is no --history.")
@click.option("--alpha", type=float, default=0.05, show_default=True)
@click.option("--power", type=float, default=0.8, show_default=True)
@click.option("--weights", default="0.5,0.5", show_default=True,
              help="Control,treatment shares (as srm and analyze: control first).")
@click.option("--json", "as_json", is_flag=True)
def design_cmd(metric, kind, baseline, sd, mde, days, unit, history, window_min, burn_min, site_col,
               units_per_day, alpha, power, weights, as_json) -> None:
    """Sample size and duration for an MDE, or the MDE of a duration."""
    from assign.experiment import design as dz
    from assign.experiment.analyse import read_log

    p = Problems()
    rel = False
    mde_v = None
    if mde is not None:
        text = mde.strip()
        rel = text.endswith("%")
        try:
            mde_v = p.number("--mde", float(text.rstrip("%")) / (100 if rel else 1))
        except ValueError:
            p.add("--mde", f"expected a number or a percentage, got {mde!r}")
    w = _floats(weights, name="weights", problems=p)
    _check_design_options(p, baseline=baseline, sd=sd, days=days, window_min=window_min, burn_min=burn_min,
                          units_per_day=units_per_day, alpha=alpha, power=power)
    p.raise_if_any(what="arguments")
    comps = None
    if history:
        df = read_log(history)
        comps, k_hist = dz.components_from_history(df, metric=metric, unit=unit, window_s=window_min * 60,
                                                   burn_in_s=burn_min * 60, site_col=site_col)
        kind = kind or k_hist
        baseline = comps.baseline if baseline is None else baseline
    kind = kind or ("ratio" if "/" in metric else "mean")
    if baseline is None:
        raise InputError(["--baseline: required without --history"], what="arguments")
    d = dz.plan(metric=metric, kind=kind, unit=unit, baseline=baseline, mde=mde_v, relative=rel, days=days,
                sd=sd, components=comps, rows_per_day=units_per_day, alpha=alpha, power=power,
                weights=tuple(w))
    if as_json:
        click.echo(json.dumps(_clean(d.to_dict()), indent=2))
        return
    click.echo(f"metric {d.metric} ({d.kind}), unit {d.unit}, baseline {d.baseline:.6g}, "
               f"alpha {d.alpha}, power {d.power}")
    rel_txt = f" ({100 * d.mde_relative:.3g}% of baseline)" if d.mde_relative is not None else ""
    click.echo(f"MDE {d.mde:.6g}{rel_txt}")
    click.echo(f"{d.unit_name}: {math.ceil(d.n_treatment)} treatment + {math.ceil(d.n_control)} control")
    if d.days is not None:
        click.echo(f"duration: {d.days:.2f} days")
    if d.icc is not None:
        click.echo(f"intra-cluster correlation {d.icc:.4f}, design effect {d.design_effect:.2f}")
    for n in d.notes:
        click.echo(f"note: {n}")


@experiment.command("analyze")
@click.argument("log", type=click.Path(dir_okay=False))
@click.option("--arm-col", default="arm", show_default=True)
@click.option("--metric", "metrics", multiple=True, help="Column (mean/rate) or NUM/DEN (ratio); repeatable.")
@click.option("--guardrail", "guardrails", multiple=True,
              help="METRIC:increase|decrease[:MARGIN] — the bad direction and the tolerated move (absolute, "
                   "or 5% of the control mean); ok only when non-inferiority is shown; repeatable.")
@click.option("--control", default=None, help="Control arm label (default: 'control').")
@click.option("--cluster-col", default=None,
              help="Cluster column (agent): wild cluster bootstrap below 50 clusters, CR2 from 50.")
@click.option("--cluster-method", type=click.Choice(["auto", "wild", "cr2", "cr1", "unit-means"]),
              default="auto", show_default=True, help="Override the choice by number of clusters.")
@click.option("--covariate", default=None, help="Pre-period covariate column for CUPED.")
@click.option("--unit-means", is_flag=True, help="Same as --cluster-method unit-means (Welch on cluster means).")
@click.option("--switchback-salt", default=None,
              help="Switchback design's salt: randomisation inference re-drawing its windows (needs --time-col).")
@_switchback_window
@click.option("--time-col", default=None, help="Time of each row (timestamps, or seconds since 1970 UTC).")
@click.option("--site-col", default=None, help="Site column the switchback windows are cut by.")
@click.option("--ri-draws", type=int, default=1000, show_default=True,
              help="Randomisation re-draws (1000: p < 0.05 then has size 50/1001).")
@click.option("--boot-draws", type=int, default=999, show_default=True, help="Wild bootstrap draws.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the wild bootstrap.")
@click.option("--sequential", is_flag=True, help="Always-valid confidence sequences (peeking allowed).")
@click.option("--planned-n", type=float, default=None,
              help="Planned final rows (clusters) the sequence is tuned for.")
@click.option("--weights", default=None,
              help="Design weights, control first then treatments in sorted order.")
@click.option("--alpha", type=float, default=0.05, show_default=True)
@click.option("--burn-in-col", default="burn_in", show_default=True, help="Rows flagged here are excluded.")
@click.option("--json", "as_json", is_flag=True, help="Print the readout as JSON.")
@click.option("--report", "report_dir", type=click.Path(file_okay=False), default=None,
              help="Write readout.md, a self-contained readout.html and forest.png here.")
@click.option("--quarantine", type=click.Path(dir_okay=False), default=None,
              help="Write quarantined rows (CSV, with their reason) here.")
def analyze_cmd(log, arm_col, metrics, guardrails, control, cluster_col, cluster_method, covariate, unit_means,
                switchback_salt, window_min, burn_min, time_col, site_col, ri_draws, boot_draws, seed, sequential,
                planned_n, weights, alpha, burn_in_col, as_json, report_dir, quarantine) -> None:
    """Effects with CIs and p-values per metric and arm, SRM, Holm, guardrails."""
    from assign.experiment.analyse import analyse, read_log
    from assign.experiment.randomise import Switchback
    from assign.experiment.report import to_markdown, write_report

    p = Problems()
    p.number("--planned-n", planned_n, lo=0, lo_open=True, optional=True)
    p.number("--alpha", alpha, lo=0, hi=0.5, lo_open=True)
    w = None if weights is None else _floats(weights, name="weights", problems=p)
    design = None
    if switchback_salt is not None:
        _check_window(p, window_min=window_min, burn_min=burn_min, hi=1e8)
        if not time_col:
            p.add("--time-col", "required with --switchback-salt")
    p.raise_if_any(what="arguments")
    if switchback_salt is not None:
        design = Switchback(salt=switchback_salt, window_s=window_min * 60, burn_in_s=burn_min * 60)
    df = read_log(log)
    r = analyse(df, arm_col=arm_col, metrics=metrics, control=control, cluster_col=cluster_col,
                covariate=covariate, sequential=sequential, n_planned=planned_n, guardrails=guardrails,
                weights=w, alpha=alpha, burn_in_col=burn_in_col, unit_means=unit_means,
                cluster_method=cluster_method, switchback=design, time_col=time_col, site_col=site_col,
                ri_draws=ri_draws, boot_draws=boot_draws, seed=seed)
    if quarantine and len(r.quarantined):
        r.quarantined.to_csv(quarantine, index=False)
    if report_dir:
        paths = write_report(r, report_dir)
        click.echo(f"report: {paths['markdown']} {paths['html']} {paths['plot']}", err=True)
    if as_json:
        click.echo(json.dumps(_clean(r.to_dict()), indent=2))
    else:
        click.echo(to_markdown(r, plot_name=None))
