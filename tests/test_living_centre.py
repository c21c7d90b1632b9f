"""The living-centre benchmark's quick run: the issue's JSON keys, numbers computed from the
runs (the weekly shares recomputed from the per-policy resolutions), and the drifting world's
schedule as declared."""
from __future__ import annotations

import json
import math
from typing import ClassVar

import numpy as np
import pytest

from assign.constants import DAY_S
from assign.errors import InputError
from assign.world.drift import DriftSchedule, DriftSource, drifting_world


def test_schedule_rejects_bad_values_all_at_once():
    with pytest.raises(InputError) as e:
        DriftSchedule(weeks=0, hires_per_week=-1, new_intent_share=1.5)
    assert len(e.value.problems) == 3


def test_drifting_world_moves_as_declared():
    s = DriftSchedule(weeks=3, hires_per_week=1, leavers_per_week=1, shock_day=4.0, mix_day=8.0)
    dw = drifting_world(seed=3, n_agents=10, n_intents=4, schedule=s)
    assert [p.start_day for p in dw.phases] == [0.0, 4.0, 8.0]
    shock = dw.base.intents.index(dw.shock_intent)
    new = dw.base.intents.index(dw.new_intent)
    assert dw.phases[1].world.intent_base[shock] == pytest.approx(dw.base.intent_base[shock] + s.shock_logit)
    assert dw.base.intent_share[new] == 0 and dw.phases[2].world.intent_share[new] == pytest.approx(0.12)
    ag = dw.base.agents
    assert sorted(ag["hire_day"][ag["hire_day"] > 0]) == [7, 14]
    assert sorted(dw.leave_days()[np.isfinite(dw.leave_days())]) == [7.0, 14.0]
    src = DriftSource(dw)
    st = src.contacts(seed=0, horizon_s=12 * DAY_S)
    day = st.arrival_s / DAY_S
    assert not (st.block.intent[day < 8] == new).any() and (st.block.intent[day >= 8] == new).mean() > 0.05
    plan = src.shifts(horizon_s=12 * DAY_S)
    for a in np.flatnonzero(np.isfinite(dw.leave_days())):
        starts = plan.t_s[(plan.agent == a) & plan.on]
        assert (starts < dw.leave_days()[a] * DAY_S).all()
    # the truth of a shocked-intent contact drops at the shock, for the same agent
    rows = np.flatnonzero(st.block.intent == shock)
    before, after = rows[day[rows] < 4][:50], rows[(day[rows] >= 4) & (day[rows] < 8)][:50]
    a0 = np.zeros(50, np.int64)
    p0 = src.truth_quality(stream=st, contact_idx=before, agent_idx=a0, agent_load=np.zeros(50))
    p1 = src.truth_quality(stream=st, contact_idx=after, agent_idx=a0, agent_load=np.zeros(50))
    assert p1.mean() < p0.mean() - 0.1


def test_driftless_world_has_one_phase_and_no_roster_change():
    dw = drifting_world(seed=3, n_agents=10, n_intents=4, schedule=DriftSchedule.off())
    assert len(dw.phases) == 1 and (dw.base.agents["hire_day"] == 0).all() and np.isinf(dw.leave_days()).all()


def test_monolingual_and_occupancy_change_only_what_they_say():
    s = DriftSchedule(weeks=2, hires_per_week=1, leavers_per_week=1)
    base = drifting_world(seed=3, n_agents=10, n_intents=4, schedule=s)
    mono = drifting_world(seed=3, n_agents=10, n_intents=4, schedule=s, monolingual=True, occupancy=0.44)
    assert (mono.base.customers["language"] == "en").all() and (base.base.customers["language"] != "en").any()
    sp, sp0 = mono.base.arrays.speaks, base.base.arrays.speaks
    assert sp[:, 0].all() and (sp[:, 1:] == sp0[:, 1:]).all()
    # voice and email volume scale with the occupancy (chat's calibrated handle time depends on it too)
    np.testing.assert_allclose(mono.base.volume[:, [0, 2]], base.base.volume[:, [0, 2]] * 0.5, rtol=1e-12)
    assert (mono.base.volume[:, 1] < base.base.volume[:, 1]).all()
    for k in ("skills", "hire_day", "leave_day", "shift_start_h"):
        assert mono.base.agents[k].tolist() == base.base.agents[k].tolist(), k
    np.testing.assert_array_equal(mono.phases[-1].world.intent_share, base.phases[-1].world.intent_share)


