"""The loop's hybrid live part (``LoopConfig.live_hybrid``, hybrid17): the residual on the base for
the agents the champion knows, the mean of the base and the absolute posterior mean for the ones it
does not; checked against the two single-form scorers fed the same outcomes, and in a loop whose
first champion never saw one agent, until a champion trained on that agent's rows is promoted."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from references import TableScorer

from assign.constants import DAY_S
from assign.errors import InputError
from assign.learn.hybrid import HybridScorer, PairedEstimates
from assign.learn.live import LiveEstimates
from assign.learn.logit import margin_of
from assign.learn.residual import ResidualEstimates, ResidualScorer
from assign.learn.scorer import LIVE_KEY, LearnScorer, Roster

T0 = pd.Timestamp("2026-01-01", tz="UTC")



def _outcomes(snap, table, rng, *, n=600, start=0.0):
    a = rng.integers(0, len(snap.agents.ids), n)
    i = rng.integers(0, len(snap.intents), n)
    p = table[a, i]
    y = (rng.random(n) < np.clip(p + 0.2 * (a == 0) - 0.2 * (a == 1), 0, 1)).astype(float)
    return pd.DataFrame({"decision_id": [f"d{start}-{k}" for k in range(n)],
                         "known_at": T0 + pd.to_timedelta(start + np.sort(rng.uniform(0, DAY_S, n)), unit="s"),
                         "agent_id": [str(snap.agents.ids[x]) for x in a], "intent": [snap.intents[x] for x in i],
                         "resolved": y, "csat": np.nan, "handle_s": np.nan, "pred_margin": margin_of(p)})


@pytest.fixture
def fed():
    """The example snapshot, a base table, a hybrid scorer whose hire is agent 1, and the two
    single-form scorers (no base) fed the same outcomes through their own live objects."""
    from assign.io import read_snapshot

    snap = read_snapshot("examples/snapshot.json")
    rng = np.random.default_rng(7)
    table = rng.uniform(0.3, 0.9, (len(snap.agents.ids), len(snap.intents)))
    intents, half = tuple(snap.intents), 2 * DAY_S
    paired = PairedEstimates(absolute=LiveEstimates(intents=intents, half_life_s=half),
                             residual=ResidualEstimates(intents=intents, half_life_s=half))
    ref_abs, ref_res = LiveEstimates(intents=intents, half_life_s=half), ResidualEstimates(intents=intents,
                                                                                          half_life_s=half)
    ev = _outcomes(snap, table, rng)
    for part in np.array_split(np.arange(len(ev)), 3):
        for live in (paired, ref_abs, ref_res):
            live.observe(ev.iloc[part].reset_index(drop=True))
    hire = np.zeros(len(snap.agents.ids), bool)
    hire[1] = True
    roster = Roster.of(snap)
    hybrid = HybridScorer(live=paired, base=TableScorer(table), hires=lambda s: hire)
    for s in (hybrid.absolute, hybrid.residual):
        s.roster = roster
    return dict(snap=snap, table=table, hire=hire, paired=paired, hybrid=hybrid, rng=rng,
                absolute=LearnScorer(live=ref_abs, roster=roster), residual=ResidualScorer(live=ref_res, roster=roster))


def _all_pairs(snap):
    n_c, n_a = len(snap.contacts.ids), len(snap.agents.ids)
    return np.repeat(np.arange(n_c), n_a), np.tile(np.arange(n_a), n_c)


def test_known_agents_get_the_residual_and_hires_the_mean_of_base_and_absolute(fed):
    snap, hyb = fed["snap"], fed["hybrid"]
    c, g = _all_pairs(snap)
    base = fed["table"][g, snap.contacts.intent[c]]
    theta = fed["absolute"].score_pairs(snap, contact_idx=c, agent_idx=g)
    resid = fed["residual"].score_pairs(snap, contact_idx=c, agent_idx=g)
    got = hyb.score_pairs(snap, contact_idx=c, agent_idx=g)
    hire = fed["hire"][g]
    np.testing.assert_allclose(got[~hire], base[~hire] + resid[~hire], rtol=1e-12)
    np.testing.assert_allclose(got[hire], 0.5 * (base[hire] + theta[hire]), rtol=1e-12)
    assert np.abs(resid).max() > 0.01 and np.abs(theta - base).max() > 0.01  # both parts carry something
    # no hires: the residual scorer's scores
    plain = HybridScorer(live=fed["paired"], base=TableScorer(fed["table"]))
    plain.residual.roster = hyb.residual.roster
    np.testing.assert_allclose(plain.score_pairs(snap, contact_idx=c, agent_idx=g), base + resid, rtol=1e-12)
    # prior_only is each part's own: nothing is prior-only once every agent holds outcomes
    assert not hyb.prior_only(snap, contact_idx=c, agent_idx=g).any()


def test_new_intents_are_scored_as_the_hires_are(fed):
    """hybrid19: with ``new_intents``, the pairs on an intent the champion does not know take the
    absolute form too, whatever the agent; the retrieval prior follows the same cells."""
    snap = fed["snap"]
    c, g = _all_pairs(snap)
    new = np.zeros(len(snap.intents), bool)
    new[snap.contacts.intent[0]] = True
    hyb = HybridScorer(live=fed["paired"], base=TableScorer(fed["table"]), hires=lambda s: fed["hire"],
                       new_intents=lambda s: new)
    hyb.absolute.roster, hyb.residual.roster = fed["hybrid"].absolute.roster, fed["hybrid"].residual.roster
    base = fed["table"][g, snap.contacts.intent[c]]
    theta = fed["absolute"].score_pairs(snap, contact_idx=c, agent_idx=g)
    resid = fed["residual"].score_pairs(snap, contact_idx=c, agent_idx=g)
    absolute = fed["hire"][g] | new[snap.contacts.intent[c]]
    assert absolute.sum() > fed["hire"][g].sum()
    got = hyb.score_pairs(snap, contact_idx=c, agent_idx=g)
    np.testing.assert_allclose(got, np.where(absolute, 0.5 * (base + theta), base + resid), rtol=1e-12)


def test_the_champion_says_which_intents_it_never_saw(promoting_loop_centre, tmp_path):
    from types import SimpleNamespace

    from assign.deploy.registry import open_registry
    from assign.model.scorer import XGBScorer

    reg = open_registry(tmp_path / "registry")
    xgb = XGBScorer.load(reg.path(reg.resolve("champion")), nthread=1)
    known = tuple(xgb.model.spec.intents)
    mask = xgb.unknown_intents(SimpleNamespace(intents=(known[0], "launched_today", *known[1:])))
    assert mask.tolist() == [False, True] + [False] * (len(known) - 1)


def test_a_tick_scores_with_the_version_it_pinned(fed):
    snap, hyb = fed["snap"], fed["hybrid"]
    c, g = _all_pairs(snap)
    pinned = replace(snap, meta={**snap.meta, LIVE_KEY: fed["paired"].current()})
    before = hyb.score_pairs(pinned, contact_idx=c, agent_idx=g)
    fed["paired"].observe(_outcomes(snap, fed["table"], fed["rng"], start=DAY_S))
    np.testing.assert_array_equal(hyb.score_pairs(pinned, contact_idx=c, agent_idx=g), before)
    assert not np.allclose(hyb.score_pairs(snap, contact_idx=c, agent_idx=g), before)


def test_thompson_draws_centre_on_the_scores_and_split_as_they_do(fed):
    snap, hyb = fed["snap"], fed["hybrid"]
    c, g = _all_pairs(snap)
    draws = hyb.posterior_draw(snap, contact_idx=c, agent_idx=g, rng=np.random.default_rng(1), n_draws=4000)
    score = hyb.score_pairs(snap, contact_idx=c, agent_idx=g)
    sd = draws.std(axis=0)
    assert np.all(sd > 0)
    np.testing.assert_array_less(np.abs(draws.mean(axis=0) - score), 5 * sd / np.sqrt(4000) + 1e-9)
    # the hire's draws are beta draws halved: inside [base/2, (base + 1)/2]
    hire = fed["hire"][g]
    base = fed["table"][g, snap.contacts.intent[c]]
    assert np.all(draws[:, hire] >= 0.5 * base[hire] - 1e-12) and np.all(draws[:, hire] <= 0.5 * (base[hire] + 1))


def test_the_two_live_forms_exclude_each_other_and_centring_needs_residuals():
    from assign.deploy.loop import LoopConfig

    with pytest.raises(InputError, match="exclude each other"):
        LoopConfig(live_residual=True, live_hybrid=True)
    with pytest.raises(InputError, match="hybrid_new_intents: needs live_hybrid"):
        LoopConfig(live_residual=True, hybrid_new_intents=True)
    with pytest.raises(InputError, match="residual_centred: needs live_residual or live_hybrid"):
        LoopConfig(residual_centred=True)
    with pytest.raises(InputError) as e:
        LoopConfig(residual_reset_on_swap=True, residual_half_life_days=7.0)
    assert "residual_reset_on_swap: needs" in str(e.value) and "residual_half_life_days: needs" in str(e.value)
    with pytest.raises(InputError, match="residual_half_life_days: must be > 0 days, got -1"):
        LoopConfig(live_hybrid=True, residual_half_life_days=-1)
    assert LoopConfig(live_hybrid=True, residual_centred=True).residual_centred
    with pytest.raises(InputError, match="residual_band_days: needs live_residual or live_hybrid"):
        LoopConfig(residual_band_days=(30.0,))
    for bad in ((), (30.0, 10.0), (-1.0,)):
        with pytest.raises(InputError, match="residual_band_days: must be increasing tenure bounds > 0 days"):
            LoopConfig(live_hybrid=True, residual_band_days=bad)
    paired = PairedEstimates(absolute=LiveEstimates(intents=("a",)), residual=ResidualEstimates(intents=("a",)))
    assert HybridScorer(live=paired, residual_band_days=(30,)).residual.band_days == (30.0,)
    assert HybridScorer(live=paired).residual.band_days is None
    assert HybridScorer(live=paired, absolute_intent_parent=True).absolute.intent_parent
    assert not HybridScorer(live=paired).absolute.intent_parent


@pytest.mark.slow
def test_an_agent_is_a_hire_until_a_champion_trained_on_its_rows_is_promoted(tmp_path, promoting_loop_centre):
    """A first champion trained without one agent's rows: the loop scores that agent as a hire
    (and only it), both live parts fold the same resolutions, and after the forced promotion
    of a champion trained on the loop's log, which holds that agent's contacts, it is known."""
    from typing import ClassVar

    from assign.deploy.loop import LoopConfig, LoopPolicy, loop_train_params
    from assign.deploy.registry import open_registry
    from assign.deploy.retrain import retrain
    from assign.sim.engine import SimConfig, simulate
    from assign.world.drift import DriftSource

    dw, pre, start = promoting_loop_centre
    left_out = str(dw.base.agents["agent_id"].iloc[2])
    pre_wo = pre[pre["agent_id"].astype(str) != left_out].reset_index(drop=True)
    assert retrain(pre_wo, registry=open_registry(tmp_path / "reg"), cutoff=start, window_days=3.0,
                   params=loop_train_params(), at=start, resolution_delay_h=6.0).promoted

    class Probe(LoopPolicy):
        seen: ClassVar[list] = []

        def assign(self, view):
            w, agents = view.routable()
            if len(w):
                snap = view.snapshot(w, agents)
                hires = self.router.scorer._hire_agents(snap)
                self.seen.append((view.t, {str(a) for a in np.asarray(snap.agents.ids)[hires]}))
            return super().assign(view)

    cfg = LoopConfig(retrain_every_s=0.6 * DAY_S, monitor_every_s=99 * DAY_S, live_hybrid=True,
                     live_half_life_days=1e12)
    pol = Probe(registry=tmp_path / "reg", workdir=tmp_path / "runs", pre_history=pre, config=cfg)
    simulate(source=DriftSource(dw), policy=pol, seed=0, config=SimConfig(days=0.7, window_s=120.0))
    assert isinstance(pol.router.scorer, HybridScorer)
    assert [e["event"] for e in pol.events] == ["swap", "retrain", "swap"] and pol.events[2]["ok"]
    before = [s for t, s in pol.seen if t < 0.6 * DAY_S]
    after = [s for t, s in pol.seen if t > 0.6 * DAY_S]
    assert before and all(s <= {left_out} for s in before) and any(s == {left_out} for s in before)
    assert after and all(not s for s in after)
    v = pol.live.current()
    st = v.absolute.state
    assert v.residual.n.sum() == pytest.approx(float(st.n_resolution_by_intent.sum())) and v.residual.n.sum() > 50


@pytest.mark.slow
def test_residuals_emptied_at_a_swap_hold_only_what_folded_after_it(promoted_loop_run):
    """hybrid20 ``residual_reset_on_swap``: after the forced promotion the residual totals hold
    only the resolutions folded since (fewer than the absolute part, which kept them all), and a
    shorter residual memory leaves the absolute part's untouched."""
    from assign.deploy.loop import LoopConfig

    pol, _, _ = promoted_loop_run(LoopConfig(retrain_every_s=0.6 * DAY_S, monitor_every_s=99 * DAY_S,
                                             live_hybrid=True, residual_reset_on_swap=True,
                                             live_half_life_days=1e12))
    v = pol.live.current()
    kept = float(v.absolute.state.n_resolution_by_intent.sum())
    assert 0 < v.residual.n.sum() < kept
    before = pol.live.residual.current().version
    emptied = pol.live.residual.reset()
    assert emptied.n.size == 0 and emptied.version == before + 1 and emptied.intents == v.residual.intents
    pol2, _, _ = promoted_loop_run(LoopConfig(retrain_every_s=0.6 * DAY_S, monitor_every_s=99 * DAY_S,
                                              live_hybrid=True, residual_half_life_days=0.1,
                                              live_half_life_days=1e12))
    v2 = pol2.live.current()
    assert float(v2.absolute.state.n_resolution_by_intent.sum()) == pytest.approx(kept)
    assert pol2.live.residual.half_life_s == pytest.approx(0.1 * DAY_S) and v2.residual.n.sum() < kept


