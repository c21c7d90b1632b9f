"""Relative outcome-history rates (``FeatureSpec.history_rates`` "relative", relrate15): a hand
computation on a tiny history; the tick featurizer on a history's end state equals the point-in-time
value of a row just after it; a uniform level shift of one intent leaves the agents' order unchanged
(the absolute rates' order changes); the default stays absolute (files and features as before); the
state's new fields round-trip through save/load and older states still load."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from assign.errors import InputError
from assign.features import FEATURES, FeatureSpec, TickFeaturizer, fit_spec, history_features
from assign.features.rolling import AgentState, point_in_time
from assign.world.centre import generate_history, generate_world

DAY = 86400.0


@pytest.fixture(scope="module")
def history():
    return generate_history(generate_world(n_agents=12, seed=5), days=2, seed=6)


def _pit(*, agent, intent, known_at, resolved, t, n_agents, n_intents, m, half_life_s, rates="relative", prior=0.5):
    n = len(t)
    return point_in_time(t=np.asarray(t, float), agent=np.asarray(agent), intent=np.asarray(intent),
                         known_at=np.asarray(known_at, float), resolved=np.asarray(resolved, float),
                         csat=np.full(n, np.nan), handle_ratio=np.full(n, np.nan), n_agents=n_agents,
                         n_intents=n_intents, prior_rate=prior, prior_csat=3.0, smoothing=m,
                         agent_ids=tuple(f"a{k}" for k in range(n_agents)), history_rates=rates,
                         centre_half_life_s=half_life_s)


def test_relative_rates_equal_a_hand_computation() -> None:
    """Three outcomes, a day apart, then two query rows (no outcome) on day 3; m = 1, prior 0.5, half-life 1 day."""
    nan = np.nan
    pit, st = _pit(agent=[0, 1, 0, 1, 0], intent=[0, 0, 1, 0, 0], known_at=[0.0, DAY, 2 * DAY, nan, nan],
                   resolved=[1.0, 0.0, 0.0, nan, nan], t=[-10.0, DAY - 10, 2 * DAY - 10, 3 * DAY, 3 * DAY],
                   n_agents=2, n_intents=2, m=1.0, half_life_s=DAY)
    # outcome 1 (agent 0, intent 0): the centre knows nothing yet -> rate 0.5, residual +0.5
    # outcome 2 (agent 1, intent 0): intent 0's centre (1 + 0.5) / (1 + 1) = 0.75 -> residual -0.75; then its
    #   totals decay by 2^-1 (one day): S = 0.5 + 0, W = 0.5 + 1; the overall centre the same
    # outcome 3 (agent 0, intent 1): intent 1's centre 0.5 -> residual -0.5; overall S = 0.25 + 0, W = 0.75 + 1
    c_all, c0, c1 = (0.25 + 0.5) / (1.75 + 1), (0.5 + 0.5) / (1.5 + 1), 0.5 / 2
    r0, r1 = (0.5 - 0.5) / (2 + 1), -0.75 / (1 + 1)  # agents' smoothed mean residuals
    want_rate = [c_all + r0, c_all + r1]
    want_intent = [c0 + (0.5 + 1 * r0) / (1 + 1), c0 + (-0.75 + 1 * r1) / (1 + 1)]  # on intent 0
    np.testing.assert_allclose(pit.rate[3:], [want_rate[1], want_rate[0]], rtol=1e-12)
    np.testing.assert_allclose(pit.intent_rate[3:], [want_intent[1], want_intent[0]], rtol=1e-12)
    np.testing.assert_allclose(st.centre_rate_by_intent, [c0, c1], rtol=1e-12)
    np.testing.assert_allclose(st.centre_rate, [c_all], rtol=1e-12)
    np.testing.assert_allclose(st.sum_residual, [0.0, -0.75], atol=1e-12)
    np.testing.assert_allclose(st.sum_residual_by_intent, [[0.5, -0.5], [-0.75, 0.0]], atol=1e-12)
    # the first outcomes' rows: no outcome known before them
    assert np.isnan(pit.rate[0]) and np.isnan(pit.intent_rate[0])


def test_tick_featurizer_on_the_end_state_equals_the_point_in_time_row_after_it(history) -> None:
    """One code path: a row of every agent on every intent at the history's last arrival gets from the
    training path exactly what the tick featurizer serves from the history's end state."""
    h = history.sort_values("arrival_at", kind="stable").reset_index(drop=True)
    spec = fit_spec(h, history_rates="relative", centre_half_life_s=3 * 3600.0)
    tf = history_features(h, spec)
    assert tf.state.relative
    served = h[h["agent_id"].notna()]
    last = served.groupby("agent_id", sort=True).tail(1)
    # the end state holds the outcomes known before the last arrival: rows at that instant see the same
    probe = pd.concat([last.assign(intent=k) for k in spec.intents], ignore_index=True)
    probe = probe.assign(arrival_at=h["arrival_at"].max(), resolved=pd.NA, csat=np.nan, handle_s=np.nan,
                         wait_s=np.nan)
    probe["resolved"] = probe["resolved"].astype(h["resolved"].dtype)
    X = history_features(pd.concat([h, probe], ignore_index=True), spec).X[len(h):]
    f = TickFeaturizer(spec=spec, state=tf.state, customer_times=tf.customer_times)
    codes = np.array([f._agent_code[a] for a in probe["agent_id"]], dtype=np.int64)
    intents = np.array([spec.intents.index(k) for k in probe["intent"]], dtype=np.int64)
    rate = f._agent_table["rate"][codes + 1]
    ai, _ = f.state.pair_features(codes, intents, rate, m=spec.smoothing, sums=f.pair_sums)
    np.testing.assert_array_equal(X[:, FEATURES.index("agent_rate")], rate.astype(np.float32))
    np.testing.assert_array_equal(X[:, FEATURES.index("agent_intent_rate")], ai.astype(np.float32))
    assert np.isfinite(ai).mean() > 0.5
    # and the same through the public tick path's per-agent table vs the absolute one: they differ
    absolute = TickFeaturizer(spec=fit_spec(h), state=history_features(h, fit_spec(h)).state,
                              customer_times=tf.customer_times)
    assert not np.allclose(absolute._agent_table["rate"][codes + 1], rate, equal_nan=True)