@pytest.mark.slow
def test_quick_run_writes_the_issue_keys_from_the_runs(tmp_path):
    from benchmarks import living_centre as lc

    out = tmp_path / "lc.json"
    assert lc.main(["--quick", "--workers", "0", "--json", str(out), "--plot", str(tmp_path / "lc.png")]) == 0
    d = json.loads(out.read_text())
    assert list(d) == ["weeks", "promotions", "alarm_delay_days", "false_alarms_per_week", "swap_pause_ms"]
    assert {(w["week"], w["policy"]) for w in d["weeks"]} == {(1, p) for p in lc.POLICIES}
    assert all(set(w) == {"week", "policy", "uplift_share"} for w in d["weeks"])
    share = {w["policy"]: w["uplift_share"] for w in d["weeks"]}
    assert share["fcfs"] == 0.0 and share["oracle"] == 1.0
    det = json.loads((tmp_path / "lc.details.json").read_text())
    er = {w["policy"]: w["expected_resolution"] for w in det["weeks"]}
    for p in ("ml-batch", "loop"):  # one seed: the share is the ratio of the resolutions' differences
        assert share[p] == pytest.approx((er[p] - er["fcfs"]) / (er["oracle"] - er["fcfs"]), rel=1e-9)
    assert er["oracle"] > er["fcfs"]
    retrains = det["retrains"]["drift"]
    assert len(retrains) >= 5 and all(r["reason"] for r in retrains)  # one per night, each with its reason
    assert [p["version"] for p in d["promotions"]] == [r["version"] for r in retrains if r["promoted"]]
    assert d["alarm_delay_days"] is None or 0 <= d["alarm_delay_days"] <= 4
    fa = det["false_alarms"]
    assert fa["checks"] >= 5 and d["false_alarms_per_week"] == pytest.approx(fa["alarms"] / fa["weeks"])
    assert math.isfinite(d["swap_pause_ms"]) and d["swap_pause_ms"] > 0
    assert det["swap_pause"]["swaps_ok"] == det["swap_pause"]["n_swaps"]
    assert (tmp_path / "lc.png").stat().st_size > 10_000
    again = tmp_path / "again.json"  # the swap measurement alone, on the registry the run left
    assert lc.main(["--quick", "--json", str(again), "--workdir", str(tmp_path / "lc.work"), "--swap-pause-only"]) == 0
    assert math.isfinite(json.loads(again.read_text())["swap_pause_ms"])


@pytest.mark.slow
def test_loop_log_is_the_runs_history_for_what_it_routed(tmp_path):
    """The loop's own log (what retrain and monitor read) equals the simulator's history of
    the same contacts (``assign.sim.log.to_history``): the same served and abandoned
    contacts, the served ones column by column."""

    import pandas as pd

    from assign.deploy.loop import LoopConfig, LoopPolicy
    from assign.sim.engine import SimConfig, simulate
    from assign.sim.log import to_history

    dw, pre, _ = _world_with_champion(tmp_path)
    cfg = LoopConfig(retrain_every_s=0.55 * DAY_S, monitor_every_s=99 * DAY_S)  # one retrain: outcomes fetched
    pol = LoopPolicy(registry=tmp_path / "registry", workdir=tmp_path / "runs", pre_history=pre, config=cfg)
    src = DriftSource(dw)
    run = simulate(source=src, policy=pol, seed=0, config=SimConfig(days=0.7, window_s=120.0))
    assert pol.router.model_version == "v0001"  # the champion was swapped in at the start
    assert [e["event"] for e in pol.events] == ["swap", "retrain"]
    # the loop's rule (loop_rule): the last 2 matured days are the evaluation rows (resolution known
    # 6 h after wrap-up); the window's newest 20% would be ~0.7 days here
    held = pd.Timestamp(pol.events[1]["cutoff"]) - pd.Timestamp(pol.events[1]["eval_from"])
    assert pd.Timedelta(days=2.25) <= held < pd.Timedelta(days=2.5)
    logged = pol._own_history(upto=run.end_s).set_index("contact_id")
    hist = to_history(run, source=src).set_index("contact_id")
    for status, abandoned in (("served", False), ("abandoned", True)):  # the same contacts, the same fate
        assert set(logged.index[logged["abandoned"] == abandoned]) == set(hist.index[hist["status"] == status])
    gone = logged[logged["abandoned"]]
    np.testing.assert_allclose(gone["wait_s"], hist.loc[gone.index, "wait_s"], rtol=1e-12)
    mine = logged[logged["handle_s"].notna()]  # outcomes fetched at the retrain
    assert len(mine) > 50
    ref = hist.loc[mine.index]
    for col in ("agent_id", "channel", "intent", "language", "customer_id"):  # repeat_72h: see LoopPolicy
        assert (mine[col].astype(str) == ref[col].astype(str)).all(), col
    for col in ("wait_s", "handle_s", "agent_tenure_days", "agent_proficiency", "agent_load", "csat", "complexity"):
        np.testing.assert_allclose(mine[col].astype(float), ref[col].astype(float), rtol=1e-9, err_msg=col)
    assert (mine["resolved"].astype(bool) == ref["resolved"].astype(bool)).all()


