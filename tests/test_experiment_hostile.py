"""Hostile and awkward input to the experiment toolkit: unreadable logs, values near 1e200,
non-finite options (each exits 2 naming the option), per-metric quarantine, guardrail
verdicts, the self-contained HTML readout, and the switchback path of the readout."""
from __future__ import annotations

import gzip
import json
import math

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from scipy import stats

from assign.cli import main
from assign.errors import InputError
from assign.experiment.analyse import Guardrail, analyse, read_log
from assign.experiment.randomise import Switchback
from assign.experiment.report import write_report


@pytest.mark.parametrize("name,content,message", [
    ("empty.csv", b"", "empty file"),
    ("blank.csv", b"\n\n  \n", "empty file"),
    ("ragged.csv", b"arm,y\ncontrol,1\ntreatment,2,3\ncontrol\n", "2 row(s) with a different number of fields"),
    ("binary.csv", bytes(range(256)) * 4, "binary data"),
    ("latin1.csv", "arm,y\ncontr\u00f4le,1\n".encode("latin-1"), "not UTF-8 text"),
    ("utf16.csv", "arm,y\ncontrol,1\n".encode("utf-16"), "not UTF-8 text"),
    ("header.csv", b"arm,y\n", "a header but no rows"),
    ("bad.parquet", b"PAR1 this is not parquet", "not a readable Parquet file"),
    ("bad.csv.gz", b"\x1f\x8b\x08garbage", "not a readable gzip file"),
    ("log.json", b"{}", "expected a .csv, .csv.gz or .parquet"),
    ("noname.csv", b"arm,,y\ncontrol,1,2\n", "without a name"),
])
def test_unreadable_logs_are_input_errors_naming_the_problem(tmp_path, name, content, message):
    p = tmp_path / name
    p.write_bytes(content)
    with pytest.raises(InputError) as err:
        read_log(p)
    assert message in str(err.value) and name in str(err.value)
    r = CliRunner().invoke(main, ["experiment", "analyze", str(p), "--metric", "y"])
    assert r.exit_code == 2 and message in r.output


def test_gzipped_csv_reads(tmp_path):
    p = tmp_path / "log.csv.gz"
    p.write_bytes(gzip.compress(b"arm,y\ncontrol,1\ntreatment,2\n"))
    assert read_log(p).shape == (2, 2)


def _big_log(scale, n=400, seed=0):
    rng = np.random.default_rng(seed)
    arm = np.where(np.arange(n) % 2 == 0, "treatment", "control")
    y = rng.normal(1.0, 0.3, n) + 0.1 * (arm == "treatment")
    den = rng.uniform(1, 2, n)
    return pd.DataFrame({"arm": arm, "y": y * scale, "num": y * den * scale, "den": den,
                         "agent": rng.integers(0, 60, n).astype(str)}), y


@pytest.mark.parametrize("scale", [1e200, 1e-200])
def test_values_near_overflow_give_the_scaled_result(scale):
    df, y = _big_log(scale)
    small, _ = _big_log(1.0)
    for kw in ({}, {"cluster_col": "agent"}):
        big = analyse(df, metrics=["y", "num/den"], **kw)
        ref = analyse(small, metrics=["y", "num/den"], **kw)
        for b, r in zip(big.effects, ref.effects):
            assert b.p_value == pytest.approx(r.p_value, rel=1e-9)
            assert b.diff == pytest.approx(r.diff * scale, rel=1e-9)
            assert b.ci_low == pytest.approx(r.ci_low * scale, rel=1e-9)
            assert all(math.isfinite(v) for v in (b.se, b.ci_high, b.lift))
    t = df.arm == "treatment"
    welch = stats.ttest_ind(y[t], y[~t], equal_var=False)
    assert analyse(df, metrics=["y"]).effects[0].p_value == pytest.approx(welch.pvalue, rel=1e-9)


def test_design_history_overflow_is_a_clear_error(tmp_path):
    n = 200
    df = pd.DataFrame({"arrival_at": pd.date_range("2026-01-01", periods=n, freq="h", tz="UTC"),
                       "aht": np.linspace(1, 2, n) * 1e200})
    df.to_csv(tmp_path / "h.csv", index=False)
    r = CliRunner().invoke(main, ["experiment", "design", "--metric", "aht", "--history", str(tmp_path / "h.csv"),
                                  "--mde", "5%"])
    assert r.exit_code == 2 and "too large" in r.output