def _shift_world(rates: str, *, query_day: float = 11.0):
    """3 agents x 2 intents, 10 outcomes an hour per agent for 10 days, each agent with its own intent mix
    (agent 0 mostly intent 0, agent 1 mostly intent 1, agent 2 half and half) and routing unchanged in time;
    expected outcomes (no noise): abilities 0.80 / 0.70 / 0.55 on both intents, intent 0 falls by 0.3 for
    every agent from day 5. Query rows on both intents for every agent on ``query_day``."""
    ability = np.array([0.80, 0.70, 0.55])
    share0 = np.array([0.9, 0.1, 0.5])  # of each agent's contacts on intent 0
    t, agent, intent, res = [], [], [], []
    for h in range(10 * 24):
        for j in range(10):  # 10 contacts an hour per agent, intents in a fixed pattern of its mix
            for a in range(3):
                k = 0 if (j + h + a) % 10 < share0[a] * 10 else 1
                t.append(h * 3600.0 + j * 360.0 + a)
                agent.append(a)
                intent.append(k)
                res.append(ability[a] - (0.3 if (k == 0 and h >= 5 * 24) else 0.0))
    t, agent, intent, res = map(np.array, (t, agent, intent, res))
    qa, qk = np.repeat([0, 1, 2], 2), np.tile([0, 1], 3)
    n = len(qa)
    pit, _ = _pit(agent=np.r_[agent, qa], intent=np.r_[intent, qk], known_at=np.r_[t + 60.0, np.full(n, np.nan)],
                  resolved=np.r_[res, np.full(n, np.nan)], t=np.r_[t, np.full(n, query_day * DAY)], n_agents=3,
                  n_intents=2, m=20.0, half_life_s=6 * 3600.0, rates=rates)
    return pit.rate[-n:][::2], pit.intent_rate[-n:].reshape(3, 2)


def test_a_uniform_shift_of_one_intent_keeps_the_relative_order() -> None:
    truth = [0, 1, 2]  # the agents' true order, unchanged by the shift
    gaps = {}
    for rates in ("absolute", "relative"):
        before, _ = _shift_world(rates, query_day=5.0)  # every outcome known so far is pre-shift
        after, ai = _shift_world(rates, query_day=11.0)
        assert list(np.argsort(-before)) == truth
        gaps[rates] = (before[0] - before, after[0] - after)
        if rates == "relative":
            assert list(np.argsort(-after)) == truth
            for k in (0, 1):
                assert list(np.argsort(-ai[:, k])) == truth
        else:  # agent 0, mostly on the shifted intent, now looks worse than agent 1
            assert list(np.argsort(-after)) != truth
    # relative: the gaps to the best agent move by the centre's lag only; absolute: by the shift's share
    assert np.abs(gaps["relative"][1] - gaps["relative"][0]).max() < 0.03
    assert np.abs(gaps["absolute"][1] - gaps["absolute"][0]).max() > 0.1


