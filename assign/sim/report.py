"""The report directory of a simulation: report.md, a self-contained report.html (plots
embedded as base64 PNG), the PNG plots, kpis.csv (intervals) and runs.csv (one row per run).

The plots: KPI bars (axes from 0, intervals clipped to each KPI's range), paired differences
against the baseline (what decides a comparison: per-policy intervals overlap where paired
differences are clearly significant), waiting times, service level by hour, work per agent.
The report defines every KPI (``KPI_DEFINITIONS``)."""
from __future__ import annotations

import base64
import html
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from assign.sim.kpis import KPI_NAMES, WAIT_BINS, RunSummary, kpi_table, paired_differences, uplift_share

#: KPIs drawn as bars (each axis starts at 0) and as paired differences against the baseline.
PLOT_KPIS = ("resolution_rate", "csat", "aht_s", "asa_s", "mean_wait_s", "service_level", "abandonment_rate",
             "occupancy", "work_gini")
DIFF_KPIS = ("resolution_rate", "csat", "aht_s", "asa_s", "mean_wait_s", "service_level", "abandonment_rate")
#: The report's definitions (they follow assign/sim/kpis.py; a test checks every KPI has one).
KPI_DEFINITIONS = {
    "offered": "contacts that arrived during the simulated days",
    "resolution_rate": "share of answered contacts resolved (outcome drawn from the world's truth)",
    "expected_resolution": "mean true resolution probability of the answered contacts (the same without the "
                           "Bernoulli noise; synthetic world only)",
    "csat": "mean CSAT (1-5) of answered contacts",
    "aht_s": "average handle time of answered contacts, seconds",
    "asa_s": "average speed of answer: mean wait of ANSWERED contacts only, seconds; abandoned contacts are left "
             "out, so a policy that lets long waiters abandon can lower it",
    "mean_wait_s": "mean wait of ALL offered contacts, seconds: answered ones until answer, abandoned ones until "
                   "they hung up, unserved ones until the end of the run",
    "p_wait": "share of answered contacts who waited at all (Erlang C's probability of wait; ~1 under a "
              "batch window, by construction)",
    "service_level": ("contacts answered within the threshold (settings: sl_threshold_s) / all offered; "
                      "abandoned ones count as misses"),
    "abandonment_rate": "abandoned / offered",
    "unserved_rate": "still queued when the run ended / offered",
    "occupancy": "time agents held at least one contact / time on shift",
    "work_gini": "Gini coefficient of handle seconds across agents on shift (0 = equal work)",
}

def runs_frame(summaries: Sequence[RunSummary]) -> pd.DataFrame:
    """One row per run: policy, seed, every KPI, decisions and wall time."""
    return pd.DataFrame([{"policy": s.policy, "seed": s.seed, **s.kpis, "decisions": s.n_decisions,
                          "wall_s": s.wall_s} for s in summaries])


def headline(summaries: Sequence[RunSummary], *, baseline: str = "fcfs", policy: str = "ml-batch",
             ceiling: str = "oracle") -> dict[str, Any] | None:
    """``policy``'s resolution uplift over ``baseline`` as a share of ``ceiling``'s, and its
    service level and abandonment relative to the baseline (None when a policy is missing)."""
    names = {s.policy for s in summaries}
    if not {baseline, policy, ceiling} <= names:
        return None
    share = uplift_share(list(summaries), policy=policy, baseline=baseline, ceiling=ceiling)
    d = paired_differences(list(summaries), baseline=baseline)
    row = lambda k: d[(d.policy == policy) & (d.kpi == k)].iloc[0]
    return {"uplift_share": share.mean, "uplift_share_ci": [share.low, share.high], "n": share.n,
            "resolution_uplift": float(row("resolution_rate")["diff"]),
            "ceiling_uplift": float(d[(d.policy == ceiling) & (d.kpi == "resolution_rate")]["diff"].iloc[0]),
            "service_level_relative": float(row("service_level")["relative"]),
            "abandonment_relative": float(row("abandonment_rate")["relative"])}


