"""``assign solve`` (one snapshot, as a debugging engineer runs it) and ``assign demo``."""
from __future__ import annotations

from pathlib import Path

import click

from assign.cli import main
from assign.config import RouterConfig
from assign.errors import InputError

FORMATS = ("json", "csv", "parquet")
_DEFAULTS = RouterConfig()  # the library's defaults, shown by --help (None options fall back to them)
#: More candidates per contact than this never changes a tick's answer measurably, and a huge
#: value would size the candidate arrays by it (2**31 ran out of memory).
MAX_TOP_K = 10_000


def _shown(value, none: str) -> str:
    return none if value is None else str(value)


def _router(*, model: str | None, threshold: float | None, top_k: int | None, min_proficiency: float | None):
    from assign.config import RouterConfig
    from assign.router import Router

    kw = {k: v for k, v in (("threshold", threshold), ("top_k", top_k), ("min_proficiency", min_proficiency))
          if v is not None}
    scorer = None
    if model:
        from assign.model import XGBScorer

        scorer = XGBScorer.load(model)
    return Router(scorer=scorer, config=RouterConfig(**kw))


@main.command()
@click.argument("snapshot", type=click.Path(path_type=Path))
@click.option("--values", "values_path", type=click.Path(path_type=Path), show_default="none: the scorer values pairs",
              help="CSV/Parquet of contact_id, agent_id, value: the only candidate pairs, with these values.")
@click.option("--model", type=click.Path(path_type=Path), show_default="none: the rule-based SkillScorer",
              help="Model directory (assign train) to score pairs.")
@click.option("--budget-ms", type=float, show_default=_shown(_DEFAULTS.budget_ms, "none: no time limit"),
              help="Time budget of the tick; greedy when it is nearly spent.")
@click.option("--threshold", type=float, show_default=_shown(_DEFAULTS.threshold, "none: serve every contact it can"),
              help="Leave contacts queued when their value is below this.")
@click.option("--top-k", type=int, default=_DEFAULTS.top_k, show_default=True,
              help=f"Candidates kept per contact and per agent on ticks over {_DEFAULTS.prune_min_pairs:,} pairs.")
@click.option("--min-proficiency", type=float, default=_DEFAULTS.min_proficiency, show_default=True,
              help="Minimum proficiency on the contact's intent.")
@click.option("--explain", is_flag=True, help="Add each contact's next-best agents and why they lost.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="json", show_default=True)
@click.option("--out", type=click.Path(path_type=Path), show_default="stdout", help="Write here instead of stdout.")
def solve(snapshot: Path, values_path: Path | None, model: Path | None, budget_ms: float | None,
          threshold: float | None, top_k: int | None, min_proficiency: float | None, explain: bool,
          fmt: str, out: Path | None) -> None:
    """Assign the contacts of SNAPSHOT (a JSON file or a directory of tables) to agents."""
    from assign.io import check_out, dumps, read_snapshot, read_values, result_table, write_result
    from assign.validate import Problems

    p = Problems()
    p.number("--budget-ms", budget_ms, lo=0, lo_open=True, optional=True)
    p.number("--threshold", threshold, optional=True)
    p.number("--min-proficiency", min_proficiency, lo=0, hi=1, optional=True)
    p.number("--top-k", top_k, hi=MAX_TOP_K, optional=True)  # the lower bound: RouterConfig
    inputs = tuple(x for x in (snapshot, values_path, model) if x is not None)
    if out is not None:
        try:
            check_out(out, inputs=inputs)
        except InputError as err:
            p.extend(err.problems)
    elif fmt == "parquet":
        p.add("--format", "--format parquet needs --out FILE")
    p.raise_if_any(what="option")
    snap = read_snapshot(snapshot)
    values = read_values(values_path) if values_path else None
    router = _router(model=str(model) if model else None, threshold=threshold, top_k=top_k,
                     min_proficiency=min_proficiency)
    result = router.tick(snap, budget_ms=budget_ms, values=values, explain=explain)
    if model is not None:
        result = _with_domain(result, router, snap)
    if out is not None:
        write_result(result, fmt=fmt, out=out, inputs=inputs)
        click.echo(f"{len(result.assignments)} assigned, {len(result.unassigned)} queued -> {out}", err=True)
    elif fmt == "json":
        click.echo(dumps(result.to_dict(), indent=2))
    else:
        click.echo(result_table(result).to_csv(index=False), nl=False)


def _with_domain(result, router, snap):
    """The result with the model's out-of-domain counts (:func:`assign.model.domain.with_domain`);
    a warning on stderr when any pair is out of domain."""
    from assign.model.domain import with_domain

    result = with_domain(result, model=router.scorer.model, snapshot=snap)
    report = result.domain
    if report["out_of_domain"]:
        click.echo(f"warning: {report['out_of_domain']} of {report['pairs']} contact-agent pairs are out of the "
                   f"model's domain (unknown intent {report['unknown_intent']}, language {report['unknown_language']}, "
                   f"agent {report['unknown_agent']}); {report['assigned_out_of_domain']} assigned pairs among them, "
                   "scored by the fallback (no model preference), not as if known", err=True)
    return result


@main.command()
@click.option("--contacts", "n_contacts", type=click.IntRange(1, 100_000), default=60, show_default=True)
@click.option("--agents", "n_agents", type=click.IntRange(1, 100_000), default=30, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--rows", type=click.IntRange(0, 1000), default=12, show_default=True,
              help="Assignments to list.")
@click.option("--save", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the snapshot as JSON here (for `assign solve FILE --explain`).")
def demo(n_contacts: int, n_agents: int, seed: int, rows: int, save: Path | None) -> None:
    """Solve one synthetic queue snapshot and explain the result (no files needed)."""
    from assign.demo import demo_snapshot, run_demo

    if save is not None:
        snap = demo_snapshot(n_contacts=n_contacts, n_agents=n_agents, seed=seed)
        from assign.io import check_out, dumps, write_text

        check_out(save, option="--save")
        write_text(save, dumps(snap.to_dict(), indent=1) + "\n")
    click.echo(run_demo(n_contacts=n_contacts, n_agents=n_agents, seed=seed, rows=rows,
                        saved_as=str(save) if save is not None else None))
