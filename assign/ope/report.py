"""The OPE report: a table of estimates with intervals per policy and estimator, effective
sample size and support, a plot, and the statement of what OPE does not estimate.
Written as ``report.md`` + ``ope.png``, a self-contained ``report.html`` and ``ope.json``."""
from __future__ import annotations

import base64
import html
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from assign.ope.evaluate import SCOPE_NOTE, OPEResult


def summary(results: Sequence[OPEResult], settings: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON form (``assign ope --json``)."""
    return {"settings": dict(settings), "scope": SCOPE_NOTE, "policies": [r.to_dict() for r in results]}


def table_lines(results: Sequence[OPEResult]) -> list[str]:
    """The markdown table: one row per (policy, estimator)."""
    lines = ["| policy | estimator | estimate | 95% interval | ESS (of target pairs) | support deficiency |",
             "|---|---|---|---|---|---|"]
    for r in results:
        for name, e in r.estimates.items():
            est = "refused" if e.value is None else f"{e.value:.4f}"
            ci = e.refused if e.value is None else f"[{e.ci_low:.4f}, {e.ci_high:.4f}]"
            lines.append(f"| {r.policy} | {name} | {est} | {ci} | {r.ess:.0f} ({r.n_target_pairs}) | "
                         f"{r.support_deficiency:.1%} |")
    return lines


def plot(results: Sequence[OPEResult], path: Path) -> Path:
    """Estimates with intervals (left), effective sample share and support deficiency (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(11, 0.6 * max(4, len(results) * 2) + 1.5))
    names = list(dict.fromkeys(n for r in results for n in r.estimates))
    y = 0
    ticks, labels = [], []
    for r in results:
        for n in names:
            e = r.estimates.get(n)
            if e is not None and e.value is not None:
                ax[0].errorbar([e.value], [y], xerr=[[e.value - e.ci_low], [e.ci_high - e.value]], fmt="o", capsize=3,
                               color=f"C{names.index(n)}")
            elif e is not None:
                ax[0].text(0.5, y, "refused: missing support", transform=ax[0].get_yaxis_transform(), va="center",
                           ha="center", color="firebrick", fontsize=8)
            ticks.append(y)
            labels.append(f"{r.policy} / {n}")
            y -= 1
        y -= 0.5
    ax[0].set_yticks(ticks, labels, fontsize=8)
    ax[0].set_xlabel("resolution per contact served (95% bootstrap interval over windows)")
    pos = np.arange(len(results))
    ax[1].barh(pos + 0.2, [r.ess / max(r.n_target_pairs, 1) for r in results], height=0.4, label="ESS / target pairs")
    ax[1].barh(pos - 0.2, [r.support_deficiency for r in results], height=0.4, label="support deficiency")
    if results:
        ax[1].axvline(results[0].max_deficiency, color="firebrick", ls="--", lw=1, label="refusal threshold")
    ax[1].set_yticks(pos, [r.policy for r in results])
    ax[1].invert_yaxis()
    ax[1].set_xlim(0, 1)
    ax[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_report(results: Sequence[OPEResult], out_dir: str | Path, *, settings: Mapping[str, Any]) -> dict[str, Any]:
    """Write report.md, ope.png, report.html and ope.json to ``out_dir``; returns the summary."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    png = plot(results, out / "ope.png")
    doc = summary(results, settings)
    (out / "ope.json").write_text(json.dumps(doc, indent=1, default=str))
    head = ["# Off-policy evaluation", "", f"> {SCOPE_NOTE}", "", "## Settings", ""]
    head += [f"- {k}: {v}" for k, v in settings.items()]
    body = ["", "## Estimates", "", *table_lines(results), "", "![estimates](ope.png)", "",
            ("Support deficiency: share of the target's pairs whose logging propensity is below the floor; past "
            "the threshold no estimator gives a number. ESS: Kish's effective sample size of the importance "
            "weights, to compare with the number of target pairs.")]
    (out / "report.md").write_text("\n".join(head + body) + "\n")
    img = base64.b64encode(png.read_bytes()).decode()
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(c.strip())}</td>" for c in line.strip("|").split("|"))
                   + "</tr>" for line in table_lines(results)[2:])
    settings_html = "".join(f"<li>{html.escape(str(k))}: {html.escape(str(v))}</li>" for k, v in settings.items())
    (out / "report.html").write_text(
        "<!doctype html><meta charset='utf-8'><title>Off-policy evaluation</title>"
        "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}td,th{padding:3px 8px;"
        "border-bottom:1px solid #ddd}</style>"
        f"<h1>Off-policy evaluation</h1><p><b>{html.escape(SCOPE_NOTE)}</b></p><ul>{settings_html}</ul>"
        "<table><tr><th>policy</th><th>estimator</th><th>estimate</th><th>95% interval</th>"
        f"<th>ESS (of target pairs)</th><th>support deficiency</th></tr>{rows}</table>"
        f"<img src='data:image/png;base64,{img}' style='max-width:100%'>")
    return doc