@pytest.mark.slow
def test_an_alarm_starts_exactly_one_short_window_retrain_and_it_is_audited(tmp_path):
    """A check with a counted alarm starts one retrain at once on ``alarm_window_days`` with
    ``alarm_half_life_days`` (it replaces the scheduled one due at the same moment), audited
    with its trigger; a check without an alarm leaves the scheduled retrain on the long window.
    The alarm's retrain still blanks outcomes unknown at its cut-off: its evaluation rows are
    the independently counted matured rows of the last ``eval_days``."""
    import pandas as pd

    from assign.deploy.loop import LoopConfig, LoopPolicy
    from assign.deploy.retrain import PromotionRule
    from assign.sim.engine import SimConfig, simulate

    class AlarmOnce(LoopPolicy):  # the monitor's statistics are tested elsewhere; here, what an alarm does
        checks = 0

        def _check(self, t):
            self.checks += 1
            return ["calibration:resolved:all"] if self.checks == 1 else []

    dw, pre, start = _world_with_champion(tmp_path)
    rule = PromotionRule(eval_days=0.25, min_eval_rows=50, min_train_rows=50)
    cfg = LoopConfig(retrain_every_s=0.75 * DAY_S, monitor_every_s=0.75 * DAY_S, alarm_window_days=2.0,
                     alarm_half_life_days=0.5, rule=rule)
    pol = AlarmOnce(registry=tmp_path / "registry", workdir=tmp_path / "runs", pre_history=pre, config=cfg)
    simulate(source=DriftSource(dw), policy=pol, seed=0, config=SimConfig(days=1.6, window_s=120.0))
    retrains = [e for e in pol.events if e["event"] == "retrain"]
    assert [r["trigger"] for r in retrains] == ["alarm: calibration:resolved:all", "schedule"]
    t_alarm, t_sched = (r["t_s"] for r in retrains)  # the first decision at or after each due moment
    assert 0.75 * DAY_S <= t_alarm < 1.5 * DAY_S <= t_sched  # one retrain there, not an alarm's and a scheduled one
    span = [(pd.Timestamp(r["cutoff"]) - pd.Timestamp(r["window"][0])) / pd.Timedelta(days=1) for r in retrains]
    assert span == [2.0, 28.0]
    audited = [e for e in pol.reg.audit() if e["event"] == "retrain"][1:]  # after the first champion's
    assert [e["trigger"] for e in audited] == [r["trigger"] for r in retrains]
    assert [e["version"] for e in audited] == [r["version"] for r in retrains]
    # blanking at the alarm's cut-off, counted independently of retrain and mature_only
    cut = start + pd.Timedelta(seconds=t_alarm)
    assert pd.Timestamp(retrains[0]["cutoff"]) == cut
    h = pd.concat([pre, pol._own_history(upto=t_alarm)], ignore_index=True)
    h = h[(h["arrival_at"] >= cut - pd.Timedelta(days=2)) & (h["arrival_at"] < cut)]
    ends = h["arrival_at"] + pd.to_timedelta(h["wait_s"] + h["handle_s"].fillna(1e9), unit="s")
    known = (h["agent_id"].notna() & h["resolved"].notna() & (ends + pd.Timedelta(hours=6) <= cut)).to_numpy()
    newest = h["arrival_at"][known].max()
    expect = known & (h["arrival_at"] >= newest - pd.Timedelta(days=0.25)).to_numpy()
    assert retrains[0]["rows"]["eval"] == int(expect.sum()) >= 50
    assert pd.Timestamp(retrains[0]["eval_from"]) == h["arrival_at"][expect].min()
    assert (known != h["resolved"].notna().to_numpy()).any()  # some outcomes were logged but not yet known


def _world_with_champion(tmp_path):
    """A small driftless world, 3 days of history before it, and a champion trained on them in
    ``tmp_path / "registry"``: the start every loop test shares."""
    import pandas as pd

    from assign.deploy.loop import loop_train_params
    from assign.deploy.registry import open_registry
    from assign.deploy.retrain import retrain
    from assign.world.centre import generate_history

    dw = drifting_world(seed=5, n_agents=8, n_intents=3, schedule=DriftSchedule.off())
    pre = generate_history(dw.pre_period(days=3), days=3, seed=1)
    start = pd.Timestamp(dw.base.start)
    assert retrain(pre, registry=open_registry(tmp_path / "registry"), cutoff=start, window_days=3.0,
                   params=loop_train_params(), at=start, resolution_delay_h=6.0).promoted
    return dw, pre, start