def _fmt(m: float, hw: float, k: str) -> str:
    if not np.isfinite(m):
        return "n/a"
    digits = 1 if k.endswith("_s") else (0 if k == "offered" else 4)
    s = f"{m:.{digits}f}"
    return s + (f" ± {hw:.{digits}f}" if np.isfinite(hw) else "")


def _table_md(df: pd.DataFrame) -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(map(str, cols)) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(v) for v in r) + " |" for r in df.itertuples(index=False)]
    return "\n".join(lines)


#: Where each KPI can lie: error bars are clipped to it (a wait cannot be negative).
_RATES = ("resolution_rate", "expected_resolution", "p_wait", "service_level", "abandonment_rate", "unserved_rate",
          "occupancy", "work_gini")
KPI_RANGE = {**{k: (0.0, 1.0) for k in _RATES}, "csat": (1.0, 5.0)}
LOWER_IS_BETTER = {"asa_s", "mean_wait_s", "abandonment_rate", "unserved_rate"}
CAPTIONS = {
    "kpis": ("KPI means with their 95% confidence intervals over replications. Every axis starts at 0. Error bars "
             "are clipped to the KPI's possible range (a wait cannot be negative, a rate cannot exceed 1), so they "
             "can be asymmetric. These intervals are independent per policy: to compare two policies, read the "
             "paired differences, which are much narrower because every policy sees the same seeds."),
    "differences": ("Each policy minus the baseline ({baseline}), paired on seeds (common random numbers): mean "
                    "difference and its 95% confidence interval. Filled marker: the interval excludes 0."),
    "waits": "Cumulative share of answered contacts by waiting time (log scale), all replications pooled.",
    "service_level_by_hour": "Service level by hour of arrival, all replications pooled.",
    "work_per_agent": "Handle hours per agent and replication, agents sorted from most to least work.",
}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _colors(n: int) -> list[str]:
    cycle = _pyplot().rcParams["axes.prop_cycle"].by_key()["color"]
    return [cycle[i % len(cycle)] for i in range(n)]


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    _pyplot().close(fig)
    return path


def clipped_errors(mean: np.ndarray, half_width: np.ndarray, *, kpi: str) -> np.ndarray:
    """Asymmetric error-bar lengths (2, n): the interval ``mean ± half_width`` clipped to the
    KPI's range (waits and counts at 0, rates also at 1, CSAT to 1..5); 0 where unknown."""
    lo, hi = KPI_RANGE.get(kpi, (0.0, np.inf))
    m = np.nan_to_num(np.asarray(mean, dtype=float))
    hw = np.nan_to_num(np.asarray(half_width, dtype=float))
    return np.vstack([m - np.maximum(m - hw, lo), np.minimum(m + hw, hi) - m]).clip(min=0.0)


def _plot_kpis(kt: pd.DataFrame, policies: list[str], path: Path) -> Path:
    plt = _pyplot()
    fig, axes = plt.subplots(3, 3, figsize=(13, 9))
    x = np.arange(len(policies))
    for ax, k in zip(axes.ravel(), PLOT_KPIS):
        sub = kt[kt.kpi == k].set_index("policy").reindex(policies)
        mean = sub["mean"].to_numpy(dtype=float)
        ax.set_title(k + (" (lower is better)" if k in LOWER_IS_BETTER else ""), fontsize=10)
        ax.set_xticks(x, policies, rotation=40, ha="right", fontsize=8)
        if not np.isfinite(mean).any():
            ax.text(0.5, 0.5, "n/a (not modelled)", ha="center", va="center", transform=ax.transAxes)
            ax.set_yticks([])
            continue
        ax.bar(x, np.nan_to_num(mean), color=_colors(len(policies)),
               yerr=clipped_errors(mean, sub["half_width"].to_numpy(dtype=float), kpi=k), capsize=4)
        ax.set_ylim(bottom=0.0)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle("KPIs by policy: mean and 95% CI over replications (axes from 0; intervals clipped to each "
                 "KPI's range)")
    return _save(fig, path)


