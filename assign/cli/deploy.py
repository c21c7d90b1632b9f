"""Commands of deployment: ``retrain`` and ``registry list|audit|promote``."""
from __future__ import annotations

import click

from assign.cli import main


@main.command()
@click.argument("history", type=click.Path(dir_okay=False))
@click.option("--registry", "where", required=True, help="Registry directory (created if new) or MLflow tracking URI.")
@click.option("--window-days", type=float, default=28.0, show_default=True, help="Days of history before the cut-off.")
@click.option("--half-life-days", type=float, default=7.0, show_default=True,
              help="Recency weighting: a row this many days older than another counts half as much.")
@click.option("--cutoff", default=None, help="ISO time of the cut-off [default: the last arrival in HISTORY].")
@click.option("--resolution-delay-h", type=float, default=72.0, show_default=True,
              help="Hours after a contact ends before its resolution is known.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--max-rounds", type=click.IntRange(1, 10_000), default=400, show_default=True,
              help="Most boosting rounds per target (early stopping usually ends sooner).")
@click.option("--threads", type=click.IntRange(1, 256), default=2, show_default=True, help="XGBoost threads.")
@click.option("--scheduler", default=None, help="Dask scheduler address (default: train in-process).")
@click.option("--refit-full-window", is_flag=True,
              help="On promotion, refit the challenger on the whole window (evaluation rows included, its rounds) "
                   "and deploy that refit; a refit champion is compared through its recipe (docs/deploy.md).")
@click.option("--eval-days", type=float, default=None,
              help="Compare the models on the last N days of matured rows [default: the window's newest 20%].")
@click.option("--level-free", is_flag=True,
              help="Compare the models after fitting each intent's level on the evaluation rows, so a challenger "
                   "must order the pairs within an intent better (for routers that follow levels online).")
@click.option("--agent-rates", type=click.Choice(["absolute", "relative"]), default="absolute", show_default=True,
              help="The challenger's agent outcome-history rates: as observed, or relative to the centre's.")
@click.option("--json", "as_json", is_flag=True, help="Print the decision as JSON.")
def retrain(history: str, where: str, window_days: float, half_life_days: float, cutoff: str | None,
            resolution_delay_h: float, seed: int, max_rounds: int, threads: int, scheduler: str | None,
            refit_full_window: bool, eval_days: float | None, level_free: bool, agent_rates: str,
            as_json: bool) -> None:
    """Train a challenger on the recent window of HISTORY, compare it with the registry's
    champion on the same matured rows and promote it by the rule in docs/deploy.md."""
    from assign.cli.model import _iso_time, _read_history
    from assign.deploy import PromotionRule, open_registry
    from assign.deploy import retrain as run
    from assign.io import dumps
    from assign.model.train import TrainParams
    from assign.validate import Problems

    p = Problems()
    p.number("--window-days", window_days, lo=1e-6, hi=3660)
    p.number("--half-life-days", half_life_days, lo=1e-6, hi=3660)
    p.number("--resolution-delay-h", resolution_delay_h, lo=0, hi=24 * 366)
    p.number("--eval-days", eval_days, lo=1e-6, hi=3660, optional=True)
    p.raise_if_any(what="option")
    cut = _iso_time(cutoff, option="--cutoff") if cutoff else None
    reg = open_registry(where)
    d = run(_read_history(history), registry=reg, cutoff=cut, window_days=window_days, half_life_days=half_life_days,
            seed=seed, client=scheduler, resolution_delay_h=resolution_delay_h,
            params=TrainParams(max_rounds=max_rounds, nthread=threads, seed=seed),
            refit_on_promotion=refit_full_window, rule=PromotionRule(eval_days=eval_days, level_free=level_free),
            history_rates=agent_rates)
    if as_json:
        click.echo(dumps(d.to_dict(), indent=1))
        return
    click.echo(f"{'promoted' if d.promoted else 'not promoted'}: {d.version or 'no version'} ({d.reason})")
    if d.deployed:
        click.echo(f"deployed: {d.deployed} ({d.version}'s recipe refitted on the whole window)")
    click.echo(f"champion: {reg.resolve('champion')}; rows {d.rows}")


@main.group()
def registry() -> None:
    """Inspect and move the model registry's aliases."""


@registry.command("list")
@click.argument("where")
@click.option("--json", "as_json", is_flag=True)
def registry_list(where: str, as_json: bool) -> None:
    """Versions and aliases of the registry at WHERE."""
    from assign.deploy import open_registry
    from assign.io import dumps

    reg = open_registry(where)
    vs, al = reg.versions(), reg.aliases()
    if as_json:
        click.echo(dumps({"versions": vs, "aliases": al}, indent=1))
        return
    by = {}
    for a, v in al.items():
        by.setdefault(v, []).append(a)
    for v in vs:
        tags = ",".join(sorted(by.get(v["version"], [])))
        click.echo(f"{v['version']}  {v['registered_at']}  {tags:<28} {v.get('note', '')}")


@registry.command("audit")
@click.argument("where")
def registry_audit(where: str) -> None:
    """The audit log of the registry at WHERE, one JSON line per event."""
    from assign.deploy import open_registry
    from assign.io import dumps

    for e in open_registry(where).audit():
        click.echo(dumps(e))


@registry.command("promote")
@click.argument("where")
@click.argument("version")
@click.option("--alias", default="champion", show_default=True, type=click.Choice(["champion", "challenger",
                                                                                    "previous"]))
@click.option("--reason", required=True, help="Why (goes in the audit log).")
def registry_promote(where: str, version: str, alias: str, reason: str) -> None:
    """Point ALIAS at VERSION (a version id or another alias, e.g. ``previous`` to roll back)."""
    from assign.deploy import open_registry
    from assign.errors import InputError

    reg = open_registry(where)
    v = reg.resolve(version)
    if v is None:
        raise InputError([f"VERSION: {version!r} is neither a version nor a set alias"], what="argument")
    reg.set_alias(alias, v, reason=f"manual: {reason}")
    click.echo(f"{alias} -> {v}")