@pytest.mark.slow
@pytest.mark.parametrize("scale", ["probability", "logit"])
def test_level_recalibration_folds_every_matured_outcome_of_the_run(tmp_path, scale):
    """With ``level_half_life_h`` the champion's score carries the per-intent offsets; the folds
    hold exactly the routed contacts whose resolution was known (6 h after wrap-up, from the
    run's own times) by the last fold, and the offsets equal a direct recomputation. On the
    logit scale (slope28) the routed score is sigmoid(logit(champion) + delta) of the intent."""
    from assign.deploy.levels import OffsetScorer
    from assign.deploy.loop import LoopConfig, LoopPolicy, _tiny_canary
    from assign.sim.engine import SimConfig, simulate

    dw, pre, _ = _world_with_champion(tmp_path)
    cfg = LoopConfig(retrain_every_s=99 * DAY_S, monitor_every_s=99 * DAY_S, level_half_life_h=3.0, level_prior_n=5.0,
                     level_scale=scale)
    pol = LoopPolicy(registry=tmp_path / "registry", workdir=tmp_path / "runs", pre_history=pre, config=cfg)
    run = simulate(source=DriftSource(dw), policy=pol, seed=0, config=SimConfig(days=0.8, window_s=120.0))
    assert isinstance(pol.router.scorer.base, OffsetScorer)
    snap = _tiny_canary(pol._run, n_contacts=60)
    ci, ai = np.repeat(np.arange(snap.n_contacts), snap.n_agents), np.tile(np.arange(snap.n_agents), snap.n_contacts)
    champ = pol.router.scorer.base.base.score_pairs(snap, contact_idx=ci, agent_idx=ai)
    got = pol.router.scorer.base.score_pairs(snap, contact_idx=ci, agent_idx=ai)
    intent = snap.contacts.intent[ci]
    if scale == "logit":
        assert np.any(pol.levels.logits != 0)
        z = np.log(champ / (1 - champ)) + pol.levels.logits[intent]
        np.testing.assert_allclose(got, 1 / (1 + np.exp(-z)), rtol=1e-9)
    else:
        assert not np.any(pol.levels.logits)
        np.testing.assert_allclose(got, champ + pol.levels.values[intent], rtol=1e-9)
    at = pol.level_folds[-1][0]
    known = np.concatenate([f[1] for f in pol.level_folds])
    intent = np.concatenate([f[2] for f in pol.level_folds])
    resid = np.concatenate([f[3] for f in pol.level_folds])
    served = np.flatnonzero(run.agent >= 0)
    ends = run.stream.arrival_s[served] + run.wait_s[served] + run.handle_s[served] + 6 * 3600.0
    assert len(known) == int((ends <= at).sum()) > 50
    np.testing.assert_allclose(np.sort(known), np.sort(ends[ends <= at]), rtol=1e-12)
    w = 0.5 ** ((at - known) / (3 * 3600.0))
    n_int = len(pol.levels.intents)
    want = np.bincount(intent, w * resid, n_int) / (np.bincount(intent, w, n_int) + 5.0)
    np.testing.assert_allclose(pol.levels.values, want, rtol=1e-9, atol=1e-12)
    assert np.all(np.abs(resid) < 1) and np.any(pol.levels.values != 0)


@pytest.mark.slow
@pytest.mark.parametrize("as_routed", [True, False])
def test_a_retrain_scores_the_champion_with_the_offsets_it_routes_with(tmp_path, monkeypatch, as_routed):
    """``compare_as_routed``: each retrain gets the level offsets in force at its cut-off as
    ``champion_offsets`` and a promoted challenger starts with zero offsets; off: no offsets
    passed, and they are kept across the swap (the loop10 design)."""
    import importlib

    from assign.deploy.loop import LoopConfig, LoopPolicy
    from assign.sim.engine import SimConfig, simulate

    dw, pre, _ = _world_with_champion(tmp_path)
    rt = importlib.import_module("assign.deploy.retrain")  # the module (assign.deploy exports the function)
    seen, real = [], rt.retrain

    def spy(*args, **kw):
        seen.append(kw.get("champion_offsets"))
        return real(*args, **kw)

    monkeypatch.setattr(rt, "retrain", spy)
    monkeypatch.setattr(rt, "decide", lambda rule, scored, champion: (True, "promoted by the test"))

    class Probe(LoopPolicy):
        before, after = [], []

        def _retrain(self, view, *, alarms=None):
            self.before.append(self.levels.values.copy())
            super()._retrain(view, alarms=alarms)
            self.after.append(self.levels.values.copy())

    cfg = LoopConfig(retrain_every_s=0.6 * DAY_S, monitor_every_s=99 * DAY_S, level_half_life_h=3.0,
                     compare_as_routed=as_routed)
    pol = Probe(registry=tmp_path / "registry", workdir=tmp_path / "runs", pre_history=pre, config=cfg)
    simulate(source=DriftSource(dw), policy=pol, seed=0, config=SimConfig(days=0.7, window_s=120.0))
    assert [e["event"] for e in pol.events] == ["swap", "retrain", "swap"] and pol.events[2]["ok"]
    assert np.any(pol.before[0] != 0)  # outcomes were folded before the retrain
    if as_routed:
        assert seen == [dict(zip(pol.levels.intents, pol.before[0].tolist()))]
        assert np.all(pol.after[0] == 0)
    else:
        assert seen == [None]
        np.testing.assert_array_equal(pol.after[0], pol.before[0])