def test_default_is_absolute_and_its_files_are_unchanged(history, tmp_path) -> None:
    spec = fit_spec(history)
    assert spec.history_rates == "absolute" and not spec.relative_rates
    assert "history_rates" not in spec.to_json() and "centre_half_life_s" not in spec.to_json()
    tf = history_features(history, spec)
    assert not tf.state.relative and tf.state.sum_residual is None
    tf.state.save(tmp_path / "s.npz")
    assert sorted(np.load(tmp_path / "s.npz").files) == sorted(
        ["agent_ids", "n_resolution", "sum_resolved", "n_resolution_by_intent", "sum_resolved_by_intent", "n_handle",
         "sum_handle_ratio", "n_csat", "sum_csat"])
    # the absolute columns do not depend on the relative option's settings
    rel = history_features(history, fit_spec(history, history_rates="relative"))
    other = [k for k, n in enumerate(FEATURES) if n not in ("agent_rate", "agent_intent_rate")]
    np.testing.assert_array_equal(tf.X[:, other], rel.X[:, other])
    for k in ("n_resolution", "sum_resolved", "n_resolution_by_intent", "sum_resolved_by_intent"):
        np.testing.assert_array_equal(getattr(tf.state, k), getattr(rel.state, k))


def test_relative_state_and_spec_round_trip(history, tmp_path) -> None:
    spec = fit_spec(history, history_rates="relative", centre_half_life_s=7200.0)
    spec.save(tmp_path / "f.json")
    assert FeatureSpec.load(tmp_path / "f.json") == spec
    st = history_features(history, spec).state
    st.save(tmp_path / "s.npz")
    back = AgentState.load(tmp_path / "s.npz")
    for k in ("sum_residual", "sum_residual_by_intent", "centre_rate_by_intent", "centre_rate", "sum_resolved"):
        np.testing.assert_array_equal(getattr(back, k), getattr(st, k))
    grown = back.with_empty_agent("new")
    assert grown.sum_residual.shape == (len(st.agent_ids) + 1,) and grown.sum_residual[-1] == 0.0
    np.testing.assert_array_equal(grown.centre_rate_by_intent, st.centre_rate_by_intent)
    # an older (absolute) state still loads, and refuses relative features with a clear message
    np.savez(tmp_path / "old.npz", agent_ids=np.array(st.agent_ids), nr=st.n_resolution, sr=st.sum_resolved,
             nai=st.n_resolution_by_intent, sai=st.sum_resolved_by_intent, nh=st.n_handle, sh=st.sum_handle_ratio,
             nc=st.n_csat, sc=st.sum_csat)
    old = AgentState.load(tmp_path / "old.npz")
    assert not old.relative
    with pytest.raises(ValueError, match="history_rates='relative'"):
        TickFeaturizer(spec=spec, state=old, customer_times=pd.DataFrame({"customer_id": [], "t": []}))


def test_bad_options_are_refused(history) -> None:
    with pytest.raises(InputError, match=r"history_rates: must be one of absolute, relative.*\n.*centre_half_life_s"):
        fit_spec(history, history_rates="ratio", centre_half_life_s=0.0)


def test_a_relative_model_scores_a_simulated_run_with_the_general_features_bit_for_bit(tmp_path, monkeypatch):
    """Trained, saved and loaded with relative rates, a model's per-run tables (``features/bound.py``)
    give the general featurizer's matrix on every tick of a simulated run."""
    from assign.features import bound
    from assign.model import TrainParams, XGBScorer, train
    from assign.sim.engine import SimConfig, simulate
    from assign.sim.policies import RouterPolicy
    from assign.sim.worldsource import WorldSource

    world = generate_world(seed=21, n_agents=16, n_intents=5, n_customers=1000)
    train(generate_history(world, days=2, seed=22), out=tmp_path / "m", history_rates="relative",
          params=TrainParams(max_rounds=20, early_stopping=5, max_depth=3, nthread=1))
    scorer = XGBScorer.load(tmp_path / "m")
    assert scorer.model.spec.relative_rates and scorer.model.state.relative
    checked = {"ticks": 0}
    fast = bound.RunTables.features

    def both(self, snapshot, *, contact_idx, agent_idx):
        X, ood = fast(self, snapshot, contact_idx=contact_idx, agent_idx=agent_idx)
        assert X.tobytes() == scorer._feat.features(snapshot, contact_idx=contact_idx, agent_idx=agent_idx).tobytes()
        checked["ticks"] += 1
        return X, ood

    monkeypatch.setattr(bound.RunTables, "features", both)
    simulate(source=WorldSource(world), policy=RouterPolicy(scorer=scorer), seed=3,
             config=SimConfig(days=0.3, window_s=2.0))
    assert scorer._tables is not None and checked["ticks"] > 30
