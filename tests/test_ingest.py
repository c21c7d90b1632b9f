"""`assign ingest csv` (mapping, accounting shared with the bank adapter) and hostile input
to the ingest and scenario readers."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from assign.cli import main
from assign.errors import InputError
from assign.sim.scenario import parse_scenario
from assign.world.bank import read_anonymous_bank
from assign.world.ingest import load_map, parse_map, read_mapped

DATA = Path(__file__).parent / "data"
SAMPLE = DATA / "anonymous_bank_sample.tsv"
BANK_MAP = Path(__file__).parents[1] / "examples" / "mappings" / "anonymous-bank.json"


def test_bank_sample_through_the_mapping_matches_the_adapter(tmp_path):
    src = tmp_path / "bank.tsv"
    good = [ln for ln in SAMPLE.read_text().split("\n")[:61] if ln]  # the 60 real lines + header
    src.write_text("\n".join(good) + "\n")
    bank = read_anonymous_bank(src)
    mapped = read_mapped(src, parse_map(load_map(BANK_MAP)))
    c, m = bank.counts, mapped.counts
    assert (m["lines_read"], m["kept"], m["excluded"], m["quarantined"]) == \
        (c["lines_read"], c["kept"], c["phantom_excluded"], c["quarantined"])
    a = bank.history.set_index("contact_id").sort_index()
    b = mapped.history.set_index("contact_id").sort_index()
    for col in ("arrival_at", "wait_s", "abandoned", "agent_id", "intent", "language", "customer_id",
                "customer_tier", "repeat_72h"):
        pd.testing.assert_series_equal(a[col], b[col], check_names=False)


def _csv(tmp_path, text: str) -> Path:
    p = tmp_path / "export.csv"
    p.write_text(text)
    return p


def test_cli_ingest_csv_with_map_options_and_saved_mapping(tmp_path):
    f = _csv(tmp_path, "id,start,queue,gave_up,type\n"
                       "a,2026-01-05 09:00:00,0:00:12,no,billing\n"
                       "b,2026-01-05 09:01:00,40,yes,billing\n"
                       "c,not a time,5,no,billing\n"
                       "d,2026-01-05 09:03:00,-3,no,billing\n"
                       "a,2026-01-05 09:04:00,1,no,billing\n"
                       "e,2026-01-05 09:05:00,99999999999999999999999,no,billing\n"
                       "f,2026-01-05 09:06:00,1,no\n")
    maps = ["contact_id=id", "arrival_at=start", "wait_s=queue", "abandoned=gave_up", "intent=type"]
    args = ["ingest", "csv", str(f), *[x for m in maps for x in ("--map", m)], "--tz", "Europe/Paris",
            "--map", "channel=type", "--save-mapping", str(tmp_path / "m.json"), "--out", str(tmp_path / "h.parquet")]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    h = pd.read_parquet(tmp_path / "h.parquet")
    assert list(h["contact_id"]) == ["a", "b"]
    assert h["wait_s"].tolist() == [12.0, 40.0] and h["abandoned"].tolist() == [False, True]
    assert str(h["arrival_at"].iloc[0]) == "2026-01-05 08:00:00+00:00"  # Paris 09:00 is 08:00 UTC
    c = json.loads((tmp_path / "h.ingest.json").read_text())
    assert c["lines_read"] == 7 and c["kept"] + c["excluded"] + c["quarantined"] == 7
    assert c["quarantined_by_reason"] == {"bad_duration": 2, "bad_time": 1, "duplicate": 1, "missing_fields": 1}
    saved = load_map(tmp_path / "m.json")
    assert saved["tz"] == "Europe/Paris" and saved["columns"]["wait_s"] == "queue"
    r = CliRunner().invoke(main, ["ingest", "csv", str(f), "--mapping", str(tmp_path / "m.json"),
                                  "--out", str(tmp_path / "h2.parquet")])
    assert r.exit_code == 0, r.output
    assert pd.read_parquet(tmp_path / "h2.parquet").equals(h)


def test_ingest_refuses_bad_mappings_and_overwriting_the_input(tmp_path):
    f = _csv(tmp_path, "id,t\na,2026-01-01T00:00:00\n")
    r = CliRunner().invoke(main, ["ingest", "csv", str(f), "--map", "contact_id=id", "--map", "Arrival_At=t",
                                  "--out", str(tmp_path / "o.parquet")])
    assert r.exit_code == 2
    assert "did you mean 'arrival_at'" in r.output and "columns.wait_s: required" in r.output
    full = ["--map", "contact_id=id", "--map", "arrival_at=t", "--map", "wait_s=nope", "--map", "abandoned=id",
            "--map", "channel=id", "--map", "intent=id"]
    r = CliRunner().invoke(main, ["ingest", "csv", str(f), *full, "--out", str(tmp_path / "o.parquet")])
    assert r.exit_code == 2 and "'nope'" in r.output
    tsv = tmp_path / "log.tsv"
    tsv.write_text(SAMPLE.read_text())
    r = CliRunner().invoke(main, ["ingest", "anonymous-bank", str(tsv), "--out", str(tsv)])
    assert r.exit_code == 2 and "would overwrite the input" in r.output
    assert tsv.read_text() == SAMPLE.read_text()


def test_bank_quarantine_with_a_carriage_return_reads_back_and_durations_are_bounded(tmp_path):
    lines = SAMPLE.read_text().split("\n")
    real = lines[1].split("\t")
    year_wait = list(real)
    year_wait[11] = str(int(real[11]) + 365 * 86400)          # agrees with the stamps modulo a day
    neg_vru = list(real)
    neg_vru[1], neg_vru[8] = "99999001", str(int(real[8]) - 5 * 86400)
    huge = list(real)
    huge[1], huge[15] = "99999002", "9" * 30
    cr = "AA0101\t1\r2\tbroken"
    text = "\n".join([lines[0], "\t".join(year_wait), "\t".join(neg_vru), "\t".join(huge), cr]) + "\n"
    f = tmp_path / "bad.tsv"
    f.write_text(text)
    res = read_anonymous_bank(f)
    assert res.counts["kept"] == 0 and res.counts["quarantined"] == 4
    assert set(res.quarantine["reason_code"]) == {"bad_duration", "missing_fields"}
    paths = res.write(tmp_path / "out.parquet")
    back = pd.read_csv(paths["quarantine"])
    assert len(back) == 4 and back["raw"].iloc[-1] == cr


def _doc(**kw):
    doc = {"schema": "assign.scenario/1", "types": [{"name": "a", "share": 1e308}, {"name": "b", "share": 1e308}],
           "arrivals": {"kind": "constant", "rate_per_hour": 10}, "service": {"kind": "exponential", "mean_s": 60},
           "staffing": {"kind": "constant", "agents": 2}}
    doc.update(kw)
    return doc


def test_scenario_shares_do_not_overflow_and_limits_are_named(tmp_path):
    sc = parse_scenario(_doc())
    np.testing.assert_allclose(sc.shares, [0.5, 0.5])
    with pytest.raises(InputError) as err:
        parse_scenario(_doc(days=1e6, staffing={"kind": "constant", "agents": 1e8}))
    assert "limit of 400 days" in str(err.value) and "above the limit 10000" in str(err.value)
    pd.DataFrame({"hour_of_week": range(100), "agents": [1.5] + [1] * 99}).to_csv(tmp_path / "s.csv", index=False)
    with pytest.raises(InputError) as err:
        parse_scenario(_doc(staffing={"kind": "hour_of_week", "table": "s.csv"}), root=tmp_path)
    assert "whole number, got 1.5" in str(err.value) and "no row for 68 hour(s)" in str(err.value)


def test_calibrate_without_a_served_call_is_refused():
    from assign.sim.calibrate import calibrate

    h = pd.DataFrame({"arrival_at": pd.to_datetime(["2026-01-05 09:00"], utc=True), "intent": ["a"],
                      "wait_s": [10.0], "abandoned": [True], "handle_s": [np.nan], "agent_id": [None]})
    with pytest.raises(InputError, match="no served call"):
        calibrate(h, name="x")


def test_simulate_request_limits_exit_2(tmp_path):
    r = CliRunner().invoke(main, ["simulate", "--scenario", str(tmp_path), "--days", "1000000", "--seeds", "1000000"])
    assert r.exit_code == 2
    assert "limit of 400 days" in r.output and "above the limit of 10000" in r.output
