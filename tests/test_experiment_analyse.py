"""Readout of logs (quarantine, burn-in, SRM, Holm, guardrails, degenerate metrics), reports, CLI."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from scipy import stats

from assign.cli import main
from assign.errors import InputError
from assign.experiment import estimators as est
from assign.experiment.analyse import analyse, read_log
from assign.experiment.report import write_report


def _log(seed=0, n=2000):
    rng = np.random.default_rng(seed)
    arm = np.where(rng.random(n) < 0.5, "treatment", "control")
    t = arm == "treatment"
    pre = rng.normal(300, 60, n)
    answered = rng.random(n) > 0.05
    return pd.DataFrame({
        "arm": arm, "agent": rng.integers(0, 30, n).astype(str),
        "handle": np.where(answered, pre * 0.8 + rng.normal(60, 30, n) - 10 * t, np.nan),
        "pre": pre, "answered": answered, "resolved": answered & (rng.random(n) < 0.7 + 0.05 * t),
        "abandoned": ~answered, "zero": np.zeros(n), "const": np.full(n, 3.0),
    })


def test_readout_matches_the_estimators_and_applies_holm():
    df = _log()
    r = analyse(df, metrics=["handle", "resolved", "resolved/answered"])
    t = df.arm == "treatment"
    h = df.handle.notna()
    ref = stats.ttest_ind(df.handle[t & h], df.handle[~t & h], equal_var=False)
    e_handle, e_res, e_ratio = r.effects
    assert e_handle.p_value == pytest.approx(ref.pvalue, rel=1e-10)
    assert e_handle.extras["missing"] == int((~h).sum())
    assert e_res.method == "two-proportion z" and e_ratio.kind == "ratio"
    adj, _ = est.holm([e.p_value for e in r.effects])
    assert r.p_holm == pytest.approx(tuple(adj))
    assert r.srm is not None and r.counts == {"control": int((~t).sum()), "treatment": int(t.sum())}


def test_quarantine_burn_in_and_missing_values_are_counted_not_dropped():
    df = _log(n=400).astype({"handle": object, "arm": object})
    df.loc[3, "arm"] = None
    df.loc[5, "handle"] = "fast"
    df["burn_in"] = np.arange(len(df)) % 10 == 0
    r = analyse(df, metrics=["handle"])
    assert len(r.quarantined) == 2
    assert sorted(r.quarantined["reason"]) == ["arm missing", "handle not a number"]
    assert r.excluded_burn_in == int(df.burn_in.sum() - df.burn_in[[3, 5]].sum())
    e = r.effects[0]
    assert e.n_treatment + e.n_control + e.extras["missing"] == len(df) - 2 - r.excluded_burn_in


def test_cluster_and_cuped_paths():
    df = _log()
    rc = analyse(df, metrics=["handle"], cluster_col="agent")  # 30 agents: few clusters -> wild bootstrap
    assert rc.effects[0].method.startswith("wild cluster bootstrap") and rc.srm_unit == "clusters (agent)"
    assert any("30 clusters (< 50)" in n for n in rc.effects[0].notes)
    r1 = analyse(df, metrics=["handle"], cluster_col="agent", cluster_method="cr1")
    assert r1.effects[0].method.startswith("OLS, cluster-robust (CR1)")
    assert rc.effects[0].diff == pytest.approx(r1.effects[0].diff)
    rv = analyse(df, metrics=["handle"], covariate="pre")
    plain = analyse(df, metrics=["handle"]).effects[0]
    assert rv.effects[0].se < 0.7 * plain.se
    assert rv.effects[0].extras["variance_reduction"] > 0.5
    rs = analyse(df, metrics=["handle"], sequential=True, n_planned=4000)
    assert rs.effects[0].ci_high - rs.effects[0].ci_low > plain.ci_high - plain.ci_low


def test_unit_means_is_welch_on_cluster_means_and_needs_nested_clusters():
    df = _log()
    df["arm"] = np.where(df["agent"].astype(int) % 2 == 0, "treatment", "control")  # agent-level
    r = analyse(df, metrics=["handle", "resolved"], cluster_col="agent", unit_means=True)
    means = df.groupby("agent").agg(handle=("handle", "mean"), arm=("arm", "first"))
    t = means.arm == "treatment"
    ref = stats.ttest_ind(means.handle[t], means.handle[~t], equal_var=False)
    assert r.effects[0].p_value == pytest.approx(ref.pvalue, rel=1e-10)
    assert r.effects[0].method == "Welch t on cluster means" and r.counts == {"control": 15, "treatment": 15}
    rc = analyse(df, metrics=["handle"], cluster_col="agent", unit_means=True, covariate="pre")
    assert rc.effects[0].method == "CUPED + Welch t on cluster means"
    with pytest.raises(InputError, match="30 cluster\\(s\\) appear in more than one arm"):
        analyse(_log(), metrics=["handle"], cluster_col="agent", unit_means=True)


def test_guardrails_flag_harm_in_the_bad_direction_only():
    rng = np.random.default_rng(2)
    n = 6000
    arm = np.where(np.arange(n) % 2 == 0, "treatment", "control")
    t = arm == "treatment"
    df = pd.DataFrame({"arm": arm, "abandoned": rng.random(n) < 0.05 + 0.04 * t,
                       "sla": rng.random(n) < 0.8 + 0.05 * t})
    r = analyse(df, metrics=[], guardrails=["abandoned:increase", "sla:decrease", "abandoned:increase:0.2"])
    assert [g.status for g in r.guardrails] == ["harm", "ok", "ok"]


def test_degenerate_metric_is_reported_and_others_still_analysed(tmp_path):
    df = _log()
    r = analyse(df, metrics=["const", "zero", "handle"])
    assert r.effects[0].degenerate and "zero variance" in r.effects[0].degenerate
    assert "the rate is 0 in both arms" in r.effects[1].degenerate
    assert r.p_holm[:2] == (None, None) and r.p_holm[2] == pytest.approx(r.effects[2].p_value)
    paths = write_report(r, tmp_path / "rep")
    text = paths["markdown"].read_text()
    assert "degenerate" in text and "zero variance" in text
    assert paths["plot"].stat().st_size > 1000 and paths["html"].read_text().startswith("<!doctype html>")
    json.dumps(r.to_dict(), default=str)  # serialisable


@pytest.mark.parametrize("kwargs,message", [
    (dict(metrics=["nope"]), "log.nope: metric nope not found"),
    (dict(metrics=["handle"], arm_col="group"), "log.group: arm column not found"),
    (dict(metrics=["handle"], cluster_col="team"), "log.team: cluster column not found"),
    (dict(metrics=["handle"], covariate="pre2"), "log.pre2: covariate not found"),
    (dict(metrics=["handle"], control="baseline"), "control arm 'baseline' not found"),
    (dict(metrics=["handle/"]), "a ratio is written NUM/DEN"),
    (dict(metrics=["handle"], guardrails=["abandoned:up"]), "bad direction: must be one of increase, decrease"),
    (dict(metrics=["handle"], guardrails=["abandoned:increase:-1"]), "margin: -1.0 is below the minimum 0"),
    (dict(metrics=[]), "give at least one metric"),
    (dict(metrics=["handle"], weights=[1, 2, 3]), "weights: 3 given for 2 counts"),
    (dict(metrics=["handle"], unit_means=True), "unit_means: needs a cluster column"),
])
def test_invalid_analysis_inputs(kwargs, message):
    with pytest.raises(InputError) as err:
        analyse(_log(n=50), **kwargs)
    assert message in str(err.value)


def test_all_missing_columns_reported_at_once():
    with pytest.raises(InputError) as err:
        analyse(_log(n=50), metrics=["a", "b/c"], cluster_col="d")
    assert len(err.value.problems) == 4


def test_one_arm_only_is_a_clear_error():
    df = _log(n=50)
    df["arm"] = "control"
    with pytest.raises(InputError, match="only arm 'control' present"):
        analyse(df, metrics=["handle"])


def test_read_log_errors(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        read_log(tmp_path / "x.csv")
    (tmp_path / "x.txt").write_text("a")
    with pytest.raises(InputError, match="expected a .csv, .csv.gz or .parquet"):
        read_log(tmp_path / "x.txt")


# ---- CLI ----------------------------------------------------------------------------------
def test_cli_srm():
    runner = CliRunner()
    ok = runner.invoke(main, ["experiment", "srm", "--counts", "5000,5100", "--weights", "0.5,0.5"])
    assert ok.exit_code == 0 and "no mismatch" in ok.output
    bad = runner.invoke(main, ["experiment", "srm", "--counts", "5000,5400", "--json"])
    assert bad.exit_code == 3 and json.loads(bad.output)["mismatch"] is True
    err = runner.invoke(main, ["experiment", "srm", "--counts", "5000,x"])
    assert err.exit_code == 2 and "--counts: expected comma-separated numbers" in err.output


def test_cli_design():
    runner = CliRunner()
    r = runner.invoke(main, ["experiment", "design", "--metric", "resolved", "--kind", "proportion",
                             "--baseline", "0.7", "--mde", "2%", "--units-per-day", "5000", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    from statsmodels.stats.proportion import power_proportions_2indep

    assert power_proportions_2indep(0.014, 0.7, d["n_treatment"]).power == pytest.approx(0.8, abs=1e-9)
    assert d["days"] == pytest.approx(2 * d["n_treatment"] / 5000)
    bad = runner.invoke(main, ["experiment", "design", "--metric", "aht", "--baseline", "300", "--mde", "5"])
    assert bad.exit_code == 2 and "mean metrics need --sd or --history" in bad.output


def test_cli_design_from_history_switchback(tmp_path):
    rng = np.random.default_rng(3)
    n = 6000
    t = np.sort(rng.uniform(0, 3 * 86400, n))
    pd.DataFrame({"arrival_at": pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(t, unit="s"),
                  "handle_s": rng.gamma(3, 100, n) + 50 * np.sin(t / 7200)}).to_csv(tmp_path / "h.csv", index=False)
    r = CliRunner().invoke(main, ["experiment", "design", "--metric", "handle_s", "--unit", "switchback",
                                  "--history", str(tmp_path / "h.csv"), "--mde", "3%", "--window", "60",
                                  "--burn-in", "10"])
    assert r.exit_code == 0, r.output
    assert "windows:" in r.output and "design effect" in r.output and "duration:" in r.output


def test_cli_analyze_writes_report_and_json(tmp_path):
    _log().to_parquet(tmp_path / "log.parquet")
    r = CliRunner().invoke(main, ["experiment", "analyze", str(tmp_path / "log.parquet"), "--metric", "handle",
                                  "--metric", "resolved/answered", "--guardrail", "abandoned:increase",
                                  "--covariate", "pre", "--json", "--report", str(tmp_path / "rep")])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert [e["metric"] for e in out["effects"]] == ["handle", "resolved/answered"]
    assert out["effects"][0]["method"] == "CUPED + Welch t"
    assert all(not (isinstance(v, float) and math.isnan(v)) for e in out["effects"] for v in e.values())
    assert (tmp_path / "rep" / "forest.png").exists() and (tmp_path / "rep" / "readout.md").exists()
    missing = CliRunner().invoke(main, ["experiment", "analyze", str(tmp_path / "nope.csv"), "--metric", "x"])
    assert missing.exit_code == 2 and "file not found" in missing.output
