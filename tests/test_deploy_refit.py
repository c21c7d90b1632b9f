"""retrain(refit_on_promotion=True) (refit15): the promoted recipe refitted on the whole window,
evaluation rows included, label delay still respected, deployed, audited and carded; the
champion compared through its recipe; off, retrain is what it was."""
from __future__ import annotations

import json
from dataclasses import fields
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from assign.cli import main
from assign.deploy import open_registry, retrain
from assign.deploy.retrain import RetrainDecision, compare, mature_only, recipe_of, tail_params
from assign.history import conform_history, epoch_seconds
from assign.model import TrainParams, train
from assign.world.centre import generate_history, generate_world

FAST = TrainParams(max_rounds=30, early_stopping=8, max_depth=4, nthread=1)
DELAY_H = 24.0


@pytest.fixture(scope="module")
def history():
    return conform_history(generate_history(generate_world(n_agents=12, seed=3, n_intents=6), days=6, seed=4))


def _booster(reg, version: str) -> bytes:
    return (reg.path(version) / "models" / "resolved.json").read_bytes()


def _card(reg, version: str) -> dict:
    return next(v for v in reg.versions() if v["version"] == version)


def _window(history: pd.DataFrame, cut: pd.Timestamp, days: float) -> pd.DataFrame:
    h = history[(history["arrival_at"] >= cut - pd.Timedelta(days=days)) & (history["arrival_at"] < cut)]
    return h.sort_values("arrival_at", kind="stable").reset_index(drop=True)


def test_the_refit_fits_the_evaluation_rows_and_is_deployed_audited_and_carded(history, tmp_path) -> None:
    cut = history["arrival_at"].min() + pd.Timedelta(days=5)
    reg = open_registry(tmp_path / "reg")
    d = retrain(history, registry=reg, cutoff=cut, window_days=5, params=FAST, resolution_delay_h=DELAY_H,
                refit_on_promotion=True)
    assert d.promoted and d.reason == "no champion" and (d.version, d.deployed) == ("v0001", "v0002")
    assert reg.resolve("champion") == "v0002" and reg.resolve("challenger") == "v0001"
    # the refit's rows: the whole window (counted again from the history), through the evaluation rows
    w = _window(history, cut, 5)
    meta = json.loads((reg.path("v0002") / "metadata.json").read_text())
    recipe = json.loads((reg.path("v0001") / "metadata.json").read_text())
    assert meta["refit"] is True and meta["data"]["rows"] == len(w) and meta["data"]["rows_test"] == 0
    assert pd.Timestamp(meta["data"]["last_arrival"]) == w["arrival_at"].iloc[-1] > pd.Timestamp(d.eval_from)
    assert recipe["data"]["rows_test"] == int((w["arrival_at"] >= pd.Timestamp(d.eval_from)).sum()) > 0
    assert meta["rounds"] == recipe["rounds"] and meta["metrics"] == {} and meta["held_out"] is None
    assert "refit: all" in (reg.path("v0002") / "model_card.md").read_text()
    # the registry card: the recipe's held-out metrics as the recipe's, and the refit stated
    card = _card(reg, "v0002")
    assert card["metrics"] == _card(reg, "v0001")["metrics"] and card["metrics"]["resolved"]["rows"] > 0
    assert card["refit"]["of"] == "v0001" and card["refit"]["rounds"] == recipe["rounds"]
    assert card["refit"]["rows"] == len(w) and "recipe" in card["refit"]["metrics"] and "refit of v0001" in card["note"]
    assert [pd.Timestamp(t) for t in card["refit"]["recipe_evaluation_window"]] == [pd.Timestamp(d.eval_from), cut]
    assert [pd.Timestamp(t) for t in card["training_window"]] == [cut - pd.Timedelta(days=5), cut]
    assert card["evaluation_window"] == [] and "refit" not in _card(reg, "v0001")
    # the audit log says what was deployed
    line = [e for e in reg.audit() if e["event"] == "retrain"][-1]
    assert line["version"] == "v0001" and line["deployed"] == "v0002" and line["refit"]["of"] == "v0001"
    move = [e for e in reg.audit() if e["event"] == "alias" and e["alias"] == "champion"][-1]
    assert move["to"] == "v0002" and "deployed as v0002" in move["reason"]
    assert recipe_of(reg, "v0002") == "v0001" and recipe_of(reg, "v0001") == "v0001"
    # power: the evaluation rows' labels reach the refit, not the recipe
    flipped = history.copy()
    late = (flipped["arrival_at"] >= pd.Timestamp(d.eval_from)).to_numpy() & flipped["resolved"].notna().to_numpy()
    flipped.loc[late, "resolved"] = ~flipped.loc[late, "resolved"].astype(bool)
    reg2 = open_registry(tmp_path / "reg2")
    retrain(flipped, registry=reg2, cutoff=cut, window_days=5, params=FAST, resolution_delay_h=DELAY_H,
            refit_on_promotion=True)
    assert _booster(reg2, "v0001") == _booster(reg, "v0001") and _booster(reg2, "v0002") != _booster(reg, "v0002")