@pytest.mark.parametrize("args,option", [
    (["design", "--metric", "m", "--baseline", "1", "--sd", "1", "--days", "1e300"], "--days"),
    (["design", "--metric", "m", "--baseline", "1", "--sd", "1", "--mde", "0.1", "--weights", "inf,1"], "--weights"),
    (["design", "--metric", "m", "--baseline", "1", "--sd", "1", "--days", "3", "--units-per-day", "-100"],
     "--units-per-day"),
    (["design", "--metric", "m", "--baseline", "nan", "--sd", "1", "--mde", "0.1"], "--baseline"),
    (["design", "--metric", "m", "--baseline", "1", "--sd", "1", "--mde", "nan"], "--mde"),
    (["design", "--metric", "m", "--baseline", "1", "--sd", "1", "--mde", "0.1", "--power", "inf"], "--power"),
    (["analyze", "LOG", "--metric", "y", "--sequential", "--planned-n", "inf"], "--planned-n"),
    (["analyze", "LOG", "--metric", "y", "--guardrail", "y:increase:nan"], "guardrail 'y:increase:nan': margin"),
    (["analyze", "LOG", "--metric", "y", "--alpha", "nan"], "--alpha"),
    (["analyze", "LOG", "--metric", "y", "--weights", "1,nan"], "--weights"),
    (["analyze", "LOG", "--metric", "y", "--switchback-salt", "s"], "--time-col"),
    (["srm", "--counts", "10,1e400"], "--counts"),
    (["srm", "--counts", "10,12", "--threshold", "nan"], "--threshold"),
])
def test_non_finite_or_out_of_range_options_exit_2_naming_the_option(tmp_path, args, option):
    df, _ = _big_log(1.0)
    df.to_csv(tmp_path / "log.csv", index=False)
    args = [str(tmp_path / "log.csv") if a == "LOG" else a for a in args]
    r = CliRunner().invoke(main, ["experiment", *args])
    assert r.exit_code == 2, r.output
    assert option in r.output


def test_a_bad_value_quarantines_that_metric_only_and_is_counted():
    df, _ = _big_log(1.0, n=200)
    df = df.astype({"y": object})
    df.loc[4, "y"] = "fast"
    df.loc[7, "den"] = np.inf
    r = analyse(df, metrics=["y", "num/den", "den"])
    e_y, e_ratio, e_den = r.effects
    assert e_y.n_treatment + e_y.n_control == 199 and e_y.extras["quarantined"] == 1
    assert e_ratio.n_treatment + e_ratio.n_control == 199 and e_ratio.extras["quarantined"] == 1
    assert e_den.n_treatment + e_den.n_control == 199
    assert r.counts == {"control": 100, "treatment": 100}  # SRM counts every row with an arm
    assert r.quarantined_values == {"y": 1, "den": 1}
    assert sorted(r.quarantined["reason"]) == ["den not a number", "y not a number"]
    assert any("1 row(s) with an unreadable value" in n for n in e_y.notes)


def test_guardrail_underpowered_is_inconclusive_and_margin_gives_non_inferiority():
    rng = np.random.default_rng(2)
    n = 400
    arm = np.where(np.arange(n) % 2 == 0, "treatment", "control")
    df = pd.DataFrame({"arm": arm, "abandoned": rng.random(n) < 0.06 + 0.012 * (arm == "treatment")})
    r = analyse(df, metrics=[], guardrails=["abandoned:increase", "abandoned:increase:0.5",
                                            "abandoned:increase:900%"])
    statuses = [g.status for g in r.guardrails]
    assert statuses == ["inconclusive", "ok", "ok"]
    assert "cannot rule the harm in or out" in r.guardrails[0].reason
    assert r.guardrails[2].margin == pytest.approx(9 * r.guardrails[2].effect.mean_control)
    assert Guardrail.parse("a:decrease:5%").relative