def test_hires_by_tenure_need_the_hybrid_and_join_the_champions_unknown_agents():
    from types import SimpleNamespace

    from assign.deploy.loop import LoopConfig, hybrid_hires

    with pytest.raises(InputError, match="hybrid_hires_window: needs live_hybrid"):
        LoopConfig(live_residual=True, hybrid_hires_window=True)
    snap = SimpleNamespace(agents=SimpleNamespace(tenure_days=np.array([3.0, 40.0, 27.9, 28.0, 90.0])))
    got = hybrid_hires(snap, unknown=lambda s: np.array([False, True, False, False, False]), window_days=28.0)
    assert got.tolist() == [True, True, True, False, False]


@pytest.mark.slow
def test_an_agent_under_the_window_stays_a_hire_after_a_champion_knows_it(promoted_loop_run):
    """hybrid23 ``hybrid_hires_window``: after the forced promotion of a champion trained on
    every agent's rows, the agents whose tenure at the tick is under ``window_days`` are still
    scored in the absolute form (the mean of the champion's score and the posterior mean), the
    others in the residual form, as the plain hybrid scores everyone."""
    from assign.deploy.loop import LoopConfig

    cfg = LoopConfig(retrain_every_s=0.6 * DAY_S, monitor_every_s=99 * DAY_S, live_hybrid=True,
                     hybrid_hires_window=True, live_half_life_days=1e12)
    window = cfg.window_days
    pol, snap, base = promoted_loop_run(cfg)
    hyb = pol.router.scorer
    assert isinstance(hyb, HybridScorer) and not base.unknown_agents(snap).any()
    young = np.arange(snap.n_agents) % 2 == 0  # the tick's own agents, half of them aged past the window
    snap = replace(snap, agents=replace(snap.agents, tenure_days=np.where(young, window - 1.0, window + 1.0)))
    np.testing.assert_array_equal(hyb._hire_agents(snap), young)
    c, g = _all_pairs(snap)
    sa, sr = hyb._parts(snap)
    b = hyb._base(snap, c, g)
    theta = hyb.absolute.score_pairs(sa, contact_idx=c, agent_idx=g)
    resid = hyb.residual.score_pairs(sr, contact_idx=c, agent_idx=g)
    np.testing.assert_allclose(hyb.score_pairs(snap, contact_idx=c, agent_idx=g),
                               np.where(young[g], 0.5 * (b + theta), b + resid), rtol=1e-12)


