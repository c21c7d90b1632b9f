"""Commands of the match-quality model: generate, train, evaluate, predict."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import click

from assign.cli import main
from assign.errors import InputError


def _read_history(path: str):
    import pandas as pd

    p = Path(path)
    if not p.exists():
        raise InputError([f"{p}: no such file"], what="history")
    try:
        return pd.read_parquet(p) if p.suffix != ".csv" else pd.read_csv(p)
    except Exception as err:  # noqa: BLE001 - any reader failure is bad input
        raise InputError([f"{p}: cannot be read as a history table ({type(err).__name__}: {err})"],
                         what="history") from err


@main.command()
@click.option("--agents", "n_agents", type=int, default=200, show_default=True, help="Number of agents.")
@click.option("--days", type=int, default=14, show_default=True, help="Days of history to simulate.")
@click.option("--intents", "n_intents", type=int, default=30, show_default=True)
@click.option("--seed", type=int, required=True, help="Seed of the world and the history.")
@click.option("--out", type=click.Path(file_okay=False), required=True, help="Directory to write.")
@click.option("--new-hires", type=float, default=0.0, show_default=True,
              help="Share of agents who join at the start of day 2 of a simulation, tenure 0 (not in the history).")
def generate(n_agents: int, days: int, n_intents: int, seed: int, out: str, new_hires: float) -> None:
    """Generate a synthetic centre (world/) and its history (history.parquet) in OUT."""
    from assign.world.centre import generate_history, generate_world, hire_days

    world = generate_world(n_agents=n_agents, seed=seed, n_intents=n_intents, new_hires=new_hires)
    tenured = world if not new_hires else replace(world, agents=world.agents[hire_days(world.agents) == 0]
                                                  .reset_index(drop=True))
    hist = generate_history(tenured, days=days, seed=seed + 1, progress=True)
    o = Path(out)
    world.save(o / "world")
    hist.to_parquet(o / "history.parquet", index=False)
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
@click.option("--max-depth", type=int, default=5, show_default=True)
@click.option("--threads", type=int, default=2, show_default=True, help="XGBoost threads.")
@click.option("--label-delay-h", type=float, default=None,
              help="Hours after a contact ends before its outcome counts in agent features "
                   "(default 0 for synthetic histories, 72 otherwise).")
@click.option("--until", default=None, help="Train only on contacts arriving before this ISO time "
              "(keep the rest for `evaluate --since`).")
def train_cmd(history: str, out: str, targets: str | None, scheduler: str | None, max_depth: int,
              threads: int, label_delay_h: float | None, until: str | None) -> None:
    """Train one XGBoost model per target on HISTORY and write the model directory."""
    from assign.model.train import TrainParams, train

    hist = _read_history(history)
    if until:
        cut = _iso_time(until, option="--until")
        import pandas as pd

        hist = hist[pd.to_datetime(hist["arrival_at"], utc=True) < cut]
    names = [t.strip() for t in targets.split(",") if t.strip()] if targets else None
    res = train(hist, out=out, targets=names, params=TrainParams(max_depth=max_depth, nthread=threads),
                label_delay_s=None if label_delay_h is None else label_delay_h * 3600.0,
                scheduler=scheduler, progress=True)
    click.echo(f"wrote {res.out}")
    click.echo(_summary(res.metrics))


def _iso_time(text: str, *, option: str):
    """An ISO time option as a UTC timestamp (naive times are UTC)."""
    import pandas as pd

    try:
        t = pd.Timestamp(text)
    except ValueError as err:
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
              "(features still use the earlier rows).")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
def evaluate(model_dir: str, history: str, since: str | None, as_json: bool) -> None:
    """Print the metrics of MODEL_DIR on HISTORY (and of the truth on synthetic data)."""
    from assign.model.scorer import ModelDir, evaluate as run

    since_t = _iso_time(since, option="--since") if since else None
    res = run(ModelDir.load(model_dir), _read_history(history), since=since_t)
    click.echo(json.dumps(res, indent=1) if as_json else _summary(res))


@main.command()
@click.argument("model_dir", type=click.Path(file_okay=False))
@click.argument("history", type=click.Path(dir_okay=False))
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="Parquet file of predictions.")
def predict(model_dir: str, history: str, out: str) -> None:
    """Write per-row predictions (p_resolved, csat, handle_s) of MODEL_DIR for HISTORY."""
    from assign.model.scorer import ModelDir, predict_history

    preds = predict_history(ModelDir.load(model_dir), _read_history(history))
    preds.to_parquet(out, index=False)
    click.echo(f"wrote {out} ({len(preds)} rows, columns {', '.join(preds.columns[1:])})")
