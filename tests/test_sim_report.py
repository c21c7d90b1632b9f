"""The simulation report: every KPI defined, paired-difference plot, bars from 0, error bars
clipped to each KPI's range, and a self-contained HTML with every plot embedded."""
from __future__ import annotations

import ast
import inspect

import numpy as np
import pytest

from assign.sim import report
from assign.sim.kpis import KPI_NAMES, WAIT_BINS, RunSummary


def _fake_runs(policies=("fcfs", "skills", "ml-batch"), seeds=range(4)) -> list[RunSummary]:
    rng = np.random.default_rng(0)
    runs = []
    for k, p in enumerate(policies):
        for s in seeds:
            kpis = {n: float(rng.uniform(0.1, 0.9)) for n in KPI_NAMES}
            kpis["resolution_rate"] = 0.78 + 0.01 * k + 0.001 * s  # paired: differences exact, levels spread
            kpis["asa_s"] = float(rng.uniform(0.0, 400.0))           # wide interval near 0
            runs.append(RunSummary(
                policy=p, seed=s, kpis=kpis, by_intent={"billing": {"resolution_rate": 0.8, "offered": 10.0}},
                by_hour={"offered": np.full(24, 10.0), "answered_in_sl": np.full(24, 7.0)},
                wait_hist=rng.integers(0, 50, len(WAIT_BINS) - 1), agent_work_s=rng.uniform(0, 3600, 5),
                agent_handled=np.ones(5), agent_ids=tuple("abcde"), n_decisions=10, wall_s=0.1))
    return runs


def test_every_kpi_is_defined_in_the_report(tmp_path) -> None:
    assert set(report.KPI_DEFINITIONS) == set(KPI_NAMES)
    res = report.write_report(_fake_runs(), tmp_path, title="t", settings={"seeds": 4})
    md, html = (tmp_path / "report.md").read_text(), (tmp_path / "report.html").read_text()
    assert "## KPI definitions" in md and "mean wait of ANSWERED contacts only" in md
    assert "mean wait of ALL offered contacts" in html
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    assert "differences.png" in pngs and "differences.png" in res["files"]
    assert html.count("data:image/png;base64,") == len(pngs) and 'src="kpis.png"' not in html
    assert "Paired differences vs fcfs" in md and "+0.0100 [+0.0100, +0.0100]" in md


def test_error_bars_never_leave_the_kpis_range() -> None:
    mean, hw = np.array([5.0, 100.0, np.nan]), np.array([20.0, 10.0, np.nan])
    err = report.clipped_errors(mean, hw, kpi="asa_s")
    assert np.allclose(err, [[5.0, 10.0, 0.0], [20.0, 10.0, 0.0]])  # the lower bar stops at 0
    rate = report.clipped_errors(np.array([0.98, 0.02]), np.array([0.05, 0.05]), kpi="service_level")
    assert np.allclose(np.array([0.98, 0.02]) + rate[1], [1.0, 0.07])
    assert np.allclose(np.array([0.98, 0.02]) - rate[0], [0.93, 0.0])
    csat = report.clipped_errors(np.array([1.2]), np.array([0.5]), kpi="csat")
    assert np.isclose(1.2 - csat[0, 0], 1.0)


def test_bar_axes_start_at_zero(tmp_path, monkeypatch) -> None:
    import matplotlib.pyplot as plt

    seen = []
    monkeypatch.setattr(report, "_save", lambda fig, path: seen.append(fig) or path)
    report._plot_kpis(report.kpi_table(_fake_runs()), ["fcfs", "skills", "ml-batch"], tmp_path / "k.png")
    (fig,) = seen
    for ax in fig.axes:
        if ax.patches:  # bar panels
            assert ax.get_ylim()[0] == 0.0
    plt.close(fig)


@pytest.mark.parametrize("fn", ["write_report", "_plots", "_plot_kpis", "_plot_differences", "_html", "_markdown"])
def test_report_functions_are_short(fn) -> None:
    node = ast.parse(inspect.getsource(getattr(report, fn))).body[0]
    assert node.end_lineno - node.lineno + 1 < 80