def _plot_differences(diffs: pd.DataFrame, policies: list[str], baseline: str, path: Path) -> Path | None:
    others = [p for p in policies if p != baseline]
    if not others:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(2, 4, figsize=(15, 3.0 + 0.5 * len(others)))
    y = np.arange(len(others))[::-1]
    colors = [c for p, c in zip(policies, _colors(len(policies))) if p != baseline]  # the bars' colours
    for ax, k in zip(axes.ravel(), DIFF_KPIS):
        sub = diffs[diffs.kpi == k].set_index("policy").reindex(others)
        d = sub["diff"].to_numpy(dtype=float)
        ax.set_title(f"{k} − {baseline}" + (" (lower is better)" if k in LOWER_IS_BETTER else ""), fontsize=10)
        ax.set_yticks(y, others, fontsize=8)
        ax.axvline(0.0, color="0.3", lw=1)
        if not np.isfinite(d).any():
            ax.text(0.5, 0.5, "n/a (not modelled)", ha="center", va="center", transform=ax.transAxes)
            continue
        lo, hi = sub["ci_low"].to_numpy(dtype=float), sub["ci_high"].to_numpy(dtype=float)
        for yi, di, low, h, c in zip(y, d, lo, hi, colors):
            sig = np.isfinite(low) and (low > 0 or h < 0)
            err = [[di - low], [h - di]] if np.isfinite(low) else None
            ax.errorbar([di], [yi], xerr=err, fmt="o", color=c, mfc=c if sig else "white", capsize=4)
        ax.grid(axis="x", alpha=0.3)
    axes.ravel()[-1].axis("off")
    axes.ravel()[-1].text(0.0, 0.5, "paired on seeds\n(common random numbers)\n95% CI of the mean difference\n"
                          "filled: the CI excludes 0", va="center", fontsize=9)
    fig.suptitle(f"Paired differences against {baseline}")
    return _save(fig, path)


def _plot_waits(summaries: Sequence[RunSummary], policies: list[str], path: Path) -> Path:
    fig, ax = _pyplot().subplots(figsize=(7, 4))
    edges = WAIT_BINS[1:-1]
    for p, c in zip(policies, _colors(len(policies))):
        h = np.sum([s.wait_hist for s in summaries if s.policy == p], axis=0)
        ax.step(edges, np.cumsum(h)[:-1] / max(h.sum(), 1), where="post", label=p, color=c)
    ax.set_xscale("log")
    ax.set_xlabel("wait (s) of answered contacts")
    ax.set_ylabel("share answered within")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def _plot_sl_by_hour(summaries: Sequence[RunSummary], policies: list[str], path: Path) -> Path:
    fig, ax = _pyplot().subplots(figsize=(7, 4))
    for p, c in zip(policies, _colors(len(policies))):
        runs = [s for s in summaries if s.policy == p]
        ins = np.sum([s.by_hour["answered_in_sl"] for s in runs], axis=0)
        off = np.sum([s.by_hour["offered"] for s in runs], axis=0)
        ax.plot(range(24), np.where(off > 0, ins / np.maximum(off, 1), np.nan), marker=".", label=p, color=c)
    ax.set_xlabel("hour of day (arrival)")
    ax.set_ylabel("service level")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def _plot_work(summaries: Sequence[RunSummary], policies: list[str], path: Path) -> Path:
    fig, ax = _pyplot().subplots(figsize=(7, 4))
    for p, c in zip(policies, _colors(len(policies))):
        w = np.mean([s.agent_work_s for s in summaries if s.policy == p], axis=0) / 3600.0
        ax.plot(np.sort(w)[::-1], label=p, color=c)
    ax.set_xlabel("agents, sorted by work")
    ax.set_ylabel("handle hours per replication")
    ax.set_ylim(bottom=0.0)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def _plots(summaries: Sequence[RunSummary], out: Path, kt: pd.DataFrame, diffs: pd.DataFrame,
           baseline: str) -> dict[str, Path]:
    """Write the report's PNGs; returns {name: path} in the order the report shows them."""
    policies = list(dict.fromkeys(s.policy for s in summaries))
    files = {"kpis": _plot_kpis(kt, policies, out / "kpis.png"),
             "differences": _plot_differences(diffs, policies, baseline, out / "differences.png"),
             "waits": _plot_waits(summaries, policies, out / "waits.png"),
             "service_level_by_hour": _plot_sl_by_hour(summaries, policies, out / "service_level_by_hour.png"),
             "work_per_agent": _plot_work(summaries, policies, out / "work_per_agent.png")}
    return {k: v for k, v in files.items() if v is not None}