@pytest.mark.slow
@pytest.mark.parametrize("ood", ["mean", "model"])
def test_the_loop_scores_out_of_domain_pairs_as_configured(tmp_path, monkeypatch, ood):
    """``ood_scored``: the first champion and a swapped-in one score out-of-domain pairs that
    way (``XGBScorer.ood``), and each retrain compares the models the same way (``ood``)."""
    import importlib

    from assign.deploy.loop import LoopConfig, LoopPolicy
    from assign.sim.engine import SimConfig, simulate

    dw, pre, _ = _world_with_champion(tmp_path)
    rt = importlib.import_module("assign.deploy.retrain")
    seen, real = [], rt.retrain

    def spy(*args, **kw):
        seen.append(kw.get("ood"))
        return real(*args, **kw)

    monkeypatch.setattr(rt, "retrain", spy)
    monkeypatch.setattr(rt, "decide", lambda rule, scored, champion: (True, "promoted by the test"))

    class Probe(LoopPolicy):
        modes: ClassVar[list[str]] = []

        def _retrain(self, view, *, alarms=None):
            self.modes.append(self.router.scorer.base.base.ood)
            super()._retrain(view, alarms=alarms)
            self.modes.append(self.router.scorer.base.base.ood)

    cfg = LoopConfig(retrain_every_s=0.6 * DAY_S, monitor_every_s=99 * DAY_S, ood_scored=ood)
    pol = Probe(registry=tmp_path / "registry", workdir=tmp_path / "runs", pre_history=pre, config=cfg)
    simulate(source=DriftSource(dw), policy=pol, seed=0, config=SimConfig(days=0.7, window_s=120.0))
    assert [e["event"] for e in pol.events] == ["swap", "retrain", "swap"] and pol.events[2]["ok"]
    assert seen == [ood] and pol.modes == [ood, ood]
    assert pol.events[1]["version"] != pol.events[0].get("version")


def test_the_monitors_window_holds_every_contact_that_arrived(tmp_path):
    """``_own_history(waiting=True)`` (the monitor's input) holds every contact that arrived
    before the moment, counted from the stream: routed, abandoned and still waiting; the
    waiting ones without agent, not abandoned, with the wait so far. Without ``waiting`` they
    are left out (the log retrain reads)."""
    from assign.deploy.loop import LoopConfig, LoopPolicy
    from assign.sim.engine import SimConfig, simulate

    dw, pre, _ = _world_with_champion(tmp_path)
    cfg = LoopConfig(retrain_every_s=99 * DAY_S, monitor_every_s=99 * DAY_S)
    pol = LoopPolicy(registry=tmp_path / "registry", workdir=tmp_path / "runs", pre_history=pre, config=cfg)
    run = simulate(source=DriftSource(dw), policy=pol, seed=0, config=SimConfig(days=0.4, window_s=300.0))
    st, t = run.stream, 0.3 * DAY_S
    arrived = set(st.block.ids[st.arrival_s < t])
    full, logged = pol._own_history(upto=t, waiting=True), pol._own_history(upto=t)
    assert set(full["contact_id"]) == arrived and len(full) == len(arrived)
    held = full[~full["contact_id"].isin(set(logged["contact_id"]))]
    assert len(held) > 0 and held["agent_id"].isna().all() and not held["abandoned"].any()
    rows = {c: k for k, c in enumerate(st.block.ids)}
    k = held["contact_id"].map(rows).to_numpy()
    np.testing.assert_allclose(held["wait_s"].to_numpy(float), t - st.arrival_s[k], rtol=1e-12)
    assert (st.arrival_s[k] + st.patience_s[k] > t).all()  # none of them had hung up yet