def test_html_readout_is_self_contained_and_ratio_unit_means_note_is_kept(tmp_path):
    df, _ = _big_log(1.0)
    df["arm"] = np.where(df["agent"].astype(int) % 2 == 0, "treatment", "control")
    r = analyse(df, metrics=["y", "num/den"], cluster_col="agent", unit_means=True)
    assert any("not unit means" in n for n in r.effects[1].notes)  # the note that used to be lost
    paths = write_report(r, tmp_path / "rep")
    page = paths["html"].read_text()
    assert "data:image/png;base64," in page and 'src="forest.png"' not in page


def test_clustered_readout_picks_by_number_of_clusters_and_says_why():
    rng = np.random.default_rng(9)
    rows = []
    for G in (20, 80):
        g = np.repeat(np.arange(G), 15)
        arm = np.where(g % 2 == 0, "treatment", "control")
        rows.append(pd.DataFrame({"arm": arm, "agent": g.astype(str),
                                  "y": rng.normal(size=g.size) + rng.normal(size=G)[g]}))
    few = analyse(rows[0], metrics=["y"], cluster_col="agent").effects[0]
    many = analyse(rows[1], metrics=["y"], cluster_col="agent").effects[0]
    assert few.method.startswith("wild cluster bootstrap") and any("20 clusters (< 50)" in n for n in few.notes)
    assert many.method == "CR2, Bell-McCaffrey df" and any("80 clusters (>= 50)" in n for n in many.notes)
    assert many.df == pytest.approx(78, rel=1e-9)  # balanced: G - 2


def test_switchback_readout_uses_randomisation_inference_and_checks_the_design(tmp_path):
    rng = np.random.default_rng(10)
    d = Switchback(salt="sb-readout", window_s=3600, burn_in_s=600)
    sec = np.sort(rng.uniform(0, 3 * 86400, 3000))
    lab = d.label(sec)
    df = pd.DataFrame({"arm": lab["arm"], "at": pd.Timestamp(0, tz="UTC") + pd.to_timedelta(sec, unit="s"),
                       "y": rng.normal(size=sec.size) + 0.3 * (lab["arm"] == "treatment")})
    r = analyse(df, metrics=["y"], switchback=d, time_col="at", ri_draws=199)
    e = r.effects[0]
    post = ~lab["burn_in"].to_numpy()
    t = (lab["arm"] == "treatment").to_numpy()
    assert e.method == "randomisation inference (switchback, 199 re-draws)"
    assert e.diff == pytest.approx(df.y[post & t].mean() - df.y[post & ~t].mean(), rel=1e-12)
    assert e.p_value == pytest.approx(1 / 200) and e.ci_low < 0.3 < e.ci_high
    assert "carryover_p" in e.extras and any("carryover test" in n for n in e.notes)
    df.loc[0, "arm"] = "treatment" if df.loc[0, "arm"] == "control" else "control"
    with pytest.raises(InputError, match="1 row\\(s\\) carry an arm other than the switchback design"):
        analyse(df, metrics=["y"], switchback=d, time_col="at")
    df.to_csv(tmp_path / "log.csv", index=False)
    cli = CliRunner().invoke(main, ["experiment", "analyze", str(tmp_path / "log.csv"), "--metric", "y",
                                    "--switchback-salt", "sb-readout", "--window", "60", "--time-col", "at",
                                    "--json"])
    assert cli.exit_code == 2 and "carry an arm other than" in cli.output
    json.dumps(r.to_dict(), default=str)


def test_estimators_called_directly_with_overflowing_values_raise_a_clear_problem():
    from assign.experiment import estimators as est

    with pytest.raises(InputError, match="values too large"):
        est.welch(np.array([1e200, 2e200, 3e200]), np.array([1e200, 5e200, 2e200]))


def test_control_mean_cancelling_to_zero_leaves_the_lift_undefined_not_a_crash(tmp_path):
    """Values of +-1e200 in control cancel: the difference is still reported, the relative
    lift (its variance divides by the control mean's 4th power) is undefined and says so."""
    from pathlib import Path

    text = (Path(__file__).parents[1] / "examples" / "experiment_log.csv").read_text()
    log = tmp_path / "log.csv"
    log.write_text(text.replace(",228.2,", ",1e200,", 1).replace(",189.4,", ",-1e200,", 1))
    r = CliRunner().invoke(main, ["experiment", "analyze", str(log), "--metric", "handle_s", "--json"])
    assert r.exit_code == 0, r.output
    assert "relative lift undefined" in r.stdout and "NaN" not in r.stdout
