"""Readout reports: Markdown and HTML tables plus a forest plot (PNG) of the effects. The HTML
page is self-contained: the plot is embedded as a base64 PNG, so the file can be mailed alone."""
from __future__ import annotations

import base64
import html
import io
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
        margin = f", margin {g.margin:g}" if g.margin else ""
        out.append({"role": f"guardrail ({g.bad} is bad{margin})", "e": g.effect, "p_holm": None,
                    "verdict": g.status, "reason": g.reason})
    return out


def forest_plot(readout: Readout, path=None) -> Path | bytes:
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
        colour = {"significant": "tab:green", "harm": "tab:red", "inconclusive": "tab:orange"}.get(r["verdict"],
                                                                                                "tab:blue")
        ax.errorbar([mid], [i], xerr=[[mid - lo], [hi - mid]], fmt="o", color=colour, capsize=4)
        ax.text(hi, i + 0.18, f" {mid:+.2f}{unit}", fontsize=7, va="bottom")
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(range(len(rs)))
    ax.set_yticklabels(labels)
    ax.set_ylim(-0.7, len(rs) - 0.3)
    kind = "always-valid CS" if readout.sequential else f"{100 * (1 - readout.alpha):.0f}% CI"
    ax.set_xlabel(f"relative lift vs {readout.control}, % ({kind})")
    ax.set_title("green: significant after Holm · red: guardrail harm · orange: guardrail inconclusive · "
                 "blue: neither "
                 "(intervals are not Holm-adjusted)", fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, dpi=110, format="png")
    plt.close(fig)
    if path is None:
        return buf.getvalue()
    path = Path(path)
    path.write_bytes(buf.getvalue())
    return path


HEADER = ("metric", "arm", "role", "method", "control", "treatment", "diff", "CI", "lift", "lift CI",
          "p", "p (Holm)", "verdict")


def _cells(r: dict) -> list[str]:
    e = r["e"]
    return [e.metric, e.arm, r["role"], e.method, _f(e.mean_control), _f(e.mean_treatment), _f(e.diff),
            f"[{_f(e.ci_low)}, {_f(e.ci_high)}]", _pct(e.lift),
            f"[{_pct(e.lift_ci_low)}, {_pct(e.lift_ci_high)}]", _f(e.p_value), _f(r["p_holm"]), r["verdict"]]


def _summary(readout: Readout) -> list[str]:
    out = []
    counts = ", ".join(f"{a}: {n}" for a, n in readout.counts.items())
    if readout.srm is not None:
        s = readout.srm
        flag = "**SAMPLE RATIO MISMATCH — do not trust the effects**" if s.mismatch else "no mismatch"
        out.append(f"Arms ({readout.srm_unit}): {counts}; SRM chi² = {s.chi2:.3f}, p = {s.p_value:.4g} → {flag}")
    out.append(f"Rows: {readout.rows}; quarantined: {len(readout.quarantined)}; "
               f"burn-in excluded: {readout.excluded_burn_in}")
    kind = "always-valid confidence sequences (peeking allowed)" if readout.sequential else "fixed-sample"
    out.append(f"Inference: {kind}, α = {readout.alpha}; Holm correction across "
               f"{len(readout.effects)} primary comparison(s)")
    return out


def _notes(readout: Readout) -> list[str]:
    notes = []
    for r in rows(readout):
        if r["e"].degenerate:
            notes.append(r["e"].degenerate)
        notes.extend(r["e"].notes)
        if r.get("reason") and r["verdict"] != "degenerate":
            notes.append(f"guardrail {r['e'].metric} [{r['e'].arm}]: {r['verdict']}: {r['reason']}")
    return list(dict.fromkeys(notes))


def to_markdown(readout: Readout, *, plot_name: str | None = "forest.png") -> str:
    """The readout as Markdown: SRM, data handling, primary metrics (Holm), guardrails."""
    lines = ["# Experiment readout", "", *(f"- {x}" for x in _summary(readout)), "",
             "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(_cells(r)) + " |" for r in rows(readout)]
    if notes := _notes(readout):
        lines += ["", "Notes:", *(f"- {n}" for n in notes)]
    if plot_name:
        lines += ["", f"![forest plot]({plot_name})"]
    return "\n".join(lines) + "\n"


def to_html(readout: Readout, *, png: bytes | None = None) -> str:
    """A self-contained HTML page with the same content as :func:`to_markdown`; ``png`` (the
    forest plot's bytes) is embedded as a data URI."""
    esc = html.escape
    head = "<tr>" + "".join(f"<th>{esc(h)}</th>" for h in HEADER) + "</tr>"
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in _cells(r)) + "</tr>" for r in rows(readout))
    items = "".join(f"<li>{esc(x.replace('**', ''))}</li>" for x in _summary(readout))
    notes = "".join(f"<li>{esc(n)}</li>" for n in _notes(readout))
    img = (f'<img src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}" alt="forest plot">'
           if png else "")
    return ("<!doctype html><meta charset='utf-8'><title>Experiment readout</title>"
            "<style>td,th{border:1px solid #ccc;padding:3px 6px;font:13px sans-serif}"
            "table{border-collapse:collapse}</style>"
            f"<h1>Experiment readout</h1><ul>{items}</ul><table>{head}{body}</table>"
            f"{'<h2>Notes</h2><ul>' + notes + '</ul>' if notes else ''}{img}")


def write_report(readout: Readout, directory) -> dict[str, Path]:
    """Write readout.md, forest.png (the Markdown's image) and a self-contained readout.html
    (plot embedded) into ``directory`` (created)."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    data = forest_plot(readout)
    png = d / "forest.png"
    png.write_bytes(data)
    md = d / "readout.md"
    md.write_text(to_markdown(readout), encoding="utf-8")
    ht = d / "readout.html"
    ht.write_text(to_html(readout, png=data), encoding="utf-8")
    return {"markdown": md, "html": ht, "plot": png}
