"""The report directory of a simulation: report.md, a self-contained report.html (plots
embedded as base64 PNG), the PNG plots, kpis.csv (intervals) and runs.csv (one row per run)."""
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

PLOT_KPIS = ("resolution_rate", "csat", "aht_s", "asa_s", "service_level", "abandonment_rate", "occupancy",
             "work_gini")


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
    row = lambda k: d[(d.policy == policy) & (d.kpi == k)].iloc[0]  # noqa: E731
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


def _plots(summaries: Sequence[RunSummary], out: Path, kt: pd.DataFrame) -> dict[str, Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    policies = list(dict.fromkeys(s.policy for s in summaries))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    files = {}
    # 1. KPI bars with 95% intervals
    fig, axes = plt.subplots(2, 4, figsize=(14, 6))
    for ax, k in zip(axes.ravel(), PLOT_KPIS):
        sub = kt[kt.kpi == k].set_index("policy").reindex(policies)
        hw = sub["half_width"].fillna(0).to_numpy()
        ax.bar(range(len(policies)), sub["mean"], yerr=hw, capsize=4,
               color=[colors[i % len(colors)] for i in range(len(policies))])
        ax.set_xticks(range(len(policies)), policies, rotation=40, ha="right", fontsize=8)
        ax.set_title(k, fontsize=10)
        finite = sub["mean"].to_numpy()[np.isfinite(sub["mean"].to_numpy())]
        if not len(finite):
            ax.text(0.5, 0.5, "n/a (not modelled)", ha="center", va="center", transform=ax.transAxes)
            ax.set_yticks([])
        if len(finite) and k not in ("aht_s", "asa_s"):
            lo, hi = (finite - hw[np.isfinite(sub["mean"].to_numpy())]).min(), (finite + hw[np.isfinite(sub["mean"].to_numpy())]).max()
            pad = max((hi - lo) * 0.3, 1e-3)
            ax.set_ylim(max(lo - pad, 0), hi + pad)
    fig.suptitle("KPIs by policy (mean and 95% CI over replications)")
    fig.tight_layout()
    files["kpis"] = out / "kpis.png"; fig.savefig(files["kpis"], dpi=90); plt.close(fig)
    # 2. waiting-time distribution of answered contacts (CDF at the bin edges)
    fig, ax = plt.subplots(figsize=(7, 4))
    edges = WAIT_BINS[1:-1]
    for i, p in enumerate(policies):
        h = np.sum([s.wait_hist for s in summaries if s.policy == p], axis=0)
        cdf = np.cumsum(h)[:-1] / max(h.sum(), 1)
        ax.step(edges, cdf, where="post", label=p, color=colors[i % len(colors)])
    ax.set_xscale("log"); ax.set_xlabel("wait (s) of answered contacts"); ax.set_ylabel("share answered within")
    ax.legend(fontsize=8); ax.grid(alpha=0.3); fig.tight_layout()
    files["waits"] = out / "waits.png"; fig.savefig(files["waits"], dpi=90); plt.close(fig)
    # 3. service level by hour of day
    fig, ax = plt.subplots(figsize=(7, 4))
    for i, p in enumerate(policies):
        runs = [s for s in summaries if s.policy == p]
        ins = np.sum([s.by_hour["answered_in_sl"] for s in runs], axis=0)
        off = np.sum([s.by_hour["offered"] for s in runs], axis=0)
        ax.plot(range(24), np.where(off > 0, ins / np.maximum(off, 1), np.nan), marker=".", label=p,
                color=colors[i % len(colors)])
    ax.set_xlabel("hour of day (arrival)"); ax.set_ylabel("service level"); ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8); ax.grid(alpha=0.3); fig.tight_layout()
    files["service_level_by_hour"] = out / "service_level_by_hour.png"
    fig.savefig(files["service_level_by_hour"], dpi=90); plt.close(fig)
    # 4. work per agent (handle hours per replication, agents sorted)
    fig, ax = plt.subplots(figsize=(7, 4))
    for i, p in enumerate(policies):
        runs = [s for s in summaries if s.policy == p]
        w = np.mean([s.agent_work_s for s in runs], axis=0) / 3600.0
        ax.plot(np.sort(w)[::-1], label=p, color=colors[i % len(colors)])
    ax.set_xlabel("agents, sorted by work"); ax.set_ylabel("handle hours per replication")
    ax.legend(fontsize=8); ax.grid(alpha=0.3); fig.tight_layout()
    files["work_per_agent"] = out / "work_per_agent.png"; fig.savefig(files["work_per_agent"], dpi=90)
    plt.close(fig)
    return files


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
    runs = runs_frame(summaries)
    runs.to_csv(out / "runs.csv", index=False)
    diffs = paired_differences(summaries, baseline=baseline)
    head = headline(summaries, baseline=baseline)
    files = _plots(summaries, out, kt)

    wide = kt.assign(cell=[_fmt(m, h, k) for m, h, k in zip(kt["mean"], kt["half_width"], kt["kpi"])])
    wide = wide.pivot(index="policy", columns="kpi", values="cell").reindex(index=policies, columns=list(KPI_NAMES))
    wide = wide.reset_index()
    dsel = diffs[diffs.kpi.isin(["resolution_rate", "csat", "aht_s", "asa_s", "service_level", "abandonment_rate"])]
    dtab = dsel.assign(diff=[f"{d:+.4f} [{lo:+.4f}, {hi:+.4f}]" for d, lo, hi in
                             zip(dsel["diff"], dsel["ci_low"], dsel["ci_high"])],
                       relative=[f"{r:+.1%}" if np.isfinite(r) else "n/a" for r in dsel["relative"]])
    dtab = dtab[["policy", "kpi", "diff", "relative", "n"]]
    by_int = _by_intent(summaries, policies)

    md = [f"# {title}", "", "## Settings", ""]
    md += [f"- {k}: {v}" for k, v in settings.items()]
    md += ["", "## KPIs (mean ± 95% CI half-width over replications)", "", _table_md(wide), ""]
    if head:
        md += ["## Headline", "",
               f"- ml-batch resolution uplift over {baseline}: {head['resolution_uplift']:+.4f}; "
               f"oracle's: {head['ceiling_uplift']:+.4f}; share of the oracle's uplift: "
               f"{head['uplift_share']:.1%} (95% CI {head['uplift_share_ci'][0]:.1%} .. {head['uplift_share_ci'][1]:.1%}, "
               f"{head['n']} paired seeds)",
               f"- service level relative to {baseline}: {head['service_level_relative']:+.1%}; "
               f"abandonment relative to {baseline}: {head['abandonment_relative']:+.1%}", ""]
    md += [f"## Paired differences vs {baseline} (same seeds: common random numbers)", "", _table_md(dtab), ""]
    md += ["## Resolution rate by intent (mean over replications)", "", _table_md(by_int), ""]
    for name, df in extra_sections:
        md += [f"## {name}", "", _table_md(df), ""]
    md += ["## Plots", ""] + [f"![{k}]({p.name})" for k, p in files.items()] + [""]
    if notes:
        md += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    (out / "report.md").write_text("\n".join(md))

    def img(p: Path) -> str:
        return f'<img alt="{p.stem}" src="data:image/png;base64,{base64.b64encode(p.read_bytes()).decode()}">'

    h = ["<!doctype html><html><head><meta charset='utf-8'>", f"<title>{html.escape(title)}</title>",
         "<style>body{font-family:sans-serif;max-width:1200px;margin:auto}table{border-collapse:collapse;font-size:12px}"
         "td,th{border:1px solid #ccc;padding:3px 6px}img{max-width:100%}</style></head><body>",
         f"<h1>{html.escape(title)}</h1><h2>Settings</h2><ul>"]
    h += [f"<li>{html.escape(str(k))}: {html.escape(str(v))}</li>" for k, v in settings.items()]
    h += ["</ul><h2>KPIs (mean ± 95% CI half-width)</h2>", wide.to_html(index=False)]
    if head:
        h += ["<h2>Headline</h2>", "<p>" + html.escape(md[md.index("## Headline") + 2]) + "<br>"
              + html.escape(md[md.index("## Headline") + 3]) + "</p>"]
    h += [f"<h2>Paired differences vs {html.escape(baseline)}</h2>", dtab.to_html(index=False),
          "<h2>Resolution rate by intent</h2>", by_int.to_html(index=False)]
    for name, df in extra_sections:
        h += [f"<h2>{html.escape(name)}</h2>", df.to_html(index=False)]
    h += ["<h2>Plots</h2>"] + [img(p) for p in files.values()]
    if notes:
        h += ["<h2>Notes</h2><ul>"] + [f"<li>{html.escape(n)}</li>" for n in notes] + ["</ul>"]
    h += ["</body></html>"]
    (out / "report.html").write_text("\n".join(h))
    result = {"title": title, "settings": dict(settings), "baseline": baseline,
              "kpis": json.loads(kt.to_json(orient="records")),
              "paired_differences": json.loads(diffs.to_json(orient="records")), "headline": head,
              "files": sorted(p.name for p in out.iterdir())}
    return result


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