def test_the_champions_routed_traffic_is_its_grown_reference(tmp_path):
    """``_routed_since`` (what grows the champion's calibration reference) holds exactly the
    contacts served that arrived from the given moment, started before ``upto`` and whose
    every outcome was known at ``now``, counted from the simulator's own history."""
    import pandas as pd

    from assign.deploy.loop import LoopConfig, LoopPolicy
    from assign.sim.engine import SimConfig, simulate
    from assign.sim.log import to_history

    dw, pre, start = _world_with_champion(tmp_path)
    cfg = LoopConfig(retrain_every_s=99 * DAY_S, monitor_every_s=0.6 * DAY_S, label_delay_s=3 * 3600.0,
                     csat_delay_s=3600.0)
    pol = LoopPolicy(registry=tmp_path / "registry", workdir=tmp_path / "runs", pre_history=pre, config=cfg)
    src = DriftSource(dw)
    run = simulate(source=src, policy=pol, seed=0, config=SimConfig(days=0.7, window_s=120.0))
    assert [e["event"] for e in pol.events].count("monitor") == 1  # outcomes fetched at 0.6 days
    # upto between two ticks (a tick exactly at upto starts its contacts at upto)
    since, upto, now = start + pd.Timedelta(hours=2), 0.45 * DAY_S + 60.0, start + pd.Timedelta(days=0.6)
    got = pol._routed_since(since, upto=upto, now=now)
    hist = to_history(run, source=src)
    t = (hist["arrival_at"] - start).dt.total_seconds()
    end = t + hist["wait_s"].astype(float) + hist["handle_s"].astype(float)
    want = hist[(hist["status"] == "served") & (hist["arrival_at"] >= since) & (t + hist["wait_s"] < upto)
                & (end + 3 * 3600.0 <= 0.6 * DAY_S)]
    assert len(want) > 20 and sorted(got["contact_id"]) == sorted(want["contact_id"])
    assert got["agent_id"].notna().all() and got["resolved"].notna().all()


@pytest.mark.slow
def test_a_swap_rebases_the_offsets_so_the_routed_level_stays(tmp_path, monkeypatch):
    """``level_rebase_on_swap``: at a promotion, per intent, the new champion's mean predicted
    resolution on the retrain's evaluation rows plus its new offset equals the old champion's
    plus the old offset (recomputed here from the two model directories, not from the decision's
    figures); the residuals not yet folded are shifted by the same amount."""
    import importlib

    import pandas as pd

    from assign.deploy.loop import LoopConfig, LoopPolicy
    from assign.deploy.retrain import as_routed_features
    from assign.features.build import history_features
    from assign.model.scorer import ModelDir
    from assign.sim.engine import SimConfig, simulate

    dw, pre, _ = _world_with_champion(tmp_path)
    rt = importlib.import_module("assign.deploy.retrain")
    monkeypatch.setattr(rt, "decide", lambda rule, scored, champion: (True, "promoted by the test"))

    class Probe(LoopPolicy):
        before, after, due_before, due_after = [], [], [], []

        def _retrain(self, view, *, alarms=None):
            self.before.append(self.levels.values.copy())
            self.due_before.append(sorted(self._level_due))
            super()._retrain(view, alarms=alarms)
            self.after.append(self.levels.values.copy())
            self.due_after.append(sorted(self._level_due))

    cfg = LoopConfig(retrain_every_s=0.6 * DAY_S, monitor_every_s=99 * DAY_S, level_half_life_h=3.0,
                     level_rebase_on_swap=True)
    pol = Probe(registry=tmp_path / "registry", workdir=tmp_path / "runs", pre_history=pre, config=cfg)
    simulate(source=DriftSource(dw), policy=pol, seed=0, config=SimConfig(days=0.7, window_s=120.0))
    assert [e["event"] for e in pol.events] == ["swap", "retrain", "swap", "rebase"] and pol.events[2]["ok"]
    d = pol.events[1]
    hist = pd.concat([pre, pol._own_history(upto=d["t_s"])], ignore_index=True)
    cut, lo = pd.Timestamp(d["cutoff"]), pd.Timestamp(d["eval_from"])
    hist = hist[(hist["arrival_at"] >= pd.Timestamp(d["window"][0])) & (hist["arrival_at"] < cut)]
    hist = rt.mature_only(hist.reset_index(drop=True), cutoff=cut, resolution_delay_h=6.0, csat_delay_h=1.0)
    rows = ((hist["arrival_at"] >= lo) & hist["agent_id"].notna() & hist["resolved"].notna()).to_numpy()
    assert rows.sum() > 50
    mean = {}
    for role, v in (("old", d["champion"]), ("new", d["version"])):
        m = ModelDir.load(pol.reg.path(v), nthread=1)
        X = as_routed_features(history_features(hist, m.spec).X,
                               unknown_agent=~hist["agent_id"].astype(str).isin(set(m.state.agent_ids)).to_numpy())
        p = m.predict_matrix(X)["resolved"]
        mean[role] = {k: p[sel].mean() if (sel := rows & (hist["intent"] == k).to_numpy()).any() else np.nan
                      for k in pol.levels.intents}
    shift = np.zeros(len(pol.levels.intents))
    for i, k in enumerate(pol.levels.intents):
        if np.isfinite(mean["old"][k]):
            shift[i] = mean["old"][k] - mean["new"][k]
            assert mean["new"][k] + pol.after[0][i] == pytest.approx(mean["old"][k] + pol.before[0][i], abs=1e-9)
        else:
            assert pol.after[0][i] == pol.before[0][i]
    assert np.any(np.abs(shift) > 1e-4) and np.any(pol.before[0] != 0)
    assert len(pol.due_before[0]) == len(pol.due_after[0]) > 0
    for (k0, q0, i0, r0, p0), (k1, q1, i1, r1, p1) in zip(pol.due_before[0], pol.due_after[0]):
        assert (k0, q0, i0) == (k1, q1, i1) and r1 == pytest.approx(r0 + shift[i0], abs=1e-9)
        assert p1 == pytest.approx(p0 - shift[i0], abs=1e-9)  # the predictions the logit scale reads, rebased


