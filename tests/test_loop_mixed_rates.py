"""relrate16: relative outcome-history rates for the loop's retrains only, the first champion
absolute (docs/living-centre.md, "relrate16"). A registry then holds versions with different
``FeatureSpec.history_rates``; every place that scores a version must use its own spec and state."""
from __future__ import annotations

import importlib

import numpy as np
import pandas as pd
import pytest

from assign.constants import DAY_S
from assign.features.spec import FEATURES

RATE_COLS = [FEATURES.index("agent_rate"), FEATURES.index("agent_intent_rate")]


def _window(hist: pd.DataFrame, *, cut: pd.Timestamp, days: float, delay_h: float) -> pd.DataFrame:
    """The matured rows a retrain at ``cut`` fits (its window, outcomes unknown at ``cut`` blanked)."""
    from assign.deploy.retrain import mature_only
    from assign.history import conform_history

    h = conform_history(hist).sort_values("arrival_at", kind="stable").reset_index(drop=True)
    h = h[(h["arrival_at"] >= cut - pd.Timedelta(days=days)) & (h["arrival_at"] < cut)].reset_index(drop=True)
    return mature_only(h, cutoff=cut, resolution_delay_h=delay_h, csat_delay_h=1.0)


def test_first_rates_default_to_the_retrains_rates():
    from assign.deploy.loop import LoopConfig

    assert LoopConfig().first_rates() == "absolute" and LoopConfig().first_history_rates is None
    assert LoopConfig(history_rates="relative").first_rates() == "relative"
    assert LoopConfig(history_rates="relative", first_history_rates="absolute").first_rates() == "absolute"


class _Stop(Exception):
    pass


@pytest.mark.parametrize(("flags", "first", "retrains"), [
    ([], "absolute", "absolute"),
    (["--relative-rates"], "relative", "relative"),
    (["--relative-rates-retrains"], "absolute", "relative"),
])
def test_the_benchmark_trains_the_first_champion_with_its_own_rates(tmp_path, monkeypatch, flags, first, retrains):
    """The flag reaches the loop's config and the first champion's training (nothing simulated)."""
    lc = importlib.import_module("benchmarks.living_centre")
    seen = {}

    def fake_first_champion(dw, *, history_rates, **_):
        seen["first"] = history_rates
        raise _Stop

    real = lc.run_world

    def spy(dw, *, loop_cfg, **kw):
        seen["retrains"] = loop_cfg.history_rates
        return real(dw, loop_cfg=loop_cfg, **kw)

    monkeypatch.setattr(lc, "first_champion", fake_first_champion)
    monkeypatch.setattr(lc, "run_world", spy)
    with pytest.raises(_Stop):
        lc.main(["--quick", "--workers", "0", "--worlds", "drift", "--json", str(tmp_path / "x.json"), *flags])
    assert seen == {"first": first, "retrains": retrains}


def test_the_two_rate_flags_exclude_each_other(tmp_path, capsys):
    lc = importlib.import_module("benchmarks.living_centre")
    with pytest.raises(SystemExit) as err:
        lc.main(["--quick", "--relative-rates", "--relative-rates-retrains", "--json", str(tmp_path / "x.json")])
    assert err.value.code == 2 and "exclude each other" in capsys.readouterr().err