def test_the_refit_uses_no_outcome_unknown_at_the_cutoff(history, tmp_path) -> None:
    """Immature labels hidden or flipped: the same refit, byte for byte; equal to a refit
    trained by hand on the window with those labels blanked (an independent reconstruction)."""
    cut = history["arrival_at"].min() + pd.Timedelta(days=5)
    ends = history["arrival_at"] + pd.to_timedelta(history["wait_s"] + history["handle_s"].fillna(np.inf)
                                                   .clip(upper=1e9), unit="s")
    late = (((ends + pd.Timedelta(hours=DELAY_H)) > cut).to_numpy() | history["handle_s"].isna().to_numpy()) \
        & history["resolved"].notna().to_numpy()
    hidden, flipped = history.copy(), history.copy()
    hidden.loc[late, "resolved"] = pd.NA
    flipped.loc[late, "resolved"] = ~flipped.loc[late, "resolved"].astype(bool)
    regs = {k: open_registry(tmp_path / k) for k in ("hidden", "flipped")}
    for k, h in (("hidden", hidden), ("flipped", flipped)):
        assert retrain(h, registry=regs[k], cutoff=cut, window_days=5, params=FAST, resolution_delay_h=DELAY_H,
                       refit_on_promotion=True).deployed == "v0002"
    assert _booster(regs["hidden"], "v0002") == _booster(regs["flipped"], "v0002")
    w = mature_only(_window(flipped, cut, 5), cutoff=cut, resolution_delay_h=DELAY_H, csat_delay_h=1.0)
    assert w["resolved"].notna().sum() < _window(flipped, cut, 5)["resolved"].notna().sum()  # the test has power
    age = (epoch_seconds(pd.Series([cut])).item() - epoch_seconds(w["arrival_at"])) / 86400.0
    rounds = json.loads((regs["hidden"].path("v0001") / "metadata.json").read_text())["rounds"]
    res = train(w, out=tmp_path / "by-hand", params=FAST, weights=0.5 ** (age / 7.0), refit_rounds=rounds)
    assert (res.out / "models" / "resolved.json").read_bytes() == _booster(regs["hidden"], "v0002")


def test_off_retrain_is_the_plain_one(history, tmp_path) -> None:
    """Seeded: the default evaluates and registers the same challenger as the refit option (same
    figures), which is train() with the held-out tail at the evaluation rows, and its audit line and
    card carry none of the option's keys."""
    cut = history["arrival_at"].min() + pd.Timedelta(days=5)
    off, on = open_registry(tmp_path / "off"), open_registry(tmp_path / "on")
    a = retrain(history, registry=off, cutoff=cut, window_days=5, params=FAST, resolution_delay_h=DELAY_H, seed=7)
    b = retrain(history, registry=on, cutoff=cut, window_days=5, params=FAST, resolution_delay_h=DELAY_H, seed=7,
                refit_on_promotion=True)
    assert (a.version, a.deployed, a.refit) == ("v0001", None, None) and off.resolve("champion") == "v0001"
    assert _booster(off, "v0001") == _booster(on, "v0001")
    same = ("challenger_metrics", "eval_from", "rows", "reason", "promoted")
    assert [getattr(a, k) for k in same] == [getattr(b, k) for k in same]
    plain = {f.name for f in fields(RetrainDecision)} - {"deployed", "refit"}
    line = [e for e in off.audit() if e["event"] == "retrain"][-1]
    assert set(line) == plain | {"event", "at"} and set(a.to_dict()) == plain
    assert "refit" not in _card(off, "v0001") and len(off.versions()) == 1
    # the challenger, rebuilt by hand: train() on the mature window, the tail at the evaluation rows
    w = mature_only(_window(history, cut, 5), cutoff=cut, resolution_delay_h=DELAY_H, csat_delay_h=1.0)
    n_fit = int((w["arrival_at"] < pd.Timestamp(a.eval_from)).sum())
    age = (epoch_seconds(pd.Series([cut])).item() - epoch_seconds(w["arrival_at"])) / 86400.0
    res = train(w, out=tmp_path / "by-hand", params=tail_params(FAST, n_fit=n_fit, n=len(w)),
                weights=0.5 ** (age / 7.0))
    assert (res.out / "models" / "resolved.json").read_bytes() == _booster(off, "v0001")


