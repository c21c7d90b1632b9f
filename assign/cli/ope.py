"""``assign ope``: estimate routing policies' pair-level value from a decision log."""
from __future__ import annotations

import json
from pathlib import Path

import click

from assign.cli import main
from assign.errors import InputError


def _read_logs(path: str):
    """A log directory, or a directory of log directories (concatenated, e.g. one per day)."""
    from assign.ope.logging_policy import concat_logs
    from assign.ope.logs import read_log

    p = Path(path)
    if (p / "meta.json").is_file() or not p.is_dir():
        return read_log(p)
    subs = sorted(d for d in p.iterdir() if (d / "meta.json").is_file())
    if not subs:
        raise InputError([f"{p}: no meta.json here or in any subdirectory"], what="OPE log")
    return concat_logs([read_log(d) for d in subs])


@main.command("ope")
@click.argument("logs", type=click.Path())
@click.option("--policy", "policies", multiple=True, required=True,
              help="fcfs | skills | ml-greedy | ml-batch | worst-skill (repeatable).")
@click.option("--model", "model_dir", type=click.Path(), default=None,
              help="Model directory: the scorer of ml-greedy / ml-batch and the reward model of DM / DR "
                   "[default: SkillScorer, and a logistic model fitted on the log].")
@click.option("--estimator", "estimators", multiple=True,
              help="dm | ips | snips | dr | switch-dr (repeatable) [default: all].")
@click.option(
    "--floor", type=float, default=1e-3, show_default=True, help="Propensity below which a pair is unsupported."
)
@click.option(
    "--max-deficiency",
    type=float,
    default=0.05,
    show_default=True,
    help="Refuse every estimate when a larger share of the target's pairs is unsupported.",
)
@click.option("--alpha", type=float, default=0.05, show_default=True)
@click.option("--n-bootstrap", type=int, default=1000, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Bootstrap seed.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Report directory (report.md, report.html, ope.png, ope.json).",
)
def ope_cmd(
    logs, policies, model_dir, estimators, floor, max_deficiency, alpha, n_bootstrap, seed, as_json, out_dir
) -> None:
    """Off-policy evaluation: re-run each POLICY on every window of the decision log LOGS and
    estimate its resolution per contact served, with bootstrap intervals over windows."""
    from assign.ope import (
        ESTIMATORS,
        SCOPE_NOTE,
        TARGET_NAMES,
        evaluate,
        fit_reward_model,
        make_target,
        pair_data,
    )
    from assign.ope.report import summary, table_lines, write_report
    from assign.ope.reward import LogisticRewardModel, ModelRewardModel

    problems = [
        f"--policy {p}: unknown (expected one of {', '.join(TARGET_NAMES)})" for p in policies if p not in TARGET_NAMES
    ]
    problems += [
        f"--estimator {e}: unknown (expected one of {', '.join(ESTIMATORS)})" for e in estimators if e not in ESTIMATORS
    ]
    if model_dir and not Path(model_dir).is_dir():
        problems.append(f"--model {model_dir}: no such directory")
    if problems:
        raise InputError(problems, what="option")
    log = _read_logs(logs)
    scorer = None
    if model_dir:
        from assign.model import XGBScorer

        scorer = XGBScorer.load(model_dir, nthread=1)
    model = ModelRewardModel(scorer=scorer, name=f"model {model_dir}") if scorer else LogisticRewardModel()
    model = fit_reward_model(log, model)
    names = tuple(dict.fromkeys(estimators)) or tuple(ESTIMATORS)
    results = []
    for p in dict.fromkeys(policies):
        data = pair_data(log, make_target(p, scorer=scorer), reward_model=model)
        results.append(
            evaluate(
                data,
                policy=p,
                estimators=names,
                floor=floor,
                max_deficiency=max_deficiency,
                alpha=alpha,
                n_bootstrap=n_bootstrap,
                random_state=seed,
                reward_model=model.name,
            )
        )
    settings = {
        "logs": str(logs),
        "windows": log.n_windows,
        "decisions": len(log.tables["decisions"]),
        "logging_policy": json.dumps(log.meta.get("logging_policy")),
        "reward_model": model.name,
        "scorer": f"model {model_dir}" if model_dir else "SkillScorer",
        "propensity_floor": floor,
        "max_deficiency": max_deficiency,
        "alpha": alpha,
        "n_bootstrap": n_bootstrap,
    }
    doc = write_report(results, out_dir, settings=settings) if out_dir else summary(results, settings)
    if as_json:
        click.echo(json.dumps(doc, indent=1, default=str))
        return
    click.echo(SCOPE_NOTE)
    for line in table_lines(results):
        click.echo(line)
    if out_dir:
        click.echo(f"report: {Path(out_dir) / 'report.md'} and report.html")