@pytest.mark.slow
def test_a_mixed_registry_compares_each_model_on_its_own_features(tmp_path):
    """An absolute champion against a relative challenger: ``compare`` scores each with the
    features of its own spec (recomputed here from the window, independently of ``compare``);
    scored with the other's spec the figures would differ."""
    from assign.deploy.loop import loop_train_params
    from assign.deploy.registry import open_registry
    from assign.deploy.retrain import _eval_rows, compare, retrain
    from assign.features.build import history_features
    from assign.model.metrics import binary_metrics
    from assign.model.scorer import ModelDir
    from assign.world.centre import generate_history
    from assign.world.drift import DriftSchedule, drifting_world

    dw = drifting_world(seed=5, n_agents=8, n_intents=3, schedule=DriftSchedule.off())
    pre = generate_history(dw.pre_period(days=4), days=4, seed=1)
    reg = open_registry(tmp_path / "registry")
    end = pd.Timestamp(dw.base.start)
    assert retrain(pre, registry=reg, cutoff=end - pd.Timedelta(days=1), window_days=3.0, params=loop_train_params(),
                   at=end, resolution_delay_h=6.0).promoted
    d = retrain(pre, registry=reg, cutoff=end, window_days=4.0, params=loop_train_params(), at=end,
                resolution_delay_h=6.0, history_rates="relative", ood="model")
    champ, chall = (ModelDir.load(reg.path(v), nthread=1) for v in (d.champion, d.version))
    assert (champ.spec.history_rates, chall.spec.history_rates) == ("absolute", "relative")
    hist = _window(pre, cut=end, days=4.0, delay_h=6.0)
    mask, _ = _eval_rows(hist, target="resolved", fraction=0.2, days=2.0)
    y = hist["resolved"].astype("float64").to_numpy(na_value=np.nan)
    sel = mask & hist["agent_id"].notna().to_numpy() & np.isfinite(y)
    got = compare(hist, mask, registry=reg, champion=d.champion, challenger=d.version, ood="model")
    for role, m in (("champion", champ), ("challenger", chall)):
        p = m.predict_matrix(history_features(hist, m.spec).X)["resolved"]
        assert got[role]["resolved"]["log_loss"] == pytest.approx(binary_metrics(y[sel], p[sel])["log_loss"], 1e-12)
    wrong = chall.predict_matrix(history_features(hist, champ.spec).X)["resolved"]
    assert binary_metrics(y[sel], wrong[sel])["log_loss"] != pytest.approx(got["challenger"]["resolved"]["log_loss"])


@pytest.mark.slow
def test_after_a_relative_challenger_is_promoted_ticks_serve_its_relative_features(promoted_loop_run, monkeypatch):
    """The first champion absolute, the retrains relative (``first_history_rates``): the promoted
    challenger routes with relative rates, and the features a tick gives it (per-run tables and
    the general path) are those of a featurizer rebuilt from the retrain's window alone; the first
    champion's absolute features on the same pairs differ."""
    from assign.deploy.loop import LoopConfig
    from assign.features.build import TickFeaturizer, history_features
    from assign.features.spec import FeatureSpec
    from assign.model.scorer import XGBScorer

    rt = importlib.import_module("assign.deploy.retrain")
    real, calls = rt.retrain, []

    def recording(history, **kw):
        calls.append((history, kw))
        return real(history, **kw)

    monkeypatch.setattr(rt, "retrain", recording)

    cfg = LoopConfig(retrain_every_s=0.6 * DAY_S, monitor_every_s=99 * DAY_S, history_rates="relative",
                     first_history_rates="absolute")
    pol, snap, base = promoted_loop_run(cfg)
    version = pol.events[2]["version"]
    assert FeatureSpec.load(pol.reg.path("v0001") / "features.json").history_rates == "absolute"
    assert isinstance(base, XGBScorer) and base.model.path == pol.reg.path(version)
    assert base.model.spec.history_rates == "relative" and base._tables is not None and base._tables.applies(snap)
    c = np.repeat(np.arange(len(snap.contacts.ids)), len(snap.agents.ids))
    g = np.tile(np.arange(len(snap.agents.ids)), len(snap.contacts.ids))
    served, _ = base._tables.features(snap, contact_idx=c, agent_idx=g)
    general = base.features(snap, contact_idx=c, agent_idx=g)
    (history, kw), = calls
    spec = FeatureSpec.load(pol.reg.path(version) / "features.json")
    window = _window(history, cut=kw["cutoff"], days=kw["window_days"], delay_h=kw["resolution_delay_h"])
    batch = TickFeaturizer(spec=spec, state=history_features(window, spec).state, customer_times=base.model.customers)
    expect = batch.features(snap, contact_idx=c, agent_idx=g)
    np.testing.assert_array_equal(served, expect)
    np.testing.assert_array_equal(general, expect)
    first = XGBScorer.load(pol.reg.path("v0001"), nthread=1, ood="model")
    absolute = first.features(snap, contact_idx=c, agent_idx=g)
    both = np.isfinite(absolute[:, RATE_COLS]) & np.isfinite(expect[:, RATE_COLS])
    assert both.any() and not np.allclose(absolute[:, RATE_COLS][both], expect[:, RATE_COLS][both])
