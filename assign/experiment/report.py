"""Readout reports: Markdown and HTML tables plus a forest plot (PNG) of the effects."""
from __future__ import annotations

import html
from pathlib import Path

from assign.experiment.analyse import Readout


def _f(x, spec=".4g") -> str:
    return "—" if x is None else format(x, spec)


def _pct(x) -> str:
    return "—" if x is None else f"{100 * x:+.2f}%"


def rows(readout: Readout) -> list[dict]:
    """One row per effect (primary metrics, then guardrails) as display strings."""
    out = []
    for e, ph in zip(readout.effects, readout.p_holm):
        out.append({"role": "primary", "e": e, "p_holm": ph,
                    "verdict": (e.degenerate and "degenerate") or
                               ("significant" if ph is not None and ph < readout.alpha else "not significant")})
    for g in readout.guardrails:
        out.append({"role": f"guardrail ({g.bad} is bad)", "e": g.effect, "p_holm": None, "verdict": g.status})
    return out


def forest_plot(readout: Readout, path) -> Path:
    """Relative lift with its CI per metric and arm (absolute difference where the control
    mean is 0); degenerate effects are listed with their reason instead of a bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rs = rows(readout)
    fig, ax = plt.subplots(figsize=(8, 0.55 * len(rs) + 1.4))
    labels = []
    for i, r in enumerate(rs[::-1]):
        e = r["e"]
        labels.append(f"{e.metric} [{e.arm}]" + (" (guardrail)" if r["role"] != "primary" else ""))
        if e.degenerate or e.ci_low is None:
            ax.text(0, i, "degenerate", va="center", ha="center", color="grey", fontsize=8)
            continue
        if e.lift is not None and e.lift_ci_low is not None:
            mid, lo, hi, unit = 100 * e.lift, 100 * e.lift_ci_low, 100 * e.lift_ci_high, "%"
        else:
            mid, lo, hi, unit = e.diff, e.ci_low, e.ci_high, " abs"
        colour = {"significant": "tab:green", "harm": "tab:red"}.get(r["verdict"], "tab:blue")
        ax.errorbar([mid], [i], xerr=[[mid - lo], [hi - mid]], fmt="o", color=colour, capsize=4)
        ax.text(hi, i + 0.18, f" {mid:+.2f}{unit}", fontsize=7, va="bottom")
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(range(len(rs)))
    ax.set_yticklabels(labels)
    ax.set_ylim(-0.7, len(rs) - 0.3)
    kind = "always-valid CS" if readout.sequential else f"{100 * (1 - readout.alpha):.0f}% CI"
    ax.set_xlabel(f"relative lift vs {readout.control}, % ({kind}); green: significant after Holm, red: guardrail harm")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def to_markdown(readout: Readout, *, plot_name: str | None = "forest.png") -> str:
    """The readout as Markdown: SRM, data handling, primary metrics (Holm), guardrails."""
    lines = ["# Experiment readout", ""]
    counts = ", ".join(f"{a}: {n}" for a, n in readout.counts.items())
    if readout.srm is not None:
        s = readout.srm
        flag = "**SAMPLE RATIO MISMATCH — do not trust the effects**" if s.mismatch else "no mismatch"
        lines.append(f"- Arms ({readout.srm_unit}): {counts}; SRM chi² = {s.chi2:.3f}, p = {s.p_value:.4g} → {flag}")
    lines.append(f"- Rows: {readout.rows}; quarantined: {len(readout.quarantined)}; "
                 f"burn-in excluded: {readout.excluded_burn_in}")
    lines.append(f"- Inference: {'always-valid confidence sequences (peeking allowed)' if readout.sequential else 'fixed-sample'}, "
                 f"α = {readout.alpha}; Holm correction across {len(readout.effects)} primary comparison(s)")
    lines += ["", "| metric | arm | role | method | control | treatment | diff | CI | lift | lift CI | p | p (Holm) | verdict |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    notes = []
    for r in rows(readout):
        e = r["e"]
        lines.append(
            f"| {e.metric} | {e.arm} | {r['role']} | {e.method} | {_f(e.mean_control)} | {_f(e.mean_treatment)} | "
            f"{_f(e.diff)} | [{_f(e.ci_low)}, {_f(e.ci_high)}] | {_pct(e.lift)} | "
            f"[{_pct(e.lift_ci_low)}, {_pct(e.lift_ci_high)}] | {_f(e.p_value)} | {_f(r['p_holm'])} | {r['verdict']} |")
        if e.degenerate:
            notes.append(e.degenerate)
        notes.extend(e.notes)
    if notes:
        lines += ["", "Notes:", *(f"- {n}" for n in dict.fromkeys(notes))]
    if plot_name:
        lines += ["", f"![forest plot]({plot_name})"]
    return "\n".join(lines) + "\n"


def to_html(readout: Readout, *, plot_name: str | None = "forest.png") -> str:
    """A standalone HTML page with the same content as :func:`to_markdown`."""
    head = ["metric", "arm", "role", "method", "control", "treatment", "diff", "CI", "lift", "lift CI",
            "p", "p (Holm)", "verdict"]
    body = []
    for r in rows(readout):
        e = r["e"]
        cells = [e.metric, e.arm, r["role"], e.method, _f(e.mean_control), _f(e.mean_treatment), _f(e.diff),
                 f"[{_f(e.ci_low)}, {_f(e.ci_high)}]", _pct(e.lift), f"[{_pct(e.lift_ci_low)}, {_pct(e.lift_ci_high)}]",
                 _f(e.p_value), _f(r["p_holm"]), r["verdict"]]
        body.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
    md_head = to_markdown(readout, plot_name=None).split("\n| metric")[0]
    items = "".join(f"<li>{html.escape(line[2:])}</li>" for line in md_head.splitlines() if line.startswith("- "))
    img = f'<img src="{plot_name}" alt="forest plot">' if plot_name else ""
    return ("<!doctype html><meta charset='utf-8'><title>Experiment readout</title>"
            "<style>td,th{border:1px solid #ccc;padding:3px 6px;font:13px sans-serif}table{border-collapse:collapse}</style>"
            f"<h1>Experiment readout</h1><ul>{items}</ul><table><tr>"
            + "".join(f"<th>{h}</th>" for h in head) + "</tr>" + "".join(body) + f"</table>{img}")


def write_report(readout: Readout, directory) -> dict[str, Path]:
    """Write readout.md, readout.html and forest.png into ``directory`` (created)."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    png = forest_plot(readout, d / "forest.png")
    md = d / "readout.md"
    md.write_text(to_markdown(readout), encoding="utf-8")
    ht = d / "readout.html"
    ht.write_text(to_html(readout), encoding="utf-8")
    return {"markdown": md, "html": ht, "plot": png}
