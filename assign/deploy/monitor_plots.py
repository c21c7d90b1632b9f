"""Figures of a :class:`assign.deploy.monitor.MonitorReport` (matplotlib, Agg)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def write_plots(report: Any, out: Path) -> list[Path]:
    """``reliability.png``, ``calibration_daily.png``, ``tests.png`` (and ``agents.png`` when
    agents were scored) into ``out``; returns the paths written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    for name, draw in (("reliability.png", _reliability), ("calibration_daily.png", _daily),
                       ("tests.png", _tests), ("agents.png", _agents)):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        if draw(ax, report):
            fig.tight_layout()
            fig.savefig(out / name, dpi=100)
            paths.append(out / name)
        plt.close(fig)
    return paths


def _reliability(ax, report) -> bool:
    rel = report.plots.get("reliability", {})
    if not rel:
        return False
    ax.plot([0, 1], [0, 1], color="grey", lw=1, ls="--", label="perfect")
    for label, rows in rel.items():
        if rows:
            ax.plot([r["predicted"] for r in rows], [r["observed"] for r in rows], marker="o",
                    label=f"{label} ({sum(r['rows'] for r in rows)} rows)")
    ax.set_xlabel("predicted resolution")
    ax.set_ylabel("observed resolution")
    ax.set_title("Reliability of the resolution model (matured outcomes)")
    ax.legend()
    return True


def _daily(ax, report) -> bool:
    daily = report.plots.get("daily", [])
    if not daily:
        return False
    for side, colour in (("reference", "tab:blue"), ("recent", "tab:red")):
        rows = [r for r in daily if r["side"] == side]
        ax.plot([r["day"] for r in rows], [r["mean_residual"] for r in rows], marker="o", color=colour,
                label=f"{side}: observed - predicted")
    ax.axhline(0, color="grey", lw=1)
    ax.set_xlabel("day")
    ax.set_ylabel("mean residual (resolution)")
    ax.set_title("Calibration in the large, day by day")
    ax.legend()
    return True


def _tests(ax, report) -> bool:
    rows = [t for t in report.tests if t["testable"]]
    if not rows:
        return False
    kinds = sorted({t["kind"] for t in rows})
    for k, kind in enumerate(kinds):
        z = np.array([abs(t["statistic"]) for t in rows if t["kind"] == kind], dtype=float)
        ax.scatter(np.full(len(z), k) + np.linspace(-0.3, 0.3, len(z)), np.minimum(z, 50), s=10, label=kind)
    ax.set_xticks(range(len(kinds)), kinds)
    ax.set_ylabel("|z| (capped at 50)")
    ax.set_title(f"Day-level shift tests; alarm when p < {report.meta['p_threshold']:.2g}")
    for a in report.alarms:
        if a["kind"] in kinds and "p_value" in a:
            ax.annotate(a["name"], (kinds.index(a["kind"]), min(abs(a["statistic"]), 50)), fontsize=7)
    return True


def _agents(ax, report) -> bool:
    if not report.agents:
        return False
    rows = report.agents
    ax.barh([r["agent_id"] for r in rows][::-1], [r["statistic"] for r in rows][::-1], color="tab:purple")
    ax.set_xlabel("residual z (observed - predicted resolutions)")
    ax.set_title("Agents the model gets most wrong (recent, matured)")
    return True