def _tables(summaries: Sequence[RunSummary], kt: pd.DataFrame, diffs: pd.DataFrame,
            policies: list[str]) -> dict[str, pd.DataFrame]:
    """The report's tables: KPIs (policy x KPI cells), paired differences, by intent, definitions."""
    wide = kt.assign(cell=[_fmt(m, h, k) for m, h, k in zip(kt["mean"], kt["half_width"], kt["kpi"])])
    wide = wide.pivot(index="policy", columns="kpi", values="cell").reindex(index=policies, columns=list(KPI_NAMES))
    dsel = diffs[diffs.kpi.isin(DIFF_KPIS)]
    dtab = dsel.assign(diff=[f"{d:+.4f} [{lo:+.4f}, {hi:+.4f}]" for d, lo, hi in
                             zip(dsel["diff"], dsel["ci_low"], dsel["ci_high"])],
                       relative=[f"{r:+.1%}" if np.isfinite(r) else "n/a" for r in dsel["relative"]])
    defs = pd.DataFrame({"kpi": list(KPI_NAMES), "definition": [KPI_DEFINITIONS[k] for k in KPI_NAMES]})
    return {"kpis": wide.reset_index(), "differences": dtab[["policy", "kpi", "diff", "relative", "n"]],
            "by_intent": _by_intent(summaries, policies), "definitions": defs}


def _headline_lines(head: dict[str, Any] | None, baseline: str) -> list[str]:
    if not head:
        return []
    lo, hi = head["uplift_share_ci"]
    uplift = (f"ml-batch resolution uplift over {baseline}: {head['resolution_uplift']:+.4f}; oracle's: "
              f"{head['ceiling_uplift']:+.4f}; share of the oracle's uplift: {head['uplift_share']:.1%} "
              f"(95% CI {lo:.1%} .. {hi:.1%}, {head['n']} paired seeds)")
    queue = (f"service level relative to {baseline}: {head['service_level_relative']:+.1%}; "
             f"abandonment relative to {baseline}: {head['abandonment_relative']:+.1%}")
    return [uplift, queue]


def _sections(tables: dict[str, pd.DataFrame], head_lines: list[str], baseline: str,
              extra_sections: Sequence[tuple[str, pd.DataFrame]]) -> list[tuple[str, Any]]:
    """(heading, table or list of lines) in report order, shared by the Markdown and the HTML."""
    secs: list[tuple[str, Any]] = [("KPIs (mean ± 95% CI half-width over replications)", tables["kpis"])]
    if head_lines:
        secs.append(("Headline", head_lines))
    secs += [(f"Paired differences vs {baseline} (same seeds: common random numbers)", tables["differences"]),
             ("Resolution rate by intent (mean over replications)", tables["by_intent"])]
    secs += list(extra_sections)
    secs.append(("KPI definitions", tables["definitions"]))
    return secs


def _markdown(title: str, settings: Mapping[str, Any], secs: list[tuple[str, Any]], files: dict[str, Path],
              notes: Sequence[str], baseline: str) -> str:
    md = [f"# {title}", "", "## Settings", ""] + [f"- {k}: {v}" for k, v in settings.items()] + [""]
    for name, body in secs:
        md += [f"## {name}", ""] + ([f"- {x}" for x in body] if isinstance(body, list) else [_table_md(body)]) + [""]
    md += ["## Plots", ""]
    for k, p in files.items():
        md += [f"![{k}]({p.name})", "", CAPTIONS[k].format(baseline=baseline), ""]
    if notes:
        md += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    return "\n".join(md)