@pytest.mark.slow
def test_residuals_rebuilt_at_a_swap_are_the_outcomes_against_the_new_champion(promoted_loop_run, monkeypatch):
    """rebuild26 ``residual_rebuild_on_swap``: at the forced promotion every resolution folded so
    far is folded again with the new champion's prediction for its pair (here a stand-in model
    that predicts 0.5 everywhere, so the rebuilt margins are exactly 0), those after the swap keep
    the margin the tick recorded, and the live totals are exactly the fold of those batches."""
    import assign.model.scorer as model_scorer
    from assign.deploy.loop import LoopConfig

    def half(model, history, **_):
        return pd.DataFrame({"contact_id": history["contact_id"], "p_resolved": 0.5})

    monkeypatch.setattr(model_scorer, "predict_history", half)
    with pytest.raises(InputError, match="exclude each other"):
        LoopConfig(live_hybrid=True, residual_reset_on_swap=True, residual_rebuild_on_swap=True)
    with pytest.raises(InputError, match="residual_rebuild_on_swap: needs live_residual or live_hybrid"):
        LoopConfig(residual_rebuild_on_swap=True)
    cfg = LoopConfig(retrain_every_s=0.6 * DAY_S, monitor_every_s=99 * DAY_S, live_hybrid=True, residual_centred=True,
                     residual_rebuild_on_swap=True, live_half_life_days=1e12)
    pol, _, _ = promoted_loop_run(cfg)
    rebuilt = [bool((f["pred_margin"] == 0.0).all()) for f, _ in pol._residual_batches]
    k = rebuilt.index(False)  # the batches folded before the swap come first, all rebuilt
    assert k > 0 and not any(rebuilt[k:])
    assert pol._residual_batches[k - 1][0]["known_at"].max() <= pol._at(pol.events[2]["t_s"])
    assert all(np.isfinite(f["pred_margin"]).all() for f, _ in pol._residual_batches[k:])
    again = ResidualEstimates(intents=pol.live.residual.current().intents, half_life_s=pol.live.residual.half_life_s,
                              centred=True)
    for f, _ in pol._residual_batches:
        again.observe(f)
    got, want = pol.live.residual.current(), again.current()
    assert got.agent_ids == want.agent_ids and got.n.sum() > 50
    for k in ("n", "s", "q"):
        np.testing.assert_allclose(getattr(got, k), getattr(want, k), rtol=1e-12, atol=1e-12)
