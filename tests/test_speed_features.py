"""The vectorised tick featurizer equals the per-contact loop it replaced, bit for bit, and its
domain flags equal :func:`assign.model.domain.out_of_domain`."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from assign.features.build import RECENT_WINDOW_S, _hour_weekday, _priority
from assign.features.crosses import AgentTable, ContactTable, PairInputs, assemble
from assign.model import TrainParams, XGBScorer, train
from assign.model.domain import out_of_domain
from assign.world.centre import generate_history
from benchmarks.scoring import pairs, workload

F32 = np.float32


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    world, snap = workload(seed=7, n_contacts=300, n_agents=120)
    out = tmp_path_factory.mktemp("feat-model")
    train(generate_history(world, days=1, seed=8), out=out,
          params=TrainParams(max_rounds=20, early_stopping=5, max_depth=4, nthread=1))
    return snap, XGBScorer.load(out)


def _reference(feat, snapshot, ci, ai) -> np.ndarray:
    """The featurizer as it was before vectorising (per-contact loop, features per call)."""
    sc, sa = snapshot.contacts, snapshot.agents
    t = snapshot.at.timestamp() - sc.waited_s
    hour, weekday = _hour_weekday(t)
    cust: dict[str, list[float]] = {}
    for cid, tt in zip(feat._ref_customers["customer_id"], feat._ref_customers["t"]):
        cust.setdefault(str(cid), []).append(float(tt))
    cust = {k: np.sort(np.array(v)) for k, v in cust.items()}
    recent = np.full(len(sc), np.nan, dtype=F32)
    for i in np.unique(ci):
        cid = sc.customer_id[i]
        if cid is not None:
            ts = cust.get(str(cid))
            recent[i] = 0.0 if ts is None else (
                np.searchsorted(ts, t[i], "left") - np.searchsorted(ts, t[i] - RECENT_WINDOW_S, "left"))
    imap = np.array([feat._intent_code.get(k, -1) for k in snapshot.intents], dtype=np.int32)
    intent_model = imap[sc.intent]
    c = ContactTable(channel=sc.channel, intent=intent_model, complexity=sc.complexity.astype(F32),
                     urgency=sc.urgency.astype(F32), sentiment=sc.sentiment.astype(F32),
                     priority=_priority(sc.customer_tier), hour=hour, weekday=weekday, cust_recent=recent,
                     language=sc.language, style=sc.style)
    codes = np.array([feat._agent_code.get(a, -1) for a in sa.ids], dtype=np.int64)
    spec = feat.spec
    af = feat.state.agent_features(codes, prior_rate=spec.prior_rate, prior_csat=spec.prior_csat, m=spec.smoothing)
    a = AgentTable(log_tenure=np.log1p(sa.tenure_days).astype(F32), handling=sa.sentiment_handling.astype(F32),
                   speaks=sa.speaks.astype(F32), style=sa.style, rate=af["rate"].astype(F32),
                   log_n=af["log_n"].astype(F32), handle_ratio=af["handle_ratio"].astype(F32),
                   csat=af["csat"].astype(F32))
    ai_rate, ai_n = feat.state.pair_features(codes[ai], intent_model[ci], af["rate"][ai], m=spec.smoothing)
    p = PairInputs(contact_idx=ci, agent_idx=ai, proficiency=sa.skill[ai, sc.intent[ci]].astype(F32),
                   load=sa.load[ai, sc.channel[ci]].astype(F32), ai_rate=ai_rate.astype(F32),
                   ai_log_n=ai_n.astype(F32))
    return assemble(c, a, p)


def _odd(snap):
    """The snapshot with unknown agents, unknown customers, missing customer ids and tiers."""
    c, a = snap.contacts, snap.agents
    ids = a.ids.copy()
    ids[::7] = [f"stranger-{k}" for k in range(len(ids[::7]))]
    cust = np.array(c.customer_id, dtype=object)
    cust[::5], cust[1::9] = None, "never-seen"
    tier = np.array(c.customer_tier, dtype=object)
    tier[::4] = None
    contacts = dataclasses.replace(c, customer_id=cust, customer_tier=tier)
    return dataclasses.replace(snap, contacts=contacts, agents=dataclasses.replace(a, ids=ids))


@pytest.mark.parametrize("odd", [False, True])
def test_features_equal_the_reference_bit_for_bit(setup, odd) -> None:
    snap, scorer = setup
    snap = _odd(snap) if odd else snap
    feat = scorer._feat
    feat._ref_customers = scorer.model.customer_times
    ci, ai = pairs(snap, 16, np.random.default_rng(3))
    got = feat.features(snap, contact_idx=ci, agent_idx=ai)
    want = _reference(feat, snap, ci, ai)
    np.testing.assert_array_equal(got, want)  # NaN in the same places, every other bit equal
    recent = got[:, 8]
    assert np.nanmax(recent) > 0  # the customers' recent-contact counts are exercised
    if odd:
        assert np.isnan(recent).any() and np.isnan(got[:, 5]).any() and np.isnan(got[:, 17]).any()


def test_domain_flags_equal_out_of_domain(setup) -> None:
    snap, scorer = setup
    snap = _odd(snap)
    ci, ai = pairs(snap, 8, np.random.default_rng(4))
    intent_ok, lang_ok, agent_ok = scorer._feat.known(snap)
    m = out_of_domain(scorer.model, snap, contact_idx=ci, agent_idx=ai)
    np.testing.assert_array_equal(~intent_ok[ci], m["intent"])
    np.testing.assert_array_equal(~lang_ok[ci], m["language"])
    np.testing.assert_array_equal(~agent_ok[ai], m["agent"])
    assert m["agent"].any()


def test_score_pairs_equals_the_reference_path(setup) -> None:
    """Scores from the fast path (codes of the scored agents only, cached domain maps) equal
    the reference: full features, xgboost's predictions, domain.out_of_domain's fallback."""
    snap, scorer = setup
    snap = _odd(snap)
    ci, ai = pairs(snap, 4, np.random.default_rng(5))
    got = scorer.score_pairs(snap, contact_idx=ci, agent_idx=ai)
    scorer._feat._ref_customers = scorer.model.customer_times
    X = _reference(scorer._feat, snap, ci, ai)
    want = scorer.weights.combine(scorer.model.predict_matrix(X, backend="xgboost"), len(ci))
    m = out_of_domain(scorer.model, snap, contact_idx=ci, agent_idx=ai)
    ood = m["intent"] | m["language"] | m["agent"]
    want[ood] = want[~ood].mean()
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    assert ood.any() and (~ood).any()
