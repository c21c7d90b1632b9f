"""The loop's live part as a residual on the base score (``LoopConfig.live_residual``, loop14):
the folded totals and the shrunk mean against a numpy recomputation, a base that predicts the
outcomes exactly adds nothing, and the loop folds every matured resolution with its base score."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from references import TableScorer

from assign.constants import DAY_S
from assign.learn.logit import margin_of
from assign.learn.residual import ResidualEstimates, ResidualScorer, fit_residuals
from assign.learn.scorer import Roster
from assign.learn.shrink import cohorts
from assign.world.drift import DriftSchedule, drifting_world

T0 = pd.Timestamp("2026-01-01", tz="UTC")


def _stream(rng, *, n=400, agents=6, intents=("a", "b", "c"), p=None):
    a = rng.integers(0, agents, n)
    i = rng.integers(0, len(intents), n)
    pred = rng.uniform(0.2, 0.8, n) if p is None else p
    y = (rng.random(n) < np.clip(pred + 0.15 * (a == 0) - 0.1 * (a == 1), 0, 1)).astype(float)
    return pd.DataFrame({"decision_id": [f"d{k}" for k in range(n)],
                         "known_at": T0 + pd.to_timedelta(rng.uniform(0, 3 * DAY_S, n), unit="s"),
                         "agent_id": [f"ag{x}" for x in a], "intent": [intents[x] for x in i], "resolved": y,
                         "csat": np.nan, "handle_s": np.nan, "pred_margin": margin_of(pred)}), a, i, pred, y


def _moment_m(s, n, parent, s2):
    ok = n > 0
    r = s[ok] / n[ok]
    tau2 = max((np.sum(n[ok] * (r - parent[ok]) ** 2) - ok.sum() * s2) / n[ok].sum(), 1e-6)
    return s2 / tau2


def test_shrunk_mean_residual_equals_a_numpy_recomputation():
    rng = np.random.default_rng(3)
    intents = ("a", "b", "c")
    ev, a, i, pred, y = _stream(rng, intents=intents)
    half = 2 * DAY_S
    live = ResidualEstimates(intents=intents, half_life_s=half)
    for part in np.array_split(np.arange(len(ev)), 4):  # batching must not matter
        live.observe(ev.iloc[part].reset_index(drop=True))
    v = live.current()
    t = (ev["known_at"] - T0).dt.total_seconds().to_numpy()
    w = 0.5 ** ((t.max() - t) / half)
    p = 1 / (1 + np.exp(-margin_of(pred)))
    r = y - p
    rows = np.array([v.agent_ids.index(f"ag{x}") for x in a])
    n = np.zeros((len(v.agent_ids), 3))
    s, q = n.copy(), n.copy()
    np.add.at(n, (rows, i), w)
    np.add.at(s, (rows, i), w * r)
    np.add.at(q, (rows, i), w * r * r)
    np.testing.assert_allclose(v.n, n, rtol=1e-9)
    np.testing.assert_allclose(v.s, s, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(v.q, q, rtol=1e-9)

    cohort = np.array([0, 0, 1, 1, 1, 2])
    post = fit_residuals(n=n, s=s, q=q, cohort=cohort)
    s2 = q.sum() / n.sum()
    n_a, s_a = n.sum(1), s.sum(1)
    n_c, s_c = np.bincount(cohort, n_a), np.bincount(cohort, s_a)
    m_c = _moment_m(s_c, n_c, np.zeros(3), s2)
    mu_c = s_c / (n_c + m_c)
    m_a = _moment_m(s_a, n_a, mu_c[cohort], s2)
    mu_a = (s_a + m_a * mu_c[cohort]) / (n_a + m_a)
    m_ai = _moment_m(s.ravel(), n.ravel(), np.repeat(mu_a, 3), s2)
    want = (s + m_ai * mu_a[:, None]) / (n + m_ai)
    np.testing.assert_allclose(post.mean, want, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(post.var, s2 / (n + m_ai), rtol=1e-9)
    # the agents with a real deviation are read with its sign
    assert post.mean[rows[a == 0][0]].min() > 0 and post.mean[rows[a == 1][0]].max() < 0



def test_band_strengths_fit_each_tenure_band_on_its_own_groups():
    """``fit_residuals(band=...)`` (slope31): each band's agent and agent x intent strengths are the moment
    estimate of its own groups (recomputed here), a band with too few groups keeps the pooled
    one, and without bands the fit is the pooled hierarchy unchanged."""
    rng = np.random.default_rng(3)
    k_a, k_i = 12, 3
    n = rng.integers(20, 400, (k_a, k_i)).astype(float)
    dev = np.where(np.arange(k_a) < 4, rng.normal(0, 0.15, k_a), rng.normal(0, 0.01, k_a))  # 4 hires, wide
    s = n * (dev[:, None] + rng.normal(0, 0.02, (k_a, k_i)))
    q = n * 0.2 + s ** 2 / n
    cohort = np.zeros(k_a, np.int64)
    band = np.where(np.arange(k_a) < 4, 0, 1)
    pooled = fit_residuals(n=n, s=s, q=q, cohort=cohort)
    none = fit_residuals(n=n, s=s, q=q, cohort=cohort, band=None)
    np.testing.assert_array_equal(none.mean, pooled.mean)
    post = fit_residuals(n=n, s=s, q=q, cohort=cohort, band=band)
    s2 = q.sum() / n.sum()
    n_a, s_a = n.sum(1), s.sum(1)
    mu_c = s_a.sum() / (n_a.sum() + _moment_m(np.array([s_a.sum()]), np.array([n_a.sum()]), np.zeros(1), s2))
    m_a = np.array([_moment_m(s_a[band == b], n_a[band == b], np.full((band == b).sum(), mu_c), s2)
                    for b in band])
    mu_a = (s_a + m_a * mu_c) / (n_a + m_a)
    m_ai = np.array([_moment_m(s[band == b].ravel(), n[band == b].ravel(), np.repeat(mu_a[band == b], k_i), s2)
                     for b in band])[:, None]
    np.testing.assert_allclose(post.mean, (s + m_ai * mu_a[:, None]) / (n + m_ai), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(post.var, s2 / (n + m_ai), rtol=1e-9)
    assert post.strengths["agent band 0"] < post.strengths["agent band 1"]  # the wide band shrinks less
    assert post.strengths["agent band 0"] < pooled.strengths["agent"]
    # the hires' deviations are kept more of than under one pooled strength
    hires = np.arange(k_a) < 4
    assert np.abs(post.mean[hires]).sum() > np.abs(pooled.mean[hires]).sum()
    # a band of two agents (fewer than MIN_BAND_GROUPS groups) keeps the pooled agent strength
    few = np.where(np.arange(k_a) < 2, 0, 1)
    post2 = fit_residuals(n=n, s=s, q=q, cohort=cohort, band=few)
    assert "agent band 0" not in post2.strengths and "agent band 1" in post2.strengths
    assert post2.strengths["agent"] == pytest.approx(pooled.strengths["agent"])


def test_the_scorer_fits_the_bands_of_its_tenure_bounds():
    """``ResidualScorer(band_days=...)`` is ``fit_residuals`` with each agent's band under those
    bounds (its tenure at the snapshot); None is the pooled fit."""
    from assign.io import read_snapshot
    from assign.learn.shrink import tenure_band

    snap = read_snapshot("examples/snapshot.json")
    rng = np.random.default_rng(5)
    ids, intents = [str(a) for a in snap.agents.ids], tuple(snap.intents)
    k = 3000
    a, i = rng.integers(0, len(ids), k), rng.integers(0, len(intents), k)
    pred = rng.uniform(0.2, 0.8, k)
    y = (rng.random(k) < np.clip(pred + np.linspace(-0.2, 0.2, len(ids))[a], 0, 1)).astype(float)
    live = ResidualEstimates(intents=intents)
    live.observe(pd.DataFrame({
        "decision_id": [f"d{j}" for j in range(k)], "known_at": T0 + pd.to_timedelta(np.arange(k), unit="s"),
        "agent_id": [ids[x] for x in a], "intent": [intents[x] for x in i], "resolved": y, "csat": np.nan,
        "handle_s": np.nan, "pred_margin": margin_of(pred)}))
    v = live.current()
    rows = [v.agent_ids.index(x) for x in ids]
    tot = {key: getattr(v, key)[rows] for key in ("n", "s", "q")}
    tenure = np.asarray(snap.agents.tenure_days, float)
    cohort = cohorts(tenure_days=tenure, skill=np.asarray(snap.agents.skill))
    for bounds in (None, (300.0,), (250.0, 900.0)):
        sc = ResidualScorer(live=live, roster=Roster.of(snap), band_days=bounds)
        post, idx = sc.posterior(snap)
        band = None if bounds is None else tenure_band(tenure, bounds_days=bounds)
        want = fit_residuals(**tot, cohort=cohort, band=band)
        np.testing.assert_allclose(post.mean[idx], want.mean, rtol=1e-9, atol=1e-12)
        assert post.strengths == want.strengths


def test_outcomes_equal_to_the_base_add_nothing_and_rank_as_the_base():
    from assign.io import read_snapshot

    snap = read_snapshot("examples/snapshot.json")
    rng = np.random.default_rng(0)
    n_ag, n_in = len(snap.agents.ids), len(snap.intents)
    table = rng.integers(1, 8, (n_ag, n_in)) / 8.0
    live = ResidualEstimates(intents=tuple(snap.intents))
    # every pair: 8 outcomes, exactly 8 p of them resolved: outcomes as the base predicts them
    a = np.repeat(np.arange(n_ag), n_in * 8)
    i = np.tile(np.repeat(np.arange(n_in), 8), n_ag)
    y = (np.tile(np.arange(8), n_ag * n_in) < table[a, i] * 8).astype(float)
    k = len(a)
    live.observe(pd.DataFrame({
        "decision_id": [f"d{j}" for j in range(k)], "known_at": T0 + pd.to_timedelta(np.arange(k), unit="s"),
        "agent_id": [str(snap.agents.ids[x]) for x in a], "intent": [snap.intents[x] for x in i],
        "resolved": y, "csat": np.nan, "handle_s": np.nan, "pred_margin": margin_of(table[a, i])}))
    sc = ResidualScorer(live=live, base=TableScorer(table), roster=Roster.of(snap))
    c = np.repeat(np.arange(len(snap.contacts.ids)), n_ag)
    g = np.tile(np.arange(n_ag), len(snap.contacts.ids))
    got = sc.score_pairs(snap, contact_idx=c, agent_idx=g)
    base = table[g, snap.contacts.intent[c]]
    np.testing.assert_allclose(got, base, atol=1e-9)
    for ci in range(len(snap.contacts.ids)):
        sel = c == ci
        assert np.array_equal(np.argsort(-np.round(got[sel], 9), kind="stable"), np.argsort(-base[sel], kind="stable"))
    assert live.current().n.sum() == pytest.approx(k)
    cohort = cohorts(tenure_days=np.asarray(snap.agents.tenure_days, float), skill=np.asarray(snap.agents.skill))
    assert len(cohort) == n_ag


@pytest.mark.slow
def test_the_loop_folds_every_matured_resolution_with_its_base_score(tmp_path):
    """``live_residual``: the router scores with :class:`ResidualScorer`, and its live totals hold
    one unit per routed contact whose resolution was known (6 h after wrap-up) by the last fold."""
    from assign.deploy.loop import LoopConfig, LoopPolicy, loop_train_params
    from assign.deploy.registry import open_registry
    from assign.deploy.retrain import retrain
    from assign.sim.engine import SimConfig, simulate
    from assign.world.centre import generate_history
    from assign.world.drift import DriftSource

    dw = drifting_world(seed=5, n_agents=8, n_intents=3, schedule=DriftSchedule.off())
    pre = generate_history(dw.pre_period(days=3), days=3, seed=1)
    start = pd.Timestamp(dw.base.start)
    assert retrain(pre, registry=open_registry(tmp_path / "registry"), cutoff=start, window_days=3.0,
                   params=loop_train_params(), at=start, resolution_delay_h=6.0).promoted
    cfg = LoopConfig(retrain_every_s=99 * DAY_S, monitor_every_s=99 * DAY_S, live_residual=True,
                     live_half_life_days=1e12)
    pol = LoopPolicy(registry=tmp_path / "registry", workdir=tmp_path / "runs", pre_history=pre, config=cfg)
    run = simulate(source=DriftSource(dw), policy=pol, seed=0, config=SimConfig(days=0.8, window_s=120.0))
    assert isinstance(pol.router.scorer, ResidualScorer)
    v = pol.live.current()
    at = (v.t_s - pd.Timestamp(pol._t0).timestamp())
    served = np.flatnonzero(run.agent >= 0)
    ends = run.stream.arrival_s[served] + run.wait_s[served] + run.handle_s[served] + 6 * 3600.0
    assert v.n.sum() == pytest.approx(int((ends <= at + 1e-6).sum()), abs=1e-6) and v.n.sum() > 50
    r = v.s.sum() / v.n.sum()
    assert abs(r) < 0.2 and np.all(v.q <= v.n + 1e-9)  # residuals of probabilities: |r| <= 1


def test_centred_residuals_ignore_a_level_error_shared_by_an_intents_agents():
    """``centred``: a base that is off by the same amount for every agent of an intent (a level
    shift the offsets have not caught) folds the same totals as an exact base, and each intent's
    totals sum to 0 over the agents (every batch is centred)."""
    rng = np.random.default_rng(11)
    intents = ("a", "b", "c")
    ev, _, i, pred, _ = _stream(rng, intents=intents, p=rng.uniform(0.3, 0.6, 400))
    shifted = ev.copy()
    shifted["pred_margin"] = margin_of(pred + 0.25 * (i == 1))  # intent "b" read 0.25 too high
    got = {}
    for name, frame in (("exact", ev), ("shifted", shifted)):
        live = ResidualEstimates(intents=intents, half_life_s=DAY_S, centred=True)
        for part in np.array_split(np.arange(len(frame)), 4):
            live.observe(frame.iloc[part].reset_index(drop=True))
        got[name] = live.current()
    np.testing.assert_allclose(got["shifted"].s, got["exact"].s, atol=1e-9)
    np.testing.assert_allclose(got["exact"].s.sum(axis=0), 0.0, atol=1e-9)
    plain = ResidualEstimates(intents=intents, half_life_s=DAY_S)
    plain.observe(shifted)
    assert plain.current().s[:, 1].sum() < -10  # uncentred, the level error lands on the agents