def _model_without(tmp_path, n_drop: int):
    """The shared champion with its first ``n_drop`` agents taken out of its state: to the model
    they are agents it never saw (hires), though the world's runs route them."""
    import dataclasses

    from assign.deploy.registry import open_registry
    from assign.features.rolling import _STATE_FIELDS, AgentState
    from assign.model.scorer import ModelDir

    dw, pre, _ = _world_with_champion(tmp_path)
    m = ModelDir.load(open_registry(tmp_path / "registry").path("champion"), nthread=1)
    st = m.state
    small = AgentState(agent_ids=st.agent_ids[n_drop:], **{k: getattr(st, k)[n_drop:] for k in _STATE_FIELDS})
    return dw, pre, dataclasses.replace(m, state=small), st.agent_ids[:n_drop]


def test_a_hire_reads_as_a_training_row_of_an_agent_with_no_history(tmp_path):
    """``ood="hire"``: an agent the model does not know gets, in its six history features, what
    ``history_features`` (the training path) gives the first row of an agent with no earlier
    outcome: counts 0, rates missing; the agent x intent count NaN on an intent the model never saw.
    ``ood="model"`` leaves all six NaN (loop12); every other feature is the same in both."""
    import pandas as pd

    from assign.deploy.retrain import AGENT_HISTORY_FEATURES, as_routed_features
    from assign.errors import InputError
    from assign.features.build import TickFeaturizer, history_features
    from assign.features.spec import FEATURES
    from assign.model.scorer import XGBScorer
    from assign.schema import build_snapshot

    _, pre, model, _ = _model_without(tmp_path, 0)
    intents = list(model.spec.intents)
    served = pre[pre["agent_id"].notna()].sort_values("arrival_at")
    row = served.iloc[[-1]].copy()
    at = (row["arrival_at"].iloc[0] + pd.Timedelta(hours=1)).floor("s")
    rows = pd.concat([row, row], ignore_index=True)
    rows["agent_id"], rows["arrival_at"], rows["wait_s"] = "hire-x", at, 0.0
    rows.loc[1, "intent"] = "never_seen"
    hist = pd.concat([served, rows], ignore_index=True)
    want = history_features(hist, model.spec).X[-2:]  # the training path's two rows of the hire
    contacts = [dict(contact_id=f"c{k}", channel=rows["channel"][k], intent=rows["intent"][k], language="en",
                     complexity=0.5, urgency=0.5, sentiment=0.0, waited_s=0.0, style=None, customer_id="u",
                     customer_tier=None) for k in range(2)]
    agents = [dict(agent_id="hire-x", languages=["en"], skills={intents[0]: 0.5, "never_seen": 0.5},
                   capacity={"voice": 1, "chat": 1, "email": 1}, load={}, tenure_days=1.0, sentiment_handling=0.5,
                   style=None, idle_s=0.0)]
    snap = build_snapshot(contacts=contacts, agents=agents, snapshot_id="t", at=at.to_pydatetime())
    ci, ai = np.arange(2), np.zeros(2, np.int64)
    cols = [FEATURES.index(n) for n in AGENT_HISTORY_FEATURES]
    got = {o: XGBScorer(model=model, ood=o).features(snap, contact_idx=ci, agent_idx=ai) for o in ("hire", "model")}
    np.testing.assert_array_equal(got["hire"][:, cols], want[:, cols].astype(np.float32))
    assert got["hire"][0, FEATURES.index("agent_intent_log_n")] == 0 and np.isnan(got["hire"][1, FEATURES.index(
        "agent_intent_log_n")]) and (got["hire"][:, FEATURES.index("agent_log_n")] == 0).all()
    assert np.isnan(got["model"][:, cols]).all()
    rest = [k for k in range(len(FEATURES)) if k not in cols]
    np.testing.assert_array_equal(got["hire"][:, rest], got["model"][:, rest])
    # a retrain's comparison (as_routed_features) reads a known agent's rows as the tick reads a hire
    X = history_features(hist, model.spec).X[[-3, -1]]  # an agent with history; the hire on the new intent
    assert np.isfinite(X[0, cols]).all()
    np.testing.assert_array_equal(as_routed_features(X, unknown_agent=np.array([True, True]), as_new=True)[:, cols],
                                  got["hire"][:, cols])
    with pytest.raises(InputError, match="unknown_agent: must be one of missing, new, got 'nan'"):
        TickFeaturizer(spec=model.spec, state=model.state, customer_times=model.customers, unknown_agent="nan")


