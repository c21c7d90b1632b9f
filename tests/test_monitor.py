"""assign.deploy.monitor and `assign monitor` on a small synthetic centre: unchanged traffic,
an outcome shock, a brand-new intent, the report files and the exit codes."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from assign.cli import main
from assign.deploy.monitor import MonitorConfig, MonitorReport, assess, build_side, monitor
from assign.errors import InputError
from assign.history import conform_history, epoch_seconds
from assign.model.scorer import ModelDir
from assign.model.train import TrainParams, train
from assign.world.centre import generate_history, generate_world

FAST = TrainParams(max_rounds=60, early_stopping=10, learning_rate=0.3, max_depth=4, nthread=1)
TRAIN_DAYS = 8
CFG = MonitorConfig(warmup_h=24.0)  # 7 reference days in the null out of 8


@pytest.fixture(scope="module")
def centre(tmp_path_factory):
    """(history, training cut, model dir, history path): 10 days, the model on the first 8."""
    world = generate_world(n_agents=20, seed=31, n_intents=5)
    hist = generate_history(world, days=TRAIN_DAYS + 2, seed=32)
    cut = pd.Timestamp(world.start) + pd.Timedelta(days=TRAIN_DAYS)
    out = tmp_path_factory.mktemp("monitor")
    train(hist[hist["arrival_at"] < cut], out=out / "model", params=FAST)
    hist.to_parquet(out / "history.parquet")
    return hist, cut, out / "model", out / "history.parquet"


def _day(hist, cut, k=0):
    lo = cut + pd.Timedelta(days=k)
    return hist[(hist["arrival_at"] >= lo) & (hist["arrival_at"] < lo + pd.Timedelta(days=1))]


def _drop_resolution(hist: pd.DataFrame, intent: str, share: float, seed: int) -> pd.DataFrame:
    """Half (``share``) of the resolved contacts of ``intent`` become unresolved."""
    h = hist.copy()
    rng = np.random.default_rng(seed)
    m = (h["intent"] == intent).to_numpy() & h["resolved"].fillna(False).to_numpy() & (rng.random(len(h)) < share)
    h.loc[m, "resolved"] = False
    return conform_history(h)


def test_unchanged_day_raises_no_alarm_and_reports_every_kind(centre, tmp_path):
    hist, cut, model, _ = centre
    ref = hist[hist["arrival_at"] < cut]
    rep = monitor(_day(hist, cut), reference=ref, model_dir=model, context=ref, config=CFG)
    assert isinstance(rep, MonitorReport)
    assert not rep.alarm, rep.alarms
    kinds = {t["kind"] for t in rep.tests if t["testable"]}
    assert kinds == {"feature", "prediction", "calibration"}
    assert rep.meta["p_threshold"] == pytest.approx(MonitorConfig().alpha / rep.meta["testable"])
    assert rep.agents and all(0 <= a["p_holm"] <= 1 for a in rep.agents)
    paths = rep.write(tmp_path / "rep")
    doc = json.loads((tmp_path / "rep" / "monitor.json").read_text())
    assert doc["schema"] == "assign.monitor/1" and doc["alarm"] is False
    assert {p.name for p in paths} >= {"monitor.json", "reliability.png", "tests.png", "calibration_daily.png"}


def test_an_intent_whose_resolution_drops_is_flagged(centre):
    hist, cut, model, _ = centre
    ref = hist[hist["arrival_at"] < cut]
    day = _day(hist, cut)
    intent = day["intent"].value_counts().index[0]
    rep = monitor(_drop_resolution(day, intent, 0.5, seed=1), reference=ref, model_dir=model, context=ref, config=CFG)
    assert rep.alarm
    names = {a["name"] for a in rep.alarms}
    assert f"resolved:intent={intent}" in names
    a = next(a for a in rep.alarms if a["name"] == f"resolved:intent={intent}")
    assert a["kind"] == "calibration" and a["statistic"] < 0 and a["p_value"] < a["threshold"]


def test_a_brand_new_intent_is_flagged_by_its_share(centre):
    hist, cut, model, _ = centre
    ref = hist[hist["arrival_at"] < cut]
    day = _day(hist, cut).copy()
    day["intent"] = day["intent"].astype(object)
    day.loc[day.index[::20], "intent"] = "brand_new"
    rep = monitor(day, reference=ref, model_dir=model, context=ref, config=CFG)
    alarm = [a for a in rep.alarms if a["kind"] == "unknown"]
    assert alarm and alarm[0]["name"] == "intent" and alarm[0]["statistic"] == pytest.approx(0.05, abs=0.002)
    assert rep.unknown["intent"]["values"] == {"brand_new": int((day["intent"] == "brand_new").sum())}


def test_outcomes_not_matured_by_now_are_left_out(centre):
    hist, cut, model, _ = centre
    ref = hist[hist["arrival_at"] < cut]
    day = _day(hist, cut)
    noon = cut + pd.Timedelta(hours=12)
    rep = monitor(day, reference=ref, model_dir=model, context=ref, now=noon, config=CFG)
    done = day["arrival_at"] + pd.to_timedelta(day["wait_s"] + day["handle_s"].fillna(0), unit="s")
    assert rep.meta["matured_recent"] == int((day["agent_id"].notna() & (done <= noon)).sum())
    assert 0 < rep.meta["matured_recent"] < day["agent_id"].notna().sum()


def test_bad_input_is_named(centre):
    hist, cut, model, _ = centre
    ref = hist[hist["arrival_at"] < cut]
    with pytest.raises(InputError, match="recent: expected a pandas DataFrame"):
        monitor([1, 2], reference=ref, model_dir=model)
    dup = pd.concat([_day(hist, cut).head(5)] * 2)
    with pytest.raises(InputError, match="duplicate"):
        monitor(dup, reference=ref, model_dir=model)
    with pytest.raises(InputError, match="alpha must be in"):
        MonitorConfig(alpha=1.5)
    with pytest.raises(InputError, match="min_day_share must be in"):
        MonitorConfig(min_day_share=1.0)


def test_cli_exit_codes(centre, tmp_path):
    hist, cut, model, path = centre
    runner = CliRunner()
    since = cut.isoformat()
    ok = runner.invoke(main, ["monitor", str(path), "--model", str(model), "--since", since,
                              "--now", (cut + pd.Timedelta(days=1)).isoformat(), "--out", str(tmp_path / "o")])
    assert ok.exit_code == 0, ok.output
    assert "no alarm" in ok.output and (tmp_path / "o" / "monitor.json").exists()
    shocked = pd.concat([hist[hist["arrival_at"] < cut],
                         _drop_resolution(_day(hist, cut), hist["intent"].value_counts().index[0], 0.5, seed=2)])
    shocked.to_parquet(tmp_path / "shocked.parquet")
    bad = runner.invoke(main, ["monitor", str(tmp_path / "shocked.parquet"), "--model", str(model), "--since", since,
                               "--json"])
    assert bad.exit_code == 3, bad.output
    assert json.loads(bad.output)["alarm"] is True
    r = runner.invoke(main, ["monitor", str(path), "--model", str(model), "--registry", "x", "--since", "nope"])
    assert r.exit_code == 2 and "give exactly one" in r.output
    r = runner.invoke(main, ["monitor", str(path), "--model", str(model), "--since", "not a time"])
    assert r.exit_code == 2 and "not an ISO time" in r.output
    r = runner.invoke(main, ["monitor", str(path), "--model", str(model), "--alpha", "0"])
    assert r.exit_code == 2 and "--alpha" in r.output


def test_calibration_reference_is_out_of_sample(centre):
    """The default calibration reference is the rows the model did not fit: from its
    early-stopping segment on (``data.valid_from``). Same calibration tests as monitoring
    with only those rows as the reference; in-sample rows never enter them."""
    hist, cut, model, _ = centre
    meta = json.loads((model / "metadata.json").read_text())
    valid_from = pd.Timestamp(meta["data"]["valid_from"])
    ref = hist[hist["arrival_at"] < cut]
    assert int((ref["arrival_at"] < valid_from).sum()) == meta["data"]["rows_train"]
    day = _day(hist, cut)
    cfg, every_cfg = MonitorConfig(warmup_h=0.0), MonitorConfig(warmup_h=0.0, calibration_reference="all")
    mdl = ModelDir.load(model)
    t0 = float(np.floor(epoch_seconds(ref["arrival_at"]).min() / 86400) * 86400)
    ref_side = build_side(mdl, conform_history(ref).reset_index(drop=True), None, cfg, t0=t0, reference=True)
    rec_side = build_side(mdl, conform_history(day).reset_index(drop=True), ref, cfg, t0=t0, reference=False)
    now_s = t0 + (TRAIN_DAYS + 1) * 86400
    held = assess(mdl, ref_side, rec_side, cfg, now_s=now_s)
    unseen = ref_side.t >= epoch_seconds(pd.Series([valid_from]))[0]
    only = assess(mdl, ref_side.take(unseen), rec_side, every_cfg, now_s=now_s)  # the in-sample rows removed
    assert abs(pd.Timestamp(held.meta["unseen_from"]) - valid_from) < pd.Timedelta(microseconds=1)
    assert held.meta["rows_reference_unseen"] == int(unseen.sum()) == int((ref["arrival_at"] >= valid_from).sum())

    def cal(rep):  # bins are cut on every reference row, so compare overall and per intent
        return {t["name"]: t for t in rep.tests if t["kind"] == "calibration" and ":bin=" not in t["name"]}

    a, b = cal(held), cal(only)
    assert a.keys() == b.keys() and any(t["testable"] for t in a.values())
    for name in a:
        assert a[name]["days_reference"] == b[name]["days_reference"], name
        np.testing.assert_allclose([a[name]["statistic"], a[name]["sd"]], [b[name]["statistic"], b[name]["sd"]],
                                   rtol=1e-9, err_msg=name)
    every = assess(mdl, ref_side, rec_side, every_cfg, now_s=now_s)
    assert cal(every)["resolved:all"]["days_reference"] > a["resolved:all"]["days_reference"]


def test_reference_choice_is_validated():
    with pytest.raises(InputError, match="calibration_reference"):
        MonitorConfig(calibration_reference="train")


def test_routed_rows_grow_only_the_calibration_reference(centre):
    """``routed_from``: reference rows from then on (traffic the model routed after its
    window) enter the calibration tests as out-of-sample rows and nothing else: the feature
    and prediction tests equal those against the reference side without those rows, the
    calibration tests those against the whole side; ``monitor`` passes it through."""
    hist, cut, model, _ = centre
    ref, day = hist[hist["arrival_at"] < cut], _day(hist, cut)
    routed_from = (cut - pd.Timedelta(days=2)).floor("D")
    cfg, mdl = MonitorConfig(warmup_h=0.0), ModelDir.load(model)
    t0 = float(np.floor(epoch_seconds(ref["arrival_at"]).min() / 86400) * 86400)
    ref_side = build_side(mdl, conform_history(ref).reset_index(drop=True), None, cfg, t0=t0, reference=True)
    rec_side = build_side(mdl, conform_history(day).reset_index(drop=True), ref, cfg, t0=t0, reference=False)
    now_s, routed_s = t0 + (TRAIN_DAYS + 1) * 86400, float(epoch_seconds(pd.Series([routed_from]))[0])
    grown = assess(mdl, ref_side, rec_side, cfg, now_s=now_s, routed_from_s=routed_s)
    window = assess(mdl, ref_side.take(ref_side.t < routed_s), rec_side, cfg, now_s=now_s)
    whole = assess(mdl, ref_side, rec_side, cfg, now_s=now_s)
    assert grown.meta["rows_reference_routed"] == int((ref["arrival_at"] >= routed_from).sum()) > 0

    def tests(rep, kinds):
        return {t["name"]: t for t in rep.tests if t["kind"] in kinds}

    for other, kinds in ((window, ("feature", "prediction")), (whole, ("calibration",))):
        a, b = tests(grown, kinds), tests(other, kinds)
        assert a.keys() == b.keys() and sum(t["testable"] for t in a.values()) > 0
        for name in a:
            assert a[name]["testable"] == b[name]["testable"], name
            if a[name]["testable"]:
                np.testing.assert_allclose([a[name]["statistic"], a[name]["sd"]], [b[name]["statistic"], b[name]["sd"]],
                                           rtol=1e-12, err_msg=name)
    assert tests(grown, ("calibration",)) != tests(window, ("calibration",))
    via = monitor(day, reference=ref, model_dir=model, config=cfg, now=pd.Timestamp(now_s, unit="s", tz="UTC"),
                  context=ref, routed_from=routed_from)
    assert [(t["name"], t["statistic"]) for t in via.tests] == [(t["name"], t["statistic"]) for t in grown.tests]