def test_a_refit_champion_is_compared_through_its_recipe(history, tmp_path) -> None:
    reg = open_registry(tmp_path / "reg")
    t0 = history["arrival_at"].min()
    first = retrain(history[history["arrival_at"] < t0 + pd.Timedelta(days=4)], registry=reg, window_days=4,
                    params=FAST, resolution_delay_h=DELAY_H, refit_on_promotion=True)
    assert first.deployed == "v0002" == reg.resolve("champion")
    second = retrain(history, registry=reg, window_days=4, params=FAST, resolution_delay_h=DELAY_H,
                     refit_on_promotion=True)
    assert second.champion == "v0002" and second.version == "v0003"
    assert second.refit["champion_scored_as"] == "v0001"
    assert second.deployed == ("v0004" if second.promoted else None)
    assert reg.resolve("champion") == ("v0004" if second.promoted else "v0002")
    # the champion's figures are its recipe's on these rows; its refit, which fitted part of them, scores otherwise
    hist = mature_only(history[history["arrival_at"] >= pd.Timestamp(second.window[0])].reset_index(drop=True),
                       cutoff=pd.Timestamp(second.cutoff), resolution_delay_h=DELAY_H, csat_delay_h=1.0)
    hist = hist.sort_values("arrival_at", kind="stable").reset_index(drop=True)
    rows = (hist["arrival_at"] >= pd.Timestamp(second.eval_from)).to_numpy() & hist["agent_id"].notna().to_numpy()
    by_recipe = compare(hist, rows, registry=reg, champion="v0001", challenger="v0003")
    by_refit = compare(hist, rows, registry=reg, champion="v0002", challenger="v0003")
    assert second.champion_metrics == by_recipe["champion"] and second.comparison == by_recipe["comparison"]
    assert by_refit["champion"]["resolved"]["log_loss"] != by_recipe["champion"]["resolved"]["log_loss"]
    recipe_tail = json.loads((reg.path("v0001") / "metadata.json").read_text())["data"]["test_from"]
    assert pd.Timestamp(recipe_tail) <= pd.Timestamp(second.eval_from)  # the recipe never fitted these rows


def test_cli_retrain_refit_full_window(history, tmp_path) -> None:
    path = tmp_path / "h.parquet"
    history.head(9000).to_parquet(path)
    reg = tmp_path / "reg"
    run = CliRunner().invoke
    res = run(main, ["retrain", str(path), "--registry", str(reg), "--window-days", "4", "--resolution-delay-h", "24",
                     "--max-rounds", "30", "--threads", "1", "--refit-full-window", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc["promoted"] and (doc["version"], doc["deployed"]) == ("v0001", "v0002")
    res = run(main, ["registry", "list", str(reg), "--json"])
    assert json.loads(res.output)["aliases"]["champion"] == "v0002"
    # the monitor's out-of-sample reference of a refit: nothing in its window
    res = run(main, ["monitor", str(path), "--registry", str(reg), "--recent-days", "0.5", "--json"])
    assert res.exit_code in (0, 3), res.output
    assert json.loads(res.output)["meta"]["rows_reference_unseen"] == 0
    res = run(main, ["evaluate", str(reg / "versions" / "v0002" / "model"), str(path)])
    assert res.exit_code == 2 and "refit" in res.output


def test_unseen_from_of_a_refit_is_just_after_its_last_row() -> None:
    from assign.deploy.monitor import unseen_from

    t = "2026-01-05 10:00:00+00:00"
    s = float(epoch_seconds(pd.Series([pd.Timestamp(t)]))[0])
    got = unseen_from({"refit": True, "data": {"last_arrival": t, "valid_from": None}, "held_out": None})
    assert s < got <= np.nextafter(s, np.inf)
    assert unseen_from({"data": {"valid_from": t}}) == s


@pytest.mark.slow
def test_the_loop_swaps_in_the_refit(tmp_path, promoting_loop_centre) -> None:
    """``LoopConfig(refit_full_window=True)``: a promotion swaps in the refit the decision deployed."""
    from assign.constants import DAY_S
    from assign.deploy.loop import LoopConfig, LoopPolicy
    from assign.sim.engine import SimConfig, simulate
    from assign.world.drift import DriftSource

    dw, pre, _ = promoting_loop_centre

    class Probe(LoopPolicy):
        versions: ClassVar[list[str]] = []

        def _retrain(self, view, *, alarms=None):
            super()._retrain(view, alarms=alarms)
            self.versions.append(self.router.model_version)

    cfg = LoopConfig(retrain_every_s=0.6 * DAY_S, monitor_every_s=99 * DAY_S, refit_full_window=True)
    pol = Probe(registry=tmp_path / "registry", workdir=tmp_path / "runs", pre_history=pre, config=cfg)
    simulate(source=DriftSource(dw), policy=pol, seed=0, config=SimConfig(days=0.7, window_s=120.0))
    assert [e["event"] for e in pol.events] == ["swap", "retrain", "swap"] and pol.events[2]["ok"]
    d = pol.events[1]
    assert d["promoted"] and d["deployed"] == pol.versions[-1] != d["version"]
    assert pol.reg.resolve("champion") == d["deployed"] and recipe_of(pol.reg, d["deployed"]) == d["version"]