@pytest.mark.slow
def test_hires_run_tables_equal_the_general_path_on_every_tick(tmp_path, monkeypatch):
    """With ``ood="hire"`` and agents the model does not know in the run, the per-run tables'
    features are the general featurizer's bit for bit on every tick, and those agents' pairs
    are still flagged out of the model's domain."""
    from assign.deploy.loop import resolution_weights
    from assign.features import bound
    from assign.model.scorer import XGBScorer
    from assign.sim.engine import SimConfig, simulate
    from assign.sim.policies import RouterPolicy

    dw, _, model, dropped = _model_without(tmp_path, 2)
    scorer = XGBScorer(model=model, weights=resolution_weights(), ood="hire")
    fast, seen = bound.RunTables.features, {"ticks": 0, "hire_pairs": 0}

    def both(self, snapshot, *, contact_idx, agent_idx):
        X, ood = fast(self, snapshot, contact_idx=contact_idx, agent_idx=agent_idx)
        assert X.tobytes() == scorer._feat.features(snapshot, contact_idx=contact_idx,
                                                    agent_idx=agent_idx).tobytes()
        hire = np.isin(snapshot.agents.ids[agent_idx], dropped)
        assert ood[hire].all()
        seen["ticks"] += 1
        seen["hire_pairs"] += int(hire.sum())
        return X, ood

    monkeypatch.setattr(bound.RunTables, "features", both)
    simulate(source=DriftSource(dw), policy=RouterPolicy(scorer=scorer), seed=0,
             config=SimConfig(days=0.3, window_s=60.0))
    assert scorer._tables is not None and seen["ticks"] > 30 and seen["hire_pairs"] > 0


@pytest.mark.slow
def test_a_hires_logged_tenure_counts_from_its_first_day():
    """The simulator's log (``to_history``) and the loop's own history age each agent's tenure
    from the world's tenure at the start, where a hire's is minus the days until it joins (the
    snapshot roster holds 0 for it): a hire's rows count from its first day, a tenured agent's
    from its tenure at the start."""
    import pandas as pd

    from assign.sim.engine import SimConfig, simulate
    from assign.sim.log import to_history
    from assign.sim.policies import make_policy

    dw = drifting_world(seed=5, n_agents=8, n_intents=3,
                        schedule=DriftSchedule(weeks=2, hires_per_week=1, leavers_per_week=1))
    src = DriftSource(dw)
    t0 = src.tenure_at_start()
    hires = np.flatnonzero(t0 < 0)
    assert len(hires) == 1 and t0[hires[0]] == -7.0 and src.agents.tenure_days[hires[0]] == 0.0
    run = simulate(source=src, policy=make_policy("fcfs"), seed=0, config=SimConfig(days=7.5, window_s=0.0))
    hist = to_history(run, source=src)
    served = hist[hist["agent_id"].notna()]
    start = pd.Timestamp(src.start)
    start = start.tz_localize("UTC") if start.tzinfo is None else start
    day = (served["arrival_at"] - start).dt.total_seconds().to_numpy() / DAY_S
    hire = (served["agent_id"] == src.agents.ids[hires[0]]).to_numpy()
    assert hire.sum() > 10
    got = served["agent_tenure_days"].to_numpy(float)
    np.testing.assert_allclose(got[hire], day[hire] - 7.0, atol=1e-6)  # from 0 on its first day
    assert got[hire].max() < 0.5 and got[hire].min() >= 0.0
    ids = {a: k for k, a in enumerate(src.agents.ids)}
    rows = np.array([ids[a] for a in served["agent_id"][~hire]])
    np.testing.assert_allclose(got[~hire], t0[rows] + day[~hire], atol=1e-6)