def _html(title: str, settings: Mapping[str, Any], secs: list[tuple[str, Any]], files: dict[str, Path],
          notes: Sequence[str], baseline: str) -> str:
    """The self-contained HTML report (plots embedded as base64 PNG)."""
    esc = html.escape
    h = ["<!doctype html><html><head><meta charset='utf-8'>", f"<title>{esc(title)}</title>",
         ("<style>body{font-family:sans-serif;max-width:1200px;margin:auto}table{border-collapse:collapse;"
          "font-size:12px}td,th{border:1px solid #ccc;padding:3px 6px}img{max-width:100%}"
          "figcaption{font-size:13px;color:#333;margin-bottom:24px}</style></head><body>"),
         f"<h1>{esc(title)}</h1><h2>Settings</h2><ul>"]
    h += [f"<li>{esc(str(k))}: {esc(str(v))}</li>" for k, v in settings.items()] + ["</ul>"]
    for name, body in secs:
        h.append(f"<h2>{esc(name)}</h2>")
        h.append("<ul>" + "".join(f"<li>{esc(x)}</li>" for x in body) + "</ul>" if isinstance(body, list)
                 else body.to_html(index=False))
    h.append("<h2>Plots</h2>")
    for k, p in files.items():
        data = base64.b64encode(p.read_bytes()).decode()
        h.append(f'<figure><img alt="{p.stem}" src="data:image/png;base64,{data}">'
                 f"<figcaption>{esc(CAPTIONS[k].format(baseline=baseline))}</figcaption></figure>")
    if notes:
        h += ["<h2>Notes</h2><ul>"] + [f"<li>{esc(n)}</li>" for n in notes] + ["</ul>"]
    return "\n".join(h + ["</body></html>"])


def write_report(summaries: Sequence[RunSummary], out_dir: str | Path, *, title: str,
                 settings: Mapping[str, Any], notes: Sequence[str] = (), baseline: str | None = None,
                 extra_sections: Sequence[tuple[str, pd.DataFrame]] = ()) -> dict[str, Any]:
    """Write the report directory; returns a JSON-ready summary (KPIs, differences, headline)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summaries = list(summaries)
    policies = list(dict.fromkeys(s.policy for s in summaries))
    baseline = baseline or ("fcfs" if "fcfs" in policies else policies[0])
    kt = kpi_table(summaries)
    kt.to_csv(out / "kpis.csv", index=False)
    runs_frame(summaries).to_csv(out / "runs.csv", index=False)
    diffs = paired_differences(summaries, baseline=baseline)
    head = headline(summaries, baseline=baseline)
    files = _plots(summaries, out, kt, diffs, baseline)
    secs = _sections(_tables(summaries, kt, diffs, policies), _headline_lines(head, baseline), baseline,
                     extra_sections)
    (out / "report.md").write_text(_markdown(title, settings, secs, files, notes, baseline))
    (out / "report.html").write_text(_html(title, settings, secs, files, notes, baseline))
    return {"title": title, "settings": dict(settings), "baseline": baseline,
            "kpis": json.loads(kt.to_json(orient="records")),
            "paired_differences": json.loads(diffs.to_json(orient="records")), "headline": head,
            "files": sorted(p.name for p in out.iterdir())}

def _by_intent(summaries: Sequence[RunSummary], policies: list[str]) -> pd.DataFrame:
    intents = sorted({k for s in summaries for k in s.by_intent})
    rows = []
    for it in intents:
        row = {"intent": it}
        for p in policies:
            v = [s.by_intent[it]["resolution_rate"] for s in summaries if s.policy == p and it in s.by_intent]
            v = [x for x in v if np.isfinite(x)]
            row[p] = f"{np.mean(v):.3f}" if v else "n/a"
        row["offered/run"] = f"{np.mean([s.by_intent[it]['offered'] for s in summaries if it in s.by_intent]):.0f}"
        rows.append(row)
    return pd.DataFrame(rows)
