"""Commands of the match-quality model: generate, train, evaluate, predict."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import click

from assign.cli import main
from assign.cli.progress import Bars, quiet_option
from assign.errors import InputError


def _read_history(path: str):
    """A history table (CSV or Parquet): every reading failure is an InputError naming it."""
    from assign.io import read_table

    p = Path(path)
    return read_table(p, what="history", fmt="csv" if p.suffix == ".csv" else "parquet")


#: What ``generate`` may be asked for: bounds its memory and time (see docs/robustness.md).
GENERATE_LIMITS = {"--agents": 5_000, "--days": 366, "--intents": 1_000}


@main.command()
@click.option("--agents", "n_agents", type=click.IntRange(1, GENERATE_LIMITS["--agents"]), default=200,
              show_default=True, help="Number of agents.")
@click.option("--days", type=click.IntRange(1, GENERATE_LIMITS["--days"]), default=14, show_default=True,
              help="Days of history to simulate.")
@click.option("--intents", "n_intents", type=click.IntRange(1, GENERATE_LIMITS["--intents"]), default=30,
              show_default=True)
@click.option("--seed", type=int, required=True, help="Seed of the world and the history.")
@click.option("--out", type=click.Path(file_okay=False), required=True, help="Directory to write.")
@click.option("--new-hires", type=float, default=0.0, show_default=True,
              help="Share of agents who join at the start of day 2 of a simulation, tenure 0 (not in the history).")
def generate(n_agents: int, days: int, n_intents: int, seed: int, out: str, new_hires: float) -> None:
    """Generate a synthetic centre (world/) and its history (history.parquet) in OUT."""
    from assign.io import atomic_dir, write_frame
    from assign.world.centre import generate_history, generate_world, hire_days

    o = Path(out)
    if (o.exists() and not o.is_dir()) or not o.parent.is_dir():
        raise InputError([f"--out {o}: not a directory, or its parent {o.parent} does not exist"], what="option")
    world = generate_world(n_agents=n_agents, seed=seed, n_intents=n_intents, new_hires=new_hires)
    tenured = world if not new_hires else replace(world, agents=world.agents[hire_days(world.agents) == 0]
                                                  .reset_index(drop=True))
    hist = generate_history(tenured, days=days, seed=seed + 1, progress=True)
    o.mkdir(exist_ok=True)
    with atomic_dir(o / "world", marker="world.json") as tmp:
        world.save(tmp)
    write_frame(hist, o / "history.parquet", fmt="parquet")
    served = ~hist["abandoned"]
    click.echo(f"wrote {o / 'world'} ({world.n_agents} agents, {len(world.intents)} intents) and "
               f"{o / 'history.parquet'} ({len(hist)} contacts over {days} days, "
               f"{served.mean():.1%} served, resolution {hist['resolved'].mean():.3f})")


@main.command("train")
@click.argument("history", type=click.Path(dir_okay=False))
@click.option("--out", type=click.Path(file_okay=False), required=True, help="Model directory to write.")
@click.option("--targets", default=None, help="Comma-separated: resolved,csat,handle_time,repeat_72h "
              "(default: those of resolved,csat,handle_time with labels).")
@click.option("--scheduler", default=None, help="Dask scheduler address (default: train in-process).")
@click.option("--max-depth", type=click.IntRange(1, 20), default=5, show_default=True)
@click.option("--threads", type=click.IntRange(1, 256), default=2, show_default=True, help="XGBoost threads.")
@click.option("--label-delay-h", type=float, default=None,
              help="Hours after a contact ends before its outcome counts in agent features "
                   "(default 0 for synthetic histories, 72 otherwise).")
@click.option("--until", default=None, help="Train only on contacts arriving before this ISO time "
              "(keep the rest for `evaluate --since`).")
@quiet_option
def train_cmd(history: str, out: str, targets: str | None, scheduler: str | None, max_depth: int,
              threads: int, label_delay_h: float | None, until: str | None, quiet: bool) -> None:
    """Train one XGBoost model per target on HISTORY and write the model directory."""
    from assign.model.train import TrainParams, train
    from assign.validate import Problems

    p = Problems()
    p.number("--label-delay-h", label_delay_h, lo=0, hi=24 * 366, optional=True)
    if Path(out).resolve() == Path(history).resolve().parent or Path(out).resolve() == Path(history).resolve():
        p.add("--out", f"{out} holds the input history; choose another directory")
    p.raise_if_any(what="option")
    hist = _read_history(history)
    if until:
        cut = _iso_time(until, option="--until")
        import pandas as pd

        hist = hist[pd.to_datetime(hist["arrival_at"], utc=True) < cut]
    names = [t.strip() for t in targets.split(",") if t.strip()] if targets else None
    with Bars(quiet=quiet) as bars:
        res = train(hist, out=out, targets=names, params=TrainParams(max_depth=max_depth, nthread=threads),
                    label_delay_s=None if label_delay_h is None else label_delay_h * 3600.0,
                    scheduler=scheduler, progress=bars)
    click.echo(f"wrote {res.out}")
    click.echo(_summary(res.metrics))


def _iso_time(text: str, *, option: str):
    """An ISO time option as a UTC timestamp (naive times are UTC)."""
    import pandas as pd

    try:
        t = pd.Timestamp(text)
        if t is pd.NaT:
            raise ValueError(text)
    except (ValueError, TypeError, OverflowError) as err:
        raise InputError([f"{option}: not an ISO time: {text!r}"], what="option") from err
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def _summary(metrics: dict) -> str:
    lines = []
    for n, m in metrics.items():
        keys = [k for k in ("auc", "log_loss", "calibration_error", "rmse", "mae") if k in m]
        body = ", ".join(f"{k} {m[k]:.4f}" + (f" (truth {m['truth'][k]:.4f})" if "truth" in m else "") for k in keys)
        lines.append(f"{n}: {body} on {m.get('rows', 0)} rows")
    return "\n".join(lines)


@main.command()
@click.argument("model_dir", type=click.Path(file_okay=False))
@click.argument("history", type=click.Path(dir_okay=False))
@click.option("--since", default=None, help="Score only contacts arriving at/after this ISO time "
              "(features still use the earlier rows) [default: the model's held-out period].")
@click.option("--all-rows", is_flag=True, help="Score every row, including those the model trained on (in-sample).")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON (the rows scored under \"scored\").")
@quiet_option
def evaluate(model_dir: str, history: str, since: str | None, all_rows: bool, as_json: bool, quiet: bool) -> None:
    """Print the metrics of MODEL_DIR on HISTORY (and of the truth on synthetic data).

    By default only rows the model never trained on are scored: those arriving at or after the
    start of its held-out period (recorded by `assign train`)."""
    from assign.model.scorer import ModelDir
    from assign.model.scorer import evaluate as run

    model = ModelDir.load(model_dir)
    hist = _read_history(history)
    _warn_overlap(model, hist)
    since_t, scored = _rows_to_score(model, hist, since=since, all_rows=all_rows)
    with Bars(quiet=quiet) as bars:
        res = run(model, hist, since=since_t, progress=bars)
    if as_json:
        from assign.io import dumps

        click.echo(dumps({"scored": scored, **res}, indent=1))
    else:
        click.echo(f"scored: {scored['description']}")
        click.echo(_summary(res))


def _rows_to_score(model, hist, *, since: str | None, all_rows: bool):
    """Which rows `evaluate` scores (--since, --all-rows, or by default the model's held-out
    period): the start time (None = all rows) and the JSON-ready description."""
    import pandas as pd

    from assign.model.scorer import held_out_from

    if since and all_rows:
        raise InputError(["--since / --all-rows: give at most one"], what="option")
    if all_rows:
        return None, {"selection": "all", "since": None, "rows": int(len(hist)), "of_rows": int(len(hist)),
                      "description": f"all {len(hist)} rows (--all-rows: includes the rows the model trained on)"}
    if since:
        t, why = _iso_time(since, option="--since"), "--since"
    else:
        start = held_out_from(model.metadata)
        if start is None:
            old = model.metadata.get("data", {}).get("test_from")
            hint = f" (its model card gives a held-out tail from {old})" if old else ""
            why = "a refit on every row of its window (its recipe's held-out metrics are on the registry card)" \
                if model.metadata.get("refit") else "trained by an older assign"
            raise InputError([f"{model.path}: this model records no held-out period ({why})"
                              f"{hint}; pass --since TIME to score a later window, or --all-rows"], what="option")
        t, why = _iso_time(start, option="held_out.from of metadata.json"), "the model's held-out period"
    arrivals = pd.to_datetime(hist["arrival_at"], utc=True, errors="coerce") if "arrival_at" in hist else None
    n = int((arrivals >= t).sum()) if arrivals is not None else None
    if n == 0:
        raise InputError([f"{why}: no row of {len(hist)} arrives at or after {t}; pass --since TIME or --all-rows"],
                         what="option")
    return t, {"selection": "since" if since else "held_out", "since": str(t), "rows": n, "of_rows": int(len(hist)),
               "description": f"the {n} of {len(hist)} rows arriving at or after {t} ({why})"}


@main.command()
@click.argument("model_dir", type=click.Path(file_okay=False))
@click.argument("history", type=click.Path(dir_okay=False))
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="Parquet file of predictions.")
@quiet_option
def predict(model_dir: str, history: str, out: str, quiet: bool) -> None:
    """Write per-row predictions (p_resolved, csat, handle_s) of MODEL_DIR for HISTORY."""
    from assign.io import check_out, write_frame
    from assign.model.scorer import ModelDir, predict_history

    check_out(out, inputs=(history,))
    model, hist = ModelDir.load(model_dir), _read_history(history)
    _warn_overlap(model, hist)
    with Bars(quiet=quiet) as bars:
        preds = predict_history(model, hist, progress=bars)
    write_frame(preds, out, fmt="parquet", inputs=(history,))
    click.echo(f"wrote {out} ({len(preds)} rows, columns {', '.join(preds.columns[1:])})")


def _warn_overlap(model, history) -> None:
    """Warn on stderr when the history barely overlaps the model's intents or agents."""
    from assign.model.domain import history_overlap

    for w in history_overlap(model, history):
        click.echo(f"warning: {w}", err=True)
